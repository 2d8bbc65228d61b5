//! The `hub` command line.

use std::time::Duration;

use clap::{Parser, Subcommand};
use hub_core::ports::Topology;

use crate::backend::{BackendOptions, open_backend};
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

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run every function in one process: HTTP server on 127.0.0.1, a worker per queue and the
    /// scheduler tick. Ctrl-C stops it cleanly.
    Dev(DevArgs),
}

#[derive(Debug, clap::Args)]
pub struct DevArgs {
    /// Port of the HTTP server on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 8787)]
    pub port: u16,
    /// Seconds between scheduler ticks (AWS ticks every 60).
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub tick: u64,
    #[command(flatten)]
    pub backend: BackendOptions,
}

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Backend(#[from] crate::backend::BackendError),
    #[error(transparent)]
    Host(#[from] crate::host::HostError),
}

impl CliError {
    /// Stable code for scripts, printed with the message.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Backend(_) => "backend_unavailable",
            Self::Host(crate::host::HostError::Bind { .. }) => "port_unavailable",
            Self::Host(_) => "host_failed",
        }
    }
}

pub async fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Dev(args) => dev(args).await,
    }
}

async fn dev(args: DevArgs) -> Result<(), CliError> {
    let topology = Topology::new(args.backend.prefix.clone());
    let ports = open_backend(&args.backend, &topology).await?;
    let options = HostOptions {
        port: args.port,
        tick: Duration::from_secs(args.tick),
        ..HostOptions::default()
    };
    let host = crate::functions::register_all(Host::new(ports, options));
    let running = host.start().await?;
    println!(
        "hub dev listening on http://{} (backend: {})",
        running.address,
        args.backend.resolved_kind_name()
    );
    running.run_until(shutdown_signal()).await?;
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
