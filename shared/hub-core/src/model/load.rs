//! Reading documents: serde with path tracking, then semantic validation.

use std::fmt;

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::ModelError;

/// A JSON path in the notation of serde_path_to_error (`a.b[0].c`; `.` is the document), so
/// shape errors and validation errors name values the same way.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JsonPath(String);

impl JsonPath {
    pub fn root() -> Self {
        Self::default()
    }

    /// The path of member `name` of the object at `self`.
    pub fn key(&self, name: &str) -> Self {
        if self.0.is_empty() {
            Self(name.to_owned())
        } else {
            Self(format!("{}.{name}", self.0))
        }
    }

    /// The path of element `index` of the array at `self`.
    pub fn index(&self, index: usize) -> Self {
        Self(format!("{}[{index}]", self.0))
    }

    /// A validation error about the value at this path.
    pub fn invalid(&self, message: impl Into<String>) -> ModelError {
        ModelError::InvalidValue {
            path: self.to_string(),
            message: message.into(),
        }
    }

    /// `Err(self.invalid(..))` when `value` is empty: the most common rule of the model.
    pub(crate) fn non_empty(&self, value: &str) -> Result<(), ModelError> {
        if value.trim().is_empty() {
            Err(self.invalid("must not be empty"))
        } else {
            Ok(())
        }
    }
}

impl fmt::Display for JsonPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            f.write_str(".")
        } else {
            f.write_str(&self.0)
        }
    }
}

/// Rules of a document that serde cannot express (a mapping's `mappingType` agrees with its
/// `config.type`, template placeholders name source fields, a tenant connection names its
/// tenant, ...). `at` is where `self` sits in the document, so errors carry the full path.
pub trait Validate {
    fn validate_at(&self, at: &JsonPath) -> Result<(), ModelError>;

    fn validate(&self) -> Result<(), ModelError> {
        self.validate_at(&JsonPath::root())
    }
}

impl<T: Validate> Validate for Vec<T> {
    fn validate_at(&self, at: &JsonPath) -> Result<(), ModelError> {
        self.iter()
            .enumerate()
            .try_for_each(|(index, item)| item.validate_at(&at.index(index)))
    }
}

impl<T: Validate> Validate for Option<T> {
    fn validate_at(&self, at: &JsonPath) -> Result<(), ModelError> {
        self.as_ref().map_or(Ok(()), |value| value.validate_at(at))
    }
}

/// Parses and validates a document.
pub fn load_json<T: DeserializeOwned + Validate>(text: &str) -> Result<T, ModelError> {
    let document: T = decode_json(text)?;
    document.validate()?;
    Ok(document)
}

/// [`load_json`] for bytes (a request or message body).
pub fn load_slice<T: DeserializeOwned + Validate>(bytes: &[u8]) -> Result<T, ModelError> {
    let document: T = decode_with(serde_json::Deserializer::from_slice(bytes))?;
    document.validate()?;
    Ok(document)
}

/// [`load_json`] for a document already parsed as JSON (a stored item, an event detail).
pub fn load_value<T: DeserializeOwned + Validate>(value: Value) -> Result<T, ModelError> {
    let document: T = decode_value(value)?;
    document.validate()?;
    Ok(document)
}

/// Parses without semantic validation (message envelopes, whose shape is their whole contract).
pub fn decode_json<T: DeserializeOwned>(text: &str) -> Result<T, ModelError> {
    decode_with(serde_json::Deserializer::from_str(text))
}

/// [`decode_json`] for a parsed JSON value.
pub fn decode_value<T: DeserializeOwned>(value: Value) -> Result<T, ModelError> {
    serde_path_to_error::deserialize(value).map_err(ModelError::from_tracked)
}

fn decode_with<'de, R, T>(mut deserializer: serde_json::Deserializer<R>) -> Result<T, ModelError>
where
    R: serde_json::de::Read<'de>,
    T: DeserializeOwned,
{
    let document =
        serde_path_to_error::deserialize(&mut deserializer).map_err(ModelError::from_tracked)?;
    deserializer
        .end()
        .map_err(|error| ModelError::InvalidJson {
            message: "trailing characters after the document".into(),
            line: error.line(),
            column: error.column(),
        })?;
    Ok(document)
}
