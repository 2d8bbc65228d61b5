//! `StateStore` on the `items` table: one row per item, the item as JSON, and the key, index
//! and TTL attributes copied into columns so queries are index range scans.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use hub_core::ports::{
    Clock, Condition, EXPIRES_AT, GSI1PK, GSI1SK, Index, Item, Key, MAX_BATCH_GET, MAX_BATCH_WRITE,
    PK, QueryPage, QueryRequest, SK, SortCondition, StateStore, StoreError, TransactOp,
    UpdateAction, WriteRequest, apply_update, reject_duplicate_keys, validate_item,
    validate_transaction, validate_update,
};
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};
use serde_json::Value;

use crate::db::{Db, PortError};

/// Page size when the caller sets no limit (DynamoDB stops at 1 MB; items here are small).
const DEFAULT_QUERY_LIMIT: usize = 1000;
const MAX_QUERY_LIMIT: usize = 1000;
/// Expired items are removed physically at most this often per handle; reads hide them anyway.
const PURGE_INTERVAL: Duration = Duration::from_secs(60);

/// A rowid table with a separate key index, not a `WITHOUT ROWID` table: there every b-tree
/// page, interior ones included, holds whole rows, and a seek that meets a row too large for its
/// page (a stored webhook payload, a 10 KB record) reads all of the row's overflow pages just to
/// compare its key. Here seeks walk the narrow `items_key` index and read a row once, by rowid.
pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS items (
    id INTEGER PRIMARY KEY,
    tbl TEXT NOT NULL,
    pk TEXT NOT NULL,
    sk TEXT NOT NULL,
    gsi1pk TEXT,
    gsi1sk TEXT,
    expires_at REAL,
    body TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS items_key ON items (tbl, pk, sk);
CREATE INDEX IF NOT EXISTS items_gsi1 ON items (tbl, gsi1pk, gsi1sk, pk, sk)
    WHERE gsi1pk IS NOT NULL AND gsi1sk IS NOT NULL;
CREATE INDEX IF NOT EXISTS items_expiry ON items (expires_at) WHERE expires_at IS NOT NULL;
";

/// Moves the items of a data directory written before the `items` table got its rowid into
/// the current table, in the caller's transaction (run before [`SCHEMA`]). A no-op otherwise.
pub(crate) fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    let existing: Option<String> = conn
        .query_row(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'items'",
            [],
            |row| row.get(0),
        )
        .optional()?;
    let without_rowid =
        existing.is_some_and(|sql| sql.to_ascii_uppercase().contains("WITHOUT ROWID"));
    if !without_rowid {
        return Ok(());
    }
    // The old indexes keep their names when their table is renamed: dropped first, so the
    // schema creates them on the new table.
    conn.execute_batch(&format!(
        "ALTER TABLE items RENAME TO items_without_rowid;
         DROP INDEX IF EXISTS items_gsi1;
         DROP INDEX IF EXISTS items_expiry;
         {SCHEMA}
         INSERT INTO items (tbl, pk, sk, gsi1pk, gsi1sk, expires_at, body)
             SELECT tbl, pk, sk, gsi1pk, gsi1sk, expires_at, body FROM items_without_rowid;
         DROP TABLE items_without_rowid;"
    ))
}

impl PortError for StoreError {
    fn unavailable(message: String) -> Self {
        Self::Unavailable(message)
    }
}

pub(crate) struct SqliteStateStore {
    db: Arc<Db>,
    table: Arc<str>,
    clock: Arc<dyn Clock>,
    last_purge: Mutex<Option<Instant>>,
}

impl SqliteStateStore {
    pub(crate) fn new(db: Arc<Db>, table: String, clock: Arc<dyn Clock>) -> Self {
        Self {
            db,
            table: table.into(),
            clock,
            last_purge: Mutex::new(None),
        }
    }

    /// Epoch seconds at or before which items are expired (`is_expired` compares whole
    /// seconds, so this is the clock's now truncated).
    fn now_secs(&self) -> f64 {
        self.clock.now().timestamp() as f64
    }

    /// Whether this write should also remove expired items physically.
    fn purge_due(&self) -> bool {
        let mut last = self.last_purge.lock().unwrap_or_else(|e| e.into_inner());
        match *last {
            Some(at) if at.elapsed() < PURGE_INTERVAL => false,
            _ => {
                *last = Some(Instant::now());
                true
            }
        }
    }

