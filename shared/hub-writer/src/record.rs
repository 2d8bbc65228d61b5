//! Record items: the record id, what a record stores, and reading it back.

use chrono::{DateTime, Utc};
use hub_core::keys::{self, records};
use hub_core::messages::{BatchSource, WriteBatch, WriteItem};
use hub_core::model::{ExternalRelationship, RelationshipSyncStatus};
use hub_core::ports::{GSI1PK, GSI1SK, Index, Item, Key, PK, QueryRequest, SK, StateStore};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::{Result, WriterError, attr, kind};

/// DynamoDB's limits on key attributes (bytes of UTF-8): a partition key of the table or an
/// index at most 2048, a sort key at most 1024.
const MAX_PARTITION_KEY_BYTES: usize = 2048;
const MAX_SORT_KEY_BYTES: usize = 1024;

/// The id of the record a dedup key names: `r` and the first 128 bits of SHA-256 over the
/// tenant, the entity type and the dedup key (each length-prefixed, so no two triples share an
/// input). Stable across builds; any dedup key fits in a sort key this way.
pub fn record_id(tenant: &str, entity_type: &str, dedup_key: &str) -> String {
    let mut hasher = Sha256::new();
    for part in [tenant, entity_type, dedup_key] {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    format!("r{}", hex::encode(&hasher.finalize()[..16]))
}

/// Where a record's current version came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordLineage {
    /// The run that wrote it; `None` for a webhook delivery.
    pub execution_id: Option<String>,
    /// The webhook delivery that carried it; `None` for a poll.
    pub delivery_id: Option<String>,
    pub source: BatchSource,
    /// The connector's token of the page it was on (a poll).
    pub page_cursor: Option<String>,
    /// Its index within the source batch.
    pub record_index: u32,
    pub payload_hash: String,
    pub schema_id: String,
    pub schema_version: u32,
    pub written_at: DateTime<Utc>,
}

impl RecordLineage {
    fn of(item: &WriteItem, now: DateTime<Utc>) -> Self {
        let lineage = &item.lineage;
        let (delivery_id, page_cursor) = match &lineage.source {
            BatchSource::Poll(poll) => (None, poll.page_token.clone()),
            BatchSource::Webhook(webhook) => (Some(webhook.delivery_id.clone()), None),
        };
        Self {
            execution_id: lineage.execution_id.clone(),
            delivery_id,
            source: lineage.source.clone(),
            page_cursor,
            record_index: lineage.record_index,
            payload_hash: item.payload_hash.clone(),
            schema_id: lineage.schema_id.clone(),
            schema_version: lineage.schema_version,
            written_at: now,
        }
    }
}

/// A record as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRecord {
    pub record_id: String,
    pub tenant_id: String,
    pub entity_type: String,
    pub dedup_key: String,
    pub external_id: String,
    pub integration_id: String,
    pub tenant_integration_id: String,
    pub data: Map<String, Value>,
    pub external_relationships: Vec<ExternalRelationship>,
    pub lineage: RecordLineage,
    pub payload_hash: String,
    pub source_modified_at: Option<DateTime<Utc>>,
    /// 1 after the first write, +1 for every later one.
    pub version: i64,
    pub deleted: bool,
    pub last_seen_execution: Option<String>,
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
}

/// Reads a record item.
pub fn read_record(item: &Item) -> Result<StoredRecord> {
    let key = Key::of(item)?;
    let corrupt = |message: String| WriterError::corrupt(&key, message);
    let text = |name: &str| -> Result<String> {
        str_attr(item, name)
            .map(str::to_owned)
            .ok_or_else(|| corrupt(format!("missing text attribute `{name}`")))
    };
    let json = |name: &str| -> Result<Value> {
        serde_json::from_str(&text(name)?).map_err(|e| corrupt(format!("`{name}`: {e}")))
    };
    let time = |name: &str| -> Result<Option<DateTime<Utc>>> {
        str_attr(item, name)
            .map(|text| {
                DateTime::parse_from_rfc3339(text)
                    .map(|at| at.to_utc())
                    .map_err(|e| corrupt(format!("`{name}`: {e}")))
            })
            .transpose()
    };
    let data = match json(attr::DATA)? {
        Value::Object(data) => data,
        _ => return Err(corrupt("`data` is not a JSON object".into())),
    };
    let external_relationships = serde_json::from_value(json(attr::EXTERNAL_RELATIONSHIPS)?)
        .map_err(|e| corrupt(format!("`externalRelationships`: {e}")))?;
    let lineage = serde_json::from_value(json(attr::LINEAGE)?)
        .map_err(|e| corrupt(format!("`lineage`: {e}")))?;
    Ok(StoredRecord {
        record_id: key.sk.clone(),
        tenant_id: text(attr::TENANT_ID)?,
        entity_type: text(attr::ENTITY_TYPE)?,
        dedup_key: text(attr::DEDUP_KEY)?,
        external_id: text(attr::EXTERNAL_ID)?,
        integration_id: text(attr::INTEGRATION_ID)?,
        tenant_integration_id: text(attr::TENANT_INTEGRATION_ID)?,
        data,
        external_relationships,
        lineage,
        payload_hash: text(attr::PAYLOAD_HASH)?,
        source_modified_at: time(attr::SOURCE_MODIFIED_AT)?,
        version: item.get(attr::VERSION).and_then(Value::as_i64).unwrap_or(0),
        deleted: is_deleted(item),
        last_seen_execution: str_attr(item, attr::LAST_SEEN_EXECUTION).map(str::to_owned),
        created_at: time(attr::CREATED_AT)?,
        updated_at: time(attr::UPDATED_AT)?,
    })
}

