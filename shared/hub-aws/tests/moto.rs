//! The AWS adapters against moto: the rendered expressions against the reference evaluation,
//! the TTL rewrite, the secrets compare-and-swap, and what the bootstrap creates. Every test
//! runs in a region of its own on one moto server shared by this test binary, so no two tests
//! see each other's tables, queues, buses or secrets.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{TimeZone, Utc};
use hub_aws::{AwsError, AwsSettings, DynamoStore};
use hub_core::ports::{
    BusEnvelope, BusEvent, CmpOp, Condition, Index, Item, Key, ManualClock, OutgoingMessage, Ports,
    QueryRequest, QueueSpec, ReceiveOptions, RuleSpec, SecretError, StateStore, StoreError,
    SystemClock, Topology,
};
use hub_testkit::moto::MotoServer;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

fn item(value: Value) -> Item {
    value.as_object().cloned().expect("an object")
}

/// Settings for a region no other test uses, or `None` (after saying so) without moto. The
/// region is digits only: moto routes requests by matching `<service>.<region>.amazonaws.com`
/// against URL patterns, and its S3 pattern takes any host containing `s3`.
fn isolated(test: &str) -> Option<AwsSettings> {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let server = MotoServer::shared_or_skip(test)?;
    let region = format!("hub-{}", NEXT.fetch_add(1, Ordering::Relaxed));
    Some(AwsSettings::emulator(server.endpoint()).region(region))
}

async fn connected(
    settings: &AwsSettings,
    topology: &Topology,
    clock: Arc<dyn hub_core::ports::Clock>,
) -> Ports {
    hub_aws::bootstrap(settings, topology)
        .await
        .expect("bootstrap");
    hub_aws::connect(settings, topology, clock)
        .await
        .expect("connect")
}

fn run(test: impl std::future::Future<Output = ()>) {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(test);
}

fn samples() -> Vec<Item> {
    vec![
        item(
            json!({"pk": "c", "sk": "a", "n": 5, "s": "abc", "b": true, "z": null,
                    "l": [1, "x"], "m": {"k": "v"}, "f": 2.5}),
        ),
        item(json!({"pk": "c", "sk": "b", "n": "5", "s": 7, "b": false, "z": 0})),
        item(json!({"pk": "c", "sk": "c"})),
        item(json!({"pk": "c", "sk": "d", "n": -1, "s": "", "b": 1, "f": 3})),
    ]
}

fn conditions() -> Vec<Condition> {
    let c = |name: &str, op: CmpOp, value: Value| Condition::cmp(name, op, value);
    vec![
        Condition::Exists("n".into()),
        Condition::NotExists("n".into()),
        Condition::item_present(),
        Condition::item_absent(),
        Condition::eq("n", 5),
        Condition::eq("n", "5"),
        Condition::eq("n", 5.0),
        c("n", CmpOp::Ne, json!(5)),
        c("n", CmpOp::Lt, json!(9)),
        c("n", CmpOp::Le, json!(5)),
        c("n", CmpOp::Gt, json!(-1)),
        c("n", CmpOp::Ge, json!("5")),
        c("f", CmpOp::Gt, json!(2)),
        c("f", CmpOp::Le, json!(2.5)),
        c("s", CmpOp::Lt, json!("abd")),
        c("s", CmpOp::Gt, json!("")),
        c("s", CmpOp::Ge, json!(7)),
        Condition::eq("s", ""),
        Condition::eq("b", true),
        Condition::eq("b", 1),
        c("b", CmpOp::Ne, json!(true)),
        c("b", CmpOp::Lt, json!(true)),
        Condition::eq("z", Value::Null),
        c("z", CmpOp::Ne, Value::Null),
        c("z", CmpOp::Ge, Value::Null),
        Condition::eq("l", json!([1, "x"])),
        Condition::eq("l", json!(["x", 1])),
        Condition::eq("m", json!({"k": "v"})),
        c("m", CmpOp::Ne, json!({"k": "w"})),
        Condition::BeginsWith("s".into(), "ab".into()),
        Condition::BeginsWith("s".into(), String::new()),
        Condition::BeginsWith("n".into(), "5".into()),
        Condition::eq("n", 5).and(Condition::eq("b", true)),
        Condition::eq("n", 5).or(Condition::eq("s", 7)),
        Condition::Not(Box::new(Condition::Exists("s".into()))),
        Condition::Not(Box::new(
            Condition::eq("n", 5).or(Condition::NotExists("b".into())),
        )),
        Condition::And(vec![]),
        Condition::Or(vec![]),
        c("b", CmpOp::Lt, json!(true)).or(Condition::Exists("f".into())),
    ]
}

