//! The fetch handler on the embedded backend against the sample API on loopback.

use std::collections::BTreeSet;
use std::time::Duration;

use hub_connectors::sample::ChaosConfig;
use hub_connectors::{CircuitConfig, CircuitState, ConnectorCatalog};
use hub_core::keys;
use hub_core::messages::{BatchSource, Envelope, SyncJob};
use hub_core::model::{Credentials, ExecutionPhase, ExecutionStatus};
use hub_core::ports::{Clock, OutgoingMessage, ReceiveOptions, UpdateAction};
use hub_fetch::{FetchConfig, FetchError, JobOutcome};
use hub_runtime::MessageHandler;
use serde_json::{Value, json};

use crate::support::{self, Env, embedded, embedded_with, sample_config, tenant, test_config};

fn ids(batches: &[hub_core::messages::RecordBatch]) -> Vec<String> {
    batches
        .iter()
        .flat_map(|b| b.records.iter())
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect()
}

fn chaos(env: &Env, chaos: ChaosConfig) {
    env.sample.api().set_chaos(chaos);
}

fn failing(rate_limited: f64, server_errors: f64, retry_after_seconds: u64) -> ChaosConfig {
    ChaosConfig {
        rate_limited,
        server_errors,
        retry_after_seconds,
        ..ChaosConfig::default()
    }
}

async fn run_to_end(env: &Env) -> Vec<JobOutcome> {
    let mut outcomes = Vec::new();
    while let Some((_, outcome)) = env.step().await {
        outcomes.push(outcome.unwrap());
    }
    outcomes
}

#[tokio::test]
async fn pages_enqueue_record_batches_and_the_next_job() {
    let env = embedded(250, test_config()).await;
    let execution = env.run().await;

    let (job, outcome) = env.step().await.unwrap();
    assert_eq!((job.page, job.page_token.as_deref()), (0, None));
    assert_eq!(
        outcome.unwrap(),
        JobOutcome::Fetched {
            records: 100,
            batches: 1,
            last_page: false
        }
    );
    let first = env.batches().await;
    assert_eq!(first.len(), 1);
    let batch = &first[0];
    assert_eq!(batch.execution_id.as_deref(), Some(execution.as_str()));
    assert_eq!(batch.tenant_integration_id, "sample-crm");
    assert_eq!(batch.task_id.as_deref(), Some(support::TASK));
    assert_eq!(
        (batch.schema_id.as_str(), batch.schema_version),
        ("sample-contact", 1)
    );
    assert_eq!(batch.source.key(), "poll#0#0");
    assert!(!batch.last_page);
    assert!(batch.cursor_candidate.is_some());
    assert_eq!(batch.records.len(), 100);

    let depth = env.depth("fetch").await;
    assert_eq!(
        (depth.visible, depth.delayed),
        (1, 0),
        "the next page's job"
    );
    let next = env.receive_job().await.unwrap();
    let next_job = SyncJob::from_json(&next.body).unwrap();
    assert_eq!((next_job.page, next_job.attempt), (1, 1));
    assert!(next_job.page_token.is_some());
    env.handle(&next).await.unwrap();

    let rest = run_to_end(&env).await;
    assert_eq!(
        rest,
        [JobOutcome::Fetched {
            records: 50,
            batches: 1,
            last_page: true
        }]
    );
    let mut batches = first;
    batches.extend(env.batches().await);
    let all = ids(&batches);
    let distinct: BTreeSet<_> = all.iter().collect();
    assert_eq!((all.len(), distinct.len()), (250, 250));
    assert!(batches.last().unwrap().last_page);

    let record = env.execution(&execution).await;
    assert_eq!(record.execution.results.fetched, 250);
    assert_eq!(record.pages_fetched, 3);
    assert!(record.fetch_complete);
    assert_eq!(record.batches_enqueued, 3);
    assert_eq!(record.execution.progress.total_records, Some(250));
    assert_eq!(
        record.execution.progress.phase,
        ExecutionPhase::Transforming
    );
    assert_eq!(
        record.execution.status,
        ExecutionStatus::Running,
        "the writer ends it"
    );
    let logs = env
        .sync
        .execution_logs(&tenant(), &execution, None, 100)
        .await
        .unwrap();
    assert_eq!(logs.len(), 3);
    assert!(logs[2].message.contains("fetch complete"), "{:?}", logs[2]);
}