/// The record a dedup key names, deleted-flagged ones included.
pub async fn get_record(
    records: &dyn StateStore,
    tenant: &str,
    entity_type: &str,
    dedup_key: &str,
) -> Result<Option<StoredRecord>> {
    let key = records::record(
        tenant,
        entity_type,
        &record_id(tenant, entity_type, dedup_key),
    );
    records
        .get(&key)
        .await?
        .as_ref()
        .map(read_record)
        .transpose()
}

/// Every record of one entity type of a tenant, deleted-flagged ones included, in record id
/// order (a paged read of its partition: for operators' tools and tests, not the write path).
pub async fn list_records(
    records: &dyn StateStore,
    tenant: &str,
    entity_type: &str,
) -> Result<Vec<StoredRecord>> {
    let request = QueryRequest::partition(Index::Primary, records::partition(tenant, entity_type));
    let mut listed = Vec::new();
    let mut start = None;
    loop {
        let page = records.query(request.clone().start_after(start)).await?;
        for item in &page.items {
            listed.push(read_record(item)?);
        }
        start = page.last_evaluated_key;
        if start.is_none() {
            return Ok(listed);
        }
    }
}

pub(crate) fn str_attr<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name).and_then(Value::as_str)
}

pub(crate) fn is_deleted(item: &Item) -> bool {
    item.get(attr::DELETED).and_then(Value::as_bool) == Some(true)
}

/// Whether the record's last write counted as a creation or an update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WriteKind {
    Created,
    Updated,
}

impl WriteKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Updated => "updated",
        }
    }

    pub fn of(item: &Item) -> Option<Self> {
        match str_attr(item, attr::WRITE_KIND)? {
            "created" => Some(Self::Created),
            "updated" => Some(Self::Updated),
            _ => None,
        }
    }
}

/// Everything one write of a record sets.
pub(crate) struct NewVersion<'a> {
    pub batch: &'a WriteBatch,
    pub item: &'a WriteItem,
    pub record_key: &'a Key,
    /// Identifies the batch across redeliveries (`writtenBy`).
    pub write_id: &'a str,
    pub kind: WriteKind,
    pub now: DateTime<Utc>,
}

