//! Applying config documents on the embedded backend.

use std::sync::Arc;

use hub_config::{
    ApplyAction, ConfigError, DocumentKind, apply, get, list, parse_documents, schema_version,
};
use hub_core::ports::{Ports, SystemClock, Topology};
use serde_json::{Value, json};

async fn ports(dir: &std::path::Path) -> Ports {
    let dir = dir.to_owned();
    tokio::task::spawn_blocking(move || {
        hub_embedded::EmbeddedBackend::open(&dir, &Topology::default(), Arc::new(SystemClock))
    })
    .await
    .unwrap()
    .unwrap()
}

fn seed_schema() -> Value {
    let text = include_str!(
        "../../hub-core/tests/fixtures/seed/conversion-schema.sf-contact-to-contact.json"
    );
    serde_json::from_str(text).unwrap()
}

fn schema_document(spec: Value) -> String {
    json!({"kind": "ConversionSchema", "tenantId": "acme", "spec": spec}).to_string()
}

#[tokio::test]
async fn a_changed_schema_is_a_new_version_and_an_unchanged_one_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let ports = ports(dir.path()).await;
    let first = &parse_documents(&schema_document(seed_schema())).unwrap()[0];
    let applied = apply(&ports, first).await.unwrap();
    assert_eq!(
        (applied.action, applied.version),
        (ApplyAction::Created, Some(1))
    );
    let again = apply(&ports, first).await.unwrap();
    assert_eq!(
        (again.action, again.version),
        (ApplyAction::Unchanged, Some(1))
    );

    let mut changed = seed_schema();
    changed["name"] = json!("Contacts v2");
    let second = &parse_documents(&schema_document(changed)).unwrap()[0];
    let applied = apply(&ports, second).await.unwrap();
    assert_eq!(
        (applied.action, applied.version),
        (ApplyAction::Updated, Some(2))
    );

    let v1 = schema_version(&*ports.state, "acme", "sf-contact-to-contact", 1)
        .await
        .unwrap();
    let v2 = schema_version(&*ports.state, "acme", "sf-contact-to-contact", 2)
        .await
        .unwrap();
    assert_eq!(
        (v1.name.as_str(), v1.version),
        ("Salesforce Contact to Contact", Some(1))
    );
    assert_eq!((v2.name.as_str(), v2.version), ("Contacts v2", Some(2)));
    let head = get(
        &ports,
        DocumentKind::ConversionSchema,
        "acme",
        "sf-contact-to-contact",
    )
    .await
    .unwrap();
    assert_eq!(head["version"], 2);
    assert_eq!(
        list(&ports, DocumentKind::ConversionSchema, "acme")
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(matches!(
        schema_version(&*ports.state, "acme", "sf-contact-to-contact", 3).await,
        Err(ConfigError::NotFound { .. })
    ));
}

#[tokio::test]
async fn connection_credentials_go_to_the_secret_store_only() {
    let dir = tempfile::tempdir().unwrap();
    let ports = ports(dir.path()).await;
    let document = json!({
        "kind": "Connection",
        "spec": {
            "id": "crm-main", "integrationId": "sample", "scope": "tenant", "tenantId": "acme",
            "authType": "api_key", "credentialsRef": "hub/acme/crm-main", "status": "active"
        },
        "credentials": {"type": "api_key", "apiKey": "sk-very-secret-123"}
    })
    .to_string();
    let parsed = parse_documents(&document).unwrap();
    assert!(
        !format!("{parsed:?}").contains("sk-very-secret-123"),
        "Debug redacts credentials"
    );
    assert_eq!(
        apply(&ports, &parsed[0]).await.unwrap().action,
        ApplyAction::Created
    );
    assert_eq!(
        apply(&ports, &parsed[0]).await.unwrap().action,
        ApplyAction::Unchanged
    );

    let stored = get(&ports, DocumentKind::Connection, "acme", "crm-main")
        .await
        .unwrap();
    assert_eq!(stored["credentialsRef"], "hub/acme/crm-main");
    assert!(!stored.to_string().contains("sk-very-secret"));
    let secret = ports
        .secrets
        .get("hub/acme/crm-main")
        .await
        .unwrap()
        .unwrap();
    use secrecy::ExposeSecret;
    assert!(secret.value.expose_secret().contains("sk-very-secret-123"));

    let rotated = document.replace("sk-very-secret-123", "sk-rotated-456");
    let applied = apply(&ports, &parse_documents(&rotated).unwrap()[0])
        .await
        .unwrap();
    assert_eq!(applied.action, ApplyAction::Updated);
    let secret = ports
        .secrets
        .get("hub/acme/crm-main")
        .await
        .unwrap()
        .unwrap();
    assert!(secret.value.expose_secret().contains("sk-rotated-456"));
}

