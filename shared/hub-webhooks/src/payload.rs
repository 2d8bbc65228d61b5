//! The claim check: a payload too large for a bus event (256 KiB, and the SQS message the rule
//! delivers) is stored in the state table in chunks under its delivery's partition, and the
//! event carries a [`PayloadRef`] instead.

use std::time::Duration;

use chrono::{DateTime, Utc};
use hub_core::keys;
use hub_core::messages::PayloadRef;
use hub_core::ports::{
    DLQ_RETENTION, EXPIRES_AT, Item, PK, RETENTION, SK, StateStore, StoreError, WriteRequest,
    batch_write_all,
};
use serde_json::Value;

use crate::crypto::sha256_hex;

/// Payload JSON above this size travels by claim check: the event (about 1 KiB of other
/// members) and the EventBridge envelope around it stay well under 256 KiB.
pub const INLINE_PAYLOAD_LIMIT: usize = 192 * 1024;
/// A chunk's text as the item encodes it (quotes and backslashes escaped) stays under this,
/// leaving room under DynamoDB's 400 KB item limit for the keys.
pub const MAX_CHUNK_BYTES: usize = 350_000;
/// Chunks outlive every message that can refer to them: the transform queue's retention and
/// then its DLQ's, where an operator may re-drive the event from.
pub const CHUNK_RETENTION: Duration =
    Duration::from_secs(RETENTION.as_secs() + DLQ_RETENTION.as_secs());
/// How long the batch writes of one payload may be retried when throttled.
const WRITE_DEADLINE: Duration = Duration::from_secs(5);

const DATA: &str = "data";
const CHUNK_KIND: &str = "webhook_payload_chunk";

/// Stores `text` (a payload's JSON) in chunks and returns the reference to publish. Writing
/// the same delivery twice rewrites the same chunks.
pub async fn store_payload(
    store: &dyn StateStore,
    route_id: &str,
    delivery_id: &str,
    text: &str,
    now: DateTime<Utc>,
) -> Result<PayloadRef, StoreError> {
    let expires_at = now.timestamp() + i64::try_from(CHUNK_RETENTION.as_secs()).unwrap_or(0);
    let chunks = split_for_items(text, MAX_CHUNK_BYTES);
    let count = u32::try_from(chunks.len())
        .map_err(|_| StoreError::Validation("a payload of too many chunks".into()))?;
    let requests = chunks
        .iter()
        .enumerate()
        .map(|(index, chunk)| {
            let key = keys::webhook_payload_chunk(route_id, delivery_id, index as u32);
            let mut item = Item::new();
            item.insert(PK.into(), key.pk.into());
            item.insert(SK.into(), key.sk.into());
            item.insert(hub_core::repo::KIND.into(), CHUNK_KIND.into());
            item.insert(DATA.into(), Value::String((*chunk).to_owned()));
            item.insert(EXPIRES_AT.into(), expires_at.into());
            WriteRequest::Put(item)
        })
        .collect();
    batch_write_all(store, requests, WRITE_DEADLINE).await?;
    Ok(PayloadRef {
        chunks: count,
        bytes: text.len() as u64,
        sha256: sha256_hex(text.as_bytes()),
    })
}

/// Why a stored payload cannot be read back.
#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    #[error("state store: {0}")]
    Store(#[from] StoreError),
    /// Expired (older than [`CHUNK_RETENTION`]) or never written.
    #[error("chunk {0} of the stored payload is missing")]
    MissingChunk(u32),
    #[error("the stored payload does not match its reference: {0}")]
    Damaged(&'static str),
}

/// Reads a payload stored by [`store_payload`] and checks it against its reference.
pub async fn load_payload(
    store: &dyn StateStore,
    route_id: &str,
    delivery_id: &str,
    reference: &PayloadRef,
) -> Result<Value, PayloadError> {
    let keys: Vec<_> = (0..reference.chunks)
        .map(|n| keys::webhook_payload_chunk(route_id, delivery_id, n))
        .collect();
    let mut found: Vec<Option<String>> = vec![None; keys.len()];
    for batch in keys.chunks(hub_core::ports::MAX_BATCH_GET) {
        for item in store.batch_get(batch.to_vec()).await? {
            let Some(index) = keys.iter().position(|key| {
                item.get(SK).and_then(Value::as_str) == Some(key.sk.as_str())
                    && item.get(PK).and_then(Value::as_str) == Some(key.pk.as_str())
            }) else {
                continue;
            };
            let Some(Value::String(data)) = item.get(DATA) else {
                return Err(PayloadError::Damaged("a chunk holds no text"));
            };
            found[index] = Some(data.clone());
        }
    }
    let mut text = String::with_capacity(usize::try_from(reference.bytes).unwrap_or(0));
    for (index, chunk) in found.into_iter().enumerate() {
        let chunk = chunk.ok_or(PayloadError::MissingChunk(index as u32))?;
        text.push_str(&chunk);
    }
    if text.len() as u64 != reference.bytes || sha256_hex(text.as_bytes()) != reference.sha256 {
        return Err(PayloadError::Damaged("length or digest differs"));
    }
    serde_json::from_str(&text).map_err(|_| PayloadError::Damaged("the text is not JSON"))
}

/// Splits `text` at character boundaries into pieces whose JSON string encoding is at most
/// `limit` bytes (DynamoDB counts the raw UTF-8, which is never more).
pub(crate) fn split_for_items(text: &str, limit: usize) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut start = 0;
    let mut encoded = 2; // the quotes
    for (offset, character) in text.char_indices() {
        let size = match character {
            '"' | '\\' => 2,
            c if (c as u32) < 0x20 => 6,
            c => c.len_utf8(),
        };
        if encoded + size > limit && offset > start {
            pieces.push(&text[start..offset]);
            start = offset;
            encoded = 2;
        }
        encoded += size;
    }
    if start < text.len() || pieces.is_empty() {
        pieces.push(&text[start..]);
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_respect_the_encoded_limit_and_join_back() {
        let text = "ab\"c\\dé€𝄞".repeat(50);
        for limit in [8, 13, 40, 1000] {
            let pieces = split_for_items(&text, limit);
            assert_eq!(pieces.concat(), text, "{limit}");
            for piece in &pieces {
                let encoded = serde_json::to_string(piece).unwrap().len();
                assert!(encoded <= limit, "{limit}: {encoded} {piece:?}");
            }
        }
        assert_eq!(split_for_items("", 10), [""]);
        assert_eq!(split_for_items("abc", 100), ["abc"]);
    }
}
