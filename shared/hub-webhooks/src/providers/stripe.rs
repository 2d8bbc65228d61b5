//! Stripe: `Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>...][,v0=...]` over
//! `<t>.<body>`, keyed by the endpoint secret used as text (the `whsec_` prefix included).
//! Several `v1` appear while Stripe rolls a secret; any one matching suffices.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{
    Check, Described, Parsed, body_identifier, external_id, parse_unix_seconds, read_top_level,
};
use crate::config::Provider;
use crate::crypto::{HmacAlgorithm, HmacKey, any_mac_matches, decode_lower_hex};
use crate::error::WebhookError;
use crate::records::ExtractedRecord;
use crate::request::WebhookRequest;

pub(crate) const SIGNATURE: &str = "Stripe-Signature";

pub(crate) fn verify(check: &Check<'_>) -> Result<Option<DateTime<Utc>>, WebhookError> {
    let header = check.request.headers().required(SIGNATURE)?;
    let malformed = |reason| WebhookError::MalformedSignature {
        header: SIGNATURE.into(),
        reason,
    };
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for item in header.split(',') {
        let (name, value) = item
            .split_once('=')
            .ok_or(malformed("an element is not `name=value`"))?;
        match name {
            "t" if timestamp.is_some() => return Err(malformed("`t` is repeated")),
            "t" => timestamp = Some(value),
            // A `v1` that does not decode cannot match; another one may.
            "v1" => signatures.extend(decode_lower_hex(value, 32)),
            // `v0` (test-mode legacy) and future schemes are not ours to check.
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(malformed("no `t` element"))?;
    let signed_at = parse_unix_seconds(SIGNATURE, timestamp)?;
    if signatures.is_empty() {
        return Err(malformed("no well-formed `v1` signature"));
    }
    let parts: &[&[u8]] = &[timestamp.as_bytes(), b".", check.body()];
    if !any_mac_matches(HmacAlgorithm::Sha256, check.keys, parts, &signatures) {
        return Err(WebhookError::BadSignature {
            header: SIGNATURE.into(),
        });
    }
    check.within_window(signed_at)?;
    Ok(Some(signed_at))
}

pub(crate) fn describe(request: &WebhookRequest) -> Result<Parsed, WebhookError> {
    let body = read_top_level(request, Provider::Stripe, false, &["id", "type"])?;
    let delivery_id = body_identifier(body.get("id"), "the event's `id`")?
        .ok_or_else(|| WebhookError::malformed_body("a Stripe event without `id`"))?;
    Ok(Parsed::Delivery(Described {
        delivery_id: Some(delivery_id),
        event_type: body_identifier(body.get("type"), "the event's `type`")?,
        payload: body.payload,
    }))
}

/// The object the event is about: `data.object` of a snapshot event, `related_object` of a
/// thin (v2) event.
pub(crate) fn extract(payload: &Value) -> Result<Vec<ExtractedRecord>, WebhookError> {
    let object = payload
        .pointer("/data/object")
        .or_else(|| payload.get("related_object"))
        .filter(|object| object.is_object())
        .ok_or_else(|| {
            WebhookError::malformed_body("a Stripe event without `data.object` or `related_object`")
        })?;
    Ok(vec![ExtractedRecord {
        external_id: external_id(object.get("id")),
        record: object.clone(),
    }])
}

/// The `Stripe-Signature` value of `body` signed at `timestamp` (Unix seconds).
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let key = HmacKey::new(secret.as_bytes().to_vec());
    let timestamp = timestamp.to_string();
    let mac = key.mac(HmacAlgorithm::Sha256, &[timestamp.as_bytes(), b".", body]);
    format!("t={timestamp},v1={}", hex::encode(mac))
}
