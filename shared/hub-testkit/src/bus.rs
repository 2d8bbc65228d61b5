//! `EventBus` cases: EventBridge rules route matching events to queues as envelopes.

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use hub_core::ports::{
    BusEnvelope, BusError, BusEvent, MAX_EVENT_BYTES, Queue, ReceiveOptions, ReceivedMessage,
    RuleSpec, Topology,
};
use serde_json::{Value, json};

use crate::{Harness, topology};

/// Rules of the bus cases:
/// - `sync-events`: `hub.sync` events of two detail types, to `events`;
/// - `large-syncs`: `hub.sync` events with more than 100 records, to `audit`;
/// - `webhooks`: sources starting with `hub.web`, a provider other than `ignored` and a
///   delivery id, to `events`.
fn bus_topology() -> Topology {
    let rule = |name: &str, pattern: Value, target: &str| RuleSpec {
        name: name.to_owned(),
        pattern,
        target_queue: target.to_owned(),
    };
    let mut topology = topology();
    topology.rules = vec![
        rule(
            "sync-events",
            json!({"source": ["hub.sync"], "detail-type": ["sync.completed", "sync.failed"]}),
            "events",
        ),
        rule(
            "large-syncs",
            json!({"source": ["hub.sync"], "detail": {"records": [{"numeric": [">", 100]}]}}),
            "audit",
        ),
        rule(
            "webhooks",
            json!({
                "source": [{"prefix": "hub.web"}],
                "detail": {
                    "provider": [{"anything-but": "ignored"}],
                    "deliveryId": [{"exists": true}],
                },
            }),
            "events",
        ),
    ];
    topology
}

fn sync_event(detail_type: &str, records: u64) -> BusEvent {
    BusEvent::new(
        "hub.sync",
        detail_type,
        json!({"executionId": "exec-1", "records": records}),
    )
}

/// Receives (and deletes) until `count` messages arrived or a few long polls come back empty;
/// deliveries from a bus to a queue may lag on a real service.
async fn deliveries(queue: &dyn Queue, count: usize) -> Vec<ReceivedMessage> {
    let mut received = Vec::new();
    let mut empty_polls = 0;
    while received.len() < count && empty_polls < 3 {
        let batch = queue
            .receive(ReceiveOptions {
                max_messages: 10,
                wait: Duration::from_secs(1),
                visibility_timeout: None,
            })
            .await
            .expect("receive");
        if batch.is_empty() {
            empty_polls += 1;
        }
        for message in &batch {
            queue.delete(&message.receipt_handle).await.expect("delete");
        }
        received.extend(batch);
    }
    received
}

/// Nothing more arrives within a short long poll.
async fn assert_no_more(queue: &dyn Queue) {
    let extra = queue
        .receive(ReceiveOptions {
            max_messages: 10,
            wait: Duration::from_secs(1),
            visibility_timeout: None,
        })
        .await
        .expect("receive");
    assert!(
        extra.is_empty(),
        "unexpected deliveries to `{}`: {extra:?}",
        queue.name()
    );
}

fn envelope(message: &ReceivedMessage) -> BusEnvelope {
    serde_json::from_str(&message.body).unwrap_or_else(|e| {
        panic!(
            "a delivery is an EventBridge envelope ({e}): {}",
            message.body
        )
    })
}

fn details(messages: &[ReceivedMessage]) -> Vec<Value> {
    messages
        .iter()
        .map(|m| envelope(m).detail.to_value().unwrap())
        .collect()
}

