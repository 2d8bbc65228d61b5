use clap::Parser;
use hub_host::cli::{Cli, run};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    hub_runtime::telemetry::init(hub_runtime::telemetry::LogFormat::from_env());
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error[{}]: {error}", error.code());
            std::process::ExitCode::FAILURE
        }
    }
}
