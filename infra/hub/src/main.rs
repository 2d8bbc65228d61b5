use clap::Parser;
use hub_host::cli::{Cli, run};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    hub_runtime::telemetry::init_with_default_filter(
        hub_runtime::telemetry::LogFormat::from_env(),
        cli.default_log_filter(),
    );
    match run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error[{}]: {error}", error.code());
            std::process::ExitCode::FAILURE
        }
    }
}
