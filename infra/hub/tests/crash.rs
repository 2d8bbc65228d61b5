//! The crash test: `hub dev --demo` pulls 50,000 sample contacts on the embedded backend and is
//! killed with SIGKILL four or five times along the way (early, twice half-way, twenty batches
//! before the end, and during the last batches when a poll catches them), each time restarted
//! on the same data directory. At the end every
//! source record is stored exactly once, no run counted a record created twice, nothing went
//! to a DLQ, and the task's cursor is the `updatedAt` of the newest record written.
//!
//! `--visibility-timeout` brings the messages the killed host had in flight back after a few
//! seconds instead of the queues' 180 s; the functions' leases shrink with it (see
//! `functions::scale_leases`), so each restart picks up exactly where a real redelivery would.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use hub_core::keys;
use hub_core::model::{ExecutionStatus, TenantId};
use hub_core::ports::{Ports, QueueRole, SystemClock, Topology};
use hub_sync::{ExecutionRecord, SyncService};
use serde_json::Value;

const RECORDS: u64 = 50_000;
const TENANT: &str = "demo";
const TASK: &str = "sample-contacts";
/// The demo schema's `target.shardTypeId`.
const ENTITY_TYPE: &str = "c_contact";
/// Seconds before a killed host's in-flight messages are delivered again: well above the time a
/// batch takes (tens of milliseconds), so a live host never sees its own messages twice.
const VISIBILITY_SECONDS: u64 = 6;
/// The whole test, kills and restarts included; a debug build on a busy 2-core machine needs
/// about half of it.
const DEADLINE: Duration = Duration::from_secs(240);
const POLL: Duration = Duration::from_millis(50);

/// When to kill the host, on the progress of the run.
#[derive(Debug, Clone, Copy)]
enum KillPoint {
    /// This many records fetched.
    Fetched(u64),
    /// This many records created.
    Created(u64),
    /// The last page is fetched: the last batches, the run's completion and its cursor commit
    /// are under way. Caught only when a poll falls into that short window; otherwise the run
    /// has ended and there is one kill less.
    FetchComplete,
}

impl KillPoint {
    fn reached(self, run: &ExecutionRecord) -> bool {
        let results = &run.execution.results;
        match self {
            Self::Fetched(n) => results.fetched >= n,
            Self::Created(n) => results.created >= n,
            Self::FetchComplete => run.fetch_complete,
        }
    }
}

const KILL_POINTS: [KillPoint; 5] = [
    KillPoint::Fetched(4_000),
    KillPoint::Created(15_000),
    KillPoint::Created(32_000),
    KillPoint::Created(RECORDS - 2_000),
    KillPoint::FetchComplete,
];

