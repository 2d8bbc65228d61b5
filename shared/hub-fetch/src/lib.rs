//! The fetcher: one [`SyncJob`](hub_core::messages::SyncJob) is one page of one connector
//! stream. [`FetchHandler`] runs on the fetch queue, the same code in the `fetcher` Lambda and
//! in the local host.
//!
//! # One job
//!
//! 1. **Cancellation first**: the execution is read; a cancelled run fetches nothing more (the
//!    message is acknowledged), a run that ended otherwise too (except for the job that made it
//!    fail, see 7).
//! 2. **Idempotency** on [`SyncJob::idempotency_key`](hub_core::messages::SyncJob::idempotency_key):
//!    the page's record (`idem#job#<execution>#<page>`) is claimed with a conditional write
//!    (`in_progress` with a lease, then `done`). A delivery that finds the page `done` (a
//!    redelivery, the outbox's duplicate of a first job, the original of a re-enqueued job)
//!    enqueues nothing. A delivery that finds another's live lease fails and comes back after
//!    its visibility timeout. The page's counters are added once, in one transaction with the
//!    record's `counted` flag.
//! 3. **Configuration**: the task; the execution's tenant integration; the tenant
//!    integration's connection (the tenant's, else a system one) and its credentials from the
//!    secret store under the connection's `credentialsRef` (cached five minutes); the schema
//!    head (its id and version go on every batch). **Connector**: the catalogue entry whose id
//!    is the tenant integration's `integrationId` (the integration definition's `id`), else the
//!    one named by the stored definition's machine `name`. **Stream**: the task config's
//!    `stream` when set, else the stream named after the schema's `source.entity` (exactly,
//!    ignoring case, or plural: `Contact` reads `contacts`). A problem here ends the run
//!    `failed` with a stable code (`connector_not_found`, `credentials_missing`, ...); missing,
//!    unreadable or unusable credentials also publish `connection.needs_reauth`.
//! 4. **Circuit breaker** per connection (hub-connectors): while open, the job is re-enqueued
//!    with the remaining cool-down as its delay and the API is not called (the attempt number
//!    stays: the API did not fail this job).
//! 5. **The page** through the SSRF-guarded [`Fetcher`](hub_connectors::Fetcher). Its records
//!    are split into [`RecordBatch`](hub_core::messages::RecordBatch)es whose serialized size
//!    stays within [`FetchConfig::max_message_bytes`]; a record too large for a message on its
//!    own is recorded as an execution error (phase `fetching`, its external id) and counted
//!    `failed`. Then, per hub-writer's run protocol: `fetched`/`pagesFetched` are counted,
//!    the total is recorded from the first page when the API says it, the last page moves the
//!    phase to `transforming`, [`hub_writer::Writer::record_page_enqueued`] counts the page's
//!    batches (and raises the run's cursor candidate; the last page sets `fetchComplete`)
//!    *before* the batches go to the transform queue, then the next page's job goes to the
//!    fetch queue (delayed while the API's rate-limit budget is spent), then the page is
//!    `done`. A redelivered page is sent as exactly the number of parts its first delivery
//!    counted.
//! 6. **Transient failures** (429, 5xx, timeouts) never sleep: the job is re-enqueued with
//!    `attempt + 1` and `DelaySeconds` from `Retry-After` or exponential backoff with full
//!    jitter ([`hub_connectors::next_retry`]). A wait longer than a queue delay (15 minutes)
//!    **parks** the run: [`hub_sync::SyncService::park_job`] puts the job in the outbox leased
//!    until `resumeAt`, and the first scheduler tick after that sends it.
//! 7. **Attempts exhausted**: the page's record becomes `gave_up`, the run ends `failed` with
//!    the error (`retries_exhausted`), and the message fails, as does every redelivery of it
//!    (without calling the API), so it reaches the DLQ after its receives: the run never stays
//!    `running` for ever, and the DLQ shows the page that could not be fetched.
//! 8. **Refusals** (credentials refused, not found, a 4xx, the SSRF guard) end the run `failed`
//!    with the error's code and acknowledge the message; credentials refused also publish
//!    `connection.needs_reauth`.
//!
//! Store, queue and bus failures fail the message, which is redelivered after its visibility
//! timeout and then resumes from the page's record.

