use hub_core::ports::{QueueError, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum DlqError {
    #[error("unknown queue `{0}`: name fetch, transform or write (or their -dlq)")]
    UnknownQueue(String),
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    #[error("no message `{0}` in the dead-letter queues looked at")]
    MessageNotFound(String),
    #[error(
        "a purge without a filter would empty the whole queue: add a filter, or say so \
         explicitly (`--all`)"
    )]
    PurgeNeedsFilter,
    #[error("queue {queue}: {source}")]
    Queue { queue: String, source: QueueError },
    #[error("cannot read the failure notes: {0}")]
    Store(#[from] StoreError),
}

impl DlqError {
    /// Stable snake_case code for scripts and logs.
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnknownQueue(_) => "unknown_queue",
            Self::InvalidRequest(_) => "invalid_request",
            Self::MessageNotFound(_) => "message_not_found",
            Self::PurgeNeedsFilter => "purge_needs_filter",
            Self::Queue { source, .. } if source.is_retryable() => "queue_unavailable",
            Self::Queue { .. } => "queue_request_failed",
            Self::Store(error) if error.is_retryable() => "state_store_unavailable",
            Self::Store(_) => "state_store_request_failed",
        }
    }

    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Queue { source, .. } => source.is_retryable(),
            Self::Store(error) => error.is_retryable(),
            Self::UnknownQueue(_)
            | Self::InvalidRequest(_)
            | Self::MessageNotFound(_)
            | Self::PurgeNeedsFilter => false,
        }
    }

    pub(crate) fn queue(queue: &str) -> impl FnOnce(QueueError) -> Self + '_ {
        move |source| Self::Queue {
            queue: queue.to_owned(),
            source,
        }
    }
}
