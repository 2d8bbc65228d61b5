//! Classification of failures, `Retry-After` and rate-limit headers, and the backoff delays
//! they lead to; and a chaos run against the sample API where retries are re-attempts with a
//! computed delay, never a sleep.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use hub_connectors::fetch::RetryReason;
use hub_connectors::retry::MAX_QUEUE_DELAY;
use hub_connectors::sample::ChaosConfig;
use hub_connectors::{
    BackoffPolicy, ConnectorCatalog, EgressPolicy, FetchError, FetcherConfig, RetryDecision,
    SampleConfig, SampleServer, next_retry,
};
use serde_json::{Value, json};

use crate::support::*;

fn with_headers(
    status: StatusCode,
    headers: &[(&'static str, String)],
    body: Value,
) -> axum::response::Response {
    let mut response = (status, axum::Json(body)).into_response();
    for (name, value) in headers {
        response
            .headers_mut()
            .insert(*name, HeaderValue::from_str(value).unwrap());
    }
    response
}

fn epoch_in(seconds: u64) -> String {
    (SystemTime::now() + Duration::from_secs(seconds))
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string()
}

async fn flaky_server() -> std::net::SocketAddr {
    let status = |code: u16| {
        get(move || async move {
            with_headers(
                StatusCode::from_u16(code).unwrap(),
                &[],
                json!({"error": "nope"}),
            )
        })
    };
    let router = Router::new()
        .route("/s401", status(401))
        .route("/s403", status(403))
        .route("/s404", status(404))
        .route("/s410", status(410))
        .route("/s400", status(400))
        .route("/s500", status(500))
        .route("/s501", status(501))
        .route("/s502", status(502))
        .route("/s503", status(503))
        .route("/s429", status(429))
        .route(
            "/retry-seconds",
            get(|| async {
                with_headers(
                    StatusCode::TOO_MANY_REQUESTS,
                    &[("retry-after", "7".into())],
                    json!({}),
                )
            }),
        )
        .route(
            "/retry-date",
            get(|| async {
                let date = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(120));
                with_headers(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &[("retry-after", date)],
                    json!({}),
                )
            }),
        )
        .route(
            "/retry-long",
            get(|| async {
                with_headers(
                    StatusCode::TOO_MANY_REQUESTS,
                    &[("retry-after", "3600".into())],
                    json!({}),
                )
            }),
        )
        .route(
            "/limit-spent",
            get(|| async {
                with_headers(
                    StatusCode::FORBIDDEN,
                    &[
                        ("x-ratelimit-remaining", "0".into()),
                        ("x-ratelimit-reset", epoch_in(45)),
                    ],
                    json!({"message": "API rate limit exceeded"}),
                )
            }),
        )
        .route(
            "/limit-low",
            get(|| async {
                with_headers(
                    StatusCode::OK,
                    &[
                        ("x-ratelimit-limit", "5000".into()),
                        ("x-ratelimit-remaining", "0".into()),
                        ("x-ratelimit-reset", epoch_in(30)),
                    ],
                    json!({"items": [{"id": 1}]}),
                )
            }),
        )
        .route(
            "/ok-with-errors",
            get(|| async { axum::Json(json!({"data": null, "errors": [{"message": "boom"}]})) }),
        )
        .route(
            "/busy",
            get(|| async {
                with_headers(
                    StatusCode::BAD_REQUEST,
                    &[],
                    json!({"error": "busy, try again later"}),
                )
            }),
        )
        .route(
            "/empty-404",
            get(|| async {
                with_headers(
                    StatusCode::NOT_FOUND,
                    &[("x-empty", "yes".into())],
                    json!({}),
                )
            }),
        )
        .route("/not-json", get(|| async { "<html>oops</html>" }))
        .route(
            "/object",
            get(|| async { axum::Json(json!({"items": {"id": 1}})) }),
        )
        .route(
            "/big",
            get(|| async { axum::Json(json!({"items": ["x".repeat(300_000)]})) }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                axum::Json(json!({"items": []}))
            }),
        )
        .route(
            "/echo-auth",
            get(|headers: HeaderMap| async move {
                let auth = headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                axum::Json(json!({"items": [{"authorization": auth}]}))
            }),
        );
    serve(router).await
}

const STREAMS: &[&str] = &[
    "s401",
    "s403",
    "s404",
    "s410",
    "s400",
    "s500",
    "s501",
    "s502",
    "s503",
    "s429",
    "retry-seconds",
    "retry-date",
    "retry-long",
    "limit-spent",
    "limit-low",
    "ok-with-errors",
    "busy",
    "empty-404",
    "not-json",
    "object",
    "big",
    "slow",
    "echo-auth",
];

