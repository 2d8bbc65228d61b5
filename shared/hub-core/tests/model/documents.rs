//! The types the seed describes without examples: they round-trip, their rules hold, and
//! secrets stay out of `Debug` and error messages.

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use hub_core::model::{
    Credentials, ExternalRelationship, IntegrationConnection, IntegrationDefinition, ModelError,
    NewsStructuredData, OAuthState, ScheduleConfig, SecretRef, SyncConflict, SyncExecution,
    SyncLog, SyncTask, TenantAIConfig, TenantIntegration, load_value,
};

use super::{assert_round_trip, fixture_value};

fn full_definition() -> Value {
    json!({
        "id": "hubspot",
        "name": "hubspot",
        "displayName": "HubSpot",
        "description": "CRM",
        "category": "crm",
        "icon": "hubspot.svg",
        "color": "#ff7a59",
        "visibility": "public",
        "isPremium": true,
        "requiredPlan": "business",
        "capabilities": ["read", "write", "delete", "search", "realtime", "bulk", "attachments"],
        "supportedSyncDirections": ["pull", "push", "bidirectional"],
        "supportsRealtime": true,
        "supportsWebhooks": true,
        "authType": "oauth2",
        "oauthConfig": {
            "authorizationUrl": "https://app.hubspot.com/oauth/authorize",
            "tokenUrl": "https://api.hubapi.com/oauth/v1/token",
            "revokeUrl": "https://api.hubapi.com/oauth/v1/refresh-tokens",
            "scopes": ["crm.objects.contacts.read"],
            "clientId": "client-123",
            "clientSecretRef": "hub/system/oauth-hubspot",
            "redirectUri": "https://hub.example.com/oauth/callback",
            "pkce": true
        },
        "availableEntities": [{
            "name": "contacts",
            "displayName": "Contacts",
            "fields": [
                {"name": "email", "type": "string", "required": true},
                {"name": "lastmodifieddate", "displayName": "Modified", "type": "datetime", "readOnly": true}
            ],
            "supportsRead": true,
            "supportsWrite": true,
            "supportsWebhooks": true,
            "idField": "id",
            "modifiedField": "lastmodifieddate"
        }],
        "connectionScope": "tenant",
        "status": "beta",
        "version": "1.0.0"
    })
}

#[test]
fn a_full_integration_definition_round_trips() {
    let definition: IntegrationDefinition = assert_round_trip(&full_definition());
    assert!(definition.entity("contacts").is_some());
    let mut duplicate = full_definition();
    duplicate["availableEntities"][0]["fields"][1]["name"] = json!("email");
    let error = load_value::<IntegrationDefinition>(duplicate).unwrap_err();
    assert_eq!(
        error.path(),
        Some("availableEntities[0].fields[1].name"),
        "{error}"
    );
}

