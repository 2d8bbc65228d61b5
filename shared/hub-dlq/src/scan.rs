//! One pass over a DLQ: receive every message once (holding it invisible), let the caller act
//! on it, and make what the caller kept visible again at the end.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use hub_core::ports::{Queue, ReceiveOptions, ReceivedMessage};

use crate::DlqError;

pub(crate) struct Scan {
    queue: Arc<dyn Queue>,
    receive: ReceiveOptions,
    /// Messages handed out so far; the scan ends here.
    max_messages: usize,
    handed_out: usize,
    /// Receives so far, duplicates included: bounds the loop whatever the queue does.
    receives_left: usize,
    /// Messages the caller kept (to release at the end), by id: their latest receipt.
    held: BTreeMap<String, String>,
    /// Messages the caller removed (deleted, or re-sent and being deleted): never handed out
    /// again in this scan.
    removed: HashSet<String>,
}

impl Scan {
    pub fn new(queue: Arc<dyn Queue>, hold: Duration, wait: Duration, max_messages: usize) -> Self {
        Self {
            queue,
            receive: ReceiveOptions {
                max_messages: hub_core::ports::MAX_BATCH_ENTRIES,
                wait,
                visibility_timeout: Some(hold),
            },
            max_messages,
            handed_out: 0,
            receives_left: max_messages.saturating_mul(2).saturating_add(20),
            held: BTreeMap::new(),
            removed: HashSet::new(),
        }
    }

    pub fn queue(&self) -> &Arc<dyn Queue> {
        &self.queue
    }

    /// Messages this scan has not handed out before; empty when the queue has no more (or the
    /// scan's bound is reached). Every message returned must be passed to [`Scan::keep`] or
    /// [`Scan::removed`].
    pub async fn next(&mut self) -> Result<Vec<ReceivedMessage>, DlqError> {
        while self.handed_out < self.max_messages && self.receives_left > 0 {
            let batch = self
                .queue
                .receive(self.receive)
                .await
                .map_err(DlqError::queue(self.queue.name()))?;
            if batch.is_empty() {
                return Ok(Vec::new());
            }
            self.receives_left = self.receives_left.saturating_sub(batch.len());
            let mut fresh = Vec::new();
            let mut deleted_again = false;
            for message in batch {
                if self.removed.contains(&message.message_id) {
                    // Removed already (its delete failed, or the queue delivered it twice):
                    // delete it again, never act on it twice.
                    self.delete_again(&message).await;
                    deleted_again = true;
                } else if let Some(receipt) = self.held.get_mut(&message.message_id) {
                    // The hold ran out and it came round again: keep the newest receipt.
                    *receipt = message.receipt_handle;
                } else if fresh.len() + self.handed_out < self.max_messages {
                    fresh.push(message);
                } else {
                    // Over the bound: keep it untouched for the final release.
                    self.held.insert(message.message_id, message.receipt_handle);
                }
            }
            if !fresh.is_empty() {
                self.handed_out += fresh.len();
                return Ok(fresh);
            }
            if !deleted_again {
                // Only messages already seen: the scan has been round the whole queue.
                return Ok(Vec::new());
            }
        }
        Ok(Vec::new())
    }

    /// The caller leaves the message in the DLQ: it is made visible again at the end.
    pub fn keep(&mut self, message: &ReceivedMessage) {
        self.held
            .insert(message.message_id.clone(), message.receipt_handle.clone());
    }

    /// The caller removed (or is removing) the message: it is never handed out again.
    pub fn removed(&mut self, message_id: &str) {
        self.held.remove(message_id);
        self.removed.insert(message_id.to_owned());
    }

    async fn delete_again(&self, message: &ReceivedMessage) {
        if let Err(error) = self.queue.delete(&message.receipt_handle).await {
            tracing::warn!(
                queue = self.queue.name(),
                message_id = %message.message_id,
                %error,
                "could not delete a message already replayed; a later replay sends it again, which the writer's dedup absorbs"
            );
        }
    }

    /// Makes every kept message visible again (visibility 0). A message that cannot be
    /// released becomes visible when its hold expires.
    pub async fn release(self) {
        for (message_id, receipt) in &self.held {
            if let Err(error) = self.queue.change_visibility(receipt, Duration::ZERO).await {
                tracing::warn!(
                    queue = self.queue.name(),
                    %message_id,
                    %error,
                    "could not make a listed message visible again; it reappears when its hold expires"
                );
            }
        }
    }
}
