//! `Queue` on the `messages` table, with SQS standard-queue semantics.
//!
//! A message row carries the time it becomes visible (`visible_at_ms`, from the port's clock),
//! its receive count and the receipt handle of its latest receive. Receiving, redriving to the
//! dead-letter queue and changing visibility are each one `BEGIN IMMEDIATE` transaction, so two
//! processes never receive the same message in the same visibility window.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use hub_core::ports::{
    Clock, IdGenerator, MAX_MESSAGE_BYTES, MAX_VISIBILITY, OutgoingMessage, Queue, QueueDepth,
    QueueError, QueueSpec, ReceiveOptions, ReceivedMessage, SendOutcome, check_batch_entries,
};
use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::Notify;

use crate::db::{Db, PortError, queue_waker};

/// How often a long poll looks for messages sent by other processes (sends in this process
/// wake it at once).
const POLL_INTERVAL: Duration = Duration::from_millis(200);

/// A message's body lives apart from its row: a receive rewrites the row (receive count,
/// receipt, visibility), and SQLite rewrites a row whole, so a body kept in it would be written
/// again, overflow pages and all, at every receive. The trigger removes a body with its message,
/// whichever statement deletes it.
pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS queues (
    name TEXT PRIMARY KEY,
    visibility_ms INTEGER NOT NULL,
    retention_ms INTEGER NOT NULL,
    dlq TEXT,
    max_receive_count INTEGER
);
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    queue TEXT NOT NULL,
    id TEXT NOT NULL,
    attributes TEXT NOT NULL,
    sent_at_ms INTEGER NOT NULL,
    visible_at_ms INTEGER NOT NULL,
    receive_count INTEGER NOT NULL,
    receipt TEXT,
    UNIQUE (queue, id)
);
CREATE INDEX IF NOT EXISTS messages_visible ON messages (queue, visible_at_ms, seq);
CREATE INDEX IF NOT EXISTS messages_sent ON messages (queue, sent_at_ms);
CREATE TABLE IF NOT EXISTS message_bodies (
    seq INTEGER PRIMARY KEY,
    body TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS message_bodies_follow AFTER DELETE ON messages BEGIN
    DELETE FROM message_bodies WHERE seq = old.seq;
END;
";

/// Moves the bodies of a data directory written when they were a column of `messages` into
/// `message_bodies`, in the caller's transaction (run before [`SCHEMA`]). A no-op otherwise.
pub(crate) fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    let bodies_inline: bool = conn.query_row(
        "SELECT count(*) > 0 FROM pragma_table_info('messages') WHERE name = 'body'",
        [],
        |row| row.get(0),
    )?;
    if !bodies_inline {
        return Ok(());
    }
    conn.execute_batch(&format!(
        "{SCHEMA}
         INSERT INTO message_bodies (seq, body) SELECT seq, body FROM messages;
         ALTER TABLE messages DROP COLUMN body;"
    ))
}

impl PortError for QueueError {
    fn unavailable(message: String) -> Self {
        Self::Unavailable(message)
    }
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// Creates or reconfigures a queue (the topology is authoritative for its settings).
pub(crate) fn declare(
    conn: &Connection,
    physical_name: &str,
    spec: &QueueSpec,
    dlq_physical_name: Option<&str>,
) -> Result<(), rusqlite::Error> {
    conn.execute(
        "INSERT INTO queues (name, visibility_ms, retention_ms, dlq, max_receive_count)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (name) DO UPDATE SET visibility_ms = excluded.visibility_ms,
             retention_ms = excluded.retention_ms, dlq = excluded.dlq,
             max_receive_count = excluded.max_receive_count",
        params![
            physical_name,
            millis(spec.visibility_timeout),
            millis(spec.retention),
            dlq_physical_name,
            spec.redrive.as_ref().map(|(_, count)| i64::from(*count)),
        ],
    )?;
    Ok(())
}

/// Enqueues one message inside the caller's transaction (used by sends and by the bus).
pub(crate) fn insert_message(
    conn: &Connection,
    queue: &str,
    id: &str,
    body: &str,
    attributes: &BTreeMap<String, String>,
    now_ms: i64,
    delay: Duration,
) -> Result<(), rusqlite::Error> {
    let attributes = serde_json::to_string(attributes).unwrap_or_else(|_| "{}".to_owned());
    conn.prepare_cached(
        "INSERT INTO messages (queue, id, attributes, sent_at_ms, visible_at_ms,
             receive_count, receipt)
         VALUES (?1, ?2, ?3, ?4, ?5, 0, NULL)",
    )?
    .execute(params![
        queue,
        id,
        attributes,
        now_ms,
        now_ms.saturating_add(millis(delay))
    ])?;
    insert_body(conn, body)
}

