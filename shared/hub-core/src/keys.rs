//! Where each kind of item lives in the `hub-state` table: one place for every key, so no two
//! functions invent different layouts. Ids are validated newtypes or ULIDs and never contain `#`.
//!
//! | item | pk | sk | gsi1pk / gsi1sk |
//! |---|---|---|---|
//! | integration definition | `def#<id>` | `definition` | `definitions` / `<id>` |
//! | tenant integration | `tenant#<t>` | `ti#<id>` | |
//! | connection (metadata) | `tenant#<t>` | `conn#<id>` | |
//! | schema head (latest version) | `tenant#<t>` | `schema#<id>` | |
//! | schema version | `schema#<t>#<id>` | `v#<version, 10 digits>` | |
//! | sync task | `tenant#<t>` | `task#<id>` | `due#<shard>` / `<nextRunAt>#<t>#<id>` while due-able (see [`due_partition`]) |
//! | task cursor | `tenant#<t>` | `cursor#<taskId>` | |
//! | execution | `exec#<t>` | `<executionId>` (ULID: time order) | `taskexec#<t>#<taskId>` / `<executionId>` |
//! | execution log line | `log#<executionId>` | `<ulid>` (TTL) | |
//! | execution error (the first [`MAX_STORED_ERRORS`]) | `execerr#<executionId>` | `<n, 6 digits>` | |
//! | outbox entry (a message or event not yet delivered) | `outbox#<shard>` | `<ulid>` | |
//! | idempotency record | `idem#<key>` | `idem` (TTL) | |
//! | circuit breaker of a connection | `tenant#<t>` | `circuit#<connectionId>` | |
//! | webhook route | `whroute#<routeId>` | `route` | `whroutes#<t>` / `<routeId>` |
//! | webhook delivery (dedup ledger) | `whdlv#<routeId>#<deliveryId>` | `ledger` (TTL) | |
//! | webhook payload chunk (claim check) | `whdlv#<routeId>#<deliveryId>` | `chunk#<n, 4 digits>` (TTL) | |
//! | webhook rate-limit window | `whrate#<routeId>` | `<window start, ms>` (TTL) | |
//! | webhook delivery no realtime task took | `tenant#<t>` | `unrouted#<receivedAt>#<routeId>#<deliveryId>` (TTL) | |
//! | run bookkeeping: a page the fetcher enqueued | `pipeline#<executionId>` | `page#<n, 10 digits>` (TTL) | |
//! | run bookkeeping: a batch the writer counted | `pipeline#<executionId>` | `batch#<source key>` (TTL) | |
//! | failure note: why a queue message's last handling failed (read by the DLQ tooling) | `failnote#<queue>#<messageId>` | `note` (TTL) | |
//!
//! The `hub-records` table has its own layout, in [`records`].
//!
//! System-scope items use the reserved tenant `system`.

use chrono::{DateTime, SecondsFormat, Utc};

use crate::ports::Key;

pub fn definition(id: &str) -> Key {
    Key::new(format!("def#{id}"), "definition")
}
pub const DEFINITIONS_INDEX: &str = "definitions";

pub fn tenant_partition(tenant: &str) -> String {
    format!("tenant#{tenant}")
}

pub fn tenant_integration(tenant: &str, id: &str) -> Key {
    Key::new(tenant_partition(tenant), format!("ti#{id}"))
}

pub fn connection(tenant: &str, id: &str) -> Key {
    Key::new(tenant_partition(tenant), format!("conn#{id}"))
}

pub fn schema_head(tenant: &str, schema_id: &str) -> Key {
    Key::new(tenant_partition(tenant), format!("schema#{schema_id}"))
}

pub fn schema_version(tenant: &str, schema_id: &str, version: u32) -> Key {
    Key::new(
        format!("schema#{tenant}#{schema_id}"),
        format!("v#{version:010}"),
    )
}

pub fn task(tenant: &str, task_id: &str) -> Key {
    Key::new(tenant_partition(tenant), format!("task#{task_id}"))
}

pub fn cursor(tenant: &str, task_id: &str) -> Key {
    Key::new(tenant_partition(tenant), format!("cursor#{task_id}"))
}

pub fn execution_partition(tenant: &str) -> String {
    format!("exec#{tenant}")
}

pub fn execution(tenant: &str, execution_id: &str) -> Key {
    Key::new(execution_partition(tenant), execution_id)
}

pub fn executions_of_task_index(tenant: &str, task_id: &str) -> String {
    format!("taskexec#{tenant}#{task_id}")
}