fn flaky_definition(
    addr: std::net::SocketAddr,
    auth: Value,
) -> hub_connectors::ConnectorDefinition {
    let streams: Vec<Value> = STREAMS
        .iter()
        .map(|name| json!({"name": name, "path": format!("/{name}"), "recordSelector": "/items"}))
        .collect();
    definition(json!({
        "id": "flaky",
        "displayName": "Flaky",
        "baseUrl": format!("http://{addr}"),
        "auth": auth,
        "rateLimit": {
            "limitHeader": "x-ratelimit-limit",
            "remainingHeader": "x-ratelimit-remaining",
            "resetHeader": "x-ratelimit-reset"
        },
        "errors": [
            {"statuses": [200], "bodyContains": "\"errors\"", "action": "fail"},
            {"statuses": [400], "bodyContains": "try again", "action": "retry"},
            {"statuses": [404], "header": {"name": "x-empty", "equals": "yes"}, "action": "emptyPage"}
        ],
        "streams": streams,
    }))
}

async fn fetch(
    fetcher: &hub_connectors::Fetcher,
    definition: &hub_connectors::ConnectorDefinition,
    stream: &str,
) -> Result<hub_connectors::PageResult, FetchError> {
    Pager {
        fetcher,
        definition,
        stream,
        settings: Default::default(),
        credentials: None,
        window: Default::default(),
    }
    .page(None)
    .await
}

#[tokio::test]
async fn statuses_and_rules_are_classified() {
    let addr = flaky_server().await;
    let definition = flaky_definition(addr, json!({"type": "none"}));
    let fetcher = fetcher_with(FetcherConfig {
        egress: EgressPolicy::local_sandbox(),
        max_response_bytes: 100_000,
        ..FetcherConfig::default()
    });
    let cases: &[(&str, &str, Option<u16>)] = &[
        ("s401", "auth_failed", Some(401)),
        ("s403", "auth_failed", Some(403)),
        ("s404", "not_found", Some(404)),
        ("s410", "not_found", Some(410)),
        ("s400", "http_status", Some(400)),
        ("s500", "server_error", Some(500)),
        ("s501", "http_status", Some(501)),
        ("s502", "server_error", Some(502)),
        ("s503", "server_error", Some(503)),
        ("s429", "rate_limited", Some(429)),
        ("limit-spent", "rate_limited", Some(403)),
        ("ok-with-errors", "upstream_error", Some(200)),
        ("busy", "retry_rule", Some(400)),
        ("not-json", "invalid_json", Some(200)),
        ("object", "records_not_an_array", Some(200)),
        ("big", "response_too_large", Some(200)),
    ];
    for (stream, code, status) in cases {
        let error = fetch(&fetcher, &definition, stream).await.unwrap_err();
        assert_eq!(
            (error.code(), error.status()),
            (*code, *status),
            "{stream}: {error}"
        );
        let retryable = matches!(*code, "server_error" | "rate_limited" | "retry_rule");
        assert_eq!(error.is_retryable(), retryable, "{stream}");
        assert_eq!(error.counts_against_circuit(), retryable, "{stream}");
        assert!(!error.to_string().is_empty());
    }
    let empty = fetch(&fetcher, &definition, "empty-404").await.unwrap();
    assert!(empty.records.is_empty());
    assert_eq!((empty.status, empty.next_page_token), (404, None));
}

#[tokio::test]
async fn retry_after_seconds_http_dates_and_rate_limit_resets() {
    let addr = flaky_server().await;
    let definition = flaky_definition(addr, json!({"type": "none"}));
    let fetcher = sandbox();

    let seconds = fetch(&fetcher, &definition, "retry-seconds")
        .await
        .unwrap_err();
    assert_eq!(seconds.retry_after(), Some(Duration::from_secs(7)));
    let date = fetch(&fetcher, &definition, "retry-date")
        .await
        .unwrap_err();
    let wait = date.retry_after().expect("an HTTP date is read");
    assert!(
        (Duration::from_secs(118)..=Duration::from_secs(120)).contains(&wait),
        "{wait:?}"
    );
    let spent = fetch(&fetcher, &definition, "limit-spent")
        .await
        .unwrap_err();
    let reset = spent.retry_after().expect("the reset header is read");
    assert!(
        (Duration::from_secs(43)..=Duration::from_secs(45)).contains(&reset),
        "{reset:?}"
    );

    let low = fetch(&fetcher, &definition, "limit-low").await.unwrap();
    assert_eq!(low.rate_limit.limit, Some(5000));
    assert_eq!(low.rate_limit.remaining, Some(0));
    let hold = low
        .rate_limit
        .exhausted_delay()
        .expect("a spent budget holds the next page");
    assert!(
        (Duration::from_secs(28)..=Duration::from_secs(30)).contains(&hold),
        "{hold:?}"
    );

    // What the fetcher function will do with them: a queue delay never shorter than asked,
    // a park when the queue cannot hold the wait, and the DLQ after the last attempt.
    let policy = BackoffPolicy::default();
    for (error, at_least) in [(&seconds, 7), (&date, 118), (&spent, 43)] {
        match next_retry(&policy, 1, error.retry_after(), 0.5) {
            RetryDecision::Delay(delay) => {
                assert!(delay >= Duration::from_secs(at_least) && delay <= MAX_QUEUE_DELAY)
            }
            other => panic!("expected a delay, got {other:?}"),
        }
    }
    let long = fetch(&fetcher, &definition, "retry-long")
        .await
        .unwrap_err();
    assert_eq!(
        next_retry(&policy, 2, long.retry_after(), 0.5),
        RetryDecision::Park(Duration::from_secs(3600))
    );
    assert_eq!(
        next_retry(&policy, policy.max_attempts, seconds.retry_after(), 0.5),
        RetryDecision::GiveUp
    );
}

