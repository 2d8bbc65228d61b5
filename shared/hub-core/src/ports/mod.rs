//! Ports: the small capability traits every function is written against.
//!
//! Each port has two adapters (`hub-embedded` for the local host and fast tests, `hub-aws` for
//! DynamoDB / SQS / EventBridge / Secrets Manager) and both pass the one contract suite in
//! `hub-testkit`. A behaviour the suite does not pin is one the backends may disagree on, so the
//! doc comments here say which behaviours are pinned.

mod bus;
mod clock;
mod health;
mod queue;
mod secrets;
mod state;
mod topology;

use std::collections::BTreeMap;
use std::sync::Arc;

pub use bus::{
    BusEnvelope, BusError, BusEvent, EventBus, FailedEntry, MAX_EVENT_BYTES, MAX_EVENTS_PER_PUT,
    RuleSpec,
};
pub use clock::{Clock, IdGenerator, ManualClock, SystemClock, UlidGenerator};
pub use health::{DISK_FULL, NoStorageFaults, StorageFault, StorageHealth};
pub use queue::{
    MAX_BATCH_ENTRIES, MAX_DELAY, MAX_MESSAGE_BYTES, MAX_VISIBILITY, MAX_WAIT, OutgoingMessage,
    Queue, QueueDepth, QueueError, QueueSpec, ReceiveOptions, ReceivedMessage, SendOutcome,
    check_batch_entries,
};
pub use secrets::{
    CachedSecretStore, MAX_SECRET_BYTES, SecretError, SecretStore, SecretVersion,
    validate_secret_name, validate_secret_write,
};
pub use state::{
    CancelReason, CmpOp, Condition, EXPIRES_AT, GSI1PK, GSI1SK, Index, Item, Key, MAX_BATCH_GET,
    MAX_BATCH_WRITE, MAX_ITEM_BYTES, MAX_TRANSACT_ITEMS, PK, QueryPage, QueryRequest, SK,
    SortCondition, StateStore, StoreError, TransactOp, UpdateAction, WriteRequest, apply_update,
    batch_write_all, compare, is_expired, reject_duplicate_keys, validate_item,
    validate_transaction, validate_update,
};
pub use topology::{
    DLQ_RETENTION, MAX_RECEIVE_COUNT, QueueRole, RETENTION, Topology, VISIBILITY_TIMEOUT,
    WEBHOOKS_TO_TRANSFORM,
};

/// Every adapter of one backend, wired together: what a function or the local host needs.
#[derive(Clone)]
pub struct Ports {
    /// Which backend these adapters talk to (`embedded` or `aws`), reported by `/health`.
    pub backend: &'static str,
    /// The `hub-state` table: definitions, tasks, executions, cursors, idempotency records.
    pub state: Arc<dyn StateStore>,
    /// The `hub-records` table: the written entities with lineage.
    pub records: Arc<dyn StateStore>,
    /// Every queue of the topology (work queues and their DLQs), by logical name.
    pub queues: BTreeMap<String, Arc<dyn Queue>>,
    pub bus: Arc<dyn EventBus>,
    pub secrets: Arc<dyn SecretStore>,
    /// What holds up every write (the embedded store's disk is full), for `/health`.
    pub storage: Arc<dyn StorageHealth>,
    pub clock: Arc<dyn Clock>,
    pub ids: Arc<dyn IdGenerator>,
}

impl Ports {
    /// The queue with this logical name (`fetch`, `transform`, `write`, `fetch-dlq`, ...).
    pub fn queue(&self, logical_name: &str) -> Result<Arc<dyn Queue>, QueueError> {
        self.queues
            .get(logical_name)
            .cloned()
            .ok_or_else(|| QueueError::UnknownQueue(logical_name.to_owned()))
    }
}

impl std::fmt::Debug for Ports {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ports")
            .field("backend", &self.backend)
            .field("queues", &self.queues.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}
