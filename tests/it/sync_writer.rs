//! The whole pull pipeline (fetcher, transformer, writer on their queues, in the local host) on
//! the sample CRM API, run after run: the first sync creates every record, the same sync again
//! writes nothing, a sync after 100 upstream changes updates exactly those 100, and an
//! incremental sync reads only from the committed cursor. After each run the records table
//! is read back item by item and the task's cursor is compared with the newest record written.
//!
//! With 10,000 records on the embedded backend and on the AWS adapters against moto, there with
//! the writer set up the way moto needs (see [`moto_writer`]).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use hub_connectors::sample::Entity;
use hub_connectors::{
    ConnectorCatalog, EgressPolicy, Fetcher, FetcherConfig, SampleConfig, SampleServer,
};
use hub_core::keys;
use hub_core::model::{ExecutionStatus, TenantId};
use hub_core::ports::{Ports, SystemClock, Topology};
use hub_fetch::{FetchConfig, FetchHandler};
use hub_host::{Host, HostOptions, QueueFunction, RunningHost};
use hub_sync::{ExecutionRecord, SyncService};
use hub_testkit::moto::MotoServer;
use hub_transform::TransformHandler;
use hub_writer::{StoredRecord, WriteHandler, Writer, WriterConfig};
use serde_json::{Value, json};

const TENANT: &str = "demo";
const TASK: &str = "sample-contacts";
/// The demo schema's `target.shardTypeId`.
const ENTITY_TYPE: &str = "c_contact";
const EMBEDDED_RECORDS: u64 = 10_000;
/// The 10,000 on moto too. moto serves DynamoDB from one Python process, a few hundred
/// records a second through the whole pipeline: this test takes about 320 s alone on a quiet
/// 2-core machine (create 78 s, skip 56 s, update 70 s, incremental 2 s, the rest reading every
/// record back after each run), the longest of the suite, and runs beside the others.
const MOTO_RECORDS: u64 = 10_000;
const CHANGED: u64 = 100;
/// One run takes well under this, even in a debug build beside the rest of the suite on a busy
/// 2-core machine (the moto create run of 10,000 records takes 78 s alone on a quiet one).
const RUN_DEADLINE: Duration = Duration::from_secs(480);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_sync_writes_each_record_once_then_skips_then_updates_the_changed() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_owned();
    let ports = tokio::task::spawn_blocking(move || {
        hub_embedded::EmbeddedBackend::open(&data, &Topology::default(), Arc::new(SystemClock))
    })
    .await
    .unwrap()
    .unwrap();
    let report = scenario(ports, EMBEDDED_RECORDS, WriterConfig::default()).await;
    eprintln!("embedded, {EMBEDDED_RECORDS} records: {report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moto_sync_writes_each_record_once_then_skips_then_updates_the_changed() {
    // A server of its own: the contract suite shares the binary's server and would slow this
    // test's single-threaded writer down unpredictably.
    let moto = match MotoServer::start() {
        Ok(moto) => moto,
        Err(error) if error.is_not_installed() => {
            eprintln!("skipped: moto_sync_writes_each_record_once: {error}");
            return;
        }
        Err(error) => panic!("moto_sync_writes_each_record_once: {error}"),
    };
    let settings = hub_aws::AwsSettings::emulator(moto.endpoint()).region("hub-sync-writer");
    let topology = Topology::new("syncwriter");
    hub_aws::bootstrap(&settings, &topology).await.unwrap();
    let ports = hub_aws::connect(&settings, &topology, Arc::new(SystemClock))
        .await
        .unwrap();
    let report = scenario(ports, MOTO_RECORDS, moto_writer()).await;
    eprintln!("moto, {MOTO_RECORDS} records: {report}");
}

