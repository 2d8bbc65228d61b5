//! Classifying a batch's items against what is stored, and writing them with conditions on
//! what was read (the write rules in the crate documentation).

use std::collections::HashMap;
use std::time::Instant;

use chrono::{DateTime, Utc};
use hub_core::keys::{self, records};
use hub_core::messages::{WriteBatch, WriteItem, WriteTarget};
use hub_core::ports::{
    CmpOp, Condition, Item, Key, MAX_BATCH_GET, StateStore, TransactOp, UpdateAction,
};
use serde_json::Value;

use crate::apply::{Outcome, apply_all, backoff};
use crate::record::{NewVersion, WriteKind, check_item, is_deleted, record_id, str_attr};
use crate::run::Completion;
use crate::{Result, WriterConfig, WriterError, attr};

/// Rounds of read-classify-write before a record that keeps changing fails the batch.
const MAX_ROUNDS: usize = 5;

/// What one write batch did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BatchReport {
    pub created: u64,
    pub updated: u64,
    pub skipped: u64,
    /// Records that failed to save plus records that failed to map.
    pub failed: u64,
    /// Records the store refused (recorded on the execution with phase `saving`).
    pub failures: Vec<RecordFailure>,
    /// The batch had been written and counted before (a redelivery): nothing was written.
    pub already_counted: bool,
    /// What the completion check found, for a batch of a run.
    pub completion: Option<Completion>,
}

/// A record that could not be saved; the rest of its batch was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordFailure {
    pub record_index: u32,
    pub external_id: String,
    pub record_id: String,
    /// `invalid_item` or `rejected_by_store`.
    pub code: &'static str,
    pub message: String,
}

/// How an item relates to what is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Classified {
    Create,
    /// Write over a record flagged deleted (counts as created).
    Restore,
    Update,
    /// Nothing to write; `touch` marks the record as seen by the run.
    Skip {
        touch: bool,
    },
    /// This very batch wrote the record before (a redelivery): count what it did then.
    Replayed(WriteKind),
}

/// What the rest of the batch's write needs to know.
pub(crate) struct Context<'a> {
    pub batch: &'a WriteBatch,
    pub target: WriteTarget,
    /// `writtenBy` of this batch's writes.
    pub write_id: &'a str,
    /// Mark skipped records as seen by the run (`deleteIfRemoved`).
    pub mark_seen: bool,
    pub now: DateTime<Utc>,
}

/// Classifies `item` against `existing` (the write rules, in order).
pub(crate) fn classify(
    existing: Option<&Item>,
    item: &WriteItem,
    context: &Context<'_>,
) -> Classified {
    let target = &context.target;
    let Some(existing) = existing else {
        return if target.create_if_missing {
            Classified::Create
        } else {
            Classified::Skip { touch: false }
        };
    };
    let same_hash = str_attr(existing, attr::PAYLOAD_HASH) == Some(item.payload_hash.as_str());
    if same_hash
        && str_attr(existing, attr::WRITTEN_BY) == Some(context.write_id)
        && let Some(kind) = WriteKind::of(existing)
    {
        return Classified::Replayed(kind);
    }
    let deleted = is_deleted(existing);
    let touch = context.mark_seen
        && !deleted
        && str_attr(existing, attr::LAST_SEEN_EXECUTION) != context.batch.execution_id.as_deref();
    let older = match (
        item.source_modified_at,
        str_attr(existing, attr::SOURCE_MODIFIED_AT),
    ) {
        (Some(new), Some(stored)) => keys::sortable_time(new).as_str() < stored,
        _ => false,
    };
    if older {
        Classified::Skip { touch }
    } else if deleted {
        if target.create_if_missing {
            Classified::Restore
        } else {
            Classified::Skip { touch: false }
        }
    } else if same_hash || !target.update_if_exists {
        Classified::Skip { touch }
    } else {
        Classified::Update
    }
}

/// What to do for one item in this round.
enum Plan {
    Write(WriteKind, TransactOp),
    Touch(TransactOp),
    Skip,
    Replayed(WriteKind),
    Fail(RecordFailure),
}