pub async fn matching_events_reach_the_target_queue_as_envelopes(h: &dyn Harness) {
    let ports = h.fresh(&bus_topology()).await;
    let events = ports.queue("events").unwrap();
    let time: DateTime<Utc> = "2024-05-01T12:30:00Z".parse().unwrap();
    let mut event = sync_event("sync.completed", 5);
    event.resources = vec!["arn:hub:task/task-1".to_owned()];
    event.time = Some(time);
    let failed = ports.bus.put_events(vec![event.clone()]).await.unwrap();
    assert!(failed.is_empty(), "{failed:?}");

    let delivered = deliveries(&*events, 1).await;
    assert_eq!(delivered.len(), 1);
    let envelope = envelope(&delivered[0]);
    assert_eq!(envelope.version, "0");
    assert!(!envelope.id.is_empty());
    assert_eq!(envelope.source, "hub.sync");
    assert_eq!(envelope.detail_type, "sync.completed");
    assert_eq!(envelope.detail, event.detail);
    assert_eq!(envelope.resources, event.resources);
    assert_eq!(envelope.time, time);
    assert!(!envelope.account.is_empty());
    assert!(!envelope.region.is_empty());
    // The raw JSON uses EventBridge's field names.
    let raw: Value = serde_json::from_str(&delivered[0].body).unwrap();
    for field in [
        "version",
        "id",
        "detail-type",
        "source",
        "account",
        "time",
        "region",
        "resources",
        "detail",
    ] {
        assert!(raw.get(field).is_some(), "envelope field `{field}`: {raw}");
    }
    assert_no_more(&*ports.queue("audit").unwrap()).await;
}

pub async fn events_matching_no_rule_are_not_delivered(h: &dyn Harness) {
    let ports = h.fresh(&bus_topology()).await;
    let failed = ports
        .bus
        .put_events(vec![
            BusEvent::new("hub.other", "sync.completed", json!({"records": 500})),
            sync_event("sync.started", 5),
            sync_event("sync.failed", 1),
        ])
        .await
        .unwrap();
    assert!(failed.is_empty(), "{failed:?}");
    let events = ports.queue("events").unwrap();
    let delivered = deliveries(&*events, 1).await;
    assert_eq!(delivered.len(), 1);
    assert_eq!(envelope(&delivered[0]).detail_type, "sync.failed");
    assert_no_more(&*events).await;
    assert_no_more(&*ports.queue("audit").unwrap()).await;
}

pub async fn every_matching_rule_delivers(h: &dyn Harness) {
    let ports = h.fresh(&bus_topology()).await;
    let failed = ports
        .bus
        .put_events(vec![sync_event("sync.completed", 500)])
        .await
        .unwrap();
    assert!(failed.is_empty(), "{failed:?}");
    let to_events = deliveries(&*ports.queue("events").unwrap(), 1).await;
    let to_audit = deliveries(&*ports.queue("audit").unwrap(), 1).await;
    assert_eq!(to_events.len(), 1);
    assert_eq!(to_audit.len(), 1);
    assert_eq!(envelope(&to_events[0]).id, envelope(&to_audit[0]).id);
}

