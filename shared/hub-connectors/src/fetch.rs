//! The connector runtime: one page of one stream per call, over one shared HTTP client.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use hub_core::messages::CursorWindow;
use hub_core::model::Credentials;
use hub_core::ports::Clock;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue, LOCATION};
use reqwest::{Method, Url};
use secrecy::ExposeSecret;
use serde_json::{Map, Value};

use crate::definition::{
    ApiKeyLocation, AuthKind, ConnectorDefinition, ErrorAction, ErrorRule, HttpMethod,
    PaginationStyle, RateLimitSpec, StreamSpec,
};
use crate::egress::{EgressBlocked, EgressPolicy, GuardedResolver, find_blocked};
use crate::incremental::{RequestWindow, cursor_candidate};
use crate::pagination::{NextPage, PageFacts, Position, next_page, without_param};
use crate::retry::{parse_reset, parse_retry_after};
use crate::template::{Template, Var, value_text};

#[derive(Debug, Clone)]
pub struct FetcherConfig {
    pub egress: EgressPolicy,
    pub connect_timeout: Duration,
    /// The whole request, body included.
    pub request_timeout: Duration,
    /// A larger body fails the page (`response_too_large`) instead of exhausting memory.
    pub max_response_bytes: usize,
    /// Redirects followed per request (each hop re-checked by the SSRF guard).
    pub max_redirects: usize,
    pub user_agent: String,
    /// Fixed name -> address table consulted before DNS (then checked like DNS answers).
    pub static_hosts: HashMap<String, Vec<IpAddr>>,
}

impl Default for FetcherConfig {
    fn default() -> Self {
        Self {
            egress: EgressPolicy::strict(),
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
            max_response_bytes: 32 * 1024 * 1024,
            max_redirects: 5,
            user_agent: concat!("integration-hub/", env!("CARGO_PKG_VERSION")).to_owned(),
            static_hosts: HashMap::new(),
        }
    }
}

/// Why a page could not be fetched, classified for the caller's retry decision.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// Worth retrying later: 429, 5xx, timeouts, connection failures, or a `retry` rule.
    #[error("{detail} (transient: {})", .reason.code())]
    Retryable {
        reason: RetryReason,
        status: Option<u16>,
        /// What the server asked for (`Retry-After`, or the rate-limit reset).
        retry_after: Option<Duration>,
        detail: String,
    },
    /// The credentials are refused or do not fit the connector: re-authorise the connection.
    #[error("{detail} (credentials refused)")]
    AuthFailed { status: Option<u16>, detail: String },
    #[error("{detail} (not found)")]
    NotFound { status: u16, detail: String },
    /// Retrying the same request cannot help (bad definition or settings, 4xx, bad body).
    #[error("{detail}")]
    Permanent {
        code: &'static str,
        status: Option<u16>,
        detail: String,
    },
    /// Refused by the SSRF guard.
    #[error(transparent)]
    Blocked(EgressBlocked),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryReason {
    RateLimited,
    ServerError,
    Timeout,
    Connection,
    /// A `retry` rule of the definition matched.
    Rule,
}

impl RetryReason {
    pub fn code(self) -> &'static str {
        match self {
            Self::RateLimited => "rate_limited",
            Self::ServerError => "server_error",
            Self::Timeout => "timeout",
            Self::Connection => "connection_failed",
            Self::Rule => "retry_rule",
        }
    }
}

impl FetchError {
    /// Stable snake_case code for logs, metrics and execution errors.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Retryable { reason, .. } => reason.code(),
            Self::AuthFailed { .. } => "auth_failed",
            Self::NotFound { .. } => "not_found",
            Self::Permanent { code, .. } => code,
            Self::Blocked(_) => "egress_blocked",
        }
    }

    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Retryable { .. })
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Retryable { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Retryable { status, .. }
            | Self::AuthFailed { status, .. }
            | Self::Permanent { status, .. } => *status,
            Self::NotFound { status, .. } => Some(*status),
            Self::Blocked(_) => None,
        }
    }

    /// Whether the failure says the upstream is unhealthy (what the circuit breaker counts).
    /// Client-side problems (credentials, definition, SSRF) do not open the circuit.
    pub fn counts_against_circuit(&self) -> bool {
        self.is_retryable()
    }

    fn permanent(code: &'static str, detail: impl Into<String>) -> Self {
        Self::Permanent {
            code,
            status: None,
            detail: detail.into(),
        }
    }
}

