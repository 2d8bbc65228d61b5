//! Invalid documents are rejected on load with an error naming the JSON path.

use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use hub_core::model::{
    ConversionSchema, IntegrationDefinition, ModelError, SyncTask, Validate, load_json, load_value,
};

use super::{fixture, fixture_value};

/// A fixture with the value at `pointer` replaced.
fn with(name: &str, pointer: &str, replacement: Value) -> Value {
    let mut document = fixture_value(name);
    *document
        .pointer_mut(pointer)
        .unwrap_or_else(|| panic!("{pointer} exists in {name}")) = replacement;
    document
}

/// Loads `document` (as text, like a request body), expecting rejection at `path`.
fn rejected<T: DeserializeOwned + Validate + std::fmt::Debug>(
    document: &Value,
    code: &str,
    path: &str,
) -> ModelError {
    let text = serde_json::to_string_pretty(document).unwrap();
    let error = load_json::<T>(&text).expect_err("the document must be rejected");
    assert_eq!(error.code(), code, "{error}");
    assert_eq!(error.path(), Some(path), "{error}");
    assert!(
        error.to_string().starts_with(&format!("{path}: ")),
        "the message names the path: {error}"
    );
    error
}

const CONTACT: &str = "conversion-schema.sf-contact-to-contact.json";
const OPPORTUNITY: &str = "conversion-schema.sf-opportunity.json";
const DAILY: &str = "sync-task.sf-contact-daily.json";
const HOURLY: &str = "sync-task.sf-opp-hourly.json";

#[test]
fn unknown_mapping_type() {
    let document = with(CONTACT, "/fieldMappings/0/mappingType", json!("merge"));
    let error = rejected::<ConversionSchema>(
        &document,
        "invalid_document",
        "fieldMappings[0].mappingType",
    );
    assert!(
        error.to_string().contains("unknown variant `merge`"),
        "{error}"
    );
}

#[test]
fn unknown_mapping_config_type() {
    let document = with(CONTACT, "/fieldMappings/3/config/type", json!("unnest"));
    let error = rejected::<ConversionSchema>(
        &document,
        "invalid_document",
        "fieldMappings[3].config.type",
    );
    assert!(
        error.to_string().contains("unknown variant `unnest`"),
        "{error}"
    );
}

#[test]
fn cron_expression_that_does_not_parse() {
    let document = with(DAILY, "/schedule/config/expression", json!("0 25 * * *"));
    let error = rejected::<SyncTask>(&document, "invalid_document", "schedule.config.expression");
    assert!(
        error
            .to_string()
            .contains("invalid cron expression `0 25 * * *`"),
        "{error}"
    );
    // Six fields (seconds) are a croner extension, not standard cron.
    let document = with(DAILY, "/schedule/config/expression", json!("0 0 2 * * *"));
    rejected::<SyncTask>(&document, "invalid_document", "schedule.config.expression");
}

#[test]
fn unknown_time_zone() {
    let document = with(DAILY, "/schedule/config/timezone", json!("America/Gotham"));
    let error = rejected::<SyncTask>(&document, "invalid_document", "schedule.config.timezone");
    assert!(
        error
            .to_string()
            .contains("unknown time zone `America/Gotham`"),
        "{error}"
    );
}

#[test]
fn transform_config_missing_its_required_field() {
    let document = with(
        CONTACT,
        "/fieldMappings/2/config/transformations/0",
        json!({"type": "truncate", "config": {}}),
    );
    let error = rejected::<ConversionSchema>(
        &document,
        "invalid_document",
        "fieldMappings[2].config.transformations[0].config",
    );
    assert_eq!(
        error.to_string(),
        "fieldMappings[2].config.transformations[0].config: missing field `maxLength`"
    );
    let ModelError::InvalidDocument { line, column, .. } = error else {
        panic!("a shape error");
    };
    assert!(
        line.is_some() && column.is_some(),
        "read from text: the position is kept"
    );
}

#[test]
fn transform_that_needs_a_config_without_one() {
    let document = with(
        CONTACT,
        "/fieldMappings/2/config/transformations/0",
        json!({"type": "replace"}),
    );
    let error = rejected::<ConversionSchema>(
        &document,
        "invalid_document",
        "fieldMappings[2].config.transformations[0]",
    );
    assert!(
        error.to_string().ends_with("missing field `config`"),
        "{error}"
    );
}

