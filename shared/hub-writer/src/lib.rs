//! The writer: mapped records land in the `hub-records` table exactly once per source version,
//! with lineage; a run's cursor moves only once every record it covers is written; a full run
//! that succeeds removes what the source no longer has. Everything runs on the ports, so the
//! same code serves the `writer` Lambda, the local host and the tests.
//!
//! # The records table
//!
//! | attribute | what |
//! |---|---|
//! | `pk` | `<tenant>#<entityType>` ([`hub_core::keys::records`]) |
//! | `sk`, `recordId` | [`record_id`]: `r` + 32 hex digits of SHA-256 over tenant, entity type and dedup key; stable, so every writer finds the same item for a dedup key whatever it contains |
//! | `gsi1pk` / `gsi1sk` | `<tenant>#<integrationId>#<externalId>` / `<entityType>`: lookup by (integration, external id), see [`lookup_by_external_ids`]; removed while the record is flagged deleted |
//! | `kind` | `record` |
//! | `tenantId`, `entityType`, `dedupKey`, `externalId`, `integrationId`, `tenantIntegrationId` | from the batch and the item |
//! | `data` | the mapped entity as JSON text (exact numbers, whatever the backend does to them) |
//! | `externalRelationships` | JSON text of a list of [`hub_core::model::ExternalRelationship`]; one entry per (integration, external id), refreshed on every write |
//! | `lineage` | JSON text of [`RecordLineage`]: execution id or webhook delivery id, source batch and page cursor, record index, payload hash, schema id and version, written-at |
//! | `payloadHash` | XXH3-128 of the mapped entity's JSON text (`data`): the same hash again is skipped, not rewritten |
//! | `sourceModifiedAt` | [`hub_core::keys::sortable_time`] of the source's modification time, when the source has one |
//! | `version` | 1 on creation, +1 on every write: the optimistic lock every update is conditioned on |
//! | `deleted`, `deletedAt`, `deletedByExecution` | set by a soft `deleteIfRemoved` |
//! | `lastSeenExecution`, `lastSeenAt` | the last run (and time) that wrote or saw the record: what `deleteIfRemoved` keys on |
//! | `writtenBy`, `writeKind` | the batch that last wrote the record and whether it `created` or `updated` it, so a redelivered batch counts what it did the first time |
//! | `createdAt`, `updatedAt` | times of the first and the last write |
//!
//! # Write rules (per item of a [`WriteBatch`](hub_core::messages::WriteBatch))
//!
//! Items are read in batches (`batch_get`, at most 100 keys) and each is classified against what
//! was read:
//!
//! 1. no record: created if the target's `createIfMissing`, otherwise skipped;
//! 2. the record was last written by this very batch with the same payload hash (a
//!    redelivery): nothing is written, and it counts as what that write did;
//! 3. the item is older than the record (`sourceModifiedAt` earlier; when either side has no
//!    time, nothing is older): skipped;
//! 4. the record is flagged deleted: restored (counted as created) if `createIfMissing`,
//!    otherwise skipped;
//! 5. same payload hash: skipped;
//! 6. otherwise updated if `updateIfExists`, otherwise skipped.
//!
//! Two items of one batch with the same dedup key: the newer (then the later) one is written,
//! the other is skipped. Writes go in transactions (at most [`WriterConfig::transaction_size`]
//! operations and 4 MB) whose every operation is conditioned on what was read: a creation on
//! the item being absent, an update on `version` being the one read. So a concurrent writer can
//! never make an older version overwrite a newer one: the loser's transaction is cancelled, its
//! items are written one by one with the same conditions, and an item whose condition fails is
//! read again and classified again. Throttling and transient failures are retried with
//! exponential backoff and full jitter until [`WriterConfig::retry_deadline`]; after that the
//! message fails as a whole and is redelivered, which the rules above make harmless. An item
//! the store refuses (too large, an index key too long) is that record's failure: recorded on
//! the execution with phase `saving` and counted as failed, while the rest of the batch is
//! written. Mapping errors carried in the batch are recorded with phase `transforming` and
//! counted as failed (once per record).
//!
//! # The run protocol (fetcher, transformer, writer)
//!
//! The execution item (hub-sync) carries the bookkeeping; every step is idempotent, so each
//! message may be delivered any number of times.
//!
//! 1. **Fetcher, for each page** of a run, *before* sending the page's `RecordBatch`es: call
//!    [`Writer::record_page_enqueued`] with the page number, the number of batches (parts) it
//!    is about to send (0 for an empty page), the page's cursor candidate, and whether it is
//!    the last page. In one transaction this writes a marker `pipeline#<exec>` /
//!    `page#<n>` (so a redelivered fetch job counts nothing twice), ADDs the count to
//!    `batchesEnqueued` and, on the last page, sets `fetchComplete`; before that it raises the
//!    run's cursor candidate (`cursorCandidate`, compared by [`cursor_order_key`]; the largest
//!    wins). Then the fetcher sends the batches (a crash in between re-sends them on
//!    redelivery; the transformer deduplicates by source). Counting before sending means the
//!    count is never below what is in flight, so the run cannot be taken as complete early.
//!    `hub_sync::SyncService::mark_fetch_complete` is not used by the pipeline: the last page
//!    sets `fetchComplete` here, together with its count. A fetch that fails for good ends the
//!    run with `SyncService::finish(Failed)`; a cancelled run fetches nothing more.
//! 2. **Transformer**: exactly one `WriteBatch` per `RecordBatch` of a run, even when every
//!    record failed or was filtered out (then with no items), carrying `source` (the record
//!    batch's source), `target` (the schema's target; `deleteIfRemoved` only for a full,
//!    non-incremental poll run), `sourceEntity`, and the mapping errors. It may copy the
//!    record batch's `cursorCandidate` into `cursorCommit` (the writer raises the run's
//!    candidate with it as well). Webhook batches (no execution) follow the same envelope.
//! 3. **Writer, for each `WriteBatch`** ([`Writer::write_batch`]): if the batch's marker
//!    `pipeline#<exec>` / `batch#<source key>` exists, the batch was written and counted
//!    before: only step 4 runs. Otherwise it writes the records (rules above), records the
//!    errors, and in one transaction writes the marker and ADDs `created`, `updated`,
//!    `skipped`, `failed` and `batchesWritten` (one ADD per batch; a concurrent duplicate
//!    delivery loses the marker's condition and counts nothing).
//! 4. **Completion** ([`Writer::complete_if_done`], called by the writer after every batch and
//!    by `record_page_enqueued`): when the execution is `running`, `fetchComplete` and
//!    `batchesWritten + batchesDead == batchesEnqueued`, the caller claims the completion with a
//!    conditional update (those values as read, and no unexpired `completionLeaseUntil`), so of racing
//!    writers exactly one proceeds; whoever made the counts equal reads them afterwards, so
//!    someone always sees the run complete. The claimant then, only if the outcome
//!    ([`hub_sync::outcome_of`]) is `success`: commits the run's cursor candidate to the task's
//!    cursor item (`tenant#<t>` / `cursor#<taskId>`, attribute `cursor`) with a condition on the
//!    value read, and only if it is larger ([`cursor_order_key`]), so an older run can never
//!    move it backwards; and runs the `deleteIfRemoved` sweep. Finally it calls
//!    `SyncService::finish` with the outcome, which ends the execution exactly once, updates
//!    the task's statistics and publishes `sync.completed` / `sync.partial` / `sync.failed`
//!    with the task's notification settings. A `partial` or `failed` run, and a cancelled one,
//!    never move the cursor: the next run reads the same window again and the dedup makes the
//!    overlap free. A claimant that dies leaves a lease that expires after
//!    [`WriterConfig::completion_lease`]; the claim names the message that made it (the batch's
//!    source, or the fetched page), so that message's redelivery takes it over at once, and
//!    any other caller resumes once the lease has expired.
//!
//! 5. **Dead letters** ([`Writer::record_dead_letter`], told by the batch driver's failure
//!    notes through [`RunDeadLetters`] when a message's last allowed delivery fails; see
//!    [`run_failure_notes`]): the message's run gets an error first (phase `fetching`,
//!    `transforming` or `saving`, code `dead_lettered`, naming the DLQ, the message id and the
//!    reason), so the run can no longer be a success; then, in one transaction with a marker
//!    `pipeline#<exec>` / `dead#batch#<source key>` (absent) and a check that the batch's
//!    written marker is absent, a record or write batch ADDs 1 to `batchesDead`; a fetch job
//!    (marker `dead#page#<n>`) sets `fetchComplete`, since no page follows it. Then the run
//!    completes if nothing else is outstanding: `partial` when some records were written,
//!    `failed` when none were, the cursor unmoved. A batch counted dead and written later (a
//!    replay) deletes its dead marker and takes 1 back out of `batchesDead` in the
//!    transaction that counts it written, so a replay during the run cannot end it early.
//!    A delivery that never returns on its last receive (a crash or a timeout) is not
//!    counted: the run stays `running` until it is cancelled.
//!
//! # deleteIfRemoved
//!
//! Applies when some batch of the run carried `target.deleteIfRemoved` (the writer then records
//! the entity type and tenant integration on the execution and marks every record it saw with
//! `lastSeenExecution`, skipped ones included), the run's task is not incremental, and the run
//! ends `success` (a failed record may well still exist upstream). The sweep pages through the
//! tenant's records of that entity type and removes those of the run's tenant integration that
//! the run did not see and that nobody wrote since the run started (`lastSeenAt` before the
//! start: a webhook may have created a record meanwhile): `soft` (the default) flags them
//! `deleted` and takes them out of the external-id index, `hard` deletes them, per the
//! schema's `target.deleteMode`. Each removal is conditioned on the same rule. Records a source
//! filter excluded were not seen, so they are removed too. A run that wrote no batch at all
//! removes nothing: an empty full sync is far more often a broken source than an empty one.
//! The sweep saves its position on the execution after every page; when
//! [`WriterConfig::completion_budget`] runs out it releases its claim and sends a continuation
//! (the same batch, without items: its marker makes it count nothing) to the write queue.

