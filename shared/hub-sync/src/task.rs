//! Sync task items: the document as `hub apply` wrote it, plus top-level attributes for what the
//! trigger and the bookkeeping change without rewriting it (status, `nextRunAt` and the due
//! index, the busy marker, run statistics as ADD counters).

use chrono::{DateTime, Utc};
use hub_core::keys;
use hub_core::model::{
    JsonPath, ModelError, RunStatus, SyncStats, SyncTask, SyncTaskStatus, TaskError, TenantId,
    Validate,
};
use hub_core::ports::{
    CmpOp, Condition, GSI1PK, GSI1SK, Index, Item, Key, QueryRequest, SortCondition, StoreError,
    UpdateAction,
};
use hub_core::repo;
use hub_core::schedule;
use serde_json::Value;

use crate::{Error, Result, SyncService, attr, kind};

/// How often a write that lost a race re-reads and tries again before giving up.
const MAX_ATTEMPTS: usize = 5;

/// A task as stored, with what was read of the attributes that conditions compare.
#[derive(Debug, Clone)]
pub(crate) struct TaskState {
    pub tenant: TenantId,
    pub key: Key,
    /// The document with the top-level attributes laid over it.
    pub task: SyncTask,
    pub status_read: Option<Value>,
    pub next_run_read: Option<Value>,
    pub doc_version_read: Option<Value>,
    pub active: Option<ActiveRun>,
}

/// The busy marker: the execution the task is running, and since when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ActiveRun {
    pub execution_id: String,
    pub since: String,
}

impl TaskState {
    /// Where an interval schedule's grid is anchored: the task's creation.
    pub fn anchor(&self) -> DateTime<Utc> {
        self.task.created_at.unwrap_or(DateTime::UNIX_EPOCH)
    }

    /// A condition that holds while the task's busy marker is still what was read.
    pub fn active_unchanged(&self) -> Condition {
        match &self.active {
            Some(active) => Condition::eq(attr::ACTIVE_EXECUTION_ID, active.execution_id.as_str()),
            None => Condition::NotExists(attr::ACTIVE_EXECUTION_ID.into()),
        }
    }
}

/// A condition that holds while `name` still has the value read (or is still absent).
pub(crate) fn unchanged(name: &str, read: Option<&Value>) -> Condition {
    match read {
        Some(value) => Condition::Compare(name.into(), CmpOp::Eq, value.clone()),
        None => Condition::NotExists(name.into()),
    }
}

pub(crate) fn status_str(status: SyncTaskStatus) -> &'static str {
    match status {
        SyncTaskStatus::Active => "active",
        SyncTaskStatus::Paused => "paused",
        SyncTaskStatus::Error => "error",
        SyncTaskStatus::Disabled => "disabled",
    }
}

pub(crate) fn run_status_str(status: RunStatus) -> &'static str {
    match status {
        RunStatus::Success => "success",
        RunStatus::Partial => "partial",
        RunStatus::Failed => "failed",
    }
}

pub(crate) fn int_attr(item: &Item, name: &str) -> i64 {
    item.get(name).and_then(Value::as_i64).unwrap_or(0)
}

pub(crate) fn count_attr(item: &Item, name: &str) -> u64 {
    u64::try_from(int_attr(item, name)).unwrap_or(0)
}

pub(crate) fn str_attr<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name).and_then(Value::as_str)
}

/// A stored enum attribute (`"active"`, `"success"`, ...).
pub(crate) fn enum_attr<T: serde::de::DeserializeOwned>(
    key: &Key,
    item: &Item,
    name: &str,
) -> Result<Option<T>> {
    match item.get(name) {
        None => Ok(None),
        Some(value) => serde_json::from_value(value.clone())
            .map(Some)
            .map_err(|error| Error::corrupt(key, format!("`{name}`: {error}"))),
    }
}

