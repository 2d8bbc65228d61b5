//! Connector definitions: how to call one SaaS API, declared in a JSON file (camelCase).
//!
//! Read with [`hub_core::model::load_json`]: serde checks the shape (templates, JSON pointers and
//! header names are checked while parsing, so their errors carry the exact path), then
//! [`Validate`] checks what serde cannot: which members go with which `type`, that every
//! placeholder names a declared setting, that a stream's pagination provides the `page.*`
//! values its templates use.

use std::collections::{BTreeMap, HashSet};
use std::fmt;

use hub_core::model::{JsonPath, ModelError, Validate};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::template::{Template, Var, is_setting_name};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConnectorDefinition {
    /// Lowercase letters, digits, `_` and `-`; also the file name (`<id>.json`).
    pub id: String,
    pub display_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `https://{{settings.instance}}.example.com/api`: only `settings.*` placeholders.
    pub base_url: Template,
    /// The tenant integration settings the templates may read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub settings: Vec<SettingSpec>,
    #[serde(default)]
    pub auth: AuthSpec,
    /// Sent with every request (`settings.*` placeholders only).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, Template>,
    #[serde(default)]
    pub rate_limit: RateLimitSpec,
    /// Checked in order before the default classification; the first match decides.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ErrorRule>,
    pub streams: Vec<StreamSpec>,
}

impl ConnectorDefinition {
    pub fn stream(&self, name: &str) -> Option<&StreamSpec> {
        self.streams.iter().find(|s| s.name == name)
    }

