//! Reading config files into typed documents, with errors that name the file and JSON path.

use std::fmt;
use std::path::Path;

use chrono::Utc;
use hub_core::model::{
    ConversionSchema, Credentials, IntegrationConnection, IntegrationDefinition, JsonPath,
    ModelError, SecretRef, SyncTask, TenantId, TenantIntegration, decode_value, load_value,
};
use hub_mapping::{CompileError, CompiledSchema};
use hub_webhooks::{RouteId, WebhookRoute};
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::ConfigError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
pub enum DocumentKind {
    IntegrationDefinition,
    TenantIntegration,
    Connection,
    ConversionSchema,
    SyncTask,
    WebhookRoute,
}

impl DocumentKind {
    pub const ALL: [DocumentKind; 6] = [
        Self::IntegrationDefinition,
        Self::TenantIntegration,
        Self::Connection,
        Self::ConversionSchema,
        Self::SyncTask,
        Self::WebhookRoute,
    ];

    /// The name `hub get` takes (`schema`, `task`, ...).
    pub fn cli_name(self) -> &'static str {
        match self {
            Self::IntegrationDefinition => "definition",
            Self::TenantIntegration => "integration",
            Self::Connection => "connection",
            Self::ConversionSchema => "schema",
            Self::SyncTask => "task",
            Self::WebhookRoute => "route",
        }
    }

    pub fn from_cli_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| {
            k.cli_name() == name || format!("{}s", k.cli_name()) == name || format!("{k:?}") == name
        })
    }

    /// Where documents of this kind come in an apply: after the kinds they can name.
    pub fn apply_rank(self) -> u8 {
        match self {
            Self::IntegrationDefinition => 0,
            Self::Connection => 1,
            Self::TenantIntegration => 2,
            Self::ConversionSchema => 3,
            Self::SyncTask => 4,
            Self::WebhookRoute => 5,
        }
    }

    /// Whether documents of this kind belong to a tenant (`tenantId` in the envelope).
    pub fn is_tenant_scoped(self) -> bool {
        !matches!(self, Self::IntegrationDefinition)
    }
}

impl fmt::Display for DocumentKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// The fields a document left out that apply filled in (`createdAt` with the time it was
/// parsed, `enabledBy` with `hub apply`). Re-applying takes them from the stored document, so
/// an unchanged document stays unchanged and keeps when it was created and enabled.
pub type Defaulted = Vec<&'static str>;

/// One validated document of a config file.
#[derive(Debug, Clone)]
pub enum ConfigDocument {
    Definition(Box<IntegrationDefinition>),
    TenantIntegration {
        integration: Box<TenantIntegration>,
        defaulted: Defaulted,
    },
    Connection {
        connection: Box<IntegrationConnection>,
        credentials: Option<Credentials>,
        defaulted: Defaulted,
    },
    Schema {
        tenant: TenantId,
        schema: Box<ConversionSchema>,
    },
    Task {
        tenant: TenantId,
        task: Box<SyncTask>,
    },
    /// A webhook endpoint; its id was generated when the document gave none. `secrets` are
    /// values for some of the route's secret references, stored in the secret store on apply.
    WebhookRoute {
        route: Box<WebhookRoute>,
        secrets: Vec<(SecretRef, SecretString)>,
    },
}

impl ConfigDocument {
    pub fn kind(&self) -> DocumentKind {
        match self {
            Self::Definition(_) => DocumentKind::IntegrationDefinition,
            Self::TenantIntegration { .. } => DocumentKind::TenantIntegration,
            Self::Connection { .. } => DocumentKind::Connection,
            Self::Schema { .. } => DocumentKind::ConversionSchema,
            Self::Task { .. } => DocumentKind::SyncTask,
            Self::WebhookRoute { .. } => DocumentKind::WebhookRoute,
        }
    }

