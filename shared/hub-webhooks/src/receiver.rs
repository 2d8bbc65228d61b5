//! The webhook receiver: from a raw request on `/webhooks/{routeId}` to a durably published
//! `webhook.received` event, whatever HTTP front end (API Gateway, the local host) carried it.
//!
//! In order: the route (by its unguessable id, cached with its verifier for
//! [`ReceiverOptions::route_cache_ttl`] so rotated secrets are picked up), the source address,
//! the route's rate limit, verification on the raw bytes, then the **dedup ledger** and the
//! publish:
//!
//! 1. a conditional put records `(routeId, deliveryId)` as `pending` with an expiry at the
//!    route's dedup window (reads treat an expired entry as absent);
//! 2. a payload too large for an event is stored in chunks (a claim check) and the event
//!    carries a [`hub_core::messages::PayloadRef`];
//! 3. the event is published; only then is the delivery acknowledged;
//! 4. the entry is marked `published` (before the answer goes out, or right after it with
//!    [`ReceiverOptions::answer_before_marking`]).
//!
//! A duplicate of a `published` delivery gets `200` with `"status": "duplicate"` and is not
//! published again. A crash between 1 and 4 leaves the entry `pending`: a retry finding it
//! older than [`ReceiverOptions::pending_takeover`] takes it over and publishes again (the
//! writer deduplicates records), a retry finding it younger gets `409 delivery_in_progress`,
//! so a delivery whose attempt died is never answered "duplicate" without having been
//! published. A failed publish deletes the entry so the provider's retry starts afresh.
//!
//! Steps 1, 3 and 4 of every delivery waiting at the same moment are written together (see
//! [`crate::commit`]): one transaction of claims, one `put_events`, one batch of marks.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use hub_core::keys;
use hub_core::model::SecretRef;
use hub_core::ports::{EventBus, IdGenerator, Key, Ports, SecretStore, StateStore};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

use crate::commit::{self, CommitSettings, Committed, Job};
use crate::config::MAX_BODY_BYTES_LIMIT;
use crate::error::WebhookError;
use crate::payload::INLINE_PAYLOAD_LIMIT;
use crate::ratelimit::{Admission, InProcessRateLimiter, RateLimiter, StateTableRateLimiter};
use crate::request::WebhookRequest;
use crate::route::{RouteId, RouteStoreError, WebhookRoute, get_route};
use crate::secrets::ResolvedSecrets;
use crate::verify::{Handshake, Outcome, VerifiedDelivery, Verifier};

/// Which rate limiter guards the routes (see [`crate::ratelimit`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateLimiting {
    /// Shared by every process through the state table: for Lambda.
    StateTable,
    /// In this process's memory: for the local host, a single process.
    InProcess,
}

#[derive(Debug, Clone)]
pub struct ReceiverOptions {
    /// How long a route, its verifier and the secrets read for it are reused. A rotated or
    /// added secret is in use at most this long after it was stored.
    pub route_cache_ttl: Duration,
    /// A `pending` ledger entry older than this belongs to an attempt that died; a retry takes
    /// it over.
    pub pending_takeover: Duration,
    /// Payload JSON above this many bytes goes to the state table instead of into the event
    /// (EventBridge and SQS both stop at 256 KiB, and the envelope adds its own members).
    pub inline_payload_limit: usize,
    pub rate_limiting: RateLimiting,
    /// The public URL prefix the providers call (`https://hooks.example.com`), for the schemes
    /// that sign the URL (Twilio, HubSpot v2/v3). Without it adapters use the request's host.
    pub public_base_url: Option<String>,
    /// Answer as soon as the events are published (durable) and mark the ledger entries
    /// `published` right after, instead of before answering. Only for a process that outlives
    /// its requests (the local host): a Lambda environment may be frozen once its answer is
    /// out, leaving the marks unwritten. Either way the marks are written before the next
    /// batch is claimed, so a duplicate never finds its delivery `pending` because of it.
    pub answer_before_marking: bool,
}

