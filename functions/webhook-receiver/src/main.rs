//! The webhook receiver function: API Gateway HTTP API (payload 2.0) -> route, verification,
//! dedup ledger -> `webhook.received` on the bus. The logic is hub-webhooks' (`Receiver`, and
//! `apigw::handle_http_event` for the event), shared with the local host.

use std::sync::Arc;

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use hub_aws::{AwsSettings, connect, topology_from_env};
use hub_core::ports::{Clock, SystemClock};
use hub_runtime::telemetry::{LogFormat, init};
use hub_webhooks::apigw::handle_http_event;
use hub_webhooks::{Receiver, ReceiverOptions};
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    init(LogFormat::from_env());
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let ports = connect(&AwsSettings::from_env(), &topology_from_env(), clock).await?;
    // Rate limits are counted in the state table (the default): concurrent execution
    // environments share them.
    let receiver = Arc::new(Receiver::new(&ports, ReceiverOptions::from_env()));
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<ApiGatewayV2httpRequest>| {
            let receiver = Arc::clone(&receiver);
            async move { Ok::<_, Error>(handle_http_event(&receiver, event.payload).await) }
        },
    ))
    .await
}
