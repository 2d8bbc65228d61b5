//! The fetch queue's handler: one job, one page (see the crate documentation).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use hub_connectors::retry::MAX_QUEUE_DELAY;
use hub_connectors::{
    Admission, CircuitBreaker, ConnectorCatalog, FetchError as PageError, Fetcher, PageRequest,
    PageResult, Permit, RetryDecision, next_retry,
};
use hub_core::keys;
use hub_core::messages::{
    BatchSource, BusDetail, ConnectionNeedsReauth, Envelope, PollSource, RecordBatch, SyncJob, V1,
};
use hub_core::model::{
    ExecutionPhase, ExecutionStatus, IntegrationConnection, LogLevel, RunStatus, SyncError,
};
use hub_core::ports::{
    CachedSecretStore, MAX_BATCH_ENTRIES, MAX_MESSAGE_BYTES, OutgoingMessage, Ports, QueueRole,
    UpdateAction,
};
use hub_runtime::{HandlerError, MessageHandler, QueueMessage};
use hub_sync::{ExecutionRecord, SyncService, attr};
use hub_writer::{PageEnqueued, Writer};
use serde_json::{Map, Value, json};
use tracing::Instrument;

use crate::claim::{Claim, PageClaim};
use crate::context::{ContextError, RunContext, RunFailure, Sources};
use crate::split::{repartition, split_records};
use crate::{FetchConfig, FetchError};

/// What one job did (the message succeeded unless noted on the handler's error instead).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobOutcome {
    /// The page was fetched, its batches and the next page's job sent.
    Fetched {
        records: usize,
        batches: u32,
        last_page: bool,
    },
    /// An earlier delivery fetched and sent this page.
    AlreadyDone,
    /// The run was cancelled: nothing fetched.
    Cancelled,
    /// The run had already ended (another page failed it, or it completed).
    RunEnded(ExecutionStatus),
    /// A transient failure: the job was re-enqueued as `attempt` with this delay.
    Retrying {
        code: &'static str,
        attempt: u32,
        delay_seconds: u32,
    },
    /// The API asked for a longer wait than a queue delay: the run resumes at `resume_at`.
    Parked {
        code: &'static str,
        attempt: u32,
        resume_at: DateTime<Utc>,
    },
    /// The connection's circuit is open: the API was not called, the job waits this long.
    CircuitOpen { delay_seconds: u32 },
    /// The run ended `failed` with this code.
    RunFailed { code: &'static str },
}

/// The fetch queue's handler. Build it once per process: it holds the HTTP client, the secret
/// cache and the connector catalogue.
pub struct FetchHandler {
    ports: Ports,
    sync: SyncService,
    writer: Writer,
    catalog: Arc<ConnectorCatalog>,
    fetcher: Fetcher,
    breaker: CircuitBreaker,
    secrets: CachedSecretStore,
    config: FetchConfig,
}

impl std::fmt::Debug for FetchHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FetchHandler")
            .field("backend", &self.ports.backend)
            .field("connectors", &self.catalog.ids().collect::<Vec<_>>())
            .field("fetcher", &self.fetcher)
            .finish_non_exhaustive()
    }
}

fn whole_seconds(delay: Duration) -> u32 {
    let seconds = delay.as_secs() + u64::from(delay.subsec_nanos() > 0);
    u32::try_from(seconds.min(MAX_QUEUE_DELAY.as_secs())).unwrap_or(u32::MAX)
}

