//! The functions the local host runs: one registration each, added as the functions land.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use hub_runtime::HandlerError;
use hub_sync::SyncService;

use crate::host::{Host, TickHandler};

/// Registers every function of the hub on the host.
pub fn register_all(host: Host) -> Host {
    let sync = SyncService::new(host.ports().clone());
    host.tick_function("sync-trigger", Arc::new(SyncTrigger(sync)))
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