#[test]
fn every_mapping_type_transformation_and_rule_round_trips() {
    let schema = json!({
        "id": "everything",
        "tenantIntegrationId": "ti-1",
        "name": "Everything",
        "description": "one of each",
        "version": 3,
        "source": {"entity": "Thing", "filters": [
            {"field": "a", "operator": "neq", "value": null},
            {"field": "b", "operator": "gt", "value": 1},
            {"field": "c", "operator": "gte", "value": "2024-01-01"},
            {"field": "d", "operator": "lt", "value": 2.5},
            {"field": "e", "operator": "lte", "value": 3},
            {"field": "f", "operator": "contains", "value": "x"},
            {"field": "g", "operator": "starts_with", "value": "x"},
            {"field": "h", "operator": "ends_with", "value": "x"},
            {"field": "i", "operator": "not_in", "value": [1, 2]},
            {"field": "j", "operator": "exists"},
            {"field": "k", "operator": "not_exists"}
        ]},
        "target": {"shardTypeId": "c_thing", "createIfMissing": true, "updateIfExists": true, "deleteIfRemoved": true},
        "fieldMappings": [
            {"id": "m1", "targetField": "t1", "mappingType": "transform", "config": {
                "type": "transform", "sourceField": "s", "transformations": [
                    {"type": "uppercase"}, {"type": "lowercase"}, {"type": "trim"},
                    {"type": "truncate", "config": {"maxLength": 10}},
                    {"type": "replace", "config": {"search": "a", "replace": "b"}},
                    {"type": "regex_replace", "config": {"pattern": "\\s+", "replace": " "}},
                    {"type": "split", "config": {"separator": ",", "index": 1}},
                    {"type": "concat", "config": {"prefix": "<", "suffix": ">"}},
                    {"type": "round", "config": {"decimals": 2}},
                    {"type": "multiply", "config": {"factor": 100}},
                    {"type": "divide", "config": {"divisor": 0.5}},
                    {"type": "currency_convert", "config": {"from": "USD", "to": "EUR", "rates": {"EUR": 0.92}}},
                    {"type": "parse_date", "config": {"format": "%d/%m/%Y"}},
                    {"type": "format_date", "config": {"format": "%Y-%m-%d"}},
                    {"type": "add_days", "config": {"days": -7}},
                    {"type": "to_timestamp"}, {"type": "to_iso_string"}, {"type": "to_string"},
                    {"type": "to_number"}, {"type": "to_boolean"}, {"type": "to_array"},
                    {"type": "to_date"},
                    {"type": "custom", "config": {"expression": "value * 2"}}
                ]},
             "required": true,
             "validation": [
                {"type": "required"},
                {"type": "min_length", "value": 1, "message": "too short"},
                {"type": "max_length", "value": 80},
                {"type": "pattern", "value": "^[a-z]+$"},
                {"type": "min", "value": 0},
                {"type": "max", "value": 99.5},
                {"type": "email"},
                {"type": "url", "message": "a link"},
                {"type": "enum", "values": ["a", "b"]}
             ]},
            {"targetField": "t2", "mappingType": "conditional", "config": {"type": "conditional", "conditions": [
                {"condition": {"field": "x", "operator": "eq", "value": 1}, "then": {"type": "field", "sourceField": "y"}},
                {"condition": {"field": "x", "operator": "eq", "value": 2}, "then": {"type": "transform", "transformations": [{"type": "trim"}]}},
                {"condition": {"field": "x", "operator": "eq", "value": 3}, "then": {"type": "transform", "sourceField": "z", "transformations": [{"type": "uppercase"}]}}
            ], "default": null}},
            {"targetField": "t3", "mappingType": "composite", "config": {"type": "composite", "sourceFields": ["a", "b"], "separator": " - "}},
            {"targetField": "t4", "mappingType": "lookup", "config": {"type": "lookup", "sourceField": "Type", "values": {"Customer": "client", "Partner": "partner"}, "default": "other", "caseSensitive": false}},
            {"targetField": "t5", "mappingType": "default", "config": {"type": "default", "value": {"nested": [1, 2]}}}
        ],
        "relationshipMappings": [
            {"relationshipType": "has_many", "targetField": "contactIds", "sourceField": "Contacts", "lookupShardType": "c_contact", "lookupByExternalId": false, "lookupField": "email"}
        ],
        "deduplication": {"strategy": "composite", "matchFields": ["a", "b"]},
        "isActive": false,
        "createdAt": "2024-05-01T10:00:00Z",
        "updatedAt": "2024-05-02T10:00:00Z"
    });
    let loaded: hub_core::model::ConversionSchema = assert_round_trip(&schema);
    let hub_core::model::FieldMappingConfig::Lookup(lookup) = &loaded.field_mappings[3].config
    else {
        panic!("fourth mapping is a lookup");
    };
    assert!(!lookup.case_sensitive());
    // A config object is also accepted on a transformation that takes none.
    let mut with_empty_config = schema.clone();
    with_empty_config["fieldMappings"][0]["config"]["transformations"][0] =
        json!({"type": "uppercase", "config": {}});
    load_value::<hub_core::model::ConversionSchema>(with_empty_config).unwrap();
    let mut field_match = schema;
    field_match["deduplication"] =
        json!({"strategy": "field_match", "matchFields": ["email", "email"]});
    let error = load_value::<hub_core::model::ConversionSchema>(field_match).unwrap_err();
    assert_eq!(
        error.path(),
        Some("deduplication.matchFields[1]"),
        "{error}"
    );
}

