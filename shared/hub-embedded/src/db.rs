//! One SQLite database file shared by every handle and process that opens the data directory.
//!
//! WAL mode lets readers run beside the one writer of the moment; `synchronous = FULL` makes a
//! commit durable before the call returns (so a SIGKILL, or even a power cut, loses nothing
//! that was acknowledged). Write transactions start with `BEGIN IMMEDIATE`, so two processes
//! never both read-then-upgrade and deadlock; the busy timeout queues them instead.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode};
use tokio::sync::Notify;

use crate::EmbeddedError;

/// How long a statement waits for another process's write lock before giving up.
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) struct Db {
    path: PathBuf,
    conn: Mutex<Connection>,
}

/// What each port's error type must offer so [`Db::call`] can report SQLite and runtime
/// failures in the port's own terms.
pub(crate) trait PortError: Send + 'static {
    fn unavailable(message: String) -> Self;

    fn from_sqlite(error: rusqlite::Error) -> Self
    where
        Self: Sized,
    {
        Self::unavailable(describe(&error))
    }
}

fn describe(error: &rusqlite::Error) -> String {
    match error.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
            "the local database is locked by another process; retry".to_owned()
        }
        _ => format!("local database error: {error}"),
    }
}

impl Db {
    /// Opens (creating if needed, with owner-only permissions), runs `migrate` (which moves data
    /// written by an earlier version into the current shape) and applies `schema`, in one
    /// transaction.
    pub(crate) fn open(
        path: &Path,
        migrate: fn(&Connection) -> rusqlite::Result<()>,
        schema: &str,
    ) -> Result<Arc<Self>, EmbeddedError> {
        create_private_file(path)?;
        let database = |source| EmbeddedError::Database {
            path: path.to_owned(),
            source,
        };
        let mut conn = open_connection(path).map_err(database)?;
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(database)?;
        migrate(&tx).map_err(database)?;
        tx.execute_batch(schema).map_err(database)?;
        tx.commit().map_err(database)?;
        Ok(Arc::new(Self {
            path: path.to_owned(),
            conn: Mutex::new(conn),
        }))
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Runs blocking SQLite work on tokio's blocking pool, never on a runtime thread.
    pub(crate) async fn call<T, E, F>(self: &Arc<Self>, work: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: PortError,
        F: FnOnce(&mut Connection) -> Result<T, E> + Send + 'static,
    {
        let db = Arc::clone(self);
        tokio::task::spawn_blocking(move || db.call_blocking(work))
            .await
            .unwrap_or_else(|join| {
                Err(E::unavailable(format!(
                    "a local database task did not finish: {join}"
                )))
            })
    }

    /// The same, for callers that are already off the runtime (opening the backend).
    pub(crate) fn call_blocking<T, E, F>(&self, work: F) -> Result<T, E>
    where
        F: FnOnce(&mut Connection) -> Result<T, E>,
    {
        // A panic in an earlier call cannot leave a transaction open (rusqlite rolls back on
        // drop), so the connection behind a poisoned lock is still sound.
        let mut conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        work(&mut conn)
    }
}

fn open_connection(path: &Path) -> Result<Connection, rusqlite::Error> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // Switching to WAL needs a moment of exclusive access and SQLite does not always run the
    // busy handler for it, so a second process opening at the same time retries here.
    let mut attempts = 0;
    loop {
        match conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get::<_, String>(0))
        {
            Ok(mode) if mode.eq_ignore_ascii_case("wal") => break,
            Ok(mode) => {
                return Err(rusqlite::Error::SqliteFailure(
                    rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CANTOPEN),
                    Some(format!(
                        "the file system does not support WAL mode (journal mode is {mode})"
                    )),
                ));
            }
            Err(e)
                if attempts < 100
                    && matches!(
                        e.sqlite_error_code(),
                        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
                    ) =>
            {
                attempts += 1;
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => return Err(e),
        }
    }
    conn.pragma_update(None, "synchronous", "FULL")?;
    Ok(conn)
}

/// Creates the file readable and writable by its owner only, before SQLite opens it; SQLite
/// gives its `-wal` and `-shm` files the same permissions.
fn create_private_file(path: &Path) -> Result<(), EmbeddedError> {
    let io = |source| EmbeddedError::Io {
        path: path.to_owned(),
        source,
    };
    let mut options = std::fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        options.mode(0o600);
        options.open(path).map_err(io)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
    }
    #[cfg(not(unix))]
    {
        options.open(path).map_err(io)?;
    }
    Ok(())
}

/// In-process wake-ups for long polls: a send wakes receivers of the same queue in this
/// process at once (other processes are found by polling). Keyed by database file and queue,
/// so every handle on one data directory shares them.
pub(crate) fn queue_waker(db: &Path, queue: &str) -> Arc<Notify> {
    type Wakers = HashMap<(PathBuf, String), Arc<Notify>>;
    static WAKERS: OnceLock<Mutex<Wakers>> = OnceLock::new();
    let mut wakers = WAKERS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    Arc::clone(
        wakers
            .entry((db.to_owned(), queue.to_owned()))
            .or_insert_with(|| Arc::new(Notify::new())),
    )
}
