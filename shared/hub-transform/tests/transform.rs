//! The transformer on the embedded backend: schema versions from the state table, one write
//! batch per record batch, per-record errors carried, operator-fixable failures reported.

use std::sync::Arc;

use hub_core::messages::{BatchSource, Envelope, PollSource, RecordBatch, V1, WriteBatch};
use hub_core::model::TenantId;
use hub_core::ports::{Ports, ReceiveOptions, SystemClock, Topology};
use hub_runtime::{MessageHandler, QueueMessage};
use hub_transform::TransformHandler;
use serde_json::{Value, json};

async fn ports(dir: &std::path::Path) -> Ports {
    let dir = dir.to_owned();
    tokio::task::spawn_blocking(move || {
        hub_embedded::EmbeddedBackend::open(&dir, &Topology::default(), Arc::new(SystemClock))
    })
    .await
    .unwrap()
    .unwrap()
}

async fn apply(ports: &Ports, document: Value) {
    for parsed in hub_config::parse_documents(&document.to_string()).unwrap() {
        hub_config::apply(ports, &parsed).await.unwrap();
    }
}

async fn configured(dir: &std::path::Path) -> Ports {
    let ports = ports(dir).await;
    let schema: Value = serde_json::from_str(include_str!(
        "../../hub-core/tests/fixtures/seed/conversion-schema.sf-contact-to-contact.json"
    ))
    .unwrap();
    apply(
        &ports,
        json!([
            {"kind": "TenantIntegration", "tenantId": "acme", "spec": {"id": "ti-sf", "integrationId": "salesforce", "status": "pending"}},
            {"kind": "ConversionSchema", "tenantId": "acme", "spec": schema}
        ]),
    )
    .await;
    ports
}

fn batch(records: Vec<Value>, schema_version: u32) -> RecordBatch {
    RecordBatch {
        v: V1,
        execution_id: Some("01EXEC".into()),
        tenant_id: TenantId::parse("acme").unwrap(),
        tenant_integration_id: "ti-sf".into(),
        task_id: None,
        schema_id: "sf-contact-to-contact".into(),
        schema_version,
        source: BatchSource::Poll(PollSource {
            page: 3,
            part: 0,
            parts: 1,
            page_token: None,
        }),
        records,
        last_page: true,
        cursor_candidate: None,
    }
}

fn message(body: String) -> QueueMessage {
    QueueMessage {
        message_id: "m-1".into(),
        body,
        receive_count: 1,
        attributes: Default::default(),
    }
}

async fn written(ports: &Ports) -> Vec<WriteBatch> {
    let queue = ports.queue("write").unwrap();
    let received = queue.receive(ReceiveOptions::default()).await.unwrap();
    received
        .iter()
        .map(|m| WriteBatch::from_json(&m.body).unwrap())
        .collect()
}

#[tokio::test]
async fn a_record_batch_becomes_one_write_batch_with_per_record_errors() {
    let dir = tempfile::tempdir().unwrap();
    let ports = configured(dir.path()).await;
    let handler = TransformHandler::new(ports.clone());
    let records = vec![
        json!({"Id": "003A", "Email": "ada@example.com", "FirstName": "Ada", "LastName": "Lovelace", "IsDeleted": false}),
        json!({"Id": "003B", "FirstName": "No", "LastName": "Email", "IsDeleted": false}),
        json!({"Id": "003C", "Email": "gone@example.com", "IsDeleted": true}),
    ];
    handler
        .handle(&message(batch(records, 1).to_json().unwrap()))
        .await
        .unwrap();

    let batches = written(&ports).await;
    assert_eq!(batches.len(), 1);
    let write = &batches[0];
    assert_eq!(
        (
            write.integration_id.as_str(),
            write.target_entity_type.as_str()
        ),
        ("salesforce", "c_contact")
    );
    assert_eq!(
        write.items.len(),
        1,
        "the deleted record is filtered out, the one without email fails"
    );
    assert_eq!(write.items[0].external_id, "003A");
    assert_eq!(write.items[0].data.get("name").unwrap(), "Ada Lovelace");
    assert_eq!(write.items[0].lineage.schema_version, 1);
    assert_eq!(write.items[0].lineage.record_index, 0);
    assert_eq!(write.errors.len(), 1);
    assert_eq!(
        (
            write.errors[0].record_index,
            write.errors[0].target_field.as_deref()
        ),
        (1, Some("email"))
    );
    assert_eq!(write.source_entity.as_deref(), Some("Contact"));
}