#[test]
fn manual_and_realtime_schedules_round_trip_and_hide_the_token() {
    let mut task = fixture_value("sync-task.sf-contact-daily.json");
    task["schedule"] = json!({"type": "manual", "config": {"type": "manual"}});
    assert_round_trip::<SyncTask>(&task);

    task["schedule"] = json!({"type": "realtime", "config": {
        "type": "realtime",
        "webhookUrl": "https://hub.example.com/webhooks/sf",
        "verificationToken": "tok-very-secret",
        "reconciliation": {"type": "cron", "expression": "0 3 * * *", "timezone": "Europe/Paris"}
    }});
    task["stats"] = json!({
        "totalRuns": 2, "successfulRuns": 1, "failedRuns": 1,
        "lastSuccessAt": "2024-05-01T02:00:00Z", "lastFailureAt": "2024-05-02T02:00:00Z",
        "recordsProcessed": 10, "recordsCreated": 5, "recordsUpdated": 3, "recordsSkipped": 1, "recordsFailed": 1
    });
    task["lastError"] = json!({"message": "timeout", "timestamp": "2024-05-02T02:00:00Z", "details": {"status": 504}});
    task["lastRunAt"] = json!("2024-05-02T02:00:00Z");
    task["lastRunStatus"] = json!("failed");
    task["nextRunAt"] = json!("2024-05-03T02:00:00Z");
    task["tenantIntegrationId"] = json!("ti-1");
    task["createdBy"] = json!("user-1");
    task["createdAt"] = json!("2024-05-01T00:00:00Z");
    task["updatedAt"] = json!("2024-05-01T00:00:00Z");
    let loaded: SyncTask = assert_round_trip(&task);
    let ScheduleConfig::Realtime(realtime) = &loaded.schedule.config else {
        panic!("realtime");
    };
    assert!(realtime.verification_token.matches("tok-very-secret"));
    assert!(!format!("{loaded:?}").contains("tok-very-secret"));

    task["schedule"]["config"]["reconciliation"] = json!({"type": "manual"});
    let error = load_value::<SyncTask>(task).unwrap_err();
    assert_eq!(
        error.path(),
        Some("schedule.config.reconciliation"),
        "{error}"
    );
}

fn tenant_integration() -> Value {
    json!({
        "id": "ti-1",
        "tenantId": "acme",
        "integrationId": "salesforce",
        "status": "connected",
        "enabledAt": "2024-05-01T00:00:00Z",
        "enabledBy": "admin-1",
        "connectionId": "conn-1",
        "lastConnectedAt": "2024-05-01T00:05:00Z",
        "settings": {"instanceUrl": "https://acme.my.salesforce.com"},
        "syncTasks": [fixture_value("sync-task.sf-contact-daily.json")],
        "conversionSchemas": [fixture_value("conversion-schema.sf-contact-to-contact.json")],
        "createdAt": "2024-05-01T00:00:00Z",
        "updatedAt": "2024-05-01T00:00:00Z"
    })
}

#[test]
fn tenant_integration_checks_its_tasks_against_its_schemas() {
    assert_round_trip::<TenantIntegration>(&tenant_integration());
    let mut orphan = tenant_integration();
    orphan["syncTasks"][0]["conversionSchemaId"] = json!("sf-opportunity");
    let error = load_value::<TenantIntegration>(orphan).unwrap_err();
    assert_eq!(
        error.path(),
        Some("syncTasks[0].conversionSchemaId"),
        "{error}"
    );
    let mut bad_tenant = tenant_integration();
    bad_tenant["tenantId"] = json!("acme#admin");
    let error = load_value::<TenantIntegration>(bad_tenant).unwrap_err();
    assert_eq!(
        (error.code(), error.path()),
        ("invalid_document", Some("tenantId"))
    );
}

#[test]
fn tenant_ai_config_references_its_own_secrets() {
    let config = json!({
        "tenantId": "acme",
        "defaultModels": {"llm": "gpt-4o", "embedding": "text-embedding-3-small", "imageGeneration": "dall-e-3", "textToSpeech": "tts-1"},
        "customCredentials": [{"provider": "azure-openai", "credentialsRef": "hub/acme/ai-azure", "endpoint": "https://acme.openai.azure.com"}],
        "useSystemCredentials": false
    });
    assert_round_trip::<TenantAIConfig>(&config);
    let mut foreign = config;
    foreign["customCredentials"][0]["credentialsRef"] = json!("hub/globex/ai-azure");
    let error = load_value::<TenantAIConfig>(foreign).unwrap_err();
    assert_eq!(
        error.path(),
        Some("customCredentials[0].credentialsRef"),
        "{error}"
    );
}