pub(crate) fn time_attr(key: &Key, item: &Item, name: &str) -> Result<Option<DateTime<Utc>>> {
    match str_attr(item, name) {
        None => Ok(None),
        Some(text) => DateTime::parse_from_rfc3339(text)
            .map(|at| Some(at.to_utc()))
            .map_err(|error| Error::corrupt(key, format!("`{name}`: {error}"))),
    }
}

pub(crate) fn read_task(tenant: &TenantId, item: &Item) -> Result<TaskState> {
    let key = Key::of(item)?;
    let mut task: SyncTask =
        repo::read_doc(item).map_err(|error| Error::corrupt(&key, error.to_string()))?;
    if let Some(status) = enum_attr(&key, item, attr::STATUS)? {
        task.status = status;
    }
    task.next_run_at = time_attr(&key, item, attr::NEXT_RUN_AT)?;
    task.last_run_at = time_attr(&key, item, attr::LAST_RUN_AT)?;
    task.last_run_status = enum_attr(&key, item, attr::LAST_RUN_STATUS)?;
    task.stats = SyncStats {
        total_runs: count_attr(item, attr::TOTAL_RUNS),
        successful_runs: count_attr(item, attr::SUCCESSFUL_RUNS),
        failed_runs: count_attr(item, attr::FAILED_RUNS),
        last_success_at: time_attr(&key, item, attr::LAST_SUCCESS_AT)?,
        last_failure_at: time_attr(&key, item, attr::LAST_FAILURE_AT)?,
        records_processed: count_attr(item, attr::RECORDS_PROCESSED),
        records_created: count_attr(item, attr::RECORDS_CREATED),
        records_updated: count_attr(item, attr::RECORDS_UPDATED),
        records_skipped: count_attr(item, attr::RECORDS_SKIPPED),
        records_failed: count_attr(item, attr::RECORDS_FAILED),
    };
    task.last_error = match str_attr(item, attr::LAST_TASK_ERROR) {
        Some(text) => Some(
            serde_json::from_str::<TaskError>(text)
                .map_err(|error| Error::corrupt(&key, format!("`lastTaskError`: {error}")))?,
        ),
        None => None,
    };
    let active = match (
        str_attr(item, attr::ACTIVE_EXECUTION_ID),
        str_attr(item, attr::ACTIVE_SINCE),
    ) {
        (Some(execution_id), since) => Some(ActiveRun {
            execution_id: execution_id.to_owned(),
            since: since.unwrap_or_default().to_owned(),
        }),
        (None, _) => None,
    };
    Ok(TaskState {
        tenant: tenant.clone(),
        key,
        task,
        status_read: item.get(attr::STATUS).cloned(),
        next_run_read: item.get(attr::NEXT_RUN_AT).cloned(),
        doc_version_read: item.get(attr::DOC_VERSION).cloned(),
        active,
    })
}

/// The actions that put a task on the due index at `next`, or take it off.
pub(crate) fn due_actions(
    tenant: &TenantId,
    task_id: &str,
    next: Option<DateTime<Utc>>,
) -> Vec<UpdateAction> {
    match next {
        Some(next) => vec![
            UpdateAction::Set(attr::NEXT_RUN_AT.into(), keys::sortable_time(next).into()),
            UpdateAction::Set(
                GSI1PK.into(),
                keys::due_partition(keys::shard_of(tenant.as_str(), task_id)).into(),
            ),
            UpdateAction::Set(
                GSI1SK.into(),
                keys::due_sort_key(next, tenant.as_str(), task_id).into(),
            ),
        ],
        None => vec![
            UpdateAction::Remove(attr::NEXT_RUN_AT.into()),
            UpdateAction::Remove(GSI1PK.into()),
            UpdateAction::Remove(GSI1SK.into()),
        ],
    }
}

