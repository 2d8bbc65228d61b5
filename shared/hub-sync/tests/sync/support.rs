//! Test environments: the embedded backend on a temp dir, or the AWS backend on moto, both with
//! a `ManualClock`, an extra `events` queue that receives every `hub.sync` bus event, and a
//! fetch queue that can be made to fail (to leave work in the outbox).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use hub_core::messages::{BusDetail, Envelope, SyncJob};
use hub_core::model::{SyncTask, TenantId, load_value};
use hub_core::ports::{
    Clock, IdGenerator, ManualClock, Ports, Queue, QueueError, QueueSpec, RuleSpec, SystemClock,
    Topology, UlidGenerator,
};
use hub_sync::SyncService;
use hub_testkit::faults::{FaultyQueue, QueueCall};
use serde_json::{Value, json};

pub const EVENTS: &str = "events";

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

/// Faults for the fetch queue: its sends fail while `failing` is set, as if the process died
/// after the claim's transaction and before the enqueue.
pub struct FlakyQueue {
    pub failing: AtomicBool,
}

pub struct Env {
    pub clock: Arc<ManualClock>,
    pub ports: Ports,
    pub sync: SyncService,
    /// A second, independent handle on the same data (another process, another Lambda).
    pub other: SyncService,
    pub fetch: Arc<FlakyQueue>,
    _dir: Option<tempfile::TempDir>,
}

pub const START: &str = "2025-01-01T10:00:00Z";

fn with_flaky_fetch(mut ports: Ports) -> (Ports, Arc<FlakyQueue>) {
    let fetch = Arc::new(FlakyQueue {
        failing: AtomicBool::new(false),
    });
    let faults = Arc::clone(&fetch);
    let faulty = FaultyQueue::new(ports.queue("fetch").unwrap(), move |call| {
        if call == QueueCall::Send && faults.failing.load(Ordering::SeqCst) {
            return Err(QueueError::Unavailable("injected failure".into()));
        }
        Ok(())
    });
    let mut queues: BTreeMap<String, Arc<dyn Queue>> = ports.queues.clone();
    queues.insert("fetch".into(), Arc::new(faulty));
    ports.queues = queues;
    (ports, fetch)
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
    let (ports, fetch) = with_flaky_fetch(ports);
    Env {
        clock,
        sync: SyncService::new(ports.clone()),
        other: SyncService::new(other),
        ports,
        fetch,
        _dir: Some(dir),
    }
}

/// The AWS backend on the shared moto server, in a region and under a prefix of its own;
/// `None` (after saying so) when moto is not installed.
pub async fn aws(test: &str) -> Option<Env> {
    static NEXT_REGION: AtomicU64 = AtomicU64::new(1);
    let server = hub_testkit::moto::MotoServer::shared_or_skip(test)?;
    let prefix = format!(
        "s{}",
        &UlidGenerator::new(SystemClock).new_id().to_lowercase()[16..]
    );
    let region = format!("sync-{}", NEXT_REGION.fetch_add(1, Ordering::Relaxed));
    let settings = hub_aws::AwsSettings::emulator(server.endpoint()).region(region);
    let topology = topology(&prefix);
    hub_aws::bootstrap(&settings, &topology).await.unwrap();
    let clock = Arc::new(ManualClock::new(utc(START)));
    let connect = || hub_aws::connect(&settings, &topology, clock.clone());
    let ports = connect().await.unwrap();
    let other = connect().await.unwrap();
    let (ports, fetch) = with_flaky_fetch(ports);
    Some(Env {
        clock,
        sync: SyncService::new(ports.clone()),
        other: SyncService::new(other),
        ports,
        fetch,
        _dir: None,
    })
}

impl Env {
    pub fn set_now(&self, at: &str) -> DateTime<Utc> {
        let at = utc(at);
        self.clock.set(at);
        at
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Every message now visible on a queue, deleted.
    pub async fn drain(&self, queue: &str) -> Vec<String> {
        hub_testkit::drain(&*self.ports.queue(queue).unwrap()).await
    }

    pub async fn jobs(&self) -> Vec<SyncJob> {
        self.drain("fetch")
            .await
            .iter()
            .map(|body| SyncJob::from_json(body).unwrap())
            .collect()
    }

    /// Bus events delivered to the `events` queue: (detail type, detail).
    pub async fn events(&self) -> Vec<(String, Value)> {
        hub_testkit::drain_events(&*self.ports.queue(EVENTS).unwrap()).await
    }

    pub async fn events_of<D: BusDetail>(&self) -> Vec<D> {
        self.events()
            .await
            .into_iter()
            .map(|(detail_type, detail)| {
                let detail = hub_core::messages::decode_from_value::<D>(detail).unwrap();
                assert_eq!(detail.detail_type(), detail_type);
                detail
            })
            .collect()
    }
}

/// A task of the given schedule (`tenantIntegrationId` set, status active).
pub fn task(id: &str, schedule: Value) -> SyncTask {
    let schedule_type = schedule["type"].clone();
    load_value(json!({
        "id": id,
        "tenantIntegrationId": "ti-crm",
        "name": format!("task {id}"),
        "conversionSchemaId": "contacts",
        "direction": "pull",
        "schedule": {"type": schedule_type, "config": schedule},
        "config": {"incrementalSync": true},
        "status": "active",
        "notifications": {
            "onSuccess": true, "onFailure": true, "onPartial": true,
            "recipients": ["ops@example.com"]
        }
    }))
    .unwrap()
}

pub fn every(count: u32, unit: &str) -> Value {
    json!({"type": "interval", "interval": count, "unit": unit})
}

pub fn cron(expression: &str, timezone: &str) -> Value {
    json!({"type": "cron", "expression": expression, "timezone": timezone})
}

pub fn manual() -> Value {
    json!({"type": "manual"})
}
