//! Starting executions: the scheduled tick, run now and retry. See "Exactly one run per
//! occurrence" in the crate documentation for the claim and the outbox.

use chrono::{DateTime, Utc};
use hub_core::keys;
use hub_core::messages::{CursorWindow, SyncJob, SyncStarted, V1};
use hub_core::model::{
    ExecutionPhase, ExecutionStatus, SyncExecution, SyncProgress, SyncResults, SyncTaskStatus,
    TaskError, TenantId, Trigger,
};
use hub_core::ports::{
    CmpOp, Condition, Index, Item, QueryRequest, QueueRole, SortCondition, StoreError, TransactOp,
    UpdateAction,
};
use hub_core::schedule;
use serde_json::Value;

use crate::execution::{ExecutionRecord, execution_status_str, new_execution_item, read_execution};
use crate::outbox::{self, Effect, Entry};
use crate::task::{TaskState, due_actions, str_attr};
use crate::{Error, Result, SyncService, attr};

/// How often run now / retry re-read and try again after losing a race.
const MAX_ATTEMPTS: usize = 5;

/// An execution a tick started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartedExecution {
    pub tenant_id: TenantId,
    pub task_id: String,
    pub execution_id: String,
}

/// A due task the tick could not handle; the others went on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TickFailure {
    /// As found in the index (may be what made the item unreadable).
    pub tenant_id: String,
    pub task_id: String,
    pub code: &'static str,
    pub message: String,
}

/// What one tick did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TickReport {
    pub started: Vec<StartedExecution>,
    /// Occurrences skipped because the task's previous run was still going.
    pub skipped_busy: usize,
    /// Occurrences another tick (or a concurrent change to the task) claimed first.
    pub lost_races: usize,
    /// Index entries whose task was no longer due once re-read (the index lags).
    pub not_due: usize,
    /// Outbox entries of earlier, interrupted starts and ends delivered now.
    pub redelivered: usize,
    /// Outbox entries whose delivery failed; they stay for a later tick.
    pub undelivered: usize,
    pub failures: Vec<TickFailure>,
    /// The tick stopped at [`crate::SyncConfig::max_starts_per_tick`]; the rest stay due.
    pub more_due: bool,
}

impl TickReport {
    /// Logs the tick as one line: what Lambda and the local host both print.
    pub fn log(&self) {
        for failure in &self.failures {
            tracing::warn!(
                code = failure.code,
                "a due task could not start: {}",
                failure.message
            );
        }
        tracing::info!(
            started = self.started.len(),
            skipped_busy = self.skipped_busy,
            lost_races = self.lost_races,
            redelivered = self.redelivered,
            undelivered = self.undelivered,
            failures = self.failures.len(),
            more_due = self.more_due,
            "sync tick"
        );
    }
}

/// How a start claims the task.
enum Claim {
    /// A due occurrence: `nextRunAt` must still be `read`, and moves to `next`.
    Scheduled {
        read: Value,
        next: Option<DateTime<Utc>>,
    },
    /// Run now or retry: only the busy marker is claimed.
    OnDemand,
}

#[derive(Clone)]
struct StartRequest {
    trigger: Trigger,
    user_id: Option<String>,
    retry_of: Option<String>,
    retry_count: u32,
}

