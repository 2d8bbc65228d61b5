//! `StateStore`: a key-value table with DynamoDB semantics.
//!
//! Items are JSON objects. Every table has the string key attributes `pk` and `sk`, an optional
//! sparse secondary index on `gsi1pk`/`gsi1sk` (an item is in the index only when it has both),
//! and an optional TTL attribute `expiresAt` (epoch seconds).
//!
//! Pinned behaviours (the contract suite checks each on both backends):
//! - reads are strongly consistent for the primary key; the index is eventually consistent (as
//!   DynamoDB GSIs are: a write shows there shortly after it returns; the embedded backend shows
//!   it at once), so code never relies on reading its own write through the index;
//! - an item whose `expiresAt` is at or before the clock's now is *absent*: `get`, `batch_get`
//!   and `query` skip it, and conditions evaluate as if it did not exist. Physical removal is
//!   asynchronous (as DynamoDB TTL is), so an `update` on an expired item may still merge into
//!   its old attributes: set `expiresAt` when reusing such a key;
//! - conditions compare values of the same JSON type only: `=` across types is false, `<>`
//!   across types or against a missing attribute is true, ordering comparisons are false;
//! - `query` applies `limit` before `filter` (as DynamoDB does), so a page may be short or empty
//!   while `last_evaluated_key` is still set: keep paging until it is `None`;
//! - numbers: integers round-trip exactly up to `i64`; other numbers as `f64`.

use std::collections::HashSet;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::json::{encoded_len, string_len_at_most};

pub type Item = Map<String, Value>;

pub const PK: &str = "pk";
pub const SK: &str = "sk";
pub const GSI1PK: &str = "gsi1pk";
pub const GSI1SK: &str = "gsi1sk";
pub const EXPIRES_AT: &str = "expiresAt";

/// DynamoDB service limits, enforced by both adapters so code that runs locally also fits AWS.
pub const MAX_TRANSACT_ITEMS: usize = 100;
pub const MAX_BATCH_WRITE: usize = 25;
pub const MAX_BATCH_GET: usize = 100;
/// DynamoDB's item size limit (400 KB); we count the JSON encoding, which is close to and
/// never smaller than DynamoDB's own accounting for our attribute types.
pub const MAX_ITEM_BYTES: usize = 400 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    pub pk: String,
    pub sk: String,
}

impl Key {
    pub fn new(pk: impl Into<String>, sk: impl Into<String>) -> Self {
        Self {
            pk: pk.into(),
            sk: sk.into(),
        }
    }

    /// The key of an item, or a validation error naming the missing attribute.
    pub fn of(item: &Item) -> Result<Self, StoreError> {
        let attr = |name: &str| match item.get(name) {
            Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
            _ => Err(StoreError::Validation(format!(
                "item must have a non-empty string attribute `{name}`"
            ))),
        };
        Ok(Self {
            pk: attr(PK)?,
            sk: attr(SK)?,
        })
    }
}

/// Which key a query runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Index {
    Primary,
    /// The sparse `gsi1pk`/`gsi1sk` index (all attributes projected).
    Gsi1,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// A condition on one item's top-level attributes (DynamoDB condition expression subset).
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    Exists(String),
    NotExists(String),
    Compare(String, CmpOp, Value),
    BeginsWith(String, String),
    And(Vec<Condition>),
    Or(Vec<Condition>),
    Not(Box<Condition>),
}

impl Condition {
    /// `attribute_not_exists(pk)`: the item is absent (or expired).
    pub fn item_absent() -> Self {
        Self::NotExists(PK.to_owned())
    }

    /// `attribute_exists(pk)`: the item is present (and not expired).
    pub fn item_present() -> Self {
        Self::Exists(PK.to_owned())
    }

    pub fn eq(attr: impl Into<String>, value: impl Into<Value>) -> Self {
        Self::Compare(attr.into(), CmpOp::Eq, value.into())
    }

    pub fn cmp(attr: impl Into<String>, op: CmpOp, value: impl Into<Value>) -> Self {
        Self::Compare(attr.into(), op, value.into())
    }

