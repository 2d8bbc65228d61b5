//! Pacing replays: evenly spaced sends at a rate, measured on a clock tests can replace.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;

/// The time a [`RateLimiter`] waits on.
#[async_trait]
pub trait Pace: Send + Sync {
    /// Time since a fixed start (monotonic).
    fn elapsed(&self) -> Duration;
    async fn sleep(&self, duration: Duration);
}

/// Real, monotonic time (tokio's clock).
#[derive(Debug, Clone, Copy)]
pub struct RealTime {
    start: tokio::time::Instant,
}

impl RealTime {
    pub fn new() -> Self {
        Self {
            start: tokio::time::Instant::now(),
        }
    }
}

impl Default for RealTime {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl Pace for RealTime {
    fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    async fn sleep(&self, duration: Duration) {
        tokio::time::sleep(duration).await;
    }
}

/// Time that only moves when someone sleeps on it: a replay at 1 message per second takes no
/// real time, and the time it would have taken is [`VirtualTime::elapsed`].
#[derive(Debug, Default)]
pub struct VirtualTime {
    now: Mutex<Duration>,
    sleeps: Mutex<Vec<Duration>>,
}

impl VirtualTime {
    pub fn new() -> Self {
        Self::default()
    }

    /// Every sleep asked for, in order.
    pub fn sleeps(&self) -> Vec<Duration> {
        self.sleeps
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

#[async_trait]
impl Pace for VirtualTime {
    fn elapsed(&self) -> Duration {
        *self.now.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn sleep(&self, duration: Duration) {
        *self.now.lock().unwrap_or_else(|e| e.into_inner()) += duration;
        self.sleeps
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(duration);
    }
}

/// At most `rate` acquisitions per second, evenly spaced: the first goes at once, each next one
/// `1 / rate` after the previous slot (or at once when the caller was slower than that).
pub struct RateLimiter {
    interval: Duration,
    next_slot: Option<Duration>,
    pace: Arc<dyn Pace>,
}

impl RateLimiter {
    /// `rate` must be positive and finite (callers validate it).
    pub fn per_second(rate: f64, pace: Arc<dyn Pace>) -> Self {
        let interval = if rate.is_finite() && rate > 0.0 {
            Duration::from_secs_f64(1.0 / rate)
        } else {
            Duration::ZERO
        };
        Self {
            interval,
            next_slot: None,
            pace,
        }
    }

    /// Waits for the next slot.
    pub async fn acquire(&mut self) {
        let now = self.pace.elapsed();
        let slot = match self.next_slot {
            Some(slot) if slot > now => {
                self.pace.sleep(slot - now).await;
                slot
            }
            _ => now,
        };
        self.next_slot = Some(slot + self.interval);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn slots_are_evenly_spaced_and_a_slow_caller_is_not_punished() {
        let time = Arc::new(VirtualTime::new());
        let mut limiter = RateLimiter::per_second(4.0, time.clone());
        for _ in 0..5 {
            limiter.acquire().await;
        }
        assert_eq!(time.elapsed(), Duration::from_secs(1), "5 slots at 4/s");
        assert_eq!(time.sleeps(), vec![Duration::from_millis(250); 4]);
        // The caller spends 2 s elsewhere: the next slot is now, not a burst of the missed ones.
        time.sleep(Duration::from_secs(2)).await;
        limiter.acquire().await;
        limiter.acquire().await;
        assert_eq!(time.elapsed(), Duration::from_millis(3250));
    }

    #[tokio::test]
    async fn real_time_paces_too() {
        let mut limiter = RateLimiter::per_second(100.0, Arc::new(RealTime::new()));
        let started = tokio::time::Instant::now();
        for _ in 0..3 {
            limiter.acquire().await;
        }
        assert!(started.elapsed() >= Duration::from_millis(20));
    }
}
