//! What the transformer does with a `webhook.received` event that the bus routed to the
//! transform queue: find the realtime sync tasks of the delivery's tenant integration, extract
//! the records per provider and make one [`RecordBatch`] per task (split under the queue's
//! message limit). A delivery no realtime task takes is stored for inspection
//! ([`list_unrouted`]), not dropped.

use std::time::Duration;

use chrono::{DateTime, Utc};
use hub_core::json::{self, RawJson};
use hub_core::keys;
use hub_core::messages::{
    BatchSource, BusDetail, PayloadRef, RecordBatch, V1, WebhookReceived, WebhookSource,
};
use hub_core::model::{
    ModelError, ScheduleType, SyncDirection, SyncTask, SyncTaskStatus, TenantId,
};
use hub_core::ports::{
    BusEnvelope, EXPIRES_AT, Index, Item, PK, Ports, QueryRequest, SK, SortCondition, StateStore,
    StoreError,
};
use hub_core::repo::{DOC, KIND, read_doc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::WebhookError;
use crate::payload::{PayloadError, load_payload, store_payload};
use crate::records::extract_records;
use crate::route::{RouteStoreError, get_route};

/// A batch's JSON stays under this, below the 256 KiB SQS limit with room for attributes.
pub const MAX_BATCH_BYTES: usize = 200 * 1024;
/// How long an unrouted delivery is kept (its stored payload, if any, lives longer).
pub const UNROUTED_RETENTION: Duration = Duration::from_secs(14 * 24 * 3600);
/// An unrouted delivery whose document would be larger than this keeps its payload in chunks.
const MAX_UNROUTED_DOC_BYTES: usize = 300 * 1024;

const UNROUTED_KIND: &str = "webhook_unrouted";
/// The top-level attribute of a task item that the sync bookkeeping keeps current.
const TASK_STATUS_ATTR: &str = "status";
/// The attribute of a schema head holding its current version.
const SCHEMA_VERSION_ATTR: &str = "version";

/// What one delivery became.
#[derive(Debug, Clone, PartialEq)]
pub struct Expansion {
    pub delivery: WebhookReceived,
    /// One or more per realtime task, in task id order.
    pub batches: Vec<RecordBatch>,
    /// The sort key of the stored delivery when no realtime task took it.
    pub unrouted: Option<String>,
}

/// A delivery kept because its integration has no active realtime task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UnroutedDelivery {
    pub tenant_id: TenantId,
    pub tenant_integration_id: String,
    pub integration_id: String,
    pub route_id: String,
    pub provider: String,
    pub delivery_id: String,
    pub event_type: Option<String>,
    pub received_at: DateTime<Utc>,
    pub stored_at: DateTime<Utc>,
    /// The delivery's JSON as the provider sent it; `null` when the payload is in chunks
    /// (`payloadRef`).
    pub payload: RawJson,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload_ref: Option<PayloadRef>,
}

#[derive(Debug, thiserror::Error)]
pub enum ExpandError {
    #[error("not a webhook.received event: {0}")]
    Decode(ModelError),
    #[error("state store: {0}")]
    Store(#[from] StoreError),
    #[error("the stored payload of delivery `{delivery_id}` cannot be read: {source}")]
    Payload {
        delivery_id: String,
        source: PayloadError,
    },
    #[error("webhook route `{0}` no longer exists")]
    UnknownRoute(String),
    #[error("conversion schema `{schema_id}` of realtime task `{task_id}` does not exist")]
    SchemaNotFound { task_id: String, schema_id: String },
    #[error("cannot extract the records: {0}")]
    Extract(#[from] WebhookError),
    #[error(
        "record {index} of delivery `{delivery_id}` is {size} bytes, over the {MAX_BATCH_BYTES}-byte batch limit"
    )]
    RecordTooLarge {
        delivery_id: String,
        index: usize,
        size: usize,
    },
    #[error("stored {what} is unreadable: {reason}")]
    Corrupt { what: String, reason: String },
    #[error("cannot encode: {0}")]
    Encode(ModelError),
}

