//! The contract suite on the AWS backend, against moto.
//!
//! One moto server serves every case of this test binary (it starts in about half a second, but
//! once per case would add up); each `fresh` call gets a region of its own (moto keeps every
//! resource per region, secrets included) and a random name prefix, so cases never see each
//! other's resources. Time is real: `advance` sleeps.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use hub_aws::AwsSettings;
use hub_core::ports::{IdGenerator, Ports, SystemClock, Topology, UlidGenerator};
use hub_testkit::Harness;
use hub_testkit::moto::MotoServer;

struct AwsHarness {
    /// `None` when moto is not installed and nobody required it (not CI, no
    /// HUB_REQUIRE_EMULATOR): every case then says it was skipped.
    endpoint: Option<String>,
}

async fn harness() -> AwsHarness {
    AwsHarness {
        endpoint: MotoServer::shared_or_skip("contract_aws").map(|s| s.endpoint().to_owned()),
    }
}

/// Lowercase, unique per call, valid in a resource name prefix.
fn unique() -> String {
    UlidGenerator::new(SystemClock).new_id().to_lowercase()[12..].to_owned()
}

/// A region no other `fresh` call of this test binary (and so of its moto server) uses. Digits
/// only: moto routes a request by matching `<service>.<region>.amazonaws.com` against URL
/// patterns, and its S3 pattern takes any host containing `s3`.
fn unique_region() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!("hub-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

#[async_trait]
impl Harness for AwsHarness {
    async fn fresh(&self, topology: &Topology) -> Ports {
        let mut topology = topology.clone();
        topology.prefix = format!("c{}", unique());
        let endpoint = self
            .endpoint
            .as_deref()
            .expect("cases are skipped without moto");
        let settings = AwsSettings::emulator(endpoint).region(unique_region());
        hub_aws::bootstrap(&settings, &topology)
            .await
            .unwrap_or_else(|e| panic!("bootstrap on moto: {e}"));
        hub_aws::connect(&settings, &topology, Arc::new(SystemClock))
            .await
            .unwrap_or_else(|e| panic!("connect to moto: {e}"))
    }

    async fn advance(&self, by: Duration) {
        tokio::time::sleep(by).await;
    }

    /// moto 5.2.5 applies an UpdateItem ADD and a transaction as a read and a write without a
    /// lock: 8 racing ADDs ended at 11 instead of 13 on a busy machine (issue 13, as in
    /// c71ef00). DynamoDB isolates them; the races run on the embedded backend.
    fn isolates_concurrent_writes(&self) -> bool {
        false
    }

    fn unavailable(&self) -> Option<String> {
        self.endpoint.is_none().then(|| {
            "moto not installed (infra/test installs it; set HUB_MOTO_SERVER to use another)".into()
        })
    }
}

hub_testkit::contract_tests!(harness);
