//! The contract suite on the embedded backend: a new data directory per case, a manual clock.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use hub_core::ports::{ManualClock, Ports, Topology};
use hub_embedded::EmbeddedBackend;
use hub_testkit::Harness;
use tempfile::TempDir;

struct EmbeddedHarness {
    clock: Arc<ManualClock>,
    /// Kept until the case ends, then removed.
    dirs: Mutex<Vec<TempDir>>,
}

async fn harness() -> EmbeddedHarness {
    EmbeddedHarness {
        clock: Arc::new(ManualClock::new(chrono::Utc::now())),
        dirs: Mutex::new(Vec::new()),
    }
}

impl EmbeddedHarness {
    async fn open(&self, dir: &Path, topology: &Topology) -> Ports {
        let (dir, topology, clock) = (dir.to_owned(), topology.clone(), Arc::clone(&self.clock));
        tokio::task::spawn_blocking(move || EmbeddedBackend::open(&dir, &topology, clock))
            .await
            .expect("the open task")
            .unwrap_or_else(|e| panic!("open the embedded backend: {e}"))
    }
}

#[async_trait]
impl Harness for EmbeddedHarness {
    async fn fresh(&self, topology: &Topology) -> Ports {
        let dir = tempfile::tempdir().expect("a temporary data directory");
        let ports = self.open(dir.path(), topology).await;
        self.dirs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(dir);
        ports
    }

    async fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }

    fn supports_crash(&self) -> bool {
        true
    }

    async fn open_dir(&self, dir: &Path, topology: &Topology) -> Option<Ports> {
        Some(self.open(dir, topology).await)
    }
}

hub_testkit::contract_tests!(harness);
