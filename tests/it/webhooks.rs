//! The webhook receiver end to end: the host as `hub dev` runs it (every function registered,
//! real HTTP on loopback) takes a signed delivery of each vendor fixture and publishes its
//! `webhook.received` event once however often it is sent, on the embedded backend and on moto.
//!
//! The transformer consumes the transform queue in that host, so the test adds a queue of its
//! own with a copy of the Topology's webhook rule and reads the envelopes there; and it checks
//! that the transformer got each delivery through the transform queue: with no realtime task in
//! these tenants, each is stored for inspection, once. Then the Lambda adaptation, fed the
//! sample API Gateway events.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use aws_lambda_events::encodings::Body;
use chrono::Utc;
use hub_core::messages::{BusDetail, WebhookReceived};
use hub_core::model::{SecretRef, TenantId};
use hub_core::ports::{
    BusEnvelope, IdGenerator, ManualClock, Ports, QueueSpec, ReceiveOptions, SystemClock, Topology,
    UlidGenerator, WEBHOOKS_TO_TRANSFORM,
};
use hub_host::{Host, HostOptions};
use hub_testkit::moto::MotoServer;
use hub_webhooks::route::put_route;
use hub_webhooks::{
    HubspotOptions, Receiver, ReceiverOptions, RouteConfig, RouteId, SchemeConfig, WebhookRequest,
    WebhookRoute, list_unrouted, sign_request,
};
use secrecy::SecretString;

const TENANT: &str = "acme";
/// The test's own copy of what the transform queue receives.
const OBSERVER: &str = "webhook-observer";

/// The default topology plus the observer queue, fed by the Topology's own webhook rule
/// pointed at it.
fn observed_topology(prefix: &str) -> Topology {
    let mut topology = Topology::new(prefix);
    let mut observer_rule = topology
        .rules
        .iter()
        .find(|rule| rule.name == WEBHOOKS_TO_TRANSFORM)
        .expect("the Topology routes webhook events")
        .clone();
    observer_rule.name = format!("{WEBHOOKS_TO_TRANSFORM}-observer");
    observer_rule.target_queue = OBSERVER.to_owned();
    topology.rules.push(observer_rule);
    topology.queues.push(QueueSpec {
        logical_name: OBSERVER.to_owned(),
        visibility_timeout: Duration::from_secs(600),
        retention: Duration::from_secs(3600),
        redrive: None,
    });
    topology
}

/// How a fixture is delivered: its provider's scheme, a test secret and the headers the
/// provider adds besides its signature.
pub(crate) struct Delivery {
    pub(crate) fixture: String,
    pub(crate) scheme: SchemeConfig,
    pub(crate) secret: &'static str,
    pub(crate) content_type: &'static str,
    pub(crate) headers: Vec<(&'static str, String)>,
    /// `Some(challenge)` for a handshake, answered and never published.
    pub(crate) handshake: Option<&'static str>,
}

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/hub-webhooks/tests/fixtures")
}

/// Every fixture file, with how its provider delivers it. A fixture folder nobody knows how
/// to deliver fails the test, so a new fixture cannot be skipped silently.
pub(crate) fn deliveries() -> Vec<Delivery> {
    let mut found = Vec::new();
    let mut providers: Vec<_> = std::fs::read_dir(fixtures_dir())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_dir())
        .collect();
    providers.sort();
    for provider_dir in providers {
        let provider = provider_dir
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        let mut files: Vec<_> = std::fs::read_dir(&provider_dir)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .collect();
        files.sort();
        for file in files {
            let name = file.file_name().unwrap().to_str().unwrap().to_owned();
            let fixture = format!("{provider}/{name}");
            let json = "application/json";
            let delivery = match provider.as_str() {
                "github" => {
                    let event = name.split('.').next().unwrap().to_owned();
                    Delivery {
                        fixture,
                        scheme: SchemeConfig::Github,
                        secret: "github-test-secret",
                        content_type: json,
                        headers: vec![
                            ("X-GitHub-Event", event),
                            ("X-GitHub-Delivery", format!("e2e-{name}")),
                        ],
                        handshake: None,
                    }
                }
                "stripe" => Delivery {
                    fixture,
                    scheme: SchemeConfig::Stripe,
                    secret: "whsec_stripe_test_secret",
                    content_type: json,
                    headers: Vec::new(),
                    handshake: None,
                },
                "slack" => Delivery {
                    scheme: SchemeConfig::Slack,
                    secret: "slack-signing-secret",
                    content_type: if name.ends_with(".txt") {
                        "application/x-www-form-urlencoded"
                    } else {
                        json
                    },
                    headers: Vec::new(),
                    handshake: (name == "url_verification.json")
                        .then_some("3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"),
                    fixture,
                },
                "hubspot" => Delivery {
                    fixture,
                    scheme: SchemeConfig::Hubspot(HubspotOptions::default()),
                    secret: "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy",
                    content_type: json,
                    headers: Vec::new(),
                    handshake: None,
                },
                "standardwebhooks" => Delivery {
                    fixture,
                    scheme: SchemeConfig::StandardWebhooks,
                    secret: "whsec_dGVzdC1zZWNyZXQtZm9yLWh1Yi13ZWJob29rcw==",
                    content_type: json,
                    headers: Vec::new(),
                    handshake: None,
                },
                other => panic!("fixtures of `{other}` have no delivery in this test"),
            };
            found.push(delivery);
        }
    }
    found
}

