//! `EventBus` on an EventBridge bus whose rules deliver to SQS queues.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_eventbridge::Client;
use aws_sdk_eventbridge::error::SdkError;
use aws_sdk_eventbridge::operation::put_events::PutEventsError;
use aws_sdk_eventbridge::operation::put_rule::PutRuleError;
use aws_sdk_eventbridge::operation::put_targets::PutTargetsError;
use aws_sdk_eventbridge::types::{InputTransformer, PutEventsRequestEntry, RuleState, Target};
use aws_sdk_sqs::types::QueueAttributeName;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use hub_core::ports::{
    BusError, BusEvent, Clock, EventBus, FailedEntry, MAX_EVENT_BYTES, MAX_EVENTS_PER_PUT, RuleSpec,
};
use serde_json::json;

use crate::errors::{Fault, code, describe, is_validation_code, service_error};

/// EventBridge limits a whole `PutEvents` request, not only each entry, to 256 KiB.
const MAX_PUT_BYTES: usize = MAX_EVENT_BYTES;
/// The target id of the one queue a hub rule delivers to.
const TARGET_ID: &str = "queue";
/// The fields of the envelope EventBridge delivers, by JSON path into the event.
const ENVELOPE_FIELDS: [&str; 8] = [
    "id",
    "detail-type",
    "source",
    "account",
    "time",
    "region",
    "resources",
    "detail",
];
/// The same document as EventBridge's own envelope, rebuilt by an input transformer.
const ENVELOPE_TEMPLATE: &str = r#"{"version": "0", "id": "<id>", "detail-type": "<detail-type>", "source": "<source>", "account": "<account>", "time": "<time>", "region": "<region>", "resources": <resources>, "detail": <detail>}"#;

/// One EventBridge bus behind the `EventBus` port. Knows the topology's queue URLs so that
/// `put_rule` can target a queue by its logical name.
#[derive(Clone)]
pub struct EventBridgeBus {
    events: Client,
    sqs: aws_sdk_sqs::Client,
    bus_name: String,
    queue_urls: BTreeMap<String, String>,
    clock: Arc<dyn Clock>,
    rebuild_envelope: bool,
}

impl EventBridgeBus {
    pub fn new(
        events: Client,
        sqs: aws_sdk_sqs::Client,
        bus_name: impl Into<String>,
        queue_urls: BTreeMap<String, String>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            events,
            sqs,
            bus_name: bus_name.into(),
            queue_urls,
            clock,
            rebuild_envelope: false,
        }
    }

    /// Makes rule targets deliver an envelope rebuilt field by field with an input
    /// transformer. For emulators only: moto (5.1 and 5.2) leaves `account` out of the
    /// envelope it delivers to SQS, which real EventBridge always includes, so the default
    /// delivery would not parse as a [`hub_core::ports::BusEnvelope`].
    pub fn rebuilding_envelopes(mut self, rebuild: bool) -> Self {
        self.rebuild_envelope = rebuild;
        self
    }

    fn entry(&self, event: &BusEvent) -> PutEventsRequestEntry {
        let time = event.time.unwrap_or_else(|| self.clock.now());
        PutEventsRequestEntry::builder()
            .event_bus_name(&self.bus_name)
            .source(&event.source)
            .detail_type(&event.detail_type)
            .detail(event.detail.get())
            .set_resources((!event.resources.is_empty()).then(|| event.resources.clone()))
            .time(aws_smithy_types::DateTime::from_millis(
                time.timestamp_millis(),
            ))
            .build()
    }

    /// Sends one chunk; returns the failed entries with indexes into the caller's input.
    async fn put_chunk(&self, chunk: &[(usize, &BusEvent)]) -> Result<Vec<FailedEntry>, BusError> {
        let entries = chunk.iter().map(|(_, event)| self.entry(event)).collect();
        let output = self
            .events
            .put_events()
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(put_events_error)?;
        let results = output.entries.unwrap_or_default();
        let mut failed = Vec::new();
        for (position, (index, _)) in chunk.iter().enumerate() {
            match results.get(position) {
                Some(result) if result.error_code.is_none() && result.event_id.is_some() => {}
                Some(result) => failed.push(FailedEntry {
                    index: *index,
                    code: result
                        .error_code
                        .clone()
                        .unwrap_or_else(|| "Unknown".into()),
                    message: result.error_message.clone().unwrap_or_default(),
                }),
                None => failed.push(FailedEntry {
                    index: *index,
                    code: "NoResult".into(),
                    message: "EventBridge returned no result for this entry".into(),
                }),
            }
        }
        Ok(failed)
    }

    async fn queue_arn(&self, queue_url: &str) -> Result<String, BusError> {
        let output = self
            .sqs
            .get_queue_attributes()
            .queue_url(queue_url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .map_err(|e| BusError::Unavailable(sqs_message(e)))?;
        output
            .attributes
            .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
            .ok_or_else(|| BusError::Unavailable(format!("SQS reported no ARN for {queue_url}")))
    }

    /// Lets any rule of this bus send to the queue (EventBridge needs it for SQS targets).
    async fn allow_bus_to_send(
        &self,
        queue_url: &str,
        queue_arn: &str,
        rule_arn: &str,
    ) -> Result<(), BusError> {
        let rules_of_bus = match rule_arn.rfind('/') {
            Some(slash) => format!("{}*", &rule_arn[..=slash]),
            None => rule_arn.to_owned(),
        };
        let policy = json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Sid": format!("{}-to-queue", self.bus_name),
                "Effect": "Allow",
                "Principal": {"Service": "events.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
                "Condition": {"ArnLike": {"aws:SourceArn": rules_of_bus}},
            }],
        });
        self.sqs
            .set_queue_attributes()
            .queue_url(queue_url)
            .attributes(QueueAttributeName::Policy, policy.to_string())
            .send()
            .await
            .map_err(|e| BusError::Unavailable(sqs_message(e)))?;
        Ok(())
    }
}