impl SyncService {
    /// One scheduler tick: redelivers what earlier starts left in the outbox, then starts one
    /// execution for every task due at `now` (at most
    /// [`crate::SyncConfig::max_starts_per_tick`]). Safe to run concurrently with itself: each
    /// occurrence starts exactly once. A task that cannot be handled is reported in
    /// [`TickReport::failures`] and does not stop the others; an error is returned only when the
    /// store cannot be queried at all.
    pub async fn tick(&self, now: DateTime<Utc>) -> Result<TickReport> {
        let mut report = TickReport::default();
        let drained = outbox::drain(
            &self.ports,
            now,
            self.config.outbox_lease,
            self.config.max_starts_per_tick,
        )
        .await?;
        report.redelivered = drained.delivered;
        report.undelivered = drained.failed;

        let bound = keys::due_sort_bound(now);
        'shards: for shard in 0..keys::DUE_SHARDS {
            let mut start = None;
            loop {
                let page = self
                    .ports
                    .state
                    .query(
                        QueryRequest::partition(Index::Gsi1, keys::due_partition(shard))
                            .sort(SortCondition::Lt(bound.clone()))
                            .limit(100)
                            .start_after(start),
                    )
                    .await?;
                for item in &page.items {
                    if report.started.len() >= self.config.max_starts_per_tick {
                        report.more_due = true;
                        break 'shards;
                    }
                    if let Err(error) = self.claim_due(item, now, &mut report).await {
                        let tenant_id = str_attr(item, hub_core::ports::PK)
                            .and_then(|pk| pk.strip_prefix("tenant#"))
                            .unwrap_or_default()
                            .to_owned();
                        let task_id = str_attr(item, attr::TASK_ID).unwrap_or_default().to_owned();
                        tracing::warn!(
                            tenant = %tenant_id,
                            task = %task_id,
                            code = error.code(),
                            "could not start a due sync task: {error}"
                        );
                        report.failures.push(TickFailure {
                            tenant_id,
                            task_id,
                            code: error.code(),
                            message: error.to_string(),
                        });
                    }
                }
                start = page.last_evaluated_key;
                if start.is_none() {
                    break;
                }
            }
        }
        Ok(report)
    }

    async fn claim_due(
        &self,
        item: &Item,
        now: DateTime<Utc>,
        report: &mut TickReport,
    ) -> Result<()> {
        let key = hub_core::ports::Key::of(item)?;
        let tenant = key
            .pk
            .strip_prefix("tenant#")
            .and_then(|tenant| TenantId::parse(tenant).ok())
            .ok_or_else(|| Error::corrupt(&key, "a due index entry outside a tenant partition"))?;
        let task_id = str_attr(item, attr::TASK_ID)
            .ok_or_else(|| Error::corrupt(&key, "a due index entry without `taskId`"))?;
        // The index is eventually consistent: decide on a strongly consistent read.
        let Some(state) = self.find_task(&tenant, task_id).await? else {
            report.not_due += 1;
            return Ok(());
        };
        let due = state.task.status == SyncTaskStatus::Active
            && state.task.next_run_at.is_some_and(|at| at <= now);
        let Some(read) = state.next_run_read.clone().filter(|_| due) else {
            report.not_due += 1;
            return Ok(());
        };

        let next = match schedule::next_after(&state.task.schedule.config, state.anchor(), now) {
            Ok(next) => next,
            Err(source) => {
                self.park_unschedulable(&state, read, now, &source.to_string())
                    .await?;
                return Err(Error::Schedule {
                    task_id: task_id.to_owned(),
                    source,
                });
            }
        };

        if let Some(running) = self.busy_with(&state, now).await? {
            // Skip this occurrence: move on to the next one without starting a run.
            let actions = due_actions(&tenant, task_id, next);
            let condition = Condition::eq(attr::STATUS, "active").and(Condition::Compare(
                attr::NEXT_RUN_AT.into(),
                CmpOp::Eq,
                read,
            ));
            match self
                .ports
                .state
                .update(&state.key, actions, Some(condition))
                .await
            {
                Ok(_) => {
                    tracing::info!(
                        tenant = %tenant,
                        task = %task_id,
                        execution = %running,
                        "occurrence skipped: the previous run is still going"
                    );
                    report.skipped_busy += 1;
                }
                Err(StoreError::ConditionFailed) => report.lost_races += 1,
                Err(error) => return Err(error.into()),
            }
            return Ok(());
        }

        let request = StartRequest {
            trigger: Trigger::Schedule,
            user_id: None,
            retry_of: None,
            retry_count: 0,
        };
        match self
            .start_execution(&state, Claim::Scheduled { read, next }, request, now)
            .await?
        {
            Some(record) => report.started.push(StartedExecution {
                tenant_id: tenant.clone(),
                task_id: task_id.to_owned(),
                execution_id: record.execution.id,
            }),
            None => report.lost_races += 1,
        }
        Ok(())
    }

    /// A task whose schedule has no next run leaves the due index with status `error` (fix the
    /// schedule and apply the task again), instead of failing every tick.
    async fn park_unschedulable(
        &self,
        state: &TaskState,
        read: Value,
        now: DateTime<Utc>,
        message: &str,
    ) -> Result<()> {
        let error = TaskError {
            message: message.to_owned(),
            timestamp: now,
            details: None,
        };
        let mut actions = due_actions(&state.tenant, &state.task.id, None);
        actions.push(UpdateAction::Set(attr::STATUS.into(), "error".into()));
        if let Ok(text) = serde_json::to_string(&error) {
            actions.push(UpdateAction::Set(attr::LAST_TASK_ERROR.into(), text.into()));
        }
        let condition = Condition::Compare(attr::NEXT_RUN_AT.into(), CmpOp::Eq, read);
        match self
            .ports
            .state
            .update(&state.key, actions, Some(condition))
            .await
        {
            Ok(_) | Err(StoreError::ConditionFailed) => Ok(()),
            Err(error) => Err(error.into()),
        }
    }

    /// Starts an execution of the task now (`triggeredBy: manual`), whatever its schedule
    /// (a paused task too; a disabled one answers `invalid_state`). `task_busy` while an
    /// execution of the task is running.
    pub async fn run_now(
        &self,
        tenant: &TenantId,
        task_id: &str,
        user_id: Option<&str>,
    ) -> Result<ExecutionRecord> {
        self.start_on_demand(
            tenant,
            task_id,
            StartRequest {
                trigger: Trigger::Manual,
                user_id: user_id.map(str::to_owned),
                retry_of: None,
                retry_count: 0,
            },
        )
        .await
    }

    /// Starts a new execution (`triggeredBy: retry`, `retryOf` the given one) for an execution
    /// that ended `failed`, `partial` or `cancelled`.
    pub async fn retry(
        &self,
        tenant: &TenantId,
        execution_id: &str,
        user_id: Option<&str>,
    ) -> Result<ExecutionRecord> {
        let previous = self.load_execution(tenant, execution_id).await?;
        match previous.execution.status {
            ExecutionStatus::Failed | ExecutionStatus::Partial | ExecutionStatus::Cancelled => {}
            status @ (ExecutionStatus::Running | ExecutionStatus::Success) => {
                return Err(Error::InvalidState(format!(
                    "execution `{execution_id}` is {}; only a failed, partial or cancelled \
                     execution can be retried",
                    execution_status_str(status)
                )));
            }
        }
        self.start_on_demand(
            tenant,
            previous.task_id(),
            StartRequest {
                trigger: Trigger::Retry,
                user_id: user_id.map(str::to_owned),
                retry_of: Some(previous.execution.id.clone()),
                retry_count: previous.execution.retry_count.saturating_add(1),
            },
        )
        .await
    }

    async fn start_on_demand(
        &self,
        tenant: &TenantId,
        task_id: &str,
        request: StartRequest,
    ) -> Result<ExecutionRecord> {
        for _ in 0..MAX_ATTEMPTS {
            let state = self.load_task(tenant, task_id).await?;
            if state.task.status == SyncTaskStatus::Disabled {
                return Err(Error::InvalidState(format!(
                    "sync task `{task_id}` is disabled"
                )));
            }
            let now = self.ports.clock.now();
            if let Some(running) = self.busy_with(&state, now).await? {
                return Err(Error::TaskBusy {
                    task_id: task_id.to_owned(),
                    execution_id: running,
                });
            }
            if let Some(record) = self
                .start_execution(&state, Claim::OnDemand, request.clone(), now)
                .await?
            {
                return Ok(record);
            }
        }
        Err(Error::Contention(format!("sync task `{task_id}`")))
    }

    /// The running execution that makes the task busy, if any. A marker older than
    /// `stale_after`, or naming an execution that has ended or vanished, does not count.
    async fn busy_with(&self, state: &TaskState, now: DateTime<Utc>) -> Result<Option<String>> {
        let Some(active) = &state.active else {
            return Ok(None);
        };
        let stale_before = chrono::Duration::from_std(self.config.stale_after)
            .ok()
            .and_then(|age| now.checked_sub_signed(age))
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        if active.since.as_str() <= keys::sortable_time(stale_before).as_str() {
            return Ok(None);
        }
        match self
            .load_execution(&state.tenant, &active.execution_id)
            .await
        {
            Ok(record) if record.is_running() => Ok(Some(active.execution_id.clone())),
            Ok(_) | Err(Error::ExecutionNotFound { .. }) => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// The claim, the execution and its outbox entries in one transaction, then delivery.
    /// `None` when a condition failed (another tick claimed it, or the task changed).
    async fn start_execution(
        &self,
        state: &TaskState,
        claim: Claim,
        request: StartRequest,
        now: DateTime<Utc>,
    ) -> Result<Option<ExecutionRecord>> {
        let tenant = &state.tenant;
        let task = &state.task;
        let tenant_integration_id = task.tenant_integration_id.clone().ok_or_else(|| {
            Error::InvalidState(format!(
                "sync task `{}` has no tenantIntegrationId; apply it again",
                task.id
            ))
        })?;
        let execution_id = self.ports.ids.new_id();
        let execution = SyncExecution {
            id: execution_id.clone(),
            sync_task_id: task.id.clone(),
            tenant_integration_id: tenant_integration_id.clone(),
            started_at: now,
            completed_at: None,
            duration_ms: None,
            triggered_by: request.trigger,
            triggered_by_user_id: request.user_id,
            status: ExecutionStatus::Running,
            progress: SyncProgress {
                phase: ExecutionPhase::Fetching,
                total_records: None,
                processed_records: 0,
                percentage: 0,
            },
            results: SyncResults::default(),
            errors: Vec::new(),
            retry_count: request.retry_count,
            retry_of: request.retry_of,
        };
        let execution_item = new_execution_item(tenant, &execution)?;

        let job = SyncJob {
            v: V1,
            execution_id: execution_id.clone(),
            tenant_id: tenant.clone(),
            task_id: task.id.clone(),
            attempt: 1,
            triggered_by: request.trigger,
            page: 0,
            page_token: None,
            cursor_window: self.cursor_window(state, now).await?,
        };
        let started = SyncStarted {
            v: V1,
            execution_id: execution_id.clone(),
            tenant_id: tenant.clone(),
            tenant_integration_id,
            task_id: task.id.clone(),
            triggered_by: request.trigger,
            started_at: now,
        };
        let shard = keys::shard_of(tenant.as_str(), &task.id);
        let entries = [
            Entry::new(
                &self.ports,
                shard,
                Effect::message(QueueRole::Fetch.logical_name(), &job)?,
            ),
            Entry::new(&self.ports, shard, Effect::event(&started)?),
        ];

        let mut actions = vec![
            UpdateAction::Set(
                attr::ACTIVE_EXECUTION_ID.into(),
                execution_id.clone().into(),
            ),
            UpdateAction::Set(attr::ACTIVE_SINCE.into(), keys::sortable_time(now).into()),
        ];
        let mut condition = Condition::item_present().and(state.active_unchanged());
        if let Claim::Scheduled { read, next } = claim {
            actions.extend(due_actions(tenant, &task.id, next));
            condition =
                condition
                    .and(Condition::eq(attr::STATUS, "active"))
                    .and(Condition::Compare(
                        attr::NEXT_RUN_AT.into(),
                        CmpOp::Eq,
                        read,
                    ));
        }
        let lease_until = outbox::later(now, self.config.outbox_lease);
        let mut ops = vec![
            TransactOp::Update {
                key: state.key.clone(),
                actions,
                condition: Some(condition),
            },
            TransactOp::Put {
                item: execution_item.clone(),
                condition: Some(Condition::item_absent()),
            },
        ];
        for entry in &entries {
            ops.push(entry.put_op(&execution_id, lease_until)?);
        }
        match self.ports.state.transact_write(ops).await {
            Ok(()) => {}
            Err(StoreError::TransactionCanceled { .. }) => return Ok(None),
            Err(error) => return Err(error.into()),
        }
        tracing::info!(
            tenant = %tenant,
            task = %task.id,
            execution = %execution_id,
            triggered_by = ?request.trigger,
            "sync started"
        );
        outbox::deliver(&self.ports, &entries).await;
        read_execution(tenant, &execution_item).map(Some)
    }

    /// The incremental window of a new run: from the cursor the writer last committed (absent:
    /// from the beginning) to the run's start. A full sync has no window.
    async fn cursor_window(&self, state: &TaskState, now: DateTime<Utc>) -> Result<CursorWindow> {
        if !state.task.config.incremental_sync() {
            return Ok(CursorWindow::default());
        }
        let from = self
            .ports
            .state
            .get(&keys::cursor(state.tenant.as_str(), &state.task.id))
            .await?
            .and_then(|item| str_attr(&item, attr::CURSOR).map(str::to_owned));
        Ok(CursorWindow {
            from,
            to: Some(keys::sortable_time(now)),
        })
    }
}
