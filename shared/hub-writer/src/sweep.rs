//! `deleteIfRemoved`: after a full run that succeeded, remove the records of its tenant
//! integration and entity type that the run did not see (rule in the crate documentation).

use std::time::Instant;

use hub_core::keys::{self, records};
use hub_core::model::{DeleteMode, TenantId};
use hub_core::ports::{
    CmpOp, Condition, GSI1PK, GSI1SK, Index, Item, Key, QueryRequest, TransactOp, UpdateAction,
};
use hub_sync::ExecutionRecord;
use serde_json::Value;

use crate::apply::{Outcome, apply_all};
use crate::record::str_attr;
use crate::{Result, Writer, WriterError, attr};

pub(crate) enum SweepProgress {
    /// Nothing (more) to remove; `removed` over every invocation.
    Done { removed: u64 },
    /// The budget ran out; the position is saved on the execution.
    Paused { removed: u64 },
}

impl Writer {
    /// Runs (or resumes) the sweep of a claimed, successful run until done or `budget`.
    pub(crate) async fn sweep(
        &self,
        tenant: &TenantId,
        record: &ExecutionRecord,
        claimed: &Item,
        budget: Instant,
    ) -> Result<SweepProgress> {
        let execution_id = record.id();
        let exec_key = keys::execution(tenant.as_str(), execution_id);
        let mut removed = claimed
            .get(attr::SWEPT)
            .and_then(Value::as_u64)
            .unwrap_or(0);
        let (Some(entity_type), Some(tenant_integration)) = (
            str_attr(claimed, attr::SWEEP_ENTITY_TYPE),
            str_attr(claimed, attr::SWEEP_TENANT_INTEGRATION_ID),
        ) else {
            return Ok(SweepProgress::Done { removed });
        };
        let mode: DeleteMode = match claimed.get(attr::SWEEP_MODE) {
            Some(value) => serde_json::from_value(value.clone())
                .map_err(|e| WriterError::corrupt(&exec_key, format!("`sweepMode`: {e}")))?,
            None => DeleteMode::Soft,
        };
        // An incremental run sees only what changed: removing what it did not see would empty
        // the table. The transformer should not have asked; refuse anyway.
        match self.sync.get_task(tenant, record.task_id()).await {
            Ok(task) if !task.config.incremental_sync() => {}
            Ok(_) => {
                tracing::warn!(
                    execution = execution_id,
                    "deleteIfRemoved asked for by an incremental run; nothing removed"
                );
                return Ok(SweepProgress::Done { removed });
            }
            Err(hub_sync::Error::TaskNotFound { .. }) => {
                tracing::warn!(
                    execution = execution_id,
                    "the run's task is gone; deleteIfRemoved removes nothing"
                );
                return Ok(SweepProgress::Done { removed });
            }
            Err(error) => return Err(error.into()),
        }

        let started = keys::sortable_time(record.execution.started_at);
        let not_seen = Condition::eq(attr::TENANT_INTEGRATION_ID, tenant_integration)
            .and(Condition::cmp(attr::DELETED, CmpOp::Ne, true))
            .and(Condition::cmp(
                attr::LAST_SEEN_EXECUTION,
                CmpOp::Ne,
                execution_id,
            ))
            .and(Condition::cmp(attr::LAST_SEEN_AT, CmpOp::Lt, started));
        let mut position: Option<Item> =
            match str_attr(claimed, attr::SWEEP_POSITION) {
                Some(text) => Some(serde_json::from_str(text).map_err(|e| {
                    WriterError::corrupt(&exec_key, format!("`sweepPosition`: {e}"))
                })?),
                None => None,
            };
        let now = keys::sortable_time(self.ports.clock.now());
        loop {
            let page = self
                .ports
                .records
                .query(
                    QueryRequest::partition(
                        Index::Primary,
                        records::partition(tenant.as_str(), entity_type),
                    )
                    .filter(not_seen.clone())
                    .limit(self.config.sweep_page_size)
                    .start_after(position.clone()),
                )
                .await?;
            let ops = page
                .items
                .iter()
                .map(|item| {
                    let key = Key::of(item)?;
                    let condition = Some(Condition::item_present().and(not_seen.clone()));
                    Ok(match mode {
                        DeleteMode::Soft => TransactOp::Update {
                            key,
                            actions: vec![
                                UpdateAction::Set(attr::DELETED.into(), true.into()),
                                UpdateAction::Set(attr::DELETED_AT.into(), now.clone().into()),
                                UpdateAction::Set(
                                    attr::DELETED_BY_EXECUTION.into(),
                                    execution_id.into(),
                                ),
                                UpdateAction::Add(attr::VERSION.into(), 1),
                                UpdateAction::Remove(GSI1PK.into()),
                                UpdateAction::Remove(GSI1SK.into()),
                            ],
                            condition,
                        },
                        DeleteMode::Hard => TransactOp::Delete { key, condition },
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            let deadline = Instant::now() + self.config.retry_deadline;
            let outcomes =
                apply_all(self.ports.records.as_ref(), ops, &self.config, deadline).await?;
            let done = outcomes.iter().filter(|o| **o == Outcome::Done).count() as u64;
            removed += done;
            position = page.last_evaluated_key;

            let mut actions = vec![UpdateAction::Add(
                attr::SWEPT.into(),
                i64::try_from(done).unwrap_or(i64::MAX),
            )];
            match &position {
                Some(key) => actions.push(UpdateAction::Set(
                    attr::SWEEP_POSITION.into(),
                    Value::Object(key.clone()).to_string().into(),
                )),
                None => actions.push(UpdateAction::Remove(attr::SWEEP_POSITION.into())),
            }
            self.ports
                .state
                .update(&exec_key, actions, Some(Condition::item_present()))
                .await?;
            if position.is_none() {
                if removed > 0 {
                    let message = format!(
                        "deleteIfRemoved: {removed} {entity_type} records of {tenant_integration} \
                         were not in this full sync and were {}",
                        match mode {
                            DeleteMode::Soft => "flagged deleted",
                            DeleteMode::Hard => "deleted",
                        }
                    );
                    self.sync
                        .append_log(
                            execution_id,
                            hub_core::model::LogLevel::Info,
                            &message,
                            None,
                        )
                        .await?;
                }
                return Ok(SweepProgress::Done { removed });
            }
            if Instant::now() >= budget {
                return Ok(SweepProgress::Paused { removed });
            }
        }
    }
}