/// A route for the delivery's scheme, with its secret in the secret store.
async fn route_for(ports: &Ports, delivery: &Delivery, index: usize) -> WebhookRoute {
    let reference = SecretRef::parse(format!("hub/{TENANT}/e2e-webhook-{index}")).unwrap();
    ports
        .secrets
        .put(
            reference.as_str(),
            SecretString::from(delivery.secret),
            None,
        )
        .await
        .unwrap();
    let route = WebhookRoute {
        id: RouteId::generate(),
        tenant_id: TenantId::parse(TENANT).unwrap(),
        tenant_integration_id: format!("ti-{}", delivery.scheme.provider()),
        integration_id: delivery.scheme.provider().to_string(),
        config: RouteConfig::new(delivery.scheme.clone(), vec![reference]),
        dedup_window_days: None,
        rate_limit: None,
        created_at: None,
        updated_at: None,
    };
    put_route(&*ports.state, &route, Utc::now()).await.unwrap();
    route
}

/// The delivery as the provider would send it to `url`, signed now.
pub(crate) fn signed(delivery: &Delivery, route: &WebhookRoute, url: &str) -> WebhookRequest {
    let body = std::fs::read(fixtures_dir().join(&delivery.fixture)).unwrap();
    let mut request = WebhookRequest::post(url)
        .with_header("Content-Type", delivery.content_type)
        .with_body(body);
    for (name, value) in &delivery.headers {
        request.headers_mut().append(name, value.clone());
    }
    sign_request(
        &route.config,
        &SecretString::from(delivery.secret),
        &mut request,
        Utc::now(),
    )
    .unwrap_or_else(|error| panic!("{}: {error}", delivery.fixture));
    request
}

