//! The neutral request every adapter converts to: an API Gateway HTTP API v2 event and an axum
//! request both carry a method, the URL the provider called, headers and the raw body.

use std::fmt;
use std::net::IpAddr;

use crate::error::WebhookError;

/// One webhook request as the provider sent it. The body is the exact bytes received: every
/// scheme signs bytes, and re-serialised JSON would not verify.
#[derive(Clone)]
pub struct WebhookRequest {
    method: String,
    url: String,
    headers: Headers,
    body: Vec<u8>,
    source_ip: Option<IpAddr>,
}

impl WebhookRequest {
    /// `url` is the full URL the provider called (`https://host/path?query`): Twilio and
    /// HubSpot sign it, and behind API Gateway it must be rebuilt from the public host.
    pub fn new(method: &str, url: impl Into<String>) -> Self {
        Self {
            method: method.to_ascii_uppercase(),
            url: url.into(),
            headers: Headers::default(),
            body: Vec::new(),
            source_ip: None,
        }
    }

    pub fn post(url: impl Into<String>) -> Self {
        Self::new("POST", url)
    }

    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.append(name, value);
        self
    }

    pub fn with_headers(mut self, headers: Headers) -> Self {
        self.headers = headers;
        self
    }

    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    pub fn with_source_ip(mut self, ip: IpAddr) -> Self {
        self.source_ip = Some(ip);
        self
    }

    /// Upper case (`POST`).
    pub fn method(&self) -> &str {
        &self.method
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    pub fn headers_mut(&mut self) -> &mut Headers {
        &mut self.headers
    }

    pub fn body(&self) -> &[u8] {
        &self.body
    }

    pub fn set_url(&mut self, url: impl Into<String>) {
        self.url = url.into();
    }

    pub fn set_body(&mut self, body: impl Into<Vec<u8>>) {
        self.body = body.into();
    }

    pub fn source_ip(&self) -> Option<IpAddr> {
        self.source_ip
    }

    pub(crate) fn into_body(self) -> Vec<u8> {
        self.body
    }

    /// The query string, without `?` and fragment (`None` when the URL has none).
    pub fn query(&self) -> Option<&str> {
        let (_, query) = self.url.split_once('?')?;
        Some(query.split_once('#').map_or(query, |(query, _)| query))
    }

    /// The first value of query parameter `name`, percent-decoded.
    pub fn query_param(&self, name: &str) -> Option<String> {
        form_urlencoded::parse(self.query()?.as_bytes())
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.into_owned())
    }
}

/// Neither the body nor the query string (a Meta handshake carries its verify token there)
/// nor header values (signatures, bearer tokens) are shown.
impl fmt::Debug for WebhookRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.url.split(['?', '#']).next().unwrap_or_default();
        f.debug_struct("WebhookRequest")
            .field("method", &self.method)
            .field("url", &path)
            .field("headers", &self.headers)
            .field("body_bytes", &self.body.len())
            .field("source_ip", &self.source_ip)
            .finish()
    }
}

/// HTTP headers: names compared case-insensitively, several values per name kept in order
/// (API Gateway joins repeated headers with commas; axum keeps them apart: both work).
#[derive(Clone, Default)]
pub struct Headers {
    /// Names in lower case.
    entries: Vec<(String, String)>,
}

impl Headers {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a value, keeping those already present under the name.
    pub fn append(&mut self, name: &str, value: impl Into<String>) {
        self.entries.push((name.to_ascii_lowercase(), value.into()));
    }

    /// Replaces every value of the name.
    pub fn insert(&mut self, name: &str, value: impl Into<String>) {
        self.remove(name);
        self.append(name, value);
    }

    pub fn remove(&mut self, name: &str) {
        self.entries
            .retain(|(present, _)| !present.eq_ignore_ascii_case(name));
    }

    /// The first value of the name.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(present, _)| present.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    pub fn get_all(&self, name: &str) -> impl Iterator<Item = &str> + use<'_> {
        let name = name.to_ascii_lowercase();
        self.entries
            .iter()
            .filter(move |(present, _)| *present == name)
            .map(|(_, value)| value.as_str())
    }

    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// `(lower-case name, value)` pairs in the order added.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
    }

    /// The value of a header that must appear at most once: a repeated signature or
    /// timestamp header is ambiguous, so it is refused rather than guessed.
    pub(crate) fn single(&self, name: &'static str) -> Result<Option<&str>, WebhookError> {
        let mut values = self.get_all(name);
        let first = values.next();
        if values.next().is_some() {
            return Err(WebhookError::MalformedSignature {
                header: name.into(),
                reason: "the header is repeated",
            });
        }
        Ok(first)
    }

    /// [`Headers::single`] for a header the scheme cannot do without.
    pub(crate) fn required(&self, name: &'static str) -> Result<&str, WebhookError> {
        self.single(name)?.ok_or(WebhookError::MissingSignature {
            header: name.into(),
        })
    }

    /// A provider id or name taken from a header (delivery id, event name): visible ASCII,
    /// bounded, so it can key the dedup ledger and travel in events.
    pub(crate) fn identifier(&self, name: &str) -> Result<Option<String>, WebhookError> {
        let mut values = self.get_all(name);
        let Some(value) = values.next() else {
            return Ok(None);
        };
        if values.next().is_some() {
            return Err(WebhookError::MalformedHeader {
                header: name.to_owned(),
                reason: "the header is repeated",
            });
        }
        let value = value.trim();
        if value.is_empty() || value.len() > MAX_IDENTIFIER_LEN {
            return Err(WebhookError::MalformedHeader {
                header: name.to_owned(),
                reason: "an identifier has 1 to 256 characters",
            });
        }
        if !value.bytes().all(|byte| byte.is_ascii_graphic()) {
            return Err(WebhookError::MalformedHeader {
                header: name.to_owned(),
                reason: "an identifier is visible ASCII without spaces",
            });
        }
        Ok(Some(value.to_owned()))
    }
}