/// The body of the message just inserted.
fn insert_body(conn: &Connection, body: &str) -> Result<(), rusqlite::Error> {
    conn.prepare_cached("INSERT INTO message_bodies (seq, body) VALUES (last_insert_rowid(), ?1)")?
        .execute(params![body])?;
    Ok(())
}

pub(crate) struct SqliteQueue {
    db: Arc<Db>,
    logical_name: String,
    physical_name: Arc<str>,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGenerator>,
    waker: Arc<Notify>,
    /// On a read-only data directory: the messages this handle handed out, by id, with their
    /// receipt and the time (ms) they become visible to it again. `None` when it can write.
    read_only_holds: Option<Mutex<HashMap<String, (String, i64)>>>,
}

struct QueueConfig {
    visibility_ms: i64,
    retention_ms: i64,
    redrive: Option<(String, i64)>,
}

impl SqliteQueue {
    pub(crate) fn new(
        db: Arc<Db>,
        logical_name: String,
        physical_name: String,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn IdGenerator>,
        read_only: bool,
    ) -> Self {
        let waker = queue_waker(db.path(), &physical_name);
        Self {
            db,
            logical_name,
            physical_name: physical_name.into(),
            clock,
            ids,
            waker,
            read_only_holds: read_only.then(Default::default),
        }
    }

    fn now_ms(&self) -> i64 {
        self.clock.now().timestamp_millis()
    }

    /// One receive attempt that does not wait.
    async fn receive_now(
        &self,
        max_messages: usize,
        visibility: Option<Duration>,
    ) -> Result<Vec<ReceivedMessage>, QueueError> {
        if let Some(holds) = &self.read_only_holds {
            return self
                .receive_read_only(holds, max_messages, visibility)
                .await;
        }
        let queue = Arc::clone(&self.physical_name);
        let ids = Arc::clone(&self.ids);
        let now = self.now_ms();
        let db_path = self.db.path().to_owned();
        let (received, redriven_to) = self
            .db
            .write(move |tx| {
                let config = load_config(tx, &queue)?;
                drop_expired(tx, &queue, now - config.retention_ms)?;
                let visibility_ms = visibility.map(millis).unwrap_or(config.visibility_ms);
                let outcome =
                    receive_in(tx, &queue, &config, now, visibility_ms, max_messages, &*ids)?;
                Ok(outcome)
            })
            .await?;
        if let Some(dlq) = redriven_to {
            queue_waker(&db_path, &dlq).notify_waiters();
        }
        Ok(received)
    }
}