    pub fn id(&self) -> String {
        match self {
            Self::Definition(d) => d.id.clone(),
            Self::TenantIntegration { integration, .. } => integration.id.clone(),
            Self::Connection { connection, .. } => connection.id.as_str().to_owned(),
            Self::Schema { schema, .. } => schema.id.clone(),
            Self::Task { task, .. } => task.id.clone(),
            Self::WebhookRoute { route, .. } => route.id.to_string(),
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Envelope {
    kind: DocumentKind,
    #[serde(default)]
    tenant_id: Option<TenantId>,
    spec: Value,
    #[serde(default)]
    credentials: Option<Value>,
    /// Webhook secret values by reference (webhook routes only).
    #[serde(default)]
    secrets: Option<Map<String, Value>>,
}

/// Why a document was refused, with the JSON path from the root of its file's text.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DocumentError {
    /// The data model's rules: shape, values, the envelope.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// A conversion schema the mapping engine refuses (a bad regex, unsupported JSONPath, a
    /// malformed source path): the error `hub schema test` gives, and the one every batch
    /// would fail with if the schema were stored.
    #[error(transparent)]
    Compile(#[from] CompileError),
}

impl DocumentError {
    /// Stable code: the model's, or the compiler's (`invalid_regex`, `invalid_path`, ...).
    pub fn code(&self) -> &'static str {
        match self {
            Self::Model(error) => error.code(),
            Self::Compile(error) => error.code(),
        }
    }

    /// The same error for a document nested at `prefix` (a `spec`, an array element).
    pub fn nested_under(self, prefix: &str) -> Self {
        match self {
            Self::Model(error) => Self::Model(error.nested_under(prefix)),
            Self::Compile(error) => Self::Compile(CompileError {
                path: join_paths(prefix, &error.path),
                ..error
            }),
        }
    }
}

/// `spec` + `fieldMappings[0]` = `spec.fieldMappings[0]`; `.` is the root.
fn join_paths(outer: &str, inner: &str) -> String {
    match (outer, inner) {
        (".", path) | (path, ".") => path.to_owned(),
        (outer, inner) if inner.starts_with('[') => format!("{outer}{inner}"),
        (outer, inner) => format!("{outer}.{inner}"),
    }
}

/// Parses the documents of one file's text (one envelope, or an array of them).
pub fn parse_documents(text: &str) -> Result<Vec<ConfigDocument>, DocumentError> {
    let value: Value = hub_core::model::decode_json(text)?;
    match value {
        Value::Array(items) => items
            .into_iter()
            .enumerate()
            .map(|(i, item)| parse_one(item).map_err(|e| e.nested_under(&format!("[{i}]"))))
            .collect(),
        single => Ok(vec![parse_one(single)?]),
    }
}

fn parse_one(value: Value) -> Result<ConfigDocument, DocumentError> {
    let envelope: Envelope = decode_value(value)?;
    let kind = envelope.kind;
    let tenant = match (kind.is_tenant_scoped(), envelope.tenant_id) {
        (true, Some(tenant)) => Some(tenant),
        (false, None) => None,
        // Connections name their tenant (or system scope) inside the spec.
        (true, None) if kind == DocumentKind::Connection => None,
        (true, None) => {
            return Err(JsonPath::root()
                .key("tenantId")
                .invalid(format!("a {kind} belongs to a tenant"))
                .into());
        }
        (false, Some(_)) => {
            return Err(JsonPath::root()
                .key("tenantId")
                .invalid(format!("a {kind} is system-wide"))
                .into());
        }
    };
    if envelope.credentials.is_some() && kind != DocumentKind::Connection {
        return Err(JsonPath::root()
            .key("credentials")
            .invalid("only a Connection carries credentials")
            .into());
    }
    if envelope.secrets.is_some() && kind != DocumentKind::WebhookRoute {
        return Err(JsonPath::root()
            .key("secrets")
            .invalid("only a WebhookRoute carries secret values")
            .into());
    }
    let now = Value::String(Utc::now().to_rfc3339());
    let nested = |e: ModelError| e.nested_under("spec");
    Ok(match kind {
        DocumentKind::IntegrationDefinition => {
            ConfigDocument::Definition(Box::new(load_value(envelope.spec).map_err(nested)?))
        }
        DocumentKind::TenantIntegration => {
            let mut spec = object(envelope.spec)?;
            let tenant = tenant.expect("checked above");
            spec.entry("tenantId")
                .or_insert_with(|| Value::String(tenant.as_str().to_owned()));
            let mut defaulted = Defaulted::new();
            for field in ["enabledAt", "createdAt", "updatedAt"] {
                insert_default(&mut spec, &mut defaulted, field, now.clone());
            }
            insert_default(
                &mut spec,
                &mut defaulted,
                "enabledBy",
                Value::String("hub apply".into()),
            );
            let integration: TenantIntegration = load_value(Value::Object(spec)).map_err(nested)?;
            if integration.tenant_id != tenant {
                return Err(JsonPath::root()
                    .key("spec")
                    .key("tenantId")
                    .invalid("differs from the envelope's tenantId")
                    .into());
            }
            ConfigDocument::TenantIntegration {
                integration: Box::new(integration),
                defaulted,
            }
        }
        DocumentKind::Connection => {
            let mut spec = object(envelope.spec)?;
            let mut defaulted = Defaulted::new();
            for field in ["createdAt", "updatedAt"] {
                insert_default(&mut spec, &mut defaulted, field, now.clone());
            }
            insert_default(
                &mut spec,
                &mut defaulted,
                "createdBy",
                Value::String("hub apply".into()),
            );
            let connection: IntegrationConnection =
                load_value(Value::Object(spec)).map_err(nested)?;
            let credentials = envelope
                .credentials
                .map(|value| {
                    let text = secrecy::SecretString::from(value.to_string());
                    Credentials::from_secret(&text).map_err(|e| e.nested_under("credentials"))
                })
                .transpose()?;
            ConfigDocument::Connection {
                connection: Box::new(connection),
                credentials,
                defaulted,
            }
        }
        DocumentKind::ConversionSchema => {
            let schema: ConversionSchema = load_value(envelope.spec).map_err(nested)?;
            // The engine's own rules (regexes, paths, placeholders, expressions) go beyond the
            // model's: a schema it refuses would be stored and then fail every batch.
            CompiledSchema::compile(&schema)
                .map_err(|error| DocumentError::from(error).nested_under("spec"))?;
            ConfigDocument::Schema {
                tenant: tenant.expect("checked above"),
                schema: Box::new(schema),
            }
        }
        DocumentKind::WebhookRoute => {
            let mut spec = object(envelope.spec)?;
            let tenant = tenant.expect("checked above");
            spec.entry("tenantId")
                .or_insert_with(|| Value::String(tenant.as_str().to_owned()));
            // The id is the endpoint's address: generated unguessable unless given.
            if !spec.contains_key("id") {
                spec.insert("id".into(), Value::String(RouteId::generate().into()));
            }
            let route: WebhookRoute = load_value(Value::Object(spec)).map_err(nested)?;
            if route.tenant_id != tenant {
                return Err(JsonPath::root()
                    .key("spec")
                    .key("tenantId")
                    .invalid("differs from the envelope's tenantId")
                    .into());
            }
            let secrets = route_secrets(&route, envelope.secrets.unwrap_or_default())?;
            ConfigDocument::WebhookRoute {
                route: Box::new(route),
                secrets,
            }
        }
        DocumentKind::SyncTask => {
            let task: SyncTask = load_value(envelope.spec).map_err(nested)?;
            if task.tenant_integration_id.is_none() {
                return Err(JsonPath::root()
                    .key("spec")
                    .key("tenantIntegrationId")
                    .invalid("a stored sync task names its tenant integration")
                    .into());
            }
            ConfigDocument::Task {
                tenant: tenant.expect("checked above"),
                task: Box::new(task),
            }
        }
    })
}

/// The secret values a route document brings: each for one of the route's own references.
fn route_secrets(
    route: &WebhookRoute,
    values: Map<String, Value>,
) -> Result<Vec<(SecretRef, SecretString)>, ModelError> {
    let mut secrets = Vec::with_capacity(values.len());
    for (name, value) in values {
        let at = JsonPath::root().key("secrets").key(&name);
        let Some(reference) = route
            .config
            .secret_refs()
            .find(|reference| reference.as_str() == name)
        else {
            return Err(at.invalid("is not one of the route's secrets"));
        };
        match value {
            Value::String(text) if !text.is_empty() => {
                secrets.push((reference.clone(), SecretString::from(text)));
            }
            _ => return Err(at.invalid("must be a non-empty string")),
        }
    }
    Ok(secrets)
}

fn object(value: Value) -> Result<Map<String, Value>, ModelError> {
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(JsonPath::root().key("spec").invalid("must be an object")),
    }
}

/// Fills `field` when the document left it out, noting that it did.
fn insert_default(
    spec: &mut Map<String, Value>,
    defaulted: &mut Defaulted,
    field: &'static str,
    value: Value,
) {
    if !spec.contains_key(field) {
        spec.insert(field.to_owned(), value);
        defaulted.push(field);
    }
}

/// Reads a file, or every `*.json` file of a directory (sorted, not recursive).
pub fn load_path(path: &Path) -> Result<Vec<(String, ConfigDocument)>, ConfigError> {
    let io = |source| ConfigError::Io {
        path: path.to_owned(),
        source,
    };
    let files = if path.is_dir() {
        let mut files: Vec<_> = std::fs::read_dir(path)
            .map_err(io)?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        files.sort();
        files
    } else {
        vec![path.to_owned()]
    };
    let mut documents = Vec::new();
    for file in files {
        let name = file.display().to_string();
        let text = std::fs::read_to_string(&file).map_err(|source| ConfigError::Io {
            path: file.clone(),
            source,
        })?;
        let parsed = parse_documents(&text).map_err(|error| ConfigError::Invalid {
            file: name.clone(),
            error,
        })?;
        documents.extend(parsed.into_iter().map(|d| (name.clone(), d)));
    }
    Ok(documents)
}
