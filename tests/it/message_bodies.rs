//! A queue message whose body does not parse fails with one code, `invalid_message_body`,
//! whichever function's queue it is in, so one `hub dlq purge --error-code
//! invalid_message_body` (the README's) finds every such dead letter. The human sentence says
//! what the body should have been and why it is not.

use std::sync::Arc;

use hub_connectors::{ConnectorCatalog, EgressPolicy, Fetcher, FetcherConfig};
use hub_core::ports::{Ports, SystemClock, Topology};
use hub_fetch::{FetchConfig, FetchHandler};
use hub_runtime::{JsonHandler, MessageHandler, QueueMessage};
use hub_transform::TransformHandler;
use hub_writer::WriteHandler;
use serde_json::json;

async fn ports(dir: &std::path::Path) -> Ports {
    let dir = dir.to_owned();
    tokio::task::spawn_blocking(move || {
        hub_embedded::EmbeddedBackend::open(&dir, &Topology::default(), Arc::new(SystemClock))
    })
    .await
    .unwrap()
    .unwrap()
}

fn message(body: &str) -> QueueMessage {
    QueueMessage {
        message_id: "m-1".into(),
        body: body.to_owned(),
        receive_count: 1,
        attributes: Default::default(),
    }
}

/// An EventBridge envelope as the webhook rule delivers it to the transform queue, with
/// `detail` in place of a `webhook.received` detail.
fn bus_envelope(detail_type: &str, detail: serde_json::Value) -> String {
    json!({
        "version": "0",
        "id": "e-1",
        "detail-type": detail_type,
        "source": "hub.webhooks",
        "account": "000000000000",
        "time": "2025-01-01T00:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": detail,
    })
    .to_string()
}

#[tokio::test]
async fn a_body_that_does_not_parse_is_invalid_message_body_in_every_queue() {
    let dir = tempfile::tempdir().unwrap();
    let ports = ports(dir.path()).await;
    let fetcher = Fetcher::new(
        FetcherConfig {
            egress: EgressPolicy::local_sandbox(),
            ..FetcherConfig::default()
        },
        Arc::clone(&ports.clock),
    )
    .unwrap();
    let handlers: Vec<(&str, Arc<dyn MessageHandler>)> = vec![
        ("transform", Arc::new(TransformHandler::new(ports.clone()))),
        ("write", Arc::new(WriteHandler::from_ports(ports.clone()))),
        (
            "fetch",
            Arc::new(FetchHandler::new(
                ports.clone(),
                ConnectorCatalog::builtin().unwrap(),
                fetcher,
                FetchConfig::default(),
            )),
        ),
        (
            "typed",
            Arc::new(JsonHandler::new(
                |_: serde_json::Map<String, serde_json::Value>, _| async { Ok(()) },
            )),
        ),
    ];
    let bodies = [
        ("not JSON", "<html>oops</html>".to_owned()),
        ("truncated JSON", r#"{"v": 1, "tenantId": "ac"#.to_owned()),
        ("empty", String::new()),
        ("not an object", "[1, 2]".to_owned()),
    ];
    for (queue, handler) in &handlers {
        for (what, body) in &bodies {
            let error = handler.handle(&message(body)).await.unwrap_err();
            assert_eq!(
                (error.code.as_str(), error.retryable),
                ("invalid_message_body", false),
                "{queue} queue, {what}: {error}"
            );
            assert!(!error.message.is_empty(), "{queue} queue, {what}");
        }
    }

    // The envelopes' own shape and version checks, for the queues that read an envelope.
    let envelopes = [
        ("a missing member", r#"{"v": 1}"#.to_owned()),
        ("a newer version", r#"{"v": 2}"#.to_owned()),
    ];
    for (queue, handler) in &handlers[..3] {
        for (what, body) in &envelopes {
            let error = handler.handle(&message(body)).await.unwrap_err();
            assert_eq!(
                (error.code.as_str(), error.retryable),
                ("invalid_message_body", false),
                "{queue} queue, {what}: {error}"
            );
        }
    }

    // The transform queue also carries webhook deliveries in a bus envelope.
    let transformer = &handlers[0].1;
    let deliveries = [
        (
            "a broken bus envelope",
            r#"{"detail-type": "webhook.received", "detail": "#.to_owned(),
        ),
        (
            "a delivery without its members",
            bus_envelope("webhook.received", json!({"v": 1})),
        ),
        (
            "an event of another type",
            bus_envelope("sync.completed", json!({"v": 1})),
        ),
    ];
    for (what, body) in &deliveries {
        let error = transformer.handle(&message(body)).await.unwrap_err();
        assert_eq!(
            (error.code.as_str(), error.retryable),
            ("invalid_message_body", false),
            "transform queue, {what}: {error}"
        );
    }
}
