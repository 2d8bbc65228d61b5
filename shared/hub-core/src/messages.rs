//! Message envelopes between functions, and the details of the events on the bus.
//!
//! Every envelope is camelCase JSON with `"v": 1`. Readers check `v` before anything else, so a
//! message from a newer writer fails with `unsupported_version` rather than a confusing shape
//! error; changing an envelope means bumping `v` and keeping the old reader for one release.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::de::{self, DeserializeOwned, Unexpected};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::json::RawJson;
use crate::model::tagged::{Tagged, tagged_deserialize};
use crate::model::{
    ConnectionId, DeleteMode, ModelError, Notifications, SyncResults, TenantId, Trigger,
    decode_json, decode_value,
};
use crate::ports::{BusEnvelope, BusEvent};

/// The envelope version this build writes and reads.
pub const ENVELOPE_VERSION: u32 = 1;

/// Message attribute of a `RecordBatch` replayed from the transform DLQ with `--remap`: map it
/// with its task's current conversion schema, not the version it names (`"true"`).
pub const REMAP_ATTRIBUTE: &str = "hubRemap";

/// The error code of a queue message whose body is not what its queue carries: not JSON, the
/// wrong shape, an unsupported `v`, an event of another type. Every consumer fails such a
/// message with this one code, so one DLQ filter (`--error-code invalid_message_body`) finds
/// them in any queue; the error's sentence says what was expected and why the body is not it.
pub const INVALID_MESSAGE_BODY: &str = "invalid_message_body";

/// The `"v": 1` member. Only ever holds 1; the reader checks `v` before the rest, see
/// [`decode`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct V1;

impl Serialize for V1 {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u32(ENVELOPE_VERSION)
    }
}

impl<'de> Deserialize<'de> for V1 {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let version = u64::deserialize(deserializer)?;
        if version == u64::from(ENVELOPE_VERSION) {
            Ok(V1)
        } else {
            Err(de::Error::invalid_value(
                Unexpected::Unsigned(version),
                &"envelope version 1",
            ))
        }
    }
}

/// A versioned JSON message.
pub trait Envelope: Serialize + DeserializeOwned {
    /// The envelope's name in error messages.
    const KIND: &'static str;

    fn from_json(text: &str) -> Result<Self, ModelError> {
        decode(text)
    }

    fn to_json(&self) -> Result<String, ModelError> {
        serde_json::to_string(self).map_err(|error| ModelError::Encode {
            kind: Self::KIND,
            message: error.to_string(),
        })
    }
}

#[derive(Deserialize)]
struct VersionProbe {
    v: Option<Value>,
}

fn check_version<E: Envelope>(v: Option<&Value>) -> Result<(), ModelError> {
    match v {
        Some(v) if v.as_u64() == Some(u64::from(ENVELOPE_VERSION)) => Ok(()),
        Some(v) => Err(ModelError::UnsupportedVersion {
            kind: E::KIND,
            found: v.to_string(),
            supported: ENVELOPE_VERSION,
        }),
        None => Err(ModelError::InvalidDocument {
            path: "v".into(),
            message: format!("missing field `v` (the {} envelope version)", E::KIND),
            line: None,
            column: None,
        }),
    }
}

/// Reads an envelope: the version first, then the shape (errors name the JSON path).
pub fn decode<E: Envelope>(text: &str) -> Result<E, ModelError> {
    // Every envelope requires `"v": 1`, so a document that reads is of this version: the text
    // is read once. Only a failure looks at the version first, so a message of another version
    // is reported as such rather than by its first unexpected member.
    decode_json(text).or_else(|error| {
        let probe: VersionProbe = decode_json(text)?;
        check_version::<E>(probe.v.as_ref())?;
        Err(error)
    })
}

/// [`decode`] for a parsed value (an event's detail).
pub fn decode_from_value<E: Envelope>(value: Value) -> Result<E, ModelError> {
    check_version::<E>(value.get("v"))?;
    decode_value(value)
}

/// fetch queue: fetch one page of a run (sent by the trigger for the first page, by the
/// fetcher for the next).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SyncJob {
    pub v: V1,
    pub execution_id: String,
    pub tenant_id: TenantId,
    pub task_id: String,
    /// 1 for the first delivery of this page; incremented when the job is re-enqueued after a
    /// transient failure.
    pub attempt: u32,
    pub triggered_by: Trigger,
    /// Sequence number of the page within the run, from 0.
    pub page: u32,
    /// The connector's token for this page; `null` for the first page.
    pub page_token: Option<String>,
    pub cursor_window: CursorWindow,
}

