//! hub-webhooks against the providers' published vectors, the vendors' payload fixtures and
//! every refusal the receiver must answer.

mod expansion;
mod fixtures;
mod harness;
mod receiver;
mod schemes;
mod support;
mod vectors;
