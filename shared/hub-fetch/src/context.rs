//! Everything one page needs besides the job: the task, the tenant integration, its connection
//! and credentials, the connector and stream, and the schema the records are for.

use std::sync::Arc;

use hub_connectors::{ConnectorCatalog, ConnectorDefinition};
use hub_core::keys;
use hub_core::model::{
    ConnectionStatus, ConversionSchema, Credentials, IntegrationConnection, IntegrationDefinition,
    SyncTask, TenantId, TenantIntegration, TenantIntegrationStatus,
};
use hub_core::ports::{Item, Key, SecretStore, StateStore};
use hub_core::repo;
use serde_json::Value;

use crate::FetchError;

/// The owner segment of system-scope connections (`keys::connection("system", id)`).
const SYSTEM: &str = "system";

pub(crate) struct RunContext {
    pub integration: TenantIntegration,
    pub connection: Option<IntegrationConnection>,
    pub credentials: Option<Credentials>,
    pub connector: Arc<ConnectorDefinition>,
    pub stream: String,
    pub schema_id: String,
    pub schema_version: u32,
    /// What the circuit breaker keys on: the connection, or the tenant integration when it
    /// has none.
    pub circuit_key: String,
}

/// A problem of the run's configuration: retrying the page cannot help, the run fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RunFailure {
    pub code: &'static str,
    pub message: String,
    /// The connection's credentials are refused or missing: an admin must reconnect.
    pub needs_reauth: bool,
}

impl RunFailure {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            needs_reauth: false,
        }
    }

    pub fn reauth(mut self) -> Self {
        self.needs_reauth = true;
        self
    }
}

pub(crate) enum ContextError {
    /// The run cannot go on (its connection, if known, comes along for the reauth event).
    Run(RunFailure, Option<Box<IntegrationConnection>>),
    /// The stores failed: the message is retried.
    Infra(FetchError),
}

impl From<hub_core::ports::StoreError> for ContextError {
    fn from(error: hub_core::ports::StoreError) -> Self {
        Self::Infra(error.into())
    }
}

impl From<hub_core::ports::SecretError> for ContextError {
    fn from(error: hub_core::ports::SecretError) -> Self {
        Self::Infra(error.into())
    }
}

fn fail(code: &'static str, message: impl Into<String>) -> ContextError {
    ContextError::Run(RunFailure::new(code, message), None)
}

pub(crate) struct Sources<'a> {
    pub state: &'a dyn StateStore,
    pub secrets: &'a dyn SecretStore,
    pub catalog: &'a ConnectorCatalog,
}

