//! Test environments: the embedded backend on a temp dir, or the AWS backend on moto, both with
//! a `ManualClock`, an `events` queue receiving every `hub.sync` bus event, and a state store
//! whose transactions can be made to fail (a writer dying before it counts its batch).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use hub_core::keys;
use hub_core::messages::{
    BatchSource, BusDetail, EntityJson, Lineage, PollSource, V1, WebhookSource, WriteBatch,
    WriteItem, WriteTarget,
};
use hub_core::model::{RunStatus, SyncTask, TenantId, load_value};
use hub_core::ports::{
    Clock, IdGenerator, ManualClock, Ports, QueueSpec, RuleSpec, StoreError, SystemClock, Topology,
    UlidGenerator,
};
use hub_sync::{ExecutionRecord, SyncService};
use hub_testkit::faults::{FaultyState, StateCall};
use hub_writer::{Completion, PageEnqueued, StoredRecord, Writer, WriterConfig};
use serde_json::{Map, Value, json};

pub const EVENTS: &str = "events";
pub const START: &str = "2025-01-01T10:00:00Z";
pub const ENTITY: &str = "c_contact";
pub const INTEGRATION: &str = "crm";
pub const TENANT_INTEGRATION: &str = "ti-crm";

pub fn utc(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().to_utc()
}

pub fn tenant() -> TenantId {
    TenantId::parse("acme").unwrap()
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
        name: "sync-events".into(),
        pattern: json!({"source": ["hub.sync"]}),
        target_queue: EVENTS.into(),
    });
    topology
}

/// Faults for the state store's transactions: they fail while `failing` is set, as a writer
/// that dies after writing its records and before counting its batch.
pub struct FlakyState {
    pub failing: AtomicBool,
    /// Transactions that may still succeed before every later one fails as with `failing`
    /// (`u64::MAX`: no limit): a writer that dies part-way through completing a run.
    pub transactions_left: AtomicU64,
}

impl FlakyState {
    fn check(&self, call: StateCall) -> Result<(), StoreError> {
        if call != StateCall::TransactWrite {
            return Ok(());
        }
        if self.failing.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable("injected failure".into()));
        }
        let spent = self
            .transactions_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| match left {
                u64::MAX => Some(left),
                0 => None,
                _ => Some(left - 1),
            })
            .is_err();
        if spent {
            return Err(StoreError::Unavailable("injected failure".into()));
        }
        Ok(())
    }
}

pub struct Env {
    pub clock: Arc<ManualClock>,
    pub ports: Ports,
    pub writer: Writer,
    /// A second writer on an independent handle of the same data (another Lambda).
    pub other: Writer,
    pub sync: SyncService,
    pub state: Arc<FlakyState>,
    _dir: Option<tempfile::TempDir>,
}

pub fn config() -> WriterConfig {
    WriterConfig {
        retry_deadline: Duration::from_millis(300),
        ..WriterConfig::default()
    }
}

fn with_flaky_state(mut ports: Ports) -> (Ports, Arc<FlakyState>) {
    let state = Arc::new(FlakyState {
        failing: AtomicBool::new(false),
        transactions_left: AtomicU64::new(u64::MAX),
    });
    let faults = Arc::clone(&state);
    ports.state = Arc::new(FaultyState::new(ports.state.clone(), move |call| {
        faults.check(call)
    }));
    (ports, state)
}

fn env(clock: Arc<ManualClock>, ports: Ports, other: Ports, dir: Option<tempfile::TempDir>) -> Env {
    let (ports, state) = with_flaky_state(ports);
    Env {
        clock,
        writer: Writer::with_config(ports.clone(), config()),
        other: Writer::with_config(other, config()),
        sync: SyncService::new(ports.clone()),
        ports,
        state,
        _dir: dir,
    }
}

pub async fn embedded() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(utc(START)));
    let open = |path: std::path::PathBuf, clock: Arc<dyn Clock>| {
        tokio::task::spawn_blocking(move || {
            hub_embedded::EmbeddedBackend::open(&path, &topology("hub"), clock).unwrap()
        })
    };
    let ports = open(dir.path().to_owned(), clock.clone()).await.unwrap();
    let other = open(dir.path().to_owned(), clock.clone()).await.unwrap();
    env(clock, ports, other, Some(dir))
}

/// The AWS backend on the shared moto server, in a region and under a prefix of its own;
/// `None` (after saying so) when moto is not installed.
pub async fn aws(test: &str) -> Option<Env> {
    static NEXT_REGION: AtomicU64 = AtomicU64::new(1);
    let server = hub_testkit::moto::MotoServer::shared_or_skip(test)?;
    let prefix = format!(
        "w{}",
        &UlidGenerator::new(SystemClock).new_id().to_lowercase()[16..]
    );
    let region = format!("writer-{}", NEXT_REGION.fetch_add(1, Ordering::Relaxed));
    let settings = hub_aws::AwsSettings::emulator(server.endpoint()).region(region);
    let topology = topology(&prefix);
    hub_aws::bootstrap(&settings, &topology).await.unwrap();
    let clock = Arc::new(ManualClock::new(utc(START)));
    let connect = || hub_aws::connect(&settings, &topology, clock.clone());
    let ports = connect().await.unwrap();
    let other = connect().await.unwrap();
    Some(env(clock, ports, other, None))
}

/// A task of a manual schedule, incremental or full.
pub fn task(id: &str, incremental: bool) -> SyncTask {
    load_value(json!({
        "id": id,
        "tenantIntegrationId": TENANT_INTEGRATION,
        "name": format!("task {id}"),
        "conversionSchemaId": "contacts",
        "direction": "pull",
        "schedule": {"type": "manual", "config": {"type": "manual"}},
        "config": {"incrementalSync": incremental},
        "status": "active",
        "notifications": {
            "onSuccess": true, "onFailure": true, "onPartial": true,
            "recipients": ["ops@example.com"]
        }
    }))
    .unwrap()
}

