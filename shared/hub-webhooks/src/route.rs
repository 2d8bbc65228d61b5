//! Webhook routes as documents: which tenant integration an endpoint feeds, how its deliveries
//! are verified ([`RouteConfig`]), how long their ids are remembered and how fast they may
//! come. Stored in the state table under `hub_core::keys::webhook_route`.

use std::fmt;

use chrono::{DateTime, Utc};
use hub_core::keys;
use hub_core::model::{JsonPath, ModelError, SecretOwner, TenantId, Validate};
use hub_core::ports::{Condition, Index, Item, QueryRequest, StateStore, StoreError};
use hub_core::repo::{DOC, doc_item, read_doc, with_index};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::RouteConfig;

/// How long delivery ids are remembered when a route sets nothing: providers retry for up to
/// three days (Stripe), most for far less.
pub const DEFAULT_DEDUP_WINDOW_DAYS: u32 = 3;
const MAX_DEDUP_WINDOW_DAYS: u32 = 30;
/// The rate limit of a route that sets none: generous for one integration's deliveries, a
/// ceiling on what a flood can cost.
pub const DEFAULT_RATE_LIMIT: RateLimit = RateLimit {
    requests_per_second: 100,
    burst: Some(200),
};
const MAX_REQUESTS_PER_SECOND: u32 = 100_000;

/// The `kind` attribute of route items.
pub const ROUTE_ITEM_KIND: &str = "webhook_route";
/// Top-level attribute holding the owning tenant, so a write can be conditioned on it.
const TENANT_ATTR: &str = "tenantId";

/// The id in `POST /webhooks/{routeId}`: the endpoint's only address, so it must not be
/// guessable. Generated ids are `rt_` and 128 random bits in hex; ids given by hand must be as
/// long (at least 24 characters of letters, digits, `_` and `-`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RouteId(String);

impl RouteId {
    const MIN_LEN: usize = 24;
    const MAX_LEN: usize = 64;

    /// A new id from the thread's cryptographically secure generator.
    pub fn generate() -> Self {
        Self(format!("rt_{:032x}", rand::random::<u128>()))
    }

    pub fn parse(value: impl Into<String>) -> Result<Self, String> {
        let value = value.into();
        if Self::is_well_formed(&value) {
            Ok(Self(value))
        } else {
            Err(format!(
                "a route id is {} to {} letters, digits, `_` or `-` (omit it to have one generated)",
                Self::MIN_LEN,
                Self::MAX_LEN
            ))
        }
    }

    /// Whether `value` could be a route id: checked before any lookup, so a malformed path
    /// costs no read.
    pub fn is_well_formed(value: &str) -> bool {
        (Self::MIN_LEN..=Self::MAX_LEN).contains(&value.len())
            && value
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-')
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for RouteId {
    type Error = String;

    fn try_from(value: String) -> Result<Self, String> {
        Self::parse(value)
    }
}

impl From<RouteId> for String {
    fn from(value: RouteId) -> String {
        value.0
    }
}

impl fmt::Display for RouteId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Requests per second with a burst allowance (the bucket's size; default: one second's worth).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RateLimit {
    pub requests_per_second: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<u32>,
}

impl RateLimit {
    pub fn burst(&self) -> u32 {
        self.burst.unwrap_or(self.requests_per_second).max(1)
    }
}

impl Validate for RateLimit {
    fn validate_at(&self, at: &JsonPath) -> Result<(), ModelError> {
        if !(1..=MAX_REQUESTS_PER_SECOND).contains(&self.requests_per_second) {
            return Err(at
                .key("requestsPerSecond")
                .invalid(format!("must be between 1 and {MAX_REQUESTS_PER_SECOND}")));
        }
        if let Some(burst) = self.burst
            && !(1..=MAX_REQUESTS_PER_SECOND.saturating_mul(60)).contains(&burst)
        {
            return Err(at
                .key("burst")
                .invalid("must be at least 1 and at most a minute's worth of requests"));
        }
        Ok(())
    }
}

/// One webhook endpoint of a tenant integration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WebhookRoute {
    pub id: RouteId,
    pub tenant_id: TenantId,
    pub tenant_integration_id: String,
    pub integration_id: String,
    /// How deliveries are verified: scheme, secrets, body limit, replay window, allow-list.
    pub config: RouteConfig,
    /// How long a delivery id is remembered, in days (default 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dedup_window_days: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimit>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<DateTime<Utc>>,
}

impl WebhookRoute {
    pub fn dedup_window_days(&self) -> u32 {
        self.dedup_window_days.unwrap_or(DEFAULT_DEDUP_WINDOW_DAYS)
    }

