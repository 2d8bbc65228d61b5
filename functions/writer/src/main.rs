//! The writer function: write queue -> idempotent upserts into the records table, then the
//! run's completion (cursor commit, deleteIfRemoved, sync.completed). The logic is hub-writer's.

use std::sync::Arc;

use hub_aws::{AwsSettings, connect, topology_from_env};
use hub_core::ports::{Clock, QueueRole, SystemClock};
use hub_runtime::lambda::run_sqs_function_noting;
use hub_runtime::telemetry::{LogFormat, init};
use hub_writer::WriteHandler;
use lambda_runtime::Error;

#[tokio::main]
async fn main() -> Result<(), Error> {
    init(LogFormat::from_env());
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let ports = connect(&AwsSettings::from_env(), &topology_from_env(), clock).await?;
    // A message that dies on its last delivery is counted on its run, so the run still ends.
    let notes = hub_writer::run_failure_notes(&ports, QueueRole::Write);
    let handler = WriteHandler::from_ports(ports);
    // Messages of one SQS batch written at once; each message's writes are concurrent already.
    let concurrency = handler.message_concurrency();
    run_sqs_function_noting(Arc::new(handler), concurrency, notes).await
}