#[test]
fn transform_config_of_the_wrong_type_for_its_member() {
    let document = with(
        CONTACT,
        "/fieldMappings/2/config/transformations/0",
        json!({"type": "split", "config": {"separator": "-", "index": "first"}}),
    );
    let error = rejected::<ConversionSchema>(
        &document,
        "invalid_document",
        "fieldMappings[2].config.transformations[0].config.index",
    );
    assert!(
        error.to_string().contains("invalid type: string \"first\""),
        "{error}"
    );
}

#[test]
fn paths_are_the_same_whatever_the_member_order() {
    // `rejected` writes documents with sorted keys (`type` after `config`), which makes the
    // reader buffer; the fixture's own order (`type` first) streams. Both name the same path.
    let text = fixture(CONTACT).replace(
        r#"{ "type": "replace", "config": { "search": " ", "replace": "" } }"#,
        r#"{ "type": "truncate", "config": {} }"#,
    );
    let error = load_json::<ConversionSchema>(&text).unwrap_err();
    assert_eq!(
        error.to_string(),
        "fieldMappings[2].config.transformations[0].config: missing field `maxLength`"
    );
    let text = fixture(DAILY).replace("\"America/New_York\"", "\"Europe/Atlantis\"");
    let error = load_json::<SyncTask>(&text).unwrap_err();
    assert_eq!(error.path(), Some("schedule.config.timezone"), "{error}");

    // Buffered twice: the mapping config and the transformation both list `type` last.
    let mut document = fixture_value(CONTACT);
    document["fieldMappings"][2]["config"] = serde_json::from_str(
        r#"{"sourceField": "Phone", "transformations": [{"config": {"index": 1}, "type": "split"}], "type": "transform"}"#,
    )
    .unwrap();
    let error = load_value::<ConversionSchema>(document).unwrap_err();
    assert_eq!(
        error.to_string(),
        "fieldMappings[2].config.transformations[0].config: missing field `separator`"
    );
}

#[test]
fn misspelt_member_is_rejected_not_ignored() {
    let document = with(
        CONTACT,
        "/fieldMappings/0/config",
        json!({"type": "direct", "sourceFeild": "Email"}),
    );
    let error = load_json::<ConversionSchema>(&document.to_string()).unwrap_err();
    assert_eq!(error.code(), "invalid_document");
    assert!(
        error.path().unwrap().starts_with("fieldMappings[0].config"),
        "{error}"
    );
    assert!(
        error.to_string().contains("unknown field `sourceFeild`"),
        "{error}"
    );
}

#[test]
fn unknown_condition_operator() {
    let document = with(CONTACT, "/source/filters/0/operator", json!("like"));
    rejected::<ConversionSchema>(&document, "invalid_document", "source.filters[0].operator");
}

#[test]
fn zero_interval() {
    let document = with(HOURLY, "/schedule/config/interval", json!(0));
    let error = rejected::<SyncTask>(&document, "invalid_document", "schedule.config.interval");
    assert!(error.to_string().contains("from 1 to"), "{error}");
}

#[test]
fn unknown_interval_unit() {
    let document = with(HOURLY, "/schedule/config/unit", json!("fortnights"));
    rejected::<SyncTask>(&document, "invalid_document", "schedule.config.unit");
}

#[test]
fn unknown_conflict_strategy_in_task_config() {
    let document = with(
        "sync-task.sf-bidirectional.json",
        "/config/conflictResolution",
        json!("loudest_wins"),
    );
    rejected::<SyncTask>(&document, "invalid_document", "config.conflictResolution");
}

#[test]
fn dedup_strategy_without_its_field() {
    let document = with(
        CONTACT,
        "/deduplication",
        json!({"strategy": "external_id"}),
    );
    let error = rejected::<ConversionSchema>(&document, "invalid_document", "deduplication");
    assert!(
        error
            .to_string()
            .contains("missing field `externalIdField`"),
        "{error}"
    );
}