fn later(now: DateTime<Utc>, by: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(by)
        .ok()
        .and_then(|by| now.checked_add_signed(by))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// The run ended meanwhile: what a running-only update answers then is not an error here.
fn unless_ended<T>(result: hub_sync::Result<T>) -> Result<(), FetchError> {
    match result {
        Ok(_) | Err(hub_sync::Error::InvalidState(_)) => Ok(()),
        Err(error) => Err(error.into()),
    }
}

fn count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl FetchHandler {
    pub fn new(
        ports: Ports,
        catalog: ConnectorCatalog,
        fetcher: Fetcher,
        config: FetchConfig,
    ) -> Self {
        let breaker = CircuitBreaker::new(
            Arc::clone(&ports.state),
            Arc::clone(&ports.clock),
            config.circuit,
        );
        let secrets = CachedSecretStore::new(
            Arc::clone(&ports.secrets),
            Arc::clone(&ports.clock),
            config.secret_cache_ttl,
        );
        Self {
            sync: SyncService::new(ports.clone()),
            writer: Writer::new(ports.clone()),
            ports,
            catalog: Arc::new(catalog),
            fetcher,
            breaker,
            secrets,
            config,
        }
    }

    pub fn config(&self) -> &FetchConfig {
        &self.config
    }

    /// Handles one job. `Err` fails the message (see [`FetchError::is_retryable`]).
    pub async fn handle_job(&self, job: &SyncJob) -> Result<JobOutcome, FetchError> {
        let tenant = &job.tenant_id;
        let record = self.sync.get_execution(tenant, &job.execution_id).await?;
        let claim = PageClaim::new(&*self.ports.state, job, self.ports.ids.new_id());
        match record.execution.status {
            ExecutionStatus::Running => {}
            ExecutionStatus::Cancelled => return Ok(JobOutcome::Cancelled),
            status => {
                // The job that failed the run keeps failing, so it reaches the DLQ.
                if claim.peek().await?.as_deref() == Some("gave_up") {
                    return Err(self.gave_up(job));
                }
                return Ok(JobOutcome::RunEnded(status));
            }
        }
        let now = self.ports.clock.now();
        let expires_at = later(now, self.config.record_ttl).timestamp();
        let counted = match claim
            .claim(now.timestamp_millis(), self.config.claim_lease, expires_at)
            .await?
        {
            Claim::Held { counted } => counted,
            Claim::Done => return Ok(JobOutcome::AlreadyDone),
            Claim::GaveUp => {
                // The delivery that gave up died before it ended the run: end it now.
                let failure = RunFailure::new(
                    "retries_exhausted",
                    format!("page {} failed {} times", job.page, job.attempt),
                );
                self.fail_run(job, failure, None).await?;
                return Err(self.gave_up(job));
            }
            Claim::Busy => {
                return Err(FetchError::InProgress {
                    execution_id: job.execution_id.clone(),
                    page: job.page,
                });
            }
        };
        let result = self.fetch_claimed(job, &record, &claim, counted).await;
        if result.is_err() {
            claim.release().await;
        }
        result
    }

    fn gave_up(&self, job: &SyncJob) -> FetchError {
        FetchError::GaveUp {
            execution_id: job.execution_id.clone(),
            page: job.page,
            attempts: job.attempt,
        }
    }

    async fn fetch_claimed(
        &self,
        job: &SyncJob,
        record: &ExecutionRecord,
        claim: &PageClaim<'_>,
        counted: bool,
    ) -> Result<JobOutcome, FetchError> {
        let tenant = &job.tenant_id;
        let task = match self.sync.get_task(tenant, &job.task_id).await {
            Ok(task) => task,
            Err(hub_sync::Error::TaskNotFound { .. }) => {
                let failure = RunFailure::new(
                    "task_not_found",
                    format!("tenant `{tenant}` has no sync task `{}`", job.task_id),
                );
                return self.fail_run(job, failure, None).await;
            }
            Err(error) => return Err(error.into()),
        };
        let sources = Sources {
            state: &*self.ports.state,
            secrets: &self.secrets,
            catalog: &self.catalog,
        };
        let context = match sources
            .load(tenant, &task, &record.execution.tenant_integration_id)
            .await
        {
            Ok(context) => context,
            Err(ContextError::Run(failure, connection)) => {
                return self.fail_run(job, failure, connection.as_deref()).await;
            }
            Err(ContextError::Infra(error)) => return Err(error),
        };

        let permit = match self
            .breaker
            .admit(tenant.as_str(), &context.circuit_key)
            .await?
        {
            Admission::Allowed(permit) => permit,
            Admission::Rejected { retry_after } => {
                let delay_seconds = whole_seconds(retry_after).max(1);
                claim.release().await;
                self.send_job(job, delay_seconds).await?;
                self.log(
                    job,
                    LogLevel::Warn,
                    &format!(
                        "page {}: the circuit of {} is open; trying again in {delay_seconds} s",
                        job.page, context.circuit_key
                    ),
                    None,
                )
                .await;
                return Ok(JobOutcome::CircuitOpen { delay_seconds });
            }
        };

        let request = PageRequest {
            definition: &context.connector,
            stream: &context.stream,
            settings: &context.integration.settings,
            credentials: context.credentials.as_ref(),
            page_token: job.page_token.as_deref(),
            cursor_window: &job.cursor_window,
        };
        match self.fetcher.fetch_page(&request).await {
            Ok(page) => {
                self.circuit_outcome(job, &context, permit, true).await;
                self.deliver(job, &context, claim, counted, page).await
            }
            Err(error) => {
                if error.counts_against_circuit() {
                    self.circuit_outcome(job, &context, permit, false).await;
                }
                self.page_failed(job, &context, claim, error).await
            }
        }
    }

    /// The circuit is advisory: failing to record an outcome must not fail the page.
    async fn circuit_outcome(
        &self,
        job: &SyncJob,
        context: &RunContext,
        permit: Permit,
        success: bool,
    ) {
        let tenant = job.tenant_id.as_str();
        let recorded = if success {
            self.breaker
                .record_success(tenant, &context.circuit_key, permit)
                .await
        } else {
            self.breaker
                .record_failure(tenant, &context.circuit_key, permit)
                .await
        };
        if let Err(error) = recorded {
            tracing::warn!(
                code = error.code(),
                "could not record the call on the circuit: {error}"
            );
        }
    }

    async fn deliver(
        &self,
        job: &SyncJob,
        context: &RunContext,
        claim: &PageClaim<'_>,
        counted: bool,
        page: PageResult,
    ) -> Result<JobOutcome, FetchError> {
        let tenant = &job.tenant_id;
        let execution_id = job.execution_id.as_str();
        let last_page = page.next_page_token.is_none();
        let overhead = self.envelope_overhead(job, context, &page)?;
        let budget = self.config.max_message_bytes.min(MAX_MESSAGE_BYTES);
        let record_count = page.records.len();
        let split = split_records(page.records, overhead, budget);

        if !counted {
            let mut counters = vec![
                UpdateAction::Add(attr::FETCHED.into(), count(record_count)),
                UpdateAction::Add(attr::PAGES_FETCHED.into(), 1),
            ];
            if !split.oversize.is_empty() {
                counters.push(UpdateAction::Add(
                    attr::FAILED.into(),
                    count(split.oversize.len()),
                ));
            }
            let key = keys::execution(tenant.as_str(), execution_id);
            // Errors go with the first count only, so a page fetched twice reports them once.
            if claim.count(key, counters).await? {
                self.report_oversize(job, &split.oversize, budget).await?;
            }
        }
        if job.page == 0
            && let Some(total) = page.total
        {
            unless_ended(
                self.sync
                    .set_total_records(tenant, execution_id, total)
                    .await,
            )?;
        }
        if last_page {
            unless_ended(
                self.sync
                    .set_phase(tenant, execution_id, ExecutionPhase::Transforming)
                    .await,
            )?;
        }

        let parts = u32::try_from(split.parts.len()).unwrap_or(u32::MAX);
        let recorded = self
            .writer
            .record_page_enqueued(
                tenant,
                execution_id,
                PageEnqueued {
                    page: job.page,
                    batches: parts,
                    cursor_candidate: page.cursor_candidate.clone(),
                    last_page,
                },
            )
            .await?;
        let mut parts = split.parts;
        if recorded.batches != u32::try_from(parts.len()).unwrap_or(u32::MAX) {
            let wanted = usize::try_from(recorded.batches).unwrap_or(usize::MAX);
            let (repacked, overflow) = repartition(parts, wanted, overhead, budget);
            parts = repacked;
            if !overflow.is_empty() {
                self.report(
                    job,
                    format!(
                        "page {} grew between two deliveries: {} records did not fit in the {} \
                         batches its first delivery counted and were not sent",
                        job.page,
                        overflow.len(),
                        recorded.batches
                    ),
                    None,
                    json!({"code": "page_changed_on_redelivery", "page": job.page, "records": overflow.len()}),
                )
                .await?;
            }
        }

        let total_parts = u32::try_from(parts.len()).unwrap_or(u32::MAX);
        let mut bodies = Vec::with_capacity(parts.len());
        for (part, records) in (0u32..).zip(parts) {
            let batch = RecordBatch {
                v: V1,
                execution_id: Some(execution_id.to_owned()),
                tenant_id: tenant.clone(),
                tenant_integration_id: context.integration.id.clone(),
                task_id: Some(job.task_id.clone()),
                schema_id: context.schema_id.clone(),
                schema_version: context.schema_version,
                source: BatchSource::Poll(PollSource {
                    page: job.page,
                    page_token: job.page_token.clone(),
                    part,
                    parts: total_parts,
                }),
                records,
                last_page: last_page && part + 1 == total_parts,
                cursor_candidate: page.cursor_candidate.clone(),
            };
            bodies.push(batch.to_json().map_err(FetchError::Encode)?);
        }
        self.send_batches(job.page, bodies).await?;

        if let Some(token) = page.next_page_token {
            let next = SyncJob {
                attempt: 1,
                page: job.page + 1,
                page_token: Some(token),
                ..job.clone()
            };
            match page.rate_limit.exhausted_delay() {
                Some(wait) if wait > MAX_QUEUE_DELAY => {
                    let resume_at = later(self.ports.clock.now(), wait);
                    unless_ended(self.sync.park_job(&next, resume_at).await)?;
                }
                wait => {
                    self.send_job(&next, wait.map_or(0, whole_seconds)).await?;
                }
            }
        }
        claim.done().await?;

        let mut data = Map::new();
        data.insert("page".into(), job.page.into());
        data.insert("records".into(), record_count.into());
        data.insert("batches".into(), total_parts.into());
        data.insert("attempt".into(), job.attempt.into());
        if let Some(total) = page.total {
            data.insert("total".into(), total.into());
        }
        let message = if last_page {
            format!(
                "page {}: {record_count} records in {total_parts} batches; last page, fetch complete",
                job.page
            )
        } else {
            format!(
                "page {}: {record_count} records in {total_parts} batches",
                job.page
            )
        };
        self.log(job, LogLevel::Info, &message, Some(data)).await;
        Ok(JobOutcome::Fetched {
            records: record_count,
            batches: total_parts,
            last_page,
        })
    }

    /// The size of a batch of this page without records, with the widest part numbers and
    /// `lastPage: false`: no part of the page has a larger envelope.
    fn envelope_overhead(
        &self,
        job: &SyncJob,
        context: &RunContext,
        page: &PageResult,
    ) -> Result<usize, FetchError> {
        let empty = RecordBatch {
            v: V1,
            execution_id: Some(job.execution_id.clone()),
            tenant_id: job.tenant_id.clone(),
            tenant_integration_id: context.integration.id.clone(),
            task_id: Some(job.task_id.clone()),
            schema_id: context.schema_id.clone(),
            schema_version: context.schema_version,
            source: BatchSource::Poll(PollSource {
                page: job.page,
                page_token: job.page_token.clone(),
                part: u32::MAX,
                parts: u32::MAX,
            }),
            records: Vec::new(),
            last_page: false,
            cursor_candidate: page.cursor_candidate.clone(),
        };
        Ok(empty.to_json().map_err(FetchError::Encode)?.len())
    }

    async fn report_oversize(
        &self,
        job: &SyncJob,
        oversize: &[crate::split::Oversize],
        budget: usize,
    ) -> Result<(), FetchError> {
        let limit = self.config.max_errors_per_page;
        for record in oversize.iter().take(limit) {
            self.report(
                job,
                format!(
                    "record {} of page {} is {} bytes: too large for a {budget}-byte message; \
                     it was not sent",
                    record.index, job.page, record.bytes
                ),
                record.external_id.clone(),
                json!({"code": "record_too_large", "page": job.page, "recordIndex": record.index, "bytes": record.bytes}),
            )
            .await?;
        }
        if oversize.len() > limit {
            let rest = oversize.len() - limit;
            self.report(
                job,
                format!(
                    "{rest} more records of page {} were too large to send",
                    job.page
                ),
                None,
                json!({"code": "errors_summarised", "count": rest}),
            )
            .await?;
        }
        Ok(())
    }

    /// Records an error of the run (phase `fetching`); the run goes on.
    async fn report(
        &self,
        job: &SyncJob,
        message: String,
        external_id: Option<String>,
        details: Value,
    ) -> Result<(), FetchError> {
        let error = SyncError {
            timestamp: self.ports.clock.now(),
            phase: "fetching".into(),
            record_id: None,
            external_id,
            error: message,
            details: Some(details),
            recoverable: false,
        };
        self.sync
            .append_error(&job.tenant_id, &job.execution_id, error)
            .await?;
        Ok(())
    }

    async fn page_failed(
        &self,
        job: &SyncJob,
        context: &RunContext,
        claim: &PageClaim<'_>,
        error: PageError,
    ) -> Result<JobOutcome, FetchError> {
        let code = error.code();
        if !error.is_retryable() {
            let mut failure = RunFailure::new(code, format!("page {}: {error}", job.page));
            if matches!(error, PageError::AuthFailed { .. }) {
                failure = failure.reauth();
            }
            return self
                .fail_run(job, failure, context.connection.as_ref())
                .await;
        }
        let decision = next_retry(
            &self.config.backoff,
            job.attempt,
            error.retry_after(),
            (self.config.jitter)(),
        );
        let status = error
            .status()
            .map(|s| format!(" (HTTP {s})"))
            .unwrap_or_default();
        let retry = SyncJob {
            attempt: job.attempt.saturating_add(1),
            ..job.clone()
        };
        match decision {
            RetryDecision::Delay(_) => {
                let delay_seconds = decision.delay_seconds().unwrap_or(0);
                // Released first: a retry without delay may be received at once.
                claim.release().await;
                self.send_job(&retry, delay_seconds).await?;
                self.log(
                    job,
                    LogLevel::Warn,
                    &format!(
                        "page {}: {code}{status}; attempt {} in {delay_seconds} s",
                        job.page, retry.attempt
                    ),
                    None,
                )
                .await;
                Ok(JobOutcome::Retrying {
                    code,
                    attempt: retry.attempt,
                    delay_seconds,
                })
            }
            RetryDecision::Park(wait) => {
                let resume_at = later(self.ports.clock.now(), wait);
                claim.release().await;
                match self.sync.park_job(&retry, resume_at).await {
                    Ok(()) => {}
                    Err(hub_sync::Error::InvalidState(_)) => {
                        return Ok(JobOutcome::RunEnded(
                            self.sync
                                .get_execution(&job.tenant_id, &job.execution_id)
                                .await?
                                .execution
                                .status,
                        ));
                    }
                    Err(error) => return Err(error.into()),
                }
                self.log(
                    job,
                    LogLevel::Warn,
                    &format!(
                        "page {}: {code}{status}; the API asks to wait {} s, the run is parked \
                         until {}",
                        job.page,
                        wait.as_secs(),
                        keys::sortable_time(resume_at)
                    ),
                    None,
                )
                .await;
                Ok(JobOutcome::Parked {
                    code,
                    attempt: retry.attempt,
                    resume_at,
                })
            }
            RetryDecision::GiveUp => {
                claim.gave_up(job.attempt).await?;
                let failure = RunFailure::new(
                    "retries_exhausted",
                    format!(
                        "page {} failed {} times; the last: {error}",
                        job.page, job.attempt
                    ),
                );
                self.fail_run(job, failure, context.connection.as_ref())
                    .await?;
                Err(self.gave_up(job))
            }
        }
    }

    /// Ends the run `failed` with the failure as its error (and `connection.needs_reauth` when
    /// the credentials are at fault). The event goes first: if it cannot be published the
    /// message is retried while the run is still running.
    async fn fail_run(
        &self,
        job: &SyncJob,
        failure: RunFailure,
        connection: Option<&IntegrationConnection>,
    ) -> Result<JobOutcome, FetchError> {
        let tenant = &job.tenant_id;
        if failure.needs_reauth
            && let Some(connection) = connection
        {
            self.publish_reauth(connection, failure.code).await?;
        }
        tracing::warn!(code = failure.code, "the run fails: {}", failure.message);
        self.report(
            job,
            failure.message.clone(),
            None,
            json!({"code": failure.code, "page": job.page, "attempt": job.attempt}),
        )
        .await?;
        let mut data = Map::new();
        data.insert("code".into(), failure.code.into());
        self.log(job, LogLevel::Error, &failure.message, Some(data))
            .await;
        self.sync
            .finish(tenant, &job.execution_id, RunStatus::Failed)
            .await?;
        Ok(JobOutcome::RunFailed { code: failure.code })
    }

    async fn publish_reauth(
        &self,
        connection: &IntegrationConnection,
        reason: &str,
    ) -> Result<(), FetchError> {
        let detail = ConnectionNeedsReauth {
            v: V1,
            tenant_id: connection.tenant_id.clone(),
            connection_id: connection.id.clone(),
            integration_id: connection.integration_id.clone(),
            reason: reason.to_owned(),
            detected_at: self.ports.clock.now(),
        };
        let event = detail.to_bus_event().map_err(FetchError::Encode)?;
        let failed = self.ports.bus.put_events(vec![event]).await?;
        if let Some(entry) = failed.into_iter().next() {
            return Err(FetchError::Bus(hub_core::ports::BusError::Unavailable(
                format!(
                    "connection.needs_reauth was refused: {}: {}",
                    entry.code, entry.message
                ),
            )));
        }
        tracing::warn!(connection = %connection.id, reason, "connection.needs_reauth published");
        Ok(())
    }

    async fn send_job(&self, job: &SyncJob, delay_seconds: u32) -> Result<(), FetchError> {
        let body = job.to_json().map_err(FetchError::Encode)?;
        self.ports
            .queue(QueueRole::Fetch.logical_name())?
            .send(OutgoingMessage::new(body).delayed(Duration::from_secs(u64::from(delay_seconds))))
            .await?;
        Ok(())
    }

    /// Sends the page's batches in as few calls as the queue allows (10 entries and 256 KiB per
    /// call). A failed entry fails the message: the redelivery sends the page again, and the
    /// transformer deduplicates the batches by their source.
    async fn send_batches(&self, page: u32, bodies: Vec<String>) -> Result<(), FetchError> {
        let parts = bodies.len();
        let queue = self.ports.queue(QueueRole::Transform.logical_name())?;
        let mut chunks: Vec<Vec<OutgoingMessage>> = Vec::new();
        let mut chunk_bytes = 0;
        for body in bodies {
            let message = OutgoingMessage::new(body);
            let size = message.size();
            match chunks.last_mut() {
                Some(chunk)
                    if chunk.len() < MAX_BATCH_ENTRIES
                        && chunk_bytes + size <= MAX_MESSAGE_BYTES =>
                {
                    chunk_bytes += size;
                    chunk.push(message);
                }
                _ => {
                    chunk_bytes = size;
                    chunks.push(vec![message]);
                }
            }
        }
        let mut failed = 0;
        let mut retryable = true;
        let mut reason = String::new();
        for chunk in chunks {
            for outcome in queue.send_batch(chunk).await? {
                if let Err(error) = outcome {
                    failed += 1;
                    retryable &= error.is_retryable();
                    reason = error.to_string();
                }
            }
        }
        if failed > 0 {
            return Err(FetchError::Send {
                page,
                parts,
                failed,
                reason,
                retryable,
            });
        }
        Ok(())
    }

    /// Log lines are for people following the run: losing one must not fail the page.
    async fn log(
        &self,
        job: &SyncJob,
        level: LogLevel,
        message: &str,
        data: Option<Map<String, Value>>,
    ) {
        if let Err(error) = self
            .sync
            .append_log(&job.execution_id, level, message, data)
            .await
        {
            tracing::warn!(
                code = error.code(),
                "could not append to the execution log: {error}"
            );
        }
    }
}

#[async_trait]
impl MessageHandler for FetchHandler {
    async fn handle(&self, message: &QueueMessage) -> Result<(), HandlerError> {
        let job = SyncJob::from_json(&message.body).map_err(FetchError::InvalidJob)?;
        let span = tracing::info_span!(
            "fetch_job",
            tenant = %job.tenant_id,
            execution = %job.execution_id,
            task = %job.task_id,
            page = job.page,
            attempt = job.attempt,
        );
        let outcome = self.handle_job(&job).instrument(span.clone()).await?;
        span.in_scope(|| tracing::info!(?outcome, "fetch job handled"));
        Ok(())
    }
}
