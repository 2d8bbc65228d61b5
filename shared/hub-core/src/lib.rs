//! The integration hub's domain: types on the wire (camelCase, as the seed specification writes
//! them), the ports every function is written against, the message envelopes between functions,
//! and schedule computation. Nothing here knows about AWS or HTTP servers.

pub mod json;
pub mod keys;
pub mod messages;
pub mod model;
pub mod ports;
pub mod repo;
pub mod schedule;

pub use ports::{Clock, EventBus, IdGenerator, Queue, SecretStore, StateStore};
