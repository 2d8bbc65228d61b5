//! The transformer: a message on the transform queue is either a `RecordBatch` (from the
//! fetcher) or the EventBridge envelope of a `webhook.received` delivery (routed by the bus
//! rule), which is first expanded into one `RecordBatch` per realtime task. Each batch is mapped
//! by its conversion schema version (fetched from the state table, compiled once and cached
//! across invocations), relationships are resolved with one records-table lookup per batch,
//! and one `WriteBatch` goes to the write queue per `RecordBatch` (the writer's run protocol
//! counts batches one to one).
//!
//! Per-record mapping failures travel in the `WriteBatch` (the writer records them on the
//! execution); only what redelivery can fix (store unavailable) or what an operator must fix
//! (a schema version that is missing or does not compile: the message reaches the DLQ and is
//! replayed after the fix) fails the message.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use hub_core::keys;
use hub_core::messages::{
    BatchSource, CursorCommit, Envelope, Lineage, REMAP_ATTRIBUTE, RecordBatch, V1, WriteBatch,
    WriteTarget,
};
use hub_core::model::{ConversionSchema, LogLevel, SyncTaskConfig, TenantIntegration};
use hub_core::ports::{BusEnvelope, MAX_MESSAGE_BYTES, OutgoingMessage, Ports};
use hub_mapping::{CompiledSchema, RecordInput};
use hub_runtime::{HandlerError, MessageHandler, QueueMessage};
use hub_writer::RecordsLookup;

/// How long a task's config and a tenant integration are reused before being read again.
const CONFIG_TTL: Duration = Duration::from_secs(30);

/// A schema version never changes once stored, so compiled schemas are kept for the life of
/// the process (bounded by this many entries).
const MAX_CACHED_SCHEMAS: usize = 256;

struct CachedSchema {
    schema: ConversionSchema,
    compiled: CompiledSchema,
}

type SchemaKey = (String, String, u32);
/// (tenant, id) of a task or tenant integration.
type TenantScoped = (String, String);
/// A task's config as read at an instant (`None`: the task no longer exists).
type CachedTaskConfig = (Instant, Option<SyncTaskConfig>);

pub struct TransformHandler {
    ports: Ports,
    sync: hub_sync::SyncService,
    schemas: Mutex<HashMap<SchemaKey, Arc<CachedSchema>>>,
    tasks: Mutex<HashMap<TenantScoped, CachedTaskConfig>>,
    integrations: Mutex<HashMap<TenantScoped, (Instant, String)>>,
}

impl TransformHandler {
    pub fn new(ports: Ports) -> Self {
        Self {
            sync: hub_sync::SyncService::new(ports.clone()),
            ports,
            schemas: Mutex::new(HashMap::new()),
            tasks: Mutex::new(HashMap::new()),
            integrations: Mutex::new(HashMap::new()),
        }
    }

    /// Maps one record batch into the write batch the writer receives.
    pub async fn transform(&self, batch: &RecordBatch) -> Result<WriteBatch, HandlerError> {
        let tenant = batch.tenant_id.as_str();
        let cached = self
            .schema(tenant, &batch.schema_id, batch.schema_version)
            .await?;
        let task = match &batch.task_id {
            Some(task_id) => self.task_config(&batch.tenant_id, task_id).await?,
            None => None,
        };
        let integration_id = self
            .integration_id(tenant, &batch.tenant_integration_id)
            .await?;

        let mapper = cached.compiled.bind(task.as_ref());
        let mut outcome = mapper.map_batch(batch.records.iter().map(RecordInput::from));
        let lookup = RecordsLookup::new(self.ports.records.clone(), tenant, integration_id.clone());
        outcome
            .resolve_relationships(&lookup)
            .await
            .map_err(|e| HandlerError::retryable("relationship_lookup_failed", e.to_string()))?;
        let lineage = Lineage {
            execution_id: batch.execution_id.clone(),
            source: batch.source.clone(),
            record_index: 0,
            schema_id: batch.schema_id.clone(),
            schema_version: batch.schema_version,
        };
        let (items, errors) = outcome.into_write_parts(&lineage);

        let target = &cached.schema.target;
        let full_poll_run = matches!(batch.source, BatchSource::Poll(_))
            && !task.as_ref().is_some_and(SyncTaskConfig::incremental_sync);
        let cursor_commit = match (&batch.source, &batch.cursor_candidate, &batch.task_id) {
            (BatchSource::Poll(poll), Some(cursor), Some(task_id)) => Some(CursorCommit {
                task_id: task_id.clone(),
                page: poll.page,
                cursor: cursor.clone(),
            }),
            _ => None,
        };
        Ok(WriteBatch {
            v: V1,
            execution_id: batch.execution_id.clone(),
            tenant_id: batch.tenant_id.clone(),
            tenant_integration_id: batch.tenant_integration_id.clone(),
            integration_id,
            target_entity_type: target.shard_type_id.clone(),
            items,
            errors,
            cursor_commit,
            source: Some(batch.source.clone()),
            source_entity: Some(cached.schema.source.entity.clone()),
            target: Some(WriteTarget {
                create_if_missing: target.create_if_missing,
                update_if_exists: target.update_if_exists,
                delete_if_removed: target.delete_if_removed && full_poll_run,
                delete_mode: target.delete_mode.unwrap_or_default(),
            }),
        })
    }

