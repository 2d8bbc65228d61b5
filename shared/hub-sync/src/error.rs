use hub_core::model::ModelError;
use hub_core::ports::{BusError, QueueError, StoreError};
use hub_core::schedule::ScheduleError;

/// Everything the sync service can fail with. [`Error::code`] is stable; [`Error::is_retryable`]
/// says whether the same call may succeed later unchanged.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("tenant `{tenant}` has no sync task `{task_id}`")]
    TaskNotFound { tenant: String, task_id: String },

    #[error("tenant `{tenant}` has no execution `{execution_id}`")]
    ExecutionNotFound {
        tenant: String,
        execution_id: String,
    },

    /// The operation does not apply in the current state (resume a task that is not paused,
    /// cancel a finished execution, retry a successful one).
    #[error("{0}")]
    InvalidState(String),

    #[error("sync task `{task_id}` is already running execution `{execution_id}`")]
    TaskBusy {
        task_id: String,
        execution_id: String,
    },

    /// A task document that breaks a rule; the message starts with the JSON path.
    #[error("invalid sync task: {0}")]
    InvalidTask(#[source] ModelError),

    #[error("the schedule of sync task `{task_id}` has no next run: {source}")]
    Schedule {
        task_id: String,
        #[source]
        source: ScheduleError,
    },

    /// A stored item that does not decode: written by another version, or damaged.
    #[error("stored item {pk}/{sk} is unreadable: {message}")]
    Corrupt {
        pk: String,
        sk: String,
        message: String,
    },

    /// Conditional writes kept losing to concurrent writers.
    #[error("{0} kept changing concurrently; retry")]
    Contention(String),

    #[error("state store: {0}")]
    Store(#[from] StoreError),

    #[error("queue: {0}")]
    Queue(#[from] QueueError),

    #[error("event bus: {0}")]
    Bus(#[from] BusError),

    #[error("the event bus refused the event: {code}: {message}")]
    EventRejected { code: String, message: String },

    /// A document or envelope that could not be encoded.
    #[error("encoding: {0}")]
    Encode(#[source] ModelError),
}

impl Error {
    /// Stable snake_case code for API bodies, CLI output and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            Self::TaskNotFound { .. } => "task_not_found",
            Self::ExecutionNotFound { .. } => "execution_not_found",
            Self::InvalidState(_) => "invalid_state",
            Self::TaskBusy { .. } => "task_busy",
            Self::InvalidTask(_) => "invalid_task",
            Self::Schedule { .. } => "invalid_schedule",
            Self::Corrupt { .. } => "corrupt_item",
            Self::Contention(_) => "contention",
            Self::Store(_) => "store_error",
            Self::Queue(_) => "queue_error",
            Self::Bus(_) | Self::EventRejected { .. } => "bus_error",
            Self::Encode(_) => "encode_failed",
        }
    }

    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Store(error) => error.is_retryable(),
            Self::Queue(error) => error.is_retryable(),
            Self::Bus(error) => error.is_retryable(),
            Self::Contention(_) | Self::EventRejected { .. } => true,
            Self::TaskNotFound { .. }
            | Self::ExecutionNotFound { .. }
            | Self::InvalidState(_)
            | Self::TaskBusy { .. }
            | Self::InvalidTask(_)
            | Self::Schedule { .. }
            | Self::Corrupt { .. }
            | Self::Encode(_) => false,
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
