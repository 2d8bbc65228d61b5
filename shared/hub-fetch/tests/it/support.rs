//! Test environments: the demo tenant (infra/demo) pointing at a sample API on loopback, on the
//! embedded backend with a `ManualClock` or on moto, an `events` queue receiving every bus
//! event, and helpers to drive the fetch queue one message at a time.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use hub_connectors::sample::ChaosConfig;
use hub_connectors::{
    ConnectorCatalog, EgressPolicy, Fetcher, FetcherConfig, SampleConfig, SampleServer,
};
use hub_core::messages::{Envelope, RecordBatch, SyncJob};
use hub_core::model::TenantId;
use hub_core::ports::{
    Clock, IdGenerator, ManualClock, Ports, QueueDepth, QueueSpec, ReceiveOptions, RuleSpec,
    SystemClock, Topology, UlidGenerator,
};
use hub_fetch::{FetchConfig, FetchError, FetchHandler, JobOutcome};
use hub_runtime::{HandlerError, MessageHandler, QueueMessage};
use hub_sync::{ExecutionRecord, SyncService};
use serde_json::{Value, json};

pub const EVENTS: &str = "events";
pub const TASK: &str = "sample-contacts";
pub const START: &str = "2025-01-01T10:00:00Z";

pub fn tenant() -> TenantId {
    TenantId::parse("demo").unwrap()
}

pub fn utc(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().to_utc()
}

fn topology(prefix: &str) -> Topology {
    let mut topology = Topology::new(prefix);
    topology.queues.push(QueueSpec {
        logical_name: EVENTS.into(),
        visibility_timeout: Duration::from_secs(30),
        retention: Duration::from_secs(3600),
        redrive: None,
    });
    topology.rules.push(RuleSpec {
        name: "all-hub-events".into(),
        pattern: json!({"source": ["hub.sync", "hub.connections"]}),
        target_queue: EVENTS.into(),
    });
    topology
}

/// The demo documents as `hub dev --demo` applies them, for this sample API. The task's
/// schedule is made manual: the tests start runs themselves.
pub fn demo_documents(base_url: &str, api_key: &str) -> Vec<hub_config::ConfigDocument> {
    let files = [
        include_str!("../../../../infra/demo/10-definition.json"),
        include_str!("../../../../infra/demo/20-connection.json"),
        include_str!("../../../../infra/demo/30-integration.json"),
        include_str!("../../../../infra/demo/40-schema-contact.json"),
        include_str!("../../../../infra/demo/50-task-contacts.json"),
    ];
    let mut documents = Vec::new();
    for text in files {
        let mut value: Value = serde_json::from_str(
            &text
                .replace("${SAMPLE_BASE_URL}", base_url)
                .replace("${SAMPLE_API_KEY}", api_key),
        )
        .unwrap();
        if value["kind"] == "SyncTask" {
            value["spec"]["schedule"] = json!({"type": "manual", "config": {"type": "manual"}});
        }
        documents.extend(hub_config::parse_documents(&value.to_string()).unwrap());
    }
    documents
}

/// Fast retries for tests: 1 s ceilings, jitter pinned to the ceiling.
pub fn test_config() -> FetchConfig {
    FetchConfig {
        backoff: hub_connectors::BackoffPolicy {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(1),
            max_attempts: 4,
        },
        jitter: || 1.0,
        ..FetchConfig::default()
    }
}

pub struct Env {
    pub clock: Arc<ManualClock>,
    pub ports: Ports,
    pub sync: SyncService,
    pub sample: SampleServer,
    pub handler: Arc<FetchHandler>,
    /// Receipt handles of the fetch jobs received and not yet deleted, by message id.
    receipts: Mutex<BTreeMap<String, String>>,
    _dir: Option<tempfile::TempDir>,
}

pub fn sample_config(contacts: u64) -> SampleConfig {
    SampleConfig {
        contacts,
        chaos: ChaosConfig {
            retry_after_seconds: 0,
            ..ChaosConfig::default()
        },
        ..SampleConfig::default()
    }
}

pub async fn embedded(contacts: u64, config: FetchConfig) -> Env {
    embedded_with(sample_config(contacts), config).await
}

pub async fn embedded_with(sample: SampleConfig, config: FetchConfig) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(utc(START)));
    let path = dir.path().to_owned();
    let backend_clock: Arc<dyn Clock> = clock.clone();
    let ports = tokio::task::spawn_blocking(move || {
        hub_embedded::EmbeddedBackend::open(&path, &topology("hub"), backend_clock).unwrap()
    })
    .await
    .unwrap();
    Env::new(clock, ports, sample, config, Some(dir)).await
}

/// The AWS backend on the shared moto server, in a region and under a prefix of its own;
/// `None` (after saying so) when moto is not installed.
pub async fn aws(test: &str, contacts: u64, config: FetchConfig) -> Option<Env> {
    static NEXT_REGION: AtomicU64 = AtomicU64::new(1);
    let server = hub_testkit::moto::MotoServer::shared_or_skip(test)?;
    let prefix = format!(
        "f{}",
        &UlidGenerator::new(SystemClock).new_id().to_lowercase()[16..]
    );
    let region = format!("fetch-{}", NEXT_REGION.fetch_add(1, Ordering::Relaxed));
    let settings = hub_aws::AwsSettings::emulator(server.endpoint()).region(region);
    let topology = topology(&prefix);
    hub_aws::bootstrap(&settings, &topology).await.unwrap();
    let clock = Arc::new(ManualClock::new(utc(START)));
    let ports = hub_aws::connect(&settings, &topology, clock.clone())
        .await
        .unwrap();
    Some(Env::new(clock, ports, sample_config(contacts), config, None).await)
}