#[tokio::test]
async fn a_missing_schema_version_or_a_bad_body_is_a_permanent_failure() {
    let dir = tempfile::tempdir().unwrap();
    let ports = configured(dir.path()).await;
    let handler = TransformHandler::new(ports.clone());
    let missing = handler
        .handle(&message(
            batch(vec![json!({"Id": "1"})], 7).to_json().unwrap(),
        ))
        .await
        .unwrap_err();
    assert_eq!(
        (missing.code.as_str(), missing.retryable),
        ("schema_not_found", false)
    );
    let bad = handler
        .handle(&message("{\"v\": 1}".into()))
        .await
        .unwrap_err();
    assert!(!bad.retryable, "{bad:?}");
    assert!(
        written(&ports).await.is_empty(),
        "nothing is sent on failure"
    );
}

#[tokio::test]
async fn a_batch_replayed_with_remap_maps_with_the_current_schema_version() {
    let dir = tempfile::tempdir().unwrap();
    let ports = configured(dir.path()).await;
    let tenant = TenantId::parse("acme").unwrap();
    // The fix: version 2 of the schema the task maps with.
    let mut schema: Value = serde_json::from_str(include_str!(
        "../../hub-core/tests/fixtures/seed/conversion-schema.sf-contact-to-contact.json"
    ))
    .unwrap();
    schema["name"] = json!("fixed");
    apply(
        &ports,
        json!([
            {"kind": "ConversionSchema", "tenantId": "acme", "spec": schema},
            {"kind": "SyncTask", "tenantId": "acme", "spec": {
                "id": "contacts", "tenantIntegrationId": "ti-sf", "name": "Contacts",
                "conversionSchemaId": "sf-contact-to-contact", "direction": "pull",
                "schedule": {"type": "manual", "config": {"type": "manual"}},
                "config": {}, "status": "active"
            }}
        ]),
    )
    .await;
    let sync = hub_sync::SyncService::new(ports.clone());
    let execution = sync.run_now(&tenant, "contacts", None).await.unwrap();
    let handler = TransformHandler::new(ports.clone());
    // Pinned to a version that cannot be used (here: one that is not stored).
    let mut pinned = batch(
        vec![json!({"Id": "003A", "Email": "ada@example.com", "IsDeleted": false})],
        7,
    );
    pinned.execution_id = Some(execution.id().to_owned());
    pinned.task_id = Some("contacts".into());
    let body = pinned.to_json().unwrap();
    let plain = handler.handle(&message(body.clone())).await.unwrap_err();
    assert_eq!(plain.code, "schema_not_found");

    let mut replayed = message(body);
    replayed
        .attributes
        .insert(hub_core::messages::REMAP_ATTRIBUTE.into(), "true".into());
    handler.handle(&replayed).await.unwrap();
    let batches = written(&ports).await;
    assert_eq!(batches.len(), 1);
    assert_eq!(batches[0].items.len(), 1);
    assert_eq!(batches[0].items[0].lineage.schema_version, 2);
    let lines = sync
        .execution_logs(&tenant, execution.id(), None, 100)
        .await
        .unwrap();
    assert!(
        lines.iter().any(|line| line.message.contains(
            "re-mapped with conversion schema sf-contact-to-contact version 2 (it was fetched \
             with sf-contact-to-contact version 7)"
        )),
        "{lines:?}"
    );
}