/// What to fetch: one page of `stream`.
#[derive(Debug, Clone, Copy)]
pub struct PageRequest<'a> {
    pub definition: &'a ConnectorDefinition,
    pub stream: &'a str,
    /// The tenant integration's settings (defaults of the definition fill the gaps).
    pub settings: &'a Map<String, Value>,
    /// The connection's secret content; `None` for connectors without auth.
    pub credentials: Option<&'a Credentials>,
    /// `None` for the first page, else the previous page's `next_page_token`.
    pub page_token: Option<&'a str>,
    /// Used when the stream is incremental; ignored otherwise.
    pub cursor_window: &'a CursorWindow,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PageResult {
    pub records: Vec<Value>,
    /// `None` when this was the last page.
    pub next_page_token: Option<String>,
    /// The largest cursor seen on this page (normalised, capped at the window's `to`).
    pub cursor_candidate: Option<String>,
    /// The total number of records, when the API says.
    pub total: Option<u64>,
    pub rate_limit: RateLimitInfo,
    pub status: u16,
}

/// The API's rate-limit headers, as the definition's `rateLimit` names them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateLimitInfo {
    pub limit: Option<u64>,
    pub remaining: Option<u64>,
    pub reset_after: Option<Duration>,
}

impl RateLimitInfo {
    /// How long to hold the next request: the reset when the budget is spent.
    pub fn exhausted_delay(&self) -> Option<Duration> {
        match self.remaining {
            Some(0) => Some(self.reset_after.unwrap_or(Duration::from_secs(60))),
            _ => None,
        }
    }
}

/// Holds the one HTTP client of a process (connection pool, TLS sessions): build it once,
/// outside the handler, and share it.
#[derive(Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    egress: Arc<EgressPolicy>,
    clock: Arc<dyn Clock>,
    max_response_bytes: usize,
    max_redirects: usize,
}

impl fmt::Debug for Fetcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fetcher")
            .field("egress", &self.egress)
            .finish_non_exhaustive()
    }
}

impl Fetcher {
    pub fn new(config: FetcherConfig, clock: Arc<dyn Clock>) -> Result<Self, FetchError> {
        let egress = Arc::new(config.egress);
        let resolver = GuardedResolver {
            policy: Arc::clone(&egress),
            static_hosts: Arc::new(
                config
                    .static_hosts
                    .into_iter()
                    .map(|(host, ips)| (host.to_ascii_lowercase(), ips))
                    .collect(),
            ),
        };
        let client = reqwest::Client::builder()
            .dns_resolver(resolver)
            // A proxy would resolve names itself, out of the guard's sight.
            .no_proxy()
            // Redirects are followed here, hop by hop, so each target is checked and
            // credentials never follow a redirect to another origin.
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_keepalive(Duration::from_secs(60))
            .user_agent(config.user_agent)
            .build()
            .map_err(|e| {
                FetchError::permanent("client_build", format!("cannot build the HTTP client: {e}"))
            })?;
        Ok(Self {
            client,
            egress,
            clock,
            max_response_bytes: config.max_response_bytes,
            max_redirects: config.max_redirects,
        })
    }

    pub fn egress(&self) -> &EgressPolicy {
        &self.egress
    }

