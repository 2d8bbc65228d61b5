//! Splitting a page's records into message-sized parts, by their serialized size.

use serde_json::Value;

/// A record too large for any message on its own: recorded as an execution error, not sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Oversize {
    /// Index within the page.
    pub index: usize,
    pub external_id: Option<String>,
    /// The record's serialized size.
    pub bytes: usize,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Split {
    pub parts: Vec<Vec<Value>>,
    pub oversize: Vec<Oversize>,
}

/// Packs `records`, in order, into parts whose message (`overhead` bytes of envelope around a
/// JSON array of the part's records) stays within `budget` bytes. Sequential greedy packing
/// gives the fewest parts for an order-preserving split.
pub(crate) fn split_records(records: Vec<Value>, overhead: usize, budget: usize) -> Split {
    let mut split = Split::default();
    let mut part: Vec<Value> = Vec::new();
    let mut part_bytes = overhead;
    for (index, record) in records.into_iter().enumerate() {
        let bytes = serialized_len(&record);
        if overhead.saturating_add(bytes) > budget {
            split.oversize.push(Oversize {
                index,
                external_id: external_id(&record),
                bytes,
            });
            continue;
        }
        // A comma separates this record from the previous one.
        let added = bytes + usize::from(!part.is_empty());
        if !part.is_empty() && part_bytes + added > budget {
            split.parts.push(std::mem::take(&mut part));
            part_bytes = overhead;
            part.push(record);
            part_bytes += bytes;
        } else {
            part.push(record);
            part_bytes += added;
        }
    }
    if !part.is_empty() {
        split.parts.push(part);
    }
    split
}

/// Re-packs parts into exactly `count` parts (a redelivered page must be sent as the number of
/// parts its first delivery counted, with the same source keys): the greedy packing padded with
/// empty parts. Records that do not fit in `count` parts are returned separately (the page grew
/// upstream between the two deliveries).
pub(crate) fn repartition(
    parts: Vec<Vec<Value>>,
    count: usize,
    overhead: usize,
    budget: usize,
) -> (Vec<Vec<Value>>, Vec<Value>) {
    let records: Vec<Value> = parts.into_iter().flatten().collect();
    let Split { mut parts, .. } = split_records(records, overhead, budget);
    let overflow = if parts.len() > count {
        parts.split_off(count).into_iter().flatten().collect()
    } else {
        Vec::new()
    };
    parts.resize_with(count, Vec::new);
    (parts, overflow)
}

pub(crate) fn serialized_len(value: &Value) -> usize {
    // Serializing a `Value` cannot fail (its keys are strings).
    hub_core::json::encoded_len(value).unwrap_or(0)
}

/// The record's id as sources usually name it, for error reports.
pub(crate) fn external_id(record: &Value) -> Option<String> {
    ["id", "Id", "ID", "_id"]
        .iter()
        .find_map(|name| match record.get(name)? {
            Value::String(text) => Some(text.clone()),
            Value::Number(number) => Some(number.to_string()),
            _ => None,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(id: u32, filler: usize) -> Value {
        json!({"id": format!("r{id}"), "x": "a".repeat(filler)})
    }

    #[test]
    fn parts_stay_within_the_budget_and_keep_order() {
        let records: Vec<Value> = (0..50)
            .map(|i| record(i, 100 + (i as usize * 7) % 60))
            .collect();
        let overhead = 300;
        let budget = 1_500;
        let split = split_records(records.clone(), overhead, budget);
        assert!(split.oversize.is_empty());
        assert!(split.parts.len() > 1);
        for part in &split.parts {
            let body = serde_json::to_string(part).unwrap();
            // `[` and `]` are part of the overhead's empty array.
            assert!(overhead + body.len() - 2 <= budget, "{}", body.len());
            assert!(!part.is_empty());
        }
        let flat: Vec<Value> = split.parts.into_iter().flatten().collect();
        assert_eq!(flat, records);
    }

    #[test]
    fn a_record_too_large_for_any_message_is_set_aside() {
        let records = vec![
            record(1, 10),
            record(2, 5_000),
            json!({"Id": 7, "x": "b".repeat(5_000)}),
            record(3, 10),
        ];
        let split = split_records(records, 200, 1_000);
        assert_eq!(split.parts.len(), 1);
        assert_eq!(split.parts[0].len(), 2);
        let ids: Vec<_> = split
            .oversize
            .iter()
            .map(|o| (o.index, o.external_id.clone()))
            .collect();
        assert_eq!(ids, [(1, Some("r2".into())), (2, Some("7".into()))]);
        assert!(split.oversize.iter().all(|o| o.bytes > 5_000));
    }

    #[test]
    fn an_empty_page_has_no_parts() {
        assert_eq!(split_records(Vec::new(), 100, 1_000), Split::default());
    }

    #[test]
    fn repartition_pads_or_reports_overflow() {
        let records: Vec<Value> = (0..20).map(|i| record(i, 100)).collect();
        let split = split_records(records.clone(), 100, 600);
        let n = split.parts.len();
        assert!(n >= 4);
        let (padded, overflow) = repartition(split.parts.clone(), n + 2, 100, 600);
        assert_eq!(padded.len(), n + 2);
        assert!(padded[n].is_empty() && padded[n + 1].is_empty());
        assert!(overflow.is_empty());
        let (cut, overflow) = repartition(split.parts, 2, 100, 600);
        assert_eq!(cut.len(), 2);
        let kept = cut.iter().map(Vec::len).sum::<usize>();
        assert_eq!(kept + overflow.len(), records.len());
        assert!(!overflow.is_empty());
    }
}
