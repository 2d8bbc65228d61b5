//! The SQS batch driver: runs a handler once per message and reports the messages that failed,
//! so only those are redelivered (Lambda's `ReportBatchItemFailures`). The same driver runs
//! under Lambda and in the local host's queue workers.
//!
//! A message whose handler returns an error, panics, or whose body does not parse is that
//! message's failure and nobody else's.

use std::collections::BTreeMap;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;

use async_trait::async_trait;
use futures::{FutureExt, StreamExt};
use serde::de::DeserializeOwned;
use tracing::Instrument;

use crate::notes::FailureNotes;

/// One message of a batch, as both SQS-to-Lambda events and our `Queue` port deliver it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueMessage {
    pub message_id: String,
    pub body: String,
    /// 1 on the first delivery.
    pub receive_count: u32,
    pub attributes: BTreeMap<String, String>,
}

/// Why one message failed. `code` is stable snake_case for dashboards and the DLQ tooling;
/// `message` is for people and must not contain secrets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct HandlerError {
    pub code: String,
    pub message: String,
    /// False when redelivery cannot help (the message will reach the DLQ after its receives).
    pub retryable: bool,
}

impl HandlerError {
    pub fn retryable(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
            retryable: true,
        }
    }

    pub fn permanent(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
            retryable: false,
        }
    }

    /// A body that does not parse as what the queue carries
    /// ([`hub_core::messages::INVALID_MESSAGE_BODY`]): permanent, it will never parse.
    pub fn invalid_message_body(message: impl Into<String>) -> Self {
        Self::permanent(hub_core::messages::INVALID_MESSAGE_BODY, message)
    }
}

#[async_trait]
pub trait MessageHandler: Send + Sync {
    async fn handle(&self, message: &QueueMessage) -> Result<(), HandlerError>;
}

/// A handler of typed bodies: the body is parsed as JSON into `T` first; a body that does not
/// parse is a permanent failure of that message (`invalid_message_body`).
pub struct JsonHandler<T, F> {
    handle: F,
    _body: PhantomData<fn() -> T>,
}

impl<T, F, Fut> JsonHandler<T, F>
where
    T: DeserializeOwned + Send + 'static,
    F: Fn(T, QueueMessage) -> Fut + Send + Sync,
    Fut: Future<Output = Result<(), HandlerError>> + Send,
{
    pub fn new(handle: F) -> Self {
        Self {
            handle,
            _body: PhantomData,
        }
    }
}

#[async_trait]
impl<T, F, Fut> MessageHandler for JsonHandler<T, F>
where
    T: DeserializeOwned + Send + 'static,
    F: Fn(T, QueueMessage) -> Fut + Send + Sync,
    Fut: Future<Output = Result<(), HandlerError>> + Send,
{
    async fn handle(&self, message: &QueueMessage) -> Result<(), HandlerError> {
        let body: T = serde_json::from_str(&message.body).map_err(|e| {
            HandlerError::invalid_message_body(format!("the body does not parse: {e}"))
        })?;
        (self.handle)(body, message.clone()).await
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemFailure {
    pub message_id: String,
    pub error: HandlerError,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    pub succeeded: Vec<String>,
    pub failures: Vec<ItemFailure>,
}

impl BatchOutcome {
    /// Every message failed: Lambda should fail the invocation (which also backs off the
    /// event source's concurrency) rather than report each item.
    pub fn all_failed(&self) -> bool {
        self.succeeded.is_empty() && !self.failures.is_empty()
    }
}

/// Runs `handler` on every message, at most `concurrency` at a time; a panic fails only its
/// message.
pub async fn process_batch(
    handler: Arc<dyn MessageHandler>,
    messages: Vec<QueueMessage>,
    concurrency: usize,
) -> BatchOutcome {
    process_batch_noting(handler, messages, concurrency, None).await
}

/// [`process_batch`], writing a [failure note](crate::notes) for every message that fails
/// (body that does not parse, handler error or panic) when `notes` is given: what the DLQ
/// tooling shows as the reason a message is dead. A note that cannot be written changes
/// nothing about the outcome.
pub async fn process_batch_noting(
    handler: Arc<dyn MessageHandler>,
    messages: Vec<QueueMessage>,
    concurrency: usize,
    notes: Option<FailureNotes>,
) -> BatchOutcome {
    let notes = notes.as_ref();
    let results = futures::stream::iter(messages)
        .map(|message| {
            let handler = Arc::clone(&handler);
            async move {
                let id = message.message_id.clone();
                let span = tracing::info_span!("message", message_id = %id, receive_count = message.receive_count);
                // Panics are caught per message; no task is spawned, so cancelling the batch
                // (the host's shutdown) cancels every handler in it.
                let handled = std::panic::AssertUnwindSafe(handler.handle(&message))
                    .catch_unwind()
                    .instrument(span)
                    .await;
                let result = handled.unwrap_or_else(|_panic| {
                    Err(HandlerError::retryable(
                        "handler_panicked",
                        "the handler panicked while processing this message",
                    ))
                });
                if let (Err(error), Some(notes)) = (&result, notes) {
                    notes.record(&message, error).await;
                }
                (id, result)
            }
        })
        .buffer_unordered(concurrency.max(1))
        .collect::<Vec<_>>()
        .await;

    let mut outcome = BatchOutcome::default();
    for (message_id, result) in results {
        match result {
            Ok(()) => outcome.succeeded.push(message_id),
            Err(error) => {
                tracing::warn!(%message_id, code = %error.code, retryable = error.retryable, "message failed: {}", error.message);
                outcome.failures.push(ItemFailure { message_id, error });
            }
        }
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    fn msg(id: &str, body: &str) -> QueueMessage {
        QueueMessage {
            message_id: id.into(),
            body: body.into(),
            receive_count: 1,
            attributes: BTreeMap::new(),
        }
    }

    #[derive(Deserialize)]
    struct Job {
        n: i64,
    }

    fn handler() -> Arc<dyn MessageHandler> {
        Arc::new(JsonHandler::new(|job: Job, _m: QueueMessage| async move {
            match job.n {
                n if n < 0 => Err(HandlerError::permanent("negative", "n is negative")),
                13 => panic!("unlucky"),
                _ => Ok(()),
            }
        }))
    }

    #[tokio::test]
    async fn failures_are_reported_per_message() {
        let batch = vec![
            msg("ok", r#"{"n":1}"#),
            msg("bad-body", "not json"),
            msg("neg", r#"{"n":-1}"#),
            msg("panics", r#"{"n":13}"#),
            msg("ok2", r#"{"n":2}"#),
        ];
        let outcome = process_batch(handler(), batch, 3).await;
        let mut ok = outcome.succeeded.clone();
        ok.sort();
        assert_eq!(ok, ["ok", "ok2"]);
        let mut failed: Vec<_> = outcome
            .failures
            .iter()
            .map(|f| (f.message_id.as_str(), f.error.code.as_str()))
            .collect();
        failed.sort();
        assert_eq!(
            failed,
            [
                ("bad-body", "invalid_message_body"),
                ("neg", "negative"),
                ("panics", "handler_panicked")
            ]
        );
        assert!(!outcome.all_failed());
    }

    #[tokio::test]
    async fn a_batch_where_everything_fails_says_so() {
        let outcome = process_batch(handler(), vec![msg("a", "x"), msg("b", "y")], 1).await;
        assert!(outcome.all_failed());
        let empty = process_batch(handler(), vec![], 1).await;
        assert!(!empty.all_failed());
    }
}