    /// Fetches one page. Never sleeps and never retries: a [`FetchError::Retryable`] tells the
    /// caller to re-enqueue (see [`crate::retry::next_retry`]).
    pub async fn fetch_page(&self, request: &PageRequest<'_>) -> Result<PageResult, FetchError> {
        let definition = request.definition;
        let stream = definition.stream(request.stream).ok_or_else(|| {
            FetchError::permanent(
                "unknown_stream",
                format!(
                    "connector `{}` has no stream `{}`",
                    definition.id, request.stream
                ),
            )
        })?;
        let settings = effective_settings(definition, request.settings)?;
        let pagination = &stream.pagination;
        let position = Position::from_token(pagination, request.page_token).map_err(|why| {
            FetchError::permanent("invalid_page_token", format!("page token refused: {why}"))
        })?;
        let window = match &stream.incremental {
            Some(incremental) => RequestWindow::new(
                incremental,
                request.cursor_window.from.as_deref(),
                request.cursor_window.to.as_deref(),
            )
            .map_err(|invalid| {
                FetchError::permanent(
                    "invalid_cursor",
                    format!(
                        "the cursor window's `{}` does not parse as a {:?} cursor",
                        invalid.bound, incremental.cursor_type
                    ),
                )
            })?,
            None => RequestWindow::default(),
        };
        let vars = Vars {
            settings: &settings,
            position: &position,
            page_size: pagination.page_size,
            window: &window,
        };
        let base = render_base_url(&definition.base_url, &vars)?;
        let url = match &position {
            Position::Url(url) => url.clone(),
            _ => first_url(&base, stream, &vars)?,
        };
        let mut headers = HeaderMap::new();
        for (name, template) in definition.headers.iter().chain(&stream.headers) {
            if let Some(value) = render_text(template, &vars)? {
                let value = HeaderValue::from_str(&value).map_err(|_| {
                    FetchError::permanent(
                        "invalid_header",
                        format!("header `{name}` renders to a value HTTP does not allow"),
                    )
                })?;
                let name = reqwest::header::HeaderName::from_bytes(name.as_bytes())
                    .map_err(|_| FetchError::permanent("invalid_header", format!("`{name}`")))?;
                headers.insert(name, value);
            }
        }
        let body = match (&stream.body, stream.method) {
            (Some(body), HttpMethod::Post) => Some(render_body(body, &vars)?),
            _ => None,
        };
        let method = stream_method(stream);
        let auth = Auth::new(definition, request.credentials)?;

        let response = self
            .send(Outgoing {
                base: &base,
                url,
                method,
                headers,
                body,
                auth: &auth,
            })
            .await?;
        self.read_page(definition, stream, &position, &window, &auth, response)
            .await
    }

    /// Sends the request, following redirects by hand (each target SSRF-checked; credentials
    /// only to the base URL's origin).
    async fn send(&self, outgoing: Outgoing<'_>) -> Result<reqwest::Response, FetchError> {
        let Outgoing {
            base,
            mut url,
            mut method,
            headers,
            mut body,
            auth,
        } = outgoing;
        let mut hops = 0;
        loop {
            if !matches!(url.scheme(), "http" | "https") {
                return Err(FetchError::permanent(
                    "unsupported_scheme",
                    format!("refusing to call a `{}` URL", url.scheme()),
                ));
            }
            self.egress.check_url(&url).map_err(FetchError::Blocked)?;
            let same_origin = url.origin() == base.origin();
            let mut target = url.clone();
            let mut request_headers = headers.clone();
            if same_origin {
                auth.apply(&mut target, &mut request_headers);
            }
            request_headers
                .entry(reqwest::header::ACCEPT)
                .or_insert(HeaderValue::from_static("application/json"));
            let mut builder = self
                .client
                .request(method.clone(), target)
                .headers(request_headers);
            if let Some(body) = &body {
                builder = builder.json(body);
            }
            let response = builder
                .send()
                .await
                .map_err(|e| transport_error(e, &method, &url))?;
            let status = response.status();
            if !status.is_redirection() {
                return Ok(response);
            }
            let Some(location) = response
                .headers()
                .get(LOCATION)
                .and_then(|l| l.to_str().ok())
                .and_then(|l| url.join(l).ok())
            else {
                return Ok(response);
            };
            hops += 1;
            if hops > self.max_redirects {
                return Err(FetchError::Permanent {
                    code: "too_many_redirects",
                    status: Some(status.as_u16()),
                    detail: format!(
                        "{} redirected more than {} times",
                        describe(&method, &url),
                        self.max_redirects
                    ),
                });
            }
            if status.as_u16() == 303
                || (method == Method::POST && matches!(status.as_u16(), 301 | 302))
            {
                method = Method::GET;
                body = None;
            }
            url = location;
        }
    }

