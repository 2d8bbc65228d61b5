//! Connections (metadata only), the credentials they reference, and OAuth state.

use std::fmt;

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value, json};

use super::tagged::{Tagged, tagged_deserialize};
use super::{
    AuthType, ConnectionId, JsonPath, ModelError, SecretOwner, SecretRef, TenantId, Validate,
};

/// One set of credentials for one integration, system-wide or owned by a tenant.
///
/// Differs from the specification on purpose: instead of (encrypted) `credentials` and OAuth
/// tokens, it holds `credentialsRef`, the name of the secret that holds them
/// (`hub/<tenantId>/<connectionId>` or `hub/system/<connectionId>`), and only the OAuth
/// metadata that is not secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IntegrationConnection {
    pub id: ConnectionId,
    pub integration_id: String,
    pub scope: ScopeLevel,
    /// Present exactly when `scope` is `tenant`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<TenantId>,
    pub auth_type: AuthType,
    pub credentials_ref: SecretRef,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth: Option<OAuthTokenMetadata>,
    pub status: ConnectionStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_validated_at: Option<DateTime<Utc>>,
    /// e.g. "john@company.com's Salesforce".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl IntegrationConnection {
    /// The secret name this connection's credentials must live under.
    pub fn expected_credentials_ref(&self) -> SecretRef {
        SecretRef::for_connection(self.tenant_id.as_ref(), &self.id)
    }
}

impl Validate for IntegrationConnection {
    fn validate_at(&self, at: &JsonPath) -> Result<(), ModelError> {
        at.key("integrationId").non_empty(&self.integration_id)?;
        match (self.scope, &self.tenant_id) {
            (ScopeLevel::Tenant, None) => {
                return Err(at
                    .key("tenantId")
                    .invalid("required when scope is `tenant`"));
            }
            (ScopeLevel::System, Some(_)) => {
                return Err(at
                    .key("tenantId")
                    .invalid("not allowed when scope is `system`"));
            }
            (ScopeLevel::Tenant, Some(_)) | (ScopeLevel::System, None) => {}
        }
        let expected = self.expected_credentials_ref();
        if self.credentials_ref != expected {
            return Err(at.key("credentialsRef").invalid(format!(
                "must be `{expected}` for this connection's scope, tenant and id"
            )));
        }
        if self.oauth.is_some() && self.auth_type != AuthType::OAuth2 {
            return Err(at
                .key("oauth")
                .invalid("only allowed when authType is `oauth2`"));
        }
        Ok(())
    }
}

/// The owner of one concrete connection (a definition's `connectionScope` may also be `both`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScopeLevel {
    System,
    Tenant,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionStatus {
    Active,
    Expired,
    Revoked,
    Error,
}

/// What may be known about an OAuth grant without reading the secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OAuthTokenMetadata {
    pub token_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<Vec<String>>,
}

/// The content of a connection's secret. Secret members are `SecretString`s, so `Debug` never
/// shows them; there is deliberately no `Serialize`: [`Credentials::to_secret`] is the one way
/// out, into a `SecretString` for the secret store.
#[derive(Debug, Clone)]
pub enum Credentials {
    ApiKey(ApiKeyCredentials),
    Basic(BasicCredentials),
    OAuth2(OAuth2Credentials),
    Custom(CustomCredentials),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApiKeyCredentials {
    pub api_key: SecretString,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BasicCredentials {
    pub username: String,
    pub password: SecretString,
}

/// The client pair (absent when the integration's OAuth app is shared, see `OAuthConfig`) and
/// the tokens of the grant.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OAuth2Credentials {
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub client_secret: Option<SecretString>,
    #[serde(default)]
    pub access_token: Option<SecretString>,
    #[serde(default)]
    pub refresh_token: Option<SecretString>,
    /// Kept beside the token so a refresh replaces both in one compare-and-swap.
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
}

/// Free-form credentials of a custom integration; every value is treated as secret.
#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CustomCredentials {
    pub data: Map<String, Value>,
}

