//! The realtime path end to end: a signed delivery of each vendor fixture (the files of
//! `shared/hub-webhooks/tests/fixtures/`, copied from the reference folder
//! `../shared/fixtures/webhooks/`, see its `SOURCES.md`) goes through the receiver's HTTP
//! route, the bus rule, the transform queue, the transformer's expansion per realtime task, the
//! write queue and the writer, and lands in the records table; on the embedded backend and on
//! moto. Sending a delivery twice writes once: the receiver's ledger answers the second copy
//! `duplicate`, and the same event under a new delivery id (a second webhook of the provider,
//! or a replay after the dedup window) gets through the ledger and is skipped by the writer.
//! A delivery for an integration whose only realtime task is paused is stored for
//! inspection, never written.
//!
//! Every document (tenant integration, conversion schema, realtime task, route with its
//! secret) is applied as `hub apply` would. The writer is the real one, wrapped to note what
//! each batch did.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use hub_core::messages::{BatchSource, Envelope, WriteBatch};
use hub_core::ports::IdGenerator;
use hub_core::ports::{Ports, SystemClock, Topology, UlidGenerator};
use hub_host::{Host, HostOptions, QueueFunction};
use hub_runtime::{HandlerError, MessageHandler, QueueMessage};
use hub_testkit::moto::MotoServer;
use hub_transform::TransformHandler;
use hub_webhooks::{
    Outcome, RateLimiting, Receiver, ReceiverOptions, ResolvedSecrets, RouteConfig, Verifier,
    WebhookRoute, extract_records, list_unrouted,
};
use hub_writer::{BatchReport, StoredRecord, Writer};
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::webhooks::{Delivery, deliveries, post, signed};

const TENANT: &str = "acme";
/// The integration whose only realtime task is paused.
const PAUSED: &str = "ti-github-paused";

/// How the records of one provider's deliveries are mapped: the realtime task's conversion
/// schema copies `match_fields` and `other_fields`, and deduplicates on the first match field
/// that has a value.
struct Mapping {
    provider: &'static str,
    match_fields: &'static [&'static str],
    other_fields: &'static [&'static str],
    /// The header carrying the provider's delivery id, where it is not taken from the body:
    /// those deliveries can be sent again under a new id with the same body.
    delivery_header: Option<&'static str>,
}

fn mapping(fixture_dir: &str) -> Mapping {
    match fixture_dir {
        // The main object of an event has an `id`; a push is its own record (`after`).
        "github" => Mapping {
            provider: "github",
            match_fields: &["id", "after"],
            other_fields: &["node_id", "ref"],
            delivery_header: Some("X-GitHub-Delivery"),
        },
        "stripe" => Mapping {
            provider: "stripe",
            match_fields: &["id"],
            other_fields: &["object", "amount"],
            delivery_header: None,
        },
        // A message event is identified by its `ts`, a slash command by its `trigger_id`.
        "slack" => Mapping {
            provider: "slack",
            match_fields: &["trigger_id", "ts"],
            other_fields: &["text", "command"],
            delivery_header: None,
        },
        "hubspot" => Mapping {
            provider: "hubspot",
            match_fields: &["objectId"],
            other_fields: &["subscriptionType"],
            delivery_header: None,
        },
        // The published test vector's body, `{"test": 2432232314}`, has no id but its field.
        "standardwebhooks" => Mapping {
            provider: "standard_webhooks",
            match_fields: &["id", "test"],
            // The full and the thin payload carry the same contact, the full one with its name.
            other_fields: &["fullName"],
            delivery_header: Some("webhook-id"),
        },
        other => panic!("fixtures of `{other}` have no mapping in this test"),
    }
}

impl Mapping {
    fn fields(&self) -> impl Iterator<Item = &'static str> {
        self.match_fields.iter().chain(self.other_fields).copied()
    }

    /// What the schema makes of a source record: the fields it copies, where they have a value.
    fn mapped(&self, record: &Value) -> BTreeMap<&'static str, Value> {
        self.fields()
            .filter_map(|field| {
                record
                    .get(field)
                    .filter(|value| !value.is_null())
                    .map(|value| (field, value.clone()))
            })
            .collect()
    }
}

fn tenant_integration(provider: &str) -> String {
    format!("ti-{provider}")
}

