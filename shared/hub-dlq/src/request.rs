//! The replayer function's input: a JSON replay request, or a scheduled event that replays
//! with the defaults from the environment.

use std::time::Duration;

use hub_core::ports::QueueRole;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{DlqError, Filter, ReplayOptions};

pub const DEFAULT_LIMIT: usize = 100;
pub const DEFAULT_RATE_PER_SECOND: f64 = 5.0;
/// A scheduled run replays a message at most this many times (then it waits for an operator).
pub const DEFAULT_SCHEDULED_MAX_REPLAYS: u32 = 3;

/// Queues a scheduled run replays: `fetch,transform,write` (the default) or a subset.
pub const ENV_QUEUES: &str = "HUB_DLQ_REPLAY_QUEUES";
/// Messages a scheduled run replays at most (default [`DEFAULT_LIMIT`]).
pub const ENV_LIMIT: &str = "HUB_DLQ_REPLAY_LIMIT";
/// Replays per second (default [`DEFAULT_RATE_PER_SECOND`]).
pub const ENV_RATE: &str = "HUB_DLQ_REPLAY_RATE";
/// A scheduled run leaves messages replayed this many times (default 3).
pub const ENV_MAX_REPLAYS: &str = "HUB_DLQ_REPLAY_MAX_REPLAYS";
/// `true` (the default): a scheduled run replays only failures the handler called retryable
/// (an outage that may be over); permanent ones need a fix first, then an operator's replay.
pub const ENV_RETRYABLE_ONLY: &str = "HUB_DLQ_REPLAY_RETRYABLE_ONLY";

/// `fetch`, `transform`, `write`, or the same with `-dlq`.
pub fn parse_queue(name: &str) -> Result<QueueRole, DlqError> {
    let trimmed = name.trim();
    let base = trimmed.strip_suffix("-dlq").unwrap_or(trimmed);
    QueueRole::ALL
        .into_iter()
        .find(|role| role.logical_name() == base)
        .ok_or_else(|| DlqError::UnknownQueue(name.to_owned()))
}

/// A comma-separated list of queues; empty (or `all`) means every queue.
pub fn parse_queues(list: &str) -> Result<Vec<QueueRole>, DlqError> {
    let list = list.trim();
    if list.is_empty() || list == "all" {
        return Ok(QueueRole::ALL.to_vec());
    }
    let mut roles = Vec::new();
    for name in list.split(',') {
        let role = parse_queue(name)?;
        if !roles.contains(&role) {
            roles.push(role);
        }
    }
    Ok(roles)
}

/// A replay request as the function receives it (JSON, camelCase). Unknown fields are refused:
/// a misspelt filter must not widen a replay to everything.
///
/// ```json
/// {"queue": "transform", "tenantId": "acme", "errorCode": "schema_not_found",
///  "limit": 50, "dryRun": true, "ratePerSecond": 2}
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReplayRequest {
    /// `fetch`, `transform` or `write` (with or without `-dlq`); absent: all three.
    #[serde(default)]
    pub queue: Option<String>,
    #[serde(default)]
    pub message_ids: Vec<String>,
    #[serde(default)]
    pub tenant_id: Option<String>,
    #[serde(default)]
    pub task_id: Option<String>,
    #[serde(default)]
    pub execution_id: Option<String>,
    #[serde(default)]
    pub error_code: Option<String>,
    #[serde(default)]
    pub retryable: Option<bool>,
    #[serde(default)]
    pub older_than_seconds: Option<u64>,
    #[serde(default)]
    pub newer_than_seconds: Option<u64>,
    #[serde(default)]
    pub max_replays: Option<u32>,
    /// Default [`DEFAULT_LIMIT`].
    #[serde(default)]
    pub limit: Option<usize>,
    #[serde(default)]
    pub dry_run: bool,
    /// Default [`DEFAULT_RATE_PER_SECOND`].
    #[serde(default)]
    pub rate_per_second: Option<f64>,
    /// Map replayed record batches with their task's current conversion schema (after a fix)
    /// instead of the version they name. Only transform-queue messages are re-mapped.
    #[serde(default)]
    pub remap: bool,
}

/// A request resolved into what [`crate::Dlq::replay`] takes.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplayInput {
    pub queues: Vec<QueueRole>,
    pub filter: Filter,
    pub options: ReplayOptions,
    /// From the schedule rather than a person.
    pub scheduled: bool,
}

