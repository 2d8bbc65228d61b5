//! Model documents in the state table: the document is kept as JSON text in `doc` (exact round
//! trip, whatever the backend does to numbers), next to its key, its `kind` and any top-level
//! attributes the item needs for conditions, counters and indexes.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::model::{ModelError, Validate, load_json};
use crate::ports::{GSI1PK, GSI1SK, Item, Key, PK, SK};

pub const DOC: &str = "doc";
pub const KIND: &str = "kind";

/// An item holding `doc` under `key`.
pub fn doc_item<T: Serialize>(key: &Key, kind: &str, doc: &T) -> Result<Item, ModelError> {
    let text = serde_json::to_string(doc).map_err(|e| ModelError::Encode {
        kind: "document",
        message: e.to_string(),
    })?;
    let mut item = Item::new();
    item.insert(PK.into(), Value::String(key.pk.clone()));
    item.insert(SK.into(), Value::String(key.sk.clone()));
    item.insert(KIND.into(), Value::String(kind.to_owned()));
    item.insert(DOC.into(), Value::String(text));
    Ok(item)
}

/// Adds the secondary index keys to an item.
pub fn with_index(mut item: Item, gsi1pk: impl Into<String>, gsi1sk: impl Into<String>) -> Item {
    item.insert(GSI1PK.into(), Value::String(gsi1pk.into()));
    item.insert(GSI1SK.into(), Value::String(gsi1sk.into()));
    item
}

/// Reads and validates the document of an item.
pub fn read_doc<T: DeserializeOwned + Validate>(item: &Item) -> Result<T, ModelError> {
    match item.get(DOC) {
        Some(Value::String(text)) => load_json(text),
        _ => Err(ModelError::InvalidDocument {
            path: DOC.to_owned(),
            message: "the stored item has no document".to_owned(),
            line: None,
            column: None,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ConversionSchema;

    #[test]
    fn documents_round_trip_through_items() {
        let text = include_str!("../tests/fixtures/seed/conversion-schema.sf-opportunity.json");
        let schema: ConversionSchema = load_json(text).unwrap();
        let key = crate::keys::schema_version("acme", &schema.id, 3);
        let item = with_index(doc_item(&key, "schema", &schema).unwrap(), "i", "s");
        assert_eq!(item[SK], "v#0000000003");
        assert_eq!(item[GSI1PK], "i");
        let back: ConversionSchema = read_doc(&item).unwrap();
        assert_eq!(back, schema);
        let mut broken = item.clone();
        broken.remove(DOC);
        assert_eq!(
            read_doc::<ConversionSchema>(&broken).unwrap_err().path(),
            Some(DOC)
        );
    }
}
