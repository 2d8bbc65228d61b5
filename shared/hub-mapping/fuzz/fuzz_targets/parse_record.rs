//! Arbitrary bytes as a record's text: the engine's parser must never panic, must agree with
//! serde_json on what is JSON (except numbers serde_json cannot hold, which the engine keeps),
//! a record must map the same from its canonical text as from its `serde_json::Value`, and
//! parsing only what the schema reads must give exactly what parsing the whole text gives,
//! errors included.
#![no_main]

use std::sync::OnceLock;

use hub_core::model::{ConversionSchema, decode_value};
use hub_mapping::{CompiledSchema, RecordInput, RecordOutcome};
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};

fn schema() -> &'static CompiledSchema {
    static SCHEMA: OnceLock<CompiledSchema> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let document: ConversionSchema = decode_value(json!({
            "id": "fuzz", "name": "fuzz", "source": {"entity": "E"},
            "target": {"shardTypeId": "t", "createIfMissing": true, "updateIfExists": true, "deleteIfRemoved": false},
            "fieldMappings": [
                {"targetField": "a", "mappingType": "direct", "config": {"type": "direct", "sourceField": "a"}},
                {"targetField": "all", "mappingType": "flatten", "config": {"type": "flatten", "sourceField": "b", "path": "$..*"}}
            ],
            "deduplication": {"strategy": "field_match", "matchFields": ["id", "a"]},
            "isActive": true
        }))
        .expect("schema");
        CompiledSchema::compile(&document).expect("compiles")
    })
}

/// Reads nested members, so that skipping and parsing interleave at several depths.
fn nested_schema() -> &'static CompiledSchema {
    static SCHEMA: OnceLock<CompiledSchema> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let document: ConversionSchema = decode_value(json!({
            "id": "fuzz-nested", "name": "fuzz", "source": {"entity": "E", "filters": [{"field": "f.g", "operator": "neq", "value": 1}]},
            "target": {"shardTypeId": "t", "createIfMissing": true, "updateIfExists": true, "deleteIfRemoved": false},
            "fieldMappings": [
                {"targetField": "x", "mappingType": "direct", "config": {"type": "direct", "sourceField": "a.b.c"}},
                {"targetField": "y", "mappingType": "composite", "config": {"type": "composite", "sourceFields": ["a.d", "e"], "separator": "-"}},
                {"targetField": "z", "mappingType": "flatten", "config": {"type": "flatten", "sourceField": "l", "path": "$[0].k"}}
            ],
            "deduplication": {"strategy": "external_id", "externalIdField": "id"},
            "isActive": true
        }))
        .expect("schema");
        CompiledSchema::compile(&document).expect("compiles")
    })
}

fn is_invalid_record(outcome: &RecordOutcome) -> bool {
    matches!(outcome, RecordOutcome::Failed { errors } if errors.iter().any(|e| e.code == "invalid_record"))
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for schema in [schema(), nested_schema()] {
        let mapper = schema.bind(None);
        assert_eq!(
            mapper.map_record(0, RecordInput::Text(text)),
            mapper.map_record_fully_parsed(0, text),
            "lazy and full parses disagree on {text:?}"
        );
    }
    let mapper = schema().bind(None);
    let ours = mapper.map_record(0, RecordInput::Text(text));
    match serde_json::from_str::<Value>(text) {
        Ok(value) => {
            if value.is_object() {
                assert!(
                    !is_invalid_record(&ours),
                    "serde_json accepts {text:?}: {ours:?}"
                );
            }
            let canonical = serde_json::to_string(&value).expect("serialise");
            let from_text = mapper.map_record(0, RecordInput::Text(&canonical));
            let from_value = mapper.map_record(0, RecordInput::Value(&value));
            assert_eq!(from_text, from_value, "{canonical}");
        }
        Err(error) => {
            // The engine keeps numbers serde_json rejects as out of range (`1e400`), and
            // serde_json stops at a depth the engine counts one level differently.
            let tolerated = error.to_string().contains("number out of range")
                || error.to_string().contains("recursion limit");
            if !tolerated {
                assert!(
                    is_invalid_record(&ours),
                    "serde_json rejects {text:?} ({error}): {ours:?}"
                );
            }
        }
    }
});
