//! Jira Cloud admin webhooks with a secret: `X-Hub-Signature: sha256=<hex>` (the header name
//! without GitHub's `-256`), no timestamp.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::github::{hub_sign, hub_signature};
use super::{Check, Described, Parsed, body_identifier, external_id, read_top_level};
use crate::config::Provider;
use crate::crypto::HmacAlgorithm;
use crate::error::WebhookError;
use crate::records::ExtractedRecord;
use crate::request::WebhookRequest;

pub(crate) const SIGNATURE: &str = "X-Hub-Signature";
/// Stable across retries of one delivery.
pub(crate) const IDENTIFIER: &str = "X-Atlassian-Webhook-Identifier";

pub(crate) fn verify(check: &Check<'_>) -> Result<Option<DateTime<Utc>>, WebhookError> {
    hub_signature(check, SIGNATURE, "sha256=", HmacAlgorithm::Sha256)
}

pub(crate) fn describe(request: &WebhookRequest) -> Result<Parsed, WebhookError> {
    let body = read_top_level(request, Provider::Jira, false, &["webhookEvent"])?;
    Ok(Parsed::Delivery(Described {
        delivery_id: request.headers().identifier(IDENTIFIER)?,
        event_type: body_identifier(body.get("webhookEvent"), "`webhookEvent`")?,
        payload: body.payload,
    }))
}

/// The object the event is about: `jira:issue_updated` -> `issue`, `comment_created` ->
/// `comment`, `sprint_started` -> `sprint`; the whole body when it has no such member.
pub(crate) fn extract(event_type: Option<&str>, payload: &Value) -> Vec<ExtractedRecord> {
    let member = event_type
        .map(|event| event.strip_prefix("jira:").unwrap_or(event))
        .and_then(|event| event.split('_').next())
        .unwrap_or_default();
    let record = payload
        .get(member)
        .filter(|main| main.is_object())
        .unwrap_or(payload);
    vec![ExtractedRecord {
        external_id: external_id(record.get("id")),
        record: record.clone(),
    }]
}

/// The `X-Hub-Signature` value of `body`.
pub fn sign(secret: &str, body: &[u8]) -> String {
    hub_sign(secret, body, "sha256=", HmacAlgorithm::Sha256)
}
