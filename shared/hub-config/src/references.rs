//! Cross-references between documents: a task names its conversion schema and tenant
//! integration, a tenant integration its definition and connection, a connection its
//! definition. A document naming one that is neither stored nor in the same apply would be
//! stored and then fail every run, so the whole apply is refused before anything is stored.

use hub_core::keys;
use hub_core::model::TenantId;
use hub_core::ports::{Key, Ports};

use crate::{Applied, ConfigDocument, ConfigError, DocumentKind, apply};

/// The owner segment of system-scope connections (as `keys::connection` is given it).
const SYSTEM: &str = "system";

/// One document's reference to another, with the JSON path (in the referring document's
/// envelope) of the field that names it.
struct Reference<'a> {
    kind: DocumentKind,
    /// The tenant the target must belong to; `None` for definitions (system-wide).
    tenant: Option<&'a TenantId>,
    id: &'a str,
    field: &'static str,
}

fn references(document: &ConfigDocument) -> Vec<Reference<'_>> {
    match document {
        ConfigDocument::Task { tenant, task } => {
            let mut references = vec![Reference {
                kind: DocumentKind::ConversionSchema,
                tenant: Some(tenant),
                id: &task.conversion_schema_id,
                field: "spec.conversionSchemaId",
            }];
            // Parsing refuses a task without one; an absent id has nothing to check.
            if let Some(integration) = &task.tenant_integration_id {
                references.push(Reference {
                    kind: DocumentKind::TenantIntegration,
                    tenant: Some(tenant),
                    id: integration,
                    field: "spec.tenantIntegrationId",
                });
            }
            references
        }
        ConfigDocument::TenantIntegration { integration, .. } => {
            let mut references = vec![Reference {
                kind: DocumentKind::IntegrationDefinition,
                tenant: None,
                id: &integration.integration_id,
                field: "spec.integrationId",
            }];
            if let Some(connection) = &integration.connection_id {
                references.push(Reference {
                    kind: DocumentKind::Connection,
                    tenant: Some(&integration.tenant_id),
                    id: connection.as_str(),
                    field: "spec.connectionId",
                });
            }
            references
        }
        ConfigDocument::Connection { connection, .. } => vec![Reference {
            kind: DocumentKind::IntegrationDefinition,
            tenant: None,
            id: &connection.integration_id,
            field: "spec.integrationId",
        }],
        ConfigDocument::Definition(_)
        | ConfigDocument::Schema { .. }
        | ConfigDocument::WebhookRoute { .. } => Vec::new(),
    }
}

/// Whether `document` is the target of `reference`. A tenant's connection may also be a
/// system-scope one, as the fetcher resolves it.
fn provides(document: &ConfigDocument, reference: &Reference<'_>) -> bool {
    if document.kind() != reference.kind || document.id() != reference.id {
        return false;
    }
    match document {
        ConfigDocument::Definition(_) => true,
        ConfigDocument::TenantIntegration { integration, .. } => {
            Some(&integration.tenant_id) == reference.tenant
        }
        ConfigDocument::Connection { connection, .. } => match &connection.tenant_id {
            None => true,
            owner => owner.as_ref() == reference.tenant,
        },
        ConfigDocument::Schema { tenant, .. } => Some(tenant) == reference.tenant,
        ConfigDocument::Task { .. } | ConfigDocument::WebhookRoute { .. } => false,
    }
}

/// Where a stored target would be, in the order to look.
fn stored_keys(reference: &Reference<'_>) -> Vec<Key> {
    let tenant = reference.tenant.map_or(SYSTEM, TenantId::as_str);
    match reference.kind {
        DocumentKind::IntegrationDefinition => vec![keys::definition(reference.id)],
        DocumentKind::TenantIntegration => vec![keys::tenant_integration(tenant, reference.id)],
        DocumentKind::Connection => vec![
            keys::connection(tenant, reference.id),
            keys::connection(SYSTEM, reference.id),
        ],
        DocumentKind::ConversionSchema => vec![keys::schema_head(tenant, reference.id)],
        DocumentKind::SyncTask => vec![keys::task(tenant, reference.id)],
        DocumentKind::WebhookRoute => vec![keys::webhook_route(reference.id)],
    }
}

/// Refuses the first document (in the given order) naming a document that is neither among
/// `documents` nor stored. `documents` pairs each document with the file it came from.
pub async fn check_references(
    ports: &Ports,
    documents: &[(String, ConfigDocument)],
) -> Result<(), ConfigError> {
    for (file, document) in documents {
        for reference in references(document) {
            if documents
                .iter()
                .any(|(_, other)| provides(other, &reference))
            {
                continue;
            }
            let mut stored = false;
            for key in stored_keys(&reference) {
                if ports.state.get(&key).await?.is_some() {
                    stored = true;
                    break;
                }
            }
            if !stored {
                return Err(ConfigError::UnknownReference {
                    file: file.clone(),
                    kind: document.kind(),
                    id: document.id(),
                    field: reference.field,
                    target: reference.kind,
                    target_id: reference.id.to_owned(),
                    scope: match reference.tenant {
                        Some(tenant) => format!("tenant `{tenant}`"),
                        None => "the system".to_owned(),
                    },
                });
            }
        }
    }
    Ok(())
}

/// Orders an apply so that a document comes after those it can name (definitions, connections,
/// integrations, schemas, tasks, routes), keeping the given order within a kind: should storing
/// stop half-way, what is stored names only what is stored.
pub fn sort_for_apply(documents: &mut [(String, ConfigDocument)]) {
    documents.sort_by_key(|(_, document)| document.kind().apply_rank());
}

/// The whole of an apply: every cross-reference checked first, then each document stored in
/// dependency order. Nothing is stored when a reference is missing.
pub async fn apply_all(
    ports: &Ports,
    mut documents: Vec<(String, ConfigDocument)>,
) -> Result<Vec<(String, Applied)>, ConfigError> {
    check_references(ports, &documents).await?;
    sort_for_apply(&mut documents);
    let mut applied = Vec::with_capacity(documents.len());
    for (file, document) in documents {
        let outcome = apply(ports, &document).await?;
        applied.push((file, outcome));
    }
    Ok(applied)
}