/// The writer as it must run against moto ([`WriterConfig::for_moto`]).
///
/// moto applies `TransactWriteItems` by deep-copying every table the transaction touches and
/// restoring the copy when a condition fails, without isolating concurrent requests: a
/// transaction on the records table costs time proportional to the table, and concurrent
/// transactions on one execution item lose ADDs (BENCHMARKS.md, "Writer"), after which the
/// run's batch count never matches and the run never completes. So: every record is its own
/// conditional put, and the write queue's function handles one message at a time, so the
/// batch-count transactions on the execution item never overlap one another
/// (`HUB_WRITER_TRANSACTION_SIZE=1 HUB_WRITER_MESSAGE_CONCURRENCY=1` does the same for `hub
/// dev` and the Lambda). DynamoDB needs neither.
fn moto_writer() -> WriterConfig {
    WriterConfig::default().for_moto()
}

/// The pipeline's three queue functions on `ports`, as `hub dev` registers them, except that
/// the writer has `config`. No scheduler tick: the test starts each run itself.
async fn start_pipeline(ports: &Ports, config: WriterConfig) -> RunningHost {
    let fetcher = Fetcher::new(
        FetcherConfig {
            egress: EgressPolicy::local_sandbox(),
            ..FetcherConfig::default()
        },
        Arc::clone(&ports.clock),
    )
    .unwrap();
    let fetch = FetchHandler::new(
        ports.clone(),
        ConnectorCatalog::builtin().unwrap(),
        fetcher,
        FetchConfig::default(),
    );
    let writer = WriteHandler::new(Writer::with_config(ports.clone(), config));
    let message_concurrency = writer.message_concurrency();
    let mut write = QueueFunction::new("writer", "write", Arc::new(writer));
    write.concurrency = message_concurrency;
    Host::new(
        ports.clone(),
        HostOptions {
            port: 0,
            tick: Duration::from_secs(3600),
            receive_wait: Duration::from_millis(100),
            shutdown_grace: Duration::from_secs(5),
        },
    )
    .queue_function(QueueFunction::new("fetcher", "fetch", Arc::new(fetch)))
    .queue_function(QueueFunction::new(
        "transformer",
        "transform",
        Arc::new(TransformHandler::new(ports.clone())),
    ))
    .queue_function(write)
    .start()
    .await
    .unwrap()
}

/// The demo tenant (infra/demo) for this sample API. Its task is changed to a full sync unless
/// `incremental` (a full run reads every record, so a run after an unchanged one must skip them
/// all), its records carry their `updatedAt` as the source modification time (so the records
/// table shows which is newest), and it is paused (runs start only when the test says so).
async fn apply_demo(ports: &Ports, sample: &SampleServer, incremental: bool) {
    let files = [
        include_str!("../../infra/demo/10-definition.json"),
        include_str!("../../infra/demo/20-connection.json"),
        include_str!("../../infra/demo/30-integration.json"),
        include_str!("../../infra/demo/40-schema-contact.json"),
        include_str!("../../infra/demo/50-task-contacts.json"),
    ];
    for text in files {
        let mut value: Value = serde_json::from_str(
            &text
                .replace("${SAMPLE_BASE_URL}", &sample.base_url())
                .replace("${SAMPLE_API_KEY}", sample.api().api_key()),
        )
        .unwrap();
        if value["kind"] == "SyncTask" {
            value["spec"]["config"]["incrementalSync"] = json!(incremental);
            value["spec"]["config"]["modifiedSinceField"] = json!("updatedAt");
            value["spec"]["status"] = json!("paused");
        }
        for document in hub_config::parse_documents(&value.to_string()).unwrap() {
            hub_config::apply(ports, &document).await.unwrap();
        }
    }
}