#[derive(Default)]
pub(crate) struct Counts {
    pub created: u64,
    pub updated: u64,
    pub skipped: u64,
    pub failures: Vec<RecordFailure>,
}

impl Counts {
    fn count(&mut self, kind: WriteKind) {
        match kind {
            WriteKind::Created => self.created += 1,
            WriteKind::Updated => self.updated += 1,
        }
    }
}

/// Writes the batch's items; per-record failures are in the counts, not errors.
pub(crate) async fn write_items(
    store: &dyn StateStore,
    context: &Context<'_>,
    config: &WriterConfig,
    deadline: Instant,
) -> Result<Counts> {
    let batch = context.batch;
    let tenant = batch.tenant_id.as_str();
    let entity_type = batch.target_entity_type.as_str();
    let mut counts = Counts::default();

    // One item per record: of two with the same dedup key the newer (then the later) wins.
    let mut winners: HashMap<Key, usize> = HashMap::new();
    for (index, item) in batch.items.iter().enumerate() {
        let id = record_id(tenant, entity_type, &item.dedup_key);
        if item.dedup_key.is_empty() || item.external_id.is_empty() {
            counts.failures.push(RecordFailure {
                record_index: item.lineage.record_index,
                external_id: item.external_id.clone(),
                record_id: id,
                code: "invalid_item",
                message: "an item needs a non-empty dedupKey and externalId".into(),
            });
            continue;
        }
        let key = records::record(tenant, entity_type, &id);
        match winners.get_mut(&key) {
            Some(winner) => {
                let current = &batch.items[*winner];
                if item.source_modified_at >= current.source_modified_at {
                    *winner = index;
                }
                counts.skipped += 1;
            }
            None => {
                winners.insert(key, index);
            }
        }
    }
    let mut pending: Vec<(Key, usize)> = winners.into_iter().collect();
    // Input order, so transactions and logs follow the batch.
    pending.sort_by_key(|(_, index)| *index);

    for _round in 0..MAX_ROUNDS {
        if pending.is_empty() {
            return Ok(counts);
        }
        let stored = read_all(store, pending.iter().map(|(key, _)| key), config, deadline).await?;
        let mut writes = Vec::new();
        for (key, index) in pending.drain(..) {
            let item = &batch.items[index];
            match plan(stored.get(&key), item, &key, context) {
                Plan::Skip => counts.skipped += 1,
                Plan::Replayed(kind) => counts.count(kind),
                Plan::Fail(failure) => counts.failures.push(failure),
                Plan::Write(kind, op) => writes.push((key, index, Some(kind), op)),
                Plan::Touch(op) => writes.push((key, index, None, op)),
            }
        }
        let ops = writes.iter().map(|(_, _, _, op)| op.clone()).collect();
        let outcomes = apply_all(store, ops, config, deadline).await?;
        for ((key, index, kind, _), outcome) in writes.into_iter().zip(outcomes) {
            match (outcome, kind) {
                (Outcome::Done, Some(kind)) => counts.count(kind),
                (Outcome::Done, None) => counts.skipped += 1,
                // Someone wrote the record since it was read: read it again and decide again.
                (Outcome::ConditionFailed, Some(_)) => pending.push((key, index)),
                // A touch only fails when the record vanished: nothing left to mark.
                (Outcome::ConditionFailed, None) => counts.skipped += 1,
                (Outcome::Refused(message), _) => {
                    let item = &batch.items[index];
                    counts.failures.push(RecordFailure {
                        record_index: item.lineage.record_index,
                        external_id: item.external_id.clone(),
                        record_id: key.sk.clone(),
                        code: "rejected_by_store",
                        message,
                    });
                }
            }
        }
        pending.sort_by_key(|(_, index)| *index);
    }
    match pending.first() {
        None => Ok(counts),
        Some((key, _)) => Err(WriterError::Contention {
            record_id: key.sk.clone(),
        }),
    }
}

