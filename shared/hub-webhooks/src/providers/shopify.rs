//! Shopify: `X-Shopify-Hmac-Sha256: <base64 HMAC-SHA256(secret, body)>`, no timestamp; the
//! topic and ids travel in other headers.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{Check, Described, Parsed, read_top_level, record_with_id};
use crate::config::Provider;
use crate::crypto::{HmacAlgorithm, HmacKey, any_mac_matches, decode_base64, encode_base64};
use crate::error::WebhookError;
use crate::records::ExtractedRecord;
use crate::request::WebhookRequest;

pub(crate) const SIGNATURE: &str = "X-Shopify-Hmac-Sha256";
pub(crate) const TOPIC: &str = "X-Shopify-Topic";
/// The same across retries of one delivery.
pub(crate) const WEBHOOK_ID: &str = "X-Shopify-Webhook-Id";
pub(crate) const EVENT_ID: &str = "X-Shopify-Event-Id";

pub(crate) fn verify(check: &Check<'_>) -> Result<Option<DateTime<Utc>>, WebhookError> {
    base64_body_signature(
        check,
        SIGNATURE,
        check.request.headers().required(SIGNATURE)?,
    )
}

/// A base64 HMAC-SHA256 of the body alone (Shopify, Teams).
pub(crate) fn base64_body_signature(
    check: &Check<'_>,
    header: &'static str,
    value: &str,
) -> Result<Option<DateTime<Utc>>, WebhookError> {
    let signature = decode_base64(value, 32).ok_or(WebhookError::MalformedSignature {
        header: header.into(),
        reason: "not the base64 of a SHA-256 HMAC",
    })?;
    if any_mac_matches(
        HmacAlgorithm::Sha256,
        check.keys,
        &[check.body()],
        &[signature],
    ) {
        Ok(None)
    } else {
        Err(WebhookError::BadSignature {
            header: header.into(),
        })
    }
}

pub(crate) fn describe(request: &WebhookRequest) -> Result<Parsed, WebhookError> {
    let headers = request.headers();
    // Everything is in the headers: the body is only checked.
    let body = read_top_level(request, Provider::Shopify, false, &[])?;
    let delivery_id = match headers.identifier(WEBHOOK_ID)? {
        Some(id) => Some(id),
        None => headers.identifier(EVENT_ID)?,
    };
    Ok(Parsed::Delivery(Described {
        delivery_id,
        event_type: headers.identifier(TOPIC)?,
        payload: body.payload,
    }))
}

/// The body is the resource itself (an order, a product).
pub(crate) fn extract(payload: &Value) -> Vec<ExtractedRecord> {
    vec![record_with_id(payload)]
}

/// The `X-Shopify-Hmac-Sha256` value of `body`.
pub fn sign(secret: &str, body: &[u8]) -> String {
    let key = HmacKey::new(secret.as_bytes().to_vec());
    encode_base64(&key.mac(HmacAlgorithm::Sha256, &[body]))
}
