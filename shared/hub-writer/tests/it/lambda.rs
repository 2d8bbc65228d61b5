//! The writer's handler behind the Lambda adaptation, fed with the sample events in `events/`.

use std::sync::Arc;

use aws_lambda_events::event::sqs::SqsEvent;
use hub_runtime::lambda::handle_sqs_event;
use hub_writer::WriteHandler;

use crate::support;

fn event(name: &str) -> SqsEvent {
    let path = format!("{}/../../events/sqs/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

async fn stored(env: &support::Env, external_id: &str) -> Option<hub_writer::StoredRecord> {
    hub_writer::get_record(
        env.ports.records.as_ref(),
        "acme",
        "c_contact",
        &format!("external_id:{external_id}"),
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn a_good_batch_is_written() {
    let env = support::embedded().await;
    let handler = Arc::new(WriteHandler::new(env.writer.clone()));
    let response = handle_sqs_event(handler.clone(), event("writer-batch.json"), 4)
        .await
        .unwrap();
    assert!(response.batch_item_failures.is_empty());
    for id in ["003A1", "003A2", "003A3"] {
        let record = stored(&env, id).await.unwrap();
        assert_eq!(record.lineage.execution_id, None);
        assert!(record.lineage.delivery_id.unwrap().starts_with("evt-100"));
    }
    assert_eq!(
        stored(&env, "003A1").await.unwrap().data["email"],
        "ada@example.com"
    );
    // Delivered again (SQS is at least once): nothing changes.
    let response = handle_sqs_event(handler, event("writer-batch.json"), 4)
        .await
        .unwrap();
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(stored(&env, "003A1").await.unwrap().version, 1);
}

#[tokio::test]
async fn only_the_malformed_body_is_reported() {
    let env = support::embedded().await;
    let handler = Arc::new(WriteHandler::new(env.writer.clone()));
    let response = handle_sqs_event(handler, event("writer-batch-malformed-body.json"), 4)
        .await
        .unwrap();
    let failed: Vec<_> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(failed, ["a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c44"]);
    assert!(stored(&env, "003B1").await.is_some());
}
