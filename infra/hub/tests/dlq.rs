//! `hub dlq` as an operator runs it, on an embedded data directory holding one dead transform
//! message that the batch driver noted as it failed.

use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use hub_core::ports::{MAX_RECEIVE_COUNT, OutgoingMessage, Ports, ReceiveOptions};
use hub_runtime::{FailureNotes, HandlerError, MessageHandler, QueueMessage, process_batch_noting};
use serde_json::Value;

mod support;
use support::open_embedded;

/// Fails permanently for want of a schema, or (`"outage": true` in the body) retryably.
struct Fails;

#[async_trait]
impl MessageHandler for Fails {
    async fn handle(&self, message: &QueueMessage) -> Result<(), HandlerError> {
        if message.body.contains("\"outage\":true") {
            return Err(HandlerError::retryable(
                "state_store_unavailable",
                "the state table did not answer",
            ));
        }
        Err(HandlerError::permanent(
            "schema_not_found",
            "conversion schema contact version 3 is not stored",
        ))
    }
}

const POISON: &str = r#"{"v":1,"tenantId":"acme","taskId":"contacts","executionId":"01JEXEC"}"#;
const OUTAGE: &str = r#"{"v":1,"tenantId":"acme","taskId":"deals","outage":true}"#;

/// Sends `body` to the transform queue and fails it until it is in the transform DLQ.
async fn one_dead_message(ports: &Ports, body: &str) -> String {
    let queue = ports.queue("transform").unwrap();
    let id = queue.send(OutgoingMessage::new(body)).await.unwrap();
    let notes = FailureNotes::for_queue(ports, "transform");
    let receive = ReceiveOptions {
        max_messages: 10,
        wait: Duration::ZERO,
        visibility_timeout: Some(Duration::from_secs(60)),
    };
    for _ in 0..MAX_RECEIVE_COUNT {
        let received = queue.receive(receive).await.unwrap();
        assert_eq!(received.len(), 1);
        let message = QueueMessage {
            message_id: received[0].message_id.clone(),
            body: received[0].body.clone(),
            receive_count: received[0].receive_count,
            attributes: received[0].attributes.clone(),
        };
        process_batch_noting(Arc::new(Fails), vec![message], 1, Some(notes.clone())).await;
        queue
            .change_visibility(&received[0].receipt_handle, Duration::ZERO)
            .await
            .unwrap();
    }
    assert!(queue.receive(receive).await.unwrap().is_empty(), "moved");
    id
}

fn hub(dir: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hub"))
        .args(["dlq"])
        .args(args)
        .args(["--backend", "embedded", "--data-dir"])
        .arg(dir)
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("HUB_BACKEND")
        .env_remove("HUB_PREFIX")
        .output()
        .expect("run hub")
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "hub failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn json_lines(output: &Output) -> Vec<Value> {
    stdout(output)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_show_replay_and_purge_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let ports = open_embedded(dir.path()).await;
    let id = one_dead_message(&ports, POISON).await;

    let listings = json_lines(&hub(dir.path(), &["list", "--json"]));
    assert_eq!(listings.len(), 3, "one listing per DLQ");
    let transform = listings
        .iter()
        .find(|l| l["queue"] == "transform-dlq")
        .unwrap();
    assert_eq!(transform["messages"][0]["messageId"], id.as_str());
    assert_eq!(
        transform["messages"][0]["failure"]["code"],
        "schema_not_found"
    );
    assert_eq!(transform["messages"][0]["tenantId"], "acme");

    let table = stdout(&hub(dir.path(), &["list", "--queue", "transform"]));
    assert!(
        table.contains("transform-dlq (replays to transform)"),
        "{table}"
    );
    assert!(
        table.contains(&id) && table.contains("schema_not_found"),
        "{table}"
    );
    assert!(table.contains("version 3 is not stored"), "{table}");

    let shown = stdout(&hub(dir.path(), &["show", &id]));
    assert!(shown.contains("\"executionId\": \"01JEXEC\""), "{shown}");
    assert!(shown.contains("[schema_not_found]"), "{shown}");

    let refused = hub(dir.path(), &["purge", "--queue", "transform"]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("error[purge_needs_filter]"),
        "{refused:?}"
    );

    let dry = json_lines(&hub(
        dir.path(),
        &["replay", "--queue", "transform", "--dry-run", "--json"],
    ));
    assert_eq!(dry[0]["queues"][0]["messages"][0]["outcome"], "wouldReplay");
    assert_eq!(
        ports
            .queue("transform")
            .unwrap()
            .depth()
            .await
            .unwrap()
            .visible,
        0
    );

    let replayed = stdout(&hub(
        dir.path(),
        &[
            "replay",
            "--tenant",
            "acme",
            "--error-code",
            "schema_not_found",
            "--rate",
            "100",
        ],
    ));
    assert!(replayed.contains("transform-dlq: 1 replayed"), "{replayed}");
    assert_eq!(
        ports
            .queue("transform")
            .unwrap()
            .depth()
            .await
            .unwrap()
            .visible,
        1
    );
    assert_eq!(
        ports
            .queue("transform-dlq")
            .unwrap()
            .depth()
            .await
            .unwrap()
            .visible,
        0
    );

    let gone = hub(dir.path(), &["show", &id]);
    assert!(!gone.status.success());
    assert!(
        String::from_utf8_lossy(&gone.stderr).contains("error[message_not_found]"),
        "{gone:?}"
    );
}

/// `hub dev --dlq-replay-every`: the replayer on the host's tick sends back what failed
/// retryably and leaves the poison message for an operator.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dev_host_replays_retryable_failures_on_its_tick() {
    let dir = tempfile::tempdir().unwrap();
    let ports = open_embedded(dir.path()).await;
    one_dead_message(&ports, POISON).await;
    let outage = one_dead_message(&ports, OUTAGE).await;
    let host = hub_host::Host::new(
        ports.clone(),
        hub_host::HostOptions {
            port: 0,
            tick: Duration::from_millis(100),
            receive_wait: Duration::from_millis(50),
            shutdown_grace: Duration::from_secs(2),
        },
    );
    let running = hub_host::functions::register_dlq_replayer(host, Duration::from_secs(3600))
        .start()
        .await
        .unwrap();
    let transform = ports.queue("transform").unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while transform.depth().await.unwrap().visible == 0 {
        assert!(tokio::time::Instant::now() < deadline, "nothing replayed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    running.stop().await.unwrap();
    let back = transform
        .receive(ReceiveOptions {
            max_messages: 10,
            wait: Duration::ZERO,
            visibility_timeout: None,
        })
        .await
        .unwrap();
    assert_eq!(back.len(), 1);
    assert_eq!(back[0].body, OUTAGE);
    assert_ne!(back[0].message_id, outage, "a copy, not the dead message");
    let dlq = ports.queue("transform-dlq").unwrap().depth().await.unwrap();
    assert_eq!(
        dlq.visible + dlq.in_flight,
        1,
        "the poison message waits for an operator"
    );
}