impl ExpandError {
    pub fn code(&self) -> &'static str {
        match self {
            // The transform queue's message is not the event it should carry.
            Self::Decode(_) => hub_core::messages::INVALID_MESSAGE_BODY,
            Self::Store(_) => "state_store_unavailable",
            Self::Payload {
                source: PayloadError::Store(_),
                ..
            } => "state_store_unavailable",
            Self::Payload { .. } => "payload_unavailable",
            Self::UnknownRoute(_) => "unknown_route",
            Self::SchemaNotFound { .. } => "schema_not_found",
            Self::Extract(error) => error.code(),
            Self::RecordTooLarge { .. } => "record_too_large",
            Self::Corrupt { .. } => "corrupt_document",
            Self::Encode(_) => "encode_failed",
        }
    }

    /// Whether handling the same event again may succeed (a store outage), as opposed to an
    /// event that will fail the same way every time and belongs in the DLQ.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Store(error)
            | Self::Payload {
                source: PayloadError::Store(error),
                ..
            } => error.is_retryable(),
            Self::Decode(_)
            | Self::Payload { .. }
            | Self::UnknownRoute(_)
            | Self::SchemaNotFound { .. }
            | Self::Extract(_)
            | Self::RecordTooLarge { .. }
            | Self::Corrupt { .. }
            | Self::Encode(_) => false,
        }
    }
}

impl From<RouteStoreError> for ExpandError {
    fn from(error: RouteStoreError) -> Self {
        match error {
            RouteStoreError::Store(error) => Self::Store(error),
            other => Self::Corrupt {
                what: "webhook route".into(),
                reason: other.to_string(),
            },
        }
    }
}

/// Expands the `webhook.received` event a rule delivered to the transform queue.
pub async fn expand_delivery(
    ports: &Ports,
    envelope: &BusEnvelope,
) -> Result<Expansion, ExpandError> {
    let mut delivery = WebhookReceived::from_bus_envelope(envelope).map_err(ExpandError::Decode)?;
    let state = &*ports.state;
    let tenant = delivery.tenant_id.as_str();
    let tasks = realtime_tasks(state, tenant, &delivery.tenant_integration_id).await?;
    if tasks.is_empty() {
        let stored = store_unrouted(state, &mut delivery, ports.clock.now()).await?;
        return Ok(Expansion {
            delivery,
            batches: Vec::new(),
            unrouted: Some(stored),
        });
    }
    let payload = match &delivery.payload_ref {
        Some(reference) => {
            load_payload(state, &delivery.route_id, &delivery.delivery_id, reference)
                .await
                .map_err(|source| ExpandError::Payload {
                    delivery_id: delivery.delivery_id.clone(),
                    source,
                })?
        }
        None => delivery
            .payload
            .to_value()
            .map_err(|error| ExpandError::Corrupt {
                what: format!("payload of webhook delivery {}", delivery.delivery_id),
                reason: error.to_string(),
            })?,
    };
    let route = get_route(state, &delivery.route_id)
        .await?
        .ok_or_else(|| ExpandError::UnknownRoute(delivery.route_id.clone()))?;
    let records: Vec<Value> = extract_records(
        &route.config.scheme,
        delivery.event_type.as_deref(),
        &payload,
    )?
    .into_iter()
    .map(|record| record.record)
    .collect();
    let mut batches = Vec::new();
    for task in &tasks {
        let schema_version = schema_version(state, tenant, task).await?;
        batches.extend(batches_for(&delivery, task, schema_version, &records)?);
    }
    Ok(Expansion {
        delivery,
        batches,
        unrouted: None,
    })
}

/// The active realtime tasks (pull or bidirectional) of a tenant integration, by id.
async fn realtime_tasks(
    state: &dyn StateStore,
    tenant: &str,
    tenant_integration_id: &str,
) -> Result<Vec<SyncTask>, ExpandError> {
    let request = QueryRequest::partition(Index::Primary, keys::tenant_partition(tenant))
        .sort(SortCondition::BeginsWith(keys::prefix::TASK.to_owned()));
    let mut tasks = Vec::new();
    let mut start = None;
    loop {
        let page = state.query(request.clone().start_after(start)).await?;
        for item in &page.items {
            let mut task: SyncTask = read_doc(item).map_err(|error| ExpandError::Corrupt {
                what: format!(
                    "sync task {}",
                    item.get(hub_core::ports::SK)
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                ),
                reason: error.to_string(),
            })?;
            // The bookkeeping keeps the current status beside the document.
            if let Some(status) = item.get(TASK_STATUS_ATTR)
                && let Ok(status) = serde_json::from_value::<SyncTaskStatus>(status.clone())
            {
                task.status = status;
            }
            let takes_deliveries = task.schedule.schedule_type == ScheduleType::Realtime
                && task.status == SyncTaskStatus::Active
                && task.direction != SyncDirection::Push
                && task.tenant_integration_id.as_deref() == Some(tenant_integration_id);
            if takes_deliveries {
                tasks.push(task);
            }
        }
        start = page.last_evaluated_key;
        if start.is_none() {
            tasks.sort_by(|a, b| a.id.cmp(&b.id));
            return Ok(tasks);
        }
    }
}

