//! The run protocol (see the crate documentation): counting pages and batches once, raising the
//! run's cursor candidate, and completing the run exactly once.

use std::collections::BTreeSet;
use std::time::Instant;

use hub_core::keys;
use hub_core::messages::{BatchSource, Envelope, RecordError, V1, WriteBatch};
use hub_core::model::{ExecutionStatus, RunStatus, SyncError, TenantId};
use hub_core::ports::{
    CancelReason, CmpOp, Condition, EXPIRES_AT, Item, Key, OutgoingMessage, PK, QueueRole, SK,
    StoreError, TransactOp, UpdateAction,
};
use hub_sync::attr as exec_attr;
use serde_json::{Value, json};
use tracing::Instrument;

use crate::apply::backoff;
use crate::record::str_attr;
use crate::sweep::SweepProgress;
use crate::upsert::{BatchReport, Context, RecordFailure, unchanged, write_items};
use crate::{Result, Writer, WriterError, attr, kind};

/// How often a conditional write that lost a race re-reads and tries again.
const MAX_ATTEMPTS: usize = 5;

/// What the fetcher reports for one page, before it sends the page's record batches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageEnqueued {
    /// The page's number within the run (`SyncJob::page`).
    pub page: u32,
    /// How many `RecordBatch`es (parts) the fetcher is about to send for this page; 0 for a
    /// page without records.
    pub batches: u32,
    /// The page's cursor candidate (`RecordBatch::cursor_candidate`), in the connector's
    /// normalised form.
    pub cursor_candidate: Option<String>,
    /// No page follows this one.
    pub last_page: bool,
}

/// What [`Writer::record_page_enqueued`] recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRecorded {
    /// The number of batches this page counts for. On a redelivered fetch job it is the count
    /// the first delivery recorded: the fetcher must then send exactly that many parts (split
    /// the page into that many, empty parts allowed), with the same source keys.
    pub batches: u32,
    /// The page had been recorded before (a redelivery): nothing was counted now.
    pub already_recorded: bool,
    pub completion: Completion,
}

/// What a completion check found or did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Completion {
    /// The fetch goes on, or batches are still outstanding.
    Pending {
        batches_enqueued: u64,
        batches_written: u64,
        /// Batches that reached a dead-letter queue (and count as accounted for).
        batches_dead: u64,
        fetch_complete: bool,
    },
    /// The execution had already ended (completed, failed or cancelled).
    AlreadyEnded(ExecutionStatus),
    /// Another caller holds the completion claim and is ending the run.
    ClaimedElsewhere,
    /// This caller ended the run.
    Finished {
        status: RunStatus,
        /// The cursor this run committed, when it moved it.
        cursor_committed: Option<String>,
        /// Records `deleteIfRemoved` removed (over every invocation of the sweep).
        removed: u64,
    },
    /// The `deleteIfRemoved` sweep ran out of time; a continuation message carries on.
    Continued { removed: u64 },
}

/// A key under which cursors compare in text order the way their values do: integers (the
/// normalised form of integer and epoch cursors) by value, whatever their lengths, and anything
/// else (RFC 3339 times in the normalised form, which sort as text; opaque strings) as text
/// after every integer. One task's cursors are all of one kind, so only like is compared.
pub fn cursor_order_key(cursor: &str) -> String {
    let (negative, digits) = match cursor.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, cursor),
    };
    let numeric =
        !digits.is_empty() && digits.len() <= 9999 && digits.bytes().all(|b| b.is_ascii_digit());
    if !numeric {
        return format!("2{cursor}");
    }
    let significant = digits.trim_start_matches('0');
    let significant = if significant.is_empty() {
        "0"
    } else {
        significant
    };
    if !negative || significant == "0" {
        format!("1{:04}{significant}", significant.len())
    } else {
        // Longer negatives are smaller; of equal length, larger digits are smaller.
        let complement: String = significant
            .bytes()
            .map(|b| char::from(b'9' - (b - b'0')))
            .collect();
        format!("0{:04}{complement}", 9999 - significant.len())
    }
}

