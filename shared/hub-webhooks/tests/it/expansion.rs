//! From a `webhook.received` envelope on the transform queue to the record batches of the
//! integration's realtime tasks, or to a stored delivery when there is none.

use hub_core::keys;
use hub_core::messages::BatchSource;
use hub_core::model::{SyncTask, load_value};
use hub_core::ports::Item;
use hub_core::repo::doc_item;
use hub_webhooks::{
    HubspotOptions, MAX_BATCH_BYTES, SchemeConfig, WebhookRequest, expand_delivery, list_unrouted,
    sign_request,
};
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::harness::{
    Harness, START, TENANT, TENANT_INTEGRATION, at, envelope, fixture, github, github_event,
    received,
};

const SECRET: &str = "github-test-secret";

/// Stores a sync task as hub-sync does: the document in `doc`, the live status beside it.
async fn task(h: &Harness, id: &str, schedule: Value, tenant_integration: &str, status: &str) {
    let task: SyncTask = load_value(json!({
        "id": id,
        "tenantIntegrationId": tenant_integration,
        "name": id,
        "conversionSchemaId": format!("schema-{id}"),
        "direction": "pull",
        "schedule": schedule,
        "config": {},
        "status": "active"
    }))
    .expect("a valid task");
    let mut item = doc_item(&keys::task(TENANT, id), "task", &task).unwrap();
    item.insert("status".into(), status.into());
    h.ports.state.put(item, None).await.unwrap();
    let mut head: Item = doc_item(
        &keys::schema_head(TENANT, &format!("schema-{id}")),
        "schema",
        &json!({"id": format!("schema-{id}")}),
    )
    .unwrap();
    head.insert("version".into(), 3.into());
    h.ports.state.put(head, None).await.unwrap();
}

fn realtime() -> Value {
    json!({"type": "realtime", "config": {
        "type": "realtime",
        "webhookUrl": "https://hub.example.com/webhooks/x",
        "verificationToken": "tok"
    }})
}

fn hourly() -> Value {
    json!({"type": "interval", "config": {"type": "interval", "interval": 1, "unit": "hours"}})
}