fn connection() -> Value {
    json!({
        "id": "conn-1",
        "integrationId": "salesforce",
        "scope": "tenant",
        "tenantId": "acme",
        "authType": "oauth2",
        "credentialsRef": "hub/acme/conn-1",
        "oauth": {"tokenType": "Bearer", "expiresAt": "2024-05-01T01:00:00Z", "scope": ["api", "refresh_token"]},
        "status": "active",
        "lastValidatedAt": "2024-05-01T00:10:00Z",
        "displayName": "john@acme.com's Salesforce",
        "createdBy": "admin-1",
        "createdAt": "2024-05-01T00:00:00Z",
        "updatedAt": "2024-05-01T00:00:00Z"
    })
}

#[test]
fn connections_hold_a_matching_secret_reference_and_no_secret() {
    let loaded: IntegrationConnection = assert_round_trip(&connection());
    assert_eq!(
        loaded.expected_credentials_ref(),
        SecretRef::parse("hub/acme/conn-1").unwrap()
    );

    let mut elsewhere = connection();
    elsewhere["credentialsRef"] = json!("hub/acme/conn-2");
    let error = load_value::<IntegrationConnection>(elsewhere).unwrap_err();
    assert_eq!(error.path(), Some("credentialsRef"), "{error}");

    let mut system = connection();
    system["scope"] = json!("system");
    let error = load_value::<IntegrationConnection>(system.clone()).unwrap_err();
    assert_eq!(error.path(), Some("tenantId"), "{error}");
    system.as_object_mut().unwrap().remove("tenantId");
    system["credentialsRef"] = json!("hub/system/conn-1");
    assert_round_trip::<IntegrationConnection>(&system);

    let mut with_token = connection();
    with_token["oauth"]["accessToken"] = json!("ya29.secret");
    let error = load_value::<IntegrationConnection>(with_token).unwrap_err();
    assert_eq!(
        error.path(),
        Some("oauth.accessToken"),
        "tokens have no place here: {error}"
    );
}

#[test]
fn credentials_round_trip_through_the_secret_store_format() {
    let documents = [
        json!({"type": "api_key", "apiKey": "sk-live-1"}),
        json!({"type": "basic", "username": "svc", "password": "hunter2"}),
        json!({"type": "oauth2", "clientId": "cid", "clientSecret": "csecret",
               "accessToken": "at-1", "refreshToken": "rt-1", "expiresAt": "2024-05-01T01:00:00+00:00"}),
        json!({"type": "oauth2", "accessToken": "at-2"}),
        json!({"type": "custom", "data": {"subdomain": "acme", "token": "tk-3"}}),
    ];
    for document in documents {
        let secret = SecretString::from(document.to_string());
        let credentials = Credentials::from_secret(&secret).unwrap();
        let again: Value = serde_json::from_str(credentials.to_secret().expose_secret()).unwrap();
        assert_eq!(again, document);
        let debug = format!("{credentials:?}");
        for secret in [
            "sk-live-1",
            "hunter2",
            "csecret",
            "at-1",
            "rt-1",
            "at-2",
            "tk-3",
        ] {
            assert!(!debug.contains(secret), "{debug}");
        }
    }
}

