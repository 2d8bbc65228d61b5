//! Choosing and opening the backend the host (or a CLI command) runs on.

use std::path::PathBuf;
use std::sync::Arc;

use hub_core::ports::{Clock, Ports, SystemClock, Topology};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendKind {
    /// AWS when an endpoint is given (`--aws-endpoint` or `AWS_ENDPOINT_URL`), else embedded.
    Auto,
    /// SQLite files under `--data-dir`.
    Embedded,
    /// DynamoDB, SQS, EventBridge and Secrets Manager: an emulator at `--aws-endpoint`, or the
    /// account of the standard AWS environment (credentials, region) without one.
    Aws,
}

/// The backend options every `hub` command takes.
#[derive(Debug, Clone, clap::Args)]
pub struct BackendOptions {
    /// Which backend to use.
    #[arg(long, global = true, env = "HUB_BACKEND", value_enum, default_value_t = BackendKind::Auto)]
    pub backend: BackendKind,
    /// Directory of the embedded backend's data (created if missing).
    #[arg(long, global = true, env = "HUB_DATA_DIR", default_value = ".hub")]
    pub data_dir: PathBuf,
    /// Endpoint of an AWS emulator (e.g. moto server); selects the AWS backend.
    #[arg(long, global = true, env = "AWS_ENDPOINT_URL")]
    pub aws_endpoint: Option<String>,
    /// Prefix of every table, queue and bus name (`<prefix>-state`, `<prefix>-fetch`, ...).
    #[arg(long, global = true, env = "HUB_PREFIX", default_value = "hub")]
    pub prefix: String,
}

impl BackendOptions {
    pub fn embedded(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            backend: BackendKind::Embedded,
            data_dir: data_dir.into(),
            aws_endpoint: None,
            prefix: "hub".into(),
        }
    }

    pub fn resolved_kind_name(&self) -> &'static str {
        match self.resolved_kind() {
            BackendKind::Aws => "aws",
            BackendKind::Embedded | BackendKind::Auto => "embedded",
        }
    }

    /// Whether `hub dev` starts on data it has never seen: the embedded backend's data
    /// directory does not exist yet or is empty. Never on AWS: its tables and queues may hold
    /// another deployment's data, and nothing local tells a first start from a later one.
    pub fn is_new_data_dir(&self) -> bool {
        match self.resolved_kind() {
            BackendKind::Aws => false,
            BackendKind::Embedded | BackendKind::Auto => match std::fs::read_dir(&self.data_dir) {
                Ok(mut entries) => entries.next().is_none(),
                Err(error) => error.kind() == std::io::ErrorKind::NotFound,
            },
        }
    }

    pub fn resolved_kind(&self) -> BackendKind {
        match self.backend {
            BackendKind::Auto if self.aws_endpoint.is_some() => BackendKind::Aws,
            BackendKind::Auto => BackendKind::Embedded,
            kind => kind,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error(
        "the data directory {dir} is read-only and this command writes to it (commands that \
         only read, such as `hub executions list`, `hub get` and `hub dlq list`, work on it): \
         {source}"
    )]
    ReadOnly {
        dir: PathBuf,
        source: hub_embedded::EmbeddedError,
    },
    #[error("cannot open the embedded backend in {dir}: {source}")]
    Embedded {
        dir: PathBuf,
        source: hub_embedded::EmbeddedError,
    },
    #[error("start-up failed: {0}")]
    Startup(String),
    #[error("cannot set up the AWS backend: {0}")]
    Aws(#[from] hub_aws::AwsError),
}

impl BackendError {
    /// Stable code for scripts.
    pub fn code(&self) -> &'static str {
        match self {
            Self::ReadOnly { .. } => "data_dir_read_only",
            Self::Embedded { .. } | Self::Startup(_) | Self::Aws(_) => "backend_unavailable",
        }
    }
}

/// Whether a command writes to the backend or only reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    ReadWrite,
    /// A data directory this process cannot write is opened read-only instead of refused.
    ReadOnly,
}

/// Opens the backend, creating what is missing: the embedded store's files, or (AWS) the
/// tables, queues, DLQs, bus and rules of the topology.
pub async fn open_backend(
    options: &BackendOptions,
    topology: &Topology,
) -> Result<Ports, BackendError> {
    open_backend_for(options, topology, Access::ReadWrite).await
}

/// [`open_backend`] for a command that reads or writes as `access` says.
pub async fn open_backend_for(
    options: &BackendOptions,
    topology: &Topology,
    access: Access,
) -> Result<Ports, BackendError> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    match options.resolved_kind() {
        BackendKind::Aws => {
            // An emulator gets dummy credentials; real AWS uses the standard environment.
            let settings = match &options.aws_endpoint {
                Some(endpoint) => hub_aws::AwsSettings::emulator(endpoint),
                None => hub_aws::AwsSettings::from_env(),
            };
            hub_aws::bootstrap(&settings, topology).await?;
            Ok(hub_aws::connect(&settings, topology, clock).await?)
        }
        BackendKind::Embedded | BackendKind::Auto => {
            let dir = options.data_dir.clone();
            let topology = topology.clone();
            tokio::task::spawn_blocking(move || {
                let opened = match access {
                    Access::ReadWrite => {
                        hub_embedded::EmbeddedBackend::open(&dir, &topology, clock)
                    }
                    Access::ReadOnly => {
                        hub_embedded::EmbeddedBackend::open_for_reading(&dir, &topology, clock)
                    }
                };
                opened.map_err(|source| {
                    if source.is_read_only() {
                        BackendError::ReadOnly { dir, source }
                    } else {
                        BackendError::Embedded { dir, source }
                    }
                })
            })
            .await
            .map_err(|e| BackendError::Startup(e.to_string()))?
        }
    }
}