#[test]
fn mapping_type_that_disagrees_with_config_type() {
    let document = with(CONTACT, "/fieldMappings/0/mappingType", json!("flatten"));
    let error =
        rejected::<ConversionSchema>(&document, "invalid_value", "fieldMappings[0].mappingType");
    assert!(
        error
            .to_string()
            .contains("does not match config.type `direct`"),
        "{error}"
    );
}

#[test]
fn schedule_type_that_disagrees_with_config_type() {
    let document = with(DAILY, "/schedule/type", json!("interval"));
    rejected::<SyncTask>(&document, "invalid_value", "schedule.type");
}

#[test]
fn template_placeholder_that_is_not_a_source_field() {
    let document = with(
        CONTACT,
        "/fieldMappings/1/config/template",
        json!("${FirstName} ${MiddleName}"),
    );
    let error = rejected::<ConversionSchema>(
        &document,
        "invalid_value",
        "fieldMappings[1].config.template",
    );
    assert!(error.to_string().contains("`${MiddleName}`"), "{error}");
    let document = with(
        CONTACT,
        "/fieldMappings/1/config/template",
        json!("${FirstName"),
    );
    rejected::<ConversionSchema>(
        &document,
        "invalid_value",
        "fieldMappings[1].config.template",
    );
}

#[test]
fn in_operator_needs_an_array() {
    let document = with(
        OPPORTUNITY,
        "/fieldMappings/2/config/conditions/3/condition/value",
        json!("Negotiation"),
    );
    rejected::<ConversionSchema>(
        &document,
        "invalid_value",
        "fieldMappings[2].config.conditions[3].condition.value",
    );
}

#[test]
fn two_mappings_to_one_target_field() {
    let document = with(CONTACT, "/fieldMappings/4/targetField", json!("email"));
    rejected::<ConversionSchema>(&document, "invalid_value", "fieldMappings[4].targetField");
}

#[test]
fn relationship_without_a_lookup() {
    let document = with(
        OPPORTUNITY,
        "/relationshipMappings/0/lookupByExternalId",
        json!(false),
    );
    rejected::<ConversionSchema>(
        &document,
        "invalid_value",
        "relationshipMappings[0].lookupField",
    );
}

#[test]
fn divide_by_zero_and_bad_currency() {
    let document = with(
        CONTACT,
        "/fieldMappings/2/config/transformations/0",
        json!({"type": "divide", "config": {"divisor": 0}}),
    );
    rejected::<ConversionSchema>(
        &document,
        "invalid_value",
        "fieldMappings[2].config.transformations[0].config.divisor",
    );
    let document = with(
        CONTACT,
        "/fieldMappings/2/config/transformations/0",
        json!({"type": "currency_convert", "config": {"from": "usd", "to": "EUR"}}),
    );
    rejected::<ConversionSchema>(
        &document,
        "invalid_value",
        "fieldMappings[2].config.transformations[0].config.from",
    );
}

#[test]
fn conflict_resolution_on_a_pull_task() {
    let document = with(
        "sync-task.sf-bidirectional.json",
        "/direction",
        json!("pull"),
    );
    rejected::<SyncTask>(&document, "invalid_value", "config.conflictResolution");
}

#[test]
fn oauth2_definition_without_oauth_config() {
    let document = with(
        "integration-definition.openai.json",
        "/authType",
        json!("oauth2"),
    );
    rejected::<IntegrationDefinition>(&document, "invalid_value", "oauthConfig");
}

#[test]
fn missing_required_member_at_the_top() {
    let mut document = fixture_value(DAILY);
    document.as_object_mut().unwrap().remove("direction");
    let error = rejected::<SyncTask>(&document, "invalid_document", ".");
    assert!(
        error.to_string().contains("missing field `direction`"),
        "{error}"
    );
}

#[test]
fn text_that_is_not_json() {
    let error = load_json::<SyncTask>("{\"id\": ").unwrap_err();
    assert_eq!(error.code(), "invalid_json");
    assert_eq!(error.path(), None);
    let error = load_json::<SyncTask>(&format!("{} x", fixture_value(DAILY))).unwrap_err();
    assert_eq!(error.code(), "invalid_json", "{error}");
}
