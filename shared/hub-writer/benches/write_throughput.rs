//! Write throughput of the writer: records per second through `Writer::write_batch` with the
//! whole run protocol (page and batch markers, counters, completion), into the embedded store
//! or into DynamoDB on a local moto server.
//!
//! `cargo bench -p hub-writer --bench write_throughput -- [embedded|moto] [RECORDS] [BATCH]
//! [WRITERS] [TRANSACTION_SIZE]` (defaults: embedded, 10000, 100, 4, the writer's default). Three runs over the same records: every
//! record new (created), the same records again (skipped: unchanged payloads), every record
//! changed (updated). `WRITERS` batches are written at once, as that many Lambda instances
//! would. Figures are for this machine and this build; compare like with like.

use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use hub_core::messages::{BatchSource, EntityJson, Lineage, PollSource, V1, WriteBatch, WriteItem};
use hub_core::model::{TenantId, load_value};
use hub_core::ports::{Clock, IdGenerator, Ports, SystemClock, Topology, UlidGenerator};
use hub_sync::SyncService;
use hub_writer::{Completion, PageEnqueued, Writer, WriterConfig};
use serde_json::json;

type Error = Box<dyn std::error::Error + Send + Sync>;

struct Options {
    backend: String,
    records: u32,
    batch: u32,
    writers: usize,
    transaction_size: usize,
}

fn options() -> Result<Options, Error> {
    let mut args = std::env::args().skip(1).filter(|a| !a.starts_with('-'));
    Ok(Options {
        backend: args.next().unwrap_or_else(|| "embedded".into()),
        records: args.next().map_or(Ok(10_000), |a| a.parse())?,
        batch: args.next().map_or(Ok(100), |a| a.parse())?,
        writers: args.next().map_or(Ok(4), |a| a.parse())?,
        transaction_size: args
            .next()
            .map_or(Ok(WriterConfig::default().transaction_size), |a| a.parse())?,
    })
}

async fn ports(backend: &str) -> Result<(Ports, Option<tempfile::TempDir>), Error> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let prefix = format!(
        "b{}",
        &UlidGenerator::new(SystemClock).new_id().to_lowercase()[16..]
    );
    let topology = Topology::new(prefix);
    match backend {
        "embedded" => {
            let dir = tempfile::tempdir()?;
            let path = dir.path().to_owned();
            let ports = tokio::task::spawn_blocking(move || {
                hub_embedded::EmbeddedBackend::open(&path, &topology, clock)
            })
            .await??;
            Ok((ports, Some(dir)))
        }
        "moto" => {
            let server = hub_testkit::moto::MotoServer::shared()?;
            let settings = hub_aws::AwsSettings::emulator(server.endpoint());
            hub_aws::bootstrap(&settings, &topology).await?;
            Ok((hub_aws::connect(&settings, &topology, clock).await?, None))
        }
        other => Err(format!("unknown backend `{other}`: embedded or moto").into()),
    }
}

fn batches(execution: &str, options: &Options, hash: &str) -> Vec<WriteBatch> {
    let pages = options.records.div_ceil(options.batch);
    (0..pages)
        .map(|page| {
            let source = BatchSource::Poll(PollSource {
                page,
                page_token: Some(format!("token-{page}")),
                part: 0,
                parts: 1,
            });
            let first = page * options.batch;
            let last = (first + options.batch).min(options.records);
            let items = (first..last)
                .map(|n| WriteItem {
                    external_id: format!("003{n:08}"),
                    dedup_key: format!("external_id:003{n:08}"),
                    data: EntityJson::from_map(
                        &json!({
                            "firstName": "Ada", "lastName": format!("Lovelace {n}"),
                            "email": format!("ada{n}@example.com"), "phone": "+44 20 7946 0000",
                            "company": "Analytical Engines Ltd", "score": n % 100,
                            "address": {"street": "12 St James's Square", "city": "London"}
                        })
                        .as_object()
                        .cloned()
                        .unwrap_or_default(),
                    )
                    .expect("an entity"),
                    source_modified_at: None,
                    payload_hash: format!("{hash}-{n}"),
                    lineage: Lineage {
                        execution_id: Some(execution.to_owned()),
                        source: source.clone(),
                        record_index: n - first,
                        schema_id: "contacts".into(),
                        schema_version: 1,
                    },
                })
                .collect();
            WriteBatch {
                v: V1,
                execution_id: Some(execution.to_owned()),
                tenant_id: TenantId::parse("acme").expect("a valid tenant id"),
                tenant_integration_id: "ti-crm".into(),
                integration_id: "crm".into(),
                target_entity_type: "c_contact".into(),
                items,
                errors: Vec::new(),
                cursor_commit: None,
                source: Some(source),
                source_entity: Some("Contact".into()),
                target: None,
            }
        })
        .collect()
}

