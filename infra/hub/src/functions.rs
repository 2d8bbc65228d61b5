//! The functions the local host runs: one registration each, added as the functions land.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use hub_connectors::{ConnectorCatalog, EgressPolicy, Fetcher, FetcherConfig};
use hub_core::ports::Ports;
use hub_fetch::{FetchConfig, FetchHandler};
use hub_runtime::HandlerError;
use hub_sync::SyncService;
use hub_transform::TransformHandler;
use hub_webhooks::{RateLimiting, Receiver, ReceiverOptions};
use hub_writer::{RunDeadLetters, WriteHandler, Writer, WriterConfig};

use crate::host::{Host, QueueFunction, TickHandler};

/// Registers every function of the hub on the host.
pub fn register_all(host: Host) -> Host {
    let sync = SyncService::new(host.ports().clone());
    // One process serves every route here, so the in-process limiter is exact and costs no
    // write per request (on Lambda the limit is counted in the state table), and the process
    // outlives each request, so the ledger marks can follow the answer.
    let receiver = Receiver::new(
        host.ports(),
        ReceiverOptions {
            rate_limiting: RateLimiting::InProcess,
            answer_before_marking: true,
            ..ReceiverOptions::from_env()
        },
    );
    let mut fetch_config = FetchConfig::default();
    let mut writer_config = WriterConfig::from_env();
    if let Some(visibility) = host.visibility_timeout_override() {
        fetch_config.fit_visibility_timeout(visibility);
        writer_config.fit_visibility_timeout(visibility);
    }
    let dead_letters = RunDeadLetters::new(Writer::with_config(
        host.ports().clone(),
        writer_config.clone(),
    ));
    let host = host.dead_letters(Arc::new(dead_letters));
    let writer = WriteHandler::new(Writer::with_config(host.ports().clone(), writer_config));
    let message_concurrency = writer.message_concurrency();
    let mut write = QueueFunction::new("writer", "write", Arc::new(writer));
    write.concurrency = message_concurrency;
    let transformer = Arc::new(TransformHandler::new(host.ports().clone()));
    let host = match fetch_handler(host.ports(), fetch_config) {
        Ok(fetcher) => host.queue_function(QueueFunction::new("fetcher", "fetch", fetcher)),
        Err(error) => {
            tracing::error!("the fetcher cannot start; fetch jobs wait in their queue: {error}");
            host
        }
    };
    host.tick_function("sync-trigger", Arc::new(SyncTrigger(sync)))
        .queue_function(QueueFunction::new("transformer", "transform", transformer))
        .queue_function(write)
        .routes(crate::webhooks::router(Arc::new(receiver)))
}

/// The fetcher as on Lambda, except that its egress policy is the local sandbox's: the sample
/// API and test servers listen on loopback.
fn fetch_handler(
    ports: &Ports,
    config: FetchConfig,
) -> Result<Arc<FetchHandler>, Box<dyn std::error::Error>> {
    let fetcher = Fetcher::new(
        FetcherConfig {
            egress: EgressPolicy::local_sandbox(),
            ..FetcherConfig::default()
        },
        Arc::clone(&ports.clock),
    )?;
    Ok(Arc::new(FetchHandler::new(
        ports.clone(),
        ConnectorCatalog::builtin()?,
        fetcher,
        config,
    )))
}

/// The sync-trigger function on the host's tick, as the schedule rule fires it on AWS.
struct SyncTrigger(SyncService);

#[async_trait]
impl TickHandler for SyncTrigger {
    async fn tick(&self, now: DateTime<Utc>) -> Result<(), HandlerError> {
        let report = self.0.tick(now).await.map_err(|e| HandlerError {
            code: e.code().to_owned(),
            message: e.to_string(),
            retryable: e.is_retryable(),
        })?;
        if !report.started.is_empty() || !report.failures.is_empty() || report.redelivered > 0 {
            report.log();
        }
        Ok(())
    }
}

/// The dlq-replayer on the host's tick, at most once per `every` (so with the granularity of
/// the tick), replaying with the scheduled defaults of the `HUB_DLQ_REPLAY_*` environment as
/// the optional schedule rule does on AWS. `hub dlq replay` is the on-demand way.
pub fn register_dlq_replayer(host: Host, every: Duration) -> Host {
    match hub_dlq::ScheduledDefaults::from_env() {
        Ok(defaults) => {
            let replayer = DlqReplayer {
                dlq: Arc::new(hub_dlq::Dlq::new(host.ports().clone())),
                defaults,
                every,
                last_run: std::sync::Mutex::new(None),
                running: Arc::new(std::sync::atomic::AtomicBool::new(false)),
            };
            host.tick_function("dlq-replayer", Arc::new(replayer))
        }
        Err(error) => {
            tracing::error!("the DLQ replayer cannot start: {error}");
            host
        }
    }
}

struct DlqReplayer {
    dlq: Arc<hub_dlq::Dlq>,
    defaults: hub_dlq::ScheduledDefaults,
    every: Duration,
    last_run: std::sync::Mutex<Option<DateTime<Utc>>>,
    running: Arc<std::sync::atomic::AtomicBool>,
}

#[async_trait]
impl TickHandler for DlqReplayer {
    async fn tick(&self, now: DateTime<Utc>) -> Result<(), HandlerError> {
        use std::sync::atomic::Ordering;
        {
            let mut last = self.last_run.lock().unwrap_or_else(|e| e.into_inner());
            let due = last.is_none_or(|at| (now - at).to_std().is_ok_and(|d| d >= self.every));
            if !due || self.running.load(Ordering::SeqCst) {
                return Ok(());
            }
            *last = Some(now);
        }
        let input = self.defaults.input().map_err(|e| HandlerError {
            code: e.code().to_owned(),
            message: e.to_string(),
            retryable: false,
        })?;
        // A paced replay can take a while: it runs beside the tick instead of delaying the
        // sync trigger, one at a time.
        self.running.store(true, Ordering::SeqCst);
        let (dlq, running) = (Arc::clone(&self.dlq), Arc::clone(&self.running));
        tokio::spawn(async move {
            match dlq
                .replay(&input.queues, &input.filter, input.options)
                .await
            {
                Ok(report) => {
                    let replayed = report.count(hub_dlq::Outcome::Replayed);
                    let failed = report.count(hub_dlq::Outcome::SendFailed);
                    if replayed > 0 || failed > 0 {
                        tracing::info!(replayed, failed, "scheduled DLQ replay");
                    }
                }
                Err(error) => {
                    tracing::warn!(code = error.code(), "scheduled DLQ replay failed: {error}")
                }
            }
            running.store(false, Ordering::SeqCst);
        });
        Ok(())
    }
}
