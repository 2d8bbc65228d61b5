//! The sample CRM API: deterministic contacts and companies over real HTTP on loopback, with
//! every pagination style, incremental reads by `updatedAt`, and knobs for latency and
//! injected failures. It is the demo source of `hub dev`, the benchmark source and the chaos
//! source of the tests.
//!
//! Endpoints (all but `/health` need the API key: `x-api-key` header, `api_key` query
//! parameter, `Authorization: Bearer <key>` or basic auth with the key as password):
//!
//! - `GET /v1/{contacts|companies}`: `limit` (or `per_page`), `updated_since` (RFC 3339,
//!   inclusive), and one of `cursor` (default; body `nextCursor`, `hasMore`), `offset`, `page`
//!   (1-based). Every mode also answers `next` (the next page's URL) and a `Link: rel="next"`
//!   header, and `total`. Sorted by (`updatedAt`, `id`).
//! - `GET /v1/{contacts|companies}/{id}`: one record, 404 if unknown.
//! - `POST /graphql`: `{"variables": {"entity", "first", "after", "updatedSince"}}` answered in
//!   GraphQL shape (`data.items.nodes`, `pageInfo.endCursor`, `pageInfo.hasNextPage`); errors
//!   come as HTTP 200 with `errors`, as GraphQL servers do.
//! - `POST /_admin/modify` `{"entity", "count"}`: bumps `updatedAt` and changes a field of
//!   exactly `count` records; answers their ids.
//! - `PUT /_admin/chaos` (a [`ChaosConfig`]), `GET /_admin/stats`.
//!
//! Injected failures are decided by a hash of the seed and the request's sequence number, so
//! a run with the same requests in the same order sees the same failures.

pub mod data;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use base64::Engine as _;
use chrono::{DateTime, TimeZone, Utc};
use reqwest::Url;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use data::Entity;
use data::{Dataset, SortKey, Start, mix, parse_id, unit};

#[derive(Debug, Clone, PartialEq)]
pub struct SampleConfig {
    pub seed: u64,
    pub contacts: u64,
    pub companies: u64,
    pub default_page_size: u32,
    pub max_page_size: u32,
    /// Added to every data request.
    pub latency: Duration,
    pub api_key: String,
    /// `updatedAt` of the newest generated record; the others spread back over `history`.
    pub newest_update: DateTime<Utc>,
    pub history: Duration,
    pub chaos: ChaosConfig,
}

impl Default for SampleConfig {
    fn default() -> Self {
        Self {
            seed: 42,
            contacts: 1_000,
            companies: 100,
            default_page_size: 50,
            max_page_size: 1_000,
            latency: Duration::ZERO,
            api_key: "sample-api-key".into(),
            newest_update: Utc
                .with_ymd_and_hms(2024, 6, 1, 0, 0, 0)
                .single()
                .unwrap_or(DateTime::<Utc>::UNIX_EPOCH),
            history: Duration::from_secs(365 * 24 * 3600),
            chaos: ChaosConfig::default(),
        }
    }
}

/// Shares of data requests that fail on purpose (each in `[0, 1]`, summed at most 1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChaosConfig {
    /// 429 with `Retry-After`.
    #[serde(default)]
    pub rate_limited: f64,
    /// 500, 502 or 503.
    #[serde(default)]
    pub server_errors: f64,
    /// Held for `timeout_hold_ms`, then 504: the client should have given up.
    #[serde(default)]
    pub timeouts: f64,
    #[serde(default = "default_retry_after")]
    pub retry_after_seconds: u64,
    /// `Retry-After` as an HTTP date instead of seconds.
    #[serde(default)]
    pub retry_after_http_date: bool,
    #[serde(default = "default_hold")]
    pub timeout_hold_ms: u64,
}

fn default_retry_after() -> u64 {
    1
}

fn default_hold() -> u64 {
    30_000
}