impl SqliteQueue {
    /// A receive that writes nothing (see [`crate::EmbeddedBackend::open_read_only`]): the
    /// visible messages this handle does not hold, as a receive would deliver them (receive
    /// count one up), held by this handle for the visibility timeout. Nothing is redriven.
    async fn receive_read_only(
        &self,
        holds: &Mutex<HashMap<String, (String, i64)>>,
        max_messages: usize,
        visibility: Option<Duration>,
    ) -> Result<Vec<ReceivedMessage>, QueueError> {
        let now = self.now_ms();
        let held: HashSet<String> = lock(holds)
            .iter()
            .filter(|(_, (_, visible_at))| *visible_at > now)
            .map(|(id, _)| id.clone())
            .collect();
        let queue = Arc::clone(&self.physical_name);
        let (config, candidates) = self
            .db
            .read(move |conn| {
                let config = load_config(conn, &queue)?;
                // The held messages are still visible in the table: look past them.
                let limit = max_messages.saturating_add(held.len());
                let candidates = next_visible(conn, &queue, now, (i64::MIN, i64::MIN), limit)?
                    .into_iter()
                    .filter(|m| !held.contains(&m.id) && m.sent_at_ms > now - config.retention_ms)
                    .take(max_messages)
                    .collect::<Vec<_>>();
                Ok((config, candidates))
            })
            .await?;
        let visible_at = now.saturating_add(visibility.map(millis).unwrap_or(config.visibility_ms));
        let mut received = Vec::with_capacity(candidates.len());
        for candidate in candidates {
            let receipt_handle = format!("{}.{}", candidate.id, self.ids.new_id());
            let receive_count = candidate.receive_count.saturating_add(1);
            lock(holds).insert(candidate.id.clone(), (receipt_handle.clone(), visible_at));
            received.push(received_message(candidate, receipt_handle, receive_count)?);
        }
        Ok(received)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

fn load_config(conn: &Connection, queue: &str) -> Result<QueueConfig, QueueError> {
    conn.prepare_cached(
        "SELECT visibility_ms, retention_ms, dlq, max_receive_count FROM queues WHERE name = ?1",
    )
    .and_then(|mut stmt| {
        stmt.query_row(params![queue], |row| {
            let dlq: Option<String> = row.get(2)?;
            let max: Option<i64> = row.get(3)?;
            Ok(QueueConfig {
                visibility_ms: row.get(0)?,
                retention_ms: row.get(1)?,
                redrive: dlq.zip(max),
            })
        })
        .optional()
    })
    .map_err(QueueError::from_sqlite)?
    .ok_or_else(|| QueueError::UnknownQueue(queue.to_owned()))
}

/// Removes messages past the queue's retention period, counted from when they were first sent.
fn drop_expired(conn: &Connection, queue: &str, sent_before_ms: i64) -> Result<(), QueueError> {
    conn.prepare_cached("DELETE FROM messages WHERE queue = ?1 AND sent_at_ms <= ?2")
        .and_then(|mut stmt| stmt.execute(params![queue, sent_before_ms]))
        .map_err(QueueError::from_sqlite)?;
    Ok(())
}

struct Candidate {
    seq: i64,
    id: String,
    body: String,
    attributes: String,
    sent_at_ms: i64,
    visible_at_ms: i64,
    receive_count: i64,
}

/// Delivers up to `max` visible messages, moving those already received `max_receive_count`
/// times to the dead-letter queue instead. Returns the deliveries and the DLQ written to.
fn receive_in(
    conn: &Connection,
    queue: &str,
    config: &QueueConfig,
    now: i64,
    visibility_ms: i64,
    max: usize,
    ids: &dyn IdGenerator,
) -> Result<(Vec<ReceivedMessage>, Option<String>), QueueError> {
    let mut delivered = Vec::new();
    let mut redriven = false;
    // Keyset pagination over (visible_at, seq). Another page is needed only when messages of
    // this one went to the DLQ; a message delivered with a zero visibility timeout becomes
    // visible again at `now` and can reappear in a later page, so it is skipped there.
    let mut after = (i64::MIN, i64::MIN);
    let mut seen = std::collections::HashSet::new();
    while delivered.len() < max {
        let batch = next_visible(conn, queue, now, after, max - delivered.len())?;
        let Some(last) = batch.last() else { break };
        after = (last.visible_at_ms, last.seq);
        let mut progressed = false;
        for candidate in batch {
            if !seen.insert(candidate.seq) {
                continue;
            }
            progressed = true;
            match &config.redrive {
                Some((dlq, max_receives)) if candidate.receive_count >= *max_receives => {
                    move_to_dlq(conn, dlq, &candidate, now)?;
                    redriven = true;
                }
                _ => delivered.push(deliver(conn, candidate, now, visibility_ms, ids)?),
            }
        }
        if !progressed {
            break;
        }
    }
    let redriven_to = match (&config.redrive, redriven) {
        (Some((dlq, _)), true) => Some(dlq.clone()),
        _ => None,
    };
    Ok((delivered, redriven_to))
}

/// The `+` before `?1` and `?5` keeps SQLite from planning with their bound values: with a
/// parameter compared to a key column under an ORDER BY, or in LIMIT, it re-prepares the cached
/// statement at every use (see `crate::state::QueryPlan::statement`). The plan is the same.
const NEXT_VISIBLE: &str =
    "SELECT m.seq, m.id, b.body, m.attributes, m.sent_at_ms, m.visible_at_ms, m.receive_count
     FROM messages m JOIN message_bodies b ON b.seq = m.seq
     WHERE m.queue = +?1 AND m.visible_at_ms <= ?2 AND (m.visible_at_ms, m.seq) > (?3, ?4)
     ORDER BY m.visible_at_ms, m.seq LIMIT +?5";

fn next_visible(
    conn: &Connection,
    queue: &str,
    now: i64,
    after: (i64, i64),
    limit: usize,
) -> Result<Vec<Candidate>, QueueError> {
    let mut stmt = conn
        .prepare_cached(NEXT_VISIBLE)
        .map_err(QueueError::from_sqlite)?;
    stmt.query_map(params![queue, now, after.0, after.1, limit as i64], |row| {
        Ok(Candidate {
            seq: row.get(0)?,
            id: row.get(1)?,
            body: row.get(2)?,
            attributes: row.get(3)?,
            sent_at_ms: row.get(4)?,
            visible_at_ms: row.get(5)?,
            receive_count: row.get(6)?,
        })
    })
    .and_then(|rows| rows.collect())
    .map_err(QueueError::from_sqlite)
}

fn move_to_dlq(
    conn: &Connection,
    dlq: &str,
    message: &Candidate,
    now: i64,
) -> Result<(), QueueError> {
    // Same id, body, attributes and first-sent time, as SQS keeps them; the receive count
    // carries over too.
    conn.prepare_cached(
        "INSERT INTO messages (queue, id, attributes, sent_at_ms, visible_at_ms,
             receive_count, receipt)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, NULL)
         ON CONFLICT (queue, id) DO NOTHING",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            dlq,
            message.id,
            message.attributes,
            message.sent_at_ms,
            now,
            message.receive_count
        ])
    })
    .and_then(|inserted| match inserted {
        0 => Ok(()),
        _ => insert_body(conn, &message.body),
    })
    .and_then(|()| {
        conn.prepare_cached("DELETE FROM messages WHERE seq = ?1")?
            .execute(params![message.seq])
    })
    .map_err(QueueError::from_sqlite)?;
    Ok(())
}

