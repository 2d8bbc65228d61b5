//! Operator commands on tasks and executions: `hub tasks ...`, `hub executions ...`.

use std::time::Duration;

use clap::Subcommand;
use hub_core::model::{SyncExecution, SyncLog, TenantId};
use hub_sync::{ExecutionRecord, SyncService};
use serde_json::{Value, json};

use crate::backend::BackendOptions;

#[derive(Debug, Subcommand)]
pub enum TaskCommand {
    /// Start a run now (`triggeredBy: manual`).
    Run { task: String },
    /// Stop scheduling the task (a running execution goes on).
    Pause { task: String },
    /// Schedule the task again from now.
    Resume { task: String },
}

#[derive(Debug, Subcommand)]
pub enum ExecutionCommand {
    /// Executions, newest first.
    List {
        /// Only the executions of this task.
        #[arg(long)]
        task: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// One execution: status, progress, counters, errors. `--follow` refreshes until it ends.
    Show {
        id: String,
        #[arg(long)]
        follow: bool,
    },
    /// The log of an execution; `--follow` prints new lines until it ends.
    Logs {
        id: String,
        #[arg(long)]
        follow: bool,
    },
    /// Cancel a running execution: no further pages are fetched.
    Cancel { id: String },
    /// Start a new execution for a failed, partial or cancelled one.
    Retry { id: String },
}

impl ExecutionCommand {
    /// Listing, showing and following only read, so they work on a read-only data directory.
    pub fn access(&self) -> crate::backend::Access {
        match self {
            Self::List { .. } | Self::Show { .. } | Self::Logs { .. } => {
                crate::backend::Access::ReadOnly
            }
            Self::Cancel { .. } | Self::Retry { .. } => crate::backend::Access::ReadWrite,
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct OpsArgs {
    /// The tenant the tasks and executions belong to (required).
    #[arg(long, global = true, env = "HUB_TENANT")]
    pub tenant: Option<TenantId>,
    /// Machine-readable output (one JSON document per line).
    #[arg(long, global = true)]
    pub json: bool,
    #[command(flatten)]
    pub backend: BackendOptions,
}

impl OpsArgs {
    /// Clap cannot require a global argument, so the check is here.
    fn tenant(&self) -> Result<&TenantId, hub_sync::Error> {
        self.tenant.as_ref().ok_or_else(|| {
            hub_sync::Error::InvalidState("name the tenant with --tenant or HUB_TENANT".into())
        })
    }
}

const FOLLOW_EVERY: Duration = Duration::from_millis(500);
const OPERATOR: &str = "hub-cli";

pub async fn tasks(
    sync: &SyncService,
    args: &OpsArgs,
    command: TaskCommand,
) -> Result<(), hub_sync::Error> {
    let tenant = args.tenant()?;
    match command {
        TaskCommand::Run { task } => {
            let record = sync.run_now(tenant, &task, Some(OPERATOR)).await?;
            print_started(&record, args.json);
        }
        TaskCommand::Pause { task } => {
            let task = sync.pause(tenant, &task).await?;
            print_json_or(args.json, &task, || format!("task {} paused", task.id));
        }
        TaskCommand::Resume { task } => {
            let task = sync.resume(tenant, &task).await?;
            print_json_or(args.json, &task, || {
                let next = task
                    .next_run_at
                    .map(|t| t.to_rfc3339())
                    .unwrap_or_else(|| "never".into());
                format!("task {} resumed; next run {next}", task.id)
            });
        }
    }
    Ok(())
}

pub async fn executions(
    sync: &SyncService,
    args: &OpsArgs,
    command: ExecutionCommand,
) -> Result<(), hub_sync::Error> {
    let tenant = args.tenant()?;
    match command {
        ExecutionCommand::List { task, limit } => {
            let page = match &task {
                Some(task) => sync.list_task_executions(tenant, task, limit, None).await?,
                None => sync.list_executions(tenant, limit, None).await?,
            };
            if args.json {
                for record in &page.executions {
                    println!("{}", summary(&record.execution));
                }
            } else {
                println!(
                    "{:<26}  {:<20}  {:<9}  {:<12}  {:>8} {:>8} {:>8} {:>8} {:>7}  STARTED",
                    "EXECUTION",
                    "TASK",
                    "STATUS",
                    "PHASE",
                    "FETCHED",
                    "CREATED",
                    "UPDATED",
                    "SKIPPED",
                    "FAILED"
                );
                for record in &page.executions {
                    println!("{}", table_row(&record.execution));
                }
            }
        }
        ExecutionCommand::Show { id, follow } => loop {
            let record = sync.get_execution(tenant, &id).await?;
            if args.json {
                println!(
                    "{}",
                    serde_json::to_string(&record.execution).unwrap_or_default()
                );
            } else {
                print!("{}", describe(&record));
            }
            if !follow || !record.is_running() {
                return Ok(());
            }
            tokio::time::sleep(FOLLOW_EVERY).await;
            if !args.json {
                // Redraw in place on a terminal: move up over what was printed.
                print!("\x1b[{}A\x1b[J", describe(&record).lines().count());
            }
        },
        ExecutionCommand::Logs { id, follow } => {
            let mut last: Option<String> = None;
            loop {
                let lines = sync
                    .execution_logs(tenant, &id, last.as_deref(), 1000)
                    .await?;
                for line in &lines {
                    print_log(line, args.json);
                }
                if let Some(line) = lines.last() {
                    last = Some(line.id.clone());
                }
                if !follow {
                    return Ok(());
                }
                if lines.is_empty() && !sync.get_execution(tenant, &id).await?.is_running() {
                    return Ok(());
                }
                tokio::time::sleep(FOLLOW_EVERY).await;
            }
        }
        ExecutionCommand::Cancel { id } => {
            let record = sync.cancel(tenant, &id, Some(OPERATOR)).await?;
            print_json_or(args.json, &record.execution, || {
                format!("execution {id} cancelled")
            });
        }
        ExecutionCommand::Retry { id } => {
            let record = sync.retry(tenant, &id, Some(OPERATOR)).await?;
            print_started(&record, args.json);
        }
    }
    Ok(())
}

fn print_started(record: &ExecutionRecord, json: bool) {
    print_json_or(json, &record.execution, || {
        format!(
            "started execution {} of task {}",
            record.id(),
            record.task_id()
        )
    });
}

fn print_json_or<T: serde::Serialize>(json: bool, value: &T, text: impl FnOnce() -> String) {
    if json {
        println!("{}", serde_json::to_string(value).unwrap_or_default());
    } else {
        println!("{}", text());
    }
}

fn print_log(line: &SyncLog, json: bool) {
    if json {
        println!("{}", serde_json::to_string(line).unwrap_or_default());
    } else {
        let level = serde_json::to_value(line.level)
            .ok()
            .and_then(|v| v.as_str().map(str::to_uppercase));
        let data = line
            .data
            .as_ref()
            .map(|d| format!(" {}", Value::Object(d.clone())))
            .unwrap_or_default();
        println!(
            "{} {:<5} {}{data}",
            line.timestamp.format("%Y-%m-%d %H:%M:%S%.3f"),
            level.unwrap_or_default(),
            line.message
        );
    }
}

/// An enum's wire name (`running`, `fetching`, ...).
fn wire<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn summary(execution: &SyncExecution) -> Value {
    json!({
        "id": execution.id,
        "taskId": execution.sync_task_id,
        "status": wire(&execution.status),
        "phase": wire(&execution.progress.phase),
        "results": execution.results,
        "startedAt": execution.started_at,
        "completedAt": execution.completed_at,
    })
}

fn table_row(execution: &SyncExecution) -> String {
    let r = &execution.results;
    format!(
        "{:<26}  {:<20}  {:<9}  {:<12}  {:>8} {:>8} {:>8} {:>8} {:>7}  {}",
        execution.id,
        truncate(&execution.sync_task_id, 20),
        wire(&execution.status),
        wire(&execution.progress.phase),
        r.fetched,
        r.created,
        r.updated,
        r.skipped,
        r.failed,
        execution.started_at.format("%Y-%m-%d %H:%M:%S")
    )
}

/// `text` cut to `width` characters, the last one an ellipsis when it was longer.
pub(crate) fn truncate(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        text.to_owned()
    } else {
        let mut cut: String = text.chars().take(width.saturating_sub(1)).collect();
        cut.push('…');
        cut
    }
}

/// A progress bar: filled by the share of records processed when the total is known.
pub fn progress_bar(processed: u64, total: Option<u64>, width: usize) -> String {
    match total {
        Some(total) if total > 0 => {
            let share = (processed.min(total) as f64) / (total as f64);
            let filled = (share * width as f64).round() as usize;
            format!(
                "[{}{}] {:>3.0}% {processed}/{total}",
                "#".repeat(filled),
                ".".repeat(width - filled),
                share * 100.0
            )
        }
        _ => format!("[{}] {processed} records", "?".repeat(width)),
    }
}

fn describe(record: &ExecutionRecord) -> String {
    let e = &record.execution;
    let r = &e.results;
    let mut out = format!(
        "execution {}  task {}  {}  triggered by {}\n",
        e.id,
        e.sync_task_id,
        wire(&e.status),
        wire(&e.triggered_by)
    );
    out.push_str(&format!(
        "phase {:<12} {}\n",
        wire(&e.progress.phase),
        progress_bar(e.progress.processed_records, e.progress.total_records, 30)
    ));
    out.push_str(&format!(
        "fetched {}  created {}  updated {}  skipped {}  failed {}\n",
        r.fetched, r.created, r.updated, r.skipped, r.failed
    ));
    let ended = e
        .completed_at
        .map(|t| t.to_rfc3339())
        .unwrap_or_else(|| "-".into());
    out.push_str(&format!(
        "started {}  ended {ended}\n",
        e.started_at.to_rfc3339()
    ));
    for error in e.errors.iter().take(10) {
        out.push_str(&format!(
            "  error [{}] {}{}\n",
            error.phase,
            error
                .external_id
                .as_deref()
                .map(|id| format!("{id}: "))
                .unwrap_or_default(),
            error.error
        ));
    }
    let hidden = e.errors.len().saturating_sub(10) as u64 + record.errors_not_stored();
    if hidden > 0 {
        out.push_str(&format!("  ... and {hidden} more errors\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::progress_bar;

    #[test]
    fn progress_bars_fill_by_share_and_say_when_the_total_is_unknown() {
        assert_eq!(progress_bar(5, Some(10), 10), "[#####.....]  50% 5/10");
        assert_eq!(progress_bar(12, Some(10), 4), "[####] 100% 12/10");
        assert_eq!(progress_bar(3, None, 3), "[???] 3 records");
        assert_eq!(progress_bar(0, Some(0), 2), "[??] 0 records");
    }
}
