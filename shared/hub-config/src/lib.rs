//! Configuration as files (`hub apply -f FILE|DIR`, `hub get`): each file holds one document or
//! an array of them, each an envelope naming its kind and tenant around the model document:
//!
//! ```json
//! { "kind": "ConversionSchema", "tenantId": "acme", "spec": { "id": "sf-contact", ... } }
//! { "kind": "Connection", "spec": { ... }, "credentials": { "type": "api_key", "apiKey": "..." } }
//! ```
//!
//! A `ConversionSchema` is compiled by the mapping engine while it is parsed, so a schema the
//! engine refuses (a bad regex, unsupported JSONPath) is refused with the compiler's code and
//! the JSON path from the file's root, as `hub schema test` refuses it, and never stored.
//!
//! An apply is checked whole before anything is stored ([`apply_all`], [`check_references`]):
//! a task's schema and tenant integration, a tenant integration's definition and connection,
//! a connection's definition must be stored or in the same apply (`unknown_reference`).
//!
//! Credentials go to the secret store under the connection's `credentialsRef`, never into the
//! state table. A conversion schema whose content changes becomes a new version; re-applying an
//! unchanged document changes nothing and reports `unchanged`: what apply fills in when a
//! document leaves it out (`createdAt`, `enabledAt`, `updatedAt`, `enabledBy`, `createdBy`) is
//! kept from the stored document, so `hub dev --demo` restarts keep those times. A `WebhookRoute` without an `id` gets a generated,
//! unguessable one (it is the endpoint's address, `/webhooks/<id>`): apply prints it, and
//! adding it to the file makes re-applying update that route instead of creating another.

mod document;
mod references;
mod store;

pub use document::{ConfigDocument, DocumentError, DocumentKind, load_path, parse_documents};
pub use references::{apply_all, check_references, sort_for_apply};
pub use store::{Applied, ApplyAction, apply, current_schema_version, get, list, schema_version};

use std::path::PathBuf;

use hub_core::model::ModelError;
use hub_core::ports::{SecretError, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: {error}")]
    Invalid { file: String, error: DocumentError },
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no {kind} `{id}`")]
    NotFound { kind: DocumentKind, id: String },
    /// A document naming another that is neither stored nor in the same apply.
    #[error(
        "{file}: {kind} `{id}`: {field}: no {target} `{target_id}` of {scope} is stored or in \
         this apply; apply it first or in the same apply"
    )]
    UnknownReference {
        file: String,
        kind: DocumentKind,
        id: String,
        /// The JSON path of the naming field in the referring document (`spec.conversionSchemaId`).
        field: &'static str,
        target: DocumentKind,
        target_id: String,
        /// `tenant `acme`` or `the system`.
        scope: String,
    },
    #[error("{kind} `{id}` changed while it was being applied; apply again")]
    Conflict { kind: DocumentKind, id: String },
    #[error(transparent)]
    Sync(#[from] hub_sync::Error),
    #[error(transparent)]
    Route(#[from] hub_webhooks::route::RouteStoreError),
    #[error("state store: {0}")]
    Store(#[from] StoreError),
    #[error("secret store: {0}")]
    Secret(#[from] SecretError),
    #[error("cannot encode the document: {0}")]
    Encode(#[from] ModelError),
    #[error("stored {kind} `{id}` is unreadable: {error}")]
    Corrupt {
        kind: DocumentKind,
        id: String,
        error: ModelError,
    },
}

impl ConfigError {
    /// Stable code for the CLI and the management API.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Invalid { error, .. } => error.code(),
            Self::Io { .. } => "unreadable_file",
            Self::NotFound { .. } => "not_found",
            Self::UnknownReference { .. } => "unknown_reference",
            Self::Conflict { .. } => "concurrent_update",
            Self::Sync(error) => error.code(),
            Self::Route(error) => error.code(),
            Self::Store(_) => "state_store_unavailable",
            Self::Secret(_) => "secret_store_unavailable",
            Self::Corrupt { .. } => "corrupt_document",
            Self::Encode(_) => "encode_failed",
        }
    }
}