mod apply;
mod dead;
mod error;
mod handler;
mod lookup;
mod record;
mod run;
mod sweep;
mod upsert;

use std::time::Duration;

use hub_core::ports::{MAX_BATCH_ENTRIES, Ports};
use hub_sync::SyncService;

pub use dead::{DEAD_LETTER_CODE, RunDeadLetters, run_failure_notes};
pub use error::WriterError;
pub use handler::WriteHandler;
pub use lookup::{RecordsLookup, lookup_by_external_ids};
pub use record::{RecordLineage, StoredRecord, get_record, list_records, read_record, record_id};
pub use run::{Completion, PageEnqueued, PageRecorded, cursor_order_key};
pub use upsert::{BatchReport, RecordFailure};

pub type Result<T, E = WriterError> = std::result::Result<T, E>;

/// Tunables of the writer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriterConfig {
    /// Operations per transaction (1..=100; DynamoDB's limit is 100 and 4 MB). Larger is fewer
    /// round trips; smaller loses less work when a condition cancels a transaction.
    pub transaction_size: usize,
    /// Transactions (or single writes) in flight at once, per message.
    pub write_concurrency: usize,
    /// Write messages of one delivered batch handled at once (by the Lambda and by `hub dev`).
    /// 1 keeps the run counters' transactions on one execution item from overlapping, which
    /// moto needs (it does not isolate concurrent transactions; DynamoDB does).
    pub message_concurrency: usize,
    /// How long throttled or unavailable writes are retried before the message fails as a
    /// whole (and is redelivered).
    pub retry_deadline: Duration,
    /// How long a completion claim holds; longer than one function invocation, so a live
    /// claimant is never overtaken.
    pub completion_lease: Duration,
    /// How long one invocation may spend on a `deleteIfRemoved` sweep before it hands the rest
    /// to a continuation message.
    pub completion_budget: Duration,
    /// Records read per sweep page.
    pub sweep_page_size: usize,
    /// How long the run's page and batch markers are kept: longer than any message can be
    /// redelivered (queue retention plus a DLQ replay window).
    pub marker_ttl: Duration,
    /// Errors recorded one by one per batch; the rest are summed up in one more error.
    pub max_errors_per_batch: usize,
    /// External-id queries in flight at once in [`lookup_by_external_ids`].
    pub lookup_concurrency: usize,
}

