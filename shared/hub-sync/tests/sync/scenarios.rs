//! Scenarios run unchanged on every backend (see `embedded.rs` and `aws.rs`).

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;

use chrono::TimeDelta;
use hub_core::messages::{FinishedStatus, SyncFinished, SyncStarted};
use hub_core::model::{
    ExecutionPhase, ExecutionStatus, LogLevel, RunStatus, SyncError, SyncTaskStatus, Trigger,
};
use hub_sync::{CounterDeltas, is_cancelled, outcome_of};
use serde_json::json;

use crate::support::{Env, START, every, manual, task, tenant, utc};

/// Interval claims, the first job and event, and one run after downtime.
pub async fn scheduled_runs_start_once_per_occurrence_and_catch_up_once(env: &Env) {
    let t = tenant();
    let stored = env
        .sync
        .put_task(&t, task("contacts", every(15, "minutes")))
        .await
        .unwrap();
    assert_eq!(stored.next_run_at, Some(utc("2025-01-01T10:15:00Z")));
    assert_eq!(stored.created_at, Some(utc(START)));

    let early = env.sync.tick(utc("2025-01-01T10:14:59Z")).await.unwrap();
    assert!(early.started.is_empty(), "{early:?}");

    let now = env.set_now("2025-01-01T10:15:00Z");
    let report = env.sync.tick(now).await.unwrap();
    assert_eq!(report.started.len(), 1, "{report:?}");
    let started = &report.started[0];
    assert_eq!(
        (started.tenant_id.as_str(), started.task_id.as_str()),
        ("acme", "contacts")
    );
    let execution_id = started.execution_id.clone();

    let jobs = env.jobs().await;
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    let job = &jobs[0];
    assert_eq!(job.execution_id, execution_id);
    assert_eq!(
        (job.attempt, job.page, job.page_token.as_deref()),
        (1, 0, None)
    );
    assert_eq!(job.triggered_by, Trigger::Schedule);
    assert_eq!(job.task_id, "contacts");
    // Incremental, nothing committed yet: from the beginning up to the run's start.
    assert_eq!(job.cursor_window.from, None);
    assert_eq!(
        job.cursor_window.to.as_deref(),
        Some("2025-01-01T10:15:00.000Z")
    );
    let started_events = env.events_of::<SyncStarted>().await;
    assert_eq!(started_events.len(), 1);
    assert_eq!(started_events[0].execution_id, execution_id);
    assert_eq!(started_events[0].tenant_integration_id, "ti-crm");

    let record = env.sync.get_execution(&t, &execution_id).await.unwrap();
    let execution = &record.execution;
    assert_eq!(execution.status, ExecutionStatus::Running);
    assert_eq!(execution.triggered_by, Trigger::Schedule);
    assert_eq!(execution.started_at, now);
    assert_eq!(execution.progress.phase, ExecutionPhase::Fetching);
    assert_eq!(execution.results, Default::default());
    assert!(record.is_running() && !is_cancelled(execution));
    assert_eq!(
        env.sync.get_task(&t, "contacts").await.unwrap().next_run_at,
        Some(utc("2025-01-01T10:30:00Z"))
    );

    // The same instant again: the occurrence is taken.
    let again = env.sync.tick(now).await.unwrap();
    assert!(again.started.is_empty(), "{again:?}");
    env.sync
        .finish(&t, &execution_id, RunStatus::Success)
        .await
        .unwrap()
        .expect("it was running");
    env.events().await;

    // Down from 10:20 to 15:07: the nineteen missed occurrences make one run.
    let now = env.set_now("2025-01-01T15:07:00Z");
    let recovery = env.sync.tick(now).await.unwrap();
    assert_eq!(recovery.started.len(), 1, "{recovery:?}");
    let after = env.sync.tick(now).await.unwrap();
    assert!(after.started.is_empty(), "{after:?}");
    assert_eq!(env.jobs().await.len(), 1);
    assert_eq!(
        env.sync.get_task(&t, "contacts").await.unwrap().next_run_at,
        Some(utc("2025-01-01T15:15:00Z"))
    );
}

