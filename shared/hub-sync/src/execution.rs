//! Execution items and their bookkeeping: counters (ADD), phase, bounded errors, TTL'd logs,
//! the end of a run (with the task's statistics and the lifecycle event), and the reads the
//! `hub executions` commands need.
//!
//! The execution document is written once, when the run starts; everything that changes later
//! is a top-level attribute laid over it on read, so concurrent writers never rewrite the
//! document and counters are plain ADDs.

use chrono::{DateTime, Utc};
use hub_core::keys;
use hub_core::messages::{FinishedStatus, SyncFinished, V1};
use hub_core::model::{
    ExecutionPhase, ExecutionStatus, LogLevel, RunStatus, SyncError, SyncExecution, SyncLog,
    SyncResults, TaskError, TenantId,
};
use hub_core::ports::{
    Condition, EXPIRES_AT, Index, Item, Key, QueryRequest, SortCondition, StoreError, TransactOp,
    UpdateAction,
};
use hub_core::repo;
use serde_json::{Map, Value};

use crate::outbox::{self, Effect, Entry};
use crate::task::{count_attr, enum_attr, int_attr, run_status_str, str_attr, time_attr};
use crate::{Error, Result, SyncService, attr, kind};

/// How often a write that lost a race re-reads and tries again before giving up.
const MAX_ATTEMPTS: usize = 5;
/// Longer log messages are cut: an item must stay far below the store's size limit.
const MAX_LOG_MESSAGE_CHARS: usize = 4096;

/// An execution as stored: the model document with its live status, progress and results,
/// plus the pipeline's own counters.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutionRecord {
    pub tenant_id: TenantId,
    /// `errors` holds the stored errors (the first [`keys::MAX_STORED_ERRORS`]) when read with
    /// [`SyncService::get_execution`], and is empty in listings.
    pub execution: SyncExecution,
    pub pages_fetched: u64,
    /// Pages (or page parts) fetched but not yet written; the pipeline's own bookkeeping.
    pub pages_pending: i64,
    /// The fetcher has fetched the last page.
    pub fetch_complete: bool,
    /// Record batches the fetcher enqueued for this run (hub-writer's run protocol).
    pub batches_enqueued: u64,
    /// Of those, the batches the writer has written.
    pub batches_written: u64,
    /// Of those, the batches that reached a dead-letter queue and were not written since.
    pub batches_dead: u64,
    /// Every error reported, including those beyond the stored ones.
    pub error_count: u64,
    pub last_error: Option<String>,
    pub cancelled_by: Option<String>,
}

impl ExecutionRecord {
    pub fn id(&self) -> &str {
        &self.execution.id
    }

    pub fn task_id(&self) -> &str {
        &self.execution.sync_task_id
    }

    pub fn is_running(&self) -> bool {
        self.execution.status == ExecutionStatus::Running
    }

    /// Errors reported beyond the stored ones.
    pub fn errors_not_stored(&self) -> u64 {
        self.error_count.saturating_sub(keys::MAX_STORED_ERRORS)
    }
}

/// Whether the execution was cancelled: the fetcher checks this before fetching another page
/// and, if so, fetches nothing more (the execution has already ended `cancelled`).
pub fn is_cancelled(execution: &SyncExecution) -> bool {
    execution.status == ExecutionStatus::Cancelled
}

/// The outcome a run's counters suggest: `success` without failures, `partial` when some
/// records failed but others were written, `failed` when nothing was written and something
/// failed.
pub fn outcome_of(record: &ExecutionRecord) -> RunStatus {
    let results = &record.execution.results;
    if record.error_count == 0 && results.failed == 0 {
        RunStatus::Success
    } else if results.created + results.updated + results.skipped > 0 {
        RunStatus::Partial
    } else {
        RunStatus::Failed
    }
}

/// Amounts to ADD to an execution's counters (negative to take away, e.g. `pages_pending`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CounterDeltas {
    pub fetched: i64,
    pub created: i64,
    pub updated: i64,
    pub skipped: i64,
    pub failed: i64,
    pub pages_fetched: i64,
    pub pages_pending: i64,
}

