//! A circuit breaker per connection, shared by every function instance through the state
//! table, so a failing API is left alone for a while instead of being hammered by every
//! queued page.
//!
//! closed --(N consecutive failures within the window)--> open
//! open --(cool-down elapsed; one caller claims the probe with a conditional write)--> half-open
//! half-open --(probe succeeds)--> closed;  half-open --(probe fails)--> open
//!
//! A probe whose caller died is given up after `probe_timeout`, and the next caller probes.
//! The transitions are pure functions of the stored record ([`CircuitRecord`]); the store
//! layer ([`CircuitBreaker`]) applies them with optimistic concurrency on `version`.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use hub_core::keys;
use hub_core::ports::{Clock, Condition, EXPIRES_AT, Item, PK, SK, StateStore, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CircuitConfig {
    pub failure_threshold: u32,
    /// Failures count as consecutive only within this span from the first of them.
    pub window: Duration,
    pub cool_down: Duration,
    /// How long a claimed probe blocks others before it counts as lost.
    pub probe_timeout: Duration,
}

impl Default for CircuitConfig {
    fn default() -> Self {
        Self {
            failure_threshold: 5,
            window: Duration::from_secs(120),
            cool_down: Duration::from_secs(60),
            probe_timeout: Duration::from_secs(120),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CircuitState {
    #[default]
    Closed,
    Open,
    HalfOpen,
}

impl CircuitState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Open => "open",
            Self::HalfOpen => "half_open",
        }
    }
}

/// The stored state of one connection's circuit (times in epoch milliseconds).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CircuitRecord {
    pub state: CircuitState,
    /// Consecutive failures while closed.
    pub failures: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_failure_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opened_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe_claimed_at: Option<i64>,
    /// Incremented by every write; the condition of the next one.
    pub version: u64,
}

/// What a caller holds while its request is in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permit {
    /// The circuit is closed.
    Normal,
    /// This caller is the half-open probe: its outcome closes or re-opens the circuit.
    Probe,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Allowed(Permit),
    /// Do not call the API; try again after this long (re-enqueue with this delay).
    Rejected {
        retry_after: Duration,
    },
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

fn remaining(until: i64, now: i64) -> Duration {
    Duration::from_millis(u64::try_from(until.saturating_sub(now)).unwrap_or(0))
}

impl CircuitRecord {
    /// May a request go out now? Returns the record to write, if the decision changes it
    /// (claiming the probe).
    pub fn admit(&self, now: i64, config: &CircuitConfig) -> (Admission, Option<Self>) {
        match self.state {
            CircuitState::Closed => (Admission::Allowed(Permit::Normal), None),
            CircuitState::Open => {
                let reopen_at = self
                    .opened_at
                    .unwrap_or(now)
                    .saturating_add(millis(config.cool_down));
                if now >= reopen_at {
                    (
                        Admission::Allowed(Permit::Probe),
                        Some(self.claim_probe(now)),
                    )
                } else {
                    let retry_after = remaining(reopen_at, now);
                    (Admission::Rejected { retry_after }, None)
                }
            }
            CircuitState::HalfOpen => {
                let lost_at = self
                    .probe_claimed_at
                    .unwrap_or(now)
                    .saturating_add(millis(config.probe_timeout));
                if now >= lost_at {
                    (
                        Admission::Allowed(Permit::Probe),
                        Some(self.claim_probe(now)),
                    )
                } else {
                    let retry_after = remaining(lost_at, now).min(config.cool_down);
                    (Admission::Rejected { retry_after }, None)
                }
            }
        }
    }

    fn claim_probe(&self, now: i64) -> Self {
        Self {
            state: CircuitState::HalfOpen,
            probe_claimed_at: Some(now),
            version: self.version + 1,
            ..self.clone()
        }
    }

    /// The record after a request made with `permit` succeeded (`None`: nothing to write).
    pub fn on_success(&self, permit: Permit) -> Option<Self> {
        match (self.state, permit) {
            (CircuitState::HalfOpen, Permit::Probe) => Some(Self {
                version: self.version + 1,
                ..Self::default()
            }),
            (CircuitState::Closed, Permit::Normal) if self.failures > 0 => Some(Self {
                version: self.version + 1,
                ..Self::default()
            }),
            // A request admitted before the circuit opened says nothing about now.
            _ => None,
        }
    }