/// Two ticks on two handles race over the same due tasks: each occurrence starts once.
pub async fn racing_ticks_start_each_occurrence_once(env: &Env) {
    let t = tenant();
    let count = 12;
    for i in 0..count {
        env.sync
            .put_task(&t, task(&format!("task-{i:02}"), every(1, "minutes")))
            .await
            .unwrap();
    }
    let now = env.set_now("2025-01-01T10:01:00Z");
    let (first, second) = (env.sync.clone(), env.other.clone());
    let first = tokio::spawn(async move { first.tick(now).await });
    let second = tokio::spawn(async move { second.tick(now).await });
    let (first, second) = (
        first.await.unwrap().unwrap(),
        second.await.unwrap().unwrap(),
    );
    assert!(first.failures.is_empty() && second.failures.is_empty());
    // DynamoDB may cancel both of two conflicting transactions (TransactionConflict): then
    // neither tick starts that occurrence and it stays due. The guarantee is "never twice, and
    // the next tick starts what the race left", so one more tick completes the set.
    let third = env.sync.tick(now).await.unwrap();

    let started: Vec<_> = first
        .started
        .iter()
        .chain(&second.started)
        .chain(&third.started)
        .collect();
    assert_eq!(started.len(), count, "{first:?}\n{second:?}\n{third:?}");
    let tasks: BTreeSet<_> = started.iter().map(|s| s.task_id.as_str()).collect();
    assert_eq!(tasks.len(), count);

    let listed = env.sync.list_executions(&t, 100, None).await.unwrap();
    assert_eq!(listed.executions.len(), count);
    let jobs = env.jobs().await;
    assert_eq!(jobs.len(), count);
    let executions: BTreeSet<_> = jobs.iter().map(|job| job.execution_id.as_str()).collect();
    assert_eq!(executions.len(), count);
}

/// A task runs one execution at a time; a marker left by a run that never ended goes stale.
pub async fn an_occurrence_due_while_the_last_run_goes_on_is_skipped(env: &Env) {
    let t = tenant();
    env.sync
        .put_task(&t, task("busy", every(1, "minutes")))
        .await
        .unwrap();
    let first = env
        .sync
        .tick(env.set_now("2025-01-01T10:01:00Z"))
        .await
        .unwrap();
    assert_eq!(first.started.len(), 1);
    let running = first.started[0].execution_id.clone();

    let second = env
        .sync
        .tick(env.set_now("2025-01-01T10:02:00Z"))
        .await
        .unwrap();
    assert!(second.started.is_empty());
    assert_eq!(second.skipped_busy, 1, "{second:?}");
    assert_eq!(
        env.sync.get_task(&t, "busy").await.unwrap().next_run_at,
        Some(utc("2025-01-01T10:03:00Z"))
    );
    let error = env.sync.run_now(&t, "busy", None).await.unwrap_err();
    assert_eq!(error.code(), "task_busy", "{error}");
    assert!(error.to_string().contains(&running), "{error}");

    env.sync
        .finish(&t, &running, RunStatus::Success)
        .await
        .unwrap();
    let third = env
        .sync
        .tick(env.set_now("2025-01-01T10:03:00Z"))
        .await
        .unwrap();
    assert_eq!(third.started.len(), 1, "{third:?}");

    // That run never ends (its pipeline died): after `stale_after` it blocks no more.
    let later = env
        .sync
        .tick(env.set_now("2025-01-01T16:03:30Z"))
        .await
        .unwrap();
    assert_eq!(later.started.len(), 1, "{later:?}");
    assert_eq!(later.skipped_busy, 0);
}

