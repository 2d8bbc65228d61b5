//! Every condition operator, through source filters: a record is mapped when the filter holds
//! and skipped (not failed) when it does not.

use serde_json::{Value, json};

use crate::support::{compile, map, map_with, schema_with, task};
use hub_mapping::RecordOutcome;

fn filtered(filter: Value) -> hub_mapping::CompiledSchema {
    let mut document = schema_with(json!([
        {"targetField": "out", "mappingType": "direct", "config": {"type": "direct", "sourceField": "id"}}
    ]));
    document["source"]["filters"] = json!([filter]);
    compile(document)
}

/// Whether the filter `field operator value` holds for a record whose `f` is `field`.
fn holds(operator: &str, value: Option<Value>, field: Option<Value>) -> bool {
    let mut filter = json!({"field": "f", "operator": operator});
    if let Some(value) = value {
        filter["value"] = value;
    }
    let schema = filtered(filter);
    let mut record = json!({"id": "r1"});
    if let Some(field) = field {
        record["f"] = field;
    }
    match map(&schema, &record) {
        RecordOutcome::Mapped(_) => true,
        RecordOutcome::Skipped(skipped) => {
            assert_eq!(skipped.filter_index, 0);
            assert_eq!(skipped.external_id.as_deref(), Some("r1"));
            false
        }
        RecordOutcome::Failed { errors } => panic!("{operator}: {errors:?}"),
    }
}

#[test]
fn eq_and_neq_compare_json_values_and_numbers_by_value() {
    assert!(holds("eq", Some(json!("Won")), Some(json!("Won"))));
    assert!(!holds("eq", Some(json!("Won")), Some(json!("won"))));
    assert!(holds("eq", Some(json!(1)), Some(json!(1.0))));
    assert!(
        !holds("eq", Some(json!(1)), Some(json!("1"))),
        "no type coercion"
    );
    assert!(holds("eq", Some(json!(false)), Some(json!(false))));
    assert!(
        holds("eq", Some(json!(null)), None),
        "a missing field equals null"
    );
    assert!(holds(
        "eq",
        Some(json!({"a": [1, 2]})),
        Some(json!({"a": [1, 2.0]}))
    ));
    assert!(!holds("eq", Some(json!("x")), None));
    assert!(holds("neq", Some(json!("x")), None));
    assert!(holds("neq", Some(json!(2)), Some(json!(3))));
    assert!(!holds("neq", Some(json!("é")), Some(json!("é"))));
}

#[test]
fn ordering_compares_numbers_dates_and_text() {
    assert!(holds("gt", Some(json!(1000)), Some(json!(1000.5))));
    assert!(!holds("gt", Some(json!(1000)), Some(json!(1000))));
    assert!(holds("gte", Some(json!(1000)), Some(json!(1000))));
    assert!(holds("lt", Some(json!(0)), Some(json!(-0.1))));
    assert!(holds("lte", Some(json!(-5)), Some(json!(-5.0))));
    // Numeric text against a number compares as numbers.
    assert!(holds("gt", Some(json!(9)), Some(json!("10"))));
    // ISO dates compare as instants, whatever their offsets.
    assert!(holds(
        "gt",
        Some(json!("2024-01-15T10:00:00Z")),
        Some(json!("2024-01-15T11:30:00+01:00"))
    ));
    assert!(holds(
        "lt",
        Some(json!("2024-01-15T10:00:00Z")),
        Some(json!("2024-01-15T09:59:59.000+0000"))
    ));
    // Other text compares by code point.
    assert!(holds("lt", Some(json!("b")), Some(json!("a"))));
    assert!(holds("gt", Some(json!("Z")), Some(json!("é"))));
    // Missing, null and mismatched types never hold.
    assert!(!holds("gt", Some(json!(1)), None));
    assert!(!holds("gt", Some(json!(1)), Some(json!(null))));
    assert!(!holds("lt", Some(json!(1)), Some(json!(true))));
    assert!(!holds("lt", Some(json!(1)), Some(json!("one"))));
}

