//! Inputs at the edges: records that are not objects or not JSON, very long strings, unicode,
//! numbers beyond what a double holds, and one bad record among good ones.

use serde_json::json;

use crate::support::{compile, ok, schema_with, single, transform};
use hub_mapping::{RecordInput, RecordOutcome};

#[test]
fn records_that_are_not_objects_or_not_json_fail_alone() {
    let schema = compile(single("direct", json!({"sourceField": "v"})));
    let mapper = schema.bind(None);
    let texts = [
        r#"{"id": "1", "v": "ok"}"#,
        "[1, 2]",
        "{\"id\": \"3\", \"v\": ",
        "\"text\"",
        "",
        r#"{"id": "6", "v": "also ok"}"#,
    ];
    let outcome = mapper.map_batch(texts.iter().map(|t| RecordInput::Text(t)));
    let statuses: Vec<&str> = outcome.records.iter().map(RecordOutcome::status).collect();
    assert_eq!(
        statuses,
        ["mapped", "failed", "failed", "failed", "failed", "mapped"]
    );
    let codes: Vec<(u32, &str)> = outcome
        .errors()
        .map(|e| (e.record_index, e.code.as_str()))
        .collect();
    assert_eq!(
        codes,
        [
            (1, "invalid_record"),
            (2, "invalid_record"),
            (3, "invalid_record"),
            (4, "invalid_record")
        ]
    );
    let values = [json!(null), json!(7), json!({"id": "x", "v": 1})];
    let outcome = mapper.map_batch(values.iter().map(RecordInput::from));
    assert_eq!(outcome.mapped().count(), 1);
    assert_eq!(outcome.errors().count(), 2);
}

#[test]
fn very_long_strings_and_unicode_survive() {
    let long = "ü".repeat(200_000) + "😀";
    assert_eq!(
        ok(transform(json!([{"type": "trim"}]), json!(long.clone()))),
        json!(long)
    );
    let truncated = ok(transform(
        json!([{"type": "truncate", "config": {"maxLength": 100000}}]),
        json!(long),
    ));
    assert_eq!(truncated.as_str().map(|s| s.chars().count()), Some(100_000));
    let escaped = "line\n\"quoted\"\t\\ \u{0}\u{1f} \u{2028} 中文 العربية";
    assert_eq!(
        ok(transform(json!([{"type": "to_string"}]), json!(escaped))),
        json!(escaped)
    );
    let schema = compile(single("direct", json!({"sourceField": "ключ.名前"})));
    assert_eq!(
        ok(crate::support::out(
            &schema,
            json!({"ключ": {"名前": "значение"}})
        )),
        json!("значение")
    );
}

#[test]
fn numbers_beyond_double_precision_keep_their_digits_unless_arithmetic_touches_them() {
    let schema = compile(schema_with(json!([
        {"targetField": "direct", "mappingType": "direct", "config": {"type": "direct", "sourceField": "big"}},
        {"targetField": "text", "mappingType": "transform", "config": {"type": "transform", "sourceField": "big", "transformations": [{"type": "to_string"}]}},
        {"targetField": "rounded", "mappingType": "transform", "config": {"type": "transform", "sourceField": "bigdec", "transformations": [{"type": "round", "config": {"decimals": 2}}]}},
        {"targetField": "doubled", "mappingType": "transform", "config": {"type": "transform", "sourceField": "big", "transformations": [{"type": "multiply", "config": {"factor": 2}}]}},
        {"targetField": "fits", "mappingType": "direct", "config": {"type": "direct", "sourceField": "fits"}},
        {"targetField": "max", "mappingType": "direct", "config": {"type": "direct", "sourceField": "max"}},
        {"targetField": "parsed", "mappingType": "transform", "config": {"type": "transform", "sourceField": "digits", "transformations": [{"type": "to_number"}]}},
        {"targetField": "nested", "mappingType": "direct", "config": {"type": "direct", "sourceField": "list"}}
    ])));
    let text = r#"{"id": 123456789012345678901234567890, "big": 123456789012345678901234567890,
        "bigdec": 123456789012345678901234567890.987654321, "fits": 0.1, "max": 18446744073709551615,
        "digits": "99999999999999999999.5", "list": [1e400, 2]}"#;
    let RecordOutcome::Mapped(m) = schema.bind(None).map_record(0, RecordInput::Text(text)) else {
        panic!("not mapped")
    };
    assert_eq!(m.external_id, "123456789012345678901234567890");
    assert_eq!(
        m.data.to_map()["direct"],
        json!("123456789012345678901234567890"),
        "kept as its exact digits"
    );
    assert_eq!(
        m.data.to_map()["text"],
        json!("123456789012345678901234567890")
    );
    assert_eq!(
        m.data.to_map()["rounded"],
        json!("123456789012345678901234567890.99"),
        "round works on the digits"
    );
    assert_eq!(
        m.data.to_map()["doubled"],
        json!(2.4691357802469136e29),
        "arithmetic is in doubles"
    );
    assert_eq!(m.data.to_map()["fits"], json!(0.1));
    assert_eq!(m.data.to_map()["max"], json!(u64::MAX));
    assert_eq!(m.data.to_map()["parsed"], json!("99999999999999999999.5"));
    assert_eq!(m.data.to_map()["nested"], json!(["1e400", 2]));

    // The same record through serde_json has already lost the digits: documented, not hidden.
    let value: serde_json::Value = serde_json::from_str(&text.replace("1e400", "1")).unwrap();
    let RecordOutcome::Mapped(lossy) = schema.bind(None).map_record(0, RecordInput::Value(&value))
    else {
        panic!("not mapped")
    };
    assert_eq!(lossy.data.to_map()["direct"], json!(1.2345678901234568e29));
}

#[test]
fn wrong_types_are_errors_of_their_field_only() {
    let schema = compile(schema_with(json!([
        {"targetField": "upper", "mappingType": "transform", "config": {"type": "transform", "sourceField": "obj", "transformations": [{"type": "uppercase"}]}},
        {"targetField": "num", "mappingType": "transform", "config": {"type": "transform", "sourceField": "word", "transformations": [{"type": "to_number"}]}},
        {"targetField": "date", "mappingType": "transform", "config": {"type": "transform", "sourceField": "flag", "transformations": [{"type": "to_date"}]}},
        {"targetField": "fine", "mappingType": "direct", "config": {"type": "direct", "sourceField": "word"}}
    ])));
    let record = json!({"id": "1", "obj": {"a": 1}, "word": "twelve", "flag": true});
    let RecordOutcome::Failed { errors } = crate::support::map(&schema, &record) else {
        panic!("mapped")
    };
    let found: Vec<(&str, &str, &str)> = errors
        .iter()
        .map(|e| {
            (
                e.target_field.as_deref().unwrap_or(""),
                e.source_path.as_deref().unwrap_or(""),
                e.code.as_str(),
            )
        })
        .collect();
    assert_eq!(
        found,
        [
            ("upper", "obj", "invalid_type"),
            ("num", "word", "invalid_number"),
            ("date", "flag", "invalid_type")
        ]
    );
    assert!(errors.iter().all(|e| e.external_id.as_deref() == Some("1")));
    assert!(
        errors[1].message.contains("\"twelve\""),
        "{}",
        errors[1].message
    );
}
