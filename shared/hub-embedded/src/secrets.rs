//! `SecretStore` on its own database file, `secrets.sqlite3`, created with mode 0600.
//!
//! **Local secrets are stored in plaintext on disk.** The file is readable by its owner only,
//! but nothing is encrypted: this backend is for development and tests, never for real
//! credentials of production tenants.
//!
//! Each secret keeps its current and previous versions (as `AWSCURRENT` / `AWSPREVIOUS`); a
//! new version replaces the current one only if the caller names it (compare-and-swap inside
//! one `BEGIN IMMEDIATE` transaction, so two processes cannot both win).

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use hub_core::ports::{
    Clock, IdGenerator, SecretError, SecretStore, SecretVersion, validate_secret_name,
    validate_secret_write,
};
use rusqlite::{OptionalExtension, params};
use secrecy::{ExposeSecret, SecretString};

use crate::db::{Db, PortError};

pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS secrets (
    name TEXT PRIMARY KEY,
    current_version TEXT NOT NULL,
    previous_version TEXT
);
CREATE TABLE IF NOT EXISTS secret_versions (
    name TEXT NOT NULL,
    version_id TEXT NOT NULL,
    value TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    PRIMARY KEY (name, version_id)
);
";

impl PortError for SecretError {
    fn unavailable(message: String) -> Self {
        Self::Unavailable(message)
    }
}

pub(crate) struct SqliteSecretStore {
    db: Arc<Db>,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGenerator>,
}

impl SqliteSecretStore {
    pub(crate) fn new(db: Arc<Db>, clock: Arc<dyn Clock>, ids: Arc<dyn IdGenerator>) -> Self {
        Self { db, clock, ids }
    }
}

#[async_trait]
impl SecretStore for SqliteSecretStore {
    async fn get(&self, name: &str) -> Result<Option<SecretVersion>, SecretError> {
        validate_secret_name(name)?;
        let name = name.to_owned();
        self.db
            .read(move |conn| {
                let row: Option<(String, String, i64)> = conn
                    .prepare_cached(
                        "SELECT v.version_id, v.value, v.created_at_ms
                         FROM secrets s JOIN secret_versions v
                           ON v.name = s.name AND v.version_id = s.current_version
                         WHERE s.name = ?1",
                    )
                    .and_then(|mut stmt| {
                        stmt.query_row(params![name], |row| {
                            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
                        })
                        .optional()
                    })
                    .map_err(SecretError::from_sqlite)?;
                Ok(row.map(|(version_id, value, created_at_ms)| SecretVersion {
                    version_id,
                    value: SecretString::from(value),
                    created_at: DateTime::<Utc>::from_timestamp_millis(created_at_ms)
                        .unwrap_or_default(),
                }))
            })
            .await
    }

    async fn put(
        &self,
        name: &str,
        value: SecretString,
        expected_version: Option<&str>,
    ) -> Result<String, SecretError> {
        validate_secret_write(name, &value)?;
        let name = name.to_owned();
        let expected = expected_version.map(str::to_owned);
        let version_id = self.ids.new_id();
        let new_version = version_id.clone();
        let now = self.clock.now().timestamp_millis();
        self.db
            .write(move |tx| {
                let current: Option<(String, Option<String>)> = tx
                    .prepare_cached(
                        "SELECT current_version, previous_version FROM secrets WHERE name = ?1",
                    )
                    .and_then(|mut stmt| {
                        stmt.query_row(params![name], |row| Ok((row.get(0)?, row.get(1)?)))
                            .optional()
                    })
                    .map_err(SecretError::from_sqlite)?;
                let conflict = || SecretError::VersionConflict {
                    name: name.clone(),
                    expected: expected.clone(),
                };
                let stale = match (&current, &expected) {
                    (None, None) => None,
                    (Some((current, previous)), Some(expected)) if current == expected => {
                        previous.clone()
                    }
                    (None, Some(_)) => return Err(SecretError::NotFound(name.clone())),
                    (Some(_), _) => return Err(conflict()),
                };
                tx.execute(
                    "INSERT INTO secret_versions (name, version_id, value, created_at_ms)
                     VALUES (?1, ?2, ?3, ?4)",
                    params![name, new_version, value.expose_secret(), now],
                )
                .map_err(SecretError::from_sqlite)?;
                tx.execute(
                    "INSERT INTO secrets (name, current_version, previous_version)
                     VALUES (?1, ?2, NULL)
                     ON CONFLICT (name) DO UPDATE SET
                         previous_version = secrets.current_version,
                         current_version = excluded.current_version",
                    params![name, new_version],
                )
                .map_err(SecretError::from_sqlite)?;
                // Only the current and previous versions are kept.
                if let Some(stale) = stale {
                    tx.execute(
                        "DELETE FROM secret_versions WHERE name = ?1 AND version_id = ?2",
                        params![name, stale],
                    )
                    .map_err(SecretError::from_sqlite)?;
                }
                Ok(())
            })
            .await?;
        Ok(version_id)
    }

    async fn delete(&self, name: &str) -> Result<(), SecretError> {
        validate_secret_name(name)?;
        let name = name.to_owned();
        self.db
            .write(move |tx| {
                for sql in [
                    "DELETE FROM secret_versions WHERE name = ?1",
                    "DELETE FROM secrets WHERE name = ?1",
                ] {
                    tx.execute(sql, params![name])
                        .map_err(SecretError::from_sqlite)?;
                }
                Ok(())
            })
            .await
    }
}
