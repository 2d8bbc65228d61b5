//! Envelopes round-trip, check their version first, and bus details keep their detail type.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use hub_core::messages::{
    BatchSource, BusDetail, ConflictDetected, ConnectionNeedsReauth, EntityJson, Envelope,
    FinishedStatus, RecordBatch, SyncFinished, SyncJob, SyncStarted, WebhookReceived, WriteBatch,
    decode, events,
};
use hub_core::ports::BusEnvelope;

fn round_trip<E: Envelope + std::fmt::Debug + PartialEq>(document: Value) -> E {
    let text = document.to_string();
    let decoded: E = decode(&text).unwrap_or_else(|e| panic!("{e}\nin {text}"));
    assert_eq!(serde_json::to_value(&decoded).unwrap(), document);
    assert_eq!(E::from_json(&decoded.to_json().unwrap()).unwrap(), decoded);
    decoded
}

fn sync_job() -> Value {
    json!({
        "v": 1,
        "executionId": "01HXEXEC",
        "tenantId": "acme",
        "taskId": "sf-opp-hourly",
        "attempt": 1,
        "triggeredBy": "schedule",
        "page": 0,
        "pageToken": null,
        "cursorWindow": {"from": "2024-05-01T09:00:00Z", "to": null}
    })
}

fn record_batch() -> Value {
    json!({
        "v": 1,
        "executionId": "01HXEXEC",
        "tenantId": "acme",
        "tenantIntegrationId": "ti-1",
        "taskId": "sf-opp-hourly",
        "schemaId": "sf-opportunity",
        "schemaVersion": 3,
        "source": {"type": "poll", "page": 2, "pageToken": "/services/data/v60.0/query/01g-2000", "part": 0, "parts": 2},
        "records": [{"Id": "006A", "Name": "Deal", "Amount": 1000}],
        "lastPage": false,
        "cursorCandidate": "2024-05-01T10:00:00Z"
    })
}

fn write_batch() -> Value {
    json!({
        "v": 1,
        "executionId": null,
        "tenantId": "acme",
        "tenantIntegrationId": "ti-1",
        "integrationId": "salesforce",
        "targetEntityType": "c_opportunity",
        "items": [{
            "externalId": "006A",
            "dedupKey": "salesforce#006A",
            "data": {"name": "Deal", "value": 1000},
            "sourceModifiedAt": "2024-05-01T09:59:00Z",
            "payloadHash": "9f86d081884c7d65",
            "lineage": {
                "executionId": null,
                "source": {"type": "webhook", "deliveryId": "evt-77"},
                "recordIndex": 0,
                "schemaId": "sf-opportunity",
                "schemaVersion": 3
            }
        }],
        "errors": [{
            "recordIndex": 1,
            "externalId": "006B",
            "targetField": "email",
            "sourcePath": "Email",
            "code": "missing_required_field",
            "message": "Email is required"
        }],
        "cursorCommit": {"taskId": "sf-opp-hourly", "page": 2, "cursor": "2024-05-01T10:00:00Z"}
    })
}

#[test]
fn work_envelopes_round_trip() {
    let job: SyncJob = round_trip(sync_job());
    assert_eq!(job.idempotency_key(), "job#01HXEXEC#0");
    let batch: RecordBatch = round_trip(record_batch());
    assert_eq!(batch.source.key(), "poll#2#0");
    let write: WriteBatch = round_trip(write_batch());
    assert!(matches!(
        write.items[0].lineage.source,
        BatchSource::Webhook(_)
    ));
    assert_eq!(write.items[0].lineage.source.key(), "webhook#evt-77");
    let mut split = write_batch();
    split["items"][0]["lineage"]["source"] =
        json!({"type": "webhook", "deliveryId": "evt-77", "part": 1, "parts": 2});
    let split: WriteBatch = round_trip(split);
    assert_eq!(split.items[0].lineage.source.key(), "webhook#evt-77#1");
}

