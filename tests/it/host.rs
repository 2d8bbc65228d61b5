//! The local host: queue workers with Lambda's partial-batch semantics, `/health`, shutdown.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use hub_core::ports::{OutgoingMessage, Ports, SystemClock, Topology};
use hub_host::{Host, HostOptions, QueueFunction, TickHandler};
use hub_runtime::{HandlerError, MessageHandler, QueueMessage};

/// Records what it handled; fails bodies starting with `fail`, sleeps on `slow`.
#[derive(Default)]
struct Recorder {
    handled: Mutex<Vec<String>>,
    started: Mutex<Vec<String>>,
}

#[async_trait]
impl MessageHandler for Recorder {
    async fn handle(&self, message: &QueueMessage) -> Result<(), HandlerError> {
        self.started.lock().unwrap().push(message.body.clone());
        if message.body.starts_with("fail") {
            return Err(HandlerError::permanent("test_failure", "asked to fail"));
        }
        if message.body == "slow" {
            tokio::time::sleep(Duration::from_secs(30)).await;
        }
        self.handled.lock().unwrap().push(message.body.clone());
        Ok(())
    }
}

async fn embedded(dir: &std::path::Path) -> Ports {
    let dir = dir.to_owned();
    tokio::task::spawn_blocking(move || {
        hub_embedded::EmbeddedBackend::open(&dir, &Topology::default(), Arc::new(SystemClock))
    })
    .await
    .unwrap()
    .unwrap()
}

fn options() -> HostOptions {
    HostOptions {
        port: 0,
        tick: Duration::from_millis(50),
        receive_wait: Duration::from_millis(100),
        shutdown_grace: Duration::from_millis(300),
    }
}

async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn workers_delete_what_succeeded_and_leave_failures_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let ports = embedded(dir.path()).await;
    let recorder = Arc::new(Recorder::default());
    let host = Host::new(ports.clone(), options()).queue_function(QueueFunction::new(
        "recorder",
        "transform",
        recorder.clone(),
    ));
    let running = host.start().await.unwrap();

    let queue = ports.queue("transform").unwrap();
    for body in ["ok-1", "fail-1", "ok-2"] {
        queue.send(OutgoingMessage::new(body)).await.unwrap();
    }
    eventually("both good messages", || {
        recorder.handled.lock().unwrap().len() == 2
    })
    .await;
    eventually("the failure to be attempted", || {
        recorder
            .started
            .lock()
            .unwrap()
            .iter()
            .any(|b| b == "fail-1")
    })
    .await;

    // Give the worker time to delete, then look at the queue as SQS would report it.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let depth = queue.depth().await.unwrap();
    assert_eq!(
        (depth.visible, depth.in_flight),
        (0, 1),
        "only the failed message stays, in flight"
    );

    let health: serde_json::Value = reqwest::get(format!("http://{}/health", running.address))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["backend"], "embedded");
    assert_eq!(health["version"], env!("CARGO_PKG_VERSION"));
    let queues = health["queues"].as_array().unwrap();
    assert_eq!(
        queues.len(),
        6,
        "three work queues and their DLQs: {health}"
    );
    let transform = queues.iter().find(|q| q["name"] == "transform").unwrap();
    assert_eq!(transform["inFlight"], 1);
    assert_eq!(transform["visible"], 0);

    running.stop().await.unwrap();
}

#[tokio::test]
async fn shutdown_returns_unfinished_messages_to_their_queue() {
    let dir = tempfile::tempdir().unwrap();
    let ports = embedded(dir.path()).await;
    let recorder = Arc::new(Recorder::default());
    let running = Host::new(ports.clone(), options())
        .queue_function(QueueFunction::new("recorder", "write", recorder.clone()))
        .start()
        .await
        .unwrap();
    let queue = ports.queue("write").unwrap();
    queue.send(OutgoingMessage::new("slow")).await.unwrap();
    eventually("the slow message to start", || {
        !recorder.started.lock().unwrap().is_empty()
    })
    .await;

    let stopping = tokio::time::Instant::now();
    running.stop().await.unwrap();
    assert!(
        stopping.elapsed() < Duration::from_secs(5),
        "stop waits only the grace period"
    );
    let depth = queue.depth().await.unwrap();
    assert_eq!(
        (depth.visible, depth.in_flight),
        (1, 0),
        "the message is back, visible at once"
    );
    assert!(recorder.handled.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_function_on_a_missing_queue_or_two_on_one_queue_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ports = embedded(dir.path()).await;
    let recorder: Arc<dyn MessageHandler> = Arc::new(Recorder::default());
    let missing = Host::new(ports.clone(), options())
        .queue_function(QueueFunction::new("f", "nope", recorder.clone()))
        .start()
        .await;
    assert!(matches!(
        missing,
        Err(hub_host::HostError::UnknownQueue { .. })
    ));
    let twice = Host::new(ports, options())
        .queue_function(QueueFunction::new("a", "fetch", recorder.clone()))
        .queue_function(QueueFunction::new("b", "fetch", recorder))
        .start()
        .await;
    assert!(matches!(twice, Err(hub_host::HostError::QueueTaken(q)) if q == "fetch"));
}

struct CountTicks(Mutex<u32>);

#[async_trait]
impl TickHandler for CountTicks {
    async fn tick(&self, _now: chrono::DateTime<chrono::Utc>) -> Result<(), HandlerError> {
        *self.0.lock().unwrap() += 1;
        Ok(())
    }
}

#[tokio::test]
async fn the_scheduler_ticks_registered_functions() {
    let dir = tempfile::tempdir().unwrap();
    let ports = embedded(dir.path()).await;
    let ticks = Arc::new(CountTicks(Mutex::new(0)));
    let running = Host::new(ports, options())
        .tick_function("counter", ticks.clone())
        .start()
        .await
        .unwrap();
    eventually("three ticks", || *ticks.0.lock().unwrap() >= 3).await;
    running.stop().await.unwrap();
}
