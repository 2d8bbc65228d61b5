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

/// How many bytes `value` takes written as compact JSON, counted as it is written: nothing is
/// kept, so measuring a large document allocates nothing.
pub fn encoded_len<T: Serialize + ?Sized>(value: &T) -> serde_json::Result<usize> {
    struct Counter(usize);
    impl std::io::Write for Counter {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0 += bytes.len();
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter(0);
    serde_json::to_writer(&mut counter, value)?;
    Ok(counter.0)
}

/// The most bytes `text` can take written as a JSON string: the quotes, and every byte
/// escaped to six (`\u001f`). The least is its length and the quotes.
pub fn string_len_at_most(text: &str) -> usize {
    text.len().saturating_mul(6).saturating_add(2)
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
    fn lengths_are_those_of_the_written_text() {
        let value = json!({"a": "quote \" slash \\ \u{1} é", "n": [1, -2.5e-7, null]});
        assert_eq!(encoded_len(&value).unwrap(), value.to_string().len());
        for text in ["", "plain", "\"\\\n", "\u{1}\u{1f}", "é漢"] {
            let written = serde_json::to_string(text).unwrap().len();
            assert_eq!(encoded_len(text).unwrap(), written);
            assert!(text.len() + 2 <= written && written <= string_len_at_most(text));
        }
        assert_eq!(
            string_len_at_most("\u{1}"),
            serde_json::to_string("\u{1}").unwrap().len()
        );
    }

    #[test]
    fn text_that_is_not_one_document_is_refused() {
        for text in ["", "{", "{} {}", "{\"a\":}", "nul"] {
            assert!(RawJson::from_text(text.into()).is_err(), "{text:?}");
        }
    }
}
