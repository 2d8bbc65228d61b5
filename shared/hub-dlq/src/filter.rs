//! What a dead message looks like to an operator, and which ones a command selects.

use std::time::Duration;

use chrono::{DateTime, Utc};
use hub_core::ports::ReceivedMessage;
use hub_runtime::{EnvelopeIds, FailureNote};
use serde::Serialize;
use serde_json::Value;

use crate::{DlqError, REPLAYS_ATTRIBUTE};

/// A message of a DLQ, with what is known about why it is there.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DlqMessage {
    /// The DLQ (`transform-dlq`).
    pub queue: String,
    /// Where a replay sends it (`transform`).
    pub source_queue: String,
    pub message_id: String,
    /// When it was first sent to the source queue (SQS keeps this through the move).
    pub sent_at: DateTime<Utc>,
    /// Receives on the source queue plus receives in the DLQ (every listing is one).
    pub receive_count: u32,
    /// How many times it was replayed before ([`REPLAYS_ATTRIBUTE`]).
    pub replays: u32,
    #[serde(flatten)]
    pub ids: EnvelopeIds,
    /// The last failure on the source queue; `None` when no note was found.
    pub failure: Option<FailureReason>,
    /// Body size in bytes.
    pub size: usize,
    /// The body (JSON when it parses, else the text); only `show` includes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
}

/// Why the message failed last, from its failure note.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FailureReason {
    pub code: String,
    pub message: String,
    pub retryable: bool,
    /// The receive count of that failed delivery on the source queue.
    pub receive_count: u32,
    pub failed_at: DateTime<Utc>,
}

impl From<FailureNote> for FailureReason {
    fn from(note: FailureNote) -> Self {
        Self {
            code: note.code,
            message: note.message,
            retryable: note.retryable,
            receive_count: note.receive_count,
            failed_at: note.failed_at,
        }
    }
}

impl DlqMessage {
    pub(crate) fn new(
        dlq: &str,
        source: &str,
        received: &ReceivedMessage,
        note: Option<FailureNote>,
        with_body: bool,
    ) -> Self {
        let body = with_body.then(|| {
            serde_json::from_str(&received.body)
                .unwrap_or_else(|_| Value::String(received.body.clone()))
        });
        Self {
            queue: dlq.to_owned(),
            source_queue: source.to_owned(),
            message_id: received.message_id.clone(),
            sent_at: received.sent_at,
            receive_count: received.receive_count,
            replays: replays_of(received),
            ids: EnvelopeIds::of_body(&received.body),
            failure: note.map(FailureReason::from),
            size: received.body.len(),
            body,
        }
    }

    /// How long ago it was first sent.
    pub fn age(&self, now: DateTime<Utc>) -> Duration {
        (now - self.sent_at).to_std().unwrap_or(Duration::ZERO)
    }
}

/// The replay counter of a message; a missing or garbled one counts as 0.
pub(crate) fn replays_of(message: &ReceivedMessage) -> u32 {
    message
        .attributes
        .get(REPLAYS_ATTRIBUTE)
        .and_then(|count| count.parse().ok())
        .unwrap_or(0)
}

/// Which dead messages a command applies to: every given criterion must hold (an empty filter
/// selects everything).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Only these messages (empty: any).
    pub message_ids: Vec<String>,
    pub tenant_id: Option<String>,
    pub task_id: Option<String>,
    /// Only messages of this run (sync execution).
    pub execution_id: Option<String>,
    /// The failure note's code.
    pub error_code: Option<String>,
    /// The failure note's retryable flag.
    pub retryable: Option<bool>,
    /// First sent at least this long ago.
    pub older_than: Option<Duration>,
    /// First sent at most this long ago.
    pub newer_than: Option<Duration>,
    /// Only messages replayed fewer times than this.
    pub max_replays: Option<u32>,
}

impl Filter {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    pub fn matches(&self, message: &DlqMessage, now: DateTime<Utc>) -> bool {
        let age = message.age(now);
        let failure = message.failure.as_ref();
        (self.message_ids.is_empty() || self.message_ids.contains(&message.message_id))
            && same(&self.tenant_id, &message.ids.tenant_id)
            && same(&self.task_id, &message.ids.task_id)
            && same(&self.execution_id, &message.ids.execution_id)
            && self
                .error_code
                .as_ref()
                .is_none_or(|code| failure.is_some_and(|f| &f.code == code))
            && self
                .retryable
                .is_none_or(|retryable| failure.is_some_and(|f| f.retryable == retryable))
            && self.older_than.is_none_or(|min| age >= min)
            && self.newer_than.is_none_or(|max| age <= max)
            && self.max_replays.is_none_or(|max| message.replays < max)
    }

    /// Rejects a filter that can select nothing by construction (a typo more likely than
    /// intent).
    pub fn validate(&self) -> Result<(), DlqError> {
        if let (Some(older), Some(newer)) = (self.older_than, self.newer_than)
            && older > newer
        {
            return Err(DlqError::InvalidRequest(format!(
                "older than {} and newer than {} selects nothing",
                format_age(older),
                format_age(newer)
            )));
        }
        if self.max_replays == Some(0) {
            return Err(DlqError::InvalidRequest(
                "max replays 0 selects nothing: messages replayed fewer than 0 times".into(),
            ));
        }
        let blank = |value: &Option<String>| value.as_deref().is_some_and(str::is_empty);
        if blank(&self.tenant_id)
            || blank(&self.task_id)
            || blank(&self.execution_id)
            || blank(&self.error_code)
        {
            return Err(DlqError::InvalidRequest(
                "a tenant, task, execution or error code filter must not be empty".into(),
            ));
        }
        Ok(())
    }
}

fn same(wanted: &Option<String>, actual: &Option<String>) -> bool {
    wanted.as_ref().is_none_or(|w| actual.as_ref() == Some(w))
}