impl Default for ReceiverOptions {
    fn default() -> Self {
        Self {
            route_cache_ttl: Duration::from_secs(60),
            pending_takeover: Duration::from_secs(5),
            inline_payload_limit: INLINE_PAYLOAD_LIMIT,
            rate_limiting: RateLimiting::StateTable,
            public_base_url: None,
            answer_before_marking: false,
        }
    }
}

/// Environment variable of [`ReceiverOptions::public_base_url`].
pub const ENV_PUBLIC_BASE_URL: &str = "HUB_WEBHOOK_BASE_URL";

impl ReceiverOptions {
    /// The defaults, with `HUB_WEBHOOK_BASE_URL` when set.
    pub fn from_env() -> Self {
        Self {
            public_base_url: std::env::var(ENV_PUBLIC_BASE_URL)
                .ok()
                .filter(|url| !url.is_empty()),
            ..Self::default()
        }
    }
}

/// The HTTP answer, for the adapter to send as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookResponse {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

impl WebhookResponse {
    fn json(status: u16, body: &Value) -> Self {
        Self {
            status,
            headers: vec![("content-type", "application/json".to_owned())],
            body: body.to_string().into_bytes(),
        }
    }

    /// A request the adapter could not turn into a [`WebhookRequest`] (a body that is not
    /// valid base64, a connection that broke while the body was read): `400
    /// malformed_request`, in the receiver's error shape.
    pub fn malformed_request(message: &str) -> Self {
        Self::json(
            400,
            &json!({"code": "malformed_request", "message": message}),
        )
    }

    fn error(error: &ReceiveError) -> Self {
        let message = match error {
            // The cause goes to the log; the caller learns only that it may retry.
            ReceiveError::Unavailable { .. } => {
                "the receiver cannot accept deliveries right now; retry later".to_owned()
            }
            other => other.to_string(),
        };
        let mut response = Self::json(
            error.status(),
            &json!({"code": error.code(), "message": message}),
        );
        if let Some(after) = error.retry_after() {
            response
                .headers
                .push(("retry-after", after.as_secs().max(1).to_string()));
        }
        response
    }

    fn handshake(handshake: &Handshake) -> Self {
        Self {
            status: handshake.status(),
            headers: vec![("content-type", handshake.content_type().to_owned())],
            body: handshake.body().as_bytes().to_vec(),
        }
    }

    /// The first value of a header (names are lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(present, _)| present.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// Why a request was not accepted. Every variant but `Unavailable` is the caller's doing (4xx)
/// and nothing was published for it.
#[derive(Debug, thiserror::Error)]
pub enum ReceiveError {
    #[error("no webhook route has this id")]
    UnknownRoute,
    #[error(transparent)]
    Rejected(#[from] WebhookError),
    #[error("this route's rate limit is exceeded; retry later")]
    RateLimited { retry_after: Duration },
    #[error("this delivery is being accepted by another request; retry in a few seconds")]
    DeliveryInProgress { retry_after: Duration },
    /// A store or the bus failed; the provider should retry. `detail` is for the log only.
    #[error("{what} failed: {detail}")]
    Unavailable { what: &'static str, detail: String },
}

impl ReceiveError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnknownRoute => "unknown_route",
            Self::Rejected(error) => error.code(),
            Self::RateLimited { .. } => "rate_limited",
            Self::DeliveryInProgress { .. } => "delivery_in_progress",
            Self::Unavailable { .. } => "unavailable",
        }
    }

    pub fn status(&self) -> u16 {
        match self {
            Self::UnknownRoute => 404,
            Self::Rejected(error) => error.status(),
            Self::RateLimited { .. } => 429,
            Self::DeliveryInProgress { .. } => 409,
            Self::Unavailable { .. } => 503,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after } | Self::DeliveryInProgress { retry_after } => {
                Some(*retry_after)
            }
            Self::Unavailable { .. } => Some(Duration::from_secs(5)),
            Self::UnknownRoute | Self::Rejected(_) => None,
        }
    }

    pub(crate) fn unavailable(what: &'static str, detail: impl ToString) -> Self {
        Self::Unavailable {
            what,
            detail: detail.to_string(),
        }
    }
}

