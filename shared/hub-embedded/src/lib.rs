//! The embedded backend: every port of `hub-core` on SQLite files in one local data directory,
//! for `hub dev` and for fast tests.
//!
//! - **Durable.** Every call that returns `Ok` has committed (WAL, `synchronous = FULL`): a
//!   process killed with SIGKILL and restarted finds every accepted write and queued message.
//! - **Shared.** Several processes (and several handles in one process) may open the same
//!   directory at once, e.g. `hub dev` beside a `hub` CLI command: SQLite's locks serialise the
//!   writers, a busy timeout makes them wait for each other, and receiving a message is one
//!   transaction, so it is never handed to two consumers in one visibility window.
//! - **Off the runtime.** Every SQLite call runs on tokio's blocking pool.
//! - **Same behaviour as AWS.** The adapters follow the semantics pinned in `hub_core::ports`
//!   (checked by the contract suite in `hub-testkit`); times come from the given clock, so a
//!   test with a `ManualClock` controls visibility timeouts, delays and TTLs.
//!
//! Files: `hub.sqlite3` holds the state and records tables, the queues and the bus rules (one
//! file, so publishing an event and enqueueing its deliveries is one transaction);
//! `secrets.sqlite3` holds the secrets **in plaintext** (mode 0600; development only, see
//! below).
//!
//! # Secrets
//!
//! Local secrets are not encrypted. The files are created readable by their owner only; do
//! not put production credentials in a local data directory.

mod bus;
mod db;
pub mod pattern;
mod queue;
mod secrets;
mod state;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hub_core::ports::{Clock, MAX_VISIBILITY, Ports, Topology, UlidGenerator};
use rusqlite::TransactionBehavior;

pub use bus::{
    CODE_INVALID_ARGUMENT, CODE_MALFORMED_DETAIL, CODE_TOO_LARGE, LOCAL_ACCOUNT, LOCAL_REGION,
};
pub use hub_core::ports::MAX_SECRET_BYTES;

/// The database of tables, queues and rules inside the data directory.
pub const DATABASE_FILE: &str = "hub.sqlite3";
/// The database of secrets (plaintext) inside the data directory.
pub const SECRETS_FILE: &str = "secrets.sqlite3";
/// What `Ports::backend` reports.
pub const BACKEND_NAME: &str = "embedded";

#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    #[error("cannot use the data directory {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot open the local database {path}: {source}")]
    Database {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("the topology cannot be set up: {0}")]
    Topology(String),
}

impl EmbeddedError {
    /// Whether the data directory (or a file in it) cannot be written: permissions, a
    /// read-only mount. Reading it may still work ([`EmbeddedBackend::open_for_reading`]).
    pub fn is_read_only(&self) -> bool {
        match self {
            Self::Io { source, .. } => matches!(
                source.kind(),
                std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem
            ),
            // CANTOPEN: the directory refuses SQLite's `-wal` and `-shm` files.
            Self::Database { source, .. } => matches!(
                source.sqlite_error_code(),
                Some(rusqlite::ErrorCode::ReadOnly | rusqlite::ErrorCode::CannotOpen)
            ),
            Self::Topology(_) => false,
        }
    }
}

/// Opens the embedded backend on a data directory.
pub struct EmbeddedBackend;

impl EmbeddedBackend {
    /// Opens (creating if needed) the data directory and returns every port on it: the state
    /// and records tables, every queue of the topology with its redrive settings, the bus with
    /// the topology's rules, the secret store, the clock and a ULID generator on that clock.
    ///
    /// Blocking (file and SQLite work): call it at start-up or in `spawn_blocking`.
    pub fn open(
        dir: &Path,
        topology: &Topology,
        clock: Arc<dyn Clock>,
    ) -> Result<Ports, EmbeddedError> {
        check_topology(topology)?;
        let dir = prepare_dir(dir)?;
        let db_path = dir.join(DATABASE_FILE);
        let watch = db::StorageWatch::new(Arc::clone(&clock));
        let db = db::Db::open(
            &db_path,
            migrate,
            &[state::SCHEMA, queue::SCHEMA, bus::SCHEMA].concat(),
            Arc::clone(&watch),
        )?;
        let secrets_db = db::Db::open(
            &dir.join(SECRETS_FILE),
            |_| Ok(()),
            secrets::SCHEMA,
            Arc::clone(&watch),
        )?;
        let now_secs = clock.now().timestamp() as f64;
        let database = |source| EmbeddedError::Database {
            path: db_path.clone(),
            source,
        };
        db.call_blocking(|conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(database)?;
            for spec in &topology.queues {
                let dlq = spec
                    .redrive
                    .as_ref()
                    .map(|(dlq, _)| topology.queue_name(dlq));
                queue::declare(
                    &tx,
                    &topology.queue_name(&spec.logical_name),
                    spec,
                    dlq.as_deref(),
                )
                .map_err(database)?;
            }
            for rule in &topology.rules {
                bus::upsert_rule(
                    &tx,
                    &topology.bus_name(),
                    rule,
                    &topology.queue_name(&rule.target_queue),
                )
                .map_err(|e| EmbeddedError::Topology(e.to_string()))?;
            }
            state::purge_expired(&tx, now_secs)
                .map_err(|e| EmbeddedError::Topology(e.to_string()))?;
            tx.commit().map_err(database)
        })?;