#[test]
fn rendered_conditions_agree_with_the_reference_evaluation() {
    let Some(settings) = isolated("rendered_conditions_agree_with_the_reference_evaluation") else {
        return;
    };
    run(async move {
        let ports = connected(&settings, &Topology::new("render"), Arc::new(SystemClock)).await;
        let store = ports.state;
        let samples = samples();
        for sample in &samples {
            store.put(sample.clone(), None).await.unwrap();
        }
        for condition in conditions() {
            // As a query filter (rendered without the TTL part).
            let page = store
                .query(QueryRequest::partition(Index::Primary, "c").filter(condition.clone()))
                .await
                .unwrap_or_else(|e| panic!("{condition:?} as a filter: {e}"));
            let got: BTreeSet<String> = page.items.iter().map(|i| i["sk"].to_string()).collect();
            let want: BTreeSet<String> = samples
                .iter()
                .filter(|i| condition.evaluate(Some(i)))
                .map(|i| i["sk"].to_string())
                .collect();
            assert_eq!(got, want, "filter {condition:?}");

            // As a write condition, on every sample and on an absent item.
            for sample in &samples {
                let result = store.put(sample.clone(), Some(condition.clone())).await;
                match (condition.evaluate(Some(sample)), result) {
                    (true, Ok(())) | (false, Err(StoreError::ConditionFailed)) => {}
                    (expected, got) => {
                        panic!("{condition:?} on {sample:?}: expected {expected}, got {got:?}")
                    }
                }
            }
            let absent = item(json!({"pk": "absent", "sk": "x"}));
            let result = store.put(absent.clone(), Some(condition.clone())).await;
            match (condition.evaluate(None), result) {
                (true, Ok(())) => {
                    store.delete(&Key::new("absent", "x"), None).await.unwrap();
                }
                (false, Err(StoreError::ConditionFailed)) => {}
                (expected, got) => {
                    panic!("{condition:?} on no item: expected {expected}, got {got:?}")
                }
            }
        }
    });
}

#[test]
fn expired_items_are_absent_for_reads_and_conditions() {
    let Some(settings) = isolated("expired_items_are_absent_for_reads_and_conditions") else {
        return;
    };
    run(async move {
        let start = Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap();
        let clock = Arc::new(ManualClock::new(start));
        let ports = connected(&settings, &Topology::new("ttl"), clock.clone()).await;
        let store = ports.state;
        let expires = start.timestamp() + 10;
        let key = Key::new("t", "1");
        let live = item(json!({"pk": "t", "sk": "1", "v": 1, "expiresAt": expires}));
        store
            .put(live.clone(), Some(Condition::item_absent()))
            .await
            .unwrap();
        assert!(store.get(&key).await.unwrap().is_some());

        clock.advance(Duration::from_secs(10));
        assert_eq!(
            store.get(&key).await.unwrap(),
            None,
            "expired at its own second"
        );
        let page = store
            .query(QueryRequest::partition(Index::Primary, "t"))
            .await
            .unwrap();
        assert!(page.items.is_empty());
        assert!(store.batch_get(vec![key.clone()]).await.unwrap().is_empty());
        // Conditions see no item: "present" fails even on an attribute the item has...
        let present = store.put(live.clone(), Some(Condition::eq("v", 1))).await;
        assert!(
            matches!(present, Err(StoreError::ConditionFailed)),
            "{present:?}"
        );
        // ...and "absent" (or a condition true on no item) holds.
        let fresh = item(json!({"pk": "t", "sk": "1", "v": 2}));
        store
            .put(fresh.clone(), Some(Condition::cmp("v", CmpOp::Ne, 1)))
            .await
            .unwrap();
        assert_eq!(store.get(&key).await.unwrap(), Some(fresh));
        // A deleted expired item was already absent: nothing is returned.
        let expired_again = item(json!({"pk": "t", "sk": "2", "expiresAt": expires}));
        store.put(expired_again, None).await.unwrap();
        assert_eq!(store.delete(&Key::new("t", "2"), None).await.unwrap(), None);
    });
}