impl Default for ChaosConfig {
    fn default() -> Self {
        Self {
            rate_limited: 0.0,
            server_errors: 0.0,
            timeouts: 0.0,
            retry_after_seconds: default_retry_after(),
            retry_after_http_date: false,
            timeout_hold_ms: default_hold(),
        }
    }
}

/// What the API has served.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SampleStats {
    /// Data requests (lists, single records, GraphQL), failed ones included.
    pub requests: u64,
    pub ok: u64,
    pub rate_limited: u64,
    pub server_errors: u64,
    pub timeouts: u64,
    pub unauthorized: u64,
    pub records_served: u64,
}

#[derive(Debug, Default)]
struct Counters {
    requests: AtomicU64,
    ok: AtomicU64,
    rate_limited: AtomicU64,
    server_errors: AtomicU64,
    timeouts: AtomicU64,
    unauthorized: AtomicU64,
    records_served: AtomicU64,
}

/// The result of `POST /_admin/modify`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Modification {
    pub entity: &'static str,
    pub modified: Vec<String>,
    /// The `updatedAt` of the first modified record; the others follow by a millisecond each.
    pub updated_at: String,
}

struct Inner {
    config: SampleConfig,
    chaos: RwLock<ChaosConfig>,
    contacts: RwLock<Dataset>,
    companies: RwLock<Dataset>,
    sequence: AtomicU64,
    counters: Counters,
}

/// The API (state and routes), for serving or mounting.
#[derive(Clone)]
pub struct SampleApi {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for SampleApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SampleApi")
            .field("contacts", &self.inner.config.contacts)
            .field("companies", &self.inner.config.companies)
            .finish_non_exhaustive()
    }
}

impl SampleApi {
    pub fn new(config: SampleConfig) -> Self {
        let newest_ms = config.newest_update.timestamp_millis();
        let history_ms = i64::try_from(config.history.as_millis()).unwrap_or(i64::MAX);
        let dataset = |entity, count| {
            RwLock::new(Dataset::new(
                entity,
                config.seed,
                count,
                config.companies,
                newest_ms,
                history_ms,
            ))
        };
        Self {
            inner: Arc::new(Inner {
                chaos: RwLock::new(config.chaos.clone()),
                contacts: dataset(Entity::Contacts, config.contacts),
                companies: dataset(Entity::Companies, config.companies),
                sequence: AtomicU64::new(0),
                counters: Counters::default(),
                config,
            }),
        }
    }

    pub fn router(&self) -> Router {
        Router::new()
            .route("/health", get(|| async { Json(json!({"status": "ok"})) }))
            .route("/v1/{entity}", get(list))
            .route("/v1/{entity}/{id}", get(one))
            .route("/graphql", post(graphql))
            .route("/_admin/modify", post(modify))
            .route("/_admin/chaos", put(set_chaos))
            .route("/_admin/stats", get(stats))
            .with_state(self.clone())
    }

    pub fn api_key(&self) -> &str {
        &self.inner.config.api_key
    }

    pub fn config(&self) -> &SampleConfig {
        &self.inner.config
    }

    pub fn set_chaos(&self, chaos: ChaosConfig) {
        *write(&self.inner.chaos) = chaos;
    }

    /// Changes `count` records of `entity` (see `POST /_admin/modify`).
    pub fn modify(&self, entity: Entity, count: u64) -> Modification {
        let (modified, updated_ms) = write(self.dataset(entity)).modify(count);
        Modification {
            entity: entity.as_str(),
            modified,
            updated_at: rfc3339_ms(updated_ms),
        }
    }

    pub fn stats(&self) -> SampleStats {
        let c = &self.inner.counters;
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        SampleStats {
            requests: load(&c.requests),
            ok: load(&c.ok),
            rate_limited: load(&c.rate_limited),
            server_errors: load(&c.server_errors),
            timeouts: load(&c.timeouts),
            unauthorized: load(&c.unauthorized),
            records_served: load(&c.records_served),
        }
    }

