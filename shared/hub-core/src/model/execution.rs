//! Runs of sync tasks: progress, results, errors and logs.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::tagged::present;
use super::{JsonPath, ModelError, Validate};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SyncExecution {
    pub id: String,
    pub sync_task_id: String,
    pub tenant_integration_id: String,

    pub started_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,

    pub triggered_by: Trigger,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub triggered_by_user_id: Option<String>,

    pub status: ExecutionStatus,
    pub progress: SyncProgress,
    pub results: SyncResults,
    #[serde(default)]
    pub errors: Vec<SyncError>,

    #[serde(default)]
    pub retry_count: u32,
    /// The execution this one retries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_of: Option<String>,
}

impl Validate for SyncExecution {
    fn validate_at(&self, at: &JsonPath) -> Result<(), ModelError> {
        at.key("id").non_empty(&self.id)?;
        if let Some(completed_at) = self.completed_at
            && completed_at < self.started_at
        {
            return Err(at.key("completedAt").invalid("is before startedAt"));
        }
        if self.status == ExecutionStatus::Running && self.completed_at.is_some() {
            return Err(at
                .key("completedAt")
                .invalid("a running execution has not completed"));
        }
        if self.triggered_by == Trigger::Retry && self.retry_of.is_none() {
            return Err(at
                .key("retryOf")
                .invalid("required when triggeredBy is `retry`"));
        }
        self.progress.validate_at(&at.key("progress"))
    }
}

/// What started a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    Schedule,
    Manual,
    Webhook,
    Retry,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExecutionStatus {
    Running,
    Success,
    Partial,
    Failed,
    Cancelled,
}

impl ExecutionStatus {
    pub fn is_finished(self) -> bool {
        !matches!(self, Self::Running)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SyncProgress {
    pub phase: ExecutionPhase,
    /// Known once the source reports a total.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_records: Option<u64>,
    pub processed_records: u64,
    /// 0 to 100.
    pub percentage: u8,
}

impl Validate for SyncProgress {
    fn validate_at(&self, at: &JsonPath) -> Result<(), ModelError> {
        if self.percentage > 100 {
            return Err(at.key("percentage").invalid("must be between 0 and 100"));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExecutionPhase {
    Fetching,
    Transforming,
    Saving,
    Complete,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SyncResults {
    pub fetched: u64,
    pub created: u64,
    pub updated: u64,
    pub skipped: u64,
    pub failed: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SyncError {
    pub timestamp: DateTime<Utc>,
    /// `fetching`, `transforming`, `saving`, or a connector-specific step.
    pub phase: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    pub error: String,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub details: Option<Value>,
    /// Whether a retry may succeed.
    pub recoverable: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SyncLog {
    pub id: String,
    pub sync_execution_id: String,
    pub timestamp: DateTime<Utc>,
    pub level: LogLevel,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Map<String, Value>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
}

impl Validate for SyncLog {
    fn validate_at(&self, _at: &JsonPath) -> Result<(), ModelError> {
        Ok(())
    }
}
