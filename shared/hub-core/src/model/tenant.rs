//! What a tenant has enabled: integrations with their settings, tasks and schemas, and the
//! tenant's AI provider configuration.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::connection::owned_by;
use super::integration::{check_url, unique};
use super::{
    ConnectionId, ConversionSchema, JsonPath, ModelError, SecretRef, SyncTask, TenantId, Validate,
};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TenantIntegration {
    pub id: String,
    pub tenant_id: TenantId,
    pub integration_id: String,

    pub status: TenantIntegrationStatus,
    pub enabled_at: DateTime<Utc>,
    pub enabled_by: String,

    /// The connection whose credentials this integration uses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_id: Option<ConnectionId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_connected_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_error: Option<String>,

    /// Integration-specific settings.
    #[serde(default)]
    pub settings: Map<String, Value>,

    /// Embedded as the specification shows them; the state table stores tasks and schemas as
    /// items of their own, so these lists are often empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sync_tasks: Vec<SyncTask>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conversion_schemas: Vec<ConversionSchema>,

    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Validate for TenantIntegration {
    fn validate_at(&self, at: &JsonPath) -> Result<(), ModelError> {
        at.key("id").non_empty(&self.id)?;
        at.key("integrationId").non_empty(&self.integration_id)?;
        if self.status == TenantIntegrationStatus::Connected && self.connection_id.is_none() {
            return Err(at
                .key("connectionId")
                .invalid("required when status is `connected`"));
        }

        let schemas_at = at.key("conversionSchemas");
        self.conversion_schemas.validate_at(&schemas_at)?;
        unique(
            self.conversion_schemas.iter().map(|s| s.id.as_str()),
            &schemas_at,
            "id",
        )?;
        for (index, schema) in self.conversion_schemas.iter().enumerate() {
            check_owner(
                &schema.tenant_integration_id,
                &self.id,
                &schemas_at.index(index),
            )?;
        }

        let tasks_at = at.key("syncTasks");
        self.sync_tasks.validate_at(&tasks_at)?;
        unique(
            self.sync_tasks.iter().map(|t| t.id.as_str()),
            &tasks_at,
            "id",
        )?;
        for (index, task) in self.sync_tasks.iter().enumerate() {
            let task_at = tasks_at.index(index);
            check_owner(&task.tenant_integration_id, &self.id, &task_at)?;
            let schema_known = self
                .conversion_schemas
                .iter()
                .any(|s| s.id == task.conversion_schema_id);
            if !self.conversion_schemas.is_empty() && !schema_known {
                return Err(task_at.key("conversionSchemaId").invalid(format!(
                    "no conversion schema `{}` in this integration",
                    task.conversion_schema_id
                )));
            }
        }
        Ok(())
    }
}

fn check_owner(owner: &Option<String>, id: &str, at: &JsonPath) -> Result<(), ModelError> {
    match owner {
        Some(owner) if owner != id => Err(at
            .key("tenantIntegrationId")
            .invalid(format!("belongs to `{owner}`, not to `{id}`"))),
        _ => Ok(()),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TenantIntegrationStatus {
    Pending,
    Connected,
    Error,
    Disabled,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TenantAIConfig {
    pub tenant_id: TenantId,
    pub default_models: DefaultModels,
    /// The tenant's own provider keys (BYOK).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub custom_credentials: Vec<AiProviderCredentials>,
    pub use_system_credentials: bool,
}

impl Validate for TenantAIConfig {
    fn validate_at(&self, at: &JsonPath) -> Result<(), ModelError> {
        let list_at = at.key("customCredentials");
        unique(
            self.custom_credentials.iter().map(|c| c.provider.as_str()),
            &list_at,
            "provider",
        )?;
        for (index, credentials) in self.custom_credentials.iter().enumerate() {
            let item_at = list_at.index(index);
            item_at.key("provider").non_empty(&credentials.provider)?;
            if !owned_by(&credentials.credentials_ref, Some(&self.tenant_id)) {
                return Err(item_at.key("credentialsRef").invalid(format!(
                    "must be a secret of tenant `{}` (`hub/{}/<name>`)",
                    self.tenant_id, self.tenant_id
                )));
            }
            if let Some(endpoint) = &credentials.endpoint {
                check_url(&item_at.key("endpoint"), endpoint)?;
            }
        }
        if !self.use_system_credentials && self.custom_credentials.is_empty() {
            return Err(at.key("useSystemCredentials").invalid(
                "without system credentials the tenant needs at least one customCredentials entry",
            ));
        }
        Ok(())
    }
}

/// Ids of `c_aimodel` records, by kind of model.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DefaultModels {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub llm: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embedding: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_generation: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text_to_speech: Option<String>,
}

/// A tenant's key for one AI provider. Differs from the specification on purpose: the key is in
/// the secret store under `credentialsRef`, not an `encryptedApiKey` in the document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AiProviderCredentials {
    /// `openai`, `anthropic`, ...
    pub provider: String,
    pub credentials_ref: SecretRef,
    /// For Azure OpenAI and other self-hosted endpoints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
}
