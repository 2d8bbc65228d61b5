//! Scenarios run on every backend (see `embedded.rs` and `aws.rs`).

use std::sync::atomic::Ordering;
use std::time::Duration;

use hub_core::keys;
use hub_core::messages::{
    BusDetail, CursorCommit, EntityJson, Envelope, RecordError, WriteBatch, WriteTarget,
};
use hub_core::model::{DeleteMode, ExecutionStatus, RunStatus};
use hub_core::ports::Item;
use hub_mapping::{LookupKey, RelationshipLookup};
use hub_writer::{
    Completion, RecordsLookup, Writer, WriterConfig, lookup_by_external_ids, record_id,
};
use serde_json::{Value, json};

use crate::support::*;

const T1: &str = "2025-01-01T08:00:00.000Z";
const T2: &str = "2025-01-01T09:00:00.000Z";
const T3: &str = "2025-01-01T09:30:00.000Z";

fn counts(report: &hub_writer::BatchReport) -> (u64, u64, u64, u64) {
    (
        report.created,
        report.updated,
        report.skipped,
        report.failed,
    )
}

pub async fn creates_updates_and_skips(env: &Env) {
    let exec = env.start_run("contacts", true).await;
    assert!(matches!(
        env.page(&exec, 0, 1, Some(T1), false).await,
        Completion::Pending {
            batches_enqueued: 1,
            batches_written: 0,
            batches_dead: 0,
            fetch_complete: false
        }
    ));
    let first = batch(
        Some(&exec),
        poll_source(0, 0, 1),
        &[
            rec("a", "h1", "2025-01-01T07:00:00Z"),
            rec("b", "h1", "2025-01-01T07:00:00Z"),
            rec("c", "h1", "2025-01-01T07:00:00Z"),
        ],
        run_target(),
    );
    let report = env.writer.write_batch(&first).await.unwrap();
    assert_eq!(counts(&report), (3, 0, 0, 0));
    assert!(matches!(
        report.completion,
        Some(Completion::Pending { .. })
    ));

    let a = env.record("a").await.unwrap();
    let created_at = env.now();
    assert_eq!(a.version, 1);
    assert_eq!(a.data["name"], "Contact a");
    assert_eq!(a.external_id, "a");
    assert_eq!(a.tenant_integration_id, TENANT_INTEGRATION);
    assert_eq!(a.record_id, record_id("acme", ENTITY, &dedup_key("a")));
    assert_eq!(a.lineage.execution_id.as_deref(), Some(exec.as_str()));
    assert_eq!(a.lineage.delivery_id, None);
    assert_eq!(a.lineage.page_cursor, None);
    assert_eq!(
        (a.lineage.schema_id.as_str(), a.lineage.schema_version),
        ("contacts", 3)
    );
    assert_eq!(a.lineage.payload_hash, "h1");
    assert_eq!(a.lineage.written_at, created_at);
    assert_eq!(a.last_seen_execution.as_deref(), Some(exec.as_str()));
    assert_eq!(a.external_relationships.len(), 1);
    let relationship = &a.external_relationships[0];
    assert_eq!(
        (
            relationship.integration_id.as_str(),
            relationship.external_id.as_str(),
            relationship.external_type.as_deref()
        ),
        (INTEGRATION, "a", Some("Contact"))
    );
    assert_eq!(a.created_at, Some(created_at));

    env.advance(60);
    assert!(matches!(
        env.page(&exec, 1, 1, Some(T2), true).await,
        Completion::Pending {
            batches_enqueued: 2,
            batches_written: 1,
            batches_dead: 0,
            fetch_complete: true
        }
    ));
    let second = batch(
        Some(&exec),
        poll_source(1, 0, 1),
        &[
            // newer and changed: updated
            rec("a", "h2", "2025-01-01T08:30:00Z"),
            // unchanged: skipped
            rec("b", "h1", "2025-01-01T07:00:00Z"),
            // an older version: skipped
            rec("c", "h0", "2025-01-01T06:00:00Z"),
            // new: created
            rec("d", "h1", "2025-01-01T08:30:00Z"),
        ],
        run_target(),
    );
    let report = env.writer.write_batch(&second).await.unwrap();
    assert_eq!(counts(&report), (1, 1, 2, 0));
    assert_eq!(
        report.completion,
        Some(Completion::Finished {
            status: RunStatus::Success,
            cursor_committed: Some(T2.into()),
            removed: 0,
        })
    );

    let a = env.record("a").await.unwrap();
    assert_eq!(a.version, 2);
    assert_eq!(a.payload_hash, "h2");
    assert_eq!(a.created_at, Some(created_at));
    assert_eq!(a.updated_at, Some(env.now()));
    assert_eq!(a.lineage.page_cursor.as_deref(), Some("token-1"));
    assert_eq!(a.external_relationships.len(), 1);
    assert_eq!(a.external_relationships[0].last_synced_at, env.now());
    let c = env.record("c").await.unwrap();
    assert_eq!((c.payload_hash.as_str(), c.version), ("h1", 1));
    assert_eq!(env.record("b").await.unwrap().version, 1);

    let record = env.execution(&exec).await;
    let results = record.execution.results;
    assert_eq!(
        (
            results.created,
            results.updated,
            results.skipped,
            results.failed
        ),
        (4, 1, 2, 0)
    );
    assert_eq!(record.execution.status, ExecutionStatus::Success);
    assert_eq!((record.batches_enqueued, record.batches_written), (2, 2));
    assert_eq!(env.cursor("contacts").await.as_deref(), Some(T2));

    let finished = env.finished_events().await;
    assert_eq!(finished.len(), 1, "{finished:?}");
    assert_eq!(finished[0].execution_id, exec);
    let notifications = finished[0].notifications.as_ref().unwrap();
    assert_eq!(notifications.recipients, ["ops@example.com"]);
    let task = env.sync.get_task(&tenant(), "contacts").await.unwrap();
    assert_eq!(
        (
            task.stats.records_created,
            task.stats.records_updated,
            task.stats.successful_runs
        ),
        (4, 1, 1)
    );
}