#[tokio::test]
async fn a_redelivered_job_enqueues_nothing_twice() {
    let env = embedded(150, test_config()).await;
    let execution = env.run().await;
    let first = env.receive_job().await.unwrap();
    env.handle(&first).await.unwrap();
    // A redelivery of the same message, and a second message of the same page (the outbox
    // may deliver a first job twice).
    let job = SyncJob::from_json(&first.body).unwrap();
    env.handler.handle(&first).await.unwrap();
    assert_eq!(
        env.handler.handle_job(&job).await.unwrap(),
        JobOutcome::AlreadyDone
    );

    let requests = env.sample.api().stats().requests;
    assert_eq!(requests, 1, "a page already done is not fetched again");
    assert_eq!(env.batches().await.len(), 1);
    let depth = env.depth("fetch").await;
    assert_eq!(depth.visible, 1, "one next job, not two");
    let record = env.execution(&execution).await;
    assert_eq!(
        (record.execution.results.fetched, record.pages_fetched),
        (100, 1)
    );
    assert_eq!(record.batches_enqueued, 1);
}

#[tokio::test]
async fn a_delivery_that_died_mid_page_is_taken_over_after_its_lease() {
    let env = embedded(100, test_config()).await;
    let execution = env.run().await;
    let message = env.receive_job().await.unwrap();
    let job = SyncJob::from_json(&message.body).unwrap();
    // Another delivery claimed the page and counted it, then died.
    let now_ms = env.clock_ms();
    env.ports
        .state
        .update(
            &keys::idempotency(&job.idempotency_key()),
            vec![
                UpdateAction::Set("state".into(), "in_progress".into()),
                UpdateAction::Set("owner".into(), "dead".into()),
                UpdateAction::Set("leaseUntilMs".into(), (now_ms + 120_000).into()),
            ],
            None,
        )
        .await
        .unwrap();
    let busy = env.handler.handle_job(&job).await.unwrap_err();
    assert!(matches!(busy, FetchError::InProgress { .. }));
    assert!(busy.is_retryable());
    assert_eq!(env.sample.api().stats().requests, 0);

    env.advance(Duration::from_secs(121));
    assert_eq!(
        env.handler.handle_job(&job).await.unwrap(),
        JobOutcome::Fetched {
            records: 100,
            batches: 1,
            last_page: true
        }
    );
    assert_eq!(env.batches().await.len(), 1);
    let record = env.execution(&execution).await;
    assert_eq!(record.execution.results.fetched, 100);
    assert!(record.fetch_complete);
}

#[tokio::test]
async fn a_run_whose_failing_delivery_died_before_ending_it_is_ended_by_the_next() {
    let env = embedded(100, test_config()).await;
    let execution = env.run().await;
    let message = env.receive_job().await.unwrap();
    let job = SyncJob::from_json(&message.body).unwrap();
    // The delivery that gave up marked the page and died before failing the run.
    env.ports
        .state
        .update(
            &keys::idempotency(&job.idempotency_key()),
            vec![UpdateAction::Set("state".into(), "gave_up".into())],
            None,
        )
        .await
        .unwrap();
    let error = env.handler.handle_job(&job).await.unwrap_err();
    assert!(matches!(error, FetchError::GaveUp { .. }));
    assert!(!error.is_retryable());
    let record = env.execution(&execution).await;
    assert_eq!(record.execution.status, ExecutionStatus::Failed);
    assert_eq!(
        record.execution.errors[0].details.as_ref().unwrap()["code"],
        "retries_exhausted"
    );
    assert_eq!(env.sample.api().stats().requests, 0);
}