fn plan(existing: Option<&Item>, item: &WriteItem, key: &Key, context: &Context<'_>) -> Plan {
    let version = NewVersion {
        batch: context.batch,
        item,
        record_key: key,
        write_id: context.write_id,
        kind: WriteKind::Created,
        now: context.now,
    };
    let fail = |code: &'static str, message: String| {
        Plan::Fail(RecordFailure {
            record_index: item.lineage.record_index,
            external_id: item.external_id.clone(),
            record_id: key.sk.clone(),
            code,
            message,
        })
    };
    let classified = classify(existing, item, context);
    match (classified, existing) {
        (Classified::Create, _) | (Classified::Restore | Classified::Update, None) => {
            let new = match version.new_item() {
                Ok(new) => new,
                Err(error) => return fail("invalid_item", error.to_string()),
            };
            if let Err(message) = check_item(&new) {
                return fail("rejected_by_store", message);
            }
            Plan::Write(
                WriteKind::Created,
                TransactOp::Put {
                    item: new,
                    condition: Some(Condition::item_absent()),
                },
            )
        }
        (Classified::Restore | Classified::Update, Some(existing)) => {
            let kind = if classified == Classified::Restore {
                WriteKind::Created
            } else {
                WriteKind::Updated
            };
            let version = NewVersion { kind, ..version };
            let replacement = match version.replacement(existing) {
                Ok(replacement) => replacement,
                Err(error) => return fail("invalid_item", error.to_string()),
            };
            if let Err(message) = check_item(&replacement) {
                return fail("rejected_by_store", message);
            }
            // The whole item, conditioned on the version read: attributes other writers added
            // are kept as read, and any write since the read cancels this one.
            Plan::Write(
                kind,
                TransactOp::Put {
                    item: replacement,
                    condition: Some(
                        Condition::item_present()
                            .and(unchanged(attr::VERSION, existing.get(attr::VERSION))),
                    ),
                },
            )
        }
        (Classified::Skip { touch: true }, Some(_)) => match &context.batch.execution_id {
            Some(execution) => Plan::Touch(TransactOp::Update {
                key: key.clone(),
                actions: vec![
                    UpdateAction::Set(attr::LAST_SEEN_EXECUTION.into(), execution.clone().into()),
                    UpdateAction::Set(
                        attr::LAST_SEEN_AT.into(),
                        keys::sortable_time(context.now).into(),
                    ),
                ],
                condition: Some(Condition::item_present().and(Condition::cmp(
                    attr::DELETED,
                    CmpOp::Ne,
                    true,
                ))),
            }),
            None => Plan::Skip,
        },
        (Classified::Skip { .. }, _) => Plan::Skip,
        (Classified::Replayed(kind), _) => Plan::Replayed(kind),
    }
}

/// A condition that holds while `name` still has the value read (or is still absent).
pub(crate) fn unchanged(name: &str, read: Option<&Value>) -> Condition {
    match read {
        Some(value) => Condition::Compare(name.into(), CmpOp::Eq, value.clone()),
        None => Condition::NotExists(name.into()),
    }
}