pub(crate) const MAX_IDENTIFIER_LEN: usize = 256;

impl<N: AsRef<str>, V: Into<String>> FromIterator<(N, V)> for Headers {
    fn from_iter<I: IntoIterator<Item = (N, V)>>(iter: I) -> Self {
        let mut headers = Self::default();
        for (name, value) in iter {
            headers.append(name.as_ref(), value);
        }
        headers
    }
}

/// Names only: values include signatures and bearer tokens.
impl fmt::Debug for Headers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.entries.iter().map(|(name, _)| name))
            .finish()
    }
}

/// What a `Content-Type` header announces, as far as verification cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ContentKind {
    Json,
    Form,
    /// No `Content-Type` header.
    Absent,
    Other,
}

impl ContentKind {
    pub(crate) fn of(headers: &Headers) -> Self {
        let Some(value) = headers.get("content-type") else {
            return Self::Absent;
        };
        let essence = value.split(';').next().unwrap_or_default().trim();
        let essence = essence.to_ascii_lowercase();
        if essence == "application/json" || essence.ends_with("+json") {
            Self::Json
        } else if essence == "application/x-www-form-urlencoded" {
            Self::Form
        } else {
            Self::Other
        }
    }
}

/// The `Content-Type` value for an error message: bounded, printable.
pub(crate) fn content_type_for_error(headers: &Headers) -> String {
    headers
        .get("content-type")
        .unwrap_or("(none)")
        .chars()
        .filter(|c| !c.is_control())
        .take(100)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_names_are_case_insensitive_and_values_ordered() {
        let mut headers: Headers = [("X-Thing", "a"), ("x-thing", "b"), ("Other", "c")]
            .into_iter()
            .collect();
        assert_eq!(headers.get("X-THING"), Some("a"));
        assert_eq!(headers.get_all("x-Thing").collect::<Vec<_>>(), ["a", "b"]);
        assert!(headers.single("x-thing").is_err());
        headers.insert("X-Thing", "z");
        assert_eq!(headers.single("x-thing"), Ok(Some("z")));
        assert_eq!(format!("{headers:?}"), r#"["other", "x-thing"]"#);
    }

    #[test]
    fn query_parameters_are_decoded_and_debug_hides_them() {
        let request = WebhookRequest::new(
            "get",
            "https://h/p?hub.mode=subscribe&hub.verify_token=s%20cret#frag",
        );
        assert_eq!(request.method(), "GET");
        assert_eq!(
            request.query_param("hub.verify_token").as_deref(),
            Some("s cret")
        );
        assert_eq!(request.query_param("missing"), None);
        let debug = format!("{request:?}");
        assert!(!debug.contains("cret"), "{debug}");
    }

    #[test]
    fn identifiers_are_bounded_visible_ascii() {
        let headers: Headers = [
            ("id", " abc-1 "),
            ("bad", "a b"),
            ("long", &"x".repeat(300)),
        ]
        .into_iter()
        .collect();
        assert_eq!(headers.identifier("id"), Ok(Some("abc-1".into())));
        assert_eq!(headers.identifier("none"), Ok(None));
        assert_eq!(
            headers.identifier("bad").unwrap_err().code(),
            "malformed_header"
        );
        assert_eq!(
            headers.identifier("long").unwrap_err().code(),
            "malformed_header"
        );
    }

    #[test]
    fn content_kinds() {
        let kind = |value: &str| ContentKind::of(&[("content-type", value)].into_iter().collect());
        assert_eq!(kind("application/json; charset=utf-8"), ContentKind::Json);
        assert_eq!(kind("Application/Vnd.Api+JSON"), ContentKind::Json);
        assert_eq!(kind("application/x-www-form-urlencoded"), ContentKind::Form);
        assert_eq!(kind("text/xml"), ContentKind::Other);
        assert_eq!(ContentKind::of(&Headers::new()), ContentKind::Absent);
    }
}
