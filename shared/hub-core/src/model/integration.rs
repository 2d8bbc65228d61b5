//! Integration definitions: what a connector is, who may see it, how it authenticates and which
//! entities it can sync.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use super::{JsonPath, ModelError, SecretRef, Validate};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IntegrationCategory {
    Crm,
    Communication,
    DataSource,
    Storage,
    AiProvider,
    Custom,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IntegrationCapability {
    Read,
    Write,
    Delete,
    Search,
    /// Real-time sync via webhooks.
    Realtime,
    Bulk,
    Attachments,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncDirection {
    Pull,
    Push,
    Bidirectional,
}

/// Who sees and configures an integration: every tenant admin, or super admins only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    Public,
    SuperadminOnly,
}

/// Where an integration's connections live: one shared system connection, one per tenant, or
/// both (a system default that tenants may replace with their own).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionScope {
    System,
    Tenant,
    Both,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AuthType {
    #[serde(rename = "oauth2")]
    OAuth2,
    #[serde(rename = "api_key")]
    ApiKey,
    #[serde(rename = "basic")]
    Basic,
    #[serde(rename = "custom")]
    Custom,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IntegrationStatus {
    Active,
    Beta,
    Deprecated,
    Disabled,
}

/// A connector offered by the platform.
///
/// The specification's examples are partial (`// ...`), so only what every example states is
/// required here; the accessors give the defaults of what is left out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IntegrationDefinition {
    pub id: String,
    /// Machine name, `snake_case` (`google_news`).
    pub name: String,
    pub display_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<IntegrationCategory>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icon: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<String>,

    pub visibility: Visibility,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_premium: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required_plan: Option<String>,

    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capabilities: Vec<IntegrationCapability>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub supported_sync_directions: Vec<SyncDirection>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supports_realtime: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supports_webhooks: Option<bool>,

    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_type: Option<AuthType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth_config: Option<OAuthConfig>,

    /// `Some(vec![])` (an AI provider syncs nothing) is kept apart from "not stated".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub available_entities: Option<Vec<IntegrationEntity>>,

    pub connection_scope: ConnectionScope,

    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<IntegrationStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

impl IntegrationDefinition {
    pub fn is_premium(&self) -> bool {
        self.is_premium.unwrap_or(false)
    }

    pub fn supports_realtime(&self) -> bool {
        self.supports_realtime.unwrap_or(false)
    }

    pub fn supports_webhooks(&self) -> bool {
        self.supports_webhooks.unwrap_or(false)
    }

    pub fn available_entities(&self) -> &[IntegrationEntity] {
        self.available_entities.as_deref().unwrap_or_default()
    }

    pub fn status(&self) -> IntegrationStatus {
        self.status.unwrap_or(IntegrationStatus::Active)
    }

    pub fn has_capability(&self, capability: IntegrationCapability) -> bool {
        self.capabilities.contains(&capability)
    }

    pub fn entity(&self, name: &str) -> Option<&IntegrationEntity> {
        self.available_entities().iter().find(|e| e.name == name)
    }
}

impl Validate for IntegrationDefinition {
    fn validate_at(&self, at: &JsonPath) -> Result<(), ModelError> {
        at.key("id").non_empty(&self.id)?;
        at.key("displayName").non_empty(&self.display_name)?;
        if self.name.is_empty()
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            return Err(at.key("name").invalid(format!(
                "must be snake_case (a-z, 0-9, _), got `{}`",
                self.name
            )));
        }
        match (self.auth_type, &self.oauth_config) {
            (Some(AuthType::OAuth2), None) => {
                return Err(at
                    .key("oauthConfig")
                    .invalid("required when authType is `oauth2`"));
            }
            (Some(other), Some(_)) if other != AuthType::OAuth2 => {
                return Err(at
                    .key("oauthConfig")
                    .invalid("only allowed when authType is `oauth2`"));
            }
            _ => {}
        }
        self.oauth_config.validate_at(&at.key("oauthConfig"))?;
        if let Some(entities) = &self.available_entities {
            let at = at.key("availableEntities");
            entities.validate_at(&at)?;
            unique(entities.iter().map(|e| e.name.as_str()), &at, "name")?;
        }
        Ok(())
    }
}

/// A record type an integration can sync (`Contact`, `Opportunity`, `article`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IntegrationEntity {
    /// The name in the external system, used as `source.entity` of conversion schemas.
    pub name: String,
    pub display_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<EntityField>,
    pub supports_read: bool,
    pub supports_write: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub supports_delete: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub supports_webhooks: bool,
    /// The field holding the record's id in the external system.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_field: Option<String>,
    /// The field incremental syncs filter on (`LastModifiedDate`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified_field: Option<String>,
}

impl Validate for IntegrationEntity {
    fn validate_at(&self, at: &JsonPath) -> Result<(), ModelError> {
        at.key("name").non_empty(&self.name)?;
        at.key("displayName").non_empty(&self.display_name)?;
        let fields_at = at.key("fields");
        for (index, field) in self.fields.iter().enumerate() {
            fields_at.index(index).key("name").non_empty(&field.name)?;
        }
        unique(
            self.fields.iter().map(|f| f.name.as_str()),
            &fields_at,
            "name",
        )
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EntityField {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(rename = "type")]
    pub field_type: EntityFieldType,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub required: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub read_only: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntityFieldType {
    String,
    Number,
    Integer,
    Boolean,
    Date,
    Datetime,
    Object,
    Array,
    /// The id of another record of the same integration.
    Reference,
}

/// The OAuth 2.0 application of an integration.
///
/// Differs from the specification on purpose: the client secret is not in the document but in
/// the secret store, referenced by `clientSecretRef` (credentials never sit in the tables).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OAuthConfig {
    pub authorization_url: String,
    pub token_url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoke_url: Option<String>,
    pub scopes: Vec<String>,
    pub client_id: String,
    pub client_secret_ref: SecretRef,
    pub redirect_uri: String,
    pub pkce: bool,
}

impl Validate for OAuthConfig {
    fn validate_at(&self, at: &JsonPath) -> Result<(), ModelError> {
        check_url(&at.key("authorizationUrl"), &self.authorization_url)?;
        check_url(&at.key("tokenUrl"), &self.token_url)?;
        if let Some(revoke_url) = &self.revoke_url {
            check_url(&at.key("revokeUrl"), revoke_url)?;
        }
        check_url(&at.key("redirectUri"), &self.redirect_uri)?;
        at.key("clientId").non_empty(&self.client_id)
    }
}

/// An absolute http(s) URL with a host. Deliberately shallow: the connector runtime parses URLs
/// properly (and refuses private addresses) when it calls them.
pub(crate) fn check_url(at: &JsonPath, url: &str) -> Result<(), ModelError> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    match rest {
        Some(rest)
            if !rest.is_empty() && !rest.starts_with('/') && !url.contains(char::is_whitespace) =>
        {
            Ok(())
        }
        _ => Err(at.invalid(format!("must be an absolute http(s) URL, got `{url}`"))),
    }
}

/// Rejects the first repeated value, naming the path of the repeat.
pub(crate) fn unique<'a>(
    values: impl Iterator<Item = &'a str>,
    list_at: &JsonPath,
    member: &str,
) -> Result<(), ModelError> {
    let mut seen = HashSet::new();
    for (index, value) in values.enumerate() {
        if !seen.insert(value) {
            return Err(list_at
                .index(index)
                .key(member)
                .invalid(format!("`{value}` appears more than once")));
        }
    }
    Ok(())
}
