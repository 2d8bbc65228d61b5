//! `Queue`: a message queue with the semantics of an SQS standard queue.
//!
//! Pinned behaviours (checked by the contract suite on both backends):
//! - a received message is invisible for the visibility timeout, then visible again with its
//!   receive count one higher; `delete` with the receipt handle of the latest receive removes it;
//! - a message received `max_receive_count` times is moved to the dead-letter queue, with its
//!   id, body and attributes, on the next receive attempt instead of being delivered;
//! - `delay` keeps a message invisible for that long after sending (at most 15 minutes);
//! - bodies are at most 256 KiB, a batch at most 10 entries and 256 KiB in all;
//! - a message is delivered at least once; order is not guaranteed.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;
pub const MAX_BATCH_ENTRIES: usize = 10;
pub const MAX_DELAY: Duration = Duration::from_secs(900);
pub const MAX_WAIT: Duration = Duration::from_secs(20);
pub const MAX_VISIBILITY: Duration = Duration::from_secs(12 * 60 * 60);

/// How a queue is created (by the local host's bootstrap, or by `template.yaml` on AWS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueSpec {
    /// Logical name: `fetch`, `transform`, `write`, or `<name>-dlq`.
    pub logical_name: String,
    pub visibility_timeout: Duration,
    pub retention: Duration,
    /// Logical name of the dead-letter queue and the receives after which messages move there.
    pub redrive: Option<(String, u32)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OutgoingMessage {
    pub body: String,
    pub delay: Duration,
    /// String message attributes (trace header, idempotency key, ...).
    pub attributes: BTreeMap<String, String>,
}

impl OutgoingMessage {
    pub fn new(body: impl Into<String>) -> Self {
        Self {
            body: body.into(),
            ..Self::default()
        }
    }

