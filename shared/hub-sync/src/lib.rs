//! Scheduled sync: claiming due tasks, executions and their bookkeeping, run now / pause /
//! resume / cancel / retry. Everything runs on the ports ([`hub_core::ports::Ports`]), so the
//! same code serves the `sync-trigger` Lambda, the fetcher and writer, and the local host.
//!
//! # Who calls what
//!
//! - `sync-trigger` (every tick): [`SyncService::tick`].
//! - `hub apply` / `hub get`: [`SyncService::put_task`], [`SyncService::get_task`],
//!   [`SyncService::list_tasks`].
//! - operators: [`SyncService::run_now`], [`SyncService::pause`], [`SyncService::resume`],
//!   [`SyncService::cancel`], [`SyncService::retry`].
//! - the fetcher, before each page: [`SyncService::is_cancelled`] (or [`is_cancelled`] on a
//!   record it already read); while running: [`SyncService::add_counters`],
//!   [`SyncService::set_phase`], [`SyncService::set_total_records`],
//!   [`SyncService::mark_fetch_complete`], [`SyncService::append_error`],
//!   [`SyncService::append_log`]; when the API asks for a wait longer than a queue delay:
//!   [`SyncService::park_job`]; at the end: [`SyncService::finish`].
//! - `hub executions list|show|logs [--follow]`: [`SyncService::list_executions`],
//!   [`SyncService::list_task_executions`], [`SyncService::get_execution`],
//!   [`SyncService::get_execution_with_logs`], [`SyncService::execution_logs`].
//!
//! # Exactly one run per occurrence
//!
//! A task item carries the due index (`gsi1pk = due#<shard>`, `gsi1sk = <nextRunAt>#<t>#<id>`,
//! see [`hub_core::keys`]) while it is active and scheduled. [`SyncService::tick`] queries every
//! shard for `nextRunAt <= now`, re-reads each task (the index lags), and claims the occurrence
//! in **one transaction** that
//! 1. moves `nextRunAt` to `next_after(now)` on condition that it still holds the value read
//!    (so of two racing ticks exactly one wins; missed occurrences collapse into this one run),
//!    and marks the task busy with the new execution id;
//! 2. creates the execution item (status `running`, counters at zero);
//! 3. writes two **outbox** entries: the first `SyncJob` and the `sync.started` event.
//!
//! After the commit the outbox entries are delivered (sent, then deleted). A crash between the
//! commit and the delivery leaves them in the outbox, leased to the crashed writer for
//! [`SyncConfig::outbox_lease`]; the next tick after the lease re-leases and delivers them. An
//! outbox was chosen over a `firstJobEnqueued=false` flag on the execution because finding
//! flagged executions needs an index of its own, and because the same mechanism also carries the
//! lifecycle events (`sync.completed` ...) of [`SyncService::finish`] and
//! [`SyncService::cancel`]. Delivery is at least once: a crash after the send but before the
//! delete sends the job again, which the fetcher deduplicates by
//! [`hub_core::messages::SyncJob::idempotency_key`].
//!
//! A task runs one execution at a time: an occurrence that comes due while the previous run is
//! still going is skipped (its `nextRunAt` still moves on), and run now / retry answer
//! `task_busy`. A busy marker older than [`SyncConfig::stale_after`], or pointing at an
//! execution that has finished, no longer counts.

mod error;
mod execution;
mod outbox;
mod park;
mod task;
mod trigger;

use std::time::Duration;

use hub_core::ports::Ports;

pub use error::Error;
pub use execution::{
    CounterDeltas, ExecutionPage, ExecutionRecord, PageToken, is_cancelled, outcome_of,
};
pub use trigger::{StartedExecution, TickFailure, TickReport};

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Tunables of the sync service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncConfig {
    /// At most this many executions are started per tick, so a tick fits in a Lambda timeout;
    /// tasks left over stay due and are claimed by the next tick.
    pub max_starts_per_tick: usize,
    /// A task's running execution stops blocking new runs after this long (a run whose pipeline
    /// died without finishing it).
    pub stale_after: Duration,
    /// How long execution log lines are kept (`expiresAt`).
    pub log_ttl: Duration,
    /// How long a writer owns the outbox entries it wrote before a tick may redeliver them.
    pub outbox_lease: Duration,
}

impl Default for SyncConfig {
    fn default() -> Self {
        Self {
            max_starts_per_tick: 500,
            stale_after: Duration::from_secs(6 * 3600),
            log_ttl: Duration::from_secs(14 * 24 * 3600),
            outbox_lease: Duration::from_secs(60),
        }
    }
}