impl ReplayRequest {
    pub fn resolve(&self) -> Result<ReplayInput, DlqError> {
        let queues = match &self.queue {
            Some(queue) => vec![parse_queue(queue)?],
            None => QueueRole::ALL.to_vec(),
        };
        let filter = Filter {
            message_ids: self.message_ids.clone(),
            tenant_id: self.tenant_id.clone(),
            task_id: self.task_id.clone(),
            execution_id: self.execution_id.clone(),
            error_code: self.error_code.clone(),
            retryable: self.retryable,
            older_than: self.older_than_seconds.map(Duration::from_secs),
            newer_than: self.newer_than_seconds.map(Duration::from_secs),
            max_replays: self.max_replays,
        };
        filter.validate()?;
        let options = ReplayOptions {
            limit: self.limit.unwrap_or(DEFAULT_LIMIT),
            dry_run: self.dry_run,
            rate_per_second: self.rate_per_second.unwrap_or(DEFAULT_RATE_PER_SECOND),
            remap: self.remap,
        };
        options.validate()?;
        Ok(ReplayInput {
            queues,
            filter,
            options,
            scheduled: false,
        })
    }
}

/// What a scheduled run replays, from the environment (see the `ENV_*` constants).
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduledDefaults {
    pub queues: Vec<QueueRole>,
    pub limit: usize,
    pub rate_per_second: f64,
    pub max_replays: u32,
    pub retryable_only: bool,
}

impl Default for ScheduledDefaults {
    fn default() -> Self {
        Self {
            queues: QueueRole::ALL.to_vec(),
            limit: DEFAULT_LIMIT,
            rate_per_second: DEFAULT_RATE_PER_SECOND,
            max_replays: DEFAULT_SCHEDULED_MAX_REPLAYS,
            retryable_only: true,
        }
    }
}

impl ScheduledDefaults {
    /// Reads the environment; a variable that is set but invalid is an error (a schedule that
    /// silently replays something else than configured is worse than one that does not start).
    pub fn from_env() -> Result<Self, DlqError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, DlqError> {
        let defaults = Self::default();
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let invalid = |name: &str, value: &str, what: &str| {
            DlqError::InvalidRequest(format!("{name}={value:?} is not {what}"))
        };
        let queues = match get(ENV_QUEUES) {
            Some(list) => parse_queues(&list)?,
            None => defaults.queues,
        };
        let limit = match get(ENV_LIMIT) {
            Some(v) => v
                .trim()
                .parse()
                .map_err(|_| invalid(ENV_LIMIT, &v, "a count"))?,
            None => defaults.limit,
        };
        let rate_per_second = match get(ENV_RATE) {
            Some(v) => v
                .trim()
                .parse()
                .map_err(|_| invalid(ENV_RATE, &v, "messages per second"))?,
            None => defaults.rate_per_second,
        };
        let max_replays = match get(ENV_MAX_REPLAYS) {
            Some(v) => v
                .trim()
                .parse()
                .map_err(|_| invalid(ENV_MAX_REPLAYS, &v, "a count"))?,
            None => defaults.max_replays,
        };
        let retryable_only = match get(ENV_RETRYABLE_ONLY).as_deref().map(str::trim) {
            Some("true" | "1" | "yes") => true,
            Some("false" | "0" | "no") => false,
            Some(other) => return Err(invalid(ENV_RETRYABLE_ONLY, other, "true or false")),
            None => defaults.retryable_only,
        };
        let resolved = Self {
            queues,
            limit,
            rate_per_second,
            max_replays,
            retryable_only,
        };
        resolved.input()?;
        Ok(resolved)
    }

    /// The replay a scheduled run makes.
    pub fn input(&self) -> Result<ReplayInput, DlqError> {
        let filter = Filter {
            retryable: self.retryable_only.then_some(true),
            max_replays: Some(self.max_replays),
            ..Filter::default()
        };
        filter.validate()?;
        let options = ReplayOptions {
            limit: self.limit,
            dry_run: false,
            rate_per_second: self.rate_per_second,
            // A schedule replays what an outage failed; re-mapping is an operator's decision.
            remap: false,
        };
        options.validate()?;
        Ok(ReplayInput {
            queues: self.queues.clone(),
            filter,
            options,
            scheduled: true,
        })
    }
}

