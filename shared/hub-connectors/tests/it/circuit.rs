//! The circuit breaker on the embedded backend with a manual clock: open after N failures,
//! one probe after the cool-down (claimed by a conditional write), close or re-open.

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use hub_connectors::{Admission, CircuitBreaker, CircuitConfig, CircuitState, Permit};
use hub_core::ports::{Clock, ManualClock, Ports, StateStore, Topology};

const CONFIG: CircuitConfig = CircuitConfig {
    failure_threshold: 3,
    window: Duration::from_secs(60),
    cool_down: Duration::from_secs(30),
    probe_timeout: Duration::from_secs(120),
};

async fn backend(clock: &Arc<ManualClock>) -> (tempfile::TempDir, Ports) {
    let dir = tempfile::tempdir().unwrap();
    let (path, clock) = (dir.path().to_owned(), Arc::clone(clock));
    let ports = tokio::task::spawn_blocking(move || {
        hub_embedded::EmbeddedBackend::open(&path, &Topology::new("t"), clock as Arc<dyn Clock>)
    })
    .await
    .unwrap()
    .unwrap();
    (dir, ports)
}

fn breaker(store: &Arc<dyn StateStore>, clock: &Arc<ManualClock>) -> CircuitBreaker {
    CircuitBreaker::new(
        Arc::clone(store),
        Arc::clone(clock) as Arc<dyn Clock>,
        CONFIG,
    )
}

#[tokio::test]
async fn open_half_open_closed() {
    let clock = Arc::new(ManualClock::new(
        Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0).unwrap(),
    ));
    let (_dir, ports) = backend(&clock).await;
    let cb = breaker(&ports.state, &clock);
    let (tenant, conn) = ("acme", "conn-1");

    for _ in 0..2 {
        assert_eq!(
            cb.admit(tenant, conn).await.unwrap(),
            Admission::Allowed(Permit::Normal)
        );
        cb.record_failure(tenant, conn, Permit::Normal)
            .await
            .unwrap();
        clock.advance(Duration::from_secs(5));
    }
    assert_eq!(
        cb.state(tenant, conn).await.unwrap().state,
        CircuitState::Closed
    );
    cb.record_failure(tenant, conn, Permit::Normal)
        .await
        .unwrap();
    let record = cb.state(tenant, conn).await.unwrap();
    assert_eq!(record.state, CircuitState::Open);

    // Open: callers are told when to come back; the key is the one hub-core defines.
    clock.advance(Duration::from_secs(10));
    assert_eq!(
        cb.admit(tenant, conn).await.unwrap(),
        Admission::Rejected {
            retry_after: Duration::from_secs(20)
        }
    );
    let item = ports
        .state
        .get(&hub_core::keys::circuit(tenant, conn))
        .await
        .unwrap()
        .expect("the circuit is stored");
    assert_eq!(item["state"], "open");

    // Cool-down over: exactly one of two concurrent callers becomes the probe.
    clock.advance(Duration::from_secs(20));
    let other = breaker(&ports.state, &clock);
    let (a, b) = tokio::join!(cb.admit(tenant, conn), other.admit(tenant, conn));
    let admissions = [a.unwrap(), b.unwrap()];
    let probes = admissions
        .iter()
        .filter(|a| **a == Admission::Allowed(Permit::Probe))
        .count();
    assert_eq!(probes, 1, "{admissions:?}");
    assert!(
        admissions
            .iter()
            .any(|a| matches!(a, Admission::Rejected { .. }))
    );
    assert_eq!(
        cb.state(tenant, conn).await.unwrap().state,
        CircuitState::HalfOpen
    );

    // The probe fails: open again, for a whole new cool-down.
    cb.record_failure(tenant, conn, Permit::Probe)
        .await
        .unwrap();
    assert_eq!(
        cb.state(tenant, conn).await.unwrap().state,
        CircuitState::Open
    );
    clock.advance(Duration::from_secs(29));
    assert!(matches!(
        cb.admit(tenant, conn).await.unwrap(),
        Admission::Rejected { .. }
    ));

    // The next probe succeeds: closed, and normal traffic flows.
    clock.advance(Duration::from_secs(1));
    assert_eq!(
        cb.admit(tenant, conn).await.unwrap(),
        Admission::Allowed(Permit::Probe)
    );
    cb.record_success(tenant, conn, Permit::Probe)
        .await
        .unwrap();
    let record = cb.state(tenant, conn).await.unwrap();
    assert_eq!((record.state, record.failures), (CircuitState::Closed, 0));
    assert_eq!(
        cb.admit(tenant, conn).await.unwrap(),
        Admission::Allowed(Permit::Normal)
    );

    // Other connections were never affected.
    assert_eq!(
        cb.admit(tenant, "conn-2").await.unwrap(),
        Admission::Allowed(Permit::Normal)
    );
    assert_eq!(
        cb.state("other", conn).await.unwrap().state,
        CircuitState::Closed
    );
}

#[tokio::test]
async fn failures_spread_wider_than_the_window_do_not_open_it() {
    let clock = Arc::new(ManualClock::new(
        Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0).unwrap(),
    ));
    let (_dir, ports) = backend(&clock).await;
    let cb = breaker(&ports.state, &clock);
    for _ in 0..6 {
        cb.record_failure("t", "c", Permit::Normal).await.unwrap();
        clock.advance(Duration::from_secs(40));
    }
    let record = cb.state("t", "c").await.unwrap();
    assert_eq!(record.state, CircuitState::Closed);
    // A success resets the streak.
    cb.record_failure("t", "c", Permit::Normal).await.unwrap();
    cb.record_success("t", "c", Permit::Normal).await.unwrap();
    cb.record_failure("t", "c", Permit::Normal).await.unwrap();
    cb.record_failure("t", "c", Permit::Normal).await.unwrap();
    assert_eq!(
        cb.state("t", "c").await.unwrap().state,
        CircuitState::Closed
    );
}

#[tokio::test]
async fn a_lost_probe_is_replaced_after_the_probe_timeout() {
    let clock = Arc::new(ManualClock::new(
        Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0).unwrap(),
    ));
    let (_dir, ports) = backend(&clock).await;
    let cb = breaker(&ports.state, &clock);
    for _ in 0..3 {
        cb.record_failure("t", "c", Permit::Normal).await.unwrap();
    }
    clock.advance(Duration::from_secs(30));
    assert_eq!(
        cb.admit("t", "c").await.unwrap(),
        Admission::Allowed(Permit::Probe)
    );
    // The prober crashed and never reported.
    clock.advance(Duration::from_secs(60));
    assert!(matches!(
        cb.admit("t", "c").await.unwrap(),
        Admission::Rejected { .. }
    ));
    clock.advance(Duration::from_secs(60));
    assert_eq!(
        cb.admit("t", "c").await.unwrap(),
        Admission::Allowed(Permit::Probe)
    );
}
