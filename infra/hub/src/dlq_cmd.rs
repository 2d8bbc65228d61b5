//! `hub dlq list|show|replay|purge`: the dead-letter queues, on either backend (hub-dlq).

use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::Subcommand;
use hub_core::ports::{Ports, QueueRole};
use hub_dlq::{
    DEFAULT_LIMIT, DEFAULT_RATE_PER_SECOND, Dlq, DlqError, DlqMessage, Filter, Listing,
    MessageOutcome, Outcome, PurgeOptions, ReplayOptions, ReplayReport, format_age, parse_age,
    parse_queue,
};

use crate::backend::BackendOptions;
use crate::ops::truncate;

#[derive(Debug, clap::Args)]
pub struct DlqArgs {
    #[command(subcommand)]
    pub command: DlqCommand,
    /// Machine-readable output (one JSON document per line).
    #[arg(long, global = true)]
    pub json: bool,
    #[command(flatten)]
    pub backend: BackendOptions,
}

#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// Dead messages with the reason they failed. Looking means receiving: each message listed
    /// is received once (its receive count goes up by one) and made visible again at the end.
    List {
        /// fetch, transform or write (default: all three).
        #[arg(long)]
        queue: Option<String>,
        #[command(flatten)]
        filter: FilterArgs,
        /// At most this many messages per queue.
        #[arg(long, default_value_t = DEFAULT_LIMIT)]
        limit: usize,
    },
    /// One dead message: its failure reason and its body.
    Show {
        message_id: String,
        /// Look only in this queue (default: all three).
        #[arg(long)]
        queue: Option<String>,
    },
    /// Send dead messages back to their source queue, each deleted from its DLQ only after it
    /// was sent. Replaying twice writes once: the writer skips what it already has.
    Replay {
        /// fetch, transform or write (default: all three).
        #[arg(long)]
        queue: Option<String>,
        #[command(flatten)]
        filter: FilterArgs,
        /// At most this many messages in all.
        #[arg(long, default_value_t = DEFAULT_LIMIT)]
        limit: usize,
        /// Messages per second.
        #[arg(long, default_value_t = DEFAULT_RATE_PER_SECOND)]
        rate: f64,
        /// Show what would be replayed; send and delete nothing.
        #[arg(long)]
        dry_run: bool,
        /// Map replayed record batches (transform queue) with their task's current conversion
        /// schema instead of the version they were fetched with: after fixing the schema.
        /// Write and fetch messages replay as they are.
        #[arg(long)]
        remap: bool,
    },
    /// Delete dead messages for good: those a filter selects, or with --all the whole queue.
    Purge {
        /// fetch, transform or write.
        #[arg(long)]
        queue: String,
        #[command(flatten)]
        filter: FilterArgs,
        /// Empty the whole queue (no filter).
        #[arg(long)]
        all: bool,
        /// At most this many messages (filtered purge).
        #[arg(long, default_value_t = DEFAULT_LIMIT)]
        limit: usize,
        /// Show what would be deleted; delete nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

impl DlqCommand {
    /// Listing, showing and dry runs only read (listing receives, which a read-only data
    /// directory emulates without writing), so they work on a read-only data directory.
    pub fn access(&self) -> crate::backend::Access {
        match self {
            Self::List { .. } | Self::Show { .. } => crate::backend::Access::ReadOnly,
            Self::Replay { dry_run, .. } | Self::Purge { dry_run, .. } if *dry_run => {
                crate::backend::Access::ReadOnly
            }
            Self::Replay { .. } | Self::Purge { .. } => crate::backend::Access::ReadWrite,
        }
    }
}

#[derive(Debug, Clone, Default, clap::Args)]
pub struct FilterArgs {
    /// Only this message (repeat for several).
    #[arg(long = "message-id")]
    pub message_ids: Vec<String>,
    /// Only messages of this tenant.
    #[arg(long)]
    pub tenant: Option<String>,
    /// Only messages of this sync task.
    #[arg(long)]
    pub task: Option<String>,
    /// Only messages of this run (its dead letters are listed on `hub executions show`).
    #[arg(long)]
    pub execution: Option<String>,
    /// Only messages that failed with this error code.
    #[arg(long)]
    pub error_code: Option<String>,
    /// Only failures the handler called retryable (true) or permanent (false).
    #[arg(long)]
    pub retryable: Option<bool>,
    /// Only messages first sent at least this long ago (90s, 15m, 2h, 1d).
    #[arg(long, value_parser = age)]
    pub older_than: Option<Duration>,
    /// Only messages first sent at most this long ago.
    #[arg(long, value_parser = age)]
    pub newer_than: Option<Duration>,
    /// Only messages replayed fewer times than this.
    #[arg(long)]
    pub max_replays: Option<u32>,
}

fn age(text: &str) -> Result<Duration, String> {
    parse_age(text).map_err(|e| e.to_string())
}

impl FilterArgs {
    fn filter(&self) -> Filter {
        Filter {
            message_ids: self.message_ids.clone(),
            tenant_id: self.tenant.clone(),
            task_id: self.task.clone(),
            execution_id: self.execution.clone(),
            error_code: self.error_code.clone(),
            retryable: self.retryable,
            older_than: self.older_than,
            newer_than: self.newer_than,
            max_replays: self.max_replays,
        }
    }
}

fn roles(queue: Option<&str>) -> Result<Vec<QueueRole>, DlqError> {
    match queue {
        Some(queue) => Ok(vec![parse_queue(queue)?]),
        None => Ok(QueueRole::ALL.to_vec()),
    }
}

pub async fn run(ports: Ports, command: DlqCommand, json: bool) -> Result<(), DlqError> {
    let now = ports.clock.now();
    let dlq = Dlq::new(ports);
    match command {
        DlqCommand::List {
            queue,
            filter,
            limit,
        } => {
            let filter = filter.filter();
            for role in roles(queue.as_deref())? {
                let listing = dlq.list(role, &filter, limit).await?;
                if json {
                    println!("{}", serde_json::to_string(&listing).unwrap_or_default());
                } else {
                    print!("{}", listing_table(&listing, now));
                }
            }
        }
        DlqCommand::Show { message_id, queue } => {
            let message = dlq
                .show(&message_id, &roles(queue.as_deref())?)
                .await?
                .ok_or(DlqError::MessageNotFound(message_id))?;
            if json {
                println!("{}", serde_json::to_string(&message).unwrap_or_default());
            } else {
                print!("{}", describe(&message, now));
            }
        }
        DlqCommand::Replay {
            queue,
            filter,
            limit,
            rate,
            dry_run,
            remap,
        } => {
            let options = ReplayOptions {
                limit,
                dry_run,
                rate_per_second: rate,
                remap,
            };
            let report = dlq
                .replay(&roles(queue.as_deref())?, &filter.filter(), options)
                .await?;
            print_report(&report, json);
        }
        DlqCommand::Purge {
            queue,
            filter,
            all,
            limit,
            dry_run,
        } => {
            let options = PurgeOptions {
                all,
                dry_run,
                limit,
            };
            let report = dlq
                .purge(parse_queue(&queue)?, &filter.filter(), options)
                .await?;
            print_report(&report, json);
        }
    }
    Ok(())
}

fn listing_table(listing: &Listing, now: DateTime<Utc>) -> String {
    let depth = &listing.depth;
    let mut out = format!(
        "{} (replays to {}): {} visible, {} in flight, {} delayed\n",
        listing.queue, listing.source_queue, depth.visible, depth.in_flight, depth.delayed
    );
    if listing.messages.is_empty() {
        out.push_str("  no matching messages\n");
    } else {
        out.push_str(&format!(
            "  {:<36}  {:>6}  {:>4}  {:>7}  {:<12}  {:<20}  {:<24}  REASON\n",
            "MESSAGE ID", "AGE", "RECV", "REPLAYS", "TENANT", "TASK", "ERROR"
        ));
        for message in &listing.messages {
            let (code, reason) = match &message.failure {
                Some(failure) => (failure.code.as_str(), failure.message.as_str()),
                None => ("-", "(no failure note)"),
            };
            out.push_str(&format!(
                "  {:<36}  {:>6}  {:>4}  {:>7}  {:<12}  {:<20}  {:<24}  {}\n",
                message.message_id,
                format_age(message.age(now)),
                message.receive_count,
                message.replays,
                truncate(message.ids.tenant_id.as_deref().unwrap_or("-"), 12),
                truncate(message.ids.task_id.as_deref().unwrap_or("-"), 20),
                truncate(code, 24),
                truncate(reason, 80)
            ));
        }
    }
    if !listing.complete {
        out.push_str(&format!(
            "  stopped after {} messages; more may be in the queue (raise --limit)\n",
            listing.scanned
        ));
    }
    out
}

fn describe(message: &DlqMessage, now: DateTime<Utc>) -> String {
    let mut out = format!(
        "message {}  in {} (replays to {})\n",
        message.message_id, message.queue, message.source_queue
    );
    out.push_str(&format!(
        "sent {} ({} ago)  receives {}  replays {}  {} bytes\n",
        message.sent_at.to_rfc3339(),
        format_age(message.age(now)),
        message.receive_count,
        message.replays,
        message.size
    ));
    let ids = &message.ids;
    out.push_str(&format!(
        "tenant {}  task {}  execution {}\n",
        ids.tenant_id.as_deref().unwrap_or("-"),
        ids.task_id.as_deref().unwrap_or("-"),
        ids.execution_id.as_deref().unwrap_or("-")
    ));
    match &message.failure {
        Some(failure) => out.push_str(&format!(
            "failed {} on receive {}: [{}{}] {}\n",
            failure.failed_at.to_rfc3339(),
            failure.receive_count,
            failure.code,
            if failure.retryable { ", retryable" } else { "" },
            failure.message
        )),
        None => out.push_str("failed: no failure note (written when a handler fails a message)\n"),
    }
    if let Some(body) = &message.body {
        out.push_str("body:\n");
        out.push_str(&serde_json::to_string_pretty(body).unwrap_or_default());
        out.push('\n');
    }
    out
}

fn print_report(report: &ReplayReport, json: bool) {
    if json {
        println!("{}", serde_json::to_string(report).unwrap_or_default());
        return;
    }
    let prefix = if report.dry_run { "dry run: " } else { "" };
    for queue in &report.queues {
        if queue.purged_whole_queue {
            println!(
                "{prefix}{}: purged the whole queue ({} messages)",
                queue.queue, queue.matched
            );
            continue;
        }
        let counts: Vec<String> = [
            (Outcome::Replayed, "replayed"),
            (Outcome::WouldReplay, "would be replayed"),
            (Outcome::SendFailed, "failed to send (still in the DLQ)"),
            (
                Outcome::SentNotDeleted,
                "sent but not deleted (a later replay resends them; harmless)",
            ),
            (Outcome::Purged, "purged"),
            (Outcome::WouldPurge, "would be purged"),
            (Outcome::DeleteFailed, "failed to delete"),
        ]
        .into_iter()
        .filter_map(|(outcome, what)| {
            let n = queue.count(outcome);
            (n > 0).then(|| format!("{n} {what}"))
        })
        .collect();
        let summary = if counts.is_empty() {
            "nothing to do".to_owned()
        } else {
            counts.join(", ")
        };
        println!(
            "{prefix}{}: {summary} (looked at {}, {} matched)",
            queue.queue, queue.scanned, queue.matched
        );
        for message in &queue.messages {
            println!("  {}", outcome_line(message));
        }
    }
}

fn outcome_line(message: &MessageOutcome) -> String {
    let what = serde_json::to_value(message.outcome)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    let mut line = format!("{what:<15} {}", message.message_id);
    if let Some(new_id) = &message.new_message_id {
        line.push_str(&format!(" -> {new_id}"));
    }
    if let Some(error) = &message.error {
        line.push_str(&format!(" ({error})"));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: DlqArgs,
    }

    #[test]
    fn filters_and_options_parse() {
        let cli = Cli::try_parse_from([
            "hub",
            "replay",
            "--queue",
            "transform",
            "--tenant",
            "acme",
            "--older-than",
            "1h30m",
            "--message-id",
            "a",
            "--message-id",
            "b",
            "--rate",
            "2",
            "--dry-run",
            "--execution",
            "01EXEC",
            "--remap",
            "--json",
        ])
        .unwrap();
        assert!(cli.args.json);
        let DlqCommand::Replay {
            queue,
            filter,
            rate,
            dry_run,
            limit,
            remap,
        } = cli.args.command
        else {
            panic!("not replay");
        };
        assert_eq!(queue.as_deref(), Some("transform"));
        let filter = filter.filter();
        assert_eq!(filter.tenant_id.as_deref(), Some("acme"));
        assert_eq!(filter.older_than, Some(Duration::from_secs(5400)));
        assert_eq!(filter.message_ids, ["a", "b"]);
        assert_eq!(filter.execution_id.as_deref(), Some("01EXEC"));
        assert_eq!(
            (rate, dry_run, limit, remap),
            (2.0, true, DEFAULT_LIMIT, true)
        );
        assert!(Cli::try_parse_from(["hub", "list", "--older-than", "soon"]).is_err());
        assert!(
            Cli::try_parse_from(["hub", "purge"]).is_err(),
            "purge names its queue"
        );
    }
}
