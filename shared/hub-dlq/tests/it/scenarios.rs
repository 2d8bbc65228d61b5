//! The scenarios every backend runs.

use std::time::Duration;

use hub_core::keys;
use hub_core::ports::{MAX_RECEIVE_COUNT, QueueRole};
use hub_dlq::{DlqError, Filter, Outcome, PurgeOptions, REPLAYS_ATTRIBUTE, ReplayOptions};
use serde_json::Value;

use crate::support::{Env, body};

const HOUR: Duration = Duration::from_secs(3600);

fn options(limit: usize, dry_run: bool) -> ReplayOptions {
    ReplayOptions {
        limit,
        dry_run,
        rate_per_second: 10.0,
        remap: false,
    }
}

fn tenant(t: &str) -> Filter {
    Filter {
        tenant_id: Some(t.into()),
        ..Filter::default()
    }
}

/// Three dead transform messages: two of acme (permanent `schema_not_found`, tasks contacts
/// and deals) and one of beta (retryable `state_store_unavailable`).
async fn three_dead(env: &Env) -> Vec<String> {
    env.kill(
        QueueRole::Transform,
        &[
            body("acme", "contacts", "schema_not_found", false),
            body("acme", "deals", "schema_not_found", false),
            body("beta", "contacts", "state_store_unavailable", true),
        ],
    )
    .await
}

pub async fn dead_messages_are_listed_with_their_reason(env: &Env) {
    let ids = three_dead(env).await;
    let dlq = env.dlq();
    let listing = dlq
        .list(QueueRole::Transform, &Filter::default(), 100)
        .await
        .unwrap();
    assert_eq!(listing.queue, "transform-dlq");
    assert_eq!(listing.source_queue, "transform");
    assert_eq!(listing.depth.visible, 3);
    assert!(listing.complete);
    assert_eq!(listing.scanned, 3);
    assert_eq!(listing.messages.len(), 3);
    for message in &listing.messages {
        let index = ids.iter().position(|id| *id == message.message_id).unwrap();
        let failure = message
            .failure
            .as_ref()
            .expect("every message has its note");
        let (tenant, code, retryable) = match index {
            0 | 1 => ("acme", "schema_not_found", false),
            _ => ("beta", "state_store_unavailable", true),
        };
        assert_eq!(message.ids.tenant_id.as_deref(), Some(tenant));
        assert_eq!(failure.code, code);
        assert_eq!(failure.retryable, retryable);
        assert_eq!(failure.receive_count, MAX_RECEIVE_COUNT);
        assert_eq!(
            failure.message,
            format!("failed as told on receive {MAX_RECEIVE_COUNT}")
        );
        assert_eq!(message.replays, 0);
        // Source receives, plus this listing's.
        assert_eq!(message.receive_count, MAX_RECEIVE_COUNT + 1);
        assert!(message.body.is_none(), "list leaves bodies out");
    }
    // Listing released every message: all visible again, and a second listing sees each one
    // receive higher (the documented cost of looking).
    assert_eq!(env.depth("transform-dlq").await.visible, 3);
    let again = dlq
        .list(QueueRole::Transform, &Filter::default(), 100)
        .await
        .unwrap();
    assert!(
        again
            .messages
            .iter()
            .all(|m| m.receive_count == MAX_RECEIVE_COUNT + 2),
        "{again:?}"
    );
    // A limit stops early and says the listing is incomplete.
    let first = dlq
        .list(QueueRole::Transform, &Filter::default(), 1)
        .await
        .unwrap();
    assert_eq!(first.messages.len(), 1);
    assert!(!first.complete);
    assert_eq!(env.depth("transform-dlq").await.visible, 3);

    // show: one message with its body, found in whichever queue holds it.
    let shown = dlq
        .show(&ids[2], &QueueRole::ALL)
        .await
        .unwrap()
        .expect("found");
    assert_eq!(shown.queue, "transform-dlq");
    assert_eq!(shown.body.as_ref().unwrap()["tenantId"], "beta");
    assert!(
        dlq.show("no-such-id", &QueueRole::ALL)
            .await
            .unwrap()
            .is_none()
    );
    // Other DLQs are empty.
    let fetch = dlq
        .list(QueueRole::Fetch, &Filter::default(), 100)
        .await
        .unwrap();
    assert!(fetch.messages.is_empty() && fetch.complete);
}