#[test]
fn an_unknown_version_is_refused_before_the_shape_is_read() {
    let mut newer = sync_job();
    newer["v"] = json!(2);
    newer["somethingNew"] = json!(true);
    newer.as_object_mut().unwrap().remove("taskId");
    let error = decode::<SyncJob>(&newer.to_string()).unwrap_err();
    assert_eq!(error.code(), "unsupported_version", "{error}");
    assert_eq!(
        error.to_string(),
        "unsupported SyncJob version 2: this build reads version 1"
    );

    let mut unversioned = record_batch();
    unversioned.as_object_mut().unwrap().remove("v");
    let error = decode::<RecordBatch>(&unversioned.to_string()).unwrap_err();
    assert_eq!(
        (error.code(), error.path()),
        ("invalid_document", Some("v")),
        "{error}"
    );

    let mut text_version = write_batch();
    text_version["v"] = json!("1");
    let error = decode::<WriteBatch>(&text_version.to_string()).unwrap_err();
    assert_eq!(error.code(), "unsupported_version", "{error}");
}

#[test]
fn envelope_shape_errors_name_the_path() {
    let mut batch = write_batch();
    batch["items"][0]["lineage"]["source"] =
        json!({"type": "poll", "page": 1, "pageToken": null, "part": 0});
    let error = decode::<WriteBatch>(&batch.to_string()).unwrap_err();
    assert_eq!(error.path(), Some("items[0].lineage.source"), "{error}");
    assert!(
        error.to_string().contains("missing field `parts`"),
        "{error}"
    );

    let mut job = sync_job();
    job["triggeredBy"] = json!("cron");
    let error = decode::<SyncJob>(&job.to_string()).unwrap_err();
    assert_eq!(error.path(), Some("triggeredBy"), "{error}");

    let error = decode::<SyncJob>("[1]").unwrap_err();
    assert_eq!(error.code(), "invalid_document", "{error}");
    let error = decode::<SyncJob>("{\"v\": 1,").unwrap_err();
    assert_eq!(error.code(), "invalid_json", "{error}");
}

/// Publishes through `to_bus_event`, delivers as EventBridge would, reads back.
fn through_the_bus<D: BusDetail + std::fmt::Debug + PartialEq + Serialize + DeserializeOwned>(
    detail: Value,
    detail_type: &str,
) -> D {
    let decoded: D = round_trip(detail);
    let event = decoded.to_bus_event().unwrap();
    assert_eq!(event.source, D::SOURCE);
    assert_eq!(event.detail_type, detail_type);
    let envelope = BusEnvelope {
        version: "0".into(),
        id: "evt-1".into(),
        detail_type: event.detail_type.clone(),
        source: event.source.clone(),
        account: "000000000000".into(),
        time: "2024-05-01T10:00:00Z".parse().unwrap(),
        region: "eu-west-1".into(),
        resources: Vec::new(),
        detail: event.detail.clone(),
    };
    let again = D::from_bus_envelope(&envelope).unwrap();
    assert_eq!(again, decoded);
    let wrong = BusEnvelope {
        detail_type: "something.else".into(),
        ..envelope
    };
    assert_eq!(
        D::from_bus_envelope(&wrong).unwrap_err().code(),
        "unexpected_event"
    );
    decoded
}

