mod aws;
mod lambda;
mod scenarios;
mod support;