pub async fn filters_select_by_tenant_task_code_and_age(env: &Env) {
    let ids = three_dead(env).await;
    let dlq = env.dlq();
    let listed = |filter: Filter| {
        let dlq = &dlq;
        async move {
            let mut got: Vec<String> = dlq
                .list(QueueRole::Transform, &filter, 100)
                .await
                .unwrap()
                .messages
                .into_iter()
                .map(|m| m.message_id)
                .collect();
            got.sort();
            got
        }
    };
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    assert_eq!(listed(tenant("acme")).await, sorted(ids[..2].to_vec()));
    assert_eq!(
        listed(Filter {
            task_id: Some("contacts".into()),
            ..Filter::default()
        })
        .await,
        sorted(vec![ids[0].clone(), ids[2].clone()])
    );
    assert_eq!(
        listed(Filter {
            error_code: Some("state_store_unavailable".into()),
            ..Filter::default()
        })
        .await,
        vec![ids[2].clone()]
    );
    assert_eq!(
        listed(Filter {
            retryable: Some(false),
            task_id: Some("deals".into()),
            ..Filter::default()
        })
        .await,
        vec![ids[1].clone()]
    );
    assert_eq!(
        listed(Filter {
            newer_than: Some(HOUR),
            ..Filter::default()
        })
        .await
        .len(),
        3
    );
    assert!(
        listed(Filter {
            older_than: Some(HOUR),
            ..Filter::default()
        })
        .await
        .is_empty()
    );
    assert_eq!(
        listed(Filter {
            message_ids: vec![ids[1].clone()],
            ..Filter::default()
        })
        .await,
        vec![ids[1].clone()]
    );
    assert!(listed(tenant("nobody")).await.is_empty());
}

pub async fn a_dry_run_sends_nothing(env: &Env) {
    let ids = three_dead(env).await;
    let report = env
        .dlq()
        .replay(&QueueRole::ALL, &tenant("acme"), options(100, true))
        .await
        .unwrap();
    assert!(report.dry_run);
    assert_eq!(report.count(Outcome::WouldReplay), 2);
    assert_eq!(report.count(Outcome::Replayed), 0);
    let transform = &report.queues[1];
    assert_eq!((transform.scanned, transform.matched), (3, 2));
    let mut would: Vec<_> = transform
        .messages
        .iter()
        .map(|m| m.message_id.clone())
        .collect();
    would.sort();
    let mut expected = ids[..2].to_vec();
    expected.sort();
    assert_eq!(would, expected);
    assert_eq!(env.depth("transform").await.visible, 0, "nothing sent");
    assert_eq!(
        env.depth("transform-dlq").await.visible,
        3,
        "nothing deleted"
    );
    assert!(env.time.sleeps().is_empty(), "a dry run is not paced");
    for id in &ids {
        let note = env
            .ports
            .state
            .get(&keys::failure_note("transform", id))
            .await
            .unwrap();
        assert!(note.is_some(), "notes stay");
    }
}

pub async fn a_replay_resends_then_deletes(env: &Env) {
    let ids = three_dead(env).await;
    let dlq = env.dlq();
    let dead_bodies: Vec<String> = env
        .peek("transform-dlq")
        .await
        .into_iter()
        .map(|m| m.body)
        .collect();
    let report = dlq
        .replay(
            &[QueueRole::Transform],
            &tenant("acme"),
            options(100, false),
        )
        .await
        .unwrap();
    assert_eq!(report.count(Outcome::Replayed), 2, "{report:?}");
    let outcomes = &report.queues[0].messages;
    assert!(outcomes.iter().all(|m| m.new_message_id.is_some()));

    // The copies are on the source queue with their bodies and a replay count; the originals
    // left the DLQ with their notes; beta's message is untouched.
    let copies = env.peek("transform").await;
    assert_eq!(copies.len(), 2);
    for copy in &copies {
        assert!(dead_bodies.contains(&copy.body));
        let body: Value = serde_json::from_str(&copy.body).unwrap();
        assert_eq!(body["tenantId"], "acme");
        assert_eq!(
            copy.attributes.get(REPLAYS_ATTRIBUTE).map(String::as_str),
            Some("1")
        );
        assert_eq!(
            copy.receive_count, 1,
            "peek is the first receive of a fresh message"
        );
        assert!(
            outcomes
                .iter()
                .any(|m| m.new_message_id.as_deref() == Some(&copy.message_id))
        );
    }
    let left = env.peek("transform-dlq").await;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].message_id, ids[2]);
    for (id, kept) in [(&ids[0], false), (&ids[1], false), (&ids[2], true)] {
        let note = env
            .ports
            .state
            .get(&keys::failure_note("transform", id))
            .await
            .unwrap();
        assert_eq!(note.is_some(), kept, "note of {id}");
    }

    // The copies fail again and die again: they come back with their replay count, which
    // `max_replays` uses to leave them alone.
    let copy_ids: Vec<String> = copies.iter().map(|c| c.message_id.clone()).collect();
    env.fail_until_dead(QueueRole::Transform, &copy_ids).await;
    let listing = dlq
        .list(QueueRole::Transform, &tenant("acme"), 100)
        .await
        .unwrap();
    assert_eq!(listing.messages.len(), 2);
    assert!(listing.messages.iter().all(|m| m.replays == 1));
    let once = Filter {
        max_replays: Some(1),
        ..Filter::default()
    };
    let report = dlq
        .replay(&[QueueRole::Transform], &once, options(100, false))
        .await
        .unwrap();
    assert_eq!(
        report.count(Outcome::Replayed),
        1,
        "only beta's, never replayed before"
    );
    assert_eq!(env.peek("transform").await.len(), 1);
    assert_eq!(env.depth("transform-dlq").await.visible, 2);
}

