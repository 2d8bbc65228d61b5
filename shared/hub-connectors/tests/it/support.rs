//! Shared helpers: fetchers, servers, and a pager that follows tokens like the fetcher
//! function will (one `fetch_page` per page, the token carried between calls).

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hub_connectors::{
    ConnectorDefinition, EgressPolicy, FetchError, Fetcher, FetcherConfig, PageRequest, PageResult,
    SampleConfig, SampleServer,
};
use hub_core::messages::CursorWindow;
use hub_core::model::{Credentials, load_value};
use hub_core::ports::SystemClock;
use secrecy::SecretString;
use serde_json::{Map, Value, json};

pub fn fetcher_with(config: FetcherConfig) -> Fetcher {
    Fetcher::new(config, Arc::new(SystemClock)).expect("the client builds")
}

pub fn fetcher(policy: EgressPolicy) -> Fetcher {
    fetcher_with(FetcherConfig {
        egress: policy,
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(5),
        ..FetcherConfig::default()
    })
}

/// Loopback allowed, as in `hub dev`.
pub fn sandbox() -> Fetcher {
    fetcher(EgressPolicy::local_sandbox())
}

pub async fn sample(contacts: u64) -> SampleServer {
    SampleServer::start(SampleConfig {
        contacts,
        companies: 20,
        ..SampleConfig::default()
    })
    .await
    .expect("the sample API binds")
}

pub fn settings(pairs: &[(&str, &str)]) -> Map<String, Value> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), Value::String((*v).to_owned())))
        .collect()
}

pub fn credentials(secret: Value) -> Credentials {
    Credentials::from_secret(&SecretString::from(secret.to_string())).expect("valid credentials")
}

pub fn api_key(key: &str) -> Credentials {
    credentials(json!({"type": "api_key", "apiKey": key}))
}

pub fn definition(document: Value) -> ConnectorDefinition {
    match load_value(document) {
        Ok(definition) => definition,
        Err(error) => panic!("test definition rejected: {error}"),
    }
}

/// A definition for the sample API with one stream, for the pagination-style tests.
pub fn sample_definition(stream: Value) -> ConnectorDefinition {
    definition(json!({
        "id": "sample_variant",
        "displayName": "Sample variant",
        "baseUrl": "{{settings.baseUrl}}",
        "settings": [{"name": "baseUrl", "required": true}],
        "auth": {"type": "apiKey", "in": "header", "name": "X-Api-Key"},
        "streams": [stream],
    }))
}

pub struct Collected {
    pub records: Vec<Value>,
    pub pages: usize,
    pub tokens: Vec<String>,
    pub candidate: Option<String>,
    pub total: Option<u64>,
}

impl Collected {
    pub fn ids(&self) -> Vec<String> {
        self.records
            .iter()
            .map(|r| r["id"].as_str().expect("records have ids").to_owned())
            .collect()
    }
}

pub struct Pager<'a> {
    pub fetcher: &'a Fetcher,
    pub definition: &'a ConnectorDefinition,
    pub stream: &'a str,
    pub settings: Map<String, Value>,
    pub credentials: Option<Credentials>,
    pub window: CursorWindow,
}

impl Pager<'_> {
    pub async fn page(&self, token: Option<&str>) -> Result<PageResult, FetchError> {
        self.fetcher
            .fetch_page(&PageRequest {
                definition: self.definition,
                stream: self.stream,
                settings: &self.settings,
                credentials: self.credentials.as_ref(),
                page_token: token,
                cursor_window: &self.window,
            })
            .await
    }

    /// Every page until the last; a page token seen twice fails the test (a loop).
    pub async fn all(&self) -> Result<Collected, FetchError> {
        let mut collected = Collected {
            records: Vec::new(),
            pages: 0,
            tokens: Vec::new(),
            candidate: None,
            total: None,
        };
        let mut seen = HashSet::new();
        let mut token: Option<String> = None;
        loop {
            let page = self.page(token.as_deref()).await?;
            collected.pages += 1;
            collected.records.extend(page.records);
            collected.total = page.total.or(collected.total);
            collected.candidate = collected.candidate.max(page.cursor_candidate);
            match page.next_page_token {
                None => return Ok(collected),
                Some(next) => {
                    assert!(seen.insert(next.clone()), "token {next} came twice");
                    assert!(collected.pages < 10_000, "runaway pagination");
                    collected.tokens.push(next.clone());
                    token = Some(next);
                }
            }
        }
    }
}

/// Serves `router` on 127.0.0.1 for the rest of the test process.
pub async fn serve(router: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let addr = listener.local_addr().expect("a local address");
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    addr
}

pub fn expected_ids(prefix: &str, count: u64) -> Vec<String> {
    (0..count).map(|i| format!("{prefix}{i:09}")).collect()
}

pub fn assert_each_once(ids: &[String], expected: &[String]) {
    let distinct: HashSet<&String> = ids.iter().collect();
    assert_eq!(distinct.len(), ids.len(), "a record came twice");
    assert_eq!(ids, expected, "records missing or out of order");
}
