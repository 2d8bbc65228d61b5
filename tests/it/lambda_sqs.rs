//! The Lambda adaptation of the batch driver, fed with the sample events in `events/`.

use std::sync::Arc;

use async_trait::async_trait;
use aws_lambda_events::event::sqs::SqsEvent;
use hub_runtime::lambda::{LambdaAdapterError, handle_sqs_event};
use hub_runtime::{HandlerError, MessageHandler, QueueMessage};

struct FailsOnBadJson;

#[async_trait]
impl MessageHandler for FailsOnBadJson {
    async fn handle(&self, message: &QueueMessage) -> Result<(), HandlerError> {
        serde_json::from_str::<serde_json::Value>(&message.body)
            .map(drop)
            .map_err(|e| HandlerError::permanent("invalid_message_body", e.to_string()))
    }
}

fn event(name: &str) -> SqsEvent {
    let path = format!("{}/../events/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[tokio::test]
async fn only_the_bad_message_is_reported() {
    let response = handle_sqs_event(
        Arc::new(FailsOnBadJson),
        event("sqs/batch-one-bad-body.json"),
        4,
    )
    .await
    .unwrap();
    let failed: Vec<_> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(failed, ["2e1424d4-f796-459a-8184-9c92662be6da"]);
}

#[tokio::test]
async fn a_batch_that_fails_entirely_fails_the_invocation() {
    let result =
        handle_sqs_event(Arc::new(FailsOnBadJson), event("sqs/batch-all-bad.json"), 4).await;
    assert!(matches!(result, Err(LambdaAdapterError::AllFailed(2))));
}

#[tokio::test]
async fn a_record_without_message_id_fails_the_invocation() {
    let result = handle_sqs_event(
        Arc::new(FailsOnBadJson),
        event("sqs/batch-missing-message-id.json"),
        4,
    )
    .await;
    assert!(matches!(result, Err(LambdaAdapterError::MissingMessageId)));
}