pub async fn redelivery_changes_nothing(env: &Env) {
    let exec = env.start_run("contacts", true).await;
    env.page(&exec, 0, 2, Some(T1), true).await;
    let part0 = batch(
        Some(&exec),
        poll_source(0, 0, 2),
        &[rec("a", "h1", T1), rec("b", "h1", T1)],
        run_target(),
    );
    let part1 = batch(
        Some(&exec),
        poll_source(0, 1, 2),
        &[rec("c", "h1", T1), rec("d", "h1", T1)],
        run_target(),
    );
    assert_eq!(
        counts(&env.writer.write_batch(&part0).await.unwrap()),
        (2, 0, 0, 0)
    );
    let again = env.writer.write_batch(&part0).await.unwrap();
    assert!(again.already_counted);
    assert_eq!(counts(&again), (0, 0, 0, 0));

    // The writer dies after writing part 1's records and before counting them.
    env.state.failing.store(true, Ordering::SeqCst);
    let error = env.writer.write_batch(&part1).await.unwrap_err();
    assert!(error.is_retryable(), "{error}");
    assert_eq!(error.code(), "write_deadline");
    env.state.failing.store(false, Ordering::SeqCst);
    assert!(env.record("c").await.is_some());
    assert!(matches!(
        env.writer.complete_if_done(&tenant(), &exec).await.unwrap(),
        Completion::Pending {
            batches_written: 1,
            ..
        }
    ));
    // The redelivery counts what the first delivery did.
    let redelivered = env.writer.write_batch(&part1).await.unwrap();
    assert_eq!(counts(&redelivered), (2, 0, 0, 0));
    assert_eq!(
        finished(redelivered.completion.as_ref().unwrap()),
        Some(RunStatus::Success)
    );
    let late = env.writer.write_batch(&part1).await.unwrap();
    assert!(late.already_counted);
    assert_eq!(
        late.completion,
        Some(Completion::AlreadyEnded(ExecutionStatus::Success))
    );

    let record = env.execution(&exec).await;
    let results = record.execution.results;
    assert_eq!(
        (results.created, results.updated, results.skipped),
        (4, 0, 0)
    );
    assert_eq!(record.batches_written, 2);
    assert_eq!(env.finished_events().await.len(), 1);
    assert_eq!(env.record("c").await.unwrap().version, 1);

    // Webhooks: the same item twice in one batch, then an older version of it.
    let hook = batch(
        None,
        webhook_source("d-1"),
        &[rec("a", "h2", T2), rec("a", "h3", T3)],
        run_target(),
    );
    assert_eq!(
        counts(&env.writer.write_batch(&hook).await.unwrap()),
        (0, 1, 1, 0)
    );
    assert_eq!(env.record("a").await.unwrap().payload_hash, "h3");
    let stale = batch(
        None,
        webhook_source("d-2"),
        &[rec("a", "h2", T2)],
        run_target(),
    );
    assert_eq!(
        counts(&env.writer.write_batch(&stale).await.unwrap()),
        (0, 0, 1, 0)
    );
    let a = env.record("a").await.unwrap();
    assert_eq!((a.payload_hash.as_str(), a.version), ("h3", 2));
    assert_eq!(a.lineage.delivery_id.as_deref(), Some("d-1"));
    assert_eq!(a.lineage.execution_id, None);
    assert_eq!(a.last_seen_execution.as_deref(), Some(exec.as_str()));
}

pub async fn create_and_update_switches_are_honoured(env: &Env) {
    let update_only = WriteTarget {
        create_if_missing: false,
        ..run_target()
    };
    let create_only = WriteTarget {
        update_if_exists: false,
        ..run_target()
    };
    let hook = |delivery: &str, records: &[Rec<'_>], target| {
        batch(None, webhook_source(delivery), records, target)
    };
    let report = env
        .writer
        .write_batch(&hook("d-1", &[rec("a", "h1", T1)], update_only))
        .await
        .unwrap();
    assert_eq!(counts(&report), (0, 0, 1, 0));
    assert!(env.record("a").await.is_none());

    let report = env
        .writer
        .write_batch(&hook("d-2", &[rec("a", "h1", T1)], create_only))
        .await
        .unwrap();
    assert_eq!(counts(&report), (1, 0, 0, 0));
    let report = env
        .writer
        .write_batch(&hook("d-3", &[rec("a", "h2", T2)], create_only))
        .await
        .unwrap();
    assert_eq!(counts(&report), (0, 0, 1, 0));
    assert_eq!(env.record("a").await.unwrap().payload_hash, "h1");

    let report = env
        .writer
        .write_batch(&hook("d-4", &[rec("a", "h2", T2)], update_only))
        .await
        .unwrap();
    assert_eq!(counts(&report), (0, 1, 0, 0));
    assert_eq!(env.record("a").await.unwrap().payload_hash, "h2");
}