/// Strongly consistent reads of `keys` in service-sized batches, retried while throttled.
async fn read_all<'a>(
    store: &dyn StateStore,
    keys: impl Iterator<Item = &'a Key>,
    config: &WriterConfig,
    deadline: Instant,
) -> Result<HashMap<Key, Item>> {
    let keys: Vec<Key> = keys.cloned().collect();
    let mut found = HashMap::with_capacity(keys.len());
    for chunk in keys.chunks(MAX_BATCH_GET) {
        let mut attempt = 0;
        let items = loop {
            match store.batch_get(chunk.to_vec()).await {
                Ok(items) => break items,
                Err(error) if error.is_retryable() => {
                    backoff(attempt, deadline, config).await?;
                    attempt += 1;
                }
                Err(error) => return Err(error.into()),
            }
        };
        for item in items {
            found.insert(Key::of(&item)?, item);
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hub_core::messages::{BatchSource, EntityJson, Lineage, PollSource, V1};
    use hub_core::model::TenantId;
    use serde_json::json;

    fn batch() -> WriteBatch {
        WriteBatch {
            v: V1,
            execution_id: Some("E1".into()),
            tenant_id: TenantId::parse("acme").unwrap(),
            tenant_integration_id: "ti".into(),
            integration_id: "crm".into(),
            target_entity_type: "c_contact".into(),
            items: Vec::new(),
            errors: Vec::new(),
            cursor_commit: None,
            source: None,
            source_entity: None,
            target: None,
        }
    }

    fn item(hash: &str, modified: Option<&str>) -> WriteItem {
        WriteItem {
            external_id: "x1".into(),
            dedup_key: "external_id:x1".into(),
            data: EntityJson::from_map(&serde_json::Map::new()).unwrap(),
            source_modified_at: modified.map(|t| t.parse().unwrap()),
            payload_hash: hash.into(),
            lineage: Lineage {
                execution_id: Some("E1".into()),
                source: BatchSource::Poll(PollSource {
                    page: 0,
                    page_token: None,
                    part: 0,
                    parts: 1,
                }),
                record_index: 0,
                schema_id: "s".into(),
                schema_version: 1,
            },
        }
    }

    fn stored(value: Value) -> Item {
        value.as_object().cloned().unwrap()
    }

    fn context<'a>(batch: &'a WriteBatch, target: WriteTarget, mark_seen: bool) -> Context<'a> {
        Context {
            batch,
            target,
            write_id: "E1#poll#0#0",
            mark_seen,
            now: "2025-01-01T00:00:00Z".parse().unwrap(),
        }
    }

    #[test]
    fn classification_follows_the_write_rules_in_order() {
        let batch = batch();
        let all = WriteTarget::default();
        let ctx = context(&batch, all, false);
        let new = item("h2", Some("2025-01-02T00:00:00Z"));
        assert_eq!(classify(None, &new, &ctx), Classified::Create);

        let current = stored(json!({
            "payloadHash": "h1", "sourceModifiedAt": "2025-01-01T00:00:00.000Z", "version": 1
        }));
        assert_eq!(classify(Some(&current), &new, &ctx), Classified::Update);
        let older = item("h0", Some("2024-12-31T00:00:00Z"));
        assert_eq!(
            classify(Some(&current), &older, &ctx),
            Classified::Skip { touch: false }
        );
        let same = item("h1", Some("2025-01-01T00:00:00Z"));
        assert_eq!(
            classify(Some(&current), &same, &ctx),
            Classified::Skip { touch: false }
        );
        // Without a time on either side nothing is older: the hash decides.
        let untimed = item("h3", None);
        assert_eq!(classify(Some(&current), &untimed, &ctx), Classified::Update);

        let mut deleted = current.clone();
        deleted.insert(attr::DELETED.into(), true.into());
        assert_eq!(classify(Some(&deleted), &same, &ctx), Classified::Restore);

        let mut mine = current.clone();
        mine.insert(attr::WRITTEN_BY.into(), "E1#poll#0#0".into());
        mine.insert(attr::WRITE_KIND.into(), "created".into());
        assert_eq!(
            classify(Some(&mine), &same, &ctx),
            Classified::Replayed(WriteKind::Created)
        );

        let only_create = WriteTarget {
            update_if_exists: false,
            ..all
        };
        let ctx = context(&batch, only_create, true);
        assert_eq!(
            classify(Some(&current), &new, &ctx),
            Classified::Skip { touch: true }
        );
        let only_update = WriteTarget {
            create_if_missing: false,
            ..all
        };
        let ctx = context(&batch, only_update, true);
        assert_eq!(
            classify(None, &new, &ctx),
            Classified::Skip { touch: false }
        );
        assert_eq!(
            classify(Some(&deleted), &new, &ctx),
            Classified::Skip { touch: false }
        );
        let mut seen = current.clone();
        seen.insert(attr::LAST_SEEN_EXECUTION.into(), "E1".into());
        assert_eq!(
            classify(Some(&seen), &same, &ctx),
            Classified::Skip { touch: false }
        );
    }
}
