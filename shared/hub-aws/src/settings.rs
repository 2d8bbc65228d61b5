//! Where the AWS backend connects and which resources it uses.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::Credentials;
use hub_core::ports::Topology;
use secrecy::{ExposeSecret, SecretString};

use crate::AwsError;

/// Environment variables a deployed function reads (set by `template.yaml`).
pub const ENV_STATE_TABLE: &str = "HUB_STATE_TABLE";
pub const ENV_RECORDS_TABLE: &str = "HUB_RECORDS_TABLE";
pub const ENV_EVENT_BUS: &str = "HUB_EVENT_BUS";
pub const ENV_PREFIX: &str = "HUB_PREFIX";
pub const ENV_QUEUE_URL_PREFIX: &str = "HUB_QUEUE_URL_";
pub const DEFAULT_PREFIX: &str = "hub";
/// The region used against an emulator when none is configured (emulators accept any).
pub const EMULATOR_REGION: &str = "us-east-1";

/// A connect timeout well under a Lambda timeout, and an attempt timeout above SQS's 20 s
/// long poll.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);
const OPERATION_TIMEOUT: Duration = Duration::from_secs(90);

/// How to reach AWS (or an emulator) and which physical resources to use.
///
/// Everything is optional: unset values come from the standard AWS sources through aws-config
/// (`AWS_ENDPOINT_URL`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`, profiles, the Lambda role), and
/// resource names default to the topology's `<prefix>-<logical>` names.
#[derive(Clone, Default)]
pub struct AwsSettings {
    endpoint_url: Option<String>,
    region: Option<String>,
    credentials: Option<(String, SecretString)>,
    state_table: Option<String>,
    records_table: Option<String>,
    event_bus: Option<String>,
    /// Queue URLs by logical name.
    queue_urls: BTreeMap<String, String>,
    /// `HUB_QUEUE_URL_<LOGICAL>` values by their `<LOGICAL>` suffix.
    env_queue_urls: BTreeMap<String, String>,
}

impl std::fmt::Debug for AwsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsSettings")
            .field("endpoint_url", &self.endpoint_url)
            .field("region", &self.region)
            .field(
                "credentials",
                &self.credentials.as_ref().map(|(id, _)| (id, "[redacted]")),
            )
            .field("state_table", &self.state_table)
            .field("records_table", &self.records_table)
            .field("event_bus", &self.event_bus)
            .field("queue_urls", &self.queue_urls)
            .field("env_queue_urls", &self.env_queue_urls)
            .finish()
    }
}