pub async fn record_failures_are_recorded_and_the_rest_is_written(env: &Env) {
    let exec = env.start_run("contacts", true).await;
    env.page(&exec, 0, 1, Some(T1), true).await;
    let mut mixed = batch(
        Some(&exec),
        poll_source(0, 0, 1),
        &[rec("a", "h1", T1), rec("huge", "h1", T1)],
        run_target(),
    );
    let mut huge = mixed.items[1].data.to_map();
    huge.insert("blob".into(), Value::from("x".repeat(450 * 1024)));
    mixed.items[1].data = EntityJson::from_map(&huge).unwrap();
    let mapping_error = |index: u32, field: &str| RecordError {
        record_index: index,
        external_id: Some(format!("m{index}")),
        target_field: Some(field.into()),
        source_path: Some(field.into()),
        code: "missing_required_field".into(),
        message: format!("{field} is required"),
    };
    mixed.errors = vec![
        mapping_error(5, "email"),
        mapping_error(5, "name"),
        mapping_error(6, "email"),
    ];
    let report = env.writer.write_batch(&mixed).await.unwrap();
    assert_eq!(counts(&report), (1, 0, 0, 3));
    assert_eq!(report.failures.len(), 1);
    assert_eq!(report.failures[0].code, "rejected_by_store");
    assert_eq!(report.failures[0].external_id, "huge");
    assert_eq!(
        finished(report.completion.as_ref().unwrap()),
        Some(RunStatus::Partial)
    );
    assert!(env.record("a").await.is_some());
    assert!(env.record("huge").await.is_none());
    // A partial run leaves the cursor where it was: the failed records are read again.
    assert_eq!(env.cursor("contacts").await, None);

    let record = env.execution(&exec).await;
    assert_eq!(record.error_count, 4);
    let phases: Vec<_> = record
        .execution
        .errors
        .iter()
        .map(|e| (e.phase.as_str(), e.external_id.as_deref().unwrap_or("")))
        .collect();
    assert_eq!(
        phases,
        [
            ("saving", "huge"),
            ("transforming", "m5"),
            ("transforming", "m5"),
            ("transforming", "m6"),
        ]
    );
    assert_eq!(
        record.execution.errors[0].record_id.as_deref(),
        Some(record_id("acme", ENTITY, &dedup_key("huge")).as_str())
    );
    let finished = env.finished_events().await;
    assert_eq!(finished.len(), 1);
    assert_eq!(finished[0].detail_type(), "sync.partial");
}

pub async fn the_cursor_moves_only_once_every_batch_is_written(env: &Env) {
    let exec = env.start_run("contacts", true).await;
    // The fetcher runs ahead: three pages counted before any batch is written.
    env.page(&exec, 0, 2, Some(T1), false).await;
    env.page(&exec, 1, 2, Some(T3), false).await;
    env.page(&exec, 2, 1, Some(T2), true).await;
    let part = |page: u32, part: u32, parts: u32, id: &str| {
        batch(
            Some(&exec),
            poll_source(page, part, parts),
            &[rec(id, "h1", T1)],
            run_target(),
        )
    };
    let order = [
        part(2, 0, 1, "e"),
        part(1, 1, 2, "d"),
        part(0, 0, 2, "a"),
        part(1, 0, 2, "c"),
    ];
    for batch in &order {
        let report = env.writer.write_batch(batch).await.unwrap();
        assert!(
            matches!(report.completion, Some(Completion::Pending { .. })),
            "{:?}",
            report.completion
        );
        assert_eq!(env.cursor("contacts").await, None);
    }
    let last = env.writer.write_batch(&part(0, 1, 2, "b")).await.unwrap();
    assert_eq!(
        last.completion,
        Some(Completion::Finished {
            status: RunStatus::Success,
            cursor_committed: Some(T3.into()),
            removed: 0,
        })
    );
    assert_eq!(env.cursor("contacts").await.as_deref(), Some(T3));

    // The next run's window starts at the committed cursor.
    env.sync.run_now(&tenant(), "contacts", None).await.unwrap();
    let jobs = env.drain("fetch").await;
    let job = hub_core::messages::SyncJob::from_json(&jobs[0]).unwrap();
    assert_eq!(job.cursor_window.from.as_deref(), Some(T3));
}

pub async fn the_cursor_never_moves_backwards(env: &Env) {
    // A cursor some other run (or a person) committed, without our ordering key.
    let mut item = Item::new();
    let key = keys::cursor("acme", "contacts");
    item.insert("pk".into(), key.pk.clone().into());
    item.insert("sk".into(), key.sk.clone().into());
    item.insert("cursor".into(), T3.into());
    env.ports.state.put(item, None).await.unwrap();

    let exec = env.start_run("contacts", true).await;
    env.page(&exec, 0, 1, Some(T2), true).await;
    let report = env
        .writer
        .write_batch(&batch(
            Some(&exec),
            poll_source(0, 0, 1),
            &[rec("a", "h1", T1)],
            run_target(),
        ))
        .await
        .unwrap();
    assert_eq!(
        report.completion,
        Some(Completion::Finished {
            status: RunStatus::Success,
            cursor_committed: None,
            removed: 0,
        })
    );
    assert_eq!(env.cursor("contacts").await.as_deref(), Some(T3));

    // Integer cursors compare as numbers: 10 is after 9.
    for (candidate, expected) in [("9", "9"), ("10", "10"), ("9", "10"), ("0100", "0100")] {
        let exec = env.start_run("numbers", true).await;
        let mut only = batch(Some(&exec), poll_source(0, 0, 1), &[], run_target());
        only.cursor_commit = Some(CursorCommit {
            task_id: "numbers".into(),
            page: 0,
            cursor: candidate.into(),
        });
        env.page(&exec, 0, 1, None, true).await;
        let report = env.writer.write_batch(&only).await.unwrap();
        assert_eq!(
            finished(report.completion.as_ref().unwrap()),
            Some(RunStatus::Success)
        );
        assert_eq!(env.cursor("numbers").await.as_deref(), Some(expected));
    }
}

