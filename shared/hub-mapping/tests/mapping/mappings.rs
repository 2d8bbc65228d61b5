//! One test per mapping type, with its edge cases.

use serde_json::json;

use crate::support::{code, compile, ok, out, schema_with, single, task};
use hub_mapping::RecordOutcome;

#[test]
fn direct_copies_any_value_by_dot_path() {
    let schema = compile(single("direct", json!({"sourceField": "a.b[1].c"})));
    assert_eq!(
        ok(out(&schema, json!({"a": {"b": [{}, {"c": "x"}]}}))),
        json!("x")
    );
    assert_eq!(
        ok(out(
            &schema,
            json!({"a": {"b": [{}, {"c": {"deep": [1, 2]}}]}})
        )),
        json!({"deep": [1, 2]})
    );
    assert_eq!(
        ok(out(&schema, json!({"a": {"b": [{}, {"c": null}]}}))),
        json!(null)
    );
    assert_eq!(
        out(&schema, json!({"a": {"b": [{}]}})).unwrap(),
        None,
        "missing stays unset"
    );
    assert_eq!(out(&schema, json!({"a": "not an object"})).unwrap(), None);
    let plain = compile(single("direct", json!({"sourceField": "Email"})));
    assert_eq!(ok(out(&plain, json!({"Email": "a@b.c"}))), json!("a@b.c"));
    assert_eq!(ok(out(&plain, json!({"Email": 42}))), json!(42));
}

#[test]
fn transform_applies_the_chain_in_order() {
    let schema = compile(single(
        "transform",
        json!({"sourceField": "Phone", "transformations": [
            {"type": "trim"},
            {"type": "replace", "config": {"search": " ", "replace": ""}},
            {"type": "concat", "config": {"prefix": "tel:"}}
        ]}),
    ));
    assert_eq!(
        ok(out(&schema, json!({"Phone": "  +44 20 7946 0958 "}))),
        json!("tel:+442079460958")
    );
    assert_eq!(out(&schema, json!({})).unwrap(), None);
    assert_eq!(ok(out(&schema, json!({"Phone": null}))), json!(null));
}

#[test]
fn conditional_takes_the_first_matching_rule_or_the_default() {
    let schema = compile(single(
        "conditional",
        json!({
            "conditions": [
                {"condition": {"field": "Stage", "operator": "eq", "value": "Won"}, "then": {"type": "value", "value": "won"}},
                {"condition": {"field": "Stage", "operator": "in", "value": ["Lost", "Dead"]}, "then": {"type": "field", "sourceField": "Reason"}},
                {"condition": {"field": "Amount", "operator": "gt", "value": 1000}, "then": {"type": "transform", "transformations": [{"type": "multiply", "config": {"factor": 2}}]}},
                {"condition": {"field": "Stage", "operator": "exists"}, "then": {"type": "transform", "sourceField": "Stage", "transformations": [{"type": "lowercase"}]}}
            ],
            "default": "unknown"
        }),
    ));
    assert_eq!(
        ok(out(&schema, json!({"Stage": "Won", "Amount": 5000}))),
        json!("won")
    );
    assert_eq!(
        ok(out(&schema, json!({"Stage": "Dead", "Reason": "budget"}))),
        json!("budget")
    );
    assert_eq!(
        out(&schema, json!({"Stage": "Lost"})).unwrap(),
        None,
        "a matching rule's missing field is unset"
    );
    // `then.transform` without a sourceField transforms the condition's field.
    assert_eq!(
        ok(out(&schema, json!({"Stage": "Open", "Amount": 1500}))),
        json!(3000)
    );
    assert_eq!(
        ok(out(&schema, json!({"Stage": "Open", "Amount": 10}))),
        json!("open")
    );
    assert_eq!(ok(out(&schema, json!({"Amount": 10}))), json!("unknown"));

    let without_default = compile(single(
        "conditional",
        json!({"conditions": [{"condition": {"field": "x", "operator": "eq", "value": 1}, "then": {"type": "value", "value": "one"}}]}),
    ));
    assert_eq!(out(&without_default, json!({"x": 2})).unwrap(), None);
    let null_default = compile(single(
        "conditional",
        json!({"conditions": [{"condition": {"field": "x", "operator": "eq", "value": 1}, "then": {"type": "value", "value": "one"}}], "default": null}),
    ));
    assert_eq!(ok(out(&null_default, json!({"x": 2}))), json!(null));
}

