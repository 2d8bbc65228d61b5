//! HubSpot. v3: `X-HubSpot-Signature-v3: <base64 HMAC-SHA256(client secret, method + URL +
//! body + timestamp)>` with `X-HubSpot-Request-Timestamp` in milliseconds. v2 and v1 (no
//! timestamp, `X-HubSpot-Signature-Version` names them): lower-case hex SHA-256 (a plain hash,
//! not an HMAC) of `secret + method + URL + body` and `secret + body`. Deliveries batch events
//! in a JSON array.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{Check, Described, Parsed, common_string, decode_body, external_id, parse_unix_millis};
use crate::config::{HubspotOptions, HubspotVersion, Provider};
use crate::crypto::{
    HmacAlgorithm, HmacKey, any_mac_matches, constant_time_eq, decode_base64, decode_lower_hex,
    encode_base64, sha256,
};
use crate::error::WebhookError;
use crate::records::ExtractedRecord;
use crate::request::WebhookRequest;

pub(crate) const SIGNATURE_V3: &str = "X-HubSpot-Signature-v3";
pub(crate) const TIMESTAMP: &str = "X-HubSpot-Request-Timestamp";
pub(crate) const SIGNATURE: &str = "X-HubSpot-Signature";
pub(crate) const VERSION: &str = "X-HubSpot-Signature-Version";

pub(crate) fn verify(
    check: &Check<'_>,
    options: &HubspotOptions,
) -> Result<Option<DateTime<Utc>>, WebhookError> {
    let headers = check.request.headers();
    if options.accepts(HubspotVersion::V3) && headers.contains(SIGNATURE_V3) {
        return verify_v3(check);
    }
    let Some(signature) = headers.single(SIGNATURE)? else {
        let header = if options.accepts(HubspotVersion::V3) {
            SIGNATURE_V3
        } else {
            SIGNATURE
        };
        return Err(WebhookError::MissingSignature {
            header: header.into(),
        });
    };
    let version = match headers.required(VERSION)? {
        "v1" => HubspotVersion::V1,
        "v2" => HubspotVersion::V2,
        _ => {
            return Err(WebhookError::MalformedSignature {
                header: VERSION.into(),
                reason: "not `v1` or `v2`",
            });
        }
    };
    if !options.accepts(version) {
        return Err(WebhookError::MissingSignature {
            header: SIGNATURE_V3.into(),
        });
    }
    let signature = decode_lower_hex(signature, 32).ok_or(WebhookError::MalformedSignature {
        header: SIGNATURE.into(),
        reason: "not 64 lower-case hex digits",
    })?;
    let request = check.request;
    let matched = check.keys.iter().any(|key| {
        let expected = match version {
            HubspotVersion::V2 => sha256(&[
                key.bytes(),
                request.method().as_bytes(),
                request.url().as_bytes(),
                request.body(),
            ]),
            _ => sha256(&[key.bytes(), request.body()]),
        };
        constant_time_eq(&expected, &signature)
    });
    if matched {
        Ok(None)
    } else {
        Err(WebhookError::BadSignature {
            header: SIGNATURE.into(),
        })
    }
}

fn verify_v3(check: &Check<'_>) -> Result<Option<DateTime<Utc>>, WebhookError> {
    let headers = check.request.headers();
    let signature = headers.required(SIGNATURE_V3)?;
    let timestamp = headers.required(TIMESTAMP)?;
    let signed_at = parse_unix_millis(TIMESTAMP, timestamp)?;
    let signature = decode_base64(signature, 32).ok_or(WebhookError::MalformedSignature {
        header: SIGNATURE_V3.into(),
        reason: "not the base64 of a SHA-256 HMAC",
    })?;
    let request = check.request;
    let signatures = [signature];
    // HubSpot's documentation decodes a few percent-escapes in the URL before signing; its
    // Node client signs the URL as is. Both are tried.
    let url = request.url();
    let decoded = decode_listed_escapes(url);
    let urls = std::iter::once(url).chain((decoded != url).then_some(decoded.as_str()));
    let matched = urls.into_iter().any(|url| {
        any_mac_matches(
            HmacAlgorithm::Sha256,
            check.keys,
            &[
                request.method().as_bytes(),
                url.as_bytes(),
                request.body(),
                timestamp.as_bytes(),
            ],
            &signatures,
        )
    });
    if !matched {
        return Err(WebhookError::BadSignature {
            header: SIGNATURE_V3.into(),
        });
    }
    check.within_window(signed_at)?;
    Ok(Some(signed_at))
}

