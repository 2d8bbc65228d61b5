//! Group commit of verified deliveries: the dedup ledger claims, the `webhook.received` events
//! and the `published` marks of every delivery waiting at the same moment are written with one
//! call each (a transaction of conditional puts, one `put_events`, one batch write) instead of
//! three calls per delivery.
//!
//! On the embedded backend each call is one SQLite transaction on one connection, so the number
//! of transactions, not the CPU, bounds the deliveries per second (and on a disk each costs an
//! fsync); batching divides it by the batch size. A Lambda invocation carries one delivery, so
//! there every batch has one delivery and the calls are those of the protocol unbatched.
//!
//! The protocol per delivery is unchanged (see [`crate::receiver`]): claim `pending`, publish,
//! answer, mark `published`; a failed publish releases the claim. Deliveries with the same key
//! never share a batch: the later one waits for the next, where it meets the first's outcome.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use hub_core::json::RawJson;
use hub_core::messages::{BusDetail, V1, WebhookReceived};
use hub_core::ports::{
    BusEvent, CmpOp, Condition, EXPIRES_AT, EventBus, Item, Key, MAX_BATCH_WRITE, PK, SK,
    StateStore, StoreError, TransactOp, WriteRequest, batch_write_all,
};
use tokio::sync::{mpsc, oneshot};

use crate::payload::store_payload;
use crate::receiver::ReceiveError;
use crate::route::WebhookRoute;
use crate::verify::VerifiedDelivery;

/// Attributes of a ledger entry.
pub(crate) mod ledger {
    pub const STATE: &str = "state";
    pub const PENDING: &str = "pending";
    pub const PUBLISHED: &str = "published";
    /// Which attempt wrote the entry, so only that attempt releases it.
    pub const ATTEMPT: &str = "attempt";
    pub const PENDING_SINCE_MS: &str = "pendingSinceMs";
    pub const PUBLISHED_AT_MS: &str = "publishedAtMs";
    pub const KIND: &str = "webhook_delivery";
}

/// Deliveries per batch: DynamoDB's batch write limit, well under its 100-item transactions.
const MAX_BATCH: usize = MAX_BATCH_WRITE;
/// How long the marks of one batch may be retried when throttled.
const MARK_DEADLINE: Duration = Duration::from_secs(2);

/// One verified delivery to deduplicate and publish.
pub(crate) struct Job {
    pub key: Key,
    pub attempt: String,
    pub route: Arc<WebhookRoute>,
    /// Taken when the event is built.
    pub delivery: Option<VerifiedDelivery>,
    pub now: DateTime<Utc>,
    pub reply: oneshot::Sender<Result<Committed, ReceiveError>>,
}

/// What became of a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Committed {
    Published { claim_check: bool },
    Duplicate,
    InProgress,
}

pub(crate) struct CommitSettings {
    pub pending_takeover: Duration,
    pub inline_payload_limit: usize,
    /// See [`crate::ReceiverOptions::answer_before_marking`].
    pub answer_before_marking: bool,
}

/// The task that commits the batches; it ends when every sender is gone.
pub(crate) fn start(
    state: Arc<dyn StateStore>,
    bus: Arc<dyn EventBus>,
    settings: CommitSettings,
) -> mpsc::UnboundedSender<Job> {
    let (sender, receiver) = mpsc::unbounded_channel();
    let committer = Committer {
        state,
        bus,
        settings,
    };
    tokio::spawn(committer.run(receiver));
    sender
}

struct Committer {
    state: Arc<dyn StateStore>,
    bus: Arc<dyn EventBus>,
    settings: CommitSettings,
}

enum Claim {
    Claimed,
    Settled(Committed),
    /// The entry vanished between the refused put and the read (it expired, or a failed
    /// attempt released it): claim again.
    Retry,
}

impl Committer {
    async fn run(self, mut receiver: mpsc::UnboundedReceiver<Job>) {
        let mut deferred: Vec<Job> = Vec::new();
        loop {
            let mut waiting = std::mem::take(&mut deferred);
            if waiting.is_empty() {
                match receiver.recv().await {
                    Some(job) => waiting.push(job),
                    None => return,
                }
            }
            while waiting.len() < MAX_BATCH * 4 {
                match receiver.try_recv() {
                    Ok(job) => waiting.push(job),
                    Err(_) => break,
                }
            }
            let mut batch = Vec::with_capacity(MAX_BATCH);
            let mut keys = HashSet::new();
            for job in waiting {
                if batch.len() < MAX_BATCH && keys.insert(job.key.clone()) {
                    batch.push(job);
                } else {
                    deferred.push(job);
                }
            }
            self.commit(batch).await;
        }
    }