#[test]
fn default_sets_a_constant_with_task_placeholders() {
    let plain = compile(single(
        "default",
        json!({"value": {"kind": "static", "n": [1, 2]}}),
    ));
    assert_eq!(
        ok(out(&plain, json!({}))),
        json!({"kind": "static", "n": [1, 2]})
    );

    let templated = compile(single(
        "default",
        json!({"value": {"whole": "{{task.maxResults}}", "text": "news-{{ task.industry }}/{{task.country}}", "list": ["{{task.industry}}"]}}),
    ));
    let config = task(json!({"maxResults": 50, "industry": "banking", "country": "us"}));
    let mapper = templated.bind(Some(&config));
    let RecordOutcome::Mapped(m) = mapper.map_record(0, (&json!({"id": "1"})).into()) else {
        panic!("not mapped")
    };
    // A placeholder alone keeps the task value's type; inside text it is interpolated.
    assert_eq!(
        m.data.to_map()["out"],
        json!({"whole": 50, "text": "news-banking/us", "list": ["banking"]})
    );

    let lacking = task(json!({"industry": "banking", "country": "us"}));
    let RecordOutcome::Failed { errors } = templated
        .bind(Some(&lacking))
        .map_record(0, (&json!({"id": "1"})).into())
    else {
        panic!("mapped without the task value")
    };
    assert_eq!(errors[0].code, "missing_task_value");
    assert!(
        errors[0].message.contains("maxResults"),
        "{}",
        errors[0].message
    );
}

#[test]
fn composite_joins_with_a_separator_or_fills_a_template() {
    let separated = compile(single(
        "composite",
        json!({"sourceFields": ["City", "Zip", "Country"], "separator": ", "}),
    ));
    assert_eq!(
        ok(out(
            &separated,
            json!({"City": "Paris", "Zip": 75001, "Country": "FR"})
        )),
        json!("Paris, 75001, FR")
    );
    assert_eq!(
        ok(out(
            &separated,
            json!({"City": "Paris", "Zip": null, "Country": ""})
        )),
        json!("Paris")
    );
    assert_eq!(out(&separated, json!({"Zip": null})).unwrap(), None);

    let spaced = compile(single("composite", json!({"sourceFields": ["A", "B"]})));
    assert_eq!(
        ok(out(&spaced, json!({"A": "x", "B": true}))),
        json!("x true")
    );

    let template = compile(single(
        "composite",
        json!({"sourceFields": ["FirstName", "LastName", "Address.city"], "template": "${LastName}, ${FirstName} (${Address.city})"}),
    ));
    assert_eq!(
        ok(out(
            &template,
            json!({"FirstName": "Ada", "LastName": "Lovelace", "Address": {"city": "London"}})
        )),
        json!("Lovelace, Ada (London)")
    );
    assert_eq!(
        ok(out(&template, json!({"LastName": "Lovelace"}))),
        json!("Lovelace,  ()")
    );
    assert_eq!(
        code(out(&template, json!({"LastName": ["L"]}))),
        "invalid_type"
    );
}

#[test]
fn lookup_maps_through_a_table_with_case_and_default_options() {
    let schema = compile(single(
        "lookup",
        json!({"sourceField": "Rating", "values": {"Hot": "hot", "Warm": "warm", "1": "one", "true": "yes"}, "default": "cold"}),
    ));
    assert_eq!(ok(out(&schema, json!({"Rating": "Hot"}))), json!("hot"));
    assert_eq!(
        ok(out(&schema, json!({"Rating": "hot"}))),
        json!("cold"),
        "case-sensitive by default"
    );
    assert_eq!(
        ok(out(&schema, json!({"Rating": 1}))),
        json!("one"),
        "numbers look up by their text"
    );
    assert_eq!(ok(out(&schema, json!({"Rating": true}))), json!("yes"));
    assert_eq!(ok(out(&schema, json!({}))), json!("cold"));
    assert_eq!(
        code(out(&schema, json!({"Rating": {"a": 1}}))),
        "invalid_type"
    );

    let folded = compile(single(
        "lookup",
        json!({"sourceField": "Rating", "values": {"HOT": {"level": 3}}, "caseSensitive": false}),
    ));
    assert_eq!(
        ok(out(&folded, json!({"Rating": "hOt"}))),
        json!({"level": 3})
    );
    assert_eq!(out(&folded, json!({"Rating": "mild"})).unwrap(), None);
}

