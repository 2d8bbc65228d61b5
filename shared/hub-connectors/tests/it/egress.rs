//! The SSRF guard end to end: literal addresses, names that resolve to private addresses,
//! allow-lists, and redirects.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use hub_connectors::{ConnectorDefinition, EgressPolicy, FetchError, Fetcher, FetcherConfig};
use serde_json::json;

use crate::support::*;

/// A server that counts requests and reports the `x-api-key` it saw.
async fn target() -> (SocketAddr, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&hits);
    let router = Router::new().route(
        "/items",
        get(move |headers: HeaderMap| {
            let counter = Arc::clone(&counter);
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                let key = headers
                    .get("x-api-key")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                axum::Json(json!({"items": [{"key": key}]}))
            }
        }),
    );
    (serve(router).await, hits)
}

/// A server whose `/go` redirects to the URL in its `to` query parameter, and whose `/items`
/// reports the `x-api-key` it saw.
async fn redirector() -> SocketAddr {
    let router = Router::new().route("/items", get(echo_key)).route(
        "/go",
        get(
            |axum::extract::Query(q): axum::extract::Query<HashMap<String, String>>| async move {
                (
                    StatusCode::FOUND,
                    [(header::LOCATION, q.get("to").cloned().unwrap_or_default())],
                )
                    .into_response()
            },
        ),
    );
    serve(router).await
}

fn items_definition(base_url: &str, path: &str) -> ConnectorDefinition {
    definition(json!({
        "id": "guarded",
        "displayName": "Guarded",
        "baseUrl": "{{settings.baseUrl}}",
        "settings": [{"name": "baseUrl", "required": true}, {"name": "to"}],
        "auth": {"type": "apiKey", "in": "header", "name": "x-api-key"},
        "streams": [{
            "name": "items",
            "path": path,
            "query": {"to": "{{settings.to}}"},
            "recordSelector": "/items"
        }]
    }))
    .with_base(base_url)
}

trait WithBase {
    fn with_base(self, base: &str) -> Self;
}

impl WithBase for ConnectorDefinition {
    fn with_base(mut self, base: &str) -> Self {
        self.settings[0].default = Some(json!(base));
        self
    }
}

async fn get_items(
    fetcher: &Fetcher,
    definition: &ConnectorDefinition,
    to: Option<&str>,
) -> Result<hub_connectors::PageResult, FetchError> {
    let mut given = serde_json::Map::new();
    if let Some(to) = to {
        given.insert("to".into(), json!(to));
    }
    Pager {
        fetcher,
        definition,
        stream: "items",
        settings: given,
        credentials: Some(api_key("secret-key")),
        window: Default::default(),
    }
    .page(None)
    .await
}

fn with_hosts(policy: EgressPolicy, hosts: &[(&str, &str)]) -> Fetcher {
    fetcher_with(FetcherConfig {
        egress: policy,
        static_hosts: hosts
            .iter()
            .map(|(name, ip)| ((*name).to_owned(), vec![ip.parse::<IpAddr>().unwrap()]))
            .collect(),
        ..FetcherConfig::default()
    })
}

fn assert_blocked(result: Result<hub_connectors::PageResult, FetchError>, address: &str) {
    match result {
        Err(FetchError::Blocked(blocked)) => {
            assert_eq!(blocked.address.to_string(), address, "{blocked}")
        }
        other => panic!("expected a refusal of {address}, got {other:?}"),
    }
}

