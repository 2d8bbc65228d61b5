//! The DLQ replayer: lists the messages of the dead-letter queues (`fetch-dlq`, `transform-dlq`,
//! `write-dlq`) with the reason they failed, replays selected ones to their source queue, and
//! purges. Everything goes through the [`Queue`](hub_core::ports::Queue) port (receive, send,
//! delete, change visibility), so it works the same on SQS, on moto (which has no
//! `StartMessageMoveTask`) and on the embedded backend. The `dlq-replayer` function (on demand
//! or on a schedule), `hub dlq list|show|replay|purge` and `hub dev --dlq-replay-every` all call
//! [`Dlq`].
//!
//! # Failure reasons
//!
//! SQS keeps no reason with a message. The batch driver (hub-runtime) writes a
//! [failure note](hub_runtime::notes) into the state table each time a handler fails a message
//! (code, sentence, retryable, receive count, tenant / task / execution ids), keyed by the
//! source queue and the message id; a message keeps its id when SQS moves it to the DLQ (the
//! contract suite pins that on both backends), so the replayer finds the note of each dead
//! message. Notes expire with the DLQ's retention. A message without a note (its note write
//! failed, or it died before notes existed) is listed with no reason and matches no
//! error-code or retryable filter.
//!
//! # Listing means receiving
//!
//! SQS has no way to look at a queue without receiving from it. A listing receives every
//! message it looks at with a visibility timeout (the *hold*, [`DlqConfig::hold`]), and makes
//! each visible again (visibility 0) when it is done. So:
//! - every listing adds 1 to the receive count of every message it looked at (SQS's
//!   `ApproximateReceiveCount` and the port's `receive_count`). A dead message's count already
//!   includes its receives on the source queue (SQS keeps counting after the move), so the
//!   count shown is "source receives + DLQ receives"; the failure note's `receiveCount` is the
//!   source receive count of the last failure. DLQs have no redrive policy, so nothing moves
//!   however high the count gets;
//! - while a listing runs, the messages it holds are in flight: another listing or a replay
//!   running at the same moment does not see them (and a replay never touches them twice);
//! - a listing that dies before it releases its messages leaves them invisible until the
//!   hold expires; nothing is lost.
//!
//! # Replaying twice cannot write twice
//!
//! A replay sends a copy of the dead message (same body, same attributes, with the
//! [`REPLAYS_ATTRIBUTE`] counter raised by one) to the source queue and deletes the dead
//! message only once the send succeeded. A message is never deleted before it was re-sent, so
//! nothing is lost; the failure note of a replayed message is deleted with it.
//! - Within a run the replayer keeps the id of every message it re-sent: if the same message
//!   is delivered to it again (a delete that failed, SQS's at-least-once delivery), it is deleted
//!   again, never re-sent.
//! - A crash (or a failed delete) between the send and the delete leaves the dead message in
//!   the DLQ, so a later replay sends it a second time. That duplicate is harmless by
//!   construction of the pipeline: the writer keys every record by the schema's dedup key and
//!   skips a payload it has (same payload hash; a batch of a run it already counted is not
//!   counted again), and every stage before it is idempotent on redelivery. So the effect of
//!   replaying a message twice, or of replaying it while a duplicate is in flight, is the effect
//!   of replaying it once.
//! - A replayed message is a new message on the source queue (new id, receive count 1), so it
//!   gets its full number of receives again; if it fails for good once more it returns to the
//!   DLQ with its replay counter, and [`Filter::max_replays`] keeps a scheduled replayer from
//!   cycling a poison message forever.
//!
//! # Rate limit
//!
//! Replays are paced at [`ReplayOptions::rate_per_second`] messages per second (evenly spaced,
//! no burst), so a replay of thousands of messages does not flood a downstream API that just
//! recovered. The pace is measured on a [`Pace`]: real time in production, a
//! [`VirtualTime`] in tests.

mod dlq;
mod error;
mod filter;
mod pace;
mod request;
mod scan;

pub use dlq::{
    Dlq, DlqConfig, Listing, MessageOutcome, Outcome, PurgeOptions, PurgeReport, QueueReport,
    ReplayOptions, ReplayReport,
};
pub use error::DlqError;
pub use filter::{DlqMessage, FailureReason, Filter, format_age, parse_age};
pub use pace::{Pace, RateLimiter, RealTime, VirtualTime};
pub use request::{
    DEFAULT_LIMIT, DEFAULT_RATE_PER_SECOND, ENV_LIMIT, ENV_MAX_REPLAYS, ENV_QUEUES, ENV_RATE,
    ENV_RETRYABLE_ONLY, ReplayInput, ReplayRequest, ScheduledDefaults, parse_queue, parse_queues,
};

/// The message attribute counting how many times a message was replayed.
pub const REPLAYS_ATTRIBUTE: &str = "hubReplays";