impl ReplayInput {
    /// The function's input: an EventBridge scheduled event (`"detail-type": "Scheduled
    /// Event"`) replays with `defaults`; anything else must be a [`ReplayRequest`].
    pub fn from_event(event: &Value, defaults: &ScheduledDefaults) -> Result<Self, DlqError> {
        let scheduled = event.get("detail-type").and_then(Value::as_str) == Some("Scheduled Event")
            || event.get("source").and_then(Value::as_str) == Some("aws.events");
        if scheduled {
            return defaults.input();
        }
        let request: ReplayRequest = serde_json::from_value(event.clone())
            .map_err(|e| DlqError::InvalidRequest(format!("not a replay request: {e}")))?;
        request.resolve()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn queues_parse_with_or_without_the_dlq_suffix() {
        assert_eq!(parse_queue("transform").unwrap(), QueueRole::Transform);
        assert_eq!(parse_queue("write-dlq").unwrap(), QueueRole::Write);
        assert_eq!(parse_queue("nope").unwrap_err().code(), "unknown_queue");
        assert_eq!(parse_queues("").unwrap(), QueueRole::ALL.to_vec());
        assert_eq!(
            parse_queues("write, fetch,write").unwrap(),
            vec![QueueRole::Write, QueueRole::Fetch]
        );
    }

    #[test]
    fn a_request_resolves_with_defaults_and_refuses_unknown_fields() {
        let input = ReplayInput::from_event(
            &json!({"queue": "transform", "tenantId": "acme", "olderThanSeconds": 60, "dryRun": true}),
            &ScheduledDefaults::default(),
        )
        .unwrap();
        assert_eq!(input.queues, vec![QueueRole::Transform]);
        assert_eq!(input.filter.tenant_id.as_deref(), Some("acme"));
        assert_eq!(input.filter.older_than, Some(Duration::from_secs(60)));
        assert!(input.options.dry_run);
        assert_eq!(input.options.limit, DEFAULT_LIMIT);
        assert!(!input.scheduled);

        let typo = ReplayInput::from_event(
            &json!({"queue": "transform", "tenant": "acme"}),
            &ScheduledDefaults::default(),
        )
        .unwrap_err();
        assert_eq!(typo.code(), "invalid_request");
        assert!(typo.to_string().contains("tenant"), "{typo}");
        let bad_rate =
            ReplayInput::from_event(&json!({"ratePerSecond": -1}), &ScheduledDefaults::default());
        assert!(bad_rate.is_err());
    }

    #[test]
    fn the_sample_request_event_resolves() {
        let event: Value = serde_json::from_str(include_str!(
            "../../../events/dlq-replayer/replay-request.json"
        ))
        .unwrap();
        let input = ReplayInput::from_event(&event, &ScheduledDefaults::default()).unwrap();
        assert_eq!(input.queues, vec![QueueRole::Transform]);
        assert_eq!(input.filter.error_code.as_deref(), Some("schema_not_found"));
        assert_eq!(input.options.limit, 50);
        assert_eq!(input.options.rate_per_second, 2.0);
        assert!(input.options.dry_run);
    }

    #[test]
    fn a_scheduled_event_replays_retryable_failures_with_the_env_defaults() {
        let event: Value =
            serde_json::from_str(include_str!("../../../events/dlq-replayer/scheduled.json"))
                .unwrap();
        let env = |name: &str| match name {
            ENV_QUEUES => Some("transform,write".to_owned()),
            ENV_LIMIT => Some("20".to_owned()),
            ENV_RATE => Some("0.5".to_owned()),
            _ => None,
        };
        let defaults = ScheduledDefaults::from_lookup(env).unwrap();
        let input = ReplayInput::from_event(&event, &defaults).unwrap();
        assert!(input.scheduled);
        assert_eq!(input.queues, vec![QueueRole::Transform, QueueRole::Write]);
        assert_eq!(input.options.limit, 20);
        assert_eq!(input.options.rate_per_second, 0.5);
        assert_eq!(input.filter.retryable, Some(true));
        assert_eq!(input.filter.max_replays, Some(3));
        assert!(!input.options.dry_run);
    }

    #[test]
    fn invalid_environment_is_an_error_naming_the_variable() {
        for (name, value) in [
            (ENV_LIMIT, "many"),
            (ENV_RATE, "0"),
            (ENV_RETRYABLE_ONLY, "maybe"),
            (ENV_QUEUES, "fetch,nope"),
            (ENV_MAX_REPLAYS, "0"),
        ] {
            let error = ScheduledDefaults::from_lookup(|n| (n == name).then(|| value.to_owned()))
                .unwrap_err();
            assert!(
                matches!(error.code(), "invalid_request" | "unknown_queue"),
                "{name}: {error}"
            );
        }
        let all = ScheduledDefaults::from_lookup(|n| {
            (n == ENV_RETRYABLE_ONLY).then(|| "false".to_owned())
        })
        .unwrap();
        assert_eq!(all.input().unwrap().filter.retryable, None);
    }
}
