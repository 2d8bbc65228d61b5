//! A receiver on the embedded backend in a temporary directory, with a manual clock.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use hub_core::messages::{BusDetail, WebhookReceived};
use hub_core::model::{SecretRef, TenantId};
use hub_core::ports::{BusEnvelope, ManualClock, Ports, ReceiveOptions, ReceivedMessage, Topology};
use hub_webhooks::route::{RateLimit, put_route};
use hub_webhooks::{
    RateLimiting, Receiver, ReceiverOptions, RouteConfig, RouteId, SchemeConfig, WebhookRequest,
    WebhookResponse, WebhookRoute, sign_request,
};
use secrecy::SecretString;

pub const TENANT: &str = "acme";
pub const TENANT_INTEGRATION: &str = "ti-github";
/// 2025-06-15T15:06:40Z.
pub const START: i64 = 1_750_000_000;

pub struct Harness {
    _dir: tempfile::TempDir,
    pub ports: Ports,
    pub clock: Arc<ManualClock>,
    pub receiver: Receiver,
}

impl Harness {
    pub async fn new() -> Self {
        Self::with(ReceiverOptions {
            rate_limiting: RateLimiting::StateTable,
            ..ReceiverOptions::default()
        })
        .await
    }

    pub async fn with(options: ReceiverOptions) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let clock = Arc::new(ManualClock::new(at(START)));
        let ports = {
            let (path, clock) = (dir.path().to_owned(), Arc::clone(&clock));
            tokio::task::spawn_blocking(move || {
                hub_embedded::EmbeddedBackend::open(&path, &Topology::default(), clock)
            })
            .await
            .expect("the open task")
            .expect("the embedded backend")
        };
        let receiver = Receiver::new(&ports, options);
        Self {
            _dir: dir,
            ports,
            clock,
            receiver,
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        hub_core::Clock::now(&*self.clock)
    }

    /// Stores the secrets (`name` under the tenant, value) and a route using them in order.
    pub async fn route(
        &self,
        scheme: SchemeConfig,
        secrets: &[(&str, &str)],
        adjust: impl FnOnce(&mut WebhookRoute),
    ) -> WebhookRoute {
        let mut references = Vec::new();
        for (name, value) in secrets {
            let reference = secret_ref(name);
            self.set_secret(&reference, value).await;
            references.push(reference);
        }
        let mut route = WebhookRoute {
            id: RouteId::generate(),
            tenant_id: TenantId::parse(TENANT).unwrap(),
            tenant_integration_id: TENANT_INTEGRATION.into(),
            integration_id: "github".into(),
            config: RouteConfig::new(scheme, references),
            dedup_window_days: None,
            rate_limit: Some(RateLimit {
                requests_per_second: 1000,
                burst: None,
            }),
            created_at: None,
            updated_at: None,
        };
        adjust(&mut route);
        put_route(&*self.ports.state, &route, self.now())
            .await
            .expect("the route is stored");
        route
    }

    /// Creates the secret or replaces its current version.
    pub async fn set_secret(&self, reference: &SecretRef, value: &str) {
        let secrets = &self.ports.secrets;
        let current = secrets.get(reference.as_str()).await.unwrap();
        secrets
            .put(
                reference.as_str(),
                SecretString::from(value.to_owned()),
                current.as_ref().map(|version| version.version_id.as_str()),
            )
            .await
            .unwrap();
    }

    pub async fn send(&self, route: &WebhookRoute, request: WebhookRequest) -> WebhookResponse {
        self.receiver.handle(route.id.as_str(), request).await
    }

    /// Every message on the transform queue now (received once: they stay in flight).
    pub async fn transform_messages(&self) -> Vec<ReceivedMessage> {
        let queue = self.ports.queue("transform").unwrap();
        let mut messages = Vec::new();
        loop {
            let batch = queue.receive(ReceiveOptions::default()).await.unwrap();
            if batch.is_empty() {
                return messages;
            }
            messages.extend(batch);
        }
    }

    /// How many messages the transform queue holds, visible or in flight.
    pub async fn transform_depth(&self) -> u64 {
        let depth = self
            .ports
            .queue("transform")
            .unwrap()
            .depth()
            .await
            .unwrap();
        depth.visible + depth.in_flight + depth.delayed
    }
}

pub fn at(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(seconds, 0).expect("a representable time")
}

pub fn secret_ref(name: &str) -> SecretRef {
    SecretRef::parse(format!("hub/{TENANT}/{name}")).unwrap()
}

/// An `issues` delivery of `body` from GitHub, signed with `secret`.
pub fn github(route: &WebhookRoute, secret: &str, delivery: &str, body: &[u8]) -> WebhookRequest {
    github_event(route, secret, delivery, "issues", body)
}

pub fn github_event(
    route: &WebhookRoute,
    secret: &str,
    delivery: &str,
    event: &str,
    body: &[u8],
) -> WebhookRequest {
    let mut request = WebhookRequest::post(format!("http://127.0.0.1{}", route.path()))
        .with_header("Content-Type", "application/json")
        .with_header("X-GitHub-Event", event)
        .with_header("X-GitHub-Delivery", delivery)
        .with_body(body.to_vec());
    sign_request(
        &route.config,
        &SecretString::from(secret.to_owned()),
        &mut request,
        at(START),
    )
    .expect("signed");
    request
}

pub fn body_json(response: &WebhookResponse) -> serde_json::Value {
    serde_json::from_slice(&response.body)
        .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&response.body)))
}

pub fn envelope(message: &ReceivedMessage) -> BusEnvelope {
    serde_json::from_str(&message.body).expect("an EventBridge envelope")
}

pub fn received(message: &ReceivedMessage) -> WebhookReceived {
    WebhookReceived::from_bus_envelope(&envelope(message)).expect("a webhook.received detail")
}

pub fn fixture(path: &str) -> Vec<u8> {
    crate::support::fixture(path)
}
