//! A storage fault (the embedded store's disk is full) on the runs it holds up. `/health`
//! reports the fault itself; this records it as an error on every running execution whose
//! messages the host carried recently, once per fault, so `hub executions show` says why the
//! run stopped moving. Recording is itself a write, which the full disk may refuse: it is tried
//! again every [`CHECK_EVERY`] until it lands, with the time the fault began.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use hub_core::model::{SyncError, TenantId};
use hub_core::ports::StorageFault;
use hub_runtime::EnvelopeIds;
use hub_sync::SyncService;
use tokio_util::sync::CancellationToken;

/// How often the host looks at the backend's storage health.
pub const CHECK_EVERY: Duration = Duration::from_secs(2);
/// A run whose messages the host has not seen for this long is not counted as in flight.
const RUN_MEMORY: Duration = Duration::from_secs(15 * 60);

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// The runs whose messages the host's queue workers received lately, by execution id.
#[derive(Clone, Default)]
pub struct RunsInFlight(Arc<Mutex<HashMap<String, (TenantId, Instant)>>>);

impl RunsInFlight {
    /// Notes the run a received message belongs to (bodies that name none are ignored).
    pub fn saw(&self, body: &str) {
        let ids = EnvelopeIds::of_body(body);
        let (Some(tenant), Some(execution)) = (ids.tenant_id, ids.execution_id) else {
            return;
        };
        let Ok(tenant) = TenantId::parse(&tenant) else {
            return;
        };
        lock(&self.0).insert(execution, (tenant, Instant::now()));
    }

    /// The runs seen within [`RUN_MEMORY`]; older ones are forgotten.
    fn recent(&self) -> Vec<(TenantId, String)> {
        let mut runs = lock(&self.0);
        runs.retain(|_, (_, seen)| seen.elapsed() < RUN_MEMORY);
        runs.iter()
            .map(|(execution, (tenant, _))| (tenant.clone(), execution.clone()))
            .collect()
    }
}

/// Records the backend's storage fault on the runs in flight.
pub struct StorageFaultReporter {
    sync: SyncService,
    runs: RunsInFlight,
    /// The runs the current fault is recorded on (or that had ended), by the fault's start.
    recorded: Mutex<HashSet<(DateTime<Utc>, String)>>,
    /// The start of the fault last logged, so each is logged once when it begins and ends.
    logged: Mutex<Option<DateTime<Utc>>>,
}

impl StorageFaultReporter {
    pub fn new(sync: SyncService, runs: RunsInFlight) -> Self {
        Self {
            sync,
            runs,
            recorded: Mutex::default(),
            logged: Mutex::default(),
        }
    }

    /// One look: with a fault, records it on every running execution in flight that does not
    /// have it yet. Returns how many executions it was recorded on.
    pub async fn check(&self) -> usize {
        let Some(fault) = self.sync.ports().storage.fault() else {
            lock(&self.recorded).clear();
            if lock(&self.logged).take().is_some() {
                tracing::info!("the backend's storage accepts writes again");
            }
            return 0;
        };
        if lock(&self.logged).replace(fault.since) != Some(fault.since) {
            tracing::error!(code = fault.code, since = %fault.since, "{}", fault.message);
        }
        let mut recorded = 0;
        for (tenant, execution) in self.runs.recent() {
            let key = (fault.since, execution.clone());
            if lock(&self.recorded).contains(&key) {
                continue;
            }
            match self.record(&tenant, &execution, &fault).await {
                Ok(true) => recorded += 1,
                Ok(false) => {}
                Err(error) => {
                    tracing::warn!(%execution, code = error.code(), "could not record the storage fault on the run yet: {error}");
                    continue;
                }
            }
            lock(&self.recorded).insert(key);
        }
        recorded
    }

    /// Appends the fault to the execution's errors if it is still running.
    async fn record(
        &self,
        tenant: &TenantId,
        execution: &str,
        fault: &StorageFault,
    ) -> Result<bool, hub_sync::Error> {
        let record = self.sync.get_execution(tenant, execution).await?;
        if !record.is_running() {
            return Ok(false);
        }
        let phase = serde_json::to_value(record.execution.progress.phase)
            .ok()
            .and_then(|phase| phase.as_str().map(str::to_owned))
            .unwrap_or_default();
        let error = SyncError {
            timestamp: fault.since,
            phase,
            record_id: None,
            external_id: None,
            error: format!(
                "the run cannot make progress since {}: {}",
                fault
                    .since
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                fault.message
            ),
            details: Some(serde_json::json!({"code": fault.code})),
            recoverable: true,
        };
        self.sync.append_error(tenant, execution, error).await?;
        Ok(true)
    }

