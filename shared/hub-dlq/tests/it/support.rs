//! Test environments (the embedded backend with a `ManualClock`, or the AWS backend on the
//! shared moto server), a handler that fails as its message body says, and a way to kill
//! messages: deliver them `MAX_RECEIVE_COUNT` times through the batch driver (which writes
//! their failure notes) and let the next receive move them to the DLQ, as SQS does.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use hub_core::ports::{
    Clock, IdGenerator, MAX_RECEIVE_COUNT, ManualClock, OutgoingMessage, Ports, Queue, QueueDepth,
    QueueError, QueueRole, ReceiveOptions, ReceivedMessage, SystemClock, Topology, UlidGenerator,
};
use hub_dlq::{Dlq, VirtualTime};
use hub_runtime::{FailureNotes, HandlerError, MessageHandler, QueueMessage, process_batch_noting};
use hub_testkit::faults::{FaultyQueue, QueueCall};
use serde_json::{Value, json};

pub struct Env {
    pub ports: Ports,
    /// Set on the embedded backend only (moto keeps real time).
    pub clock: Option<Arc<ManualClock>>,
    /// The replayer's pace: rate limits cost no real time.
    pub time: Arc<VirtualTime>,
    _dir: Option<tempfile::TempDir>,
}

pub fn start_time() -> DateTime<Utc> {
    // Real now, so that ages computed from moto's real send times make sense too.
    Utc::now()
}

pub async fn embedded() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(start_time()));
    let path = dir.path().to_owned();
    let shared: Arc<dyn Clock> = clock.clone();
    let ports = tokio::task::spawn_blocking(move || {
        hub_embedded::EmbeddedBackend::open(&path, &Topology::default(), shared)
    })
    .await
    .unwrap()
    .unwrap();
    Env {
        ports,
        clock: Some(clock),
        time: Arc::new(VirtualTime::new()),
        _dir: Some(dir),
    }
}

/// The AWS backend in a region and under a prefix of its own; `None` (after saying so) when
/// moto is not installed and not required.
pub async fn aws(test: &str) -> Option<Env> {
    static NEXT_REGION: AtomicU64 = AtomicU64::new(1);
    let server = hub_testkit::moto::MotoServer::shared_or_skip(test)?;
    let prefix = format!(
        "d{}",
        &UlidGenerator::new(SystemClock).new_id().to_lowercase()[16..]
    );
    let region = format!("dlq-{}", NEXT_REGION.fetch_add(1, Ordering::Relaxed));
    let settings = hub_aws::AwsSettings::emulator(server.endpoint()).region(region);
    let topology = Topology::new(prefix);
    hub_aws::bootstrap(&settings, &topology).await.unwrap();
    let ports = hub_aws::connect(&settings, &topology, Arc::new(SystemClock))
        .await
        .unwrap();
    Some(Env {
        ports,
        clock: None,
        time: Arc::new(VirtualTime::new()),
        _dir: None,
    })
}

impl Env {
    pub fn dlq(&self) -> Dlq {
        Dlq::new(self.ports.clone()).with_pace(self.time.clone())
    }

    pub fn queue(&self, name: &str) -> Arc<dyn Queue> {
        self.ports.queue(name).unwrap()
    }

    pub async fn depth(&self, name: &str) -> QueueDepth {
        self.queue(name).depth().await.unwrap()
    }

    /// Sends `bodies` to `role`'s queue and has every one fail until its [`MAX_RECEIVE_COUNT`]th
    /// receive in the batch driver (with failure notes), then moves them to the DLQ. Returns their ids in
    /// the order of `bodies`.
    pub async fn kill(&self, role: QueueRole, bodies: &[Value]) -> Vec<String> {
        let source = self.queue(role.logical_name());
        let mut ids = Vec::new();
        for body in bodies {
            ids.push(
                source
                    .send(OutgoingMessage::new(body.to_string()))
                    .await
                    .unwrap(),
            );
        }
        self.fail_until_dead(role, &ids).await;
        ids
    }

