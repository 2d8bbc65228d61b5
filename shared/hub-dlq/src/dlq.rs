//! The operations: list, show, replay, purge.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use hub_core::messages::REMAP_ATTRIBUTE;
use hub_core::ports::{
    MAX_VISIBILITY, OutgoingMessage, Ports, Queue, QueueDepth, QueueRole, ReceivedMessage,
};
use hub_runtime::notes::{delete_note, read_notes};
use serde::Serialize;

use crate::scan::Scan;
use crate::{DlqError, DlqMessage, Filter, Pace, REPLAYS_ATTRIBUTE, RateLimiter, RealTime};

/// How the replayer scans a DLQ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DlqConfig {
    /// Visibility timeout of the messages a listing or purge holds while it runs; a replay
    /// holds them this long plus twice the time its limit takes at its rate. A command that
    /// dies leaves them invisible that long.
    pub hold: Duration,
    /// Long-poll wait of each receive. SQS answers a short poll from a sample of its servers
    /// and may miss messages, so a scan on AWS waits a little; the embedded queue is exact.
    pub receive_wait: Duration,
    /// At most this many messages of one queue are looked at per command.
    pub max_scan: usize,
}

impl DlqConfig {
    pub fn for_backend(backend: &str) -> Self {
        Self {
            hold: Duration::from_secs(60),
            receive_wait: if backend == "embedded" {
                Duration::ZERO
            } else {
                Duration::from_secs(1)
            },
            max_scan: 1000,
        }
    }
}

/// One DLQ as a listing saw it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Listing {
    pub queue: String,
    pub source_queue: String,
    /// The DLQ's counts before the listing received anything.
    pub depth: QueueDepth,
    /// Messages looked at.
    pub scanned: usize,
    /// False when the listing stopped at its limit (or [`DlqConfig::max_scan`]) before the end
    /// of the queue.
    pub complete: bool,
    /// The messages that matched the filter, oldest first.
    pub messages: Vec<DlqMessage>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReplayOptions {
    /// At most this many messages are replayed (over every queue of the request).
    pub limit: usize,
    /// Report what would be replayed; send and delete nothing.
    pub dry_run: bool,
    /// Replays per second, evenly spaced.
    pub rate_per_second: f64,
    /// Record batches replayed to the transform queue carry [`REMAP_ATTRIBUTE`]: the
    /// transformer maps them with their task's current conversion schema, so a batch that
    /// died on a broken schema version can succeed once the schema is fixed. Messages of the
    /// other queues replay as they are.
    pub remap: bool,
}

/// The most messages one command may act on.
pub const MAX_LIMIT: usize = 100_000;
/// The fastest replay rate accepted (SQS takes far more; the point of the limit is the
/// downstream APIs).
pub const MAX_RATE_PER_SECOND: f64 = 1000.0;

impl ReplayOptions {
    pub fn validate(&self) -> Result<(), DlqError> {
        if !(1..=MAX_LIMIT).contains(&self.limit) {
            return Err(DlqError::InvalidRequest(format!(
                "the limit is 1 to {MAX_LIMIT}, not {}",
                self.limit
            )));
        }
        if !(self.rate_per_second.is_finite()
            && self.rate_per_second > 0.0
            && self.rate_per_second <= MAX_RATE_PER_SECOND)
        {
            return Err(DlqError::InvalidRequest(format!(
                "the rate is above 0 and at most {MAX_RATE_PER_SECOND} messages per second, not {}",
                self.rate_per_second
            )));
        }
        Ok(())
    }

    /// The same options with the limit lowered so that the replays fit in `budget` at the
    /// rate (a Lambda invocation's remaining time); `None` when not even one fits.
    pub fn fitting(self, budget: Duration) -> Option<Self> {
        let fits = (budget.as_secs_f64() * self.rate_per_second).floor();
        // The first replay goes at once, so n replays take (n - 1) intervals.
        let fits = if fits >= 0.0 { fits as usize + 1 } else { 0 };
        let limit = self.limit.min(fits);
        (limit > 0 && budget > Duration::ZERO).then_some(Self { limit, ..self })
    }