async fn schema_version(
    state: &dyn StateStore,
    tenant: &str,
    task: &SyncTask,
) -> Result<u32, ExpandError> {
    let not_found = || ExpandError::SchemaNotFound {
        task_id: task.id.clone(),
        schema_id: task.conversion_schema_id.clone(),
    };
    let head = state
        .get(&keys::schema_head(tenant, &task.conversion_schema_id))
        .await?
        .ok_or_else(not_found)?;
    head.get(SCHEMA_VERSION_ATTR)
        .and_then(Value::as_u64)
        .and_then(|version| u32::try_from(version).ok())
        .ok_or_else(|| ExpandError::Corrupt {
            what: format!("conversion schema {}", task.conversion_schema_id),
            reason: "the head has no version".into(),
        })
}

/// The task's batches: records packed in order, each batch's JSON under [`MAX_BATCH_BYTES`].
fn batches_for(
    delivery: &WebhookReceived,
    task: &SyncTask,
    schema_version: u32,
    records: &[Value],
) -> Result<Vec<RecordBatch>, ExpandError> {
    let batch = |records: Vec<Value>| RecordBatch {
        v: V1,
        execution_id: None,
        tenant_id: delivery.tenant_id.clone(),
        tenant_integration_id: delivery.tenant_integration_id.clone(),
        task_id: Some(task.id.clone()),
        schema_id: task.conversion_schema_id.clone(),
        schema_version,
        source: BatchSource::Webhook(WebhookSource::whole(delivery.delivery_id.clone())),
        records,
        last_page: false,
        cursor_candidate: None,
    };
    // Sized with the largest part numbers it can get, so numbering never pushes it over.
    let mut skeleton = batch(Vec::new());
    skeleton.source = BatchSource::Webhook(WebhookSource {
        delivery_id: delivery.delivery_id.clone(),
        part: u32::MAX,
        parts: u32::MAX,
    });
    let overhead = encoded_len(&skeleton)?;
    let mut groups: Vec<Vec<Value>> = vec![Vec::new()];
    let mut size = overhead;
    for (index, record) in records.iter().enumerate() {
        let record_size = encoded_len(record)? + 1;
        if overhead + record_size > MAX_BATCH_BYTES {
            return Err(ExpandError::RecordTooLarge {
                delivery_id: delivery.delivery_id.clone(),
                index,
                size: record_size,
            });
        }
        let current = groups.last_mut().expect("never empty");
        if size + record_size > MAX_BATCH_BYTES && !current.is_empty() {
            groups.push(Vec::new());
            size = overhead;
        }
        groups.last_mut().expect("never empty").push(record.clone());
        size += record_size;
    }
    let parts = u32::try_from(groups.len()).unwrap_or(u32::MAX);
    Ok(groups
        .into_iter()
        .enumerate()
        .map(|(part, records)| {
            let mut batch = batch(records);
            batch.source = BatchSource::Webhook(WebhookSource {
                delivery_id: delivery.delivery_id.clone(),
                part: part as u32,
                parts,
            });
            batch
        })
        .collect())
}

fn encoded_len<T: Serialize>(value: &T) -> Result<usize, ExpandError> {
    json::encoded_len(value).map_err(|error| {
        ExpandError::Encode(ModelError::Encode {
            kind: "record batch",
            message: error.to_string(),
        })
    })
}

