//! `EventBus` on the `rules` table: `put_events` matches every rule of the bus and enqueues the
//! EventBridge envelope on each matching rule's target queue in the same SQLite transaction,
//! so an accepted event is never published without its deliveries.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DurationRound, TimeDelta};
use hub_core::json::RawJson;
use hub_core::ports::{
    BusEnvelope, BusError, BusEvent, Clock, EventBus, FailedEntry, IdGenerator, MAX_EVENT_BYTES,
    RuleSpec, Topology,
};
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;

use crate::db::{Db, PortError, queue_waker};
use crate::pattern::EventPattern;
use crate::queue::insert_message;

/// What EventBridge writes into `account` and `region`; there is no account locally.
pub const LOCAL_ACCOUNT: &str = "000000000000";
pub const LOCAL_REGION: &str = "local";

/// Codes of the entries `put_events` rejects (EventBridge's own, where it has one).
pub const CODE_TOO_LARGE: &str = "EventTooLarge";
pub const CODE_INVALID_ARGUMENT: &str = "InvalidArgument";
pub const CODE_MALFORMED_DETAIL: &str = "MalformedDetail";

pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS rules (
    bus TEXT NOT NULL,
    name TEXT NOT NULL,
    pattern TEXT NOT NULL,
    target_queue TEXT NOT NULL,
    PRIMARY KEY (bus, name)
);
";

impl PortError for BusError {
    fn unavailable(message: String) -> Self {
        Self::Unavailable(message)
    }
}

pub(crate) struct SqliteEventBus {
    db: Arc<Db>,
    bus_name: Arc<str>,
    topology: Arc<Topology>,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGenerator>,
}

impl SqliteEventBus {
    pub(crate) fn new(
        db: Arc<Db>,
        bus_name: String,
        topology: Arc<Topology>,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn IdGenerator>,
    ) -> Self {
        Self {
            db,
            bus_name: bus_name.into(),
            topology,
            clock,
            ids,
        }
    }

    fn envelope(&self, event: BusEvent) -> BusEnvelope {
        // EventBridge keeps whole seconds of an event's time.
        let time = event.time.unwrap_or_else(|| self.clock.now());
        BusEnvelope {
            version: "0".to_owned(),
            id: self.ids.new_id(),
            detail_type: event.detail_type,
            source: event.source,
            account: LOCAL_ACCOUNT.to_owned(),
            time: time.duration_trunc(TimeDelta::seconds(1)).unwrap_or(time),
            region: LOCAL_REGION.to_owned(),
            resources: event.resources,
            detail: event.detail,
        }
    }
}

/// An event encoded once, before the database is locked (so the lock is held for the inserts
/// only).
struct Encoded {
    /// The queue message body: the envelope, its detail copied in as it is.
    body: String,
    /// The envelope as JSON without its detail (`null`), for the rule patterns.
    json: Value,
    detail: RawJson,
    /// As EventBridge counts it ([`BusEvent::size`]).
    size: usize,
}

impl Encoded {
    /// The envelope as JSON with its detail, for a pattern that reads the detail.
    fn with_detail(&self) -> Value {
        let mut json = self.json.clone();
        if let Value::Object(members) = &mut json {
            // The text was checked when the detail was made; `null` is never reached.
            members.insert(
                "detail".to_owned(),
                self.detail.to_value().unwrap_or(Value::Null),
            );
        }
        json
    }
}

fn encode(mut envelope: BusEnvelope) -> Result<Encoded, BusError> {
    let invalid = |e: serde_json::Error| BusError::Invalid(format!("event cannot be encoded: {e}"));
    let body = serde_json::to_string(&envelope).map_err(invalid)?;
    let detail = std::mem::replace(&mut envelope.detail, RawJson::null());
    let size = envelope.source.len()
        + envelope.detail_type.len()
        + detail.get().len()
        + envelope.resources.iter().map(String::len).sum::<usize>();
    let json = serde_json::to_value(&envelope).map_err(invalid)?;
    Ok(Encoded {
        body,
        json,
        detail,
        size,
    })
}

/// Stores a rule after checking its pattern and its target queue.
pub(crate) fn upsert_rule(
    conn: &Connection,
    bus: &str,
    rule: &RuleSpec,
    target_physical_name: &str,
) -> Result<(), BusError> {
    if rule.name.is_empty() {
        return Err(BusError::Invalid("a rule needs a name".into()));
    }
    EventPattern::parse(&rule.pattern).map_err(|e| BusError::Invalid(e.to_string()))?;
    let target_exists = conn
        .prepare_cached("SELECT 1 FROM queues WHERE name = ?1")
        .and_then(|mut stmt| {
            stmt.query_row(params![target_physical_name], |_| Ok(()))
                .optional()
        })
        .map_err(BusError::from_sqlite)?
        .is_some();
    if !target_exists {
        return Err(BusError::Invalid(format!(
            "rule `{}` targets `{}`, which is not a queue of this topology",
            rule.name, rule.target_queue
        )));
    }
    conn.prepare_cached(
        "INSERT INTO rules (bus, name, pattern, target_queue) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (bus, name) DO UPDATE SET pattern = excluded.pattern,
             target_queue = excluded.target_queue",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            bus,
            rule.name,
            rule.pattern.to_string(),
            target_physical_name
        ])
    })
    .map_err(BusError::from_sqlite)?;
    Ok(())
}

