//! Random schemas (every mapping type, transformation, operator, rule and deduplication
//! strategy, with paths, formats, patterns, expressions and placeholders from pools of valid and
//! broken values) compiled and applied to random records, as text and as values. Nothing may
//! panic, and both inputs must give the same outcome.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use hub_core::model::{ConversionSchema, SyncTaskConfig, decode_value};
use hub_mapping::{BatchOutcome, CompiledSchema, InMemoryLookup, RecordInput, RecordOutcome};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value, json};

const FIELDS: &[&str] = &[
    "a",
    "b",
    "c",
    "Name",
    "Amount",
    "when",
    "list",
    "nested.x",
    "nested.y.z",
    "list[0]",
    "list.1",
    "list[-1]",
    "['odd.key']",
    "a..b",
    "",
    "é",
    "a[",
    "nested.list[*]",
];
const PATHS: &[&str] = &[
    "x",
    "y.z",
    "$.x",
    "$['y']",
    "$.list[*]",
    "$..x",
    "$.*",
    "$",
    "$.list[-1]",
    "$[?(@.x)]",
    "$.a[0:2]",
    "$..",
    "list[0]",
];
const PATTERNS: &[&str] = &[
    "a+",
    "(\\d+)",
    "^x$",
    "(",
    "[[:alpha:]]",
    "\\p{Greek}",
    "a{2,}",
    ".*",
];
const DATE_FORMATS: &[&str] = &[
    "%Y-%m-%d",
    "%d/%m/%Y %H:%M",
    "%s",
    "iso8601",
    "rfc2822",
    "epoch_seconds",
    "epoch_millis",
    "%Q",
    "%Y %Z",
    "plain",
    "%H:%M",
    "%Y%m%d%H%M%S%.f%z",
];
const ZONES: &[&str] = &[
    "UTC",
    "Europe/Paris",
    "America/New_York",
    "Asia/Kolkata",
    "Mars/Base",
];
const EXPRESSIONS: &[&str] = &[
    "value",
    "value * 2",
    "value + 1",
    "record.a",
    "record.nested.x ?? task.k",
    "value.len()",
    "if value == () { 0 } else { value }",
    "[value, value]",
    "#{a: value}",
    "throw \"x\"",
    "let s = \"ab\"; for i in 0..30 { s += s; } s",
    "value > 1",
    "record",
    "task",
    "1 / 0",
    "undefined_name",
    "fn f(x) { f(x) } f(1)",
    "value.to_upper()",
    "`${value}`",
];
const OPERATORS: &[&str] = &[
    "eq",
    "neq",
    "gt",
    "gte",
    "lt",
    "lte",
    "contains",
    "starts_with",
    "ends_with",
    "in",
    "not_in",
    "exists",
    "not_exists",
    "custom",
];

#[derive(Debug, Arbitrary)]
struct Input {
    filters: Vec<Cond>,
    mappings: Vec<Mapping>,
    relationships: Vec<(u8, u8, bool)>,
    dedup: (u8, Vec<u8>, Option<u8>),
    task: Vec<(u8, Scalar)>,
    records: Vec<Json>,
}

#[derive(Debug, Arbitrary)]
struct Mapping {
    kind: u8,
    field: u8,
    other: u8,
    steps: Vec<Step>,
    rules: Vec<(Cond, u8, Json, Vec<Step>)>,
    constant: Json,
    template: bool,
    separator: Option<String>,
    table: Vec<(String, Json)>,
    case_sensitive: Option<bool>,
    required: bool,
    validation: Vec<(u8, u8, String)>,
}

#[derive(Debug, Arbitrary)]
struct Cond {
    field: u8,
    operator: u8,
    value: Json,
    expression: u8,
}

#[derive(Debug, Arbitrary)]
struct Step {
    kind: u8,
    n: i32,
    text: String,
    pick: u8,
    zone: Option<u8>,
}

#[derive(Debug, Arbitrary)]
enum Scalar {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
    Placeholder,
    RatesTable,
}

/// A JSON value of bounded depth and size.
#[derive(Debug)]
struct Json(Value);