impl CounterDeltas {
    fn actions(&self) -> Vec<UpdateAction> {
        [
            (attr::FETCHED, self.fetched),
            (attr::CREATED, self.created),
            (attr::UPDATED, self.updated),
            (attr::SKIPPED, self.skipped),
            (attr::FAILED, self.failed),
            (attr::PAGES_FETCHED, self.pages_fetched),
            (attr::PAGES_PENDING, self.pages_pending),
        ]
        .into_iter()
        .filter(|(_, delta)| *delta != 0)
        .map(|(name, delta)| UpdateAction::Add(name.into(), delta))
        .collect()
    }
}

/// Where the next page of a listing starts. Opaque.
#[derive(Debug, Clone, PartialEq)]
pub struct PageToken(Item);

#[derive(Debug, Clone, PartialEq)]
pub struct ExecutionPage {
    /// Newest first.
    pub executions: Vec<ExecutionRecord>,
    /// `None` when there is nothing more.
    pub next: Option<PageToken>,
}

pub(crate) fn execution_status_str(status: ExecutionStatus) -> &'static str {
    match status {
        ExecutionStatus::Running => "running",
        ExecutionStatus::Success => "success",
        ExecutionStatus::Partial => "partial",
        ExecutionStatus::Failed => "failed",
        ExecutionStatus::Cancelled => "cancelled",
    }
}

fn phase_str(phase: ExecutionPhase) -> &'static str {
    match phase {
        ExecutionPhase::Fetching => "fetching",
        ExecutionPhase::Transforming => "transforming",
        ExecutionPhase::Saving => "saving",
        ExecutionPhase::Complete => "complete",
    }
}

/// The item of a new execution: its document, the task index, and every counter at zero so
/// later writers ADD to numbers that exist.
pub(crate) fn new_execution_item(tenant: &TenantId, execution: &SyncExecution) -> Result<Item> {
    let key = keys::execution(tenant.as_str(), &execution.id);
    let mut item = repo::with_index(
        repo::doc_item(&key, kind::EXECUTION, execution).map_err(Error::Encode)?,
        keys::executions_of_task_index(tenant.as_str(), &execution.sync_task_id),
        execution.id.clone(),
    );
    item.insert(attr::TASK_ID.into(), execution.sync_task_id.clone().into());
    item.insert(
        attr::STATUS.into(),
        execution_status_str(execution.status).into(),
    );
    item.insert(
        attr::PHASE.into(),
        phase_str(execution.progress.phase).into(),
    );
    for counter in [
        attr::FETCHED,
        attr::CREATED,
        attr::UPDATED,
        attr::SKIPPED,
        attr::FAILED,
        attr::PAGES_FETCHED,
        attr::PAGES_PENDING,
        attr::ERROR_COUNT,
        attr::BATCHES_ENQUEUED,
        attr::BATCHES_WRITTEN,
        attr::BATCHES_DEAD,
    ] {
        item.insert(counter.into(), 0.into());
    }
    item.insert(attr::FETCH_COMPLETE.into(), false.into());
    Ok(item)
}

pub(crate) fn read_execution(tenant: &TenantId, item: &Item) -> Result<ExecutionRecord> {
    let key = Key::of(item)?;
    let mut execution: SyncExecution =
        repo::read_doc(item).map_err(|error| Error::corrupt(&key, error.to_string()))?;
    if let Some(status) = enum_attr(&key, item, attr::STATUS)? {
        execution.status = status;
    }
    if let Some(phase) = enum_attr(&key, item, attr::PHASE)? {
        execution.progress.phase = phase;
    }
    execution.results = SyncResults {
        fetched: count_attr(item, attr::FETCHED),
        created: count_attr(item, attr::CREATED),
        updated: count_attr(item, attr::UPDATED),
        skipped: count_attr(item, attr::SKIPPED),
        failed: count_attr(item, attr::FAILED),
    };
    let results = &execution.results;
    let processed = results.created + results.updated + results.skipped + results.failed;
    execution.progress.processed_records = processed;
    execution.progress.total_records = item.get(attr::TOTAL_RECORDS).and_then(Value::as_u64);
    execution.progress.percentage = match (execution.status, execution.progress.total_records) {
        (ExecutionStatus::Success | ExecutionStatus::Partial, _) => 100,
        (_, Some(total)) if total > 0 => {
            u8::try_from((processed.saturating_mul(100) / total).min(100)).unwrap_or(100)
        }
        _ => 0,
    };
    if let Some(completed_at) = time_attr(&key, item, attr::COMPLETED_AT)? {
        execution.completed_at = Some(completed_at);
    }
    if let Some(duration) = item.get(attr::DURATION_MS).and_then(Value::as_u64) {
        execution.duration_ms = Some(duration);
    }
    Ok(ExecutionRecord {
        tenant_id: tenant.clone(),
        execution,
        pages_fetched: count_attr(item, attr::PAGES_FETCHED),
        pages_pending: int_attr(item, attr::PAGES_PENDING),
        fetch_complete: item
            .get(attr::FETCH_COMPLETE)
            .and_then(Value::as_bool)
            .unwrap_or(false),
        batches_enqueued: count_attr(item, attr::BATCHES_ENQUEUED),
        batches_written: count_attr(item, attr::BATCHES_WRITTEN),
        batches_dead: count_attr(item, attr::BATCHES_DEAD),
        error_count: count_attr(item, attr::ERROR_COUNT),
        last_error: str_attr(item, attr::LAST_ERROR).map(str::to_owned),
        cancelled_by: str_attr(item, attr::CANCELLED_BY).map(str::to_owned),
    })
}