pub fn execution_log_partition(execution_id: &str) -> String {
    format!("log#{execution_id}")
}

pub fn idempotency(key: &str) -> Key {
    Key::new(format!("idem#{key}"), "idem")
}

/// The circuit-breaker state of one connection's upstream API.
pub fn circuit(tenant: &str, connection: &str) -> Key {
    Key::new(tenant_partition(tenant), format!("circuit#{connection}"))
}

/// A webhook endpoint. Route ids are unguessable (they are the endpoint's only address), so
/// the route has its own partition and is found without knowing its tenant.
pub fn webhook_route(route_id: &str) -> Key {
    Key::new(format!("whroute#{route_id}"), "route")
}

/// `gsi1pk` of a tenant's webhook routes (`gsi1sk` is the route id).
pub fn webhook_routes_index(tenant: &str) -> String {
    format!("whroutes#{tenant}")
}

/// The partition of one delivery: its dedup ledger entry and its payload chunks. Delivery ids
/// are the provider's (visible ASCII, at most 256 characters, `#` possible): the partition is
/// never parsed back.
pub fn webhook_delivery_partition(route_id: &str, delivery_id: &str) -> String {
    format!("whdlv#{route_id}#{delivery_id}")
}

pub fn webhook_delivery(route_id: &str, delivery_id: &str) -> Key {
    Key::new(webhook_delivery_partition(route_id, delivery_id), "ledger")
}

/// Chunk `n` (from 0) of a payload too large for a bus event.
pub fn webhook_payload_chunk(route_id: &str, delivery_id: &str, n: u32) -> Key {
    Key::new(
        webhook_delivery_partition(route_id, delivery_id),
        format!("chunk#{n:04}"),
    )
}

/// The request counter of one rate-limit window of a route.
pub fn webhook_rate_window(route_id: &str, window_start_ms: i64) -> Key {
    Key::new(
        format!("whrate#{route_id}"),
        format!("{window_start_ms:015}"),
    )
}

/// A delivery kept for inspection because no realtime task of its integration took it.
pub fn webhook_unrouted(
    tenant: &str,
    received_at: DateTime<Utc>,
    route_id: &str,
    delivery_id: &str,
) -> Key {
    Key::new(
        tenant_partition(tenant),
        format!(
            "{}{}#{route_id}#{delivery_id}",
            prefix::UNROUTED_WEBHOOK,
            sortable_time(received_at)
        ),
    )
}

/// Sort-key prefixes of the kinds that share a tenant partition.
pub mod prefix {
    pub const TENANT_INTEGRATION: &str = "ti#";
    pub const CONNECTION: &str = "conn#";
    pub const SCHEMA: &str = "schema#";
    pub const TASK: &str = "task#";
    pub const CURSOR: &str = "cursor#";
    pub const CIRCUIT: &str = "circuit#";
    pub const UNROUTED_WEBHOOK: &str = "unrouted#";
    pub const SCHEMA_VERSION: &str = "v#";
}

/// The due index is spread over this many partitions (`due#0` .. `due#3`) so that no single
/// index partition takes every task's writes; the trigger queries every shard. A task's shard
/// is a stable hash of its tenant and id ([`shard_of`]); changing the count re-shards only
/// when every task is re-written, so it stays fixed. The outbox uses the same shards.
pub const DUE_SHARDS: u32 = 4;

/// The shard of a task: FNV-1a of `<tenant>#<taskId>`, stable across builds and platforms
/// (unlike `std`'s hasher), modulo [`DUE_SHARDS`].
pub fn shard_of(tenant: &str, task_id: &str) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in tenant.bytes().chain(*b"#").chain(task_id.bytes()) {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash % DUE_SHARDS
}

/// `gsi1pk` of a due-able task.
pub fn due_partition(shard: u32) -> String {
    format!("due#{shard}")
}

/// `gsi1sk` of a due-able task: the sortable next run time first, so "due at or before now" is
/// one range query per shard.
pub fn due_sort_key(next_run_at: DateTime<Utc>, tenant: &str, task_id: &str) -> String {
    format!("{}#{tenant}#{task_id}", sortable_time(next_run_at))
}

/// The exclusive upper bound of the due range: every task with `nextRunAt <= now` sorts below.
pub fn due_sort_bound(now: DateTime<Utc>) -> String {
    // `~` sorts after `#` and after every character of a tenant or task id.
    format!("{}#~", sortable_time(now))
}

