//! The fetcher's Lambda input (`events/sqs/fetcher-sync-jobs.json`) through the Lambda adapter.

use aws_lambda_events::event::sqs::SqsEvent;
use hub_runtime::lambda::handle_sqs_event;

use crate::support::{embedded, test_config};

/// The execution id in the fixture, replaced by the test run's.
const PLACEHOLDER: &str = "01JFETCHEREXAMPLE000000000";

#[tokio::test]
async fn a_sync_job_batch_from_sqs() {
    let env = embedded(100, test_config()).await;
    let execution = env.run().await;
    // The trigger's own first job is not needed: the fixture carries the run's page 0.
    env.drain("fetch").await;
    let path = format!(
        "{}/../../events/sqs/fetcher-sync-jobs.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(PLACEHOLDER));
    let event: SqsEvent = serde_json::from_str(&text.replace(PLACEHOLDER, &execution)).unwrap();

    // One message at a time, so the second copy of page 0 finds it done.
    let response = handle_sqs_event(env.handler.clone(), event, 1)
        .await
        .unwrap();
    let failed: Vec<_> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(
        failed,
        ["d4c3b2a1-0f9e-4d8c-b7a6-5f4e3d2c1b0a"],
        "only the bad body"
    );

    let batches = env.batches().await;
    assert_eq!(batches.len(), 1, "page 0 sent once");
    assert_eq!(batches[0].records.len(), 100);
    let record = env.execution(&execution).await;
    assert_eq!(record.execution.results.fetched, 100);
    assert!(record.fetch_complete);
}