fn truncate_chars(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

impl SyncService {
    /// An execution with its stored errors, or `execution_not_found`.
    pub async fn get_execution(
        &self,
        tenant: &TenantId,
        execution_id: &str,
    ) -> Result<ExecutionRecord> {
        let mut record = self.load_execution(tenant, execution_id).await?;
        record.execution.errors = self.stored_errors(execution_id).await?;
        Ok(record)
    }

    /// An execution with its stored errors and its last `last_logs` log lines (oldest first).
    pub async fn get_execution_with_logs(
        &self,
        tenant: &TenantId,
        execution_id: &str,
        last_logs: usize,
    ) -> Result<(ExecutionRecord, Vec<SyncLog>)> {
        let record = self.get_execution(tenant, execution_id).await?;
        let mut logs = Vec::new();
        if last_logs > 0 {
            let page = self
                .ports
                .state
                .query(
                    QueryRequest::partition(
                        Index::Primary,
                        keys::execution_log_partition(execution_id),
                    )
                    .backwards()
                    .limit(last_logs.min(1000)),
                )
                .await?;
            for item in &page.items {
                logs.push(read_log(item)?);
            }
            logs.reverse();
        }
        Ok((record, logs))
    }

    /// Log lines of an execution in time order, after the line with id `after` (for
    /// `--follow`: pass the id of the last line shown), at most `limit`.
    pub async fn execution_logs(
        &self,
        tenant: &TenantId,
        execution_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<SyncLog>> {
        self.load_execution(tenant, execution_id).await?;
        let mut logs = Vec::new();
        let mut start = None;
        while logs.len() < limit {
            let mut request = QueryRequest::partition(
                Index::Primary,
                keys::execution_log_partition(execution_id),
            )
            .limit((limit - logs.len()).min(1000))
            .start_after(start);
            if let Some(after) = after {
                request = request.sort(SortCondition::Gt(after.to_owned()));
            }
            let page = self.ports.state.query(request).await?;
            for item in &page.items {
                logs.push(read_log(item)?);
            }
            start = page.last_evaluated_key;
            if start.is_none() {
                break;
            }
        }
        Ok(logs)
    }

    /// Executions of a tenant, newest first.
    pub async fn list_executions(
        &self,
        tenant: &TenantId,
        limit: usize,
        page: Option<PageToken>,
    ) -> Result<ExecutionPage> {
        let request =
            QueryRequest::partition(Index::Primary, keys::execution_partition(tenant.as_str()));
        self.list_page(tenant, request, limit, page).await
    }

    /// Executions of one task, newest first. Reads the task index, which may lag a just-started
    /// execution by a moment on AWS.
    pub async fn list_task_executions(
        &self,
        tenant: &TenantId,
        task_id: &str,
        limit: usize,
        page: Option<PageToken>,
    ) -> Result<ExecutionPage> {
        let request = QueryRequest::partition(
            Index::Gsi1,
            keys::executions_of_task_index(tenant.as_str(), task_id),
        );
        self.list_page(tenant, request, limit, page).await
    }

    async fn list_page(
        &self,
        tenant: &TenantId,
        request: QueryRequest,
        limit: usize,
        page: Option<PageToken>,
    ) -> Result<ExecutionPage> {
        let result = self
            .ports
            .state
            .query(
                request
                    .backwards()
                    .limit(limit.clamp(1, 1000))
                    .start_after(page.map(|token| token.0)),
            )
            .await?;
        let executions = result
            .items
            .iter()
            .map(|item| read_execution(tenant, item))
            .collect::<Result<Vec<_>>>()?;
        Ok(ExecutionPage {
            executions,
            next: result.last_evaluated_key.map(PageToken),
        })
    }

    /// Whether the execution was cancelled (a strongly consistent read); see [`is_cancelled`].
    pub async fn is_cancelled(&self, tenant: &TenantId, execution_id: &str) -> Result<bool> {
        Ok(is_cancelled(
            &self.load_execution(tenant, execution_id).await?.execution,
        ))
    }

    /// ADDs to the counters and returns the execution as written, so a caller can tell from
    /// the result whether its ADD was the one that emptied `pages_pending`. Counts still land
    /// on a finished execution (a page in flight when the run was cancelled was written).
    pub async fn add_counters(
        &self,
        tenant: &TenantId,
        execution_id: &str,
        deltas: CounterDeltas,
    ) -> Result<ExecutionRecord> {
        let actions = deltas.actions();
        if actions.is_empty() {
            return self.load_execution(tenant, execution_id).await;
        }
        self.update_execution(tenant, execution_id, actions, false)
            .await
    }

    /// Sets the phase of a running execution (`invalid_state` once it has ended).
    pub async fn set_phase(
        &self,
        tenant: &TenantId,
        execution_id: &str,
        phase: ExecutionPhase,
    ) -> Result<ExecutionRecord> {
        let action = UpdateAction::Set(attr::PHASE.into(), phase_str(phase).into());
        self.update_execution(tenant, execution_id, vec![action], true)
            .await
    }

    /// Records the total the source reported, which turns on the percentage.
    pub async fn set_total_records(
        &self,
        tenant: &TenantId,
        execution_id: &str,
        total: u64,
    ) -> Result<ExecutionRecord> {
        let total = i64::try_from(total).unwrap_or(i64::MAX);
        let action = UpdateAction::Set(attr::TOTAL_RECORDS.into(), total.into());
        self.update_execution(tenant, execution_id, vec![action], true)
            .await
    }

    /// Notes that the last page has been fetched.
    pub async fn mark_fetch_complete(
        &self,
        tenant: &TenantId,
        execution_id: &str,
    ) -> Result<ExecutionRecord> {
        let action = UpdateAction::Set(attr::FETCH_COMPLETE.into(), true.into());
        self.update_execution(tenant, execution_id, vec![action], false)
            .await
    }

    /// Records an error of the run. Every error is counted and becomes the execution's
    /// `lastError`; the first [`keys::MAX_STORED_ERRORS`] are stored in full. Returns the
    /// error's number (from 1).
    pub async fn append_error(
        &self,
        tenant: &TenantId,
        execution_id: &str,
        error: SyncError,
    ) -> Result<u64> {
        let record = self
            .update_execution(
                tenant,
                execution_id,
                vec![
                    UpdateAction::Add(attr::ERROR_COUNT.into(), 1),
                    UpdateAction::Set(
                        attr::LAST_ERROR.into(),
                        truncate_chars(&error.error, MAX_LOG_MESSAGE_CHARS).into(),
                    ),
                ],
                false,
            )
            .await?;
        let number = record.error_count;
        if number <= keys::MAX_STORED_ERRORS {
            let key = keys::execution_error(execution_id, number);
            let item =
                repo::doc_item(&key, kind::EXECUTION_ERROR, &error).map_err(Error::Encode)?;
            self.ports.state.put(item, None).await?;
        }
        Ok(number)
    }

    /// Appends a log line to an execution; it expires after [`crate::SyncConfig::log_ttl`].
    pub async fn append_log(
        &self,
        execution_id: &str,
        level: LogLevel,
        message: &str,
        data: Option<Map<String, Value>>,
    ) -> Result<SyncLog> {
        let now = self.ports.clock.now();
        let log = SyncLog {
            id: self.ports.ids.new_id(),
            sync_execution_id: execution_id.to_owned(),
            timestamp: now,
            level,
            message: truncate_chars(message, MAX_LOG_MESSAGE_CHARS),
            data,
        };
        let key = Key::new(keys::execution_log_partition(execution_id), log.id.clone());
        let mut item = repo::doc_item(&key, kind::LOG, &log).map_err(Error::Encode)?;
        item.insert(
            attr::LEVEL.into(),
            serde_json::to_value(level).unwrap_or(Value::Null),
        );
        let expires = outbox::later(now, self.config.log_ttl);
        item.insert(EXPIRES_AT.into(), expires.timestamp().into());
        self.ports.state.put(item, None).await?;
        Ok(log)
    }

    /// Ends a running execution with `status`, adds its counters to the task's statistics,
    /// sets the task's last run, and publishes `sync.completed`, `sync.partial` or
    /// `sync.failed` with the task's notification settings. Returns `None` when the execution
    /// had already ended (a redelivered last batch, or a cancel that came first): finishing is
    /// idempotent.
    pub async fn finish(
        &self,
        tenant: &TenantId,
        execution_id: &str,
        status: RunStatus,
    ) -> Result<Option<ExecutionRecord>> {
        let status = match status {
            RunStatus::Success => FinishedStatus::Success,
            RunStatus::Partial => FinishedStatus::Partial,
            RunStatus::Failed => FinishedStatus::Failed,
        };
        self.end_execution(tenant, execution_id, status, None).await
    }

    /// Cancels a running execution: it ends `cancelled` at once (published as `sync.failed`
    /// with status `cancelled`), the fetcher fetches no further page ([`is_cancelled`]), and
    /// pages already in flight are still written. A cancelled run counts in the task's
    /// `totalRuns` only and leaves its `lastRunStatus` as it was.
    pub async fn cancel(
        &self,
        tenant: &TenantId,
        execution_id: &str,
        user_id: Option<&str>,
    ) -> Result<ExecutionRecord> {
        match self
            .end_execution(tenant, execution_id, FinishedStatus::Cancelled, user_id)
            .await?
        {
            Some(record) => Ok(record),
            None => {
                let record = self.load_execution(tenant, execution_id).await?;
                Err(Error::InvalidState(format!(
                    "execution `{execution_id}` has already ended {}; only a running execution \
                     can be cancelled",
                    execution_status_str(record.execution.status)
                )))
            }
        }
    }

    async fn end_execution(
        &self,
        tenant: &TenantId,
        execution_id: &str,
        status: FinishedStatus,
        cancelled_by: Option<&str>,
    ) -> Result<Option<ExecutionRecord>> {
        for _ in 0..MAX_ATTEMPTS {
            let record = self.load_execution(tenant, execution_id).await?;
            if record.execution.status.is_finished() {
                return Ok(None);
            }
            let task = self.find_task(tenant, record.task_id()).await?;
            let now = self.ports.clock.now().max(record.execution.started_at);
            let duration_ms =
                u64::try_from((now - record.execution.started_at).num_milliseconds()).unwrap_or(0);

            let mut ops = vec![TransactOp::Update {
                key: keys::execution(tenant.as_str(), execution_id),
                actions: end_actions(status, now, duration_ms, cancelled_by),
                condition: Some(
                    Condition::item_present().and(Condition::eq(attr::STATUS, "running")),
                ),
            }];
            if let Some(task) = &task {
                ops.push(TransactOp::Update {
                    key: task.key.clone(),
                    actions: task_stat_actions(&record, status, now),
                    condition: Some(Condition::item_present()),
                });
            }
            let finished = SyncFinished {
                v: V1,
                execution_id: execution_id.to_owned(),
                tenant_id: tenant.clone(),
                tenant_integration_id: record.execution.tenant_integration_id.clone(),
                task_id: record.task_id().to_owned(),
                status,
                started_at: record.execution.started_at,
                completed_at: now,
                duration_ms,
                results: record.execution.results,
                error_count: u32::try_from(record.error_count).unwrap_or(u32::MAX),
                last_error: record.last_error.clone(),
                notifications: task.as_ref().map(|task| task.task.notifications()),
            };
            let shard = keys::shard_of(tenant.as_str(), record.task_id());
            let entry = Entry::new(&self.ports, shard, Effect::event(&finished)?);
            ops.push(entry.put_op(execution_id, outbox::later(now, self.config.outbox_lease))?);

            match self.ports.state.transact_write(ops).await {
                Ok(()) => {}
                // The execution ended meanwhile (the next read sees it), the task vanished, or
                // a concurrent write collided: read again and decide again.
                Err(StoreError::TransactionCanceled { .. }) => continue,
                Err(error) => return Err(error.into()),
            }

            outbox::deliver(&self.ports, std::slice::from_ref(&entry)).await;
            if task.is_some()
                && let Err(error) = self
                    .clear_busy(tenant, record.task_id(), execution_id)
                    .await
            {
                // Harmless if it stays: a marker naming an ended execution does not count.
                tracing::warn!(
                    code = error.code(),
                    "could not clear the task's busy marker: {error}"
                );
            }
            return self.load_execution(tenant, execution_id).await.map(Some);
        }
        Err(Error::Contention(format!("execution `{execution_id}`")))
    }

    /// Takes the busy marker off the task if it still names this execution.
    pub(crate) async fn clear_busy(
        &self,
        tenant: &TenantId,
        task_id: &str,
        execution_id: &str,
    ) -> Result<()> {
        let cleared = self
            .ports
            .state
            .update(
                &keys::task(tenant.as_str(), task_id),
                vec![
                    UpdateAction::Remove(attr::ACTIVE_EXECUTION_ID.into()),
                    UpdateAction::Remove(attr::ACTIVE_SINCE.into()),
                ],
                Some(Condition::eq(attr::ACTIVE_EXECUTION_ID, execution_id)),
            )
            .await;
        match cleared {
            Ok(_) | Err(StoreError::ConditionFailed) => Ok(()),
            Err(error) => Err(error.into()),
        }
    }

    pub(crate) async fn load_execution(
        &self,
        tenant: &TenantId,
        execution_id: &str,
    ) -> Result<ExecutionRecord> {
        match self
            .ports
            .state
            .get(&keys::execution(tenant.as_str(), execution_id))
            .await?
        {
            Some(item) => read_execution(tenant, &item),
            None => Err(Error::ExecutionNotFound {
                tenant: tenant.to_string(),
                execution_id: execution_id.to_owned(),
            }),
        }
    }

    /// Applies `actions` to an existing execution (never creates one); with `running_only`,
    /// only while it runs.
    async fn update_execution(
        &self,
        tenant: &TenantId,
        execution_id: &str,
        actions: Vec<UpdateAction>,
        running_only: bool,
    ) -> Result<ExecutionRecord> {
        let mut condition = Condition::item_present();
        if running_only {
            condition = condition.and(Condition::eq(attr::STATUS, "running"));
        }
        let key = keys::execution(tenant.as_str(), execution_id);
        match self
            .ports
            .state
            .update(&key, actions, Some(condition))
            .await
        {
            Ok(item) => read_execution(tenant, &item),
            Err(StoreError::ConditionFailed) => {
                let record = self.load_execution(tenant, execution_id).await?;
                Err(Error::InvalidState(format!(
                    "execution `{execution_id}` has ended {}",
                    execution_status_str(record.execution.status)
                )))
            }
            Err(error) => Err(error.into()),
        }
    }

    async fn stored_errors(&self, execution_id: &str) -> Result<Vec<SyncError>> {
        let page = self
            .ports
            .state
            .query(
                QueryRequest::partition(
                    Index::Primary,
                    keys::execution_error_partition(execution_id),
                )
                .limit(usize::try_from(keys::MAX_STORED_ERRORS).unwrap_or(100)),
            )
            .await?;
        page.items
            .iter()
            .map(|item| {
                let key = Key::of(item)?;
                match item.get(repo::DOC) {
                    Some(Value::String(text)) => serde_json::from_str(text)
                        .map_err(|error| Error::corrupt(&key, error.to_string())),
                    _ => Err(Error::corrupt(&key, "error item without a document")),
                }
            })
            .collect()
    }
}

fn read_log(item: &Item) -> Result<SyncLog> {
    let key = Key::of(item)?;
    repo::read_doc(item).map_err(|error| Error::corrupt(&key, error.to_string()))
}

fn end_actions(
    status: FinishedStatus,
    now: DateTime<Utc>,
    duration_ms: u64,
    cancelled_by: Option<&str>,
) -> Vec<UpdateAction> {
    let status_text = match status {
        FinishedStatus::Success => "success",
        FinishedStatus::Partial => "partial",
        FinishedStatus::Failed => "failed",
        FinishedStatus::Cancelled => "cancelled",
    };
    let mut actions = vec![
        UpdateAction::Set(attr::STATUS.into(), status_text.into()),
        UpdateAction::Set(attr::COMPLETED_AT.into(), keys::sortable_time(now).into()),
        UpdateAction::Set(
            attr::DURATION_MS.into(),
            i64::try_from(duration_ms).unwrap_or(i64::MAX).into(),
        ),
    ];
    // A failed or cancelled run keeps the phase it stopped in: that is where it went wrong.
    if matches!(status, FinishedStatus::Success | FinishedStatus::Partial) {
        actions.push(UpdateAction::Set(attr::PHASE.into(), "complete".into()));
    }
    if let Some(user) = cancelled_by {
        actions.push(UpdateAction::Set(attr::CANCELLED_BY.into(), user.into()));
    }
    actions
}

/// The task-side bookkeeping of a finished run. A partial run counts as successful (it
/// completed) and records its last error.
fn task_stat_actions(
    record: &ExecutionRecord,
    status: FinishedStatus,
    now: DateTime<Utc>,
) -> Vec<UpdateAction> {
    let at = keys::sortable_time(now);
    let results = &record.execution.results;
    let count = |value: u64| i64::try_from(value).unwrap_or(i64::MAX);
    let mut actions = vec![
        UpdateAction::Add(attr::TOTAL_RUNS.into(), 1),
        UpdateAction::Set(attr::LAST_RUN_AT.into(), at.clone().into()),
        UpdateAction::Add(
            attr::RECORDS_PROCESSED.into(),
            count(results.created + results.updated + results.skipped + results.failed),
        ),
        UpdateAction::Add(attr::RECORDS_CREATED.into(), count(results.created)),
        UpdateAction::Add(attr::RECORDS_UPDATED.into(), count(results.updated)),
        UpdateAction::Add(attr::RECORDS_SKIPPED.into(), count(results.skipped)),
        UpdateAction::Add(attr::RECORDS_FAILED.into(), count(results.failed)),
    ];
    let run_status = match status {
        FinishedStatus::Success => Some(RunStatus::Success),
        FinishedStatus::Partial => Some(RunStatus::Partial),
        FinishedStatus::Failed => Some(RunStatus::Failed),
        FinishedStatus::Cancelled => None,
    };
    if let Some(run_status) = run_status {
        actions.push(UpdateAction::Set(
            attr::LAST_RUN_STATUS.into(),
            run_status_str(run_status).into(),
        ));
    }
    match status {
        FinishedStatus::Success | FinishedStatus::Partial => {
            actions.push(UpdateAction::Add(attr::SUCCESSFUL_RUNS.into(), 1));
            actions.push(UpdateAction::Set(attr::LAST_SUCCESS_AT.into(), at.into()));
        }
        FinishedStatus::Failed => {
            actions.push(UpdateAction::Add(attr::FAILED_RUNS.into(), 1));
            actions.push(UpdateAction::Set(attr::LAST_FAILURE_AT.into(), at.into()));
        }
        FinishedStatus::Cancelled => {}
    }
    if matches!(status, FinishedStatus::Partial | FinishedStatus::Failed) {
        let error = TaskError {
            message: record
                .last_error
                .clone()
                .unwrap_or_else(|| format!("execution {} {status}", record.id())),
            timestamp: now,
            details: Some(serde_json::json!({
                "executionId": record.id(),
                "errorCount": record.error_count,
            })),
        };
        if let Ok(text) = serde_json::to_string(&error) {
            actions.push(UpdateAction::Set(attr::LAST_TASK_ERROR.into(), text.into()));
        }
    }
    actions
}
