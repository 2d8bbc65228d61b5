mod contract_aws;
mod contract_embedded;
mod host;
mod lambda_sqs;
mod template;