impl SyncJob {
    /// Identifies the page across redeliveries and re-enqueues: the fetcher's idempotency key.
    pub fn idempotency_key(&self) -> String {
        format!("job#{}#{}", self.execution_id, self.page)
    }
}

impl Envelope for SyncJob {
    const KIND: &'static str = "SyncJob";
}

/// The incremental range a run fetches: records modified after `from` (the cursor the previous
/// run committed; `null` means from the beginning) up to `to` (fixed when the run started;
/// `null` means no upper bound).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CursorWindow {
    pub from: Option<String>,
    pub to: Option<String>,
}

/// transform queue: raw records of one page part or one webhook delivery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RecordBatch {
    pub v: V1,
    /// `null` for webhook deliveries, which belong to no run.
    pub execution_id: Option<String>,
    pub tenant_id: TenantId,
    pub tenant_integration_id: String,
    /// The run's task, or for a webhook batch the realtime task it was expanded for (one
    /// delivery becomes batches for each realtime task of its integration).
    pub task_id: Option<String>,
    pub schema_id: String,
    pub schema_version: u32,
    pub source: BatchSource,
    pub records: Vec<Value>,
    /// This batch ends the run's last page.
    pub last_page: bool,
    /// The cursor the run may commit once this page is written.
    pub cursor_candidate: Option<String>,
}

impl Envelope for RecordBatch {
    const KIND: &'static str = "RecordBatch";
}

/// Where a batch of records came from; also the lineage of every record written from it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum BatchSource {
    Poll(PollSource),
    Webhook(WebhookSource),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BatchSourceKind {
    Poll,
    Webhook,
}

impl Tagged for BatchSource {
    const TAG: &'static str = "type";
    const EXPECTING: &'static str = "a batch source object with a `type`";
    type Kind = BatchSourceKind;

    fn from_variant<'de, D: Deserializer<'de>>(
        kind: BatchSourceKind,
        rest: D,
    ) -> Result<Self, D::Error> {
        Ok(match kind {
            BatchSourceKind::Poll => Self::Poll(Deserialize::deserialize(rest)?),
            BatchSourceKind::Webhook => Self::Webhook(Deserialize::deserialize(rest)?),
        })
    }
}
tagged_deserialize!(BatchSource);

impl BatchSource {
    /// Unique per batch within a tenant integration: `poll#<page>#<part>`, or
    /// `webhook#<deliveryId>` (`webhook#<deliveryId>#<part>` when split); with the execution id
    /// (polls) or the task id (webhooks, whose batches belong to no run) it keys the
    /// transformer's idempotency.
    pub fn key(&self) -> String {
        match self {
            Self::Poll(poll) => format!("poll#{}#{}", poll.page, poll.part),
            Self::Webhook(webhook) if webhook.parts > 1 => {
                format!("webhook#{}#{}", webhook.delivery_id, webhook.part)
            }
            Self::Webhook(webhook) => format!("webhook#{}", webhook.delivery_id),
        }
    }
}

/// A page is split into parts to stay under the queue's message size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PollSource {
    pub page: u32,
    pub page_token: Option<String>,
    /// From 0 to `parts - 1`.
    pub part: u32,
    pub parts: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WebhookSource {
    /// The provider's delivery id (what webhook deduplication keys on).
    pub delivery_id: String,
    /// A delivery's records are split into parts to stay under the queue's message size;
    /// from 0 to `parts - 1`.
    #[serde(default, skip_serializing_if = "is_first_part")]
    pub part: u32,
    #[serde(default = "one_part", skip_serializing_if = "is_one_part")]
    pub parts: u32,
}

impl WebhookSource {
    /// The source of a delivery whose records fit in one batch.
    pub fn whole(delivery_id: impl Into<String>) -> Self {
        Self {
            delivery_id: delivery_id.into(),
            part: 0,
            parts: 1,
        }
    }
}

fn one_part() -> u32 {
    1
}

fn is_first_part(part: &u32) -> bool {
    *part == 0
}

fn is_one_part(parts: &u32) -> bool {
    *parts == 1
}