fn deliver(
    conn: &Connection,
    message: Candidate,
    now: i64,
    visibility_ms: i64,
    ids: &dyn IdGenerator,
) -> Result<ReceivedMessage, QueueError> {
    let receive_count = message.receive_count.saturating_add(1);
    let receipt_handle = format!("{}.{}", message.id, ids.new_id());
    conn.prepare_cached(
        "UPDATE messages SET receive_count = ?2, receipt = ?3, visible_at_ms = ?4 WHERE seq = ?1",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            message.seq,
            receive_count,
            receipt_handle,
            now.saturating_add(visibility_ms)
        ])
    })
    .map_err(QueueError::from_sqlite)?;
    received_message(message, receipt_handle, receive_count)
}

fn received_message(
    message: Candidate,
    receipt_handle: String,
    receive_count: i64,
) -> Result<ReceivedMessage, QueueError> {
    let attributes = serde_json::from_str(&message.attributes)
        .map_err(|e| QueueError::Unavailable(format!("stored message attributes: {e}")))?;
    Ok(ReceivedMessage {
        message_id: message.id,
        receipt_handle,
        body: message.body,
        receive_count: u32::try_from(receive_count).unwrap_or(u32::MAX),
        sent_at: DateTime::<Utc>::from_timestamp_millis(message.sent_at_ms).unwrap_or_default(),
        attributes,
    })
}

/// The message id inside a receipt handle (`<message id>.<receive nonce>`).
fn message_id_of(receipt_handle: &str) -> Result<&str, QueueError> {
    match receipt_handle.split_once('.') {
        Some((id, nonce)) if !id.is_empty() && !nonce.is_empty() => Ok(id),
        _ => Err(QueueError::InvalidReceipt),
    }
}

#[async_trait]
impl Queue for SqliteQueue {
    fn name(&self) -> &str {
        &self.logical_name
    }

    async fn send(&self, message: OutgoingMessage) -> Result<String, QueueError> {
        message.validate()?;
        let id = self.ids.new_id();
        let (queue, now, sent_id) = (Arc::clone(&self.physical_name), self.now_ms(), id.clone());
        self.db
            .write(move |conn| {
                insert_message(
                    conn,
                    &queue,
                    &sent_id,
                    &message.body,
                    &message.attributes,
                    now,
                    message.delay,
                )
                .map_err(QueueError::from_sqlite)
            })
            .await?;
        self.waker.notify_waiters();
        Ok(id)
    }