pub async fn the_rate_limit_is_honoured(env: &Env) {
    let bodies: Vec<Value> = (0..5)
        .map(|i| body("acme", &format!("t{i}"), "boom", true))
        .collect();
    env.kill(QueueRole::Write, &bodies).await;
    let started = std::time::Instant::now();
    let report = env
        .dlq()
        .replay(
            &[QueueRole::Write],
            &Filter::default(),
            ReplayOptions {
                limit: 100,
                dry_run: false,
                rate_per_second: 2.0,
                remap: false,
            },
        )
        .await
        .unwrap();
    assert_eq!(report.count(Outcome::Replayed), 5);
    // Five replays at 2 per second: four waits of half a second, on the virtual clock.
    assert_eq!(env.time.sleeps(), vec![Duration::from_millis(500); 4]);
    assert_eq!(hub_dlq::Pace::elapsed(&*env.time), Duration::from_secs(2));
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(env.peek("write").await.len(), 5);
}

pub async fn the_limit_caps_a_replay_over_every_queue(env: &Env) {
    env.kill(QueueRole::Fetch, &[body("acme", "a", "boom", true)])
        .await;
    env.kill(
        QueueRole::Write,
        &[
            body("acme", "b", "boom", true),
            body("acme", "c", "boom", true),
        ],
    )
    .await;
    let report = env
        .dlq()
        .replay(&QueueRole::ALL, &Filter::default(), options(2, false))
        .await
        .unwrap();
    assert_eq!(report.count(Outcome::Replayed), 2);
    assert_eq!(report.queues.len(), 3);
    assert_eq!(report.queues[0].count(Outcome::Replayed), 1, "fetch first");
    assert_eq!(report.queues[2].count(Outcome::Replayed), 1);
    assert_eq!(env.depth("write-dlq").await.visible, 1, "the third stays");
}

pub async fn purge_deletes_what_the_filter_selects_or_everything_when_told(env: &Env) {
    let ids = three_dead(env).await;
    let dlq = env.dlq();
    let refused = dlq
        .purge(
            QueueRole::Transform,
            &Filter::default(),
            PurgeOptions {
                all: false,
                dry_run: false,
                limit: 100,
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(refused, DlqError::PurgeNeedsFilter));
    let both = dlq
        .purge(
            QueueRole::Transform,
            &tenant("acme"),
            PurgeOptions {
                all: true,
                dry_run: false,
                limit: 100,
            },
        )
        .await
        .unwrap_err();
    assert_eq!(both.code(), "invalid_request");
    assert_eq!(env.depth("transform-dlq").await.visible, 3);

    let by_code = Filter {
        error_code: Some("schema_not_found".into()),
        ..Filter::default()
    };
    let dry = dlq
        .purge(
            QueueRole::Transform,
            &by_code,
            PurgeOptions {
                all: false,
                dry_run: true,
                limit: 100,
            },
        )
        .await
        .unwrap();
    assert_eq!(dry.count(Outcome::WouldPurge), 2);
    assert_eq!(env.depth("transform-dlq").await.visible, 3);
    let purged = dlq
        .purge(
            QueueRole::Transform,
            &by_code,
            PurgeOptions {
                all: false,
                dry_run: false,
                limit: 100,
            },
        )
        .await
        .unwrap();
    assert_eq!(purged.count(Outcome::Purged), 2);
    let left = env.peek("transform-dlq").await;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].message_id, ids[2]);
    assert!(
        env.ports
            .state
            .get(&keys::failure_note("transform", &ids[0]))
            .await
            .unwrap()
            .is_none()
    );

    let all = dlq
        .purge(
            QueueRole::Transform,
            &Filter::default(),
            PurgeOptions {
                all: true,
                dry_run: false,
                limit: 100,
            },
        )
        .await
        .unwrap();
    assert!(all.queues[0].purged_whole_queue);
    assert_eq!(all.queues[0].matched, 1);
    assert_eq!(env.depth("transform-dlq").await.visible, 0);
    assert_eq!(
        env.depth("transform").await.visible,
        0,
        "the source queue is untouched"
    );
}