pub(crate) async fn post(client: &reqwest::Client, request: &WebhookRequest) -> (u16, String) {
    let mut builder = client.post(request.url());
    for (name, value) in request.headers().iter() {
        builder = builder.header(name, value);
    }
    let response = builder.body(request.body().to_vec()).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

/// Everything on the observer queue, by delivery id; polls a little past the expected count so
/// an extra message would be seen.
async fn drain_observer(ports: &Ports, expected: usize) -> BTreeMap<String, Vec<WebhookReceived>> {
    let queue = ports.queue(OBSERVER).unwrap();
    let mut received: BTreeMap<String, Vec<WebhookReceived>> = BTreeMap::new();
    let mut count = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    // Keeps polling a little after the expected count, so an extra message would be seen.
    let mut quiet_polls = 0;
    while tokio::time::Instant::now() < deadline && (count < expected || quiet_polls < 2) {
        let batch = queue
            .receive(ReceiveOptions {
                max_messages: 10,
                wait: Duration::from_millis(300),
                visibility_timeout: Some(Duration::from_secs(600)),
            })
            .await
            .unwrap();
        if batch.is_empty() {
            quiet_polls += 1;
            continue;
        }
        for message in batch {
            let envelope: BusEnvelope = serde_json::from_str(&message.body).unwrap();
            let event = WebhookReceived::from_bus_envelope(&envelope).unwrap();
            count += 1;
            received
                .entry(event.delivery_id.clone())
                .or_default()
                .push(event);
        }
    }
    received
}

async fn every_fixture_is_published_once(ports: Ports) {
    let options = HostOptions {
        port: 0,
        tick: Duration::from_secs(3600),
        receive_wait: Duration::from_millis(100),
        shutdown_grace: Duration::from_millis(500),
    };
    let running = hub_host::functions::register_all(Host::new(ports.clone(), options))
        .start()
        .await
        .unwrap();
    let client = reqwest::Client::new();
    let deliveries = deliveries();
    assert!(deliveries.len() >= 13, "{} fixtures", deliveries.len());
    let mut published = BTreeMap::new();
    for (index, delivery) in deliveries.iter().enumerate() {
        let route = route_for(&ports, delivery, index).await;
        let url = format!("http://{}{}", running.address, route.path());
        let request = signed(delivery, &route, &url);
        let (status, body) = post(&client, &request).await;
        assert_eq!(status, 200, "{}: {body}", delivery.fixture);
        if let Some(challenge) = delivery.handshake {
            assert_eq!(body, challenge, "{}", delivery.fixture);
            continue;
        }
        let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(answer["status"], "accepted", "{}: {body}", delivery.fixture);
        let delivery_id = answer["deliveryId"].as_str().unwrap().to_owned();

        // The provider's retry: the same delivery, signed again.
        let (status, body) = post(&client, &signed(delivery, &route, &url)).await;
        assert_eq!(status, 200, "{}: {body}", delivery.fixture);
        let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            answer["status"], "duplicate",
            "{}: {body}",
            delivery.fixture
        );
        published.insert(delivery_id, (delivery.fixture.clone(), route));
    }

    let received = drain_observer(&ports, published.len()).await;
    for (delivery_id, (fixture, route)) in &published {
        let events = received
            .get(delivery_id)
            .unwrap_or_else(|| panic!("{fixture}: no webhook.received event"));
        assert_eq!(events.len(), 1, "{fixture}: enqueued once");
        let event = &events[0];
        assert_eq!(event.route_id, route.id.as_str(), "{fixture}");
        assert_eq!(event.tenant_id.as_str(), TENANT);
        assert_eq!(event.tenant_integration_id, route.tenant_integration_id);
        assert_eq!(event.provider, route.config.scheme.provider().as_str());
        let body = std::fs::read(fixtures_dir().join(fixture)).unwrap();
        if fixture.ends_with(".json") {
            let sent: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(event.payload, sent, "{fixture}");
        } else {
            assert!(
                event.payload.is_object(),
                "{fixture}: a form becomes an object"
            );
        }
    }
    assert_eq!(
        received.len(),
        published.len(),
        "nothing else was published: {:?}",
        received.keys().collect::<Vec<_>>()
    );

    // The transformer took each delivery off the transform queue and, with no realtime task
    // here, stored it for inspection: once each.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let stored = loop {
        let stored = list_unrouted(&*ports.state, TENANT).await.unwrap();
        if stored.len() >= published.len() || tokio::time::Instant::now() > deadline {
            break stored;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let mut stored_ids: Vec<_> = stored.iter().map(|d| d.delivery_id.clone()).collect();
    stored_ids.sort();
    let published_ids: Vec<_> = published.keys().cloned().collect();
    assert_eq!(
        stored_ids, published_ids,
        "each delivery reached the transformer once"
    );
    running.stop().await.unwrap();
}

#[tokio::test]
async fn every_fixture_reaches_the_transform_queue_once_on_the_embedded_backend() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    let ports = tokio::task::spawn_blocking(move || {
        hub_embedded::EmbeddedBackend::open(&path, &observed_topology("hub"), Arc::new(SystemClock))
    })
    .await
    .unwrap()
    .unwrap();
    every_fixture_is_published_once(ports).await;
}

#[tokio::test]
async fn every_fixture_reaches_the_transform_queue_once_on_moto() {
    let Some(moto) = MotoServer::shared_or_skip("webhooks_on_moto") else {
        return;
    };
    let prefix = format!(
        "w{}",
        &UlidGenerator::new(SystemClock).new_id().to_lowercase()[12..]
    );
    let topology = observed_topology(&prefix);
    let settings = hub_aws::AwsSettings::emulator(moto.endpoint()).region("hub-webhooks-e2e");
    hub_aws::bootstrap(&settings, &topology).await.unwrap();
    let ports = hub_aws::connect(&settings, &topology, Arc::new(SystemClock))
        .await
        .unwrap();
    every_fixture_is_published_once(ports).await;
}

