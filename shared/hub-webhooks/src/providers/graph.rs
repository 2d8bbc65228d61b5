//! Microsoft Graph change notifications. There is no HMAC: each notification echoes the
//! `clientState` secret given when the subscription was made, so the body must be parsed to
//! authenticate it. Creating or renewing a subscription first sends `POST
//! ?validationToken=<token>`, answered with the decoded token as `text/plain` within 10 s.
//! The `validationTokens` JWTs of rich notifications are not checked here.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{
    Check, Described, Parsed, Payload, common_string, decode_body, external_id, parse_json,
};
use crate::config::Provider;
use crate::crypto::constant_time_eq;
use crate::error::WebhookError;
use crate::records::ExtractedRecord;
use crate::request::WebhookRequest;
use crate::verify::{Handshake, HandshakeKind};

pub(crate) const CLIENT_STATE: &str = "clientState";

/// The validation handshake; `None` when the request is not one.
pub(crate) fn validation_handshake(
    request: &WebhookRequest,
) -> Result<Option<Handshake>, WebhookError> {
    match request.query_param("validationToken") {
        Some(token) if request.method() == "POST" => {
            Handshake::new(HandshakeKind::GraphValidation, &token).map(Some)
        }
        Some(_) => Err(WebhookError::MethodNotAllowed {
            method: request.method().chars().take(16).collect(),
            provider: Provider::MicrosoftGraph,
        }),
        None => Ok(None),
    }
}

pub(crate) fn verify(check: &Check<'_>) -> Result<Option<DateTime<Utc>>, WebhookError> {
    let body = parse_json(check.body())?;
    let notifications = notifications(&body)?;
    for notification in notifications {
        let presented = notification
            .get(CLIENT_STATE)
            .and_then(Value::as_str)
            .ok_or(WebhookError::MissingSignature {
                header: CLIENT_STATE.into(),
            })?;
        let known = check
            .keys
            .iter()
            .any(|key| constant_time_eq(presented.as_bytes(), key.bytes()));
        if !known {
            return Err(WebhookError::BadSignature {
                header: CLIENT_STATE.into(),
            });
        }
    }
    Ok(None)
}

fn notifications(body: &Value) -> Result<&[Value], WebhookError> {
    body.get("value")
        .and_then(Value::as_array)
        .filter(|items| !items.is_empty() && items.iter().all(Value::is_object))
        .map(Vec::as_slice)
        .ok_or_else(|| WebhookError::malformed_body("`value` is not a non-empty array of objects"))
}

pub(crate) fn describe(request: &WebhookRequest) -> Result<Parsed, WebhookError> {
    let mut payload = decode_body(request, Provider::MicrosoftGraph, false)?.into_value();
    // `clientState` is the route's secret: it must not travel on the bus.
    if let Some(items) = payload.get_mut("value").and_then(Value::as_array_mut) {
        for item in items.iter_mut().filter_map(Value::as_object_mut) {
            item.remove(CLIENT_STATE);
        }
    }
    let items = notifications(&payload)?;
    let event_type =
        common_string(items, "lifecycleEvent").or_else(|| common_string(items, "changeType"));
    Ok(Parsed::Delivery(Described {
        // Notifications carry no id of their own; a retry repeats the body.
        delivery_id: None,
        event_type,
        // Not the body: `clientState` is gone.
        payload: Payload::Built(payload),
    }))
}

/// Each notification (without `clientState`), identified by the changed resource.
pub(crate) fn extract(payload: &Value) -> Vec<ExtractedRecord> {
    payload
        .get("value")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|notification| {
            let mut record = notification.clone();
            if let Some(object) = record.as_object_mut() {
                object.remove(CLIENT_STATE);
            }
            ExtractedRecord {
                external_id: external_id(notification.pointer("/resourceData/id")),
                record,
            }
        })
        .collect()
}

/// A notification body with `client_state` set in every notification (Graph's "signing").
pub fn sign(client_state: &str, body: &[u8]) -> Result<Vec<u8>, WebhookError> {
    let mut value = parse_json(body)?;
    let items = value
        .get_mut("value")
        .and_then(Value::as_array_mut)
        .ok_or_else(|| WebhookError::malformed_body("`value` is not an array"))?;
    for item in items.iter_mut() {
        let object = item
            .as_object_mut()
            .ok_or_else(|| WebhookError::malformed_body("a notification is not an object"))?;
        object.insert(CLIENT_STATE.into(), Value::String(client_state.into()));
    }
    serde_json::to_vec(&value).map_err(|error| WebhookError::malformed_body(error.to_string()))
}