#[tokio::test]
async fn definitions_and_integrations_are_listed() {
    let dir = tempfile::tempdir().unwrap();
    let ports = ports(dir.path()).await;
    let openai: Value = serde_json::from_str(include_str!(
        "../../hub-core/tests/fixtures/seed/integration-definition.openai.json"
    ))
    .unwrap();
    let documents = json!([
        {"kind": "IntegrationDefinition", "spec": openai},
        {"kind": "TenantIntegration", "tenantId": "acme", "spec": {"id": "ti-1", "integrationId": "openai", "status": "pending"}}
    ])
    .to_string();
    for document in parse_documents(&documents).unwrap() {
        assert_eq!(
            apply(&ports, &document).await.unwrap().action,
            ApplyAction::Created
        );
    }
    let definitions = list(&ports, DocumentKind::IntegrationDefinition, "")
        .await
        .unwrap();
    assert_eq!(definitions[0]["id"], "openai");
    let integrations = list(&ports, DocumentKind::TenantIntegration, "acme")
        .await
        .unwrap();
    assert_eq!(integrations[0]["tenantId"], "acme");
    assert!(
        list(&ports, DocumentKind::TenantIntegration, "other")
            .await
            .unwrap()
            .is_empty()
    );
}

#[test]
fn bad_documents_name_the_json_path() {
    let mut schema = seed_schema();
    schema["fieldMappings"][2]["config"]["transformations"][0]["type"] = json!("truncate");
    let error = parse_documents(&schema_document(schema)).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("spec.fieldMappings[2].config.transformations[0].config"),
        "{error}"
    );

    let in_array = json!([
        {"kind": "ConversionSchema", "tenantId": "acme", "spec": seed_schema()},
        {"kind": "Widget", "spec": {}}
    ]);
    let error = parse_documents(&in_array.to_string()).unwrap_err();
    assert!(error.to_string().starts_with("[1].kind"), "{error}");

    let no_tenant = json!({"kind": "ConversionSchema", "spec": seed_schema()});
    assert!(
        parse_documents(&no_tenant.to_string())
            .unwrap_err()
            .to_string()
            .starts_with("tenantId")
    );
}

#[test]
fn files_are_named_in_errors() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("a-good.json"),
        schema_document(seed_schema()),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("b-bad.json"),
        "{\"kind\": \"SyncTask\", \"tenantId\": \"acme\", \"spec\": {\"id\": 5}}",
    )
    .unwrap();
    let error = hub_config::load_path(dir.path()).unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("b-bad.json") && message.contains("spec.id"),
        "{message}"
    );
    assert_eq!(error.code(), "invalid_document");
    std::fs::remove_file(dir.path().join("b-bad.json")).unwrap();
    assert_eq!(hub_config::load_path(dir.path()).unwrap().len(), 1);
}

#[tokio::test]
async fn tasks_are_stored_through_the_sync_service() {
    let dir = tempfile::tempdir().unwrap();
    let ports = ports(dir.path()).await;
    let mut task: Value = serde_json::from_str(include_str!(
        "../../hub-core/tests/fixtures/seed/sync-task.sf-opp-hourly.json"
    ))
    .unwrap();
    let document =
        |task: &Value| json!({"kind": "SyncTask", "tenantId": "acme", "spec": task}).to_string();
    let error = parse_documents(&document(&task)).unwrap_err();
    assert!(
        error.to_string().starts_with("spec.tenantIntegrationId"),
        "{error}"
    );

    task["tenantIntegrationId"] = json!("ti-1");
    let parsed = parse_documents(&document(&task)).unwrap();
    assert_eq!(
        apply(&ports, &parsed[0]).await.unwrap().action,
        ApplyAction::Created
    );
    assert_eq!(
        apply(&ports, &parsed[0]).await.unwrap().action,
        ApplyAction::Unchanged
    );
    task["name"] = json!("Opportunities, renamed");
    let renamed = parse_documents(&document(&task)).unwrap();
    assert_eq!(
        apply(&ports, &renamed[0]).await.unwrap().action,
        ApplyAction::Updated
    );
    let stored = get(&ports, DocumentKind::SyncTask, "acme", "sf-opp-hourly")
        .await
        .unwrap();
    assert!(
        stored["nextRunAt"].is_string(),
        "the sync service schedules it: {stored}"
    );
    assert_eq!(
        list(&ports, DocumentKind::SyncTask, "acme")
            .await
            .unwrap()
            .len(),
        1
    );
}