fn sqs_message<E, R>(error: SdkError<E, R>) -> String
where
    E: std::error::Error + ProvideErrorMetadata + 'static,
    R: std::fmt::Debug + 'static,
{
    match service_error(error) {
        Ok(service) => describe(&service),
        Err(Fault::Transport(message) | Fault::Construction(message)) => message,
    }
}

fn fault(fault: Fault) -> BusError {
    match fault {
        Fault::Transport(message) => BusError::Unavailable(message),
        Fault::Construction(message) => BusError::Invalid(message),
    }
}

fn by_code(error: &impl ProvideErrorMetadata) -> BusError {
    if is_validation_code(code(error)) {
        BusError::Invalid(describe(error))
    } else {
        BusError::Unavailable(describe(error))
    }
}

fn put_events_error(error: SdkError<PutEventsError>) -> BusError {
    match service_error(error) {
        Err(f) => fault(f),
        Ok(e @ PutEventsError::InternalException(_)) => BusError::Unavailable(describe(&e)),
        Ok(other) => by_code(&other),
    }
}

fn put_rule_error(error: SdkError<PutRuleError>) -> BusError {
    match service_error(error) {
        Err(f) => fault(f),
        Ok(
            e @ (PutRuleError::InvalidEventPatternException(_)
            | PutRuleError::ManagedRuleException(_)
            | PutRuleError::ResourceNotFoundException(_)
            | PutRuleError::LimitExceededException(_)),
        ) => BusError::Invalid(describe(&e)),
        Ok(
            e @ (PutRuleError::ConcurrentModificationException(_)
            | PutRuleError::InternalException(_)),
        ) => BusError::Unavailable(describe(&e)),
        Ok(other) => by_code(&other),
    }
}

fn put_targets_error(error: SdkError<PutTargetsError>) -> BusError {
    match service_error(error) {
        Err(f) => fault(f),
        Ok(
            e @ (PutTargetsError::ManagedRuleException(_)
            | PutTargetsError::ResourceNotFoundException(_)
            | PutTargetsError::LimitExceededException(_)),
        ) => BusError::Invalid(describe(&e)),
        Ok(
            e @ (PutTargetsError::ConcurrentModificationException(_)
            | PutTargetsError::InternalException(_)),
        ) => BusError::Unavailable(describe(&e)),
        Ok(other) => by_code(&other),
    }
}

/// Why EventBridge would refuse this entry, checked locally so the emulator agrees.
fn local_failure(index: usize, event: &BusEvent) -> Option<FailedEntry> {
    let fail = |code: &str, message: String| {
        Some(FailedEntry {
            index,
            code: code.to_owned(),
            message,
        })
    };
    let size = event.size();
    if size > MAX_EVENT_BYTES {
        return fail(
            "EntryTooLarge",
            format!("the event is {size} bytes; the limit is {MAX_EVENT_BYTES}"),
        );
    }
    if event.source.is_empty() {
        return fail("InvalidArgument", "an event needs a source".into());
    }
    if event.detail_type.is_empty() {
        return fail("InvalidArgument", "an event needs a detail-type".into());
    }
    if !event.detail.is_object() {
        return fail(
            "MalformedDetail",
            "an event's detail must be a JSON object".into(),
        );
    }
    None
}

/// Groups accepted events into requests of at most 10 entries and 256 KiB.
fn chunks<'a>(events: &[(usize, &'a BusEvent)]) -> Vec<Vec<(usize, &'a BusEvent)>> {
    let mut chunks = Vec::new();
    let mut current: Vec<(usize, &BusEvent)> = Vec::new();
    let mut bytes = 0;
    for &(index, event) in events {
        let size = event.size();
        if !current.is_empty()
            && (current.len() == MAX_EVENTS_PER_PUT || bytes + size > MAX_PUT_BYTES)
        {
            chunks.push(std::mem::take(&mut current));
            bytes = 0;
        }
        bytes += size;
        current.push((index, event));
    }
    if !current.is_empty() {
        chunks.push(current);
    }
    chunks
}

#[async_trait]
impl EventBus for EventBridgeBus {
    fn bus_name(&self) -> &str {
        &self.bus_name
    }

