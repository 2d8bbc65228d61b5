//! Dead letters of a run: a fetch job, record batch or write batch whose last allowed delivery
//! failed is counted on its run (step 5 of the run protocol), so the run still ends.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use hub_core::keys;
use hub_core::messages::{Envelope, RecordBatch, SyncJob, WriteBatch};
use hub_core::model::{SyncError, TenantId};
use hub_core::ports::{
    Condition, Key, MAX_RECEIVE_COUNT, Ports, QueueRole, TransactOp, UpdateAction,
};
use hub_runtime::{DeadLetterSink, FailureNote, FailureNotes};
use hub_sync::attr as exec_attr;
use serde_json::json;

use crate::run::{Completion, Counted};
use crate::{Result, Writer, WriterConfig, kind};

/// The error code a dead letter is recorded with on its execution.
pub const DEAD_LETTER_CODE: &str = "dead_lettered";

/// What a dead message was to its run.
#[derive(Debug, Clone, PartialEq, Eq)]
enum DeadPart {
    /// Page `page`'s fetch job: the run fetches nothing after it.
    Page { page: u32 },
    /// A record batch (transform queue) or write batch (write queue) with this source key.
    Batch { source_key: String, page: u32 },
}

/// A dead message of a run, read from its body.
#[derive(Debug, Clone, PartialEq, Eq)]
struct DeadLetter {
    tenant: TenantId,
    execution_id: String,
    part: DeadPart,
}

impl DeadLetter {
    /// `None` for what belongs to no run (a webhook batch, a bus envelope) or does not parse
    /// as the queue's envelope (its failure note says why).
    fn of(queue: &str, body: &str) -> Option<Self> {
        if queue == QueueRole::Fetch.logical_name() {
            let job = SyncJob::from_json(body).ok()?;
            return Some(Self {
                tenant: job.tenant_id,
                execution_id: job.execution_id,
                part: DeadPart::Page { page: job.page },
            });
        }
        let (tenant, execution_id, source) = if queue == QueueRole::Transform.logical_name() {
            let batch = RecordBatch::from_json(body).ok()?;
            (batch.tenant_id, batch.execution_id?, batch.source)
        } else if queue == QueueRole::Write.logical_name() {
            let batch = WriteBatch::from_json(body).ok()?;
            let source = batch
                .source
                .or_else(|| batch.items.first().map(|item| item.lineage.source.clone()))?;
            (batch.tenant_id, batch.execution_id?, source)
        } else {
            return None;
        };
        let page = match &source {
            hub_core::messages::BatchSource::Poll(poll) => poll.page,
            hub_core::messages::BatchSource::Webhook(_) => 0,
        };
        Some(Self {
            tenant,
            execution_id,
            part: DeadPart::Batch {
                source_key: source.key(),
                page,
            },
        })
    }

    fn marker_key(&self) -> Key {
        match &self.part {
            DeadPart::Page { page } => keys::pipeline_dead_page(&self.execution_id, *page),
            DeadPart::Batch { source_key, .. } => {
                keys::pipeline_dead_batch(&self.execution_id, source_key)
            }
        }
    }
}

/// The phase of the run a queue's messages belong to (the execution error's `phase`).
fn phase_of(queue: &str) -> &'static str {
    if queue == QueueRole::Fetch.logical_name() {
        "fetching"
    } else if queue == QueueRole::Transform.logical_name() {
        "transforming"
    } else {
        "saving"
    }
}

impl Writer {
    /// Counts a message whose last allowed delivery failed on its run, once however often it
    /// is told: a record or write batch in `batchesDead` (unless it was written after all, by
    /// a duplicate delivery), a fetch job by ending the run's fetch (`fetchComplete`). The
    /// error goes on the execution first, naming the queue, the message and the reason, so a
    /// run that can now complete never counts as a success and never moves its cursor. Then
    /// the run completes if nothing else is outstanding. `None` when the message belongs to no
    /// run.
    pub async fn record_dead_letter(
        &self,
        note: &FailureNote,
        body: &str,
    ) -> Result<Option<Completion>> {
        let Some(dead) = DeadLetter::of(&note.queue, body) else {
            return Ok(None);
        };
        let (tenant, execution_id) = (&dead.tenant, dead.execution_id.as_str());
        let marker_key = dead.marker_key();
        // Counted before, or written by a duplicate delivery (nothing of the run is lost): the
        // run is someone else's to complete. Only a count made here completes it from here, and
        // then never as a success, so no function that notes dead letters ever commits a
        // cursor or sweeps records.
        if self.ports.state.get(&marker_key).await?.is_some() {
            return Ok(None);
        }
        if let DeadPart::Batch { source_key, .. } = &dead.part
            && self
                .ports
                .state
                .get(&keys::pipeline_batch(execution_id, source_key))
                .await?
                .is_some()
        {
            return Ok(None);
        }
        self.sync
            .append_error(tenant, execution_id, dead_letter_error(note, &dead, self))
            .await?;
        let mut marker = self.marker(&marker_key, kind::DEAD_MARKER);
        marker.insert("queue".into(), note.queue.clone().into());
        marker.insert("messageId".into(), note.message_id.clone().into());
        let mut ops = vec![TransactOp::Put {
            item: marker,
            condition: Some(Condition::item_absent()),
        }];
        let execution_update = match &dead.part {
            DeadPart::Page { .. } => vec![UpdateAction::Set(
                exec_attr::FETCH_COMPLETE.into(),
                true.into(),
            )],
            DeadPart::Batch { .. } => {
                vec![UpdateAction::Add(exec_attr::BATCHES_DEAD.into(), 1)]
            }
        };
        ops.push(TransactOp::Update {
            key: keys::execution(tenant.as_str(), execution_id),
            actions: execution_update,
            condition: Some(Condition::item_present()),
        });
        if let DeadPart::Batch { source_key, .. } = &dead.part {
            ops.push(TransactOp::Check {
                key: keys::pipeline_batch(execution_id, source_key),
                condition: Condition::item_absent(),
            });
        }
        let deadline = Instant::now() + self.config.retry_deadline;
        match self
            .transact_counted(tenant, execution_id, ops, deadline)
            .await?
        {
            Counted::Applied => {
                tracing::warn!(
                    tenant = %tenant,
                    execution = execution_id,
                    queue = %note.queue,
                    message_id = %note.message_id,
                    code = %note.code,
                    "a message of the run reached its dead-letter queue; counted on the run"
                );
                Ok(Some(self.complete_if_done(tenant, execution_id).await?))
            }
            // Counted meanwhile, or written meanwhile by a duplicate delivery.
            Counted::MarkerExisted | Counted::CheckFailed => Ok(None),
        }
    }
}