fn route_document(spec: Value) -> String {
    json!({"kind": "WebhookRoute", "tenantId": "acme", "spec": spec}).to_string()
}

fn route_spec() -> Value {
    json!({
        "tenantIntegrationId": "ti-github",
        "integrationId": "github",
        "config": {"scheme": {"type": "github"}, "secrets": ["hub/acme/github-webhook"]}
    })
}

#[tokio::test]
async fn a_webhook_route_gets_an_unguessable_id_and_is_updated_in_place_once_it_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let ports = ports(dir.path()).await;
    let first = &parse_documents(&route_document(route_spec())).unwrap()[0];
    let second = &parse_documents(&route_document(route_spec())).unwrap()[0];
    assert_eq!(first.kind(), DocumentKind::WebhookRoute);
    assert_ne!(
        first.id(),
        second.id(),
        "each document without an id is a new route"
    );
    assert!(
        first.id().starts_with("rt_") && first.id().len() >= 32,
        "{}",
        first.id()
    );

    let applied = apply(&ports, first).await.unwrap();
    assert_eq!(applied.action, ApplyAction::Created);
    assert_eq!(
        applied.path.as_deref(),
        Some(format!("/webhooks/{}", first.id()).as_str())
    );

    let mut named = route_spec();
    named["id"] = json!(first.id());
    let again = &parse_documents(&route_document(named.clone())).unwrap()[0];
    assert_eq!(
        apply(&ports, again).await.unwrap().action,
        ApplyAction::Unchanged
    );
    named["dedupWindowDays"] = json!(7);
    let changed = &parse_documents(&route_document(named)).unwrap()[0];
    assert_eq!(
        apply(&ports, changed).await.unwrap().action,
        ApplyAction::Updated
    );

    let stored = get(&ports, DocumentKind::WebhookRoute, "acme", &first.id())
        .await
        .unwrap();
    assert_eq!(stored["dedupWindowDays"], 7);
    assert_eq!(stored["tenantId"], "acme");
    assert!(stored["createdAt"].is_string());
    let other_tenant = get(&ports, DocumentKind::WebhookRoute, "globex", &first.id()).await;
    assert_eq!(other_tenant.unwrap_err().code(), "not_found");
    let listed = list(&ports, DocumentKind::WebhookRoute, "acme")
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        DocumentKind::from_cli_name("routes"),
        Some(DocumentKind::WebhookRoute)
    );
}

#[tokio::test]
async fn a_webhook_route_is_refused_at_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let ports = ports(dir.path()).await;
    let mut guessable = route_spec();
    guessable["id"] = json!("github");
    let error = parse_documents(&route_document(guessable)).unwrap_err();
    assert!(error.to_string().starts_with("spec.id"), "{error}");

    let mut foreign_secret = route_spec();
    foreign_secret["config"]["secrets"] = json!(["hub/globex/github-webhook"]);
    let error = parse_documents(&route_document(foreign_secret)).unwrap_err();
    assert!(
        error.to_string().starts_with("spec.config.secrets[0]"),
        "{error}"
    );

    let no_tenant = json!({"kind": "WebhookRoute", "spec": route_spec()}).to_string();
    assert!(parse_documents(&no_tenant).is_err());

    // A route id belongs to the tenant that created it.
    let mut taken = route_spec();
    taken["id"] = json!("rt_0123456789abcdef0123456789abcdef");
    apply(
        &ports,
        &parse_documents(&route_document(taken.clone())).unwrap()[0],
    )
    .await
    .unwrap();
    taken["config"]["secrets"] = json!(["hub/globex/github-webhook"]);
    let hijack = json!({"kind": "WebhookRoute", "tenantId": "globex", "spec": taken}).to_string();
    let error = apply(&ports, &parse_documents(&hijack).unwrap()[0])
        .await
        .unwrap_err();
    assert_eq!(error.code(), "route_owned_by_another_tenant");
}

