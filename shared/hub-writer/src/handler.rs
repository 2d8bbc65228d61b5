//! The writer function's message handler: the same on Lambda and in the local host.

use async_trait::async_trait;
use hub_core::messages::{Envelope, WriteBatch};
use hub_core::ports::Ports;
use hub_runtime::{HandlerError, MessageHandler, QueueMessage};
use tracing::Instrument;

use crate::{Writer, WriterConfig};

/// Handles one message of the write queue: a [`WriteBatch`].
#[derive(Debug, Clone)]
pub struct WriteHandler {
    writer: Writer,
}

impl WriteHandler {
    pub fn new(writer: Writer) -> Self {
        Self { writer }
    }

    /// A writer on `ports` configured from the environment ([`WriterConfig::from_env`]).
    pub fn from_ports(ports: Ports) -> Self {
        Self::new(Writer::with_config(ports, WriterConfig::from_env()))
    }

    pub fn writer(&self) -> &Writer {
        &self.writer
    }

    /// How many messages of a delivered batch to hand it at once
    /// ([`WriterConfig::message_concurrency`]).
    pub fn message_concurrency(&self) -> usize {
        self.writer.config().message_concurrency
    }
}

#[async_trait]
impl MessageHandler for WriteHandler {
    async fn handle(&self, message: &QueueMessage) -> Result<(), HandlerError> {
        // Envelope errors name the JSON path and the expected shape, never the values.
        let batch = WriteBatch::from_json(&message.body).map_err(|error| {
            HandlerError::invalid_message_body(format!("not a WriteBatch: {error}"))
        })?;
        let span = tracing::info_span!(
            "write_batch",
            tenant = %batch.tenant_id,
            execution = batch.execution_id.as_deref().unwrap_or("-"),
            entity_type = %batch.target_entity_type,
            items = batch.items.len(),
        );
        let report = self
            .writer
            .write_batch(&batch)
            .instrument(span.clone())
            .await
            .map_err(|error| HandlerError {
                code: error.code().to_owned(),
                message: error.to_string(),
                retryable: error.is_retryable(),
            })?;
        span.in_scope(|| {
            tracing::info!(
                created = report.created,
                updated = report.updated,
                skipped = report.skipped,
                failed = report.failed,
                already_counted = report.already_counted,
                completion = ?report.completion,
                "batch written"
            );
        });
        Ok(())
    }
}
