//! The idempotency record of one page of a run (`keys::idempotency(SyncJob::idempotency_key)`),
//! a two-state record in the Powertools manner:
//!
//! - `in_progress` with `leaseUntilMs` and `owner`: a delivery is working on the page. Another
//!   delivery may take it over only once the lease has run out (its holder died); a holder that
//!   hands the page to a re-enqueued job (a retry) releases the lease at once.
//! - `done`: the page was fetched and its batches and next job were sent; any later delivery
//!   (a redelivery, a duplicate from the outbox, the original of a re-enqueued job) is
//!   acknowledged without doing anything.
//! - `gave_up`: the page failed on every attempt; deliveries keep failing so the message
//!   reaches the DLQ.
//!
//! `counted` is set, in the same transaction as the execution's `fetched` and `pagesFetched`
//! ADDs, the first time the page is counted, so a page fetched twice (a crash after counting)
//! counts once. Expiry (`expiresAt`) only cleans up; the lease is checked in code.

use std::time::Duration;

use hub_core::keys;
use hub_core::messages::SyncJob;
use hub_core::ports::{
    CancelReason, CmpOp, Condition, EXPIRES_AT, Key, StateStore, StoreError, TransactOp,
    UpdateAction,
};
use serde_json::Value;

use crate::FetchError;

const KIND: &str = "kind";
const KIND_VALUE: &str = "fetch_job";
const STATE: &str = "state";
const LEASE_UNTIL_MS: &str = "leaseUntilMs";
const OWNER: &str = "owner";
const COUNTED: &str = "counted";
const ATTEMPT: &str = "attempt";

const IN_PROGRESS: &str = "in_progress";
const DONE: &str = "done";
const GAVE_UP: &str = "gave_up";

/// What a claim found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Claim {
    /// This delivery holds the page; `counted` when an earlier delivery counted it already.
    Held {
        counted: bool,
    },
    Done,
    GaveUp,
    /// Another delivery holds an unexpired lease.
    Busy,
}

/// One delivery's handle on a page's record.
pub(crate) struct PageClaim<'a> {
    store: &'a dyn StateStore,
    key: Key,
    owner: String,
}

impl<'a> PageClaim<'a> {
    pub fn new(store: &'a dyn StateStore, job: &SyncJob, owner: String) -> Self {
        Self {
            store,
            key: keys::idempotency(&job.idempotency_key()),
            owner,
        }
    }

    /// The record's state without claiming (for executions that have ended).
    pub async fn peek(&self) -> Result<Option<String>, FetchError> {
        Ok(self
            .store
            .get(&self.key)
            .await?
            .and_then(|item| item.get(STATE).and_then(Value::as_str).map(str::to_owned)))
    }

    pub async fn claim(
        &self,
        now_ms: i64,
        lease: Duration,
        expires_at: i64,
    ) -> Result<Claim, FetchError> {
        let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX);
        // An expired item reads as absent, so at most one more round settles it.
        for _ in 0..3 {
            let condition =
                Condition::NotExists(STATE.into()).or(Condition::eq(STATE, IN_PROGRESS)
                    .and(Condition::cmp(LEASE_UNTIL_MS, CmpOp::Lt, now_ms)));
            let actions = vec![
                UpdateAction::Set(KIND.into(), KIND_VALUE.into()),
                UpdateAction::Set(STATE.into(), IN_PROGRESS.into()),
                UpdateAction::Set(
                    LEASE_UNTIL_MS.into(),
                    now_ms.saturating_add(lease_ms).into(),
                ),
                UpdateAction::Set(OWNER.into(), self.owner.clone().into()),
                UpdateAction::Set(EXPIRES_AT.into(), expires_at.into()),
            ];
            match self.store.update(&self.key, actions, Some(condition)).await {
                Ok(item) => {
                    return Ok(Claim::Held {
                        counted: item.get(COUNTED).and_then(Value::as_bool).unwrap_or(false),
                    });
                }
                Err(StoreError::ConditionFailed) => {}
                Err(error) => return Err(error.into()),
            }
            match self.peek().await?.as_deref() {
                Some(DONE) => return Ok(Claim::Done),
                Some(GAVE_UP) => return Ok(Claim::GaveUp),
                Some(IN_PROGRESS) => return Ok(Claim::Busy),
                Some(other) => {
                    return Err(FetchError::corrupt(
                        &self.key,
                        format!("unknown page state `{other}`"),
                    ));
                }
                // Expired meanwhile: claim again.
                None => continue,
            }
        }
        Ok(Claim::Busy)
    }

    /// ADDs the page's counters to the execution and marks the page counted, in one
    /// transaction; false (nothing added) when it was counted before.
    pub async fn count(
        &self,
        execution: Key,
        counters: Vec<UpdateAction>,
    ) -> Result<bool, FetchError> {
        let ops = vec![
            TransactOp::Update {
                key: self.key.clone(),
                actions: vec![UpdateAction::Set(COUNTED.into(), true.into())],
                condition: Some(
                    Condition::item_present().and(Condition::NotExists(COUNTED.into())),
                ),
            },
            TransactOp::Update {
                key: execution.clone(),
                actions: counters,
                condition: Some(Condition::item_present()),
            },
        ];
        match self.store.transact_write(ops).await {
            Ok(()) => Ok(true),
            Err(StoreError::TransactionCanceled { reasons }) => {
                match (reasons.first(), reasons.get(1)) {
                    (Some(CancelReason::ConditionFailed), _) => Ok(false),
                    (_, Some(CancelReason::ConditionFailed)) => Err(FetchError::corrupt(
                        &execution,
                        "the execution vanished while its page was counted",
                    )),
                    _ => Err(StoreError::TransactionCanceled { reasons }.into()),
                }
            }
            Err(error) => Err(error.into()),
        }
    }

    pub async fn done(&self) -> Result<(), FetchError> {
        self.settle(DONE, None).await
    }

    pub async fn gave_up(&self, attempt: u32) -> Result<(), FetchError> {
        self.settle(GAVE_UP, Some(attempt)).await
    }

    async fn settle(&self, state: &str, attempt: Option<u32>) -> Result<(), FetchError> {
        let mut actions = vec![
            UpdateAction::Set(STATE.into(), state.into()),
            UpdateAction::Remove(LEASE_UNTIL_MS.into()),
        ];
        if let Some(attempt) = attempt {
            actions.push(UpdateAction::Set(ATTEMPT.into(), attempt.into()));
        }
        // Whoever holds the lease now, the page's outcome is what this delivery did.
        self.store
            .update(&self.key, actions, Some(Condition::item_present()))
            .await
            .map(drop)
            .map_err(Into::into)
    }

    /// Gives the page back (a retry was enqueued, or this delivery failed before finishing),
    /// so the next delivery claims it at once. Best effort: an unreleased lease only delays
    /// that delivery until it runs out.
    pub async fn release(&self) {
        let released = self
            .store
            .update(
                &self.key,
                vec![UpdateAction::Set(LEASE_UNTIL_MS.into(), 0.into())],
                Some(
                    Condition::eq(STATE, IN_PROGRESS).and(Condition::eq(OWNER, self.owner.clone())),
                ),
            )
            .await;
        match released {
            Ok(_) | Err(StoreError::ConditionFailed) => {}
            Err(error) => {
                tracing::warn!(%error, "could not release a page claim; the next delivery waits for its lease");
            }
        }
    }
}