pub async fn pause_and_resume(env: &Env) {
    let t = tenant();
    env.sync
        .put_task(&t, task("hourly", every(1, "hours")))
        .await
        .unwrap();
    let paused = env.sync.pause(&t, "hourly").await.unwrap();
    assert_eq!(paused.status, SyncTaskStatus::Paused);
    assert_eq!(paused.next_run_at, None);
    let error = env.sync.pause(&t, "hourly").await.unwrap_err();
    assert_eq!(error.code(), "invalid_state", "{error}");

    let now = env.set_now("2025-01-01T14:30:00Z");
    let report = env.sync.tick(now).await.unwrap();
    assert!(
        report.started.is_empty(),
        "a paused task is not due: {report:?}"
    );

    // Resuming runs nothing of what was missed: the next run is the next occurrence.
    let resumed = env.sync.resume(&t, "hourly").await.unwrap();
    assert_eq!(resumed.status, SyncTaskStatus::Active);
    assert_eq!(resumed.next_run_at, Some(utc("2025-01-01T15:00:00Z")));
    let error = env.sync.resume(&t, "hourly").await.unwrap_err();
    assert_eq!(error.code(), "invalid_state", "{error}");
    assert!(env.sync.tick(now).await.unwrap().started.is_empty());
    let report = env
        .sync
        .tick(env.set_now("2025-01-01T15:00:00Z"))
        .await
        .unwrap();
    assert_eq!(report.started.len(), 1);

    let missing = env.sync.pause(&t, "nope").await.unwrap_err();
    assert_eq!(missing.code(), "task_not_found", "{missing}");
}

/// Cancel ends the run at once; the fetcher's check sees it; nothing else can end it again.
pub async fn cancel_ends_the_run(env: &Env) {
    let t = tenant();
    env.sync
        .put_task(&t, task("by-hand", manual()))
        .await
        .unwrap();
    let far = env.sync.tick(utc("2030-01-01T00:00:00Z")).await.unwrap();
    assert!(far.started.is_empty(), "a manual task is never due");

    let record = env
        .sync
        .run_now(&t, "by-hand", Some("user-7"))
        .await
        .unwrap();
    let id = record.execution.id.clone();
    assert_eq!(record.execution.triggered_by, Trigger::Manual);
    assert_eq!(
        record.execution.triggered_by_user_id.as_deref(),
        Some("user-7")
    );
    let jobs = env.jobs().await;
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].triggered_by, Trigger::Manual);
    assert!(!env.sync.is_cancelled(&t, &id).await.unwrap());
    env.sync
        .add_counters(
            &t,
            &id,
            CounterDeltas {
                fetched: 5,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    env.events().await;

    env.clock.advance(std::time::Duration::from_secs(90));
    let cancelled = env.sync.cancel(&t, &id, Some("user-7")).await.unwrap();
    assert_eq!(cancelled.execution.status, ExecutionStatus::Cancelled);
    assert_eq!(cancelled.execution.completed_at, Some(env.now()));
    assert_eq!(cancelled.execution.duration_ms, Some(90_000));
    assert_eq!(cancelled.cancelled_by.as_deref(), Some("user-7"));
    assert!(is_cancelled(&cancelled.execution));
    assert!(env.sync.is_cancelled(&t, &id).await.unwrap());

    let finished = env.events_of::<SyncFinished>().await;
    assert_eq!(finished.len(), 1);
    assert_eq!(finished[0].status, FinishedStatus::Cancelled);
    assert_eq!(finished[0].results.fetched, 5);
    assert_eq!(finished[0].duration_ms, 90_000);

    let again = env.sync.cancel(&t, &id, None).await.unwrap_err();
    assert_eq!(again.code(), "invalid_state", "{again}");
    assert_eq!(
        env.sync.finish(&t, &id, RunStatus::Success).await.unwrap(),
        None,
        "finishing an ended run is a no-op"
    );
    let phase = env
        .sync
        .set_phase(&t, &id, ExecutionPhase::Saving)
        .await
        .unwrap_err();
    assert_eq!(phase.code(), "invalid_state", "{phase}");

    let task = env.sync.get_task(&t, "by-hand").await.unwrap();
    assert_eq!(task.stats.total_runs, 1);
    assert_eq!((task.stats.successful_runs, task.stats.failed_runs), (0, 0));
    assert_eq!(task.last_run_status, None);
    assert_eq!(task.last_run_at, Some(env.now()));
    // The task is free again.
    env.sync.run_now(&t, "by-hand", None).await.unwrap();

    let missing = env.sync.cancel(&t, "01NOPE", None).await.unwrap_err();
    assert_eq!(missing.code(), "execution_not_found", "{missing}");
}

pub async fn retry_starts_a_new_execution_of_a_failed_one(env: &Env) {
    let t = tenant();
    env.sync
        .put_task(&t, task("flaky", manual()))
        .await
        .unwrap();
    let failed = env.sync.run_now(&t, "flaky", None).await.unwrap();
    let failed_id = failed.execution.id.clone();
    env.sync
        .append_error(
            &t,
            &failed_id,
            sync_error("fetching", "401 from the API", None),
        )
        .await
        .unwrap();
    env.sync
        .finish(&t, &failed_id, RunStatus::Failed)
        .await
        .unwrap()
        .unwrap();
    let task = env.sync.get_task(&t, "flaky").await.unwrap();
    assert_eq!(task.stats.failed_runs, 1);
    assert_eq!(task.last_run_status, Some(RunStatus::Failed));
    assert_eq!(task.stats.last_failure_at, Some(env.now()));
    assert_eq!(
        task.last_error.map(|error| error.message).as_deref(),
        Some("401 from the API")
    );
    env.jobs().await;
    env.events().await;

    let retry = env
        .sync
        .retry(&t, &failed_id, Some("user-9"))
        .await
        .unwrap();
    let execution = &retry.execution;
    assert_ne!(execution.id, failed_id);
    assert_eq!(execution.triggered_by, Trigger::Retry);
    assert_eq!(execution.retry_of.as_deref(), Some(failed_id.as_str()));
    assert_eq!(execution.retry_count, 1);
    assert_eq!(execution.triggered_by_user_id.as_deref(), Some("user-9"));
    let jobs = env.jobs().await;
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].triggered_by, Trigger::Retry);
    assert_eq!(jobs[0].execution_id, execution.id);

    let running = env.sync.retry(&t, &execution.id, None).await.unwrap_err();
    assert_eq!(running.code(), "invalid_state", "{running}");
    env.sync
        .finish(&t, &execution.id, RunStatus::Success)
        .await
        .unwrap();
    let succeeded = env.sync.retry(&t, &execution.id, None).await.unwrap_err();
    assert_eq!(succeeded.code(), "invalid_state", "{succeeded}");
    let missing = env.sync.retry(&t, "01NOPE", None).await.unwrap_err();
    assert_eq!(missing.code(), "execution_not_found", "{missing}");
}

