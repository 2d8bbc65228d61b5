//! Schemas refused at compile time, each with the JSON path of the offending value.

use hub_core::model::{EntityField, EntityFieldType, IntegrationEntity};
use hub_mapping::{CompileOptions, CompiledSchema};
use serde_json::{Value, json};

use crate::support::{compile_error, schema_from, schema_with, single};

fn refused(document: Value) -> (String, String) {
    let error = compile_error(document);
    assert!(error.to_string().starts_with(&error.path), "{error}");
    (error.path.clone(), error.code().to_owned())
}

fn transform_with(transformations: Value) -> Value {
    schema_with(json!([
        {"targetField": "a", "mappingType": "direct", "config": {"type": "direct", "sourceField": "A"}},
        {"targetField": "b", "mappingType": "transform", "config": {"type": "transform", "sourceField": "B", "transformations": transformations}}
    ]))
}

#[test]
fn invalid_regexes_name_their_path() {
    let (path, code) = refused(transform_with(json!([
        {"type": "trim"},
        {"type": "regex_replace", "config": {"pattern": "([a-z]+", "replace": ""}}
    ])));
    assert_eq!(
        path,
        "fieldMappings[1].config.transformations[1].config.pattern"
    );
    assert_eq!(code, "invalid_regex");

    let mut document = single("direct", json!({"sourceField": "v"}));
    document["fieldMappings"][0]["validation"] =
        json!([{"type": "pattern", "value": "a{99999}{99999}"}]);
    let (path, code) = refused(document);
    assert_eq!(
        (path.as_str(), code.as_str()),
        ("fieldMappings[0].validation[0].value", "invalid_regex")
    );
}

#[test]
fn invalid_date_formats_and_expressions() {
    let (path, code) = refused(transform_with(
        json!([{"type": "parse_date", "config": {"format": "%Y-%m-%Q"}}]),
    ));
    assert_eq!(
        (path.as_str(), code.as_str()),
        (
            "fieldMappings[1].config.transformations[0].config.format",
            "invalid_date_format"
        )
    );
    let (_, code) = refused(transform_with(
        json!([{"type": "parse_date", "config": {"format": "%d %b %Y %Z"}}]),
    ));
    assert_eq!(code, "invalid_date_format");
    let (path, code) = refused(transform_with(
        json!([{"type": "format_date", "config": {"format": "%"}}]),
    ));
    assert_eq!(
        (path.as_str(), code.as_str()),
        (
            "fieldMappings[1].config.transformations[0].config.format",
            "invalid_date_format"
        )
    );
    let (path, code) = refused(transform_with(
        json!([{"type": "custom", "config": {"expression": "value +* 2"}}]),
    ));
    assert_eq!(
        (path.as_str(), code.as_str()),
        (
            "fieldMappings[1].config.transformations[0].config.expression",
            "invalid_expression"
        )
    );
    let (path, code) = refused(single(
        "conditional",
        json!({"conditions": [
            {"condition": {"field": "x", "operator": "eq", "value": 1}, "then": {"type": "value", "value": 1}},
            {"condition": {"field": "x", "operator": "custom", "value": "record.("}, "then": {"type": "value", "value": 2}}
        ]}),
    ));
    assert_eq!(
        (path.as_str(), code.as_str()),
        (
            "fieldMappings[0].config.conditions[1].condition.value",
            "invalid_expression"
        )
    );
}

#[test]
fn unknown_placeholders() {
    let (path, code) = refused(single(
        "default",
        json!({"value": {"x": ["{{tasks.industry}}"]}}),
    ));
    assert_eq!(
        (path.as_str(), code.as_str()),
        ("fieldMappings[0].config.value", "unknown_placeholder")
    );
    let (_, code) = refused(single("default", json!({"value": "{{task.}}"})));
    assert_eq!(code, "unknown_placeholder");
    // hub-core refuses composite templates naming a field outside sourceFields.
    let (path, code) = refused(single(
        "composite",
        json!({"sourceFields": ["FirstName"], "template": "${FirstName} ${LastName}"}),
    ));
    assert_eq!(
        (path.as_str(), code.as_str()),
        ("fieldMappings[0].config.template", "invalid_schema")
    );
}

