//! Each pagination style end to end against the sample API: every record once, none missing,
//! and the number of requests each stop condition implies.

use hub_connectors::ConnectorCatalog;
use hub_connectors::fetch::FetchError;
use serde_json::{Value, json};

use crate::support::*;

const COUNT: u64 = 237;

async fn run(stream: Value) -> (Collected, u64) {
    let server = sample(COUNT).await;
    let definition = sample_definition(stream);
    let fetcher = sandbox();
    let pager = Pager {
        fetcher: &fetcher,
        definition: &definition,
        stream: definition.streams[0].name.as_str(),
        settings: settings(&[("baseUrl", &server.base_url())]),
        credentials: Some(api_key(server.api().api_key())),
        window: Default::default(),
    };
    let collected = pager.all().await.expect("every page fetches");
    (collected, server.api().stats().requests)
}

#[tokio::test]
async fn cursor_in_the_body_from_the_repository_definition() {
    let server = sample(COUNT).await;
    let catalog = ConnectorCatalog::builtin().unwrap();
    let definition = catalog.get("sample").unwrap();
    let fetcher = sandbox();
    let pager = Pager {
        fetcher: &fetcher,
        definition,
        stream: "contacts",
        settings: settings(&[("baseUrl", &server.base_url())]),
        credentials: Some(api_key(server.api().api_key())),
        window: Default::default(),
    };
    let all = pager.all().await.unwrap();
    assert_each_once(&all.ids(), &expected_ids("ct_", COUNT));
    assert_eq!(all.pages, 3, "pages of 100, stopped by hasMore=false");
    assert_eq!(all.total, Some(COUNT));
    assert_eq!(server.api().stats().requests, 3);
}

#[tokio::test]
async fn cursor_stops_on_missing_token() {
    let (all, requests) = run(json!({
        "name": "contacts",
        "path": "/v1/contacts",
        "pagination": {
            "type": "cursor", "cursorPointer": "/nextCursor", "cursorParam": "cursor",
            "pageSize": 50, "pageSizeParam": "limit"
        },
        "recordSelector": "/data"
    }))
    .await;
    assert_each_once(&all.ids(), &expected_ids("ct_", COUNT));
    assert_eq!((all.pages, requests), (5, 5));
}

#[tokio::test]
async fn next_url_in_the_body() {
    let (all, requests) = run(json!({
        "name": "contacts",
        "path": "/v1/contacts",
        "pagination": {
            "type": "nextUrl", "nextUrlPointer": "/next", "pageSize": 40, "pageSizeParam": "limit"
        },
        "recordSelector": "/data"
    }))
    .await;
    assert_each_once(&all.ids(), &expected_ids("ct_", COUNT));
    assert_eq!((all.pages, requests), (6, 6));
    assert!(
        all.tokens
            .iter()
            .all(|t| t.starts_with("http://127.0.0.1:"))
    );
}

#[tokio::test]
async fn link_header_rel_next() {
    let (all, requests) = run(json!({
        "name": "contacts",
        "path": "/v1/contacts",
        "pagination": {"type": "linkHeader", "pageSize": 100, "pageSizeParam": "limit"},
        "recordSelector": "/data"
    }))
    .await;
    assert_each_once(&all.ids(), &expected_ids("ct_", COUNT));
    assert_eq!((all.pages, requests), (3, 3));
}

#[tokio::test]
async fn offset_until_an_empty_page_by_default() {
    let (all, requests) = run(json!({
        "name": "contacts",
        "path": "/v1/contacts",
        "pagination": {
            "type": "offset", "offsetParam": "offset", "pageSize": 50, "pageSizeParam": "limit"
        },
        "recordSelector": "/data"
    }))
    .await;
    assert_each_once(&all.ids(), &expected_ids("ct_", COUNT));
    assert_eq!(all.tokens, ["50", "100", "150", "200", "237"]);
    assert_eq!(requests, 6, "five pages and the empty one that ends them");
}

#[tokio::test]
async fn offset_until_the_total_is_reached() {
    let (all, requests) = run(json!({
        "name": "contacts",
        "path": "/v1/contacts",
        "pagination": {
            "type": "offset", "offsetParam": "offset", "pageSize": 50, "pageSizeParam": "limit",
            "totalPointer": "/total", "stopWhen": ["emptyPage", "totalReached"]
        },
        "recordSelector": "/data"
    }))
    .await;
    assert_each_once(&all.ids(), &expected_ids("ct_", COUNT));
    assert_eq!((all.pages, requests), (5, 5));
}