/// The path is the caller's: only a well-formed id reaches the log.
fn loggable(route_id: &str) -> &str {
    if RouteId::is_well_formed(route_id) {
        route_id
    } else {
        "(malformed)"
    }
}

/// The answer to a refused request, and its log line: never the body, nor a secret.
fn refused(
    route_id: &str,
    method: &str,
    body_bytes: Option<u64>,
    elapsed_ms: Option<f64>,
    error: &ReceiveError,
) -> WebhookResponse {
    let code = error.code();
    let status = error.status();
    if status >= 500 {
        tracing::error!(
            route_id,
            method,
            code,
            status,
            elapsed_ms,
            "webhook receiver failed: {error}"
        );
    } else if matches!(
        error,
        ReceiveError::Rejected(WebhookError::BodyTooLarge { .. })
    ) {
        // Unlike a bad signature, nothing the provider retries will get through: deliveries
        // are lost until the route's `maxBodyBytes` is raised or the provider sends less.
        tracing::warn!(
            route_id,
            method,
            code,
            status,
            body_bytes,
            elapsed_ms,
            "webhook refused: {error}"
        );
    } else {
        tracing::info!(
            route_id,
            method,
            code,
            status,
            body_bytes,
            elapsed_ms,
            "webhook refused: {error}"
        );
    }
    WebhookResponse::error(error)
}

/// What an accepted request led to.
enum Received {
    Handshake(Handshake),
    Published {
        provider: &'static str,
        delivery_id: String,
        claim_check: bool,
    },
    Duplicate {
        provider: &'static str,
        delivery_id: String,
    },
}

/// A route with the verifier built from its secrets.
struct CachedRoute {
    route: Arc<WebhookRoute>,
    verifier: Verifier,
    loaded_at: DateTime<Utc>,
}

/// Routes cached at once before expired ones are swept out.
const ROUTE_CACHE_SWEEP_AT: usize = 10_000;

pub struct Receiver {
    state: Arc<dyn StateStore>,
    bus: Arc<dyn EventBus>,
    secrets: Arc<dyn SecretStore>,
    clock: Arc<dyn hub_core::Clock>,
    ids: Arc<dyn IdGenerator>,
    limiter: Arc<dyn RateLimiter>,
    options: ReceiverOptions,
    routes: Mutex<HashMap<String, Arc<CachedRoute>>>,
    /// Started on the first delivery (it needs the runtime the requests run on).
    committer: OnceLock<mpsc::UnboundedSender<Job>>,
}

impl Receiver {
    pub fn new(ports: &Ports, options: ReceiverOptions) -> Self {
        let limiter: Arc<dyn RateLimiter> = match options.rate_limiting {
            RateLimiting::StateTable => {
                Arc::new(StateTableRateLimiter::new(Arc::clone(&ports.state)))
            }
            RateLimiting::InProcess => Arc::new(InProcessRateLimiter::new()),
        };
        Self {
            state: Arc::clone(&ports.state),
            bus: Arc::clone(&ports.bus),
            secrets: Arc::clone(&ports.secrets),
            clock: Arc::clone(&ports.clock),
            ids: Arc::clone(&ports.ids),
            limiter,
            options,
            routes: Mutex::new(HashMap::new()),
            committer: OnceLock::new(),
        }
    }

    pub fn options(&self) -> &ReceiverOptions {
        &self.options
    }

    /// The URL a provider called, for the schemes that sign it: the configured public base URL
    /// if any, else `fallback_base` (`https://<host>` as the adapter saw it).
    pub fn request_url(&self, fallback_base: &str, path: &str, query: Option<&str>) -> String {
        let base = self
            .options
            .public_base_url
            .as_deref()
            .unwrap_or(fallback_base)
            .trim_end_matches('/');
        match query {
            Some(query) if !query.is_empty() => format!("{base}{path}?{query}"),
            _ => format!("{base}{path}"),
        }
    }