    async fn send_batch(
        &self,
        messages: Vec<OutgoingMessage>,
    ) -> Result<Vec<SendOutcome>, QueueError> {
        check_batch_entries(messages.len())?;
        // Invalid entries fail alone; the rest must still fit one request, as SQS requires.
        let mut outcomes: Vec<SendOutcome> = Vec::with_capacity(messages.len());
        let mut accepted = Vec::new();
        for message in messages {
            match message.validate() {
                Ok(()) => {
                    let id = self.ids.new_id();
                    outcomes.push(Ok(id.clone()));
                    accepted.push((id, message));
                }
                Err(e) => outcomes.push(Err(e)),
            }
        }
        let total: usize = accepted.iter().map(|(_, m)| m.size()).sum();
        if total > MAX_MESSAGE_BYTES {
            return Err(QueueError::TooLarge {
                size: total,
                limit: MAX_MESSAGE_BYTES,
            });
        }
        if accepted.is_empty() {
            return Ok(outcomes);
        }
        let (queue, now) = (Arc::clone(&self.physical_name), self.now_ms());
        self.db
            .write(move |tx| {
                for (id, message) in &accepted {
                    insert_message(
                        tx,
                        &queue,
                        id,
                        &message.body,
                        &message.attributes,
                        now,
                        message.delay,
                    )
                    .map_err(QueueError::from_sqlite)?;
                }
                Ok(())
            })
            .await?;
        self.waker.notify_waiters();
        Ok(outcomes)
    }

    async fn receive(&self, options: ReceiveOptions) -> Result<Vec<ReceivedMessage>, QueueError> {
        options.validate()?;
        let deadline = Instant::now() + options.wait;
        loop {
            // Registered before looking, so a send between the look and the wait still wakes.
            let woken = self.waker.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            let received = self
                .receive_now(options.max_messages, options.visibility_timeout)
                .await?;
            let remaining = deadline.saturating_duration_since(Instant::now());
            if !received.is_empty() || remaining.is_zero() {
                return Ok(received);
            }
            tokio::select! {
                () = &mut woken => {}
                () = tokio::time::sleep(remaining.min(POLL_INTERVAL)) => {}
            }
        }
    }

    async fn delete(&self, receipt_handle: &str) -> Result<(), QueueError> {
        let id = message_id_of(receipt_handle)?.to_owned();
        let queue = Arc::clone(&self.physical_name);
        // As on SQS, an earlier receive's handle still deletes the message, and deleting a
        // message that is already gone succeeds.
        self.db
            .write(move |conn| {
                conn.prepare_cached("DELETE FROM messages WHERE queue = ?1 AND id = ?2")
                    .and_then(|mut stmt| stmt.execute(params![queue, id]))
                    .map_err(QueueError::from_sqlite)
            })
            .await?;
        Ok(())
    }

    async fn delete_batch(
        &self,
        receipt_handles: &[String],
    ) -> Result<Vec<Result<(), QueueError>>, QueueError> {
        check_batch_entries(receipt_handles.len())?;
        let mut outcomes = Vec::with_capacity(receipt_handles.len());
        let mut ids = Vec::with_capacity(receipt_handles.len());
        for receipt_handle in receipt_handles {
            match message_id_of(receipt_handle) {
                Ok(id) => {
                    ids.push(id.to_owned());
                    outcomes.push(Ok(()));
                }
                Err(invalid) => outcomes.push(Err(invalid)),
            }
        }
        if ids.is_empty() {
            return Ok(outcomes);
        }
        let queue = Arc::clone(&self.physical_name);
        // One commit for the whole batch: a consumer's acknowledgements cost one fsync, not ten.
        self.db
            .write(move |tx| {
                {
                    let mut stmt = tx
                        .prepare_cached("DELETE FROM messages WHERE queue = ?1 AND id = ?2")
                        .map_err(QueueError::from_sqlite)?;
                    for id in &ids {
                        stmt.execute(params![queue, id])
                            .map_err(QueueError::from_sqlite)?;
                    }
                }
                Ok(())
            })
            .await?;
        Ok(outcomes)
    }