    async fn write<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &str, f64) -> Result<T, StoreError> + Send + 'static,
    {
        let table = Arc::clone(&self.table);
        let now = self.now_secs();
        let purge = self.purge_due();
        self.db
            .write(move |conn| {
                let result = work(conn, &table, now)?;
                if purge {
                    purge_expired(conn, now)?;
                }
                Ok(result)
            })
            .await
    }
}

/// Removes every expired item of every table.
pub(crate) fn purge_expired(conn: &Connection, now_secs: f64) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM items WHERE expires_at IS NOT NULL AND expires_at <= ?1")
        .and_then(|mut stmt| stmt.execute(params![now_secs]))
        .map_err(StoreError::from_sqlite)?;
    Ok(())
}

fn decode(body: &str) -> Result<Item, StoreError> {
    serde_json::from_str(body).map_err(|e| StoreError::Corrupt(format!("stored item: {e}")))
}

/// The item, unless absent or expired.
fn load(conn: &Connection, table: &str, key: &Key, now: f64) -> Result<Option<Item>, StoreError> {
    let body: Option<String> = conn
        .prepare_cached(
            "SELECT body FROM items WHERE tbl = ?1 AND pk = ?2 AND sk = ?3
             AND (expires_at IS NULL OR expires_at > ?4)",
        )
        .and_then(|mut stmt| {
            stmt.query_row(params![table, key.pk, key.sk, now], |row| row.get(0))
                .optional()
        })
        .map_err(StoreError::from_sqlite)?;
    body.as_deref().map(decode).transpose()
}

/// An item as its row is written: encoded on the caller's thread, so the database thread,
/// which every call waits on, does not spend its time escaping documents.
struct EncodedItem {
    gsi1pk: Option<String>,
    gsi1sk: Option<String>,
    expires_at: Option<f64>,
    body: String,
}

impl EncodedItem {
    fn new(item: &Item) -> Result<Self, StoreError> {
        let text = |name: &str| item.get(name).and_then(Value::as_str).map(str::to_owned);
        Ok(Self {
            gsi1pk: text(GSI1PK),
            gsi1sk: text(GSI1SK),
            expires_at: item.get(EXPIRES_AT).and_then(Value::as_f64),
            body: serde_json::to_string(item)
                .map_err(|e| StoreError::Validation(format!("item cannot be encoded: {e}")))?,
        })
    }
}

fn store(conn: &Connection, table: &str, key: &Key, row: &EncodedItem) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT OR REPLACE INTO items (tbl, pk, sk, gsi1pk, gsi1sk, expires_at, body)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            table,
            key.pk,
            key.sk,
            row.gsi1pk,
            row.gsi1sk,
            row.expires_at,
            row.body
        ])
    })
    .map_err(StoreError::from_sqlite)?;
    Ok(())
}

fn remove(conn: &Connection, table: &str, key: &Key) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM items WHERE tbl = ?1 AND pk = ?2 AND sk = ?3")
        .and_then(|mut stmt| stmt.execute(params![table, key.pk, key.sk]))
        .map_err(StoreError::from_sqlite)?;
    Ok(())
}

fn holds(condition: Option<&Condition>, item: Option<&Item>) -> bool {
    condition.is_none_or(|c| c.evaluate(item))
}

/// An expired item counts as absent, so an update starts from the bare key (the port allows
/// either this or merging into the old attributes).
fn updated(
    existing: Option<Item>,
    key: &Key,
    actions: &[UpdateAction],
) -> Result<Item, StoreError> {
    let mut item = existing.unwrap_or_else(|| {
        let mut fresh = Item::new();
        fresh.insert(PK.to_owned(), Value::String(key.pk.clone()));
        fresh.insert(SK.to_owned(), Value::String(key.sk.clone()));
        fresh
    });
    apply_update(&mut item, actions)?;
    validate_item(&item)?;
    Ok(item)
}

