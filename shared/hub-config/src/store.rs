//! Storing and reading configuration documents in the state table (layout in `hub_core::keys`).

use hub_core::keys;
use hub_core::model::{ConversionSchema, SyncTask, TenantId, Validate};
use hub_core::ports::{
    Condition, Index, Item, Key, Ports, QueryRequest, SortCondition, StateStore, StoreError,
    TransactOp,
};
use hub_core::repo::{doc_item, read_doc, with_index};
use hub_webhooks::route::{RouteWrite, get_route, list_routes, put_route};
use secrecy::ExposeSecret;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::{ConfigDocument, ConfigError, DocumentKind};

/// What applying one document did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Applied {
    pub kind: DocumentKind,
    pub id: String,
    pub action: ApplyAction,
    /// The schema version now current (conversion schemas only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
    /// Where providers deliver (webhook routes only): `/webhooks/<id>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ApplyAction {
    Created,
    Updated,
    Unchanged,
}

impl Serialize for DocumentKind {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// Attribute of a schema head holding its current version (conditions compare it).
const VERSION: &str = "version";
/// The document field holding when it last changed.
const UPDATED_AT: &str = "updatedAt";
/// The owner segment of system-scope items.
const SYSTEM: &str = "system";

/// Stores one document. The documents it names are not checked here: a whole apply checks
/// them first with [`crate::check_references`] (or goes through [`crate::apply_all`]), since
/// a reference may be satisfied by another document of the same apply. Tasks go through `hub-sync`, which owns their due index
/// and runtime attributes (next run, stats).
pub async fn apply(ports: &Ports, document: &ConfigDocument) -> Result<Applied, ConfigError> {
    let kind = document.kind();
    let id = document.id();
    let applied = |action, version| Applied {
        kind,
        id: id.clone(),
        action,
        version,
        path: None,
    };
    match document {
        ConfigDocument::Definition(definition) => {
            let key = keys::definition(&definition.id);
            let item = with_index(
                doc_item(&key, "definition", definition)?,
                keys::DEFINITIONS_INDEX,
                &definition.id,
            );
            Ok(applied(put_if_changed(&*ports.state, item).await?, None))
        }
        ConfigDocument::TenantIntegration {
            integration,
            defaulted,
        } => {
            let key = keys::tenant_integration(integration.tenant_id.as_str(), &integration.id);
            let action = put_keeping_defaulted(
                &*ports.state,
                &key,
                (kind, "tenant_integration"),
                integration,
                defaulted,
            )
            .await?;
            Ok(applied(action, None))
        }
        ConfigDocument::Connection {
            connection,
            credentials,
            defaulted,
        } => {
            let owner = connection
                .tenant_id
                .as_ref()
                .map_or(SYSTEM, TenantId::as_str);
            let secret_action = match credentials {
                Some(credentials) => {
                    put_secret(
                        ports,
                        connection.credentials_ref.as_str(),
                        credentials.to_secret(),
                    )
                    .await?
                }
                None => ApplyAction::Unchanged,
            };
            let key = keys::connection(owner, connection.id.as_str());
            let doc_action = put_keeping_defaulted(
                &*ports.state,
                &key,
                (kind, "connection"),
                connection,
                defaulted,
            )
            .await?;
            let action = match (doc_action, secret_action) {
                (ApplyAction::Created, _) => ApplyAction::Created,
                (ApplyAction::Unchanged, ApplyAction::Unchanged) => ApplyAction::Unchanged,
                _ => ApplyAction::Updated,
            };
            Ok(applied(action, None))
        }
        ConfigDocument::Schema { tenant, schema } => {
            let (action, version) = put_schema(&*ports.state, tenant.as_str(), schema).await?;
            Ok(applied(action, Some(version)))
        }
        ConfigDocument::Task { tenant, task } => {
            let mut task = (**task).clone();
            let sync = hub_sync::SyncService::new(ports.clone());
            let action = match sync.get_task(tenant, &task.id).await {
                Ok(stored) if task_content(&stored) == task_content(&task) => {
                    // Rewriting would change nothing the document says, and would move
                    // `updatedAt` (and reschedule a paused-then-resumed task).
                    return Ok(applied(ApplyAction::Unchanged, None));
                }
                Ok(_) => ApplyAction::Updated,
                Err(hub_sync::Error::TaskNotFound { .. }) => ApplyAction::Created,
                Err(other) => return Err(other.into()),
            };
            task.created_at = task.created_at.or_else(|| Some(ports.clock.now()));
            sync.put_task(tenant, task).await?;
            Ok(applied(action, None))
        }
        ConfigDocument::WebhookRoute { route, secrets } => {
            // The secrets first: a route whose secrets are missing refuses every delivery.
            let mut secrets_changed = false;
            for (reference, value) in secrets {
                let action = put_secret(ports, reference.as_str(), value.clone()).await?;
                secrets_changed |= action != ApplyAction::Unchanged;
            }
            let written = put_route(&*ports.state, route, ports.clock.now()).await?;
            let action = match (written, secrets_changed) {
                (RouteWrite::Created, _) => ApplyAction::Created,
                (RouteWrite::Unchanged, false) => ApplyAction::Unchanged,
                (RouteWrite::Updated | RouteWrite::Unchanged, _) => ApplyAction::Updated,
            };
            Ok(Applied {
                path: Some(route.path()),
                ..applied(action, None)
            })
        }
    }
}

/// Writes the item unless an identical document is stored already.
async fn put_if_changed(store: &dyn StateStore, item: Item) -> Result<ApplyAction, ConfigError> {
    let key = Key::of(&item)?;
    let existing = store.get(&key).await?;
    let action = match &existing {
        None => ApplyAction::Created,
        Some(old) if old.get(hub_core::repo::DOC) == item.get(hub_core::repo::DOC) => {
            return Ok(ApplyAction::Unchanged);
        }
        Some(_) => ApplyAction::Updated,
    };
    store.put(item, None).await?;
    Ok(action)
}

/// What a task document says: without the runtime state hub-sync keeps beside it (next run,
/// last run, stats, last error) and the times the store sets.
fn task_content(task: &SyncTask) -> SyncTask {
    SyncTask {
        next_run_at: None,
        last_run_at: None,
        last_run_status: None,
        stats: Default::default(),
        last_error: None,
        created_at: None,
        updated_at: None,
        ..task.clone()
    }
}

/// Writes a document whose `defaulted` fields were filled at parse time (`now`, `hub apply`):
/// over a stored one they take the stored values, so re-applying an unchanged document
/// writes nothing and a changed one keeps when it was created and enabled. Only a defaulted
/// `updatedAt` keeps the new value, and only when something else changed.
async fn put_keeping_defaulted<T: Serialize>(
    store: &dyn StateStore,
    key: &Key,
    (kind, item_kind): (DocumentKind, &'static str),
    document: &T,
    defaulted: &[&'static str],
) -> Result<ApplyAction, ConfigError> {
    let mut new = serde_json::to_value(document).map_err(|e| {
        ConfigError::Encode(hub_core::model::ModelError::Encode {
            kind: "document",
            message: e.to_string(),
        })
    })?;
    let Some(existing) = store.get(key).await? else {
        store.put(doc_item(key, item_kind, &new)?, None).await?;
        return Ok(ApplyAction::Created);
    };
    let old = document_value(&existing, kind, &key.sk)?;
    let mut updated_at = None;
    if let (Value::Object(new), Value::Object(old)) = (&mut new, &old) {
        for &field in defaulted {
            if let Some(stored) = old.get(field) {
                let parsed = new.insert(field.to_owned(), stored.clone());
                if field == UPDATED_AT {
                    updated_at = parsed;
                }
            }
        }
    }
    if new == old {
        return Ok(ApplyAction::Unchanged);
    }
    if let (Value::Object(new), Some(now)) = (&mut new, updated_at) {
        new.insert(UPDATED_AT.to_owned(), now);
    }
    store.put(doc_item(key, item_kind, &new)?, None).await?;
    Ok(ApplyAction::Updated)
}

/// Creates the secret or replaces it with compare-and-swap when its value changed.
async fn put_secret(
    ports: &Ports,
    name: &str,
    value: secrecy::SecretString,
) -> Result<ApplyAction, ConfigError> {
    match ports.secrets.get(name).await? {
        None => {
            ports.secrets.put(name, value, None).await?;
            Ok(ApplyAction::Created)
        }
        Some(current) if current.value.expose_secret() == value.expose_secret() => {
            Ok(ApplyAction::Unchanged)
        }
        Some(current) => {
            ports
                .secrets
                .put(name, value, Some(&current.version_id))
                .await?;
            Ok(ApplyAction::Updated)
        }
    }
}

/// The content that decides whether a schema changed: everything but the bookkeeping the
/// store itself sets.
fn schema_content(schema: &ConversionSchema) -> Result<Value, ConfigError> {
    let mut content = schema.clone();
    content.version = None;
    content.created_at = None;
    content.updated_at = None;
    serde_json::to_value(&content).map_err(|e| ConfigError::Corrupt {
        kind: DocumentKind::ConversionSchema,
        id: schema.id.clone(),
        error: hub_core::model::ModelError::Encode {
            kind: "schema",
            message: e.to_string(),
        },
    })
}

/// Stores a changed schema as the next version (the version item and the head move together in
/// one transaction, guarded by the head's version), or nothing when the content is unchanged.
async fn put_schema(
    store: &dyn StateStore,
    tenant: &str,
    schema: &ConversionSchema,
) -> Result<(ApplyAction, u32), ConfigError> {
    let head_key = keys::schema_head(tenant, &schema.id);
    let head = store.get(&head_key).await?;
    let (current_version, current) = match &head {
        Some(item) => {
            let doc: ConversionSchema = read_doc(item).map_err(|error| ConfigError::Corrupt {
                kind: DocumentKind::ConversionSchema,
                id: schema.id.clone(),
                error,
            })?;
            (doc.version.unwrap_or(1), Some(doc))
        }
        None => (0, None),
    };
    if let Some(current) = &current
        && schema_content(current)? == schema_content(schema)?
    {
        return Ok((ApplyAction::Unchanged, current_version));
    }
    let version = current_version + 1;
    let now = chrono::Utc::now();
    let mut stored = schema.clone();
    stored.version = Some(version);
    stored.created_at = current.as_ref().and_then(|c| c.created_at).or(Some(now));
    stored.updated_at = Some(now);
    let version_item = doc_item(
        &keys::schema_version(tenant, &schema.id, version),
        "schema_version",
        &stored,
    )?;
    let mut head_item = doc_item(&head_key, "schema", &stored)?;
    head_item.insert(VERSION.into(), Value::from(version));
    let head_condition = match head {
        Some(_) => Condition::eq(VERSION, current_version),
        None => Condition::item_absent(),
    };
    let written = store
        .transact_write(vec![
            TransactOp::Put {
                item: version_item,
                condition: Some(Condition::item_absent()),
            },
            TransactOp::Put {
                item: head_item,
                condition: Some(head_condition),
            },
        ])
        .await;
    match written {
        Ok(()) => Ok((
            if version == 1 {
                ApplyAction::Created
            } else {
                ApplyAction::Updated
            },
            version,
        )),
        Err(StoreError::TransactionCanceled { .. } | StoreError::ConditionFailed) => {
            Err(ConfigError::Conflict {
                kind: DocumentKind::ConversionSchema,
                id: schema.id.clone(),
            })
        }
        Err(other) => Err(other.into()),
    }
}

/// One version of a conversion schema (what a `RecordBatch` names).
pub async fn schema_version(
    store: &dyn StateStore,
    tenant: &str,
    schema_id: &str,
    version: u32,
) -> Result<ConversionSchema, ConfigError> {
    let item = store
        .get(&keys::schema_version(tenant, schema_id, version))
        .await?
        .ok_or_else(|| ConfigError::NotFound {
            kind: DocumentKind::ConversionSchema,
            id: format!("{schema_id} version {version}"),
        })?;
    decode(&item, DocumentKind::ConversionSchema, schema_id)
}

/// The version of a conversion schema that is current (its head's), what a new run maps with.
pub async fn current_schema_version(
    store: &dyn StateStore,
    tenant: &str,
    schema_id: &str,
) -> Result<u32, ConfigError> {
    let item = store
        .get(&keys::schema_head(tenant, schema_id))
        .await?
        .ok_or_else(|| ConfigError::NotFound {
            kind: DocumentKind::ConversionSchema,
            id: schema_id.to_owned(),
        })?;
    let head: ConversionSchema = decode(&item, DocumentKind::ConversionSchema, schema_id)?;
    Ok(head.version.unwrap_or(1))
}

fn decode<T: DeserializeOwned + Validate>(
    item: &Item,
    kind: DocumentKind,
    id: &str,
) -> Result<T, ConfigError> {
    read_doc(item).map_err(|error| ConfigError::Corrupt {
        kind,
        id: id.to_owned(),
        error,
    })
}

fn document_value(item: &Item, kind: DocumentKind, id: &str) -> Result<Value, ConfigError> {
    match item.get(hub_core::repo::DOC) {
        Some(Value::String(text)) => serde_json::from_str(text).map_err(|e| ConfigError::Corrupt {
            kind,
            id: id.to_owned(),
            error: hub_core::model::ModelError::Encode {
                kind: "document",
                message: e.to_string(),
            },
        }),
        _ => Err(ConfigError::Corrupt {
            kind,
            id: id.to_owned(),
            error: hub_core::model::ModelError::Encode {
                kind: "document",
                message: "missing".into(),
            },
        }),
    }
}

fn key_of(kind: DocumentKind, tenant: &str, id: &str) -> Result<Key, ConfigError> {
    Ok(match kind {
        DocumentKind::IntegrationDefinition => keys::definition(id),
        DocumentKind::TenantIntegration => keys::tenant_integration(tenant, id),
        DocumentKind::Connection => keys::connection(tenant, id),
        DocumentKind::ConversionSchema => keys::schema_head(tenant, id),
        DocumentKind::SyncTask => keys::task(tenant, id),
        DocumentKind::WebhookRoute => keys::webhook_route(id),
    })
}

/// The stored document of one item, as JSON (`tenant` is ignored for definitions; `system`
/// names system-scope connections).
pub async fn get(
    ports: &Ports,
    kind: DocumentKind,
    tenant: &str,
    id: &str,
) -> Result<Value, ConfigError> {
    if kind == DocumentKind::SyncTask {
        let sync = hub_sync::SyncService::new(ports.clone());
        return to_value(&sync.get_task(&tenant_id(tenant)?, id).await?, kind, id);
    }
    if kind == DocumentKind::WebhookRoute {
        // Routes live outside the tenant partition: the tenant is checked, not keyed on.
        return match get_route(&*ports.state, id).await? {
            Some(route) if route.tenant_id.as_str() == tenant => to_value(&route, kind, id),
            _ => Err(ConfigError::NotFound {
                kind,
                id: id.to_owned(),
            }),
        };
    }
    let item = ports
        .state
        .get(&key_of(kind, tenant, id)?)
        .await?
        .ok_or_else(|| ConfigError::NotFound {
            kind,
            id: id.to_owned(),
        })?;
    document_value(&item, kind, id)
}

/// Every stored document of a kind (of one tenant, except definitions), in id order.
pub async fn list(
    ports: &Ports,
    kind: DocumentKind,
    tenant: &str,
) -> Result<Vec<Value>, ConfigError> {
    if kind == DocumentKind::SyncTask {
        let sync = hub_sync::SyncService::new(ports.clone());
        let tasks = sync.list_tasks(&tenant_id(tenant)?).await?;
        return tasks.iter().map(|t| to_value(t, kind, &t.id)).collect();
    }
    if kind == DocumentKind::WebhookRoute {
        let routes = list_routes(&*ports.state, tenant).await?;
        return routes
            .iter()
            .map(|route| to_value(route, kind, route.id.as_str()))
            .collect();
    }
    let request = match kind {
        DocumentKind::IntegrationDefinition => {
            QueryRequest::partition(Index::Gsi1, keys::DEFINITIONS_INDEX)
        }
        _ => {
            let prefix = match kind {
                DocumentKind::TenantIntegration => keys::prefix::TENANT_INTEGRATION,
                DocumentKind::Connection => keys::prefix::CONNECTION,
                DocumentKind::ConversionSchema => keys::prefix::SCHEMA,
                DocumentKind::SyncTask
                | DocumentKind::IntegrationDefinition
                | DocumentKind::WebhookRoute => keys::prefix::TASK,
            };
            QueryRequest::partition(Index::Primary, keys::tenant_partition(tenant))
                .sort(SortCondition::BeginsWith(prefix.to_owned()))
        }
    };
    let mut documents = Vec::new();
    let mut start = None;
    loop {
        let page = ports
            .state
            .query(request.clone().start_after(start))
            .await?;
        for item in &page.items {
            let id = item.get("sk").and_then(Value::as_str).unwrap_or_default();
            documents.push(document_value(item, kind, id)?);
        }
        start = page.last_evaluated_key;
        if start.is_none() {
            return Ok(documents);
        }
    }
}

fn tenant_id(tenant: &str) -> Result<TenantId, ConfigError> {
    TenantId::parse(tenant).map_err(|message| ConfigError::Invalid {
        file: "--tenant".into(),
        error: hub_core::model::JsonPath::root().invalid(message).into(),
    })
}

fn to_value<T: Serialize>(
    document: &T,
    kind: DocumentKind,
    id: &str,
) -> Result<Value, ConfigError> {
    serde_json::to_value(document).map_err(|e| ConfigError::Corrupt {
        kind,
        id: id.to_owned(),
        error: hub_core::model::ModelError::Encode {
            kind: "document",
            message: e.to_string(),
        },
    })
}