    async fn put_events(&self, events: Vec<BusEvent>) -> Result<Vec<FailedEntry>, BusError> {
        let mut failed = Vec::new();
        let mut accepted = Vec::with_capacity(events.len());
        for (index, event) in events.iter().enumerate() {
            match local_failure(index, event) {
                Some(failure) => failed.push(failure),
                None => accepted.push((index, event)),
            }
        }
        for (number, chunk) in chunks(&accepted).iter().enumerate() {
            match self.put_chunk(chunk).await {
                Ok(chunk_failures) => failed.extend(chunk_failures),
                // Nothing was accepted yet: the caller can retry the whole call.
                Err(error) if number == 0 => return Err(error),
                // Earlier chunks are durable: report this one's entries instead of failing
                // the call, so a retry does not publish them twice.
                Err(error) => failed.extend(chunk.iter().map(|(index, _)| FailedEntry {
                    index: *index,
                    code: "Unavailable".into(),
                    message: error.to_string(),
                })),
            }
        }
        failed.sort_by_key(|f| f.index);
        Ok(failed)
    }

    async fn put_rule(&self, rule: RuleSpec) -> Result<(), BusError> {
        let queue_url = self.queue_urls.get(&rule.target_queue).ok_or_else(|| {
            BusError::Invalid(format!(
                "rule `{}` targets `{}`, which is not a queue of this topology",
                rule.name, rule.target_queue
            ))
        })?;
        if !rule.pattern.is_object() {
            return Err(BusError::Invalid(format!(
                "the pattern of rule `{}` must be a JSON object",
                rule.name
            )));
        }
        let output = self
            .events
            .put_rule()
            .name(&rule.name)
            .event_bus_name(&self.bus_name)
            .event_pattern(rule.pattern.to_string())
            .state(RuleState::Enabled)
            .send()
            .await
            .map_err(put_rule_error)?;
        let rule_arn = output.rule_arn.unwrap_or_default();
        let queue_arn = self.queue_arn(queue_url).await?;
        let mut target = Target::builder().id(TARGET_ID).arn(&queue_arn);
        if self.rebuild_envelope {
            let mut transformer = InputTransformer::builder().input_template(ENVELOPE_TEMPLATE);
            for field in ENVELOPE_FIELDS {
                transformer = transformer.input_paths_map(field, format!("$.{field}"));
            }
            let transformer = transformer
                .build()
                .map_err(|e| BusError::Invalid(e.to_string()))?;
            target = target.input_transformer(transformer);
        }
        let target = target
            .build()
            .map_err(|e| BusError::Invalid(e.to_string()))?;
        let targets = self
            .events
            .put_targets()
            .rule(&rule.name)
            .event_bus_name(&self.bus_name)
            .targets(target)
            .send()
            .await
            .map_err(put_targets_error)?;
        if targets.failed_entry_count > 0 {
            let reason = targets
                .failed_entries
                .unwrap_or_default()
                .into_iter()
                .map(|e| {
                    format!(
                        "{}: {}",
                        e.error_code.unwrap_or_default(),
                        e.error_message.unwrap_or_default()
                    )
                })
                .collect::<Vec<_>>()
                .join("; ");
            return Err(BusError::Invalid(format!(
                "EventBridge refused the target of rule `{}`: {reason}",
                rule.name
            )));
        }
        self.allow_bus_to_send(queue_url, &queue_arn, &rule_arn)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(bytes: usize) -> BusEvent {
        BusEvent::new("s", "t", json!({"pad": "x".repeat(bytes)}))
    }

    #[test]
    fn chunks_hold_at_most_ten_events_and_256_kib() {
        let small: Vec<BusEvent> = (0..23).map(|_| event(10)).collect();
        let indexed: Vec<_> = small.iter().enumerate().collect();
        let sizes: Vec<usize> = chunks(&indexed).iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![10, 10, 3]);

        let big: Vec<BusEvent> = (0..3).map(|_| event(100 * 1024)).collect();
        let indexed: Vec<_> = big.iter().enumerate().collect();
        let grouped = chunks(&indexed);
        assert_eq!(grouped.iter().map(Vec::len).collect::<Vec<_>>(), vec![2, 1]);
        assert_eq!(grouped[1][0].0, 2, "indexes point into the caller's input");
    }

    #[test]
    fn entries_eventbridge_refuses_fail_alone() {
        assert!(local_failure(0, &event(10)).is_none());
        let too_big = local_failure(3, &event(MAX_EVENT_BYTES)).unwrap();
        assert_eq!((too_big.index, too_big.code.as_str()), (3, "EntryTooLarge"));
        let not_object = BusEvent::new("s", "t", json!([1]));
        assert_eq!(
            local_failure(1, &not_object).unwrap().code,
            "MalformedDetail"
        );
        let no_source = BusEvent::new("", "t", json!({}));
        assert_eq!(
            local_failure(1, &no_source).unwrap().code,
            "InvalidArgument"
        );
    }
}
