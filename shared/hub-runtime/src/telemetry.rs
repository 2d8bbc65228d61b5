//! Tracing set-up: JSON lines on Lambda (CloudWatch parses them), compact text locally.

use std::ffi::OsString;
use std::io::IsTerminal;

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
    init_with_default_filter(format, "info");
}

/// [`init`] with another filter for when `RUST_LOG` is not set (`warn` for one-shot commands,
/// whose output is their answer).
pub fn init_with_default_filter(format: LogFormat, default_filter: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour_wanted(
            std::io::stderr().is_terminal(),
            std::env::var_os("NO_COLOR"),
        ));
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

/// Colour codes only for a person at a terminal: in a file, a pipe or CloudWatch they are
/// noise that breaks `grep` and `jq`. `NO_COLOR` (any non-empty value, see no-color.org)
/// turns them off on a terminal too.
fn colour_wanted(stderr_is_terminal: bool, no_color: Option<OsString>) -> bool {
    stderr_is_terminal && no_color.is_none_or(|value| value.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(colour_wanted(true, None));
        assert!(colour_wanted(true, Some(OsString::new())));
        assert!(!colour_wanted(true, Some(OsString::from("1"))));
        assert!(!colour_wanted(false, None));
    }
}
