//! The sync-trigger function: every schedule tick claims the due sync tasks and starts their runs.

use std::sync::Arc;

use hub_aws::{AwsSettings, connect, topology_from_env};
use hub_core::ports::{Clock, SystemClock};
use hub_runtime::telemetry::{LogFormat, init};
use hub_sync::SyncService;
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    init(LogFormat::from_env());
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let ports = connect(
        &AwsSettings::from_env(),
        &topology_from_env(),
        Arc::clone(&clock),
    )
    .await?;
    let sync = Arc::new(SyncService::new(ports));
    lambda_runtime::run(service_fn(move |_tick: LambdaEvent<serde_json::Value>| {
        let (sync, clock) = (Arc::clone(&sync), Arc::clone(&clock));
        async move {
            let report = sync.tick(clock.now()).await?;
            report.log();
            Ok::<_, Error>(serde_json::json!({
                "started": report.started.len(),
                "failures": report.failures.len(),
                "moreDue": report.more_due,
            }))
        }
    }))
    .await
}