    /// Points a batch replayed with `--remap` at its task's current conversion schema (the
    /// head version of the task's `conversionSchemaId`; of the batch's own schema when the
    /// task is gone), and says so in the run's log.
    async fn remap(&self, batch: &mut RecordBatch) -> Result<(), HandlerError> {
        let tenant = batch.tenant_id.as_str();
        let schema_id = match &batch.task_id {
            Some(task_id) => match self.sync.get_task(&batch.tenant_id, task_id).await {
                Ok(task) => task.conversion_schema_id,
                Err(hub_sync::Error::TaskNotFound { .. }) => batch.schema_id.clone(),
                Err(other) => return Err(sync_error(other)),
            },
            None => batch.schema_id.clone(),
        };
        let version = hub_config::current_schema_version(&*self.ports.state, tenant, &schema_id)
            .await
            .map_err(|e| {
                schema_error(e, || {
                    format!("conversion schema {schema_id} is not stored; nothing to re-map with")
                })
            })?;
        let message = format!(
            "a batch of page {} replayed from the DLQ is re-mapped with conversion schema {} \
             version {} (it was fetched with {} version {})",
            match &batch.source {
                BatchSource::Poll(poll) => poll.page,
                BatchSource::Webhook(_) => 0,
            },
            schema_id,
            version,
            batch.schema_id,
            batch.schema_version
        );
        tracing::info!(
            tenant,
            execution = batch.execution_id.as_deref().unwrap_or("-"),
            "{message}"
        );
        if let Some(execution_id) = &batch.execution_id {
            self.sync
                .append_log(execution_id, LogLevel::Info, &message, None)
                .await
                .map_err(sync_error)?;
        }
        batch.schema_id = schema_id;
        batch.schema_version = version;
        Ok(())
    }

    async fn schema(
        &self,
        tenant: &str,
        schema_id: &str,
        version: u32,
    ) -> Result<Arc<CachedSchema>, HandlerError> {
        let key = (tenant.to_owned(), schema_id.to_owned(), version);
        if let Some(cached) = lock(&self.schemas).get(&key) {
            return Ok(Arc::clone(cached));
        }
        let schema = hub_config::schema_version(&*self.ports.state, tenant, schema_id, version)
            .await
            .map_err(|e| {
                schema_error(e, || {
                    format!("conversion schema {schema_id} version {version} is not stored")
                })
            })?;
        let compiled = CompiledSchema::compile(&schema)
            .map_err(|e| HandlerError::permanent("schema_invalid", e.to_string()))?;
        let cached = Arc::new(CachedSchema { schema, compiled });
        let mut schemas = lock(&self.schemas);
        if schemas.len() >= MAX_CACHED_SCHEMAS {
            schemas.clear();
        }
        schemas.insert(key, Arc::clone(&cached));
        Ok(cached)
    }

    async fn task_config(
        &self,
        tenant: &hub_core::model::TenantId,
        task_id: &str,
    ) -> Result<Option<SyncTaskConfig>, HandlerError> {
        let key = (tenant.as_str().to_owned(), task_id.to_owned());
        if let Some((at, config)) = lock(&self.tasks).get(&key)
            && at.elapsed() < CONFIG_TTL
        {
            return Ok(config.clone());
        }
        let config = match self.sync.get_task(tenant, task_id).await {
            Ok(task) => Some(task.config),
            // A task deleted since the batch was made: its `{{task.*}}` values fail per record.
            Err(hub_sync::Error::TaskNotFound { .. }) => None,
            Err(other) => return Err(sync_error(other)),
        };
        lock(&self.tasks).insert(key, (Instant::now(), config.clone()));
        Ok(config)
    }

