//! JSON <-> DynamoDB `AttributeValue`.
//!
//! Strings are `S`, numbers `N` (read back as `i64` when the text is an exact integer in range,
//! otherwise as `f64`), booleans `BOOL`, null `NULL`, arrays `L` and objects `M`. We never write
//! sets or binaries; sets written by other tools read back as arrays, binaries are rejected as
//! corrupt because JSON has no faithful representation for them.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use hub_core::ports::{Item, Key, PK, SK, StoreError};
use serde_json::{Map, Number, Value};

pub type AttributeMap = HashMap<String, AttributeValue>;

pub fn to_attribute(value: &Value) -> AttributeValue {
    match value {
        Value::Null => AttributeValue::Null(true),
        Value::Bool(b) => AttributeValue::Bool(*b),
        Value::Number(n) => AttributeValue::N(n.to_string()),
        Value::String(s) => AttributeValue::S(s.clone()),
        Value::Array(values) => AttributeValue::L(values.iter().map(to_attribute).collect()),
        Value::Object(fields) => AttributeValue::M(to_attribute_map(fields)),
    }
}

pub fn to_attribute_map(item: &Map<String, Value>) -> AttributeMap {
    item.iter()
        .map(|(name, value)| (name.clone(), to_attribute(value)))
        .collect()
}

/// The `pk`/`sk` key map; DynamoDB rejects empty key strings, so we do too (with our message).
pub fn key_map(key: &Key) -> Result<AttributeMap, StoreError> {
    if key.pk.is_empty() || key.sk.is_empty() {
        return Err(StoreError::Validation(
            "key attributes `pk` and `sk` must be non-empty strings".into(),
        ));
    }
    Ok(HashMap::from([
        (PK.to_owned(), AttributeValue::S(key.pk.clone())),
        (SK.to_owned(), AttributeValue::S(key.sk.clone())),
    ]))
}

pub fn from_attribute(attribute: &AttributeValue) -> Result<Value, StoreError> {
    Ok(match attribute {
        AttributeValue::S(s) => Value::String(s.clone()),
        AttributeValue::N(n) => Value::Number(parse_number(n)?),
        AttributeValue::Bool(b) => Value::Bool(*b),
        AttributeValue::Null(_) => Value::Null,
        AttributeValue::L(values) => Value::Array(
            values
                .iter()
                .map(from_attribute)
                .collect::<Result<_, _>>()?,
        ),
        AttributeValue::M(fields) => Value::Object(from_attribute_map(fields)?),
        AttributeValue::Ss(values) => {
            Value::Array(values.iter().cloned().map(Value::String).collect())
        }
        AttributeValue::Ns(values) => Value::Array(
            values
                .iter()
                .map(|n| parse_number(n).map(Value::Number))
                .collect::<Result<_, _>>()?,
        ),
        AttributeValue::B(_) | AttributeValue::Bs(_) => {
            return Err(StoreError::Corrupt(
                "a binary attribute has no JSON representation".into(),
            ));
        }
        _ => {
            return Err(StoreError::Corrupt(
                "an attribute of a type this SDK does not know".into(),
            ));
        }
    })
}

pub fn from_attribute_map(map: &AttributeMap) -> Result<Item, StoreError> {
    map.iter()
        .map(|(name, attribute)| Ok((name.clone(), from_attribute(attribute)?)))
        .collect()
}

fn parse_number(text: &str) -> Result<Number, StoreError> {
    if let Ok(integer) = text.parse::<i64>() {
        return Ok(Number::from(integer));
    }
    text.parse::<f64>()
        .ok()
        .and_then(Number::from_f64)
        .ok_or_else(|| StoreError::Corrupt(format!("`{text}` is not a representable number")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_json_type_round_trips() {
        let value = json!({
            "s": "text", "empty": "", "i": -42, "big": i64::MAX, "f": 1.5, "t": true,
            "n": null, "l": [1, "a", [false], {"x": null}], "m": {"nested": {"deep": 2.25}}
        });
        let attribute = to_attribute(&value);
        assert_eq!(from_attribute(&attribute).unwrap(), value);
    }

    #[test]
    fn types_map_to_the_documented_attribute_kinds() {
        assert_eq!(to_attribute(&json!("a")), AttributeValue::S("a".into()));
        assert_eq!(to_attribute(&json!(7)), AttributeValue::N("7".into()));
        assert_eq!(to_attribute(&json!(0.5)), AttributeValue::N("0.5".into()));
        assert_eq!(to_attribute(&json!(false)), AttributeValue::Bool(false));
        assert_eq!(to_attribute(&json!(null)), AttributeValue::Null(true));
        assert_eq!(
            to_attribute(&json!([1])),
            AttributeValue::L(vec![AttributeValue::N("1".into())])
        );
        assert!(matches!(to_attribute(&json!({"a": 1})), AttributeValue::M(m) if m.len() == 1));
    }

    #[test]
    fn numbers_read_back_as_integers_only_when_exact() {
        let read = |n: &str| from_attribute(&AttributeValue::N(n.into())).unwrap();
        assert_eq!(read("12"), json!(12));
        assert!(read("12").is_i64());
        assert_eq!(read("-9223372036854775808"), json!(i64::MIN));
        assert!(read("2.5").is_f64());
        assert!(read("1E+2").is_f64());
        // Beyond i64 the value survives only approximately, as the port documents.
        assert!(read("18446744073709551616").is_f64());
        assert!(matches!(
            from_attribute(&AttributeValue::N("not a number".into())),
            Err(StoreError::Corrupt(_))
        ));
    }

    #[test]
    fn sets_read_as_arrays_and_binaries_are_corrupt() {
        let strings = AttributeValue::Ss(vec!["a".into(), "b".into()]);
        assert_eq!(from_attribute(&strings).unwrap(), json!(["a", "b"]));
        let numbers = AttributeValue::Ns(vec!["1".into(), "1.5".into()]);
        assert_eq!(from_attribute(&numbers).unwrap(), json!([1, 1.5]));
        let binary = AttributeValue::B(aws_smithy_types::Blob::new(vec![1, 2]));
        assert!(matches!(
            from_attribute(&binary),
            Err(StoreError::Corrupt(_))
        ));
    }

    #[test]
    fn empty_key_parts_are_rejected_before_any_call() {
        assert!(key_map(&Key::new("a", "b")).is_ok());
        assert!(matches!(
            key_map(&Key::new("", "b")),
            Err(StoreError::Validation(_))
        ));
    }
}