/// The escapes HubSpot's v3 documentation lists as decoded before signing.
fn decode_listed_escapes(url: &str) -> String {
    const LISTED: [(&str, char); 12] = [
        ("3A", ':'),
        ("2F", '/'),
        ("3F", '?'),
        ("40", '@'),
        ("21", '!'),
        ("24", '$'),
        ("27", '\''),
        ("28", '('),
        ("29", ')'),
        ("2A", '*'),
        ("2C", ','),
        ("3B", ';'),
    ];
    let mut decoded = String::with_capacity(url.len());
    let mut rest = url;
    while let Some(percent) = rest.find('%') {
        decoded.push_str(&rest[..percent]);
        let escape = rest.get(percent + 1..percent + 3);
        let listed = escape.and_then(|escape| {
            LISTED
                .iter()
                .find(|(code, _)| code.eq_ignore_ascii_case(escape))
        });
        match listed {
            Some((_, character)) => {
                decoded.push(*character);
                rest = &rest[percent + 3..];
            }
            None => {
                decoded.push('%');
                rest = &rest[percent + 1..];
            }
        }
    }
    decoded.push_str(rest);
    decoded
}

pub(crate) fn describe(request: &WebhookRequest) -> Result<Parsed, WebhookError> {
    let payload = decode_body(request, Provider::Hubspot, false)?.into_payload();
    let tree = payload.tree();
    let event_type = match tree {
        Value::Array(events) => common_string(events, "subscriptionType"),
        Value::Object(_) => common_string(std::slice::from_ref(tree), "subscriptionType"),
        Value::Null => None,
        _ => {
            return Err(WebhookError::malformed_body(
                "neither an event, a batch of events nor empty",
            ));
        }
    };
    Ok(Parsed::Delivery(Described {
        // Events carry ids, a batch does not.
        delivery_id: None,
        event_type,
        payload,
    }))
}

/// Each event of a batch, identified by the CRM object it is about.
pub(crate) fn extract(payload: &Value) -> Vec<ExtractedRecord> {
    let events = match payload {
        Value::Array(events) => events.as_slice(),
        Value::Null => &[],
        single => std::slice::from_ref(single),
    };
    events
        .iter()
        .map(|event| ExtractedRecord {
            external_id: external_id(event.get("objectId"))
                .or_else(|| external_id(event.get("id"))),
            record: event.clone(),
        })
        .collect()
}

/// The `X-HubSpot-Signature-v3` value for a request sent at `timestamp_millis`.
pub fn sign_v3(
    secret: &str,
    method: &str,
    url: &str,
    body: &[u8],
    timestamp_millis: i64,
) -> String {
    let key = HmacKey::new(secret.as_bytes().to_vec());
    let timestamp = timestamp_millis.to_string();
    let mac = key.mac(
        HmacAlgorithm::Sha256,
        &[
            method.as_bytes(),
            url.as_bytes(),
            body,
            timestamp.as_bytes(),
        ],
    );
    encode_base64(&mac)
}

/// The `X-HubSpot-Signature` value of version v2.
pub fn sign_v2(secret: &str, method: &str, url: &str, body: &[u8]) -> String {
    hex::encode(sha256(&[
        secret.as_bytes(),
        method.as_bytes(),
        url.as_bytes(),
        body,
    ]))
}

/// The `X-HubSpot-Signature` value of version v1.
pub fn sign_v1(secret: &str, body: &[u8]) -> String {
    hex::encode(sha256(&[secret.as_bytes(), body]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_listed_escapes_are_decoded() {
        assert_eq!(
            decode_listed_escapes("https://h/p%3Fa%3db%2c%2F%20%"),
            "https://h/p?a%3db,/%20%"
        );
    }
}