    async fn read_page(
        &self,
        definition: &ConnectorDefinition,
        stream: &StreamSpec,
        position: &Position,
        window: &RequestWindow,
        auth: &Auth<'_>,
        mut response: reqwest::Response,
    ) -> Result<PageResult, FetchError> {
        let status = response.status().as_u16();
        let response_url = response.url().clone();
        let what = describe(&stream_method(stream), &response_url);
        let now = SystemTime::from(self.clock.now());
        let headers = std::mem::take(response.headers_mut());
        let rate_limit = read_rate_limit(&definition.rate_limit, &headers, now);
        let retry_after = header_text(&headers, definition.rate_limit.retry_after_header.as_str())
            .and_then(|v| parse_retry_after(v, now))
            .or_else(|| rate_limit.exhausted_delay());
        let bytes = self.read_body(response, &what).await?;
        let detail = |text: &str| format!("{what} answered HTTP {status}{text}");

        if let Some(rule) = matching_rule(&definition.errors, status, &headers, &bytes) {
            let detail = detail(": matched an error rule of the connector");
            return match rule.action {
                ErrorAction::Retry => Err(FetchError::Retryable {
                    reason: RetryReason::Rule,
                    status: Some(status),
                    retry_after,
                    detail,
                }),
                ErrorAction::AuthFailed => Err(FetchError::AuthFailed {
                    status: Some(status),
                    detail,
                }),
                ErrorAction::NotFound => Err(FetchError::NotFound { status, detail }),
                ErrorAction::Fail => Err(FetchError::Permanent {
                    code: "upstream_error",
                    status: Some(status),
                    detail,
                }),
                ErrorAction::EmptyPage => Ok(PageResult {
                    records: Vec::new(),
                    next_page_token: None,
                    cursor_candidate: None,
                    total: None,
                    rate_limit,
                    status,
                }),
            };
        }
        if !(200..300).contains(&status) {
            return Err(classify_status(
                status,
                retry_after,
                &rate_limit,
                detail(""),
            ));
        }

        let mut body: Value = if bytes.iter().all(u8::is_ascii_whitespace) {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).map_err(|e| FetchError::Permanent {
                code: "invalid_json",
                status: Some(status),
                detail: format!("{what} answered with a body that is not JSON: {e}"),
            })?
        };
        drop(bytes);
        let pagination = &stream.pagination;
        let total = pagination
            .total_pointer
            .as_ref()
            .and_then(|p| p.get(&body))
            .and_then(|v| v.as_u64().or_else(|| v.as_str()?.trim().parse().ok()));
        let record_count = match stream.record_selector.get(&body) {
            None | Some(Value::Null) => 0,
            Some(Value::Array(items)) => items.len(),
            Some(_) => {
                return Err(FetchError::Permanent {
                    code: "records_not_an_array",
                    status: Some(status),
                    detail: format!(
                        "{what}: the record selector `{}` does not point to an array",
                        stream.record_selector
                    ),
                });
            }
        };
        let link_headers: Vec<&str> = headers
            .get_all(reqwest::header::LINK)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        let facts = PageFacts {
            body: &body,
            link_headers,
            response_url: &response_url,
            record_count,
            total,
        };
        let next_page_token = match next_page(pagination, position, &facts, auth.query_param()) {
            NextPage::Done => None,
            NextPage::Token(token) => Some(token),
            NextPage::Stuck => {
                return Err(FetchError::Permanent {
                    code: "pagination_stuck",
                    status: Some(status),
                    detail: format!("{what}: the API named this same page as the next one"),
                });
            }
        };
        let records = match stream.record_selector.take(&mut body) {
            Some(Value::Array(items)) => items,
            _ => Vec::new(),
        };
        let cursor_candidate = stream
            .incremental
            .as_ref()
            .and_then(|inc| cursor_candidate(inc, &records, window.upper.as_ref()));
        Ok(PageResult {
            records,
            next_page_token,
            cursor_candidate,
            total,
            rate_limit,
            status,
        })
    }

    async fn read_body(
        &self,
        mut response: reqwest::Response,
        what: &str,
    ) -> Result<Vec<u8>, FetchError> {
        let limit = self.max_response_bytes;
        let status = response.status().as_u16();
        let too_large = || FetchError::Permanent {
            code: "response_too_large",
            status: Some(status),
            detail: format!("{what}: the response is larger than {limit} bytes"),
        };
        if response.content_length().is_some_and(|n| n > limit as u64) {
            return Err(too_large());
        }
        let mut bytes = Vec::with_capacity(
            response
                .content_length()
                .map_or(16 * 1024, |n| n as usize)
                .min(limit),
        );
        loop {
            let chunk = response
                .chunk()
                .await
                .map_err(|e| transport_error(e, &Method::GET, response.url()))?;
            let Some(chunk) = chunk else {
                break;
            };
            if bytes.len() + chunk.len() > limit {
                return Err(too_large());
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(bytes)
    }
}

fn stream_method(stream: &StreamSpec) -> Method {
    match stream.method {
        HttpMethod::Get => Method::GET,
        HttpMethod::Post => Method::POST,
    }
}

struct Outgoing<'a> {
    base: &'a Url,
    url: Url,
    method: Method,
    headers: HeaderMap,
    body: Option<Value>,
    auth: &'a Auth<'a>,
}