#[test]
fn malformed_paths() {
    let (path, code) = refused(single("direct", json!({"sourceField": "a..b"})));
    assert_eq!(
        (path.as_str(), code.as_str()),
        ("fieldMappings[0].config.sourceField", "invalid_path")
    );
    let (path, code) = refused(single(
        "flatten",
        json!({"sourceField": "a", "path": "$.items[?(@.x)]"}),
    ));
    assert_eq!(
        (path.as_str(), code.as_str()),
        ("fieldMappings[0].config.path", "invalid_path")
    );
    let mut document = single("direct", json!({"sourceField": "v"}));
    document["source"]["filters"] = json!([{"field": "a[", "operator": "exists"}]);
    let (path, _) = refused(document);
    assert_eq!(path, "source.filters[0].field");
    let mut document = single("direct", json!({"sourceField": "v"}));
    document["deduplication"] = json!({"strategy": "composite", "matchFields": ["out", "b]"]});
    let (path, _) = refused(document);
    assert_eq!(path, "deduplication.matchFields[1]");
}

#[test]
fn chains_that_convert_a_type_they_cannot() {
    let (path, code) = refused(transform_with(
        json!([{"type": "to_date"}, {"type": "multiply", "config": {"factor": 2}}]),
    ));
    assert_eq!(
        (path.as_str(), code.as_str()),
        (
            "fieldMappings[1].config.transformations[1]",
            "incompatible_type"
        )
    );
    let (_, code) = refused(transform_with(
        json!([{"type": "to_boolean"}, {"type": "add_days", "config": {"days": 1}}]),
    ));
    assert_eq!(code, "incompatible_type");
    let (_, code) = refused(transform_with(
        json!([{"type": "to_array"}, {"type": "uppercase"}]),
    ));
    assert_eq!(code, "incompatible_type");
    let (_, code) = refused(transform_with(
        json!([{"type": "parse_date", "config": {"format": "iso8601"}}, {"type": "trim"}]),
    ));
    assert_eq!(code, "incompatible_type");
    let mut document = single("default", json!({"value": true}));
    document["fieldMappings"][0]["validation"] = json!([{"type": "min_length", "value": 2}]);
    let (path, code) = refused(document);
    assert_eq!(
        (path.as_str(), code.as_str()),
        ("fieldMappings[0].validation[0]", "incompatible_type")
    );
    // A custom step yields any type: what follows it is checked at run time.
    let ok = CompiledSchema::compile(&schema_from(transform_with(json!([
        {"type": "to_date"}, {"type": "custom", "config": {"expression": "value"}}, {"type": "uppercase"}
    ]))));
    assert!(ok.is_ok());
}

