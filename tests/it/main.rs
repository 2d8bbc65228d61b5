mod contract_aws;
mod contract_embedded;
mod fetch;
mod host;
mod lambda_sqs;
mod template;
mod webhooks;
