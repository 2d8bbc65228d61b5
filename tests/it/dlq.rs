//! The poison message test: a record batch whose conversion schema version is not stored fails
//! as a whole message in the transformer (run by the local host's queue worker, which writes
//! its failure notes), is received `MAX_RECEIVE_COUNT` times and reaches the transform DLQ with
//! its reason. Once the schema is applied, the replay `hub dlq replay` runs (hub-dlq's
//! `Dlq::replay`) lands it: the run completes with every record written once. A replayer that
//! dies between its send and its delete leaves the message in the DLQ, so a second replay
//! sends it again; that second copy writes nothing (the writer finds the batch counted) and
//! the records table is unchanged. Then the DLQ is empty and a third replay has nothing to do.
//!
//! On the embedded backend with a manual clock (each redelivery is a clock step, not a wait);
//! on the AWS adapters against moto with a one-second visibility timeout instead.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::Utc;
use hub_core::keys;
use hub_core::messages::{BatchSource, Envelope, PollSource, RecordBatch, SyncJob, V1, WriteBatch};
use hub_core::model::{ExecutionStatus, TenantId};
use hub_core::ports::{
    Clock, MAX_RECEIVE_COUNT, ManualClock, OutgoingMessage, Ports, Queue, QueueDepth, QueueError,
    QueueRole, ReceiveOptions, SystemClock, Topology, VISIBILITY_TIMEOUT,
};
use hub_dlq::{Dlq, DlqConfig, Filter, Outcome, ReplayOptions};
use hub_host::{Host, HostOptions, QueueFunction, RunningHost};
use hub_runtime::{FailureNote, MessageHandler, QueueMessage};
use hub_sync::{ExecutionRecord, SyncService};
use hub_testkit::faults::{FaultyQueue, QueueCall};
use hub_testkit::moto::MotoServer;
use hub_transform::TransformHandler;
use hub_writer::{PageEnqueued, StoredRecord, WriteHandler, Writer};
use serde_json::{Value, json};

const TENANT: &str = "demo";
const TASK: &str = "sample-contacts";
const SCHEMA: &str = "sample-contact";
/// The demo schema's `target.shardTypeId`.
const ENTITY_TYPE: &str = "c_contact";
const RECORDS: usize = 25;
const DEADLINE: Duration = Duration::from_secs(90);

struct Env {
    ports: Ports,
    /// Embedded: time moves only when the test says.
    clock: Option<Arc<ManualClock>>,
    /// moto: the host receives with this visibility timeout, so redeliveries come quickly.
    visibility: Option<Duration>,
    /// How long the replayer holds the messages it looks at.
    hold: Duration,
    _dir: Option<tempfile::TempDir>,
}

impl Env {
    /// Lets a failed delivery come back: a clock step on the embedded backend; on moto the
    /// short visibility timeout does it.
    fn redeliver(&self) {
        if let Some(clock) = &self.clock {
            clock.advance(VISIBILITY_TIMEOUT + Duration::from_secs(1));
        }
    }

    /// Lets the replayer's hold run out.
    async fn after_hold(&self) {
        match &self.clock {
            Some(clock) => clock.advance(self.hold + Duration::from_secs(3600)),
            None => tokio::time::sleep(self.hold + Duration::from_secs(1)).await,
        }
    }

    fn dlq(&self) -> Dlq {
        self.dlq_on(self.ports.clone())
    }

