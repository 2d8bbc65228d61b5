//! Verification: from a raw request to a [`VerifiedDelivery`] (or a handshake answer), which
//! nothing else can build.

use std::fmt;
use std::sync::OnceLock;

use chrono::{DateTime, Utc};
use hub_core::json::RawJson;
use hub_core::model::Validate;
use serde_json::Value;

use crate::config::{DEFAULT_TOLERANCE_SECONDS, Provider, RouteConfig, SchemeConfig};
use crate::crypto::{HmacKey, sha256_hex};
use crate::error::WebhookError;
use crate::providers::{
    Check, Described, Parsed, Payload, generic, github, graph, hubspot, jira, meta, shopify, slack,
    standard_webhooks, stripe, teams, twilio, zendesk,
};
use crate::records::{ExtractedRecord, extract_records};
use crate::request::WebhookRequest;
use crate::secrets::{ResolvedSecrets, key_for, text_key};

/// Verifies the deliveries of one route. Build it once per route (and cache it with the
/// secrets' TTL); `verify` is then pure CPU work on the request.
pub struct Verifier {
    route: RouteConfig,
    /// Derived from the route's resolved secrets, in the route's order.
    keys: Vec<HmacKey>,
    /// Meta's subscription verify token.
    verify_token: Option<HmacKey>,
}

impl Verifier {
    /// Checks the route and derives its keys. Secrets the caller could not resolve are skipped
    /// (one deleted during a rotation must not take the route down) as long as one remains.
    pub fn new(route: RouteConfig, secrets: &ResolvedSecrets) -> Result<Self, WebhookError> {
        route
            .validate()
            .map_err(|error| WebhookError::config(error.to_string()))?;
        let mut keys = Vec::with_capacity(route.secrets.len());
        for reference in &route.secrets {
            if let Some(secret) = secrets.get(reference) {
                keys.push(key_for(&route.scheme, &reference.to_string(), secret)?);
            }
        }
        if keys.is_empty() {
            return Err(WebhookError::config(
                "none of the route's secrets was resolved",
            ));
        }
        let verify_token = match &route.scheme {
            SchemeConfig::Meta(options) => {
                let reference = &options.verify_token;
                let token = secrets.get(reference).ok_or_else(|| {
                    WebhookError::config(format!("verify token `{reference}` was not resolved"))
                })?;
                Some(text_key(&reference.to_string(), token)?)
            }
            _ => None,
        };
        Ok(Self {
            route,
            keys,
            verify_token,
        })
    }

    pub fn route(&self) -> &RouteConfig {
        &self.route
    }

    pub fn provider(&self) -> Provider {
        self.route.scheme.provider()
    }

    /// Checks, in order: body size, source address, method (and the unauthenticated
    /// handshakes: Meta's `GET hub.challenge`, Graph's `validationToken`), the signature on
    /// the raw bytes with every active secret, the replay window, and only then the content
    /// type and the body. `now` comes from the caller's `Clock`.
    pub fn verify(
        &self,
        request: WebhookRequest,
        now: DateTime<Utc>,
    ) -> Result<Outcome, WebhookError> {
        self.check_envelope(&request)?;
        if let Some(handshake) = self.unauthenticated_handshake(&request)? {
            return Ok(Outcome::Handshake(handshake));
        }
        let signed_at = self.check_signature(&request, now)?;

        // Authentic from here on: what follows reads the body.
        let parsed = match &self.route.scheme {
            SchemeConfig::Github => github::describe(&request),
            SchemeConfig::Stripe => stripe::describe(&request),
            SchemeConfig::Slack => slack::describe(&request),
            SchemeConfig::Shopify => shopify::describe(&request),
            SchemeConfig::Twilio => twilio::describe(&request),
            SchemeConfig::Zendesk(_) => zendesk::describe(&request),
            SchemeConfig::Hubspot(_) => hubspot::describe(&request),
            SchemeConfig::Meta(_) => meta::describe(&request),
            SchemeConfig::StandardWebhooks => standard_webhooks::describe(&request),
            SchemeConfig::Jira => jira::describe(&request),
            SchemeConfig::MicrosoftTeams => teams::describe(&request),
            SchemeConfig::MicrosoftGraph => graph::describe(&request),
            SchemeConfig::Generic(scheme) => generic::describe(&request, scheme),
        }?;
        let described = match parsed {
            Parsed::Handshake(handshake) => return Ok(Outcome::Handshake(handshake)),
            Parsed::Delivery(described) => described,
        };
        let Described {
            delivery_id,
            event_type,
            payload,
        } = described;
        let payload = match payload {
            Payload::Body(tree) => {
                DeliveryPayload::Body(tree.map(OnceLock::from).unwrap_or_default())
            }
            Payload::Built(tree) => DeliveryPayload::Built(tree),
        };
        let body = request.into_body();
        let delivery_id = match delivery_id {
            Some(id) => DeliveryId {
                value: id,
                origin: DeliveryIdOrigin::Provider,
            },
            None => DeliveryId::body_hash(&body),
        };
        Ok(Outcome::Delivery(VerifiedDelivery {
            provider: self.provider(),
            delivery_id,
            event_type,
            received_at: now,
            signed_at,
            payload,
            body,
        }))
    }

