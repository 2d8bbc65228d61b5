//! What only the embedded backend promises: several handles on one directory, files, locks,
//! reopening, retention. The port semantics themselves are the contract suite's (hub-testkit).

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use hub_core::ports::{
    BusEvent, Key, ManualClock, OutgoingMessage, Ports, QueueDepth, QueueSpec, ReceiveOptions,
    RuleSpec, Topology,
};
use serde_json::json;

use crate::{DATABASE_FILE, EmbeddedBackend, EmbeddedError, SECRETS_FILE};

fn topology() -> Topology {
    let mut topology = Topology::new("t");
    topology.rules.push(RuleSpec {
        name: "sync".into(),
        pattern: json!({"source": ["hub.sync"]}),
        target_queue: "transform".into(),
    });
    topology
}

async fn open(dir: &Path, topology: &Topology, clock: &Arc<ManualClock>) -> Ports {
    let (dir, topology, clock) = (dir.to_owned(), topology.clone(), Arc::clone(clock));
    tokio::task::spawn_blocking(move || EmbeddedBackend::open(&dir, &topology, clock))
        .await
        .unwrap()
        .unwrap()
}

fn receive(max_messages: usize) -> ReceiveOptions {
    ReceiveOptions {
        max_messages,
        ..ReceiveOptions::default()
    }
}

