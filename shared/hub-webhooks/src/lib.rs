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

mod config;
mod crypto;
mod error;
mod providers;
mod records;
mod request;
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
pub use records::{ExtractedRecord, extract_records};
pub use request::{Headers, WebhookRequest};
pub use secrets::ResolvedSecrets;
pub use sign::sign_request;
pub use verify::{
    DeliveryId, DeliveryIdOrigin, Handshake, HandshakeKind, Outcome, VerifiedDelivery, Verifier,
};