#[test]
fn flatten_by_dot_path_and_jsonpath() {
    let dotted = compile(single(
        "flatten",
        json!({"sourceField": "MailingAddress", "path": "geo.lat"}),
    ));
    assert_eq!(
        ok(out(
            &dotted,
            json!({"MailingAddress": {"geo": {"lat": 51.5}}})
        )),
        json!(51.5)
    );
    assert_eq!(out(&dotted, json!({"MailingAddress": null})).unwrap(), None);
    assert_eq!(out(&dotted, json!({})).unwrap(), None);

    let single_path = compile(single(
        "flatten",
        json!({"sourceField": "Order", "path": "$.Lines[-1].Sku"}),
    ));
    assert_eq!(
        ok(out(
            &single_path,
            json!({"Order": {"Lines": [{"Sku": "A"}, {"Sku": "B"}]}})
        )),
        json!("B")
    );

    let wildcard = compile(single(
        "flatten",
        json!({"sourceField": "Order", "path": "$.Lines[*].Sku"}),
    ));
    assert_eq!(
        ok(out(
            &wildcard,
            json!({"Order": {"Lines": [{"Sku": "A"}, {"Qty": 1}, {"Sku": "C"}]}})
        )),
        json!(["A", "C"])
    );
    assert_eq!(
        out(&wildcard, json!({"Order": {"Lines": []}})).unwrap(),
        None
    );

    let descent = compile(single(
        "flatten",
        json!({"sourceField": "Doc", "path": "$..email"}),
    ));
    assert_eq!(
        ok(out(
            &descent,
            json!({"Doc": {"owner": {"email": "a@x"}, "team": [{"email": "b@x"}, {"lead": {"email": "c@x"}}]}})
        )),
        json!(["a@x", "b@x", "c@x"])
    );
}

#[test]
fn required_and_validation_rules() {
    let schema = compile(schema_with(json!([
        {"targetField": "email", "mappingType": "direct", "config": {"type": "direct", "sourceField": "Email"},
         "required": true, "validation": [{"type": "email"}, {"type": "max_length", "value": 20}]},
        {"targetField": "site", "mappingType": "direct", "config": {"type": "direct", "sourceField": "Site"},
         "validation": [{"type": "url", "message": "give a full URL"}]},
        {"targetField": "code", "mappingType": "direct", "config": {"type": "direct", "sourceField": "Code"},
         "validation": [{"type": "pattern", "value": "^[A-Z]{3}-\\d+$"}, {"type": "min_length", "value": 5}]},
        {"targetField": "score", "mappingType": "direct", "config": {"type": "direct", "sourceField": "Score"},
         "validation": [{"type": "min", "value": 0}, {"type": "max", "value": 100.5}]},
        {"targetField": "tier", "mappingType": "direct", "config": {"type": "direct", "sourceField": "Tier"},
         "validation": [{"type": "enum", "values": ["gold", "silver", 3]}, {"type": "required", "message": "tier is needed"}]}
    ])));
    let good = json!({"id": "1", "Email": "ada@example.com", "Site": "https://example.com/x?y#z", "Code": "ABC-12", "Score": 100.5, "Tier": 3.0});
    assert!(matches!(
        crate::support::map(&schema, &good),
        RecordOutcome::Mapped(_)
    ));

    let bad = json!({"id": "1", "Email": "not an email at all, and long", "Site": "example.com", "Code": "abc", "Score": -1, "Tier": "bronze"});
    let RecordOutcome::Failed { errors } = crate::support::map(&schema, &bad) else {
        panic!("mapped")
    };
    let found: Vec<(&str, &str)> = errors
        .iter()
        .map(|e| (e.target_field.as_deref().unwrap_or(""), e.code.as_str()))
        .collect();
    assert_eq!(
        found,
        [
            ("email", "validation_email"),
            ("email", "validation_max_length"),
            ("site", "validation_url"),
            ("code", "validation_pattern"),
            ("code", "validation_min_length"),
            ("score", "validation_min"),
            ("tier", "validation_enum"),
        ]
    );
    assert_eq!(errors[2].message, "give a full URL");

    let missing = json!({"id": "1", "Score": "101"});
    let RecordOutcome::Failed { errors } = crate::support::map(&schema, &missing) else {
        panic!("mapped")
    };
    let found: Vec<(&str, &str, &str)> = errors
        .iter()
        .map(|e| {
            (
                e.target_field.as_deref().unwrap_or(""),
                e.code.as_str(),
                e.message.as_str(),
            )
        })
        .collect();
    assert_eq!(found[0].1, "missing_required_field");
    assert_eq!(
        found[1],
        (
            "score",
            "validation_max",
            "the text \"101\" is more than 100.5"
        )
    );
    assert_eq!(
        found[2],
        ("tier", "missing_required_field", "tier is needed")
    );
}
