//! Queue workers, the scheduler tick and the HTTP server, wired to registered functions.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use hub_core::ports::{MAX_BATCH_ENTRIES, Ports, Queue, ReceiveOptions, ReceivedMessage};
use hub_runtime::{
    DeadLetterSink, FailureNotes, HandlerError, MessageHandler, QueueMessage, process_batch_noting,
};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::storage::{RunsInFlight, StorageFaultReporter};

/// A function driven by a queue, as an SQS event source mapping drives a Lambda function.
#[derive(Clone)]
pub struct QueueFunction {
    /// The function's name (`transformer`, `writer`, ...), for logs.
    pub name: String,
    /// Logical name of the queue it consumes.
    pub queue: String,
    pub handler: Arc<dyn MessageHandler>,
    /// Messages per batch (1..=10), as the event source mapping's `BatchSize`.
    pub batch_size: usize,
    /// Messages of one batch handled at once.
    pub concurrency: usize,
}

impl QueueFunction {
    pub fn new(
        name: impl Into<String>,
        queue: impl Into<String>,
        handler: Arc<dyn MessageHandler>,
    ) -> Self {
        Self {
            name: name.into(),
            queue: queue.into(),
            handler,
            batch_size: 10,
            concurrency: 4,
        }
    }
}

/// A function fired by the schedule rule (every minute on AWS, every `--tick` locally).
#[async_trait]
pub trait TickHandler: Send + Sync {
    async fn tick(&self, now: DateTime<Utc>) -> Result<(), HandlerError>;
}

#[derive(Debug, Clone)]
pub struct HostOptions {
    /// 0 picks a free port.
    pub port: u16,
    pub tick: Duration,
    /// Long-poll wait of the queue workers.
    pub receive_wait: Duration,
    /// How long a batch in flight at shutdown may take to finish before its messages are
    /// returned to their queue.
    pub shutdown_grace: Duration,
}

impl Default for HostOptions {
    fn default() -> Self {
        Self {
            port: 8787,
            tick: Duration::from_secs(60),
            receive_wait: Duration::from_secs(2),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("cannot listen on 127.0.0.1:{port}: {source}")]
    Bind { port: u16, source: std::io::Error },
    #[error("function `{function}` consumes queue `{queue}`, which the backend does not have")]
    UnknownQueue { function: String, queue: String },
    #[error("queue `{0}` has two functions registered; a queue feeds exactly one function")]
    QueueTaken(String),
    #[error("the HTTP server failed: {0}")]
    Serve(std::io::Error),
}

/// The host before it runs: ports plus registrations. Adding a function is one call.
pub struct Host {
    ports: Ports,
    options: HostOptions,
    queue_functions: Vec<QueueFunction>,
    tick_functions: Vec<(String, Arc<dyn TickHandler>)>,
    routes: axum::Router,
    visibility_timeout: Option<Duration>,
    dead_letters: Option<Arc<dyn DeadLetterSink>>,
}

impl Host {
    pub fn new(ports: Ports, options: HostOptions) -> Self {
        Self {
            ports,
            options,
            queue_functions: Vec::new(),
            tick_functions: Vec::new(),
            routes: axum::Router::new(),
            visibility_timeout: None,
            dead_letters: None,
        }
    }

    pub fn ports(&self) -> &Ports {
        &self.ports
    }

    /// Receives every message with this visibility timeout instead of its queue's (180 s, as
    /// on AWS), so the messages a crashed host had in flight come back that much sooner (`hub
    /// dev --visibility-timeout`). The functions' leases must stay below it:
    /// [`crate::functions::register_all`] scales them to it.
    pub fn visibility_timeout(mut self, timeout: Duration) -> Self {
        self.visibility_timeout = Some(timeout);
        self
    }

    /// The visibility timeout set with [`Host::visibility_timeout`], if any.
    pub fn visibility_timeout_override(&self) -> Option<Duration> {
        self.visibility_timeout
    }

    /// Tells `sink` of every message whose last allowed delivery failed, on every queue (the
    /// run accounting of dead letters, as the Lambda functions' failure notes do).
    pub fn dead_letters(mut self, sink: Arc<dyn DeadLetterSink>) -> Self {
        self.dead_letters = Some(sink);
        self
    }

    /// Registers a queue-driven function.
    pub fn queue_function(mut self, function: QueueFunction) -> Self {
        self.queue_functions.push(function);
        self
    }

    /// Registers a function fired on every scheduler tick.
    pub fn tick_function(mut self, name: impl Into<String>, handler: Arc<dyn TickHandler>) -> Self {
        self.tick_functions.push((name.into(), handler));
        self
    }

