//! Twilio: `X-Twilio-Signature: <base64 HMAC-SHA1(auth token, url + params)>` where the URL is
//! exactly what Twilio called (query included) and, for form posts, each parameter follows
//! sorted by name (then value) as `name` + `value`. JSON bodies are covered instead by a
//! `bodySHA256` query parameter. There is no timestamp.
//!
//! The signature covers the decoded parameters, not the body's bytes: two encodings of the
//! same parameters (`%2B` and `%2b`) verify alike and also mean the same.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{Check, Described, Parsed, decode_body, external_id, parse_form};
use crate::config::Provider;
use crate::crypto::{
    HmacAlgorithm, HmacKey, any_mac_matches, constant_time_eq, decode_base64, encode_base64,
    sha256_hex,
};
use crate::error::WebhookError;
use crate::records::ExtractedRecord;
use crate::request::{ContentKind, WebhookRequest, content_type_for_error};

pub(crate) const SIGNATURE: &str = "X-Twilio-Signature";
/// Sent with retries of one webhook request.
pub(crate) const IDEMPOTENCY_TOKEN: &str = "I-Twilio-Idempotency-Token";
const BODY_HASH_PARAM: &str = "bodySHA256";

pub(crate) fn verify(check: &Check<'_>) -> Result<Option<DateTime<Utc>>, WebhookError> {
    let request = check.request;
    let value = request.headers().required(SIGNATURE)?;
    let signature = decode_base64(value, 20).ok_or(WebhookError::MalformedSignature {
        header: SIGNATURE.into(),
        reason: "not the base64 of a SHA-1 HMAC",
    })?;
    let kind = ContentKind::of(request.headers());
    let params = match kind {
        ContentKind::Form => parse_form(request.body())?,
        ContentKind::Json => Vec::new(),
        ContentKind::Absent if request.body().is_empty() => Vec::new(),
        ContentKind::Absent | ContentKind::Other => {
            return Err(WebhookError::UnsupportedContentType {
                content_type: content_type_for_error(request.headers()),
                provider: Provider::Twilio,
            });
        }
    };
    let signed_params = sorted_params(params.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    // Proxies and libraries disagree on whether the default port is part of the URL; Twilio's
    // own validator tries both.
    let matched = url_variants(request.url()).iter().any(|url| {
        any_mac_matches(
            HmacAlgorithm::Sha1,
            check.keys,
            &[url.as_bytes(), &signed_params],
            std::slice::from_ref(&signature),
        )
    });
    if !matched {
        return Err(WebhookError::BadSignature {
            header: SIGNATURE.into(),
        });
    }
    if kind == ContentKind::Json {
        let announced = request.query_param(BODY_HASH_PARAM).unwrap_or_default();
        if !constant_time_eq(announced.as_bytes(), sha256_hex(request.body()).as_bytes()) {
            return Err(WebhookError::BadSignature {
                header: SIGNATURE.into(),
            });
        }
    }
    Ok(None)
}

/// `name1value1name2value2...`, names sorted, each name's distinct values sorted (as
/// twilio-python's `RequestValidator` builds it).
fn sorted_params<'a>(params: impl Iterator<Item = (&'a str, &'a str)>) -> Vec<u8> {
    let mut params: Vec<(&str, &str)> = params.collect();
    params.sort_unstable();
    params.dedup();
    let mut signed = Vec::new();
    for (name, value) in params {
        signed.extend_from_slice(name.as_bytes());
        signed.extend_from_slice(value.as_bytes());
    }
    signed
}

/// The URL as given, plus the same URL with the scheme's default port added or removed.
fn url_variants(url: &str) -> Vec<String> {
    let mut variants = vec![url.to_owned()];
    let Some((scheme, rest)) = url.split_once("://") else {
        return variants;
    };
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "https" => "443",
        "http" => "80",
        _ => return variants,
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let (host, port) = match authority.rfind(':') {
        // `[::1]` alone has colons but no port.
        Some(colon) if !authority[colon..].contains(']') => {
            (&authority[..colon], Some(&authority[colon + 1..]))
        }
        _ => (authority, None),
    };
    match port {
        Some(port) if port == default_port => variants.push(format!("{scheme}://{host}{tail}")),
        None => variants.push(format!("{scheme}://{host}:{default_port}{tail}")),
        Some(_) => {}
    }
    variants
}

pub(crate) fn describe(request: &WebhookRequest) -> Result<Parsed, WebhookError> {
    let payload = decode_body(request, Provider::Twilio, true)?.into_payload();
    Ok(Parsed::Delivery(Described {
        delivery_id: request.headers().identifier(IDEMPOTENCY_TOKEN)?,
        event_type: None,
        payload,
    }))
}

/// The request's parameters as one record, identified by the resource's SID.
pub(crate) fn extract(payload: &Value) -> Vec<ExtractedRecord> {
    if payload.is_null() {
        return Vec::new();
    }
    let sid = [
        "MessageSid",
        "SmsSid",
        "CallSid",
        "RecordingSid",
        "TranscriptionSid",
        "ConferenceSid",
        "Sid",
    ]
    .into_iter()
    .find_map(|name| external_id(payload.get(name)));
    vec![ExtractedRecord {
        external_id: sid,
        record: payload.clone(),
    }]
}

/// The `X-Twilio-Signature` value for a request to `url` with form `params` (empty for GET and
/// JSON requests).
pub fn sign<K: AsRef<str>, V: AsRef<str>>(
    auth_token: &str,
    url: &str,
    params: &[(K, V)],
) -> String {
    let key = HmacKey::new(auth_token.as_bytes().to_vec());
    let signed_params = sorted_params(params.iter().map(|(k, v)| (k.as_ref(), v.as_ref())));
    encode_base64(&key.mac(HmacAlgorithm::Sha1, &[url.as_bytes(), &signed_params]))
}

/// [`sign`] for a form body as sent.
pub fn sign_form_body(auth_token: &str, url: &str, body: &[u8]) -> Result<String, WebhookError> {
    Ok(sign(auth_token, url, &parse_form(body)?))
}

/// The URL Twilio calls for a JSON body: `url` with `bodySHA256=<hex>` appended.
pub fn json_url(url: &str, body: &[u8]) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}{BODY_HASH_PARAM}={}", sha256_hex(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_ports_are_tried_both_ways() {
        assert_eq!(
            url_variants("https://h.example/p?q=1"),
            ["https://h.example/p?q=1", "https://h.example:443/p?q=1"]
        );
        assert_eq!(
            url_variants("https://h.example:443/p"),
            ["https://h.example:443/p", "https://h.example/p"]
        );
        assert_eq!(url_variants("http://h:8080/p"), ["http://h:8080/p"]);
        assert_eq!(
            url_variants("http://[::1]/p"),
            ["http://[::1]/p", "http://[::1]:80/p"]
        );
        assert_eq!(url_variants("not a url"), ["not a url"]);
    }

    #[test]
    fn params_sort_by_name_then_value_without_repeats() {
        let params = [("b", "2"), ("a", "y"), ("a", "x"), ("b", "2")];
        assert_eq!(sorted_params(params.into_iter()), b"axayb2");
    }
}
