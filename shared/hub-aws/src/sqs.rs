//! `Queue` on an SQS standard queue.
//!
//! Limits are checked before sending (the port's 256 KiB per message and per batch, 10 entries,
//! delay at most 900 s, attribute names and values as SQS accepts them), because moto accepts
//! larger messages than the port allows and skips several of these checks.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::error::SdkError;
use aws_sdk_sqs::operation::change_message_visibility::ChangeMessageVisibilityError;
use aws_sdk_sqs::operation::delete_message::DeleteMessageError;
use aws_sdk_sqs::operation::delete_message_batch::DeleteMessageBatchError;
use aws_sdk_sqs::operation::get_queue_attributes::GetQueueAttributesError;
use aws_sdk_sqs::operation::purge_queue::PurgeQueueError;
use aws_sdk_sqs::operation::receive_message::ReceiveMessageError;
use aws_sdk_sqs::operation::send_message::SendMessageError;
use aws_sdk_sqs::operation::send_message_batch::SendMessageBatchError;
use aws_sdk_sqs::types::{
    BatchResultErrorEntry, DeleteMessageBatchRequestEntry, Message, MessageAttributeValue,
    MessageSystemAttributeName, QueueAttributeName, SendMessageBatchRequestEntry,
};
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use chrono::{DateTime, Utc};
use hub_core::ports::{
    MAX_MESSAGE_BYTES, MAX_VISIBILITY, OutgoingMessage, Queue, QueueDepth, QueueError,
    ReceiveOptions, ReceivedMessage, SendOutcome, check_batch_entries,
};

use crate::errors::{Fault, code, describe, is_validation_code, service_error};

const STRING: &str = "String";

/// The error of one failed entry of a batch request (send or delete). Sender faults are the
/// entry's own; anything else (throttling, internal errors) may pass on a retry.
fn entry_error(failed: &BatchResultErrorEntry) -> QueueError {
    let message = || {
        format!(
            "{}: {}",
            failed.code,
            failed.message.as_deref().unwrap_or("no message")
        )
    };
    match failed.code.as_str() {
        "ReceiptHandleIsInvalid" | "InvalidIdFormat" | "MessageNotInflight" => {
            QueueError::InvalidReceipt
        }
        code if failed.sender_fault || is_validation_code(code) => QueueError::Invalid(message()),
        _ => QueueError::Unavailable(message()),
    }
}

/// One SQS queue behind the `Queue` port.
#[derive(Clone)]
pub struct SqsQueue {
    client: Client,
    logical_name: String,
    url: String,
}