/// One run over every record; returns (seconds, created, updated, skipped).
async fn run(
    writer: &Writer,
    sync: &SyncService,
    options: &Options,
    hash: &str,
) -> Result<(f64, u64, u64, u64), Error> {
    let tenant = TenantId::parse("acme")?;
    let execution = sync.run_now(&tenant, "bench", None).await?.execution.id;
    let batches = batches(&execution, options, hash);
    let started = Instant::now();
    let pages = u32::try_from(batches.len())?;
    for page in 0..pages {
        writer
            .record_page_enqueued(
                &tenant,
                &execution,
                PageEnqueued {
                    page,
                    batches: 1,
                    cursor_candidate: None,
                    last_page: page + 1 == pages,
                },
            )
            .await?;
    }
    let reports = futures::stream::iter(&batches)
        .map(|batch| writer.write_batch(batch))
        .buffer_unordered(options.writers.max(1))
        .collect::<Vec<_>>()
        .await;
    let seconds = started.elapsed().as_secs_f64();
    let mut finished = 0;
    for report in reports {
        if matches!(report?.completion, Some(Completion::Finished { .. })) {
            finished += 1;
        }
    }
    let record = sync.get_execution(&tenant, &execution).await?;
    if finished != 1 {
        return Err(format!(
            "the run was finished {finished} times (batches enqueued {}, written {}, status {:?})",
            record.batches_enqueued, record.batches_written, record.execution.status
        )
        .into());
    }
    let results = record.execution.results;
    Ok((seconds, results.created, results.updated, results.skipped))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Error> {
    let options = options()?;
    let (ports, _dir) = ports(&options.backend).await?;
    let writer = Writer::with_config(
        ports.clone(),
        WriterConfig {
            transaction_size: options.transaction_size,
            ..WriterConfig::default()
        },
    );
    let sync = SyncService::new(ports);
    let tenant = TenantId::parse("acme")?;
    sync.put_task(
        &tenant,
        load_value(json!({
            "id": "bench", "tenantIntegrationId": "ti-crm", "name": "bench",
            "conversionSchemaId": "contacts", "direction": "pull",
            "schedule": {"type": "manual", "config": {"type": "manual"}},
            "config": {"incrementalSync": true}, "status": "active"
        }))?,
    )
    .await?;
    println!(
        "writer throughput: backend={} records={} batch={} writers={} transaction_size={}",
        options.backend,
        options.records,
        options.batch,
        options.writers,
        writer.config().transaction_size
    );
    let expected = u64::from(options.records);
    for (pass, hash, want) in [
        ("create", "v1", (expected, 0, 0)),
        ("skip  ", "v1", (0, 0, expected)),
        ("update", "v2", (0, expected, 0)),
    ] {
        let (seconds, created, updated, skipped) = run(&writer, &sync, &options, hash).await?;
        if (created, updated, skipped) != want {
            return Err(format!(
                "{pass}: created {created}, updated {updated}, skipped {skipped}; expected {want:?}"
            )
            .into());
        }
        println!(
            "  {pass}: {} records in {seconds:.2} s = {:.0} records/s",
            options.records,
            f64::from(options.records) / seconds
        );
    }
    Ok(())
}
