//! Sync tasks: what to sync, in which direction, on which schedule, with which retry and
//! notification policy, and the statistics of past runs.

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use super::integration::check_url;
use super::tagged::{Tagged, expect_no_fields, present, tagged_deserialize};
use super::{
    ConflictResolutionStrategy, CronExpression, IntervalCount, JsonPath, ModelError, SyncDirection,
    TimeZoneName, Validate, VerificationToken,
};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SyncTask {
    pub id: String,
    /// Set by the server when the task is stored under a tenant integration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_integration_id: Option<String>,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,

    pub conversion_schema_id: String,
    pub direction: SyncDirection,
    pub schedule: SyncSchedule,
    pub config: SyncTaskConfig,
    pub status: SyncTaskStatus,

    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run_status: Option<RunStatus>,
    /// The next due occurrence; what the trigger's due index is keyed on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_run_at: Option<DateTime<Utc>>,

    #[serde(default, skip_serializing_if = "SyncStats::is_empty")]
    pub stats: SyncStats,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<TaskError>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_config: Option<RetryConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notifications: Option<Notifications>,

    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<DateTime<Utc>>,
}

impl SyncTask {
    pub fn retry_config(&self) -> RetryConfig {
        self.retry_config.clone().unwrap_or_default()
    }

    pub fn notifications(&self) -> Notifications {
        self.notifications.clone().unwrap_or_default()
    }
}

impl Validate for SyncTask {
    fn validate_at(&self, at: &JsonPath) -> Result<(), ModelError> {
        at.key("id").non_empty(&self.id)?;
        at.key("name").non_empty(&self.name)?;
        at.key("conversionSchemaId")
            .non_empty(&self.conversion_schema_id)?;
        self.schedule.validate_at(&at.key("schedule"))?;
        self.config.validate_at(&at.key("config"))?;
        if self.config.conflict_resolution.is_some() && self.direction == SyncDirection::Pull {
            return Err(at
                .key("config")
                .key("conflictResolution")
                .invalid("only applies to tasks that push (`push` or `bidirectional`)"));
        }
        self.notifications.validate_at(&at.key("notifications"))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncTaskStatus {
    Active,
    Paused,
    Error,
    Disabled,
}

/// The outcome of a finished run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Success,
    Partial,
    Failed,
}

/// The specification writes the schedule's type twice, outside and inside `config`; both are
/// kept for round-trips and `Validate` checks that they agree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SyncSchedule {
    #[serde(rename = "type")]
    pub schedule_type: ScheduleType,
    pub config: ScheduleConfig,
}

impl SyncSchedule {
    pub fn new(config: ScheduleConfig) -> Self {
        Self {
            schedule_type: config.schedule_type(),
            config,
        }
    }
}