pub async fn failed_and_cancelled_runs_keep_the_cursor(env: &Env) {
    let t = tenant();
    // Cancelled half-way: the batch in flight is still written, the cursor stays.
    let exec = env.start_run("contacts", true).await;
    env.page(&exec, 0, 2, Some(T2), true).await;
    env.writer
        .write_batch(&batch(
            Some(&exec),
            poll_source(0, 0, 2),
            &[rec("a", "h1", T1)],
            run_target(),
        ))
        .await
        .unwrap();
    env.sync.cancel(&t, &exec, Some("u-1")).await.unwrap();
    let late = env
        .writer
        .write_batch(&batch(
            Some(&exec),
            poll_source(0, 1, 2),
            &[rec("b", "h1", T1)],
            run_target(),
        ))
        .await
        .unwrap();
    assert_eq!(
        late.completion,
        Some(Completion::AlreadyEnded(ExecutionStatus::Cancelled))
    );
    assert!(env.record("b").await.is_some());
    assert_eq!(env.cursor("contacts").await, None);
    assert_eq!(env.execution(&exec).await.execution.results.created, 2);

    // Every record failed to map: the run fails, the cursor stays.
    let exec = env.start_run("contacts", true).await;
    env.page(&exec, 0, 1, Some(T2), true).await;
    let mut failing = batch(Some(&exec), poll_source(0, 0, 1), &[], run_target());
    failing.errors = vec![RecordError {
        record_index: 0,
        external_id: Some("x".into()),
        target_field: None,
        source_path: None,
        code: "invalid_type".into(),
        message: "not a number".into(),
    }];
    let report = env.writer.write_batch(&failing).await.unwrap();
    assert_eq!(
        finished(report.completion.as_ref().unwrap()),
        Some(RunStatus::Failed)
    );
    assert_eq!(env.cursor("contacts").await, None);
    let events = env.finished_events().await;
    assert_eq!(
        events.iter().map(|e| e.detail_type()).collect::<Vec<_>>(),
        ["sync.failed"]
    );

    // The fetcher gave up after one page: its batch lands, the cursor stays.
    let exec = env.start_run("contacts", true).await;
    env.page(&exec, 0, 1, Some(T2), false).await;
    env.sync.finish(&t, &exec, RunStatus::Failed).await.unwrap();
    let report = env
        .writer
        .write_batch(&batch(
            Some(&exec),
            poll_source(0, 0, 1),
            &[rec("c", "h1", T1)],
            run_target(),
        ))
        .await
        .unwrap();
    assert_eq!(
        report.completion,
        Some(Completion::AlreadyEnded(ExecutionStatus::Failed))
    );
    assert_eq!(env.cursor("contacts").await, None);
}

pub async fn racing_writers_finish_the_run_once(env: &Env, rounds: usize) {
    for round in 0..rounds {
        let exec = env.start_run("contacts", true).await;
        env.page(&exec, 0, 4, Some(T2), true).await;
        let parts: Vec<WriteBatch> = (0..4)
            .map(|part| {
                let a = format!("r{round}-{part}-a");
                let b = format!("r{round}-{part}-b");
                batch(
                    Some(&exec),
                    poll_source(0, part, 4),
                    &[rec(&a, "h1", T1), rec(&b, "h1", T1)],
                    run_target(),
                )
            })
            .collect();
        env.writer.write_batch(&parts[0]).await.unwrap();
        // A duplicate delivery of one batch to two writers at once counts it once.
        let (x, y) = tokio::join!(
            env.writer.write_batch(&parts[1]),
            env.other.write_batch(&parts[1])
        );
        let (x, y) = (x.unwrap(), y.unwrap());
        assert!(x.already_counted || y.already_counted, "{x:?} {y:?}");
        // The last two batches land at the same time on two writers.
        let (x, y) = tokio::join!(
            env.writer.write_batch(&parts[2]),
            env.other.write_batch(&parts[3])
        );
        let completions = [x.unwrap().completion, y.unwrap().completion];
        let finishers = completions
            .iter()
            .filter(|c| matches!(c, Some(Completion::Finished { .. })))
            .count();
        assert_eq!(finishers, 1, "{completions:?}");
        let record = env.execution(&exec).await;
        assert_eq!(record.execution.status, ExecutionStatus::Success);
        assert_eq!(record.batches_written, 4);
        assert_eq!(record.execution.results.created, 8);
        assert_eq!(env.finished_events().await.len(), 1);
    }

    // All batches written before the fetcher reports its last (empty) page: the fetcher's call
    // completes the run.
    let exec = env.start_run("contacts", true).await;
    env.page(&exec, 0, 1, Some(T1), false).await;
    env.writer
        .write_batch(&batch(
            Some(&exec),
            poll_source(0, 0, 1),
            &[rec("z", "h1", T1)],
            run_target(),
        ))
        .await
        .unwrap();
    let completion = env.page(&exec, 1, 0, None, true).await;
    assert_eq!(finished(&completion), Some(RunStatus::Success));
    // A redelivered fetch job for that page counts nothing and learns the first count.
    let again = env
        .writer
        .record_page_enqueued(
            &tenant(),
            &exec,
            hub_writer::PageEnqueued {
                page: 0,
                batches: 3,
                cursor_candidate: Some(T3.into()),
                last_page: false,
            },
        )
        .await
        .unwrap();
    assert!(again.already_recorded);
    assert_eq!(again.batches, 1);
    assert_eq!(env.execution(&exec).await.batches_enqueued, 1);
}