    pub fn rate_limit(&self) -> RateLimit {
        self.rate_limit.unwrap_or(DEFAULT_RATE_LIMIT)
    }

    /// The path providers are given: `/webhooks/<id>`.
    pub fn path(&self) -> String {
        format!("/webhooks/{}", self.id)
    }
}

impl Validate for WebhookRoute {
    fn validate_at(&self, at: &JsonPath) -> Result<(), ModelError> {
        for (name, value) in [
            ("tenantIntegrationId", &self.tenant_integration_id),
            ("integrationId", &self.integration_id),
        ] {
            if value.trim().is_empty() {
                return Err(at.key(name).invalid("must not be empty"));
            }
        }
        let config_at = at.key("config");
        self.config.validate_at(&config_at)?;
        // A route may only read its own tenant's secrets: otherwise one tenant could verify
        // (and so learn about) deliveries with another tenant's key.
        for (index, reference) in self.config.secret_refs().enumerate() {
            let owned =
                matches!(reference.owner(), SecretOwner::Tenant(owner) if *owner == self.tenant_id);
            if !owned {
                let path = if index < self.config.secrets.len() {
                    config_at.key("secrets").index(index)
                } else {
                    config_at.key("scheme").key("verifyToken")
                };
                return Err(path.invalid(format!(
                    "must be a secret of tenant `{}` (`hub/{}/<name>`)",
                    self.tenant_id.as_str(),
                    self.tenant_id.as_str()
                )));
            }
        }
        if let Some(days) = self.dedup_window_days
            && !(1..=MAX_DEDUP_WINDOW_DAYS).contains(&days)
        {
            return Err(at
                .key("dedupWindowDays")
                .invalid(format!("must be between 1 and {MAX_DEDUP_WINDOW_DAYS}")));
        }
        if let Some(limit) = &self.rate_limit {
            limit.validate_at(&at.key("rateLimit"))?;
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RouteStoreError {
    #[error("state store: {0}")]
    Store(#[from] StoreError),
    #[error("cannot encode webhook route `{route_id}`: {error}")]
    Encode { route_id: String, error: ModelError },
    #[error("stored webhook route `{route_id}` is unreadable: {error}")]
    Corrupt { route_id: String, error: ModelError },
    /// The id is taken by another tenant's route; ids are never reassigned.
    #[error("webhook route `{route_id}` belongs to another tenant")]
    OtherTenant { route_id: String },
}

impl RouteStoreError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Store(_) => "state_store_unavailable",
            Self::Encode { .. } => "encode_failed",
            Self::Corrupt { .. } => "corrupt_document",
            Self::OtherTenant { .. } => "route_owned_by_another_tenant",
        }
    }
}

/// What [`put_route`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteWrite {
    Created,
    Updated,
    Unchanged,
}

/// Stores a route (create or replace), keeping its creation time. Re-applying an identical
/// route writes nothing; a route id of another tenant is refused.
pub async fn put_route(
    store: &dyn StateStore,
    route: &WebhookRoute,
    now: DateTime<Utc>,
) -> Result<RouteWrite, RouteStoreError> {
    let key = keys::webhook_route(route.id.as_str());
    let existing = match store.get(&key).await? {
        Some(item) => Some(decode(&item, route.id.as_str())?),
        None => None,
    };
    let mut stored = route.clone();
    if let Some(existing) = &existing {
        if existing.tenant_id != route.tenant_id {
            return Err(RouteStoreError::OtherTenant {
                route_id: route.id.to_string(),
            });
        }
        let mut comparable = existing.clone();
        comparable.created_at = route.created_at;
        comparable.updated_at = route.updated_at;
        if comparable == *route {
            return Ok(RouteWrite::Unchanged);
        }
        stored.created_at = existing.created_at.or(Some(now));
    } else {
        stored.created_at = route.created_at.or(Some(now));
    }
    stored.updated_at = Some(now);
    let encode = |error| RouteStoreError::Encode {
        route_id: route.id.to_string(),
        error,
    };
    let mut item = with_index(
        doc_item(&key, ROUTE_ITEM_KIND, &stored).map_err(encode)?,
        keys::webhook_routes_index(route.tenant_id.as_str()),
        route.id.as_str(),
    );
    item.insert(
        TENANT_ATTR.into(),
        Value::String(route.tenant_id.as_str().to_owned()),
    );
    // Guards the read above: a concurrent create by another tenant cannot be overwritten.
    let condition = Condition::item_absent().or(Condition::eq(
        TENANT_ATTR,
        route.tenant_id.as_str().to_owned(),
    ));
    match store.put(item, Some(condition)).await {
        Ok(()) => Ok(if existing.is_some() {
            RouteWrite::Updated
        } else {
            RouteWrite::Created
        }),
        Err(StoreError::ConditionFailed) => Err(RouteStoreError::OtherTenant {
            route_id: route.id.to_string(),
        }),
        Err(error) => Err(error.into()),
    }
}

/// The route with this id, if any.
pub async fn get_route(
    store: &dyn StateStore,
    route_id: &str,
) -> Result<Option<WebhookRoute>, RouteStoreError> {
    match store.get(&keys::webhook_route(route_id)).await? {
        Some(item) => decode(&item, route_id).map(Some),
        None => Ok(None),
    }
}

/// Every route of a tenant, by id. Reads the secondary index, which is eventually consistent
/// on DynamoDB: a route created a moment ago may be missing.
pub async fn list_routes(
    store: &dyn StateStore,
    tenant: &str,
) -> Result<Vec<WebhookRoute>, RouteStoreError> {
    let request = QueryRequest::partition(Index::Gsi1, keys::webhook_routes_index(tenant));
    let mut routes = Vec::new();
    let mut start = None;
    loop {
        let page = store.query(request.clone().start_after(start)).await?;
        for item in &page.items {
            let route_id = item
                .get(hub_core::ports::GSI1SK)
                .and_then(Value::as_str)
                .unwrap_or_default();
            routes.push(decode(item, route_id)?);
        }
        start = page.last_evaluated_key;
        if start.is_none() {
            return Ok(routes);
        }
    }
}

/// The stored document as JSON, unvalidated (what `hub get` prints).
pub fn route_document(item: &Item) -> Option<Value> {
    match item.get(DOC) {
        Some(Value::String(text)) => serde_json::from_str(text).ok(),
        _ => None,
    }
}

fn decode(item: &Item, route_id: &str) -> Result<WebhookRoute, RouteStoreError> {
    read_doc(item).map_err(|error| RouteStoreError::Corrupt {
        route_id: route_id.to_owned(),
        error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hub_core::model::load_json;

    fn document(extra: &str) -> String {
        format!(
            r#"{{"id":"rt_0123456789abcdef0123456789abcdef","tenantId":"acme",
                "tenantIntegrationId":"ti-github","integrationId":"github",
                "config":{{"scheme":{{"type":"github"}},"secrets":["hub/acme/gh-1"]}}{extra}}}"#
        )
    }

    #[test]
    fn generated_ids_are_long_random_and_parse_back() {
        let a = RouteId::generate();
        let b = RouteId::generate();
        assert_ne!(a, b);
        assert_eq!(a.as_str().len(), 35);
        assert_eq!(RouteId::parse(a.as_str()).unwrap(), a);
        for bad in ["short", "rt_0123456789abcdef01234/6789", &"x".repeat(65)] {
            assert!(RouteId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn routes_load_with_defaults() {
        let route: WebhookRoute = load_json(&document("")).unwrap();
        assert_eq!(route.dedup_window_days(), 3);
        assert_eq!(route.rate_limit(), DEFAULT_RATE_LIMIT);
        assert_eq!(
            route.path(),
            "/webhooks/rt_0123456789abcdef0123456789abcdef"
        );
    }

    #[test]
    fn bad_routes_are_refused_at_their_path() {
        for (extra, path) in [
            (r#","dedupWindowDays":0"#, "dedupWindowDays"),
            (
                r#","rateLimit":{"requestsPerSecond":0}"#,
                "rateLimit.requestsPerSecond",
            ),
            (
                r#","rateLimit":{"requestsPerSecond":5,"burst":0}"#,
                "rateLimit.burst",
            ),
        ] {
            let error = load_json::<WebhookRoute>(&document(extra)).unwrap_err();
            assert_eq!(error.path(), Some(path), "{extra}: {error}");
        }
        let other_tenant = document("").replace("hub/acme/gh-1", "hub/globex/gh-1");
        let error = load_json::<WebhookRoute>(&other_tenant).unwrap_err();
        assert_eq!(error.path(), Some("config.secrets[0]"), "{error}");
        let guessable = document("").replace("rt_0123456789abcdef0123456789abcdef", "route-1");
        let error = load_json::<WebhookRoute>(&guessable).unwrap_err();
        assert_eq!(error.path(), Some("id"), "{error}");
    }

    #[test]
    fn rate_limit_burst_defaults_to_a_second() {
        let limit = RateLimit {
            requests_per_second: 7,
            burst: None,
        };
        assert_eq!(limit.burst(), 7);
    }
}
