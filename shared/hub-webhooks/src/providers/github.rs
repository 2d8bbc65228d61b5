//! GitHub: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, body)>`, no timestamp (the
//! dedup ledger on `X-GitHub-Delivery` is the only replay guard; that header is not signed).

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::{
    Body, Check, Described, Head, Parsed, Payload, decode_head, external_id, parse_json,
    prefixed_hex,
};
use crate::config::Provider;
use crate::crypto::{HmacAlgorithm, HmacKey, any_mac_matches};
use crate::error::WebhookError;
use crate::records::ExtractedRecord;
use crate::request::WebhookRequest;

pub(crate) const SIGNATURE: &str = "X-Hub-Signature-256";
pub(crate) const DELIVERY: &str = "X-GitHub-Delivery";
pub(crate) const EVENT: &str = "X-GitHub-Event";

pub(crate) fn verify(check: &Check<'_>) -> Result<Option<DateTime<Utc>>, WebhookError> {
    hub_signature(check, SIGNATURE, "sha256=", HmacAlgorithm::Sha256)
}

/// The `X-Hub-Signature*` family GitHub, Meta and Jira share.
pub(crate) fn hub_signature(
    check: &Check<'_>,
    header: &'static str,
    prefix: &str,
    algorithm: HmacAlgorithm,
) -> Result<Option<DateTime<Utc>>, WebhookError> {
    let signature = prefixed_hex(check, header, prefix, algorithm)?;
    if any_mac_matches(algorithm, check.keys, &[check.body()], &[signature]) {
        Ok(None)
    } else {
        Err(WebhookError::BadSignature {
            header: header.into(),
        })
    }
}

pub(crate) fn describe(request: &WebhookRequest) -> Result<Parsed, WebhookError> {
    let (payload, action) = match decode_head(request, Provider::Github, true, &["action"])? {
        Head::Json(members) => (Payload::Body(None), action(&members)),
        // A hook created with content type "form" sends the JSON in a `payload` field.
        Head::Other(Body::Form(pairs)) => {
            let json = pairs
                .into_iter()
                .find_map(|(name, value)| (name == "payload").then_some(value))
                .ok_or_else(|| WebhookError::malformed_body("a form without `payload`"))?;
            let payload = parse_json(json.as_bytes())?;
            let action = payload.as_object().and_then(action);
            (Payload::Built(payload), action)
        }
        Head::Other(body) => {
            let payload = body.into_payload();
            let action = payload.tree().as_object().and_then(action);
            (payload, action)
        }
    };
    let headers = request.headers();
    let event = headers.identifier(EVENT)?;
    let event_type = match (event, action) {
        (Some(event), Some(action)) => Some(format!("{event}.{action}")),
        (event, _) => event,
    };
    Ok(Parsed::Delivery(Described {
        delivery_id: headers.identifier(DELIVERY)?,
        event_type,
        payload,
    }))
}

/// The `action` member of an event (`opened` of `issues.opened`).
fn action(members: &Map<String, Value>) -> Option<String> {
    members
        .get("action")
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// The payload's main object for the event (`issues` -> `issue`, `ping` -> `hook`); a push is
/// itself the record (a ref update, identified by `<ref>@<after>`); an event without a known
/// main object yields the whole payload.
pub(crate) fn extract(event_type: Option<&str>, payload: &Value) -> Vec<ExtractedRecord> {
    let event = event_type
        .and_then(|event| event.split('.').next())
        .unwrap_or_default();
    if event == "push" {
        let ref_name = payload.get("ref").and_then(Value::as_str);
        let after = payload.get("after").and_then(Value::as_str);
        return vec![ExtractedRecord {
            external_id: ref_name
                .zip(after)
                .map(|(name, after)| format!("{name}@{after}")),
            record: payload.clone(),
        }];
    }
    let member = match event {
        "issues" => "issue",
        "ping" => "hook",
        "issue_comment"
        | "commit_comment"
        | "pull_request_review_comment"
        | "discussion_comment" => "comment",
        "pull_request_review" => "review",
        "pull_request_review_thread" => "thread",
        "fork" => "forkee",
        "star" | "watch" | "public" => "repository",
        "membership" => "member",
        other => other,
    };
    match payload.get(member) {
        Some(main) if main.is_object() => vec![ExtractedRecord {
            external_id: external_id(main.get("id")),
            record: main.clone(),
        }],
        _ => vec![ExtractedRecord {
            external_id: None,
            record: payload.clone(),
        }],
    }
}

/// The `X-Hub-Signature-256` value of `body`.
pub fn sign(secret: &str, body: &[u8]) -> String {
    hub_sign(secret, body, "sha256=", HmacAlgorithm::Sha256)
}

pub(crate) fn hub_sign(
    secret: &str,
    body: &[u8],
    prefix: &str,
    algorithm: HmacAlgorithm,
) -> String {
    let key = HmacKey::new(secret.as_bytes().to_vec());
    format!("{prefix}{}", hex::encode(key.mac(algorithm, &[body])))
}