fn dead_letter_error(note: &FailureNote, dead: &DeadLetter, writer: &Writer) -> SyncError {
    let what = match &dead.part {
        DeadPart::Page { page } => format!("the fetch job of page {page}"),
        DeadPart::Batch { page, .. } => format!("a batch of page {page}"),
    };
    let (dlq, source_queue) = (format!("{}-dlq", note.queue), note.queue.as_str());
    SyncError {
        timestamp: writer.ports.clock.now(),
        phase: phase_of(source_queue).into(),
        record_id: None,
        external_id: None,
        error: format!(
            "{what} failed its last delivery ({} of {}) and goes to {dlq} ({}: {}); message \
             {}. Replay it with `hub dlq replay --queue {source_queue} --execution {}`",
            note.receive_count,
            MAX_RECEIVE_COUNT,
            note.code,
            note.message,
            note.message_id,
            dead.execution_id
        ),
        details: Some(json!({
            "code": DEAD_LETTER_CODE,
            "queue": dlq,
            "messageId": note.message_id,
            "reason": note.code,
            "retryable": note.retryable,
            "receiveCount": note.receive_count,
        })),
        recoverable: true,
    }
}

/// The [`DeadLetterSink`] every queue function's failure notes tell: counts dead messages on
/// their runs ([`Writer::record_dead_letter`]).
#[derive(Debug, Clone)]
pub struct RunDeadLetters {
    writer: Writer,
}

impl RunDeadLetters {
    pub fn new(writer: Writer) -> Self {
        Self { writer }
    }
}

#[async_trait]
impl DeadLetterSink for RunDeadLetters {
    async fn dead_lettered(&self, note: &FailureNote, body: &str) {
        match self.writer.record_dead_letter(note, body).await {
            Ok(completion) => {
                if let Some(completion) = completion {
                    tracing::info!(
                        queue = %note.queue,
                        message_id = %note.message_id,
                        ?completion,
                        "dead letter counted on its run"
                    );
                }
            }
            Err(error) => tracing::error!(
                queue = %note.queue,
                message_id = %note.message_id,
                code = error.code(),
                "could not count a dead letter on its run; the run may stay running until \
                 cancelled: {error}"
            ),
        }
    }
}

/// The failure notes of `role`'s queue that count the dead letters of runs: what the fetcher,
/// transformer and writer functions hand the batch driver on Lambda (the local host builds the
/// same with its own writer configuration).
pub fn run_failure_notes(ports: &Ports, role: QueueRole) -> FailureNotes {
    let writer = Writer::with_config(ports.clone(), WriterConfig::from_env());
    FailureNotes::for_queue(ports, role.logical_name())
        .with_dead_letters(Arc::new(RunDeadLetters::new(writer)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_messages_of_a_run_are_dead_letters_of_one() {
        let job = r#"{"v":1,"executionId":"E1","tenantId":"acme","taskId":"t","attempt":1,
            "triggeredBy":"schedule","page":3,"pageToken":null,
            "cursorWindow":{"from":null,"to":null}}"#;
        let dead = DeadLetter::of("fetch", job).expect("a fetch job of a run");
        assert_eq!(dead.execution_id, "E1");
        assert_eq!(dead.part, DeadPart::Page { page: 3 });
        assert_eq!(dead.marker_key(), keys::pipeline_dead_page("E1", 3));
        assert_eq!(DeadLetter::of("transform", "{not json"), None);
        assert_eq!(DeadLetter::of("write", job), None);
        assert_eq!(DeadLetter::of("elsewhere", job), None);
    }
}