impl<'a> Arbitrary<'a> for Json {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        fn value(u: &mut Unstructured<'_>, depth: u32) -> arbitrary::Result<Value> {
            let choice: u8 = if depth > 3 {
                u.int_in_range(0..=5)?
            } else {
                u.int_in_range(0..=8)?
            };
            Ok(match choice {
                0 => Value::Null,
                1 => Value::Bool(u.arbitrary()?),
                2 => json!(u.arbitrary::<i64>()?),
                3 => {
                    serde_json::Number::from_f64(u.arbitrary()?).map_or(Value::Null, Value::Number)
                }
                4 => Value::String(u.arbitrary()?),
                5 => Value::String(
                    pick(
                        u,
                        &[
                            "2024-01-15",
                            "2024-03-31T02:30:00",
                            "Mon, 15 Jan 2024 10:30:00 GMT",
                            "1705314600",
                            "{{task.k}}",
                            "yes",
                            "1e3",
                            "1,000",
                            "",
                        ],
                    )?
                    .to_owned(),
                ),
                6 => Value::Array(
                    (0..u.int_in_range(0..=4)?)
                        .map(|_| value(u, depth + 1))
                        .collect::<Result<_, _>>()?,
                ),
                _ => {
                    let mut map = Map::new();
                    for _ in 0..u.int_in_range(0..=5)? {
                        let key = pick(
                            u,
                            &[
                                "a", "b", "c", "x", "y", "z", "list", "nested", "Name", "Amount",
                                "when", "id",
                            ],
                        )?;
                        map.insert(key.to_owned(), value(u, depth + 1)?);
                    }
                    Value::Object(map)
                }
            })
        }
        value(u, 0).map(Json)
    }
}

fn pick<'p>(u: &mut Unstructured<'_>, pool: &[&'p str]) -> arbitrary::Result<&'p str> {
    Ok(pool[u.choose_index(pool.len())?])
}

fn at<'p>(pool: &[&'p str], i: u8) -> &'p str {
    pool[usize::from(i) % pool.len()]
}

fn step(s: &Step) -> Value {
    let zone = s.zone.map(|z| at(ZONES, z));
    let with_zone = |mut config: Value| {
        if let Some(zone) = zone {
            config["timezone"] = json!(zone);
        }
        config
    };
    let (kind, config) = match s.kind % 23 {
        0 => ("uppercase", None),
        1 => ("lowercase", None),
        2 => ("trim", None),
        3 => (
            "truncate",
            Some(json!({"maxLength": s.n.unsigned_abs() % 50})),
        ),
        4 => (
            "replace",
            Some(json!({"search": s.text, "replace": at(FIELDS, s.pick)})),
        ),
        5 => (
            "regex_replace",
            Some(json!({"pattern": at(PATTERNS, s.pick), "replace": "$1-"})),
        ),
        6 => (
            "split",
            Some(
                json!({"separator": if s.text.is_empty() { " " } else { &s.text }, "index": s.n.unsigned_abs() % 4}),
            ),
        ),
        7 => ("concat", Some(json!({"prefix": s.text}))),
        8 => ("round", Some(json!({"decimals": s.n.unsigned_abs() % 17}))),
        9 => ("multiply", Some(json!({"factor": s.n}))),
        10 => ("divide", Some(json!({"divisor": s.n}))),
        11 => (
            "currency_convert",
            Some(
                json!({"from": "USD", "to": at(&["EUR", "USD", "GBP"], s.pick), "rates": if s.n % 2 == 0 { json!({"EUR": 0.5}) } else { Value::Null }}),
            ),
        ),
        12 => (
            "parse_date",
            Some(with_zone(json!({"format": at(DATE_FORMATS, s.pick)}))),
        ),
        13 => (
            "format_date",
            Some(with_zone(json!({"format": at(DATE_FORMATS, s.pick)}))),
        ),
        14 => ("add_days", Some(json!({"days": s.n}))),
        15 => ("to_timestamp", None),
        16 => ("to_iso_string", None),
        17 => ("to_string", None),
        18 => ("to_number", None),
        19 => ("to_boolean", None),
        20 => ("to_array", None),
        21 => ("to_date", None),
        _ => (
            "custom",
            Some(json!({"expression": at(EXPRESSIONS, s.pick)})),
        ),
    };
    let mut t = json!({"type": kind});
    if let Some(mut config) = config {
        if let Some(rates) = config.get("rates") {
            if rates.is_null() {
                config.as_object_mut().map(|c| c.remove("rates"));
            }
        }
        t["config"] = config;
    }
    t
}

