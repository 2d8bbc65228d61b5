//! The fetch pipeline in the local host: the scheduler tick starts the demo task's run, the
//! fetcher pulls 10,000 sample contacts through 20 % injected 429/5xx, and every record reaches
//! the transform queue exactly once, with every retry going through the queue.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use hub_connectors::sample::ChaosConfig;
use hub_connectors::{
    BackoffPolicy, CircuitConfig, ConnectorCatalog, EgressPolicy, Fetcher, FetcherConfig,
    SampleConfig, SampleServer,
};
use hub_core::messages::{Envelope, RecordBatch, SyncJob};
use hub_core::model::TenantId;
use hub_core::ports::{Ports, ReceiveOptions, SystemClock, Topology};
use hub_fetch::{FetchConfig, FetchHandler, JobOutcome};
use hub_host::{Host, HostOptions, QueueFunction, TickHandler};
use hub_runtime::{HandlerError, MessageHandler, QueueMessage};
use hub_sync::SyncService;
use serde_json::{Value, json};

const RECORDS: u64 = 10_000;

/// The fetcher, noting what each job did.
struct Observed {
    fetcher: FetchHandler,
    outcomes: Mutex<Vec<JobOutcome>>,
}

#[async_trait]
impl MessageHandler for Observed {
    async fn handle(&self, message: &QueueMessage) -> Result<(), HandlerError> {
        let job = SyncJob::from_json(&message.body)
            .map_err(|e| HandlerError::permanent("invalid_message_body", e.to_string()))?;
        let outcome = self.fetcher.handle_job(&job).await?;
        self.outcomes.lock().unwrap().push(outcome);
        Ok(())
    }
}

struct Trigger(SyncService);

#[async_trait]
impl TickHandler for Trigger {
    async fn tick(&self, now: DateTime<Utc>) -> Result<(), HandlerError> {
        self.0
            .tick(now)
            .await
            .map(drop)
            .map_err(|e| HandlerError::retryable(e.code(), e.to_string()))
    }
}

/// The demo documents for this sample API, with the task's interval anchored so that its
/// first occurrence comes a second from now.
fn demo_documents(sample: &SampleServer, now: DateTime<Utc>) -> Vec<hub_config::ConfigDocument> {
    let files = [
        include_str!("../../infra/demo/10-definition.json"),
        include_str!("../../infra/demo/20-connection.json"),
        include_str!("../../infra/demo/30-integration.json"),
        include_str!("../../infra/demo/40-schema-contact.json"),
        include_str!("../../infra/demo/50-task-contacts.json"),
    ];
    let anchor = now - chrono::Duration::seconds(59);
    files
        .iter()
        .flat_map(|text| {
            let mut value: Value = serde_json::from_str(
                &text
                    .replace("${SAMPLE_BASE_URL}", &sample.base_url())
                    .replace("${SAMPLE_API_KEY}", sample.api().api_key()),
            )
            .unwrap();
            if value["kind"] == "SyncTask" {
                value["spec"]["createdAt"] = json!(anchor.to_rfc3339());
            }
            hub_config::parse_documents(&value.to_string()).unwrap()
        })
        .collect()
}