#[tokio::test]
async fn timeouts_and_refused_connections_are_transient() {
    let addr = flaky_server().await;
    let definition = flaky_definition(addr, json!({"type": "none"}));
    let fetcher = fetcher_with(FetcherConfig {
        egress: EgressPolicy::local_sandbox(),
        request_timeout: Duration::from_millis(300),
        ..FetcherConfig::default()
    });
    let started = Instant::now();
    let error = fetch(&fetcher, &definition, "slow").await.unwrap_err();
    assert!(
        matches!(
            error,
            FetchError::Retryable {
                reason: RetryReason::Timeout,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));

    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let nowhere = flaky_definition(closed, json!({"type": "none"}));
    let error = fetch(&fetcher, &nowhere, "s401").await.unwrap_err();
    assert!(
        matches!(
            error,
            FetchError::Retryable {
                reason: RetryReason::Connection,
                status: None,
                ..
            }
        ),
        "{error:?}"
    );
}

/// The API's port is part of where it is (`http://127.0.0.1:56351`, not `http://127.0.0.1`);
/// the query, which may carry the api key, never is.
#[tokio::test]
async fn errors_name_the_url_with_its_port_and_without_its_query() {
    const KEY: &str = "key-in-the-query-123";
    let fetcher = sandbox();
    let query_key = json!({"type": "apiKey", "in": "query", "name": "api_key"});
    let fetch_with_key = |definition: hub_connectors::ConnectorDefinition, stream: &'static str| {
        let fetcher = &fetcher;
        async move {
            Pager {
                fetcher,
                definition: &definition,
                stream,
                settings: Default::default(),
                credentials: Some(api_key(KEY)),
                window: Default::default(),
            }
            .page(None)
            .await
            .unwrap_err()
        }
    };

    let addr = flaky_server().await;
    let answered = fetch_with_key(flaky_definition(addr, query_key.clone()), "s400").await;
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let refused = fetch_with_key(flaky_definition(closed, query_key), "s400").await;

    for (error, addr) in [(answered, addr), (refused, closed)] {
        let text = format!("{error}");
        assert!(
            text.contains(&format!("GET http://127.0.0.1:{}/s400", addr.port())),
            "{text}"
        );
        let everything = format!("{error} {error:?}");
        assert!(
            !everything.contains(KEY) && !everything.contains("api_key="),
            "{everything}"
        );
    }
}

#[tokio::test]
async fn credentials_are_injected_and_mismatches_are_auth_failures() {
    let addr = flaky_server().await;
    let fetcher = sandbox();
    let authorization = |page: hub_connectors::PageResult| {
        page.records[0]["authorization"]
            .as_str()
            .unwrap()
            .to_owned()
    };

    let bearer = flaky_definition(addr, json!({"type": "bearer"}));
    let oauth = credentials(json!({"type": "oauth2", "accessToken": "at-123"}));
    let page = Pager {
        fetcher: &fetcher,
        definition: &bearer,
        stream: "echo-auth",
        settings: Default::default(),
        credentials: Some(oauth),
        window: Default::default(),
    }
    .page(None)
    .await
    .unwrap();
    assert_eq!(authorization(page), "Bearer at-123");

    let basic = flaky_definition(addr, json!({"type": "basic"}));
    let user = credentials(json!({"type": "basic", "username": "ada", "password": "pw:1"}));
    let page = Pager {
        fetcher: &fetcher,
        definition: &basic,
        stream: "echo-auth",
        settings: Default::default(),
        credentials: Some(user),
        window: Default::default(),
    }
    .page(None)
    .await
    .unwrap();
    assert_eq!(authorization(page), "Basic YWRhOnB3OjE=");

    let error = Pager {
        fetcher: &fetcher,
        definition: &basic,
        stream: "echo-auth",
        settings: Default::default(),
        credentials: Some(api_key("k")),
        window: Default::default(),
    }
    .page(None)
    .await
    .unwrap_err();
    assert!(
        matches!(error, FetchError::AuthFailed { status: None, .. }),
        "{error:?}"
    );
    assert!(!format!("{error} {error:?}").contains("\"k\""));
}

