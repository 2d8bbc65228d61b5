//! The `hub` command line.

use std::io::Write as _;
use std::time::Duration;

use clap::{Parser, Subcommand};
use hub_core::ports::Topology;

use crate::backend::{Access, BackendOptions, open_backend, open_backend_for};
use crate::host::{Host, HostOptions};

#[derive(Debug, Parser)]
#[command(
    name = "hub",
    version,
    about = "Integration hub: local host and operator CLI"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// The log filter when `RUST_LOG` is not set. `hub dev` is a server: its info lines are
    /// its activity. Every other command answers once on stdout (`--json` for scripts, read
    /// with `2>&1 | jq`), so the services' info lines ("sync started") would only get in the
    /// way: warnings and errors still show.
    pub fn default_log_filter(&self) -> &'static str {
        match self.command {
            Command::Dev(_) => "info",
            _ => "warn",
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run every function in one process: HTTP server on 127.0.0.1, a worker per queue and the
    /// scheduler tick. Ctrl-C stops it cleanly.
    Dev(DevArgs),
    /// Validate and store configuration documents (a file, or every *.json of a directory).
    Apply(ApplyArgs),
    /// Print stored configuration: `hub get schema`, `hub get task my-task --tenant acme`.
    Get(GetArgs),
    /// Run, pause or resume sync tasks.
    Tasks(TasksArgs),
    /// Follow, cancel and retry sync executions.
    Executions(ExecutionsArgs),
    /// Try conversion schemas on sample records (no backend needed).
    #[command(subcommand)]
    Schema(crate::schema_cmd::SchemaCommand),
    /// List, show, replay and purge dead-letter queue messages.
    Dlq(crate::dlq_cmd::DlqArgs),
}

#[derive(Debug, clap::Args)]
pub struct TasksArgs {
    #[command(subcommand)]
    pub command: crate::ops::TaskCommand,
    #[command(flatten)]
    pub ops: crate::ops::OpsArgs,
}

#[derive(Debug, clap::Args)]
pub struct ExecutionsArgs {
    #[command(subcommand)]
    pub command: crate::ops::ExecutionCommand,
    #[command(flatten)]
    pub ops: crate::ops::OpsArgs,
}

#[derive(Debug, clap::Args)]
pub struct ApplyArgs {
    /// Files or directories of documents; repeat for several.
    #[arg(short = 'f', long = "file", required = true)]
    pub files: Vec<std::path::PathBuf>,
    /// Validate only (references included, against the backend); store nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// One JSON object per document instead of a line of text.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub backend: BackendOptions,
}

#[derive(Debug, clap::Args)]
pub struct GetArgs {
    /// definition, integration, connection, schema, task or route (plural accepted).
    pub kind: String,
    /// One document by id; without it, all of that kind.
    pub id: Option<String>,
    /// The tenant the documents belong to (`system` for system-scope connections).
    #[arg(long, env = "HUB_TENANT", default_value = "system")]
    pub tenant: String,
    #[command(flatten)]
    pub backend: BackendOptions,
}