    /// The record after a request made with `permit` failed (`None`: nothing to write).
    pub fn on_failure(&self, permit: Permit, now: i64, config: &CircuitConfig) -> Option<Self> {
        match (self.state, permit) {
            (CircuitState::HalfOpen, Permit::Probe) => Some(self.opened(now)),
            (CircuitState::Closed, Permit::Normal) => {
                let streak_alive = self
                    .first_failure_at
                    .is_some_and(|first| now.saturating_sub(first) <= millis(config.window));
                let (failures, first) = if self.failures > 0 && streak_alive {
                    (self.failures + 1, self.first_failure_at)
                } else {
                    (1, Some(now))
                };
                if failures >= config.failure_threshold {
                    Some(self.opened(now))
                } else {
                    Some(Self {
                        failures,
                        first_failure_at: first,
                        version: self.version + 1,
                        ..self.clone()
                    })
                }
            }
            _ => None,
        }
    }

    fn opened(&self, now: i64) -> Self {
        Self {
            state: CircuitState::Open,
            failures: 0,
            first_failure_at: None,
            opened_at: Some(now),
            probe_claimed_at: None,
            version: self.version + 1,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CircuitError {
    #[error("circuit state store: {0}")]
    Store(#[from] StoreError),
    #[error("the circuit of {connection} changed {attempts} times under us; try later")]
    Contended { connection: String, attempts: u32 },
}

impl CircuitError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Store(_) => "circuit_store",
            Self::Contended { .. } => "circuit_contended",
        }
    }

    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Store(e) => e.is_retryable(),
            Self::Contended { .. } => true,
        }
    }
}

/// Circuit items expire when untouched this long (a closed circuit is the default anyway).
const ITEM_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
const MAX_CAS_ATTEMPTS: u32 = 8;

pub struct CircuitBreaker {
    store: Arc<dyn StateStore>,
    clock: Arc<dyn Clock>,
    config: CircuitConfig,
}

impl CircuitBreaker {
    pub fn new(store: Arc<dyn StateStore>, clock: Arc<dyn Clock>, config: CircuitConfig) -> Self {
        Self {
            store,
            clock,
            config,
        }
    }

    pub fn config(&self) -> &CircuitConfig {
        &self.config
    }

    /// Before calling the API of `connection`. One read when the circuit is closed.
    pub async fn admit(&self, tenant: &str, connection: &str) -> Result<Admission, CircuitError> {
        self.transition(tenant, connection, |record, now| {
            record.admit(now, &self.config)
        })
        .await
    }

    pub async fn record_success(
        &self,
        tenant: &str,
        connection: &str,
        permit: Permit,
    ) -> Result<(), CircuitError> {
        self.transition(tenant, connection, |record, _| {
            ((), record.on_success(permit))
        })
        .await
    }

    pub async fn record_failure(
        &self,
        tenant: &str,
        connection: &str,
        permit: Permit,
    ) -> Result<(), CircuitError> {
        self.transition(tenant, connection, |record, now| {
            ((), record.on_failure(permit, now, &self.config))
        })
        .await
    }

    /// The stored record (closed when absent).
    pub async fn state(
        &self,
        tenant: &str,
        connection: &str,
    ) -> Result<CircuitRecord, CircuitError> {
        Ok(self.read(tenant, connection).await?.0)
    }

    async fn read(
        &self,
        tenant: &str,
        connection: &str,
    ) -> Result<(CircuitRecord, bool), StoreError> {
        let Some(item) = self.store.get(&keys::circuit(tenant, connection)).await? else {
            return Ok((CircuitRecord::default(), false));
        };
        let mut fields = item;
        for name in [PK, SK, EXPIRES_AT] {
            fields.remove(name);
        }
        let record = serde_json::from_value(Value::Object(fields))
            .map_err(|e| StoreError::Corrupt(format!("circuit of {tenant}/{connection}: {e}")))?;
        Ok((record, true))
    }

    /// Read, decide, write conditionally on the version read; re-read on a lost race.
    async fn transition<T>(
        &self,
        tenant: &str,
        connection: &str,
        decide: impl Fn(&CircuitRecord, i64) -> (T, Option<CircuitRecord>),
    ) -> Result<T, CircuitError> {
        let key = keys::circuit(tenant, connection);
        for _ in 0..MAX_CAS_ATTEMPTS {
            let (record, exists) = self.read(tenant, connection).await?;
            let now = self.clock.now();
            let (outcome, next) = decide(&record, now.timestamp_millis());
            let Some(next) = next else {
                return Ok(outcome);
            };
            let condition = if exists {
                Condition::eq("version", record.version)
            } else {
                Condition::item_absent()
            };
            match self
                .store
                .put(to_item(&key, &next, now), Some(condition))
                .await
            {
                Ok(()) => {
                    if next.state != record.state {
                        tracing::info!(
                            tenant,
                            connection,
                            from = record.state.as_str(),
                            to = next.state.as_str(),
                            "circuit state changed"
                        );
                    }
                    return Ok(outcome);
                }
                Err(StoreError::ConditionFailed) => continue,
                Err(other) => return Err(other.into()),
            }
        }
        Err(CircuitError::Contended {
            connection: connection.to_owned(),
            attempts: MAX_CAS_ATTEMPTS,
        })
    }
}

