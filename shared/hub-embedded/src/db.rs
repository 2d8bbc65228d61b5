//! One SQLite database file shared by every handle and process that opens the data directory.
//!
//! WAL mode lets readers run beside the one writer of the moment; `synchronous = FULL` makes a
//! commit durable before the call returns (so a SIGKILL, or even a power cut, loses nothing
//! that was acknowledged). Write transactions start with `BEGIN IMMEDIATE`, so two processes
//! never both read-then-upgrade and deadlock; the busy timeout queues them instead.
//!
//! Each `Db` has one connection, owned by a thread of its own: callers hand it their work and
//! await the answer, and it runs every call waiting at that moment in one transaction, each
//! write in a savepoint (group commit). A busy process thus pays one commit, and on a disk one
//! fsync, per group instead of per call, and calls never contend for the connection.

use std::cell::Cell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use hub_core::ports::{Clock, DISK_FULL, StorageFault, StorageHealth};
use rusqlite::{Connection, ErrorCode, OpenFlags};
use tokio::sync::{Notify, oneshot};

use crate::EmbeddedError;

/// How long a statement waits for another process's write lock before giving up.
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) struct Db {
    path: PathBuf,
    /// Held by the database thread while it runs a group, and by [`Db::call_blocking`].
    conn: Arc<Mutex<Connection>>,
    /// To the database thread, which ends when the `Db` is dropped. `None` once dropping.
    jobs: Option<std_mpsc::Sender<Job>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// After a write failed for a full disk, the fault is reported until a write commits with no
/// such failure for this long: while small writes still fit in free pages and bigger ones do
/// not, the health does not flap.
const DISK_FULL_SETTLES_AFTER: Duration = Duration::from_secs(30);

/// Whether the data directory's disk refuses writes: one per backend, shared by its databases,
/// and what its `Ports::storage` reports.
pub(crate) struct StorageWatch {
    clock: Arc<dyn Clock>,
    disk_full: Mutex<Option<DiskFull>>,
}

struct DiskFull {
    since: DateTime<Utc>,
    last_failure: DateTime<Utc>,
    dir: PathBuf,
}

impl StorageWatch {
    pub(crate) fn new(clock: Arc<dyn Clock>) -> Arc<Self> {
        Arc::new(Self {
            clock,
            disk_full: Mutex::new(None),
        })
    }

    fn failed_for_full_disk(&self, database: &Path) {
        let now = self.clock.now();
        let mut disk_full = self.disk_full.lock().unwrap_or_else(|e| e.into_inner());
        let since = disk_full.as_ref().map_or(now, |episode| episode.since);
        *disk_full = Some(DiskFull {
            since,
            last_failure: now,
            dir: database.parent().unwrap_or(database).to_owned(),
        });
    }

    fn committed_a_write(&self) {
        let now = self.clock.now();
        let mut disk_full = self.disk_full.lock().unwrap_or_else(|e| e.into_inner());
        let settled = disk_full.as_ref().is_some_and(|episode| {
            now.signed_duration_since(episode.last_failure)
                .to_std()
                .is_ok_and(|quiet| quiet >= DISK_FULL_SETTLES_AFTER)
        });
        if settled {
            *disk_full = None;
        }
    }
}

impl StorageHealth for StorageWatch {
    fn fault(&self) -> Option<StorageFault> {
        let disk_full = self.disk_full.lock().unwrap_or_else(|e| e.into_inner());
        disk_full.as_ref().map(|episode| StorageFault {
            code: DISK_FULL,
            message: format!(
                "the disk holding the data directory {} is full: writes fail until space is \
                 freed, then resume by themselves",
                episode.dir.display()
            ),
            since: episode.since,
        })
    }
}

/// Most calls one transaction takes in: bounds how long the first of them waits for the rest.
const MAX_GROUP: usize = 32;

/// A call, type-erased for the database thread: runs the work and says whether it succeeded
/// (a failed write is rolled back to its savepoint), and leaves the answer to be sent once the
/// group's transaction is over.
struct Job {
    writes: bool,
    /// Given no connection, the work is skipped (its group failed before it) and the answer
    /// carries the group's failure.
    run: Work,
}

type Work = Box<dyn FnOnce(Option<&Connection>) -> (bool, Answer) + Send>;

/// Sends a call's result, or the failure of its group's commit instead.
type Answer = Box<dyn FnOnce(Result<(), String>) + Send>;

/// What each port's error type must offer so [`Db::write`] can report SQLite and runtime
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

thread_local! {
    /// Set by [`describe`] when a call on this thread failed for a full disk: every SQLite
    /// error of a group (its calls' and its own) is described on the database thread, so
    /// [`run_group`] learns from this flag that the group hit a full disk, whichever port's
    /// error type carried the failure back.
    static DISK_FULL_SEEN: Cell<bool> = const { Cell::new(false) };
}

const DISK_FULL_SENTENCE: &str =
    "the disk holding the local database is full; writes fail until space is freed";

fn describe(error: &rusqlite::Error) -> String {
    match error.sqlite_error_code() {
        // SQLite answers SQLITE_FULL when a write gets ENOSPC.
        Some(ErrorCode::DiskFull) => {
            DISK_FULL_SEEN.with(|seen| seen.set(true));
            DISK_FULL_SENTENCE.to_owned()
        }
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
            "the local database is locked by another process; retry".to_owned()
        }
        Some(ErrorCode::ReadOnly) => {
            "the data directory is read-only: this call writes, and only reading works".to_owned()
        }
        _ => format!("local database error: {error}"),
    }
}

