//! Incremental cursors: reading the cursor field of records, the window sent to the API (with
//! the lookback), and the normalised cursor a page proposes for commit.
//!
//! Normalised forms (what `cursor_candidate` returns and `CursorWindow::from` is expected to
//! hold): datetime `2024-05-01T12:00:00.000Z` (sorts as text), epoch types and integers as
//! decimal text, strings unchanged. Window values are read leniently (an RFC 3339 start date
//! written by hand, or epoch digits) so a first run can be seeded from configuration.

use chrono::{DateTime, NaiveDateTime, SecondsFormat, TimeZone, Utc};
use serde_json::Value;

use crate::definition::{CursorFormat, CursorType, Incremental};

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum CursorValue {
    Time(DateTime<Utc>),
    Int(i64),
    Text(String),
}

impl CursorValue {
    /// The record's cursor, or `None` when the field is missing or does not parse.
    pub fn from_record(kind: CursorType, value: &Value) -> Option<Self> {
        match (kind, value) {
            (CursorType::Datetime, Value::String(text)) => parse_datetime(text).map(Self::Time),
            (CursorType::EpochSeconds | CursorType::EpochMillis, _) => {
                let number = number_of(value)?;
                epoch_to_time(kind, number).map(Self::Time)
            }
            (CursorType::Integer, _) => number_of(value)
                .filter(|n| n.fract() == 0.0 && n.abs() < 9.0e18)
                .map(|n| Self::Int(n as i64)),
            (CursorType::String, Value::String(text)) => Some(Self::Text(text.clone())),
            _ => None,
        }
    }

    /// A window bound (`from`, `to`): the normalised form, or an RFC 3339 date / epoch digits
    /// for time cursors.
    pub fn from_window(kind: CursorType, text: &str) -> Option<Self> {
        match kind {
            CursorType::Datetime | CursorType::EpochSeconds | CursorType::EpochMillis => {
                parse_datetime(text).map(Self::Time).or_else(|| {
                    let number: f64 = text.trim().parse().ok()?;
                    let unit = if kind == CursorType::Datetime {
                        CursorType::EpochSeconds
                    } else {
                        kind
                    };
                    epoch_to_time(unit, number).map(Self::Time)
                })
            }
            CursorType::Integer => text.trim().parse().ok().map(Self::Int),
            CursorType::String => Some(Self::Text(text.to_owned())),
        }
    }

    pub fn normalised(&self, kind: CursorType) -> String {
        match (self, kind) {
            (Self::Time(t), CursorType::EpochSeconds) => t.timestamp().to_string(),
            (Self::Time(t), CursorType::EpochMillis) => t.timestamp_millis().to_string(),
            (Self::Time(t), _) => t.to_rfc3339_opts(SecondsFormat::Millis, true),
            (Self::Int(n), _) => n.to_string(),
            (Self::Text(s), _) => s.clone(),
        }
    }

    /// How the API wants the value (a number for epoch formats, so a JSON body keeps its type).
    pub fn formatted(&self, kind: CursorType, format: CursorFormat) -> Value {
        match (self, format) {
            (Self::Time(t), CursorFormat::Rfc3339) => {
                Value::String(t.to_rfc3339_opts(SecondsFormat::Secs, true))
            }
            (Self::Time(t), CursorFormat::Rfc3339Millis) => {
                Value::String(t.to_rfc3339_opts(SecondsFormat::Millis, true))
            }
            (Self::Time(t), CursorFormat::EpochSeconds) => Value::from(t.timestamp()),
            (Self::Time(t), CursorFormat::EpochMillis) => Value::from(t.timestamp_millis()),
            (Self::Time(t), CursorFormat::Date) => Value::String(t.format("%Y-%m-%d").to_string()),
            (Self::Int(n), _) => Value::from(*n),
            (_, CursorFormat::Raw) | (Self::Text(_), _) => Value::String(self.normalised(kind)),
        }
    }

    fn minus_seconds(self, seconds: u64) -> Self {
        match self {
            Self::Time(t) => {
                let back = chrono::Duration::seconds(i64::try_from(seconds).unwrap_or(i64::MAX));
                Self::Time(
                    t.checked_sub_signed(back)
                        .unwrap_or(DateTime::<Utc>::MIN_UTC),
                )
            }
            other => other,
        }
    }
}

fn number_of(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .filter(|n: &f64| n.is_finite())
}

fn epoch_to_time(kind: CursorType, number: f64) -> Option<DateTime<Utc>> {
    let millis = match kind {
        CursorType::EpochMillis => number,
        _ => number * 1000.0,
    };
    if !(-8.0e15..8.0e15).contains(&millis) {
        return None;
    }
    Utc.timestamp_millis_opt(millis as i64).single()
}

/// RFC 3339, and the near-misses APIs send: `+0000` offsets (Jira) and no offset (UTC).
fn parse_datetime(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    if let Ok(t) = DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f%z") {
        return Some(t.with_timezone(&Utc));
    }
    NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .map(|t| t.and_utc())
}