/// Keeps the delivery for inspection; the same delivery stored twice is one item.
async fn store_unrouted(
    state: &dyn StateStore,
    delivery: &mut WebhookReceived,
    now: DateTime<Utc>,
) -> Result<String, ExpandError> {
    let key = keys::webhook_unrouted(
        delivery.tenant_id.as_str(),
        delivery.received_at,
        &delivery.route_id,
        &delivery.delivery_id,
    );
    // The payload is lent to the stored document and given back: no copy of it is made.
    let mut stored = UnroutedDelivery {
        tenant_id: delivery.tenant_id.clone(),
        tenant_integration_id: delivery.tenant_integration_id.clone(),
        integration_id: delivery.integration_id.clone(),
        route_id: delivery.route_id.clone(),
        provider: delivery.provider.clone(),
        delivery_id: delivery.delivery_id.clone(),
        event_type: delivery.event_type.clone(),
        received_at: delivery.received_at,
        stored_at: now,
        payload: std::mem::take(&mut delivery.payload),
        payload_ref: delivery.payload_ref.clone(),
    };
    let mut text = encode_unrouted(&stored);
    // The document is kept as text inside the item, where its quotes are escaped again.
    if matches!(&text, Ok(encoded) if escaped_longer_than(encoded, MAX_UNROUTED_DOC_BYTES)) {
        text = encode_with_stored_payload(state, &mut stored, now).await;
    }
    delivery.payload = std::mem::take(&mut stored.payload);
    let text = text?;
    let expires_at = now.timestamp() + i64::try_from(UNROUTED_RETENTION.as_secs()).unwrap_or(0);
    let mut item = Item::new();
    item.insert(PK.into(), key.pk.into());
    item.insert(SK.into(), key.sk.clone().into());
    item.insert(KIND.into(), UNROUTED_KIND.into());
    item.insert(DOC.into(), Value::String(text));
    item.insert(EXPIRES_AT.into(), expires_at.into());
    state.put(item, None).await?;
    tracing::info!(
        tenant = delivery.tenant_id.as_str(),
        tenant_integration_id = %delivery.tenant_integration_id,
        delivery_id = %delivery.delivery_id,
        "webhook delivery stored: its integration has no active realtime task"
    );
    Ok(key.sk)
}

/// The document with its payload in chunks instead of inline (`stored` keeps the payload).
async fn encode_with_stored_payload(
    state: &dyn StateStore,
    stored: &mut UnroutedDelivery,
    now: DateTime<Utc>,
) -> Result<String, ExpandError> {
    let reference = store_payload(
        state,
        &stored.route_id,
        &stored.delivery_id,
        stored.payload.get(),
        now,
    )
    .await?;
    let inline = std::mem::take(&mut stored.payload);
    stored.payload_ref = Some(reference);
    let text = encode_unrouted(stored);
    stored.payload = inline;
    text
}

fn encode_unrouted(stored: &UnroutedDelivery) -> Result<String, ExpandError> {
    serde_json::to_string(stored).map_err(encode_error)
}

fn encode_error(error: serde_json::Error) -> ExpandError {
    ExpandError::Encode(ModelError::Encode {
        kind: "unrouted delivery",
        message: error.to_string(),
    })
}

/// Whether `text` encoded as a JSON string is longer than `limit`, counted only when its
/// bounds (its length, six times it) leave the answer open.
fn escaped_longer_than(text: &str, limit: usize) -> bool {
    text.len() + 2 > limit
        || (json::string_len_at_most(text) > limit
            && json::encoded_len(text).is_ok_and(|len| len > limit))
}

/// The tenant's stored unrouted deliveries, newest first.
pub async fn list_unrouted(
    state: &dyn StateStore,
    tenant: &str,
) -> Result<Vec<UnroutedDelivery>, ExpandError> {
    let request = QueryRequest::partition(Index::Primary, keys::tenant_partition(tenant))
        .sort(SortCondition::BeginsWith(
            keys::prefix::UNROUTED_WEBHOOK.to_owned(),
        ))
        .backwards();
    let mut deliveries = Vec::new();
    let mut start = None;
    loop {
        let page = state.query(request.clone().start_after(start)).await?;
        for item in &page.items {
            deliveries.push(decode_unrouted(item)?);
        }
        start = page.last_evaluated_key;
        if start.is_none() {
            return Ok(deliveries);
        }
    }
}

fn decode_unrouted(item: &Item) -> Result<UnroutedDelivery, ExpandError> {
    let corrupt = |reason: String| ExpandError::Corrupt {
        what: "unrouted webhook delivery".into(),
        reason,
    };
    match item.get(DOC) {
        Some(Value::String(text)) => {
            serde_json::from_str(text).map_err(|error| corrupt(error.to_string()))
        }
        _ => Err(corrupt("no document".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_escaped_length_is_judged_as_encoding_would() {
        let texts = [
            String::new(),
            "plain".repeat(40),
            "\"quoted\" \\ and\nnew lines\t".repeat(9),
            "\u{1}\u{1f}é漢".repeat(17),
        ];
        for text in &texts {
            let encoded = serde_json::to_string(text).unwrap().len();
            for limit in [0, 1, 2, 10, 50, 100, 200, 300, 600, 1000, 2000] {
                assert_eq!(
                    escaped_longer_than(text, limit),
                    encoded > limit,
                    "{text:?} at {limit} ({encoded} encoded)"
                );
            }
        }
    }
}
