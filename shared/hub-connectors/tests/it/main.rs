//! Tests of the connector runtime against real HTTP servers on loopback: the sample CRM API
//! and small axum servers that misbehave on purpose.

mod catalog;
mod circuit;
mod egress;
mod errors;
mod github;
mod incremental;
mod pagination;
mod sample_api;
mod support;