fn condition(c: &Cond) -> Value {
    let operator = at(OPERATORS, c.operator);
    let mut condition = json!({"field": at(FIELDS, c.field), "operator": operator});
    match operator {
        "exists" | "not_exists" => {}
        "custom" => condition["value"] = json!(at(EXPRESSIONS, c.expression)),
        _ => condition["value"] = c.value.0.clone(),
    }
    condition
}

fn mapping(m: &Mapping, index: usize) -> Value {
    let field = at(FIELDS, m.field);
    let steps: Vec<Value> = m.steps.iter().take(4).map(step).collect();
    let (kind, config) = match m.kind % 7 {
        0 => ("direct", json!({"sourceField": field})),
        1 => (
            "transform",
            json!({"sourceField": field, "transformations": steps}),
        ),
        2 => {
            let conditions: Vec<Value> = m
                .rules
                .iter()
                .take(3)
                .map(|(cond, then, value, steps)| {
                    let then = match then % 3 {
                        0 => json!({"type": "value", "value": value.0}),
                        1 => json!({"type": "field", "sourceField": at(FIELDS, *then)}),
                        _ => json!({"type": "transform", "transformations": steps.iter().take(3).map(step).collect::<Vec<_>>()}),
                    };
                    json!({"condition": condition(cond), "then": then})
                })
                .collect();
            (
                "conditional",
                json!({"conditions": conditions, "default": m.constant.0}),
            )
        }
        3 => ("default", json!({"value": m.constant.0})),
        4 => {
            let fields = [field, at(FIELDS, m.other)];
            let mut config = json!({"sourceFields": fields});
            if m.template {
                config["template"] = json!(format!("${{{}}} and ${{{}}}!", fields[0], fields[1]));
            } else if let Some(separator) = &m.separator {
                config["separator"] = json!(separator);
            }
            ("composite", config)
        }
        5 => {
            let values: Map<String, Value> = m
                .table
                .iter()
                .take(5)
                .map(|(k, v)| (k.clone(), v.0.clone()))
                .collect();
            let mut config =
                json!({"sourceField": field, "values": values, "default": m.constant.0});
            if let Some(case_sensitive) = m.case_sensitive {
                config["caseSensitive"] = json!(case_sensitive);
            }
            ("lookup", config)
        }
        _ => (
            "flatten",
            json!({"sourceField": field, "path": at(PATHS, m.other)}),
        ),
    };
    let mut config = config;
    config["type"] = json!(kind);
    let validation: Vec<Value> = m
        .validation
        .iter()
        .take(3)
        .map(|(rule, n, text)| match rule % 9 {
            0 => json!({"type": "required"}),
            1 => json!({"type": "min_length", "value": n}),
            2 => json!({"type": "max_length", "value": n}),
            3 => json!({"type": "pattern", "value": if text.is_empty() { at(PATTERNS, *n) } else { text }}),
            4 => json!({"type": "min", "value": i64::from(*n) - 100}),
            5 => json!({"type": "max", "value": n}),
            6 => json!({"type": "email"}),
            7 => json!({"type": "url"}),
            _ => json!({"type": "enum", "values": [text, n]}),
        })
        .collect();
    json!({
        "targetField": format!("t{index}"),
        "mappingType": kind,
        "config": config,
        "required": m.required,
        "validation": validation
    })
}