#[test]
fn contains_starts_with_and_ends_with() {
    assert!(holds(
        "contains",
        Some(json!("bank")),
        Some(json!("Investment banking"))
    ));
    assert!(!holds(
        "contains",
        Some(json!("Bank")),
        Some(json!("Investment banking"))
    ));
    assert!(holds(
        "contains",
        Some(json!("vip")),
        Some(json!(["new", "vip"]))
    ));
    assert!(holds("contains", Some(json!(2)), Some(json!([1, 2.0]))));
    assert!(holds("contains", Some(json!(23)), Some(json!(1234))));
    assert!(!holds("contains", Some(json!("x")), None));
    assert!(!holds("contains", Some(json!("x")), Some(json!({"x": 1}))));
    assert!(holds(
        "starts_with",
        Some(json!("+44")),
        Some(json!("+44 20 7946"))
    ));
    assert!(holds("starts_with", Some(json!("00")), Some(json!("00ΩΩ"))));
    assert!(holds(
        "ends_with",
        Some(json!("@example.com")),
        Some(json!("ada@example.com"))
    ));
    assert!(holds("ends_with", Some(json!("5")), Some(json!(12.5))));
    assert!(!holds("ends_with", Some(json!("x")), Some(json!(null))));
}

#[test]
fn in_and_not_in() {
    let list = json!(["Negotiation", "Review", 3, null]);
    assert!(holds("in", Some(list.clone()), Some(json!("Review"))));
    assert!(holds("in", Some(list.clone()), Some(json!(3.0))));
    assert!(
        holds("in", Some(list.clone()), None),
        "null in the list matches a missing field"
    );
    assert!(!holds("in", Some(json!(["a"])), None));
    assert!(!holds("in", Some(list.clone()), Some(json!("review"))));
    assert!(holds("not_in", Some(list.clone()), Some(json!("Closed"))));
    assert!(!holds("not_in", Some(list), Some(json!("Negotiation"))));
    assert!(holds("not_in", Some(json!(["a"])), None));
}

#[test]
fn exists_and_not_exists() {
    assert!(holds("exists", None, Some(json!(""))));
    assert!(holds("exists", None, Some(json!(0))));
    assert!(!holds("exists", None, Some(json!(null))));
    assert!(!holds("exists", None, None));
    assert!(holds("not_exists", None, None));
    assert!(holds("not_exists", None, Some(json!(null))));
    assert!(!holds("not_exists", None, Some(json!([]))));
}

#[test]
fn filters_all_must_hold_and_read_nested_fields_and_task_values() {
    let mut document = schema_with(json!([
        {"targetField": "out", "mappingType": "direct", "config": {"type": "direct", "sourceField": "id"}}
    ]));
    document["source"]["filters"] = json!([
        {"field": "Account.Industry", "operator": "eq", "value": "{{task.industry}}"},
        {"field": "IsDeleted", "operator": "neq", "value": true}
    ]);
    let schema = compile(document);
    let config = task(json!({"industry": "Banking"}));
    let record = |industry: &str, deleted: bool| json!({"id": "r", "Account": {"Industry": industry}, "IsDeleted": deleted});
    assert!(matches!(
        map_with(&schema, Some(&config), &record("Banking", false)),
        RecordOutcome::Mapped(_)
    ));
    let RecordOutcome::Skipped(s) = map_with(&schema, Some(&config), &record("Retail", false))
    else {
        panic!("not skipped")
    };
    assert_eq!(s.filter_index, 0);
    assert!(s.reason.contains("Account.Industry"), "{}", s.reason);
    let RecordOutcome::Skipped(s) = map_with(&schema, Some(&config), &record("Banking", true))
    else {
        panic!("not skipped")
    };
    assert_eq!(s.filter_index, 1);
    // Without the task value the filter cannot be evaluated: an error, not a skip.
    let RecordOutcome::Failed { errors } = map_with(&schema, None, &record("Banking", false))
    else {
        panic!("not failed")
    };
    assert_eq!(errors[0].code, "missing_task_value");
    assert_eq!(errors[0].source_path.as_deref(), Some("Account.Industry"));
}