/// What a counting transaction found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Counted {
    Applied,
    /// Its marker existed: counted before.
    MarkerExisted,
    /// A check after the execution update failed.
    CheckFailed,
}

/// How a write batch names itself as the claimant of its run's completion: by its source, which
/// every delivery of the same message shares.
fn batch_claimant(source_key: &str) -> String {
    format!("batch#{source_key}")
}

impl Writer {
    /// The writer function: writes one batch, counts it once for its run, and completes the run
    /// when it was the last. See the crate documentation for the rules.
    pub async fn write_batch(&self, batch: &WriteBatch) -> Result<BatchReport> {
        let started = Instant::now();
        let deadline = started + self.config.retry_deadline;
        validate(batch)?;
        let tenant = &batch.tenant_id;
        let source = batch
            .source
            .clone()
            .or_else(|| batch.items.first().map(|item| item.lineage.source.clone()));
        let source_key = source.as_ref().map(BatchSource::key);
        let execution = batch.execution_id.as_deref();
        if let (Some(execution), Some(source_key)) = (execution, &source_key) {
            let marker = keys::pipeline_batch(execution, source_key);
            if self.ports.state.get(&marker).await?.is_some() {
                let claimant = batch_claimant(source_key);
                let completion = self
                    .complete_if_done_with(tenant, execution, Some(batch), Some(&claimant))
                    .await?;
                return Ok(BatchReport {
                    already_counted: true,
                    completion: Some(completion),
                    ..BatchReport::default()
                });
            }
        }

        let target = batch.target.unwrap_or_default();
        let write_id = format!(
            "{}#{}",
            execution.unwrap_or("-"),
            source_key.as_deref().unwrap_or("-")
        );
        let context = Context {
            batch,
            target,
            write_id: &write_id,
            mark_seen: target.delete_if_removed && execution.is_some(),
            now: self.ports.clock.now(),
        };
        let counts = write_items(
            self.ports.records.as_ref(),
            &context,
            &self.config,
            deadline,
        )
        .await?;
        let mapping_failed = batch
            .errors
            .iter()
            .map(|error| error.record_index)
            .collect::<BTreeSet<_>>()
            .len() as u64;
        let mut report = BatchReport {
            created: counts.created,
            updated: counts.updated,
            skipped: counts.skipped,
            failed: counts.failures.len() as u64 + mapping_failed,
            failures: counts.failures,
            ..BatchReport::default()
        };

        let Some(execution) = execution else {
            for failure in &report.failures {
                tracing::warn!(
                    code = failure.code,
                    external_id = %failure.external_id,
                    record_id = %failure.record_id,
                    "record of a webhook batch not saved: {}",
                    failure.message
                );
            }
            for error in &batch.errors {
                tracing::warn!(
                    code = %error.code,
                    external_id = ?error.external_id,
                    "record of a webhook batch not mapped: {}",
                    error.message
                );
            }
            return Ok(report);
        };
        let source_key = source_key.ok_or_else(|| {
            WriterError::InvalidBatch(
                "a batch of a run needs `source` (or at least one item) to be counted by".into(),
            )
        })?;
        self.record_errors(tenant, execution, &report.failures, &batch.errors)
            .await?;
        if let Some(commit) = &batch.cursor_commit {
            self.raise_cursor_candidate(tenant, execution, &commit.cursor)
                .await?;
        }
        let counted = self
            .count_batch(
                batch,
                execution,
                &source_key,
                source.as_ref(),
                &report,
                deadline,
            )
            .await?;
        report.already_counted = !counted;
        let claimant = batch_claimant(&source_key);
        report.completion = Some(
            self.complete_if_done_with(tenant, execution, Some(batch), Some(&claimant))
                .await?,
        );
        Ok(report)
    }

