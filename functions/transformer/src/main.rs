//! The transformer function: transform queue (record batches and webhook deliveries) ->
//! conversion schema -> write queue. The logic is hub-transform's; compiled schemas stay cached
//! across invocations of a warm function.

use std::sync::Arc;

use hub_aws::{AwsSettings, connect, topology_from_env};
use hub_core::ports::{Clock, QueueRole, SystemClock};
use hub_runtime::lambda::run_sqs_function_noting;
use hub_runtime::telemetry::{LogFormat, init};
use hub_transform::TransformHandler;
use lambda_runtime::Error;

/// Messages of one SQS batch mapped at once.
const CONCURRENCY: usize = 4;

#[tokio::main]
async fn main() -> Result<(), Error> {
    init(LogFormat::from_env());
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let ports = connect(&AwsSettings::from_env(), &topology_from_env(), clock).await?;
    // A message that dies on its last delivery is counted on its run, so the run still ends.
    let notes = hub_writer::run_failure_notes(&ports, QueueRole::Transform);
    run_sqs_function_noting(Arc::new(TransformHandler::new(ports)), CONCURRENCY, notes).await
}