    async fn change_visibility(
        &self,
        receipt_handle: &str,
        timeout: Duration,
    ) -> Result<(), QueueError> {
        if timeout > MAX_VISIBILITY {
            return Err(QueueError::Invalid(
                "visibility timeout is at most 12 hours".into(),
            ));
        }
        let id = message_id_of(receipt_handle)?.to_owned();
        let handle = receipt_handle.to_owned();
        let (queue, now) = (Arc::clone(&self.physical_name), self.now_ms());
        if let Some(holds) = &self.read_only_holds {
            return match lock(holds).get_mut(&id) {
                Some((latest, visible_at)) if *latest == handle && *visible_at > now => {
                    *visible_at = now.saturating_add(millis(timeout));
                    Ok(())
                }
                _ => Err(QueueError::InvalidReceipt),
            };
        }
        self.db
            .write(move |tx| {
                let current: Option<(Option<String>, i64)> = tx
                    .prepare_cached(
                        "SELECT receipt, visible_at_ms FROM messages WHERE queue = ?1 AND id = ?2",
                    )
                    .and_then(|mut stmt| {
                        stmt.query_row(params![queue, id], |row| Ok((row.get(0)?, row.get(1)?)))
                            .optional()
                    })
                    .map_err(QueueError::from_sqlite)?;
                match current {
                    Some((Some(latest), visible_at)) if latest == handle && visible_at > now => {}
                    _ => return Err(QueueError::InvalidReceipt),
                }
                tx.prepare_cached(
                    "UPDATE messages SET visible_at_ms = ?3 WHERE queue = ?1 AND id = ?2",
                )
                .and_then(|mut stmt| {
                    stmt.execute(params![queue, id, now.saturating_add(millis(timeout))])
                })
                .map_err(QueueError::from_sqlite)?;
                Ok(())
            })
            .await?;
        if timeout.is_zero() {
            self.waker.notify_waiters();
        }
        Ok(())
    }

    async fn depth(&self) -> Result<QueueDepth, QueueError> {
        let (queue, now) = (Arc::clone(&self.physical_name), self.now_ms());
        self.db
            .read(move |conn| {
                let config = load_config(conn, &queue)?;
                conn.prepare_cached(
                    "SELECT
                        COALESCE(SUM(visible_at_ms <= ?2), 0),
                        COALESCE(SUM(visible_at_ms > ?2 AND receive_count > 0), 0),
                        COALESCE(SUM(visible_at_ms > ?2 AND receive_count = 0), 0)
                     FROM messages WHERE queue = ?1 AND sent_at_ms > ?3",
                )
                .and_then(|mut stmt| {
                    stmt.query_row(params![queue, now, now - config.retention_ms], |row| {
                        let count = |i| row.get::<_, i64>(i).map(|n| n.max(0) as u64);
                        Ok(QueueDepth {
                            visible: count(0)?,
                            in_flight: count(1)?,
                            delayed: count(2)?,
                        })
                    })
                })
                .map_err(QueueError::from_sqlite)
            })
            .await
    }

    async fn purge(&self) -> Result<(), QueueError> {
        let queue = Arc::clone(&self.physical_name);
        self.db
            .write(move |conn| {
                conn.prepare_cached("DELETE FROM messages WHERE queue = ?1")
                    .and_then(|mut stmt| stmt.execute(params![queue]))
                    .map_err(QueueError::from_sqlite)
            })
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receiving_reuses_one_plan_of_the_visibility_index() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(SCHEMA).unwrap();
        for now in [1, 2, 3] {
            next_visible(&conn, "q", now, (0, 0), 10).unwrap();
        }
        let stmt = conn.prepare_cached(NEXT_VISIBLE).unwrap();
        assert_eq!(stmt.get_status(rusqlite::StatementStatus::RePrepare), 0);
        drop(stmt);
        let plan: String = conn
            .query_row(
                &format!("EXPLAIN QUERY PLAN {NEXT_VISIBLE}"),
                params!["q", 1, 0, 0, 10],
                |row| row.get(3),
            )
            .unwrap();
        assert!(
            plan.contains("USING INDEX messages_visible (queue=?"),
            "{plan}"
        );
    }
}
