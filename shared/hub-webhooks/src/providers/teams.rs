//! Microsoft Teams outgoing webhooks: `Authorization: HMAC <base64 HMAC-SHA256(key, body)>`
//! where the key is the base64-decoded security token Teams showed when the webhook was made.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::shopify::base64_body_signature;
use super::{Check, Described, Parsed, body_identifier, read_top_level, record_with_id};
use crate::config::Provider;
use crate::crypto::{HmacAlgorithm, HmacKey, decode_base64_any, encode_base64};
use crate::error::WebhookError;
use crate::records::ExtractedRecord;
use crate::request::WebhookRequest;

pub(crate) const AUTHORIZATION: &str = "Authorization";

pub(crate) fn verify(check: &Check<'_>) -> Result<Option<DateTime<Utc>>, WebhookError> {
    let value = check.request.headers().required(AUTHORIZATION)?;
    let signature = value
        .strip_prefix("HMAC ")
        .ok_or(WebhookError::MalformedSignature {
            header: AUTHORIZATION.into(),
            reason: "not the `HMAC` authorization scheme",
        })?;
    base64_body_signature(check, AUTHORIZATION, signature)
}

pub(crate) fn describe(request: &WebhookRequest) -> Result<Parsed, WebhookError> {
    let body = read_top_level(request, Provider::MicrosoftTeams, false, &["id", "type"])?;
    Ok(Parsed::Delivery(Described {
        // The activity id identifies the message that mentioned the webhook.
        delivery_id: body_identifier(body.get("id"), "the activity's `id`")?,
        event_type: body_identifier(body.get("type"), "the activity's `type`")?,
        payload: body.payload,
    }))
}

/// The activity (the message that mentioned the webhook).
pub(crate) fn extract(payload: &Value) -> Vec<ExtractedRecord> {
    vec![record_with_id(payload)]
}

/// The `Authorization` value for `body` under a security token (base64, as Teams shows it).
pub fn sign(security_token: &str, body: &[u8]) -> Result<String, WebhookError> {
    let key = decode_base64_any(security_token)
        .filter(|key| !key.is_empty())
        .ok_or_else(|| WebhookError::config("a Teams security token is base64"))?;
    let mac = HmacKey::new(key).mac(HmacAlgorithm::Sha256, &[body]);
    Ok(format!("HMAC {}", encode_base64(&mac)))
}
