//! Messages and events written in the same transaction as the state change they announce, then
//! delivered: see "Exactly one run per occurrence" in the crate documentation.

use std::time::Duration;

use chrono::{DateTime, Utc};
use hub_core::keys;
use hub_core::messages::{BusDetail, Envelope};
use hub_core::model::ModelError;
use hub_core::ports::{
    BusEvent, CmpOp, Condition, Index, Item, Key, OutgoingMessage, Ports, QueryRequest, StoreError,
    TransactOp, UpdateAction,
};
use hub_core::repo;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{Error, Result, attr, kind};

/// One side effect to deliver.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "snake_case",
    rename_all_fields = "camelCase"
)]
pub(crate) enum Effect {
    Message {
        queue: String,
        body: String,
    },
    Event {
        source: String,
        detail_type: String,
        detail: Value,
    },
}

impl Effect {
    pub(crate) fn message<E: Envelope>(queue: &str, envelope: &E) -> Result<Self> {
        Ok(Self::Message {
            queue: queue.to_owned(),
            body: envelope.to_json().map_err(Error::Encode)?,
        })
    }

    pub(crate) fn event<D: BusDetail>(detail: &D) -> Result<Self> {
        let value = serde_json::to_value(detail).map_err(|error| {
            Error::Encode(ModelError::Encode {
                kind: D::KIND,
                message: error.to_string(),
            })
        })?;
        Ok(Self::Event {
            source: D::SOURCE.to_owned(),
            detail_type: detail.detail_type().to_owned(),
            detail: value,
        })
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub key: Key,
    pub effect: Effect,
}

impl Entry {
    pub(crate) fn new(ports: &Ports, shard: u32, effect: Effect) -> Self {
        Self {
            key: keys::outbox_entry(shard, &ports.ids.new_id()),
            effect,
        }
    }

    /// The transaction operation that stores the entry, leased to its writer until
    /// `lease_until`, so no tick redelivers it while the writer is still delivering.
    pub(crate) fn put_op(
        &self,
        execution_id: &str,
        lease_until: DateTime<Utc>,
    ) -> Result<TransactOp> {
        let mut item =
            repo::doc_item(&self.key, kind::OUTBOX, &self.effect).map_err(Error::Encode)?;
        item.insert(
            attr::LEASE_UNTIL_MS.into(),
            lease_until.timestamp_millis().into(),
        );
        item.insert(attr::EXECUTION_ID.into(), execution_id.into());
        Ok(TransactOp::Put {
            item,
            condition: Some(Condition::item_absent()),
        })
    }
}

/// `now + by`, saturating.
pub(crate) fn later(now: DateTime<Utc>, by: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(by)
        .ok()
        .and_then(|by| now.checked_add_signed(by))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// Delivers each entry and deletes it. A failure is logged and leaves the entry for a later
/// tick; returns how many were delivered.
pub(crate) async fn deliver(ports: &Ports, entries: &[Entry]) -> usize {
    let mut delivered = 0;
    for entry in entries {
        match deliver_one(ports, entry).await {
            Ok(()) => delivered += 1,
            Err(error) => tracing::warn!(
                pk = %entry.key.pk,
                sk = %entry.key.sk,
                code = error.code(),
                "outbox delivery failed, a later tick retries it: {error}"
            ),
        }
    }
    delivered
}

async fn deliver_one(ports: &Ports, entry: &Entry) -> Result<()> {
    match &entry.effect {
        Effect::Message { queue, body } => {
            ports
                .queue(queue)?
                .send(OutgoingMessage::new(body.clone()))
                .await?;
        }
        Effect::Event {
            source,
            detail_type,
            detail,
        } => {
            let event = BusEvent::new(source.clone(), detail_type.clone(), detail.clone());
            if let Some(failed) = ports.bus.put_events(vec![event]).await?.into_iter().next() {
                return Err(Error::EventRejected {
                    code: failed.code,
                    message: failed.message,
                });
            }
        }
    }
    ports.state.delete(&entry.key, None).await?;
    Ok(())
}

/// What a drain did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Drained {
    pub delivered: usize,
    pub failed: usize,
}

/// Redelivers entries whose writer's lease ran out (it crashed, or its delivery failed): each is
/// leased to this caller with a conditional update first, so two ticks never both deliver it.
pub(crate) async fn drain(
    ports: &Ports,
    now: DateTime<Utc>,
    lease: Duration,
    limit: usize,
) -> Result<Drained> {
    let mut drained = Drained::default();
    let now_ms = now.timestamp_millis();
    for shard in 0..keys::DUE_SHARDS {
        let mut start = None;
        loop {
            let page = ports
                .state
                .query(
                    QueryRequest::partition(Index::Primary, keys::outbox_partition(shard))
                        .filter(Condition::cmp(attr::LEASE_UNTIL_MS, CmpOp::Le, now_ms))
                        .limit(100)
                        .start_after(start),
                )
                .await?;
            for item in page.items {
                if drained.delivered + drained.failed >= limit {
                    return Ok(drained);
                }
                match lease_and_deliver(ports, item, now, lease).await {
                    Ok(true) => drained.delivered += 1,
                    Ok(false) => {}
                    // The entry stays, leased: the tick after the lease tries it again.
                    Err(error) => {
                        drained.failed += 1;
                        tracing::warn!(code = error.code(), "outbox redelivery failed: {error}");
                    }
                }
            }
            start = page.last_evaluated_key;
            if start.is_none() {
                break;
            }
        }
    }
    Ok(drained)
}

/// `Ok(false)` when another caller leased the entry first.
async fn lease_and_deliver(
    ports: &Ports,
    item: Item,
    now: DateTime<Utc>,
    lease: Duration,
) -> Result<bool> {
    let key = Key::of(&item)?;
    let Some(leased_until) = item.get(attr::LEASE_UNTIL_MS).cloned() else {
        return Err(Error::corrupt(&key, "outbox entry without a lease"));
    };
    let effect: Effect = match item.get(repo::DOC) {
        Some(Value::String(text)) => serde_json::from_str(text)
            .map_err(|error| Error::corrupt(&key, format!("outbox entry: {error}")))?,
        _ => return Err(Error::corrupt(&key, "outbox entry without a document")),
    };
    let leased = ports
        .state
        .update(
            &key,
            vec![UpdateAction::Set(
                attr::LEASE_UNTIL_MS.into(),
                later(now, lease).timestamp_millis().into(),
            )],
            Some(Condition::item_present().and(Condition::Compare(
                attr::LEASE_UNTIL_MS.into(),
                CmpOp::Eq,
                leased_until,
            ))),
        )
        .await;
    match leased {
        Ok(_) => {}
        Err(StoreError::ConditionFailed) => return Ok(false),
        Err(error) => return Err(error.into()),
    }
    deliver_one(ports, &Entry { key, effect }).await?;
    Ok(true)
}
