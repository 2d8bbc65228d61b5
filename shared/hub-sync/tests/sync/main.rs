//! hub-sync against real backends: every scenario on the embedded backend, the core ones on
//! the AWS backend against moto (skipped, saying so, when moto is not installed).

mod aws;
mod embedded;
mod scenarios;
mod support;