    pub fn delayed(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    pub fn attribute(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.attributes.insert(name.into(), value.into());
        self
    }

    /// Rejects what SQS would reject, before anything is sent.
    pub fn validate(&self) -> Result<(), QueueError> {
        if self.body.is_empty() {
            return Err(QueueError::Invalid(
                "a message body must not be empty".into(),
            ));
        }
        let size = self.size();
        if size > MAX_MESSAGE_BYTES {
            return Err(QueueError::TooLarge {
                size,
                limit: MAX_MESSAGE_BYTES,
            });
        }
        if self.delay > MAX_DELAY {
            return Err(QueueError::Invalid(format!(
                "a delay of {}s exceeds the 900s limit",
                self.delay.as_secs()
            )));
        }
        if self.attributes.len() > 10 {
            return Err(QueueError::Invalid("at most 10 message attributes".into()));
        }
        Ok(())
    }

    /// Size as SQS counts it: body plus attribute names, type names and values.
    pub fn size(&self) -> usize {
        self.body.len()
            + self
                .attributes
                .iter()
                .map(|(k, v)| k.len() + "String".len() + v.len())
                .sum::<usize>()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceiveOptions {
    /// 1..=10.
    pub max_messages: usize,
    /// Long-poll for up to this long (at most 20 s) when nothing is visible.
    pub wait: Duration,
    /// Overrides the queue's visibility timeout for these messages.
    pub visibility_timeout: Option<Duration>,
}

impl Default for ReceiveOptions {
    fn default() -> Self {
        Self {
            max_messages: MAX_BATCH_ENTRIES,
            wait: Duration::ZERO,
            visibility_timeout: None,
        }
    }
}

impl ReceiveOptions {
    pub fn validate(&self) -> Result<(), QueueError> {
        if !(1..=MAX_BATCH_ENTRIES).contains(&self.max_messages) {
            return Err(QueueError::Invalid(
                "receive 1 to 10 messages at a time".into(),
            ));
        }
        if self.wait > MAX_WAIT {
            return Err(QueueError::Invalid("a long poll waits at most 20 s".into()));
        }
        if self.visibility_timeout.is_some_and(|v| v > MAX_VISIBILITY) {
            return Err(QueueError::Invalid(
                "visibility timeout is at most 12 hours".into(),
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMessage {
    pub message_id: String,
    /// Identifies this receive. Use the latest one: what an earlier one does is unspecified
    /// (SQS may accept it).
    pub receipt_handle: String,
    pub body: String,
    /// 1 on the first delivery.
    pub receive_count: u32,
    pub sent_at: DateTime<Utc>,
    pub attributes: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueDepth {
    pub visible: u64,
    pub in_flight: u64,
    pub delayed: u64,
}

/// The result of one entry of a batch send.
pub type SendOutcome = Result<String, QueueError>;

/// A batch request (send or delete) holds 1 to [`MAX_BATCH_ENTRIES`] entries.
pub fn check_batch_entries(entries: usize) -> Result<(), QueueError> {
    if (1..=MAX_BATCH_ENTRIES).contains(&entries) {
        Ok(())
    } else {
        Err(QueueError::Invalid(format!(
            "a batch holds 1 to {MAX_BATCH_ENTRIES} entries, not {entries}"
        )))
    }
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum QueueError {
    #[error("no queue named `{0}`")]
    UnknownQueue(String),
    #[error("message of {size} bytes exceeds the {limit}-byte limit")]
    TooLarge { size: usize, limit: usize },
    #[error("invalid request: {0}")]
    Invalid(String),
    #[error("the receipt handle is not valid or the message is not in flight")]
    InvalidReceipt,
    #[error("the queue service is unavailable: {0}")]
    Unavailable(String),
}

impl QueueError {
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Unavailable(_) => true,
            Self::UnknownQueue(_)
            | Self::TooLarge { .. }
            | Self::Invalid(_)
            | Self::InvalidReceipt => false,
        }
    }
}

#[async_trait]
pub trait Queue: Send + Sync {
    /// The logical name (`fetch`, `fetch-dlq`, ...).
    fn name(&self) -> &str;

    /// Sends one message; returns its message id.
    async fn send(&self, message: OutgoingMessage) -> Result<String, QueueError>;

    /// Sends up to 10 messages; one outcome per entry, in order. An invalid entry fails alone.
    async fn send_batch(
        &self,
        messages: Vec<OutgoingMessage>,
    ) -> Result<Vec<SendOutcome>, QueueError>;

    async fn receive(&self, options: ReceiveOptions) -> Result<Vec<ReceivedMessage>, QueueError>;

    /// Deletes a received message. Deleting one that is already gone succeeds.
    async fn delete(&self, receipt_handle: &str) -> Result<(), QueueError>;

    /// Deletes up to 10 received messages in one request (SQS `DeleteMessageBatch`); one outcome
    /// per handle, in order, and a bad handle fails alone. The default deletes one by one;
    /// adapters override it so a consumer pays one round trip (or one commit) per batch.
    async fn delete_batch(
        &self,
        receipt_handles: &[String],
    ) -> Result<Vec<Result<(), QueueError>>, QueueError> {
        check_batch_entries(receipt_handles.len())?;
        let mut outcomes = Vec::with_capacity(receipt_handles.len());
        for receipt_handle in receipt_handles {
            outcomes.push(self.delete(receipt_handle).await);
        }
        Ok(outcomes)
    }

    /// Makes an in-flight message visible again after `timeout` (zero: now).
    async fn change_visibility(
        &self,
        receipt_handle: &str,
        timeout: Duration,
    ) -> Result<(), QueueError>;

    /// Approximate counts, as SQS reports them.
    async fn depth(&self) -> Result<QueueDepth, QueueError>;

    /// Deletes every message in the queue. SQS allows one purge per queue every 60 s; a second
    /// one within that window fails with a retryable `Unavailable`.
    async fn purge(&self) -> Result<(), QueueError>;
}