/// ADDs from many writers on two handles all land.
pub async fn concurrent_counter_adds_are_all_counted(env: &Env, writers: usize, rounds: usize) {
    let t = tenant();
    env.sync
        .put_task(&t, task("counted", manual()))
        .await
        .unwrap();
    let id = env
        .sync
        .run_now(&t, "counted", None)
        .await
        .unwrap()
        .execution
        .id;
    let mut set = tokio::task::JoinSet::new();
    for writer in 0..writers {
        let sync = if writer % 2 == 0 {
            env.sync.clone()
        } else {
            env.other.clone()
        };
        let (t, id) = (t.clone(), id.clone());
        set.spawn(async move {
            for _ in 0..rounds {
                let up = CounterDeltas {
                    fetched: 2,
                    created: 1,
                    updated: 1,
                    pages_fetched: 1,
                    pages_pending: 1,
                    ..Default::default()
                };
                sync.add_counters(&t, &id, up).await.unwrap();
                let down = CounterDeltas {
                    pages_pending: -1,
                    ..Default::default()
                };
                sync.add_counters(&t, &id, down).await.unwrap();
            }
        });
    }
    while let Some(done) = set.join_next().await {
        done.unwrap();
    }
    let n = u64::try_from(writers * rounds).unwrap();
    let record = env.sync.get_execution(&t, &id).await.unwrap();
    let results = record.execution.results;
    assert_eq!(
        (results.fetched, results.created, results.updated),
        (2 * n, n, n)
    );
    assert_eq!(record.pages_fetched, n);
    assert_eq!(record.pages_pending, 0);
}

fn sync_error(phase: &str, message: &str, external_id: Option<String>) -> SyncError {
    SyncError {
        timestamp: utc(START),
        phase: phase.into(),
        record_id: None,
        external_id,
        error: message.into(),
        details: None,
        recoverable: false,
    }
}