fn to_item(key: &hub_core::ports::Key, record: &CircuitRecord, now: DateTime<Utc>) -> Item {
    let mut item = match serde_json::to_value(record) {
        Ok(Value::Object(map)) => map,
        // A struct of numbers and strings always serialises to an object.
        _ => Item::new(),
    };
    item.insert(PK.into(), Value::String(key.pk.clone()));
    item.insert(SK.into(), Value::String(key.sk.clone()));
    let expires = now.timestamp() + i64::try_from(ITEM_TTL.as_secs()).unwrap_or(i64::MAX / 2);
    item.insert(EXPIRES_AT.into(), Value::from(expires));
    item
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: CircuitConfig = CircuitConfig {
        failure_threshold: 3,
        window: Duration::from_secs(60),
        cool_down: Duration::from_secs(30),
        probe_timeout: Duration::from_secs(90),
    };

    fn fail(record: &CircuitRecord, at: i64) -> CircuitRecord {
        record.on_failure(Permit::Normal, at, &CONFIG).unwrap()
    }

    #[test]
    fn opens_after_n_consecutive_failures_within_the_window() {
        let r = CircuitRecord::default();
        let r = fail(&r, 0);
        let r = fail(&r, 10_000);
        assert_eq!((r.state, r.failures), (CircuitState::Closed, 2));
        let r = fail(&r, 20_000);
        assert_eq!(r.state, CircuitState::Open);
        assert_eq!(r.opened_at, Some(20_000));
    }

    #[test]
    fn a_success_or_an_old_streak_resets_the_count() {
        let r = fail(&fail(&CircuitRecord::default(), 0), 1_000);
        let r = r.on_success(Permit::Normal).unwrap();
        assert_eq!((r.state, r.failures), (CircuitState::Closed, 0));
        assert_eq!(
            r.on_success(Permit::Normal),
            None,
            "no write when nothing changes"
        );
        let r = fail(&fail(&r, 0), 1_000);
        let r = fail(&r, 70_000);
        assert_eq!((r.state, r.failures), (CircuitState::Closed, 1));
    }

    #[test]
    fn open_rejects_until_the_cool_down_then_admits_one_probe() {
        let open = fail(&fail(&fail(&CircuitRecord::default(), 0), 1), 2);
        let (admission, write) = open.admit(10_002, &CONFIG);
        assert_eq!(
            admission,
            Admission::Rejected {
                retry_after: Duration::from_secs(20)
            }
        );
        assert!(write.is_none());
        let (admission, write) = open.admit(30_002, &CONFIG);
        assert_eq!(admission, Admission::Allowed(Permit::Probe));
        let half = write.unwrap();
        assert_eq!(half.state, CircuitState::HalfOpen);
        assert!(matches!(
            half.admit(30_003, &CONFIG).0,
            Admission::Rejected { .. }
        ));
        // A probe that never reports is given up after the probe timeout.
        assert_eq!(
            half.admit(30_002 + 90_000, &CONFIG).0,
            Admission::Allowed(Permit::Probe)
        );
    }

    #[test]
    fn the_probe_decides() {
        let open = fail(&fail(&fail(&CircuitRecord::default(), 0), 1), 2);
        let half = open.admit(40_000, &CONFIG).1.unwrap();
        let closed = half.on_success(Permit::Probe).unwrap();
        assert_eq!(closed.state, CircuitState::Closed);
        let reopened = half.on_failure(Permit::Probe, 41_000, &CONFIG).unwrap();
        assert_eq!(reopened.state, CircuitState::Open);
        assert_eq!(reopened.opened_at, Some(41_000));
        // Late reports of requests admitted before the circuit opened change nothing.
        assert_eq!(half.on_success(Permit::Normal), None);
        assert_eq!(open.on_failure(Permit::Normal, 3, &CONFIG), None);
    }
}