/// A timestamp that sorts as text in time order: RFC 3339 in UTC with milliseconds and `Z`,
/// always 24 characters (years 0000 to 9999). Sub-millisecond parts are dropped.
pub fn sortable_time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// How many errors an execution keeps as items; the rest are only counted.
pub const MAX_STORED_ERRORS: u64 = 100;

pub fn execution_error_partition(execution_id: &str) -> String {
    format!("execerr#{execution_id}")
}

/// The `n`th error of an execution (from 1), in the order the error counter assigned.
pub fn execution_error(execution_id: &str, n: u64) -> Key {
    Key::new(execution_error_partition(execution_id), format!("{n:06}"))
}

pub fn outbox_partition(shard: u32) -> String {
    format!("outbox#{shard}")
}

pub fn outbox_entry(shard: u32, id: &str) -> Key {
    Key::new(outbox_partition(shard), id)
}

pub fn pipeline_partition(execution_id: &str) -> String {
    format!("pipeline#{execution_id}")
}

/// Marks page `page` of a run as counted in the execution's `batchesEnqueued` (hub-writer's
/// run protocol), so a redelivered fetch job never counts its batches twice.
pub fn pipeline_page(execution_id: &str, page: u32) -> Key {
    Key::new(pipeline_partition(execution_id), format!("page#{page:010}"))
}

/// Marks the batch with source key `source_key` ([`crate::messages::BatchSource::key`]) of a
/// run as counted in the execution's `batchesWritten`, so a redelivered write batch never
/// counts twice.
pub fn pipeline_batch(execution_id: &str, source_key: &str) -> Key {
    Key::new(
        pipeline_partition(execution_id),
        format!("batch#{source_key}"),
    )
}

/// Marks what a run lost to a dead-letter queue as counted (hub-writer's run protocol):
/// `dead#batch#<source key>` for a record or write batch (in the execution's `batchesDead`, taken
/// back out when a replay writes the batch after all), `dead#page#<page>` for a fetch job. So a
/// message noted dead twice is counted once.
pub fn pipeline_dead_batch(execution_id: &str, source_key: &str) -> Key {
    Key::new(
        pipeline_partition(execution_id),
        format!("dead#batch#{source_key}"),
    )
}

/// See [`pipeline_dead_batch`]: page `page`'s fetch job of a run reached the fetch DLQ.
pub fn pipeline_dead_page(execution_id: &str, page: u32) -> Key {
    Key::new(
        pipeline_partition(execution_id),
        format!("dead#page#{page:010}"),
    )
}

/// Why the last handling of message `message_id` of queue `queue` (logical name: `fetch`,
/// `transform`, `write`) failed. SQS keeps no reason and keeps the message id when it moves a
/// message to its DLQ, so the DLQ tooling finds the note of a dead message by these two.
pub fn failure_note(queue: &str, message_id: &str) -> Key {
    Key::new(format!("failnote#{queue}#{message_id}"), "note")
}

/// Keys of the `hub-records` table (the written entities; hub-writer documents the attributes).
///
/// | item | pk | sk | gsi1pk / gsi1sk |
/// |---|---|---|---|
/// | record | `<t>#<entityType>` | `<recordId>` | `<t>#<integrationId>#<externalId>` / `<entityType>` |
///
/// The record id is derived from the tenant, the entity type and the record's dedup key
/// (hub-writer's `record_id`), so every writer finds the same item for the same dedup key.
/// Tenant, entity type and integration ids never contain `#`; external ids may (they are the
/// source's), which is harmless because the index key is never parsed back and the external
/// id comes last. A record flagged deleted leaves the index (its `gsi1` keys are removed).
pub mod records {
    use crate::ports::Key;

    /// The partition of a tenant's records of one entity type.
    pub fn partition(tenant: &str, entity_type: &str) -> String {
        format!("{tenant}#{entity_type}")
    }

    pub fn record(tenant: &str, entity_type: &str, record_id: &str) -> Key {
        Key::new(partition(tenant, entity_type), record_id)
    }

    /// `gsi1pk` of a record: lookup by (integration, external id) within a tenant.
    pub fn external_id_index(tenant: &str, integration_id: &str, external_id: &str) -> String {
        format!("{tenant}#{integration_id}#{external_id}")
    }

    /// `gsi1sk` of a record: its entity type, so one external id maps to one record per type.
    pub fn external_id_sort(entity_type: &str) -> String {
        entity_type.to_owned()
    }
}
