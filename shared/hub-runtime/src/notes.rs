//! Failure notes: why a message's last handling failed, kept in the state table because SQS
//! keeps no reason. The batch driver writes one whenever a handler fails a message (the latest
//! failure overwrites the previous one); the DLQ tooling (hub-dlq) finds the note of a dead
//! message by its queue and message id, which SQS keeps when it moves the message to the DLQ.
//!
//! A note is small (an error code, a sentence cut to [`MAX_NOTE_MESSAGE_CHARS`], the receive
//! count and the tenant, task and execution ids when the body names them; never the body) and
//! expires with the DLQ's retention. Writing it is best-effort: a note that cannot be written
//! is logged and changes nothing about the batch's outcome.
//!
//! A failure on a message's last allowed receive ([`MAX_RECEIVE_COUNT`]) means the queue moves
//! it to its DLQ at the next receive: the notes then also tell their [`DeadLetterSink`], if
//! they have one (hub-writer counts the message on its run, so a run whose batches die still
//! ends). A handler that never returns on that last receive (a crash, a Lambda timeout) tells
//! nobody; the note of its previous failure is all the DLQ tooling has.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use hub_core::keys;
use hub_core::ports::{
    Clock, DLQ_RETENTION, EXPIRES_AT, Item, MAX_BATCH_GET, MAX_RECEIVE_COUNT, PK, Ports, SK,
    StateStore, StoreError,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::batch::{HandlerError, QueueMessage};

/// The human sentence of a note is cut to this many characters: notes stay small, and a long
/// error text (a parser quoting its input) carries no more of the body than this.
pub const MAX_NOTE_MESSAGE_CHARS: usize = 500;

/// A note write that takes longer is abandoned, so a slow state table never holds up a batch.
pub const NOTE_WRITE_TIMEOUT: Duration = Duration::from_secs(2);

/// The `kind` attribute of a note item.
pub const NOTE_KIND: &str = "failureNote";

/// Ids longer than this are not taken from a body (ours are ULIDs and validated ids).
const MAX_ID_CHARS: usize = 128;

/// Why one message's last handling failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FailureNote {
    /// Logical name of the queue the message failed on (`fetch`, `transform`, `write`).
    pub queue: String,
    pub message_id: String,
    /// The handler's stable snake_case code.
    pub code: String,
    /// The handler's sentence, cut to [`MAX_NOTE_MESSAGE_CHARS`].
    pub message: String,
    /// False when the handler said redelivery cannot help.
    pub retryable: bool,
    /// The receive count of the failed delivery (1 on the first).
    pub receive_count: u32,
    #[serde(flatten)]
    pub ids: EnvelopeIds,
    pub failed_at: DateTime<Utc>,
}

impl FailureNote {
    /// The note of a failed delivery.
    pub fn new(
        queue: &str,
        message: &QueueMessage,
        error: &HandlerError,
        at: DateTime<Utc>,
    ) -> Self {
        Self {
            queue: queue.to_owned(),
            message_id: message.message_id.clone(),
            code: error.code.clone(),
            message: cut(&error.message, MAX_NOTE_MESSAGE_CHARS),
            retryable: error.retryable,
            receive_count: message.receive_count,
            ids: EnvelopeIds::of_body(&message.body),
            failed_at: at,
        }
    }

    /// The state-table item, expiring at `expires_at`.
    pub fn to_item(&self, expires_at: DateTime<Utc>) -> Item {
        let key = keys::failure_note(&self.queue, &self.message_id);
        let mut item = match serde_json::to_value(self) {
            Ok(Value::Object(map)) => map,
            // A struct of strings, numbers and a bool always serializes to an object.
            _ => Item::new(),
        };
        item.insert(PK.into(), key.pk.into());
        item.insert(SK.into(), key.sk.into());
        item.insert("kind".into(), NOTE_KIND.into());
        item.insert(EXPIRES_AT.into(), expires_at.timestamp().into());
        item
    }

    /// Reads a note item back; `None` for an item that is not a note.
    pub fn from_item(item: &Item) -> Option<Self> {
        if item.get("kind").and_then(Value::as_str) != Some(NOTE_KIND) {
            return None;
        }
        serde_json::from_value(Value::Object(item.clone())).ok()
    }
}

/// The tenant, task and execution a message body names, when it is one of the hub's envelopes
/// (SyncJob, RecordBatch, WriteBatch, or an EventBridge envelope whose detail names them).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvelopeIds {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_id: Option<String>,
}

