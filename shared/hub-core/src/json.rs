//! [`RawJson`]: a JSON document kept as its text.
//!
//! A webhook payload crosses several hands before it is looked into, if it ever is: the
//! receiver's event, the bus, the transform queue, a stored unrouted delivery. Kept as a
//! `serde_json::Value` it would be parsed into a tree, copied and escaped again at each one;
//! kept as text it is copied as it is, and parsed only where something reads it.

use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

/// Valid JSON text (checked when it is made), serialised as itself: embedded in a larger
/// document it is written verbatim, and reading a document that holds it only checks and
/// copies its text.
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RawJson(Box<RawValue>);

impl RawJson {
    /// `null`.
    pub fn null() -> Self {
        Self(RawValue::NULL.to_owned())
    }

    /// The text of `value`.
    pub fn from_value(value: &Value) -> Self {
        // Writing a `Value` cannot fail (its keys are strings); `null` is never reached.
        Self(serde_json::value::to_raw_value(value).unwrap_or_else(|_| RawValue::NULL.to_owned()))
    }

    /// The JSON text of anything serialisable.
    pub fn encode<T: Serialize + ?Sized>(value: &T) -> serde_json::Result<Self> {
        serde_json::value::to_raw_value(value).map(Self)
    }

    /// Checks that `text` is one JSON document (surrounding whitespace is dropped) and keeps it.
    pub fn from_text(text: String) -> serde_json::Result<Self> {
        RawValue::from_string(text).map(Self)
    }

    /// The text, as it will be written.
    pub fn get(&self) -> &str {
        self.0.get()
    }

    /// Parses the text into `T`.
    pub fn decode<T: DeserializeOwned>(&self) -> serde_json::Result<T> {
        serde_json::from_str(self.get())
    }

    /// Parses the text into a tree.
    pub fn to_value(&self) -> serde_json::Result<Value> {
        self.decode()
    }

    pub fn is_null(&self) -> bool {
        self.get() == "null"
    }

    /// Whether the document is an object, without parsing it.
    pub fn is_object(&self) -> bool {
        self.get().starts_with('{')
    }
}

/// `null`.
impl Default for RawJson {
    fn default() -> Self {
        Self::null()
    }
}

impl From<&Value> for RawJson {
    fn from(value: &Value) -> Self {
        Self::from_value(value)
    }
}

impl From<Value> for RawJson {
    fn from(value: Value) -> Self {
        Self::from_value(&value)
    }
}

/// Equal when they hold the same JSON value, however it is spaced or its members ordered.
impl PartialEq for RawJson {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get() || self.to_value().ok() == other.to_value().ok()
    }
}

impl PartialEq<Value> for RawJson {
    fn eq(&self, other: &Value) -> bool {
        self.to_value().ok().as_ref() == Some(other)
    }
}

impl fmt::Debug for RawJson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.get())
    }
}

impl fmt::Display for RawJson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.get())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[derive(Serialize, Deserialize)]
    struct Holder {
        name: String,
        payload: RawJson,
    }

    #[test]
    fn the_text_travels_verbatim_inside_a_document() {
        let payload = RawJson::from_text(" {\"b\": [1, 2],\n \"a\": \"\\u00e9\"} ".into()).unwrap();
        assert_eq!(payload.get(), "{\"b\": [1, 2],\n \"a\": \"\\u00e9\"}");
        let text = serde_json::to_string(&Holder {
            name: "x".into(),
            payload,
        })
        .unwrap();
        assert_eq!(
            text,
            "{\"name\":\"x\",\"payload\":{\"b\": [1, 2],\n \"a\": \"\\u00e9\"}}"
        );
        let back: Holder = serde_json::from_str(&text).unwrap();
        assert_eq!(back.payload, json!({"a": "é", "b": [1, 2]}));
        assert!(back.payload.is_object());
    }

    #[test]
    fn equality_is_of_values() {
        let spaced = RawJson::from_text("{ \"a\": 1, \"b\": 2 }".into()).unwrap();
        let compact = RawJson::from_value(&json!({"b": 2, "a": 1}));
        assert_eq!(spaced, compact);
        assert_ne!(spaced, RawJson::null());
        assert!(RawJson::null().is_null());
        assert!(!RawJson::from_value(&json!([1])).is_object());
    }

    #[test]
    fn text_that_is_not_one_document_is_refused() {
        for text in ["", "{", "{} {}", "{\"a\":}", "nul"] {
            assert!(RawJson::from_text(text.into()).is_err(), "{text:?}");
        }
    }
}