fn item(value: serde_json::Value) -> hub_core::ports::Item {
    value.as_object().cloned().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_handles_share_one_directory() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let a = open(dir.path(), &topology(), &clock).await;
    let b = open(&dir.path().join("."), &topology(), &clock).await;

    a.state
        .put(item(json!({"pk": "p", "sk": "s", "v": 1})), None)
        .await
        .unwrap();
    assert!(b.state.get(&Key::new("p", "s")).await.unwrap().is_some());

    let id = a
        .queue("fetch")
        .unwrap()
        .send(OutgoingMessage::new("job"))
        .await
        .unwrap();
    let got = b
        .queue("fetch")
        .unwrap()
        .receive(receive(10))
        .await
        .unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].message_id, id);
    assert!(
        a.queue("fetch")
            .unwrap()
            .receive(receive(10))
            .await
            .unwrap()
            .is_empty(),
        "in flight for every handle"
    );
    a.queue("fetch")
        .unwrap()
        .delete(&got[0].receipt_handle)
        .await
        .unwrap();
    assert_eq!(
        b.queue("fetch").unwrap().depth().await.unwrap(),
        QueueDepth::default()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_poll_wakes_on_a_send_through_another_handle() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let a = open(dir.path(), &topology(), &clock).await;
    let b = open(dir.path(), &topology(), &clock).await;
    let waiting = tokio::spawn(async move {
        let started = std::time::Instant::now();
        let got = b
            .queue("write")
            .unwrap()
            .receive(ReceiveOptions {
                wait: Duration::from_secs(10),
                ..receive(1)
            })
            .await
            .unwrap();
        (got, started.elapsed())
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    a.queue("write")
        .unwrap()
        .send(OutgoingMessage::new("wake"))
        .await
        .unwrap();
    let (got, waited) = waiting.await.unwrap();
    assert_eq!(got.len(), 1);
    assert!(waited < Duration::from_secs(3), "{waited:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_receivers_never_share_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let a = open(dir.path(), &topology(), &clock).await;
    let b = open(dir.path(), &topology(), &clock).await;
    let queue = a.queue("fetch").unwrap();
    for chunk in (0..60).collect::<Vec<_>>().chunks(10) {
        let batch = chunk
            .iter()
            .map(|i| OutgoingMessage::new(format!("m{i}")))
            .collect();
        for outcome in queue.send_batch(batch).await.unwrap() {
            outcome.unwrap();
        }
    }
    let consumer = |ports: Ports| {
        tokio::spawn(async move {
            let queue = ports.queue("fetch").unwrap();
            let mut bodies = Vec::new();
            loop {
                let batch = queue.receive(receive(3)).await.unwrap();
                if batch.is_empty() {
                    return bodies;
                }
                bodies.extend(batch.into_iter().map(|m| m.body));
            }
        })
    };
    let (first, second) = (consumer(a), consumer(b));
    let (first, second) = (first.await.unwrap(), second.await.unwrap());
    let all: BTreeSet<&String> = first.iter().chain(&second).collect();
    assert_eq!(
        first.len() + second.len(),
        60,
        "each message delivered once"
    );
    assert_eq!(all.len(), 60);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_waits_for_another_connections_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let ports = open(dir.path(), &topology(), &clock).await;
    let db_path = dir.path().join(DATABASE_FILE);
    let (locked_tx, locked_rx) = std::sync::mpsc::channel();
    // Another process's long write transaction, played by a raw connection.
    let holder = std::thread::spawn(move || {
        let mut conn = rusqlite::Connection::open(db_path).unwrap();
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .unwrap();
        locked_tx.send(()).unwrap();
        std::thread::sleep(Duration::from_millis(700));
        tx.commit().unwrap();
    });
    locked_rx.recv().unwrap();
    let started = std::time::Instant::now();
    ports
        .state
        .put(item(json!({"pk": "p", "sk": "s"})), None)
        .await
        .unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "it waited for the lock"
    );
    holder.join().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everything_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(Utc::now()));
    {
        let ports = open(dir.path(), &topology(), &clock).await;
        ports
            .state
            .put(item(json!({"pk": "p", "sk": "s"})), None)
            .await
            .unwrap();
        ports
            .records
            .put(item(json!({"pk": "r", "sk": "1"})), None)
            .await
            .unwrap();
        ports
            .queue("write")
            .unwrap()
            .send(OutgoingMessage::new("queued"))
            .await
            .unwrap();
        ports
            .bus
            .put_rule(RuleSpec {
                name: "lifecycle".into(),
                pattern: json!({"source": ["hub.lifecycle"]}),
                target_queue: "write".into(),
            })
            .await
            .unwrap();
        ports
            .secrets
            .put("hub/t/c", "s3cret".to_owned().into(), None)
            .await
            .unwrap();
    }
    let ports = open(dir.path(), &topology(), &clock).await;
    assert!(
        ports
            .state
            .get(&Key::new("p", "s"))
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        ports
            .records
            .get(&Key::new("r", "1"))
            .await
            .unwrap()
            .is_some()
    );
    assert!(ports.secrets.get("hub/t/c").await.unwrap().is_some());
    ports
        .bus
        .put_events(vec![BusEvent::new("hub.lifecycle", "x", json!({}))])
        .await
        .unwrap();
    let write = ports.queue("write").unwrap();
    let got = write.receive(receive(10)).await.unwrap();
    assert_eq!(
        got.len(),
        2,
        "the queued message and the event of the stored rule"
    );
}

/// Stricter than SQS (which the contract suite cannot pin): only the latest receive's handle of
/// a message still in flight may change its visibility, so a consumer that lost its lease cannot
/// extend the new owner's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn change_visibility_needs_the_latest_handle_of_a_message_in_flight() {
    use hub_core::ports::QueueError;
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let ports = open(dir.path(), &topology(), &clock).await;
    let queue = ports.queue("fetch").unwrap();
    queue.send(OutgoingMessage::new("job")).await.unwrap();
    let first = queue.receive(receive(1)).await.unwrap();
    queue
        .change_visibility(&first[0].receipt_handle, Duration::ZERO)
        .await
        .unwrap();
    let second = queue.receive(receive(1)).await.unwrap();
    assert_eq!(
        queue
            .change_visibility(&first[0].receipt_handle, Duration::from_secs(60))
            .await,
        Err(QueueError::InvalidReceipt),
        "an earlier receive's handle"
    );
    clock.advance(hub_core::ports::VISIBILITY_TIMEOUT + Duration::from_secs(1));
    assert_eq!(
        queue
            .change_visibility(&second[0].receipt_handle, Duration::from_secs(60))
            .await,
        Err(QueueError::InvalidReceipt),
        "a message whose visibility timeout ran out"
    );
    assert_eq!(queue.receive(receive(1)).await.unwrap()[0].receive_count, 3);
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let ports = open(&dir.path().join("data"), &topology(), &clock).await;
    ports
        .secrets
        .put("hub/t/c", "s3cret".to_owned().into(), None)
        .await
        .unwrap();
    for file in [DATABASE_FILE, SECRETS_FILE] {
        let path = dir.path().join("data").join(file);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", path.display());
        let wal = dir.path().join("data").join(format!("{file}-wal"));
        if let Ok(meta) = std::fs::metadata(&wal) {
            assert_eq!(meta.permissions().mode() & 0o077, 0, "{}", wal.display());
        }
    }
    let mode = std::fs::metadata(dir.path().join("data"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0, "a new data directory is the owner's only");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_past_retention_are_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let mut topology = Topology::new("t");
    topology.queues = vec![QueueSpec {
        logical_name: "brief".into(),
        visibility_timeout: Duration::from_secs(30),
        retention: Duration::from_secs(60),
        redrive: None,
    }];
    topology.rules = Vec::new();
    let ports = open(dir.path(), &topology, &clock).await;
    let queue = ports.queue("brief").unwrap();
    queue.send(OutgoingMessage::new("old")).await.unwrap();
    clock.advance(Duration::from_secs(30));
    queue.send(OutgoingMessage::new("young")).await.unwrap();
    clock.advance(Duration::from_secs(31));
    assert_eq!(
        queue.depth().await.unwrap(),
        QueueDepth {
            visible: 1,
            in_flight: 0,
            delayed: 0
        }
    );
    let got = queue.receive(receive(10)).await.unwrap();
    assert_eq!(
        got.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(),
        ["young"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_items_are_removed_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let ports = open(dir.path(), &topology(), &clock).await;
    let expires_at = clock.now_secs() + 10;
    ports
        .state
        .put(
            item(json!({"pk": "p", "sk": "s", "expiresAt": expires_at})),
            None,
        )
        .await
        .unwrap();
    clock.advance(Duration::from_secs(11));
    drop(open(dir.path(), &topology(), &clock).await);
    let conn = rusqlite::Connection::open(dir.path().join(DATABASE_FILE)).unwrap();
    let rows: i64 = conn
        .query_row("SELECT COUNT(*) FROM items", [], |row| row.get(0))
        .unwrap();
    assert_eq!(rows, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_carry_the_local_account_and_region() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let ports = open(dir.path(), &topology(), &clock).await;
    ports
        .bus
        .put_events(vec![BusEvent::new("hub.sync", "sync.completed", json!({}))])
        .await
        .unwrap();
    let got = ports
        .queue("transform")
        .unwrap()
        .receive(receive(1))
        .await
        .unwrap();
    let envelope: hub_core::ports::BusEnvelope = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!(envelope.account, crate::LOCAL_ACCOUNT);
    assert_eq!(envelope.region, crate::LOCAL_REGION);
    assert_eq!(envelope.time.timestamp(), clock.now_secs());
    assert_eq!(envelope.time.timestamp_subsec_nanos(), 0, "whole seconds");
}

#[test]
fn invalid_topologies_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let clock: Arc<dyn hub_core::ports::Clock> = Arc::new(ManualClock::new(Utc::now()));
    let open =
        |topology: &Topology| EmbeddedBackend::open(dir.path(), topology, Arc::clone(&clock));

    let mut unknown_dlq = Topology::new("t");
    unknown_dlq.queues[0].redrive = Some(("nowhere".into(), 3));
    let mut duplicate = Topology::new("t");
    duplicate.queues.push(duplicate.queues[0].clone());
    let mut unknown_target = topology();
    unknown_target.rules[0].target_queue = "nowhere".into();
    let mut bad_pattern = topology();
    bad_pattern.rules[0].pattern = json!({"source": "hub.sync"});

    for (topology, what) in [
        (unknown_dlq, "a redrive to an unknown queue"),
        (duplicate, "a queue declared twice"),
        (unknown_target, "a rule targeting an unknown queue"),
        (bad_pattern, "an invalid event pattern"),
    ] {
        match open(&topology) {
            Err(EmbeddedError::Topology(message)) => assert!(!message.is_empty()),
            other => panic!("{what}: expected a topology error, got {other:?}"),
        }
    }
}

trait NowSecs {
    fn now_secs(&self) -> i64;
}

impl NowSecs for ManualClock {
    fn now_secs(&self) -> i64 {
        hub_core::ports::Clock::now(self).timestamp()
    }
}

/// A data directory written before the `items` table got its rowid keeps every item, the
/// index entries included, and is converted once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn items_written_in_the_without_rowid_table_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let topology = topology();
    let table = topology.state_table();
    let file = dir.path().join(DATABASE_FILE);
    {
        let conn = rusqlite::Connection::open(&file).unwrap();
        conn.execute_batch(
            "CREATE TABLE items (
                tbl TEXT NOT NULL, pk TEXT NOT NULL, sk TEXT NOT NULL,
                gsi1pk TEXT, gsi1sk TEXT, expires_at REAL, body TEXT NOT NULL,
                PRIMARY KEY (tbl, pk, sk)
             ) WITHOUT ROWID;
             CREATE INDEX items_gsi1 ON items (tbl, gsi1pk, gsi1sk, pk, sk)
                 WHERE gsi1pk IS NOT NULL AND gsi1sk IS NOT NULL;
             CREATE INDEX items_expiry ON items (expires_at) WHERE expires_at IS NOT NULL;",
        )
        .unwrap();
        for (sk, gsi) in [("a", Some("g1")), ("b", None)] {
            let mut body = json!({"pk": "p", "sk": sk, "v": sk});
            if let Some(gsi) = gsi {
                body["gsi1pk"] = json!("G");
                body["gsi1sk"] = json!(gsi);
            }
            conn.execute(
                "INSERT INTO items (tbl, pk, sk, gsi1pk, gsi1sk, body)
                 VALUES (?1, 'p', ?2, ?3, ?4, ?5)",
                rusqlite::params![table, sk, gsi.map(|_| "G"), gsi, body.to_string()],
            )
            .unwrap();
        }
    }
    let clock = Arc::new(ManualClock::new(Utc::now()));
    for _ in 0..2 {
        let ports = open(dir.path(), &topology, &clock).await;
        let a = ports.state.get(&Key::new("p", "a")).await.unwrap().unwrap();
        assert_eq!(a.get("v"), Some(&json!("a")));
        let page = ports
            .state
            .query(hub_core::ports::QueryRequest::partition(
                hub_core::ports::Index::Gsi1,
                "G",
            ))
            .await
            .unwrap();
        assert_eq!(page.items.len(), 1, "the gsi1 index was rebuilt");
        let page = ports
            .state
            .query(hub_core::ports::QueryRequest::partition(
                hub_core::ports::Index::Primary,
                "p",
            ))
            .await
            .unwrap();
        assert_eq!(page.items.len(), 2);
        // A put replaces by key in the new table too.
        ports
            .state
            .put(item(json!({"pk": "p", "sk": "b", "v": "b2"})), None)
            .await
            .unwrap();
        drop(ports);
    }
    let conn = rusqlite::Connection::open(&file).unwrap();
    let sql: String = conn
        .query_row(
            "SELECT group_concat(sql, ';') FROM sqlite_master WHERE tbl_name LIKE 'items%'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert!(!sql.to_ascii_uppercase().contains("WITHOUT ROWID"), "{sql}");
    assert!(sql.contains("items_key"), "{sql}");
    let rows: i64 = conn
        .query_row("SELECT count(*) FROM items", [], |row| row.get(0))
        .unwrap();
    assert_eq!(rows, 2);
}

/// A data directory written when message bodies were a column of `messages` keeps every
/// message, readable and deletable as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_written_with_their_bodies_inline_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let topology = topology();
    let transform = topology.queue_name("transform");
    let file = dir.path().join(DATABASE_FILE);
    let now = Utc::now();
    {
        let conn = rusqlite::Connection::open(&file).unwrap();
        conn.execute_batch(
            "CREATE TABLE messages (
                seq INTEGER PRIMARY KEY AUTOINCREMENT,
                queue TEXT NOT NULL, id TEXT NOT NULL, body TEXT NOT NULL,
                attributes TEXT NOT NULL, sent_at_ms INTEGER NOT NULL,
                visible_at_ms INTEGER NOT NULL, receive_count INTEGER NOT NULL, receipt TEXT,
                UNIQUE (queue, id)
             );
             CREATE INDEX messages_visible ON messages (queue, visible_at_ms, seq);
             CREATE INDEX messages_sent ON messages (queue, sent_at_ms);",
        )
        .unwrap();
        for (id, body) in [("m-1", "first"), ("m-2", "second")] {
            conn.execute(
                "INSERT INTO messages (queue, id, body, attributes, sent_at_ms, visible_at_ms,
                     receive_count) VALUES (?1, ?2, ?3, '{}', ?4, ?4, 0)",
                rusqlite::params![transform, id, body, now.timestamp_millis() - 1000],
            )
            .unwrap();
        }
    }
    let clock = Arc::new(ManualClock::new(now));
    let ports = open(dir.path(), &topology, &clock).await;
    let queue = ports.queue("transform").unwrap();
    let received = queue.receive(receive(10)).await.unwrap();
    let bodies: BTreeSet<_> = received.iter().map(|m| m.body.as_str()).collect();
    assert_eq!(bodies, BTreeSet::from(["first", "second"]));
    for message in &received {
        queue.delete(&message.receipt_handle).await.unwrap();
    }
    let id = queue.send(OutgoingMessage::new("third")).await.unwrap();
    let again = queue.receive(receive(10)).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(
        (again[0].message_id.as_str(), again[0].body.as_str()),
        (id.as_str(), "third")
    );
    drop(ports);

    let conn = rusqlite::Connection::open(&file).unwrap();
    let columns: Vec<String> = conn
        .prepare("SELECT name FROM pragma_table_info('messages')")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(!columns.iter().any(|c| c == "body"), "{columns:?}");
    let bodies: i64 = conn
        .query_row("SELECT count(*) FROM message_bodies", [], |row| row.get(0))
        .unwrap();
    assert_eq!(
        bodies, 1,
        "the deleted messages took their bodies with them"
    );
}
