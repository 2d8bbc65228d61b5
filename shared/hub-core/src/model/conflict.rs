//! Conflicts of bidirectional syncs and how they are resolved.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{JsonPath, ModelError, Validate};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConflictResolutionStrategy {
    /// The most recently modified side wins.
    NewestWins,
    /// The external system always wins.
    SourceWins,
    /// The hub's record always wins.
    TargetWins,
    /// A conflict record waits for a person.
    Manual,
    /// Non-conflicting fields are merged; conflicting ones fall back to `manual`.
    Merge,
}

impl ConflictResolutionStrategy {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NewestWins => "newest_wins",
            Self::SourceWins => "source_wins",
            Self::TargetWins => "target_wins",
            Self::Manual => "manual",
            Self::Merge => "merge",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SyncConflict {
    pub id: String,
    pub sync_execution_id: String,
    pub external_id: String,
    /// The hub record in conflict.
    pub shard_id: String,
    pub external_data: Map<String, Value>,
    pub local_data: Map<String, Value>,
    pub conflicting_fields: Vec<ConflictingField>,
    pub status: ConflictStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution: Option<ConflictResolution>,
    pub created_at: DateTime<Utc>,
}

impl Validate for SyncConflict {
    fn validate_at(&self, at: &JsonPath) -> Result<(), ModelError> {
        at.key("id").non_empty(&self.id)?;
        at.key("externalId").non_empty(&self.external_id)?;
        at.key("shardId").non_empty(&self.shard_id)?;
        if self.conflicting_fields.is_empty() {
            return Err(at
                .key("conflictingFields")
                .invalid("a conflict has at least one conflicting field"));
        }
        match (self.status, &self.resolution) {
            (ConflictStatus::Resolved, None) => Err(at
                .key("resolution")
                .invalid("required when status is `resolved`")),
            (ConflictStatus::Pending, Some(_)) => Err(at
                .key("resolution")
                .invalid("not allowed while status is `pending`")),
            _ => Ok(()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConflictingField {
    pub field: String,
    pub external_value: Value,
    pub local_value: Value,
    pub external_modified_at: DateTime<Utc>,
    pub local_modified_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConflictStatus {
    Pending,
    Resolved,
    Ignored,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConflictResolution {
    pub strategy: ConflictResolutionStrategy,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<DateTime<Utc>>,
    pub final_data: Map<String, Value>,
}