fn load_rules(conn: &Connection, bus: &str) -> Result<Vec<(EventPattern, String)>, BusError> {
    let rows: Vec<(String, String, String)> = conn
        .prepare_cached("SELECT name, pattern, target_queue FROM rules WHERE bus = ?1")
        .and_then(|mut stmt| {
            stmt.query_map(params![bus], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?))
            })?
            .collect()
        })
        .map_err(BusError::from_sqlite)?;
    rows.into_iter()
        .map(|(name, pattern, target)| {
            let pattern = serde_json::from_str(&pattern)
                .ok()
                .and_then(|p| EventPattern::parse(&p).ok())
                .ok_or_else(|| {
                    BusError::Unavailable(format!("stored rule `{name}` has a corrupt pattern"))
                })?;
            Ok((pattern, target))
        })
        .collect()
}

/// Why EventBridge would reject this entry, if it would.
fn rejection(event: &Encoded) -> Option<(&'static str, String)> {
    let size = event.size;
    if size > MAX_EVENT_BYTES {
        return Some((
            CODE_TOO_LARGE,
            format!("the event is {size} bytes; the limit is {MAX_EVENT_BYTES}"),
        ));
    }
    let text = |name: &str| {
        event
            .json
            .get(name)
            .and_then(Value::as_str)
            .unwrap_or_default()
    };
    if text("source").is_empty() || text("detail-type").is_empty() {
        return Some((
            CODE_INVALID_ARGUMENT,
            "an event needs a source and a detail-type".to_owned(),
        ));
    }
    if !event.detail.is_object() {
        return Some((
            CODE_MALFORMED_DETAIL,
            "the detail of an event must be a JSON object".to_owned(),
        ));
    }
    None
}

#[async_trait]
impl EventBus for SqliteEventBus {
    fn bus_name(&self) -> &str {
        &self.bus_name
    }

    async fn put_events(&self, events: Vec<BusEvent>) -> Result<Vec<FailedEntry>, BusError> {
        let mut failed = Vec::new();
        let mut accepted = Vec::new();
        for (index, event) in events.into_iter().enumerate() {
            let encoded = encode(self.envelope(event))?;
            match rejection(&encoded) {
                Some((code, message)) => failed.push(FailedEntry {
                    index,
                    code: code.to_owned(),
                    message,
                }),
                None => accepted.push(encoded),
            }
        }
        if accepted.is_empty() {
            return Ok(failed);
        }
        let bus = Arc::clone(&self.bus_name);
        let ids = Arc::clone(&self.ids);
        let now = self.clock.now().timestamp_millis();
        let (targets, accepted) = self
            .db
            .write(move |tx| {
                let rules = load_rules(tx, &bus)?;
                let mut targets = BTreeSet::new();
                for event in &accepted {
                    let mut with_detail = None;
                    for (pattern, target) in &rules {
                        let matched = if pattern.reads("detail") {
                            pattern.matches(with_detail.get_or_insert_with(|| event.with_detail()))
                        } else {
                            pattern.matches(&event.json)
                        };
                        if matched {
                            insert_message(
                                tx,
                                target,
                                &ids.new_id(),
                                &event.body,
                                &BTreeMap::new(),
                                now,
                                std::time::Duration::ZERO,
                            )
                            .map_err(BusError::from_sqlite)?;
                            targets.insert(target.clone());
                        }
                    }
                }
                // Handed back so they are freed after the database is unlocked, not while the
                // next caller waits for it.
                Ok((targets, accepted))
            })
            .await?;
        for target in targets {
            queue_waker(self.db.path(), &target).notify_waiters();
        }
        drop(accepted);
        Ok(failed)
    }

    async fn put_rule(&self, rule: RuleSpec) -> Result<(), BusError> {
        let bus = Arc::clone(&self.bus_name);
        let target = self.topology.queue_name(&rule.target_queue);
        self.db
            .write(move |conn| upsert_rule(conn, &bus, &rule, &target))
            .await
    }
}

#[cfg(test)]
mod encode_tests {
    use chrono::{TimeZone, Utc};
    use serde_json::json;

    use super::*;

    #[test]
    fn an_encoded_event_has_the_size_eventbridge_counts_and_the_envelope_it_was_given() {
        for (detail, resources) in [
            (json!({}), vec![]),
            (
                json!({"a": "quotes \" and \\ and\nnew lines", "n": [1, 2.5, null]}),
                vec![],
            ),
            (
                json!({"text": "é ü 漢字 \u{1}"}),
                vec!["arn:a".to_owned(), "arn:b".to_owned()],
            ),
            (json!("not an object"), vec![]),
        ] {
            let detail = RawJson::from_value(&detail);
            let event = BusEvent {
                source: "hub.test".to_owned(),
                detail_type: "thing.happened".to_owned(),
                detail: detail.clone(),
                resources: resources.clone(),
                time: None,
            };
            let expected_size = event.size();
            let envelope = BusEnvelope {
                version: "0".to_owned(),
                id: "01JTESTID".to_owned(),
                detail_type: event.detail_type,
                source: event.source,
                account: LOCAL_ACCOUNT.to_owned(),
                time: Utc.with_ymd_and_hms(2025, 6, 1, 12, 0, 0).unwrap(),
                region: LOCAL_REGION.to_owned(),
                resources,
                detail,
            };
            let encoded = encode(envelope.clone()).unwrap();
            assert_eq!(encoded.size, expected_size, "{}", envelope.detail);
            assert_eq!(encoded.body, serde_json::to_string(&envelope).unwrap());
            assert_eq!(encoded.detail, envelope.detail);
            assert_eq!(
                encoded.with_detail(),
                serde_json::to_value(&envelope).unwrap()
            );
            assert_eq!(encoded.json["detail"], Value::Null);
        }
    }
}