    /// The checks of [`Verifier::verify`] up to the replay window, without reading the body
    /// or answering handshakes; returns the signing time for timestamped schemes. For
    /// diagnostics and signature tests: a receiver calls `verify`.
    pub fn authenticate(
        &self,
        request: &WebhookRequest,
        now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, WebhookError> {
        self.check_envelope(request)?;
        self.check_signature(request, now)
    }

    fn check_envelope(&self, request: &WebhookRequest) -> Result<(), WebhookError> {
        let limit = self.route.max_body_bytes();
        if u64::try_from(request.body().len()).unwrap_or(u64::MAX) > limit {
            return Err(WebhookError::BodyTooLarge {
                size: u64::try_from(request.body().len()).ok(),
                limit,
            });
        }
        if !self.route.ip_allowed(request.source_ip()) {
            return Err(WebhookError::SourceIpNotAllowed);
        }
        Ok(())
    }

    fn check_signature(
        &self,
        request: &WebhookRequest,
        now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, WebhookError> {
        self.check_method(request)?;
        let check = Check {
            request,
            keys: &self.keys,
            now,
            tolerance_seconds: self
                .route
                .tolerance_seconds()
                .unwrap_or(DEFAULT_TOLERANCE_SECONDS),
        };
        match &self.route.scheme {
            SchemeConfig::Github => github::verify(&check),
            SchemeConfig::Stripe => stripe::verify(&check),
            SchemeConfig::Slack => slack::verify(&check),
            SchemeConfig::Shopify => shopify::verify(&check),
            SchemeConfig::Twilio => twilio::verify(&check),
            SchemeConfig::Zendesk(options) => zendesk::verify(&check, options),
            SchemeConfig::Hubspot(options) => hubspot::verify(&check, options),
            SchemeConfig::Meta(options) => meta::verify(&check, options),
            SchemeConfig::StandardWebhooks => standard_webhooks::verify(&check),
            SchemeConfig::Jira => jira::verify(&check),
            SchemeConfig::MicrosoftTeams => teams::verify(&check),
            SchemeConfig::MicrosoftGraph => graph::verify(&check),
            SchemeConfig::Generic(scheme) => generic::verify(&check, scheme),
        }
    }

    /// The records of a delivery this verifier accepted.
    pub fn extract_records(
        &self,
        delivery: &VerifiedDelivery,
    ) -> Result<Vec<ExtractedRecord>, WebhookError> {
        extract_records(
            &self.route.scheme,
            delivery.event_type(),
            delivery.payload(),
        )
    }

    fn unauthenticated_handshake(
        &self,
        request: &WebhookRequest,
    ) -> Result<Option<Handshake>, WebhookError> {
        match &self.route.scheme {
            SchemeConfig::Meta(_) if request.method() == "GET" => {
                let token = self.verify_token.as_ref().ok_or_else(|| {
                    WebhookError::config("the Meta verify token was not resolved")
                })?;
                meta::subscription_handshake(request, token).map(Some)
            }
            SchemeConfig::MicrosoftGraph => graph::validation_handshake(request),
            _ => Ok(None),
        }
    }

    fn check_method(&self, request: &WebhookRequest) -> Result<(), WebhookError> {
        let accepts_get = matches!(
            self.route.scheme,
            SchemeConfig::Hubspot(_) | SchemeConfig::Twilio | SchemeConfig::Generic(_)
        );
        match request.method() {
            "POST" => Ok(()),
            "GET" if accepts_get => Ok(()),
            method => Err(WebhookError::MethodNotAllowed {
                method: method.chars().take(16).collect(),
                provider: self.provider(),
            }),
        }
    }
}

/// Route config and provider only; keys stay out of `Debug`.
impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("route", &self.route)
            .field("keys", &self.keys.len())
            .finish()
    }
}

/// What a verified request asks of the receiver.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// An authentic delivery: deduplicate on its id, publish, answer 200.
    Delivery(VerifiedDelivery),
    /// A subscription or URL handshake: answer with it; nothing is published.
    Handshake(Handshake),
}

/// The answer to a handshake: `200`, `text/plain`, the echoed challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handshake {
    kind: HandshakeKind,
    body: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeKind {
    /// Slack Events API `url_verification` (signed like any delivery).
    SlackUrlVerification,
    /// Meta `GET ?hub.mode=subscribe&hub.verify_token=..&hub.challenge=..`.
    MetaSubscription,
    /// Microsoft Graph `POST ?validationToken=..`, answered within 10 s.
    GraphValidation,
}

