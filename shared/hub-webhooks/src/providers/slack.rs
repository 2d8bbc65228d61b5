//! Slack: `X-Slack-Signature: v0=<hex HMAC-SHA256(secret, "v0:" + ts + ":" + body)>` with
//! `X-Slack-Request-Timestamp`. Events API bodies are JSON (the signed `url_verification`
//! handshake among them); slash commands and interactivity are forms.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{
    Body, Check, Described, Parsed, Payload, body_identifier, decode_body, external_id,
    form_object, parse_json, parse_unix_seconds,
};
use crate::config::Provider;
use crate::crypto::{HmacAlgorithm, HmacKey, any_mac_matches, decode_lower_hex};
use crate::error::WebhookError;
use crate::records::ExtractedRecord;
use crate::request::WebhookRequest;
use crate::verify::{Handshake, HandshakeKind};

pub(crate) const SIGNATURE: &str = "X-Slack-Signature";
pub(crate) const TIMESTAMP: &str = "X-Slack-Request-Timestamp";

pub(crate) fn verify(check: &Check<'_>) -> Result<Option<DateTime<Utc>>, WebhookError> {
    let headers = check.request.headers();
    let signature = headers.required(SIGNATURE)?;
    let timestamp = headers.required(TIMESTAMP)?;
    let signed_at = parse_unix_seconds(TIMESTAMP, timestamp)?;
    let signature = signature
        .strip_prefix("v0=")
        .and_then(|hex| decode_lower_hex(hex, 32))
        .ok_or(WebhookError::MalformedSignature {
            header: SIGNATURE.into(),
            reason: "not `v0=` and 64 lower-case hex digits",
        })?;
    let parts: &[&[u8]] = &[b"v0:", timestamp.as_bytes(), b":", check.body()];
    if !any_mac_matches(HmacAlgorithm::Sha256, check.keys, parts, &[signature]) {
        return Err(WebhookError::BadSignature {
            header: SIGNATURE.into(),
        });
    }
    check.within_window(signed_at)?;
    Ok(Some(signed_at))
}

pub(crate) fn describe(request: &WebhookRequest) -> Result<Parsed, WebhookError> {
    match decode_body(request, Provider::Slack, true)? {
        Body::Json(payload) => describe_event(payload),
        Body::Form(pairs) => {
            // Interactivity posts its JSON in a `payload` field; slash commands are plain forms.
            let interactive = pairs
                .iter()
                .find_map(|(name, value)| (name == "payload").then_some(value));
            if let Some(json) = interactive {
                let payload = parse_json(json.as_bytes())?;
                let event_type = body_identifier(payload.get("type"), "the payload's `type`")?;
                return Ok(Parsed::Delivery(Described {
                    delivery_id: None,
                    event_type,
                    payload: Payload::Built(payload),
                }));
            }
            let payload = form_object(pairs);
            let event_type = payload
                .get("command")
                .is_some()
                .then(|| "slash_command".into());
            Ok(Parsed::Delivery(Described {
                delivery_id: None,
                event_type,
                payload: Payload::Built(payload),
            }))
        }
        Body::Empty => Err(WebhookError::malformed_body("an empty body")),
    }
}

fn describe_event(payload: Value) -> Result<Parsed, WebhookError> {
    let outer_type = body_identifier(payload.get("type"), "the event's `type`")?;
    match outer_type.as_deref() {
        Some("url_verification") => {
            let challenge = payload
                .get("challenge")
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    WebhookError::malformed_body("a `url_verification` without `challenge`")
                })?;
            Handshake::new(HandshakeKind::SlackUrlVerification, challenge).map(Parsed::Handshake)
        }
        Some("event_callback") => {
            let event = payload
                .get("event")
                .filter(|event| event.is_object())
                .ok_or_else(|| {
                    WebhookError::malformed_body("an `event_callback` without `event`")
                })?;
            let event_type = body_identifier(event.get("type"), "the event's `event.type`")?;
            // Slack retries carry the same `event_id`.
            let delivery_id = body_identifier(payload.get("event_id"), "`event_id`")?;
            Ok(Parsed::Delivery(Described {
                delivery_id,
                event_type,
                payload: Payload::Body(Some(payload)),
            }))
        }
        _ => Ok(Parsed::Delivery(Described {
            delivery_id: body_identifier(payload.get("event_id"), "`event_id`")?,
            event_type: outer_type,
            payload: Payload::Body(Some(payload)),
        })),
    }
}

/// The inner `event` of an Events API callback (a message is identified by channel and `ts`),
/// the fields of a slash command, the payload of an interaction. Other envelopes
/// (`app_rate_limited`) carry no record.
pub(crate) fn extract(payload: &Value) -> Vec<ExtractedRecord> {
    if let Some(event) = payload
        .get("event")
        .filter(|_| payload.get("type").and_then(Value::as_str) == Some("event_callback"))
    {
        let message_id = match (
            event.get("channel").and_then(Value::as_str),
            event.get("ts").and_then(Value::as_str),
        ) {
            (Some(channel), Some(ts)) => Some(format!("{channel}:{ts}")),
            _ => external_id(event.get("id")),
        };
        return vec![ExtractedRecord {
            external_id: message_id,
            record: event.clone(),
        }];
    }
    let is_command_or_interaction =
        payload.get("command").is_some() || payload.get("trigger_id").is_some();
    if is_command_or_interaction {
        return vec![ExtractedRecord {
            external_id: external_id(payload.get("trigger_id")),
            record: payload.clone(),
        }];
    }
    Vec::new()
}

/// The `X-Slack-Signature` value of `body` sent at `timestamp` (Unix seconds).
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let key = HmacKey::new(secret.as_bytes().to_vec());
    let timestamp = timestamp.to_string();
    let mac = key.mac(
        HmacAlgorithm::Sha256,
        &[b"v0:", timestamp.as_bytes(), b":", body],
    );
    format!("v0={}", hex::encode(mac))
}
