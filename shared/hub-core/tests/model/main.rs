//! Domain model and message envelope tests: seed fixtures round-trip, invalid documents are
//! rejected with their JSON path, every other document type and envelope round-trips.

// The one-of-everything schema in `documents.rs` is a large `json!` literal.
#![recursion_limit = "512"]
mod documents;
mod fixtures;
mod invalid;
mod messages;

use std::path::PathBuf;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use hub_core::model::{Validate, load_json, load_value};

pub fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/seed")
}

/// The text of a seed fixture.
pub fn fixture(name: &str) -> String {
    let path = fixture_dir().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub fn fixture_value(name: &str) -> Value {
    serde_json::from_str(&fixture(name)).expect("fixtures are JSON")
}

/// Loads `original` as `T`, serialises it again and requires the very same JSON value.
pub fn assert_round_trip<T>(original: &Value) -> T
where
    T: DeserializeOwned + Serialize + Validate,
{
    let text = serde_json::to_string_pretty(original).expect("a value serialises");
    let loaded: T = load_json(&text).unwrap_or_else(|e| panic!("{e}\nin {text}"));
    let again = serde_json::to_value(&loaded).expect("model types serialise");
    assert_eq!(&again, original, "round trip changed the document");
    // And from a value, as stored items and event details are read.
    let from_value: T = load_value(original.clone()).expect("loads from a value");
    assert_eq!(serde_json::to_value(&from_value).unwrap(), again);
    loaded
}