    /// Delivers the messages `ids` of `role`'s queue until they reach its DLQ.
    pub async fn fail_until_dead(&self, role: QueueRole, ids: &[String]) {
        let source = self.queue(role.logical_name());
        let notes = FailureNotes::for_queue(&self.ports, role.logical_name());
        loop {
            let received = receive_all(&*source, ids).await;
            let last_round = received
                .iter()
                .all(|m| m.receive_count >= MAX_RECEIVE_COUNT);
            let batch = received.iter().map(queue_message).collect();
            let outcome =
                process_batch_noting(Arc::new(FailsAsTold), batch, 4, Some(notes.clone())).await;
            assert_eq!(outcome.failures.len(), ids.len());
            // Back to the queue at once, as a host releases a failed batch when told to.
            for message in &received {
                source
                    .change_visibility(&message.receipt_handle, Duration::ZERO)
                    .await
                    .unwrap();
            }
            if last_round {
                break;
            }
        }
        // The next receive moves them instead of delivering them.
        let moved = source
            .receive(receive_options(Duration::ZERO))
            .await
            .unwrap();
        assert!(moved.is_empty(), "{moved:?}");
        let dlq = self.queue(&role.dlq_name());
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while dlq.depth().await.unwrap().visible < ids.len() as u64 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "not all moved to the DLQ"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Moves the manual clock (embedded) forward.
    pub fn advance(&self, by: Duration) {
        if let Some(clock) = &self.clock {
            clock.advance(by);
        }
    }

    /// Every message now in `queue`, received and made visible again.
    pub async fn peek(&self, queue: &str) -> Vec<ReceivedMessage> {
        let queue = self.queue(queue);
        let mut seen: BTreeMap<String, ReceivedMessage> = BTreeMap::new();
        loop {
            let batch = queue
                .receive(receive_options(if self.clock.is_some() {
                    Duration::ZERO
                } else {
                    Duration::from_secs(1)
                }))
                .await
                .unwrap();
            if batch.is_empty() {
                break;
            }
            for message in batch {
                seen.insert(message.message_id.clone(), message);
            }
        }
        for message in seen.values() {
            queue
                .change_visibility(&message.receipt_handle, Duration::ZERO)
                .await
                .unwrap();
        }
        seen.into_values().collect()
    }
}

fn receive_options(wait: Duration) -> ReceiveOptions {
    ReceiveOptions {
        max_messages: 10,
        wait,
        visibility_timeout: Some(Duration::from_secs(60)),
    }
}

/// Receives until every message of `ids` was received once (held for 60 s).
async fn receive_all(queue: &dyn Queue, ids: &[String]) -> Vec<ReceivedMessage> {
    let mut received: Vec<ReceivedMessage> = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while received.len() < ids.len() {
        assert!(tokio::time::Instant::now() < deadline, "only {received:?}");
        for message in queue
            .receive(receive_options(Duration::from_millis(500)))
            .await
            .unwrap()
        {
            assert!(ids.contains(&message.message_id), "{message:?}");
            received.push(message);
        }
    }
    received
}

pub fn queue_message(message: &ReceivedMessage) -> QueueMessage {
    QueueMessage {
        message_id: message.message_id.clone(),
        body: message.body.clone(),
        receive_count: message.receive_count,
        attributes: message.attributes.clone(),
    }
}

/// A body the [`FailsAsTold`] handler fails with `code` (retryable or not).
pub fn body(tenant: &str, task: &str, code: &str, retryable: bool) -> Value {
    json!({
        "v": 1,
        "tenantId": tenant,
        "taskId": task,
        "executionId": format!("exec-{tenant}-{task}"),
        "fail": code,
        "retryable": retryable,
    })
}

/// Fails every message as its body says (`fail`, `retryable`); `panic: true` panics.
pub struct FailsAsTold;

#[async_trait]
impl MessageHandler for FailsAsTold {
    async fn handle(&self, message: &QueueMessage) -> Result<(), HandlerError> {
        let body: Value = serde_json::from_str(&message.body)
            .map_err(|e| HandlerError::permanent("invalid_message_body", e.to_string()))?;
        if body["panic"] == json!(true) {
            panic!("told to panic");
        }
        let code = body["fail"].as_str().unwrap_or("told_to_fail").to_owned();
        let sentence = format!("failed as told on receive {}", message.receive_count);
        Err(if body["retryable"] == json!(true) {
            HandlerError::retryable(code, sentence)
        } else {
            HandlerError::permanent(code, sentence)
        })
    }
}

/// `inner` with its next `failing` deletes failing (as a replayer dying between its send and
/// its delete); `on_failure` runs at each failed delete.
pub fn flaky_deletes(
    inner: Arc<dyn Queue>,
    failing: usize,
    on_failure: impl Fn() + Send + Sync + 'static,
) -> Arc<dyn Queue> {
    let failing = AtomicUsize::new(failing);
    Arc::new(FaultyQueue::new(inner, move |call| {
        let fails = call == QueueCall::Delete
            && failing
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
        if fails {
            on_failure();
            return Err(QueueError::Unavailable("injected delete failure".into()));
        }
        Ok(())
    }))
}