mod claim;
mod context;
mod error;
mod handler;
mod split;

use std::time::Duration;

use hub_connectors::{BackoffPolicy, CircuitConfig, EgressPolicy, egress::AllowListError};

pub use error::FetchError;
pub use handler::{FetchHandler, JobOutcome};

/// Environment variable of the deployment's egress allow-list (see
/// [`EgressPolicy::from_allow_list`]).
pub const EGRESS_ALLOW_ENV: &str = "HUB_EGRESS_ALLOW";

/// The strict egress policy plus the allow-list in `HUB_EGRESS_ALLOW` (unset: none).
pub fn egress_policy_from_env() -> Result<EgressPolicy, AllowListError> {
    EgressPolicy::from_allow_list(&std::env::var(EGRESS_ALLOW_ENV).unwrap_or_default())
}

/// Tunables of the fetcher.
#[derive(Debug, Clone)]
pub struct FetchConfig {
    /// Retries of a page: delays and the number of attempts before the DLQ.
    pub backoff: BackoffPolicy,
    pub circuit: CircuitConfig,
    /// The largest `RecordBatch` message, serialized (the queue's limit is 256 KiB).
    pub max_message_bytes: usize,
    /// How long credentials read from the secret store are reused.
    pub secret_cache_ttl: Duration,
    /// How long a delivery holds a page before another may take it over; longer than one
    /// page can take (the function's timeout), shorter than the queue's visibility timeout.
    pub claim_lease: Duration,
    /// How long a page's record is kept: longer than any of its messages can be redelivered.
    pub record_ttl: Duration,
    /// Execution errors recorded one by one per page (oversize records); the rest are summed up.
    pub max_errors_per_page: usize,
    /// A uniform sample in `[0, 1)` for the backoff's full jitter (tests pin it).
    pub jitter: fn() -> f64,
}

impl Default for FetchConfig {
    fn default() -> Self {
        Self {
            backoff: BackoffPolicy::default(),
            circuit: CircuitConfig::default(),
            max_message_bytes: 250 * 1024,
            secret_cache_ttl: Duration::from_secs(300),
            claim_lease: Duration::from_secs(120),
            record_ttl: Duration::from_secs(30 * 24 * 3600),
            max_errors_per_page: 25,
            jitter: hub_connectors::random_jitter,
        }
    }
}

impl FetchConfig {
    /// Shortens the page lease in proportion to a visibility timeout shorter than the queues'
    /// own ([`hub_core::ports::VISIBILITY_TIMEOUT`]; a local host killed often uses one). The
    /// lease is what lets a redelivery take over from a delivery that died, so it must run out
    /// before the message comes back (120 s against 180 s): were it to outlast the visibility
    /// timeout, the dead delivery's message would come back, find the lease held and fail,
    /// until it reached the DLQ.
    pub fn fit_visibility_timeout(&mut self, visibility: std::time::Duration) {
        let ratio = visibility.as_secs_f64() / hub_core::ports::VISIBILITY_TIMEOUT.as_secs_f64();
        if ratio < 1.0 {
            self.claim_lease = self.claim_lease.mul_f64(ratio);
        }
    }
}

#[cfg(test)]
mod config_tests {
    use std::time::Duration;

    use super::FetchConfig;

    #[test]
    fn a_short_visibility_timeout_shortens_the_page_lease_below_it() {
        let mut fetch = FetchConfig::default();
        fetch.fit_visibility_timeout(Duration::from_secs(9));
        assert_eq!(fetch.claim_lease, Duration::from_secs(6));
    }

    #[test]
    fn the_queues_own_visibility_timeout_or_a_longer_one_keeps_the_default() {
        for seconds in [180, 600] {
            let mut fetch = FetchConfig::default();
            fetch.fit_visibility_timeout(Duration::from_secs(seconds));
            assert_eq!(fetch.claim_lease, FetchConfig::default().claim_lease);
        }
    }
}