        Ok(ports(db, secrets_db, watch, topology, clock, false))
    }

    /// Opens an existing data directory without writing to it: nothing is created, migrated,
    /// declared or purged, and every call that writes fails (`the data directory is
    /// read-only`). Queues hand out messages without recording it: a receive hides what it
    /// returned from this handle only, until its visibility timeout or a `change_visibility`,
    /// so a listing that receives and releases (the DLQ tooling) reads the queue as usual.
    /// For inspecting a directory this process may not write.
    ///
    /// Blocking, as [`EmbeddedBackend::open`].
    pub fn open_read_only(
        dir: &Path,
        topology: &Topology,
        clock: Arc<dyn Clock>,
    ) -> Result<Ports, EmbeddedError> {
        check_topology(topology)?;
        let dir = std::fs::canonicalize(dir).map_err(|source| EmbeddedError::Io {
            path: dir.to_owned(),
            source,
        })?;
        let watch = db::StorageWatch::new(Arc::clone(&clock));
        let db = db::Db::open_read_only(&dir.join(DATABASE_FILE), Arc::clone(&watch))?;
        let secrets_db = db::Db::open_read_only(&dir.join(SECRETS_FILE), Arc::clone(&watch))?;
        Ok(ports(db, secrets_db, watch, topology, clock, true))
    }

    /// For commands that only read: [`EmbeddedBackend::open`], or, when the directory
    /// cannot be written, [`EmbeddedBackend::open_read_only`].
    pub fn open_for_reading(
        dir: &Path,
        topology: &Topology,
        clock: Arc<dyn Clock>,
    ) -> Result<Ports, EmbeddedError> {
        match Self::open(dir, topology, Arc::clone(&clock)) {
            Err(error) if error.is_read_only() => Self::open_read_only(dir, topology, clock),
            opened => opened,
        }
    }
}

/// Every port on the opened databases.
fn ports(
    db: Arc<db::Db>,
    secrets_db: Arc<db::Db>,
    watch: Arc<db::StorageWatch>,
    topology: &Topology,
    clock: Arc<dyn Clock>,
    read_only: bool,
) -> Ports {
    let ids: Arc<dyn hub_core::ports::IdGenerator> =
        Arc::new(UlidGenerator::new(SharedClock(Arc::clone(&clock))));
    let topology = Arc::new(topology.clone());
    let queues = topology
        .queues
        .iter()
        .map(|spec| {
            let queue: Arc<dyn hub_core::ports::Queue> = Arc::new(queue::SqliteQueue::new(
                Arc::clone(&db),
                spec.logical_name.clone(),
                topology.queue_name(&spec.logical_name),
                Arc::clone(&clock),
                Arc::clone(&ids),
                read_only,
            ));
            (spec.logical_name.clone(), queue)
        })
        .collect::<BTreeMap<_, _>>();
    Ports {
        backend: BACKEND_NAME,
        state: Arc::new(state::SqliteStateStore::new(
            Arc::clone(&db),
            topology.state_table(),
            Arc::clone(&clock),
        )),
        records: Arc::new(state::SqliteStateStore::new(
            Arc::clone(&db),
            topology.records_table(),
            Arc::clone(&clock),
        )),
        queues,
        bus: Arc::new(bus::SqliteEventBus::new(
            Arc::clone(&db),
            topology.bus_name(),
            Arc::clone(&topology),
            Arc::clone(&clock),
            Arc::clone(&ids),
        )),
        secrets: Arc::new(secrets::SqliteSecretStore::new(
            secrets_db,
            Arc::clone(&clock),
            Arc::clone(&ids),
        )),
        storage: watch,
        clock,
        ids,
    }
}

/// `UlidGenerator` needs a sized clock; this shares the backend's.
struct SharedClock(Arc<dyn Clock>);

impl Clock for SharedClock {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.0.now()
    }
}

/// Brings a data directory written by an earlier version to the current tables.
fn migrate(conn: &rusqlite::Connection) -> rusqlite::Result<()> {
    state::migrate(conn)?;
    queue::migrate(conn)
}

/// Creates the directory (owner-only when it is new) and returns its canonical path, so every
/// handle on it shares in-process queue wake-ups whatever path spelling it was opened with.
fn prepare_dir(dir: &Path) -> Result<PathBuf, EmbeddedError> {
    let io = |source| EmbeddedError::Io {
        path: dir.to_owned(),
        source,
    };
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(io)?;
    std::fs::canonicalize(dir).map_err(io)
}

fn check_topology(topology: &Topology) -> Result<(), EmbeddedError> {
    let invalid = |message: String| Err(EmbeddedError::Topology(message));
    let mut names = HashSet::new();
    for spec in &topology.queues {
        if spec.logical_name.is_empty() || !names.insert(spec.logical_name.as_str()) {
            return invalid(format!(
                "queue names must be unique and non-empty (`{}`)",
                spec.logical_name
            ));
        }
        if spec.visibility_timeout > MAX_VISIBILITY {
            return invalid(format!(
                "queue `{}` has a visibility timeout over 12 hours",
                spec.logical_name
            ));
        }
    }
    for spec in &topology.queues {
        if let Some((dlq, max_receive_count)) = &spec.redrive {
            if dlq == &spec.logical_name || !names.contains(dlq.as_str()) {
                return invalid(format!(
                    "queue `{}` redrives to `{dlq}`, which is not another queue of the topology",
                    spec.logical_name
                ));
            }
            if !(1..=1000).contains(max_receive_count) {
                return invalid(format!(
                    "queue `{}` needs a max receive count of 1 to 1000",
                    spec.logical_name
                ));
            }
        }
    }
    Ok(())
}