    async fn integration_id(
        &self,
        tenant: &str,
        tenant_integration_id: &str,
    ) -> Result<String, HandlerError> {
        let key = (tenant.to_owned(), tenant_integration_id.to_owned());
        if let Some((at, id)) = lock(&self.integrations).get(&key)
            && at.elapsed() < CONFIG_TTL
        {
            return Ok(id.clone());
        }
        let item = self
            .ports
            .state
            .get(&keys::tenant_integration(tenant, tenant_integration_id))
            .await
            .map_err(|e| HandlerError::retryable("state_store_unavailable", e.to_string()))?
            .ok_or_else(|| {
                HandlerError::permanent(
                    "tenant_integration_not_found",
                    format!("tenant {tenant} has no integration {tenant_integration_id}"),
                )
            })?;
        let integration: TenantIntegration = hub_core::repo::read_doc(&item)
            .map_err(|e| HandlerError::permanent("corrupt_document", e.to_string()))?;
        lock(&self.integrations).insert(key, (Instant::now(), integration.integration_id.clone()));
        Ok(integration.integration_id)
    }

    async fn send(&self, batch: &WriteBatch) -> Result<(), HandlerError> {
        let body = batch
            .to_json()
            .map_err(|e| HandlerError::permanent("encode_failed", e.to_string()))?;
        if body.len() > MAX_MESSAGE_BYTES {
            // Mapped entities are smaller than the records they come from, so a record batch
            // under the limit maps to a write batch under it; if not, nothing is lost: the
            // message reaches the DLQ with this reason.
            return Err(HandlerError::permanent(
                "write_batch_too_large",
                format!(
                    "the mapped batch is {} bytes, over the queue's {MAX_MESSAGE_BYTES}",
                    body.len()
                ),
            ));
        }
        let queue = self
            .ports
            .queue("write")
            .map_err(|e| HandlerError::permanent("unknown_queue", e.to_string()))?;
        queue
            .send(OutgoingMessage::new(body))
            .await
            .map(drop)
            .map_err(|e| HandlerError {
                code: "queue_send_failed".into(),
                message: e.to_string(),
                retryable: e.is_retryable(),
            })
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A schema read's failure: `schema_not_found` (an operator must store it; `missing` says
/// what is missing), retryable while the store is unavailable, else permanent.
fn schema_error(error: hub_config::ConfigError, missing: impl FnOnce() -> String) -> HandlerError {
    match error {
        hub_config::ConfigError::NotFound { .. } => {
            HandlerError::permanent("schema_not_found", missing())
        }
        hub_config::ConfigError::Store(store) if store.is_retryable() => {
            HandlerError::retryable("state_store_unavailable", store.to_string())
        }
        other => HandlerError::permanent(other.code(), other.to_string()),
    }
}

fn sync_error(error: hub_sync::Error) -> HandlerError {
    HandlerError {
        code: error.code().to_owned(),
        message: error.to_string(),
        retryable: error.is_retryable(),
    }
}

#[async_trait]
impl MessageHandler for TransformHandler {
    async fn handle(&self, message: &QueueMessage) -> Result<(), HandlerError> {
        let batches = if is_bus_envelope(&message.body) {
            let envelope: BusEnvelope = serde_json::from_str(&message.body).map_err(|e| {
                HandlerError::invalid_message_body(format!("not an event bus envelope: {e}"))
            })?;
            let expansion = hub_webhooks::expand_delivery(&self.ports, &envelope)
                .await
                .map_err(|e| HandlerError {
                    code: e.code().to_owned(),
                    message: e.to_string(),
                    retryable: e.is_retryable(),
                })?;
            if let Some(stored) = &expansion.unrouted {
                tracing::info!(%stored, "webhook delivery has no realtime task; stored for inspection");
            }
            expansion.batches
        } else {
            // Whatever the reason (syntax, shape, version), the code is the one every queue
            // uses for a body that does not parse; the sentence keeps the reason.
            let mut batch = RecordBatch::from_json(&message.body).map_err(|e| {
                HandlerError::invalid_message_body(format!("not a RecordBatch: {e}"))
            })?;
            if message
                .attributes
                .get(REMAP_ATTRIBUTE)
                .is_some_and(|value| value == "true")
            {
                self.remap(&mut batch).await?;
            }
            vec![batch]
        };
        for batch in &batches {
            let write = self.transform(batch).await?;
            tracing::debug!(
                tenant = %batch.tenant_id,
                execution = batch.execution_id.as_deref().unwrap_or("-"),
                mapped = write.items.len(),
                failed = write.errors.len(),
                "batch transformed"
            );
            self.send(&write).await?;
        }
        Ok(())
    }
}

/// An EventBridge envelope has `detail-type`; our own envelopes never do.
fn is_bus_envelope(body: &str) -> bool {
    body.contains("\"detail-type\"")
}