fn entity_type(provider: &str) -> String {
    format!("c_{provider}_object")
}

fn schema_id(provider: &str) -> String {
    format!("{provider}-objects")
}

/// The tenant integration, conversion schema and realtime task of a provider, as `hub apply`
/// reads them.
fn provider_documents(mapping: &Mapping) -> Vec<Value> {
    let provider = mapping.provider;
    let mut fields: Vec<Value> = mapping
        .fields()
        .map(|field| {
            json!({
                "targetField": field,
                "mappingType": "direct",
                "config": {"type": "direct", "sourceField": field}
            })
        })
        .collect();
    fields.push(json!({
        "targetField": "provider",
        "mappingType": "default",
        "config": {"type": "default", "value": provider}
    }));
    vec![
        json!({
            "kind": "TenantIntegration",
            "tenantId": TENANT,
            "spec": {"id": tenant_integration(provider), "integrationId": provider, "status": "pending"}
        }),
        json!({
            "kind": "ConversionSchema",
            "tenantId": TENANT,
            "spec": {
                "id": schema_id(provider),
                "name": format!("{provider} webhook objects"),
                "source": {"entity": "webhook"},
                "target": {
                    "shardTypeId": entity_type(provider),
                    "createIfMissing": true,
                    "updateIfExists": true,
                    "deleteIfRemoved": false
                },
                "fieldMappings": fields,
                "deduplication": {"strategy": "field_match", "matchFields": mapping.match_fields},
                "isActive": true
            }
        }),
        realtime_task(
            &format!("{provider}-realtime"),
            &tenant_integration(provider),
            &schema_id(provider),
            "active",
        ),
    ]
}

fn realtime_task(id: &str, tenant_integration: &str, schema: &str, status: &str) -> Value {
    json!({
        "kind": "SyncTask",
        "tenantId": TENANT,
        "spec": {
            "id": id,
            "tenantIntegrationId": tenant_integration,
            "name": id,
            "conversionSchemaId": schema,
            "direction": "pull",
            "schedule": {"type": "realtime", "config": {
                "type": "realtime",
                "webhookUrl": "https://hooks.example.com/webhooks/set-by-the-route",
                "verificationToken": "not-used-by-signed-schemes"
            }},
            "config": {},
            "status": status
        }
    })
}

async fn apply(ports: &Ports, document: Value) {
    for parsed in hub_config::parse_documents(&document.to_string())
        .unwrap_or_else(|e| panic!("{document}: {e}"))
    {
        hub_config::apply(ports, &parsed)
            .await
            .unwrap_or_else(|e| panic!("{document}: {e}"));
    }
}

/// A route of `tenant_integration` for the delivery's scheme, applied with its secret.
async fn apply_route(ports: &Ports, delivery: &Delivery, tenant_integration: &str) -> WebhookRoute {
    let provider = delivery.scheme.provider().to_string();
    let secret = format!("hub/{TENANT}/{tenant_integration}-{}", rand_suffix());
    let id = hub_webhooks::RouteId::generate();
    let document = json!({
        "kind": "WebhookRoute",
        "tenantId": TENANT,
        "spec": {
            "id": id,
            "tenantIntegrationId": tenant_integration,
            "integrationId": provider,
            "config": {"scheme": delivery.scheme, "secrets": [secret]}
        },
        "secrets": {secret.clone(): delivery.secret}
    });
    apply(ports, document).await;
    hub_webhooks::route::get_route(&*ports.state, id.as_str())
        .await
        .unwrap()
        .expect("the applied route")
}

fn rand_suffix() -> String {
    UlidGenerator::new(SystemClock).new_id().to_lowercase()
}

/// What the delivery carries once verified: its id, event type and JSON payload, read with
/// the same verifier the receiver builds.
fn verified(
    delivery: &Delivery,
    config: &RouteConfig,
    request: &hub_webhooks::WebhookRequest,
) -> (String, Option<String>, Value) {
    let secrets = ResolvedSecrets::new().with(
        config.secrets[0].clone(),
        SecretString::from(delivery.secret),
    );
    let verifier = Verifier::new(config.clone(), &secrets).unwrap();
    match verifier.verify(request.clone(), Utc::now()).unwrap() {
        Outcome::Delivery(verified) => (
            verified.delivery_id().as_str().to_owned(),
            verified.event_type().map(str::to_owned),
            verified.payload().clone(),
        ),
        Outcome::Handshake(_) => panic!("{}: not a delivery", delivery.fixture),
    }
}

