//! The fetcher function: fetch queue -> one connector page per SyncJob -> RecordBatches on the
//! transform queue and the next page's job. The logic is hub-fetch's.

use std::sync::Arc;
use std::time::Duration;

use hub_aws::{AwsSettings, connect, topology_from_env};
use hub_connectors::{ConnectorCatalog, Fetcher, FetcherConfig};
use hub_core::ports::{Clock, QueueRole, SystemClock};
use hub_fetch::{FetchConfig, FetchHandler, egress_policy_from_env};
use hub_runtime::lambda::run_sqs_function_noting;
use hub_runtime::telemetry::{LogFormat, init};
use lambda_runtime::Error;

/// Jobs of one SQS batch fetched at once (pages of different runs; one run's pages are
/// sequential anyway).
const CONCURRENCY: usize = 4;
/// Below the function's 30 s timeout, so a hanging API fails the page instead of the function.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

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
    let fetcher = Fetcher::new(
        FetcherConfig {
            egress: egress_policy_from_env()?,
            request_timeout: REQUEST_TIMEOUT,
            ..FetcherConfig::default()
        },
        clock,
    )?;
    // A message that dies on its last delivery is counted on its run, so the run still ends.
    let notes = hub_writer::run_failure_notes(&ports, QueueRole::Fetch);
    let handler = FetchHandler::new(
        ports,
        ConnectorCatalog::builtin()?,
        fetcher,
        FetchConfig::default(),
    );
    run_sqs_function_noting(Arc::new(handler), CONCURRENCY, notes).await
}