    async fn commit(&self, batch: Vec<Job>) {
        let claims = self.claim(&batch).await;
        let mut claimed = Vec::new();
        for (job, claim) in batch.into_iter().zip(claims) {
            match claim {
                Ok(Claim::Claimed) => claimed.push(job),
                Ok(Claim::Settled(outcome)) => {
                    let _ = job.reply.send(Ok(outcome));
                }
                Ok(Claim::Retry) => {
                    let _ = job.reply.send(Ok(Committed::InProgress));
                }
                Err(error) => {
                    let _ = job.reply.send(Err(error));
                }
            }
        }
        if claimed.is_empty() {
            return;
        }

        let mut events = Vec::with_capacity(claimed.len());
        let mut publishing = Vec::with_capacity(claimed.len());
        for mut job in claimed {
            let Some(delivery) = job.delivery.take() else {
                let error = ReceiveError::unavailable("publishing", "the delivery was taken");
                self.fail(job, error).await;
                continue;
            };
            match self.event(&job, delivery).await {
                Ok((event, claim_check)) => {
                    events.push(event);
                    publishing.push((job, claim_check));
                }
                Err(error) => self.fail(job, error).await,
            }
        }
        if publishing.is_empty() {
            return;
        }
        let failed: Vec<Option<ReceiveError>> = match self.bus.put_events(events).await {
            Ok(failed_entries) => {
                let mut failed: Vec<Option<ReceiveError>> =
                    (0..publishing.len()).map(|_| None).collect();
                for entry in failed_entries {
                    if let Some(slot) = failed.get_mut(entry.index) {
                        *slot = Some(ReceiveError::unavailable(
                            "publishing the event",
                            format!("{}: {}", entry.code, entry.message),
                        ));
                    }
                }
                failed
            }
            Err(error) => publishing
                .iter()
                .map(|_| Some(ReceiveError::unavailable("publishing the event", &error)))
                .collect(),
        };

        let mut published = Vec::with_capacity(publishing.len());
        for ((job, claim_check), failure) in publishing.into_iter().zip(failed) {
            match failure {
                Some(error) => self.fail(job, error).await,
                None => published.push((job, claim_check)),
            }
        }
        // The events are durable: the marks only spare a retry from publishing again. They are
        // written before the next batch is claimed whichever goes first, the answers or they.
        let marks: Vec<WriteRequest> = published
            .iter()
            .map(|(job, _)| WriteRequest::Put(self.published_item(job)))
            .collect();
        let answer = |published: Vec<(Job, bool)>| {
            for (job, claim_check) in published {
                let _ = job.reply.send(Ok(Committed::Published { claim_check }));
            }
        };
        if self.settings.answer_before_marking {
            answer(published);
            self.mark(marks).await;
        } else {
            self.mark(marks).await;
            answer(published);
        }
    }

    async fn mark(&self, marks: Vec<WriteRequest>) {
        if let Err(error) = batch_write_all(&*self.state, marks, MARK_DEADLINE).await {
            tracing::warn!(%error, "could not mark published webhook deliveries; their retries will be published again");
        }
    }

    /// Claims every delivery of the batch: one conditional put, or one transaction of them
    /// (refused ones are read to tell a published delivery from one in progress, the rest are
    /// claimed again without them).
    async fn claim(&self, batch: &[Job]) -> Vec<Result<Claim, ReceiveError>> {
        let mut results: Vec<Option<Result<Claim, ReceiveError>>> =
            batch.iter().map(|_| None).collect();
        let mut open: Vec<usize> = (0..batch.len()).collect();
        for _ in 0..4 {
            if open.is_empty() {
                break;
            }
            let attempt = if let [only] = open.as_slice() {
                let job = &batch[*only];
                match self
                    .state
                    .put(self.pending_item(job), Some(self.claimable(job.now)))
                    .await
                {
                    Ok(()) => Ok(vec![None]),
                    Err(StoreError::ConditionFailed) => Ok(vec![Some(())]),
                    Err(error) => Err(error),
                }
            } else {
                let ops = open
                    .iter()
                    .map(|&index| TransactOp::Put {
                        item: self.pending_item(&batch[index]),
                        condition: Some(self.claimable(batch[index].now)),
                    })
                    .collect();
                match self.state.transact_write(ops).await {
                    Ok(()) => Ok(open.iter().map(|_| None).collect()),
                    Err(StoreError::TransactionCanceled { reasons })
                        if reasons.len() == open.len() =>
                    {
                        Ok(reasons
                            .iter()
                            .map(|reason| {
                                (*reason == hub_core::ports::CancelReason::ConditionFailed)
                                    .then_some(())
                            })
                            .collect())
                    }
                    Err(error) => Err(error),
                }
            };
            let refused = match attempt {
                Ok(refused) => refused,
                Err(error) if error.is_retryable() => continue,
                Err(error) => {
                    for &index in &open {
                        results[index] =
                            Some(Err(ReceiveError::unavailable("the dedup ledger", &error)));
                    }
                    open.clear();
                    break;
                }
            };
            if refused.iter().all(Option::is_none) {
                for &index in &open {
                    results[index] = Some(Ok(Claim::Claimed));
                }
                open.clear();
                break;
            }
            // Some were refused: those are settled by reading them; the others were not
            // written (the transaction was cancelled) and go again.
            let mut again = Vec::new();
            for (&index, refused) in open.iter().zip(refused) {
                if refused.is_none() {
                    again.push(index);
                    continue;
                }
                match self.existing(&batch[index].key).await {
                    Ok(Claim::Retry) => again.push(index),
                    other => results[index] = Some(other),
                }
            }
            open = again;
        }
        results
            .into_iter()
            .map(|result| result.unwrap_or(Ok(Claim::Retry)))
            .collect()
    }

