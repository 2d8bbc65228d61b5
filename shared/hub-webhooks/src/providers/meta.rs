//! Meta (Facebook, Instagram, WhatsApp Cloud API): GitHub's signature scheme keyed by the App
//! Secret, plus the `GET hub.challenge` subscription handshake checked against the verify
//! token.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::github::{hub_sign, hub_signature};
use super::{Check, Described, Parsed, decode_body, external_id};
use crate::config::{MetaOptions, Provider};
use crate::crypto::{HmacAlgorithm, HmacKey, constant_time_eq};
use crate::error::WebhookError;
use crate::records::ExtractedRecord;
use crate::request::WebhookRequest;
use crate::verify::{Handshake, HandshakeKind};

pub(crate) const SIGNATURE: &str = "X-Hub-Signature-256";
pub(crate) const LEGACY_SIGNATURE: &str = "X-Hub-Signature";

pub(crate) fn verify(
    check: &Check<'_>,
    options: &MetaOptions,
) -> Result<Option<DateTime<Utc>>, WebhookError> {
    let headers = check.request.headers();
    if options.allow_sha1 == Some(true)
        && !headers.contains(SIGNATURE)
        && headers.contains(LEGACY_SIGNATURE)
    {
        return hub_signature(check, LEGACY_SIGNATURE, "sha1=", HmacAlgorithm::Sha1);
    }
    hub_signature(check, SIGNATURE, "sha256=", HmacAlgorithm::Sha256)
}

/// `GET ?hub.mode=subscribe&hub.verify_token=<token>&hub.challenge=<n>` answers the
/// challenge; any other mode or token is refused (Meta expects 403).
pub(crate) fn subscription_handshake(
    request: &WebhookRequest,
    verify_token: &HmacKey,
) -> Result<Handshake, WebhookError> {
    if request.query_param("hub.mode").as_deref() != Some("subscribe") {
        return Err(WebhookError::HandshakeRejected {
            reason: "`hub.mode` is not `subscribe`",
        });
    }
    let presented = request.query_param("hub.verify_token").unwrap_or_default();
    if !constant_time_eq(presented.as_bytes(), verify_token.bytes()) {
        return Err(WebhookError::HandshakeRejected {
            reason: "`hub.verify_token` does not match",
        });
    }
    let challenge = request.query_param("hub.challenge").unwrap_or_default();
    Handshake::new(HandshakeKind::MetaSubscription, &challenge)
}

pub(crate) fn describe(request: &WebhookRequest) -> Result<Parsed, WebhookError> {
    let payload = decode_body(request, Provider::Meta, false)?.into_payload();
    let tree = payload.tree();
    if tree.get("entry").is_some_and(|entry| !entry.is_array()) {
        return Err(WebhookError::malformed_body("`entry` is not an array"));
    }
    // `whatsapp_business_account.messages`: the object, and the field when every change
    // agrees on it.
    let object = tree.get("object").and_then(Value::as_str);
    let fields: Vec<&str> = changes(tree)
        .filter_map(|change| change.get("field").and_then(Value::as_str))
        .collect();
    let field = fields
        .first()
        .filter(|first| fields.iter().all(|field| field == *first));
    let event_type = match (object, field) {
        (Some(object), Some(field)) => Some(format!("{object}.{field}")),
        (object, _) => object.map(str::to_owned),
    };
    Ok(Parsed::Delivery(Described {
        // Meta sends no delivery id.
        delivery_id: None,
        event_type,
        payload,
    }))
}

fn entries(payload: &Value) -> impl Iterator<Item = &Value> {
    payload
        .get("entry")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

fn changes(payload: &Value) -> impl Iterator<Item = &Value> {
    entries(payload).flat_map(|entry| {
        entry
            .get("changes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
    })
}

/// Each change's `value` (Graph API fields, WhatsApp), and each Messenger `messaging` item.
pub(crate) fn extract(payload: &Value) -> Vec<ExtractedRecord> {
    let changed = changes(payload)
        .filter_map(|change| change.get("value"))
        .map(|value| ExtractedRecord {
            external_id: external_id(value.get("id")),
            record: value.clone(),
        });
    let messaging = entries(payload)
        .flat_map(|entry| {
            entry
                .get("messaging")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
        })
        .map(|item| ExtractedRecord {
            external_id: external_id(item.pointer("/message/mid")),
            record: item.clone(),
        });
    changed.chain(messaging).collect()
}

/// The `X-Hub-Signature-256` value of `body` under the App Secret.
pub fn sign(app_secret: &str, body: &[u8]) -> String {
    hub_sign(app_secret, body, "sha256=", HmacAlgorithm::Sha256)
}