impl Handshake {
    /// Challenges are echoed as `text/plain`, so bound them and keep them printable.
    pub(crate) fn new(kind: HandshakeKind, challenge: &str) -> Result<Self, WebhookError> {
        const MAX_CHALLENGE: usize = 8 * 1024;
        if challenge.is_empty()
            || challenge.len() > MAX_CHALLENGE
            || challenge.chars().any(char::is_control)
        {
            return Err(WebhookError::HandshakeRejected {
                reason: "the challenge is empty, too long or not printable",
            });
        }
        Ok(Self {
            kind,
            body: challenge.to_owned(),
        })
    }

    pub fn kind(&self) -> HandshakeKind {
        self.kind
    }

    pub fn status(&self) -> u16 {
        200
    }

    pub fn content_type(&self) -> &'static str {
        "text/plain; charset=utf-8"
    }

    pub fn body(&self) -> &str {
        &self.body
    }
}

/// A delivery whose signature, replay window and body were checked. Only
/// [`Verifier::verify`] builds one, so a function taking it cannot be handed a forgery.
#[derive(Clone)]
pub struct VerifiedDelivery {
    provider: Provider,
    delivery_id: DeliveryId,
    event_type: Option<String>,
    received_at: DateTime<Utc>,
    signed_at: Option<DateTime<Utc>>,
    payload: DeliveryPayload,
    body: Vec<u8>,
}

/// A verified delivery's [`Payload`].
#[derive(Clone)]
enum DeliveryPayload {
    /// The JSON body, unchanged: it travels as the body's own text. Its tree is parsed from
    /// the body on first use when the provider did not need one.
    Body(OnceLock<Value>),
    /// Not the body as it came: it travels as this tree, encoded.
    Built(Value),
}

impl VerifiedDelivery {
    pub fn provider(&self) -> Provider {
        self.provider
    }

    /// What the dedup ledger keys on.
    pub fn delivery_id(&self) -> &DeliveryId {
        &self.delivery_id
    }

    /// The provider's event name (`issues.opened`, `customer.created`, `orders/create`).
    pub fn event_type(&self) -> Option<&str> {
        self.event_type.as_deref()
    }

    pub fn received_at(&self) -> DateTime<Utc> {
        self.received_at
    }

    /// When the provider signed it, for schemes that sign a timestamp.
    pub fn signed_at(&self) -> Option<DateTime<Utc>> {
        self.signed_at
    }

    /// The body as JSON (a form body as an object of its fields), safe to publish: Microsoft
    /// Graph's `clientState`, a secret, is removed.
    pub fn payload(&self) -> &Value {
        match &self.payload {
            // The body was checked to be JSON when it was verified: `null` is never reached.
            DeliveryPayload::Body(tree) => {
                tree.get_or_init(|| serde_json::from_slice(&self.body).unwrap_or(Value::Null))
            }
            DeliveryPayload::Built(tree) => tree,
        }
    }

    pub fn into_payload(self) -> Value {
        self.payload();
        match self.payload {
            DeliveryPayload::Body(tree) => tree.into_inner().unwrap_or(Value::Null),
            DeliveryPayload::Built(tree) => tree,
        }
    }

    /// The payload as JSON text, as the `webhook.received` event carries it: the body's own
    /// bytes when the payload is the JSON body unchanged (nothing is encoded again), else the
    /// payload encoded.
    pub fn into_payload_json(self) -> RawJson {
        match self.payload {
            // The body was checked to be UTF-8 JSON when it was verified: `null` is never
            // reached.
            DeliveryPayload::Body(_) => String::from_utf8(self.body)
                .ok()
                .and_then(|text| RawJson::from_text(text).ok())
                .unwrap_or_default(),
            DeliveryPayload::Built(tree) => RawJson::from_value(&tree),
        }
    }

    /// The exact bytes received.
    pub fn raw_body(&self) -> &[u8] {
        &self.body
    }
}

/// Identifiers only: the body may hold personal data.
impl fmt::Debug for VerifiedDelivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifiedDelivery")
            .field("provider", &self.provider)
            .field("delivery_id", &self.delivery_id)
            .field("event_type", &self.event_type)
            .field("received_at", &self.received_at)
            .field("signed_at", &self.signed_at)
            .field("body_bytes", &self.body.len())
            .finish()
    }
}

/// A delivery's identity for deduplication: the provider's (`X-GitHub-Delivery`, a Stripe
/// event id, `webhook-id`, a Slack `event_id`, ...) or, where the provider sends none,
/// `sha256:<hex of the body>` — the same delivery retried has the same bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DeliveryId {
    value: String,
    origin: DeliveryIdOrigin,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryIdOrigin {
    Provider,
    BodyHash,
}

impl DeliveryId {
    pub(crate) fn body_hash(body: &[u8]) -> Self {
        Self {
            value: format!("sha256:{}", sha256_hex(body)),
            origin: DeliveryIdOrigin::BodyHash,
        }
    }

    /// At most 256 visible ASCII characters (71 for a body hash).
    pub fn as_str(&self) -> &str {
        &self.value
    }

    pub fn origin(&self) -> DeliveryIdOrigin {
        self.origin
    }
}

impl fmt::Display for DeliveryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.value)
    }
}