/// Writes `records` as the only batch of a new run of the full-sync task `full`.
async fn full_run(env: &Env, records: &[Rec<'_>], target: WriteTarget) -> Completion {
    let exec = env.start_run("full", false).await;
    env.page(&exec, 0, 1, None, true).await;
    env.writer
        .write_batch(&batch(Some(&exec), poll_source(0, 0, 1), records, target))
        .await
        .unwrap()
        .completion
        .unwrap()
}

async fn external_ids(env: &Env, ids: &[&str]) -> Vec<String> {
    let keys: Vec<(String, String)> = ids
        .iter()
        .map(|id| (ENTITY.to_owned(), (*id).to_owned()))
        .collect();
    let found = lookup_by_external_ids(env.ports.records.as_ref(), "acme", INTEGRATION, &keys, 4)
        .await
        .unwrap();
    let mut names: Vec<String> = found.keys().map(|(_, id)| id.clone()).collect();
    names.sort();
    names
}

pub async fn delete_if_removed_removes_what_a_full_sync_no_longer_sees(env: &Env) {
    let full = full_sync_target();
    let first = full_run(
        env,
        &[
            rec("a", "h1", T1),
            rec("b", "h1", T1),
            rec("c", "h1", T1),
            rec("d", "h1", T1),
        ],
        full,
    )
    .await;
    assert_eq!(finished(&first), Some(RunStatus::Success));
    // Another tenant integration's record of the same type is never touched.
    let mut other = batch(
        None,
        webhook_source("o-1"),
        &[rec("x", "h1", T1)],
        run_target(),
    );
    other.tenant_integration_id = "ti-other".into();
    env.writer.write_batch(&other).await.unwrap();

    env.advance(3600);
    let exec = env.start_run("full", false).await;
    env.page(&exec, 0, 1, None, true).await;
    // A webhook creates a record while the run goes on: the run could not have seen it.
    env.advance(10);
    env.writer
        .write_batch(&batch(
            None,
            webhook_source("w-1"),
            &[rec("e", "h1", T3)],
            run_target(),
        ))
        .await
        .unwrap();
    let second = env
        .writer
        .write_batch(&batch(
            Some(&exec),
            poll_source(0, 0, 1),
            // a unchanged, b changed, c an older version: all seen; d is gone upstream.
            &[
                rec("a", "h1", T1),
                rec("b", "h2", T2),
                rec("c", "h0", "2025-01-01T06:00:00Z"),
            ],
            full,
        ))
        .await
        .unwrap();
    assert_eq!(counts(&second), (0, 1, 2, 0));
    assert_eq!(
        second.completion,
        Some(Completion::Finished {
            status: RunStatus::Success,
            cursor_committed: None,
            removed: 1,
        })
    );
    let d = env.record("d").await.unwrap();
    assert!(d.deleted);
    assert!(!env.record("e").await.unwrap().deleted);
    assert!(!env.record("c").await.unwrap().deleted);
    assert!(!env.record("x").await.unwrap().deleted);
    assert_eq!(
        external_ids(env, &["a", "b", "c", "d", "e", "x"]).await,
        ["a", "b", "c", "e", "x"]
    );
    let (_, logs) = env
        .sync
        .get_execution_with_logs(&tenant(), &exec, 10)
        .await
        .unwrap();
    assert!(
        logs.iter()
            .any(|log| log.message.contains("1 c_contact records")),
        "{logs:?}"
    );

    // Hard deletes: c and e are not seen this time and go; d stays flagged.
    env.advance(3600);
    let hard = WriteTarget {
        delete_mode: DeleteMode::Hard,
        ..full
    };
    let third = full_run(env, &[rec("a", "h1", T1), rec("b", "h2", T2)], hard).await;
    assert!(
        matches!(third, Completion::Finished { removed: 2, .. }),
        "{third:?}"
    );
    assert!(env.record("c").await.is_none());
    assert!(env.record("e").await.is_none());
    assert!(env.record("d").await.unwrap().deleted);

    // d comes back: restored, counted as created, found again.
    env.advance(3600);
    let exec = env.start_run("full", false).await;
    env.page(&exec, 0, 1, None, true).await;
    let back = env
        .writer
        .write_batch(&batch(
            Some(&exec),
            poll_source(0, 0, 1),
            &[rec("a", "h1", T1), rec("b", "h2", T2), rec("d", "h1", T1)],
            full,
        ))
        .await
        .unwrap();
    assert_eq!(counts(&back), (1, 0, 2, 0));
    let d = env.record("d").await.unwrap();
    assert!(!d.deleted);
    assert_eq!(d.version, 3);
    assert_eq!(external_ids(env, &["d"]).await, ["d"]);

    // A run with failures removes nothing, nor does an incremental one.
    env.advance(3600);
    let exec = env.start_run("full", false).await;
    env.page(&exec, 0, 1, None, true).await;
    let mut partial = batch(
        Some(&exec),
        poll_source(0, 0, 1),
        &[rec("a", "h1", T1)],
        full,
    );
    partial.errors = vec![RecordError {
        record_index: 1,
        external_id: Some("b".into()),
        target_field: None,
        source_path: None,
        code: "invalid_type".into(),
        message: "bad".into(),
    }];
    let report = env.writer.write_batch(&partial).await.unwrap();
    assert!(matches!(
        report.completion,
        Some(Completion::Finished {
            status: RunStatus::Partial,
            removed: 0,
            ..
        })
    ));
    let exec = env.start_run("incremental", true).await;
    env.page(&exec, 0, 1, None, true).await;
    let report = env
        .writer
        .write_batch(&batch(
            Some(&exec),
            poll_source(0, 0, 1),
            &[rec("a", "h1", T1)],
            full,
        ))
        .await
        .unwrap();
    assert!(matches!(
        report.completion,
        Some(Completion::Finished {
            status: RunStatus::Success,
            removed: 0,
            ..
        })
    ));
    assert!(!env.record("b").await.unwrap().deleted);
}

pub async fn a_long_sweep_continues_in_new_messages(env: &Env) {
    let records: Vec<String> = (0..6).map(|n| format!("s{n}")).collect();
    let all: Vec<Rec<'_>> = records.iter().map(|id| rec(id, "h1", T1)).collect();
    full_run(env, &all, full_sync_target()).await;

    let slow = Writer::with_config(
        env.ports.clone(),
        WriterConfig {
            completion_budget: Duration::ZERO,
            sweep_page_size: 2,
            ..config()
        },
    );
    env.advance(3600);
    let exec = env.start_run("full", false).await;
    env.page(&exec, 0, 1, None, true).await;
    let report = slow
        .write_batch(&batch(
            Some(&exec),
            poll_source(0, 0, 1),
            &all[..1],
            full_sync_target(),
        ))
        .await
        .unwrap();
    assert!(
        matches!(report.completion, Some(Completion::Continued { .. })),
        "{:?}",
        report.completion
    );
    let mut deliveries = 0;
    let removed = loop {
        let bodies = env.drain("write").await;
        assert_eq!(bodies.len(), 1, "one continuation at a time");
        deliveries += 1;
        assert!(deliveries < 10, "the sweep does not end");
        let continuation = WriteBatch::from_json(&bodies[0]).unwrap();
        assert!(continuation.items.is_empty());
        let report = slow.write_batch(&continuation).await.unwrap();
        assert!(report.already_counted);
        match report.completion.unwrap() {
            Completion::Continued { .. } => continue,
            Completion::Finished {
                status, removed, ..
            } => {
                assert_eq!(status, RunStatus::Success);
                break removed;
            }
            other => panic!("unexpected completion {other:?}"),
        }
    };
    assert_eq!(removed, 5);
    assert!(deliveries >= 2);
    for id in &records[1..] {
        assert!(env.record(id).await.unwrap().deleted, "{id}");
    }
    assert!(!env.record("s0").await.unwrap().deleted);
    assert_eq!(env.finished_events().await.len(), 1);
    assert_eq!(env.execution(&exec).await.execution.results.skipped, 1);
}

pub async fn lookup_finds_records_by_external_id(env: &Env) {
    let hook = |delivery: &str, entity: &str, ids: &[&str]| {
        let records: Vec<Rec<'_>> = ids.iter().map(|id| rec(id, "h1", T1)).collect();
        let mut batch = batch(None, webhook_source(delivery), &records, run_target());
        batch.target_entity_type = entity.into();
        batch
    };
    env.writer
        .write_batch(&hook("d-1", "c_contact", &["a", "b"]))
        .await
        .unwrap();
    env.writer
        .write_batch(&hook("d-2", "c_company", &["a"]))
        .await
        .unwrap();
    let key = |entity: &str, id: &str| (entity.to_owned(), id.to_owned());
    let found = lookup_by_external_ids(
        env.ports.records.as_ref(),
        "acme",
        INTEGRATION,
        &[
            key("c_contact", "a"),
            key("c_contact", "b"),
            key("c_company", "a"),
            key("c_contact", "missing"),
            key("c_contact", "a"),
        ],
        2,
    )
    .await
    .unwrap();
    assert_eq!(found.len(), 3);
    assert_eq!(
        found[&key("c_company", "a")],
        record_id("acme", "c_company", &dedup_key("a"))
    );
    assert_eq!(
        found[&key("c_contact", "b")],
        record_id("acme", "c_contact", &dedup_key("b"))
    );
    let elsewhere = lookup_by_external_ids(
        env.ports.records.as_ref(),
        "acme",
        "erp",
        &[key("c_contact", "a")],
        2,
    )
    .await
    .unwrap();
    assert!(elsewhere.is_empty());

    let lookup = RecordsLookup::new(env.ports.records.clone(), "acme", INTEGRATION);
    let by_id = LookupKey {
        shard_type: "c_contact".into(),
        field: None,
        value: "a".into(),
    };
    let by_field = LookupKey {
        shard_type: "c_contact".into(),
        field: Some("email".into()),
        value: "a@example.com".into(),
    };
    let resolved = lookup.resolve(&[by_id.clone(), by_field]).await.unwrap();
    assert_eq!(resolved.len(), 1);
    assert_eq!(
        resolved[&by_id],
        record_id("acme", "c_contact", &dedup_key("a"))
    );
}

/// The stored attributes other tools rely on (the table layout in the crate documentation).
pub async fn records_carry_the_documented_attributes(env: &Env) {
    env.writer
        .write_batch(&batch(
            None,
            webhook_source("d-9"),
            &[rec("a", "h1", T1)],
            run_target(),
        ))
        .await
        .unwrap();
    let id = record_id("acme", ENTITY, &dedup_key("a"));
    let item = env
        .ports
        .records
        .get(&keys::records::record("acme", ENTITY, &id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(item["pk"], json!("acme#c_contact"));
    assert_eq!(item["gsi1pk"], json!("acme#crm#a"));
    assert_eq!(item["gsi1sk"], json!("c_contact"));
    assert_eq!(item["sourceModifiedAt"], json!(T1));
    assert_eq!(item["deleted"], json!(false));
    let data: Value = serde_json::from_str(item["data"].as_str().unwrap()).unwrap();
    assert_eq!(data["name"], "Contact a");
    let lineage: Value = serde_json::from_str(item["lineage"].as_str().unwrap()).unwrap();
    assert_eq!(lineage["deliveryId"], "d-9");
    assert_eq!(
        lineage["source"],
        json!({"type": "webhook", "deliveryId": "d-9"})
    );
}

/// A delivery that claimed the run's completion and died before ending the run (here: the
/// transaction that ends it fails) leaves a live completion lease. Every other caller leaves
/// the run to the claimant, so the claimant's own message, delivered again, must take its claim
/// over rather than defer to it: otherwise, when that message comes back before the lease runs
/// out (`hub dev` returns a batch cut short at shutdown to its queue at once), nobody ends the
/// run and it stays `running`.
pub async fn a_redelivered_batch_takes_over_the_completion_it_claimed(env: &Env) {
    let exec = env.start_run("contacts", true).await;
    env.page(&exec, 0, 1, Some(T1), true).await;
    let last = batch(
        Some(&exec),
        poll_source(0, 0, 1),
        &[rec("a", "h1", T1)],
        run_target(),
    );
    // The batch's count goes through, the run's end does not.
    env.state.transactions_left.store(1, Ordering::SeqCst);
    env.writer
        .write_batch(&last)
        .await
        .expect_err("ending the run fails");
    env.state
        .transactions_left
        .store(u64::MAX, Ordering::SeqCst);
    let claimed = env
        .ports
        .state
        .get(&keys::execution("acme", &exec))
        .await
        .unwrap()
        .unwrap();
    assert!(
        claimed.contains_key(hub_writer::attr::COMPLETION_LEASE_UNTIL),
        "the failed delivery had claimed the completion"
    );
    assert!(env.execution(&exec).await.is_running());

    // Another caller leaves the live claim alone...
    assert_eq!(
        env.other.complete_if_done(&tenant(), &exec).await.unwrap(),
        Completion::ClaimedElsewhere
    );
    // ...the batch's own redelivery, before the lease runs out, ends the run.
    let again = env.writer.write_batch(&last).await.unwrap();
    assert!(again.already_counted);
    assert!(
        matches!(
            again.completion,
            Some(Completion::Finished {
                status: RunStatus::Success,
                ..
            })
        ),
        "{:?}",
        again.completion
    );
    let ended = env.execution(&exec).await;
    assert_eq!(ended.execution.status, ExecutionStatus::Success);
    assert_eq!(ended.execution.results.created, 1);
    assert_eq!(env.cursor("contacts").await.as_deref(), Some(T1));
    assert_eq!(env.finished_events().await.len(), 1);
}

/// A dead-letter queue's note of `body`, failed on its last allowed delivery on `queue`.
fn dead_note(queue: &str, message_id: &str, body: &str) -> hub_runtime::FailureNote {
    let message = hub_runtime::QueueMessage {
        message_id: message_id.into(),
        body: body.into(),
        receive_count: hub_core::ports::MAX_RECEIVE_COUNT,
        attributes: Default::default(),
    };
    let error =
        hub_runtime::HandlerError::permanent("schema_invalid", "the regex does not compile");
    hub_runtime::FailureNote::new(queue, &message, &error, chrono::Utc::now())
}

async fn note_dead(env: &Env, queue: &str, message_id: &str, body: &str) -> Option<Completion> {
    env.writer
        .record_dead_letter(&dead_note(queue, message_id, body), body)
        .await
        .unwrap()
}

/// The record batch the transformer would have received for a write batch's source.
fn record_batch_body(write: &WriteBatch) -> String {
    hub_core::messages::RecordBatch {
        v: hub_core::messages::V1,
        execution_id: write.execution_id.clone(),
        tenant_id: write.tenant_id.clone(),
        tenant_integration_id: write.tenant_integration_id.clone(),
        task_id: Some("contacts".into()),
        schema_id: "contacts".into(),
        schema_version: 3,
        source: write.source.clone().unwrap(),
        records: vec![json!({"id": "x"})],
        last_page: false,
        cursor_candidate: None,
    }
    .to_json()
    .unwrap()
}

pub async fn dead_batches_end_the_run_and_a_replay_writes_them_once(env: &Env) {
    let t = tenant();
    let exec = env.start_run("contacts", true).await;
    env.page(&exec, 0, 2, Some(T2), true).await;
    let a = batch(
        Some(&exec),
        poll_source(0, 0, 2),
        &[rec("a", "h1", T1)],
        run_target(),
    );
    let b = batch(
        Some(&exec),
        poll_source(0, 1, 2),
        &[rec("b", "h1", T1), rec("c", "h1", T1)],
        run_target(),
    );
    env.writer.write_batch(&a).await.unwrap();
    // B dies on the write queue: every batch is accounted for, so the run ends, and not as a
    // success (a was written, so partial); the cursor stays for the next run to read again.
    let completion = note_dead(env, "write", "m-b", &b.to_json().unwrap()).await;
    assert_eq!(
        completion,
        Some(Completion::Finished {
            status: RunStatus::Partial,
            cursor_committed: None,
            removed: 0,
        })
    );
    let record = env.execution(&exec).await;
    assert_eq!(record.execution.status, ExecutionStatus::Partial);
    assert_eq!(
        (
            record.batches_enqueued,
            record.batches_written,
            record.batches_dead
        ),
        (2, 1, 1)
    );
    assert_eq!(env.cursor("contacts").await, None);
    let errors = &record.execution.errors;
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].phase, "saving");
    let details = errors[0].details.as_ref().unwrap();
    assert_eq!(details["code"], "dead_lettered");
    assert_eq!(details["queue"], "write-dlq");
    assert_eq!(details["messageId"], "m-b");
    assert_eq!(details["reason"], "schema_invalid");
    assert!(errors[0].error.contains(&format!("--execution {exec}")));
    // The task is free again: a new run can start.
    assert!(env.sync.get_task(&t, "contacts").await.is_ok());

    // Told twice (a second failure note of the same message): counted once.
    assert_eq!(
        note_dead(env, "write", "m-b", &b.to_json().unwrap()).await,
        None
    );
    let again = env.execution(&exec).await;
    assert_eq!((again.batches_dead, again.error_count), (1, 1));

    // The replayed batch is written once, and leaves the dead count.
    let replayed = env.writer.write_batch(&b).await.unwrap();
    assert_eq!(counts(&replayed), (2, 0, 0, 0));
    let after = env.execution(&exec).await;
    assert_eq!((after.batches_written, after.batches_dead), (2, 0));
    assert_eq!(after.execution.results.created, 3);
    assert!(env.record("c").await.is_some());
    let replayed_again = env.writer.write_batch(&b).await.unwrap();
    assert!(replayed_again.already_counted);
    assert_eq!(env.execution(&exec).await.execution.results.created, 3);
}

pub async fn a_run_whose_every_batch_dies_ends_failed(env: &Env) {
    let exec = env.start_run("contacts", true).await;
    env.page(&exec, 0, 2, Some(T2), true).await;
    let parts: Vec<WriteBatch> = (0..2)
        .map(|part| {
            batch(
                Some(&exec),
                poll_source(0, part, 2),
                &[rec("a", "h1", T1)],
                run_target(),
            )
        })
        .collect();
    let first = note_dead(env, "transform", "m-0", &record_batch_body(&parts[0])).await;
    assert!(
        matches!(
            first,
            Some(Completion::Pending {
                batches_enqueued: 2,
                batches_written: 0,
                batches_dead: 1,
                fetch_complete: true
            })
        ),
        "{first:?}"
    );
    let last = note_dead(env, "transform", "m-1", &record_batch_body(&parts[1])).await;
    assert_eq!(finished(last.as_ref().unwrap()), Some(RunStatus::Failed));
    let record = env.execution(&exec).await;
    assert_eq!(record.execution.status, ExecutionStatus::Failed);
    assert_eq!(record.error_count, 2);
    assert!(
        record
            .execution
            .errors
            .iter()
            .all(|e| e.phase == "transforming")
    );
    assert_eq!(env.cursor("contacts").await, None);
    assert_eq!(env.finished_events().await.len(), 1);
}

pub async fn a_dead_fetch_job_ends_the_fetch_and_the_run_after_its_batches(env: &Env) {
    let exec = env.start_run("contacts", true).await;
    // Page 0 sent one batch; the job of page 1 died.
    env.page(&exec, 0, 1, Some(T1), false).await;
    let job = hub_core::messages::SyncJob {
        v: hub_core::messages::V1,
        execution_id: exec.clone(),
        tenant_id: tenant(),
        task_id: "contacts".into(),
        attempt: 1,
        triggered_by: hub_core::model::Trigger::Schedule,
        page: 1,
        page_token: Some("token-1".into()),
        cursor_window: Default::default(),
    };
    let dead = note_dead(env, "fetch", "m-job", &job.to_json().unwrap()).await;
    assert!(
        matches!(
            dead,
            Some(Completion::Pending {
                batches_enqueued: 1,
                batches_written: 0,
                fetch_complete: true,
                ..
            })
        ),
        "{dead:?}"
    );
    let report = env
        .writer
        .write_batch(&batch(
            Some(&exec),
            poll_source(0, 0, 1),
            &[rec("a", "h1", T1)],
            run_target(),
        ))
        .await
        .unwrap();
    assert_eq!(
        finished(report.completion.as_ref().unwrap()),
        Some(RunStatus::Partial)
    );
    let record = env.execution(&exec).await;
    assert_eq!(record.execution.errors[0].phase, "fetching");
    assert_eq!(env.cursor("contacts").await, None);
}

pub async fn a_dead_batch_replayed_mid_run_leaves_the_run_to_finish_when_all_are_written(
    env: &Env,
) {
    let exec = env.start_run("contacts", true).await;
    env.page(&exec, 0, 3, Some(T2), true).await;
    let parts: Vec<WriteBatch> = (0..3)
        .map(|part| {
            batch(
                Some(&exec),
                poll_source(0, part, 3),
                &[rec(["a", "b", "c"][part as usize], "h1", T1)],
                run_target(),
            )
        })
        .collect();
    note_dead(env, "write", "m-0", &parts[0].to_json().unwrap()).await;
    // Replayed at once, while the other two are still on their way: 1 written, 0 dead.
    let replayed = env.writer.write_batch(&parts[0]).await.unwrap();
    assert!(
        matches!(
            replayed.completion,
            Some(Completion::Pending {
                batches_written: 1,
                batches_dead: 0,
                ..
            })
        ),
        "{:?}",
        replayed.completion
    );
    let second = env.writer.write_batch(&parts[1]).await.unwrap();
    assert!(matches!(
        second.completion,
        Some(Completion::Pending { .. })
    ));
    let last = env.writer.write_batch(&parts[2]).await.unwrap();
    // Everything was written in the end; the dead letter stays on record, so partial.
    assert_eq!(
        finished(last.completion.as_ref().unwrap()),
        Some(RunStatus::Partial)
    );
    assert_eq!(env.execution(&exec).await.execution.results.created, 3);
}

pub async fn a_batch_written_by_a_duplicate_is_not_dead(env: &Env) {
    let exec = env.start_run("contacts", true).await;
    env.page(&exec, 0, 2, Some(T2), true).await;
    let a = batch(
        Some(&exec),
        poll_source(0, 0, 2),
        &[rec("a", "h1", T1)],
        run_target(),
    );
    env.writer.write_batch(&a).await.unwrap();
    assert_eq!(
        note_dead(env, "write", "m-a", &a.to_json().unwrap()).await,
        None
    );
    // Webhook batches and bodies that are no envelope belong to no run.
    let webhook = batch(
        None,
        webhook_source("d-1"),
        &[rec("z", "h1", T1)],
        run_target(),
    );
    assert_eq!(
        note_dead(env, "write", "m-w", &webhook.to_json().unwrap()).await,
        None
    );
    assert_eq!(note_dead(env, "transform", "m-x", "not json").await, None);
    let record = env.execution(&exec).await;
    assert_eq!((record.batches_dead, record.error_count), (0, 0));
    assert!(record.is_running());
}

/// Always fails: a batch whose schema cannot be compiled, say.
struct FailingHandler;

#[async_trait::async_trait]
impl hub_runtime::MessageHandler for FailingHandler {
    async fn handle(
        &self,
        _message: &hub_runtime::QueueMessage,
    ) -> Result<(), hub_runtime::HandlerError> {
        Err(hub_runtime::HandlerError::permanent(
            "schema_invalid",
            "the regex does not compile",
        ))
    }
}

pub async fn the_batch_driver_counts_a_message_dead_on_its_last_delivery(env: &Env) {
    let exec = env.start_run("contacts", true).await;
    env.page(&exec, 0, 1, Some(T2), true).await;
    let body = batch(
        Some(&exec),
        poll_source(0, 0, 1),
        &[rec("a", "h1", T1)],
        run_target(),
    )
    .to_json()
    .unwrap();
    let notes = hub_runtime::FailureNotes::for_queue(&env.ports, "write").with_dead_letters(
        std::sync::Arc::new(hub_writer::RunDeadLetters::new(env.writer.clone())),
    );
    let deliver = |receive_count: u32| {
        let message = hub_runtime::QueueMessage {
            message_id: "m-1".into(),
            body: body.clone(),
            receive_count,
            attributes: Default::default(),
        };
        hub_runtime::process_batch_noting(
            std::sync::Arc::new(FailingHandler),
            vec![message],
            1,
            Some(notes.clone()),
        )
    };
    // Receives before the last: the message comes back, the run waits for it.
    for receive_count in 1..hub_core::ports::MAX_RECEIVE_COUNT {
        assert_eq!(deliver(receive_count).await.failures.len(), 1);
    }
    let record = env.execution(&exec).await;
    assert_eq!((record.batches_dead, record.error_count), (0, 0));
    assert!(record.is_running());
    // The last: the queue moves it to its DLQ, and the run ends.
    assert_eq!(
        deliver(hub_core::ports::MAX_RECEIVE_COUNT)
            .await
            .failures
            .len(),
        1
    );
    let record = env.execution(&exec).await;
    assert_eq!(record.batches_dead, 1);
    assert_eq!(record.execution.status, ExecutionStatus::Failed);
}
