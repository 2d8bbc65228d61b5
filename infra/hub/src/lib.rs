//! The local host: every function of the hub in one process, on the embedded backend or on the
//! AWS adapters (emulator or real AWS). It does what AWS does around the functions: polls the
//! queues and hands batches to the registered handlers with Lambda's partial-batch semantics,
//! fires the scheduler tick, and serves the HTTP routes on 127.0.0.1.

pub mod backend;
pub mod cli;
mod dlq_cmd;
pub mod functions;
pub mod host;
mod http;
mod ops;
pub mod sample;
mod schema_cmd;
pub mod storage;
pub mod webhooks;

pub use backend::{BackendError, BackendOptions, open_backend};
pub use host::{Host, HostError, HostOptions, QueueFunction, RunningHost, TickHandler};