impl SqsQueue {
    pub fn new(client: Client, logical_name: impl Into<String>, url: impl Into<String>) -> Self {
        Self {
            client,
            logical_name: logical_name.into(),
            url: url.into(),
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    fn fault(&self, fault: Fault) -> QueueError {
        match fault {
            Fault::Transport(message) => QueueError::Unavailable(message),
            Fault::Construction(message) => QueueError::Invalid(message),
        }
    }

    fn by_code(&self, error: &impl ProvideErrorMetadata) -> QueueError {
        let code = code(error);
        if code.contains("QueueDoesNotExist") || code.contains("NonExistentQueue") {
            self.unknown()
        } else if matches!(
            code,
            "ReceiptHandleIsInvalid" | "MessageNotInflight" | "InvalidIdFormat"
        ) {
            QueueError::InvalidReceipt
        } else if is_validation_code(code) {
            QueueError::Invalid(describe(error))
        } else {
            // Throttling and unknown failures: the caller retries.
            QueueError::Unavailable(describe(error))
        }
    }

    fn unknown(&self) -> QueueError {
        QueueError::UnknownQueue(self.logical_name.clone())
    }

    fn send_error(&self, error: SdkError<SendMessageError>) -> QueueError {
        match service_error(error) {
            Err(fault) => self.fault(fault),
            Ok(SendMessageError::QueueDoesNotExist(_) | SendMessageError::InvalidAddress(_)) => {
                self.unknown()
            }
            Ok(
                e @ (SendMessageError::InvalidMessageContents(_)
                | SendMessageError::UnsupportedOperation(_)),
            ) => QueueError::Invalid(describe(&e)),
            Ok(
                e @ (SendMessageError::InvalidSecurity(_)
                | SendMessageError::KmsAccessDenied(_)
                | SendMessageError::KmsDisabled(_)
                | SendMessageError::KmsInvalidKeyUsage(_)
                | SendMessageError::KmsInvalidState(_)
                | SendMessageError::KmsNotFound(_)
                | SendMessageError::KmsOptInRequired(_)
                | SendMessageError::KmsThrottled(_)
                | SendMessageError::RequestThrottled(_)),
            ) => QueueError::Unavailable(describe(&e)),
            Ok(other) => self.by_code(&other),
        }
    }

    fn send_batch_error(&self, error: SdkError<SendMessageBatchError>) -> QueueError {
        match service_error(error) {
            Err(fault) => self.fault(fault),
            Ok(
                SendMessageBatchError::QueueDoesNotExist(_)
                | SendMessageBatchError::InvalidAddress(_),
            ) => self.unknown(),
            Ok(
                e @ (SendMessageBatchError::BatchEntryIdsNotDistinct(_)
                | SendMessageBatchError::BatchRequestTooLong(_)
                | SendMessageBatchError::EmptyBatchRequest(_)
                | SendMessageBatchError::InvalidBatchEntryId(_)
                | SendMessageBatchError::TooManyEntriesInBatchRequest(_)
                | SendMessageBatchError::UnsupportedOperation(_)),
            ) => QueueError::Invalid(describe(&e)),
            Ok(
                e @ (SendMessageBatchError::InvalidSecurity(_)
                | SendMessageBatchError::KmsAccessDenied(_)
                | SendMessageBatchError::KmsDisabled(_)
                | SendMessageBatchError::KmsInvalidKeyUsage(_)
                | SendMessageBatchError::KmsInvalidState(_)
                | SendMessageBatchError::KmsNotFound(_)
                | SendMessageBatchError::KmsOptInRequired(_)
                | SendMessageBatchError::KmsThrottled(_)
                | SendMessageBatchError::RequestThrottled(_)),
            ) => QueueError::Unavailable(describe(&e)),
            Ok(other) => self.by_code(&other),
        }
    }

    fn receive_error(&self, error: SdkError<ReceiveMessageError>) -> QueueError {
        match service_error(error) {
            Err(fault) => self.fault(fault),
            Ok(
                ReceiveMessageError::QueueDoesNotExist(_) | ReceiveMessageError::InvalidAddress(_),
            ) => self.unknown(),
            Ok(e @ ReceiveMessageError::UnsupportedOperation(_)) => {
                QueueError::Invalid(describe(&e))
            }
            Ok(
                e @ (ReceiveMessageError::InvalidSecurity(_)
                | ReceiveMessageError::KmsAccessDenied(_)
                | ReceiveMessageError::KmsDisabled(_)
                | ReceiveMessageError::KmsInvalidKeyUsage(_)
                | ReceiveMessageError::KmsInvalidState(_)
                | ReceiveMessageError::KmsNotFound(_)
                | ReceiveMessageError::KmsOptInRequired(_)
                | ReceiveMessageError::KmsThrottled(_)
                | ReceiveMessageError::OverLimit(_)
                | ReceiveMessageError::RequestThrottled(_)),
            ) => QueueError::Unavailable(describe(&e)),
            Ok(other) => self.by_code(&other),
        }
    }

    fn delete_error(&self, error: SdkError<DeleteMessageError>) -> QueueError {
        match service_error(error) {
            Err(fault) => self.fault(fault),
            Ok(
                DeleteMessageError::QueueDoesNotExist(_) | DeleteMessageError::InvalidAddress(_),
            ) => self.unknown(),
            // `InvalidIdFormat` is deprecated (folded into this one); `by_code` still maps it.
            Ok(DeleteMessageError::ReceiptHandleIsInvalid(_)) => QueueError::InvalidReceipt,
            Ok(e @ DeleteMessageError::UnsupportedOperation(_)) => {
                QueueError::Invalid(describe(&e))
            }
            Ok(
                e @ (DeleteMessageError::InvalidSecurity(_)
                | DeleteMessageError::RequestThrottled(_)),
            ) => QueueError::Unavailable(describe(&e)),
            Ok(other) => self.by_code(&other),
        }
    }

    fn delete_batch_error(&self, error: SdkError<DeleteMessageBatchError>) -> QueueError {
        match service_error(error) {
            Err(fault) => self.fault(fault),
            Ok(
                DeleteMessageBatchError::QueueDoesNotExist(_)
                | DeleteMessageBatchError::InvalidAddress(_),
            ) => self.unknown(),
            Ok(
                e @ (DeleteMessageBatchError::BatchEntryIdsNotDistinct(_)
                | DeleteMessageBatchError::EmptyBatchRequest(_)
                | DeleteMessageBatchError::InvalidBatchEntryId(_)
                | DeleteMessageBatchError::TooManyEntriesInBatchRequest(_)
                | DeleteMessageBatchError::UnsupportedOperation(_)),
            ) => QueueError::Invalid(describe(&e)),
            Ok(
                e @ (DeleteMessageBatchError::InvalidSecurity(_)
                | DeleteMessageBatchError::RequestThrottled(_)),
            ) => QueueError::Unavailable(describe(&e)),
            Ok(other) => self.by_code(&other),
        }
    }

    fn visibility_error(&self, error: SdkError<ChangeMessageVisibilityError>) -> QueueError {
        match service_error(error) {
            Err(fault) => self.fault(fault),
            Ok(
                ChangeMessageVisibilityError::QueueDoesNotExist(_)
                | ChangeMessageVisibilityError::InvalidAddress(_),
            ) => self.unknown(),
            Ok(
                ChangeMessageVisibilityError::ReceiptHandleIsInvalid(_)
                | ChangeMessageVisibilityError::MessageNotInflight(_),
            ) => QueueError::InvalidReceipt,
            Ok(e @ ChangeMessageVisibilityError::UnsupportedOperation(_)) => {
                QueueError::Invalid(describe(&e))
            }
            Ok(
                e @ (ChangeMessageVisibilityError::InvalidSecurity(_)
                | ChangeMessageVisibilityError::RequestThrottled(_)),
            ) => QueueError::Unavailable(describe(&e)),
            // SQS answers a stale handle (the message was received again, or its visibility
            // ran out) with `InvalidParameterValue: ... ReceiptHandle is invalid. Reason:
            // Message does not exist or is not available for visibility timeout change`.
            Ok(other)
                if code(&other) == "InvalidParameterValue"
                    && other.message().is_some_and(|m| m.contains("ReceiptHandle")) =>
            {
                QueueError::InvalidReceipt
            }
            Ok(other) => self.by_code(&other),
        }
    }

    fn attributes_error(&self, error: SdkError<GetQueueAttributesError>) -> QueueError {
        match service_error(error) {
            Err(fault) => self.fault(fault),
            Ok(
                GetQueueAttributesError::QueueDoesNotExist(_)
                | GetQueueAttributesError::InvalidAddress(_),
            ) => self.unknown(),
            Ok(
                e @ (GetQueueAttributesError::InvalidAttributeName(_)
                | GetQueueAttributesError::UnsupportedOperation(_)),
            ) => QueueError::Invalid(describe(&e)),
            Ok(
                e @ (GetQueueAttributesError::InvalidSecurity(_)
                | GetQueueAttributesError::RequestThrottled(_)),
            ) => QueueError::Unavailable(describe(&e)),
            Ok(other) => self.by_code(&other),
        }
    }

    fn purge_error(&self, error: SdkError<PurgeQueueError>) -> QueueError {
        match service_error(error) {
            Err(fault) => self.fault(fault),
            Ok(PurgeQueueError::QueueDoesNotExist(_) | PurgeQueueError::InvalidAddress(_)) => {
                self.unknown()
            }
            // SQS allows one purge per 60 s; retrying after that deletes what arrived since.
            Ok(
                e @ (PurgeQueueError::PurgeQueueInProgress(_)
                | PurgeQueueError::InvalidSecurity(_)
                | PurgeQueueError::RequestThrottled(_)),
            ) => QueueError::Unavailable(describe(&e)),
            Ok(e @ PurgeQueueError::UnsupportedOperation(_)) => QueueError::Invalid(describe(&e)),
            Ok(other) => self.by_code(&other),
        }
    }

    fn received(&self, message: Message) -> Result<ReceivedMessage, QueueError> {
        let missing = |what: &str| {
            QueueError::Unavailable(format!(
                "SQS returned a message of `{}` without {what}",
                self.logical_name
            ))
        };
        let system = message.attributes.unwrap_or_default();
        let receive_count = system
            .get(&MessageSystemAttributeName::ApproximateReceiveCount)
            .and_then(|v| v.parse::<u32>().ok())
            .ok_or_else(|| missing("ApproximateReceiveCount"))?;
        let sent_at = system
            .get(&MessageSystemAttributeName::SentTimestamp)
            .and_then(|v| v.parse::<i64>().ok())
            .and_then(DateTime::<Utc>::from_timestamp_millis)
            .ok_or_else(|| missing("SentTimestamp"))?;
        let attributes = message
            .message_attributes
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(name, value)| value.string_value.map(|v| (name, v)))
            .collect();
        Ok(ReceivedMessage {
            message_id: message.message_id.ok_or_else(|| missing("a message id"))?,
            receipt_handle: message
                .receipt_handle
                .ok_or_else(|| missing("a receipt handle"))?,
            body: message.body.unwrap_or_default(),
            receive_count,
            sent_at,
            attributes,
        })
    }
}

/// Whole seconds, rounding a fraction up (SQS takes integer seconds; rounding down could turn
/// a requested delay or wait into none).
fn seconds(duration: Duration) -> i32 {
    let whole = duration.as_secs() + u64::from(duration.subsec_nanos() > 0);
    i32::try_from(whole).unwrap_or(i32::MAX)
}

/// What SQS rejects beyond the port's own `validate`: characters outside the XML range it
/// accepts, and attribute names and values it refuses.
fn validate_for_sqs(message: &OutgoingMessage) -> Result<(), QueueError> {
    message.validate()?;
    if let Some(c) = message.body.chars().find(|c| !sqs_allows(*c)) {
        return Err(QueueError::Invalid(format!(
            "the body contains the character U+{:04X}, which SQS does not accept",
            u32::from(c)
        )));
    }
    for (name, value) in &message.attributes {
        validate_attribute_name(name)?;
        if value.is_empty() {
            return Err(QueueError::Invalid(format!(
                "message attribute `{name}` must not be empty"
            )));
        }
        if value.chars().any(|c| !sqs_allows(c)) {
            return Err(QueueError::Invalid(format!(
                "message attribute `{name}` contains a character SQS does not accept"
            )));
        }
    }
    Ok(())
}

fn sqs_allows(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

fn validate_attribute_name(name: &str) -> Result<(), QueueError> {
    let lower = name.to_ascii_lowercase();
    let valid = !name.is_empty()
        && name.len() <= 256
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        && !name.starts_with('.')
        && !name.ends_with('.')
        && !name.contains("..")
        && !lower.starts_with("aws.")
        && !lower.starts_with("amazon.");
    if valid {
        Ok(())
    } else {
        Err(QueueError::Invalid(format!(
            "`{name}` is not a valid message attribute name (1-256 letters, digits, _ - and ., \
             not starting with AWS. or Amazon.)"
        )))
    }
}

fn attribute_values(
    attributes: &BTreeMap<String, String>,
) -> Result<Option<HashMap<String, MessageAttributeValue>>, QueueError> {
    if attributes.is_empty() {
        return Ok(None);
    }
    attributes
        .iter()
        .map(|(name, value)| {
            let value = MessageAttributeValue::builder()
                .data_type(STRING)
                .string_value(value)
                .build()
                .map_err(|e| QueueError::Invalid(e.to_string()))?;
            Ok((name.clone(), value))
        })
        .collect::<Result<HashMap<_, _>, _>>()
        .map(Some)
}

fn parse_count(
    attributes: &HashMap<QueueAttributeName, String>,
    name: &QueueAttributeName,
) -> Result<u64, QueueError> {
    attributes
        .get(name)
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| QueueError::Unavailable(format!("SQS did not report {}", name.as_str())))
}

#[async_trait]
impl Queue for SqsQueue {
    fn name(&self) -> &str {
        &self.logical_name
    }