#[tokio::test]
async fn sample_api_status_codes_map_like_the_real_ones() {
    let server = sample(5).await;
    let catalog = ConnectorCatalog::builtin().unwrap();
    let definition = catalog.get("sample").unwrap();
    let fetcher = sandbox();
    let pager = |key: &str| Pager {
        fetcher: &fetcher,
        definition,
        stream: "contacts",
        settings: settings(&[("baseUrl", &server.base_url())]),
        credentials: Some(api_key(key)),
        window: Default::default(),
    };
    let error = pager("wrong").page(None).await.unwrap_err();
    assert!(
        matches!(
            error,
            FetchError::AuthFailed {
                status: Some(401),
                ..
            }
        ),
        "{error:?}"
    );
    let error = pager(server.api().api_key())
        .page(Some("garbage"))
        .await
        .unwrap_err();
    assert_eq!(
        (error.code(), error.status()),
        ("upstream_error", Some(400))
    );
}

#[tokio::test]
async fn retry_after_as_an_http_date_from_the_sample_api() {
    let server = SampleServer::start(SampleConfig {
        contacts: 5,
        chaos: ChaosConfig {
            rate_limited: 1.0,
            retry_after_seconds: 30,
            retry_after_http_date: true,
            ..ChaosConfig::default()
        },
        ..SampleConfig::default()
    })
    .await
    .unwrap();
    let catalog = ConnectorCatalog::builtin().unwrap();
    let fetcher = sandbox();
    let error = Pager {
        fetcher: &fetcher,
        definition: catalog.get("sample").unwrap(),
        stream: "contacts",
        settings: settings(&[("baseUrl", &server.base_url())]),
        credentials: Some(api_key(server.api().api_key())),
        window: Default::default(),
    }
    .page(None)
    .await
    .unwrap_err();
    let wait = error.retry_after().unwrap();
    assert!(
        (Duration::from_secs(28)..=Duration::from_secs(30)).contains(&wait),
        "{wait:?}"
    );
}

/// 20 % of requests fail with 429 or 5xx; each failure becomes a re-attempt after a computed
/// delay (not slept: the queue would hold it), and every record arrives exactly once.
#[tokio::test]
async fn a_chaotic_sync_completes_with_every_record_once() {
    let server = SampleServer::start(SampleConfig {
        contacts: 2_000,
        chaos: ChaosConfig {
            rate_limited: 0.1,
            server_errors: 0.1,
            retry_after_seconds: 2,
            ..ChaosConfig::default()
        },
        ..SampleConfig::default()
    })
    .await
    .unwrap();
    let catalog = ConnectorCatalog::builtin().unwrap();
    let fetcher = sandbox();
    let pager = Pager {
        fetcher: &fetcher,
        definition: catalog.get("sample").unwrap(),
        stream: "contacts",
        settings: settings(&[("baseUrl", &server.base_url())]),
        credentials: Some(api_key(server.api().api_key())),
        window: Default::default(),
    };
    let policy = BackoffPolicy::default();
    let mut records = Vec::new();
    let mut token: Option<String> = None;
    let mut attempts_per_page: HashMap<Option<String>, u32> = HashMap::new();
    let mut delays = Vec::new();
    loop {
        let attempt = attempts_per_page.entry(token.clone()).or_insert(0);
        *attempt += 1;
        match pager.page(token.as_deref()).await {
            Ok(page) => {
                records.extend(page.records);
                match page.next_page_token {
                    Some(next) => token = Some(next),
                    None => break,
                }
            }
            Err(error) => {
                assert!(error.is_retryable(), "{error}");
                match next_retry(&policy, *attempt, error.retry_after(), rand::random()) {
                    RetryDecision::Delay(delay) => {
                        if error.code() == "rate_limited" {
                            assert!(delay >= Duration::from_secs(2), "Retry-After honoured");
                        }
                        delays.push(delay);
                    }
                    other => panic!("page {token:?} ran out of attempts: {other:?}"),
                }
            }
        }
    }
    let ids: Vec<String> = records
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();
    assert_each_once(&ids, &expected_ids("ct_", 2_000));
    let stats = server.api().stats();
    assert_eq!(
        stats.rate_limited + stats.server_errors,
        delays.len() as u64
    );
    assert!(!delays.is_empty(), "the chaos injected failures");
    assert_eq!(stats.ok, 20);
}
