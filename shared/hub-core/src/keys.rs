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
//! | sync task | `tenant#<t>` | `task#<id>` | `due#<shard>` / `<nextRunAt>#<t>#<id>` while due-able |
//! | task cursor | `tenant#<t>` | `cursor#<taskId>` | |
//! | execution | `exec#<t>` | `<executionId>` (ULID: time order) | `taskexec#<t>#<taskId>` / `<executionId>` |
//! | execution log line | `log#<executionId>` | `<ulid>` (TTL) | |
//! | idempotency record | `idem#<key>` | `idem` (TTL) | |
//!
//! System-scope items use the reserved tenant `system`.

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

/// Sort-key prefixes of the kinds that share a tenant partition.
pub mod prefix {
    pub const TENANT_INTEGRATION: &str = "ti#";
    pub const CONNECTION: &str = "conn#";
    pub const SCHEMA: &str = "schema#";
    pub const TASK: &str = "task#";
    pub const CURSOR: &str = "cursor#";
    pub const SCHEMA_VERSION: &str = "v#";
}
