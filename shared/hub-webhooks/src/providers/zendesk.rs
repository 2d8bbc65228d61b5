//! Zendesk: `X-Zendesk-Webhook-Signature: <base64 HMAC-SHA256(secret, ...)>` with
//! `X-Zendesk-Webhook-Signature-Timestamp` in RFC 3339. Zendesk's current documentation signs
//! timestamp + body, its only published test vector body + timestamp; the route chooses, and
//! by default accepts either. For JSON that costs nothing: a JSON body ends with `}` or `]`,
//! never with a timestamp, so one order's signed string is never the other's (a route that
//! receives forms ending in a timestamp should pin the order).

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;

use super::{
    Check, Described, Parsed, body_identifier, external_id, parse_rfc3339, read_top_level,
    record_with_id,
};
use crate::config::{Provider, ZendeskOptions, ZendeskSignedOrder};
use crate::crypto::{HmacAlgorithm, HmacKey, any_mac_matches, decode_base64, encode_base64};
use crate::error::WebhookError;
use crate::records::ExtractedRecord;
use crate::request::WebhookRequest;

pub(crate) const SIGNATURE: &str = "X-Zendesk-Webhook-Signature";
pub(crate) const TIMESTAMP: &str = "X-Zendesk-Webhook-Signature-Timestamp";
/// The same across retries of one invocation.
pub(crate) const INVOCATION_ID: &str = "X-Zendesk-Webhook-Invocation-Id";

pub(crate) fn verify(
    check: &Check<'_>,
    options: &ZendeskOptions,
) -> Result<Option<DateTime<Utc>>, WebhookError> {
    let headers = check.request.headers();
    let signature = headers.required(SIGNATURE)?;
    let timestamp = headers.required(TIMESTAMP)?;
    let signed_at = parse_rfc3339(TIMESTAMP, timestamp)?;
    let signature = decode_base64(signature, 32).ok_or(WebhookError::MalformedSignature {
        header: SIGNATURE.into(),
        reason: "not the base64 of a SHA-256 HMAC",
    })?;
    let signatures = [signature];
    let body = check.body();
    let timestamp = timestamp.as_bytes();
    let matches =
        |parts: &[&[u8]]| any_mac_matches(HmacAlgorithm::Sha256, check.keys, parts, &signatures);
    let matched = match options.signed_order() {
        ZendeskSignedOrder::TimestampThenBody => matches(&[timestamp, body]),
        ZendeskSignedOrder::BodyThenTimestamp => matches(&[body, timestamp]),
        ZendeskSignedOrder::Either => matches(&[timestamp, body]) || matches(&[body, timestamp]),
    };
    if !matched {
        return Err(WebhookError::BadSignature {
            header: SIGNATURE.into(),
        });
    }
    check.within_window(signed_at)?;
    Ok(Some(signed_at))
}

pub(crate) fn describe(request: &WebhookRequest) -> Result<Parsed, WebhookError> {
    let body = read_top_level(request, Provider::Zendesk, true, &["id", "type"])?;
    let delivery_id = match request.headers().identifier(INVOCATION_ID)? {
        Some(id) => Some(id),
        // Event-subscription webhooks carry an event id.
        None => body_identifier(body.get("id"), "the event's `id`")?,
    };
    Ok(Parsed::Delivery(Described {
        delivery_id,
        event_type: body_identifier(body.get("type"), "the event's `type`")?,
        payload: body.payload,
    }))
}

/// An event webhook's `detail` (the ticket, user, organization); a trigger webhook's body is
/// whatever the admin templated, so it is the record.
pub(crate) fn extract(payload: &Value) -> Vec<ExtractedRecord> {
    match payload.get("detail").filter(|detail| detail.is_object()) {
        Some(detail) => vec![ExtractedRecord {
            external_id: external_id(detail.get("id")),
            record: detail.clone(),
        }],
        None => vec![record_with_id(payload)],
    }
}

/// The RFC 3339 timestamp header value Zendesk would send at `at`.
pub fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The `X-Zendesk-Webhook-Signature` value of `body` with `timestamp` (the header's text),
/// in `order` (`Either` signs timestamp then body, as the current documentation says).
pub fn sign(secret: &str, timestamp: &str, body: &[u8], order: ZendeskSignedOrder) -> String {
    let key = HmacKey::new(secret.as_bytes().to_vec());
    let timestamp = timestamp.as_bytes();
    let mac = match order {
        ZendeskSignedOrder::BodyThenTimestamp => key.mac(HmacAlgorithm::Sha256, &[body, timestamp]),
        ZendeskSignedOrder::TimestampThenBody | ZendeskSignedOrder::Either => {
            key.mac(HmacAlgorithm::Sha256, &[timestamp, body])
        }
    };
    encode_base64(&mac)
}