/// Progress, bounded errors, TTL'd logs, then the end of the run and the task's statistics.
pub async fn finishing_updates_the_task_and_publishes_the_outcome(env: &Env) {
    let t = tenant();
    env.sync
        .put_task(&t, task("stats", manual()))
        .await
        .unwrap();
    let id = env
        .sync
        .run_now(&t, "stats", None)
        .await
        .unwrap()
        .execution
        .id;
    env.jobs().await;
    env.events().await;

    env.sync.set_total_records(&t, &id, 10).await.unwrap();
    let record = env
        .sync
        .add_counters(
            &t,
            &id,
            CounterDeltas {
                fetched: 10,
                created: 4,
                updated: 2,
                skipped: 1,
                failed: 1,
                pages_fetched: 2,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let progress = &record.execution.progress;
    assert_eq!(
        (
            progress.total_records,
            progress.processed_records,
            progress.percentage
        ),
        (Some(10), 8, 80)
    );
    let record = env
        .sync
        .set_phase(&t, &id, ExecutionPhase::Saving)
        .await
        .unwrap();
    assert_eq!(record.execution.progress.phase, ExecutionPhase::Saving);
    assert!(!record.fetch_complete);
    assert!(
        env.sync
            .mark_fetch_complete(&t, &id)
            .await
            .unwrap()
            .fetch_complete
    );

    for i in 0..105 {
        let number = env
            .sync
            .append_error(
                &t,
                &id,
                sync_error("saving", &format!("boom {i}"), Some(format!("ext-{i}"))),
            )
            .await
            .unwrap();
        assert_eq!(number, i + 1);
    }
    let record = env.sync.get_execution(&t, &id).await.unwrap();
    assert_eq!(record.error_count, 105);
    assert_eq!(record.errors_not_stored(), 5);
    assert_eq!(record.last_error.as_deref(), Some("boom 104"));
    let errors = &record.execution.errors;
    assert_eq!(errors.len(), 100);
    assert_eq!(errors[0].external_id.as_deref(), Some("ext-0"));
    assert_eq!(errors[99].external_id.as_deref(), Some("ext-99"));
    assert_eq!(errors[0].phase, "saving");
    assert_eq!(outcome_of(&record), RunStatus::Partial);

    let mut data = serde_json::Map::new();
    data.insert("status".into(), json!(503));
    let first = env
        .sync
        .append_log(&id, LogLevel::Info, "page 1 fetched", None)
        .await
        .unwrap();
    env.sync
        .append_log(&id, LogLevel::Warn, "slow page", None)
        .await
        .unwrap();
    env.sync
        .append_log(&id, LogLevel::Error, "upstream 503", Some(data))
        .await
        .unwrap();
    let (_, last_two) = env.sync.get_execution_with_logs(&t, &id, 2).await.unwrap();
    let levels: Vec<_> = last_two.iter().map(|log| log.level).collect();
    assert_eq!(levels, [LogLevel::Warn, LogLevel::Error]);
    assert_eq!(last_two[1].data.as_ref().unwrap()["status"], 503);
    let all = env.sync.execution_logs(&t, &id, None, 10).await.unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(all[0].message, "page 1 fetched");
    let after_first = env
        .sync
        .execution_logs(&t, &id, Some(&first.id), 10)
        .await
        .unwrap();
    assert_eq!(after_first.len(), 2);

    let started_at = env.now();
    env.clock.advance(std::time::Duration::from_secs(300));
    let done = env
        .sync
        .finish(&t, &id, RunStatus::Partial)
        .await
        .unwrap()
        .expect("it was running");
    assert_eq!(done.execution.status, ExecutionStatus::Partial);
    assert_eq!(done.execution.progress.phase, ExecutionPhase::Complete);
    assert_eq!(done.execution.progress.percentage, 100);
    assert_eq!(
        done.execution.completed_at,
        Some(started_at + TimeDelta::seconds(300))
    );
    assert_eq!(done.execution.duration_ms, Some(300_000));
    assert_eq!(
        env.sync.finish(&t, &id, RunStatus::Success).await.unwrap(),
        None
    );

    let task = env.sync.get_task(&t, "stats").await.unwrap();
    let stats = &task.stats;
    assert_eq!(
        (stats.total_runs, stats.successful_runs, stats.failed_runs),
        (1, 1, 0)
    );
    assert_eq!(
        (
            stats.records_processed,
            stats.records_created,
            stats.records_updated,
            stats.records_skipped,
            stats.records_failed
        ),
        (8, 4, 2, 1, 1)
    );
    assert_eq!(task.last_run_status, Some(RunStatus::Partial));
    assert_eq!(stats.last_success_at, Some(env.now()));
    assert_eq!(task.last_error.unwrap().message, "boom 104");

    let finished = env.events_of::<SyncFinished>().await;
    assert_eq!(finished.len(), 1, "{finished:?}");
    let event = &finished[0];
    assert_eq!(event.status, FinishedStatus::Partial);
    assert_eq!(
        (event.error_count, event.last_error.as_deref()),
        (105, Some("boom 104"))
    );
    assert_eq!(event.results.created, 4);
    let notifications = event.notifications.as_ref().expect("the task's settings");
    assert!(notifications.on_partial);
    assert_eq!(notifications.recipients, ["ops@example.com"]);

    // Logs expire (14 days); the execution and its errors stay.
    env.clock
        .advance(std::time::Duration::from_secs(15 * 24 * 3600));
    assert!(
        env.sync
            .execution_logs(&t, &id, None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        env.sync
            .get_execution(&t, &id)
            .await
            .unwrap()
            .execution
            .errors
            .len(),
        100
    );
}

/// The process dies after the claim's transaction and before the enqueue: the first job waits
/// in the outbox, leased, and a tick after the lease delivers it once.
pub async fn an_interrupted_start_is_delivered_by_a_later_tick(env: &Env) {
    let t = tenant();
    env.sync
        .put_task(&t, task("outboxed", manual()))
        .await
        .unwrap();
    env.fetch.failing.store(true, Ordering::SeqCst);
    let record = env.sync.run_now(&t, "outboxed", None).await.unwrap();
    env.fetch.failing.store(false, Ordering::SeqCst);
    assert!(env.jobs().await.is_empty());
    assert_eq!(env.events_of::<SyncStarted>().await.len(), 1);

    let leased = env.sync.tick(env.now()).await.unwrap();
    assert_eq!(
        leased.redelivered, 0,
        "still leased to the writer: {leased:?}"
    );
    assert!(env.jobs().await.is_empty());

    env.clock.advance(std::time::Duration::from_secs(61));
    let recovered = env.sync.tick(env.now()).await.unwrap();
    assert_eq!(recovered.redelivered, 1, "{recovered:?}");
    let jobs = env.jobs().await;
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].execution_id, record.execution.id);

    env.clock.advance(std::time::Duration::from_secs(61));
    assert_eq!(env.sync.tick(env.now()).await.unwrap().redelivered, 0);
    assert!(env.jobs().await.is_empty());
}

/// Listing newest first, by tenant and by task, page by page.
pub async fn executions_list_newest_first(env: &Env) {
    let t = tenant();
    env.sync.put_task(&t, task("one", manual())).await.unwrap();
    env.sync.put_task(&t, task("two", manual())).await.unwrap();
    let mut ids = Vec::new();
    for task_id in ["one", "two", "one"] {
        let id = env
            .sync
            .run_now(&t, task_id, None)
            .await
            .unwrap()
            .execution
            .id;
        env.sync.finish(&t, &id, RunStatus::Success).await.unwrap();
        env.clock.advance(std::time::Duration::from_secs(1));
        ids.push(id);
    }
    let first = env.sync.list_executions(&t, 2, None).await.unwrap();
    let listed: Vec<_> = first.executions.iter().map(|r| r.id().to_owned()).collect();
    assert_eq!(listed, [ids[2].clone(), ids[1].clone()]);
    let rest = env.sync.list_executions(&t, 2, first.next).await.unwrap();
    let listed: Vec<_> = rest.executions.iter().map(|r| r.id().to_owned()).collect();
    assert_eq!(listed, [ids[0].clone()]);

    let of_one = env
        .sync
        .list_task_executions(&t, "one", 10, None)
        .await
        .unwrap();
    let listed: Vec<_> = of_one
        .executions
        .iter()
        .map(|r| r.id().to_owned())
        .collect();
    assert_eq!(listed, [ids[2].clone(), ids[0].clone()]);
    assert!(
        of_one
            .executions
            .iter()
            .all(|r| r.execution.status == ExecutionStatus::Success)
    );
}