impl AwsSettings {
    /// Settings for a deployed function: resource names from `HUB_STATE_TABLE`,
    /// `HUB_RECORDS_TABLE`, `HUB_EVENT_BUS` and `HUB_QUEUE_URL_<LOGICAL>`; queues without a URL
    /// are looked up by name at connect time. Endpoint, region and credentials are left to
    /// aws-config.
    pub fn from_env() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let env_queue_urls = std::env::vars()
            .filter_map(|(name, value)| {
                let suffix = name.strip_prefix(ENV_QUEUE_URL_PREFIX)?;
                (!value.is_empty()).then(|| (suffix.to_owned(), value))
            })
            .collect();
        Self {
            state_table: var(ENV_STATE_TABLE),
            records_table: var(ENV_RECORDS_TABLE),
            event_bus: var(ENV_EVENT_BUS),
            env_queue_urls,
            ..Self::default()
        }
    }

    /// Settings for an emulator such as moto: the endpoint, a fixed region and dummy static
    /// credentials on the SDK config (the process environment is left alone).
    pub fn emulator(endpoint_url: impl Into<String>) -> Self {
        Self::default()
            .endpoint_url(endpoint_url)
            .region(EMULATOR_REGION)
            .static_credentials("test", SecretString::from("test"))
    }

    pub fn endpoint_url(mut self, url: impl Into<String>) -> Self {
        self.endpoint_url = Some(url.into());
        self
    }

    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    pub fn static_credentials(
        mut self,
        access_key_id: impl Into<String>,
        secret_access_key: SecretString,
    ) -> Self {
        self.credentials = Some((access_key_id.into(), secret_access_key));
        self
    }

    pub fn state_table(mut self, name: impl Into<String>) -> Self {
        self.state_table = Some(name.into());
        self
    }

    pub fn records_table(mut self, name: impl Into<String>) -> Self {
        self.records_table = Some(name.into());
        self
    }

    pub fn event_bus(mut self, name: impl Into<String>) -> Self {
        self.event_bus = Some(name.into());
        self
    }

    pub fn queue_url(mut self, logical_name: impl Into<String>, url: impl Into<String>) -> Self {
        self.queue_urls.insert(logical_name.into(), url.into());
        self
    }

    pub fn configured_endpoint_url(&self) -> Option<&str> {
        self.endpoint_url.as_deref()
    }

    pub fn state_table_name(&self, topology: &Topology) -> String {
        self.state_table
            .clone()
            .unwrap_or_else(|| topology.state_table())
    }

    pub fn records_table_name(&self, topology: &Topology) -> String {
        self.records_table
            .clone()
            .unwrap_or_else(|| topology.records_table())
    }

    pub fn event_bus_name(&self, topology: &Topology) -> String {
        self.event_bus
            .clone()
            .unwrap_or_else(|| topology.bus_name())
    }

    /// The configured URL of a queue: set explicitly, or by `HUB_QUEUE_URL_<LOGICAL>`.
    pub fn configured_queue_url(&self, logical_name: &str) -> Option<&str> {
        self.queue_urls
            .get(logical_name)
            .or_else(|| self.env_queue_urls.get(&queue_env_suffix(logical_name)))
            .map(String::as_str)
    }

    /// The shared SDK configuration every client is built from.
    pub async fn sdk_config(&self) -> Result<SdkConfig, AwsError> {
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .operation_attempt_timeout(ATTEMPT_TIMEOUT)
            .operation_timeout(OPERATION_TIMEOUT)
            .build();
        let mut loader = aws_config::defaults(BehaviorVersion::latest()).timeout_config(timeouts);
        if let Some(url) = &self.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        if let Some(region) = &self.region {
            loader = loader.region(Region::new(region.clone()));
        }
        if let Some((id, secret)) = &self.credentials {
            let credentials =
                Credentials::new(id, secret.expose_secret(), None, None, "hub-settings");
            loader = loader.credentials_provider(credentials);
        }
        let config = loader.load().await;
        if config.region().is_some() {
            return Ok(config);
        }
        if config.endpoint_url().is_some() {
            // Emulators ignore the region but the SDK refuses to sign without one.
            return Ok(config
                .into_builder()
                .region(Region::new(EMULATOR_REGION))
                .build());
        }
        Err(AwsError::Settings(
            "no AWS region is configured: set AWS_REGION or pass a region".into(),
        ))
    }
}

/// `HUB_QUEUE_URL_<LOGICAL>`: the logical name uppercased with `-` as `_`.
pub fn queue_url_env_var(logical_name: &str) -> String {
    format!("{ENV_QUEUE_URL_PREFIX}{}", queue_env_suffix(logical_name))
}

fn queue_env_suffix(logical_name: &str) -> String {
    logical_name.to_ascii_uppercase().replace('-', "_")
}

/// The prefix of the deployment's physical names: `HUB_PREFIX`, or `hub`.
pub fn prefix_from_env() -> String {
    std::env::var(ENV_PREFIX)
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| DEFAULT_PREFIX.to_owned())
}

/// The default topology under the prefix from `HUB_PREFIX`.
pub fn topology_from_env() -> Topology {
    Topology::new(prefix_from_env())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_env_vars_follow_the_logical_name() {
        assert_eq!(queue_url_env_var("fetch-dlq"), "HUB_QUEUE_URL_FETCH_DLQ");
        assert_eq!(queue_url_env_var("write"), "HUB_QUEUE_URL_WRITE");
    }

    #[test]
    fn explicit_names_override_the_topology() {
        let topology = Topology::new("t1");
        let settings = AwsSettings::default()
            .state_table("custom")
            .queue_url("fetch", "http://q/fetch");
        assert_eq!(settings.state_table_name(&topology), "custom");
        assert_eq!(settings.records_table_name(&topology), "t1-records");
        assert_eq!(settings.event_bus_name(&topology), "t1-bus");
        assert_eq!(
            settings.configured_queue_url("fetch"),
            Some("http://q/fetch")
        );
        assert_eq!(settings.configured_queue_url("write"), None);
    }

    #[test]
    fn env_queue_urls_are_found_by_logical_name() {
        let mut settings = AwsSettings::default();
        settings
            .env_queue_urls
            .insert("FETCH_DLQ".into(), "http://q/dlq".into());
        assert_eq!(
            settings.configured_queue_url("fetch-dlq"),
            Some("http://q/dlq")
        );
    }

    #[test]
    fn debug_output_hides_the_secret_key() {
        let settings = AwsSettings::emulator("http://127.0.0.1:1")
            .static_credentials("AKIDEXAMPLE", SecretString::from("hunter2-secret"));
        let shown = format!("{settings:?}");
        assert!(shown.contains("AKIDEXAMPLE"), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
    }
}
