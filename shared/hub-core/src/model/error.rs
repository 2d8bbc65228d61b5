//! The one error type of reading documents and message envelopes.

/// Why a document or a message was rejected. Every variant that concerns a value names its JSON
/// path (`fieldMappings[1].config.transformations[0].config`, `.` for the document itself), and
/// [`ModelError::code`] gives a stable snake_case code for API responses and metrics.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    /// The text is not JSON (syntax error, truncated input, trailing characters).
    #[error("not a JSON document: {message} (line {line}, column {column})")]
    InvalidJson {
        message: String,
        line: usize,
        column: usize,
    },

    /// JSON whose shape the type rejects: a wrong type, a missing or unknown field, an unknown
    /// enum value, or a value a domain type refuses (cron expression, time zone, identifier).
    #[error("{path}: {message}")]
    InvalidDocument {
        path: String,
        message: String,
        /// Where in the text, when the document was read from text.
        line: Option<usize>,
        column: Option<usize>,
    },

    /// A well-formed document that breaks a rule serde cannot express (see `Validate`).
    #[error("{path}: {message}")]
    InvalidValue { path: String, message: String },

    /// A message envelope whose `v` this build cannot read.
    #[error("unsupported {kind} version {found}: this build reads version {supported}")]
    UnsupportedVersion {
        kind: &'static str,
        found: String,
        supported: u32,
    },

    /// A bus event that is not the type the reader expected.
    #[error("expected a `{expected}` event, got `{found}`")]
    UnexpectedEvent { expected: String, found: String },

    /// A credentials secret that does not parse. Deliberately carries no serde message: those
    /// quote the offending value, and here the value may be a secret.
    #[error("{path}: malformed credentials (the value is withheld because it may be secret)")]
    InvalidCredentials { path: String },

    /// A value could not be encoded as JSON (only possible for maps with non-string keys).
    #[error("cannot encode {kind} as JSON: {message}")]
    Encode { kind: &'static str, message: String },
}

impl ModelError {
    /// Stable snake_case code for API error bodies and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidJson { .. } => "invalid_json",
            Self::InvalidDocument { .. } => "invalid_document",
            Self::InvalidValue { .. } => "invalid_value",
            Self::UnsupportedVersion { .. } => "unsupported_version",
            Self::UnexpectedEvent { .. } => "unexpected_event",
            Self::InvalidCredentials { .. } => "invalid_credentials",
            Self::Encode { .. } => "encode_failed",
        }
    }

    /// The same error for a document nested at `prefix` of an enclosing document (a `spec`
    /// inside a config file, say), so the path names the value in the enclosing document.
    pub fn nested_under(self, prefix: &str) -> Self {
        match self {
            Self::InvalidDocument {
                path,
                message,
                line,
                column,
            } => Self::InvalidDocument {
                path: join_paths(prefix, &path),
                message,
                line,
                column,
            },
            Self::InvalidValue { path, message } => Self::InvalidValue {
                path: join_paths(prefix, &path),
                message,
            },
            Self::InvalidCredentials { path } => Self::InvalidCredentials {
                path: join_paths(prefix, &path),
            },
            other @ (Self::InvalidJson { .. }
            | Self::UnsupportedVersion { .. }
            | Self::UnexpectedEvent { .. }
            | Self::Encode { .. }) => other,
        }
    }

    /// The JSON path of the rejected value, when the error concerns one.
    pub fn path(&self) -> Option<&str> {
        match self {
            Self::InvalidDocument { path, .. }
            | Self::InvalidValue { path, .. }
            | Self::InvalidCredentials { path } => Some(path),
            Self::InvalidJson { .. }
            | Self::UnsupportedVersion { .. }
            | Self::UnexpectedEvent { .. }
            | Self::Encode { .. } => None,
        }
    }

    /// From serde_path_to_error's result over serde_json: syntax errors become `InvalidJson`,
    /// everything else `InvalidDocument` at the tracked path.
    pub(crate) fn from_tracked(error: serde_path_to_error::Error<serde_json::Error>) -> Self {
        let outer = error.path().to_string();
        let inner = error.into_inner();
        let (line, column) = (inner.line(), inner.column());
        let message = message_without_position(&inner);
        let (path, message) = match split_nested(&message) {
            Some((nested, rest)) => (join_paths(&outer, nested), rest.to_owned()),
            None => (outer, message),
        };
        match inner.classify() {
            serde_json::error::Category::Syntax
            | serde_json::error::Category::Eof
            | serde_json::error::Category::Io => Self::InvalidJson {
                message,
                line,
                column,
            },
            serde_json::error::Category::Data => Self::InvalidDocument {
                path,
                message,
                line: (line > 0).then_some(line),
                column: (line > 0).then_some(column),
            },
        }
    }
}

/// serde_json appends " at line L column C" to every message; the path already locates the
/// value and the position is kept in its own fields.
fn message_without_position(error: &serde_json::Error) -> String {
    let full = error.to_string();
    if error.line() == 0 {
        return full;
    }
    let suffix = format!(" at line {} column {}", error.line(), error.column());
    match full.strip_suffix(&suffix) {
        Some(message) => message.to_owned(),
        None => full,
    }
}

/// Marks a message whose error happened inside a value that had to be buffered (see
/// `tagged::from_buffered`): "at `<path relative to the reported one>`: <message>". Reads well
/// even where nothing unpacks it.
pub(crate) fn nested_message(path: &str, message: &str) -> String {
    format!("at `{path}`: {message}")
}

/// The relative path and the message of a [`nested_message`].
pub(crate) fn split_nested(message: &str) -> Option<(&str, &str)> {
    let rest = message.strip_prefix("at `")?;
    let end = rest.find("`: ")?;
    Some((&rest[..end], &rest[end + 3..]))
}

/// `a.b` + `c[0]` = `a.b.c[0]`; `a` + `[1].c` = `a[1].c`; `.` is the empty path.
pub(crate) fn join_paths(outer: &str, inner: &str) -> String {
    let outer = if outer == "." { "" } else { outer };
    let inner = if inner == "." { "" } else { inner };
    match (outer.is_empty(), inner.is_empty()) {
        (true, true) => ".".to_owned(),
        (true, false) => inner.to_owned(),
        (false, true) => outer.to_owned(),
        (false, false) if inner.starts_with('[') => format!("{outer}{inner}"),
        (false, false) => format!("{outer}.{inner}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_paths_join_like_serde_path_to_error_prints_them() {
        assert_eq!(join_paths(".", "a"), "a");
        assert_eq!(join_paths("a", "."), "a");
        assert_eq!(join_paths(".", "."), ".");
        assert_eq!(join_paths("a.b", "c[0]"), "a.b.c[0]");
        assert_eq!(join_paths("a", "[1].c"), "a[1].c");
        let message = nested_message("x[0].y", "missing field `z`");
        assert_eq!(
            split_nested(&message),
            Some(("x[0].y", "missing field `z`"))
        );
        assert_eq!(split_nested("missing field `z`"), None);
    }
}