/// Task ids end up in keys (`task#<id>`, `due` sort keys), so they follow the identifier rules
/// of tenant ids.
fn check_task(task: &SyncTask) -> Result<()> {
    task.validate().map_err(Error::InvalidTask)?;
    let at = JsonPath::root();
    let id_ok = !task.id.is_empty()
        && task.id.len() <= 128
        && task
            .id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !id_ok {
        return Err(Error::InvalidTask(at.key("id").invalid(format!(
            "a task id is 1 to 128 letters, digits, `-`, `_` and `.`, got `{}`",
            task.id
        ))));
    }
    match task.tenant_integration_id.as_deref() {
        Some(id) if !id.trim().is_empty() => Ok(()),
        _ => Err(Error::InvalidTask(at.key("tenantIntegrationId").invalid(
            "required: the tenant integration the task syncs through",
        ))),
    }
}

impl SyncService {
    /// Stores a sync task (create or replace), as `hub apply` does. Statistics, the last run
    /// and the busy marker survive a replace. `nextRunAt` is kept when an active task keeps its
    /// schedule, and otherwise computed afresh from now (the interval grid stays anchored at
    /// the task's first creation). Returns the task as stored.
    pub async fn put_task(&self, tenant: &TenantId, task: SyncTask) -> Result<SyncTask> {
        check_task(&task)?;
        for _ in 0..MAX_ATTEMPTS {
            let existing = self.find_task(tenant, &task.id).await?;
            let now = self.ports.clock.now();
            let mut doc = task.clone();
            // What the runtime owns lives in top-level attributes, not in the document.
            doc.next_run_at = None;
            doc.last_run_at = None;
            doc.last_run_status = None;
            doc.stats = SyncStats::default();
            doc.last_error = None;
            doc.created_at = existing
                .as_ref()
                .and_then(|e| e.task.created_at)
                .or(task.created_at)
                .or(Some(now));
            doc.updated_at = Some(now);
            let anchor = doc.created_at.unwrap_or(now);

            let scheduled = doc.status == SyncTaskStatus::Active
                && schedule::is_scheduled(&doc.schedule.config);
            let next = match &existing {
                _ if !scheduled => None,
                Some(e)
                    if e.task.status == SyncTaskStatus::Active
                        && e.task.schedule == doc.schedule
                        && e.task.next_run_at.is_some() =>
                {
                    e.task.next_run_at
                }
                _ => schedule::next_after(&doc.schedule.config, anchor, now).map_err(|source| {
                    Error::Schedule {
                        task_id: doc.id.clone(),
                        source,
                    }
                })?,
            };

            let key = keys::task(tenant.as_str(), &doc.id);
            let mut actions = vec![
                UpdateAction::Set(repo::KIND.into(), kind::TASK.into()),
                UpdateAction::Set(
                    repo::DOC.into(),
                    serde_json::to_string(&doc)
                        .map_err(|error| {
                            Error::Encode(ModelError::Encode {
                                kind: "sync task",
                                message: error.to_string(),
                            })
                        })?
                        .into(),
                ),
                UpdateAction::Set(attr::TASK_ID.into(), doc.id.clone().into()),
                UpdateAction::Set(attr::STATUS.into(), status_str(doc.status).into()),
                UpdateAction::Add(attr::DOC_VERSION.into(), 1),
            ];
            actions.extend(due_actions(tenant, &doc.id, next));
            let condition = match &existing {
                None => Condition::item_absent(),
                Some(e) => unchanged(attr::DOC_VERSION, e.doc_version_read.as_ref())
                    .and(unchanged(attr::STATUS, e.status_read.as_ref()))
                    .and(unchanged(attr::NEXT_RUN_AT, e.next_run_read.as_ref())),
            };
            match self
                .ports
                .state
                .update(&key, actions, Some(condition))
                .await
            {
                Ok(item) => return Ok(read_task(tenant, &item)?.task),
                Err(StoreError::ConditionFailed) => continue,
                Err(error) => return Err(error.into()),
            }
        }
        Err(Error::Contention(format!("sync task `{}`", task.id)))
    }

    pub async fn get_task(&self, tenant: &TenantId, task_id: &str) -> Result<SyncTask> {
        Ok(self.load_task(tenant, task_id).await?.task)
    }

