use hub_core::model::ModelError;
use hub_core::ports::{QueueError, StoreError};

/// Everything the writer can fail with as a whole (a record's own failure is a
/// [`crate::RecordFailure`], not an error). [`WriterError::code`] is stable;
/// [`WriterError::is_retryable`] says whether the same message may succeed when redelivered.
#[derive(Debug, thiserror::Error)]
pub enum WriterError {
    /// The batch breaks a rule of the envelope (no source to count it by, an empty entity
    /// type, ...).
    #[error("invalid write batch: {0}")]
    InvalidBatch(String),

    /// Writes kept being throttled or refused as unavailable until the retry deadline.
    #[error("the records store stayed busy for {seconds} s; the batch will be retried")]
    Deadline { seconds: u64 },

    /// Conditional writes on one item kept losing to concurrent writers.
    #[error("record {record_id} kept changing concurrently; the batch will be retried")]
    Contention { record_id: String },

    /// A stored item that does not decode: written by another version, or damaged.
    #[error("stored item {pk}/{sk} is unreadable: {message}")]
    Corrupt {
        pk: String,
        sk: String,
        message: String,
    },

    #[error("state store: {0}")]
    Store(#[from] StoreError),

    #[error("queue: {0}")]
    Queue(#[from] QueueError),

    #[error(transparent)]
    Sync(#[from] hub_sync::Error),

    /// A document or envelope that could not be encoded.
    #[error("encoding: {0}")]
    Encode(#[source] ModelError),
}

impl WriterError {
    /// Stable snake_case code for logs, metrics and the DLQ tooling.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidBatch(_) => "invalid_batch",
            Self::Deadline { .. } => "write_deadline",
            Self::Contention { .. } => "contention",
            Self::Corrupt { .. } => "corrupt_item",
            Self::Store(_) => "store_error",
            Self::Queue(_) => "queue_error",
            Self::Sync(error) => error.code(),
            Self::Encode(_) => "encode_failed",
        }
    }

    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Deadline { .. } | Self::Contention { .. } => true,
            Self::Store(error) => error.is_retryable(),
            Self::Queue(error) => error.is_retryable(),
            Self::Sync(error) => error.is_retryable(),
            Self::InvalidBatch(_) | Self::Corrupt { .. } | Self::Encode(_) => false,
        }
    }

    pub(crate) fn corrupt(key: &hub_core::ports::Key, message: impl Into<String>) -> Self {
        Self::Corrupt {
            pk: key.pk.clone(),
            sk: key.sk.clone(),
            message: message.into(),
        }
    }
}