impl Db {
    /// Opens (creating if needed, with owner-only permissions), runs `migrate` (which moves data
    /// written by an earlier version into the current shape) and applies `schema`, in one
    /// transaction, then starts the database thread.
    pub(crate) fn open(
        path: &Path,
        migrate: fn(&Connection) -> rusqlite::Result<()>,
        schema: &str,
        watch: Arc<StorageWatch>,
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
        Self::serve_connection(path, conn, watch)
    }

    /// Opens an existing database for reading only: nothing is created, migrated or written,
    /// and every write fails with SQLite's read-only error.
    ///
    /// SQLite reads a WAL database read-only through its `-wal` and `-shm` files, and must
    /// create them when they are missing, which a directory it cannot write refuses. They are
    /// missing when no process has the database open (the last one to close removes them), and
    /// then everything is in the main file: it is opened `immutable`, without them.
    pub(crate) fn open_read_only(
        path: &Path,
        watch: Arc<StorageWatch>,
    ) -> Result<Arc<Self>, EmbeddedError> {
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let opened = if Path::new(&wal).exists() {
            Connection::open_with_flags(path, flags)
        } else {
            Connection::open_with_flags(
                format!("{}?immutable=1", file_uri(path)),
                flags | OpenFlags::SQLITE_OPEN_URI,
            )
        };
        let conn = opened
            .and_then(|conn| conn.busy_timeout(BUSY_TIMEOUT).map(|()| conn))
            .map_err(|source| EmbeddedError::Database {
                path: path.to_owned(),
                source,
            })?;
        Self::serve_connection(path, conn, watch)
    }

