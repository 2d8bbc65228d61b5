//! An HMAC scheme described by the route ([`GenericScheme`]): which header, prefix, hash,
//! encoding, what is signed, and where the timestamp is.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{
    Check, Described, Parsed, body_identifier, decode_body, external_id, parse_rfc3339,
    parse_unix_millis, parse_unix_seconds,
};
use crate::config::{
    GenericScheme, PayloadPart, Provider, SecretEncoding, SignatureEncoding, TimestampFormat,
};
use crate::crypto::{
    HmacKey, any_mac_matches, decode_base64, decode_base64_any, decode_lower_hex, encode_base64,
};
use crate::error::WebhookError;
use crate::records::ExtractedRecord;
use crate::request::WebhookRequest;

pub(crate) fn verify(
    check: &Check<'_>,
    scheme: &GenericScheme,
) -> Result<Option<DateTime<Utc>>, WebhookError> {
    let signature_header = || Cow::Owned(scheme.signature_header.clone());
    let value = single(check.request, &scheme.signature_header)?.ok_or_else(|| {
        WebhookError::MissingSignature {
            header: signature_header(),
        }
    })?;
    let pieces: Vec<&str> = match &scheme.signature_separator {
        Some(separator) => value.split(separator.as_str()).map(str::trim).collect(),
        None => vec![value],
    };
    let len = scheme.algorithm.output_len();
    let signatures: Vec<Vec<u8>> = pieces
        .into_iter()
        .filter_map(|piece| match &scheme.signature_prefix {
            Some(prefix) => piece.strip_prefix(prefix.as_str()),
            None => Some(piece),
        })
        .filter_map(|encoded| match scheme.encoding {
            SignatureEncoding::Hex => decode_lower_hex(encoded, len),
            SignatureEncoding::Base64 => decode_base64(encoded, len),
        })
        .collect();
    if signatures.is_empty() {
        return Err(WebhookError::MalformedSignature {
            header: signature_header(),
            reason: "no signature with the configured prefix, encoding and length",
        });
    }
    let timestamp =
        match &scheme.timestamp_header {
            Some(name) => Some(single(check.request, name)?.ok_or_else(|| {
                WebhookError::MissingSignature {
                    header: Cow::Owned(name.clone()),
                }
            })?),
            None => None,
        };
    let signed_at = match (&scheme.timestamp_header, timestamp) {
        (Some(name), Some(text)) => Some(match scheme.timestamp_format() {
            TimestampFormat::UnixSeconds => parse_unix_seconds(name.clone(), text),
            TimestampFormat::UnixMillis => parse_unix_millis(name.clone(), text),
            TimestampFormat::Rfc3339 => parse_rfc3339(name.clone(), text),
        }?),
        _ => None,
    };
    let delivery_id = match &scheme.delivery_id_header {
        Some(name) => single(check.request, name)?,
        None => None,
    };
    let signed = signed_payload(scheme, check.request, timestamp, delivery_id)?;
    if !any_mac_matches(scheme.algorithm, check.keys, &[&signed], &signatures) {
        return Err(WebhookError::BadSignature {
            header: signature_header(),
        });
    }
    if let Some(signed_at) = signed_at {
        check.within_window(signed_at)?;
    }
    Ok(signed_at)
}

/// A signed header, which must not repeat.
fn single<'a>(request: &'a WebhookRequest, name: &str) -> Result<Option<&'a str>, WebhookError> {
    let mut values = request.headers().get_all(name);
    let first = values.next();
    if values.next().is_some() {
        return Err(WebhookError::MalformedSignature {
            header: Cow::Owned(name.to_owned()),
            reason: "the header is repeated",
        });
    }
    Ok(first)
}

