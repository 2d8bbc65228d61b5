//! Finding records by (integration, external id) for relationship mappings, over the records
//! table's `gsi1` index.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use async_trait::async_trait;
use futures::StreamExt;
use hub_core::keys::records;
use hub_core::ports::{Index, Item, QueryRequest, SortCondition, StateStore};
use hub_mapping::{LookupError, LookupKey, RelationshipLookup};

use crate::record::str_attr;
use crate::{Result, attr};

/// The record id of every `(entity type, external id)` that names a live record of `tenant`
/// written from `integration_id`; keys without one are absent from the answer. DynamoDB has no
/// batch query, so each distinct key is one query on the index, `concurrency` at a time. The
/// index is eventually consistent: a record written a moment ago may not be found yet. When two
/// records share a key (two tenant integrations of one integration), the most recently updated
/// one is returned.
pub async fn lookup_by_external_ids(
    records: &dyn StateStore,
    tenant: &str,
    integration_id: &str,
    keys: &[(String, String)],
    concurrency: usize,
) -> Result<HashMap<(String, String), String>> {
    let distinct: Vec<(String, String)> = keys
        .iter()
        .collect::<HashSet<_>>()
        .into_iter()
        .cloned()
        .collect();
    let answers = futures::stream::iter(distinct)
        .map(|key| lookup_one(records, tenant, integration_id, key))
        .buffer_unordered(concurrency.max(1))
        .collect::<Vec<_>>()
        .await;
    let mut found = HashMap::new();
    for answer in answers {
        if let Some((key, id)) = answer? {
            found.insert(key, id);
        }
    }
    Ok(found)
}

async fn lookup_one(
    records: &dyn StateStore,
    tenant: &str,
    integration_id: &str,
    key: (String, String),
) -> Result<Option<((String, String), String)>> {
    let (entity_type, external_id) = &key;
    let request = QueryRequest::partition(
        Index::Gsi1,
        records::external_id_index(tenant, integration_id, external_id),
    )
    .sort(SortCondition::Eq(records::external_id_sort(entity_type)))
    .limit(100);
    let mut best: Option<Item> = None;
    let mut start = None;
    loop {
        let page = records.query(request.clone().start_after(start)).await?;
        for item in page.items {
            let newer = best
                .as_ref()
                .is_none_or(|b| str_attr(&item, attr::UPDATED_AT) > str_attr(b, attr::UPDATED_AT));
            if newer {
                best = Some(item);
            }
        }
        start = page.last_evaluated_key;
        if start.is_none() {
            break;
        }
    }
    let id = best.and_then(|item| str_attr(&item, attr::RECORD_ID).map(str::to_owned));
    Ok(id.map(|id| (key, id)))
}

/// The conversion engine's [`RelationshipLookup`] on the records table, for one tenant and
/// integration. Keys by external id are resolved through [`lookup_by_external_ids`]; keys by
/// another field of the related record (`lookupField`) are not indexed and stay unresolved, so
/// the engine reports them as not found.
#[derive(Clone)]
pub struct RecordsLookup {
    records: Arc<dyn StateStore>,
    tenant: String,
    integration_id: String,
    concurrency: usize,
}

impl RecordsLookup {
    pub fn new(
        records: Arc<dyn StateStore>,
        tenant: impl Into<String>,
        integration_id: impl Into<String>,
    ) -> Self {
        Self {
            records,
            tenant: tenant.into(),
            integration_id: integration_id.into(),
            concurrency: crate::WriterConfig::default().lookup_concurrency,
        }
    }

    pub fn with_concurrency(mut self, concurrency: usize) -> Self {
        self.concurrency = concurrency.max(1);
        self
    }
}

impl std::fmt::Debug for RecordsLookup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordsLookup")
            .field("table", &self.records.table_name())
            .field("tenant", &self.tenant)
            .field("integration_id", &self.integration_id)
            .finish()
    }
}

#[async_trait]
impl RelationshipLookup for RecordsLookup {
    async fn resolve(
        &self,
        keys: &[LookupKey],
    ) -> std::result::Result<HashMap<LookupKey, String>, LookupError> {
        let by_external_id: Vec<(String, String)> = keys
            .iter()
            .filter(|key| key.field.is_none())
            .map(|key| (key.shard_type.clone(), key.value.clone()))
            .collect();
        let found = lookup_by_external_ids(
            self.records.as_ref(),
            &self.tenant,
            &self.integration_id,
            &by_external_id,
            self.concurrency,
        )
        .await
        .map_err(|error| LookupError {
            message: error.to_string(),
        })?;
        Ok(keys
            .iter()
            .filter(|key| key.field.is_none())
            .filter_map(|key| {
                found
                    .get(&(key.shard_type.clone(), key.value.clone()))
                    .map(|id| (key.clone(), id.clone()))
            })
            .collect())
    }
}