impl Default for WriterConfig {
    fn default() -> Self {
        Self {
            transaction_size: 25,
            write_concurrency: 4,
            message_concurrency: 4,
            retry_deadline: Duration::from_secs(20),
            completion_lease: Duration::from_secs(60),
            completion_budget: Duration::from_secs(15),
            sweep_page_size: 200,
            marker_ttl: Duration::from_secs(30 * 24 * 3600),
            max_errors_per_batch: 25,
            lookup_concurrency: 16,
        }
    }
}

impl WriterConfig {
    /// Shortens the completion lease and the sweep budget in proportion to a visibility timeout
    /// shorter than the queues' own ([`hub_core::ports::VISIBILITY_TIMEOUT`]; a local host
    /// killed often uses one). The lease lets a redelivery take over the completion of a
    /// delivery that died, so it must run out before the message comes back (60 s against
    /// 180 s): were it to outlast the visibility timeout, the returning batch would find the
    /// claim held and the run's completion would be left to nobody.
    pub fn fit_visibility_timeout(&mut self, visibility: Duration) {
        let ratio = visibility.as_secs_f64() / hub_core::ports::VISIBILITY_TIMEOUT.as_secs_f64();
        if ratio < 1.0 {
            self.completion_lease = self.completion_lease.mul_f64(ratio);
            self.completion_budget = self.completion_budget.mul_f64(ratio);
        }
    }

