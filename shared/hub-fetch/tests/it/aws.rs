//! The fetch handler on the AWS adapters (moto): pages, batches, next jobs and a redelivery.

use std::collections::BTreeSet;

use hub_core::messages::{Envelope, SyncJob};
use hub_fetch::JobOutcome;

use crate::support::{aws, test_config};

#[tokio::test]
async fn pages_flow_to_the_transform_queue_on_aws() {
    let Some(env) = aws(
        "pages_flow_to_the_transform_queue_on_aws",
        230,
        test_config(),
    )
    .await
    else {
        return;
    };
    let execution = env.run().await;
    let first = env.receive_job().await.unwrap();
    let first_job = SyncJob::from_json(&first.body).unwrap();
    env.handle(&first).await.unwrap();
    let mut outcomes = Vec::new();
    while let Some((_, outcome)) = env.step().await {
        outcomes.push(outcome.unwrap());
    }
    assert_eq!(
        outcomes,
        [
            JobOutcome::Fetched {
                records: 100,
                batches: 1,
                last_page: false
            },
            JobOutcome::Fetched {
                records: 30,
                batches: 1,
                last_page: true
            }
        ]
    );
    // A late redelivery of the first page does nothing.
    assert_eq!(
        env.handler.handle_job(&first_job).await.unwrap(),
        JobOutcome::AlreadyDone
    );

    let batches = env.batches().await;
    let ids: BTreeSet<String> = batches
        .iter()
        .flat_map(|b| b.records.iter())
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!((batches.len(), ids.len()), (3, 230));
    let record = env.execution(&execution).await;
    assert_eq!(record.execution.results.fetched, 230);
    assert_eq!((record.pages_fetched, record.batches_enqueued), (3, 3));
    assert!(record.fetch_complete);
}
