//! Every scenario on the embedded backend, plus what only needs one backend.

use std::collections::BTreeSet;

use hub_core::model::{RunStatus, SyncTaskStatus, load_value};
use serde_json::json;

use crate::scenarios;
use crate::support::{self, cron, every, manual, task, tenant, utc};

macro_rules! embedded {
    ($($name:ident $(($($arg:expr),*))?),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let env = support::embedded().await;
            scenarios::$name(&env $($(, $arg)*)?).await;
        }
    )*};
}

embedded!(
    scheduled_runs_start_once_per_occurrence_and_catch_up_once,
    racing_ticks_start_each_occurrence_once,
    an_occurrence_due_while_the_last_run_goes_on_is_skipped,
    pause_and_resume,
    cancel_ends_the_run,
    retry_starts_a_new_execution_of_a_failed_one,
    concurrent_counter_adds_are_all_counted(8, 25),
    finishing_updates_the_task_and_publishes_the_outcome,
    an_interrupted_start_is_delivered_by_a_later_tick,
    executions_list_newest_first,
);

/// Ticks interleaved on one handle (as two invocations in one process would be).
#[tokio::test]
async fn joined_ticks_on_one_handle_start_once() {
    let env = support::embedded().await;
    let t = tenant();
    for i in 0..5 {
        env.sync
            .put_task(&t, task(&format!("joined-{i}"), every(1, "minutes")))
            .await
            .unwrap();
    }
    let now = env.set_now("2025-01-01T10:01:00Z");
    let (a, b, c) = tokio::join!(env.sync.tick(now), env.sync.tick(now), env.other.tick(now));
    let started: Vec<_> = [a.unwrap(), b.unwrap(), c.unwrap()]
        .into_iter()
        .flat_map(|report| report.started)
        .collect();
    assert_eq!(started.len(), 5, "{started:?}");
    let tasks: BTreeSet<_> = started.iter().map(|s| s.task_id.clone()).collect();
    assert_eq!(tasks.len(), 5);
    assert_eq!(env.jobs().await.len(), 5);
}

#[tokio::test]
async fn tasks_are_validated_and_keep_their_runtime_state_across_puts() {
    let env = support::embedded().await;
    let t = tenant();

    let bad_id = env
        .sync
        .put_task(&t, task("a#b", manual()))
        .await
        .unwrap_err();
    assert_eq!(bad_id.code(), "invalid_task", "{bad_id}");
    let mut unbound = task("unbound", manual());
    unbound.tenant_integration_id = None;
    let error = env.sync.put_task(&t, unbound).await.unwrap_err();
    assert_eq!(error.code(), "invalid_task");
    assert!(error.to_string().contains("tenantIntegrationId"), "{error}");
    let never = env
        .sync
        .put_task(&t, task("never", cron("0 0 30 2 *", "UTC")))
        .await
        .unwrap_err();
    assert_eq!(never.code(), "invalid_schedule", "{never}");
    let missing = env.sync.get_task(&t, "b").await.unwrap_err();
    assert_eq!(missing.code(), "task_not_found", "{missing}");

    // 10:00Z is 05:00 in New York: the next 02:00 there is 07:00Z tomorrow.
    let nightly = env
        .sync
        .put_task(&t, task("a", cron("0 2 * * *", "America/New_York")))
        .await
        .unwrap();
    assert_eq!(nightly.next_run_at, Some(utc("2025-01-02T07:00:00Z")));
    env.sync
        .put_task(&t, task("b", every(1, "hours")))
        .await
        .unwrap();
    let by_hand = env.sync.put_task(&t, task("c", manual())).await.unwrap();
    assert_eq!(by_hand.next_run_at, None);
    let reconciled: hub_core::model::SyncTask = load_value(json!({
        "id": "d", "tenantIntegrationId": "ti-crm", "name": "webhooks",
        "conversionSchemaId": "contacts", "direction": "pull",
        "schedule": {"type": "realtime", "config": {
            "type": "realtime", "webhookUrl": "https://hub.example/webhooks/acme",
            "verificationToken": "s3cret",
            "reconciliation": {"type": "interval", "interval": 6, "unit": "hours"}
        }},
        "config": {}, "status": "active"
    }))
    .unwrap();
    let reconciled = env.sync.put_task(&t, reconciled).await.unwrap();
    assert_eq!(reconciled.next_run_at, Some(utc("2025-01-01T16:00:00Z")));
    let ids: Vec<_> = env
        .sync
        .list_tasks(&t)
        .await
        .unwrap()
        .into_iter()
        .map(|task| task.id)
        .collect();
    assert_eq!(ids, ["a", "b", "c", "d"]);

    let report = env
        .sync
        .tick(env.set_now("2025-01-01T11:00:00Z"))
        .await
        .unwrap();
    assert_eq!(report.started.len(), 1, "{report:?}");
    env.sync
        .finish(&t, &report.started[0].execution_id, RunStatus::Success)
        .await
        .unwrap();

    // Re-applying with another name keeps the statistics, the creation time and the next run.
    let mut renamed = task("b", every(1, "hours"));
    renamed.name = "renamed".into();
    let renamed = env.sync.put_task(&t, renamed).await.unwrap();
    assert_eq!(renamed.name, "renamed");
    assert_eq!(renamed.stats.total_runs, 1);
    assert_eq!(renamed.created_at, Some(utc(support::START)));
    assert_eq!(renamed.updated_at, Some(env.now()));
    assert_eq!(renamed.next_run_at, Some(utc("2025-01-01T12:00:00Z")));
    // A new schedule is computed afresh, on the grid anchored at creation.
    let faster = env
        .sync
        .put_task(&t, task("b", every(25, "minutes")))
        .await
        .unwrap();
    assert_eq!(faster.next_run_at, Some(utc("2025-01-01T11:15:00Z")));
    // Applied as paused, it leaves the due index.
    let mut paused = task("b", every(25, "minutes"));
    paused.status = SyncTaskStatus::Paused;
    assert_eq!(
        env.sync.put_task(&t, paused).await.unwrap().next_run_at,
        None
    );
    let far = env.sync.tick(utc("2025-01-01T11:59:00Z")).await.unwrap();
    assert!(far.started.iter().all(|s| s.task_id != "b"), "{far:?}");
}

/// The trigger follows the wall clock of a cron task's zone across the spring-forward.
#[tokio::test]
async fn a_cron_task_in_the_spring_forward_gap_runs_once_after_it() {
    let env = support::embedded().await;
    let t = tenant();
    env.set_now("2025-03-08T12:00:00Z");
    let stored = env
        .sync
        .put_task(&t, task("dst", cron("30 2 * * *", "America/New_York")))
        .await
        .unwrap();
    // 02:30 does not exist on 2025-03-09 in New York: 03:00 EDT is 07:00Z.
    assert_eq!(stored.next_run_at, Some(utc("2025-03-09T07:00:00Z")));
    let report = env
        .sync
        .tick(env.set_now("2025-03-09T07:00:00Z"))
        .await
        .unwrap();
    assert_eq!(report.started.len(), 1);
    assert_eq!(
        env.sync.get_task(&t, "dst").await.unwrap().next_run_at,
        Some(utc("2025-03-10T06:30:00Z"))
    );
}
