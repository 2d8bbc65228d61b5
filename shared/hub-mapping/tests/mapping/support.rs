//! Builders for small schemas and a runner that maps each record both as text and as a
//! `serde_json::Value`, checking that the two agree.

use hub_core::messages::RecordError;
use hub_core::model::{ConversionSchema, SyncTaskConfig, decode_value};
use hub_mapping::{CompileError, CompiledSchema, Mapper, RecordInput, RecordOutcome};
use serde_json::{Value, json};

pub fn schema_from(document: Value) -> ConversionSchema {
    decode_value(document).expect("schema document")
}

/// A schema around `mappings`, deduplicating on `id`.
pub fn schema_with(mappings: Value) -> Value {
    json!({
        "id": "test-schema",
        "name": "Test schema",
        "source": {"entity": "Thing"},
        "target": {
            "shardTypeId": "c_thing",
            "createIfMissing": true,
            "updateIfExists": true,
            "deleteIfRemoved": false
        },
        "fieldMappings": mappings,
        "deduplication": {"strategy": "external_id", "externalIdField": "id"},
        "isActive": true
    })
}

/// A schema whose only mapping is `{targetField: "out", ...mapping}`.
pub fn single(mapping_type: &str, config: Value) -> Value {
    let mut config = config;
    config["type"] = json!(mapping_type);
    schema_with(json!([{"targetField": "out", "mappingType": mapping_type, "config": config}]))
}

pub fn compile(document: Value) -> CompiledSchema {
    CompiledSchema::compile(&schema_from(document)).unwrap_or_else(|e| panic!("{e}"))
}

pub fn compile_error(document: Value) -> CompileError {
    match CompiledSchema::compile(&schema_from(document)) {
        Ok(_) => panic!("the schema compiled"),
        Err(error) => error,
    }
}

pub fn task(config: Value) -> SyncTaskConfig {
    serde_json::from_value(config).expect("task config")
}

/// Maps `record` as text (parsing only what the schema reads, and parsing it whole) and as a
/// value with `task`; all three must give the same outcome.
pub fn map_with(
    schema: &CompiledSchema,
    task: Option<&SyncTaskConfig>,
    record: &Value,
) -> RecordOutcome {
    let mapper = schema.bind(task);
    let text = record.to_string();
    let from_text = mapper.map_record(0, RecordInput::Text(&text));
    let from_value = mapper.map_record(0, RecordInput::Value(record));
    assert_eq!(
        settled(from_text.clone()),
        settled(from_value),
        "text and value inputs disagree on {record}"
    );
    assert_same_as_full_parse(&mapper, &text);
    from_text
}

/// Which limit a runaway expression hits first, time or operations, depends on the machine's
/// load: of `expression_limit` errors only the code is compared.
fn settled(mut outcome: RecordOutcome) -> RecordOutcome {
    if let RecordOutcome::Failed { errors } = &mut outcome {
        for error in errors.iter_mut().filter(|e| e.code == "expression_limit") {
            error.message.clear();
        }
    }
    outcome
}

/// The lazily parsed record maps exactly as the fully parsed one, down to the bytes of the
/// serialised outcome.
pub fn assert_same_as_full_parse(mapper: &Mapper<'_>, text: &str) {
    let bytes = |outcome| serde_json::to_string(&settled(outcome)).expect("serialise");
    assert_eq!(
        bytes(mapper.map_record(0, RecordInput::Text(text))),
        bytes(mapper.map_record_fully_parsed(0, text)),
        "the lazy and the full parse disagree on {text}"
    );
}

pub fn map(schema: &CompiledSchema, record: &Value) -> RecordOutcome {
    map_with(schema, None, record)
}

/// The `out` field of a single-mapping schema: `Ok(None)` when it is unset, `Err` with the
/// record's first error.
/// A mapped `out` field (`None`: unset), or the record's first error.
pub type Outcome = Result<Option<Value>, Box<RecordError>>;

pub fn out(schema: &CompiledSchema, record: Value) -> Outcome {
    let mut record = record;
    if record.get("id").is_none() {
        record["id"] = json!("rec-1");
    }
    match map(schema, &record) {
        RecordOutcome::Mapped(m) => Ok(m.data.get("out")),
        RecordOutcome::Failed { errors } => {
            Err(Box::new(errors.into_iter().next().expect("an error")))
        }
        RecordOutcome::Skipped(s) => panic!("skipped: {}", s.reason),
    }
}

/// `out` of a transform mapping of `v` through `transformations`.
pub fn transform(transformations: Value, v: Value) -> Outcome {
    let schema = compile(single(
        "transform",
        json!({"sourceField": "v", "transformations": transformations}),
    ));
    out(&schema, json!({"v": v}))
}

pub fn ok(result: Outcome) -> Value {
    match result {
        Ok(Some(value)) => value,
        Ok(None) => panic!("no value"),
        Err(error) => panic!("{}: {}", error.code, error.message),
    }
}

pub fn code(result: Outcome) -> String {
    match result {
        Err(error) => error.code,
        Ok(value) => panic!("mapped to {value:?}"),
    }
}
