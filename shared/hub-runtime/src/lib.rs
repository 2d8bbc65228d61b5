//! What every function binary and the local host share, so one code path serves both:
//! tracing set-up, the SQS batch driver with partial batch failures (and the failure notes it
//! leaves for the DLQ tooling), and (feature `lambda`)
//! the adaptation of that driver to the Lambda runtime.

pub mod batch;
#[cfg(feature = "lambda")]
pub mod lambda;
pub mod notes;
pub mod telemetry;

pub use batch::{
    BatchOutcome, HandlerError, ItemFailure, JsonHandler, MessageHandler, QueueMessage,
    process_batch, process_batch_noting,
};
pub use notes::{DeadLetterSink, EnvelopeIds, FailureNote, FailureNotes};