fn signed_payload(
    scheme: &GenericScheme,
    request: &WebhookRequest,
    timestamp: Option<&str>,
    delivery_id: Option<&str>,
) -> Result<Vec<u8>, WebhookError> {
    let mut signed = Vec::with_capacity(request.body().len() + 64);
    for part in scheme.signed_payload.parts() {
        match part {
            PayloadPart::Literal(text) => signed.extend_from_slice(text.as_bytes()),
            PayloadPart::Body => signed.extend_from_slice(request.body()),
            PayloadPart::Method => signed.extend_from_slice(request.method().as_bytes()),
            PayloadPart::Url => signed.extend_from_slice(request.url().as_bytes()),
            PayloadPart::Timestamp => signed.extend_from_slice(
                timestamp
                    .ok_or_else(|| missing(scheme.timestamp_header.as_deref()))?
                    .as_bytes(),
            ),
            PayloadPart::DeliveryId => signed.extend_from_slice(
                delivery_id
                    .ok_or_else(|| missing(scheme.delivery_id_header.as_deref()))?
                    .as_bytes(),
            ),
        }
    }
    Ok(signed)
}

/// A signed header the request lacks (validation guarantees the route names it).
fn missing(header: Option<&str>) -> WebhookError {
    WebhookError::MissingSignature {
        header: Cow::Owned(header.unwrap_or_default().to_owned()),
    }
}

pub(crate) fn describe(
    request: &WebhookRequest,
    scheme: &GenericScheme,
) -> Result<Parsed, WebhookError> {
    let payload = decode_body(request, Provider::Generic, true)?.into_payload();
    let tree = payload.tree();
    let headers = request.headers();
    let delivery_id = match (&scheme.delivery_id_header, &scheme.delivery_id_pointer) {
        (Some(name), _) => headers.identifier(name)?,
        (None, Some(pointer)) => body_identifier(pointer.resolve(tree), "the delivery id")?,
        (None, None) => None,
    };
    let event_type = match (&scheme.event_type_header, &scheme.event_type_pointer) {
        (Some(name), _) => headers.identifier(name)?,
        (None, Some(pointer)) => body_identifier(pointer.resolve(tree), "the event type")?,
        (None, None) => None,
    };
    Ok(Parsed::Delivery(Described {
        delivery_id,
        event_type,
        payload,
    }))
}

/// The value at `recordsPointer` (the whole body by default): an array is one record per
/// element, anything else one record.
pub(crate) fn extract(
    scheme: &GenericScheme,
    payload: &Value,
) -> Result<Vec<ExtractedRecord>, WebhookError> {
    let records = match &scheme.records_pointer {
        Some(pointer) => pointer.resolve(payload).ok_or_else(|| {
            WebhookError::malformed_body(format!(
                "nothing at the records pointer `{}`",
                pointer.as_str()
            ))
        })?,
        None => payload,
    };
    let record = |record: &Value| ExtractedRecord {
        external_id: match &scheme.record_id_pointer {
            Some(pointer) => external_id(pointer.resolve(record)),
            None => external_id(record.get("id")),
        },
        record: record.clone(),
    };
    Ok(match records {
        Value::Array(items) => items.iter().map(record).collect(),
        Value::Null => Vec::new(),
        single => vec![record(single)],
    })
}

/// The signature header value of `request` (method, URL, body and, if the scheme signs it,
/// the delivery id header already set) under `scheme`, with `timestamp` as the timestamp
/// header's text.
pub fn sign(
    scheme: &GenericScheme,
    secret: &str,
    request: &WebhookRequest,
    timestamp: Option<&str>,
) -> Result<String, WebhookError> {
    let key = match scheme.secret_encoding {
        SecretEncoding::Utf8 => Some(secret.as_bytes().to_vec()),
        SecretEncoding::Base64 => {
            decode_base64_any(secret.strip_prefix("whsec_").unwrap_or(secret))
        }
        SecretEncoding::Hex => hex::decode(secret).ok(),
    }
    .ok_or_else(|| WebhookError::config("the secret does not decode as the scheme says"))?;
    let delivery_id = scheme
        .delivery_id_header
        .as_deref()
        .and_then(|name| request.headers().get(name));
    let signed = signed_payload(scheme, request, timestamp, delivery_id)?;
    let mac = HmacKey::new(key).mac(scheme.algorithm, &[&signed]);
    let encoded = match scheme.encoding {
        SignatureEncoding::Hex => hex::encode(mac),
        SignatureEncoding::Base64 => encode_base64(&mac),
    };
    Ok(format!(
        "{}{encoded}",
        scheme.signature_prefix.as_deref().unwrap_or_default()
    ))
}
