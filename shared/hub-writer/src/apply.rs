//! Conditional writes in transactions, falling back to one write per item when a transaction is
//! cancelled, with throttled and unavailable writes retried until a deadline.

use std::time::{Duration, Instant};

use futures::StreamExt;
use hub_core::ports::{StateStore, StoreError, TransactOp};

use crate::{Result, WriterConfig, WriterError};

/// DynamoDB refuses transactions above 4 MB; stay well below, as our size estimate is the JSON
/// encoding.
const MAX_TRANSACTION_BYTES: usize = 3 * 1024 * 1024;

/// What became of one operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    Done,
    /// The condition did not hold: what was read has changed.
    ConditionFailed,
    /// The store refused the operation itself (too large, an invalid key): retrying cannot help.
    Refused(String),
}

/// Applies `ops` (each on a different item), returning one outcome per operation in order.
pub(crate) async fn apply_all(
    store: &dyn StateStore,
    ops: Vec<TransactOp>,
    config: &WriterConfig,
    deadline: Instant,
) -> Result<Vec<Outcome>> {
    let chunks = chunk(ops, config.transaction_size);
    let results = futures::stream::iter(chunks)
        .map(|ops| apply_chunk(store, ops, config, deadline))
        .buffered(config.write_concurrency)
        .collect::<Vec<_>>()
        .await;
    let mut outcomes = Vec::new();
    for result in results {
        outcomes.extend(result?);
    }
    Ok(outcomes)
}

fn chunk(ops: Vec<TransactOp>, size: usize) -> Vec<Vec<TransactOp>> {
    let mut chunks = Vec::new();
    let mut current = Vec::new();
    let mut bytes = 0;
    for op in ops {
        let op_bytes = estimated_bytes(&op);
        if !current.is_empty()
            && (current.len() >= size || bytes + op_bytes > MAX_TRANSACTION_BYTES)
        {
            chunks.push(std::mem::take(&mut current));
            bytes = 0;
        }
        bytes += op_bytes;
        current.push(op);
    }
    if !current.is_empty() {
        chunks.push(current);
    }
    chunks
}

fn estimated_bytes(op: &TransactOp) -> usize {
    let json = |value: &serde_json::Value| value.to_string().len();
    match op {
        TransactOp::Put { item, .. } => item.iter().map(|(k, v)| k.len() + json(v)).sum(),
        TransactOp::Update { key, actions, .. } => {
            key.pk.len()
                + key.sk.len()
                + actions
                    .iter()
                    .map(|action| match action {
                        hub_core::ports::UpdateAction::Set(name, value)
                        | hub_core::ports::UpdateAction::SetIfNotExists(name, value) => {
                            name.len() + json(value)
                        }
                        hub_core::ports::UpdateAction::Add(name, _)
                        | hub_core::ports::UpdateAction::Remove(name) => name.len() + 8,
                    })
                    .sum::<usize>()
        }
        TransactOp::Delete { key, .. } | TransactOp::Check { key, .. } => {
            key.pk.len() + key.sk.len()
        }
    }
}

async fn apply_chunk(
    store: &dyn StateStore,
    ops: Vec<TransactOp>,
    config: &WriterConfig,
    deadline: Instant,
) -> Result<Vec<Outcome>> {
    if ops.len() > 1 {
        let mut attempt = 0;
        loop {
            match store.transact_write(ops.clone()).await {
                Ok(()) => return Ok(vec![Outcome::Done; ops.len()]),
                // A condition failed, a concurrent transaction collided, or one item is refused:
                // item by item, each gets its own outcome (and conflicts their own retries).
                Err(StoreError::TransactionCanceled { .. } | StoreError::Validation(_)) => break,
                Err(error) if error.is_retryable() => {
                    backoff(attempt, deadline, config).await?;
                    attempt += 1;
                }
                Err(error) => return Err(error.into()),
            }
        }
    }
    let results = futures::stream::iter(ops)
        .map(|op| apply_one(store, op, config, deadline))
        .buffered(config.write_concurrency)
        .collect::<Vec<_>>()
        .await;
    results.into_iter().collect()
}

/// One operation on its own.
pub(crate) async fn apply_one(
    store: &dyn StateStore,
    op: TransactOp,
    config: &WriterConfig,
    deadline: Instant,
) -> Result<Outcome> {
    let mut attempt = 0;
    loop {
        let result = match &op {
            TransactOp::Put { item, condition } => store.put(item.clone(), condition.clone()).await,
            TransactOp::Update {
                key,
                actions,
                condition,
            } => store
                .update(key, actions.clone(), condition.clone())
                .await
                .map(drop),
            TransactOp::Delete { key, condition } => {
                store.delete(key, condition.clone()).await.map(drop)
            }
            TransactOp::Check { key, condition } => match store.get(key).await {
                Ok(item) if condition.evaluate(item.as_ref()) => Ok(()),
                Ok(_) => Err(StoreError::ConditionFailed),
                Err(error) => Err(error),
            },
        };
        match result {
            Ok(()) => return Ok(Outcome::Done),
            Err(StoreError::ConditionFailed) => return Ok(Outcome::ConditionFailed),
            Err(StoreError::Validation(message)) => return Ok(Outcome::Refused(message)),
            Err(error) if error.is_retryable() => {
                backoff(attempt, deadline, config).await?;
                attempt += 1;
            }
            Err(error) => return Err(error.into()),
        }
    }
}

/// Sleeps before retry `attempt` (from 0): exponential from 20 ms, capped at 2 s, with full
/// jitter; `write_deadline` once the deadline has passed.
pub(crate) async fn backoff(attempt: u32, deadline: Instant, config: &WriterConfig) -> Result<()> {
    let now = Instant::now();
    if now >= deadline {
        return Err(WriterError::Deadline {
            seconds: config.retry_deadline.as_secs(),
        });
    }
    let cap_ms = 20u64.saturating_mul(1 << attempt.min(7)).min(2_000);
    let delay = Duration::from_millis(rand::random::<u64>() % (cap_ms + 1));
    tokio::time::sleep(delay.min(deadline - now)).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hub_core::ports::{Condition, Item, Key};
    use serde_json::json;

    fn put(n: usize, bytes: usize) -> TransactOp {
        let item: Item = json!({"pk": "p", "sk": n.to_string(), "data": "x".repeat(bytes)})
            .as_object()
            .cloned()
            .unwrap();
        TransactOp::Put {
            item,
            condition: Some(Condition::item_absent()),
        }
    }

    #[test]
    fn chunks_respect_count_and_size() {
        let ops: Vec<_> = (0..60).map(|n| put(n, 10)).collect();
        let sizes: Vec<_> = chunk(ops, 25).iter().map(Vec::len).collect();
        assert_eq!(sizes, [25, 25, 10]);

        let big: Vec<_> = (0..10).map(|n| put(n, 390 * 1024)).collect();
        let chunks = chunk(big, 100);
        assert!(chunks.len() >= 2, "{} chunks", chunks.len());
        assert!(chunks.iter().all(|c| c.len() <= 7));
        assert_eq!(chunks.iter().map(Vec::len).sum::<usize>(), 10);

        let delete = TransactOp::Delete {
            key: Key::new("p", "s"),
            condition: None,
        };
        assert_eq!(chunk(vec![delete], 25).len(), 1);
    }
}