// --- the Lambda adaptation, fed the sample API Gateway events ---

const SAMPLE_ROUTE: &str = "rt_0f5e3c2a9b8d4e7f6a1b2c3d4e5f6a7b";

fn apigw_event(name: &str) -> ApiGatewayV2httpRequest {
    let path = format!("{}/../events/apigw/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A receiver on the embedded backend at the samples' time, with the samples' routes: GitHub
/// and Slack, their secrets the samples were signed with.
async fn sample_receiver(dir: &Path) -> (Receiver, Ports) {
    let path = dir.to_owned();
    // 2025-06-15T15:06:40Z, when the Slack sample was signed.
    let clock = Arc::new(ManualClock::new(
        chrono::DateTime::from_timestamp(1_750_000_000, 0).unwrap(),
    ));
    let ports = tokio::task::spawn_blocking(move || {
        hub_embedded::EmbeddedBackend::open(&path, &Topology::default(), clock)
    })
    .await
    .unwrap()
    .unwrap();
    (Receiver::new(&ports, ReceiverOptions::default()), ports)
}

async fn sample_route(ports: &Ports, scheme: SchemeConfig, secret: &str) {
    let reference = SecretRef::parse(format!("hub/{TENANT}/sample-{}", scheme.provider())).unwrap();
    ports
        .secrets
        .put(
            reference.as_str(),
            SecretString::from(secret.to_owned()),
            None,
        )
        .await
        .unwrap();
    let route = WebhookRoute {
        id: RouteId::parse(SAMPLE_ROUTE).unwrap(),
        tenant_id: TenantId::parse(TENANT).unwrap(),
        tenant_integration_id: "ti-sample".into(),
        integration_id: scheme.provider().to_string(),
        config: RouteConfig::new(scheme, vec![reference]),
        dedup_window_days: None,
        rate_limit: None,
        created_at: None,
        updated_at: None,
    };
    put_route(&*ports.state, &route, Utc::now()).await.unwrap();
}

fn text_of(response: &aws_lambda_events::apigw::ApiGatewayV2httpResponse) -> String {
    match &response.body {
        Some(Body::Text(text)) => text.clone(),
        other => panic!("expected a text body, got {other:?}"),
    }
}

#[tokio::test]
async fn sample_api_gateway_events_are_answered_by_the_lambda_handler() {
    let dir = tempfile::tempdir().unwrap();
    let (receiver, ports) = sample_receiver(dir.path()).await;
    sample_route(&ports, SchemeConfig::Github, "github-test-secret").await;
    let transform = ports.queue("transform").unwrap();

    for (sample, delivery) in [
        (
            "webhook-github-signed.json",
            "0b5e6f00-4a7b-11f0-8a1e-3c5f0d7e9a01",
        ),
        (
            "webhook-github-signed-base64.json",
            "0b5e6f00-4a7b-11f0-8a1e-3c5f0d7e9a02",
        ),
    ] {
        let response = hub_webhooks::apigw::handle_http_event(&receiver, apigw_event(sample)).await;
        assert_eq!(
            response.status_code,
            200,
            "{sample}: {}",
            text_of(&response)
        );
        assert_eq!(response.headers["content-type"], "application/json");
        let answer: serde_json::Value = serde_json::from_str(&text_of(&response)).unwrap();
        assert_eq!(answer["status"], "accepted", "{sample}");
        assert_eq!(answer["deliveryId"], delivery, "{sample}");
    }
    let again = hub_webhooks::apigw::handle_http_event(
        &receiver,
        apigw_event("webhook-github-signed.json"),
    )
    .await;
    assert!(text_of(&again).contains("duplicate"));

    let bad = hub_webhooks::apigw::handle_http_event(
        &receiver,
        apigw_event("webhook-github-bad-signature.json"),
    )
    .await;
    assert_eq!(bad.status_code, 401);
    let error: serde_json::Value = serde_json::from_str(&text_of(&bad)).unwrap();
    assert_eq!(error["code"], "bad_signature");

    let depth = transform.depth().await.unwrap();
    assert_eq!(depth.visible, 2, "the two signed deliveries, once each");
    let messages = transform.receive(ReceiveOptions::default()).await.unwrap();
    let envelope: BusEnvelope = serde_json::from_str(&messages[0].body).unwrap();
    let event = WebhookReceived::from_bus_envelope(&envelope).unwrap();
    assert_eq!(event.route_id, SAMPLE_ROUTE);
    assert_eq!(event.event_type.as_deref(), Some("ping"));
}

#[tokio::test]
async fn the_sample_slack_url_verification_is_answered_with_its_challenge() {
    let dir = tempfile::tempdir().unwrap();
    let (receiver, ports) = sample_receiver(dir.path()).await;
    sample_route(&ports, SchemeConfig::Slack, "slack-signing-secret").await;
    let response = hub_webhooks::apigw::handle_http_event(
        &receiver,
        apigw_event("webhook-slack-url-verification.json"),
    )
    .await;
    assert_eq!(response.status_code, 200);
    assert!(
        response.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    assert_eq!(
        text_of(&response),
        "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"
    );
    let depth = ports.queue("transform").unwrap().depth().await.unwrap();
    assert_eq!(depth.visible, 0, "a handshake publishes nothing");
}

/// What is logged on this thread while the guard lives, as text without colour.
fn capture_log() -> (
    Arc<std::sync::Mutex<Vec<u8>>>,
    tracing::subscriber::DefaultGuard,
) {
    struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);
    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buffer = Arc::new(std::sync::Mutex::new(Vec::new()));
    let writer = Arc::clone(&buffer);
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .with_writer(move || Captured(Arc::clone(&writer)))
        .finish();
    (buffer, tracing::subscriber::set_default(subscriber))
}

/// On Lambda the body is in the event: one over the route's limit, and one over the limit no
/// route exceeds (on a route that does not exist: the size is checked first, as `hub dev`
/// does before reading further), get `413 body_too_large` in the receiver's JSON shape and a
/// warning without the body.
#[tokio::test]
async fn bodies_over_the_limit_are_refused_as_json_and_logged_on_lambda() {
    let dir = tempfile::tempdir().unwrap();
    let (receiver, ports) = sample_receiver(dir.path()).await;
    sample_route(&ports, SchemeConfig::Github, "github-test-secret").await;
    let (log, _guard) = capture_log();
    let body_of = |len: u64| {
        let mut body = "body-marker-".repeat(usize::try_from(len).unwrap() / 12 + 1);
        body.truncate(usize::try_from(len).unwrap());
        body
    };

    let mut over_the_route = apigw_event("webhook-github-signed.json");
    over_the_route.body = Some(body_of(hub_webhooks::DEFAULT_MAX_BODY_BYTES + 1));
    over_the_route.is_base64_encoded = false;
    let mut over_every_route = apigw_event("webhook-github-signed.json");
    let unknown = "rt_00000000000000000000000000000000";
    over_every_route.raw_path = Some(format!("/webhooks/{unknown}"));
    over_every_route
        .path_parameters
        .insert("routeId".into(), unknown.into());
    over_every_route.body = Some(body_of(hub_webhooks::MAX_BODY_BYTES_LIMIT + 1));
    over_every_route.is_base64_encoded = false;

    for (event, limit) in [
        (over_the_route, hub_webhooks::DEFAULT_MAX_BODY_BYTES),
        (over_every_route, hub_webhooks::MAX_BODY_BYTES_LIMIT),
    ] {
        let response = hub_webhooks::apigw::handle_http_event(&receiver, event).await;
        let text = text_of(&response);
        assert_eq!(response.status_code, 413, "{text}");
        assert_eq!(response.headers["content-type"], "application/json");
        let answer: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(answer["code"], "body_too_large", "{text}");
        let message = answer["message"].as_str().unwrap();
        assert!(
            message.contains(&format!("limit of {limit} bytes")),
            "{message}"
        );
    }

    let log = String::from_utf8(log.lock().unwrap().clone()).unwrap();
    let warnings: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("WARN") && line.contains("body_too_large"))
        .collect();
    assert_eq!(warnings.len(), 2, "{log}");
    assert!(
        !log.contains("body-marker"),
        "the body is never logged: {log}"
    );
    let depth = ports.queue("transform").unwrap().depth().await.unwrap();
    assert_eq!(depth.visible, 0, "nothing is published");
}