    /// How long the replays may take at this rate.
    fn duration(&self) -> Duration {
        Duration::from_secs_f64(self.limit as f64 / self.rate_per_second)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PurgeOptions {
    /// Empty the whole queue (the queue's purge; no filter allowed).
    pub all: bool,
    /// Report what would be deleted; delete nothing.
    pub dry_run: bool,
    /// At most this many messages are deleted by a filtered purge.
    pub limit: usize,
}

/// What happened to one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Outcome {
    /// Sent to the source queue, then deleted from the DLQ.
    Replayed,
    /// Dry run: would have been replayed.
    WouldReplay,
    /// The send failed: still in the DLQ, untouched.
    SendFailed,
    /// Sent, but the delete failed: it is still in the DLQ and a later replay sends it again
    /// (harmless, see the crate documentation).
    SentNotDeleted,
    /// Deleted by a purge.
    Purged,
    /// Dry run: would have been purged.
    WouldPurge,
    /// A purge could not delete it.
    DeleteFailed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageOutcome {
    pub message_id: String,
    pub outcome: Outcome,
    /// The id of the copy on the source queue.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_message_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What a replay or purge did on one DLQ.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueReport {
    pub queue: String,
    pub source_queue: String,
    pub scanned: usize,
    pub matched: usize,
    /// The whole queue was purged (`all`); `messages` is then empty.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub purged_whole_queue: bool,
    pub messages: Vec<MessageOutcome>,
}

impl QueueReport {
    fn new(role: QueueRole) -> Self {
        Self {
            queue: role.dlq_name(),
            source_queue: role.logical_name().to_owned(),
            scanned: 0,
            matched: 0,
            purged_whole_queue: false,
            messages: Vec::new(),
        }
    }

    pub fn count(&self, outcome: Outcome) -> usize {
        self.messages
            .iter()
            .filter(|m| m.outcome == outcome)
            .count()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplayReport {
    pub dry_run: bool,
    pub queues: Vec<QueueReport>,
}

impl ReplayReport {
    /// Messages with this outcome over every queue.
    pub fn count(&self, outcome: Outcome) -> usize {
        self.queues.iter().map(|q| q.count(outcome)).sum()
    }
}

/// A purge's report has the same shape.
pub type PurgeReport = ReplayReport;

/// One replay's selection and budget, across its queues.
struct Run<'a> {
    filter: &'a Filter,
    dry_run: bool,
    remap: bool,
    limiter: RateLimiter,
    /// Messages it may still replay.
    remaining: usize,
}

/// The DLQ operations on one backend's ports.
pub struct Dlq {
    ports: Ports,
    config: DlqConfig,
    pace: Arc<dyn Pace>,
}

impl Dlq {
    pub fn new(ports: Ports) -> Self {
        Self {
            config: DlqConfig::for_backend(ports.backend),
            ports,
            pace: Arc::new(RealTime::new()),
        }
    }

    pub fn with_config(mut self, config: DlqConfig) -> Self {
        self.config = config;
        self
    }

    /// Paces replays on `pace` instead of real time (tests: [`crate::VirtualTime`]).
    pub fn with_pace(mut self, pace: Arc<dyn Pace>) -> Self {
        self.pace = pace;
        self
    }

    pub fn ports(&self) -> &Ports {
        &self.ports
    }

    fn dlq(&self, role: QueueRole) -> Result<Arc<dyn Queue>, DlqError> {
        self.ports
            .queue(&role.dlq_name())
            .map_err(DlqError::queue(&role.dlq_name()))
    }

    fn source(&self, role: QueueRole) -> Result<Arc<dyn Queue>, DlqError> {
        self.ports
            .queue(role.logical_name())
            .map_err(DlqError::queue(role.logical_name()))
    }

    fn scan(&self, role: QueueRole, hold: Duration) -> Result<Scan, DlqError> {
        Ok(Scan::new(
            self.dlq(role)?,
            hold.min(MAX_VISIBILITY),
            self.config.receive_wait,
            self.config.max_scan,
        ))
    }

    /// Receives the next messages of a scan and describes them with their failure notes. On an
    /// error the received messages are kept, so the scan's release returns them.
    async fn next_described(
        &self,
        scan: &mut Scan,
        role: QueueRole,
        with_body: bool,
    ) -> Result<Vec<(ReceivedMessage, DlqMessage)>, DlqError> {
        let batch = scan.next().await?;
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<String> = batch.iter().map(|m| m.message_id.clone()).collect();
        let mut notes = match read_notes(&*self.ports.state, role.logical_name(), &ids).await {
            Ok(notes) => notes,
            Err(error) => {
                batch.iter().for_each(|m| scan.keep(m));
                return Err(error.into());
            }
        };
        Ok(batch
            .into_iter()
            .map(|received| {
                let note = notes.remove(&received.message_id);
                let message = DlqMessage::new(
                    &role.dlq_name(),
                    role.logical_name(),
                    &received,
                    note,
                    with_body,
                );
                (received, message)
            })
            .collect())
    }

    /// The DLQ's counts (no receive: listing nothing changes nothing).
    pub async fn depth(&self, role: QueueRole) -> Result<QueueDepth, DlqError> {
        self.dlq(role)?
            .depth()
            .await
            .map_err(DlqError::queue(&role.dlq_name()))
    }

    /// The messages of one DLQ that match `filter`, at most `limit`, oldest first. Every
    /// message looked at is received once (its receive count goes up by one) and made visible
    /// again before this returns.
    pub async fn list(
        &self,
        role: QueueRole,
        filter: &Filter,
        limit: usize,
    ) -> Result<Listing, DlqError> {
        self.list_with(role, filter, limit, false).await
    }

    async fn list_with(
        &self,
        role: QueueRole,
        filter: &Filter,
        limit: usize,
        with_body: bool,
    ) -> Result<Listing, DlqError> {
        filter.validate()?;
        let depth = self.depth(role).await?;
        let mut scan = self.scan(role, self.config.hold)?;
        let mut listing = Listing {
            queue: role.dlq_name(),
            source_queue: role.logical_name().to_owned(),
            depth,
            scanned: 0,
            complete: false,
            messages: Vec::new(),
        };
        let now = self.ports.clock.now();
        let result = async {
            while listing.messages.len() < limit {
                let described = self.next_described(&mut scan, role, with_body).await?;
                if described.is_empty() {
                    listing.complete = listing.scanned < self.config.max_scan;
                    break;
                }
                for (received, message) in described {
                    scan.keep(&received);
                    listing.scanned += 1;
                    if listing.messages.len() < limit && filter.matches(&message, now) {
                        listing.messages.push(message);
                    }
                }
            }
            Ok::<_, DlqError>(())
        }
        .await;
        scan.release().await;
        result?;
        listing
            .messages
            .sort_by(|a, b| (a.sent_at, &a.message_id).cmp(&(b.sent_at, &b.message_id)));
        Ok(listing)
    }

    /// One message, with its body, from the first of `roles` that has it.
    pub async fn show(
        &self,
        message_id: &str,
        roles: &[QueueRole],
    ) -> Result<Option<DlqMessage>, DlqError> {
        let filter = Filter {
            message_ids: vec![message_id.to_owned()],
            ..Filter::default()
        };
        for role in roles {
            let listing = self.list_with(*role, &filter, 1, true).await?;
            if let Some(message) = listing.messages.into_iter().next() {
                return Ok(Some(message));
            }
        }
        Ok(None)
    }

    /// Sends the matching dead messages of `roles` back to their source queues (at most
    /// `options.limit` in all, at `options.rate_per_second`), deleting each from its DLQ only
    /// after it was sent. See the crate documentation for why replaying twice writes once.
    pub async fn replay(
        &self,
        roles: &[QueueRole],
        filter: &Filter,
        options: ReplayOptions,
    ) -> Result<ReplayReport, DlqError> {
        filter.validate()?;
        options.validate()?;
        let mut report = ReplayReport {
            dry_run: options.dry_run,
            queues: Vec::new(),
        };
        let mut run = Run {
            filter,
            dry_run: options.dry_run,
            remap: options.remap,
            limiter: RateLimiter::per_second(options.rate_per_second, Arc::clone(&self.pace)),
            remaining: options.limit,
        };
        // Messages that do not match are held for the whole run: long enough for the slowest
        // replay the options allow, so they do not come round again mid-run.
        let hold = self.config.hold + options.duration() * 2;
        for role in roles {
            let mut queue_report = QueueReport::new(*role);
            if run.remaining > 0 {
                let source = self.source(*role)?;
                let mut scan = self.scan(*role, hold)?;
                let result = self
                    .replay_queue(&mut scan, *role, &source, &mut run, &mut queue_report)
                    .await;
                scan.release().await;
                result?;
            }
            report.queues.push(queue_report);
        }
        Ok(report)
    }

    async fn replay_queue(
        &self,
        scan: &mut Scan,
        role: QueueRole,
        source: &Arc<dyn Queue>,
        run: &mut Run<'_>,
        report: &mut QueueReport,
    ) -> Result<(), DlqError> {
        let now = self.ports.clock.now();
        let mut source_down = false;
        while run.remaining > 0 && !source_down {
            let described = self.next_described(scan, role, false).await?;
            if described.is_empty() {
                break;
            }
            for (received, message) in described {
                report.scanned += 1;
                if source_down || run.remaining == 0 || !run.filter.matches(&message, now) {
                    scan.keep(&received);
                    continue;
                }
                report.matched += 1;
                run.remaining -= 1;
                if run.dry_run {
                    scan.keep(&received);
                    report.messages.push(MessageOutcome {
                        message_id: received.message_id.clone(),
                        outcome: Outcome::WouldReplay,
                        new_message_id: None,
                        error: None,
                    });
                    continue;
                }
                run.limiter.acquire().await;
                let outcome = self
                    .replay_one(scan, role, source, &received, message.replays, run.remap)
                    .await;
                // The source queue is unavailable: the rest would fail the same way.
                source_down = outcome.1;
                report.messages.push(outcome.0);
            }
        }
        Ok(())
    }

    /// Returns the outcome and whether the source queue looked unavailable.
    async fn replay_one(
        &self,
        scan: &mut Scan,
        role: QueueRole,
        source: &Arc<dyn Queue>,
        received: &ReceivedMessage,
        replays: u32,
        remap: bool,
    ) -> (MessageOutcome, bool) {
        let mut copy = OutgoingMessage::new(received.body.clone());
        copy.attributes = received.attributes.clone();
        copy.attributes.insert(
            REPLAYS_ATTRIBUTE.to_owned(),
            replays.saturating_add(1).to_string(),
        );
        if remap && role == QueueRole::Transform {
            copy.attributes
                .insert(REMAP_ATTRIBUTE.to_owned(), "true".to_owned());
        }
        let message_id = received.message_id.clone();
        let new_id = match source.send(copy).await {
            Ok(id) => id,
            Err(error) => {
                scan.keep(received);
                tracing::warn!(queue = %role.dlq_name(), %message_id, %error, "replay failed: the message stays in the DLQ");
                let unavailable = error.is_retryable();
                return (
                    MessageOutcome {
                        message_id,
                        outcome: Outcome::SendFailed,
                        new_message_id: None,
                        error: Some(error.to_string()),
                    },
                    unavailable,
                );
            }
        };
        // From here on the message is never sent again by this run, whatever the delete does.
        scan.removed(&message_id);
        let outcome = match scan.queue().delete(&received.receipt_handle).await {
            Ok(()) => {
                self.forget_note(role, &message_id).await;
                MessageOutcome {
                    message_id,
                    outcome: Outcome::Replayed,
                    new_message_id: Some(new_id),
                    error: None,
                }
            }
            Err(error) => {
                tracing::warn!(
                    queue = %role.dlq_name(), %message_id, %error,
                    "replayed, but the message is still in the DLQ; a later replay sends it again, which the writer's dedup absorbs"
                );
                MessageOutcome {
                    message_id,
                    outcome: Outcome::SentNotDeleted,
                    new_message_id: Some(new_id),
                    error: Some(error.to_string()),
                }
            }
        };
        (outcome, false)
    }

    async fn forget_note(&self, role: QueueRole, message_id: &str) {
        if let Err(error) = delete_note(&*self.ports.state, role.logical_name(), message_id).await {
            tracing::warn!(%message_id, %error, "could not delete the failure note of a message that left its DLQ; it expires with the DLQ retention");
        }
    }

    /// Deletes the matching messages of one DLQ (at most `options.limit`), or with
    /// `options.all` the whole queue. A purge without a filter must say `all`.
    pub async fn purge(
        &self,
        role: QueueRole,
        filter: &Filter,
        options: PurgeOptions,
    ) -> Result<PurgeReport, DlqError> {
        filter.validate()?;
        let mut report = QueueReport::new(role);
        if options.all {
            if !filter.is_empty() {
                return Err(DlqError::InvalidRequest(
                    "purge everything or purge what a filter selects, not both".into(),
                ));
            }
            let depth = self.depth(role).await?;
            report.matched = usize::try_from(depth.visible + depth.in_flight + depth.delayed)
                .unwrap_or(usize::MAX);
            if !options.dry_run {
                self.dlq(role)?
                    .purge()
                    .await
                    .map_err(DlqError::queue(&role.dlq_name()))?;
                report.purged_whole_queue = true;
            }
            return Ok(ReplayReport {
                dry_run: options.dry_run,
                queues: vec![report],
            });
        }
        if filter.is_empty() {
            return Err(DlqError::PurgeNeedsFilter);
        }
        if !(1..=MAX_LIMIT).contains(&options.limit) {
            return Err(DlqError::InvalidRequest(format!(
                "the limit is 1 to {MAX_LIMIT}, not {}",
                options.limit
            )));
        }
        let mut scan = self.scan(role, self.config.hold)?;
        let result = self
            .purge_matching(&mut scan, role, filter, options, &mut report)
            .await;
        scan.release().await;
        result?;
        Ok(ReplayReport {
            dry_run: options.dry_run,
            queues: vec![report],
        })
    }

    async fn purge_matching(
        &self,
        scan: &mut Scan,
        role: QueueRole,
        filter: &Filter,
        options: PurgeOptions,
        report: &mut QueueReport,
    ) -> Result<(), DlqError> {
        let now: DateTime<Utc> = self.ports.clock.now();
        while report.matched < options.limit {
            let described = self.next_described(scan, role, false).await?;
            if described.is_empty() {
                break;
            }
            for (received, message) in described {
                report.scanned += 1;
                if report.matched >= options.limit || !filter.matches(&message, now) {
                    scan.keep(&received);
                    continue;
                }
                report.matched += 1;
                let message_id = received.message_id.clone();
                if options.dry_run {
                    scan.keep(&received);
                    report.messages.push(MessageOutcome {
                        message_id,
                        outcome: Outcome::WouldPurge,
                        new_message_id: None,
                        error: None,
                    });
                    continue;
                }
                scan.removed(&message_id);
                let outcome = match scan.queue().delete(&received.receipt_handle).await {
                    Ok(()) => {
                        self.forget_note(role, &message_id).await;
                        MessageOutcome {
                            message_id,
                            outcome: Outcome::Purged,
                            new_message_id: None,
                            error: None,
                        }
                    }
                    Err(error) => MessageOutcome {
                        message_id,
                        outcome: Outcome::DeleteFailed,
                        new_message_id: None,
                        error: Some(error.to_string()),
                    },
                };
                report.messages.push(outcome);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_fit_a_time_budget() {
        let options = ReplayOptions {
            limit: 100,
            dry_run: false,
            rate_per_second: 5.0,
            remap: false,
        };
        assert_eq!(
            options.fitting(Duration::from_secs(10)).map(|o| o.limit),
            Some(51)
        );
        assert_eq!(
            options.fitting(Duration::from_secs(3600)).map(|o| o.limit),
            Some(100)
        );
        assert_eq!(options.fitting(Duration::ZERO), None);
        assert!(options.validate().is_ok());
        for bad in [
            ReplayOptions {
                limit: 0,
                ..options
            },
            ReplayOptions {
                rate_per_second: 0.0,
                ..options
            },
            ReplayOptions {
                rate_per_second: f64::NAN,
                ..options
            },
            ReplayOptions {
                rate_per_second: 5000.0,
                ..options
            },
        ] {
            assert_eq!(bad.validate().unwrap_err().code(), "invalid_request");
        }
    }
}