#[tokio::test]
async fn a_webhook_route_document_can_bring_its_secret_values() {
    let dir = tempfile::tempdir().unwrap();
    let ports = ports(dir.path()).await;
    let document = |secrets: Value| {
        json!({"kind": "WebhookRoute", "tenantId": "acme", "spec": route_spec(), "secrets": secrets})
            .to_string()
    };
    let error = parse_documents(&document(json!({"hub/acme/other": "x"}))).unwrap_err();
    assert!(
        error.to_string().starts_with("secrets.hub/acme/other"),
        "{error}"
    );
    let error = parse_documents(&document(json!({"hub/acme/github-webhook": ""}))).unwrap_err();
    assert!(error.to_string().contains("non-empty"), "{error}");
    let schema_with_secrets = json!({"kind": "ConversionSchema", "tenantId": "acme", "spec": seed_schema(), "secrets": {}});
    assert!(parse_documents(&schema_with_secrets.to_string()).is_err());

    let parsed =
        &parse_documents(&document(json!({"hub/acme/github-webhook": "s3cr3t"}))).unwrap()[0];
    assert!(
        !format!("{parsed:?}").contains("s3cr3t"),
        "Debug hides secret values"
    );
    assert_eq!(
        apply(&ports, parsed).await.unwrap().action,
        ApplyAction::Created
    );
    let stored = ports
        .secrets
        .get("hub/acme/github-webhook")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        secrecy::ExposeSecret::expose_secret(&stored.value),
        "s3cr3t"
    );
    assert_eq!(
        apply(&ports, parsed).await.unwrap().action,
        ApplyAction::Unchanged
    );
}

fn demo_schema() -> Value {
    let document: Value =
        serde_json::from_str(include_str!("../../../infra/demo/40-schema-contact.json")).unwrap();
    document["spec"].clone()
}

/// The three schemas of issue 13 that `hub apply` stored and the compiler refuses: each is
/// refused while parsing, with the compiler's code and the JSON path from the file's root.
#[test]
fn schemas_the_engine_cannot_compile_are_refused_with_its_code_and_path() {
    let mut bad_regex = demo_schema();
    bad_regex["fieldMappings"][3]["config"]["transformations"][0] =
        json!({"type": "regex_replace", "config": {"pattern": "(unclosed", "replace": ""}});
    let mut filter = demo_schema();
    filter["fieldMappings"][0]["config"]["sourceField"] = json!("$.emails[?(@.primary)].address");
    let mut malformed = demo_schema();
    malformed["fieldMappings"][2]["config"]["sourceField"] = json!("job..title");
    for (schema, code, path) in [
        (
            bad_regex,
            "invalid_regex",
            "spec.fieldMappings[3].config.transformations[0].config.pattern",
        ),
        (
            filter,
            "invalid_path",
            "spec.fieldMappings[0].config.sourceField",
        ),
        (
            malformed,
            "invalid_path",
            "spec.fieldMappings[2].config.sourceField",
        ),
    ] {
        let in_array = json!([
            {"kind": "ConversionSchema", "tenantId": "acme", "spec": demo_schema()},
            {"kind": "ConversionSchema", "tenantId": "acme", "spec": schema}
        ]);
        let error = parse_documents(&in_array.to_string()).unwrap_err();
        assert_eq!(error.code(), code, "{error}");
        assert!(
            error.to_string().starts_with(&format!("[1].{path}: ")),
            "{error}"
        );
    }
}

/// The demo's documents (infra/demo), by file name.
fn demo_documents(files: &[&str]) -> Vec<(String, hub_config::ConfigDocument)> {
    let all = [
        (
            "10-definition.json",
            include_str!("../../../infra/demo/10-definition.json"),
        ),
        (
            "20-connection.json",
            include_str!("../../../infra/demo/20-connection.json"),
        ),
        (
            "30-integration.json",
            include_str!("../../../infra/demo/30-integration.json"),
        ),
        (
            "40-schema-contact.json",
            include_str!("../../../infra/demo/40-schema-contact.json"),
        ),
        (
            "50-task-contacts.json",
            include_str!("../../../infra/demo/50-task-contacts.json"),
        ),
    ];
    files
        .iter()
        .flat_map(|file| {
            let (_, text) = all.iter().find(|(name, _)| name == file).unwrap();
            parse_documents(text)
                .unwrap()
                .into_iter()
                .map(|document| (file.to_string(), document))
        })
        .collect()
}