    pub fn and(self, other: Condition) -> Self {
        match self {
            Self::And(mut all) => {
                all.push(other);
                Self::And(all)
            }
            first => Self::And(vec![first, other]),
        }
    }

    pub fn or(self, other: Condition) -> Self {
        match self {
            Self::Or(mut any) => {
                any.push(other);
                Self::Or(any)
            }
            first => Self::Or(vec![first, other]),
        }
    }

    /// Evaluates the condition against an item (`None`: no item). This is the reference
    /// semantics: the embedded adapter uses it directly and the AWS adapter's rendering into a
    /// condition expression is tested against it.
    pub fn evaluate(&self, item: Option<&Item>) -> bool {
        let attr = |name: &str| item.and_then(|i| i.get(name));
        match self {
            Self::Exists(name) => attr(name).is_some(),
            Self::NotExists(name) => attr(name).is_none(),
            Self::Compare(name, op, expected) => compare(attr(name), *op, expected),
            Self::BeginsWith(name, prefix) => {
                matches!(attr(name), Some(Value::String(s)) if s.starts_with(prefix.as_str()))
            }
            Self::And(all) => all.iter().all(|c| c.evaluate(item)),
            Self::Or(any) => any.iter().any(|c| c.evaluate(item)),
            Self::Not(inner) => !inner.evaluate(item),
        }
    }

    /// Every attribute name the condition mentions (for validation and expression rendering).
    pub fn attribute_names<'a>(&'a self, out: &mut Vec<&'a str>) {
        match self {
            Self::Exists(n)
            | Self::NotExists(n)
            | Self::Compare(n, _, _)
            | Self::BeginsWith(n, _) => out.push(n),
            Self::And(cs) | Self::Or(cs) => cs.iter().for_each(|c| c.attribute_names(out)),
            Self::Not(c) => c.attribute_names(out),
        }
    }
}

/// DynamoDB comparison semantics over JSON values: only values of the same type compare;
/// numbers numerically, strings by UTF-8 bytes, booleans and null only for (in)equality.
pub fn compare(actual: Option<&Value>, op: CmpOp, expected: &Value) -> bool {
    let Some(actual) = actual else {
        return op == CmpOp::Ne;
    };
    let ordering = match (actual, expected) {
        (Value::Number(a), Value::Number(b)) => compare_numbers(a, b),
        (Value::String(a), Value::String(b)) => Some(a.as_bytes().cmp(b.as_bytes())),
        (Value::Bool(a), Value::Bool(b)) if matches!(op, CmpOp::Eq | CmpOp::Ne) => Some(a.cmp(b)),
        (Value::Null, Value::Null) if matches!(op, CmpOp::Eq | CmpOp::Ne) => {
            Some(std::cmp::Ordering::Equal)
        }
        (a, b) if matches!(op, CmpOp::Eq | CmpOp::Ne) && same_kind(a, b) => Some(if a == b {
            std::cmp::Ordering::Equal
        } else {
            std::cmp::Ordering::Less
        }),
        _ => None,
    };
    use std::cmp::Ordering::*;
    match (op, ordering) {
        (CmpOp::Eq, Some(o)) => o == Equal,
        (CmpOp::Ne, Some(o)) => o != Equal,
        (CmpOp::Ne, None) => true,
        (CmpOp::Lt, Some(o)) => o == Less,
        (CmpOp::Le, Some(o)) => o != Greater,
        (CmpOp::Gt, Some(o)) => o == Greater,
        (CmpOp::Ge, Some(o)) => o != Less,
        _ => false,
    }
}

fn same_kind(a: &Value, b: &Value) -> bool {
    std::mem::discriminant(a) == std::mem::discriminant(b)
}

fn compare_numbers(a: &serde_json::Number, b: &serde_json::Number) -> Option<std::cmp::Ordering> {
    match (a.as_i64(), b.as_i64()) {
        (Some(x), Some(y)) => Some(x.cmp(&y)),
        _ => a.as_f64()?.partial_cmp(&b.as_f64()?),
    }
}

/// A condition on the sort key of a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SortCondition {
    Eq(String),
    BeginsWith(String),
    /// Inclusive on both ends, as DynamoDB's `BETWEEN`.
    Between(String, String),
    Lt(String),
    Le(String),
    Gt(String),
    Ge(String),
}