/// The default classification of a non-2xx status no rule matched.
fn classify_status(
    status: u16,
    retry_after: Option<Duration>,
    rate_limit: &RateLimitInfo,
    detail: String,
) -> FetchError {
    let retryable = |reason| FetchError::Retryable {
        reason,
        status: Some(status),
        retry_after,
        detail: detail.clone(),
    };
    match status {
        401 => FetchError::AuthFailed {
            status: Some(status),
            detail,
        },
        // GitHub and others answer 403 when the rate limit is spent.
        403 if rate_limit.remaining == Some(0) || retry_after.is_some() => {
            retryable(RetryReason::RateLimited)
        }
        403 => FetchError::AuthFailed {
            status: Some(status),
            detail,
        },
        404 | 410 => FetchError::NotFound { status, detail },
        429 => retryable(RetryReason::RateLimited),
        408 | 425 => retryable(RetryReason::Timeout),
        // 501 and 505 say the server will never do it.
        500..=599 if status != 501 && status != 505 => retryable(RetryReason::ServerError),
        _ => FetchError::Permanent {
            code: "http_status",
            status: Some(status),
            detail,
        },
    }
}

fn transport_error(error: reqwest::Error, method: &Method, url: &Url) -> FetchError {
    if let Some(blocked) = find_blocked(&error) {
        return FetchError::Blocked(blocked.clone());
    }
    let what = describe(method, url);
    // `without_url`: a URL may carry an api key in its query.
    let error = error.without_url();
    let detail = format!("{what}: {}", error_chain(&error));
    if error.is_timeout() {
        FetchError::Retryable {
            reason: RetryReason::Timeout,
            status: None,
            retry_after: None,
            detail,
        }
    } else if error.is_builder() {
        FetchError::permanent("invalid_request", detail)
    } else {
        FetchError::Retryable {
            reason: RetryReason::Connection,
            status: None,
            retry_after: None,
            detail,
        }
    }
}

fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        let inner_text = inner.to_string();
        if !text.contains(&inner_text) {
            text.push_str(": ");
            text.push_str(&inner_text);
        }
        source = inner.source();
    }
    text
}

/// `GET scheme://host:port/path`, never the query (it may hold a key).
fn describe(method: &Method, url: &Url) -> String {
    format!("{method} {}", redact(url))
}

/// The URL without what may be secret: the user name and password, the query and the
/// fragment. The port stays (`Url::port` is `None` for the scheme's default): APIs on other
/// ports, a local one above all, are told apart by it.
fn redact(url: &Url) -> String {
    let port = url
        .port()
        .map(|port| format!(":{port}"))
        .unwrap_or_default();
    format!(
        "{}://{}{port}{}",
        url.scheme(),
        url.host_str().unwrap_or_default(),
        url.path()
    )
}

fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn read_rate_limit(spec: &RateLimitSpec, headers: &HeaderMap, now: SystemTime) -> RateLimitInfo {
    let number = |name: &Option<crate::definition::HeaderName>| {
        name.as_ref()
            .and_then(|n| header_text(headers, n.as_str()))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|v| v.is_finite() && *v >= 0.0)
            .map(|v| v as u64)
    };
    RateLimitInfo {
        limit: number(&spec.limit_header),
        remaining: number(&spec.remaining_header),
        reset_after: spec
            .reset_header
            .as_ref()
            .and_then(|n| header_text(headers, n.as_str()))
            .and_then(|v| parse_reset(v, spec.reset_format, now)),
    }
}

fn matching_rule<'a>(
    rules: &'a [ErrorRule],
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
) -> Option<&'a ErrorRule> {
    rules.iter().find(|rule| {
        let status_ok = if rule.statuses.is_empty() {
            status >= 400
        } else {
            rule.statuses.contains(&status)
        };
        status_ok
            && rule
                .header
                .as_ref()
                .is_none_or(|h| header_text(headers, h.name.as_str()) == Some(h.equals.as_str()))
            && rule
                .body_contains
                .as_ref()
                .is_none_or(|needle| contains(body, needle.as_bytes()))
    })
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

/// The settings with the definition's defaults, and required ones checked.
fn effective_settings(
    definition: &ConnectorDefinition,
    given: &Map<String, Value>,
) -> Result<Map<String, Value>, FetchError> {
    let mut settings = given.clone();
    for spec in &definition.settings {
        let present = settings.get(&spec.name).is_some_and(|v| !v.is_null());
        if present {
            continue;
        }
        match &spec.default {
            Some(default) => {
                settings.insert(spec.name.clone(), default.clone());
            }
            None if spec.required => {
                return Err(FetchError::permanent(
                    "missing_setting",
                    format!(
                        "connector `{}` needs the setting `{}`",
                        definition.id, spec.name
                    ),
                ));
            }
            None => {}
        }
    }
    Ok(settings)
}

struct Vars<'a> {
    settings: &'a Map<String, Value>,
    position: &'a Position,
    page_size: Option<u32>,
    window: &'a RequestWindow,
}

impl Vars<'_> {
    fn lookup(&self, var: &Var) -> Option<Value> {
        match var {
            Var::Setting(name) => self.settings.get(name).cloned(),
            Var::PageCursor => match self.position {
                Position::Cursor(cursor) => Some(Value::String(cursor.clone())),
                _ => None,
            },
            Var::PageOffset => match self.position {
                Position::Offset(offset) => Some(Value::from(*offset)),
                _ => None,
            },
            Var::PageNumber => match self.position {
                Position::Page(page) => Some(Value::from(*page)),
                _ => None,
            },
            Var::PageLimit => self.page_size.map(Value::from),
            Var::CursorFrom => self.window.from.clone(),
            Var::CursorTo => self.window.to.clone(),
        }
    }
}

fn template_error(code: &'static str, detail: String) -> FetchError {
    FetchError::permanent(code, detail)
}

/// The base URL: a placeholder that is the whole URL is taken as is; one inside the URL may
/// only hold URL-safe text, so a setting cannot move the request to another host or path.
fn render_base_url(template: &Template, vars: &Vars<'_>) -> Result<Url, FetchError> {
    let rendered = if let Some(var) = template.sole_var() {
        vars.lookup(var).as_ref().and_then(value_text)
    } else {
        template
            .render_with(&|v| vars.lookup(v), &mut |var, text| {
                if !text.is_empty()
                    && text
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-._~".contains(c))
                {
                    Ok(text.to_owned())
                } else {
                    Err(format!(
                        "{{{{{var}}}}} must be letters, digits, `-`, `.`, `_` or `~` inside the base URL"
                    ))
                }
            })
            .map_err(|detail| template_error("invalid_setting", detail))?
    };
    let rendered = rendered.ok_or_else(|| {
        template_error(
            "missing_setting",
            format!(
                "the base URL `{}` needs a setting that is not set",
                template.as_str()
            ),
        )
    })?;
    let url = Url::parse(rendered.trim_end_matches('/'))
        .map_err(|e| template_error("invalid_url", format!("the base URL does not parse: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(template_error(
            "invalid_url",
            "the base URL must be an http(s) URL with a host".into(),
        ));
    }
    Ok(url)
}

