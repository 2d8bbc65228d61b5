//! What a new schema version would change: the same sample records mapped by two schemas,
//! compared record by record and field by field (`hub schema diff`).

use hub_core::messages::RecordError;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::outcome::{BatchOutcome, RecordOutcome};

/// One field whose value differs; `None` is "not set".
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FieldChange {
    pub field: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

/// A record whose outcome differs between the two schemas.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordDiff {
    pub record_index: u32,
    /// `mapped`, `skipped`, `failed`, or `absent` when one side has fewer records.
    pub status_before: &'static str,
    pub status_after: &'static str,
    /// Entity fields that changed, in field name order, when both sides mapped (or one side
    /// mapped and the other did not: then every field of the mapped side is listed).
    pub changes: Vec<FieldChange>,
    pub dedup_key_changed: bool,
    pub errors_before: Vec<RecordError>,
    pub errors_after: Vec<RecordError>,
}

/// What the diff compares of one outcome.
struct Parts<'o> {
    status: &'static str,
    data: Option<Map<String, Value>>,
    dedup_key: Option<&'o str>,
    errors: &'o [RecordError],
}

fn parts(outcome: Option<&RecordOutcome>) -> Parts<'_> {
    let (status, data, dedup_key, errors) = match outcome {
        None => ("absent", None, None, &[][..]),
        Some(RecordOutcome::Mapped(m)) => (
            "mapped",
            Some(m.data.to_map()),
            Some(m.dedup_key.as_str()),
            &[][..],
        ),
        Some(RecordOutcome::Skipped(_)) => ("skipped", None, None, &[][..]),
        Some(RecordOutcome::Failed { errors }) => ("failed", None, None, errors.as_slice()),
    };
    Parts {
        status,
        data,
        dedup_key,
        errors,
    }
}

/// The records whose status, entity fields, dedup key or errors differ, in record order.
pub fn diff_outcomes(before: &BatchOutcome, after: &BatchOutcome) -> Vec<RecordDiff> {
    let count = before.records.len().max(after.records.len());
    let mut diffs = Vec::new();
    for index in 0..count {
        let old_parts = parts(before.records.get(index));
        let new_parts = parts(after.records.get(index));
        let (old, new) = (
            old_parts.data.unwrap_or_default(),
            new_parts.data.unwrap_or_default(),
        );
        let mut fields: Vec<&String> = old.keys().chain(new.keys()).collect();
        fields.sort();
        fields.dedup();
        let changes: Vec<FieldChange> = fields
            .into_iter()
            .filter(|f| old.get(*f) != new.get(*f))
            .map(|f| FieldChange {
                field: f.clone(),
                before: old.get(f).cloned(),
                after: new.get(f).cloned(),
            })
            .collect();
        let dedup_key_changed = old_parts.dedup_key.is_some()
            && new_parts.dedup_key.is_some()
            && old_parts.dedup_key != new_parts.dedup_key;
        if old_parts.status == new_parts.status
            && changes.is_empty()
            && !dedup_key_changed
            && old_parts.errors == new_parts.errors
        {
            continue;
        }
        diffs.push(RecordDiff {
            record_index: u32::try_from(index).unwrap_or(u32::MAX),
            status_before: old_parts.status,
            status_after: new_parts.status,
            changes,
            dedup_key_changed,
            errors_before: old_parts.errors.to_vec(),
            errors_after: new_parts.errors.to_vec(),
        });
    }
    diffs
}
