//! One module per provider: how its signature is checked on the raw request, how a verified
//! body names its delivery and event, which records it carries, and how to sign a delivery
//! the same way (for tests and benchmarks).

pub(crate) mod generic;
pub(crate) mod github;
pub(crate) mod graph;
pub(crate) mod hubspot;
pub(crate) mod jira;
pub(crate) mod meta;
pub(crate) mod shopify;
pub(crate) mod slack;
pub(crate) mod standard_webhooks;
pub(crate) mod stripe;
pub(crate) mod teams;
pub(crate) mod twilio;
pub(crate) mod zendesk;

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::config::Provider;
use crate::crypto::{HmacAlgorithm, HmacKey, decode_lower_hex};
use crate::error::WebhookError;
use crate::records::ExtractedRecord;
use crate::request::{ContentKind, MAX_IDENTIFIER_LEN, WebhookRequest, content_type_for_error};
use crate::verify::Handshake;

/// What a signature check needs besides the scheme's options.
pub(crate) struct Check<'a> {
    pub request: &'a WebhookRequest,
    pub keys: &'a [HmacKey],
    pub now: DateTime<Utc>,
    pub tolerance_seconds: u64,
}

impl Check<'_> {
    pub fn body(&self) -> &[u8] {
        self.request.body()
    }

    /// Refuses an authentic delivery signed outside the replay window, in either direction
    /// (a timestamp in the future is as suspect as an old one).
    pub fn within_window(&self, signed_at: DateTime<Utc>) -> Result<(), WebhookError> {
        let skew_millis = (signed_at - self.now).num_milliseconds();
        let tolerance_millis = i64::try_from(self.tolerance_seconds)
            .unwrap_or(i64::MAX)
            .saturating_mul(1000);
        if skew_millis.unsigned_abs() > tolerance_millis.unsigned_abs() {
            return Err(WebhookError::TimestampOutsideWindow {
                skew_seconds: skew_millis / 1000,
                tolerance_seconds: self.tolerance_seconds,
            });
        }
        Ok(())
    }
}

/// What a verified body says about itself.
pub(crate) struct Described {
    /// The provider's delivery id; `None`: the body's hash stands in.
    pub delivery_id: Option<String>,
    pub event_type: Option<String>,
    pub payload: Payload,
}

/// What a delivery carries on the bus. Whether it is the body unchanged is said here, by the
/// provider that read it, so a scheme that changes the payload cannot have the body travel in
/// its place.
pub(crate) enum Payload {
    /// The JSON body, unchanged: it travels as the body's own text. `Some` is its tree when
    /// the provider parsed it to read it; `None`, it was checked but not parsed
    /// ([`decode_head`]), and is parsed only if something reads it.
    Body(Option<Value>),
    /// Anything else, travelling as this tree encoded: a form as an object of its fields, a
    /// JSON document posted inside a form, an empty body (null), or a tree the scheme changed
    /// (Graph removes `clientState`, a secret).
    Built(Value),
}

impl Payload {
    /// The tree the provider reads; null for a JSON body that was not parsed.
    pub fn tree(&self) -> &Value {
        const UNPARSED: &Value = &Value::Null;
        match self {
            Self::Body(Some(tree)) | Self::Built(tree) => tree,
            Self::Body(None) => UNPARSED,
        }
    }
}

pub(crate) enum Parsed {
    Delivery(Described),
    Handshake(Handshake),
}

/// Unix seconds: ASCII digits only, so a changed byte cannot slip through as whitespace or
/// a sign.
pub(crate) fn parse_unix_seconds(
    header: impl Into<Cow<'static, str>>,
    text: &str,
) -> Result<DateTime<Utc>, WebhookError> {
    digits(text, 12)
        .and_then(|seconds| DateTime::from_timestamp(seconds, 0))
        .ok_or(WebhookError::MalformedSignature {
            header: header.into(),
            reason: "the timestamp is not Unix seconds",
        })
}

pub(crate) fn parse_unix_millis(
    header: impl Into<Cow<'static, str>>,
    text: &str,
) -> Result<DateTime<Utc>, WebhookError> {
    digits(text, 15)
        .and_then(DateTime::from_timestamp_millis)
        .ok_or(WebhookError::MalformedSignature {
            header: header.into(),
            reason: "the timestamp is not Unix milliseconds",
        })
}