#[tokio::test]
async fn page_number_until_fewer_than_the_limit() {
    let (all, requests) = run(json!({
        "name": "contacts",
        "path": "/v1/contacts",
        "pagination": {
            "type": "pageNumber", "pageParam": "page", "pageSize": 25, "pageSizeParam": "per_page",
            "stopWhen": ["fewerThanLimit"]
        },
        "recordSelector": "/data"
    }))
    .await;
    assert_each_once(&all.ids(), &expected_ids("ct_", COUNT));
    assert_eq!(all.tokens.first().map(String::as_str), Some("2"));
    assert_eq!((all.pages, requests), (10, 10));
}

#[tokio::test]
async fn graphql_post_with_the_cursor_in_the_variables() {
    let (all, requests) = run(json!({
        "name": "contacts",
        "method": "POST",
        "path": "/graphql",
        "body": {
            "query": "query($first: Int, $after: String) { items(first: $first, after: $after) { nodes { id } pageInfo { endCursor hasNextPage } } }",
            "variables": {"entity": "contacts", "first": "{{page.limit}}", "after": "{{page.cursor}}"}
        },
        "pagination": {
            "type": "cursor", "cursorPointer": "/data/items/pageInfo/endCursor",
            "hasMorePointer": "/data/items/pageInfo/hasNextPage", "stopWhen": ["noMore"],
            "pageSize": 60, "totalPointer": "/data/items/totalCount"
        },
        "recordSelector": "/data/items/nodes"
    }))
    .await;
    assert_each_once(&all.ids(), &expected_ids("ct_", COUNT));
    assert_eq!((all.pages, requests), (4, 4));
    assert_eq!(all.total, Some(COUNT));
}

#[tokio::test]
async fn api_key_in_the_query_never_lands_in_a_page_token() {
    let server = sample(COUNT).await;
    let definition = definition(json!({
        "id": "sample_query_key",
        "displayName": "Sample, key in query",
        "baseUrl": "{{settings.baseUrl}}",
        "settings": [{"name": "baseUrl", "required": true}],
        "auth": {"type": "apiKey", "in": "query", "name": "api_key"},
        "streams": [{
            "name": "companies",
            "path": "/v1/companies",
            "pagination": {"type": "nextUrl", "nextUrlPointer": "/next", "pageSize": 7, "pageSizeParam": "limit"},
            "recordSelector": "/data"
        }]
    }));
    let fetcher = sandbox();
    let pager = Pager {
        fetcher: &fetcher,
        definition: &definition,
        stream: "companies",
        settings: settings(&[("baseUrl", &server.base_url())]),
        credentials: Some(api_key(server.api().api_key())),
        window: Default::default(),
    };
    let all = pager.all().await.unwrap();
    assert_each_once(&all.ids(), &expected_ids("co_", 20));
    assert_eq!(all.tokens.len(), 2);
    for token in &all.tokens {
        assert!(!token.contains("api_key"), "the key leaked into {token}");
        assert!(!token.contains(server.api().api_key()));
    }
    assert_eq!(server.api().stats().unauthorized, 0);
}

#[tokio::test]
async fn a_cursor_that_never_moves_is_an_error_not_a_loop() {
    use axum::routing::get;
    let router = axum::Router::new().route(
        "/items",
        get(|| async { axum::Json(json!({"items": [{"id": 1}], "next": "same"})) }),
    );
    let addr = serve(router).await;
    let definition = definition(json!({
        "id": "stuck",
        "displayName": "Stuck",
        "baseUrl": format!("http://{addr}"),
        "streams": [{
            "name": "items",
            "path": "/items",
            "pagination": {"type": "cursor", "cursorPointer": "/next", "cursorParam": "after"},
            "recordSelector": "/items"
        }]
    }));
    let fetcher = sandbox();
    let pager = Pager {
        fetcher: &fetcher,
        definition: &definition,
        stream: "items",
        settings: Default::default(),
        credentials: None,
        window: Default::default(),
    };
    let first = pager.page(None).await.unwrap();
    assert_eq!(first.next_page_token.as_deref(), Some("same"));
    let error = pager.page(Some("same")).await.unwrap_err();
    assert!(
        matches!(
            error,
            FetchError::Permanent {
                code: "pagination_stuck",
                ..
            }
        ),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_page_token_of_the_wrong_shape_is_refused() {
    let server = sample(10).await;
    let definition = sample_definition(json!({
        "name": "contacts",
        "path": "/v1/contacts",
        "pagination": {"type": "offset", "offsetParam": "offset", "pageSize": 5},
        "recordSelector": "/data"
    }));
    let fetcher = sandbox();
    let pager = Pager {
        fetcher: &fetcher,
        definition: &definition,
        stream: "contacts",
        settings: settings(&[("baseUrl", &server.base_url())]),
        credentials: Some(api_key(server.api().api_key())),
        window: Default::default(),
    };
    let error = pager.page(Some("not-a-number")).await.unwrap_err();
    assert_eq!(error.code(), "invalid_page_token");
    assert_eq!(server.api().stats().requests, 0);
}