/// write queue: mapped records ready to upsert, and the records that failed to map.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WriteBatch {
    pub v: V1,
    pub execution_id: Option<String>,
    pub tenant_id: TenantId,
    pub tenant_integration_id: String,
    /// Written into each record's `externalRelationships`.
    pub integration_id: String,
    /// The entity type written (`c_contact`).
    pub target_entity_type: String,
    pub items: Vec<WriteItem>,
    pub errors: Vec<RecordError>,
    /// Set on the batch that ends a page: commit this cursor once the page is written. The
    /// writer records it as a cursor candidate of the run (the largest wins); the task's cursor
    /// moves when the whole run is written (hub-writer's run protocol).
    pub cursor_commit: Option<CursorCommit>,
    /// The source of the `RecordBatch` this batch was mapped from (one write batch per record
    /// batch): what the writer counts a run's batch once by. Absent in batches from older
    /// builds, which fall back to the first item's lineage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<BatchSource>,
    /// The external entity the records came from (`Contact`), stored in each record's
    /// `externalRelationships` as `externalType`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_entity: Option<String>,
    /// What the writer may do, from the schema's target. Absent: create and update, never
    /// delete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<WriteTarget>,
}

impl Envelope for WriteBatch {
    const KIND: &'static str = "WriteBatch";
}

/// The schema's `target` as the writer applies it to one batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WriteTarget {
    pub create_if_missing: bool,
    pub update_if_exists: bool,
    /// The schema's `deleteIfRemoved`, and only for a batch of a full (non-incremental) poll
    /// run: the transformer sets it, the writer marks every record of the batch as seen by the
    /// run, and a run that ends `success` removes the records of its tenant integration and
    /// entity type that it did not see.
    pub delete_if_removed: bool,
    #[serde(default)]
    pub delete_mode: DeleteMode,
}

impl Default for WriteTarget {
    fn default() -> Self {
        Self {
            create_if_missing: true,
            update_if_exists: true,
            delete_if_removed: false,
            delete_mode: DeleteMode::Soft,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WriteItem {
    pub external_id: String,
    /// What the writer's conditional upsert keys on (per the schema's deduplication).
    pub dedup_key: String,
    pub data: EntityJson,
    /// The source's modification time, for newest-wins and skipping stale overlaps.
    pub source_modified_at: Option<DateTime<Utc>>,
    /// Hash of the mapped entity (`data`, hub-mapping's `payloadHash`): an item whose stored
    /// record has the same hash is unchanged and skipped.
    pub payload_hash: String,
    pub lineage: Lineage,
}

/// A mapped entity: a JSON object kept as its text. The conversion engine writes it once and
/// it travels to the writer, which stores it, without being parsed into a map on the way
/// (building and dropping a `serde_json::Map` per record cost the conversion engine a third
/// of its time). Equality compares the JSON values, not the text.
#[derive(Clone, Serialize)]
#[serde(transparent)]
pub struct EntityJson(Box<serde_json::value::RawValue>);

impl EntityJson {
    /// The members as JSON text. Serialising a map of JSON values does not fail; the `Result`
    /// is serde_json's.
    pub fn from_map(members: &Map<String, Value>) -> Result<EntityJson, serde_json::Error> {
        serde_json::value::to_raw_value(members).map(EntityJson)
    }

    /// Text a serialiser wrote (`serde_json::value::to_raw_value`); `None` unless it is an
    /// object.
    pub fn from_raw(raw: Box<serde_json::value::RawValue>) -> Option<EntityJson> {
        raw.get()
            .trim_start()
            .starts_with('{')
            .then_some(EntityJson(raw))
    }

    /// The JSON text.
    pub fn as_str(&self) -> &str {
        self.0.get()
    }

    /// The members, parsed.
    pub fn to_map(&self) -> Map<String, Value> {
        serde_json::from_str(self.0.get()).unwrap_or_default()
    }

    /// One member, parsed.
    pub fn get(&self, field: &str) -> Option<Value> {
        self.to_map().remove(field)
    }
}

impl fmt::Debug for EntityJson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq for EntityJson {
    fn eq(&self, other: &EntityJson) -> bool {
        self.as_str() == other.as_str() || self.to_map() == other.to_map()
    }
}

impl<'de> Deserialize<'de> for EntityJson {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = Box::<serde_json::value::RawValue>::deserialize(deserializer)?;
        EntityJson::from_raw(raw).ok_or_else(|| de::Error::custom("expected a JSON object"))
    }
}

/// Where a written record came from, stored with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Lineage {
    pub execution_id: Option<String>,
    pub source: BatchSource,
    /// The record's index within its source batch.
    pub record_index: u32,
    pub schema_id: String,
    pub schema_version: u32,
}

/// A record that could not be mapped, reported instead of failing its batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RecordError {
    /// Index within the source batch.
    pub record_index: u32,
    pub external_id: Option<String>,
    pub target_field: Option<String>,
    /// Where in the source record (`MailingAddress.street`).
    pub source_path: Option<String>,
    /// Stable snake_case code (`missing_required_field`).
    pub code: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CursorCommit {
    pub task_id: String,
    pub page: u32,
    pub cursor: String,
}

/// The `source` and `detail-type` strings of the bus events.
pub mod events {
    /// Source of events from the webhook receiver.
    pub const SOURCE_WEBHOOKS: &str = "hub.webhooks";
    /// Source of sync lifecycle and conflict events.
    pub const SOURCE_SYNC: &str = "hub.sync";
    /// Source of connection events.
    pub const SOURCE_CONNECTIONS: &str = "hub.connections";

