//! hub-writer against real backends: every scenario on the embedded backend, the core ones on
//! the AWS backend against moto (skipped, saying so, when moto is not installed), and the
//! handler fed with the sample SQS events.

mod aws;
mod embedded;
mod lambda;
mod scenarios;
mod support;