    /// The record as the API currently serves it.
    pub fn record(&self, entity: Entity, id: &str) -> Option<Value> {
        let index = parse_id(entity, id)?;
        read(self.dataset(entity)).record(index)
    }

    fn dataset(&self, entity: Entity) -> &RwLock<Dataset> {
        match entity {
            Entity::Contacts => &self.inner.contacts,
            Entity::Companies => &self.inner.companies,
        }
    }

    fn authorised(&self, headers: &HeaderMap, query_key: Option<&str>) -> bool {
        let key = self.api_key();
        let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
        if header("x-api-key") == Some(key) || query_key == Some(key) {
            return true;
        }
        match header("authorization").and_then(|v| v.split_once(' ')) {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token == key,
            Some((scheme, encoded)) if scheme.eq_ignore_ascii_case("basic") => {
                base64::engine::general_purpose::STANDARD
                    .decode(encoded.trim())
                    .ok()
                    .and_then(|bytes| String::from_utf8(bytes).ok())
                    .is_some_and(|pair| pair.split_once(':').is_some_and(|(_, p)| p == key))
            }
            _ => false,
        }
    }

    /// Latency, authentication and injected failures of a data request; `Some` is the
    /// response to send instead of the data.
    async fn gate(&self, headers: &HeaderMap, query_key: Option<&str>) -> Option<Response> {
        let counters = &self.inner.counters;
        counters.requests.fetch_add(1, Ordering::Relaxed);
        let latency = self.inner.config.latency;
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        if !self.authorised(headers, query_key) {
            counters.unauthorized.fetch_add(1, Ordering::Relaxed);
            return Some(error(StatusCode::UNAUTHORIZED, "unauthorized"));
        }
        let sequence = self.inner.sequence.fetch_add(1, Ordering::Relaxed);
        let chaos = read(&self.inner.chaos).clone();
        match decide_chaos(self.inner.config.seed, sequence, &chaos) {
            Chaos::None => None,
            Chaos::RateLimited => {
                counters.rate_limited.fetch_add(1, Ordering::Relaxed);
                let wait = Duration::from_secs(chaos.retry_after_seconds);
                let value = if chaos.retry_after_http_date {
                    httpdate::fmt_http_date(SystemTime::now() + wait)
                } else {
                    wait.as_secs().to_string()
                };
                let mut response = error(StatusCode::TOO_MANY_REQUESTS, "rate_limited");
                if let Ok(value) = HeaderValue::from_str(&value) {
                    response.headers_mut().insert(header::RETRY_AFTER, value);
                }
                Some(response)
            }
            Chaos::ServerError(status) => {
                counters.server_errors.fetch_add(1, Ordering::Relaxed);
                Some(error(status, "server_error"))
            }
            Chaos::Timeout => {
                counters.timeouts.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(chaos.timeout_hold_ms)).await;
                Some(error(StatusCode::GATEWAY_TIMEOUT, "timeout"))
            }
        }
    }

    fn served(&self, records: usize) {
        let counters = &self.inner.counters;
        counters.ok.fetch_add(1, Ordering::Relaxed);
        counters
            .records_served
            .fetch_add(records as u64, Ordering::Relaxed);
    }

    fn page_size(&self, asked: Option<u32>) -> usize {
        let config = &self.inner.config;
        asked
            .unwrap_or(config.default_page_size)
            .clamp(1, config.max_page_size.max(1)) as usize
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chaos {
    None,
    RateLimited,
    ServerError(StatusCode),
    Timeout,
}

fn decide_chaos(seed: u64, sequence: u64, chaos: &ChaosConfig) -> Chaos {
    let hash = mix(seed ^ mix(sequence ^ 0x5EED_C4A0));
    let draw = unit(hash);
    let rate_limited = chaos.rate_limited.max(0.0);
    let server_errors = rate_limited + chaos.server_errors.max(0.0);
    let timeouts = server_errors + chaos.timeouts.max(0.0);
    if draw < rate_limited {
        Chaos::RateLimited
    } else if draw < server_errors {
        let statuses = [
            StatusCode::INTERNAL_SERVER_ERROR,
            StatusCode::BAD_GATEWAY,
            StatusCode::SERVICE_UNAVAILABLE,
        ];
        Chaos::ServerError(statuses[(hash % 3) as usize])
    } else if draw < timeouts {
        Chaos::Timeout
    } else {
        Chaos::None
    }
}

// The locks guard plain data and are never held across an await: a poisoned one still holds
// consistent data.
fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|e| e.into_inner())
}