impl Validate for SyncSchedule {
    fn validate_at(&self, at: &JsonPath) -> Result<(), ModelError> {
        let inner = self.config.schedule_type();
        if self.schedule_type != inner {
            return Err(at.key("type").invalid(format!(
                "`{}` does not match config.type `{}`",
                self.schedule_type.as_str(),
                inner.as_str()
            )));
        }
        self.config.validate_at(&at.key("config"))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScheduleType {
    Manual,
    Interval,
    Cron,
    Realtime,
}

impl ScheduleType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Manual => "manual",
            Self::Interval => "interval",
            Self::Cron => "cron",
            Self::Realtime => "realtime",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ScheduleConfig {
    /// Runs only when triggered by hand (never due).
    Manual(ManualSchedule),
    Interval(IntervalSchedule),
    Cron(CronSchedule),
    /// Driven by webhooks.
    Realtime(RealtimeSchedule),
}

impl ScheduleConfig {
    pub fn schedule_type(&self) -> ScheduleType {
        match self {
            Self::Manual(_) => ScheduleType::Manual,
            Self::Interval(_) => ScheduleType::Interval,
            Self::Cron(_) => ScheduleType::Cron,
            Self::Realtime(_) => ScheduleType::Realtime,
        }
    }
}

impl Tagged for ScheduleConfig {
    const TAG: &'static str = "type";
    const EXPECTING: &'static str = "a schedule config object with a `type`";
    type Kind = ScheduleType;

    fn from_variant<'de, D: Deserializer<'de>>(
        kind: ScheduleType,
        rest: D,
    ) -> Result<Self, D::Error> {
        Ok(match kind {
            ScheduleType::Manual => {
                expect_no_fields(rest)?;
                Self::Manual(ManualSchedule)
            }
            ScheduleType::Interval => Self::Interval(Deserialize::deserialize(rest)?),
            ScheduleType::Cron => Self::Cron(Deserialize::deserialize(rest)?),
            ScheduleType::Realtime => Self::Realtime(Deserialize::deserialize(rest)?),
        })
    }
}
tagged_deserialize!(ScheduleConfig);

impl Validate for ScheduleConfig {
    fn validate_at(&self, at: &JsonPath) -> Result<(), ModelError> {
        match self {
            Self::Manual(_) | Self::Interval(_) | Self::Cron(_) => Ok(()),
            Self::Realtime(realtime) => {
                check_url(&at.key("webhookUrl"), &realtime.webhook_url)?;
                match realtime.reconciliation.as_deref() {
                    None | Some(Self::Interval(_) | Self::Cron(_)) => Ok(()),
                    Some(Self::Manual(_) | Self::Realtime(_)) => Err(at
                        .key("reconciliation")
                        .invalid("a reconciliation schedule is `interval` or `cron`")),
                }
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct ManualSchedule;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IntervalSchedule {
    pub interval: IntervalCount,
    pub unit: IntervalUnit,
}

impl IntervalSchedule {
    /// The time between two runs.
    pub fn period(&self) -> TimeDelta {
        self.interval.times(self.unit.seconds())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IntervalUnit {
    Minutes,
    Hours,
    Days,
    Weeks,
}

impl IntervalUnit {
    pub fn seconds(self) -> i64 {
        match self {
            Self::Minutes => 60,
            Self::Hours => 3_600,
            Self::Days => 86_400,
            Self::Weeks => 604_800,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CronSchedule {
    pub expression: CronExpression,
    /// The zone the expression's wall-clock times are read in (DST included).
    pub timezone: TimeZoneName,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RealtimeSchedule {
    /// The endpoint the SaaS system delivers to.
    pub webhook_url: String,
    pub verification_token: VerificationToken,
    /// Not in the specification: an optional interval or cron schedule that pulls anyway, to
    /// catch deliveries the SaaS system dropped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reconciliation: Option<Box<ScheduleConfig>>,
}

/// Task-specific settings. The keys the pipeline reads are typed; the connector's own query
/// parameters and the values schemas read as `{{task.<name>}}` stay in `params`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncTaskConfig {
    /// Fetch only records modified since the last committed cursor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incremental_sync: Option<bool>,
    /// The source field incremental syncs filter on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified_since_field: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conflict_resolution: Option<ConflictResolutionStrategy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push_changes_from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_changes_from: Option<String>,
    #[serde(flatten)]
    pub params: Map<String, Value>,
}

impl SyncTaskConfig {
    pub fn incremental_sync(&self) -> bool {
        self.incremental_sync.unwrap_or(false)
    }

    /// A config value by its wire name, typed keys included (for `{{task.<name>}}`).
    pub fn get(&self, name: &str) -> Option<Value> {
        let text = |value: &Option<String>| value.clone().map(Value::String);
        match name {
            "incrementalSync" => self.incremental_sync.map(Value::Bool),
            "modifiedSinceField" => text(&self.modified_since_field),
            "conflictResolution" => self
                .conflict_resolution
                .map(|s| Value::String(s.as_str().to_owned())),
            "pushChangesFrom" => text(&self.push_changes_from),
            "pullChangesFrom" => text(&self.pull_changes_from),
            _ => self.params.get(name).cloned(),
        }
    }
}

impl Validate for SyncTaskConfig {
    fn validate_at(&self, at: &JsonPath) -> Result<(), ModelError> {
        if let Some(field) = &self.modified_since_field {
            at.key("modifiedSinceField").non_empty(field)?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SyncStats {
    pub total_runs: u64,
    pub successful_runs: u64,
    pub failed_runs: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_success_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failure_at: Option<DateTime<Utc>>,
    pub records_processed: u64,
    pub records_created: u64,
    pub records_updated: u64,
    pub records_skipped: u64,
    pub records_failed: u64,
}

impl SyncStats {
    /// A task that never ran; such stats are left out of the document.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TaskError {
    pub message: String,
    pub timestamp: DateTime<Utc>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub details: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RetryConfig {
    pub max_retries: u32,
    pub retry_delay_seconds: u32,
    pub exponential_backoff: bool,
}

impl Default for RetryConfig {
    /// What a task without a retry config gets: three retries, from a minute, backing off.
    fn default() -> Self {
        Self {
            max_retries: 3,
            retry_delay_seconds: 60,
            exponential_backoff: true,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Notifications {
    pub on_success: bool,
    pub on_failure: bool,
    pub on_partial: bool,
    /// User ids or e-mail addresses.
    pub recipients: Vec<String>,
}

impl Default for Notifications {
    /// Nobody to notify: nothing is sent.
    fn default() -> Self {
        Self {
            on_success: false,
            on_failure: true,
            on_partial: true,
            recipients: Vec::new(),
        }
    }
}

impl Validate for Notifications {
    fn validate_at(&self, at: &JsonPath) -> Result<(), ModelError> {
        let at = at.key("recipients");
        self.recipients
            .iter()
            .enumerate()
            .try_for_each(|(index, recipient)| at.index(index).non_empty(recipient))
    }
}