/// A fetch handler on `ports` with the local sandbox's egress policy.
pub fn handler(
    ports: &Ports,
    clock: Arc<ManualClock>,
    catalog: ConnectorCatalog,
    config: FetchConfig,
) -> FetchHandler {
    let fetcher = Fetcher::new(
        FetcherConfig {
            egress: EgressPolicy::local_sandbox(),
            request_timeout: Duration::from_secs(10),
            ..FetcherConfig::default()
        },
        clock,
    )
    .unwrap();
    FetchHandler::new(ports.clone(), catalog, fetcher, config)
}

impl Env {
    async fn new(
        clock: Arc<ManualClock>,
        ports: Ports,
        sample: SampleConfig,
        config: FetchConfig,
        dir: Option<tempfile::TempDir>,
    ) -> Env {
        let sample = SampleServer::start(sample).await.unwrap();
        for document in demo_documents(&sample.base_url(), sample.api().api_key()) {
            hub_config::apply(&ports, &document).await.unwrap();
        }
        let handler = Arc::new(handler(
            &ports,
            clock.clone(),
            ConnectorCatalog::builtin().unwrap(),
            config,
        ));
        Env {
            sync: SyncService::new(ports.clone()),
            clock,
            ports,
            sample,
            handler,
            receipts: Mutex::new(BTreeMap::new()),
            _dir: dir,
        }
    }

    /// Points the demo tenant integration at another API.
    pub async fn set_base_url(&self, base_url: &str) {
        let document = json!({
            "kind": "TenantIntegration",
            "tenantId": "demo",
            "spec": {
                "id": "sample-crm",
                "integrationId": "sample",
                "status": "connected",
                "connectionId": "sample-api",
                "settings": {"baseUrl": base_url}
            }
        });
        for document in hub_config::parse_documents(&document.to_string()).unwrap() {
            hub_config::apply(&self.ports, &document).await.unwrap();
        }
    }

    pub fn clock_ms(&self) -> i64 {
        self.clock.now().timestamp_millis()
    }

    pub fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }

    /// Starts a run of the demo task; its first job is on the fetch queue.
    pub async fn run(&self) -> String {
        self.sync
            .run_now(&tenant(), TASK, Some("test"))
            .await
            .unwrap()
            .execution
            .id
    }

    pub async fn execution(&self, id: &str) -> ExecutionRecord {
        self.sync.get_execution(&tenant(), id).await.unwrap()
    }

    pub async fn depth(&self, queue: &str) -> QueueDepth {
        self.ports.queue(queue).unwrap().depth().await.unwrap()
    }

    /// Receives one visible fetch job (without deleting it).
    pub async fn receive_job(&self) -> Option<QueueMessage> {
        let queue = self.ports.queue("fetch").unwrap();
        let received = queue
            .receive(ReceiveOptions {
                max_messages: 1,
                ..ReceiveOptions::default()
            })
            .await
            .unwrap();
        received.into_iter().next().map(|m| {
            let message = QueueMessage {
                message_id: m.message_id,
                body: m.body,
                receive_count: m.receive_count,
                attributes: BTreeMap::new(),
            };
            self.receipts
                .lock()
                .unwrap()
                .insert(message.message_id.clone(), m.receipt_handle);
            message
        })
    }

    /// Handles a message as the queue worker does: deleted when it succeeded.
    pub async fn handle(&self, message: &QueueMessage) -> Result<(), HandlerError> {
        let result = self.handler.handle(message).await;
        if result.is_ok() {
            let receipt = self.receipts.lock().unwrap().remove(&message.message_id);
            if let Some(receipt) = receipt {
                self.ports
                    .queue("fetch")
                    .unwrap()
                    .delete(&receipt)
                    .await
                    .unwrap();
            }
        }
        result
    }

    /// Receives and handles the next visible job; `None` when there is none.
    pub async fn step(&self) -> Option<(SyncJob, Result<JobOutcome, FetchError>)> {
        let message = self.receive_job().await?;
        let job = SyncJob::from_json(&message.body).unwrap();
        let outcome = self.handler.handle_job(&job).await;
        if outcome.is_ok() {
            let receipt = self.receipts.lock().unwrap().remove(&message.message_id);
            if let Some(receipt) = receipt {
                self.ports
                    .queue("fetch")
                    .unwrap()
                    .delete(&receipt)
                    .await
                    .unwrap();
            }
        }
        Some((job, outcome))
    }

    /// Every batch on the transform queue, deleted.
    pub async fn batches(&self) -> Vec<RecordBatch> {
        self.drain("transform")
            .await
            .iter()
            .map(|body| RecordBatch::from_json(body).unwrap())
            .collect()
    }

    pub async fn drain(&self, queue: &str) -> Vec<String> {
        hub_testkit::drain(&*self.ports.queue(queue).unwrap()).await
    }

    /// Bus events delivered to the `events` queue: (detail type, detail).
    pub async fn events(&self) -> Vec<(String, Value)> {
        hub_testkit::drain_events(&*self.ports.queue(EVENTS).unwrap()).await
    }
}