#[tokio::test]
async fn a_delivery_becomes_one_batch_per_active_realtime_task_of_its_integration() {
    let h = Harness::new().await;
    task(&h, "rt-a", realtime(), TENANT_INTEGRATION, "active").await;
    task(&h, "rt-b", realtime(), TENANT_INTEGRATION, "active").await;
    task(&h, "hourly", hourly(), TENANT_INTEGRATION, "active").await;
    task(&h, "paused", realtime(), TENANT_INTEGRATION, "paused").await;
    task(&h, "elsewhere", realtime(), "ti-other", "active").await;
    let route = h
        .route(SchemeConfig::Github, &[("gh-1", SECRET)], |_| {})
        .await;
    let body = fixture("github/issues.opened.json");
    assert_eq!(
        h.send(&route, github(&route, SECRET, "dlv-1", &body))
            .await
            .status,
        200
    );
    let messages = h.transform_messages().await;
    let expansion = expand_delivery(&h.ports, &envelope(&messages[0]))
        .await
        .unwrap();

    assert_eq!(expansion.unrouted, None);
    let tasks: Vec<_> = expansion
        .batches
        .iter()
        .map(|batch| batch.task_id.as_deref().unwrap())
        .collect();
    assert_eq!(tasks, ["rt-a", "rt-b"]);
    let issue = serde_json::from_slice::<Value>(&body).unwrap()["issue"].clone();
    for batch in &expansion.batches {
        assert_eq!(batch.tenant_id.as_str(), TENANT);
        assert_eq!(batch.tenant_integration_id, TENANT_INTEGRATION);
        assert_eq!(batch.execution_id, None);
        assert_eq!(
            batch.schema_id,
            format!("schema-{}", batch.task_id.as_deref().unwrap())
        );
        assert_eq!(batch.schema_version, 3);
        assert_eq!(batch.records, std::slice::from_ref(&issue));
        assert_eq!(batch.source.key(), "webhook#dlv-1");
        let BatchSource::Webhook(source) = &batch.source else {
            panic!("a webhook source");
        };
        assert_eq!((source.part, source.parts), (0, 1));
    }
    assert!(
        list_unrouted(&*h.ports.state, TENANT)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_delivery_no_realtime_task_takes_is_stored_for_inspection() {
    let h = Harness::new().await;
    task(&h, "hourly", hourly(), TENANT_INTEGRATION, "active").await;
    let route = h
        .route(SchemeConfig::Github, &[("gh-1", SECRET)], |_| {})
        .await;
    let body = fixture("github/ping.json");
    assert_eq!(
        h.send(
            &route,
            github_event(&route, SECRET, "dlv-ping", "ping", &body)
        )
        .await
        .status,
        200
    );
    let message = &h.transform_messages().await[0];
    let first = expand_delivery(&h.ports, &envelope(message)).await.unwrap();
    assert!(first.batches.is_empty());
    let stored_as = first.unrouted.expect("stored");
    // The transformer may see the same message twice: still one stored delivery.
    let second = expand_delivery(&h.ports, &envelope(message)).await.unwrap();
    assert_eq!(second.unrouted.as_deref(), Some(stored_as.as_str()));

    let unrouted = list_unrouted(&*h.ports.state, TENANT).await.unwrap();
    assert_eq!(unrouted.len(), 1);
    let stored = &unrouted[0];
    assert_eq!(stored.delivery_id, "dlv-ping");
    assert_eq!(stored.route_id, route.id.as_str());
    assert_eq!(stored.tenant_integration_id, TENANT_INTEGRATION);
    assert_eq!(stored.provider, "github");
    assert_eq!(stored.event_type.as_deref(), Some("ping"));
    assert_eq!(stored.received_at, at(START));
    assert_eq!(
        stored.payload,
        serde_json::from_slice::<Value>(&body).unwrap()
    );
    assert!(
        list_unrouted(&*h.ports.state, "globex")
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_large_batched_delivery_is_split_under_the_queue_limit() {
    let h = Harness::new().await;
    task(&h, "rt", realtime(), TENANT_INTEGRATION, "active").await;
    let route = h
        .route(
            SchemeConfig::Hubspot(HubspotOptions::default()),
            &[("hs-1", "hubspot-secret")],
            |route| route.integration_id = "hubspot".into(),
        )
        .await;
    let events: Vec<Value> = (0..600)
        .map(|n| {
            json!({
                "eventId": n, "subscriptionId": 7, "portalId": 99, "objectId": 1000 + n,
                "subscriptionType": "contact.propertyChange", "propertyName": "notes",
                "propertyValue": "n".repeat(900), "occurredAt": 1_750_000_000_000_i64
            })
        })
        .collect();
    let body = serde_json::to_vec(&events).unwrap();
    let mut request = WebhookRequest::post(format!("https://hooks.example.test{}", route.path()))
        .with_header("Content-Type", "application/json")
        .with_body(body);
    sign_request(
        &route.config,
        &SecretString::from("hubspot-secret"),
        &mut request,
        at(START),
    )
    .unwrap();
    let response = h.send(&route, request).await;
    assert_eq!(
        response.status,
        200,
        "{}",
        String::from_utf8_lossy(&response.body)
    );
    let message = &h.transform_messages().await[0];
    assert!(
        received(message).payload_ref.is_some(),
        "over the inline limit"
    );

    let expansion = expand_delivery(&h.ports, &envelope(message)).await.unwrap();
    let batches = &expansion.batches;
    assert!(batches.len() >= 3, "{}", batches.len());
    let mut object_ids = Vec::new();
    for (part, batch) in batches.iter().enumerate() {
        let size = serde_json::to_vec(batch).unwrap().len();
        assert!(size <= MAX_BATCH_BYTES, "part {part}: {size}");
        let BatchSource::Webhook(source) = &batch.source else {
            panic!("a webhook source");
        };
        assert_eq!(
            (source.part as usize, source.parts as usize),
            (part, batches.len())
        );
        object_ids.extend(
            batch
                .records
                .iter()
                .map(|record| record["objectId"].clone()),
        );
    }
    let expected: Vec<Value> = (0..600).map(|n| json!(1000 + n)).collect();
    assert_eq!(object_ids, expected, "every record once, in order");
    let keys: std::collections::BTreeSet<_> = batches.iter().map(|b| b.source.key()).collect();
    assert_eq!(keys.len(), batches.len(), "each part has its own key");
}

#[tokio::test]
async fn a_single_record_over_the_batch_limit_is_a_permanent_error() {
    let h = Harness::new().await;
    task(&h, "rt", realtime(), TENANT_INTEGRATION, "active").await;
    let route = h
        .route(SchemeConfig::Github, &[("gh-1", SECRET)], |_| {})
        .await;
    let mut issue: Value = serde_json::from_slice(&fixture("github/issues.opened.json")).unwrap();
    issue["issue"]["body"] = json!("y".repeat(MAX_BATCH_BYTES));
    let body = serde_json::to_vec(&issue).unwrap();
    assert_eq!(
        h.send(&route, github(&route, SECRET, "dlv-huge", &body))
            .await
            .status,
        200
    );
    let message = &h.transform_messages().await[0];
    let error = expand_delivery(&h.ports, &envelope(message))
        .await
        .unwrap_err();
    assert_eq!(error.code(), "record_too_large");
    assert!(!error.is_retryable());
}

#[tokio::test]
async fn an_event_of_another_type_is_refused() {
    let h = Harness::new().await;
    let route = h
        .route(SchemeConfig::Github, &[("gh-1", SECRET)], |_| {})
        .await;
    let body = fixture("github/ping.json");
    h.send(&route, github(&route, SECRET, "d", &body)).await;
    let mut wrong = envelope(&h.transform_messages().await[0]);
    wrong.detail_type = "sync.completed".into();
    let error = expand_delivery(&h.ports, &wrong).await.unwrap_err();
    assert_eq!(error.code(), "invalid_message_body");
    assert!(!error.is_retryable());
}

/// A stored delivery whose document would not fit an item keeps its payload in chunks.
#[tokio::test]
async fn a_large_unrouted_delivery_keeps_its_payload_in_chunks() {
    let h = Harness::new().await;
    let route = h
        .route(SchemeConfig::Github, &[("gh-1", SECRET)], |_| {})
        .await;
    let mut issue: Value = serde_json::from_slice(&fixture("github/issues.opened.json")).unwrap();
    issue["issue"]["body"] = json!("\"".repeat(80_000));
    let body = serde_json::to_vec(&issue).unwrap();
    assert_eq!(
        h.send(&route, github(&route, SECRET, "dlv-quotes", &body))
            .await
            .status,
        200
    );
    let message = &h.transform_messages().await[0];
    assert!(
        received(message).payload_ref.is_none(),
        "inline in the event"
    );
    let expansion = expand_delivery(&h.ports, &envelope(message)).await.unwrap();
    assert!(expansion.unrouted.is_some());
    assert_eq!(
        expansion.delivery.payload, issue,
        "the caller still has the payload"
    );
    let stored = list_unrouted(&*h.ports.state, TENANT).await.unwrap();
    let reference = stored[0].payload_ref.clone().expect("stored in chunks");
    assert!(stored[0].payload.is_null());
    let payload =
        hub_webhooks::load_payload(&*h.ports.state, route.id.as_str(), "dlv-quotes", &reference)
            .await
            .unwrap();
    assert_eq!(payload, issue);
}
