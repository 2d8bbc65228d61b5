//! Incremental sync against the sample API: the committed cursor, the lookback, the window's
//! upper bound, and "changing N records upstream fetches exactly N".

use hub_connectors::sample::Entity;
use hub_connectors::{ConnectorCatalog, ConnectorDefinition};
use hub_core::messages::CursorWindow;

use crate::support::*;

fn pager<'a>(
    fetcher: &'a hub_connectors::Fetcher,
    definition: &'a ConnectorDefinition,
    server: &hub_connectors::SampleServer,
    window: CursorWindow,
) -> Pager<'a> {
    Pager {
        fetcher,
        definition,
        stream: "contacts",
        settings: settings(&[("baseUrl", &server.base_url())]),
        credentials: Some(api_key(server.api().api_key())),
        window,
    }
}

fn window(from: Option<&str>, to: Option<&str>) -> CursorWindow {
    CursorWindow {
        from: from.map(str::to_owned),
        to: to.map(str::to_owned),
    }
}

#[tokio::test]
async fn changing_records_upstream_fetches_exactly_those_records() {
    let server = sample(1_000).await;
    let catalog = ConnectorCatalog::builtin().unwrap();
    let definition = catalog.get("sample").unwrap();
    let fetcher = sandbox();

    let full = pager(&fetcher, definition, &server, window(None, None))
        .all()
        .await
        .unwrap();
    assert_eq!(full.records.len(), 1_000);
    let cursor = full
        .candidate
        .clone()
        .expect("a full sync proposes a cursor");
    let newest = full.records.last().unwrap()["updatedAt"].as_str().unwrap();
    assert_eq!(
        chrono::DateTime::parse_from_rfc3339(&cursor).unwrap(),
        chrono::DateTime::parse_from_rfc3339(newest).unwrap()
    );

    let nothing_new = pager(&fetcher, definition, &server, window(Some(&cursor), None))
        .all()
        .await
        .unwrap();
    assert_eq!(
        nothing_new.ids(),
        [full.ids().last().unwrap().clone()],
        "only the newest record sits inside the 60 s lookback"
    );

    let changed = server.api().modify(Entity::Contacts, 100);
    let delta = pager(&fetcher, definition, &server, window(Some(&cursor), None))
        .all()
        .await
        .unwrap();
    // The newest record comes first (lookback) unless it was itself changed, then the 100
    // changed records in the order of their new update times.
    let newest_id = full.ids().last().unwrap().clone();
    let mut expected: Vec<String> = Vec::new();
    if !changed.modified.contains(&newest_id) {
        expected.push(newest_id);
    }
    expected.extend(changed.modified.iter().cloned());
    assert_each_once(&delta.ids(), &expected);
    let revised = delta.records.iter().filter(|r| r["revision"] == 1).count();
    assert_eq!(revised, 100);
    let next_cursor = delta.candidate.unwrap();
    assert!(next_cursor > cursor, "{next_cursor} > {cursor}");
}

#[tokio::test]
async fn the_lookback_reaches_back_before_the_committed_cursor() {
    let server = sample(50).await;
    let catalog = ConnectorCatalog::builtin().unwrap();
    let definition = catalog.get("sample").unwrap();
    let fetcher = sandbox();
    let full = pager(&fetcher, definition, &server, window(None, None))
        .all()
        .await
        .unwrap();
    // A cursor 30 s after record 40's update: the 60 s lookback still covers record 40.
    let at = |i: usize| {
        chrono::DateTime::parse_from_rfc3339(full.records[i]["updatedAt"].as_str().unwrap())
            .unwrap()
    };
    let from = (at(40) + chrono::Duration::seconds(30)).to_rfc3339();
    let delta = pager(&fetcher, definition, &server, window(Some(&from), None))
        .all()
        .await
        .unwrap();
    assert_eq!(delta.ids(), full.ids()[40..]);

    let mut no_lookback = (**definition).clone();
    no_lookback.streams[0]
        .incremental
        .as_mut()
        .unwrap()
        .lookback_seconds = 0;
    let strict = pager(&fetcher, &no_lookback, &server, window(Some(&from), None))
        .all()
        .await
        .unwrap();
    assert_eq!(strict.ids(), full.ids()[41..]);
}

#[tokio::test]
async fn the_candidate_never_passes_the_window_end() {
    let server = sample(50).await;
    let catalog = ConnectorCatalog::builtin().unwrap();
    let definition = catalog.get("sample").unwrap();
    let fetcher = sandbox();
    let full = pager(&fetcher, definition, &server, window(None, None))
        .all()
        .await
        .unwrap();
    let to = full.records[20]["updatedAt"].as_str().unwrap().to_owned();
    let capped = pager(&fetcher, definition, &server, window(None, Some(&to)))
        .all()
        .await
        .unwrap();
    assert_eq!(
        capped.records.len(),
        50,
        "the API is not asked to stop at `to`"
    );
    assert_eq!(capped.candidate.as_deref(), Some(to.as_str()));
}

#[tokio::test]
async fn a_window_that_does_not_parse_fails_before_any_request() {
    let server = sample(5).await;
    let catalog = ConnectorCatalog::builtin().unwrap();
    let fetcher = sandbox();
    let error = pager(
        &fetcher,
        catalog.get("sample").unwrap(),
        &server,
        window(Some("last tuesday"), None),
    )
    .page(None)
    .await
    .unwrap_err();
    assert_eq!(error.code(), "invalid_cursor");
    assert_eq!(server.api().stats().requests, 0);
}