#[test]
fn bus_details_round_trip_with_their_detail_types() {
    through_the_bus::<WebhookReceived>(
        json!({
            "v": 1, "tenantId": "acme", "tenantIntegrationId": "ti-1", "integrationId": "hubspot",
            "routeId": "rt_01hxroute", "provider": "hubspot",
            "deliveryId": "d-1", "eventType": "contact.propertyChange",
            "receivedAt": "2024-05-01T10:00:00Z", "payload": [{"objectId": 1}]
        }),
        events::WEBHOOK_RECEIVED,
    );
    through_the_bus::<WebhookReceived>(
        json!({
            "v": 1, "tenantId": "acme", "tenantIntegrationId": "ti-1", "integrationId": "github",
            "routeId": "rt_01hxroute", "provider": "github",
            "deliveryId": "d-2", "eventType": "push",
            "receivedAt": "2024-05-01T10:00:00Z", "payload": null,
            "payloadRef": {"chunks": 3, "bytes": 900000, "sha256": "ab12"}
        }),
        events::WEBHOOK_RECEIVED,
    );
    through_the_bus::<SyncStarted>(
        json!({
            "v": 1, "executionId": "e-1", "tenantId": "acme", "tenantIntegrationId": "ti-1",
            "taskId": "t-1", "triggeredBy": "manual", "startedAt": "2024-05-01T10:00:00Z"
        }),
        events::SYNC_STARTED,
    );
    for (status, detail_type) in [
        ("success", events::SYNC_COMPLETED),
        ("partial", events::SYNC_PARTIAL),
        ("failed", events::SYNC_FAILED),
        ("cancelled", events::SYNC_FAILED),
    ] {
        let finished: SyncFinished = through_the_bus(
            json!({
                "v": 1, "executionId": "e-1", "tenantId": "acme", "tenantIntegrationId": "ti-1",
                "taskId": "t-1", "status": status, "startedAt": "2024-05-01T10:00:00Z",
                "completedAt": "2024-05-01T10:01:00Z", "durationMs": 60000,
                "results": {"fetched": 3, "created": 1, "updated": 1, "skipped": 0, "failed": 1},
                "errorCount": 1, "lastError": "boom",
                "notifications": {
                    "onSuccess": false, "onFailure": true, "onPartial": true,
                    "recipients": ["ops@example.com"]
                }
            }),
            detail_type,
        );
        assert_eq!(finished.status.to_string(), status);
    }
    through_the_bus::<ConnectionNeedsReauth>(
        json!({
            "v": 1, "tenantId": null, "connectionId": "news-system", "integrationId": "google-news",
            "reason": "invalid_grant", "detectedAt": "2024-05-01T10:00:00Z"
        }),
        events::CONNECTION_NEEDS_REAUTH,
    );
    through_the_bus::<ConflictDetected>(
        json!({
            "v": 1, "conflictId": "c-1", "executionId": "e-1", "tenantId": "acme",
            "tenantIntegrationId": "ti-1", "externalId": "003A", "shardId": "s-1",
            "fields": ["phone"], "detectedAt": "2024-05-01T10:00:00Z"
        }),
        events::CONFLICT_DETECTED,
    );
}

#[test]
fn a_finished_detail_must_match_its_detail_type() {
    let finished: SyncFinished = decode(
        &json!({
            "v": 1, "executionId": "e-1", "tenantId": "acme", "tenantIntegrationId": "ti-1",
            "taskId": "t-1", "status": "success", "startedAt": "2024-05-01T10:00:00Z",
            "completedAt": "2024-05-01T10:01:00Z", "durationMs": 1,
            "results": {"fetched": 0, "created": 0, "updated": 0, "skipped": 0, "failed": 0},
            "errorCount": 0, "lastError": null
        })
        .to_string(),
    )
    .unwrap();
    assert_eq!(finished.status, FinishedStatus::Success);
    let mut event = finished.to_bus_event().unwrap();
    event.detail_type = events::SYNC_FAILED.into();
    let envelope = BusEnvelope {
        version: "0".into(),
        id: "evt-2".into(),
        detail_type: event.detail_type,
        source: event.source,
        account: "000000000000".into(),
        time: "2024-05-01T10:00:00Z".parse().unwrap(),
        region: "eu-west-1".into(),
        resources: Vec::new(),
        detail: event.detail,
    };
    let error = SyncFinished::from_bus_envelope(&envelope).unwrap_err();
    assert_eq!(error.code(), "unexpected_event", "{error}");
}

#[test]
fn detail_types_are_distinct() {
    let mut all = events::ALL_DETAIL_TYPES.to_vec();
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), events::ALL_DETAIL_TYPES.len());
}

#[test]
fn write_items_carry_the_entity_as_json_text() {
    let write: WriteBatch = round_trip(write_batch());
    let data = &write.items[0].data;
    assert_eq!(data.as_str(), r#"{"name":"Deal","value":1000}"#);
    assert_eq!(data.get("value"), Some(json!(1000)));
    assert_eq!(data.get("missing"), None);
    let rebuilt = EntityJson::from_map(&data.to_map()).unwrap();
    assert_eq!(&rebuilt, data);
    let spaced: EntityJson = serde_json::from_str(r#"{ "value": 1000, "name": "Deal" }"#).unwrap();
    assert_eq!(&spaced, data, "equality compares values, not text");

    let mut not_an_object = write_batch();
    not_an_object["items"][0]["data"] = json!([1, 2]);
    let error = decode::<WriteBatch>(&not_an_object.to_string()).unwrap_err();
    assert_eq!(error.path(), Some("items[0].data"), "{error}");
    assert!(
        error.to_string().contains("expected a JSON object"),
        "{error}"
    );
    let from_value: Result<WriteBatch, _> = hub_core::model::decode_value(write_batch());
    assert_eq!(from_value.unwrap(), write);
}