#[test]
fn secret_compare_and_swap_rejects_a_stale_version() {
    let Some(settings) = isolated("secret_compare_and_swap_rejects_a_stale_version") else {
        return;
    };
    run(async move {
        let ports = connected(&settings, &Topology::new("sec"), Arc::new(SystemClock)).await;
        let secrets = ports.secrets;
        let name = "hub/tenant-1/conn-1";
        let value = |v: &str| SecretString::from(v.to_owned());
        let v1 = secrets.put(name, value("one"), None).await.unwrap();
        let again = secrets.put(name, value("dup"), None).await;
        assert!(
            matches!(again, Err(SecretError::VersionConflict { .. })),
            "{again:?}"
        );

        let v2 = secrets.put(name, value("two"), Some(&v1)).await.unwrap();
        assert_ne!(v1, v2);
        let stale = secrets.put(name, value("stale"), Some(&v1)).await;
        assert!(
            matches!(&stale, Err(SecretError::VersionConflict { expected: Some(e), .. }) if *e == v1),
            "{stale:?}"
        );
        let current = secrets.get(name).await.unwrap().expect("exists");
        assert_eq!(current.version_id, v2);
        assert_eq!(current.value.expose_secret(), "two");

        // The loser's version lost its label: only AWSCURRENT and AWSPREVIOUS are left.
        let config = settings.sdk_config().await.unwrap();
        let direct = aws_sdk_secretsmanager::Client::new(&config);
        let described = direct
            .describe_secret()
            .secret_id(name)
            .send()
            .await
            .unwrap();
        let mut labels: Vec<String> = described
            .version_ids_to_stages
            .unwrap_or_default()
            .into_values()
            .flatten()
            .collect();
        labels.sort();
        assert_eq!(labels, vec!["AWSCURRENT", "AWSPREVIOUS"]);

        let missing = secrets.put("hub/none/x", value("v"), Some(&v1)).await;
        assert!(
            matches!(missing, Err(SecretError::NotFound(_))),
            "{missing:?}"
        );
        secrets.delete(name).await.unwrap();
        secrets.delete(name).await.unwrap();
        assert!(secrets.get(name).await.unwrap().is_none());
        secrets.put(name, value("reborn"), None).await.unwrap();
    });
}

fn small_topology(prefix: &str) -> Topology {
    let mut topology = Topology::new(prefix);
    topology.queues = vec![
        QueueSpec {
            logical_name: "work".into(),
            visibility_timeout: Duration::from_secs(1),
            retention: Duration::from_secs(3600),
            redrive: Some(("work-dlq".into(), 2)),
        },
        QueueSpec {
            logical_name: "work-dlq".into(),
            visibility_timeout: Duration::from_secs(30),
            retention: Duration::from_secs(7200),
            redrive: None,
        },
    ];
    topology.rules = vec![RuleSpec {
        name: "synced".into(),
        pattern: json!({"source": ["hub.sync"]}),
        target_queue: "work".into(),
    }];
    topology
}

#[test]
fn bootstrap_is_idempotent_and_creates_the_topology() {
    let Some(settings) = isolated("bootstrap_is_idempotent_and_creates_the_topology") else {
        return;
    };
    run(async move {
        let topology = small_topology("boot");
        hub_aws::bootstrap(&settings, &topology).await.unwrap();
        hub_aws::bootstrap(&settings, &topology)
            .await
            .expect("second run");
        let config = settings.sdk_config().await.unwrap();

        let dynamodb = aws_sdk_dynamodb::Client::new(&config);
        let table = dynamodb
            .describe_table()
            .table_name("boot-state")
            .send()
            .await
            .unwrap()
            .table
            .unwrap();
        let index = &table.global_secondary_indexes.unwrap()[0];
        assert_eq!(index.index_name.as_deref(), Some("gsi1"));
        assert_eq!(
            table.billing_mode_summary.and_then(|b| b.billing_mode),
            Some(aws_sdk_dynamodb::types::BillingMode::PayPerRequest)
        );
        assert_eq!(
            table.sse_description.and_then(|s| s.status),
            Some(aws_sdk_dynamodb::types::SseStatus::Enabled)
        );
        let backups = dynamodb
            .describe_continuous_backups()
            .table_name("boot-state")
            .send()
            .await
            .unwrap()
            .continuous_backups_description
            .unwrap();
        assert_eq!(
            backups
                .point_in_time_recovery_description
                .and_then(|p| p.point_in_time_recovery_status),
            Some(aws_sdk_dynamodb::types::PointInTimeRecoveryStatus::Enabled)
        );
        let ttl = dynamodb
            .describe_time_to_live()
            .table_name("boot-records")
            .send()
            .await
            .unwrap()
            .time_to_live_description
            .unwrap();
        assert_eq!(ttl.attribute_name.as_deref(), Some("expiresAt"));

        let sqs = aws_sdk_sqs::Client::new(&config);
        let url = sqs
            .get_queue_url()
            .queue_name("boot-work")
            .send()
            .await
            .unwrap()
            .queue_url
            .unwrap();
        let attributes = sqs
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
            .send()
            .await
            .unwrap()
            .attributes
            .unwrap();
        use aws_sdk_sqs::types::QueueAttributeName as A;
        assert_eq!(attributes[&A::VisibilityTimeout], "1");
        assert_eq!(attributes[&A::MessageRetentionPeriod], "3600");
        let redrive: Value = serde_json::from_str(&attributes[&A::RedrivePolicy]).unwrap();
        assert_eq!(
            redrive["maxReceiveCount"].to_string().trim_matches('"'),
            "2"
        );
        assert!(
            redrive["deadLetterTargetArn"]
                .as_str()
                .unwrap()
                .ends_with(":boot-work-dlq")
        );
        let policy: Value = serde_json::from_str(&attributes[&A::Policy]).unwrap();
        assert_eq!(
            policy["Statement"][0]["Principal"]["Service"],
            "events.amazonaws.com"
        );

        // The rule routes a matching event to its queue as an EventBridge envelope.
        let ports = hub_aws::connect(&settings, &topology, Arc::new(SystemClock))
            .await
            .unwrap();
        let failed = ports
            .bus
            .put_events(vec![
                BusEvent::new("hub.sync", "sync.completed", json!({"n": 1})),
                BusEvent::new("hub.other", "ignored", json!({})),
                BusEvent::new("hub.sync", "bad", json!("not an object")),
            ])
            .await
            .unwrap();
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].index, 2);
        let work = ports.queue("work").unwrap();
        let received = work.receive(ReceiveOptions::default()).await.unwrap();
        assert_eq!(received.len(), 1, "{received:?}");
        let envelope: BusEnvelope = serde_json::from_str(&received[0].body)
            .unwrap_or_else(|e| panic!("{e}: {}", received[0].body));
        assert_eq!(envelope.source, "hub.sync");
        assert_eq!(envelope.detail_type, "sync.completed");
        assert_eq!(envelope.detail, json!({"n": 1}));
    });
}