    /// Answers one request on `/webhooks/{route_id}`. Logs one line per request with the
    /// route, provider, delivery id and outcome; never a secret, a signature or the body.
    pub async fn handle(&self, route_id: &str, request: WebhookRequest) -> WebhookResponse {
        let started = Instant::now();
        let method = request.method().to_owned();
        let body_bytes = request.body().len();
        let outcome = self.receive(route_id, request).await;
        let route_id = loggable(route_id);
        let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
        match outcome {
            Ok(Received::Handshake(handshake)) => {
                tracing::info!(route_id, %method, kind = ?handshake.kind(), elapsed_ms, "webhook handshake answered");
                WebhookResponse::handshake(&handshake)
            }
            Ok(Received::Published {
                provider,
                delivery_id,
                claim_check,
            }) => {
                tracing::info!(route_id, provider, %delivery_id, body_bytes, claim_check, elapsed_ms, "webhook delivery published");
                WebhookResponse::json(
                    200,
                    &json!({"status": "accepted", "deliveryId": delivery_id}),
                )
            }
            Ok(Received::Duplicate {
                provider,
                delivery_id,
            }) => {
                tracing::info!(route_id, provider, %delivery_id, elapsed_ms, "webhook delivery is a duplicate");
                WebhookResponse::json(
                    200,
                    &json!({"status": "duplicate", "deliveryId": delivery_id}),
                )
            }
            Err(error) => refused(
                route_id,
                &method,
                u64::try_from(body_bytes).ok(),
                Some(elapsed_ms),
                &error,
            ),
        }
    }

    /// Answers a request whose body the adapter did not read in full because it is over
    /// [`MAX_BODY_BYTES_LIMIT`], which no route exceeds: announced so by `content-length`
    /// (`size`) or found while reading (`None`). The answer and the log line are those of
    /// [`Receiver::handle`] for a body over the limit: `413 body_too_large`.
    pub fn refuse_oversize_body(
        &self,
        route_id: &str,
        method: &str,
        size: Option<u64>,
    ) -> WebhookResponse {
        let error = ReceiveError::Rejected(WebhookError::BodyTooLarge {
            size,
            limit: MAX_BODY_BYTES_LIMIT,
        });
        refused(loggable(route_id), method, size, None, &error)
    }

    async fn receive(
        &self,
        route_id: &str,
        request: WebhookRequest,
    ) -> Result<Received, ReceiveError> {
        // No route takes more; refused before any store is read, as an adapter that stops
        // reading at this limit refuses it (`refuse_oversize_body`).
        let size = u64::try_from(request.body().len()).unwrap_or(u64::MAX);
        if size > MAX_BODY_BYTES_LIMIT {
            return Err(WebhookError::BodyTooLarge {
                size: Some(size),
                limit: MAX_BODY_BYTES_LIMIT,
            }
            .into());
        }
        if !RouteId::is_well_formed(route_id) {
            return Err(ReceiveError::UnknownRoute);
        }
        let cached = self.route(route_id).await?;
        let route = &cached.route;
        // Before the rate limit, so refused sources do not use up the route's allowance.
        if !route.config.ip_allowed(request.source_ip()) {
            return Err(WebhookError::SourceIpNotAllowed.into());
        }
        let now = self.clock.now();
        match self
            .limiter
            .admit(route_id, route.rate_limit(), now)
            .await
            .map_err(|error| ReceiveError::unavailable("the rate limiter", error))?
        {
            Admission::Allowed => {}
            Admission::Limited { retry_after } => {
                return Err(ReceiveError::RateLimited { retry_after });
            }
        }
        let delivery = match cached.verifier.verify(request, now)? {
            Outcome::Handshake(handshake) => return Ok(Received::Handshake(handshake)),
            Outcome::Delivery(delivery) => delivery,
        };
        let provider = delivery.provider().as_str();
        let delivery_id = delivery.delivery_id().as_str().to_owned();
        let ledger_key = keys::webhook_delivery(route_id, &delivery_id);
        match self
            .commit(&cached.route, ledger_key, delivery, now)
            .await?
        {
            Committed::Published { claim_check } => Ok(Received::Published {
                provider,
                delivery_id,
                claim_check,
            }),
            Committed::Duplicate => Ok(Received::Duplicate {
                provider,
                delivery_id,
            }),
            Committed::InProgress => Err(ReceiveError::DeliveryInProgress {
                retry_after: self.options.pending_takeover,
            }),
        }
    }

