//! Webhook signature schemes, delivery ids, handshakes and record extraction per provider.
//!
//! The receiver converts its request (API Gateway HTTP API v2 event, axum request) into a
//! [`WebhookRequest`], builds a [`Verifier`] from the route's [`RouteConfig`] and the secrets it
//! resolved ([`ResolvedSecrets`]), and calls [`Verifier::verify`] with its clock's time:
//!
//! - [`Outcome::Handshake`]: answer it ([`Handshake::status`], [`Handshake::content_type`],
//!   [`Handshake::body`]); nothing is published;
//! - [`Outcome::Delivery`]: a [`VerifiedDelivery`] (only verification builds one) with the
//!   provider's [`DeliveryId`] for the dedup ledger, its event type and its JSON payload;
//!   [`extract_records`] turns it into records;
//! - a [`WebhookError`] with a stable [`code`](WebhookError::code) and an HTTP
//!   [`status`](WebhookError::status).
//!
//! Signatures are checked on the raw bytes with every active secret of the route, in constant
//! time, inside the replay window in both directions, before the body is parsed. [`sign`]
//! produces the deliveries each provider would send, for tests and benchmarks.
//!
//! Around verification, on the ports of `hub-core`:
//!
//! - [`route`]: webhook routes as documents ([`WebhookRoute`]: tenant, tenant integration,
//!   [`RouteConfig`], dedup window, rate limit) under unguessable [`RouteId`]s;
//! - [`Receiver`]: the whole of `POST|GET /webhooks/{routeId}` behind any HTTP front end
//!   (route lookup, allow-list, rate limit, verification, dedup ledger, claim check for large
//!   payloads, publishing `webhook.received`), answering a [`WebhookResponse`]. No body over
//!   [`MAX_BODY_BYTES_LIMIT`] (6 MiB, the Lambda payload limit) is accepted: an adapter reads
//!   no further and answers [`Receiver::refuse_oversize_body`], the same `413 body_too_large`
//!   and warning as a body over the route's own `maxBodyBytes`. On AWS a body that does not
//!   fit the Lambda payload never reaches the function: API Gateway answers it;
//! - [`expand_delivery`]: what the transformer calls for a `webhook.received` event on the
//!   transform queue: one `RecordBatch` per realtime task, or the delivery kept for inspection
//!   ([`list_unrouted`]) when no realtime task takes it;
//! - [`apigw`] (feature `lambda`): the API Gateway HTTP API (payload v2) adaptation.

#[cfg(feature = "lambda")]
pub mod apigw;
mod commit;
mod config;
mod crypto;
mod error;
mod expand;
mod payload;
mod providers;
pub mod ratelimit;
mod receiver;
mod records;
mod request;
pub mod route;
mod secrets;
pub mod sign;
mod verify;

pub use config::{
    DEFAULT_MAX_BODY_BYTES, DEFAULT_TOLERANCE_SECONDS, GenericScheme, HubspotOptions,
    HubspotVersion, IpRange, JsonPointer, MAX_BODY_BYTES_LIMIT, MetaOptions, Provider, RouteConfig,
    SchemeConfig, SecretEncoding, SignatureEncoding, SignedPayload, TimestampFormat,
    ZendeskOptions, ZendeskSignedOrder,
};
pub use crypto::HmacAlgorithm;
pub use error::WebhookError;
pub use expand::{
    ExpandError, Expansion, MAX_BATCH_BYTES, UnroutedDelivery, expand_delivery, list_unrouted,
};
pub use payload::{INLINE_PAYLOAD_LIMIT, PayloadError, load_payload};
pub use receiver::{
    ENV_PUBLIC_BASE_URL, RateLimiting, ReceiveError, Receiver, ReceiverOptions, WebhookResponse,
};
pub use records::{ExtractedRecord, extract_records};
pub use request::{Headers, WebhookRequest};
pub use route::{RouteId, WebhookRoute};
pub use secrets::ResolvedSecrets;
pub use sign::sign_request;
pub use verify::{
    DeliveryId, DeliveryIdOrigin, Handshake, HandshakeKind, Outcome, VerifiedDelivery, Verifier,
};