impl EnvelopeIds {
    /// Reads the ids from the top level of a JSON body, then from an EventBridge `detail`; a
    /// write batch names its task only in `cursorCommit`. Anything else yields no ids.
    pub fn of_body(body: &str) -> Self {
        let Ok(Value::Object(root)) = serde_json::from_str::<Value>(body) else {
            return Self::default();
        };
        let detail = root.get("detail").and_then(Value::as_object);
        let pick = |name: &str| {
            let at = |object: Option<&serde_json::Map<String, Value>>| {
                object
                    .and_then(|o| o.get(name))
                    .and_then(Value::as_str)
                    .filter(|id| !id.is_empty() && id.chars().count() <= MAX_ID_CHARS)
                    .map(str::to_owned)
            };
            at(Some(&root)).or_else(|| at(detail))
        };
        let task_id = pick("taskId").or_else(|| {
            root.get("cursorCommit")
                .and_then(|c| c.get("taskId"))
                .and_then(Value::as_str)
                .filter(|id| !id.is_empty() && id.chars().count() <= MAX_ID_CHARS)
                .map(str::to_owned)
        });
        Self {
            tenant_id: pick("tenantId"),
            task_id,
            execution_id: pick("executionId"),
        }
    }
}

/// A dead letter accounting: told of every message whose last allowed delivery failed, with
/// its note and its body, once the note is written.
#[async_trait]
pub trait DeadLetterSink: Send + Sync {
    /// Best-effort like the note: errors are the sink's to log.
    async fn dead_lettered(&self, note: &FailureNote, body: &str);
}

/// How long a dead-letter sink may take before it is abandoned (it writes a few items).
pub const DEAD_LETTER_SINK_TIMEOUT: Duration = Duration::from_secs(20);

/// Writes the failure notes of one queue's messages.
#[derive(Clone)]
pub struct FailureNotes {
    state: Arc<dyn StateStore>,
    clock: Arc<dyn Clock>,
    queue: String,
    ttl: Duration,
    dead_letters: Option<Arc<dyn DeadLetterSink>>,
}

impl std::fmt::Debug for FailureNotes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FailureNotes")
            .field("queue", &self.queue)
            .field("ttl", &self.ttl)
            .field("dead_letters", &self.dead_letters.is_some())
            .finish_non_exhaustive()
    }
}

impl FailureNotes {
    /// Notes of the queue with logical name `queue`, kept as long as its DLQ keeps messages.
    pub fn new(
        state: Arc<dyn StateStore>,
        clock: Arc<dyn Clock>,
        queue: impl Into<String>,
    ) -> Self {
        Self {
            state,
            clock,
            queue: queue.into(),
            ttl: DLQ_RETENTION,
            dead_letters: None,
        }
    }

    /// Tells `sink` of every message whose last allowed delivery failed.
    pub fn with_dead_letters(mut self, sink: Arc<dyn DeadLetterSink>) -> Self {
        self.dead_letters = Some(sink);
        self
    }

    pub fn for_queue(ports: &Ports, queue: impl Into<String>) -> Self {
        Self::new(Arc::clone(&ports.state), Arc::clone(&ports.clock), queue)
    }

    pub fn queue(&self) -> &str {
        &self.queue
    }

    /// Writes the note of a failed delivery; a failure to write is logged, never returned. On
    /// the message's last allowed receive, the dead-letter sink is told next.
    pub async fn record(&self, message: &QueueMessage, error: &HandlerError) {
        let now = self.clock.now();
        let note = FailureNote::new(&self.queue, message, error, now);
        self.write(message, &note, now).await;
        if let Some(sink) = &self.dead_letters
            && message.receive_count >= MAX_RECEIVE_COUNT
        {
            let told = sink.dead_lettered(&note, &message.body);
            if tokio::time::timeout(DEAD_LETTER_SINK_TIMEOUT, told)
                .await
                .is_err()
            {
                tracing::error!(
                    message_id = %message.message_id,
                    queue = %self.queue,
                    "counting the dead letter on its run took over {}s and was abandoned",
                    DEAD_LETTER_SINK_TIMEOUT.as_secs()
                );
            }
        }
    }