    /// The route and its verifier, from the cache while fresh.
    async fn route(&self, route_id: &str) -> Result<Arc<CachedRoute>, ReceiveError> {
        let now = self.clock.now();
        let ttl = chrono::Duration::from_std(self.options.route_cache_ttl)
            .unwrap_or(chrono::Duration::MAX);
        if let Some(cached) = self.cached(route_id)
            && now - cached.loaded_at < ttl
        {
            return Ok(cached);
        }
        let route = match get_route(&*self.state, route_id).await {
            Ok(Some(route)) => route,
            Ok(None) => return Err(ReceiveError::UnknownRoute),
            Err(RouteStoreError::Store(error)) => {
                return Err(ReceiveError::unavailable("reading the route", error));
            }
            Err(error) => {
                return Err(WebhookError::UnknownSchemeConfig {
                    reason: error.to_string(),
                }
                .into());
            }
        };
        let secrets = self.resolve_secrets(route_id, &route).await?;
        // Not cached when it fails: a route fixed by its operator works on the next request.
        let verifier = Verifier::new(route.config.clone(), &secrets)?;
        let cached = Arc::new(CachedRoute {
            route: Arc::new(route),
            verifier,
            loaded_at: now,
        });
        let mut routes = self.routes.lock().unwrap_or_else(|e| e.into_inner());
        if routes.len() >= ROUTE_CACHE_SWEEP_AT {
            routes.retain(|_, cached| now - cached.loaded_at < ttl);
        }
        routes.insert(route_id.to_owned(), Arc::clone(&cached));
        Ok(cached)
    }

    fn cached(&self, route_id: &str) -> Option<Arc<CachedRoute>> {
        let routes = self.routes.lock().unwrap_or_else(|e| e.into_inner());
        routes.get(route_id).cloned()
    }

    /// Reads every secret the route names. A missing one is skipped (it may be the old half of
    /// a rotation); the verifier refuses to start without any.
    async fn resolve_secrets(
        &self,
        route_id: &str,
        route: &WebhookRoute,
    ) -> Result<ResolvedSecrets, ReceiveError> {
        let mut resolved = ResolvedSecrets::new();
        let references: Vec<SecretRef> = route.config.secret_refs().cloned().collect();
        for reference in references {
            match self.secrets.get(reference.as_str()).await {
                Ok(Some(version)) => resolved.insert(reference, version.value),
                Ok(None) => {
                    tracing::warn!(route_id, secret = %reference, "a secret of the webhook route does not exist");
                }
                Err(error) if error.is_retryable() => {
                    return Err(ReceiveError::unavailable(
                        "reading the route's secrets",
                        error,
                    ));
                }
                Err(error) => {
                    tracing::warn!(route_id, secret = %reference, %error, "a secret of the webhook route cannot be read");
                }
            }
        }
        Ok(resolved)
    }

    /// Hands a verified delivery to the group commit and waits for its outcome.
    async fn commit(
        &self,
        route: &Arc<WebhookRoute>,
        key: Key,
        delivery: VerifiedDelivery,
        now: DateTime<Utc>,
    ) -> Result<Committed, ReceiveError> {
        let sender = self.committer.get_or_init(|| {
            commit::start(
                Arc::clone(&self.state),
                Arc::clone(&self.bus),
                CommitSettings {
                    pending_takeover: self.options.pending_takeover,
                    inline_payload_limit: self.options.inline_payload_limit,
                    answer_before_marking: self.options.answer_before_marking,
                },
            )
        });
        let (reply, outcome) = oneshot::channel();
        let job = Job {
            key,
            attempt: self.ids.new_id(),
            route: Arc::clone(route),
            delivery: Some(delivery),
            now,
            reply,
        };
        let gone = || ReceiveError::unavailable("the group commit", "it stopped");
        sender.send(job).map_err(|_| gone())?;
        outcome.await.map_err(|_| gone())?
    }
}