/// The writer, noting each batch's report by the delivery that carried it.
struct ObservedWriter {
    writer: Writer,
    reports: Mutex<Vec<(String, BatchReport)>>,
}

#[async_trait]
impl MessageHandler for ObservedWriter {
    async fn handle(&self, message: &QueueMessage) -> Result<(), HandlerError> {
        let batch = WriteBatch::from_json(&message.body)
            .map_err(|e| HandlerError::permanent("invalid_message_body", e.to_string()))?;
        let report = self
            .writer
            .write_batch(&batch)
            .await
            .map_err(|e| HandlerError {
                code: e.code().to_owned(),
                message: e.to_string(),
                retryable: e.is_retryable(),
            })?;
        let delivery = match &batch.source {
            Some(BatchSource::Webhook(source)) => source.delivery_id.clone(),
            other => format!("not a webhook batch: {other:?}"),
        };
        self.reports.lock().unwrap().push((delivery, report));
        Ok(())
    }
}

impl ObservedWriter {
    fn reports_of(&self, delivery_id: &str) -> Vec<BatchReport> {
        self.reports
            .lock()
            .unwrap()
            .iter()
            .filter(|(id, _)| id == delivery_id)
            .map(|(_, report)| report.clone())
            .collect()
    }

    /// The report of the delivery's one batch, once the writer has written it.
    async fn written(&self, delivery_id: &str, fixture: &str) -> BatchReport {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(report) = self.reports_of(delivery_id).into_iter().next() {
                return report;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{fixture}: delivery {delivery_id} was not written in time"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The value a record is deduplicated on: the first match field with a value.
fn dedup_value(mapping: &Mapping, record: &Value) -> (String, String) {
    mapping
        .match_fields
        .iter()
        .find_map(|field| match record.get(*field) {
            None | Some(Value::Null) => None,
            Some(Value::String(text)) => Some(((*field).to_owned(), text.clone())),
            Some(other) => Some(((*field).to_owned(), other.to_string())),
        })
        .unwrap_or_else(|| {
            panic!(
                "a {} record without {:?}",
                mapping.provider, mapping.match_fields
            )
        })
}

/// What the records table must hold for one record: the mapped fields, the delivery that
/// wrote it last and how many writes it took.
struct ExpectedRecord {
    mapped: BTreeMap<&'static str, Value>,
    delivery_id: String,
    writes: i64,
}

async fn records_of(ports: &Ports, entity: &str) -> Vec<StoredRecord> {
    hub_writer::list_records(&*ports.records, TENANT, entity)
        .await
        .unwrap()
}

async fn every_fixture_reaches_the_records_table_once(ports: Ports) {
    let fixtures = deliveries();
    let mut providers: Vec<&str> = fixtures
        .iter()
        .map(|d| d.fixture.split('/').next().unwrap())
        .collect();
    providers.dedup();
    for dir in &providers {
        for document in provider_documents(&mapping(dir)) {
            apply(&ports, document).await;
        }
    }
    apply(
        &ports,
        json!({
            "kind": "TenantIntegration",
            "tenantId": TENANT,
            "spec": {"id": PAUSED, "integrationId": "github", "status": "pending"}
        }),
    )
    .await;
    apply(
        &ports,
        realtime_task("github-paused", PAUSED, &schema_id("github"), "paused"),
    )
    .await;

    let writer = Arc::new(ObservedWriter {
        writer: Writer::new(ports.clone()),
        reports: Mutex::new(Vec::new()),
    });
    let receiver = Receiver::new(
        &ports,
        ReceiverOptions {
            rate_limiting: RateLimiting::InProcess,
            ..ReceiverOptions::default()
        },
    );
    let running = Host::new(
        ports.clone(),
        HostOptions {
            port: 0,
            tick: Duration::from_secs(3600),
            receive_wait: Duration::from_millis(100),
            shutdown_grace: Duration::from_millis(500),
        },
    )
    .queue_function(QueueFunction::new(
        "transformer",
        "transform",
        Arc::new(TransformHandler::new(ports.clone())),
    ))
    .queue_function(QueueFunction::new("writer", "write", writer.clone()))
    .routes(hub_host::webhooks::router(Arc::new(receiver)))
    .start()
    .await
    .unwrap();
    let client = reqwest::Client::new();

    // entity type -> dedup value -> what the table must hold.
    let mut expected: BTreeMap<String, BTreeMap<(String, String), ExpectedRecord>> =
        BTreeMap::new();
    let mut written_deliveries = Vec::new();
    for delivery in &fixtures {
        let dir = delivery.fixture.split('/').next().unwrap();
        let mapping = mapping(dir);
        let entity = entity_type(mapping.provider);
        let route = apply_route(&ports, delivery, &tenant_integration(mapping.provider)).await;
        let url = format!("http://{}{}", running.address, route.path());

        let request = signed(delivery, &route, &url);
        let (status, body) = post(&client, &request).await;
        assert_eq!(status, 200, "{}: {body}", delivery.fixture);
        if let Some(challenge) = delivery.handshake {
            assert_eq!(body, challenge, "{}", delivery.fixture);
            continue;
        }
        let answer: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(answer["status"], "accepted", "{}: {body}", delivery.fixture);
        let delivery_id = answer["deliveryId"].as_str().unwrap().to_owned();

        // What the writer must do with it, from the records the provider's extraction finds.
        let (verified_id, event_type, payload) = verified(delivery, &route.config, &request);
        assert_eq!(verified_id, delivery_id, "{}", delivery.fixture);
        let records =
            extract_records(&route.config.scheme, event_type.as_deref(), &payload).unwrap();
        assert!(!records.is_empty(), "{}: no records", delivery.fixture);
        let extracted_count = records.len() as u64;
        let table = expected.entry(entity.clone()).or_default();
        let (mut created, mut updated) = (0, 0);
        for extracted in records {
            let key = dedup_value(&mapping, &extracted.record);
            let mapped = mapping.mapped(&extracted.record);
            match table.get_mut(&key) {
                None => {
                    created += 1;
                    table.insert(
                        key,
                        ExpectedRecord {
                            mapped,
                            delivery_id: delivery_id.clone(),
                            writes: 1,
                        },
                    );
                }
                Some(existing) if existing.mapped != mapped => {
                    updated += 1;
                    existing.mapped = mapped;
                    existing.delivery_id = delivery_id.clone();
                    existing.writes += 1;
                }
                Some(_) => {}
            }
        }
        let report = writer.written(&delivery_id, &delivery.fixture).await;
        assert_eq!(
            (report.created, report.updated, report.failed),
            (created, updated, 0),
            "{}: {report:?}",
            delivery.fixture
        );

        // The provider's retry of the same delivery: answered, not published again.
        let (status, body) = post(&client, &signed(delivery, &route, &url)).await;
        assert_eq!(status, 200, "{}: {body}", delivery.fixture);
        let answer: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            answer["status"], "duplicate",
            "{}: {body}",
            delivery.fixture
        );
        written_deliveries.push((delivery.fixture.clone(), delivery_id.clone()));

        // The same event under a new delivery id passes the ledger; the writer skips it.
        if let Some(header) = mapping.delivery_header {
            let again_id = format!("again-{delivery_id}");
            let again = Delivery {
                fixture: delivery.fixture.clone(),
                scheme: delivery.scheme.clone(),
                secret: delivery.secret,
                content_type: delivery.content_type,
                headers: delivery
                    .headers
                    .iter()
                    .filter(|(name, _)| !name.eq_ignore_ascii_case(header))
                    .cloned()
                    .chain([(header, again_id.clone())])
                    .collect(),
                handshake: None,
            };
            let (status, body) = post(&client, &signed(&again, &route, &url)).await;
            assert_eq!(status, 200, "{}: {body}", delivery.fixture);
            let answer: Value = serde_json::from_str(&body).unwrap();
            assert_eq!(answer["status"], "accepted", "{}: {body}", delivery.fixture);
            assert_eq!(answer["deliveryId"], again_id.as_str());
            let report = writer.written(&again_id, &delivery.fixture).await;
            assert_eq!(
                (report.created, report.updated, report.failed),
                (0, 0, 0),
                "{}: {report:?}",
                delivery.fixture
            );
            assert_eq!(report.skipped, extracted_count, "{}", delivery.fixture);
            written_deliveries.push((delivery.fixture.clone(), again_id));
        }
    }
    assert!(written_deliveries.len() >= 11, "{written_deliveries:?}");

    // A delivery for the integration whose realtime task is paused: kept, never written.
    let paused_delivery = fixtures
        .iter()
        .find(|d| d.fixture == "github/issues.opened.json")
        .expect("the GitHub issue fixture");
    let route = apply_route(&ports, paused_delivery, PAUSED).await;
    let url = format!("http://{}{}", running.address, route.path());
    let (status, body) = post(&client, &signed(paused_delivery, &route, &url)).await;
    assert_eq!(status, 200, "{body}");
    let paused_id = serde_json::from_str::<Value>(&body).unwrap()["deliveryId"]
        .as_str()
        .unwrap()
        .to_owned();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let stored = list_unrouted(&*ports.state, TENANT).await.unwrap();
        if let Some(stored) = stored.iter().find(|d| d.route_id == route.id.as_str()) {
            assert_eq!(stored.delivery_id, paused_id);
            assert_eq!(stored.tenant_integration_id, PAUSED);
            assert_eq!(stored.event_type.as_deref(), Some("issues.opened"));
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the paused integration's delivery was not stored"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        list_unrouted(&*ports.state, TENANT).await.unwrap().len(),
        1,
        "only that delivery had no realtime task"
    );

    // A moment for anything extra to arrive, then: one batch per delivery, nothing else.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    running.stop().await.unwrap();
    for (fixture, delivery_id) in &written_deliveries {
        assert_eq!(
            writer.reports_of(delivery_id).len(),
            1,
            "{fixture}: {delivery_id} written once"
        );
    }
    assert_eq!(
        writer.reports.lock().unwrap().len(),
        written_deliveries.len(),
        "the writer saw nothing else"
    );

    // The records table: one record per dedup value, from the last delivery that changed it.
    for (entity, table) in &expected {
        let stored = records_of(&ports, entity).await;
        assert_eq!(stored.len(), table.len(), "{entity}: {stored:?}");
        let provider = entity.trim_start_matches("c_").trim_end_matches("_object");
        let mapping_dir = providers
            .iter()
            .find(|dir| mapping(dir).provider == provider)
            .unwrap();
        let mapping = mapping(mapping_dir);
        for record in &stored {
            let key = dedup_value(&mapping, &Value::Object(record.data.clone()));
            let want = table
                .get(&key)
                .unwrap_or_else(|| panic!("{entity}: unexpected record {record:?}"));
            for field in mapping.fields() {
                assert_eq!(
                    record.data.get(field),
                    want.mapped.get(field),
                    "{entity} {key:?}: {field}"
                );
            }
            assert_eq!(record.data["provider"], provider);
            assert_eq!(record.version, want.writes, "{entity} {key:?}");
            assert_eq!(
                record.lineage.delivery_id.as_deref(),
                Some(want.delivery_id.as_str()),
                "{entity} {key:?}"
            );
            assert_eq!(record.lineage.execution_id, None);
            assert_eq!(record.lineage.schema_id, schema_id(provider));
            assert_eq!(record.tenant_integration_id, tenant_integration(provider));
            assert_eq!(record.integration_id, provider);
            assert!(!record.deleted);
        }
    }
}

#[tokio::test]
async fn every_fixture_reaches_the_records_table_once_on_the_embedded_backend() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    let ports = tokio::task::spawn_blocking(move || {
        hub_embedded::EmbeddedBackend::open(&path, &Topology::default(), Arc::new(SystemClock))
    })
    .await
    .unwrap()
    .unwrap();
    every_fixture_reaches_the_records_table_once(ports).await;
}

#[tokio::test]
async fn every_fixture_reaches_the_records_table_once_on_moto() {
    let Some(moto) = MotoServer::shared_or_skip("webhook_records_on_moto") else {
        return;
    };
    let prefix = format!("r{}", &rand_suffix()[12..]);
    let topology = Topology::new(&prefix);
    let settings = hub_aws::AwsSettings::emulator(moto.endpoint()).region("hub-webhook-records");
    hub_aws::bootstrap(&settings, &topology).await.unwrap();
    let ports = hub_aws::connect(&settings, &topology, Arc::new(SystemClock))
        .await
        .unwrap();
    every_fixture_reaches_the_records_table_once(ports).await;
}