    /// The defaults, with `HUB_WRITER_TRANSACTION_SIZE` (1 to 100; 1 writes every record with
    /// its own conditional put), `HUB_WRITER_CONCURRENCY` (1 to 64) and
    /// `HUB_WRITER_MESSAGE_CONCURRENCY` (1 to 10) when set. A value that does not parse is
    /// ignored with a warning. moto copies a whole table for every transaction and does not
    /// isolate concurrent ones, so a writer against moto wants a transaction size of 1 and one
    /// message at a time ([`WriterConfig::for_moto`]; BENCHMARKS.md, "Writer").
    pub fn from_env() -> Self {
        let mut config = Self::default();
        let read = |name: &str, max: usize| -> Option<usize> {
            let text = std::env::var(name).ok()?;
            match text.trim().parse::<usize>() {
                Ok(n) if (1..=max).contains(&n) => Some(n),
                _ => {
                    tracing::warn!("{name} must be a number from 1 to {max}; using the default");
                    None
                }
            }
        };
        if let Some(size) = read(ENV_TRANSACTION_SIZE, hub_core::ports::MAX_TRANSACT_ITEMS) {
            config.transaction_size = size;
        }
        if let Some(concurrency) = read(ENV_CONCURRENCY, 64) {
            config.write_concurrency = concurrency;
        }
        if let Some(concurrency) = read(ENV_MESSAGE_CONCURRENCY, MAX_BATCH_ENTRIES) {
            config.message_concurrency = concurrency;
        }
        config
    }

    /// The settings a writer against moto needs: every record its own conditional put, one
    /// message at a time (the environment: `HUB_WRITER_TRANSACTION_SIZE=1
    /// HUB_WRITER_MESSAGE_CONCURRENCY=1`).
    pub fn for_moto(self) -> Self {
        Self {
            transaction_size: 1,
            message_concurrency: 1,
            ..self
        }
    }
}

/// Environment variables of [`WriterConfig::from_env`].
pub const ENV_TRANSACTION_SIZE: &str = "HUB_WRITER_TRANSACTION_SIZE";
pub const ENV_CONCURRENCY: &str = "HUB_WRITER_CONCURRENCY";
pub const ENV_MESSAGE_CONCURRENCY: &str = "HUB_WRITER_MESSAGE_CONCURRENCY";

/// The writer on one backend's ports. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Writer {
    ports: Ports,
    sync: SyncService,
    config: WriterConfig,
}

impl Writer {
    pub fn new(ports: Ports) -> Self {
        Self::with_config(ports, WriterConfig::default())
    }

    pub fn with_config(ports: Ports, config: WriterConfig) -> Self {
        let config = WriterConfig {
            transaction_size: config
                .transaction_size
                .clamp(1, hub_core::ports::MAX_TRANSACT_ITEMS),
            write_concurrency: config.write_concurrency.max(1),
            message_concurrency: config.message_concurrency.clamp(1, MAX_BATCH_ENTRIES),
            sweep_page_size: config.sweep_page_size.clamp(1, 1000),
            lookup_concurrency: config.lookup_concurrency.max(1),
            ..config
        };
        Self {
            sync: SyncService::new(ports.clone()),
            ports,
            config,
        }
    }