#[tokio::test]
async fn loopback_is_refused_without_the_allow_list() {
    let (addr, hits) = target().await;
    let definition = items_definition(&format!("http://{addr}"), "/items");
    let strict = fetcher(EgressPolicy::strict());
    let result = get_items(&strict, &definition, None).await;
    assert_blocked(result, "127.0.0.1");
    let error = get_items(&strict, &definition, None).await.unwrap_err();
    assert_eq!(error.code(), "egress_blocked");
    assert!(!error.is_retryable() && !error.counts_against_circuit());
    assert_eq!(hits.load(Ordering::SeqCst), 0, "nothing reached the server");

    let allowed = fetcher(EgressPolicy::from_allow_list("127.0.0.1/32").unwrap());
    let page = get_items(&allowed, &definition, None).await.unwrap();
    assert_eq!(page.records[0]["key"], "secret-key");
    let sandbox = fetcher(EgressPolicy::local_sandbox());
    assert!(get_items(&sandbox, &definition, None).await.is_ok());
    assert_eq!(hits.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn the_cloud_metadata_address_is_refused_even_in_the_sandbox() {
    let sandbox = fetcher(EgressPolicy::local_sandbox());
    for (base, address) in [
        ("http://169.254.169.254", "169.254.169.254"),
        ("http://[fd00:ec2::254]", "fd00:ec2::254"),
        ("http://2852039166", "169.254.169.254"),
        ("http://10.0.0.1:8080", "10.0.0.1"),
        ("http://[::ffff:192.168.0.1]", "::ffff:192.168.0.1"),
    ] {
        let definition = items_definition(base, "/latest/meta-data");
        assert_blocked(get_items(&sandbox, &definition, None).await, address);
    }
}

#[tokio::test]
async fn a_name_that_resolves_to_loopback_is_refused_unless_allowed() {
    let (addr, hits) = target().await;
    let port = addr.port();
    // Through the system resolver (`localhost` is in /etc/hosts) ...
    let strict = fetcher(EgressPolicy::strict());
    let localhost = items_definition(&format!("http://localhost:{port}"), "/items");
    match get_items(&strict, &localhost, None).await {
        Err(FetchError::Blocked(blocked)) => {
            assert_eq!(blocked.host, "localhost");
            assert!(blocked.address.is_loopback(), "{blocked}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    // ... and through a pinned table: a public-looking name pointing at 127.0.0.1.
    let sneaky = items_definition(&format!("http://api.innocent.test:{port}"), "/items");
    let pinned = with_hosts(
        EgressPolicy::strict(),
        &[("api.innocent.test", "127.0.0.1")],
    );
    assert_blocked(get_items(&pinned, &sneaky, None).await, "127.0.0.1");
    assert_eq!(hits.load(Ordering::SeqCst), 0);

    let by_name = with_hosts(
        EgressPolicy::from_allow_list("api.innocent.test").unwrap(),
        &[("api.innocent.test", "127.0.0.1")],
    );
    assert!(get_items(&by_name, &sneaky, None).await.is_ok());
    let by_wildcard = with_hosts(
        EgressPolicy::from_allow_list("*.innocent.test").unwrap(),
        &[("api.innocent.test", "127.0.0.1")],
    );
    assert!(get_items(&by_wildcard, &sneaky, None).await.is_ok());
    assert_eq!(hits.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn redirects_are_checked_at_every_hop() {
    let redirect = redirector().await;
    let (addr, hits) = target().await;
    let definition = items_definition(&format!("http://{redirect}"), "/go");
    // Only the two loopback servers' address is allowed, by CIDR, not by name.
    let policy = EgressPolicy::from_allow_list("127.0.0.1/32").unwrap();
    let fetcher = with_hosts(policy, &[("internal.test", "10.1.2.3")]);

    let metadata = "http://169.254.169.254/latest/meta-data/iam";
    assert_blocked(
        get_items(&fetcher, &definition, Some(metadata)).await,
        "169.254.169.254",
    );
    let private_name = format!("http://internal.test:{}/items", addr.port());
    assert_blocked(
        get_items(&fetcher, &definition, Some(&private_name)).await,
        "10.1.2.3",
    );
    let v6 = format!("http://[::1]:{}/items", addr.port());
    assert_blocked(get_items(&fetcher, &definition, Some(&v6)).await, "::1");
    assert_eq!(hits.load(Ordering::SeqCst), 0);

    let allowed = format!("http://127.0.0.1:{}/items", addr.port());
    let page = get_items(&fetcher, &definition, Some(&allowed))
        .await
        .unwrap();
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    assert_eq!(
        page.records[0]["key"],
        serde_json::Value::Null,
        "credentials do not follow a redirect to another origin"
    );
    let same_origin = get_items(&fetcher, &definition, Some("/items"))
        .await
        .unwrap();
    assert_eq!(
        same_origin.records[0]["key"], "secret-key",
        "a redirect within the origin keeps them"
    );
}

async fn echo_key(headers: HeaderMap) -> axum::Json<serde_json::Value> {
    let key = headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    axum::Json(json!({"items": [{"key": key}]}))
}

#[tokio::test]
async fn redirects_are_bounded() {
    let redirect = redirector().await;
    let definition = items_definition(&format!("http://{redirect}"), "/go");
    let looping = format!("http://{redirect}/go?to=/go");
    let error = get_items(
        &fetcher(EgressPolicy::local_sandbox()),
        &definition,
        Some(&looping),
    )
    .await
    .unwrap_err();
    assert_eq!(error.code(), "too_many_redirects");
}
