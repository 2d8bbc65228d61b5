//! The sample CRM API that `hub dev` serves on loopback, and the demo tenant that pulls from it
//! (`hub dev --demo`; the documents are `infra/demo/*.json`).

use std::net::SocketAddr;
use std::time::Duration;

use hub_config::{ConfigDocument, ConfigError};
use hub_connectors::sample::ChaosConfig;
use hub_connectors::{SampleConfig, SampleServer};
use hub_core::model::TenantId;
use hub_core::ports::Ports;
use hub_sync::SyncService;

/// The demo documents, compiled in so `hub dev --demo` works from any directory.
const DEMO_DOCUMENTS: [(&str, &str); 5] = [
    (
        "infra/demo/10-definition.json",
        include_str!("../../demo/10-definition.json"),
    ),
    (
        "infra/demo/20-connection.json",
        include_str!("../../demo/20-connection.json"),
    ),
    (
        "infra/demo/30-integration.json",
        include_str!("../../demo/30-integration.json"),
    ),
    (
        "infra/demo/40-schema-contact.json",
        include_str!("../../demo/40-schema-contact.json"),
    ),
    (
        "infra/demo/50-task-contacts.json",
        include_str!("../../demo/50-task-contacts.json"),
    ),
];

pub const DEMO_TENANT: &str = "demo";
pub const DEMO_TASK: &str = "sample-contacts";

#[derive(Debug, Clone, clap::Args)]
pub struct SampleArgs {
    /// Port of the sample CRM API on 127.0.0.1 (0 picks a free one; the URL is printed).
    #[arg(long = "sample-port", default_value_t = 0)]
    pub sample_port: u16,
    /// Contacts the sample API serves (and one company per ten contacts).
    #[arg(long = "sample-records", default_value_t = 1_000)]
    pub sample_records: u64,
    /// The largest page the sample API serves (the `sample` connector asks for 100).
    #[arg(long = "sample-page-size", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub sample_page_size: u32,
    /// Latency added to every data request, in milliseconds.
    #[arg(long = "sample-latency-ms", default_value_t = 0)]
    pub sample_latency_ms: u64,
    /// Share of data requests that fail on purpose (0 to 1): half answer 429 with
    /// `Retry-After: 1`, half 500/502/503.
    #[arg(long = "sample-chaos", default_value_t = 0.0, value_parser = share)]
    pub sample_chaos: f64,
}

fn share(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(value) if (0.0..=1.0).contains(&value) => Ok(value),
        _ => Err(format!("`{text}` is not a share between 0 and 1")),
    }
}

impl SampleArgs {
    pub fn config(&self) -> SampleConfig {
        SampleConfig {
            contacts: self.sample_records,
            companies: (self.sample_records / 10).max(1),
            default_page_size: self.sample_page_size,
            max_page_size: self.sample_page_size,
            latency: Duration::from_millis(self.sample_latency_ms),
            chaos: ChaosConfig {
                rate_limited: self.sample_chaos / 2.0,
                server_errors: self.sample_chaos / 2.0,
                retry_after_seconds: 1,
                ..ChaosConfig::default()
            },
            ..SampleConfig::default()
        }
    }

    /// Serves the sample API on 127.0.0.1.
    pub async fn start(&self) -> std::io::Result<SampleServer> {
        SampleServer::bind(
            SocketAddr::from(([127, 0, 0, 1], self.sample_port)),
            self.config(),
        )
        .await
    }
}

/// The demo documents for a sample API at `base_url` with this key: `${SAMPLE_BASE_URL}` and
/// `${SAMPLE_API_KEY}` filled in.
pub fn demo_documents(
    base_url: &str,
    api_key: &str,
) -> Result<Vec<(String, ConfigDocument)>, ConfigError> {
    let mut documents = Vec::new();
    for (file, text) in DEMO_DOCUMENTS {
        let text = text
            .replace("${SAMPLE_BASE_URL}", base_url)
            .replace("${SAMPLE_API_KEY}", api_key);
        let parsed = hub_config::parse_documents(&text).map_err(|error| ConfigError::Invalid {
            file: file.to_owned(),
            error,
        })?;
        documents.extend(
            parsed
                .into_iter()
                .map(|document| (file.to_owned(), document)),
        );
    }
    Ok(documents)
}

/// What `hub dev --demo` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoReport {
    /// One line per document: `<file>: <kind> <id> <action>`.
    pub applied: Vec<String>,
    /// The run started at once, when the task had never run.
    pub started: Option<String>,
}

/// Applies the demo tenant for this sample API, and starts a run at once when its task has
/// none yet (later runs follow its one-minute interval).
pub async fn apply_demo(ports: &Ports, sample: &SampleServer) -> Result<DemoReport, DemoError> {
    let documents = demo_documents(&sample.base_url(), sample.api().api_key())?;
    let applied = hub_config::apply_all(ports, documents)
        .await?
        .into_iter()
        .map(|(file, outcome)| {
            format!(
                "{file}: {} {} {:?}",
                outcome.kind, outcome.id, outcome.action
            )
        })
        .collect();
    let sync = SyncService::new(ports.clone());
    let tenant = TenantId::parse(DEMO_TENANT).map_err(|message| {
        DemoError::Sync(hub_sync::Error::InvalidState(format!(
            "the demo tenant id is invalid: {message}"
        )))
    })?;
    let previous = sync
        .list_task_executions(&tenant, DEMO_TASK, 1, None)
        .await?;
    let started = if previous.executions.is_empty() {
        Some(
            sync.run_now(&tenant, DEMO_TASK, Some("hub dev --demo"))
                .await?
                .execution
                .id,
        )
    } else {
        None
    };
    Ok(DemoReport { applied, started })
}

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Sync(#[from] hub_sync::Error),
}

impl From<DemoError> for crate::cli::CliError {
    fn from(error: DemoError) -> Self {
        match error {
            DemoError::Config(error) => Self::Config(error),
            DemoError::Sync(error) => Self::Sync(error),
        }
    }
}