    pub fn ports(&self) -> &Ports {
        &self.ports
    }

    pub fn config(&self) -> &WriterConfig {
        &self.config
    }

    pub fn sync(&self) -> &SyncService {
        &self.sync
    }
}

/// Attribute names of the record items and of the writer's bookkeeping on execution items.
pub mod attr {
    // Records.
    pub const KIND: &str = "kind";
    pub const RECORD_ID: &str = "recordId";
    pub const TENANT_ID: &str = "tenantId";
    pub const ENTITY_TYPE: &str = "entityType";
    pub const DEDUP_KEY: &str = "dedupKey";
    pub const EXTERNAL_ID: &str = "externalId";
    pub const INTEGRATION_ID: &str = "integrationId";
    pub const TENANT_INTEGRATION_ID: &str = "tenantIntegrationId";
    pub const DATA: &str = "data";
    pub const EXTERNAL_RELATIONSHIPS: &str = "externalRelationships";
    pub const LINEAGE: &str = "lineage";
    pub const PAYLOAD_HASH: &str = "payloadHash";
    pub const SOURCE_MODIFIED_AT: &str = "sourceModifiedAt";
    pub const VERSION: &str = "version";
    pub const DELETED: &str = "deleted";
    pub const DELETED_AT: &str = "deletedAt";
    pub const DELETED_BY_EXECUTION: &str = "deletedByExecution";
    pub const LAST_SEEN_EXECUTION: &str = "lastSeenExecution";
    pub const LAST_SEEN_AT: &str = "lastSeenAt";
    pub const WRITTEN_BY: &str = "writtenBy";
    pub const WRITE_KIND: &str = "writeKind";
    pub const CREATED_AT: &str = "createdAt";
    pub const UPDATED_AT: &str = "updatedAt";

    // Execution items (besides hub_sync::attr's counters).
    pub const CURSOR_CANDIDATE: &str = "cursorCandidate";
    pub const CURSOR_ORDER: &str = "cursorOrder";
    pub const SWEEP_ENTITY_TYPE: &str = "sweepEntityType";
    pub const SWEEP_TENANT_INTEGRATION_ID: &str = "sweepTenantIntegrationId";
    pub const SWEEP_MODE: &str = "sweepMode";
    /// JSON text of the source of a batch the sweep's run counted (what a continuation carries).
    pub const SWEEP_SOURCE: &str = "sweepSource";
    pub const SWEEP_POSITION: &str = "sweepPosition";
    pub const SWEPT: &str = "swept";
    pub const COMPLETION_LEASE_UNTIL: &str = "completionLeaseUntil";
    /// The message that holds the completion claim: `batch#<source key>` or `page#<n>`.
    pub const COMPLETION_CLAIMANT: &str = "completionClaimant";

    // Cursor items (`cursor` itself is hub_sync::attr::CURSOR).
    pub const CURSOR_EXECUTION_ID: &str = "cursorExecutionId";
    pub const COMMITTED_AT: &str = "committedAt";
}

/// Item `kind`s this crate writes.
pub mod kind {
    pub const RECORD: &str = "record";
    pub const PAGE_MARKER: &str = "pipeline_page";
    pub const BATCH_MARKER: &str = "pipeline_batch";
    pub const DEAD_MARKER: &str = "pipeline_dead";
    pub const CURSOR: &str = "cursor";
}

#[cfg(test)]
mod config_tests {
    use std::time::Duration;

    use super::WriterConfig;

    #[test]
    fn a_short_visibility_timeout_shortens_the_completion_lease_below_it() {
        let mut writer = WriterConfig::default();
        writer.fit_visibility_timeout(Duration::from_secs(9));
        assert_eq!(writer.completion_lease, Duration::from_secs(3));
        assert!(writer.completion_budget < writer.completion_lease);
    }

    #[test]
    fn the_queues_own_visibility_timeout_or_a_longer_one_keeps_the_defaults() {
        for seconds in [180, 600] {
            let mut writer = WriterConfig::default();
            writer.fit_visibility_timeout(Duration::from_secs(seconds));
            assert_eq!(writer, WriterConfig::default());
        }
    }
}
