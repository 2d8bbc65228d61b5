//! When to try again: `Retry-After`, rate-limit headers, and exponential backoff with full
//! jitter. Nothing here sleeps: a function re-enqueues its job with the computed delay.

use std::time::{Duration, SystemTime};

use crate::definition::ResetFormat;

/// The longest SQS `DelaySeconds`; a longer wait parks the execution instead.
pub const MAX_QUEUE_DELAY: Duration = Duration::from_secs(900);

/// Reads a `Retry-After` value: delay-seconds or an HTTP date (RFC 9110 section 10.2.3).
/// A date in the past means "now" (zero).
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Some(seconds) = parse_seconds(value) {
        return Some(seconds);
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// A rate-limit reset header as a delay from `now`.
pub fn parse_reset(value: &str, format: ResetFormat, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    match format {
        ResetFormat::DeltaSeconds => parse_seconds(value),
        ResetFormat::EpochSeconds => {
            let epoch = parse_number(value).filter(|s| *s < 1.0e12)?;
            let at = SystemTime::UNIX_EPOCH + Duration::from_secs_f64(epoch);
            Some(at.duration_since(now).unwrap_or(Duration::ZERO))
        }
        ResetFormat::HttpDate => {
            let at = httpdate::parse_http_date(value).ok()?;
            Some(at.duration_since(now).unwrap_or(Duration::ZERO))
        }
    }
}

/// Non-negative seconds, whole or fractional (some APIs send `1.5`).
fn parse_number(value: &str) -> Option<f64> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return None;
    }
    value
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
}

/// A delay in seconds, bounded to a year so a garbage value cannot park a job for ever.
fn parse_seconds(value: &str) -> Option<Duration> {
    parse_number(value).map(|s| Duration::from_secs_f64(s.min(365.0 * 86_400.0)))
}

/// Exponential backoff with full jitter (delay uniform in `0..=min(cap, base * 2^(n-1))`),
/// bounded attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackoffPolicy {
    pub base: Duration,
    /// Clamped to [`MAX_QUEUE_DELAY`].
    pub cap: Duration,
    /// Attempts in all, the first included; the attempt numbered `max_attempts` is the last.
    pub max_attempts: u32,
}

impl Default for BackoffPolicy {
    /// 2 s, 4 s, 8 s ... ceilings, 8 attempts: about 8.5 minutes of ceilings before the DLQ.
    fn default() -> Self {
        Self {
            base: Duration::from_secs(2),
            cap: MAX_QUEUE_DELAY,
            max_attempts: 8,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryDecision {
    /// Re-enqueue with this delay (at most [`MAX_QUEUE_DELAY`]).
    Delay(Duration),
    /// The API asked for a longer wait than a queue delay can hold: park the execution and
    /// resume after this long.
    Park(Duration),
    /// Attempts exhausted: fail the message (it goes to the DLQ).
    GiveUp,
}

impl RetryDecision {
    /// The delay as SQS `DelaySeconds` (whole seconds, rounded up, at most 900).
    pub fn delay_seconds(&self) -> Option<u32> {
        match self {
            Self::Delay(delay) => Some(ceil_seconds(*delay).min(MAX_QUEUE_DELAY.as_secs()) as u32),
            Self::Park(_) | Self::GiveUp => None,
        }
    }
}

fn ceil_seconds(delay: Duration) -> u64 {
    delay.as_secs() + u64::from(delay.subsec_nanos() > 0)
}

/// What to do after attempt number `attempt` (1-based, as `SyncJob::attempt`) failed.
///
/// `retry_after` is the server's request (`Retry-After`, or the rate-limit reset); the delay is
/// never shorter than it. `jitter` is a uniform sample in `[0, 1)` (see [`random_jitter`]);
/// passing it in keeps this a pure function.
pub fn next_retry(
    policy: &BackoffPolicy,
    attempt: u32,
    retry_after: Option<Duration>,
    jitter: f64,
) -> RetryDecision {
    if attempt >= policy.max_attempts {
        return RetryDecision::GiveUp;
    }
    let cap = policy.cap.min(MAX_QUEUE_DELAY);
    let exponent = attempt.saturating_sub(1).min(31);
    let ceiling = policy
        .base
        .checked_mul(1u32 << exponent)
        .map_or(cap, |d| d.min(cap));
    let jitter = if jitter.is_finite() {
        jitter.clamp(0.0, 1.0)
    } else {
        1.0
    };
    let backoff = ceiling.mul_f64(jitter);
    match retry_after {
        Some(wait) if wait > MAX_QUEUE_DELAY => RetryDecision::Park(wait),
        Some(wait) => RetryDecision::Delay(wait.max(backoff)),
        None => RetryDecision::Delay(backoff),
    }
}

/// A uniform sample in `[0, 1)` for [`next_retry`].
pub fn random_jitter() -> f64 {
    rand::random::<f64>()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(seconds)
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now = at(1_700_000_000);
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(90));
        assert_eq!(
            parse_retry_after(&later, now),
            Some(Duration::from_secs(90))
        );
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(90));
        assert_eq!(parse_retry_after(&earlier, now), Some(Duration::ZERO));
        for bad in ["", "-5", "soon", "1e9", "12 s"] {
            assert_eq!(parse_retry_after(bad, now), None, "{bad}");
        }
    }

