//! `SecretStore`: versioned secrets with the semantics of Secrets Manager, and a TTL cache.
//!
//! Pinned behaviours: `get` returns the current version; `put` with `expected_version: None`
//! creates the secret and fails with `VersionConflict` if it exists; with `Some(v)` it writes a
//! new current version only if `v` is still current (compare-and-swap), so two processes that
//! refresh the same OAuth token cannot both win. Values never appear in `Debug` output.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use secrecy::SecretString;
use tokio::sync::Mutex;

use super::Clock;

#[derive(Clone)]
pub struct SecretVersion {
    pub version_id: String,
    pub value: SecretString,
    pub created_at: DateTime<Utc>,
}

impl std::fmt::Debug for SecretVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretVersion")
            .field("version_id", &self.version_id)
            .field("value", &"[redacted]")
            .field("created_at", &self.created_at)
            .finish()
    }
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum SecretError {
    /// The secret exists (create) or its current version is not the expected one (update).
    #[error("secret `{name}` changed concurrently: expected version {expected:?}")]
    VersionConflict {
        name: String,
        expected: Option<String>,
    },
    #[error("no secret named `{0}`")]
    NotFound(String),
    #[error("invalid secret request: {0}")]
    Invalid(String),
    #[error("the secret store is unavailable: {0}")]
    Unavailable(String),
}

impl SecretError {
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Unavailable(_) => true,
            Self::VersionConflict { .. } | Self::NotFound(_) | Self::Invalid(_) => false,
        }
    }
}

/// Secret names are paths such as `hub/<tenantId>/<connectionId>`.
pub fn validate_secret_name(name: &str) -> Result<(), SecretError> {
    let ok = !name.is_empty()
        && name.len() <= 512
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/_+=.@-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(SecretError::Invalid(
            "a secret name is 1-512 characters of letters, digits and /_+=.@-".into(),
        ))
    }
}

/// Secrets Manager's limit on a secret value.
pub const MAX_SECRET_BYTES: usize = 64 * 1024;

/// Checks the name and the size of a value about to be written, as Secrets Manager does.
pub fn validate_secret_write(name: &str, value: &SecretString) -> Result<(), SecretError> {
    validate_secret_name(name)?;
    let size = secrecy::ExposeSecret::expose_secret(value).len();
    if size > MAX_SECRET_BYTES {
        return Err(SecretError::Invalid(format!(
            "a secret value is at most {MAX_SECRET_BYTES} bytes, not {size}"
        )));
    }
    Ok(())
}

#[async_trait]
pub trait SecretStore: Send + Sync {
    /// The current version, or `None` if there is no such secret.
    async fn get(&self, name: &str) -> Result<Option<SecretVersion>, SecretError>;

    /// Creates (`expected_version: None`) or replaces with compare-and-swap; returns the new
    /// version id.
    async fn put(
        &self,
        name: &str,
        value: SecretString,
        expected_version: Option<&str>,
    ) -> Result<String, SecretError>;

    /// Deletes the secret and every version, without a recovery window. Absent is not an error.
    async fn delete(&self, name: &str) -> Result<(), SecretError>;
}

/// When a secret was read, and what was read (`None`: absent, also cached).
type CacheEntry = (DateTime<Utc>, Option<SecretVersion>);

/// Caches `get` for a TTL (Lambda-style: a warm function does not call Secrets Manager per
/// invocation) and drops an entry as soon as this process writes or deletes it.
pub struct CachedSecretStore {
    inner: Arc<dyn SecretStore>,
    clock: Arc<dyn Clock>,
    ttl: Duration,
    entries: Mutex<HashMap<String, CacheEntry>>,
}

impl CachedSecretStore {
    pub fn new(inner: Arc<dyn SecretStore>, clock: Arc<dyn Clock>, ttl: Duration) -> Self {
        Self {
            inner,
            clock,
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }
}

#[async_trait]
impl SecretStore for CachedSecretStore {
    async fn get(&self, name: &str) -> Result<Option<SecretVersion>, SecretError> {
        let now = self.clock.now();
        if let Some((fetched_at, cached)) = self.entries.lock().await.get(name)
            && (now - *fetched_at).to_std().is_ok_and(|age| age < self.ttl)
        {
            return Ok(cached.clone());
        }
        let fresh = self.inner.get(name).await?;
        self.entries
            .lock()
            .await
            .insert(name.to_owned(), (now, fresh.clone()));
        Ok(fresh)
    }

    async fn put(
        &self,
        name: &str,
        value: SecretString,
        expected_version: Option<&str>,
    ) -> Result<String, SecretError> {
        self.entries.lock().await.remove(name);
        let result = self.inner.put(name, value, expected_version).await;
        self.entries.lock().await.remove(name);
        result
    }

    async fn delete(&self, name: &str) -> Result<(), SecretError> {
        self.entries.lock().await.remove(name);
        self.inner.delete(name).await
    }
}