pub(crate) fn parse_rfc3339(
    header: impl Into<Cow<'static, str>>,
    text: &str,
) -> Result<DateTime<Utc>, WebhookError> {
    DateTime::parse_from_rfc3339(text)
        .map(|at| at.with_timezone(&Utc))
        .map_err(|_| WebhookError::MalformedSignature {
            header: header.into(),
            reason: "the timestamp is not RFC 3339",
        })
}

fn digits(text: &str, max_len: usize) -> Option<i64> {
    let well_formed =
        !text.is_empty() && text.len() <= max_len && text.bytes().all(|b| b.is_ascii_digit());
    well_formed.then(|| text.parse().ok()).flatten()
}

/// `<prefix><lower-case hex>` in a header that must be present (GitHub, Meta, Jira).
pub(crate) fn prefixed_hex(
    check: &Check<'_>,
    header: &'static str,
    prefix: &str,
    algorithm: HmacAlgorithm,
) -> Result<Vec<u8>, WebhookError> {
    let value = check.request.headers().required(header)?;
    let hex = value
        .strip_prefix(prefix)
        .ok_or(WebhookError::MalformedSignature {
            header: header.into(),
            reason: "the signature lacks the scheme's prefix",
        })?;
    decode_lower_hex(hex, algorithm.output_len()).ok_or(WebhookError::MalformedSignature {
        header: header.into(),
        reason: "the signature is not lower-case hex of the digest's length",
    })
}

/// Reads the body as the content types a provider sends. An absent `Content-Type` is read as
/// JSON (or as nothing when the body is empty, like a signed GET).
pub(crate) fn decode_body(
    request: &WebhookRequest,
    provider: Provider,
    accepts_form: bool,
) -> Result<Body, WebhookError> {
    match ContentKind::of(request.headers()) {
        ContentKind::Absent if request.body().is_empty() => Ok(Body::Empty),
        ContentKind::Json | ContentKind::Absent => parse_json(request.body()).map(Body::Json),
        ContentKind::Form if accepts_form => parse_form(request.body()).map(Body::Form),
        ContentKind::Form | ContentKind::Other => Err(WebhookError::UnsupportedContentType {
            content_type: content_type_for_error(request.headers()),
            provider,
        }),
    }
}

/// A body read for the few members a provider needs ([`decode_head`]).
pub(crate) enum Head {
    /// A JSON body: the top-level members asked for (the body is checked, not kept as a tree).
    Json(Map<String, Value>),
    /// Any other body, read whole as [`decode_body`] reads it.
    Other(Body),
}

/// [`decode_body`] for providers that read only some top-level members of a JSON body: a
/// large payload is checked, and only the members in `names` are parsed.
pub(crate) fn decode_head(
    request: &WebhookRequest,
    provider: Provider,
    accepts_form: bool,
    names: &[&str],
) -> Result<Head, WebhookError> {
    match ContentKind::of(request.headers()) {
        ContentKind::Json | ContentKind::Absent if !request.body().is_empty() => {
            json_members(request.body(), names).map(Head::Json)
        }
        _ => decode_body(request, provider, accepts_form).map(Head::Other),
    }
}

/// What a provider that reads only top-level members of the body takes from it.
pub(crate) struct TopLevel {
    /// The members asked for, of a JSON body.
    members: Map<String, Value>,
    /// The payload as [`Described`] takes it: a JSON body unparsed, any other (empty, a
    /// form) read whole.
    pub payload: Payload,
}

impl TopLevel {
    pub fn get(&self, name: &str) -> Option<&Value> {
        match &self.payload {
            Payload::Body(None) => self.members.get(name),
            payload => payload.tree().get(name),
        }
    }
}

/// [`decode_head`] for providers that read only the top-level members `names`: a JSON body
/// travels as its text, any other body as it is read.
pub(crate) fn read_top_level(
    request: &WebhookRequest,
    provider: Provider,
    accepts_form: bool,
    names: &[&str],
) -> Result<TopLevel, WebhookError> {
    Ok(match decode_head(request, provider, accepts_form, names)? {
        Head::Json(members) => TopLevel {
            members,
            payload: Payload::Body(None),
        },
        Head::Other(body) => TopLevel {
            members: Map::new(),
            payload: body.into_payload(),
        },
    })
}