    pub const WEBHOOK_RECEIVED: &str = "webhook.received";
    pub const SYNC_STARTED: &str = "sync.started";
    pub const SYNC_COMPLETED: &str = "sync.completed";
    pub const SYNC_PARTIAL: &str = "sync.partial";
    pub const SYNC_FAILED: &str = "sync.failed";
    pub const CONNECTION_NEEDS_REAUTH: &str = "connection.needs_reauth";
    pub const CONFLICT_DETECTED: &str = "conflict.detected";

    pub const ALL_DETAIL_TYPES: [&str; 7] = [
        WEBHOOK_RECEIVED,
        SYNC_STARTED,
        SYNC_COMPLETED,
        SYNC_PARTIAL,
        SYNC_FAILED,
        CONNECTION_NEEDS_REAUTH,
        CONFLICT_DETECTED,
    ];
}

/// The detail of a bus event.
pub trait BusDetail: Envelope {
    const SOURCE: &'static str;

    fn detail_type(&self) -> &'static str;

    /// Whether an event of this detail type carries this detail.
    fn accepts(detail_type: &str) -> bool;

    fn to_bus_event(&self) -> Result<BusEvent, ModelError> {
        let detail = RawJson::encode(self).map_err(|error| ModelError::Encode {
            kind: Self::KIND,
            message: error.to_string(),
        })?;
        Ok(BusEvent::new(Self::SOURCE, self.detail_type(), detail))
    }

    /// Reads the detail of an envelope a rule delivered, checking its detail type.
    fn from_bus_envelope(envelope: &BusEnvelope) -> Result<Self, ModelError> {
        if !Self::accepts(&envelope.detail_type) {
            return Err(ModelError::UnexpectedEvent {
                expected: Self::KIND.to_owned(),
                found: envelope.detail_type.clone(),
            });
        }
        let detail: Self = decode(envelope.detail.get())?;
        if detail.detail_type() != envelope.detail_type {
            return Err(ModelError::UnexpectedEvent {
                expected: detail.detail_type().to_owned(),
                found: envelope.detail_type.clone(),
            });
        }
        Ok(detail)
    }
}

/// `webhook.received`: a verified, deduplicated delivery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WebhookReceived {
    pub v: V1,
    pub tenant_id: TenantId,
    pub tenant_integration_id: String,
    pub integration_id: String,
    /// The webhook route (endpoint) that received the delivery.
    pub route_id: String,
    /// The scheme that verified it (`github`, `stripe`, `standard_webhooks`, ...).
    pub provider: String,
    pub delivery_id: String,
    /// The provider's event name (`contact.updated`), when it sends one.
    pub event_type: Option<String>,
    pub received_at: DateTime<Utc>,
    /// The delivery's JSON, as the provider sent it; `null` when it was too large for an
    /// event and `payloadRef` says where it is stored.
    pub payload: RawJson,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload_ref: Option<PayloadRef>,
}

/// A claim check: a payload stored in the state table in `chunks` items
/// (`keys::webhook_payload_chunk`) because the event it belongs to would exceed the bus's
/// 256 KiB limit. The chunks joined are the payload's JSON text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PayloadRef {
    pub chunks: u32,
    /// Length of the JSON text.
    pub bytes: u64,
    /// Hex SHA-256 of the JSON text, checked when it is read back.
    pub sha256: String,
}

impl Envelope for WebhookReceived {
    const KIND: &'static str = "webhook.received";
}