    async fn send(&self, message: OutgoingMessage) -> Result<String, QueueError> {
        validate_for_sqs(&message)?;
        let output = self
            .client
            .send_message()
            .queue_url(&self.url)
            .message_body(&message.body)
            .delay_seconds(seconds(message.delay))
            .set_message_attributes(attribute_values(&message.attributes)?)
            .send()
            .await
            .map_err(|e| self.send_error(e))?;
        output
            .message_id
            .ok_or_else(|| QueueError::Unavailable("SQS returned no message id".into()))
    }

    async fn send_batch(
        &self,
        messages: Vec<OutgoingMessage>,
    ) -> Result<Vec<SendOutcome>, QueueError> {
        // Entry count first; the size of the batch counts only the entries that will be sent,
        // since an invalid entry fails alone (the contract pins this on both backends).
        check_batch_entries(messages.len())?;
        let mut outcomes: Vec<Option<SendOutcome>> = vec![None; messages.len()];
        let mut entries = Vec::with_capacity(messages.len());
        let mut sent_bytes = 0;
        for (index, message) in messages.iter().enumerate() {
            if let Err(invalid) = validate_for_sqs(message) {
                outcomes[index] = Some(Err(invalid));
                continue;
            }
            let entry = SendMessageBatchRequestEntry::builder()
                .id(index.to_string())
                .message_body(&message.body)
                .delay_seconds(seconds(message.delay))
                .set_message_attributes(attribute_values(&message.attributes)?)
                .build()
                .map_err(|e| QueueError::Invalid(e.to_string()))?;
            entries.push(entry);
            sent_bytes += message.size();
        }
        if sent_bytes > MAX_MESSAGE_BYTES {
            return Err(QueueError::TooLarge {
                size: sent_bytes,
                limit: MAX_MESSAGE_BYTES,
            });
        }
        if !entries.is_empty() {
            let output = self
                .client
                .send_message_batch()
                .queue_url(&self.url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| self.send_batch_error(e))?;
            let slot = |id: &str| id.parse::<usize>().ok().filter(|i| *i < messages.len());
            for sent in output.successful {
                if let Some(index) = slot(&sent.id) {
                    outcomes[index] = Some(Ok(sent.message_id));
                }
            }
            for failed in output.failed {
                if let Some(index) = slot(&failed.id) {
                    outcomes[index] = Some(Err(entry_error(&failed)));
                }
            }
        }
        Ok(outcomes
            .into_iter()
            .map(|outcome| {
                outcome.unwrap_or_else(|| {
                    Err(QueueError::Unavailable(
                        "SQS reported neither success nor failure for this entry".into(),
                    ))
                })
            })
            .collect())
    }

