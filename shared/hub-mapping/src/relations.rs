//! Relationship mappings: the source record names a related record by its external id (or by a
//! field of it); the writer's records table knows the related record's internal id. Mapping a
//! batch collects every key; [`crate::BatchOutcome::resolve_relationships`] asks a
//! [`RelationshipLookup`] for all of them in one call and fills the target fields.

use std::collections::HashMap;

use async_trait::async_trait;
use hub_core::model::RelationshipType;
use serde::Serialize;

/// What identifies a related record.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LookupKey {
    /// The related record's entity type (`c_company`).
    pub shard_type: String,
    /// `None`: `value` is the related record's external id (from the same integration);
    /// otherwise the field of the related record that holds `value`.
    pub field: Option<String>,
    pub value: String,
}

/// The lookup failed as a whole (the store is unavailable): the batch should be retried, not
/// written without its relationships.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("relationship lookup failed: {message}")]
pub struct LookupError {
    pub message: String,
}

/// Finds internal record ids. An implementation is scoped to one tenant and one tenant
/// integration (the records table's partition and its external-id index).
#[async_trait]
pub trait RelationshipLookup: Send + Sync {
    /// The internal id of every key that names an existing record; keys without a record are
    /// simply absent from the answer. Called once per batch with distinct keys.
    async fn resolve(&self, keys: &[LookupKey]) -> Result<HashMap<LookupKey, String>, LookupError>;
}

/// A [`RelationshipLookup`] over a map, for tests and `hub schema test`.
#[derive(Debug, Clone, Default)]
pub struct InMemoryLookup {
    entries: HashMap<LookupKey, String>,
    calls: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl InMemoryLookup {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that `external_id` of `shard_type` is the internal record `internal_id`.
    pub fn insert(&mut self, shard_type: &str, external_id: &str, internal_id: &str) -> &mut Self {
        self.entries.insert(
            LookupKey {
                shard_type: shard_type.to_owned(),
                field: None,
                value: external_id.to_owned(),
            },
            internal_id.to_owned(),
        );
        self
    }

    /// Records that the record of `shard_type` whose `field` is `value` is `internal_id`.
    pub fn insert_by_field(
        &mut self,
        shard_type: &str,
        field: &str,
        value: &str,
        internal_id: &str,
    ) -> &mut Self {
        self.entries.insert(
            LookupKey {
                shard_type: shard_type.to_owned(),
                field: Some(field.to_owned()),
                value: value.to_owned(),
            },
            internal_id.to_owned(),
        );
        self
    }

    /// How many times `resolve` was called (batching is observable in tests).
    pub fn calls(&self) -> usize {
        self.calls.load(std::sync::atomic::Ordering::Relaxed)
    }
}

#[async_trait]
impl RelationshipLookup for InMemoryLookup {
    async fn resolve(&self, keys: &[LookupKey]) -> Result<HashMap<LookupKey, String>, LookupError> {
        self.calls
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(keys
            .iter()
            .filter_map(|key| self.entries.get(key).map(|id| (key.clone(), id.clone())))
            .collect())
    }
}

/// A relationship of one mapped record.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RelationshipRef {
    pub target_field: String,
    pub relationship_type: RelationshipType,
    /// The keys, in the order of the source value.
    pub keys: Vec<LookupKey>,
    /// After resolution: the internal id of each key, `None` where no record was found. Empty
    /// before.
    pub internal_ids: Vec<Option<String>>,
}

impl RelationshipRef {
    /// Every key was found.
    pub fn is_resolved(&self) -> bool {
        self.internal_ids.len() == self.keys.len() && self.internal_ids.iter().all(Option::is_some)
    }
}
