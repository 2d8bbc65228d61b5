//! Runs a [`MessageHandler`] as an SQS-triggered Lambda function with partial batch failures.

use std::sync::Arc;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use lambda_runtime::{Error, LambdaEvent, service_fn};

use crate::batch::{MessageHandler, QueueMessage, process_batch_noting};
use crate::notes::FailureNotes;

#[derive(Debug, thiserror::Error)]
pub enum LambdaAdapterError {
    /// Without an id a failure cannot be reported for just that message, so the whole
    /// invocation fails and SQS redelivers the batch.
    #[error("an SQS record has no messageId")]
    MissingMessageId,
    #[error("every message of the batch failed ({0} messages)")]
    AllFailed(usize),
}

/// Converts the Lambda event into the driver's messages.
pub fn messages_of(event: SqsEvent) -> Result<Vec<QueueMessage>, LambdaAdapterError> {
    event
        .records
        .into_iter()
        .map(|record| {
            let message_id = record
                .message_id
                .ok_or(LambdaAdapterError::MissingMessageId)?;
            let receive_count = record
                .attributes
                .get("ApproximateReceiveCount")
                .and_then(|c| c.parse().ok())
                .unwrap_or(1);
            let attributes = record
                .message_attributes
                .into_iter()
                .filter_map(|(name, attr)| attr.string_value.map(|v| (name, v)))
                .collect();
            Ok(QueueMessage {
                message_id,
                body: record.body.unwrap_or_default(),
                receive_count,
                attributes,
            })
        })
        .collect()
}

/// Handles one invocation: per-message failures become `batchItemFailures`; if every message
/// failed the invocation fails, which also makes the event source back off.
pub async fn handle_sqs_event(
    handler: Arc<dyn MessageHandler>,
    event: SqsEvent,
    concurrency: usize,
) -> Result<SqsBatchResponse, LambdaAdapterError> {
    handle_sqs_event_noting(handler, event, concurrency, None).await
}

/// [`handle_sqs_event`], writing a failure note per failed message when `notes` is given.
pub async fn handle_sqs_event_noting(
    handler: Arc<dyn MessageHandler>,
    event: SqsEvent,
    concurrency: usize,
    notes: Option<FailureNotes>,
) -> Result<SqsBatchResponse, LambdaAdapterError> {
    let messages = messages_of(event)?;
    let outcome = process_batch_noting(handler, messages, concurrency, notes).await;
    if outcome.all_failed() {
        return Err(LambdaAdapterError::AllFailed(outcome.failures.len()));
    }
    let mut response = SqsBatchResponse::default();
    for failure in outcome.failures {
        let mut item = BatchItemFailure::default();
        item.item_identifier = failure.message_id;
        response.batch_item_failures.push(item);
    }
    Ok(response)
}

/// The whole `main` of an SQS-triggered function after its adapters are built.
pub async fn run_sqs_function(
    handler: Arc<dyn MessageHandler>,
    concurrency: usize,
) -> Result<(), Error> {
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let handler = Arc::clone(&handler);
        async move { handle_sqs_event(handler, event.payload, concurrency).await }
    }))
    .await
}

/// [`run_sqs_function`] for a function whose failures the DLQ tooling should explain: every
/// failed message leaves a failure note for `notes`' queue (the one the function consumes).
pub async fn run_sqs_function_noting(
    handler: Arc<dyn MessageHandler>,
    concurrency: usize,
    notes: FailureNotes,
) -> Result<(), Error> {
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let handler = Arc::clone(&handler);
        let notes = notes.clone();
        async move { handle_sqs_event_noting(handler, event.payload, concurrency, Some(notes)).await }
    }))
    .await
}

impl From<LambdaAdapterError> for lambda_runtime::Diagnostic {
    fn from(error: LambdaAdapterError) -> Self {
        let error_type = match error {
            LambdaAdapterError::MissingMessageId => "MissingMessageId",
            LambdaAdapterError::AllFailed(_) => "BatchFailed",
        };
        Self {
            error_type: error_type.to_owned(),
            error_message: error.to_string(),
        }
    }
}
