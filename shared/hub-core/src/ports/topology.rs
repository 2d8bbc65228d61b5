//! The queues, DLQs, tables and rules of a deployment, named once. The local host's bootstrap
//! creates exactly these; `template.yaml` declares the same on AWS (a test compares them).

use std::time::Duration;

use super::{QueueSpec, RuleSpec};

/// What a work queue is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueRole {
    Fetch,
    Transform,
    Write,
}

impl QueueRole {
    pub const ALL: [QueueRole; 3] = [Self::Fetch, Self::Transform, Self::Write];

    pub fn logical_name(self) -> &'static str {
        match self {
            Self::Fetch => "fetch",
            Self::Transform => "transform",
            Self::Write => "write",
        }
    }

    pub fn dlq_name(self) -> String {
        format!("{}-dlq", self.logical_name())
    }
}

/// Physical names are `<prefix>-<logical>`, so several stacks (or tests) share one account.
#[derive(Debug, Clone, PartialEq)]
pub struct Topology {
    pub prefix: String,
    pub queues: Vec<QueueSpec>,
    pub rules: Vec<RuleSpec>,
}

/// Receives before a message goes to its DLQ (as `maxReceiveCount` in `template.yaml`).
pub const MAX_RECEIVE_COUNT: u32 = 5;
/// 6 x a 30 s function timeout, as AWS recommends for SQS event sources.
pub const VISIBILITY_TIMEOUT: Duration = Duration::from_secs(180);
pub const RETENTION: Duration = Duration::from_secs(4 * 24 * 3600);
pub const DLQ_RETENTION: Duration = Duration::from_secs(14 * 24 * 3600);

impl Topology {
    pub fn new(prefix: impl Into<String>) -> Self {
        let mut queues = Vec::new();
        for role in QueueRole::ALL {
            queues.push(QueueSpec {
                logical_name: role.logical_name().to_owned(),
                visibility_timeout: VISIBILITY_TIMEOUT,
                retention: RETENTION,
                redrive: Some((role.dlq_name(), MAX_RECEIVE_COUNT)),
            });
            queues.push(QueueSpec {
                logical_name: role.dlq_name(),
                visibility_timeout: VISIBILITY_TIMEOUT,
                retention: DLQ_RETENTION,
                redrive: None,
            });
        }
        Self {
            prefix: prefix.into(),
            queues,
            rules: vec![webhooks_to_transform()],
        }
    }

    pub fn state_table(&self) -> String {
        format!("{}-state", self.prefix)
    }

    pub fn records_table(&self) -> String {
        format!("{}-records", self.prefix)
    }

    pub fn bus_name(&self) -> String {
        format!("{}-bus", self.prefix)
    }

    pub fn queue_name(&self, logical_name: &str) -> String {
        format!("{}-{logical_name}", self.prefix)
    }
}

/// Name of the rule that routes verified webhook deliveries to the transformer, which expands
/// each into the record batches of the integration's realtime tasks.
pub const WEBHOOKS_TO_TRANSFORM: &str = "webhooks-to-transform";

fn webhooks_to_transform() -> RuleSpec {
    RuleSpec {
        name: WEBHOOKS_TO_TRANSFORM.to_owned(),
        pattern: serde_json::json!({
            "source": [crate::messages::events::SOURCE_WEBHOOKS],
            "detail-type": [crate::messages::events::WEBHOOK_RECEIVED],
        }),
        target_queue: QueueRole::Transform.logical_name().to_owned(),
    }
}

impl Default for Topology {
    fn default() -> Self {
        Self::new("hub")
    }
}