#[tokio::test]
async fn cancel_stops_further_pages() {
    let env = embedded(300, test_config()).await;
    let execution = env.run().await;
    env.step().await.unwrap().1.unwrap();
    env.sync
        .cancel(&tenant(), &execution, Some("test"))
        .await
        .unwrap();
    let requests = env.sample.api().stats().requests;

    let (job, outcome) = env.step().await.unwrap();
    assert_eq!(job.page, 1);
    assert_eq!(outcome.unwrap(), JobOutcome::Cancelled);
    assert!(env.step().await.is_none(), "no further job");
    assert_eq!(
        env.sample.api().stats().requests,
        requests,
        "no API call after the cancel"
    );
    assert_eq!(
        env.batches().await.len(),
        1,
        "only the page fetched before the cancel"
    );
    let record = env.execution(&execution).await;
    assert_eq!(record.execution.status, ExecutionStatus::Cancelled);
    assert_eq!(record.pages_fetched, 1);
}

#[tokio::test]
async fn retry_after_and_backoff_re_enqueue_with_delays_without_sleeping() {
    let env = embedded(100, test_config()).await;
    let execution = env.run().await;
    chaos(&env, failing(1.0, 0.0, 7));
    let (_, outcome) = env.step().await.unwrap();
    assert_eq!(
        outcome.unwrap(),
        JobOutcome::Retrying {
            code: "rate_limited",
            attempt: 2,
            delay_seconds: 7
        }
    );
    assert_eq!(
        env.sample.api().stats().requests,
        1,
        "one call per job: no retry inside"
    );
    let depth = env.depth("fetch").await;
    assert_eq!((depth.visible, depth.delayed), (0, 1), "{depth:?}");
    env.advance(Duration::from_secs(6));
    assert!(env.receive_job().await.is_none(), "Retry-After is honoured");
    env.advance(Duration::from_secs(1));

    // A 5xx has no Retry-After: exponential backoff (1 s ceilings in these tests).
    chaos(&env, failing(0.0, 1.0, 0));
    let (job, outcome) = env.step().await.unwrap();
    assert_eq!(job.attempt, 2);
    assert_eq!(
        outcome.unwrap(),
        JobOutcome::Retrying {
            code: "server_error",
            attempt: 3,
            delay_seconds: 1
        }
    );
    assert_eq!(env.depth("fetch").await.delayed, 1);

    chaos(&env, ChaosConfig::default());
    env.advance(Duration::from_secs(1));
    let (job, outcome) = env.step().await.unwrap();
    assert_eq!(job.attempt, 3);
    assert!(matches!(
        outcome.unwrap(),
        JobOutcome::Fetched { records: 100, .. }
    ));
    assert_eq!(env.sample.api().stats().requests, 3);

    let logs = env
        .sync
        .execution_logs(&tenant(), &execution, None, 100)
        .await
        .unwrap();
    let messages: Vec<_> = logs.iter().map(|l| l.message.as_str()).collect();
    assert!(
        messages[0].contains("rate_limited (HTTP 429); attempt 2 in 7 s"),
        "{messages:?}"
    );
    assert!(messages[1].contains("server_error (HTTP 5"), "{messages:?}");
    let record = env.execution(&execution).await;
    assert_eq!(
        record.execution.results.fetched, 100,
        "failed attempts fetch nothing"
    );
    assert_eq!(record.error_count, 0, "retried failures are not run errors");
}