impl BusDetail for WebhookReceived {
    const SOURCE: &'static str = events::SOURCE_WEBHOOKS;

    fn detail_type(&self) -> &'static str {
        events::WEBHOOK_RECEIVED
    }

    fn accepts(detail_type: &str) -> bool {
        detail_type == events::WEBHOOK_RECEIVED
    }
}

/// `sync.started`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SyncStarted {
    pub v: V1,
    pub execution_id: String,
    pub tenant_id: TenantId,
    pub tenant_integration_id: String,
    pub task_id: String,
    pub triggered_by: Trigger,
    pub started_at: DateTime<Utc>,
}

impl Envelope for SyncStarted {
    const KIND: &'static str = "sync.started";
}

impl BusDetail for SyncStarted {
    const SOURCE: &'static str = events::SOURCE_SYNC;

    fn detail_type(&self) -> &'static str {
        events::SYNC_STARTED
    }

    fn accepts(detail_type: &str) -> bool {
        detail_type == events::SYNC_STARTED
    }
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishedStatus {
    Success,
    Partial,
    Failed,
    Cancelled,
}

/// `sync.completed`, `sync.partial` or `sync.failed` (a cancelled run is reported as failed),
/// by `status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SyncFinished {
    pub v: V1,
    pub execution_id: String,
    pub tenant_id: TenantId,
    pub tenant_integration_id: String,
    pub task_id: String,
    pub status: FinishedStatus,
    pub started_at: DateTime<Utc>,
    pub completed_at: DateTime<Utc>,
    pub duration_ms: u64,
    pub results: SyncResults,
    pub error_count: u32,
    pub last_error: Option<String>,
    /// The task's notification settings, so a notifier needs no lookup to decide whom to tell.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notifications: Option<Notifications>,
}

impl Envelope for SyncFinished {
    const KIND: &'static str = "sync.completed/partial/failed";
}

impl BusDetail for SyncFinished {
    const SOURCE: &'static str = events::SOURCE_SYNC;

    fn detail_type(&self) -> &'static str {
        match self.status {
            FinishedStatus::Success => events::SYNC_COMPLETED,
            FinishedStatus::Partial => events::SYNC_PARTIAL,
            FinishedStatus::Failed | FinishedStatus::Cancelled => events::SYNC_FAILED,
        }
    }

    fn accepts(detail_type: &str) -> bool {
        [
            events::SYNC_COMPLETED,
            events::SYNC_PARTIAL,
            events::SYNC_FAILED,
        ]
        .contains(&detail_type)
    }
}

/// `connection.needs_reauth`: a token refresh was refused; an admin must reconnect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConnectionNeedsReauth {
    pub v: V1,
    /// `null` for a system-scope connection.
    pub tenant_id: Option<TenantId>,
    pub connection_id: ConnectionId,
    pub integration_id: String,
    /// Why, without secrets (`invalid_grant`).
    pub reason: String,
    pub detected_at: DateTime<Utc>,
}

impl Envelope for ConnectionNeedsReauth {
    const KIND: &'static str = "connection.needs_reauth";
}

impl BusDetail for ConnectionNeedsReauth {
    const SOURCE: &'static str = events::SOURCE_CONNECTIONS;

    fn detail_type(&self) -> &'static str {
        events::CONNECTION_NEEDS_REAUTH
    }

    fn accepts(detail_type: &str) -> bool {
        detail_type == events::CONNECTION_NEEDS_REAUTH
    }
}

/// `conflict.detected`: a bidirectional sync stored a conflict for manual resolution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConflictDetected {
    pub v: V1,
    pub conflict_id: String,
    pub execution_id: String,
    pub tenant_id: TenantId,
    pub tenant_integration_id: String,
    pub external_id: String,
    pub shard_id: String,
    pub fields: Vec<String>,
    pub detected_at: DateTime<Utc>,
}

impl Envelope for ConflictDetected {
    const KIND: &'static str = "conflict.detected";
}

impl BusDetail for ConflictDetected {
    const SOURCE: &'static str = events::SOURCE_SYNC;

    fn detail_type(&self) -> &'static str {
        events::CONFLICT_DETECTED
    }

    fn accepts(detail_type: &str) -> bool {
        detail_type == events::CONFLICT_DETECTED
    }
}

impl fmt::Display for FinishedStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Success => "success",
            Self::Partial => "partial",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        })
    }
}