    /// The fetcher's call for each page, before it sends the page's record batches (step 1 of
    /// the run protocol). Idempotent: a redelivered fetch job counts nothing twice, and learns
    /// how many batches the page was counted for.
    pub async fn record_page_enqueued(
        &self,
        tenant: &TenantId,
        execution_id: &str,
        page: PageEnqueued,
    ) -> Result<PageRecorded> {
        let marker_key = keys::pipeline_page(execution_id, page.page);
        let mut marker = self.marker(&marker_key, kind::PAGE_MARKER);
        marker.insert("batches".into(), page.batches.into());
        marker.insert("lastPage".into(), page.last_page.into());
        if let Some(candidate) = &page.cursor_candidate {
            marker.insert(attr::CURSOR_CANDIDATE.into(), candidate.clone().into());
        }
        let mut actions = vec![UpdateAction::Add(
            exec_attr::BATCHES_ENQUEUED.into(),
            i64::from(page.batches),
        )];
        if page.last_page {
            actions.push(UpdateAction::Set(
                exec_attr::FETCH_COMPLETE.into(),
                true.into(),
            ));
        }
        let ops = vec![
            TransactOp::Put {
                item: marker,
                condition: Some(Condition::item_absent()),
            },
            TransactOp::Update {
                key: keys::execution(tenant.as_str(), execution_id),
                actions,
                condition: Some(Condition::item_present()),
            },
        ];
        let deadline = Instant::now() + self.config.retry_deadline;
        let first_time = self
            .transact_counted(tenant, execution_id, ops, deadline)
            .await?
            == Counted::Applied;
        let (batches, candidate) = if first_time {
            (page.batches, page.cursor_candidate.clone())
        } else {
            // The first delivery's count and candidate hold, whatever this one fetched.
            let stored = self.ports.state.get(&marker_key).await?.ok_or_else(|| {
                WriterError::corrupt(&marker_key, "the page marker vanished after it was seen")
            })?;
            let batches = stored
                .get("batches")
                .and_then(Value::as_u64)
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| WriterError::corrupt(&marker_key, "no batch count"))?;
            let candidate = str_attr(&stored, attr::CURSOR_CANDIDATE).map(str::to_owned);
            (batches, candidate)
        };
        if let Some(candidate) = &candidate {
            self.raise_cursor_candidate(tenant, execution_id, candidate)
                .await?;
        }
        let claimant = format!("page#{}", page.page);
        let completion = self
            .complete_if_done_with(tenant, execution_id, None, Some(&claimant))
            .await?;
        Ok(PageRecorded {
            batches,
            already_recorded: !first_time,
            completion,
        })
    }

    /// Ends the run if every page is fetched and every batch written (step 4 of the run
    /// protocol). Safe to call any number of times from anywhere: the run ends once.
    pub async fn complete_if_done(
        &self,
        tenant: &TenantId,
        execution_id: &str,
    ) -> Result<Completion> {
        self.complete_if_done_with(tenant, execution_id, None, None)
            .await
    }

    /// `claimant` names the message calling (a write batch or a fetched page), if any: a claim
    /// it made on an earlier delivery is taken over rather than waited for.
    async fn complete_if_done_with(
        &self,
        tenant: &TenantId,
        execution_id: &str,
        batch: Option<&WriteBatch>,
        claimant: Option<&str>,
    ) -> Result<Completion> {
        let key = keys::execution(tenant.as_str(), execution_id);
        for _ in 0..MAX_ATTEMPTS {
            let item = self.execution_item(tenant, execution_id).await?;
            let status = str_attr(&item, exec_attr::STATUS).unwrap_or("running");
            if status != "running" {
                let status = serde_json::from_value(Value::from(status)).map_err(|e| {
                    WriterError::corrupt(&key, format!("`{}`: {e}", exec_attr::STATUS))
                })?;
                return Ok(Completion::AlreadyEnded(status));
            }
            let enqueued = item.get(exec_attr::BATCHES_ENQUEUED).cloned();
            let written = item.get(exec_attr::BATCHES_WRITTEN).cloned();
            let dead = item.get(exec_attr::BATCHES_DEAD).cloned();
            let count = |v: &Option<Value>| v.as_ref().and_then(Value::as_u64).unwrap_or(0);
            let fetch_complete =
                item.get(exec_attr::FETCH_COMPLETE).and_then(Value::as_bool) == Some(true);
            // Every batch is accounted for once it is written or dead.
            let accounted = count(&written) + count(&dead);
            if !fetch_complete || accounted != count(&enqueued) {
                if accounted > count(&enqueued) && fetch_complete {
                    tracing::warn!(
                        execution = execution_id,
                        enqueued = count(&enqueued),
                        written = count(&written),
                        dead = count(&dead),
                        "more batches written or dead than enqueued: the fetcher sent batches it \
                         did not count; the run cannot complete"
                    );
                }
                return Ok(Completion::Pending {
                    batches_enqueued: count(&enqueued),
                    batches_written: count(&written),
                    batches_dead: count(&dead),
                    fetch_complete,
                });
            }
            let now_ms = self.ports.clock.now().timestamp_millis();
            let lease = item.get(attr::COMPLETION_LEASE_UNTIL).cloned();
            let lease_live = lease
                .as_ref()
                .and_then(Value::as_i64)
                .is_some_and(|until| until > now_ms);
            // A message comes back only once its delivery is over (a Lambda function times
            // out well within the queue's visibility timeout), so a live claim made by this
            // same message is a delivery that died or failed after claiming. Every other
            // caller leaves the run to the claimant: waiting for the lease would leave it to
            // nobody whenever the message returns before the lease runs out (the local host
            // returns the messages of a batch cut short at shutdown at once). Were the earlier
            // delivery alive after all, the two would complete together, which every step
            // tolerates: each write is conditional and the run ends once.
            let own_claim =
                claimant.is_some() && str_attr(&item, attr::COMPLETION_CLAIMANT) == claimant;
            if lease_live && !own_claim {
                return Ok(Completion::ClaimedElsewhere);
            }
            let lease_ms =
                i64::try_from(self.config.completion_lease.as_millis()).unwrap_or(i64::MAX);
            let until = now_ms.saturating_add(lease_ms);
            let claim = Condition::eq(exec_attr::STATUS, "running")
                .and(Condition::eq(exec_attr::FETCH_COMPLETE, true))
                .and(unchanged(exec_attr::BATCHES_ENQUEUED, enqueued.as_ref()))
                .and(unchanged(exec_attr::BATCHES_WRITTEN, written.as_ref()))
                .and(unchanged(exec_attr::BATCHES_DEAD, dead.as_ref()))
                .and(unchanged(attr::COMPLETION_LEASE_UNTIL, lease.as_ref()));
            match self
                .ports
                .state
                .update(
                    &key,
                    vec![
                        UpdateAction::Set(attr::COMPLETION_LEASE_UNTIL.into(), until.into()),
                        match claimant {
                            Some(claimant) => {
                                UpdateAction::Set(attr::COMPLETION_CLAIMANT.into(), claimant.into())
                            }
                            None => UpdateAction::Remove(attr::COMPLETION_CLAIMANT.into()),
                        },
                    ],
                    Some(claim),
                )
                .await
            {
                Ok(claimed) => {
                    let span = tracing::info_span!("complete_run", tenant = %tenant, execution = execution_id);
                    return self
                        .complete_claimed(tenant, execution_id, claimed, until, batch)
                        .instrument(span)
                        .await;
                }
                // Another caller claimed it, or a count moved: decide again on a fresh read.
                Err(StoreError::ConditionFailed) => continue,
                Err(error) => return Err(error.into()),
            }
        }
        Err(WriterError::Contention {
            record_id: format!("execution {execution_id}"),
        })
    }

    async fn complete_claimed(
        &self,
        tenant: &TenantId,
        execution_id: &str,
        claimed: Item,
        lease_until: i64,
        batch: Option<&WriteBatch>,
    ) -> Result<Completion> {
        let budget = Instant::now() + self.config.completion_budget;
        let record = self.sync.get_execution(tenant, execution_id).await?;
        let status = hub_sync::outcome_of(&record);
        let mut cursor_committed = None;
        let mut removed = 0;
        if status == RunStatus::Success {
            if let Some(candidate) = str_attr(&claimed, attr::CURSOR_CANDIDATE) {
                cursor_committed = self
                    .commit_cursor(tenant, record.task_id(), execution_id, candidate)
                    .await?;
            }
            match self.sweep(tenant, &record, &claimed, budget).await? {
                SweepProgress::Done { removed: total } => removed = total,
                SweepProgress::Paused { removed: total } => {
                    self.continue_later(tenant, execution_id, &claimed, lease_until, batch)
                        .await?;
                    return Ok(Completion::Continued { removed: total });
                }
            }
        }
        match self.sync.finish(tenant, execution_id, status).await? {
            Some(_) => {
                tracing::info!(
                    tenant = %tenant,
                    execution = execution_id,
                    status = ?status,
                    cursor = ?cursor_committed,
                    removed,
                    "run complete"
                );
                Ok(Completion::Finished {
                    status,
                    cursor_committed,
                    removed,
                })
            }
            None => {
                let ended = self.sync.get_execution(tenant, execution_id).await?;
                Ok(Completion::AlreadyEnded(ended.execution.status))
            }
        }
    }

    /// Hands the rest of a sweep to a continuation: releases the claim, then sends a batch
    /// without items whose source was already counted, so processing it only completes.
    async fn continue_later(
        &self,
        tenant: &TenantId,
        execution_id: &str,
        claimed: &Item,
        lease_until: i64,
        batch: Option<&WriteBatch>,
    ) -> Result<()> {
        let key = keys::execution(tenant.as_str(), execution_id);
        let source: BatchSource = str_attr(claimed, attr::SWEEP_SOURCE)
            .and_then(|text| serde_json::from_str(text).ok())
            .ok_or_else(|| WriterError::corrupt(&key, "a sweep without `sweepSource`"))?;
        let continuation = WriteBatch {
            v: V1,
            execution_id: Some(execution_id.to_owned()),
            tenant_id: tenant.clone(),
            tenant_integration_id: str_attr(claimed, attr::SWEEP_TENANT_INTEGRATION_ID)
                .unwrap_or_default()
                .to_owned(),
            integration_id: batch.map(|b| b.integration_id.clone()).unwrap_or_default(),
            target_entity_type: str_attr(claimed, attr::SWEEP_ENTITY_TYPE)
                .unwrap_or_default()
                .to_owned(),
            items: Vec::new(),
            errors: Vec::new(),
            cursor_commit: None,
            source: Some(source),
            source_entity: None,
            target: None,
        };
        let body = continuation.to_json().map_err(WriterError::Encode)?;
        match self
            .ports
            .state
            .update(
                &key,
                vec![UpdateAction::Remove(attr::COMPLETION_LEASE_UNTIL.into())],
                Some(Condition::eq(attr::COMPLETION_LEASE_UNTIL, lease_until)),
            )
            .await
        {
            // A lost lease means someone else carries on already.
            Ok(_) | Err(StoreError::ConditionFailed) => {}
            Err(error) => return Err(error.into()),
        }
        self.ports
            .queue(QueueRole::Write.logical_name())?
            .send(OutgoingMessage::new(body))
            .await?;
        tracing::info!(execution = execution_id, "sweep continues in a new message");
        Ok(())
    }

    /// Writes the batch marker and ADDs the batch's counts in one transaction; false when the
    /// marker already existed (a concurrent duplicate delivery counted it).
    async fn count_batch(
        &self,
        batch: &WriteBatch,
        execution_id: &str,
        source_key: &str,
        source: Option<&BatchSource>,
        report: &BatchReport,
        deadline: Instant,
    ) -> Result<bool> {
        let tenant = &batch.tenant_id;
        let marker = self.marker(
            &keys::pipeline_batch(execution_id, source_key),
            kind::BATCH_MARKER,
        );
        let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        let mut actions = vec![UpdateAction::Add(exec_attr::BATCHES_WRITTEN.into(), 1)];
        for (name, value) in [
            (exec_attr::CREATED, report.created),
            (exec_attr::UPDATED, report.updated),
            (exec_attr::SKIPPED, report.skipped),
            (exec_attr::FAILED, report.failed),
        ] {
            if value > 0 {
                actions.push(UpdateAction::Add(name.into(), count(value)));
            }
        }
        let target = batch.target.unwrap_or_default();
        if target.delete_if_removed
            && let Some(source) = source
        {
            let mode = serde_json::to_value(target.delete_mode).unwrap_or(Value::Null);
            let source = serde_json::to_string(source).map_err(|e| {
                WriterError::Encode(hub_core::model::ModelError::Encode {
                    kind: "batch source",
                    message: e.to_string(),
                })
            })?;
            actions.extend([
                UpdateAction::Set(
                    attr::SWEEP_ENTITY_TYPE.into(),
                    batch.target_entity_type.clone().into(),
                ),
                UpdateAction::Set(
                    attr::SWEEP_TENANT_INTEGRATION_ID.into(),
                    batch.tenant_integration_id.clone().into(),
                ),
                UpdateAction::Set(attr::SWEEP_MODE.into(), mode),
                UpdateAction::Set(attr::SWEEP_SOURCE.into(), source.into()),
            ]);
        }
        // A batch counted dead (it reached a DLQ) and written now, replayed: it leaves the
        // dead count as it joins the written one, so the run's sum stays right. Almost no batch
        // was dead, so the first try checks that its dead marker is absent instead of reading
        // it; a failed check (or a marker gone meanwhile) tries the other way.
        let dead_key = keys::pipeline_dead_batch(execution_id, source_key);
        let mut was_dead = false;
        for _ in 0..MAX_ATTEMPTS {
            let mut actions = actions.clone();
            let mut ops = vec![TransactOp::Put {
                item: marker.clone(),
                condition: Some(Condition::item_absent()),
            }];
            if was_dead {
                actions.push(UpdateAction::Add(exec_attr::BATCHES_DEAD.into(), -1));
            }
            ops.push(TransactOp::Update {
                key: keys::execution(tenant.as_str(), execution_id),
                actions,
                condition: Some(Condition::item_present()),
            });
            ops.push(if was_dead {
                TransactOp::Delete {
                    key: dead_key.clone(),
                    condition: Some(Condition::item_present()),
                }
            } else {
                TransactOp::Check {
                    key: dead_key.clone(),
                    condition: Condition::item_absent(),
                }
            });
            match self
                .transact_counted(tenant, execution_id, ops, deadline)
                .await?
            {
                Counted::Applied => {
                    if was_dead {
                        tracing::info!(
                            execution = execution_id,
                            source = source_key,
                            "a batch that had reached a dead-letter queue is written"
                        );
                    }
                    return Ok(true);
                }
                Counted::MarkerExisted => return Ok(false),
                // The dead marker is there after all, or was taken away in between.
                Counted::CheckFailed => was_dead = !was_dead,
            }
        }
        Err(WriterError::Contention {
            record_id: format!("batch {source_key} of execution {execution_id}"),
        })
    }

    /// Runs a `[marker put, execution update, checks...]` transaction: whether it applied,
    /// found the marker, or failed a later check. A missing execution is an error.
    pub(crate) async fn transact_counted(
        &self,
        tenant: &TenantId,
        execution_id: &str,
        ops: Vec<TransactOp>,
        deadline: Instant,
    ) -> Result<Counted> {
        let mut attempt = 0;
        loop {
            match self.ports.state.transact_write(ops.clone()).await {
                Ok(()) => return Ok(Counted::Applied),
                Err(StoreError::TransactionCanceled { reasons }) => {
                    let failed = |index: usize| {
                        matches!(reasons.get(index), Some(CancelReason::ConditionFailed))
                    };
                    if failed(0) {
                        return Ok(Counted::MarkerExisted);
                    }
                    if failed(1) {
                        return Err(hub_sync::Error::ExecutionNotFound {
                            tenant: tenant.to_string(),
                            execution_id: execution_id.to_owned(),
                        }
                        .into());
                    }
                    if (2..ops.len()).any(failed) {
                        return Ok(Counted::CheckFailed);
                    }
                    backoff(attempt, deadline, &self.config).await?;
                    attempt += 1;
                }
                Err(error) if error.is_retryable() => {
                    backoff(attempt, deadline, &self.config).await?;
                    attempt += 1;
                }
                Err(error) => return Err(error.into()),
            }
        }
    }

    /// Raises the run's cursor candidate to `candidate` if it is larger (by
    /// [`cursor_order_key`]). Idempotent.
    async fn raise_cursor_candidate(
        &self,
        tenant: &TenantId,
        execution_id: &str,
        candidate: &str,
    ) -> Result<()> {
        let order = cursor_order_key(candidate);
        let condition = Condition::item_present().and(
            Condition::NotExists(attr::CURSOR_ORDER.into()).or(Condition::cmp(
                attr::CURSOR_ORDER,
                CmpOp::Lt,
                order.clone(),
            )),
        );
        match self
            .ports
            .state
            .update(
                &keys::execution(tenant.as_str(), execution_id),
                vec![
                    UpdateAction::Set(attr::CURSOR_CANDIDATE.into(), candidate.into()),
                    UpdateAction::Set(attr::CURSOR_ORDER.into(), order.into()),
                ],
                Some(condition),
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(StoreError::ConditionFailed) => {
                // Not larger, or no such execution: tell the two apart.
                self.execution_item(tenant, execution_id).await.map(drop)
            }
            Err(error) => Err(error.into()),
        }
    }

    /// Moves the task's cursor to `candidate` unless it is already there or further, with a
    /// condition on the value read, so an older run can never move it backwards. Returns the
    /// cursor when this call moved it.
    async fn commit_cursor(
        &self,
        tenant: &TenantId,
        task_id: &str,
        execution_id: &str,
        candidate: &str,
    ) -> Result<Option<String>> {
        let key = keys::cursor(tenant.as_str(), task_id);
        let order = cursor_order_key(candidate);
        for _ in 0..MAX_ATTEMPTS {
            let current = self.ports.state.get(&key).await?;
            let read_cursor = current
                .as_ref()
                .and_then(|c| c.get(exec_attr::CURSOR))
                .cloned();
            let read_order = current
                .as_ref()
                .and_then(|c| c.get(attr::CURSOR_ORDER))
                .cloned();
            let current_order = read_order
                .as_ref()
                .and_then(Value::as_str)
                .map(str::to_owned)
                .or_else(|| {
                    read_cursor
                        .as_ref()
                        .and_then(Value::as_str)
                        .map(cursor_order_key)
                });
            if current_order.is_some_and(|current| current >= order) {
                return Ok(None);
            }
            let now = keys::sortable_time(self.ports.clock.now());
            let actions = vec![
                UpdateAction::Set(attr::KIND.into(), kind::CURSOR.into()),
                UpdateAction::Set(exec_attr::TASK_ID.into(), task_id.into()),
                UpdateAction::Set(exec_attr::CURSOR.into(), candidate.into()),
                UpdateAction::Set(attr::CURSOR_ORDER.into(), order.clone().into()),
                UpdateAction::Set(attr::CURSOR_EXECUTION_ID.into(), execution_id.into()),
                UpdateAction::Set(attr::COMMITTED_AT.into(), now.into()),
            ];
            let condition = unchanged(exec_attr::CURSOR, read_cursor.as_ref())
                .and(unchanged(attr::CURSOR_ORDER, read_order.as_ref()));
            match self
                .ports
                .state
                .update(&key, actions, Some(condition))
                .await
            {
                Ok(_) => return Ok(Some(candidate.to_owned())),
                Err(StoreError::ConditionFailed) => continue,
                Err(error) => return Err(error.into()),
            }
        }
        Err(WriterError::Contention {
            record_id: format!("cursor of task {task_id}"),
        })
    }

    /// Records the batch's save failures (phase `saving`) and mapping errors (phase
    /// `transforming`) on the execution, at most `max_errors_per_batch` one by one.
    async fn record_errors(
        &self,
        tenant: &TenantId,
        execution_id: &str,
        failures: &[RecordFailure],
        mapping: &[RecordError],
    ) -> Result<()> {
        let now = self.ports.clock.now();
        let mut errors: Vec<SyncError> = failures
            .iter()
            .map(|failure| SyncError {
                timestamp: now,
                phase: "saving".into(),
                record_id: Some(failure.record_id.clone()),
                external_id: Some(failure.external_id.clone()),
                error: failure.message.clone(),
                details: Some(json!({
                    "code": failure.code,
                    "recordIndex": failure.record_index,
                })),
                recoverable: false,
            })
            .chain(mapping.iter().map(|error| SyncError {
                timestamp: now,
                phase: "transforming".into(),
                record_id: None,
                external_id: error.external_id.clone(),
                error: error.message.clone(),
                details: Some(json!({
                    "code": error.code,
                    "recordIndex": error.record_index,
                    "targetField": error.target_field,
                    "sourcePath": error.source_path,
                })),
                recoverable: false,
            }))
            .collect();
        let limit = self.config.max_errors_per_batch;
        if errors.len() > limit {
            let rest = errors.len() - limit;
            errors.truncate(limit);
            errors.push(SyncError {
                timestamp: now,
                phase: "saving".into(),
                record_id: None,
                external_id: None,
                error: format!(
                    "{rest} more record errors in this batch were not recorded one by one"
                ),
                details: Some(json!({"code": "errors_summarised", "count": rest})),
                recoverable: false,
            });
        }
        for error in errors {
            self.sync.append_error(tenant, execution_id, error).await?;
        }
        Ok(())
    }

    pub(crate) async fn execution_item(
        &self,
        tenant: &TenantId,
        execution_id: &str,
    ) -> Result<Item> {
        self.ports
            .state
            .get(&keys::execution(tenant.as_str(), execution_id))
            .await?
            .ok_or_else(|| {
                hub_sync::Error::ExecutionNotFound {
                    tenant: tenant.to_string(),
                    execution_id: execution_id.to_owned(),
                }
                .into()
            })
    }

    /// A bookkeeping marker, kept for [`crate::WriterConfig::marker_ttl`].
    pub(crate) fn marker(&self, key: &Key, marker_kind: &str) -> Item {
        let expires = self.ports.clock.now().timestamp()
            + i64::try_from(self.config.marker_ttl.as_secs()).unwrap_or(i64::MAX / 2);
        let mut item = Item::new();
        item.insert(PK.into(), key.pk.clone().into());
        item.insert(SK.into(), key.sk.clone().into());
        item.insert(attr::KIND.into(), marker_kind.into());
        item.insert(EXPIRES_AT.into(), expires.into());
        item
    }
}