impl NewVersion<'_> {
    /// The attributes of the record's new version (keys excluded), given what was read of the
    /// record (`None` for a creation).
    pub fn attributes(&self, existing: Option<&Item>) -> Result<Vec<(String, Value)>> {
        let batch = self.batch;
        let item = self.item;
        let now = keys::sortable_time(self.now);
        let relationships = merged_relationships(existing, batch, item, self.now);
        let version = existing
            .and_then(|e| e.get(attr::VERSION))
            .and_then(Value::as_i64)
            .unwrap_or(0)
            .saturating_add(1);
        let created_at = existing
            .and_then(|e| str_attr(e, attr::CREATED_AT))
            .map_or_else(|| now.clone(), str::to_owned);
        let mut attributes = vec![
            (
                GSI1PK.to_owned(),
                Value::from(records::external_id_index(
                    batch.tenant_id.as_str(),
                    &batch.integration_id,
                    &item.external_id,
                )),
            ),
            (
                GSI1SK.to_owned(),
                Value::from(records::external_id_sort(&batch.target_entity_type)),
            ),
            (attr::KIND.to_owned(), kind::RECORD.into()),
            (
                attr::RECORD_ID.to_owned(),
                self.record_key.sk.clone().into(),
            ),
            (attr::TENANT_ID.to_owned(), batch.tenant_id.as_str().into()),
            (
                attr::ENTITY_TYPE.to_owned(),
                batch.target_entity_type.clone().into(),
            ),
            (attr::DEDUP_KEY.to_owned(), item.dedup_key.clone().into()),
            (
                attr::EXTERNAL_ID.to_owned(),
                item.external_id.clone().into(),
            ),
            (
                attr::INTEGRATION_ID.to_owned(),
                batch.integration_id.clone().into(),
            ),
            (
                attr::TENANT_INTEGRATION_ID.to_owned(),
                batch.tenant_integration_id.clone().into(),
            ),
            (attr::DATA.to_owned(), json_text(&item.data)?.into()),
            (
                attr::EXTERNAL_RELATIONSHIPS.to_owned(),
                json_text(&relationships)?.into(),
            ),
            (
                attr::LINEAGE.to_owned(),
                json_text(&RecordLineage::of(item, self.now))?.into(),
            ),
            (
                attr::PAYLOAD_HASH.to_owned(),
                item.payload_hash.clone().into(),
            ),
            (attr::VERSION.to_owned(), version.into()),
            (attr::DELETED.to_owned(), false.into()),
            (attr::LAST_SEEN_AT.to_owned(), now.clone().into()),
            (attr::WRITTEN_BY.to_owned(), self.write_id.into()),
            (attr::WRITE_KIND.to_owned(), self.kind.as_str().into()),
            (attr::CREATED_AT.to_owned(), created_at.into()),
            (attr::UPDATED_AT.to_owned(), now.into()),
        ];
        if let Some(at) = item.source_modified_at {
            attributes.push((
                attr::SOURCE_MODIFIED_AT.to_owned(),
                keys::sortable_time(at).into(),
            ));
        }
        // A webhook write leaves the run that last saw the record as it was: only `lastSeenAt`
        // tells a sweep that someone wrote it since the run started.
        if let Some(execution) = &batch.execution_id {
            attributes.push((
                attr::LAST_SEEN_EXECUTION.to_owned(),
                execution.clone().into(),
            ));
        }
        Ok(attributes)
    }

    /// The whole item of a creation.
    pub fn new_item(&self) -> Result<Item> {
        let mut item = Item::new();
        item.insert(PK.into(), self.record_key.pk.clone().into());
        item.insert(SK.into(), self.record_key.sk.clone().into());
        item.extend(self.attributes(None)?);
        Ok(item)
    }

    /// The item that replaces an existing record: what was read, with this version's
    /// attributes laid over it and a deletion (or a source time this version lacks) cleared.
    pub fn replacement(&self, existing: &Item) -> Result<Item> {
        let mut item = existing.clone();
        for name in [
            attr::DELETED_AT,
            attr::DELETED_BY_EXECUTION,
            attr::SOURCE_MODIFIED_AT,
        ] {
            item.remove(name);
        }
        item.extend(self.attributes(Some(existing))?);
        Ok(item)
    }
}

/// Checks what the store would refuse, so the record fails alone instead of its transaction.
pub(crate) fn check_item(item: &Item) -> std::result::Result<(), String> {
    hub_core::ports::validate_item(item).map_err(|e| e.to_string())?;
    let len = |name: &str| str_attr(item, name).map_or(0, str::len);
    for (name, max) in [
        (PK, MAX_PARTITION_KEY_BYTES),
        (GSI1PK, MAX_PARTITION_KEY_BYTES),
        (SK, MAX_SORT_KEY_BYTES),
        (GSI1SK, MAX_SORT_KEY_BYTES),
    ] {
        if len(name) > max {
            return Err(format!(
                "the record's `{name}` would be {} bytes; the store allows {max} (an external id \
                 or entity type that long cannot be indexed)",
                len(name)
            ));
        }
    }
    Ok(())
}

/// The record's external relationships with this write's refreshed or added.
fn merged_relationships(
    existing: Option<&Item>,
    batch: &WriteBatch,
    item: &WriteItem,
    now: DateTime<Utc>,
) -> Vec<ExternalRelationship> {
    let mut relationships: Vec<ExternalRelationship> = existing
        .and_then(|e| str_attr(e, attr::EXTERNAL_RELATIONSHIPS))
        .and_then(|text| serde_json::from_str(text).ok())
        .unwrap_or_default();
    let current = ExternalRelationship {
        integration_id: batch.integration_id.clone(),
        external_id: item.external_id.clone(),
        external_type: batch.source_entity.clone(),
        last_synced_at: now,
        sync_status: RelationshipSyncStatus::Synced,
        metadata: None,
    };
    match relationships.iter_mut().find(|r| {
        r.integration_id == current.integration_id && r.external_id == current.external_id
    }) {
        Some(found) => {
            let metadata = found.metadata.take();
            *found = ExternalRelationship {
                metadata,
                ..current
            };
        }
        None => relationships.push(current),
    }
    relationships
}

/// JSON text of an attribute stored as text.
fn json_text<T: Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| {
        WriterError::Encode(hub_core::model::ModelError::Encode {
            kind: "record attribute",
            message: e.to_string(),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_ids_are_stable_and_separate_their_inputs() {
        let id = record_id("acme", "c_contact", "external_id:abc");
        assert_eq!(id, record_id("acme", "c_contact", "external_id:abc"));
        assert_eq!(id.len(), 33);
        assert!(id.starts_with('r'));
        assert_ne!(id, record_id("acme", "c_contac", "texternal_id:abc"));
        assert_ne!(id, record_id("acme2", "c_contact", "external_id:abc"));
    }
}
