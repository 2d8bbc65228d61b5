//! The scenarios on the embedded backend, and the cases that need its manual clock or an
//! injected failure.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use hub_core::keys;
use hub_core::ports::{QueueRole, StateStore, StoreError};
use hub_dlq::{Dlq, Filter, Outcome, ReplayOptions};
use hub_runtime::{FailureNote, FailureNotes, QueueMessage, process_batch, process_batch_noting};
use hub_testkit::faults::{FaultyState, StateCall};
use serde_json::json;

use crate::scenarios;
use crate::support::{FailsAsTold, body, embedded, flaky_deletes};

macro_rules! on_embedded {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            scenarios::$name(&embedded().await).await;
        }
    )*};
}

on_embedded!(
    dead_messages_are_listed_with_their_reason,
    filters_select_by_tenant_task_code_and_age,
    a_dry_run_sends_nothing,
    a_replay_resends_then_deletes,
    the_rate_limit_is_honoured,
    the_limit_caps_a_replay_over_every_queue,
    purge_deletes_what_the_filter_selects_or_everything_when_told,
);

fn replay_all() -> ReplayOptions {
    ReplayOptions {
        limit: 100,
        dry_run: false,
        rate_per_second: 50.0,
        remap: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ages_follow_the_clock() {
    let env = embedded().await;
    env.kill(QueueRole::Fetch, &[body("acme", "t", "boom", true)])
        .await;
    env.advance(Duration::from_secs(2 * 3600));
    let older = Filter {
        older_than: Some(Duration::from_secs(3600)),
        ..Filter::default()
    };
    let listing = env.dlq().list(QueueRole::Fetch, &older, 10).await.unwrap();
    assert_eq!(listing.messages.len(), 1);
    // The embedded queue keeps send times to the millisecond (rounded down).
    let age = listing.messages[0].age(env.ports.clock.now());
    assert!(
        age >= Duration::from_secs(2 * 3600)
            && age <= Duration::from_secs(2 * 3600) + Duration::from_millis(1),
        "{age:?}"
    );
    let newer = Filter {
        newer_than: Some(Duration::from_secs(3600)),
        ..Filter::default()
    };
    assert!(
        env.dlq()
            .list(QueueRole::Fetch, &newer, 10)
            .await
            .unwrap()
            .messages
            .is_empty()
    );
}

/// The replayer re-sends a message and its delete fails; by the time the scan receives the
/// message again (its hold ran out), it deletes it again and never sends a second copy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_run_never_sends_a_message_twice() {
    let mut env = embedded().await;
    let ids = env
        .kill(
            QueueRole::Transform,
            &[
                body("acme", "a", "boom", true),
                body("beta", "b", "boom", true),
            ],
        )
        .await;
    let clock = env.clock.clone().unwrap();
    // The hold runs out right after the failed delete: the message comes round again.
    let flaky = flaky_deletes(env.queue("transform-dlq"), 1, move || {
        clock.advance(Duration::from_secs(3600))
    });
    env.ports.queues.insert("transform-dlq".into(), flaky);
    let report = env
        .dlq()
        .replay(&[QueueRole::Transform], &Filter::default(), replay_all())
        .await
        .unwrap();
    let outcomes: BTreeMap<_, _> = report.queues[0]
        .messages
        .iter()
        .map(|m| (m.message_id.clone(), m.outcome))
        .collect();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(
        outcomes.keys().cloned().collect::<Vec<_>>(),
        expected,
        "{report:?}"
    );
    assert_eq!(
        outcomes
            .values()
            .filter(|o| **o == Outcome::SentNotDeleted)
            .count(),
        1
    );
    assert_eq!(
        outcomes
            .values()
            .filter(|o| **o == Outcome::Replayed)
            .count(),
        1
    );
    assert_eq!(
        report.queues[0].scanned, 2,
        "the second delivery is not a new message"
    );
    let copies = env.peek("transform").await;
    assert_eq!(copies.len(), 2, "one copy each: {copies:?}");
    let mut bodies: Vec<_> = copies.iter().map(|c| c.body.clone()).collect();
    bodies.sort();
    bodies.dedup();
    assert_eq!(bodies.len(), 2);
    assert_eq!(env.depth("transform-dlq").await.visible, 0);
    assert_eq!(env.depth("transform-dlq").await.in_flight, 0);
}

/// A replayer that dies between its send and its delete (here: the delete fails and the run
/// ends) leaves the message in the DLQ; the next run sends it again. Two copies on the source
/// queue is the worst case, and the writer's dedup makes it harmless (tests/it/dlq.rs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_send_and_delete_only_duplicates_the_send() {
    let mut env = embedded().await;
    env.kill(QueueRole::Write, &[body("acme", "a", "boom", true)])
        .await;
    let dlq = env.queue("write-dlq");
    env.ports.queues.insert(
        "write-dlq".into(),
        flaky_deletes(Arc::clone(&dlq), 1, || {}),
    );
    let first = env
        .dlq()
        .replay(&[QueueRole::Write], &Filter::default(), replay_all())
        .await
        .unwrap();
    assert_eq!(first.count(Outcome::SentNotDeleted), 1);
    assert_eq!(
        dlq.depth().await.unwrap().in_flight,
        1,
        "held until its hold runs out"
    );
    env.advance(Duration::from_secs(3600));
    let second = env
        .dlq()
        .replay(&[QueueRole::Write], &Filter::default(), replay_all())
        .await
        .unwrap();
    assert_eq!(second.count(Outcome::Replayed), 1);
    let copies = env.peek("write").await;
    assert_eq!(copies.len(), 2);
    assert_eq!(copies[0].body, copies[1].body);
    assert_eq!(dlq.depth().await.unwrap().visible, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listing_that_dies_leaves_messages_invisible_only_for_its_hold() {
    let env = embedded().await;
    env.kill(QueueRole::Fetch, &[body("acme", "a", "boom", true)])
        .await;
    let dlq = Dlq::new(env.ports.clone()).with_config(hub_dlq::DlqConfig {
        hold: Duration::from_secs(30),
        ..hub_dlq::DlqConfig::for_backend("embedded")
    });
    let listing = tokio::time::timeout(
        Duration::from_secs(10),
        dlq.list(QueueRole::Fetch, &Filter::default(), 10),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(listing.messages.len(), 1);
    // Simulate the death: receive with the listing's hold and never release.
    let queue = env.queue("fetch-dlq");
    let held = queue
        .receive(hub_core::ports::ReceiveOptions {
            max_messages: 10,
            wait: Duration::ZERO,
            visibility_timeout: Some(Duration::from_secs(30)),
        })
        .await
        .unwrap();
    assert_eq!(held.len(), 1);
    assert_eq!(queue.depth().await.unwrap().visible, 0);
    env.advance(Duration::from_secs(31));
    assert_eq!(queue.depth().await.unwrap().visible, 1);
}

fn message(id: &str, body: &str) -> QueueMessage {
    QueueMessage {
        message_id: id.into(),
        body: body.into(),
        receive_count: 2,
        attributes: BTreeMap::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_driver_notes_handler_errors_bad_bodies_and_panics() {
    let env = embedded().await;
    let notes = FailureNotes::for_queue(&env.ports, "fetch");
    let batch = vec![
        message(
            "m-error",
            &body("acme", "t", "upstream_down", true).to_string(),
        ),
        message("m-body", "{not json"),
        message(
            "m-panic",
            &json!({"panic": true, "tenantId": "acme"}).to_string(),
        ),
    ];
    let outcome = process_batch_noting(Arc::new(FailsAsTold), batch, 3, Some(notes)).await;
    assert_eq!(outcome.failures.len(), 3);
    let read = |id: &'static str| {
        let state = Arc::clone(&env.ports.state);
        async move {
            let item = state
                .get(&keys::failure_note("fetch", id))
                .await
                .unwrap()
                .unwrap_or_else(|| panic!("no note for {id}"));
            FailureNote::from_item(&item).unwrap()
        }
    };
    let error = read("m-error").await;
    assert_eq!(error.code, "upstream_down");
    assert!(error.retryable);
    assert_eq!(error.receive_count, 2);
    assert_eq!(error.ids.execution_id.as_deref(), Some("exec-acme-t"));
    assert_eq!(error.failed_at, env.ports.clock.now());
    assert_eq!(read("m-body").await.code, "invalid_message_body");
    let panicked = read("m-panic").await;
    assert_eq!(panicked.code, "handler_panicked");
    assert_eq!(panicked.ids.tenant_id.as_deref(), Some("acme"));
    // The note expires with the DLQ's retention.
    let item = env
        .ports
        .state
        .get(&keys::failure_note("fetch", "m-error"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        item["expiresAt"],
        json!((env.ports.clock.now() + chrono::Duration::days(14)).timestamp())
    );
}

/// A state store whose puts fail: notes cannot be written.
fn puts_fail(inner: Arc<dyn StateStore>) -> Arc<dyn StateStore> {
    Arc::new(FaultyState::new(inner, |call| match call {
        StateCall::Put => Err(StoreError::Unavailable("injected".into())),
        _ => Ok(()),
    }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_note_that_cannot_be_written_changes_nothing_about_the_batch() {
    let env = embedded().await;
    let broken = FailureNotes::new(
        puts_fail(Arc::clone(&env.ports.state)),
        Arc::clone(&env.ports.clock),
        "fetch",
    );
    let batch = || {
        vec![
            message("a", &body("acme", "t", "boom", false).to_string()),
            message("b", "{not json"),
        ]
    };
    let with_notes = process_batch_noting(Arc::new(FailsAsTold), batch(), 2, Some(broken)).await;
    let without = process_batch(Arc::new(FailsAsTold), batch(), 2).await;
    let codes = |outcome: &hub_runtime::BatchOutcome| {
        let mut codes: Vec<_> = outcome
            .failures
            .iter()
            .map(|f| (f.message_id.clone(), f.error.clone()))
            .collect();
        codes.sort_by(|a, b| a.0.cmp(&b.0));
        (outcome.succeeded.clone(), codes)
    };
    assert_eq!(codes(&with_notes), codes(&without));
    assert!(
        env.ports
            .state
            .get(&keys::failure_note("fetch", "a"))
            .await
            .unwrap()
            .is_none()
    );
}
