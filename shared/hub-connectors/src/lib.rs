//! Declarative connector runtime over reqwest, and the sample CRM API.
//!
//! - [`definition`]: connector definition files (`connectors/*.json`) and their validation;
//!   [`catalog::ConnectorCatalog`] loads them at start-up.
//! - [`fetch::Fetcher`]: one page of one stream per call, over one shared HTTP client, behind
//!   the SSRF guard of [`egress`]; failures classified for the caller's retry decision.
//! - [`retry`]: `Retry-After` and exponential backoff with full jitter (pure, never sleeps).
//! - [`circuit`]: a circuit breaker per connection, its state in the state table.
//! - [`sample`]: the deterministic sample CRM API that `hub dev`, the tests and the benchmarks
//!   pull from.
//!
//! How the fetcher function uses them for one `SyncJob` (one page):
//!
//! 1. At start-up: `ConnectorCatalog::builtin()` (or `load_dir`), one [`Fetcher`] (strict
//!    [`EgressPolicy`] plus the deployment's allow-list; `local_sandbox()` in `hub dev`) and one
//!    [`CircuitBreaker`], shared by every invocation.
//! 2. `breaker.admit(tenant, connection)`: `Rejected { retry_after }` means re-enqueue the job
//!    with that delay without calling the API.
//! 3. `fetcher.fetch_page(&PageRequest { .. page_token: job.page_token, cursor_window })`.
//! 4. `Ok(page)`: `record_success`; split `page.records` into `RecordBatch`es carrying
//!    `page.cursor_candidate`; if `page.next_page_token` is `Some`, enqueue the next job (delayed
//!    by `page.rate_limit.exhausted_delay()` when the budget is spent).
//! 5. `Err(e)`: if `e.counts_against_circuit()`, `record_failure`. If `e.is_retryable()`,
//!    `next_retry(&policy, job.attempt, e.retry_after(), random_jitter())`: `Delay` -> re-enqueue
//!    with `attempt + 1` and that delay, `Park` -> park the execution with a `resumeAt`,
//!    `GiveUp` -> fail the message (DLQ). `AuthFailed` -> `connection.needs_reauth`;
//!    `NotFound`, `Permanent`, `Blocked` -> fail the execution with `e.code()`.

pub mod catalog;
pub mod circuit;
pub mod definition;
pub mod egress;
pub mod fetch;
mod incremental;
pub mod pagination;
pub mod retry;
pub mod sample;
pub mod template;

pub use catalog::{CatalogError, ConnectorCatalog};
pub use circuit::{Admission, CircuitBreaker, CircuitConfig, CircuitRecord, CircuitState, Permit};
pub use definition::ConnectorDefinition;
pub use egress::{EgressBlocked, EgressPolicy};
pub use fetch::{FetchError, Fetcher, FetcherConfig, PageRequest, PageResult, RateLimitInfo};
pub use retry::{BackoffPolicy, RetryDecision, next_retry, parse_retry_after, random_jitter};
pub use sample::{SampleApi, SampleConfig, SampleServer};