    #[test]
    fn reset_headers_in_each_format() {
        let now = at(1_700_000_000);
        assert_eq!(
            parse_reset("1700000030", ResetFormat::EpochSeconds, now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_reset("1699999999", ResetFormat::EpochSeconds, now),
            Some(Duration::ZERO)
        );
        assert_eq!(
            parse_reset("2.5", ResetFormat::DeltaSeconds, now),
            Some(Duration::from_millis(2500))
        );
        let date = httpdate::fmt_http_date(now + Duration::from_secs(60));
        assert_eq!(
            parse_reset(&date, ResetFormat::HttpDate, now),
            Some(Duration::from_secs(60))
        );
    }

    #[test]
    fn backoff_ceilings_double_up_to_the_cap() {
        let policy = BackoffPolicy {
            base: Duration::from_secs(2),
            cap: Duration::from_secs(60),
            max_attempts: 10,
        };
        let full = |attempt| next_retry(&policy, attempt, None, 1.0);
        assert_eq!(full(1), RetryDecision::Delay(Duration::from_secs(2)));
        assert_eq!(full(2), RetryDecision::Delay(Duration::from_secs(4)));
        assert_eq!(full(5), RetryDecision::Delay(Duration::from_secs(32)));
        assert_eq!(full(6), RetryDecision::Delay(Duration::from_secs(60)));
        assert_eq!(full(9), RetryDecision::Delay(Duration::from_secs(60)));
        assert_eq!(full(10), RetryDecision::GiveUp);
        assert_eq!(
            next_retry(&policy, 3, None, 0.25),
            RetryDecision::Delay(Duration::from_secs(2))
        );
        assert_eq!(
            next_retry(&policy, 3, None, 0.0),
            RetryDecision::Delay(Duration::ZERO)
        );
    }

    #[test]
    fn backoff_is_never_shorter_than_retry_after_and_never_over_900_seconds() {
        let policy = BackoffPolicy {
            cap: Duration::from_secs(10_000),
            max_attempts: 40,
            ..BackoffPolicy::default()
        };
        assert_eq!(
            next_retry(&policy, 1, Some(Duration::from_secs(30)), 0.5),
            RetryDecision::Delay(Duration::from_secs(30))
        );
        assert_eq!(
            next_retry(&policy, 30, None, 1.0),
            RetryDecision::Delay(MAX_QUEUE_DELAY)
        );
        assert_eq!(
            next_retry(&policy, 3, Some(Duration::from_secs(3600)), 0.5),
            RetryDecision::Park(Duration::from_secs(3600))
        );
        assert_eq!(
            next_retry(&policy, 40, Some(Duration::from_secs(1)), 0.5),
            RetryDecision::GiveUp
        );
        assert_eq!(
            RetryDecision::Delay(Duration::from_millis(1500)).delay_seconds(),
            Some(2)
        );
    }

    #[test]
    fn jitter_spreads_delays_below_the_ceiling() {
        let policy = BackoffPolicy::default();
        let delays: Vec<Duration> = (0..200)
            .map(|_| match next_retry(&policy, 4, None, random_jitter()) {
                RetryDecision::Delay(d) => d,
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert!(delays.iter().all(|d| *d <= Duration::from_secs(16)));
        let distinct: std::collections::HashSet<_> = delays.iter().collect();
        assert!(distinct.len() > 100, "jitter must vary: {}", distinct.len());
    }
}
