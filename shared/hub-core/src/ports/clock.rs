//! Time and ids, behind traits so tests control them.

use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use ulid::Ulid;

pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that only moves when told to.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<DateTime<Utc>>,
}

impl ManualClock {
    pub fn new(start: DateTime<Utc>) -> Self {
        Self {
            now: Mutex::new(start),
        }
    }

    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(|e| e.into_inner());
        *now += chrono::Duration::from_std(by).unwrap_or(chrono::Duration::MAX);
    }

    pub fn set(&self, to: DateTime<Utc>) {
        *self.now.lock().unwrap_or_else(|e| e.into_inner()) = to;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub trait IdGenerator: Send + Sync {
    /// A new ULID string: unique, and sortable by creation time.
    fn new_id(&self) -> String;
}

/// ULIDs from the system's randomness and the given clock's time; monotonic within a
/// millisecond so ids created in one process sort in creation order.
pub struct UlidGenerator<C> {
    clock: C,
    last: Mutex<Option<Ulid>>,
}

impl<C: Clock> UlidGenerator<C> {
    pub fn new(clock: C) -> Self {
        Self {
            clock,
            last: Mutex::new(None),
        }
    }
}

impl<C: Clock> IdGenerator for UlidGenerator<C> {
    fn new_id(&self) -> String {
        let millis = self.clock.now().timestamp_millis().max(0) as u64;
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let next = match *last {
            Some(prev) if prev.timestamp_ms() >= millis => {
                prev.increment().unwrap_or_else(|_| Ulid::generate())
            }
            _ => Ulid::from_parts(millis, rand_bits()),
        };
        *last = Some(next);
        next.to_string()
    }
}

fn rand_bits() -> u128 {
    // `Ulid::new()` draws from the thread RNG; only its random part is wanted here.
    Ulid::generate().random()
}

impl<C: Clock> Clock for std::sync::Arc<C> {
    fn now(&self) -> DateTime<Utc> {
        (**self).now()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_sort_in_creation_order_within_a_millisecond() {
        let ids = UlidGenerator::new(ManualClock::new(Utc::now()));
        let a = ids.new_id();
        let b = ids.new_id();
        assert!(a < b, "{a} < {b}");
        assert_eq!(a.len(), 26);
    }
}