    /// Every sync task of a tenant, by id.
    pub async fn list_tasks(&self, tenant: &TenantId) -> Result<Vec<SyncTask>> {
        let mut tasks = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .ports
                .state
                .query(
                    QueryRequest::partition(
                        Index::Primary,
                        keys::tenant_partition(tenant.as_str()),
                    )
                    .sort(SortCondition::BeginsWith(keys::prefix::TASK.into()))
                    .start_after(start),
                )
                .await?;
            for item in &page.items {
                tasks.push(read_task(tenant, item)?.task);
            }
            start = page.last_evaluated_key;
            if start.is_none() {
                return Ok(tasks);
            }
        }
    }

    /// Stops scheduled runs (a running execution goes on; cancel it separately). Only an
    /// active task can be paused.
    pub async fn pause(&self, tenant: &TenantId, task_id: &str) -> Result<SyncTask> {
        self.change_status(
            tenant,
            task_id,
            SyncTaskStatus::Active,
            SyncTaskStatus::Paused,
        )
        .await
    }

    /// Re-activates a paused task. Its next run is the first occurrence after now: what was
    /// missed while paused does not run.
    pub async fn resume(&self, tenant: &TenantId, task_id: &str) -> Result<SyncTask> {
        self.change_status(
            tenant,
            task_id,
            SyncTaskStatus::Paused,
            SyncTaskStatus::Active,
        )
        .await
    }

    async fn change_status(
        &self,
        tenant: &TenantId,
        task_id: &str,
        from: SyncTaskStatus,
        to: SyncTaskStatus,
    ) -> Result<SyncTask> {
        let state = self.load_task(tenant, task_id).await?;
        let wrong_state = |status: SyncTaskStatus| {
            Error::InvalidState(format!(
                "sync task `{task_id}` is {}; only a {} task can be {}",
                status_str(status),
                status_str(from),
                match to {
                    SyncTaskStatus::Paused => "paused",
                    _ => "resumed",
                }
            ))
        };
        if state.task.status != from {
            return Err(wrong_state(state.task.status));
        }
        let now = self.ports.clock.now();
        let next = if to == SyncTaskStatus::Active
            && schedule::is_scheduled(&state.task.schedule.config)
        {
            schedule::next_after(&state.task.schedule.config, state.anchor(), now).map_err(
                |source| Error::Schedule {
                    task_id: task_id.to_owned(),
                    source,
                },
            )?
        } else {
            None
        };
        let mut actions = vec![UpdateAction::Set(
            attr::STATUS.into(),
            status_str(to).into(),
        )];
        actions.extend(due_actions(tenant, task_id, next));
        let condition =
            Condition::item_present().and(Condition::eq(attr::STATUS, status_str(from)));
        match self
            .ports
            .state
            .update(&state.key, actions, Some(condition))
            .await
        {
            Ok(item) => Ok(read_task(tenant, &item)?.task),
            Err(StoreError::ConditionFailed) => {
                let now_state = self.load_task(tenant, task_id).await?;
                Err(wrong_state(now_state.task.status))
            }
            Err(error) => Err(error.into()),
        }
    }

    /// The task, or `task_not_found`.
    pub(crate) async fn load_task(&self, tenant: &TenantId, task_id: &str) -> Result<TaskState> {
        self.find_task(tenant, task_id)
            .await?
            .ok_or_else(|| Error::TaskNotFound {
                tenant: tenant.to_string(),
                task_id: task_id.to_owned(),
            })
    }

    pub(crate) async fn find_task(
        &self,
        tenant: &TenantId,
        task_id: &str,
    ) -> Result<Option<TaskState>> {
        match self
            .ports
            .state
            .get(&keys::task(tenant.as_str(), task_id))
            .await?
        {
            Some(item) => Ok(Some(read_task(tenant, &item)?)),
            None => Ok(None),
        }
    }
}