    async fn receive(&self, options: ReceiveOptions) -> Result<Vec<ReceivedMessage>, QueueError> {
        options.validate()?;
        let output = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(i32::try_from(options.max_messages).unwrap_or(10))
            .wait_time_seconds(seconds(options.wait))
            .set_visibility_timeout(options.visibility_timeout.map(seconds))
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .message_system_attribute_names(MessageSystemAttributeName::SentTimestamp)
            .message_attribute_names("All")
            .send()
            .await
            .map_err(|e| self.receive_error(e))?;
        output
            .messages
            .unwrap_or_default()
            .into_iter()
            .map(|m| self.received(m))
            .collect()
    }

    async fn delete(&self, receipt_handle: &str) -> Result<(), QueueError> {
        if receipt_handle.is_empty() {
            return Err(QueueError::InvalidReceipt);
        }
        self.client
            .delete_message()
            .queue_url(&self.url)
            .receipt_handle(receipt_handle)
            .send()
            .await
            .map_err(|e| self.delete_error(e))?;
        Ok(())
    }

    async fn delete_batch(
        &self,
        receipt_handles: &[String],
    ) -> Result<Vec<Result<(), QueueError>>, QueueError> {
        check_batch_entries(receipt_handles.len())?;
        let mut outcomes: Vec<Result<(), QueueError>> = Vec::with_capacity(receipt_handles.len());
        let mut entries = Vec::with_capacity(receipt_handles.len());
        for (index, receipt_handle) in receipt_handles.iter().enumerate() {
            if receipt_handle.is_empty() {
                outcomes.push(Err(QueueError::InvalidReceipt));
                continue;
            }
            outcomes.push(Ok(()));
            entries.push(
                DeleteMessageBatchRequestEntry::builder()
                    .id(index.to_string())
                    .receipt_handle(receipt_handle)
                    .build()
                    .map_err(|e| QueueError::Invalid(e.to_string()))?,
            );
        }
        if entries.is_empty() {
            return Ok(outcomes);
        }
        let output = self
            .client
            .delete_message_batch()
            .queue_url(&self.url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| self.delete_batch_error(e))?;
        for failed in output.failed {
            let Some(outcome) = failed
                .id
                .parse::<usize>()
                .ok()
                .and_then(|index| outcomes.get_mut(index))
            else {
                continue;
            };
            *outcome = Err(entry_error(&failed));
        }
        Ok(outcomes)
    }

