//! `connectors/github.json` checked against GitHub's OpenAPI description, then run against a
//! local server that paginates the way GitHub does (Link header, `per_page`, `since`).

use std::collections::HashMap;
use std::path::Path;

use axum::Router;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use hub_connectors::definition::PaginationStyle;
use hub_connectors::template::{Template, Var};
use hub_connectors::{ConnectorCatalog, ConnectorDefinition};
use hub_core::messages::CursorWindow;
use serde_json::{Value, json};

use crate::support::*;

fn spec() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/github-rest-issues-search-pulls.trimmed.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn github() -> ConnectorDefinition {
    (**ConnectorCatalog::builtin().unwrap().get("github").unwrap()).clone()
}

fn resolve<'a>(spec: &'a Value, value: &'a Value) -> &'a Value {
    match value.get("$ref").and_then(Value::as_str) {
        Some(reference) => {
            let pointer = reference.trim_start_matches('#');
            resolve(spec, spec.pointer(pointer).unwrap_or(&Value::Null))
        }
        None => value,
    }
}

/// `/repos/{{settings.owner}}/{{settings.repo}}/issues` -> `/repos/{owner}/{repo}/issues`
fn spec_path(template: &Template) -> String {
    let mut path = template.as_str().to_owned();
    for var in template.vars() {
        if let Var::Setting(name) = var {
            path = path.replace(&format!("{{{{settings.{name}}}}}"), &format!("{{{name}}}"));
        }
    }
    path
}

#[test]
fn every_stream_matches_an_operation_of_the_openapi_description() {
    let spec = spec();
    let definition = github();
    assert_eq!(
        spec.pointer("/servers/0/url").and_then(Value::as_str),
        definition
            .setting("apiUrl")
            .and_then(|s| s.default.as_ref())
            .and_then(Value::as_str),
    );
    for stream in &definition.streams {
        let path = spec_path(&stream.path);
        let operation = spec["paths"][&path]
            .get("get")
            .unwrap_or_else(|| panic!("{}: no GET {path} in the spec", stream.name));
        let parameters: HashMap<String, &Value> = operation["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| resolve(&spec, p))
            .filter(|p| p["in"] == "query")
            .map(|p| (p["name"].as_str().unwrap().to_owned(), p))
            .collect();
        let mut sent: Vec<(&str, Option<&str>)> = stream
            .query
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str(),
                    value.vars().next().is_none().then(|| value.as_str()),
                )
            })
            .collect();
        let pagination = &stream.pagination;
        assert_eq!(
            pagination.style,
            PaginationStyle::LinkHeader,
            "{}",
            stream.name
        );
        sent.push((pagination.page_size_param.as_deref().unwrap(), None));
        if let Some(incremental) = &stream.incremental {
            sent.push((incremental.request_param.as_deref().unwrap(), None));
        }
        for (name, literal) in sent {
            let parameter = parameters.get(name).unwrap_or_else(|| {
                panic!("{}: `{name}` is not a parameter of GET {path}", stream.name)
            });
            if let (Some(literal), Some(allowed)) =
                (literal, parameter["schema"]["enum"].as_array())
            {
                assert!(
                    allowed.iter().any(|a| a == literal),
                    "{}: {name}={literal} is not one of {allowed:?}",
                    stream.name
                );
            }
        }
        // The page size stays within GitHub's maximum of 100 per page.
        assert!(pagination.page_size.unwrap() <= 100);

        let ok = &operation["responses"]["200"];
        let schema = resolve(&spec, &ok["content"]["application/json"]["schema"]);
        let list = match stream.record_selector.as_str() {
            "" => schema,
            pointer => {
                let member = pointer.trim_start_matches('/');
                resolve(&spec, &schema["properties"][member])
            }
        };
        assert_eq!(
            list["type"], "array",
            "{}: the selector must reach an array",
            stream.name
        );
        let item = resolve(&spec, &list["items"]);
        if let Some(incremental) = &stream.incremental {
            let field = incremental.cursor_field.as_str().trim_start_matches('/');
            assert_eq!(
                item["properties"][field]["format"], "date-time",
                "{}",
                stream.name
            );
        }
        if let Some(total) = &pagination.total_pointer {
            let field = total.as_str().trim_start_matches('/');
            assert_eq!(
                schema["properties"][field]["type"], "integer",
                "{}",
                stream.name
            );
        }
        if stream.record_selector.as_str().is_empty() {
            assert!(
                ok["headers"].get("Link").is_some(),
                "{}: GitHub declares the Link header",
                stream.name
            );
        }
    }
}

