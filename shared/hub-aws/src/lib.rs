//! The AWS backend of the hub ports: `StateStore` on DynamoDB, `Queue` on SQS, `EventBus` on
//! EventBridge and `SecretStore` on Secrets Manager.
//!
//! ```no_run
//! # async fn run() -> Result<(), hub_aws::AwsError> {
//! use std::sync::Arc;
//! use hub_core::ports::{SystemClock, Topology};
//!
//! let settings = hub_aws::AwsSettings::emulator("http://127.0.0.1:5000");
//! let topology = Topology::new("hub");
//! hub_aws::bootstrap(&settings, &topology).await?;
//! let ports = hub_aws::connect(&settings, &topology, Arc::new(SystemClock)).await?;
//! # Ok(()) }
//! ```
//!
//! The SDK clients are built once per [`connect`] and shared by every adapter; each adapter
//! holds a client and the name or URL of its resource.
//!
//! Known differences from the embedded backend, all of them DynamoDB's own behaviour:
//! - the `gsi1` index is eventually consistent on AWS (moto updates it synchronously);
//! - DynamoDB trims trailing zeros of numbers, so on AWS `2.0` reads back as the integer `2`;
//! - `ADD` on an attribute holding a fraction adds to it instead of failing.
//!
//! Against an emulator (an endpoint override is set) rule targets rebuild the EventBridge
//! envelope with an input transformer, because moto omits `account` from the envelope it
//! delivers; see [`EventBridgeBus::rebuilding_envelopes`].

mod bootstrap;
mod convert;
mod dynamo;
mod errors;
mod events;
mod expr;
mod secrets;
mod settings;
mod sqs;

use std::collections::BTreeMap;
use std::sync::Arc;

use aws_config::SdkConfig;
use hub_core::ports::{Clock, Ports, Queue, Topology, UlidGenerator};

pub use bootstrap::bootstrap;
pub use dynamo::{DynamoStore, GSI1};
pub use events::EventBridgeBus;
pub use secrets::SecretsManagerStore;
pub use settings::{
    AwsSettings, DEFAULT_PREFIX, EMULATOR_REGION, ENV_EVENT_BUS, ENV_PREFIX, ENV_QUEUE_URL_PREFIX,
    ENV_RECORDS_TABLE, ENV_STATE_TABLE, prefix_from_env, queue_url_env_var, topology_from_env,
};
pub use sqs::SqsQueue;

/// The `backend` name in [`Ports`].
pub const BACKEND: &str = "aws";

#[derive(Debug, thiserror::Error)]
pub enum AwsError {
    #[error("invalid AWS settings: {0}")]
    Settings(String),
    #[error("{action} failed: {message}")]
    Call { action: String, message: String },
    #[error(
        "queue `{name}` (logical `{logical}`) does not exist: run the bootstrap or set {env_var}"
    )]
    QueueNotFound {
        logical: String,
        name: String,
        env_var: String,
    },
}

/// One client per service, built from one SDK configuration.
#[derive(Clone, Debug)]
pub(crate) struct Clients {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub events: aws_sdk_eventbridge::Client,
    pub secrets: aws_sdk_secretsmanager::Client,
}

impl Clients {
    pub fn new(config: &SdkConfig) -> Self {
        Self {
            dynamodb: aws_sdk_dynamodb::Client::new(config),
            sqs: aws_sdk_sqs::Client::new(config),
            events: aws_sdk_eventbridge::Client::new(config),
            secrets: aws_sdk_secretsmanager::Client::new(config),
        }
    }
}

/// `UlidGenerator` needs an owned `Clock`; this lends it the shared one.
struct SharedClock(Arc<dyn Clock>);

impl Clock for SharedClock {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.0.now()
    }
}

/// The AWS adapters for every port of the topology. Calls the network only to look up the URLs
/// of queues the settings do not name.
pub async fn connect(
    settings: &AwsSettings,
    topology: &Topology,
    clock: Arc<dyn Clock>,
) -> Result<Ports, AwsError> {
    let config = settings.sdk_config().await?;
    let clients = Clients::new(&config);
    let queue_urls = queue_urls(&clients.sqs, settings, topology).await?;
    let queues = queue_urls
        .iter()
        .map(|(logical, url)| {
            let queue: Arc<dyn Queue> = Arc::new(SqsQueue::new(
                clients.sqs.clone(),
                logical.clone(),
                url.clone(),
            ));
            (logical.clone(), queue)
        })
        .collect();
    Ok(Ports {
        backend: BACKEND,
        state: Arc::new(DynamoStore::new(
            clients.dynamodb.clone(),
            settings.state_table_name(topology),
            clock.clone(),
        )),
        records: Arc::new(DynamoStore::new(
            clients.dynamodb.clone(),
            settings.records_table_name(topology),
            clock.clone(),
        )),
        queues,
        bus: Arc::new(
            EventBridgeBus::new(
                clients.events.clone(),
                clients.sqs.clone(),
                settings.event_bus_name(topology),
                queue_urls,
                clock.clone(),
            )
            .rebuilding_envelopes(config.endpoint_url().is_some()),
        ),
        secrets: Arc::new(SecretsManagerStore::new(clients.secrets.clone())),
        storage: Arc::new(hub_core::ports::NoStorageFaults),
        ids: Arc::new(UlidGenerator::new(SharedClock(clock.clone()))),
        clock,
    })
}

async fn queue_urls(
    sqs: &aws_sdk_sqs::Client,
    settings: &AwsSettings,
    topology: &Topology,
) -> Result<BTreeMap<String, String>, AwsError> {
    let mut urls = BTreeMap::new();
    for spec in &topology.queues {
        let logical = &spec.logical_name;
        if let Some(url) = settings.configured_queue_url(logical) {
            urls.insert(logical.clone(), url.to_owned());
            continue;
        }
        let name = topology.queue_name(logical);
        let found = sqs.get_queue_url().queue_name(&name).send().await;
        match found {
            Ok(output) => {
                let url = output.queue_url.ok_or_else(|| AwsError::Call {
                    action: format!("looking up queue `{name}`"),
                    message: "no URL in the answer".into(),
                })?;
                urls.insert(logical.clone(), url);
            }
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_queue_does_not_exist()) =>
            {
                return Err(AwsError::QueueNotFound {
                    logical: logical.clone(),
                    name,
                    env_var: queue_url_env_var(logical),
                });
            }
            Err(error) => {
                return Err(AwsError::Call {
                    action: format!("looking up queue `{name}`"),
                    message: errors::error_chain(&error),
                });
            }
        }
    }
    Ok(urls)
}
