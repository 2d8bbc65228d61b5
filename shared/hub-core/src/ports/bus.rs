//! `EventBus`: events with the semantics of an EventBridge bus, routed by rules to queues.
//!
//! Pinned behaviours: `put_events` accepts any number of events and sends them in chunks of 10;
//! an entry over 256 KiB fails alone and is reported in `FailedEntry`; every rule whose pattern
//! matches an event delivers the EventBridge envelope ([`BusEnvelope`]) as the body of a message
//! on the rule's target queue.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::json::RawJson;

pub const MAX_EVENTS_PER_PUT: usize = 10;
pub const MAX_EVENT_BYTES: usize = 256 * 1024;

#[derive(Debug, Clone, PartialEq)]
pub struct BusEvent {
    /// e.g. `hub.webhooks`, `hub.sync`.
    pub source: String,
    /// e.g. `webhook.received`, `sync.completed`.
    pub detail_type: String,
    /// As JSON text: adapters pass it on as it is (EventBridge takes a string).
    pub detail: RawJson,
    pub resources: Vec<String>,
    /// Defaults to the clock's now.
    pub time: Option<DateTime<Utc>>,
}

impl BusEvent {
    pub fn new(
        source: impl Into<String>,
        detail_type: impl Into<String>,
        detail: impl Into<RawJson>,
    ) -> Self {
        Self {
            source: source.into(),
            detail_type: detail_type.into(),
            detail: detail.into(),
            resources: Vec::new(),
            time: None,
        }
    }

    /// Size as EventBridge counts it (source, detail-type, detail and resources).
    pub fn size(&self) -> usize {
        self.source.len()
            + self.detail_type.len()
            + self.detail.get().len()
            + self.resources.iter().map(String::len).sum::<usize>()
    }
}

/// The JSON document a rule delivers to its target queue, as EventBridge writes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BusEnvelope {
    pub version: String,
    pub id: String,
    #[serde(rename = "detail-type")]
    pub detail_type: String,
    pub source: String,
    pub account: String,
    pub time: DateTime<Utc>,
    pub region: String,
    #[serde(default)]
    pub resources: Vec<String>,
    /// As JSON text: a consumer parses it straight into the detail's own type.
    pub detail: RawJson,
}

/// A rule: an EventBridge event pattern and the logical name of the queue it delivers to.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleSpec {
    pub name: String,
    pub pattern: Value,
    pub target_queue: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedEntry {
    /// Index of the event in the `put_events` input.
    pub index: usize,
    pub code: String,
    pub message: String,
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum BusError {
    #[error("invalid request: {0}")]
    Invalid(String),
    #[error("the event bus is unavailable: {0}")]
    Unavailable(String),
}

impl BusError {
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Unavailable(_) => true,
            Self::Invalid(_) => false,
        }
    }
}

#[async_trait]
pub trait EventBus: Send + Sync {
    fn bus_name(&self) -> &str;

    /// Publishes events; returns the entries that failed (empty when all were accepted).
    /// Accepted events are durable when this returns.
    async fn put_events(&self, events: Vec<BusEvent>) -> Result<Vec<FailedEntry>, BusError>;

    /// Creates or replaces a rule (used by the bootstrap; `template.yaml` does it on AWS).
    async fn put_rule(&self, rule: RuleSpec) -> Result<(), BusError>;
}