    /// Merges HTTP routes (webhook receiver, management API) into the server.
    pub fn routes(mut self, router: axum::Router) -> Self {
        self.routes = self.routes.merge(router);
        self
    }

    /// Binds the HTTP listener and starts the workers and the tick; returns once listening.
    pub async fn start(self) -> Result<RunningHost, HostError> {
        let mut consumed = BTreeMap::new();
        let mut workers = Vec::new();
        for function in &self.queue_functions {
            let queue = self
                .ports
                .queue(&function.queue)
                .map_err(|_| HostError::UnknownQueue {
                    function: function.name.clone(),
                    queue: function.queue.clone(),
                })?;
            if consumed
                .insert(function.queue.clone(), function.name.clone())
                .is_some()
            {
                return Err(HostError::QueueTaken(function.queue.clone()));
            }
            workers.push((function.clone(), queue));
        }

        let port = self.options.port;
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .map_err(|source| HostError::Bind { port, source })?;
        let address = listener
            .local_addr()
            .map_err(|source| HostError::Bind { port, source })?;

        let shutdown = CancellationToken::new();
        let mut tasks = JoinSet::new();
        let runs = RunsInFlight::default();
        let reporter =
            StorageFaultReporter::new(hub_sync::SyncService::new(self.ports.clone()), runs.clone());
        tasks.spawn(reporter.run(shutdown.clone()));
        for (function, queue) in workers {
            // What the DLQ tooling shows as the reason a message of this queue is dead.
            let mut notes = FailureNotes::for_queue(&self.ports, function.queue.clone());
            if let Some(sink) = &self.dead_letters {
                notes = notes.with_dead_letters(Arc::clone(sink));
            }
            let worker = Worker {
                notes,
                runs: runs.clone(),
                function,
                queue,
                options: self.options.clone(),
                visibility_timeout: self.visibility_timeout,
                shutdown: shutdown.clone(),
            };
            tasks.spawn(worker.run());
        }
        if !self.tick_functions.is_empty() {
            let ticker = Ticker {
                functions: self.tick_functions,
                clock: Arc::clone(&self.ports.clock),
                every: self.options.tick,
                shutdown: shutdown.clone(),
            };
            tasks.spawn(ticker.run());
        }
        let router = crate::http::router(self.ports.clone()).merge(self.routes);
        let http_shutdown = shutdown.clone();
        let server = tokio::spawn(async move {
            // With the peer address, for the webhook routes' source allow-lists.
            axum::serve(
                listener,
                router.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(async move { http_shutdown.cancelled().await })
            .await
        });
        tracing::info!(%address, backend = self.ports.backend, "hub is listening");
        Ok(RunningHost {
            address,
            shutdown,
            tasks,
            server,
        })
    }
}

/// A started host. Dropping it does not stop it: call [`RunningHost::stop`].
pub struct RunningHost {
    pub address: SocketAddr,
    shutdown: CancellationToken,
    tasks: JoinSet<()>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl RunningHost {
    /// Runs until `signal` resolves, then stops cleanly.
    pub async fn run_until(
        self,
        signal: impl std::future::Future<Output = ()>,
    ) -> Result<(), HostError> {
        signal.await;
        self.stop().await
    }

    /// Stops receiving, lets batches in flight finish (or returns their messages to the queue
    /// after the grace period) and closes the HTTP server.
    pub async fn stop(mut self) -> Result<(), HostError> {
        tracing::info!("hub is stopping");
        self.shutdown.cancel();
        while self.tasks.join_next().await.is_some() {}
        match self.server.await {
            Ok(result) => result.map_err(HostError::Serve),
            Err(join_error) => Err(HostError::Serve(std::io::Error::other(
                join_error.to_string(),
            ))),
        }
    }
}

struct Worker {
    /// Where the runs of the messages it receives are noted, for the storage fault reporter.
    runs: RunsInFlight,
    function: QueueFunction,
    queue: Arc<dyn Queue>,
    notes: FailureNotes,
    options: HostOptions,
    visibility_timeout: Option<Duration>,
    shutdown: CancellationToken,
}

impl Worker {
    async fn run(self) {
        let receive = ReceiveOptions {
            max_messages: self.function.batch_size.clamp(1, 10),
            wait: self.options.receive_wait,
            visibility_timeout: self.visibility_timeout,
        };
        let mut failures_in_a_row: u32 = 0;
        // A receive is never abandoned half-way (the service may already have handed messages
        // out): it runs to the end of its long poll, and what it returns after shutdown was
        // requested goes straight back to the queue.
        while !self.shutdown.is_cancelled() {
            let messages = match self.queue.receive(receive).await {
                Ok(messages) => {
                    failures_in_a_row = 0;
                    messages
                }
                Err(error) => {
                    failures_in_a_row = failures_in_a_row.saturating_add(1);
                    tracing::warn!(function = %self.function.name, queue = %self.function.queue, %error, "receive failed");
                    let pause = Duration::from_millis(200 * u64::from(failures_in_a_row.min(25)));
                    tokio::select! {
                        () = self.shutdown.cancelled() => return,
                        () = tokio::time::sleep(pause) => continue,
                    }
                }
            };
            if self.shutdown.is_cancelled() {
                self.release(messages.iter().map(|m| m.receipt_handle.as_str()))
                    .await;
                return;
            }
            if !messages.is_empty() {
                self.handle_batch(messages).await;
            }
        }
    }