#[derive(Debug, clap::Args)]
pub struct DevArgs {
    /// Port of the HTTP server on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 8787)]
    pub port: u16,
    /// Seconds between scheduler ticks (AWS ticks every 60).
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub tick: u64,
    /// Apply the demo tenant `demo` (infra/demo): the sample connector, a contact schema and a
    /// task pulling contacts every minute; its first run starts at once. Done without asking
    /// on a new (missing or empty) embedded data directory; this applies it to any data.
    #[arg(long, conflicts_with = "no_demo")]
    pub demo: bool,
    /// Start idle on a new data directory instead of applying the demo.
    #[arg(long)]
    pub no_demo: bool,
    /// Seconds a received message stays hidden before it is delivered again (default: its
    /// queue's, 180, as on AWS). The messages a killed host had in flight come back after this
    /// long; the functions' leases are shortened to match. Keep it above the time a batch takes.
    #[arg(long = "visibility-timeout", value_parser = clap::value_parser!(u64).range(1..=43_200))]
    pub visibility_timeout: Option<u64>,
    #[command(flatten)]
    pub sample: crate::sample::SampleArgs,
    /// Replay retryable DLQ messages this often (checked on every tick), with the scheduled
    /// defaults of the `HUB_DLQ_REPLAY_*` environment, as the optional schedule does on AWS.
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..))]
    pub dlq_replay_every: Option<u64>,
    #[command(flatten)]
    pub backend: BackendOptions,
}

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Backend(#[from] crate::backend::BackendError),
    #[error(transparent)]
    Host(#[from] crate::host::HostError),
    #[error(transparent)]
    Config(#[from] hub_config::ConfigError),
    #[error(transparent)]
    Sync(#[from] hub_sync::Error),
    #[error(transparent)]
    Schema(#[from] crate::schema_cmd::SchemaCommandError),
    #[error(transparent)]
    Dlq(#[from] hub_dlq::DlqError),
    #[error("unknown kind `{0}`: use definition, integration, connection, schema, task or route")]
    UnknownKind(String),
}

impl CliError {
    /// Stable code for scripts, printed with the message.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Backend(error) => error.code(),
            Self::Host(crate::host::HostError::Bind { .. }) => "port_unavailable",
            Self::Host(_) => "host_failed",
            Self::Config(error) => error.code(),
            Self::UnknownKind(_) => "unknown_kind",
            Self::Sync(error) => error.code(),
            Self::Schema(error) => error.code(),
            Self::Dlq(error) => error.code(),
        }
    }
}

pub async fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Dev(args) => dev(args).await,
        Command::Apply(args) => apply(args).await,
        Command::Get(args) => get(args).await,
        Command::Schema(command) => Ok(crate::schema_cmd::run(command)?),
        Command::Tasks(args) => {
            let sync = sync_service(&args.ops.backend).await?;
            Ok(crate::ops::tasks(&sync, &args.ops, args.command).await?)
        }
        Command::Executions(args) => {
            let sync = sync_service_for(&args.ops.backend, args.command.access()).await?;
            Ok(crate::ops::executions(&sync, &args.ops, args.command).await?)
        }
        Command::Dlq(args) => {
            let topology = Topology::new(args.backend.prefix.clone());
            let ports = open_backend_for(&args.backend, &topology, args.command.access()).await?;
            Ok(crate::dlq_cmd::run(ports, args.command, args.json).await?)
        }
    }
}

/// Why `hub dev` applies the demo, if it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DemoReason {
    /// `--demo`.
    Asked,
    /// A first start on a new data directory shows the hub at work, unless `--no-demo`.
    NewDataDir,
}

impl DevArgs {
    /// Call before opening the backend, which creates the data directory.
    fn demo_reason(&self) -> Option<DemoReason> {
        if self.demo {
            Some(DemoReason::Asked)
        } else if !self.no_demo && self.backend.is_new_data_dir() {
            Some(DemoReason::NewDataDir)
        } else {
            None
        }
    }
}