/// `hub dev`, killed with SIGKILL when dropped (also when the test fails).
struct HubDev {
    child: Child,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl HubDev {
    fn kill(mut self) {
        self.child.kill().expect("SIGKILL hub dev");
        self.child.wait().expect("reap hub dev");
    }

    /// The sample API's key, from the line hub dev starts with.
    fn sample_api_key(&self) -> String {
        let out = std::fs::read_to_string(&self.stdout).unwrap();
        out.split("API key `")
            .nth(1)
            .and_then(|rest| rest.split('`').next())
            .unwrap_or_else(|| panic!("no API key in {out:?}"))
            .to_owned()
    }

    /// The last lines hub dev logged, for failure messages.
    fn log_tail(&self) -> String {
        log_tail(&self.stderr)
    }
}

impl Drop for HubDev {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// Starts `hub dev --demo` (the `n`th time) and waits until the demo is applied.
fn start_hub(
    data_dir: &Path,
    logs: &Path,
    sample_port: u16,
    n: usize,
    deadline: Instant,
) -> HubDev {
    let stdout = logs.join(format!("hub-dev-{n}.out"));
    let stderr = logs.join(format!("hub-dev-{n}.err"));
    let child = Command::new(env!("CARGO_BIN_EXE_hub"))
        .args(["dev", "--demo", "--port", "0", "--tick", "1"])
        .args(["--visibility-timeout", &VISIBILITY_SECONDS.to_string()])
        .args(["--sample-records", &RECORDS.to_string()])
        .args(["--sample-port", &sample_port.to_string()])
        .args(["--backend", "embedded", "--data-dir"])
        .arg(data_dir)
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("HUB_BACKEND")
        .env_remove("HUB_WRITER_TRANSACTION_SIZE")
        .env_remove("HUB_WRITER_CONCURRENCY")
        .env_remove("HUB_WRITER_MESSAGE_CONCURRENCY")
        .stdout(std::fs::File::create(&stdout).unwrap())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .expect("start hub dev");
    let mut hub = HubDev {
        child,
        stdout: stdout.clone(),
        stderr,
    };
    loop {
        let out = std::fs::read_to_string(&stdout).unwrap_or_default();
        // The last line --demo prints, after it applied the tenant (and started the first run).
        if out.contains("demo: follow it") {
            return hub;
        }
        if let Some(status) = hub.child.try_wait().unwrap() {
            panic!(
                "hub dev (start {n}) exited with {status}:\n{out}\n{}",
                hub.log_tail()
            );
        }
        assert!(
            Instant::now() < deadline,
            "hub dev (start {n}) did not apply the demo in time:\n{out}\n{}",
            hub.log_tail()
        );
        std::thread::sleep(POLL);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn open(data_dir: &Path) -> Ports {
    let dir = data_dir.to_owned();
    tokio::task::spawn_blocking(move || {
        hub_embedded::EmbeddedBackend::open(&dir, &Topology::default(), Arc::new(SystemClock))
    })
    .await
    .unwrap()
    .unwrap()
}

/// The demo task's first run (the one `--demo` started).
async fn first_run(sync: &SyncService, tenant: &TenantId) -> Option<ExecutionRecord> {
    let page = sync
        .list_task_executions(tenant, TASK, 100, None)
        .await
        .unwrap();
    let first = page
        .executions
        .into_iter()
        .min_by(|a, b| a.execution.started_at.cmp(&b.execution.started_at))?;
    Some(sync.get_execution(tenant, first.id()).await.unwrap())
}

fn progress(run: &ExecutionRecord) -> String {
    let r = &run.execution.results;
    format!(
        "{:?}: fetched {}, created {}, updated {}, skipped {}, failed {}; batches {} of {} \
         written, fetch complete: {}",
        run.execution.status,
        r.fetched,
        r.created,
        r.updated,
        r.skipped,
        r.failed,
        run.batches_written,
        run.batches_enqueued,
        run.fetch_complete
    )
}

/// Every stored contact of the demo tenant by external id; fails on an id stored twice.
async fn stored_records(ports: &Ports) -> BTreeMap<String, hub_writer::StoredRecord> {
    let mut records = BTreeMap::new();
    let listed = hub_writer::list_records(&*ports.records, TENANT, ENTITY_TYPE)
        .await
        .unwrap();
    for record in listed {
        assert_eq!(
            record.record_id,
            hub_writer::record_id(TENANT, ENTITY_TYPE, &record.dedup_key)
        );
        let id = record.external_id.clone();
        assert!(
            records.insert(id.clone(), record).is_none(),
            "record {id} is stored twice"
        );
    }
    records
}

/// The newest contact the sample API serves (it sorts by `updatedAt`, then id): its id and its
/// `updatedAt` in the cursor's normalised form.
async fn newest_upstream(sample_port: u16, api_key: &str) -> (String, String) {
    let body: Value = reqwest::Client::new()
        .get(format!(
            "http://127.0.0.1:{sample_port}/v1/contacts?limit=1&offset={}",
            RECORDS - 1
        ))
        .header("x-api-key", api_key)
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap();
    let newest = &body["data"][0];
    let at: DateTime<Utc> = newest["updatedAt"].as_str().unwrap().parse().unwrap();
    (
        newest["id"].as_str().unwrap().to_owned(),
        keys::sortable_time(at),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_repeatedly_during_a_50k_sync_every_record_lands_exactly_once() {
    let started = Instant::now();
    let deadline = started + DEADLINE;
    let data = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    // The same port on every start: the demo's tenant integration keeps pointing at the API.
    let sample_port = free_port();
    let tenant = TenantId::parse(TENANT).unwrap();

    let mut starts = 1;
    let mut hub = start_hub(data.path(), logs.path(), sample_port, starts, deadline);
    let ports = open(data.path()).await;
    let sync = SyncService::new(ports.clone());
    let mut timeline = vec![format!("start {:.1?}", started.elapsed())];

    for point in KILL_POINTS {
        let run = loop {
            let run = first_run(&sync, &tenant).await;
            match run {
                Some(run) if !run.is_running() || point.reached(&run) => break run,
                _ => {}
            }
            assert!(
                Instant::now() < deadline,
                "timed out before kill point {point:?} after {:.0?}; run: {}\nhub dev log:\n{}",
                started.elapsed(),
                run.as_ref().map_or("not started".into(), progress),
                hub.log_tail()
            );
            tokio::time::sleep(POLL).await;
        };
        if !run.is_running() {
            timeline.push(format!("run ended before {point:?}"));
            break;
        }
        hub.kill();
        timeline.push(format!(
            "kill at {:.1?} ({})",
            started.elapsed(),
            progress(&run)
        ));
        starts += 1;
        hub = start_hub(data.path(), logs.path(), sample_port, starts, deadline);
    }
    let kills = starts - 1;
    assert!(
        kills >= 4,
        "the run ended before the host could be killed at four points: {timeline:#?}"
    );

    let run = loop {
        let run = first_run(&sync, &tenant).await.unwrap();
        if !run.is_running() {
            break run;
        }
        assert!(
            Instant::now() < deadline,
            "the run did not end within {DEADLINE:?} of the start ({} kills); run: {}\n\
             timeline: {timeline:#?}\nhub dev log:\n{}",
            kills,
            progress(&run),
            hub.log_tail()
        );
        tokio::time::sleep(POLL).await;
    };
    timeline.push(format!("run ended at {:.1?}", started.elapsed()));
    eprintln!("{timeline:#?}");

    assert_eq!(
        run.execution.status,
        ExecutionStatus::Success,
        "{}; last error: {:?}",
        progress(&run),
        run.last_error
    );
    let results = &run.execution.results;
    assert_eq!(
        (
            results.fetched,
            results.created,
            results.updated,
            results.failed
        ),
        (RECORDS, RECORDS, 0, 0),
        "each record counted once: {}",
        progress(&run)
    );
    assert_eq!(run.batches_written, run.batches_enqueued);

    let (newest_id, newest_at) = newest_upstream(sample_port, &hub.sample_api_key()).await;
    let cursor = ports
        .state
        .get(&keys::cursor(TENANT, TASK))
        .await
        .unwrap()
        .and_then(|item| {
            item.get("cursor")
                .and_then(Value::as_str)
                .map(str::to_owned)
        });
    hub.kill();

    let records = stored_records(&ports).await;
    assert_eq!(records.len() as u64, RECORDS, "every record, each once");
    assert!(
        records.contains_key(&newest_id),
        "the newest record {newest_id} is stored"
    );
    assert_eq!(
        cursor.as_deref(),
        Some(newest_at.as_str()),
        "the cursor is the newest written record's updatedAt"
    );
    // Later scheduled runs (every minute) may have started meanwhile: whatever they did, no
    // run created a record another had created.
    let all_runs = sync
        .list_task_executions(&tenant, TASK, 100, None)
        .await
        .unwrap()
        .executions;
    let created: u64 = all_runs.iter().map(|r| r.execution.results.created).sum();
    assert_eq!(created, RECORDS, "records created over all runs");
    for role in QueueRole::ALL {
        let depth = ports
            .queue(&role.dlq_name())
            .unwrap()
            .depth()
            .await
            .unwrap();
        assert_eq!(
            depth.visible + depth.in_flight + depth.delayed,
            0,
            "nothing in {}",
            role.dlq_name()
        );
    }
}