#[tokio::test]
async fn exhausted_attempts_fail_the_message_and_the_run() {
    let env = embedded(100, test_config()).await;
    let execution = env.run().await;
    chaos(&env, failing(0.0, 1.0, 0));
    for attempt in 1..=3 {
        let (job, outcome) = env.step().await.unwrap();
        assert_eq!(job.attempt, attempt);
        assert!(matches!(outcome.unwrap(), JobOutcome::Retrying { .. }));
        env.advance(Duration::from_secs(1));
    }
    // The last attempt: the run fails and the message fails for good.
    let last = env.receive_job().await.unwrap();
    let error = env.handle(&last).await.unwrap_err();
    assert_eq!(error.code, "retries_exhausted");
    assert!(!error.retryable);
    let record = env.execution(&execution).await;
    assert_eq!(record.execution.status, ExecutionStatus::Failed);
    assert!(
        record
            .last_error
            .as_deref()
            .unwrap()
            .contains("page 0 failed 4 times")
    );
    assert_eq!(record.execution.errors.len(), 1);
    assert_eq!(record.execution.errors[0].phase, "fetching");
    let events: Vec<String> = env.events().await.into_iter().map(|(t, _)| t).collect();
    assert!(events.contains(&"sync.failed".to_owned()), "{events:?}");

    // Every redelivery fails again without calling the API, until the DLQ takes it.
    let requests = env.sample.api().stats().requests;
    assert_eq!(requests, 4);
    let queue = env.ports.queue("fetch").unwrap();
    for _ in 0..4 {
        env.advance(hub_core::ports::VISIBILITY_TIMEOUT);
        let message = env.receive_job().await.unwrap();
        assert_eq!(
            env.handle(&message).await.unwrap_err().code,
            "retries_exhausted"
        );
    }
    env.advance(hub_core::ports::VISIBILITY_TIMEOUT);
    assert!(
        queue
            .receive(ReceiveOptions::default())
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(env.depth("fetch-dlq").await.visible, 1);
    assert_eq!(env.sample.api().stats().requests, requests);
}

#[tokio::test]
async fn an_open_circuit_re_enqueues_without_calling_the_api() {
    let config = FetchConfig {
        circuit: CircuitConfig {
            failure_threshold: 2,
            cool_down: Duration::from_secs(30),
            ..CircuitConfig::default()
        },
        ..test_config()
    };
    let env = embedded(100, config).await;
    env.run().await;
    chaos(&env, failing(0.0, 1.0, 0));
    for _ in 0..2 {
        assert!(matches!(
            env.step().await.unwrap().1.unwrap(),
            JobOutcome::Retrying { .. }
        ));
        env.advance(Duration::from_secs(1));
    }
    chaos(&env, ChaosConfig::default());
    let (job, outcome) = env.step().await.unwrap();
    assert_eq!(
        outcome.unwrap(),
        JobOutcome::CircuitOpen { delay_seconds: 29 }
    );
    assert_eq!(
        env.sample.api().stats().requests,
        2,
        "the open circuit spared the API"
    );
    assert_eq!(env.depth("fetch").await.delayed, 1);

    env.advance(Duration::from_secs(29));
    let (probe, outcome) = env.step().await.unwrap();
    assert_eq!(
        probe.attempt, job.attempt,
        "an open circuit costs no attempt"
    );
    assert!(matches!(outcome.unwrap(), JobOutcome::Fetched { .. }));
    let breaker = hub_connectors::CircuitBreaker::new(
        env.ports.state.clone(),
        env.ports.clock.clone(),
        CircuitConfig::default(),
    );
    let state = breaker.state("demo", "sample-api").await.unwrap();
    assert_eq!(state.state, CircuitState::Closed, "the probe closed it");
}

#[tokio::test]
async fn a_long_retry_after_parks_the_run_until_the_tick() {
    let env = embedded(100, test_config()).await;
    let execution = env.run().await;
    chaos(&env, failing(1.0, 0.0, 3600));
    let (_, outcome) = env.step().await.unwrap();
    let JobOutcome::Parked {
        attempt, resume_at, ..
    } = outcome.unwrap()
    else {
        panic!("not parked");
    };
    assert_eq!(attempt, 2);
    assert_eq!(resume_at, env.clock.now() + chrono::Duration::seconds(3600));
    let depth = env.depth("fetch").await;
    assert_eq!((depth.visible, depth.delayed, depth.in_flight), (0, 0, 0));

    chaos(&env, ChaosConfig::default());
    env.advance(Duration::from_secs(1800));
    env.sync.tick(env.clock.now()).await.unwrap();
    assert!(env.receive_job().await.is_none(), "still parked");
    env.advance(Duration::from_secs(1801));
    let report = env.sync.tick(env.clock.now()).await.unwrap();
    assert_eq!(report.redelivered, 1);
    let (job, outcome) = env.step().await.unwrap();
    assert_eq!(job.attempt, 2);
    assert!(matches!(outcome.unwrap(), JobOutcome::Fetched { .. }));
    assert!(env.execution(&execution).await.fetch_complete);
}

#[tokio::test]
async fn refused_credentials_publish_needs_reauth_and_fail_the_run() {
    let env = embedded(100, test_config()).await;
    let name = "hub/demo/sample-api";
    let current = env.ports.secrets.get(name).await.unwrap().unwrap();
    let wrong =
        Credentials::from_secret(&r#"{"type":"api_key","apiKey":"not-the-key"}"#.to_owned().into())
            .unwrap();
    env.ports
        .secrets
        .put(name, wrong.to_secret(), Some(&current.version_id))
        .await
        .unwrap();
    let execution = env.run().await;
    let (_, outcome) = env.step().await.unwrap();
    assert_eq!(
        outcome.unwrap(),
        JobOutcome::RunFailed {
            code: "auth_failed"
        }
    );
    let record = env.execution(&execution).await;
    assert_eq!(record.execution.status, ExecutionStatus::Failed);
    assert!(
        !record
            .last_error
            .as_deref()
            .unwrap()
            .contains("not-the-key")
    );
    let events = env.events().await;
    let reauth: Vec<&Value> = events
        .iter()
        .filter(|(t, _)| t == "connection.needs_reauth")
        .map(|(_, d)| d)
        .collect();
    assert_eq!(reauth.len(), 1, "{events:?}");
    assert_eq!(reauth[0]["connectionId"], "sample-api");
    assert_eq!(reauth[0]["tenantId"], "demo");
    assert_eq!(reauth[0]["reason"], "auth_failed");
    assert!(!reauth[0].to_string().contains("not-the-key"));
    assert!(events.iter().any(|(t, _)| t == "sync.failed"));
    assert!(env.step().await.is_none());
}

#[tokio::test]
async fn a_task_for_an_unknown_stream_fails_the_run_with_a_code() {
    let env = embedded(10, test_config()).await;
    let mut task = env.sync.get_task(&tenant(), support::TASK).await.unwrap();
    task.config.params.insert("stream".into(), json!("deals"));
    env.sync.put_task(&tenant(), task).await.unwrap();
    let execution = env.run().await;
    let (_, outcome) = env.step().await.unwrap();
    assert_eq!(
        outcome.unwrap(),
        JobOutcome::RunFailed {
            code: "unknown_stream"
        }
    );
    let record = env.execution(&execution).await;
    assert_eq!(record.execution.status, ExecutionStatus::Failed);
    let error = &record.execution.errors[0];
    assert!(error.error.contains("no stream `deals`"), "{error:?}");
    assert_eq!(error.details.as_ref().unwrap()["code"], "unknown_stream");
    assert_eq!(env.sample.api().stats().requests, 0);
}

#[tokio::test]
async fn pages_split_under_the_message_size_limit() {
    let config = FetchConfig {
        max_message_bytes: 4_000,
        ..test_config()
    };
    let env = embedded(100, config).await;
    let execution = env.run().await;
    let (_, outcome) = env.step().await.unwrap();
    let JobOutcome::Fetched { batches: parts, .. } = outcome.unwrap() else {
        panic!("not fetched");
    };
    assert!(parts > 5, "{parts}");
    let bodies = env.drain("transform").await;
    assert_eq!(bodies.len(), parts as usize);
    assert!(bodies.iter().all(|b| b.len() <= 4_000));
    let mut batches: Vec<_> = bodies
        .iter()
        .map(|b| hub_core::messages::RecordBatch::from_json(b).unwrap())
        .collect();
    batches.sort_by_key(|b| match &b.source {
        BatchSource::Poll(poll) => poll.part,
        BatchSource::Webhook(_) => u32::MAX,
    });
    for (index, batch) in batches.iter().enumerate() {
        let BatchSource::Poll(poll) = &batch.source else {
            panic!("a poll batch");
        };
        assert_eq!((poll.part as usize, poll.parts), (index, parts));
        assert_eq!(batch.last_page, index + 1 == parts as usize);
    }
    let all = ids(&batches);
    assert_eq!(all.len(), 100);
    assert_eq!(all.iter().collect::<BTreeSet<_>>().len(), 100);
    assert_eq!(
        env.execution(&execution).await.batches_enqueued,
        u64::from(parts)
    );
}

/// A connector whose page holds a record too large for any message.
#[tokio::test]
async fn a_record_too_large_for_a_message_is_an_execution_error() {
    let env = embedded_with(sample_config(1), test_config()).await;
    let app = axum::Router::new().route(
        "/v1/contacts",
        axum::routing::get(|| async {
            axum::Json(json!({"data": [
                {"id": "small-1", "updatedAt": "2024-01-01T00:00:00.000Z"},
                {"id": "huge-1", "updatedAt": "2024-01-01T00:00:01.000Z", "blob": "x".repeat(300 * 1024)},
                {"id": "small-2", "updatedAt": "2024-01-01T00:00:02.000Z"}
            ], "hasMore": false}))
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    env.set_base_url(&format!("http://{address}")).await;

    let execution = env.run().await;
    let (_, outcome) = env.step().await.unwrap();
    assert_eq!(
        outcome.unwrap(),
        JobOutcome::Fetched {
            records: 3,
            batches: 1,
            last_page: true
        }
    );
    let batches = env.batches().await;
    assert_eq!(ids(&batches), ["small-1", "small-2"]);
    let record = env.execution(&execution).await;
    assert_eq!(record.execution.results.fetched, 3);
    assert_eq!(record.execution.results.failed, 1);
    let error = &record.execution.errors[0];
    assert_eq!(error.external_id.as_deref(), Some("huge-1"));
    assert_eq!(error.details.as_ref().unwrap()["code"], "record_too_large");
    assert_eq!(
        record.execution.status,
        ExecutionStatus::Running,
        "the run goes on"
    );
    server.abort();
}

#[tokio::test]
async fn an_unknown_connector_fails_the_run() {
    let mut env = embedded(10, test_config()).await;
    let catalog = ConnectorCatalog::from_sources([(
        "github.json",
        include_str!("../../../../connectors/github.json"),
    )])
    .unwrap();
    env.handler = std::sync::Arc::new(support::handler(
        &env.ports,
        env.clock.clone(),
        catalog,
        test_config(),
    ));
    let execution = env.run().await;
    let (_, outcome) = env.step().await.unwrap();
    assert_eq!(
        outcome.unwrap(),
        JobOutcome::RunFailed {
            code: "connector_not_found"
        }
    );
    assert_eq!(
        env.execution(&execution).await.execution.status,
        ExecutionStatus::Failed
    );
}

#[tokio::test]
async fn a_job_that_is_not_a_sync_job_fails_permanently() {
    let env = embedded(10, test_config()).await;
    let queue = env.ports.queue("fetch").unwrap();
    queue
        .send(OutgoingMessage::new(r#"{"v":1,"hello":"world"}"#))
        .await
        .unwrap();
    let message = env.receive_job().await.unwrap();
    let error = env.handle(&message).await.unwrap_err();
    assert_eq!(error.code, "invalid_message_body");
    assert!(!error.retryable);
}