#[tokio::test]
async fn a_task_naming_what_is_neither_stored_nor_applied_with_it_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ports = ports(dir.path()).await;
    for (files, file, field, missing) in [
        (
            &["50-task-contacts.json"][..],
            "50-task-contacts.json",
            "spec.conversionSchemaId",
            "ConversionSchema `sample-contact` of tenant `demo`",
        ),
        (
            &["40-schema-contact.json", "50-task-contacts.json"],
            "50-task-contacts.json",
            "spec.tenantIntegrationId",
            "TenantIntegration `sample-crm` of tenant `demo`",
        ),
        (
            &[
                "30-integration.json",
                "40-schema-contact.json",
                "50-task-contacts.json",
            ],
            "30-integration.json",
            "spec.integrationId",
            "IntegrationDefinition `sample` of the system",
        ),
        (
            &["10-definition.json", "30-integration.json"],
            "30-integration.json",
            "spec.connectionId",
            "Connection `sample-api` of tenant `demo`",
        ),
    ] {
        let error = hub_config::apply_all(&ports, demo_documents(files))
            .await
            .unwrap_err();
        assert_eq!(error.code(), "unknown_reference", "{error}");
        let message = error.to_string();
        assert!(
            message.starts_with(&format!("{file}: "))
                && message.contains(&format!("{field}: no {missing} ")),
            "{message}"
        );
        for kind in DocumentKind::ALL {
            let tenant = if kind == DocumentKind::IntegrationDefinition {
                ""
            } else {
                "demo"
            };
            assert!(
                list(&ports, kind, tenant).await.unwrap().is_empty(),
                "{kind} stored by a refused apply"
            );
        }
    }

    // Given in any order, the documents of one apply satisfy one another.
    let mut everything = demo_documents(&[
        "50-task-contacts.json",
        "40-schema-contact.json",
        "30-integration.json",
        "20-connection.json",
        "10-definition.json",
    ]);
    let applied = hub_config::apply_all(&ports, everything.clone())
        .await
        .unwrap();
    let kinds: Vec<DocumentKind> = applied.iter().map(|(_, a)| a.kind).collect();
    assert_eq!(
        kinds,
        [
            DocumentKind::IntegrationDefinition,
            DocumentKind::Connection,
            DocumentKind::TenantIntegration,
            DocumentKind::ConversionSchema,
            DocumentKind::SyncTask
        ],
        "stored after what it names"
    );
    // Stored, they satisfy a later apply of the task alone.
    everything.retain(|(_, document)| document.kind() == DocumentKind::SyncTask);
    hub_config::apply_all(&ports, everything).await.unwrap();
}

/// `hub dev --demo` re-applies the demo on every start: documents that did not change are
/// reported unchanged, are not rewritten, and keep the times they were created and enabled.
#[tokio::test]
async fn re_applying_unchanged_documents_changes_nothing_and_keeps_their_times() {
    let dir = tempfile::tempdir().unwrap();
    let ports = ports(dir.path()).await;
    let files = [
        "10-definition.json",
        "20-connection.json",
        "30-integration.json",
        "40-schema-contact.json",
        "50-task-contacts.json",
    ];
    let created = hub_config::apply_all(&ports, demo_documents(&files))
        .await
        .unwrap();
    assert!(
        created
            .iter()
            .all(|(_, a)| a.action == ApplyAction::Created),
        "{created:?}"
    );
    let stored = |kind, id: &'static str| {
        let ports = ports.clone();
        async move { get(&ports, kind, "demo", id).await.unwrap() }
    };
    let integration = stored(DocumentKind::TenantIntegration, "sample-crm").await;
    let connection = stored(DocumentKind::Connection, "sample-api").await;
    let task = stored(DocumentKind::SyncTask, "sample-contacts").await;

    // Parsed again later, as on a restart: the apply-time defaults (`now`) differ.
    std::thread::sleep(std::time::Duration::from_millis(20));
    let again = hub_config::apply_all(&ports, demo_documents(&files))
        .await
        .unwrap();
    assert!(
        again
            .iter()
            .all(|(_, a)| a.action == ApplyAction::Unchanged),
        "{again:?}"
    );
    assert_eq!(
        stored(DocumentKind::TenantIntegration, "sample-crm").await,
        integration
    );
    assert_eq!(
        stored(DocumentKind::Connection, "sample-api").await,
        connection
    );
    assert_eq!(
        stored(DocumentKind::SyncTask, "sample-contacts").await,
        task
    );

    // A change is an update that keeps when it was created and enabled.
    let changed = demo_documents(&["30-integration.json"])
        .into_iter()
        .map(|(file, _)| {
            let mut document: Value =
                serde_json::from_str(include_str!("../../../infra/demo/30-integration.json"))
                    .unwrap();
            document["spec"]["status"] = json!("error");
            (
                file,
                parse_documents(&document.to_string()).unwrap().remove(0),
            )
        })
        .collect();
    let updated = hub_config::apply_all(&ports, changed).await.unwrap();
    assert_eq!(updated[0].1.action, ApplyAction::Updated);
    let after = stored(DocumentKind::TenantIntegration, "sample-crm").await;
    assert_eq!(after["status"], "error");
    for field in ["createdAt", "enabledAt", "enabledBy"] {
        assert_eq!(after[field], integration[field], "{field}");
    }
    assert_ne!(after["updatedAt"], integration["updatedAt"]);
}