async fn dev(args: DevArgs) -> Result<(), CliError> {
    let demo = args.demo_reason();
    let topology = Topology::new(args.backend.prefix.clone());
    let ports = open_backend(&args.backend, &topology).await?;
    let options = HostOptions {
        port: args.port,
        tick: Duration::from_secs(args.tick),
        ..HostOptions::default()
    };
    let sample = args
        .sample
        .start()
        .await
        .map_err(|source| crate::host::HostError::Bind {
            port: args.sample.sample_port,
            source,
        })?;
    let mut host = Host::new(ports.clone(), options);
    if let Some(seconds) = args.visibility_timeout {
        host = host.visibility_timeout(Duration::from_secs(seconds));
    }
    let mut host = crate::functions::register_all(host);
    if let Some(seconds) = args.dlq_replay_every {
        host = crate::functions::register_dlq_replayer(host, Duration::from_secs(seconds));
    }
    let running = host.start().await?;
    // One line: scripts read the address from the first line and may stop reading there.
    println!(
        "hub dev listening on http://{} (backend: {}); sample CRM API on {} (API key `{}`, {} \
         contacts)",
        running.address,
        args.backend.resolved_kind_name(),
        sample.base_url(),
        sample.api().api_key(),
        args.sample.sample_records
    );
    if let Some(reason) = demo {
        // Informational: a reader that stopped after the first line must not stop the host.
        if reason == DemoReason::NewDataDir {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(
                out,
                "demo: {} is a new data directory, so the demo tenant `{}` is applied and its \
                 first run starts now (start with --no-demo for an idle host)",
                args.backend.data_dir.display(),
                crate::sample::DEMO_TENANT
            );
            let _ = out.flush();
        }
        let report = crate::sample::apply_demo(&ports, &sample).await?;
        let mut out = std::io::stdout().lock();
        for line in &report.applied {
            let _ = writeln!(out, "demo: {line}");
        }
        if let Some(execution) = &report.started {
            let _ = writeln!(out, "demo: started execution {execution}");
        }
        let tenant = crate::sample::DEMO_TENANT;
        let _ = writeln!(
            out,
            "demo: watch the runs with `hub executions list --tenant {tenant}`"
        );
        // The last line the demo prints (tests wait for it).
        let _ = writeln!(
            out,
            "demo: follow it with `hub executions show {} --follow --tenant {tenant}`",
            report.started.as_deref().unwrap_or("<id>")
        );
        let _ = out.flush();
    }
    running.run_until(shutdown_signal()).await?;
    sample.shutdown(Duration::from_secs(2)).await;
    Ok(())
}

async fn apply(args: ApplyArgs) -> Result<(), CliError> {
    // Everything is read and validated before anything is stored: a bad file stores nothing.
    let mut documents = Vec::new();
    for path in &args.files {
        documents.extend(hub_config::load_path(path)?);
    }
    let topology = Topology::new(args.backend.prefix.clone());
    let ports = open_backend(&args.backend, &topology).await?;
    // What the documents name must be stored or among them (a task's schema and integration).
    hub_config::check_references(&ports, &documents).await?;
    if args.dry_run {
        for (file, document) in &documents {
            println!("{file}: {} {} is valid", document.kind(), document.id());
        }
        return Ok(());
    }
    hub_config::sort_for_apply(&mut documents);
    for (file, document) in &documents {
        let applied = hub_config::apply(&ports, document).await?;
        if args.json {
            println!("{}", serde_json::to_string(&applied).unwrap_or_default());
        } else {
            let version = applied
                .version
                .map(|v| format!(" (version {v})"))
                .unwrap_or_default();
            // A webhook route's path is what the provider is given.
            let path = applied
                .path
                .as_ref()
                .map(|path| format!(" -> POST {path}"))
                .unwrap_or_default();
            println!(
                "{file}: {} {} {:?}{version}{path}",
                applied.kind, applied.id, applied.action
            );
        }
    }
    Ok(())
}

async fn sync_service(backend: &BackendOptions) -> Result<hub_sync::SyncService, CliError> {
    sync_service_for(backend, Access::ReadWrite).await
}

async fn sync_service_for(
    backend: &BackendOptions,
    access: Access,
) -> Result<hub_sync::SyncService, CliError> {
    let topology = Topology::new(backend.prefix.clone());
    Ok(hub_sync::SyncService::new(
        open_backend_for(backend, &topology, access).await?,
    ))
}

async fn get(args: GetArgs) -> Result<(), CliError> {
    let kind = hub_config::DocumentKind::from_cli_name(&args.kind)
        .ok_or_else(|| CliError::UnknownKind(args.kind.clone()))?;
    let topology = Topology::new(args.backend.prefix.clone());
    let ports = open_backend_for(&args.backend, &topology, Access::ReadOnly).await?;
    let output = match &args.id {
        Some(id) => hub_config::get(&ports, kind, &args.tenant, id).await?,
        None => serde_json::Value::Array(hub_config::list(&ports, kind, &args.tenant).await?),
    };
    println!(
        "{}",
        serde_json::to_string_pretty(&output).unwrap_or_default()
    );
    Ok(())
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