/// A source record as the transformer hands it on: `hash` stands for the payload hash,
/// `modified` for the source's modification time.
pub struct Rec<'a> {
    pub external_id: &'a str,
    pub hash: &'a str,
    pub modified: Option<&'a str>,
}

pub fn rec<'a>(external_id: &'a str, hash: &'a str, modified: &'a str) -> Rec<'a> {
    Rec {
        external_id,
        hash,
        modified: Some(modified),
    }
}

pub fn dedup_key(external_id: &str) -> String {
    format!("external_id:{external_id}")
}

impl Env {
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    pub fn advance(&self, seconds: u64) {
        self.clock.advance(Duration::from_secs(seconds));
    }

    /// Puts the task (if new) and starts a run of it; the first fetch job is drained.
    pub async fn start_run(&self, task_id: &str, incremental: bool) -> String {
        let t = tenant();
        if self.sync.get_task(&t, task_id).await.is_err() {
            self.sync
                .put_task(&t, task(task_id, incremental))
                .await
                .unwrap();
        }
        let id = self
            .sync
            .run_now(&t, task_id, None)
            .await
            .unwrap()
            .execution
            .id;
        self.drain("fetch").await;
        self.drain(EVENTS).await;
        id
    }

    pub async fn page(
        &self,
        execution: &str,
        page: u32,
        batches: u32,
        cursor: Option<&str>,
        last_page: bool,
    ) -> Completion {
        self.writer
            .record_page_enqueued(
                &tenant(),
                execution,
                PageEnqueued {
                    page,
                    batches,
                    cursor_candidate: cursor.map(str::to_owned),
                    last_page,
                },
            )
            .await
            .unwrap()
            .completion
    }

    pub async fn record(&self, external_id: &str) -> Option<StoredRecord> {
        hub_writer::get_record(
            self.ports.records.as_ref(),
            tenant().as_str(),
            ENTITY,
            &dedup_key(external_id),
        )
        .await
        .unwrap()
    }

    pub async fn execution(&self, id: &str) -> ExecutionRecord {
        self.sync.get_execution(&tenant(), id).await.unwrap()
    }

    pub async fn cursor(&self, task_id: &str) -> Option<String> {
        self.ports
            .state
            .get(&keys::cursor("acme", task_id))
            .await
            .unwrap()
            .and_then(|item| {
                item.get("cursor")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
    }

    pub async fn drain(&self, queue: &str) -> Vec<String> {
        hub_testkit::drain(&*self.ports.queue(queue).unwrap()).await
    }

    /// Detail types of the bus events delivered since the last call.
    pub async fn events(&self) -> Vec<(String, Value)> {
        hub_testkit::drain_events(&*self.ports.queue(EVENTS).unwrap()).await
    }

    pub async fn finished_events(&self) -> Vec<hub_core::messages::SyncFinished> {
        self.events()
            .await
            .into_iter()
            .filter(|(detail_type, _)| {
                detail_type.starts_with("sync.") && detail_type != "sync.started"
            })
            .map(|(detail_type, detail)| {
                let detail: hub_core::messages::SyncFinished =
                    hub_core::messages::decode_from_value(detail).unwrap();
                assert_eq!(detail.detail_type(), detail_type);
                detail
            })
            .collect()
    }
}

pub fn poll_source(page: u32, part: u32, parts: u32) -> BatchSource {
    BatchSource::Poll(PollSource {
        page,
        page_token: (page > 0).then(|| format!("token-{page}")),
        part,
        parts,
    })
}

/// A write batch of a run (or of a webhook when `execution` is `None`) with one item per record.
pub fn batch(
    execution: Option<&str>,
    source: BatchSource,
    records: &[Rec<'_>],
    target: WriteTarget,
) -> WriteBatch {
    let items = records
        .iter()
        .enumerate()
        .map(|(index, rec)| WriteItem {
            external_id: rec.external_id.to_owned(),
            dedup_key: dedup_key(rec.external_id),
            data: EntityJson::from_map(&data(rec)).unwrap(),
            source_modified_at: rec.modified.map(utc),
            payload_hash: rec.hash.to_owned(),
            lineage: Lineage {
                execution_id: execution.map(str::to_owned),
                source: source.clone(),
                record_index: u32::try_from(index).unwrap(),
                schema_id: "contacts".into(),
                schema_version: 3,
            },
        })
        .collect();
    WriteBatch {
        v: V1,
        execution_id: execution.map(str::to_owned),
        tenant_id: tenant(),
        tenant_integration_id: TENANT_INTEGRATION.into(),
        integration_id: INTEGRATION.into(),
        target_entity_type: ENTITY.into(),
        items,
        errors: Vec::new(),
        cursor_commit: None,
        source: Some(source),
        source_entity: Some("Contact".into()),
        target: Some(target),
    }
}

pub fn data(rec: &Rec<'_>) -> Map<String, Value> {
    json!({"name": format!("Contact {}", rec.external_id), "version": rec.hash})
        .as_object()
        .cloned()
        .unwrap()
}

pub fn webhook_source(delivery: &str) -> BatchSource {
    BatchSource::Webhook(WebhookSource::whole(delivery))
}

pub fn run_target() -> WriteTarget {
    WriteTarget::default()
}

pub fn full_sync_target() -> WriteTarget {
    WriteTarget {
        delete_if_removed: true,
        ..WriteTarget::default()
    }
}

pub fn finished(completion: &Completion) -> Option<RunStatus> {
    match completion {
        Completion::Finished { status, .. } => Some(*status),
        _ => None,
    }
}