/// The members `names` of a JSON body that is an object, each parsed; everything else is only
/// checked (UTF-8, JSON syntax). A document that is not an object has none of them.
pub(crate) fn json_members(
    bytes: &[u8],
    names: &[&str],
) -> Result<Map<String, Value>, WebhookError> {
    let text = std::str::from_utf8(bytes)
        .map_err(|_| WebhookError::malformed_body("not JSON (the body is not UTF-8)"))?;
    let mut deserializer = serde_json::Deserializer::from_str(text);
    serde::de::DeserializeSeed::deserialize(Members { names }, &mut deserializer)
        .and_then(|members| deserializer.end().map(|()| members))
        .map_err(|error| {
            WebhookError::malformed_body(format!(
                "not JSON (line {}, column {})",
                error.line(),
                error.column()
            ))
        })
}

/// Reads a JSON document keeping only the named members of a top-level object.
struct Members<'n> {
    names: &'n [&'n str],
}

impl<'de> serde::de::DeserializeSeed<'de> for Members<'_> {
    type Value = Map<String, Value>;

    fn deserialize<D: serde::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Members<'_> {
    type Value = Map<String, Value>;

    fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("a JSON document")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut members = Map::new();
        while let Some(name) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if self.names.contains(&name.as_ref()) {
                members.insert(name.into_owned(), map.next_value::<Value>()?);
            } else {
                map.next_value::<serde::de::IgnoredAny>()?;
            }
        }
        Ok(members)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
        Ok(Map::new())
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Map::new())
    }

    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Map::new())
    }

    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Map::new())
    }

    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Map::new())
    }

    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Map::new())
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Map::new())
    }
}

pub(crate) enum Body {
    Json(Value),
    Form(Vec<(String, String)>),
    Empty,
}

impl Body {
    /// The payload as it travels: a form is an object of its fields (a repeated field is an
    /// array of its values).
    pub fn into_value(self) -> Value {
        match self {
            Self::Json(value) => value,
            Self::Form(pairs) => form_object(pairs),
            Self::Empty => Value::Null,
        }
    }

    /// The payload this body makes: a JSON body travels unchanged, any other as its value.
    pub fn into_payload(self) -> Payload {
        match self {
            Self::Json(tree) => Payload::Body(Some(tree)),
            other => Payload::Built(other.into_value()),
        }
    }
}

pub(crate) fn form_object(pairs: Vec<(String, String)>) -> Value {
    let mut object = Map::new();
    for (name, value) in pairs {
        match object.get_mut(&name) {
            None => {
                object.insert(name, Value::String(value));
            }
            Some(Value::Array(values)) => values.push(Value::String(value)),
            Some(first) => {
                let first = first.take();
                object.insert(name, Value::Array(vec![first, Value::String(value)]));
            }
        }
    }
    Value::Object(object)
}

/// JSON, with an error that locates the problem without quoting the body.
pub(crate) fn parse_json(bytes: &[u8]) -> Result<Value, WebhookError> {
    serde_json::from_slice(bytes).map_err(|error| {
        WebhookError::malformed_body(format!(
            "not JSON (line {}, column {})",
            error.line(),
            error.column()
        ))
    })
}

pub(crate) fn parse_form(bytes: &[u8]) -> Result<Vec<(String, String)>, WebhookError> {
    if std::str::from_utf8(bytes).is_err() {
        return Err(WebhookError::malformed_body(
            "a form body that is not UTF-8",
        ));
    }
    Ok(form_urlencoded::parse(bytes)
        .map(|(name, value)| (name.into_owned(), value.into_owned()))
        .collect())
}

/// A delivery id or event name read from a verified body: a string of visible ASCII or an
/// integer, bounded like header identifiers. Absent is `None`; present but unusable is an error.
pub(crate) fn body_identifier(
    value: Option<&Value>,
    what: &str,
) -> Result<Option<String>, WebhookError> {
    let text = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(text)) => text.clone(),
        Some(Value::Number(number)) if number.is_i64() || number.is_u64() => number.to_string(),
        Some(_) => {
            return Err(WebhookError::malformed_body(format!(
                "{what} is not a string"
            )));
        }
    };
    let usable = !text.is_empty()
        && text.len() <= MAX_IDENTIFIER_LEN
        && text.bytes().all(|byte| byte.is_ascii_graphic());
    if usable {
        Ok(Some(text))
    } else {
        Err(WebhookError::malformed_body(format!(
            "{what} is not 1 to {MAX_IDENTIFIER_LEN} visible ASCII characters"
        )))
    }
}