impl Sources<'_> {
    pub async fn load(
        &self,
        tenant: &TenantId,
        task: &SyncTask,
        tenant_integration_id: &str,
    ) -> Result<RunContext, ContextError> {
        let integration: TenantIntegration = self
            .document(&keys::tenant_integration(
                tenant.as_str(),
                tenant_integration_id,
            ))
            .await?
            .ok_or_else(|| {
                fail(
                    "tenant_integration_not_found",
                    format!("tenant `{tenant}` has no integration `{tenant_integration_id}`"),
                )
            })?;
        if integration.status == TenantIntegrationStatus::Disabled {
            return Err(fail(
                "integration_disabled",
                format!("integration `{tenant_integration_id}` is disabled"),
            ));
        }
        let connector = self.connector(&integration.integration_id).await?;

        let schema: ConversionSchema = self
            .document(&keys::schema_head(
                tenant.as_str(),
                &task.conversion_schema_id,
            ))
            .await?
            .ok_or_else(|| {
                fail(
                    "schema_not_found",
                    format!(
                        "tenant `{tenant}` has no conversion schema `{}`",
                        task.conversion_schema_id
                    ),
                )
            })?;
        let stream = choose_stream(&connector, task, &schema)?;

        let (connection, credentials) = match &integration.connection_id {
            None => (None, None),
            Some(connection_id) => {
                let connection = self.connection(tenant, connection_id.as_str()).await?;
                let credentials = self.credentials(&connection).await?;
                (Some(connection), Some(credentials))
            }
        };
        let circuit_key = match &connection {
            Some(connection) => connection.id.as_str().to_owned(),
            None => format!("ti-{}", integration.id),
        };
        Ok(RunContext {
            schema_id: schema.id.clone(),
            schema_version: schema.version.unwrap_or(1),
            integration,
            connection,
            credentials,
            connector,
            stream,
            circuit_key,
        })
    }

    /// The connector of an integration: the catalogue entry whose id is the integration's id,
    /// else the one named by the integration definition's machine `name`.
    async fn connector(
        &self,
        integration_id: &str,
    ) -> Result<Arc<ConnectorDefinition>, ContextError> {
        if let Some(connector) = self.catalog.get(integration_id) {
            return Ok(Arc::clone(connector));
        }
        let definition: Option<IntegrationDefinition> =
            self.document(&keys::definition(integration_id)).await?;
        definition
            .and_then(|definition| self.catalog.get(&definition.name).cloned())
            .ok_or_else(|| {
                fail(
                    "connector_not_found",
                    format!(
                        "no connector for integration `{integration_id}` (known: {})",
                        self.catalog.ids().collect::<Vec<_>>().join(", ")
                    ),
                )
            })
    }

    async fn connection(
        &self,
        tenant: &TenantId,
        connection_id: &str,
    ) -> Result<IntegrationConnection, ContextError> {
        let mut found: Option<IntegrationConnection> = self
            .document(&keys::connection(tenant.as_str(), connection_id))
            .await?;
        if found.is_none() {
            found = self
                .document(&keys::connection(SYSTEM, connection_id))
                .await?;
        }
        let connection = found.ok_or_else(|| {
            fail(
                "connection_not_found",
                format!("no connection `{connection_id}` for tenant `{tenant}` or the system"),
            )
        })?;
        match connection.status {
            ConnectionStatus::Active => Ok(connection),
            status => {
                let status = serde_json::to_value(status)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default();
                Err(ContextError::Run(
                    RunFailure::new(
                        "connection_unusable",
                        format!("connection `{connection_id}` is {status}"),
                    )
                    .reauth(),
                    Some(Box::new(connection)),
                ))
            }
        }
    }

    async fn credentials(
        &self,
        connection: &IntegrationConnection,
    ) -> Result<Credentials, ContextError> {
        let name = connection.credentials_ref.as_str();
        let missing = |failure: RunFailure| {
            ContextError::Run(failure.reauth(), Some(Box::new(connection.clone())))
        };
        let Some(secret) = self.secrets.get(name).await? else {
            return Err(missing(RunFailure::new(
                "credentials_missing",
                format!(
                    "the secret `{name}` of connection `{}` does not exist",
                    connection.id
                ),
            )));
        };
        // The error names the JSON path only, never the value.
        Credentials::from_secret(&secret.value).map_err(|error| {
            missing(RunFailure::new(
                "invalid_credentials",
                format!("the secret `{name}` does not hold valid credentials: {error}"),
            ))
        })
    }

    /// A stored document, `None` when absent; an unreadable one fails the run (retrying does
    /// not repair it).
    async fn document<T>(&self, key: &Key) -> Result<Option<T>, ContextError>
    where
        T: serde::de::DeserializeOwned + hub_core::model::Validate,
    {
        let Some(item): Option<Item> = self.state.get(key).await? else {
            return Ok(None);
        };
        repo::read_doc(&item).map(Some).map_err(|error| {
            fail(
                "corrupt_document",
                format!("stored item {}/{} is unreadable: {error}", key.pk, key.sk),
            )
        })
    }
}

/// The stream a task reads: its config's `stream` when set, else the one named after the
/// schema's source entity (exactly, ignoring case, or in the plural: `Contact` -> `contacts`).
fn choose_stream(
    connector: &ConnectorDefinition,
    task: &SyncTask,
    schema: &ConversionSchema,
) -> Result<String, ContextError> {
    if let Some(configured) = task.config.get("stream") {
        let Value::String(name) = configured else {
            return Err(fail(
                "invalid_task",
                format!("task `{}`: config.stream must be a stream name", task.id),
            ));
        };
        return match connector.stream(&name) {
            Some(_) => Ok(name),
            None => Err(unknown_stream(connector, &name)),
        };
    }
    let entity = schema.source.entity.to_lowercase();
    let plural = format!("{entity}s");
    connector
        .streams
        .iter()
        .map(|s| s.name.as_str())
        .find(|name| {
            let name = name.to_lowercase();
            name == entity || name == plural
        })
        .map(str::to_owned)
        .ok_or_else(|| unknown_stream(connector, &schema.source.entity))
}

fn unknown_stream(connector: &ConnectorDefinition, name: &str) -> ContextError {
    fail(
        "unknown_stream",
        format!(
            "connector `{}` has no stream `{name}` (streams: {})",
            connector.id,
            connector
                .streams
                .iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    )
}