#[async_trait]
impl StateStore for SqliteStateStore {
    fn table_name(&self) -> &str {
        &self.table
    }

    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        let (table, key, now) = (Arc::clone(&self.table), key.clone(), self.now_secs());
        self.db
            .read(move |conn| load(conn, &table, &key, now))
            .await
    }

    async fn put(&self, item: Item, condition: Option<Condition>) -> Result<(), StoreError> {
        let key = validate_item(&item)?;
        let row = EncodedItem::new(&item)?;
        self.write(move |tx, table, now| {
            // Only a condition needs the item it replaces.
            if let Some(condition) = &condition {
                let existing = load(tx, table, &key, now)?;
                if !condition.evaluate(existing.as_ref()) {
                    return Err(StoreError::ConditionFailed);
                }
            }
            store(tx, table, &key, &row)
        })
        .await
    }

    async fn update(
        &self,
        key: &Key,
        actions: Vec<UpdateAction>,
        condition: Option<Condition>,
    ) -> Result<Item, StoreError> {
        validate_update(&actions)?;
        let key = key.clone();
        self.write(move |tx, table, now| {
            let existing = load(tx, table, &key, now)?;
            if !holds(condition.as_ref(), existing.as_ref()) {
                return Err(StoreError::ConditionFailed);
            }
            let item = updated(existing, &key, &actions)?;
            store(tx, table, &key, &EncodedItem::new(&item)?)?;
            Ok(item)
        })
        .await
    }

    async fn delete(
        &self,
        key: &Key,
        condition: Option<Condition>,
    ) -> Result<Option<Item>, StoreError> {
        let key = key.clone();
        self.write(move |tx, table, now| {
            let existing = load(tx, table, &key, now)?;
            if !holds(condition.as_ref(), existing.as_ref()) {
                return Err(StoreError::ConditionFailed);
            }
            // Removes an expired row too: it is already absent for every reader.
            remove(tx, table, &key)?;
            Ok(existing)
        })
        .await
    }

    async fn query(&self, request: QueryRequest) -> Result<QueryPage, StoreError> {
        let plan = QueryPlan::new(&request)?;
        let (table, now) = (Arc::clone(&self.table), self.now_secs());
        self.db.read(move |conn| plan.run(conn, &table, now)).await
    }

    async fn transact_write(&self, ops: Vec<TransactOp>) -> Result<(), StoreError> {
        validate_transaction(&ops)?;
        let rows = ops
            .iter()
            .map(|op| match op {
                TransactOp::Put { item, .. } => EncodedItem::new(item).map(Some),
                _ => Ok(None),
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.write(move |tx, table, now| {
            let mut current = Vec::with_capacity(ops.len());
            let mut reasons = Vec::with_capacity(ops.len());
            for op in &ops {
                let key = op.key()?;
                let existing = load(tx, table, &key, now)?;
                let condition = match op {
                    TransactOp::Put { condition, .. }
                    | TransactOp::Update { condition, .. }
                    | TransactOp::Delete { condition, .. } => condition.as_ref(),
                    TransactOp::Check { condition, .. } => Some(condition),
                };
                reasons.push(if holds(condition, existing.as_ref()) {
                    hub_core::ports::CancelReason::None
                } else {
                    hub_core::ports::CancelReason::ConditionFailed
                });
                current.push((key, existing));
            }
            if reasons.contains(&hub_core::ports::CancelReason::ConditionFailed) {
                return Err(StoreError::TransactionCanceled { reasons });
            }
            for ((op, row), (key, existing)) in ops.into_iter().zip(rows).zip(current) {
                match op {
                    TransactOp::Put { .. } => {
                        if let Some(row) = row {
                            store(tx, table, &key, &row)?;
                        }
                    }
                    TransactOp::Update { actions, .. } => {
                        let item = updated(existing, &key, &actions)?;
                        store(tx, table, &key, &EncodedItem::new(&item)?)?;
                    }
                    TransactOp::Delete { .. } => remove(tx, table, &key)?,
                    TransactOp::Check { .. } => {}
                }
            }
            Ok(())
        })
        .await
    }

    async fn batch_get(&self, keys: Vec<Key>) -> Result<Vec<Item>, StoreError> {
        if keys.len() > MAX_BATCH_GET {
            return Err(StoreError::Validation(format!(
                "a batch get reads at most {MAX_BATCH_GET} items, not {}",
                keys.len()
            )));
        }
        reject_duplicate_keys(keys.iter(), "the batch")?;
        let (table, now) = (Arc::clone(&self.table), self.now_secs());
        self.db
            // One read transaction: every item from the same snapshot.
            .read(move |tx| {
                let mut items = Vec::with_capacity(keys.len());
                for key in &keys {
                    items.extend(load(tx, &table, key, now)?);
                }
                Ok(items)
            })
            .await
    }

    async fn batch_write(
        &self,
        requests: Vec<WriteRequest>,
    ) -> Result<Vec<WriteRequest>, StoreError> {
        if requests.len() > MAX_BATCH_WRITE {
            return Err(StoreError::Validation(format!(
                "a batch write holds at most {MAX_BATCH_WRITE} requests, not {}",
                requests.len()
            )));
        }
        let keys = requests
            .iter()
            .map(|request| match request {
                WriteRequest::Put(item) => validate_item(item),
                WriteRequest::Delete(key) => Ok(key.clone()),
            })
            .collect::<Result<Vec<_>, _>>()?;
        reject_duplicate_keys(keys.iter(), "the batch")?;
        if requests.is_empty() {
            return Ok(Vec::new());
        }
        let rows = requests
            .iter()
            .map(|request| match request {
                WriteRequest::Put(item) => EncodedItem::new(item).map(Some),
                WriteRequest::Delete(_) => Ok(None),
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.write(move |tx, table, _now| {
            for (row, key) in rows.iter().zip(&keys) {
                match row {
                    Some(row) => store(tx, table, key, row)?,
                    None => remove(tx, table, key)?,
                }
            }
            // Nothing is ever throttled locally.
            Ok(Vec::new())
        })
        .await
    }
}

/// A validated query, turned into one SQL statement over the primary key or the gsi1 index.
struct QueryPlan {
    index: Index,
    partition: String,
    lower: Option<(String, bool)>,
    upper: Option<(String, bool)>,
    start_after: Option<StartKey>,
    filter: Option<Condition>,
    limit: usize,
    forward: bool,
}

struct StartKey {
    pk: String,
    sk: String,
    gsi1sk: Option<String>,
}

impl QueryPlan {
    fn new(request: &QueryRequest) -> Result<Self, StoreError> {
        if request.partition.is_empty() {
            return Err(StoreError::Validation(
                "the partition key value must not be empty".into(),
            ));
        }
        let limit = request.limit.unwrap_or(DEFAULT_QUERY_LIMIT);
        if !(1..=MAX_QUERY_LIMIT).contains(&limit) {
            return Err(StoreError::Validation(format!(
                "a query limit is 1 to {MAX_QUERY_LIMIT}, not {limit}"
            )));
        }
        let (partition_attr, sort_attr) = key_attributes(request.index);
        if let Some(filter) = &request.filter {
            let mut names = Vec::new();
            filter.attribute_names(&mut names);
            if let Some(key_attr) = names
                .iter()
                .find(|n| **n == partition_attr || **n == sort_attr)
            {
                return Err(StoreError::Validation(format!(
                    "a query filter cannot use the key attribute `{key_attr}`; use the sort condition"
                )));
            }
        }
        let (lower, upper) = match &request.sort {
            None => (None, None),
            Some(SortCondition::Eq(v)) => (Some((v.clone(), true)), Some((v.clone(), true))),
            Some(SortCondition::BeginsWith(p)) => (
                Some((p.clone(), true)),
                prefix_upper_bound(p).map(|u| (u, false)),
            ),
            Some(SortCondition::Between(lo, hi)) => {
                if lo.as_bytes() > hi.as_bytes() {
                    return Err(StoreError::Validation(format!(
                        "BETWEEN needs the lower bound `{lo}` at or below the upper bound `{hi}`"
                    )));
                }
                (Some((lo.clone(), true)), Some((hi.clone(), true)))
            }
            Some(SortCondition::Lt(v)) => (None, Some((v.clone(), false))),
            Some(SortCondition::Le(v)) => (None, Some((v.clone(), true))),
            Some(SortCondition::Gt(v)) => (Some((v.clone(), false)), None),
            Some(SortCondition::Ge(v)) => (Some((v.clone(), true)), None),
        };
        let start_after = request
            .start_after
            .as_ref()
            .map(|key| StartKey::parse(key, request.index, &request.partition))
            .transpose()?;
        Ok(Self {
            index: request.index,
            partition: request.partition.clone(),
            lower,
            upper,
            start_after,
            filter: request.filter.clone(),
            limit,
            forward: request.forward,
        })
    }

    fn run(&self, conn: &Connection, table: &str, now: f64) -> Result<QueryPage, StoreError> {
        let (sql, args) = self.statement(table, now);
        let mut stmt = conn.prepare_cached(&sql).map_err(StoreError::from_sqlite)?;
        let bodies = stmt
            .query_map(params_from_iter(args), |row| row.get::<_, String>(0))
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(StoreError::from_sqlite)?;
        let more = bodies.len() > self.limit;
        let evaluated = bodies
            .iter()
            .take(self.limit)
            .map(|body| decode(body))
            .collect::<Result<Vec<_>, _>>()?;
        let last_evaluated_key = match evaluated.last() {
            Some(last) if more => Some(self.position_of(last)),
            _ => None,
        };
        let items = evaluated
            .into_iter()
            .filter(|item| self.filter.as_ref().is_none_or(|f| f.evaluate(Some(item))))
            .collect();
        Ok(QueryPage {
            items,
            last_evaluated_key,
        })
    }

    /// The SQL and its arguments: one range scan of the primary key or of the gsi1 index.
    fn statement(&self, table: &str, now: f64) -> (String, Vec<SqlValue>) {
        let (partition_col, sort_col) = key_attributes(self.index);
        // `+?n` rather than `?n` for the partition and the limit: SQLite otherwise plans with
        // their bound values (the ORDER BY over an equality-constrained key, the LIMIT) and so
        // re-prepares the cached statement every time it is bound: a full SQL parse per query,
        // 3-4 % of `hub dev`'s time under webhook load. The plan is the same (a search of the
        // primary key or of items_gsi1); the unit test `hot_statements_are_prepared_once`
        // checks both.
        let mut sql = format!(
            "SELECT body FROM items WHERE tbl = +?1 AND {partition_col} = +?2
             AND (expires_at IS NULL OR expires_at > ?3)"
        );
        let mut args: Vec<SqlValue> = vec![
            table.to_owned().into(),
            self.partition.clone().into(),
            now.into(),
        ];
        if self.index == Index::Gsi1 {
            sql.push_str(" AND gsi1sk IS NOT NULL");
        }
        if let Some((value, inclusive)) = &self.lower {
            let op = if *inclusive { ">=" } else { ">" };
            let at = bind(&mut args, value.clone());
            sql.push_str(&format!(" AND {sort_col} {op} {at}"));
        }
        if let Some((value, inclusive)) = &self.upper {
            let op = if *inclusive { "<=" } else { "<" };
            let at = bind(&mut args, value.clone());
            sql.push_str(&format!(" AND {sort_col} {op} {at}"));
        }
        let direction = if self.forward { "ASC" } else { "DESC" };
        let beyond = if self.forward { ">" } else { "<" };
        match (&self.start_after, self.index) {
            (Some(start), Index::Primary) => {
                let at = bind(&mut args, start.sk.clone());
                sql.push_str(&format!(" AND sk {beyond} {at}"));
            }
            (Some(start), Index::Gsi1) => {
                // Index entries may share a sort key, so the position includes the item's key,
                // as DynamoDB's LastEvaluatedKey for an index does.
                let gsi1sk = bind(&mut args, start.gsi1sk.clone().unwrap_or_default());
                let pk = bind(&mut args, start.pk.clone());
                let sk = bind(&mut args, start.sk.clone());
                sql.push_str(&format!(
                    " AND (gsi1sk, pk, sk) {beyond} ({gsi1sk}, {pk}, {sk})"
                ));
            }
            (None, _) => {}
        }
        match self.index {
            Index::Primary => sql.push_str(&format!(" ORDER BY sk {direction}")),
            Index::Gsi1 => sql.push_str(&format!(
                " ORDER BY gsi1sk {direction}, pk {direction}, sk {direction}"
            )),
        }
        // One row beyond the page tells whether another page exists.
        let at = bind(&mut args, (self.limit + 1) as i64);
        sql.push_str(&format!(" LIMIT +{at}"));
        (sql, args)
    }

    fn position_of(&self, item: &Item) -> Item {
        let names: &[&str] = match self.index {
            Index::Primary => &[PK, SK],
            Index::Gsi1 => &[PK, SK, GSI1PK, GSI1SK],
        };
        names
            .iter()
            .filter_map(|name| item.get(*name).map(|v| ((*name).to_owned(), v.clone())))
            .collect()
    }
}

impl StartKey {
    fn parse(key: &Item, index: Index, partition: &str) -> Result<Self, StoreError> {
        let text = |name: &str| match key.get(name) {
            Some(Value::String(s)) => Ok(s.clone()),
            _ => Err(StoreError::Validation(format!(
                "the start key needs the string attribute `{name}`"
            ))),
        };
        let (partition_attr, _) = key_attributes(index);
        if text(partition_attr)? != partition {
            return Err(StoreError::Validation(
                "the start key belongs to another partition".into(),
            ));
        }
        Ok(Self {
            pk: text(PK)?,
            sk: text(SK)?,
            gsi1sk: match index {
                Index::Primary => None,
                Index::Gsi1 => Some(text(GSI1SK)?),
            },
        })
    }
}

/// Adds a statement argument and returns its placeholder.
fn bind(args: &mut Vec<SqlValue>, value: impl Into<SqlValue>) -> String {
    args.push(value.into());
    format!("?{}", args.len())
}

fn key_attributes(index: Index) -> (&'static str, &'static str) {
    match index {
        Index::Primary => (PK, SK),
        Index::Gsi1 => (GSI1PK, GSI1SK),
    }
}

/// The smallest string above every string that starts with `prefix` (UTF-8 byte order is code
/// point order), or `None` when no such bound exists.
fn prefix_upper_bound(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = (last as u32 + 1..=char::MAX as u32).find_map(char::from_u32);
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The query plan SQLite picks for a request: it must be a search of the primary key or
    /// of the gsi1 index, in index order (no sort step, no table scan).
    fn plan(request: QueryRequest) -> String {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(SCHEMA).unwrap();
        let (sql, args) = QueryPlan::new(&request).unwrap().statement("t", 0.0);
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let details: Vec<String> = stmt
            .query_map(params_from_iter(args), |row| row.get::<_, String>(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        details.join(" | ")
    }

    #[test]
    fn queries_are_index_range_scans() {
        let start = |extra: serde_json::Value| {
            let mut key = serde_json::json!({"pk": "P", "sk": "s", "gsi1pk": "G", "gsi1sk": "g"});
            key.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            Some(key.as_object().unwrap().clone())
        };
        let primary = [
            QueryRequest::partition(Index::Primary, "P"),
            QueryRequest::partition(Index::Primary, "P")
                .sort(SortCondition::BeginsWith("a".into()))
                .backwards(),
            QueryRequest::partition(Index::Primary, "P")
                .sort(SortCondition::Between("a".into(), "c".into()))
                .start_after(start(serde_json::json!({}))),
        ];
        for request in primary {
            let plan = plan(request.clone());
            assert!(
                plan.contains("SEARCH items USING INDEX items_key (tbl=? AND pk=?"),
                "{request:?}: {plan}"
            );
            assert!(!plan.contains("TEMP B-TREE"), "{request:?}: {plan}");
        }
        let index = [
            QueryRequest::partition(Index::Gsi1, "G"),
            QueryRequest::partition(Index::Gsi1, "G")
                .sort(SortCondition::Ge("a".into()))
                .backwards()
                .start_after(start(serde_json::json!({}))),
            QueryRequest::partition(Index::Gsi1, "G").start_after(start(serde_json::json!({}))),
        ];
        for request in index {
            let plan = plan(request.clone());
            assert!(
                plan.contains("SEARCH items USING INDEX items_gsi1 (tbl=? AND gsi1pk=?"),
                "{request:?}: {plan}"
            );
            assert!(!plan.contains("TEMP B-TREE"), "{request:?}: {plan}");
        }
    }

    #[test]
    fn hot_statements_are_prepared_once() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(SCHEMA).unwrap();
        let requests = [
            QueryRequest::partition(Index::Primary, "P")
                .sort(SortCondition::BeginsWith("task#".into())),
            QueryRequest::partition(Index::Gsi1, "G").limit(25),
        ];
        for request in requests {
            let query = QueryPlan::new(&request).unwrap();
            for now in [1.0, 2.0, 3.0] {
                query.run(&conn, "t", now).unwrap();
            }
            let (sql, _) = query.statement("t", 0.0);
            let stmt = conn.prepare_cached(&sql).unwrap();
            assert_eq!(
                stmt.get_status(rusqlite::StatementStatus::RePrepare),
                0,
                "{sql}"
            );
        }
    }

    #[test]
    fn prefix_bounds_cover_exactly_the_prefixed_strings() {
        assert_eq!(prefix_upper_bound("ab").as_deref(), Some("ac"));
        assert_eq!(
            prefix_upper_bound("a\u{D7FF}").as_deref(),
            Some("a\u{E000}")
        );
        assert_eq!(
            prefix_upper_bound("a\u{10FFFF}").as_deref(),
            Some("b"),
            "a maximal last character carries into the one before"
        );
        assert_eq!(prefix_upper_bound("\u{10FFFF}"), None);
        assert_eq!(prefix_upper_bound(""), None);
    }
}
