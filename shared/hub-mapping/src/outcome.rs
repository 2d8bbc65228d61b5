//! What mapping produces: per record a mapped entity, a skip (a source filter did not hold) or
//! the list of what failed; per batch those in input order, and the conversion to the write
//! queue's envelope items.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use hub_core::messages::{EntityJson, Lineage, RecordError, WriteItem};
use serde::Serialize;
use serde_json::Value;

use crate::hash::payload_hash;
use crate::relations::{LookupError, LookupKey, RelationshipLookup, RelationshipRef};

/// A record mapped to an entity of the schema's target type.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MappedRecord {
    /// Index within the batch given to the mapper.
    pub record_index: u32,
    /// The source's id of the record (the schema's external id field), or the dedup key when
    /// the schema names no such field.
    pub external_id: String,
    /// What the writer's upsert keys on, per the schema's deduplication strategy:
    /// `external_id:<digest>`, `field_match:<field>:<digest>` or `composite:<digest>`, with a
    /// digest of 32 hex digits (128 bits of SHA-256).
    pub dedup_key: String,
    /// The entity: a JSON object with its members in key order, as the writer stores it.
    pub data: EntityJson,
    /// From the sync task's `modifiedSinceField` (or the source entity's `modifiedField`).
    pub source_modified_at: Option<DateTime<Utc>>,
    /// XXH3-128 (32 hex digits) of `data`'s text, which is canonical (members sorted by key, no
    /// whitespace, serde_json's escapes and number forms): the writer skips an item whose
    /// stored entity has the same hash. Kept in step with `data` by
    /// [`BatchOutcome::resolve_relationships`].
    pub payload_hash: String,
    pub relationships: Vec<RelationshipRef>,
}

impl MappedRecord {
    /// The write queue's item; `lineage` is the batch's, its `recordIndex` is set here.
    pub fn into_write_item(self, lineage: &Lineage) -> WriteItem {
        WriteItem {
            external_id: self.external_id,
            dedup_key: self.dedup_key,
            data: self.data,
            source_modified_at: self.source_modified_at,
            payload_hash: self.payload_hash,
            lineage: Lineage {
                record_index: self.record_index,
                ..lineage.clone()
            },
        }
    }
}

/// A record a source filter excluded: not an error, not written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SkippedRecord {
    pub record_index: u32,
    pub external_id: Option<String>,
    /// Which of `source.filters` did not hold.
    pub filter_index: usize,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum RecordOutcome {
    Mapped(MappedRecord),
    Skipped(SkippedRecord),
    Failed { errors: Vec<RecordError> },
}

impl RecordOutcome {
    pub fn record_index(&self) -> Option<u32> {
        match self {
            RecordOutcome::Mapped(m) => Some(m.record_index),
            RecordOutcome::Skipped(s) => Some(s.record_index),
            RecordOutcome::Failed { errors } => errors.first().map(|e| e.record_index),
        }
    }

    pub fn status(&self) -> &'static str {
        match self {
            RecordOutcome::Mapped(_) => "mapped",
            RecordOutcome::Skipped(_) => "skipped",
            RecordOutcome::Failed { .. } => "failed",
        }
    }
}

/// The outcome of every record of a batch, in input order.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct BatchOutcome {
    pub records: Vec<RecordOutcome>,
}

/// How many relationship keys a batch resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ResolveStats {
    pub keys: usize,
    pub found: usize,
}

impl BatchOutcome {
    pub fn mapped(&self) -> impl Iterator<Item = &MappedRecord> {
        self.records.iter().filter_map(|r| match r {
            RecordOutcome::Mapped(m) => Some(m),
            _ => None,
        })
    }

    pub fn skipped(&self) -> impl Iterator<Item = &SkippedRecord> {
        self.records.iter().filter_map(|r| match r {
            RecordOutcome::Skipped(s) => Some(s),
            _ => None,
        })
    }

    pub fn errors(&self) -> impl Iterator<Item = &RecordError> {
        self.records.iter().flat_map(|r| match r {
            RecordOutcome::Failed { errors } => errors.as_slice(),
            _ => &[],
        })
    }

    /// Resolves every relationship of every mapped record with one call to `lookup`, and sets
    /// each target field: the internal id (`belongs_to`, `has_one`) or the list of the ids found
    /// (`has_many`, `many_to_many`). A key without a record leaves a single-valued field unset
    /// and is left out of a list; [`RelationshipRef::is_resolved`] tells which records have
    /// links to fill later. An `Err` means the lookup itself failed: retry the batch.
    pub async fn resolve_relationships<L: RelationshipLookup + ?Sized>(
        &mut self,
        lookup: &L,
    ) -> Result<ResolveStats, LookupError> {
        let keys: BTreeSet<&LookupKey> = self
            .mapped()
            .flat_map(|m| m.relationships.iter().flat_map(|r| r.keys.iter()))
            .collect();
        if keys.is_empty() {
            return Ok(ResolveStats::default());
        }
        let keys: Vec<LookupKey> = keys.into_iter().cloned().collect();
        let found = lookup.resolve(&keys).await?;
        let stats = ResolveStats {
            keys: keys.len(),
            found: keys.iter().filter(|k| found.contains_key(*k)).count(),
        };
        for record in &mut self.records {
            let RecordOutcome::Mapped(mapped) = record else {
                continue;
            };
            if mapped.relationships.is_empty() {
                continue;
            }
            let mut data = mapped.data.to_map();
            for relationship in &mut mapped.relationships {
                relationship.internal_ids = relationship
                    .keys
                    .iter()
                    .map(|key| found.get(key).cloned())
                    .collect();
                let many = matches!(
                    relationship.relationship_type,
                    hub_core::model::RelationshipType::HasMany
                        | hub_core::model::RelationshipType::ManyToMany
                );
                if many {
                    let ids = relationship
                        .internal_ids
                        .iter()
                        .flatten()
                        .map(|id| Value::String(id.clone()))
                        .collect();
                    data.insert(relationship.target_field.clone(), Value::Array(ids));
                } else if let Some(Some(id)) = relationship.internal_ids.first() {
                    data.insert(relationship.target_field.clone(), Value::String(id.clone()));
                }
            }
            // Serialising a map of JSON values does not fail; were it to, the entity would
            // stay as mapped, without its links.
            if let Ok(entity) = EntityJson::from_map(&data) {
                mapped.payload_hash = payload_hash(entity.as_str());
                mapped.data = entity;
            }
        }
        Ok(stats)
    }

    /// The write queue's items and errors (skipped records are in neither).
    pub fn into_write_parts(self, lineage: &Lineage) -> (Vec<WriteItem>, Vec<RecordError>) {
        let mut items = Vec::new();
        let mut errors = Vec::new();
        for record in self.records {
            match record {
                RecordOutcome::Mapped(m) => items.push(m.into_write_item(lineage)),
                RecordOutcome::Failed { errors: e } => errors.extend(e),
                RecordOutcome::Skipped(_) => {}
            }
        }
        (items, errors)
    }
}
