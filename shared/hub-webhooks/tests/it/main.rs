//! hub-webhooks against the providers' published vectors, the vendors' payload fixtures and
//! every refusal the receiver must answer.

mod fixtures;
mod schemes;
mod support;
mod vectors;