    fn dlq_on(&self, ports: Ports) -> Dlq {
        let config = DlqConfig {
            hold: self.hold,
            ..DlqConfig::for_backend(ports.backend)
        };
        Dlq::new(ports).with_config(config)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_poison_batch_is_replayed_after_the_fix_and_written_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_owned();
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let shared: Arc<dyn Clock> = clock.clone();
    let ports = tokio::task::spawn_blocking(move || {
        hub_embedded::EmbeddedBackend::open(&data, &Topology::default(), shared)
    })
    .await
    .unwrap()
    .unwrap();
    poison_scenario(Env {
        ports,
        clock: Some(clock),
        visibility: None,
        hold: Duration::from_secs(60),
        _dir: Some(dir),
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moto_poison_batch_is_replayed_after_the_fix_and_written_once() {
    let Some(moto) = MotoServer::shared_or_skip("dlq::moto_poison_batch") else {
        return;
    };
    let settings = hub_aws::AwsSettings::emulator(moto.endpoint()).region("hub-dlq-poison");
    let topology = Topology::new("poison");
    hub_aws::bootstrap(&settings, &topology).await.unwrap();
    let ports = hub_aws::connect(&settings, &topology, Arc::new(SystemClock))
        .await
        .unwrap();
    poison_scenario(Env {
        ports,
        clock: None,
        visibility: Some(Duration::from_secs(1)),
        hold: Duration::from_secs(2),
        _dir: None,
    })
    .await;
}

async fn poison_scenario(env: Env) {
    let tenant = TenantId::parse(TENANT).unwrap();
    let ports = env.ports.clone();
    apply_demo_without_the_schema(&ports).await;
    let sync = SyncService::new(ports.clone());

    // A run whose only page holds one batch, sent as the fetcher sends it.
    let run = sync.run_now(&tenant, TASK, None).await.unwrap();
    let job = take_first_job(&ports).await;
    assert_eq!(job.execution_id, run.id());
    let writer = Writer::new(ports.clone());
    writer
        .record_page_enqueued(
            &tenant,
            run.id(),
            PageEnqueued {
                page: job.page,
                batches: 1,
                cursor_candidate: None,
                last_page: true,
            },
        )
        .await
        .unwrap();
    let batch = RecordBatch {
        v: V1,
        execution_id: Some(run.id().to_owned()),
        tenant_id: tenant.clone(),
        tenant_integration_id: "sample-crm".into(),
        task_id: Some(TASK.into()),
        schema_id: SCHEMA.into(),
        // The version the run was stamped with; it was never stored here.
        schema_version: 1,
        source: BatchSource::Poll(PollSource {
            page: job.page,
            page_token: None,
            part: 0,
            parts: 1,
        }),
        records: (0..RECORDS).map(contact).collect(),
        last_page: true,
        cursor_candidate: None,
    };
    let poison_id = ports
        .queue("transform")
        .unwrap()
        .send(OutgoingMessage::new(batch.to_json().unwrap()))
        .await
        .unwrap();

    // The host's transformer fails it on every receive, noting why, until it is dead.
    let host = start_host(&env).await;
    let mut noted = 0;
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while depth(&ports, "transform-dlq").await.visible == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the poison batch never reached the DLQ (failures noted: {noted})"
        );
        if let Some(note) = note_of(&ports, &poison_id).await
            && note.receive_count > noted
        {
            noted = note.receive_count;
            env.redeliver();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(depth(&ports, "transform").await, QueueDepth::default());
    let listing = env
        .dlq()
        .list(QueueRole::Transform, &Filter::default(), 10)
        .await
        .unwrap();
    assert_eq!(listing.messages.len(), 1, "{listing:?}");
    let dead = &listing.messages[0];
    assert_eq!(dead.message_id, poison_id, "the DLQ keeps the message id");
    let failure = dead.failure.as_ref().expect("the host noted the failure");
    assert_eq!(failure.code, "schema_not_found");
    assert!(!failure.retryable);
    assert_eq!(failure.receive_count, MAX_RECEIVE_COUNT);
    assert!(failure.message.contains(SCHEMA), "{}", failure.message);
    assert_eq!(dead.ids.tenant_id.as_deref(), Some(TENANT));
    assert_eq!(dead.ids.task_id.as_deref(), Some(TASK));
    assert_eq!(dead.ids.execution_id.as_deref(), Some(run.id()));
    assert!(stored_records(&ports).await.is_empty());
    let stuck = sync.get_execution(&tenant, run.id()).await.unwrap();
    assert!(stuck.is_running());
    assert_eq!((stuck.batches_enqueued, stuck.batches_written), (1, 0));

    // The fix: the schema is applied (version 1). The first replay sends the batch back, and
    // its replayer "dies" before deleting it from the DLQ.
    let applied = hub_config::apply(&ports, &document("40-schema-contact.json"))
        .await
        .unwrap();
    assert_eq!(applied.version, Some(1));
    let selection = Filter {
        error_code: Some("schema_not_found".into()),
        tenant_id: Some(TENANT.into()),
        ..Filter::default()
    };
    let options = ReplayOptions {
        limit: 10,
        dry_run: false,
        rate_per_second: 10.0,
        remap: false,
    };
    let mut dying = ports.clone();
    let dlq_queue = ports.queue("transform-dlq").unwrap();
    dying.queues.insert(
        "transform-dlq".into(),
        delete_fails_once(Arc::clone(&dlq_queue)),
    );
    let first = env
        .dlq_on(dying)
        .replay(&[QueueRole::Transform], &selection, options)
        .await
        .unwrap();
    assert_eq!(first.count(Outcome::SentNotDeleted), 1, "{first:?}");
    let done = wait_for_end(&sync, &tenant, run.id()).await;
    assert_eq!(done.execution.status, ExecutionStatus::Success, "{done:?}");
    assert_eq!(done.execution.results.created, RECORDS as u64);
    assert_eq!(done.batches_written, 1);
    let written = stored_records(&ports).await;
    assert_eq!(written.len(), RECORDS);
    assert!(written.values().all(|r| r.version == 1));
    host.stop().await.unwrap();

    // The dead message comes back once the hold runs out; the second replay (the operator's)
    // sends it again. Driven by hand this time, to read the writer's report.
    env.after_hold().await;
    let second = env
        .dlq()
        .replay(&[QueueRole::Transform], &selection, options)
        .await
        .unwrap();
    assert_eq!(second.count(Outcome::Replayed), 1, "{second:?}");
    let copy = receive_one(&ports, "transform").await;
    TransformHandler::new(ports.clone())
        .handle(&copy)
        .await
        .unwrap();
    let write = receive_one(&ports, "write").await;
    let report = writer
        .write_batch(&WriteBatch::from_json(&write.body).unwrap())
        .await
        .unwrap();
    assert!(report.already_counted, "{report:?}");
    assert_eq!((report.created, report.updated), (0, 0), "{report:?}");
    assert_eq!(
        stored_records(&ports).await,
        written,
        "the records table is unchanged"
    );
    let after = sync.get_execution(&tenant, run.id()).await.unwrap();
    assert_eq!(after.execution.results, done.execution.results);
    assert_eq!(after.batches_written, 1);

    // Nothing left: the DLQ is empty, the note is gone, a third replay does nothing.
    assert_eq!(depth(&ports, "transform-dlq").await, QueueDepth::default());
    assert!(note_of(&ports, &poison_id).await.is_none());
    let third = env
        .dlq()
        .replay(&QueueRole::ALL, &Filter::default(), options)
        .await
        .unwrap();
    assert_eq!(third.queues.iter().map(|q| q.matched).sum::<usize>(), 0);
}

fn document(file: &str) -> hub_config::ConfigDocument {
    let path = format!("{}/../infra/demo/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    let text = text
        .replace("${SAMPLE_BASE_URL}", "http://127.0.0.1:9")
        .replace("${SAMPLE_API_KEY}", "unused-in-this-test");
    let mut value: Value = serde_json::from_str(&text).unwrap();
    if value["kind"] == "SyncTask" {
        // Runs start when the test says so.
        value["spec"]["status"] = json!("paused");
    }
    let mut documents = hub_config::parse_documents(&value.to_string()).unwrap();
    assert_eq!(documents.len(), 1);
    documents.remove(0)
}

/// The demo tenant (infra/demo) except its conversion schema.
async fn apply_demo_without_the_schema(ports: &Ports) {
    for file in [
        "10-definition.json",
        "20-connection.json",
        "30-integration.json",
        "50-task-contacts.json",
    ] {
        hub_config::apply(ports, &document(file)).await.unwrap();
    }
}

fn contact(n: usize) -> Value {
    json!({
        "id": format!("c-{n:04}"),
        "email": format!("contact{n}@example.com"),
        "firstName": "Ada",
        "lastName": format!("Lovelace {n}"),
        "title": "Engineer",
        "phone": "555-0100",
        "updatedAt": "2025-01-01T00:00:00Z",
    })
}

/// The run's first fetch job, taken off the fetch queue (this test plays the fetcher).
async fn take_first_job(ports: &Ports) -> SyncJob {
    let message = receive_one(ports, "fetch").await;
    SyncJob::from_json(&message.body).unwrap()
}

/// Receives exactly one message from `queue` and deletes it.
async fn receive_one(ports: &Ports, queue: &str) -> QueueMessage {
    let queue = ports.queue(queue).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let mut received = queue
            .receive(ReceiveOptions {
                max_messages: 10,
                wait: Duration::from_secs(1),
                visibility_timeout: None,
            })
            .await
            .unwrap();
        if !received.is_empty() {
            assert_eq!(received.len(), 1, "{received:?}");
            let message = received.remove(0);
            queue.delete(&message.receipt_handle).await.unwrap();
            return QueueMessage {
                message_id: message.message_id,
                body: message.body,
                receive_count: message.receive_count,
                attributes: message.attributes,
            };
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "nothing in {}",
            queue.name()
        );
    }
}

/// The transformer and the writer in the local host (no fetcher, no tick).
async fn start_host(env: &Env) -> RunningHost {
    let ports = env.ports.clone();
    let mut host = Host::new(
        ports.clone(),
        HostOptions {
            port: 0,
            tick: Duration::from_secs(3600),
            receive_wait: Duration::from_millis(50),
            shutdown_grace: Duration::from_secs(5),
        },
    );
    if let Some(visibility) = env.visibility {
        host = host.visibility_timeout(visibility);
    }
    host.queue_function(QueueFunction::new(
        "transformer",
        "transform",
        Arc::new(TransformHandler::new(ports.clone())),
    ))
    .queue_function(QueueFunction::new(
        "writer",
        "write",
        Arc::new(WriteHandler::new(Writer::new(ports))),
    ))
    .start()
    .await
    .unwrap()
}

async fn depth(ports: &Ports, queue: &str) -> QueueDepth {
    ports.queue(queue).unwrap().depth().await.unwrap()
}

async fn note_of(ports: &Ports, message_id: &str) -> Option<FailureNote> {
    ports
        .state
        .get(&keys::failure_note("transform", message_id))
        .await
        .unwrap()
        .and_then(|item| FailureNote::from_item(&item))
}

async fn wait_for_end(sync: &SyncService, tenant: &TenantId, id: &str) -> ExecutionRecord {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let record = sync.get_execution(tenant, id).await.unwrap();
        if !record.is_running() {
            return record;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the run did not end: {record:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every record of the demo tenant's contacts, by external id.
async fn stored_records(ports: &Ports) -> BTreeMap<String, StoredRecord> {
    let mut records = BTreeMap::new();
    let listed = hub_writer::list_records(&*ports.records, TENANT, ENTITY_TYPE)
        .await
        .unwrap();
    for record in listed {
        assert!(records.insert(record.external_id.clone(), record).is_none());
    }
    records
}

/// The transform DLQ of a replayer that dies right after its first send: its first delete
/// never happens.
fn delete_fails_once(inner: Arc<dyn Queue>) -> Arc<dyn Queue> {
    let failed = AtomicBool::new(false);
    Arc::new(FaultyQueue::new(inner, move |call| {
        if call == QueueCall::Delete && !failed.swap(true, Ordering::SeqCst) {
            return Err(QueueError::Unavailable("the replayer died here".into()));
        }
        Ok(())
    }))
}

/// template.yaml: the replayer as a function with least privilege (receive, change visibility
/// and delete on the three DLQs, send on the three source queues, the notes in the state
/// table), its optional schedule behind a condition, and its own alarms.
mod template {
    use std::collections::BTreeSet;

    use hub_core::ports::QueueRole;
    use serde_norway::Value;

    const TEMPLATE: &str = include_str!("../../template.yaml");

    fn root() -> Value {
        serde_norway::from_str(TEMPLATE).unwrap()
    }

    fn resource<'a>(root: &'a Value, id: &str) -> &'a Value {
        root["Resources"]
            .get(id)
            .unwrap_or_else(|| panic!("template.yaml has no {id}"))
    }

    /// The tag's argument of a short-form intrinsic (`!Ref X` -> `X`).
    fn tagged<'a>(value: &'a Value, tag: &str) -> Option<&'a Value> {
        match value {
            Value::Tagged(t) if t.tag == tag => Some(&t.value),
            _ => None,
        }
    }

    fn text(value: &Value) -> String {
        match value {
            Value::String(s) => s.clone(),
            // A tag displays with its `!`.
            Value::Tagged(t) => format!("{} {}", t.tag, text(&t.value)),
            other => format!("{other:?}"),
        }
    }

    fn strings(value: &Value) -> BTreeSet<String> {
        match value {
            Value::Sequence(items) => items.iter().map(text).collect(),
            single => BTreeSet::from([text(single)]),
        }
    }

    /// The logical id of the queue named `<Prefix>-<logical>`.
    fn queue_id(root: &Value, logical: &str) -> String {
        let wanted = format!("${{Prefix}}-{logical}");
        root["Resources"]
            .as_mapping()
            .unwrap()
            .iter()
            .find(|(_, r)| {
                r["Type"].as_str() == Some("AWS::SQS::Queue")
                    && tagged(&r["Properties"]["QueueName"], "Sub").and_then(Value::as_str)
                        == Some(wanted.as_str())
            })
            .map(|(id, _)| id.as_str().unwrap().to_owned())
            .unwrap_or_else(|| panic!("no queue {wanted}"))
    }

    fn arns(root: &Value, logical: impl Fn(QueueRole) -> String) -> BTreeSet<String> {
        QueueRole::ALL
            .into_iter()
            .map(|role| format!("!GetAtt {}.Arn", queue_id(root, &logical(role))))
            .collect()
    }

    #[test]
    fn the_replayer_has_least_privilege_an_optional_schedule_and_its_alarms() {
        let root = root();
        let function = resource(&root, "DlqReplayerFunction");
        let props = &function["Properties"];
        assert_eq!(function["Type"].as_str(), Some("AWS::Serverless::Function"));
        assert_eq!(
            function["Metadata"]["BuildMethod"].as_str(),
            Some("rust-cargolambda")
        );
        assert_eq!(props["CodeUri"].as_str(), Some("functions/dlq-replayer"));
        for variable in [
            hub_dlq::ENV_QUEUES,
            hub_dlq::ENV_LIMIT,
            hub_dlq::ENV_RATE,
            hub_dlq::ENV_MAX_REPLAYS,
            hub_dlq::ENV_RETRYABLE_ONLY,
        ] {
            assert!(
                props["Environment"]["Variables"].get(variable).is_some(),
                "{variable} is not set"
            );
        }

        let policies = props["Policies"].as_sequence().unwrap();
        assert_eq!(policies.len(), 1, "one inline policy, no managed ones");
        let mut granted: Vec<(BTreeSet<String>, BTreeSet<String>)> = policies[0]["Statement"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|s| {
                assert_eq!(s["Effect"].as_str(), Some("Allow"));
                (strings(&s["Action"]), strings(&s["Resource"]))
            })
            .collect();
        granted.sort();
        let set = |items: &[&str]| {
            items
                .iter()
                .map(|s| (*s).to_owned())
                .collect::<BTreeSet<_>>()
        };
        let mut expected = vec![
            (
                set(&[
                    "sqs:ReceiveMessage",
                    "sqs:ChangeMessageVisibility",
                    "sqs:DeleteMessage",
                ]),
                arns(&root, QueueRole::dlq_name),
            ),
            (
                set(&["sqs:SendMessage"]),
                arns(&root, |role| role.logical_name().to_owned()),
            ),
            (
                set(&[
                    "dynamodb:GetItem",
                    "dynamodb:BatchGetItem",
                    "dynamodb:DeleteItem",
                ]),
                set(&["!GetAtt StateTable.Arn"]),
            ),
        ];
        expected.sort();
        assert_eq!(granted, expected);

        // The schedule: a parameter, empty by default, and a condition on the rule and its
        // permission.
        assert_eq!(
            root["Parameters"]["DlqReplaySchedule"]["Default"].as_str(),
            Some("")
        );
        assert!(root["Conditions"].get("HasDlqReplaySchedule").is_some());
        let rule = resource(&root, "DlqReplayRule");
        assert_eq!(rule["Condition"].as_str(), Some("HasDlqReplaySchedule"));
        assert_eq!(
            text(&rule["Properties"]["ScheduleExpression"]),
            "!Ref DlqReplaySchedule"
        );
        assert_eq!(
            text(&rule["Properties"]["Targets"][0]["Arn"]),
            "!GetAtt DlqReplayerFunction.Arn"
        );
        let permission = resource(&root, "DlqReplayPermission");
        assert_eq!(
            permission["Condition"].as_str(),
            Some("HasDlqReplaySchedule")
        );
        assert_eq!(
            text(&permission["Properties"]["SourceArn"]),
            "!GetAtt DlqReplayRule.Arn"
        );

        // Its alarms: the function's errors, and the three DLQs never emptying.
        let errors = resource(&root, "DlqReplayerErrorsAlarm");
        assert_eq!(
            text(&errors["Properties"]["Dimensions"][0]["Value"]),
            "!Ref DlqReplayerFunction"
        );
        let drained = resource(&root, "DeadLetterQueuesNotDrainedAlarm");
        let watched: BTreeSet<String> = drained["Properties"]["Metrics"]
            .as_sequence()
            .unwrap()
            .iter()
            .filter_map(|m| m.get("MetricStat"))
            .map(|stat| text(&stat["Metric"]["Dimensions"][0]["Value"]))
            .collect();
        let dlqs: BTreeSet<String> = QueueRole::ALL
            .into_iter()
            .map(|role| format!("!GetAtt {}.QueueName", queue_id(&root, &role.dlq_name())))
            .collect();
        assert_eq!(watched, dlqs);
    }

    #[test]
    fn every_function_crate_is_a_function_of_the_template() {
        let root = root();
        let code_uris: BTreeSet<String> = root["Resources"]
            .as_mapping()
            .unwrap()
            .values()
            .filter(|r| r["Type"].as_str() == Some("AWS::Serverless::Function"))
            .filter_map(|r| r["Properties"]["CodeUri"].as_str().map(str::to_owned))
            .collect();
        let functions = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../functions");
        let crates: BTreeSet<String> = std::fs::read_dir(functions)
            .unwrap()
            .filter_map(|entry| {
                let path = entry.ok()?.path();
                path.join("Cargo.toml")
                    .is_file()
                    .then(|| format!("functions/{}", path.file_name().unwrap().to_string_lossy()))
            })
            .collect();
        assert!(crates.contains("functions/dlq-replayer"));
        assert_eq!(code_uris, crates);
    }
}