fn validate(batch: &WriteBatch) -> Result<()> {
    let empty = |what: &str| WriterError::InvalidBatch(format!("`{what}` must not be empty"));
    if batch.target_entity_type.is_empty() || batch.target_entity_type.contains('#') {
        return Err(WriterError::InvalidBatch(
            "`targetEntityType` must be a non-empty name without `#`".into(),
        ));
    }
    if batch.tenant_integration_id.is_empty() {
        return Err(empty("tenantIntegrationId"));
    }
    if !batch.items.is_empty()
        && (batch.integration_id.is_empty() || batch.integration_id.contains('#'))
    {
        return Err(WriterError::InvalidBatch(
            "`integrationId` must be a non-empty id without `#`".into(),
        ));
    }
    if batch.execution_id.as_deref() == Some("") {
        return Err(empty("executionId"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_order_keys_sort_like_their_values() {
        let sorted = |values: &[&str]| {
            let keys: Vec<_> = values.iter().map(|v| cursor_order_key(v)).collect();
            keys.windows(2).all(|w| w[0] < w[1])
        };
        assert!(sorted(&[
            "-100",
            "-99",
            "-1",
            "0",
            "7",
            "9",
            "10",
            "99",
            "100",
            "1700000000000"
        ]));
        assert!(sorted(&[
            "2024-05-01T09:00:00.000Z",
            "2024-05-01T10:00:00.000Z",
            "2025-01-01T00:00:00.000Z",
        ]));
        assert_eq!(cursor_order_key("007"), cursor_order_key("7"));
        assert_eq!(cursor_order_key("-0"), cursor_order_key("0"));
        assert!(sorted(&["abc", "abd"]));
    }
}