    /// Makes messages visible again at once.
    async fn release(&self, receipts: impl Iterator<Item = &str>) {
        for receipt in receipts {
            if let Err(error) = self.queue.change_visibility(receipt, Duration::ZERO).await {
                tracing::warn!(%error, "could not return a message to its queue; it reappears after its visibility timeout");
            }
        }
    }

    /// Hands one batch to the function and deletes what succeeded. Failed messages stay in
    /// flight until their visibility timeout, then come back with a higher receive count and
    /// eventually reach the DLQ: exactly what the SQS event source does.
    async fn handle_batch(&self, received: Vec<ReceivedMessage>) {
        for message in &received {
            self.runs.saw(&message.body);
        }
        let receipts: BTreeMap<String, String> = received
            .iter()
            .map(|m| (m.message_id.clone(), m.receipt_handle.clone()))
            .collect();
        let messages = received
            .into_iter()
            .map(|m| QueueMessage {
                message_id: m.message_id,
                body: m.body,
                receive_count: m.receive_count,
                attributes: m.attributes,
            })
            .collect();
        let mut batch = tokio::spawn(process_batch_noting(
            Arc::clone(&self.function.handler),
            messages,
            self.function.concurrency,
            Some(self.notes.clone()),
        ));
        let outcome = tokio::select! {
            joined = &mut batch => joined,
            () = self.grace_expired() => {
                batch.abort();
                tracing::warn!(function = %self.function.name, "batch still running at shutdown; returning its messages to the queue");
                self.release(receipts.values().map(String::as_str)).await;
                return;
            }
        };
        let outcome = match outcome {
            Ok(outcome) => outcome,
            Err(join_error) => {
                tracing::error!(function = %self.function.name, %join_error, "batch driver failed; messages reappear after their visibility timeout");
                return;
            }
        };
        let handled: Vec<(&String, &String)> = outcome
            .succeeded
            .iter()
            .filter_map(|id| receipts.get(id).map(|receipt| (id, receipt)))
            .collect();
        // One request per ten messages, as the SQS event source acknowledges a batch.
        for chunk in handled.chunks(MAX_BATCH_ENTRIES) {
            let handles: Vec<String> = chunk
                .iter()
                .map(|(_, receipt)| (*receipt).clone())
                .collect();
            match self.queue.delete_batch(&handles).await {
                Ok(outcomes) => {
                    for ((message_id, _), outcome) in chunk.iter().zip(outcomes) {
                        if let Err(error) = outcome {
                            tracing::warn!(%message_id, %error, "could not delete a handled message; it will be delivered again");
                        }
                    }
                }
                Err(error) => {
                    tracing::warn!(messages = chunk.len(), %error, "could not delete handled messages; they will be delivered again");
                }
            }
        }
        tracing::debug!(
            function = %self.function.name,
            succeeded = outcome.succeeded.len(),
            failed = outcome.failures.len(),
            "batch handled"
        );
    }

    /// Resolves `shutdown_grace` after shutdown was requested; never before.
    async fn grace_expired(&self) {
        self.shutdown.cancelled().await;
        tokio::time::sleep(self.options.shutdown_grace).await;
    }
}

struct Ticker {
    functions: Vec<(String, Arc<dyn TickHandler>)>,
    clock: Arc<dyn hub_core::Clock>,
    every: Duration,
    shutdown: CancellationToken,
}

impl Ticker {
    async fn run(self) {
        let mut interval = tokio::time::interval(self.every.max(Duration::from_millis(10)));
        // After a pause (laptop asleep) tick once, not once per missed period.
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                () = self.shutdown.cancelled() => return,
                _ = interval.tick() => {}
            }
            let now = self.clock.now();
            for (name, function) in &self.functions {
                if let Err(error) = function.tick(now).await {
                    tracing::warn!(function = %name, code = %error.code, "tick failed: {}", error.message);
                }
            }
        }
    }
}