/// The window as the API sees it: `from` moved back by the lookback, both formatted.
#[derive(Debug, Clone, Default)]
pub(crate) struct RequestWindow {
    pub from: Option<Value>,
    pub to: Option<Value>,
    /// The upper bound in cursor terms, to cap the candidate.
    pub upper: Option<CursorValue>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InvalidWindow {
    pub bound: &'static str,
}

impl RequestWindow {
    pub fn new(
        incremental: &Incremental,
        from: Option<&str>,
        to: Option<&str>,
    ) -> Result<Self, InvalidWindow> {
        let kind = incremental.cursor_type;
        let format = incremental.request_format();
        let parse = |text: Option<&str>, bound| {
            text.map(|t| CursorValue::from_window(kind, t).ok_or(InvalidWindow { bound }))
                .transpose()
        };
        let from = parse(from, "from")?;
        let upper = parse(to, "to")?;
        Ok(Self {
            from: from.map(|f| {
                f.minus_seconds(incremental.lookback_seconds)
                    .formatted(kind, format)
            }),
            to: upper.as_ref().map(|t| t.formatted(kind, format)),
            upper,
        })
    }
}

/// The largest cursor among `records`, capped at the window's upper bound: records newer
/// than the run's start are fetched again next run rather than risk skipping their peers.
pub(crate) fn cursor_candidate(
    incremental: &Incremental,
    records: &[Value],
    upper: Option<&CursorValue>,
) -> Option<String> {
    let kind = incremental.cursor_type;
    let max = records
        .iter()
        .filter_map(|record| incremental.cursor_field.get(record))
        .filter_map(|value| CursorValue::from_record(kind, value))
        .max()?;
    let capped = match upper {
        Some(upper) if &max > upper => upper.clone(),
        _ => max,
    };
    Some(capped.normalised(kind))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::definition::JsonPointer;

    fn spec(kind: CursorType, lookback: u64) -> Incremental {
        Incremental {
            cursor_field: JsonPointer::parse("/updatedAt").unwrap(),
            cursor_type: kind,
            request_param: None,
            request_format: None,
            lookback_seconds: lookback,
        }
    }

    #[test]
    fn candidate_is_the_largest_parsable_cursor_capped_at_the_window() {
        let records = vec![
            json!({"updatedAt": "2024-05-01T10:00:00Z"}),
            json!({"updatedAt": "2024-05-01T12:30:00.250+02:00"}),
            json!({"updatedAt": "garbage"}),
            json!({"other": 1}),
            json!({"updatedAt": "2024-05-01T10:20:00.000+0000"}),
        ];
        let inc = spec(CursorType::Datetime, 0);
        assert_eq!(
            cursor_candidate(&inc, &records, None).as_deref(),
            Some("2024-05-01T10:30:00.250Z")
        );
        let upper = CursorValue::from_window(CursorType::Datetime, "2024-05-01T10:10:00Z");
        assert_eq!(
            cursor_candidate(&inc, &records, upper.as_ref()).as_deref(),
            Some("2024-05-01T10:10:00.000Z")
        );
        assert_eq!(cursor_candidate(&inc, &[json!({})], None), None);
    }

    #[test]
    fn epoch_and_integer_cursors() {
        let records = vec![
            json!({"updatedAt": 1_700_000_000}),
            json!({"updatedAt": "1700000500"}),
        ];
        assert_eq!(
            cursor_candidate(&spec(CursorType::EpochSeconds, 0), &records, None).as_deref(),
            Some("1700000500")
        );
        let ids = vec![
            json!({"updatedAt": 7}),
            json!({"updatedAt": 42}),
            json!({"updatedAt": 9}),
        ];
        assert_eq!(
            cursor_candidate(&spec(CursorType::Integer, 0), &ids, None).as_deref(),
            Some("42")
        );
    }

    #[test]
    fn window_applies_the_lookback_and_the_format() {
        let mut inc = spec(CursorType::Datetime, 300);
        let window = RequestWindow::new(&inc, Some("2024-05-01T10:00:00.000Z"), None).unwrap();
        assert_eq!(window.from, Some(json!("2024-05-01T09:55:00Z")));
        inc.request_format = Some(CursorFormat::EpochSeconds);
        let window = RequestWindow::new(&inc, Some("2024-05-01T10:00:00.000Z"), None).unwrap();
        assert_eq!(window.from, Some(json!(1_714_557_300)));
        inc.request_format = Some(CursorFormat::Date);
        let window = RequestWindow::new(&inc, Some("2024-05-01T00:01:00Z"), None).unwrap();
        assert_eq!(window.from, Some(json!("2024-04-30")));
        assert!(RequestWindow::new(&inc, Some("yesterday"), None).is_err());
        assert!(RequestWindow::new(&inc, None, None).unwrap().from.is_none());
    }
}
