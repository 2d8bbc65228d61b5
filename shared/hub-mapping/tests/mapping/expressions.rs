//! Custom expressions: the `custom` transformation and `custom` conditions over several
//! fields, and their sandbox.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::{code, compile, map, map_with, ok, out, schema_with, single, task, transform};
use hub_mapping::RecordOutcome;

fn custom(expression: &str) -> serde_json::Value {
    json!([{"type": "custom", "config": {"expression": expression}}])
}

#[test]
fn custom_transformation_sees_value_record_and_task() {
    assert_eq!(ok(transform(custom("value * 2 + 1"), json!(20))), json!(41));
    assert_eq!(
        ok(transform(
            custom("value.to_upper() + \"!\""),
            json!("héllo")
        )),
        json!("HÉLLO!")
    );
    assert_eq!(
        ok(transform(
            custom("if value == () { \"none\" } else { value }"),
            json!(null)
        )),
        json!("none")
    );
    assert_eq!(
        ok(transform(custom("value.len()"), json!([1, 2, 3]))),
        json!(3)
    );
    assert_eq!(
        ok(transform(custom("#{ n: value, ok: true }"), json!(1.5))),
        json!({"n": 1.5, "ok": true})
    );

    let schema = compile(single(
        "transform",
        json!({"sourceField": "Amount", "transformations": [
            {"type": "to_number"},
            {"type": "custom", "config": {"expression": "if record.Currency == task.home { value } else { value * 2 }"}},
            {"type": "round", "config": {"decimals": 1}}
        ]}),
    ));
    let config = task(json!({"home": "EUR"}));
    let record = json!({"id": "1", "Amount": "10.25", "Currency": "USD"});
    let RecordOutcome::Mapped(m) = map_with(&schema, Some(&config), &record) else {
        panic!("not mapped")
    };
    assert_eq!(m.data.to_map()["out"], json!(20.5));

    // A custom step runs even on a missing value, so it can supply one.
    let fallback = compile(single(
        "transform",
        json!({"sourceField": "Nick", "transformations": [{"type": "custom", "config": {"expression": "value ?? record.First"}}]}),
    ));
    assert_eq!(ok(out(&fallback, json!({"First": "Ada"}))), json!("Ada"));
}

#[test]
fn custom_conditions_combine_fields() {
    let mut document = schema_with(json!([
        {"targetField": "tier", "mappingType": "conditional", "config": {"type": "conditional", "conditions": [
            {"condition": {"field": "Amount", "operator": "custom", "value": "value > 100000 && record.Stage == \"Closed Won\""},
             "then": {"type": "value", "value": "key account"}}
        ], "default": "standard"}}
    ]));
    document["source"]["filters"] = json!([
        {"field": "Email", "operator": "custom", "value": "value != () && value.contains(\"@\")"}
    ]);
    let schema = compile(document);
    let record = |amount: i64, stage: &str, email: serde_json::Value| json!({"id": "1", "Amount": amount, "Stage": stage, "Email": email});
    let tier = |r| match map(&schema, &r) {
        RecordOutcome::Mapped(m) => m.data.to_map()["tier"].clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        tier(record(250_000, "Closed Won", json!("a@x"))),
        json!("key account")
    );
    assert_eq!(
        tier(record(250_000, "Open", json!("a@x"))),
        json!("standard")
    );
    assert!(matches!(
        map(&schema, &record(1, "Open", json!(null))),
        RecordOutcome::Skipped(_)
    ));

    let not_boolean = compile(single(
        "conditional",
        json!({"conditions": [{"condition": {"field": "x", "operator": "custom", "value": "value + 1"}, "then": {"type": "value", "value": 1}}]}),
    ));
    let error = out(&not_boolean, json!({"x": 1})).unwrap_err();
    assert_eq!(error.code, "expression_failed");
    assert_eq!(error.source_path.as_deref(), Some("x"));
}

#[test]
fn failing_expressions_fail_their_record_only() {
    assert_eq!(
        code(transform(custom("throw \"no\""), json!(1))),
        "expression_failed"
    );
    assert_eq!(
        code(transform(custom("value / 0"), json!(1))),
        "expression_failed"
    );
    assert_eq!(
        code(transform(custom("value.no_such_method()"), json!(1))),
        "expression_failed"
    );
    assert_eq!(
        code(transform(custom("1.0 / 0.0"), json!(1))),
        "expression_failed"
    );
}

#[test]
fn the_sandbox_bounds_time_memory_and_depth() {
    let started = Instant::now();
    for hostile in [
        "loop {}",
        "let x = 0; while true { x += 1; }",
        "let s = \"xxxxxxxxxxxxxxxx\"; loop { s += s; }",
        "let a = []; loop { a.push(a.len()); }",
        "let m = #{}; let i = 0; loop { m[`k${i}`] = i; i += 1; }",
        "fn f(n) { f(n + 1) } f(0)",
        "let a = [1]; loop { a = [a, a]; }",
        "\"x\".pad(100000000, \"y\")",
    ] {
        assert_eq!(
            code(transform(custom(hostile), json!(1))),
            "expression_limit",
            "{hostile}"
        );
    }
    // Each evaluation is cut at 200 000 operations or 50 ms, whichever comes first.
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn expressions_cannot_reach_outside() {
    for forbidden in [
        "import \"fs\" as fs; 1",
        "eval(\"1 + 1\")",
        "undefined_variable + 1",
        "print(\"hello\")",
    ] {
        let error = crate::support::compile_error(single(
            "transform",
            json!({"sourceField": "v", "transformations": custom(forbidden)}),
        ));
        assert!(
            matches!(error.code(), "invalid_expression"),
            "{forbidden}: {error}"
        );
    }
    // There is no clock: a call to one fails at run time like any unknown function.
    assert_eq!(
        code(transform(custom("timestamp()"), json!(1))),
        "expression_failed"
    );
}