/// Runs the task now and waits for the run to end.
async fn sync_once(sync: &SyncService) -> (ExecutionRecord, Duration) {
    let tenant = TenantId::parse(TENANT).unwrap();
    let started_at = Instant::now();
    let started = sync.run_now(&tenant, TASK, None).await.unwrap();
    loop {
        let record = sync.get_execution(&tenant, started.id()).await.unwrap();
        if !record.is_running() {
            return (record, started_at.elapsed());
        }
        assert!(
            started_at.elapsed() < RUN_DEADLINE,
            "run {} still running after {RUN_DEADLINE:?}: fetched {}, pages {}, batches \
             written {} of {} (fetch complete: {}), results {:?}",
            record.id(),
            record.execution.results.fetched,
            record.pages_fetched,
            record.batches_written,
            record.batches_enqueued,
            record.fetch_complete,
            record.execution.results,
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every record of the demo tenant's contacts, by external id (the sample API's record id),
/// read item by item from the records table.
async fn stored_records(ports: &Ports) -> BTreeMap<String, StoredRecord> {
    let listed = hub_writer::list_records(&*ports.records, TENANT, ENTITY_TYPE)
        .await
        .unwrap();
    let items = listed.len();
    let mut records = BTreeMap::new();
    for record in listed {
        assert_eq!(
            record.record_id,
            hub_writer::record_id(TENANT, ENTITY_TYPE, &record.dedup_key),
            "a record is stored under the id of its dedup key"
        );
        let external_id = record.external_id.clone();
        assert!(
            records.insert(external_id.clone(), record).is_none(),
            "record {external_id} stored twice"
        );
    }
    assert_eq!(items, records.len());
    records
}

async fn committed_cursor(ports: &Ports) -> Option<String> {
    ports
        .state
        .get(&keys::cursor(TENANT, TASK))
        .await
        .unwrap()
        .and_then(|item| {
            item.get("cursor")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
}

/// The cursor of the newest record written: the largest source modification time stored, in
/// the connector's normalised form (which is `keys::sortable_time`'s).
fn newest_written(records: &BTreeMap<String, StoredRecord>) -> String {
    let newest = records
        .values()
        .map(|r| {
            r.source_modified_at
                .expect("every record has its updatedAt")
        })
        .max()
        .expect("records were written");
    keys::sortable_time(newest)
}

/// The sample API's `updatedAt` of a record, normalised.
fn upstream_updated_at(sample: &SampleServer, id: &str) -> String {
    let record = sample.api().record(Entity::Contacts, id).unwrap();
    let at: DateTime<Utc> = record["updatedAt"].as_str().unwrap().parse().unwrap();
    keys::sortable_time(at)
}

fn assert_success(run: &ExecutionRecord) {
    assert_eq!(
        run.execution.status,
        ExecutionStatus::Success,
        "run {}: {:?}, {} errors, last: {:?}",
        run.id(),
        run.execution.results,
        run.error_count,
        run.last_error
    );
    assert_eq!(run.error_count, 0);
    assert_eq!(run.batches_written, run.batches_enqueued);
}

/// Versions of the stored records: how many records have each.
fn versions(records: &BTreeMap<String, StoredRecord>) -> BTreeMap<i64, usize> {
    let mut versions = BTreeMap::new();
    for record in records.values() {
        *versions.entry(record.version).or_default() += 1;
    }
    versions
}

/// The four runs; returns their durations for the test's output.
async fn scenario(ports: Ports, total: u64, config: WriterConfig) -> String {
    let sample = SampleServer::start(SampleConfig {
        contacts: total,
        ..SampleConfig::default()
    })
    .await
    .unwrap();
    apply_demo(&ports, &sample, false).await;
    let host = start_pipeline(&ports, config).await;
    let sync = SyncService::new(ports.clone());
    let mut timings = Vec::new();

    // 1. Every record is new.
    let (first, took) = sync_once(&sync).await;
    timings.push(format!("create {took:.1?}"));
    assert_success(&first);
    let results = &first.execution.results;
    assert_eq!(
        (
            results.fetched,
            results.created,
            results.updated,
            results.skipped,
            results.failed
        ),
        (total, total, 0, 0, 0)
    );
    let records = stored_records(&ports).await;
    assert_eq!(records.len() as u64, total, "one record per source record");
    // As many distinct records as the API has, each one of them: so every one of them.
    for id in records.keys() {
        assert!(
            sample.api().record(Entity::Contacts, id).is_some(),
            "record {id} is not the sample API's"
        );
    }
    assert_eq!(versions(&records), BTreeMap::from([(1, total as usize)]));
    assert!(
        records
            .values()
            .all(|r| r.lineage.execution_id.as_deref() == Some(first.id())),
        "every record's lineage names the first run"
    );
    let cursor = committed_cursor(&ports).await;
    assert_eq!(cursor.as_deref(), Some(newest_written(&records).as_str()));
    let upstream_newest = records
        .keys()
        .map(|id| upstream_updated_at(&sample, id))
        .max();
    assert_eq!(
        cursor, upstream_newest,
        "the API's newest record is the last one written"
    );

    // 2. Nothing changed upstream: every record is read again and skipped.
    let (second, took) = sync_once(&sync).await;
    timings.push(format!("skip {took:.1?}"));
    assert_success(&second);
    let results = &second.execution.results;
    assert_eq!(
        (
            results.fetched,
            results.created,
            results.updated,
            results.skipped,
            results.failed
        ),
        (total, 0, 0, total, 0)
    );
    let unchanged = stored_records(&ports).await;
    assert_eq!(
        unchanged, records,
        "a run that skips everything writes nothing"
    );
    assert_eq!(committed_cursor(&ports).await, cursor);

    // 3. 100 records change upstream: exactly those are updated.
    let modification = sample.api().modify(Entity::Contacts, CHANGED);
    let changed: BTreeSet<String> = modification.modified.iter().cloned().collect();
    assert_eq!(changed.len() as u64, CHANGED);
    let (third, took) = sync_once(&sync).await;
    timings.push(format!("update {took:.1?}"));
    assert_success(&third);
    let results = &third.execution.results;
    assert_eq!(
        (
            results.fetched,
            results.created,
            results.updated,
            results.skipped,
            results.failed
        ),
        (total, 0, CHANGED, total - CHANGED, 0)
    );
    let records = stored_records(&ports).await;
    assert_eq!(records.len() as u64, total);
    let rewritten: BTreeSet<String> = records
        .values()
        .filter(|r| r.lineage.execution_id.as_deref() == Some(third.id()))
        .map(|r| r.external_id.clone())
        .collect();
    assert_eq!(
        rewritten, changed,
        "exactly the changed records were written"
    );
    assert_eq!(
        versions(&records),
        BTreeMap::from([(1, (total - CHANGED) as usize), (2, CHANGED as usize)])
    );
    for id in &changed {
        assert_eq!(
            records[id].source_modified_at.map(keys::sortable_time),
            Some(upstream_updated_at(&sample, id)),
            "record {id} holds the upstream change"
        );
    }
    let last_changed = modification.modified.last().unwrap();
    let cursor = committed_cursor(&ports).await;
    assert_eq!(cursor.as_deref(), Some(newest_written(&records).as_str()));
    assert_eq!(
        cursor.as_deref(),
        Some(upstream_updated_at(&sample, last_changed).as_str()),
        "the cursor is the last changed record's updatedAt"
    );

    // 4. The task turns incremental and 100 more records change: the run reads from the
    // committed cursor (less its lookback), not every record, and updates exactly those 100.
    apply_demo(&ports, &sample, true).await;
    let modification = sample.api().modify(Entity::Contacts, CHANGED);
    let (fourth, took) = sync_once(&sync).await;
    timings.push(format!("incremental {took:.1?}"));
    assert_success(&fourth);
    let results = &fourth.execution.results;
    assert_eq!(
        (results.created, results.updated, results.failed),
        (0, CHANGED, 0)
    );
    assert!(
        results.fetched >= CHANGED && results.fetched < total.min(1_000),
        "an incremental run reads the window from the cursor: fetched {}",
        results.fetched
    );
    assert_eq!(results.skipped, results.fetched - CHANGED);
    let records = stored_records(&ports).await;
    assert_eq!(records.len() as u64, total);
    let last_changed = modification.modified.last().unwrap();
    let cursor = committed_cursor(&ports).await;
    assert_eq!(cursor.as_deref(), Some(newest_written(&records).as_str()));
    assert_eq!(
        cursor.as_deref(),
        Some(upstream_updated_at(&sample, last_changed).as_str())
    );

    host.stop().await.unwrap();
    sample.shutdown(Duration::from_secs(1)).await;
    timings.join(", ")
}
