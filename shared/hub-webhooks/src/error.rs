//! The one error type of webhook verification and record extraction.

use std::borrow::Cow;

use crate::config::Provider;

/// Why a delivery was refused. Messages name headers, sizes and reasons, never a secret, a
/// signature value or the body; [`WebhookError::code`] is stable for API bodies and metrics and
/// [`WebhookError::status`] is the HTTP status the receiver answers with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    /// The signature (or a value the signature covers, such as its timestamp) is absent.
    #[error("missing signature: the request has no `{header}`")]
    MissingSignature { header: Cow<'static, str> },

    /// Well-formed, but no signature matches any active secret of the route.
    #[error("bad signature: no signature in `{header}` matches an active secret of this route")]
    BadSignature { header: Cow<'static, str> },

    /// Authentic but signed too long ago (a replay) or too far in the future.
    #[error(
        "timestamp outside the replay window: signed {skew_seconds} s from now, \
         the route accepts {tolerance_seconds} s either way"
    )]
    TimestampOutsideWindow {
        /// `signed_at - now`: negative for the past.
        skew_seconds: i64,
        tolerance_seconds: u64,
    },

    /// A signature or timestamp header that does not have the provider's syntax.
    #[error("malformed signature header `{header}`: {reason}")]
    MalformedSignature {
        header: Cow<'static, str>,
        reason: &'static str,
    },

    /// A header other than the signature that the delivery needs and that is unusable
    /// (repeated, too long, not text).
    #[error("malformed header `{header}`: {reason}")]
    MalformedHeader {
        header: String,
        reason: &'static str,
    },

    #[error("unsupported content type `{content_type}` for {provider} webhooks")]
    UnsupportedContentType {
        /// As sent, cut to 100 characters.
        content_type: String,
        provider: Provider,
    },

    /// The signature was valid but the body is not what the provider sends (not JSON, no event
    /// id, no object where one belongs). The reason never quotes the body.
    #[error("malformed body after a valid signature: {reason}")]
    MalformedBody { reason: String },

    /// The route cannot verify anything: a secret that was not resolved or does not decode,
    /// a scheme option the request needs that is absent.
    #[error("unusable webhook route configuration: {reason}")]
    UnknownSchemeConfig { reason: String },

    /// Over the route's `maxBodyBytes`, or over [`crate::MAX_BODY_BYTES_LIMIT`], which no
    /// route exceeds. `size` is `None` when the adapter stopped reading at the limit.
    #[error("the body{} is over the limit of {limit} bytes", size_text(.size))]
    BodyTooLarge { size: Option<u64>, limit: u64 },

    #[error("the source address is not in this route's allow-list")]
    SourceIpNotAllowed,

    #[error("method {method} is not accepted by {provider} webhooks")]
    MethodNotAllowed { method: String, provider: Provider },

    /// A subscription handshake with the wrong mode or verify token (Meta answers 403).
    #[error("subscription handshake refused: {reason}")]
    HandshakeRejected { reason: &'static str },
}

fn size_text(size: &Option<u64>) -> String {
    size.map(|size| format!(" of {size} bytes"))
        .unwrap_or_default()
}

impl WebhookError {
    /// Stable snake_case code for API error bodies and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            Self::MissingSignature { .. } => "missing_signature",
            Self::BadSignature { .. } => "bad_signature",
            Self::TimestampOutsideWindow { .. } => "timestamp_outside_window",
            Self::MalformedSignature { .. } => "malformed_signature",
            Self::MalformedHeader { .. } => "malformed_header",
            Self::UnsupportedContentType { .. } => "unsupported_content_type",
            Self::MalformedBody { .. } => "malformed_body",
            Self::UnknownSchemeConfig { .. } => "unknown_scheme_config",
            Self::BodyTooLarge { .. } => "body_too_large",
            Self::SourceIpNotAllowed => "source_ip_not_allowed",
            Self::MethodNotAllowed { .. } => "method_not_allowed",
            Self::HandshakeRejected { .. } => "handshake_rejected",
        }
    }

    /// The HTTP status to answer with. Authentication failures are 401 whatever their cause,
    /// so a forger learns only "not accepted"; a route that cannot verify is reported as not
    /// found (404) to the caller while its code tells the operator why.
    pub fn status(&self) -> u16 {
        match self {
            Self::MissingSignature { .. }
            | Self::BadSignature { .. }
            | Self::TimestampOutsideWindow { .. } => 401,
            Self::MalformedSignature { .. }
            | Self::MalformedHeader { .. }
            | Self::MalformedBody { .. } => 400,
            Self::SourceIpNotAllowed | Self::HandshakeRejected { .. } => 403,
            Self::UnknownSchemeConfig { .. } => 404,
            Self::MethodNotAllowed { .. } => 405,
            Self::BodyTooLarge { .. } => 413,
            Self::UnsupportedContentType { .. } => 415,
        }
    }

    pub(crate) fn malformed_body(reason: impl Into<String>) -> Self {
        Self::MalformedBody {
            reason: reason.into(),
        }
    }

    pub(crate) fn config(reason: impl Into<String>) -> Self {
        Self::UnknownSchemeConfig {
            reason: reason.into(),
        }
    }
}
