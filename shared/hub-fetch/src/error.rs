use hub_connectors::circuit::CircuitError;
use hub_core::model::ModelError;
use hub_core::ports::{BusError, QueueError, SecretError, StoreError};
use hub_runtime::HandlerError;
use hub_writer::WriterError;

/// Why a fetch job's message failed (it is redelivered, or reaches the DLQ when
/// [`FetchError::is_retryable`] is false). A failure of the *run* (bad configuration, a refused
/// API call) is not one of these: it ends the execution `failed` and the message succeeds.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("not a SyncJob: {0}")]
    InvalidJob(#[source] ModelError),

    /// Another delivery of the same page holds its claim; this one comes back after its
    /// visibility timeout and finds the page done.
    #[error("page {page} of execution {execution_id} is being fetched by another delivery")]
    InProgress { execution_id: String, page: u32 },

    /// The page failed on every attempt: the run has ended `failed` and the message goes to the
    /// DLQ after its receives.
    #[error("page {page} of execution {execution_id} gave up after {attempts} attempts")]
    GaveUp {
        execution_id: String,
        page: u32,
        attempts: u32,
    },

    #[error("{failed} of {parts} record batches of page {page} were not sent: {reason}")]
    Send {
        page: u32,
        parts: usize,
        failed: usize,
        reason: String,
        retryable: bool,
    },

    /// A stored item that does not decode.
    #[error("stored item {pk}/{sk} is unreadable: {message}")]
    Corrupt {
        pk: String,
        sk: String,
        message: String,
    },

    #[error(transparent)]
    Sync(#[from] hub_sync::Error),

    #[error(transparent)]
    Writer(#[from] WriterError),

    #[error("circuit breaker: {0}")]
    Circuit(#[from] CircuitError),

    #[error("state store: {0}")]
    Store(#[from] StoreError),

    #[error("queue: {0}")]
    Queue(#[from] QueueError),

    #[error("event bus: {0}")]
    Bus(#[from] BusError),

    #[error("secret store: {0}")]
    Secret(#[from] SecretError),

    #[error("encoding: {0}")]
    Encode(#[source] ModelError),
}

impl FetchError {
    /// Stable snake_case code for logs, metrics and the DLQ tooling.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidJob(_) => hub_core::messages::INVALID_MESSAGE_BODY,
            Self::InProgress { .. } => "page_in_progress",
            Self::GaveUp { .. } => "retries_exhausted",
            Self::Send { .. } => "send_failed",
            Self::Corrupt { .. } => "corrupt_item",
            Self::Sync(error) => error.code(),
            Self::Writer(error) => error.code(),
            Self::Circuit(error) => error.code(),
            Self::Store(_) => "store_error",
            Self::Queue(_) => "queue_error",
            Self::Bus(_) => "bus_error",
            Self::Secret(_) => "secret_store_error",
            Self::Encode(_) => "encode_failed",
        }
    }

    /// Whether a redelivery of the same message may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::InProgress { .. } => true,
            Self::Send { retryable, .. } => *retryable,
            Self::Sync(error) => error.is_retryable(),
            Self::Writer(error) => error.is_retryable(),
            Self::Circuit(error) => error.is_retryable(),
            Self::Store(error) => error.is_retryable(),
            Self::Queue(error) => error.is_retryable(),
            Self::Bus(error) => error.is_retryable(),
            Self::Secret(error) => error.is_retryable(),
            Self::InvalidJob(_) | Self::GaveUp { .. } | Self::Corrupt { .. } | Self::Encode(_) => {
                false
            }
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

impl From<FetchError> for HandlerError {
    fn from(error: FetchError) -> Self {
        HandlerError {
            code: error.code().to_owned(),
            message: error.to_string(),
            retryable: error.is_retryable(),
        }
    }
}