fn error(status: StatusCode, code: &str) -> Response {
    (status, Json(json!({"error": code}))).into_response()
}

fn rfc3339_ms(ms: i64) -> String {
    Utc.timestamp_millis_opt(ms)
        .single()
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// `updated_since` as epoch milliseconds; `Err` when it is not RFC 3339.
fn parse_since(text: Option<&str>) -> Result<Option<i64>, chrono::ParseError> {
    text.map(|t| DateTime::parse_from_rfc3339(t).map(|d| d.timestamp_millis()))
        .transpose()
}

fn encode_cursor(key: SortKey) -> String {
    format!("{}_{}", key.0, key.1)
}

fn decode_cursor(text: &str) -> Option<SortKey> {
    let (ms, index) = text.split_once('_')?;
    Some((ms.parse().ok()?, index.parse().ok()?))
}

#[derive(Debug, Default, Deserialize)]
struct ListParams {
    limit: Option<u32>,
    per_page: Option<u32>,
    cursor: Option<String>,
    offset: Option<u64>,
    page: Option<u64>,
    updated_since: Option<String>,
    api_key: Option<String>,
}

async fn list(
    State(api): State<SampleApi>,
    Path(entity): Path<String>,
    Query(params): Query<ListParams>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let Some(entity) = Entity::parse(&entity) else {
        return error(StatusCode::NOT_FOUND, "not_found");
    };
    if let Some(response) = api.gate(&headers, params.api_key.as_deref()).await {
        return response;
    }
    let Ok(since) = parse_since(params.updated_since.as_deref()) else {
        return error(StatusCode::BAD_REQUEST, "invalid_updated_since");
    };
    let limit = api.page_size(params.limit.or(params.per_page));
    let (start, mode) = if let Some(page) = params.page {
        if page == 0 {
            return error(StatusCode::BAD_REQUEST, "invalid_page");
        }
        (
            Start::Offset((page - 1).saturating_mul(limit as u64)),
            Mode::Page(page),
        )
    } else if let Some(offset) = params.offset {
        (Start::Offset(offset), Mode::Offset(offset))
    } else if let Some(cursor) = &params.cursor {
        match decode_cursor(cursor) {
            Some(key) => (Start::After(key), Mode::Cursor),
            None => return error(StatusCode::BAD_REQUEST, "invalid_cursor"),
        }
    } else {
        (Start::Beginning, Mode::Cursor)
    };
    let page = read(api.dataset(entity)).list(since, start, limit);
    api.served(page.records.len());

    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    let next_url = page.has_more.then(|| {
        let mut pairs: Vec<(&str, String)> = Vec::new();
        let per_page_name = if matches!(mode, Mode::Page(_)) {
            "per_page"
        } else {
            "limit"
        };
        match mode {
            Mode::Cursor => {
                if let Some(key) = page.last_key {
                    pairs.push(("cursor", encode_cursor(key)));
                }
            }
            Mode::Offset(offset) => {
                pairs.push(("offset", (offset + page.records.len() as u64).to_string()))
            }
            Mode::Page(number) => pairs.push(("page", (number + 1).to_string())),
        }
        pairs.push((per_page_name, limit.to_string()));
        if let Some(since) = &params.updated_since {
            pairs.push(("updated_since", since.clone()));
        }
        // Echoed as some real APIs do; the fetcher must not keep it in a page token.
        if let Some(key) = &params.api_key {
            pairs.push(("api_key", key.clone()));
        }
        let mut url = Url::parse(&format!("http://{host}{}", uri.path()))
            .unwrap_or_else(|_| Url::parse("http://127.0.0.1/").expect("a constant URL parses"));
        url.query_pairs_mut().extend_pairs(pairs);
        url.to_string()
    });
    let mut body = json!({
        "data": page.records,
        "total": page.total,
        "next": next_url,
    });
    match mode {
        Mode::Cursor => {
            body["nextCursor"] = match (page.has_more, page.last_key) {
                (true, Some(key)) => Value::String(encode_cursor(key)),
                _ => Value::Null,
            };
            body["hasMore"] = Value::Bool(page.has_more);
        }
        Mode::Offset(offset) => {
            body["offset"] = json!(offset);
            body["limit"] = json!(limit);
        }
        Mode::Page(number) => {
            body["page"] = json!(number);
            body["perPage"] = json!(limit);
        }
    }
    let mut response = Json(body).into_response();
    if let Some(next) = next_url
        && let Ok(value) = HeaderValue::from_str(&format!("<{next}>; rel=\"next\""))
    {
        response.headers_mut().insert(header::LINK, value);
    }
    response
}

#[derive(Debug, Clone, Copy)]
enum Mode {
    Cursor,
    Offset(u64),
    Page(u64),
}

#[derive(Debug, Default, Deserialize)]
struct KeyParam {
    api_key: Option<String>,
}

async fn one(
    State(api): State<SampleApi>,
    Path((entity, id)): Path<(String, String)>,
    Query(params): Query<KeyParam>,
    headers: HeaderMap,
) -> Response {
    let Some(entity) = Entity::parse(&entity) else {
        return error(StatusCode::NOT_FOUND, "not_found");
    };
    if let Some(response) = api.gate(&headers, params.api_key.as_deref()).await {
        return response;
    }
    match api.record(entity, &id) {
        Some(record) => {
            api.served(1);
            Json(record).into_response()
        }
        None => error(StatusCode::NOT_FOUND, "not_found"),
    }
}

#[derive(Debug, Deserialize)]
struct GraphqlRequest {
    #[serde(default)]
    variables: GraphqlVariables,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GraphqlVariables {
    entity: Option<String>,
    first: Option<u32>,
    after: Option<String>,
    updated_since: Option<String>,
}

async fn graphql(
    State(api): State<SampleApi>,
    Query(params): Query<KeyParam>,
    headers: HeaderMap,
    Json(request): Json<GraphqlRequest>,
) -> Response {
    if let Some(response) = api.gate(&headers, params.api_key.as_deref()).await {
        return response;
    }
    let graphql_error = |message: &str| {
        Json(json!({"data": null, "errors": [{"message": message}]})).into_response()
    };
    let variables = request.variables;
    let Some(entity) = variables.entity.as_deref().and_then(Entity::parse) else {
        return graphql_error("variable `entity` must be contacts or companies");
    };
    let Ok(since) = parse_since(variables.updated_since.as_deref()) else {
        return graphql_error("variable `updatedSince` must be an RFC 3339 date");
    };
    let start = match variables.after.as_deref().map(decode_cursor) {
        None => Start::Beginning,
        Some(Some(key)) => Start::After(key),
        Some(None) => return graphql_error("variable `after` is not a cursor"),
    };
    let limit = api.page_size(variables.first);
    let page = read(api.dataset(entity)).list(since, start, limit);
    api.served(page.records.len());
    Json(json!({
        "data": {
            "items": {
                "totalCount": page.total,
                "nodes": page.records,
                "pageInfo": {
                    "endCursor": page.last_key.map(encode_cursor),
                    "hasNextPage": page.has_more,
                },
            },
        },
    }))
    .into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ModifyRequest {
    entity: String,
    count: u64,
}

async fn modify(
    State(api): State<SampleApi>,
    Query(params): Query<KeyParam>,
    headers: HeaderMap,
    Json(request): Json<ModifyRequest>,
) -> Response {
    if !api.authorised(&headers, params.api_key.as_deref()) {
        return error(StatusCode::UNAUTHORIZED, "unauthorized");
    }
    let Some(entity) = Entity::parse(&request.entity) else {
        return error(StatusCode::BAD_REQUEST, "unknown_entity");
    };
    Json(api.modify(entity, request.count)).into_response()
}

async fn set_chaos(
    State(api): State<SampleApi>,
    Query(params): Query<KeyParam>,
    headers: HeaderMap,
    Json(chaos): Json<ChaosConfig>,
) -> Response {
    if !api.authorised(&headers, params.api_key.as_deref()) {
        return error(StatusCode::UNAUTHORIZED, "unauthorized");
    }
    let shares = [chaos.rate_limited, chaos.server_errors, chaos.timeouts];
    if shares.iter().any(|s| !(0.0..=1.0).contains(s)) || shares.iter().sum::<f64>() > 1.0 {
        return error(StatusCode::BAD_REQUEST, "invalid_chaos_shares");
    }
    api.set_chaos(chaos);
    StatusCode::NO_CONTENT.into_response()
}

async fn stats(
    State(api): State<SampleApi>,
    Query(params): Query<KeyParam>,
    headers: HeaderMap,
) -> Response {
    if !api.authorised(&headers, params.api_key.as_deref()) {
        return error(StatusCode::UNAUTHORIZED, "unauthorized");
    }
    Json(api.stats()).into_response()
}

/// The sample API served on a TCP listener until shut down (or dropped).
pub struct SampleServer {
    api: SampleApi,
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for SampleServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SampleServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl SampleServer {
    /// Serves on 127.0.0.1 on a free port.
    pub async fn start(config: SampleConfig) -> std::io::Result<Self> {
        Self::bind(SocketAddr::from(([127, 0, 0, 1], 0)), config).await
    }

    /// Serves on `addr` (`hub dev` passes its configured port).
    pub async fn bind(addr: SocketAddr, config: SampleConfig) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let api = SampleApi::new(config);
        let router = api.router();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let serve = axum::serve(listener, router).with_graceful_shutdown(async move {
                let _ = stopped.await;
            });
            if let Err(error) = serve.await {
                tracing::warn!(%error, "the sample API stopped");
            }
        });
        Ok(Self {
            api,
            addr,
            stop: Some(stop),
            task: Some(task),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>`: the `baseUrl` setting of the `sample` connector.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn api(&self) -> &SampleApi {
        &self.api
    }

    /// Stops accepting, lets requests in flight finish for up to `grace`, then stops.
    pub async fn shutdown(mut self, grace: Duration) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(mut task) = self.task.take()
            && tokio::time::timeout(grace, &mut task).await.is_err()
        {
            task.abort();
        }
    }
}

impl Drop for SampleServer {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chaos_shares_hold_over_a_request_sequence() {
        let chaos = ChaosConfig {
            rate_limited: 0.1,
            server_errors: 0.1,
            timeouts: 0.05,
            ..ChaosConfig::default()
        };
        let outcomes: Vec<Chaos> = (0..10_000).map(|s| decide_chaos(42, s, &chaos)).collect();
        let share = |f: fn(&Chaos) -> bool| outcomes.iter().filter(|o| f(o)).count() as f64 / 1e4;
        assert!((share(|o| *o == Chaos::RateLimited) - 0.1).abs() < 0.02);
        assert!((share(|o| matches!(o, Chaos::ServerError(_))) - 0.1).abs() < 0.02);
        assert!((share(|o| *o == Chaos::Timeout) - 0.05).abs() < 0.015);
        let again: Vec<Chaos> = (0..10_000).map(|s| decide_chaos(42, s, &chaos)).collect();
        assert_eq!(outcomes, again, "deterministic per sequence");
        assert!((0..1000).all(|s| decide_chaos(42, s, &ChaosConfig::default()) == Chaos::None));
    }
}
