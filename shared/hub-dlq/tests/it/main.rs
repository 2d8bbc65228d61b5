//! hub-dlq against real backends: every scenario on the embedded backend and on the AWS
//! backend against moto (skipped, saying so, when moto is not installed and not required),
//! plus the embedded-only cases that need a manual clock or an injected failure.

mod aws;
mod embedded;
mod scenarios;
mod support;