pub async fn pattern_operators_route_events(h: &dyn Harness) {
    let ports = h.fresh(&bus_topology()).await;
    let webhook = |source: &str, detail: Value| BusEvent::new(source, "webhook.received", detail);
    let failed = ports
        .bus
        .put_events(vec![
            webhook(
                "hub.webhooks",
                json!({"provider": "github", "deliveryId": "d-1"}),
            ),
            webhook(
                "hub.webhooks",
                json!({"provider": "ignored", "deliveryId": "d-2"}),
            ),
            webhook("hub.webhooks", json!({"provider": "github"})),
            webhook(
                "hub.sync",
                json!({"provider": "github", "deliveryId": "d-4"}),
            ),
            webhook(
                "hub.web.v2",
                json!({"provider": "stripe", "deliveryId": "d-5"}),
            ),
        ])
        .await
        .unwrap();
    assert!(failed.is_empty(), "{failed:?}");
    let events = ports.queue("events").unwrap();
    let delivered = deliveries(&*events, 2).await;
    let ids: BTreeSet<String> = details(&delivered)
        .iter()
        .map(|d| d["deliveryId"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(ids, BTreeSet::from(["d-1".to_owned(), "d-5".to_owned()]));
    assert_no_more(&*events).await;

    let failed = ports
        .bus
        .put_events(vec![
            sync_event("sync.completed", 100),
            sync_event("sync.completed", 101),
        ])
        .await
        .unwrap();
    assert!(failed.is_empty(), "{failed:?}");
    let audit = ports.queue("audit").unwrap();
    let large = deliveries(&*audit, 1).await;
    assert_eq!(
        details(&large),
        [json!({"executionId": "exec-1", "records": 101})]
    );
    assert_no_more(&*audit).await;
}

pub async fn put_events_accepts_more_than_ten_events(h: &dyn Harness) {
    let ports = h.fresh(&bus_topology()).await;
    let sent: Vec<BusEvent> = (0..23).map(|i| sync_event("sync.completed", i)).collect();
    let failed = ports.bus.put_events(sent).await.unwrap();
    assert!(failed.is_empty(), "{failed:?}");
    let delivered = deliveries(&*ports.queue("events").unwrap(), 23).await;
    let records: BTreeSet<u64> = details(&delivered)
        .iter()
        .filter_map(|d| d["records"].as_u64())
        .collect();
    assert_eq!(records, (0..23).collect::<BTreeSet<u64>>());
    assert_eq!(delivered.len(), 23);
}

pub async fn oversize_events_fail_alone(h: &dyn Harness) {
    let ports = h.fresh(&bus_topology()).await;
    let oversize = BusEvent::new(
        "hub.sync",
        "sync.completed",
        json!({"records": 1, "padding": "p".repeat(MAX_EVENT_BYTES)}),
    );
    let failed = ports
        .bus
        .put_events(vec![
            sync_event("sync.completed", 1),
            oversize,
            sync_event("sync.completed", 3),
        ])
        .await
        .unwrap();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0].index, 1);
    assert!(!failed[0].code.is_empty());
    let events = ports.queue("events").unwrap();
    let delivered = deliveries(&*events, 2).await;
    let records: BTreeSet<u64> = details(&delivered)
        .iter()
        .filter_map(|d| d["records"].as_u64())
        .collect();
    assert_eq!(records, BTreeSet::from([1, 3]));
    assert_no_more(&*events).await;
}

pub async fn put_rule_replaces_a_rule_by_name(h: &dyn Harness) {
    let ports = h.fresh(&bus_topology()).await;
    ports
        .bus
        .put_rule(RuleSpec {
            name: "sync-events".to_owned(),
            pattern: json!({"source": ["hub.lifecycle"]}),
            target_queue: "events".to_owned(),
        })
        .await
        .unwrap();
    let failed = ports
        .bus
        .put_events(vec![
            sync_event("sync.completed", 1),
            BusEvent::new(
                "hub.lifecycle",
                "connection.needs_reauth",
                json!({"id": "c-1"}),
            ),
        ])
        .await
        .unwrap();
    assert!(failed.is_empty(), "{failed:?}");
    let events = ports.queue("events").unwrap();
    let delivered = deliveries(&*events, 1).await;
    assert_eq!(delivered.len(), 1);
    assert_eq!(envelope(&delivered[0]).source, "hub.lifecycle");
    assert_no_more(&*events).await;

    // A new rule starts delivering at once.
    ports
        .bus
        .put_rule(RuleSpec {
            name: "everything-to-audit".to_owned(),
            pattern: json!({"source": [{"prefix": "hub."}]}),
            target_queue: "audit".to_owned(),
        })
        .await
        .unwrap();
    ports
        .bus
        .put_events(vec![sync_event("sync.started", 1)])
        .await
        .unwrap();
    assert_eq!(
        deliveries(&*ports.queue("audit").unwrap(), 1).await.len(),
        1
    );
}

pub async fn invalid_patterns_are_rejected(h: &dyn Harness) {
    let ports = h.fresh(&bus_topology()).await;
    let invalid = ports
        .bus
        .put_rule(RuleSpec {
            name: "broken".to_owned(),
            pattern: json!({"source": "hub.sync"}),
            target_queue: "events".to_owned(),
        })
        .await;
    assert!(matches!(invalid, Err(BusError::Invalid(_))), "{invalid:?}");
}