    fn serve_connection(
        path: &Path,
        conn: Connection,
        watch: Arc<StorageWatch>,
    ) -> Result<Arc<Self>, EmbeddedError> {
        let conn = Arc::new(Mutex::new(conn));
        let (jobs, queue) = std_mpsc::channel();
        let serving = Arc::clone(&conn);
        let database = path.to_owned();
        let thread = std::thread::Builder::new()
            .name("hub-sqlite".into())
            .spawn(move || serve(&serving, &queue, &watch, &database))
            .map_err(|source| EmbeddedError::Io {
                path: path.to_owned(),
                source,
            })?;
        Ok(Arc::new(Self {
            path: path.to_owned(),
            conn,
            jobs: Some(jobs),
            thread: Some(thread),
        }))
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Runs work that writes on the database thread, atomically: inside a savepoint, rolled
    /// back if the work returns an error. The result comes back once the transaction holding
    /// it has committed, so a success is durable. Calls made at the same moment share one
    /// transaction (group commit): one fsync for all of them instead of one each.
    pub(crate) async fn write<T, E, F>(&self, work: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: PortError,
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
    {
        self.submit(true, work).await
    }

    /// Runs work that only reads on the database thread, in a transaction (one snapshot).
    pub(crate) async fn read<T, E, F>(&self, work: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: PortError,
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
    {
        self.submit(false, work).await
    }

    async fn submit<T, E, F>(&self, writes: bool, work: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: PortError,
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let run = Box::new(move |conn: Option<&Connection>| -> (bool, Answer) {
            let result = conn.map(work);
            let succeeded = matches!(result, Some(Ok(_)));
            let answer: Answer = Box::new(move |group: Result<(), String>| {
                let _ = reply.send(match (group, result) {
                    (Ok(()), Some(result)) => result,
                    (Err(message), _) => Err(E::unavailable(message)),
                    (Ok(()), None) => Err(E::unavailable("the call was not run".into())),
                });
            });
            (succeeded, answer)
        });
        let sent = self
            .jobs
            .as_ref()
            .is_some_and(|jobs| jobs.send(Job { writes, run }).is_ok());
        if !sent {
            return Err(E::unavailable(
                "the local database thread has stopped".into(),
            ));
        }
        answer.await.unwrap_or_else(|_| {
            Err(E::unavailable(
                "a local database task did not finish".into(),
            ))
        })
    }

    /// Runs work on the caller's thread, for callers that are already off the runtime
    /// (opening the backend). The work manages its own transaction.
    pub(crate) fn call_blocking<T, E, F>(&self, work: F) -> Result<T, E>
    where
        F: FnOnce(&mut Connection) -> Result<T, E>,
    {
        // A panic in an earlier call cannot leave a transaction open (see `run_group`), so the
        // connection behind a poisoned lock is still sound.
        let mut conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        work(&mut conn)
    }
}

/// Closing the channel ends the thread once it has answered the calls already handed to it;
/// waiting for that means the connection is closed (SQLite checkpoints and removes its WAL)
/// before the owner goes on, as when the connection was closed in place. A process that exits
/// right after dropping its ports leaves no WAL behind.
impl Drop for Db {
    fn drop(&mut self) {
        drop(self.jobs.take());
        if let Some(thread) = self.thread.take()
            && thread.thread().id() != std::thread::current().id()
        {
            let _ = thread.join();
        }
    }
}

/// The database thread: takes every call waiting and runs them as one group, until the `Db`
/// is dropped.
fn serve(
    conn: &Mutex<Connection>,
    queue: &std_mpsc::Receiver<Job>,
    watch: &StorageWatch,
    database: &Path,
) {
    while let Ok(first) = queue.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match queue.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        let conn = conn.lock().unwrap_or_else(|e| e.into_inner());
        run_group(&conn, group, watch, database);
    }
}

/// One transaction (`BEGIN IMMEDIATE` when any call writes, so two processes never both
/// read-then-upgrade; a read-only group takes no write lock), each write in its own savepoint.
/// Every answer waits for the commit; if it fails, every call of the group fails with it.
/// The storage health is updated before the answers go out, so a caller that saw its write
/// fail for a full disk finds the fault reported.
fn run_group(conn: &Connection, group: Vec<Job>, watch: &StorageWatch, database: &Path) {
    DISK_FULL_SEEN.with(|seen| seen.set(false));
    let writes = group.iter().any(|job| job.writes);
    let begin = if writes { "BEGIN IMMEDIATE" } else { "BEGIN" };
    let mut broken = conn
        .execute_batch(begin)
        .err()
        .map(|error| describe(&error));
    let mut answers = Vec::with_capacity(group.len());
    for job in group {
        if broken.is_none()
            && job.writes
            && let Err(error) = conn.execute_batch("SAVEPOINT call")
        {
            broken = Some(describe(&error));
        }
        if broken.is_some() {
            // Not run: its answer is the group's failure.
            answers.push((job.run)(None).1);
            continue;
        }
        let outcome =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (job.run)(Some(conn))));
        // A panicking call's answer was dropped with it: its caller hears that it did not
        // finish. Its writes are undone like a failed call's.
        let succeeded = matches!(outcome, Ok((true, _)));
        if let Ok((_, answer)) = outcome {
            answers.push(answer);
        }
        if job.writes {
            let end = if succeeded {
                "RELEASE call"
            } else {
                "ROLLBACK TO call; RELEASE call"
            };
            if let Err(error) = conn.execute_batch(end) {
                // A full disk makes SQLite roll the whole transaction back, savepoint and all:
                // the group failed for that reason, not for the savepoint that is gone.
                broken = Some(if DISK_FULL_SEEN.with(Cell::get) {
                    DISK_FULL_SENTENCE.to_owned()
                } else {
                    describe(&error)
                });
            }
        }
    }
    let outcome = match broken {
        Some(message) => Err(message),
        None => conn
            .execute_batch("COMMIT")
            .map_err(|error| describe(&error)),
    };
    if !conn.is_autocommit() {
        // The commit failed, or never ran: nothing of the group may stay.
        let _ = conn.execute_batch("ROLLBACK");
    }
    if DISK_FULL_SEEN.with(Cell::get) {
        watch.failed_for_full_disk(database);
    } else if writes && outcome.is_ok() {
        watch.committed_a_write();
    }
    for answer in answers {
        answer(outcome.clone());
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

/// `file:` and the path, with what a URI cannot hold percent-encoded.
fn file_uri(path: &Path) -> String {
    let mut uri = String::from("file:");
    for byte in path.as_os_str().as_encoded_bytes() {
        if byte.is_ascii_alphanumeric() || b"/-._~".contains(byte) {
            uri.push(char::from(*byte));
        } else {
            uri.push_str(&format!("%{byte:02X}"));
        }
    }
    uri
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[derive(Debug, PartialEq)]
    struct Failed(String);

    impl PortError for Failed {
        fn unavailable(message: String) -> Self {
            Self(message)
        }
    }

    fn insert(conn: &Connection, value: i64) -> Result<(), Failed> {
        conn.execute("INSERT INTO t (x) VALUES (?1)", [value])
            .map(drop)
            .map_err(Failed::from_sqlite)
    }

    /// A database with one table `t`, its health on the system clock.
    fn open_t(path: &Path) -> Arc<Db> {
        let watch = StorageWatch::new(Arc::new(hub_core::ports::SystemClock));
        Db::open(path, |_| Ok(()), "CREATE TABLE t (x INTEGER);", watch).unwrap()
    }

    fn values(db: &Db) -> Vec<i64> {
        db.call_blocking(|conn| {
            let mut stmt = conn.prepare("SELECT x FROM t ORDER BY x")?;
            stmt.query_map([], |row| row.get(0))?.collect()
        })
        .unwrap()
    }

    /// Calls waiting together share a transaction, but each succeeds or fails on its own: a
    /// failed or panicking write leaves nothing behind and takes no other call down with it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn each_call_of_a_group_commits_or_fails_alone() {
        let dir = tempfile::tempdir().unwrap();
        let db = open_t(&dir.path().join("db"));
        // Holds the database thread so that the calls below queue up and run as one group.
        let (started, holding) = std::sync::mpsc::channel();
        let hold = {
            let db = Arc::clone(&db);
            tokio::spawn(async move {
                db.write(move |conn| {
                    started.send(()).unwrap();
                    std::thread::sleep(Duration::from_millis(200));
                    insert(conn, 0)
                })
                .await
            })
        };
        holding.recv().unwrap();
        let ok = |value| {
            let db = Arc::clone(&db);
            tokio::spawn(async move { db.write(move |conn| insert(conn, value)).await })
        };
        let first = ok(1);
        let failing = {
            let db = Arc::clone(&db);
            tokio::spawn(async move {
                db.write(|conn| {
                    insert(conn, 2)?;
                    Err::<(), _>(Failed("refused".into()))
                })
                .await
            })
        };
        let panicking = {
            let db = Arc::clone(&db);
            tokio::spawn(async move {
                db.write(|conn| {
                    insert(conn, 3)?;
                    panic!("a bug in the work");
                    #[allow(unreachable_code)]
                    Ok::<(), Failed>(())
                })
                .await
            })
        };
        let reading = {
            let db = Arc::clone(&db);
            tokio::spawn(async move {
                db.read(|conn| {
                    let mut stmt = conn
                        .prepare("SELECT x FROM t")
                        .map_err(Failed::from_sqlite)?;
                    stmt.query_map([], |row| row.get::<_, i64>(0))
                        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
                        .map_err(Failed::from_sqlite)
                })
                .await
            })
        };
        let last = ok(4);
        assert_eq!(hold.await.unwrap(), Ok(()));
        assert_eq!(first.await.unwrap(), Ok(()));
        assert_eq!(failing.await.unwrap(), Err(Failed("refused".into())));
        let panicked = panicking.await.unwrap().unwrap_err();
        assert!(panicked.0.contains("did not finish"), "{panicked:?}");
        // The read runs inside the group: it may see the writes before it, never undone ones.
        let seen = reading.await.unwrap().unwrap();
        assert!(seen.contains(&0), "{seen:?}");
        assert!(!seen.contains(&2) && !seen.contains(&3), "{seen:?}");
        assert_eq!(last.await.unwrap(), Ok(()));
        assert_eq!(values(&db), [0, 1, 4]);
    }

    /// When the group's transaction cannot start, every call of it fails and none runs.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_group_that_cannot_start_fails_every_call() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let db = open_t(&path);
        db.call_blocking(|conn| conn.busy_timeout(Duration::from_millis(10)))
            .unwrap();
        let other = open_connection(&path).unwrap();
        other.execute_batch("BEGIN IMMEDIATE").unwrap();
        let ran = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let result = {
            let ran = Arc::clone(&ran);
            db.write(move |conn| {
                ran.store(true, std::sync::atomic::Ordering::SeqCst);
                insert(conn, 1)
            })
            .await
        };
        let error = result.unwrap_err();
        assert!(error.0.contains("locked by another process"), "{error:?}");
        assert!(!ran.load(std::sync::atomic::Ordering::SeqCst));
        other.execute_batch("ROLLBACK").unwrap();
        db.write(|conn| insert(conn, 5)).await.unwrap();
        assert_eq!(values(&db), [5]);
    }