fn render_text(template: &Template, vars: &Vars<'_>) -> Result<Option<String>, FetchError> {
    template
        .render_with(&|v| vars.lookup(v), &mut |_, text| Ok(text.to_owned()))
        .map_err(|detail| template_error("invalid_template", detail))
}

/// The URL of a page built from the stream (everything but a followed next URL).
fn first_url(base: &Url, stream: &StreamSpec, vars: &Vars<'_>) -> Result<Url, FetchError> {
    let path = stream
        .path
        .render_with(&|v| vars.lookup(v), &mut |_, text| Ok(encode_segment(text)))
        .map_err(|detail| template_error("invalid_template", detail))?
        .ok_or_else(|| {
            template_error(
                "missing_setting",
                format!(
                    "the path `{}` needs a setting that is not set",
                    stream.path.as_str()
                ),
            )
        })?;
    let mut url =
        Url::parse(&format!("{}{path}", base.as_str().trim_end_matches('/'))).map_err(|e| {
            template_error("invalid_url", format!("the stream URL does not parse: {e}"))
        })?;
    let mut pairs: Vec<(String, String)> = Vec::new();
    for (name, template) in &stream.query {
        if let Some(value) = render_text(template, vars)? {
            pairs.push((name.clone(), value));
        }
    }
    let pagination = &stream.pagination;
    let mut param = |name: &Option<String>, value: Option<String>| {
        if let (Some(name), Some(value)) = (name, value) {
            pairs.push((name.clone(), value));
        }
    };
    match vars.position {
        Position::Cursor(cursor) => param(&pagination.cursor_param, Some(cursor.clone())),
        Position::Offset(offset) => param(&pagination.offset_param, Some(offset.to_string())),
        Position::Page(page) => param(&pagination.page_param, Some(page.to_string())),
        Position::First | Position::Url(_) => {}
    }
    if pagination.style != PaginationStyle::None {
        param(
            &pagination.page_size_param,
            pagination.page_size.map(|s| s.to_string()),
        );
    }
    if let Some(incremental) = &stream.incremental {
        param(
            &incremental.request_param,
            vars.window.from.as_ref().and_then(value_text),
        );
    }
    if !pairs.is_empty() {
        url.query_pairs_mut().extend_pairs(pairs);
    }
    Ok(url)
}

/// Percent-encodes everything but RFC 3986 unreserved characters, so a value stays one path
/// segment (`a/b` cannot climb to another resource).
fn encode_segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn render_body(value: &Value, vars: &Vars<'_>) -> Result<Value, FetchError> {
    Ok(match value {
        Value::String(text) => {
            let template = Template::parse(text)
                .map_err(|detail| template_error("invalid_template", detail))?;
            match template.sole_var() {
                Some(var) => vars.lookup(var).unwrap_or(Value::Null),
                None => Value::String(
                    template
                        .render_with(
                            &|v| Some(vars.lookup(v).unwrap_or(Value::String(String::new()))),
                            &mut |_, text| Ok(text.to_owned()),
                        )
                        .map_err(|detail| template_error("invalid_template", detail))?
                        .unwrap_or_default(),
                ),
            }
        }
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| render_body(v, vars))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(members) => Value::Object(
            members
                .iter()
                .map(|(k, v)| Ok((k.clone(), render_body(v, vars)?)))
                .collect::<Result<_, FetchError>>()?,
        ),
        other => other.clone(),
    })
}

/// The credentials of one request, matched to the definition's auth kind.
enum Auth<'a> {
    None,
    Header(reqwest::header::HeaderName, HeaderValue),
    Query { name: &'a str, value: String },
}