impl SortCondition {
    pub fn matches(&self, sk: &str) -> bool {
        match self {
            Self::Eq(v) => sk == v,
            Self::BeginsWith(p) => sk.starts_with(p.as_str()),
            Self::Between(lo, hi) => {
                sk.as_bytes() >= lo.as_bytes() && sk.as_bytes() <= hi.as_bytes()
            }
            Self::Lt(v) => sk.as_bytes() < v.as_bytes(),
            Self::Le(v) => sk.as_bytes() <= v.as_bytes(),
            Self::Gt(v) => sk.as_bytes() > v.as_bytes(),
            Self::Ge(v) => sk.as_bytes() >= v.as_bytes(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct QueryRequest {
    pub index: Index,
    /// The partition key value (`pk`, or `gsi1pk` on the index).
    pub partition: String,
    pub sort: Option<SortCondition>,
    /// Applied after `limit`, as DynamoDB's `FilterExpression`.
    pub filter: Option<Condition>,
    /// Items evaluated per page (1..=1000); `None` lets the backend choose.
    pub limit: Option<usize>,
    /// Ascending sort key order when true.
    pub forward: bool,
    /// `last_evaluated_key` of the previous page.
    pub start_after: Option<Item>,
}

impl QueryRequest {
    pub fn partition(index: Index, partition: impl Into<String>) -> Self {
        Self {
            index,
            partition: partition.into(),
            sort: None,
            filter: None,
            limit: None,
            forward: true,
            start_after: None,
        }
    }

    pub fn sort(mut self, sort: SortCondition) -> Self {
        self.sort = Some(sort);
        self
    }

    pub fn filter(mut self, filter: Condition) -> Self {
        self.filter = Some(filter);
        self
    }

    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = Some(limit);
        self
    }

    pub fn backwards(mut self) -> Self {
        self.forward = false;
        self
    }

    pub fn start_after(mut self, key: Option<Item>) -> Self {
        self.start_after = key;
        self
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueryPage {
    pub items: Vec<Item>,
    /// Opaque position to pass as `start_after` for the next page; `None` when done.
    pub last_evaluated_key: Option<Item>,
}

/// One action of an update (DynamoDB `SET` / `SET if_not_exists` / `ADD` / `REMOVE`).
#[derive(Debug, Clone, PartialEq)]
pub enum UpdateAction {
    Set(String, Value),
    /// Sets the attribute only if it does not exist yet.
    SetIfNotExists(String, Value),
    /// Adds to a numeric attribute; a missing attribute counts as 0.
    Add(String, i64),
    Remove(String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum WriteRequest {
    Put(Item),
    Delete(Key),
}

#[derive(Debug, Clone, PartialEq)]
pub enum TransactOp {
    Put {
        item: Item,
        condition: Option<Condition>,
    },
    Update {
        key: Key,
        actions: Vec<UpdateAction>,
        condition: Option<Condition>,
    },
    Delete {
        key: Key,
        condition: Option<Condition>,
    },
    /// A condition on an item the transaction does not write.
    Check { key: Key, condition: Condition },
}

impl TransactOp {
    pub fn key(&self) -> Result<Key, StoreError> {
        match self {
            Self::Put { item, .. } => Key::of(item),
            Self::Update { key, .. } | Self::Delete { key, .. } | Self::Check { key, .. } => {
                Ok(key.clone())
            }
        }
    }
}

/// Why one operation of a cancelled transaction failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelReason {
    None,
    ConditionFailed,
    /// Another transaction or write touched the item at the same time; retry.
    Conflict,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the condition of the write did not hold")]
    ConditionFailed,
    #[error("the transaction was cancelled: {reasons:?}")]
    TransactionCanceled { reasons: Vec<CancelReason> },
    #[error("invalid request: {0}")]
    Validation(String),
    #[error("the table does not exist: {0}")]
    NoSuchTable(String),
    #[error("throttled by the store; retry later")]
    Throttled,
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// Whether the same call may succeed if retried unchanged.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Throttled | Self::Unavailable(_) => true,
            Self::TransactionCanceled { reasons } => reasons.contains(&CancelReason::Conflict),
            Self::ConditionFailed
            | Self::Validation(_)
            | Self::NoSuchTable(_)
            | Self::Corrupt(_) => false,
        }
    }
}

/// True when the item carries an `expiresAt` (epoch seconds) at or before `now`.
pub fn is_expired(item: &Item, now: DateTime<Utc>) -> bool {
    match item.get(EXPIRES_AT).and_then(Value::as_f64) {
        Some(at) => at <= now.timestamp() as f64,
        None => false,
    }
}

/// Checks what both adapters reject the same way: key attributes, sizes, limits, and no two
/// operations on one item in a transaction.
pub fn validate_item(item: &Item) -> Result<Key, StoreError> {
    let key = Key::of(item)?;
    for name in [GSI1PK, GSI1SK] {
        if let Some(v) = item.get(name)
            && !matches!(v, Value::String(s) if !s.is_empty())
        {
            return Err(StoreError::Validation(format!(
                "index key attribute `{name}` must be a non-empty string"
            )));
        }
    }
    if let Some(v) = item.get(EXPIRES_AT)
        && !v.is_number()
    {
        return Err(StoreError::Validation(format!(
            "`{EXPIRES_AT}` must be epoch seconds"
        )));
    }
    if let Some(size) = item_size_over(item, MAX_ITEM_BYTES) {
        return Err(StoreError::Validation(format!(
            "item {}/{} is {size} bytes; the limit is {MAX_ITEM_BYTES}",
            key.pk, key.sk
        )));
    }
    Ok(key)
}

/// The item's size as JSON when it is over `limit`, else `None`. A string takes between its
/// length and six times it once escaped, so an item whose strings cannot reach the limit even
/// escaped throughout is not encoded at all (a large document would be escaped just to count).
fn item_size_over(item: &Item, limit: usize) -> Option<usize> {
    fn most(value: &Value) -> usize {
        match value {
            Value::Null | Value::Bool(_) => 5,
            // i64, u64 and f64 are written in at most 24 characters.
            Value::Number(_) => 24,
            Value::String(text) => string_len_at_most(text),
            Value::Array(items) => items.iter().map(|v| most(v) + 1).sum::<usize>() + 2,
            Value::Object(members) => object_most(members),
        }
    }
    fn object_most(members: &Map<String, Value>) -> usize {
        members
            .iter()
            .map(|(name, v)| string_len_at_most(name) + 2 + most(v))
            .sum::<usize>()
            .saturating_add(2)
    }
    if object_most(item) <= limit {
        return None;
    }
    let size = encoded_len(item).unwrap_or(usize::MAX);
    (size > limit).then_some(size)
}

/// Validates update actions: no key attribute changes, one action per attribute.
pub fn validate_update(actions: &[UpdateAction]) -> Result<(), StoreError> {
    if actions.is_empty() {
        return Err(StoreError::Validation(
            "an update needs at least one action".into(),
        ));
    }
    let mut seen = HashSet::new();
    for action in actions {
        let name = match action {
            UpdateAction::Set(n, _)
            | UpdateAction::SetIfNotExists(n, _)
            | UpdateAction::Add(n, _)
            | UpdateAction::Remove(n) => n,
        };
        if name == PK || name == SK {
            return Err(StoreError::Validation(format!(
                "cannot update key attribute `{name}`"
            )));
        }
        if name.is_empty() {
            return Err(StoreError::Validation(
                "attribute names must not be empty".into(),
            ));
        }
        if !seen.insert(name.as_str()) {
            return Err(StoreError::Validation(format!(
                "two actions in one update on attribute `{name}`"
            )));
        }
        if let UpdateAction::Set(n, v) | UpdateAction::SetIfNotExists(n, v) = action
            && (n == GSI1PK || n == GSI1SK)
            && !matches!(v, Value::String(s) if !s.is_empty())
        {
            return Err(StoreError::Validation(format!(
                "index key attribute `{n}` must be a non-empty string"
            )));
        }
    }
    Ok(())
}

/// Rejects a batch that names one item twice (`what` names the request in the message).
pub fn reject_duplicate_keys<'a>(
    keys: impl IntoIterator<Item = &'a Key>,
    what: &str,
) -> Result<(), StoreError> {
    let mut seen = HashSet::new();
    for key in keys {
        if !seen.insert(key) {
            return Err(StoreError::Validation(format!(
                "{what} names the item {}/{} twice",
                key.pk, key.sk
            )));
        }
    }
    Ok(())
}

pub fn validate_transaction(ops: &[TransactOp]) -> Result<(), StoreError> {
    if ops.is_empty() || ops.len() > MAX_TRANSACT_ITEMS {
        return Err(StoreError::Validation(format!(
            "a transaction holds 1 to {MAX_TRANSACT_ITEMS} operations, not {}",
            ops.len()
        )));
    }
    let mut keys = HashSet::new();
    for op in ops {
        match op {
            TransactOp::Put { item, .. } => {
                validate_item(item)?;
            }
            TransactOp::Update { actions, .. } => validate_update(actions)?,
            TransactOp::Delete { .. } | TransactOp::Check { .. } => {}
        }
        if !keys.insert(op.key()?) {
            return Err(StoreError::Validation(
                "a transaction cannot include two operations on the same item".into(),
            ));
        }
    }
    Ok(())
}

/// Applies update actions to an item in place (reference semantics for the embedded adapter).
pub fn apply_update(item: &mut Item, actions: &[UpdateAction]) -> Result<(), StoreError> {
    for action in actions {
        match action {
            UpdateAction::Set(name, value) => {
                item.insert(name.clone(), value.clone());
            }
            UpdateAction::SetIfNotExists(name, value) => {
                item.entry(name.clone()).or_insert_with(|| value.clone());
            }
            UpdateAction::Add(name, delta) => {
                let current = match item.get(name) {
                    None => 0,
                    Some(Value::Number(n)) => n.as_i64().ok_or_else(|| {
                        StoreError::Validation(format!("`{name}` is not an integer counter"))
                    })?,
                    Some(_) => {
                        return Err(StoreError::Validation(format!(
                            "ADD needs a number in `{name}`"
                        )));
                    }
                };
                let sum = current.checked_add(*delta).ok_or_else(|| {
                    StoreError::Validation(format!("counter `{name}` would overflow"))
                })?;
                item.insert(name.clone(), Value::from(sum));
            }
            UpdateAction::Remove(name) => {
                item.remove(name);
            }
        }
    }
    Ok(())
}

#[async_trait]
pub trait StateStore: Send + Sync {
    /// The physical table name (for logs and `/health`).
    fn table_name(&self) -> &str;

    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError>;

    /// Writes the whole item, replacing any previous one, if `condition` holds on the previous
    /// one. `ConditionFailed` otherwise.
    async fn put(&self, item: Item, condition: Option<Condition>) -> Result<(), StoreError>;

    /// Updates (or creates, as DynamoDB `UpdateItem` does) the item and returns it as written.
    async fn update(
        &self,
        key: &Key,
        actions: Vec<UpdateAction>,
        condition: Option<Condition>,
    ) -> Result<Item, StoreError>;

    /// Deletes the item if `condition` holds, returning what was deleted (if anything).
    async fn delete(
        &self,
        key: &Key,
        condition: Option<Condition>,
    ) -> Result<Option<Item>, StoreError>;

    async fn query(&self, request: QueryRequest) -> Result<QueryPage, StoreError>;

    /// All-or-nothing writes with per-operation conditions (at most 100 operations, each on a
    /// different item). `TransactionCanceled` names the reason per operation.
    async fn transact_write(&self, ops: Vec<TransactOp>) -> Result<(), StoreError>;

    /// Up to 100 items by key, in no particular order; missing items are left out.
    async fn batch_get(&self, keys: Vec<Key>) -> Result<Vec<Item>, StoreError>;

    /// Up to 25 unconditional puts or deletes. Returns the requests the service did not process
    /// (throttling); the caller retries them, see [`batch_write_all`].
    async fn batch_write(
        &self,
        requests: Vec<WriteRequest>,
    ) -> Result<Vec<WriteRequest>, StoreError>;
}

/// Writes any number of requests in service-sized chunks, retrying unprocessed ones with
/// exponential backoff and full jitter until `deadline` passes.
pub async fn batch_write_all(
    store: &dyn StateStore,
    requests: Vec<WriteRequest>,
    deadline: Duration,
) -> Result<(), StoreError> {
    let started = std::time::Instant::now();
    let mut pending = requests;
    let mut attempt: u32 = 0;
    while !pending.is_empty() {
        let mut unprocessed = Vec::new();
        for chunk in pending.chunks(MAX_BATCH_WRITE) {
            unprocessed.extend(store.batch_write(chunk.to_vec()).await?);
        }
        pending = unprocessed;
        if pending.is_empty() {
            break;
        }
        if started.elapsed() >= deadline {
            return Err(StoreError::Throttled);
        }
        attempt = attempt.saturating_add(1);
        let cap_ms = 25u64.saturating_mul(1 << attempt.min(8));
        tokio::time::sleep(Duration::from_millis(jitter(cap_ms))).await;
    }
    Ok(())
}

/// Full jitter: a uniformly random delay in `0..=cap_ms`, seeded from the time so it needs no
/// random number generator dependency here.
fn jitter(cap_ms: u64) -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or(0);
    nanos % (cap_ms + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_item_is_measured_as_its_json_only_near_the_limit() {
        let doc = "{\"quote\": \"\\\"\", \"n\": 1}\n\u{1}é".repeat(40);
        let items = [
            serde_json::json!({"pk": "p", "sk": "s"}),
            serde_json::json!({"pk": "p", "sk": "s", "doc": doc, "n": -12.5e-7, "b": [true, null, {"x": "\""}]}),
        ];
        for item in items {
            let item = item.as_object().unwrap().clone();
            let encoded = serde_json::to_vec(&item).unwrap().len();
            for limit in [
                0,
                10,
                encoded - 1,
                encoded,
                encoded + 1,
                encoded * 3,
                encoded * 7,
            ] {
                let expected = (encoded > limit).then_some(encoded);
                assert_eq!(item_size_over(&item, limit), expected, "limit {limit}");
            }
        }
    }

    fn item(v: Value) -> Item {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn comparisons_follow_dynamodb_typing() {
        let it = item(json!({"pk":"a","sk":"b","n":5,"s":"x","f":1.5}));
        assert!(Condition::eq("n", 5).evaluate(Some(&it)));
        assert!(!Condition::eq("n", "5").evaluate(Some(&it)));
        assert!(Condition::cmp("n", CmpOp::Ne, "5").evaluate(Some(&it)));
        assert!(!Condition::cmp("n", CmpOp::Lt, "9").evaluate(Some(&it)));
        assert!(Condition::cmp("f", CmpOp::Gt, 1).evaluate(Some(&it)));
        assert!(Condition::cmp("missing", CmpOp::Ne, 1).evaluate(Some(&it)));
        assert!(!Condition::cmp("missing", CmpOp::Lt, 1).evaluate(Some(&it)));
        assert!(Condition::item_absent().evaluate(None));
        assert!(!Condition::item_present().evaluate(None));
    }

    #[test]
    fn add_creates_and_rejects_non_numbers() {
        let mut it = item(json!({"pk":"a","sk":"b","s":"x"}));
        apply_update(&mut it, &[UpdateAction::Add("c".into(), 2)]).unwrap();
        apply_update(&mut it, &[UpdateAction::Add("c".into(), 3)]).unwrap();
        assert_eq!(it["c"], json!(5));
        assert!(apply_update(&mut it, &[UpdateAction::Add("s".into(), 1)]).is_err());
    }

    #[test]
    fn transactions_reject_two_ops_on_one_item() {
        let k = Key::new("a", "b");
        let ops = vec![
            TransactOp::Check {
                key: k.clone(),
                condition: Condition::item_present(),
            },
            TransactOp::Delete {
                key: k,
                condition: None,
            },
        ];
        assert!(matches!(
            validate_transaction(&ops),
            Err(StoreError::Validation(_))
        ));
    }
}