    /// Dropping the last handle closes the connection before the drop returns: SQLite removes
    /// its WAL file then, so a command that exits right after leaves none behind.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn dropping_the_handle_closes_the_database() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let db = open_t(&path);
        db.write(|conn| insert(conn, 1)).await.unwrap();
        let wal = dir.path().join("db-wal");
        assert!(wal.exists());
        drop(db);
        assert!(!wal.exists(), "the connection was still open");
    }

    /// A write that fails for a full disk makes the backend report `disk_full` (SQLite's page
    /// quota fails a write with SQLITE_FULL, as ENOSPC does); once writes commit again for
    /// a while, the report ends.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_disk_is_reported_until_writes_commit_again() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(hub_core::ports::ManualClock::new(
            "2025-01-01T00:00:00Z".parse().unwrap(),
        ));
        let watch = StorageWatch::new(clock.clone());
        let db = Db::open(
            &dir.path().join("db"),
            |_| Ok(()),
            "CREATE TABLE t (x INTEGER);",
            Arc::clone(&watch),
        )
        .unwrap();
        let quota = |pages: Option<i64>| {
            db.call_blocking(|conn| {
                let pages = match pages {
                    Some(pages) => pages,
                    None => conn.query_row("PRAGMA page_count", [], |row| row.get(0))?,
                };
                conn.pragma_update_and_check(None, "max_page_count", pages, |row| {
                    row.get::<_, i64>(0)
                })
            })
            .unwrap()
        };
        let big_insert = || {
            db.write(|conn| {
                conn.execute(
                    "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 20000)
                     INSERT INTO t (x) SELECT x FROM n",
                    [],
                )
                .map(drop)
                .map_err(Failed::from_sqlite)
            })
        };
        db.write(|conn| insert(conn, 1)).await.unwrap();
        assert_eq!(watch.fault(), None);

        quota(None);
        let refused = big_insert().await.unwrap_err();
        assert!(refused.0.contains("disk"), "{refused:?}");
        let began = clock.now();
        let fault = watch.fault().expect("the full disk is reported");
        assert_eq!((fault.code, fault.since), (DISK_FULL, began));
        assert!(fault.message.contains("is full"), "{fault:?}");

        // Room again: writes commit, and the report ends once none has failed for a while.
        quota(Some(1_000_000));
        clock.advance(Duration::from_secs(5));
        big_insert().await.unwrap();
        assert_eq!(watch.fault().map(|fault| fault.since), Some(began));
        clock.advance(DISK_FULL_SETTLES_AFTER);
        db.write(|conn| insert(conn, 2)).await.unwrap();
        assert_eq!(watch.fault(), None);
    }
}
