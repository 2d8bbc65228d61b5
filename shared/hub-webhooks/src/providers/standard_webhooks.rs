//! Standard Webhooks (and Svix, which sends the same headers as `svix-*`): `webhook-signature:
//! v1,<base64> [v1,<base64> ...]` over `<webhook-id>.<webhook-timestamp>.<body>`, keyed by
//! the base64-decoded secret after `whsec_`.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{
    Check, Described, Parsed, body_identifier, external_id, parse_unix_seconds, read_top_level,
};
use crate::config::Provider;
use crate::crypto::{
    HmacAlgorithm, HmacKey, any_mac_matches, decode_base64, decode_base64_any, encode_base64,
};
use crate::error::WebhookError;
use crate::records::ExtractedRecord;
use crate::request::{MAX_IDENTIFIER_LEN, WebhookRequest};

pub(crate) const ID: &str = "webhook-id";
pub(crate) const TIMESTAMP: &str = "webhook-timestamp";
pub(crate) const SIGNATURE: &str = "webhook-signature";
const SVIX_ID: &str = "svix-id";
const SVIX_TIMESTAMP: &str = "svix-timestamp";
const SVIX_SIGNATURE: &str = "svix-signature";

/// The header names a delivery uses: the standard's, or Svix's branding of them.
fn names(request: &WebhookRequest) -> [&'static str; 3] {
    let headers = request.headers();
    if !headers.contains(SIGNATURE) && headers.contains(SVIX_SIGNATURE) {
        [SVIX_ID, SVIX_TIMESTAMP, SVIX_SIGNATURE]
    } else {
        [ID, TIMESTAMP, SIGNATURE]
    }
}

pub(crate) fn verify(check: &Check<'_>) -> Result<Option<DateTime<Utc>>, WebhookError> {
    let headers = check.request.headers();
    let [id_header, timestamp_header, signature_header] = names(check.request);
    let signature = headers.required(signature_header)?;
    let id = headers.required(id_header)?;
    let timestamp = headers.required(timestamp_header)?;
    if id.is_empty()
        || id.len() > MAX_IDENTIFIER_LEN
        || !id.bytes().all(|byte| byte.is_ascii_graphic())
    {
        return Err(WebhookError::MalformedSignature {
            header: id_header.into(),
            reason: "the message id is not 1 to 256 visible ASCII characters",
        });
    }
    let signed_at = parse_unix_seconds(timestamp_header, timestamp)?;
    // Other versions (`v1a` is asymmetric) and entries that do not decode are skipped: one of
    // the others may match.
    let signatures: Vec<Vec<u8>> = signature
        .split(' ')
        .filter_map(|entry| entry.strip_prefix("v1,"))
        .filter_map(|encoded| decode_base64(encoded, 32))
        .collect();
    if signatures.is_empty() {
        return Err(WebhookError::MalformedSignature {
            header: signature_header.into(),
            reason: "no well-formed `v1,` signature",
        });
    }
    let parts: &[&[u8]] = &[
        id.as_bytes(),
        b".",
        timestamp.as_bytes(),
        b".",
        check.body(),
    ];
    if !any_mac_matches(HmacAlgorithm::Sha256, check.keys, parts, &signatures) {
        return Err(WebhookError::BadSignature {
            header: signature_header.into(),
        });
    }
    check.within_window(signed_at)?;
    Ok(Some(signed_at))
}

pub(crate) fn describe(request: &WebhookRequest) -> Result<Parsed, WebhookError> {
    let [id_header, ..] = names(request);
    let body = read_top_level(request, Provider::StandardWebhooks, false, &["type"])?;
    Ok(Parsed::Delivery(Described {
        delivery_id: request.headers().identifier(id_header)?,
        event_type: body_identifier(body.get("type"), "the event's `type`")?,
        payload: body.payload,
    }))
}

/// The event's `data` (an object, or each element of an array); a body without `data` (not
/// what the specification describes, but what its test vector sends) is the record itself.
pub(crate) fn extract(payload: &Value) -> Vec<ExtractedRecord> {
    let record = |data: &Value| ExtractedRecord {
        external_id: external_id(data.get("id")),
        record: data.clone(),
    };
    match payload.get("data") {
        Some(Value::Array(items)) => items.iter().map(record).collect(),
        Some(data) if data.is_object() => vec![record(data)],
        _ => vec![record(payload)],
    }
}

/// The `webhook-signature` value for message `id` sent at `timestamp` (Unix seconds), with a
/// `whsec_` secret.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Result<String, WebhookError> {
    let key = decode_base64_any(secret.strip_prefix("whsec_").unwrap_or(secret))
        .filter(|key| !key.is_empty())
        .ok_or_else(|| {
            WebhookError::config("a Standard Webhooks secret is base64 after `whsec_`")
        })?;
    let timestamp = timestamp.to_string();
    let mac = HmacKey::new(key).mac(
        HmacAlgorithm::Sha256,
        &[id.as_bytes(), b".", timestamp.as_bytes(), b".", body],
    );
    Ok(format!("v1,{}", encode_base64(&mac)))
}
