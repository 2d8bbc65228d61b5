//! Per-route rate limits, checked before a delivery is verified (so a flood costs no HMAC of
//! megabyte bodies and no writes).
//!
//! Two limiters, one per host:
//! - [`StateTableRateLimiter`] counts requests per window in the state table with one
//!   conditional `ADD` per request, so every concurrent Lambda execution environment shares
//!   one count (an in-process limiter on Lambda would allow the limit once per environment,
//!   i.e. multiplied by the function's concurrency);
//! - [`InProcessRateLimiter`] is a token bucket in memory, for the local host, which is one
//!   process serving every route: exact there, and it costs no write per request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use hub_core::keys;
use hub_core::ports::{CmpOp, Condition, EXPIRES_AT, StateStore, StoreError, UpdateAction};

use crate::route::RateLimit;

/// Whether a request may go on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Allowed,
    /// Over the limit; try again after this long (sent as `Retry-After`).
    Limited {
        retry_after: Duration,
    },
}

#[async_trait]
pub trait RateLimiter: Send + Sync {
    /// Takes one request from the route's allowance at `now`.
    async fn admit(
        &self,
        route_id: &str,
        limit: RateLimit,
        now: DateTime<Utc>,
    ) -> Result<Admission, StoreError>;
}

/// Fixed windows counted in the state table. A window lasts `burst / requestsPerSecond`
/// seconds (at least one) and admits `burst` requests, so the average rate and the largest
/// burst are both those of the route. The counter item expires a minute after its window.
pub struct StateTableRateLimiter {
    state: Arc<dyn StateStore>,
}

const COUNT: &str = "count";

impl StateTableRateLimiter {
    pub fn new(state: Arc<dyn StateStore>) -> Self {
        Self { state }
    }
}

#[async_trait]
impl RateLimiter for StateTableRateLimiter {
    async fn admit(
        &self,
        route_id: &str,
        limit: RateLimit,
        now: DateTime<Utc>,
    ) -> Result<Admission, StoreError> {
        let burst = i64::from(limit.burst());
        let window_ms = (burst * 1000 / i64::from(limit.requests_per_second.max(1))).max(1000);
        let now_ms = now.timestamp_millis();
        let window_start = now_ms - now_ms.rem_euclid(window_ms);
        let window_end = window_start + window_ms;
        let key = keys::webhook_rate_window(route_id, window_start);
        let actions = vec![
            UpdateAction::Add(COUNT.into(), 1),
            UpdateAction::Set(EXPIRES_AT.into(), (window_end / 1000 + 60).into()),
        ];
        let below_limit =
            Condition::NotExists(COUNT.into()).or(Condition::cmp(COUNT, CmpOp::Lt, burst));
        match self.state.update(&key, actions, Some(below_limit)).await {
            Ok(_) => Ok(Admission::Allowed),
            Err(StoreError::ConditionFailed) => Ok(Admission::Limited {
                retry_after: Duration::from_millis(
                    u64::try_from(window_end - now_ms).unwrap_or(1000),
                ),
            }),
            Err(error) => Err(error),
        }
    }
}

/// A token bucket per route in this process's memory.
#[derive(Default)]
pub struct InProcessRateLimiter {
    buckets: Mutex<HashMap<String, Bucket>>,
}

struct Bucket {
    tokens: f64,
    refilled_at: DateTime<Utc>,
}

impl InProcessRateLimiter {
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl RateLimiter for InProcessRateLimiter {
    async fn admit(
        &self,
        route_id: &str,
        limit: RateLimit,
        now: DateTime<Utc>,
    ) -> Result<Admission, StoreError> {
        let rate = f64::from(limit.requests_per_second.max(1));
        let capacity = f64::from(limit.burst());
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let bucket = buckets.entry(route_id.to_owned()).or_insert(Bucket {
            tokens: capacity,
            refilled_at: now,
        });
        let elapsed = (now - bucket.refilled_at).num_microseconds().unwrap_or(0) as f64 / 1e6;
        if elapsed > 0.0 {
            bucket.tokens = (bucket.tokens + elapsed * rate).min(capacity);
            bucket.refilled_at = now;
        }
        // A lowered limit takes effect at once.
        bucket.tokens = bucket.tokens.min(capacity);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(Admission::Allowed);
        }
        let wait = (1.0 - bucket.tokens) / rate;
        Ok(Admission::Limited {
            retry_after: Duration::from_secs_f64(wait.max(0.001)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(millis: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(1_750_000_000_000 + millis).unwrap()
    }

    #[tokio::test]
    async fn the_bucket_admits_its_burst_then_refills_at_the_rate() {
        let limiter = InProcessRateLimiter::new();
        let limit = RateLimit {
            requests_per_second: 2,
            burst: Some(3),
        };
        for _ in 0..3 {
            assert_eq!(
                limiter.admit("r", limit, at(0)).await.unwrap(),
                Admission::Allowed
            );
        }
        let Admission::Limited { retry_after } = limiter.admit("r", limit, at(0)).await.unwrap()
        else {
            panic!("the fourth request in the same instant is over the burst");
        };
        assert_eq!(retry_after, Duration::from_millis(500));
        assert_eq!(
            limiter.admit("other", limit, at(0)).await.unwrap(),
            Admission::Allowed,
            "routes have their own buckets"
        );
        assert_eq!(
            limiter.admit("r", limit, at(500)).await.unwrap(),
            Admission::Allowed
        );
        assert!(matches!(
            limiter.admit("r", limit, at(500)).await.unwrap(),
            Admission::Limited { .. }
        ));
    }
}