/// The sync service on one backend's ports. Cheap to clone.
#[derive(Debug, Clone)]
pub struct SyncService {
    ports: Ports,
    config: SyncConfig,
}

impl SyncService {
    pub fn new(ports: Ports) -> Self {
        Self::with_config(ports, SyncConfig::default())
    }

    pub fn with_config(ports: Ports, config: SyncConfig) -> Self {
        Self { ports, config }
    }

    pub fn ports(&self) -> &Ports {
        &self.ports
    }

    pub fn config(&self) -> &SyncConfig {
        &self.config
    }
}

/// Top-level attribute names of the items this crate writes (besides `pk`, `sk`, `kind`, `doc`
/// and the index keys). Counters are numbers updated with ADD; times are
/// [`hub_core::keys::sortable_time`] strings so conditions can compare them as text.
pub mod attr {
    // Task items.
    pub const TASK_ID: &str = "taskId";
    pub const STATUS: &str = "status";
    pub const NEXT_RUN_AT: &str = "nextRunAt";
    pub const DOC_VERSION: &str = "docVersion";
    pub const ACTIVE_EXECUTION_ID: &str = "activeExecutionId";
    pub const ACTIVE_SINCE: &str = "activeSince";
    pub const LAST_RUN_AT: &str = "lastRunAt";
    pub const LAST_RUN_STATUS: &str = "lastRunStatus";
    pub const LAST_SUCCESS_AT: &str = "lastSuccessAt";
    pub const LAST_FAILURE_AT: &str = "lastFailureAt";
    pub const LAST_TASK_ERROR: &str = "lastTaskError";
    pub const TOTAL_RUNS: &str = "totalRuns";
    pub const SUCCESSFUL_RUNS: &str = "successfulRuns";
    pub const FAILED_RUNS: &str = "failedRuns";
    pub const RECORDS_PROCESSED: &str = "recordsProcessed";
    pub const RECORDS_CREATED: &str = "recordsCreated";
    pub const RECORDS_UPDATED: &str = "recordsUpdated";
    pub const RECORDS_SKIPPED: &str = "recordsSkipped";
    pub const RECORDS_FAILED: &str = "recordsFailed";

    // Execution items (also `taskId` and `status`).
    pub const PHASE: &str = "phase";
    pub const FETCHED: &str = "fetched";
    pub const CREATED: &str = "created";
    pub const UPDATED: &str = "updated";
    pub const SKIPPED: &str = "skipped";
    pub const FAILED: &str = "failed";
    pub const PAGES_FETCHED: &str = "pagesFetched";
    pub const PAGES_PENDING: &str = "pagesPending";
    pub const FETCH_COMPLETE: &str = "fetchComplete";
    pub const TOTAL_RECORDS: &str = "totalRecords";
    pub const ERROR_COUNT: &str = "errorCount";
    pub const LAST_ERROR: &str = "lastError";
    pub const COMPLETED_AT: &str = "completedAt";
    pub const DURATION_MS: &str = "durationMs";
    pub const CANCELLED_BY: &str = "cancelledBy";
    /// Run bookkeeping (hub-writer's run protocol): batches the fetcher sent to the transform
    /// queue, and batches the writer has written; equal with `fetchComplete`, the run is done.
    pub const BATCHES_ENQUEUED: &str = "batchesEnqueued";
    pub const BATCHES_WRITTEN: &str = "batchesWritten";
    /// Batches of the run that reached a dead-letter queue instead (hub-writer counts them
    /// when their last delivery fails): with them, `batchesWritten + batchesDead ==
    /// batchesEnqueued` ends the run, never as a success.
    pub const BATCHES_DEAD: &str = "batchesDead";
    /// A parked run resumes then (`SyncService::park_job`): sortable time.
    pub const RESUME_AT: &str = "resumeAt";

    // Log lines.
    pub const LEVEL: &str = "level";

    // Outbox entries.
    pub const LEASE_UNTIL_MS: &str = "leaseUntilMs";
    pub const EXECUTION_ID: &str = "executionId";

    /// The committed cursor of a task, on its `keys::cursor` item (written by the writer).
    pub const CURSOR: &str = "cursor";
}

/// Item `kind`s this crate writes.
pub mod kind {
    pub const TASK: &str = "sync_task";
    pub const EXECUTION: &str = "sync_execution";
    pub const EXECUTION_ERROR: &str = "sync_error";
    pub const LOG: &str = "sync_log";
    pub const OUTBOX: &str = "outbox";
}