impl fmt::Debug for CustomCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CustomCredentials")
            .field("keys", &self.data.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Credentials {
    pub fn auth_type(&self) -> AuthType {
        match self {
            Self::ApiKey(_) => AuthType::ApiKey,
            Self::Basic(_) => AuthType::Basic,
            Self::OAuth2(_) => AuthType::OAuth2,
            Self::Custom(_) => AuthType::Custom,
        }
    }

    /// Reads a secret's value. Errors name the path but never quote the value.
    pub fn from_secret(secret: &SecretString) -> Result<Self, ModelError> {
        let mut deserializer = serde_json::Deserializer::from_str(secret.expose_secret());
        let credentials: Self =
            serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
                // Only the path survives; the message may quote the secret.
                match ModelError::from_tracked(error) {
                    ModelError::InvalidDocument { path, .. } => {
                        ModelError::InvalidCredentials { path }
                    }
                    _ => ModelError::InvalidCredentials { path: ".".into() },
                }
            })?;
        deserializer
            .end()
            .map_err(|_| ModelError::InvalidCredentials { path: ".".into() })?;
        credentials.validate()?;
        Ok(credentials)
    }

    /// The JSON the secret store keeps (`{"type": "api_key", "apiKey": ...}`).
    pub fn to_secret(&self) -> SecretString {
        let document = match self {
            Self::ApiKey(c) => json!({"type": "api_key", "apiKey": c.api_key.expose_secret()}),
            Self::Basic(c) => json!({
                "type": "basic",
                "username": c.username,
                "password": c.password.expose_secret(),
            }),
            Self::OAuth2(c) => {
                let mut document = Map::new();
                document.insert("type".into(), "oauth2".into());
                let mut put = |key: &str, value: Option<String>| {
                    if let Some(value) = value {
                        document.insert(key.into(), Value::String(value));
                    }
                };
                let expose =
                    |s: &Option<SecretString>| s.as_ref().map(|s| s.expose_secret().into());
                put("clientId", c.client_id.clone());
                put("clientSecret", expose(&c.client_secret));
                put("accessToken", expose(&c.access_token));
                put("refreshToken", expose(&c.refresh_token));
                put("expiresAt", c.expires_at.map(|at| at.to_rfc3339()));
                Value::Object(document)
            }
            Self::Custom(c) => json!({"type": "custom", "data": c.data}),
        };
        SecretString::from(document.to_string())
    }
}

impl Tagged for Credentials {
    const TAG: &'static str = "type";
    const EXPECTING: &'static str = "a credentials object with a `type`";
    type Kind = AuthType;

    fn from_variant<'de, D: Deserializer<'de>>(kind: AuthType, rest: D) -> Result<Self, D::Error> {
        Ok(match kind {
            AuthType::ApiKey => Self::ApiKey(Deserialize::deserialize(rest)?),
            AuthType::Basic => Self::Basic(Deserialize::deserialize(rest)?),
            AuthType::OAuth2 => Self::OAuth2(Deserialize::deserialize(rest)?),
            AuthType::Custom => Self::Custom(Deserialize::deserialize(rest)?),
        })
    }
}
tagged_deserialize!(Credentials);

impl Validate for Credentials {
    fn validate_at(&self, at: &JsonPath) -> Result<(), ModelError> {
        // Messages here name members only, never values.
        match self {
            Self::ApiKey(c) if c.api_key.expose_secret().is_empty() => {
                Err(at.key("apiKey").invalid("must not be empty"))
            }
            Self::Basic(c) if c.username.is_empty() => {
                Err(at.key("username").invalid("must not be empty"))
            }
            Self::OAuth2(c) if c.client_id.is_some() != c.client_secret.is_some() => Err(at
                .key("clientSecret")
                .invalid("clientId and clientSecret come together")),
            Self::OAuth2(c) if c.access_token.is_none() && c.refresh_token.is_some() => Err(at
                .key("accessToken")
                .invalid("a refresh token comes with an access token")),
            _ => Ok(()),
        }
    }
}

/// The `state` of an OAuth authorization request, kept until the callback (with a TTL).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OAuthState {
    pub integration_id: String,
    /// Absent for a system-scope connection made by a super admin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<TenantId>,
    pub user_id: String,
    pub return_url: String,
    pub nonce: String,
    pub expires_at: DateTime<Utc>,
}

impl OAuthState {
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        now >= self.expires_at
    }
}

impl Validate for OAuthState {
    fn validate_at(&self, at: &JsonPath) -> Result<(), ModelError> {
        at.key("integrationId").non_empty(&self.integration_id)?;
        at.key("userId").non_empty(&self.user_id)?;
        at.key("returnUrl").non_empty(&self.return_url)?;
        // The nonce is what makes the state unguessable (RFC 6749 section 10.12).
        if self.nonce.len() < 16 {
            return Err(at.key("nonce").invalid("must be at least 16 characters"));
        }
        Ok(())
    }
}

/// Whether a secret reference belongs to `tenant` (or to the system when `tenant` is `None`).
pub(crate) fn owned_by(secret: &SecretRef, tenant: Option<&TenantId>) -> bool {
    match (secret.owner(), tenant) {
        (SecretOwner::System, None) => true,
        (SecretOwner::Tenant(owner), Some(tenant)) => owner == tenant,
        (SecretOwner::System, Some(_)) | (SecretOwner::Tenant(_), None) => false,
    }
}