async fn embedded(dir: &std::path::Path) -> Ports {
    let dir = dir.to_owned();
    tokio::task::spawn_blocking(move || {
        hub_embedded::EmbeddedBackend::open(&dir, &Topology::default(), Arc::new(SystemClock))
    })
    .await
    .unwrap()
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_records_through_twenty_percent_failures_arrive_once() {
    let dir = tempfile::tempdir().unwrap();
    let ports = embedded(dir.path()).await;
    let sample = SampleServer::start(SampleConfig {
        contacts: RECORDS,
        chaos: ChaosConfig {
            rate_limited: 0.1,
            server_errors: 0.1,
            retry_after_seconds: 1,
            ..ChaosConfig::default()
        },
        ..SampleConfig::default()
    })
    .await
    .unwrap();
    for document in demo_documents(&sample, ports.clock.now()) {
        hub_config::apply(&ports, &document).await.unwrap();
    }

    let fetcher = Fetcher::new(
        FetcherConfig {
            egress: EgressPolicy::local_sandbox(),
            ..FetcherConfig::default()
        },
        Arc::clone(&ports.clock),
    )
    .unwrap();
    let config = FetchConfig {
        // Delays of one second at most, so the test stays short; the same code paths.
        backoff: BackoffPolicy {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(1),
            max_attempts: 8,
        },
        // Five failures in a row are rare but possible at 20 %; an open circuit would only
        // lengthen the test.
        circuit: CircuitConfig {
            failure_threshold: 20,
            cool_down: Duration::from_secs(2),
            ..CircuitConfig::default()
        },
        ..FetchConfig::default()
    };
    let observed = Arc::new(Observed {
        fetcher: FetchHandler::new(
            ports.clone(),
            ConnectorCatalog::builtin().unwrap(),
            fetcher,
            config,
        ),
        outcomes: Mutex::new(Vec::new()),
    });
    let sync = SyncService::new(ports.clone());
    let running = Host::new(
        ports.clone(),
        HostOptions {
            port: 0,
            tick: Duration::from_millis(200),
            receive_wait: Duration::from_millis(100),
            shutdown_grace: Duration::from_secs(2),
        },
    )
    .tick_function("sync-trigger", Arc::new(Trigger(sync.clone())))
    .queue_function(QueueFunction::new("fetcher", "fetch", observed.clone()))
    .start()
    .await
    .unwrap();

    let tenant = TenantId::parse("demo").unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(240);
    let record = loop {
        let page = sync
            .list_task_executions(&tenant, "sample-contacts", 1, None)
            .await
            .unwrap();
        if let Some(record) = page.executions.into_iter().next()
            && record.fetch_complete
        {
            break record;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the run did not finish fetching in time"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    running.stop().await.unwrap();

    let queue = ports.queue("transform").unwrap();
    let mut batches = 0;
    let mut records = 0;
    let mut ids = BTreeSet::new();
    loop {
        let received = queue.receive(ReceiveOptions::default()).await.unwrap();
        if received.is_empty() {
            break;
        }
        for message in received {
            let batch = RecordBatch::from_json(&message.body).unwrap();
            batches += 1;
            records += batch.records.len();
            ids.extend(
                batch
                    .records
                    .iter()
                    .map(|r| r["id"].as_str().unwrap().to_owned()),
            );
            queue.delete(&message.receipt_handle).await.unwrap();
        }
    }
    assert_eq!(ids.len() as u64, RECORDS, "every record fetched");
    assert_eq!(records as u64, RECORDS, "and none twice");
    assert_eq!(record.execution.results.fetched, RECORDS);
    assert_eq!(record.pages_fetched, RECORDS / 100);
    assert_eq!(record.batches_enqueued, batches);
    assert_eq!(record.error_count, 0, "{:?}", record.last_error);

    // Every failure cost one API call and came back through the queue as a new job: no job
    // called the API more than once, so none waited (slept) for a retry.
    let stats = sample.api().stats();
    let outcomes = observed.outcomes.lock().unwrap().clone();
    let fetched = outcomes
        .iter()
        .filter(|o| matches!(o, JobOutcome::Fetched { .. }))
        .count() as u64;
    let retried = outcomes
        .iter()
        .filter(|o| matches!(o, JobOutcome::Retrying { .. }))
        .count() as u64;
    assert_eq!(fetched, RECORDS / 100);
    assert!(retried > 0, "the chaos injected failures");
    assert_eq!(retried, stats.rate_limited + stats.server_errors);
    assert_eq!(stats.requests, fetched + retried, "one API call per job");
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, JobOutcome::Fetched { .. } | JobOutcome::Retrying { .. })),
        "{outcomes:?}"
    );
    sample.shutdown(Duration::from_secs(1)).await;
}