fn task(pairs: &[(u8, Scalar)]) -> SyncTaskConfig {
    let mut config = Map::new();
    for (key, value) in pairs.iter().take(4) {
        let value = match value {
            Scalar::Null => Value::Null,
            Scalar::Bool(b) => json!(b),
            Scalar::Int(i) => json!(i),
            Scalar::Float(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
            Scalar::Text(t) => json!(t),
            Scalar::Placeholder => json!("{{task.k}}"),
            Scalar::RatesTable => json!({"base": "USD", "rates": {"EUR": 0.9, "GBP": -1}}),
        };
        config.insert(
            at(
                &["k", "industry", "currencyRates", "modifiedSinceField"],
                *key,
            )
            .to_owned(),
            value,
        );
    }
    serde_json::from_value(Value::Object(config)).unwrap_or_default()
}

fuzz_target!(|input: Input| {
    let mappings: Vec<Value> = input
        .mappings
        .iter()
        .take(6)
        .enumerate()
        .map(|(i, m)| mapping(m, i))
        .collect();
    let filters: Vec<Value> = input.filters.iter().take(2).map(condition).collect();
    let relationships: Vec<Value> = input
        .relationships
        .iter()
        .take(2)
        .enumerate()
        .map(|(i, (field, kind, by_id))| {
            let mut r = json!({
                "relationshipType": at(&["belongs_to", "has_one", "has_many", "many_to_many"], *kind),
                "targetField": format!("r{i}"),
                "sourceField": at(FIELDS, *field),
                "lookupShardType": "c_thing",
                "lookupByExternalId": by_id
            });
            if !by_id {
                r["lookupField"] = json!("email");
            }
            r
        })
        .collect();
    let (strategy, fields, id_field) = &input.dedup;
    let match_fields: Vec<&str> = fields.iter().take(3).map(|f| at(FIELDS, *f)).collect();
    let deduplication = match strategy % 3 {
        0 => {
            json!({"strategy": "external_id", "externalIdField": at(FIELDS, id_field.unwrap_or(0))})
        }
        1 => json!({"strategy": "field_match", "matchFields": match_fields}),
        _ => json!({"strategy": "composite", "matchFields": match_fields}),
    };
    let document = json!({
        "id": "fuzz", "name": "fuzz",
        "source": {"entity": "E", "filters": filters},
        "target": {"shardTypeId": "c_fuzz", "createIfMissing": true, "updateIfExists": true, "deleteIfRemoved": false},
        "fieldMappings": mappings,
        "relationshipMappings": relationships,
        "deduplication": deduplication,
        "isActive": true
    });
    let Ok(schema) = decode_value::<ConversionSchema>(document) else {
        return;
    };
    let Ok(compiled) = CompiledSchema::compile(&schema) else {
        return;
    };
    let config = task(&input.task);
    let mapper = compiled.bind(Some(&config));
    let records: Vec<Value> = input.records.into_iter().take(4).map(|r| r.0).collect();
    let texts: Vec<String> = records.iter().map(Value::to_string).collect();
    let from_values = mapper.map_batch(records.iter().map(RecordInput::from));
    let mut from_text: BatchOutcome = mapper.map_batch(texts.iter().map(|t| RecordInput::Text(t)));
    assert_eq!(from_text, from_values);
    // Parsing only what the schema reads changes nothing. (Which limit a runaway expression
    // hits first depends on the machine's load: only `expression_limit` codes are compared.)
    let settled = |mut outcome: RecordOutcome| {
        if let RecordOutcome::Failed { errors } = &mut outcome {
            for error in errors.iter_mut().filter(|e| e.code == "expression_limit") {
                error.message.clear();
            }
        }
        outcome
    };
    for (i, text) in texts.iter().enumerate() {
        let index = i as u32;
        assert_eq!(
            settled(mapper.map_record(index, RecordInput::Text(text))),
            settled(mapper.map_record_fully_parsed(index, text)),
            "{text}"
        );
    }
    let mut lookup = InMemoryLookup::new();
    lookup.insert("c_thing", "1", "internal-1");
    let _ = block_on(from_text.resolve_relationships(&lookup));
    let _ = hub_mapping::diff_outcomes(&from_text, &from_values);
});

/// Drives a future that never waits (the in-memory lookup answers at once).
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    use std::task::{Context, Poll, Waker};
    let mut context = Context::from_waker(Waker::noop());
    let mut future = std::pin::pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
    }
}