    async fn write(&self, message: &QueueMessage, note: &FailureNote, now: DateTime<Utc>) {
        let expires_at =
            now + chrono::Duration::from_std(self.ttl).unwrap_or(chrono::Duration::MAX);
        let write = self.state.put(note.to_item(expires_at), None);
        match tokio::time::timeout(NOTE_WRITE_TIMEOUT, write).await {
            Ok(Ok(())) => {}
            Ok(Err(store)) => tracing::warn!(
                message_id = %message.message_id,
                queue = %self.queue,
                error = %store,
                "could not write the failure note; the DLQ tooling will show no reason for this message"
            ),
            Err(_elapsed) => tracing::warn!(
                message_id = %message.message_id,
                queue = %self.queue,
                "the failure note took over {}s to write and was abandoned",
                NOTE_WRITE_TIMEOUT.as_secs()
            ),
        }
    }
}

/// The notes of messages of `queue`, by message id; messages without a note are left out.
pub async fn read_notes(
    state: &dyn StateStore,
    queue: &str,
    message_ids: &[String],
) -> Result<HashMap<String, FailureNote>, StoreError> {
    let mut notes = HashMap::new();
    let mut unique: Vec<&String> = message_ids.iter().collect();
    unique.sort();
    unique.dedup();
    for chunk in unique.chunks(MAX_BATCH_GET) {
        let keys = chunk
            .iter()
            .map(|id| keys::failure_note(queue, id))
            .collect();
        for item in state.batch_get(keys).await? {
            if let Some(note) = FailureNote::from_item(&item) {
                notes.insert(note.message_id.clone(), note);
            }
        }
    }
    Ok(notes)
}

/// Deletes the note of a message (after it left its DLQ); absent is not an error.
pub async fn delete_note(
    state: &dyn StateStore,
    queue: &str,
    message_id: &str,
) -> Result<(), StoreError> {
    state
        .delete(&keys::failure_note(queue, message_id), None)
        .await
        .map(drop)
}

/// The first `max` characters of `text`, with `…` when something was cut.
fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn message(body: &str) -> QueueMessage {
        QueueMessage {
            message_id: "m-1".into(),
            body: body.into(),
            receive_count: 3,
            attributes: BTreeMap::new(),
        }
    }

    #[test]
    fn ids_come_from_our_envelopes_and_bus_details() {
        let job = r#"{"v":1,"tenantId":"acme","taskId":"contacts","executionId":"01J"}"#;
        assert_eq!(
            EnvelopeIds::of_body(job),
            EnvelopeIds {
                tenant_id: Some("acme".into()),
                task_id: Some("contacts".into()),
                execution_id: Some("01J".into()),
            }
        );
        let write = r#"{"tenantId":"acme","executionId":null,"cursorCommit":{"taskId":"t"}}"#;
        let ids = EnvelopeIds::of_body(write);
        assert_eq!(ids.task_id.as_deref(), Some("t"));
        assert_eq!(ids.execution_id, None);
        let bus = r#"{"detail-type":"webhook.received","detail":{"tenantId":"beta"}}"#;
        assert_eq!(EnvelopeIds::of_body(bus).tenant_id.as_deref(), Some("beta"));
        assert_eq!(EnvelopeIds::of_body("not json"), EnvelopeIds::default());
        let long = format!(r#"{{"tenantId":"{}"}}"#, "x".repeat(500));
        assert_eq!(EnvelopeIds::of_body(&long).tenant_id, None);
    }

    #[test]
    fn a_note_round_trips_through_its_item_without_the_body() {
        let body = r#"{"tenantId":"acme","records":[{"secretish":"do-not-store"}]}"#;
        let error = HandlerError::permanent("schema_not_found", "x".repeat(2000));
        let at = DateTime::parse_from_rfc3339("2025-01-01T00:00:00Z")
            .unwrap()
            .to_utc();
        let note = FailureNote::new("transform", &message(body), &error, at);
        assert_eq!(note.message.chars().count(), MAX_NOTE_MESSAGE_CHARS);
        let item = note.to_item(at + chrono::Duration::days(14));
        assert_eq!(item[PK], "failnote#transform#m-1");
        assert_eq!(item[EXPIRES_AT], at.timestamp() + 14 * 24 * 3600);
        assert!(
            !Value::Object(item.clone())
                .to_string()
                .contains("do-not-store")
        );
        let back = FailureNote::from_item(&item).unwrap();
        assert_eq!(back, note);
        assert_eq!(back.ids.tenant_id.as_deref(), Some("acme"));
        assert_eq!(back.receive_count, 3);
        let mut other = item;
        other.insert("kind".into(), "record".into());
        assert_eq!(FailureNote::from_item(&other), None);
    }
}