impl<'a> Auth<'a> {
    fn new(
        definition: &'a ConnectorDefinition,
        credentials: Option<&Credentials>,
    ) -> Result<Self, FetchError> {
        let spec = &definition.auth;
        let mismatch = |expected: &str| FetchError::AuthFailed {
            status: None,
            detail: format!(
                "connector `{}` authenticates with {expected}; the connection's secret holds {}",
                definition.id,
                credentials.map_or("nothing".to_owned(), |c| format!(
                    "{:?} credentials",
                    c.auth_type()
                ))
            ),
        };
        let header = |text: String| {
            let mut value = HeaderValue::from_str(&text).map_err(|_| FetchError::AuthFailed {
                status: None,
                detail: "the secret holds characters an HTTP header cannot carry".into(),
            })?;
            value.set_sensitive(true);
            Ok::<_, FetchError>(value)
        };
        match spec.kind {
            AuthKind::None => Ok(Self::None),
            AuthKind::ApiKey => {
                let Some(Credentials::ApiKey(key)) = credentials else {
                    return Err(mismatch("an api key"));
                };
                let key = key.api_key.expose_secret();
                let name = spec.name.as_deref().unwrap_or_default();
                match spec.location {
                    Some(ApiKeyLocation::Query) => Ok(Self::Query {
                        name,
                        value: key.to_owned(),
                    }),
                    Some(ApiKeyLocation::Header) | None => {
                        let prefix = spec.prefix.as_deref().unwrap_or_default();
                        let name = reqwest::header::HeaderName::from_bytes(name.as_bytes())
                            .map_err(|_| {
                                FetchError::permanent(
                                    "invalid_header",
                                    format!("`{name}` is not a header name"),
                                )
                            })?;
                        Ok(Self::Header(name, header(format!("{prefix}{key}"))?))
                    }
                }
            }
            AuthKind::Basic => {
                let Some(Credentials::Basic(basic)) = credentials else {
                    return Err(mismatch("basic credentials"));
                };
                let pair = format!("{}:{}", basic.username, basic.password.expose_secret());
                let encoded = base64::engine::general_purpose::STANDARD.encode(pair);
                Ok(Self::Header(
                    AUTHORIZATION,
                    header(format!("Basic {encoded}"))?,
                ))
            }
            AuthKind::Bearer => {
                let token = match credentials {
                    Some(Credentials::OAuth2(oauth)) => oauth
                        .access_token
                        .as_ref()
                        .map(|t| t.expose_secret().to_owned()),
                    Some(Credentials::ApiKey(key)) => Some(key.api_key.expose_secret().to_owned()),
                    _ => None,
                };
                let token = token.ok_or_else(|| mismatch("a bearer token"))?;
                Ok(Self::Header(
                    AUTHORIZATION,
                    header(format!("Bearer {token}"))?,
                ))
            }
        }
    }

    fn apply(&self, url: &mut Url, headers: &mut HeaderMap) {
        match self {
            Self::None => {}
            Self::Header(name, value) => {
                headers.insert(name.clone(), value.clone());
            }
            Self::Query { name, value } => {
                *url = without_param(url.clone(), Some(name));
                url.query_pairs_mut().append_pair(name, value);
            }
        }
    }

    /// The query parameter that carries the key, stripped from URL tokens.
    fn query_param(&self) -> Option<&str> {
        match self {
            Self::Query { name, .. } => Some(name),
            Self::None | Self::Header(..) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_redacted_url_keeps_its_port_and_drops_what_may_be_secret() {
        let cases = [
            (
                "https://ada:pw@api.example.com:8443/v1/contacts?api_key=k#top",
                "https://api.example.com:8443/v1/contacts",
            ),
            (
                "http://127.0.0.1:56351/v1/contacts",
                "http://127.0.0.1:56351/v1/contacts",
            ),
            // The scheme's default port is not written out.
            (
                "https://api.example.com:443/v1",
                "https://api.example.com/v1",
            ),
            ("http://[::1]:8080/x?token=t", "http://[::1]:8080/x"),
        ];
        for (url, redacted) in cases {
            assert_eq!(redact(&Url::parse(url).unwrap()), redacted, "{url}");
        }
    }
}
