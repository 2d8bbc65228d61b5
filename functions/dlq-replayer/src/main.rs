//! The dlq-replayer function: a replay request (JSON: queue, filters, limit, dryRun,
//! ratePerSecond) or a scheduled event (replays with the defaults from the `HUB_DLQ_REPLAY_*`
//! environment) -> dead messages back to their source queue. The logic is hub-dlq's.

use std::sync::Arc;
use std::time::Duration;

use hub_aws::{AwsSettings, connect, topology_from_env};
use hub_core::ports::{Clock, SystemClock};
use hub_dlq::{Dlq, Outcome, ReplayInput, ScheduledDefaults};
use hub_runtime::telemetry::{LogFormat, init};
use lambda_runtime::{Error, LambdaEvent, service_fn};

/// Left of the invocation's time when the last replay may start: the report still has to be
/// written and the held messages released.
const MARGIN: Duration = Duration::from_secs(10);

#[tokio::main]
async fn main() -> Result<(), Error> {
    init(LogFormat::from_env());
    let defaults = ScheduledDefaults::from_env()?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let ports = connect(&AwsSettings::from_env(), &topology_from_env(), clock).await?;
    let dlq = Arc::new(Dlq::new(ports));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| {
        let (dlq, defaults) = (Arc::clone(&dlq), defaults.clone());
        async move {
            let input = ReplayInput::from_event(&event.payload, &defaults)?;
            let remaining = event
                .context
                .deadline()
                .duration_since(std::time::SystemTime::now())
                .unwrap_or_default()
                .saturating_sub(MARGIN);
            let Some(options) = input.options.fitting(remaining) else {
                return Err(Error::from("no time left in this invocation to replay anything"));
            };
            let report = dlq.replay(&input.queues, &input.filter, options).await?;
            tracing::info!(
                scheduled = input.scheduled,
                dry_run = options.dry_run,
                replayed = report.count(Outcome::Replayed),
                would_replay = report.count(Outcome::WouldReplay),
                send_failed = report.count(Outcome::SendFailed),
                sent_not_deleted = report.count(Outcome::SentNotDeleted),
                "dlq replay done"
            );
            // A failed send leaves its message in the DLQ: fail the invocation so the
            // replayer's error alarm says so (the report is in the log line above).
            let send_failed = report.count(Outcome::SendFailed);
            if send_failed > 0 {
                return Err(Error::from(format!(
                    "{send_failed} messages could not be sent back to their source queue; they stay in their DLQ"
                )));
            }
            Ok::<_, Error>(serde_json::to_value(&report)?)
        }
    }))
    .await
}
