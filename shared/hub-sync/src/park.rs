//! Parking a run whose source asked for a longer wait than a queue delay can hold (SQS delays
//! stop at 15 minutes).
//!
//! The job goes into the outbox, leased until the resume time. The tick redelivers every outbox
//! entry whose lease has run out (see [`crate::outbox`]), so the first tick after `resumeAt`
//! sends the job to the fetch queue: no timer, no sleeping function, and the same crash safety
//! as the first job of a run.

use chrono::{DateTime, Utc};
use hub_core::keys;
use hub_core::messages::SyncJob;
use hub_core::ports::{Condition, QueueRole, StoreError, TransactOp, UpdateAction};

use crate::execution::execution_status_str;
use crate::outbox::{Effect, Entry};
use crate::{Error, Result, SyncService, attr};

impl SyncService {
    /// Parks the job's running execution until `resume_at`: stores the job in the outbox for the
    /// tick to send after that time and sets the execution's `resumeAt`, in one transaction.
    /// `invalid_state` once the execution has ended (a cancelled run is not resumed).
    pub async fn park_job(&self, job: &SyncJob, resume_at: DateTime<Utc>) -> Result<()> {
        let tenant = &job.tenant_id;
        let shard = keys::shard_of(tenant.as_str(), &job.task_id);
        let entry = Entry::new(
            &self.ports,
            shard,
            Effect::message(QueueRole::Fetch.logical_name(), job)?,
        );
        let ops = vec![
            TransactOp::Update {
                key: keys::execution(tenant.as_str(), &job.execution_id),
                actions: vec![UpdateAction::Set(
                    attr::RESUME_AT.into(),
                    keys::sortable_time(resume_at).into(),
                )],
                condition: Some(
                    Condition::item_present().and(Condition::eq(attr::STATUS, "running")),
                ),
            },
            entry.put_op(&job.execution_id, resume_at)?,
        ];
        match self.ports.state.transact_write(ops).await {
            Ok(()) => {
                tracing::info!(
                    tenant = %tenant,
                    execution = %job.execution_id,
                    page = job.page,
                    resume_at = %keys::sortable_time(resume_at),
                    "run parked"
                );
                Ok(())
            }
            Err(StoreError::TransactionCanceled { .. }) => {
                let record = self.load_execution(tenant, &job.execution_id).await?;
                if record.is_running() {
                    Err(Error::Contention(format!(
                        "execution `{}`",
                        job.execution_id
                    )))
                } else {
                    Err(Error::InvalidState(format!(
                        "execution `{}` has ended {}; it cannot be parked",
                        job.execution_id,
                        execution_status_str(record.execution.status)
                    )))
                }
            }
            Err(error) => Err(error.into()),
        }
    }
}
