//! The functions the local host runs: one registration each, added as the functions land.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use hub_connectors::{ConnectorCatalog, EgressPolicy, Fetcher, FetcherConfig};
use hub_core::ports::Ports;
use hub_fetch::{FetchConfig, FetchHandler};
use hub_runtime::HandlerError;
use hub_sync::SyncService;
use hub_transform::TransformHandler;
use hub_webhooks::{RateLimiting, Receiver, ReceiverOptions};
use hub_writer::WriteHandler;

use crate::host::{Host, QueueFunction, TickHandler};

/// Registers every function of the hub on the host.
pub fn register_all(host: Host) -> Host {
    let sync = SyncService::new(host.ports().clone());
    // One process serves every route here, so the in-process limiter is exact and costs no
    // write per request (on Lambda the limit is counted in the state table).
    let receiver = Receiver::new(
        host.ports(),
        ReceiverOptions {
            rate_limiting: RateLimiting::InProcess,
            ..ReceiverOptions::from_env()
        },
    );
    let writer = Arc::new(WriteHandler::from_ports(host.ports().clone()));
    let transformer = Arc::new(TransformHandler::new(host.ports().clone()));
    let host = match fetch_handler(host.ports()) {
        Ok(fetcher) => host.queue_function(QueueFunction::new("fetcher", "fetch", fetcher)),
        Err(error) => {
            tracing::error!("the fetcher cannot start; fetch jobs wait in their queue: {error}");
            host
        }
    };
    host.tick_function("sync-trigger", Arc::new(SyncTrigger(sync)))
        .queue_function(QueueFunction::new("transformer", "transform", transformer))
        .queue_function(QueueFunction::new("writer", "write", writer))
        .routes(crate::webhooks::router(Arc::new(receiver)))
}

/// The fetcher as on Lambda, except that its egress policy is the local sandbox's: the sample
/// API and test servers listen on loopback.
fn fetch_handler(ports: &Ports) -> Result<Arc<FetchHandler>, Box<dyn std::error::Error>> {
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
        FetchConfig::default(),
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