#[test]
fn malformed_credentials_name_the_path_but_not_the_value() {
    let secret =
        SecretString::from(r#"{"type": "basic", "username": "svc", "password": ["hunter2"]}"#);
    let error = Credentials::from_secret(&secret).unwrap_err();
    assert_eq!(error.code(), "invalid_credentials");
    assert_eq!(error.path(), Some("password"));
    assert!(!error.to_string().contains("hunter2"), "{error}");

    let secret = SecretString::from(r#"{"type": "oauth2", "clientId": "cid"}"#);
    let error = Credentials::from_secret(&secret).unwrap_err();
    assert_eq!(error.path(), Some("clientSecret"), "{error}");

    let secret = SecretString::from("not json hunter2");
    let error = Credentials::from_secret(&secret).unwrap_err();
    assert!(matches!(error, ModelError::InvalidCredentials { .. }));
    assert!(!error.to_string().contains("hunter2"), "{error}");
}

#[test]
fn oauth_state_round_trips_and_expires() {
    let state = json!({
        "integrationId": "salesforce",
        "tenantId": "acme",
        "userId": "admin-1",
        "returnUrl": "/integrations/salesforce/configure",
        "nonce": "6f1c2a9e0b7d4c3f8a5e",
        "expiresAt": "2024-05-01T00:10:00Z"
    });
    let loaded: OAuthState = assert_round_trip(&state);
    assert!(!loaded.is_expired("2024-05-01T00:09:59Z".parse().unwrap()));
    assert!(loaded.is_expired("2024-05-01T00:10:00Z".parse().unwrap()));
    let mut weak = state;
    weak["nonce"] = json!("1234");
    assert_eq!(
        load_value::<OAuthState>(weak).unwrap_err().path(),
        Some("nonce")
    );
}

#[test]
fn executions_logs_conflicts_and_relationships_round_trip() {
    let execution = json!({
        "id": "exec-2",
        "syncTaskId": "sf-opp-hourly",
        "tenantIntegrationId": "ti-1",
        "startedAt": "2024-05-01T10:00:00Z",
        "completedAt": "2024-05-01T10:01:00Z",
        "durationMs": 60000,
        "triggeredBy": "retry",
        "triggeredByUserId": "admin-1",
        "status": "partial",
        "progress": {"phase": "complete", "totalRecords": 120, "processedRecords": 120, "percentage": 100},
        "results": {"fetched": 120, "created": 10, "updated": 100, "skipped": 8, "failed": 2},
        "errors": [{"timestamp": "2024-05-01T10:00:30Z", "phase": "transforming", "recordId": "r-1",
                    "externalId": "006A", "error": "missing Email", "details": null, "recoverable": false}],
        "retryCount": 1,
        "retryOf": "exec-1"
    });
    assert_round_trip::<SyncExecution>(&execution);
    let mut over = execution.clone();
    over["progress"]["percentage"] = json!(101);
    assert_eq!(
        load_value::<SyncExecution>(over).unwrap_err().path(),
        Some("progress.percentage")
    );
    let mut backwards = execution;
    backwards["completedAt"] = json!("2024-05-01T09:00:00Z");
    assert_eq!(
        load_value::<SyncExecution>(backwards).unwrap_err().path(),
        Some("completedAt")
    );

    assert_round_trip::<SyncLog>(&json!({
        "id": "log-1", "syncExecutionId": "exec-2", "timestamp": "2024-05-01T10:00:01Z",
        "level": "warn", "message": "rate limited", "data": {"retryAfter": 30}
    }));

    let conflict = json!({
        "id": "conf-1", "syncExecutionId": "exec-2", "externalId": "003A", "shardId": "shard-9",
        "externalData": {"phone": "1"}, "localData": {"phone": "2"},
        "conflictingFields": [{"field": "phone", "externalValue": "1", "localValue": "2",
            "externalModifiedAt": "2024-05-01T09:00:00Z", "localModifiedAt": "2024-05-01T09:30:00Z"}],
        "status": "resolved",
        "resolution": {"strategy": "manual", "resolvedBy": "admin-1", "resolvedAt": "2024-05-01T11:00:00Z", "finalData": {"phone": "2"}},
        "createdAt": "2024-05-01T10:00:40Z"
    });
    assert_round_trip::<SyncConflict>(&conflict);
    let mut unresolved = conflict;
    unresolved.as_object_mut().unwrap().remove("resolution");
    assert_eq!(
        load_value::<SyncConflict>(unresolved).unwrap_err().path(),
        Some("resolution")
    );

    assert_round_trip::<ExternalRelationship>(&json!({
        "integrationId": "salesforce", "externalId": "001D000001234ABC", "externalType": "Contact",
        "lastSyncedAt": "2024-05-01T10:00:00Z", "syncStatus": "synced", "metadata": {"etag": "x"}
    }));
    assert_round_trip::<NewsStructuredData>(&json!({
        "name": "Banks rally", "summary": "s", "url": "https://news.example/a", "source": "Example",
        "sourceUrl": "https://news.example", "publishedAt": "2024-05-01T06:00:00Z", "author": "A. Writer",
        "imageUrl": "https://news.example/a.png", "industry": "banking", "topics": ["rates"],
        "sentiment": "positive", "aiSummary": "up", "keyEntities": ["ECB"], "relevanceScore": 0.8
    }));
}