/// Parses an age such as `90s`, `15m`, `2h`, `3d` or `1h30m` (a bare number is seconds).
pub fn parse_age(text: &str) -> Result<Duration, DlqError> {
    let invalid = || {
        DlqError::InvalidRequest(format!(
            "`{text}` is not an age: use a number with s, m, h or d, e.g. 90s, 15m, 2h, 1h30m"
        ))
    };
    let text = text.trim();
    if text.is_empty() {
        return Err(invalid());
    }
    if let Ok(seconds) = text.parse::<u64>() {
        return Ok(Duration::from_secs(seconds));
    }
    let mut total: u64 = 0;
    let mut digits = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return Err(invalid()),
        };
        let value: u64 = digits.parse().map_err(|_| invalid())?;
        digits.clear();
        total = value
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(invalid)?;
    }
    if !digits.is_empty() {
        return Err(invalid());
    }
    Ok(Duration::from_secs(total))
}

/// A short age for tables: `45s`, `12m`, `3h05m`, `2d04h`.
pub fn format_age(age: Duration) -> String {
    let s = age.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86_400 => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d{:02}h", s / 86_400, (s % 86_400) / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().to_utc()
    }

    fn message(replays: Option<&str>, note: Option<FailureNote>) -> DlqMessage {
        let mut attributes = BTreeMap::new();
        if let Some(replays) = replays {
            attributes.insert(REPLAYS_ATTRIBUTE.to_owned(), replays.to_owned());
        }
        let received = ReceivedMessage {
            message_id: "m1".into(),
            receipt_handle: "r".into(),
            body: r#"{"tenantId":"acme","taskId":"contacts"}"#.into(),
            receive_count: 6,
            sent_at: at("2025-01-01T10:00:00Z"),
            attributes,
        };
        DlqMessage::new("transform-dlq", "transform", &received, note, false)
    }

    fn note(code: &str, retryable: bool) -> FailureNote {
        FailureNote {
            queue: "transform".into(),
            message_id: "m1".into(),
            code: code.into(),
            message: "why".into(),
            retryable,
            receive_count: 5,
            ids: EnvelopeIds::default(),
            failed_at: at("2025-01-01T10:05:00Z"),
        }
    }

    #[test]
    fn every_criterion_must_hold() {
        let now = at("2025-01-01T12:00:00Z");
        let m = message(Some("1"), Some(note("schema_not_found", false)));
        assert!(Filter::default().matches(&m, now));
        let tenant = |t: &str| Filter {
            tenant_id: Some(t.into()),
            ..Filter::default()
        };
        assert!(tenant("acme").matches(&m, now));
        assert!(!tenant("beta").matches(&m, now));
        let code = Filter {
            error_code: Some("schema_not_found".into()),
            retryable: Some(false),
            task_id: Some("contacts".into()),
            ..Filter::default()
        };
        assert!(code.matches(&m, now));
        let retryable = Filter {
            retryable: Some(true),
            ..Filter::default()
        };
        assert!(!retryable.matches(&m, now));
        let aged = |older: u64, newer: u64| Filter {
            older_than: Some(Duration::from_secs(older)),
            newer_than: Some(Duration::from_secs(newer)),
            ..Filter::default()
        };
        assert!(aged(3600, 7200).matches(&m, now), "sent 2 h ago");
        assert!(!aged(7201, 9000).matches(&m, now));
        assert!(!aged(0, 7199).matches(&m, now));
        let replays = |max| Filter {
            max_replays: Some(max),
            ..Filter::default()
        };
        assert!(replays(2).matches(&m, now));
        assert!(!replays(1).matches(&m, now));
        let ids = Filter {
            message_ids: vec!["m2".into()],
            ..Filter::default()
        };
        assert!(!ids.matches(&m, now));
    }

    #[test]
    fn a_message_without_a_note_matches_no_reason_filter() {
        let now = at("2025-01-01T12:00:00Z");
        let m = message(Some("garbled"), None);
        assert_eq!(m.replays, 0);
        for filter in [
            Filter {
                error_code: Some("schema_not_found".into()),
                ..Filter::default()
            },
            Filter {
                retryable: Some(false),
                ..Filter::default()
            },
        ] {
            assert!(!filter.matches(&m, now), "{filter:?}");
        }
    }

    #[test]
    fn filters_that_select_nothing_by_construction_are_refused() {
        let bad = [
            Filter {
                older_than: Some(Duration::from_secs(60)),
                newer_than: Some(Duration::from_secs(30)),
                ..Filter::default()
            },
            Filter {
                max_replays: Some(0),
                ..Filter::default()
            },
            Filter {
                tenant_id: Some(String::new()),
                ..Filter::default()
            },
        ];
        for filter in bad {
            let error = filter.validate().unwrap_err();
            assert_eq!(error.code(), "invalid_request");
        }
        assert!(Filter::default().validate().is_ok());
    }

    #[test]
    fn ages_parse_and_print() {
        assert_eq!(parse_age("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_age("15m").unwrap(), Duration::from_secs(900));
        assert_eq!(parse_age("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_age("2d").unwrap(), Duration::from_secs(172_800));
        for bad in ["", "h", "10x", "5m3", "-1h", "99999999999999999999d"] {
            assert!(parse_age(bad).is_err(), "{bad}");
        }
        assert_eq!(format_age(Duration::from_secs(45)), "45s");
        assert_eq!(format_age(Duration::from_secs(720)), "12m");
        assert_eq!(format_age(Duration::from_secs(3600 * 3 + 300)), "3h05m");
        assert_eq!(
            format_age(Duration::from_secs(86_400 * 2 + 4 * 3600)),
            "2d04h"
        );
    }
}
