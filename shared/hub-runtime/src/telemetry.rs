//! Tracing set-up: JSON lines on Lambda (CloudWatch parses them), compact text locally.

use tracing_subscriber::EnvFilter;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Text,
}

impl LogFormat {
    /// JSON inside Lambda (detected by `AWS_LAMBDA_FUNCTION_NAME`) or when `HUB_LOG_FORMAT=json`.
    pub fn from_env() -> Self {
        let forced = std::env::var("HUB_LOG_FORMAT").ok();
        match forced.as_deref() {
            Some("json") => Self::Json,
            Some("text") => Self::Text,
            _ if std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some() => Self::Json,
            _ => Self::Text,
        }
    }
}

/// Installs the global subscriber once; later calls are no-ops (tests call it freely).
/// The filter comes from `RUST_LOG`, defaulting to `info`.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _already_set = match format {
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .flatten_event(true)
            .try_init(),
        LogFormat::Text => builder.compact().try_init(),
    };
}