#[test]
fn declared_source_types_are_checked() {
    let entity = IntegrationEntity {
        name: "Opportunity".into(),
        display_name: "Opportunity".into(),
        description: None,
        fields: [
            ("IsWon", EntityFieldType::Boolean),
            ("CloseDate", EntityFieldType::Date),
            ("Amount", EntityFieldType::Number),
            ("Owner", EntityFieldType::Object),
            ("Name", EntityFieldType::String),
            ("Tags", EntityFieldType::Array),
        ]
        .into_iter()
        .map(|(name, field_type)| EntityField {
            name: name.into(),
            display_name: None,
            field_type,
            required: false,
            read_only: false,
            description: None,
        })
        .collect(),
        supports_read: true,
        supports_write: false,
        supports_delete: false,
        supports_webhooks: false,
        id_field: Some("Id".into()),
        modified_field: None,
    };
    let options = CompileOptions {
        source_entity: Some(&entity),
    };
    let attempt = |document: Value| {
        CompiledSchema::compile_with(&schema_from(document), &options).map(|_| ())
    };
    let transform = |field: &str, t: Value| {
        single(
            "transform",
            json!({"sourceField": field, "transformations": [t]}),
        )
    };

    let error = attempt(transform("IsWon", json!({"type": "to_date"}))).unwrap_err();
    assert_eq!(
        (error.path.as_str(), error.code()),
        (
            "fieldMappings[0].config.transformations[0]",
            "incompatible_type"
        )
    );
    assert!(error.message.contains("a boolean"), "{}", error.message);
    assert!(
        attempt(transform(
            "CloseDate",
            json!({"type": "multiply", "config": {"factor": 2}})
        ))
        .is_err()
    );
    assert!(attempt(transform("Owner", json!({"type": "uppercase"}))).is_err());
    assert!(
        attempt(transform(
            "Tags",
            json!({"type": "round", "config": {"decimals": 0}})
        ))
        .is_err()
    );
    assert!(
        attempt(transform(
            "CloseDate",
            json!({"type": "add_days", "config": {"days": 1}})
        ))
        .is_ok()
    );
    assert!(
        attempt(transform(
            "Amount",
            json!({"type": "round", "config": {"decimals": 0}})
        ))
        .is_ok()
    );
    assert!(
        attempt(transform(
            "Undeclared",
            json!({"type": "round", "config": {"decimals": 0}})
        ))
        .is_ok()
    );

    let error = attempt(single(
        "flatten",
        json!({"sourceField": "Name", "path": "first"}),
    ))
    .unwrap_err();
    assert_eq!(
        (error.path.as_str(), error.code()),
        ("fieldMappings[0].config.sourceField", "incompatible_type")
    );
    assert!(
        attempt(single(
            "flatten",
            json!({"sourceField": "Owner", "path": "Email"})
        ))
        .is_ok()
    );
    let error = attempt(single("direct", json!({"sourceField": "Amount.currency"}))).unwrap_err();
    assert_eq!(error.code(), "incompatible_type");
    assert!(
        attempt(single(
            "composite",
            json!({"sourceFields": ["Name", "Owner"]})
        ))
        .is_err()
    );

    let mut filtered = single("direct", json!({"sourceField": "Name"}));
    filtered["source"]["filters"] = json!([{"field": "IsWon", "operator": "gt", "value": 1}]);
    let error = attempt(filtered).unwrap_err();
    assert_eq!(
        (error.path.as_str(), error.code()),
        ("source.filters[0]", "incompatible_type")
    );
}

#[test]
fn model_rules_come_first_with_their_paths() {
    let mut document = single("direct", json!({"sourceField": "v"}));
    document["fieldMappings"][0]["mappingType"] = json!("transform");
    let (path, code) = refused(document);
    assert_eq!(
        (path.as_str(), code.as_str()),
        ("fieldMappings[0].mappingType", "invalid_schema")
    );
    let (path, _) = refused(transform_with(
        json!([{"type": "truncate", "config": {"maxLength": 0}}]),
    ));
    assert_eq!(
        path,
        "fieldMappings[1].config.transformations[0].config.maxLength"
    );
    let (path, _) = refused(single(
        "conditional",
        json!({"conditions": [{"condition": {"field": "x", "operator": "custom", "value": 3}, "then": {"type": "value", "value": 1}}]}),
    ));
    assert_eq!(
        path,
        "fieldMappings[0].config.conditions[0].condition.value"
    );
    let (path, code) = refused(single(
        "lookup",
        json!({"sourceField": "x", "values": {"Hot": 1, "HOT": 2}, "caseSensitive": false}),
    ));
    assert_eq!(code, "duplicate_lookup_key");
    assert!(
        path.starts_with("fieldMappings[0].config.values."),
        "{path}"
    );
    let (path, code) = refused(transform_with(json!([
        {"type": "currency_convert", "config": {"from": "USD", "to": "JPY", "rates": {"EUR": 0.9}}}
    ])));
    assert_eq!(
        (path.as_str(), code.as_str()),
        (
            "fieldMappings[1].config.transformations[0].config.rates",
            "missing_rate"
        )
    );
}