#[test]
fn queues_redrive_and_report_depth() {
    let Some(settings) = isolated("queues_redrive_and_report_depth") else {
        return;
    };
    run(async move {
        let ports = connected(&settings, &small_topology("q"), Arc::new(SystemClock)).await;
        let work = ports.queue("work").unwrap();
        let dlq = ports.queue("work-dlq").unwrap();
        let id = work
            .send(OutgoingMessage::new("hello").attribute("trace", "t-1"))
            .await
            .unwrap();
        for expected_count in 1..=2 {
            let got = work.receive(ReceiveOptions::default()).await.unwrap();
            assert_eq!(got.len(), 1);
            assert_eq!(got[0].message_id, id);
            assert_eq!(got[0].receive_count, expected_count);
            assert_eq!(got[0].attributes["trace"], "t-1");
            tokio::time::sleep(Duration::from_millis(1100)).await;
        }
        assert!(
            work.receive(ReceiveOptions::default())
                .await
                .unwrap()
                .is_empty()
        );
        let dead = dlq.receive(ReceiveOptions::default()).await.unwrap();
        assert_eq!(dead.len(), 1);
        assert_eq!(
            (dead[0].message_id.as_str(), dead[0].body.as_str()),
            (id.as_str(), "hello")
        );

        work.send(OutgoingMessage::new("later").delayed(Duration::from_secs(60)))
            .await
            .unwrap();
        let depth = dlq.depth().await.unwrap();
        assert_eq!((depth.visible, depth.in_flight), (0, 1));
        assert_eq!(work.depth().await.unwrap().delayed, 1);
        let too_big = OutgoingMessage::new("x".repeat(256 * 1024 + 1));
        assert!(
            work.send(too_big).await.is_err(),
            "moto would accept it; we must not"
        );
        let stale = work.delete("not-a-receipt-handle").await;
        assert!(stale.is_err(), "{stale:?}");
    });
}

#[test]
fn missing_resources_map_to_the_port_errors() {
    let Some(settings) = isolated("missing_resources_map_to_the_port_errors") else {
        return;
    };
    run(async move {
        let topology = Topology::new("absent");
        let connected = hub_aws::connect(&settings, &topology, Arc::new(SystemClock)).await;
        assert!(
            matches!(connected, Err(AwsError::QueueNotFound { ref env_var, .. }) if env_var.starts_with("HUB_QUEUE_URL_")),
            "{connected:?}"
        );
        let config = settings.sdk_config().await.unwrap();
        let store = DynamoStore::new(
            aws_sdk_dynamodb::Client::new(&config),
            "absent-state",
            Arc::new(SystemClock),
        );
        let got = store.get(&Key::new("a", "b")).await;
        assert!(
            matches!(got, Err(StoreError::NoSuchTable(ref t)) if t == "absent-state"),
            "{got:?}"
        );

        // An endpoint nobody listens on is a retryable outage, not a crash.
        let dead = AwsSettings::emulator("http://127.0.0.1:9").region("us-east-1");
        let config = dead.sdk_config().await.unwrap();
        let store = DynamoStore::new(
            aws_sdk_dynamodb::Client::new(&config),
            "t",
            Arc::new(SystemClock),
        );
        let got = store.get(&Key::new("a", "b")).await;
        assert!(matches!(got, Err(StoreError::Unavailable(_))), "{got:?}");
    });
}
