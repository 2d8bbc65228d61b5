//! Deserialising JSON objects tagged by a member (`{"type": "direct", "sourceField": ...}`)
//! without losing the JSON path of errors inside them.
//!
//! serde's derived internally tagged enums buffer the whole object before choosing the variant,
//! and serde_path_to_error cannot see into the buffer: a missing `maxLength` three levels down
//! would be reported at the enum. Here the tag is read first and the rest of the object streams
//! into the variant's type through the same (tracked) map, so the path survives. When the tag is
//! not the first member, the members before it are buffered and their inner path is appended to
//! the message instead.

use std::fmt;
use std::marker::PhantomData;

use serde::de::value::MapAccessDeserializer;
use serde::de::{self, DeserializeOwned, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

use super::error::{join_paths, nested_message, split_nested};

/// An enum represented as an object with a tag member naming the variant.
pub(crate) trait Tagged: Sized {
    /// The member holding the variant name.
    const TAG: &'static str;
    /// For "invalid type" messages.
    const EXPECTING: &'static str;
    /// The fieldless enum of variant names; its derived `Deserialize` rejects unknown names.
    type Kind: DeserializeOwned;

    /// Builds the variant from the object's other members.
    fn from_variant<'de, D: Deserializer<'de>>(kind: Self::Kind, rest: D)
    -> Result<Self, D::Error>;
}

/// `Deserialize::deserialize` of every [`Tagged`] type.
pub(crate) fn deserialize_tagged<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Tagged,
{
    deserializer.deserialize_map(TaggedVisitor::<T>(PhantomData))
}

struct TaggedVisitor<T>(PhantomData<T>);

impl<'de, T: Tagged> Visitor<'de> for TaggedVisitor<T> {
    type Value = T;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(T::EXPECTING)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<T, A::Error> {
        let mut before_tag = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if key != T::TAG {
                let value = map.next_value::<Value>()?;
                before_tag.insert(key, value);
                continue;
            }
            let kind = map.next_value::<T::Kind>()?;
            if before_tag.is_empty() {
                return T::from_variant(kind, MapAccessDeserializer::new(map));
            }
            while let Some((key, value)) = map.next_entry::<String, Value>()? {
                before_tag.insert(key, value);
            }
            return from_buffered(Value::Object(before_tag), None, |rest| {
                T::from_variant(kind, rest)
            });
        }
        Err(de::Error::missing_field(T::TAG))
    }
}

/// Deserialises a buffered value with its own path tracking. The caller's tracker cannot see
/// inside the buffer, so the inner path (after `prefix`) travels in the message as a
/// [`nested_message`], which `ModelError` folds back into the path.
pub(crate) fn from_buffered<T, E: de::Error>(
    value: Value,
    prefix: Option<&str>,
    deserialize: impl FnOnce(
        serde_path_to_error::Deserializer<'_, '_, Value>,
    ) -> Result<T, serde_json::Error>,
) -> Result<T, E> {
    let mut track = serde_path_to_error::Track::new();
    let result = deserialize(serde_path_to_error::Deserializer::new(value, &mut track));
    result.map_err(|error| {
        let message = error.to_string();
        // A buffer inside the buffer already put its own relative path in the message.
        let (deeper, message) = split_nested(&message).unwrap_or((".", &message));
        let tracked = join_paths(&track.path().to_string(), deeper);
        let path = join_paths(prefix.unwrap_or("."), &tracked);
        E::custom(nested_message(&path, message))
    })
}

/// The payload of variants that carry nothing but the tag: only an empty rest is accepted.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NoFields {}

/// Accepts only an empty rest of a tagged object (for fieldless variants).
pub(crate) fn expect_no_fields<'de, D: Deserializer<'de>>(rest: D) -> Result<(), D::Error> {
    NoFields::deserialize(rest).map(|_| ())
}

/// `deserialize_with` for `Option<Value>` members where an explicit `null` is a value (a
/// conditional mapping's `default: null`) and only absence is `None`.
pub(crate) fn present<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Value>, D::Error> {
    Value::deserialize(deserializer).map(Some)
}

/// Implements `Deserialize` through [`deserialize_tagged`].
macro_rules! tagged_deserialize {
    ($ty:ty) => {
        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                $crate::model::tagged::deserialize_tagged(deserializer)
            }
        }
    };
}
pub(crate) use tagged_deserialize;