/// A record's external id: a non-empty string or an integer.
pub(crate) fn external_id(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(text) if !text.is_empty() => Some(text.clone()),
        Value::Number(number) if number.is_i64() || number.is_u64() => Some(number.to_string()),
        _ => None,
    }
}

/// One record whose external id is its `id` member.
pub(crate) fn record_with_id(record: &Value) -> ExtractedRecord {
    ExtractedRecord {
        external_id: external_id(record.get("id")),
        record: record.clone(),
    }
}

/// The value shared by every element's `member`, when they all agree (a batch's event type).
pub(crate) fn common_string(items: &[Value], member: &str) -> Option<String> {
    let mut values = items.iter().map(|item| item.get(member)?.as_str());
    let first = values.next()??;
    values
        .all(|value| value == Some(first))
        .then(|| first.to_owned())
}

#[cfg(test)]
mod tests {

    #[test]
    fn json_members_parses_only_the_named_members_and_checks_the_rest() {
        let body = br#"{"action": "opened", "issue": {"title": "\u00e9", "n": [1, 2.5]}, "id": 7}"#;
        let members = json_members(body, &["action", "id", "absent"]).unwrap();
        assert_eq!(
            Value::Object(members),
            serde_json::json!({"action": "opened", "id": 7})
        );
        for document in [
            &b"[1, {\"action\": 2}]"[..],
            b"\"text\"",
            b"12",
            b"null",
            b"true",
        ] {
            assert!(json_members(document, &["action"]).unwrap().is_empty());
        }
        let refused: [&[u8]; 6] = [
            b"{\"action\": \"opened\"",
            b"{\"issue\": {\"title\": tru}}",
            b"{\"issue\": [1,]}",
            b"{} {}",
            b"{\"issue\": \"\xff\"}",
            b"",
        ];
        for document in refused {
            let error = json_members(document, &["action"]).unwrap_err();
            assert_eq!(error.code(), "malformed_body", "{document:?}");
        }
    }

    use super::*;

    #[test]
    fn timestamps_are_digits_only() {
        assert!(parse_unix_seconds("h", "1531420618").is_ok());
        for bad in [
            "",
            " 1531420618",
            "1531420618 ",
            "+1531420618",
            "-1",
            "1.5",
            "9".repeat(13).as_str(),
        ] {
            assert!(parse_unix_seconds("h", bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            parse_unix_millis("h", "1564113600000").unwrap().timestamp(),
            1_564_113_600
        );
        assert!(parse_rfc3339("h", "2021-07-25T10:00:00Z").is_ok());
        assert!(parse_rfc3339("h", "2021-07-25 10:00").is_err());
    }

    #[test]
    fn forms_become_objects() {
        let pairs = parse_form(b"a=1&b=x+y&a=2&c=%2B").unwrap();
        assert_eq!(
            form_object(pairs),
            serde_json::json!({"a": ["1", "2"], "b": "x y", "c": "+"})
        );
        assert!(parse_form(b"a=\xff").is_err());
    }

    #[test]
    fn identifiers_from_bodies() {
        let json = serde_json::json!({"s": "evt_1", "n": 42, "f": 1.5, "sp": "a b", "o": {}});
        assert_eq!(
            body_identifier(json.get("s"), "id"),
            Ok(Some("evt_1".into()))
        );
        assert_eq!(body_identifier(json.get("n"), "id"), Ok(Some("42".into())));
        assert_eq!(body_identifier(json.get("x"), "id"), Ok(None));
        for bad in ["f", "sp", "o"] {
            assert!(body_identifier(json.get(bad), "id").is_err(), "{bad}");
        }
        assert_eq!(external_id(json.get("n")), Some("42".into()));
        assert_eq!(external_id(json.get("o")), None);
    }

    #[test]
    fn json_errors_do_not_quote_the_body() {
        let error = parse_json(b"{\"secret\": tru").unwrap_err();
        assert_eq!(error.code(), "malformed_body");
        assert!(!error.to_string().contains("secret"), "{error}");
    }
}