    async fn existing(&self, key: &Key) -> Result<Claim, ReceiveError> {
        let item = self
            .state
            .get(key)
            .await
            .map_err(|error| ReceiveError::unavailable("the dedup ledger", &error))?;
        Ok(match item {
            Some(item) if item.get(ledger::STATE) == Some(&ledger::PUBLISHED.into()) => {
                Claim::Settled(Committed::Duplicate)
            }
            Some(_) => Claim::Settled(Committed::InProgress),
            None => Claim::Retry,
        })
    }

    /// The entry is free, or `pending` for longer than an attempt takes (that attempt died).
    fn claimable(&self, now: DateTime<Utc>) -> Condition {
        let takeover_ms = i64::try_from(self.settings.pending_takeover.as_millis()).unwrap_or(0);
        Condition::item_absent().or(Condition::eq(ledger::STATE, ledger::PENDING).and(
            Condition::cmp(
                ledger::PENDING_SINCE_MS,
                CmpOp::Lt,
                now.timestamp_millis() - takeover_ms,
            ),
        ))
    }

    fn ledger_item(&self, job: &Job, state: &str) -> Item {
        let expires_at = job.now.timestamp() + i64::from(job.route.dedup_window_days()) * 86_400;
        let mut item = Item::new();
        item.insert(PK.into(), job.key.pk.clone().into());
        item.insert(SK.into(), job.key.sk.clone().into());
        item.insert(hub_core::repo::KIND.into(), ledger::KIND.into());
        item.insert(ledger::STATE.into(), state.into());
        item.insert(ledger::ATTEMPT.into(), job.attempt.clone().into());
        item.insert(EXPIRES_AT.into(), expires_at.into());
        item
    }

    fn pending_item(&self, job: &Job) -> Item {
        let mut item = self.ledger_item(job, ledger::PENDING);
        item.insert(
            ledger::PENDING_SINCE_MS.into(),
            job.now.timestamp_millis().into(),
        );
        item
    }

    fn published_item(&self, job: &Job) -> Item {
        let mut item = self.ledger_item(job, ledger::PUBLISHED);
        item.insert(
            ledger::PUBLISHED_AT_MS.into(),
            job.now.timestamp_millis().into(),
        );
        item
    }

    /// The event of a claimed delivery; a payload too large for it is stored first.
    async fn event(
        &self,
        job: &Job,
        delivery: VerifiedDelivery,
    ) -> Result<(BusEvent, bool), ReceiveError> {
        let route = &job.route;
        let route_id = route.id.as_str();
        let delivery_id = delivery.delivery_id().as_str().to_owned();
        let event_type = delivery.event_type().map(str::to_owned);
        let provider = delivery.provider().as_str().to_owned();
        let received_at = delivery.received_at();
        let payload = delivery.into_payload_json();
        let (payload, payload_ref) = if payload.get().len() > self.settings.inline_payload_limit {
            let reference =
                store_payload(&*self.state, route_id, &delivery_id, payload.get(), job.now)
                    .await
                    .map_err(|error| ReceiveError::unavailable("storing the payload", &error))?;
            (RawJson::null(), Some(reference))
        } else {
            (payload, None)
        };
        let claim_check = payload_ref.is_some();
        // The payload's text is copied into the event as it is, not encoded again.
        let event = WebhookReceived {
            v: V1,
            tenant_id: route.tenant_id.clone(),
            tenant_integration_id: route.tenant_integration_id.clone(),
            integration_id: route.integration_id.clone(),
            route_id: route_id.to_owned(),
            provider,
            delivery_id,
            event_type,
            received_at,
            payload,
            payload_ref,
        }
        .to_bus_event()
        .map_err(|error| ReceiveError::unavailable("encoding the event", &error))?;
        Ok((event, claim_check))
    }

    /// Answers a failure and deletes this attempt's entry, so the provider's retry is not
    /// held up by it.
    async fn fail(&self, job: Job, error: ReceiveError) {
        let ours = Condition::eq(ledger::ATTEMPT, job.attempt.as_str());
        match self.state.delete(&job.key, Some(ours)).await {
            Ok(_) | Err(StoreError::ConditionFailed) => {}
            Err(release) => {
                tracing::warn!(error = %release, "could not release the ledger entry of a failed webhook delivery; a retry takes it over later");
            }
        }
        let _ = job.reply.send(Err(error));
    }
}