    async fn change_visibility(
        &self,
        receipt_handle: &str,
        timeout: Duration,
    ) -> Result<(), QueueError> {
        if receipt_handle.is_empty() {
            return Err(QueueError::InvalidReceipt);
        }
        if timeout > MAX_VISIBILITY {
            return Err(QueueError::Invalid(
                "visibility timeout is at most 12 hours".into(),
            ));
        }
        self.client
            .change_message_visibility()
            .queue_url(&self.url)
            .receipt_handle(receipt_handle)
            .visibility_timeout(seconds(timeout))
            .send()
            .await
            .map_err(|e| self.visibility_error(e))?;
        Ok(())
    }

    async fn depth(&self) -> Result<QueueDepth, QueueError> {
        let output = self
            .client
            .get_queue_attributes()
            .queue_url(&self.url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
            .send()
            .await
            .map_err(|e| self.attributes_error(e))?;
        let attributes = output.attributes.unwrap_or_default();
        Ok(QueueDepth {
            visible: parse_count(
                &attributes,
                &QueueAttributeName::ApproximateNumberOfMessages,
            )?,
            in_flight: parse_count(
                &attributes,
                &QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
            )?,
            delayed: parse_count(
                &attributes,
                &QueueAttributeName::ApproximateNumberOfMessagesDelayed,
            )?,
        })
    }

    async fn purge(&self) -> Result<(), QueueError> {
        self.client
            .purge_queue()
            .queue_url(&self.url)
            .send()
            .await
            .map_err(|e| self.purge_error(e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_round_up_to_whole_seconds() {
        assert_eq!(seconds(Duration::ZERO), 0);
        assert_eq!(seconds(Duration::from_millis(1)), 1);
        assert_eq!(seconds(Duration::from_secs(900)), 900);
        assert_eq!(seconds(Duration::from_millis(1500)), 2);
    }

    #[test]
    fn sqs_specific_contents_are_rejected_locally() {
        assert!(validate_for_sqs(&OutgoingMessage::new("ok \u{1F600}\n")).is_ok());
        assert!(validate_for_sqs(&OutgoingMessage::new("nul \u{0}")).is_err());
        let bad_names = ["AWS.trace", "amazon.x", ".a", "a.", "a..b", "sp ace", ""];
        for name in bad_names {
            let message = OutgoingMessage::new("b").attribute(name, "v");
            assert!(validate_for_sqs(&message).is_err(), "{name:?}");
        }
        let empty_value = OutgoingMessage::new("b").attribute("key", "");
        assert!(validate_for_sqs(&empty_value).is_err());
        let fine = OutgoingMessage::new("b").attribute("trace-id.v1_x", "v");
        assert!(validate_for_sqs(&fine).is_ok());
    }
}