    /// Checks every [`CHECK_EVERY`] until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(CHECK_EVERY) => {}
            }
            self.check().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use hub_core::ports::{DISK_FULL, Ports, ReceiveOptions, StorageHealth, SystemClock, Topology};

    use super::*;
    use crate::host::{Host, HostOptions};

    /// A storage whose fault the test sets: the fault injected in place of a full disk.
    #[derive(Default)]
    struct FaultSwitch(Mutex<Option<StorageFault>>);

    impl FaultSwitch {
        fn set(&self, fault: Option<StorageFault>) {
            *lock(&self.0) = fault;
        }
    }

    impl StorageHealth for FaultSwitch {
        fn fault(&self) -> Option<StorageFault> {
            lock(&self.0).clone()
        }
    }

    fn disk_full(since: DateTime<Utc>) -> StorageFault {
        StorageFault {
            code: DISK_FULL,
            message: "the disk holding the data directory /data is full: writes fail".into(),
            since,
        }
    }

    async fn ports(dir: &std::path::Path, storage: Arc<FaultSwitch>) -> Ports {
        let dir = dir.to_owned();
        let mut ports = tokio::task::spawn_blocking(move || {
            hub_embedded::EmbeddedBackend::open(&dir, &Topology::default(), Arc::new(SystemClock))
        })
        .await
        .unwrap()
        .unwrap();
        ports.storage = storage;
        ports
    }

    /// The demo tenant's first run, and the body of its first message as a worker receives it.
    async fn running_demo(ports: &Ports) -> (TenantId, String, String) {
        for (_, document) in crate::sample::demo_documents("http://127.0.0.1:9", "key").unwrap() {
            hub_config::apply(ports, &document).await.unwrap();
        }
        let tenant = TenantId::parse(crate::sample::DEMO_TENANT).unwrap();
        let execution = SyncService::new(ports.clone())
            .run_now(&tenant, crate::sample::DEMO_TASK, Some("test"))
            .await
            .unwrap()
            .execution
            .id;
        let receive = ReceiveOptions {
            max_messages: 1,
            wait: Duration::from_secs(2),
            visibility_timeout: None,
        };
        let received = ports
            .queue("fetch")
            .unwrap()
            .receive(receive)
            .await
            .unwrap();
        (tenant, execution, received[0].body.clone())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_disk_is_recorded_once_on_the_runs_in_flight() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Arc::new(FaultSwitch::default());
        let ports = ports(dir.path(), Arc::clone(&storage)).await;
        let (tenant, execution, body) = running_demo(&ports).await;
        let runs = RunsInFlight::default();
        runs.saw(&body);
        let sync = SyncService::new(ports.clone());
        let reporter = StorageFaultReporter::new(sync.clone(), runs);

        assert_eq!(reporter.check().await, 0);
        let since = ports.clock.now();
        storage.set(Some(disk_full(since)));
        assert_eq!(reporter.check().await, 1);
        assert_eq!(reporter.check().await, 0, "once per fault");

        let record = sync.get_execution(&tenant, &execution).await.unwrap();
        assert!(record.is_running());
        assert_eq!(record.error_count, 1);
        let error = &record.execution.errors[0];
        assert!(
            error.error.contains("cannot make progress") && error.error.contains("is full"),
            "{error:?}"
        );
        assert_eq!(
            error.details,
            Some(serde_json::json!({"code": "disk_full"}))
        );
        assert_eq!((error.timestamp, error.recoverable), (since, true));

        // A later fault is a new one: recorded again.
        storage.set(None);
        assert_eq!(reporter.check().await, 0);
        storage.set(Some(disk_full(since + chrono::Duration::minutes(5))));
        assert_eq!(reporter.check().await, 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn health_is_degraded_with_the_reason_while_the_disk_is_full() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Arc::new(FaultSwitch::default());
        let ports = ports(dir.path(), Arc::clone(&storage)).await;
        let options = HostOptions {
            port: 0,
            ..HostOptions::default()
        };
        let running = Host::new(ports, options).start().await.unwrap();
        let url = format!("http://{}/health", running.address);
        let health = || async {
            let response = reqwest::get(&url).await.unwrap();
            let status = response.status().as_u16();
            (status, response.json::<serde_json::Value>().await.unwrap())
        };

        let (status, body) = health().await;
        assert_eq!((status, &body["status"]), (200, &"ok".into()), "{body}");
        assert!(body.get("reasons").is_none(), "{body}");

        storage.set(Some(disk_full(Utc::now())));
        let (status, body) = health().await;
        assert_eq!(
            (status, &body["status"]),
            (503, &"degraded".into()),
            "{body}"
        );
        assert_eq!(body["reasons"][0]["code"], "disk_full", "{body}");
        assert!(
            body["reasons"][0]["message"]
                .as_str()
                .is_some_and(|message| message.contains("is full")),
            "{body}"
        );
        running.stop().await.unwrap();
    }
}