/// Issues with `updated_at` one hour apart, served like GitHub: `per_page`, `page`, `since`,
/// a Link header whose next URL moves to `/repositories/{id}/issues`, bearer auth.
async fn fake_github(count: usize) -> std::net::SocketAddr {
    let issues: Vec<Value> = (0..count)
        .map(|i| {
            let updated = chrono::DateTime::parse_from_rfc3339("2024-01-01T00:00:00Z").unwrap()
                + chrono::Duration::hours(i as i64);
            json!({
                "id": 1000 + i,
                "number": i + 1,
                "title": format!("Issue {i}"),
                "state": "open",
                "updated_at": updated.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            })
        })
        .collect();
    let issues = Arc::new(issues);
    let router = Router::new()
        .route("/repos/{owner}/{repo}/issues", get(list_issues))
        .route("/repositories/1/issues", get(list_issues))
        .with_state(issues);
    serve(router).await
}

async fn list_issues(
    State(issues): State<Arc<Vec<Value>>>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> axum::response::Response {
    if headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        != Some("Bearer ghp_test")
    {
        return (StatusCode::UNAUTHORIZED, "Bad credentials").into_response();
    }
    let param = |name: &str| q.get(name).map(String::as_str);
    if param("sort") != Some("updated")
        || param("direction") != Some("asc")
        || param("state") != Some("all")
    {
        return (StatusCode::UNPROCESSABLE_ENTITY, "unexpected query").into_response();
    }
    let per_page: usize = param("per_page").and_then(|p| p.parse().ok()).unwrap_or(30);
    let page: usize = param("page").and_then(|p| p.parse().ok()).unwrap_or(1);
    let since = param("since").unwrap_or_default();
    let matching: Vec<&Value> = issues
        .iter()
        .filter(|i| i["updated_at"].as_str().unwrap() >= since)
        .collect();
    let start = (page - 1) * per_page;
    let body: Vec<Value> = matching
        .iter()
        .skip(start)
        .take(per_page)
        .map(|v| (*v).clone())
        .collect();
    let mut response = axum::Json(body).into_response();
    let host = headers
        .get(header::HOST)
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    if start + per_page < matching.len() {
        let mut next = format!(
            "http://{host}/repositories/1/issues?state=all&sort=updated&direction=asc&per_page={per_page}&page={}",
            page + 1
        );
        if !since.is_empty() {
            next.push_str(&format!("&since={since}"));
        }
        let link = format!(
            "<{next}>; rel=\"next\", <http://{host}/repositories/1/issues?page=99>; rel=\"last\""
        );
        response
            .headers_mut()
            .insert(header::LINK, HeaderValue::from_str(&link).unwrap());
    }
    response
        .headers_mut()
        .insert("x-ratelimit-remaining", HeaderValue::from_static("4999"));
    response
}

#[tokio::test]
async fn issues_follow_the_link_header_incrementally() {
    let addr = fake_github(250).await;
    let definition = github();
    let fetcher = sandbox();
    let pager = |from: Option<&str>| Pager {
        fetcher: &fetcher,
        definition: &definition,
        stream: "issues",
        settings: settings(&[
            ("apiUrl", &format!("http://{addr}")),
            ("owner", "octo"),
            ("repo", "hello"),
        ]),
        credentials: Some(credentials(
            json!({"type": "oauth2", "accessToken": "ghp_test"}),
        )),
        window: CursorWindow {
            from: from.map(str::to_owned),
            to: None,
        },
    };
    let first = pager(None).page(None).await.unwrap();
    assert_eq!(first.records.len(), 100);
    assert_eq!(first.rate_limit.remaining, Some(4999));
    let token = first.next_page_token.clone().unwrap();
    assert!(
        token.contains("/repositories/1/issues") && token.contains("page=2"),
        "{token}"
    );

    let full = pager(None).all().await.unwrap();
    let numbers: Vec<u64> = full
        .records
        .iter()
        .map(|r| r["number"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, (1..=250).collect::<Vec<_>>());
    assert_eq!(full.pages, 3);
    let cursor = full.candidate.unwrap();
    assert_eq!(cursor, "2024-01-11T09:00:00.000Z");

    // Next run: `since` = cursor minus the 5 minute lookback; GitHub's `since` is inclusive.
    let from = "2024-01-11T05:00:00.000Z";
    let delta = pager(Some(from)).all().await.unwrap();
    let numbers: Vec<u64> = delta
        .records
        .iter()
        .map(|r| r["number"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, [246, 247, 248, 249, 250]);
    assert_eq!(delta.pages, 1);

    let wrong_key = Pager {
        credentials: Some(credentials(
            json!({"type": "oauth2", "accessToken": "nope"}),
        )),
        ..pager(None)
    };
    assert_eq!(
        wrong_key.page(None).await.unwrap_err().code(),
        "auth_failed"
    );
}