    pub fn setting(&self, name: &str) -> Option<&SettingSpec> {
        self.settings.iter().find(|s| s.name == name)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SettingSpec {
    pub name: String,
    #[serde(default)]
    pub required: bool,
    /// Used when the tenant integration leaves the setting out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// How the connection's secret is put on each request. Credentials go only to the base URL's
/// origin: a next-page URL or redirect to another host gets none.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuthSpec {
    #[serde(rename = "type")]
    pub kind: AuthKind,
    /// `apiKey`: `header` or `query`.
    #[serde(default, rename = "in", skip_serializing_if = "Option::is_none")]
    pub location: Option<ApiKeyLocation>,
    /// `apiKey`: the header or query parameter name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `apiKey` in a header: text before the key (`"Token "`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum AuthKind {
    #[default]
    None,
    /// The secret's `apiKey` (api_key credentials).
    ApiKey,
    /// `username` / `password` (basic credentials).
    Basic,
    /// `Authorization: Bearer`: the OAuth2 access token, or an api_key secret's key.
    Bearer,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ApiKeyLocation {
    Header,
    Query,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    #[default]
    Get,
    Post,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StreamSpec {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub method: HttpMethod,
    /// Appended to the base URL; placeholders are percent-encoded as path segments.
    pub path: Template,
    /// A parameter whose placeholder has no value (`page.cursor` on the first page) is left out.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub query: BTreeMap<String, Template>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, Template>,
    /// JSON body (POST only; GraphQL). A string that is exactly one placeholder becomes the
    /// value itself (a number stays a number, an absent value becomes `null`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
    #[serde(default)]
    pub pagination: Pagination,
    /// Where the page's records are: a JSON pointer to an array (`""`: the body is the array).
    pub record_selector: JsonPointer,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incremental: Option<Incremental>,
}

impl StreamSpec {
    /// Every template of the stream but the body, with its path under `at`.
    fn templates(&self, at: &JsonPath) -> Vec<(JsonPath, &Template)> {
        let mut out = vec![(at.key("path"), &self.path)];
        for (name, template) in &self.query {
            out.push((at.key("query").key(name), template));
        }
        for (name, template) in &self.headers {
            out.push((at.key("headers").key(name), template));
        }
        out
    }
}

/// One pagination style with its parameters. Flat rather than an enum per style so each
/// misplaced member gets an error at its own path.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Pagination {
    #[serde(rename = "type")]
    pub style: PaginationStyle,
    /// `cursor`: where the next page's cursor is in the body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor_pointer: Option<JsonPointer>,
    /// `cursor`: the query parameter that carries it (else use `{{page.cursor}}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor_param: Option<String>,
    /// `cursor`: a boolean in the body that is `false` on the last page (stop `noMore`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub has_more_pointer: Option<JsonPointer>,
    /// `nextUrl`: where the next page's URL is in the body (absolute or relative).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_url_pointer: Option<JsonPointer>,
    /// `linkHeader`: the relation to follow (default `next`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rel: Option<String>,
    /// `offset`: the query parameter of the offset (else use `{{page.offset}}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset_param: Option<String>,
    /// `offset`: the first offset (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_offset: Option<u64>,
    /// `pageNumber`: the query parameter of the page number (else use `{{page.number}}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_param: Option<String>,
    /// `pageNumber`: the first page's number (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_page: Option<u64>,
    /// Records asked for per page (required by `offset` and `pageNumber`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_size: Option<u32>,
    /// The query parameter of the page size (else use `{{page.limit}}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_size_param: Option<String>,
    /// When the current page is the last one (any condition). Defaults: `missingToken` for the
    /// token styles (always in force there), `emptyPage` for `offset` and `pageNumber`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stop_when: Vec<StopCondition>,
    /// Where the total record count is in the body (progress; stop `totalReached`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_pointer: Option<JsonPointer>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum PaginationStyle {
    /// One request, one page.
    #[default]
    None,
    Cursor,
    NextUrl,
    /// RFC 8288 `Link` header.
    LinkHeader,
    Offset,
    PageNumber,
}

impl PaginationStyle {
    fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Cursor => "cursor",
            Self::NextUrl => "nextUrl",
            Self::LinkHeader => "linkHeader",
            Self::Offset => "offset",
            Self::PageNumber => "pageNumber",
        }
    }

    /// Styles whose next page is named by the response (cursor, URL); without one they stop.
    pub fn is_token_style(self) -> bool {
        matches!(self, Self::Cursor | Self::NextUrl | Self::LinkHeader)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum StopCondition {
    /// The page has no records.
    EmptyPage,
    /// The response names no next page (no cursor, no next URL, no `Link` rel).
    MissingToken,
    /// `hasMorePointer` is `false`.
    NoMore,
    /// Fewer records than `pageSize` (only safe when the API never caps the size lower).
    FewerThanLimit,
    /// Records seen so far reach the total at `totalPointer`.
    TotalReached,
}

impl StopCondition {
    fn as_str(self) -> &'static str {
        match self {
            Self::EmptyPage => "emptyPage",
            Self::MissingToken => "missingToken",
            Self::NoMore => "noMore",
            Self::FewerThanLimit => "fewerThanLimit",
            Self::TotalReached => "totalReached",
        }
    }
}

impl Pagination {
    /// The stop conditions in force (the defaults when none are written).
    pub fn stop_conditions(&self) -> Vec<StopCondition> {
        let mut stops = self.stop_when.clone();
        if self.style.is_token_style() && !stops.contains(&StopCondition::MissingToken) {
            stops.push(StopCondition::MissingToken);
        }
        if stops.is_empty()
            && matches!(
                self.style,
                PaginationStyle::Offset | PaginationStyle::PageNumber
            )
        {
            stops.push(StopCondition::EmptyPage);
        }
        stops
    }

    pub fn rel(&self) -> &str {
        self.rel.as_deref().unwrap_or("next")
    }

    pub fn start_offset(&self) -> u64 {
        self.start_offset.unwrap_or(0)
    }

    pub fn start_page(&self) -> u64 {
        self.start_page.unwrap_or(1)
    }
}

impl Validate for Pagination {
    fn validate_at(&self, at: &JsonPath) -> Result<(), ModelError> {
        use PaginationStyle::{Cursor, LinkHeader, NextUrl, Offset, PageNumber};
        let style = self.style;
        let only_for = |present: bool, name: &str, allowed: &[PaginationStyle]| {
            if present && !allowed.contains(&style) {
                let names: Vec<_> = allowed
                    .iter()
                    .map(|s| format!("`{}`", s.as_str()))
                    .collect();
                Err(at.key(name).invalid(format!(
                    "only for type {}, not `{}`",
                    names.join(" or "),
                    style.as_str()
                )))
            } else {
                Ok(())
            }
        };
        only_for(self.cursor_pointer.is_some(), "cursorPointer", &[Cursor])?;
        only_for(self.cursor_param.is_some(), "cursorParam", &[Cursor])?;
        only_for(self.has_more_pointer.is_some(), "hasMorePointer", &[Cursor])?;
        only_for(
            self.next_url_pointer.is_some(),
            "nextUrlPointer",
            &[NextUrl],
        )?;
        only_for(self.rel.is_some(), "rel", &[LinkHeader])?;
        only_for(self.offset_param.is_some(), "offsetParam", &[Offset])?;
        only_for(self.start_offset.is_some(), "startOffset", &[Offset])?;
        only_for(self.page_param.is_some(), "pageParam", &[PageNumber])?;
        only_for(self.start_page.is_some(), "startPage", &[PageNumber])?;
        let paged = [Cursor, NextUrl, LinkHeader, Offset, PageNumber];
        only_for(self.page_size.is_some(), "pageSize", &paged)?;
        only_for(self.page_size_param.is_some(), "pageSizeParam", &paged)?;
        only_for(self.total_pointer.is_some(), "totalPointer", &paged)?;
        only_for(!self.stop_when.is_empty(), "stopWhen", &paged)?;

        match style {
            Cursor if self.cursor_pointer.is_none() => {
                return Err(at
                    .key("cursorPointer")
                    .invalid("required for type `cursor`"));
            }
            NextUrl if self.next_url_pointer.is_none() => {
                return Err(at
                    .key("nextUrlPointer")
                    .invalid("required for type `nextUrl`"));
            }
            Offset | PageNumber if self.page_size.is_none() => {
                return Err(at
                    .key("pageSize")
                    .invalid(format!("required for type `{}`", style.as_str())));
            }
            _ => {}
        }
        if self.page_size == Some(0) {
            return Err(at.key("pageSize").invalid("must be at least 1"));
        }
        if self.page_size_param.is_some() && self.page_size.is_none() {
            return Err(at
                .key("pageSize")
                .invalid("required when pageSizeParam is set"));
        }
        for (name, value) in [
            ("cursorParam", &self.cursor_param),
            ("offsetParam", &self.offset_param),
            ("pageParam", &self.page_param),
            ("pageSizeParam", &self.page_size_param),
            ("rel", &self.rel),
        ] {
            if let Some(value) = value {
                non_blank(&at.key(name), value)?;
            }
        }

        let stops_at = at.key("stopWhen");
        let mut seen = HashSet::new();
        for (index, stop) in self.stop_when.iter().enumerate() {
            let stop_at = stops_at.index(index);
            if !seen.insert(*stop) {
                return Err(stop_at.invalid(format!("`{}` is listed twice", stop.as_str())));
            }
            let problem = match stop {
                StopCondition::EmptyPage => None,
                StopCondition::MissingToken if !style.is_token_style() => {
                    Some("needs a token style (cursor, nextUrl, linkHeader)")
                }
                StopCondition::NoMore if self.has_more_pointer.is_none() => {
                    Some("needs hasMorePointer")
                }
                StopCondition::FewerThanLimit if self.page_size.is_none() => Some("needs pageSize"),
                StopCondition::TotalReached if !matches!(style, Offset | PageNumber) => {
                    Some("needs a positional style (offset, pageNumber)")
                }
                StopCondition::TotalReached if self.total_pointer.is_none() => {
                    Some("needs totalPointer")
                }
                _ => None,
            };
            if let Some(problem) = problem {
                return Err(stop_at.invalid(format!("`{}` {problem}", stop.as_str())));
            }
        }
        Ok(())
    }
}

/// Incremental sync: which record field moves the cursor, and how the window reaches the API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Incremental {
    /// JSON pointer into each record (`/updatedAt`, `/fields/updated`).
    pub cursor_field: JsonPointer,
    #[serde(default)]
    pub cursor_type: CursorType,
    /// Query parameter that receives the window's start (else use `{{cursor.from}}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_param: Option<String>,
    /// How the start is written for the API (default: `rfc3339` for datetimes, `raw` otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_format: Option<CursorFormat>,
    /// Re-read this much before the committed cursor (late writes, clock skew upstream).
    #[serde(default)]
    pub lookback_seconds: u64,
}

impl Incremental {
    pub fn request_format(&self) -> CursorFormat {
        self.request_format.unwrap_or(match self.cursor_type {
            CursorType::Datetime => CursorFormat::Rfc3339,
            CursorType::EpochSeconds => CursorFormat::EpochSeconds,
            CursorType::EpochMillis => CursorFormat::EpochMillis,
            CursorType::Integer | CursorType::String => CursorFormat::Raw,
        })
    }
}

impl Validate for Incremental {
    fn validate_at(&self, at: &JsonPath) -> Result<(), ModelError> {
        if self.cursor_field.as_str().is_empty() {
            return Err(at
                .key("cursorField")
                .invalid("must point into the record, not be the record"));
        }
        if let Some(param) = &self.request_param {
            non_blank(&at.key("requestParam"), param)?;
        }
        let time_based = self.cursor_type.is_time();
        if self.lookback_seconds > 0 && !time_based {
            return Err(at
                .key("lookbackSeconds")
                .invalid("only for time cursors (datetime, epochSeconds, epochMillis)"));
        }
        if self.request_format.is_some_and(|f| f != CursorFormat::Raw) && !time_based {
            return Err(at
                .key("requestFormat")
                .invalid("integer and string cursors are sent `raw`"));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum CursorType {
    /// RFC 3339 strings.
    #[default]
    Datetime,
    EpochSeconds,
    EpochMillis,
    /// Ever-growing ids or sequence numbers.
    Integer,
    /// Opaque strings compared byte-wise.
    String,
}

impl CursorType {
    pub fn is_time(self) -> bool {
        matches!(
            self,
            Self::Datetime | Self::EpochSeconds | Self::EpochMillis
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum CursorFormat {
    /// `2024-05-01T12:00:00Z`
    Rfc3339,
    /// `2024-05-01T12:00:00.000Z`
    Rfc3339Millis,
    EpochSeconds,
    EpochMillis,
    /// `2024-05-01` (rounded down, so the lookback still covers the whole day)
    Date,
    /// The committed cursor as stored.
    Raw,
}

/// Which response headers describe the API's rate limit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RateLimitSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit_header: Option<HeaderName>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remaining_header: Option<HeaderName>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset_header: Option<HeaderName>,
    #[serde(default)]
    pub reset_format: ResetFormat,
    /// Seconds or an HTTP date (RFC 9110 section 10.2.3).
    #[serde(default = "HeaderName::retry_after")]
    pub retry_after_header: HeaderName,
}

impl Default for RateLimitSpec {
    fn default() -> Self {
        Self {
            limit_header: None,
            remaining_header: None,
            reset_header: None,
            reset_format: ResetFormat::default(),
            retry_after_header: HeaderName::retry_after(),
        }
    }
}

impl Validate for RateLimitSpec {
    fn validate_at(&self, at: &JsonPath) -> Result<(), ModelError> {
        if self.reset_header.is_none() && self.reset_format != ResetFormat::default() {
            return Err(at
                .key("resetFormat")
                .invalid("only meaningful with resetHeader"));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ResetFormat {
    /// Unix time of the reset (GitHub's `x-ratelimit-reset`).
    #[default]
    EpochSeconds,
    /// Seconds from now.
    DeltaSeconds,
    HttpDate,
}

/// A response that matches every given matcher gets `action`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ErrorRule {
    /// Any of these statuses (empty: any status of 400 or more). List a 2xx status to catch
    /// errors an API reports with 200 (`{"ok": false}`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub statuses: Vec<u16>,
    /// The body contains this text (case-sensitive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_contains: Option<String>,
    /// A header has exactly this value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<HeaderMatch>,
    pub action: ErrorAction,
}

impl Validate for ErrorRule {
    fn validate_at(&self, at: &JsonPath) -> Result<(), ModelError> {
        for (index, status) in self.statuses.iter().enumerate() {
            if !(100..=599).contains(status) {
                return Err(at
                    .key("statuses")
                    .index(index)
                    .invalid(format!("{status} is not an HTTP status")));
            }
        }
        if let Some(text) = &self.body_contains {
            non_blank(&at.key("bodyContains"), text)?;
        }
        if self.statuses.is_empty() && self.body_contains.is_none() && self.header.is_none() {
            return Err(at.invalid("needs statuses, bodyContains or header to match on"));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HeaderMatch {
    pub name: HeaderName,
    pub equals: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ErrorAction {
    /// Transient: re-enqueue with backoff (and `Retry-After` / the rate-limit reset).
    Retry,
    /// The credentials are refused: the connection needs re-authorisation.
    AuthFailed,
    NotFound,
    /// Will not succeed by retrying.
    Fail,
    /// Not an error: an empty last page (an API that answers 404 for "nothing here").
    EmptyPage,
}

/// A JSON pointer (RFC 6901): `""` or `/a/0/b`, with `~0` and `~1` escapes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct JsonPointer(String);

impl JsonPointer {
    pub fn parse(text: &str) -> Result<Self, String> {
        if !text.is_empty() && !text.starts_with('/') {
            return Err(format!(
                "`{text}` is not a JSON pointer: write `/{text}` (or `\"\"` for the whole value)"
            ));
        }
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            if c == '~' && !matches!(chars.next(), Some('0' | '1')) {
                return Err(format!(
                    "`{text}`: `~` must be followed by 0 or 1 (RFC 6901)"
                ));
            }
        }
        Ok(Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn get<'a>(&self, value: &'a Value) -> Option<&'a Value> {
        value.pointer(&self.0)
    }

    /// Moves the value out (records are taken from the body without copying them).
    pub fn take(&self, value: &mut Value) -> Option<Value> {
        value.pointer_mut(&self.0).map(Value::take)
    }
}

impl fmt::Display for JsonPointer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for JsonPointer {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for JsonPointer {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Self::parse(&String::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }
}

/// An HTTP header name (RFC 9110 token), kept in lowercase.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HeaderName(String);

impl HeaderName {
    pub fn parse(text: &str) -> Result<Self, String> {
        if is_token(text) {
            Ok(Self(text.to_ascii_lowercase()))
        } else {
            Err(format!("`{text}` is not an HTTP header name"))
        }
    }

    fn retry_after() -> Self {
        Self("retry-after".into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Serialize for HeaderName {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for HeaderName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Self::parse(&String::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }
}

fn is_token(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn non_blank(at: &JsonPath, value: &str) -> Result<(), ModelError> {
    if value.trim().is_empty() {
        Err(at.invalid("must not be empty"))
    } else {
        Ok(())
    }
}

impl Validate for ConnectorDefinition {
    fn validate_at(&self, at: &JsonPath) -> Result<(), ModelError> {
        if self.id.is_empty()
            || !self
                .id
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
        {
            return Err(at
                .key("id")
                .invalid("must be lowercase letters, digits, `_` and `-`"));
        }
        non_blank(&at.key("displayName"), &self.display_name)?;

        let settings_at = at.key("settings");
        let mut declared = HashSet::new();
        for (index, setting) in self.settings.iter().enumerate() {
            let name_at = settings_at.index(index).key("name");
            if !is_setting_name(&setting.name) {
                return Err(name_at.invalid("must be letters, digits and `_`"));
            }
            if !declared.insert(setting.name.as_str()) {
                return Err(name_at.invalid(format!("`{}` is declared twice", setting.name)));
            }
            if let Some(default) = &setting.default
                && !(default.is_string() || default.is_number() || default.is_boolean())
            {
                return Err(settings_at
                    .index(index)
                    .key("default")
                    .invalid("must be a string, number or boolean"));
            }
        }
        let settings_only = |path: &JsonPath, template: &Template| {
            check_vars(path, template, &declared, &|var| match var {
                Var::Setting(_) => None,
                _ => Some("only settings.* placeholders are allowed here"),
            })
        };

        let base_at = at.key("baseUrl");
        settings_only(&base_at, &self.base_url)?;
        let base = self.base_url.as_str();
        if self.base_url.sole_var().is_none()
            && !(base.starts_with("https://") || base.starts_with("http://"))
        {
            return Err(base_at.invalid("must start with https:// or http://"));
        }
        for (name, template) in &self.headers {
            let header_at = at.key("headers").key(name);
            if !is_token(name) {
                return Err(header_at.invalid("not an HTTP header name"));
            }
            settings_only(&header_at, template)?;
        }
        self.auth.validate_at(&at.key("auth"))?;
        self.rate_limit.validate_at(&at.key("rateLimit"))?;
        self.errors.validate_at(&at.key("errors"))?;

        let streams_at = at.key("streams");
        if self.streams.is_empty() {
            return Err(streams_at.invalid("a connector needs at least one stream"));
        }
        let mut names = HashSet::new();
        for (index, stream) in self.streams.iter().enumerate() {
            let stream_at = streams_at.index(index);
            if !names.insert(stream.name.as_str()) {
                return Err(stream_at
                    .key("name")
                    .invalid(format!("stream `{}` is declared twice", stream.name)));
            }
            validate_stream(stream, &stream_at, &declared)?;
        }
        Ok(())
    }
}

impl Validate for AuthSpec {
    fn validate_at(&self, at: &JsonPath) -> Result<(), ModelError> {
        match self.kind {
            AuthKind::ApiKey => {
                let location = self
                    .location
                    .ok_or_else(|| at.key("in").invalid("required for type `apiKey`"))?;
                let name = self
                    .name
                    .as_deref()
                    .ok_or_else(|| at.key("name").invalid("required for type `apiKey`"))?;
                non_blank(&at.key("name"), name)?;
                if location == ApiKeyLocation::Header && !is_token(name) {
                    return Err(at.key("name").invalid("not an HTTP header name"));
                }
                if location == ApiKeyLocation::Query && self.prefix.is_some() {
                    return Err(at.key("prefix").invalid("only for an api key in a header"));
                }
                Ok(())
            }
            AuthKind::None | AuthKind::Basic | AuthKind::Bearer => {
                for (name, present) in [
                    ("in", self.location.is_some()),
                    ("name", self.name.is_some()),
                    ("prefix", self.prefix.is_some()),
                ] {
                    if present {
                        return Err(at.key(name).invalid("only for type `apiKey`"));
                    }
                }
                Ok(())
            }
        }
    }
}

fn validate_stream(
    stream: &StreamSpec,
    at: &JsonPath,
    declared: &HashSet<&str>,
) -> Result<(), ModelError> {
    let name = &stream.name;
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(at
            .key("name")
            .invalid("must be letters, digits, `_` and `-`"));
    }
    let path = stream.path.as_str();
    if !(path.is_empty() || path.starts_with('/')) {
        return Err(at.key("path").invalid("must start with `/`"));
    }
    if path.contains('?') || path.contains('#') {
        return Err(at
            .key("path")
            .invalid("put query parameters in `query`, not in the path"));
    }
    for header in stream.headers.keys() {
        if !is_token(header) {
            return Err(at
                .key("headers")
                .key(header)
                .invalid("not an HTTP header name"));
        }
    }
    for param in stream.query.keys() {
        non_blank(&at.key("query").key(param), param)?;
    }
    let pagination = &stream.pagination;
    pagination.validate_at(&at.key("pagination"))?;
    stream.incremental.validate_at(&at.key("incremental"))?;

    // Which `page.*` / `cursor.*` values this stream provides.
    let provides = |var: &Var| -> Option<&'static str> {
        let style = pagination.style;
        match var {
            Var::Setting(_) => None,
            Var::PageCursor if style != PaginationStyle::Cursor => {
                Some("page.cursor needs pagination type `cursor`")
            }
            Var::PageOffset if style != PaginationStyle::Offset => {
                Some("page.offset needs pagination type `offset`")
            }
            Var::PageNumber if style != PaginationStyle::PageNumber => {
                Some("page.number needs pagination type `pageNumber`")
            }
            Var::PageLimit if pagination.page_size.is_none() => {
                Some("page.limit needs pagination.pageSize")
            }
            Var::CursorFrom | Var::CursorTo if stream.incremental.is_none() => {
                Some("cursor.* needs `incremental`")
            }
            _ => None,
        }
    };
    for (path, template) in stream.templates(at) {
        check_vars(&path, template, declared, &provides)?;
    }
    if path_has_page_vars(&stream.path) {
        return Err(at
            .key("path")
            .invalid("page.* and cursor.* placeholders belong in query or body, not the path"));
    }
    match (&stream.body, stream.method) {
        (Some(_), HttpMethod::Get) => {
            return Err(at
                .key("body")
                .invalid("a GET request has no body: use POST"));
        }
        (Some(body), HttpMethod::Post) => {
            check_body(body, &at.key("body"), declared, &provides)?;
        }
        (None, _) => {}
    }

    // A token style must be able to send its token on the next request (the URL styles
    // carry it in the URL they follow).
    if pagination.style == PaginationStyle::Cursor
        && pagination.cursor_param.is_none()
        && !stream_mentions(stream, &Var::PageCursor)
    {
        return Err(at
            .key("pagination")
            .key("cursorParam")
            .invalid("required unless the stream's query, headers or body use {{page.cursor}}"));
    }
    Ok(())
}

fn path_has_page_vars(path: &Template) -> bool {
    path.vars().any(|v| !matches!(v, Var::Setting(_)))
}

fn stream_mentions(stream: &StreamSpec, wanted: &Var) -> bool {
    let in_templates = stream
        .templates(&JsonPath::root())
        .into_iter()
        .any(|(_, t)| t.vars().any(|v| v == wanted));
    let mut in_body = false;
    if let Some(body) = &stream.body {
        walk_strings(body, &mut |text| {
            if Template::parse(text).is_ok_and(|t| t.vars().any(|v| v == wanted)) {
                in_body = true;
            }
        });
    }
    in_templates || in_body
}

fn walk_strings(value: &Value, visit: &mut dyn FnMut(&str)) {
    match value {
        Value::String(text) => visit(text),
        Value::Array(items) => items.iter().for_each(|v| walk_strings(v, visit)),
        Value::Object(members) => members.values().for_each(|v| walk_strings(v, visit)),
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

fn check_body(
    value: &Value,
    at: &JsonPath,
    declared: &HashSet<&str>,
    provides: &dyn Fn(&Var) -> Option<&'static str>,
) -> Result<(), ModelError> {
    match value {
        Value::String(text) => {
            let template = Template::parse(text).map_err(|message| at.invalid(message))?;
            check_vars(at, &template, declared, provides)
        }
        Value::Array(items) => items
            .iter()
            .enumerate()
            .try_for_each(|(i, v)| check_body(v, &at.index(i), declared, provides)),
        Value::Object(members) => members
            .iter()
            .try_for_each(|(k, v)| check_body(v, &at.key(k), declared, provides)),
        Value::Null | Value::Bool(_) | Value::Number(_) => Ok(()),
    }
}

fn check_vars(
    at: &JsonPath,
    template: &Template,
    declared: &HashSet<&str>,
    allowed: &dyn Fn(&Var) -> Option<&'static str>,
) -> Result<(), ModelError> {
    for var in template.vars() {
        if let Some(problem) = allowed(var) {
            return Err(at.invalid(format!("{{{{{var}}}}}: {problem}")));
        }
        if let Var::Setting(name) = var
            && !declared.contains(name.as_str())
        {
            return Err(at.invalid(format!(
                "{{{{{var}}}}} names no setting declared in `settings`"
            )));
        }
    }
    Ok(())
}
