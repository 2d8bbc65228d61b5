//! Creates the topology's resources when they are missing (the local host against an emulator
//! or a personal account; `template.yaml` does the same on a deployed stack). Every step
//! tolerates a resource that already exists, so running it twice is fine.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType,
    PointInTimeRecoverySpecification, Projection, ProjectionType, ScalarAttributeType,
    SseSpecification, TableStatus, TimeToLiveSpecification, TimeToLiveStatus,
};
use aws_sdk_sqs::types::QueueAttributeName;
use hub_core::ports::{
    EXPIRES_AT, EventBus, GSI1PK, GSI1SK, PK, QueueSpec, SK, SystemClock, Topology,
};
use serde_json::json;

use crate::dynamo::GSI1;
use crate::errors::error_chain;
use crate::events::EventBridgeBus;
use crate::{AwsError, AwsSettings, Clients};

/// How long a new table may take to become ACTIVE (seconds on AWS, immediate on moto).
const TABLE_ACTIVE_TIMEOUT: Duration = Duration::from_secs(120);
const POLL_INTERVAL: Duration = Duration::from_millis(500);

fn call_error(action: impl Into<String>, error: impl std::error::Error + 'static) -> AwsError {
    AwsError::Call {
        action: action.into(),
        message: error_chain(&error),
    }
}

fn build_error(error: aws_smithy_types::error::operation::BuildError) -> AwsError {
    AwsError::Settings(error.to_string())
}

/// Creates, if missing: both tables, every queue (DLQs first, with redrive policies), the bus,
/// and each rule with its queue target and the queue policy that lets EventBridge deliver.
pub async fn bootstrap(settings: &AwsSettings, topology: &Topology) -> Result<(), AwsError> {
    let config = settings.sdk_config().await?;
    let clients = Clients::new(&config);
    let on_emulator = config.endpoint_url().is_some();
    for table in [
        settings.state_table_name(topology),
        settings.records_table_name(topology),
    ] {
        ensure_table(&clients.dynamodb, &table, on_emulator).await?;
    }
    let queue_urls = ensure_queues(&clients.sqs, topology).await?;
    let bus_name = settings.event_bus_name(topology);
    ensure_bus(&clients.events, &bus_name).await?;
    let bus = EventBridgeBus::new(
        clients.events.clone(),
        clients.sqs.clone(),
        bus_name,
        queue_urls,
        Arc::new(SystemClock),
    )
    .rebuilding_envelopes(on_emulator);
    for rule in &topology.rules {
        let name = rule.name.clone();
        bus.put_rule(rule.clone())
            .await
            .map_err(|e| AwsError::Call {
                action: format!("creating rule `{name}`"),
                message: e.to_string(),
            })?;
    }
    Ok(())
}

fn key(name: &str, key_type: KeyType) -> Result<KeySchemaElement, AwsError> {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(key_type)
        .build()
        .map_err(build_error)
}

fn string_attribute(name: &str) -> Result<AttributeDefinition, AwsError> {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()
        .map_err(build_error)
}

async fn ensure_table(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    on_emulator: bool,
) -> Result<(), AwsError> {
    let index = GlobalSecondaryIndex::builder()
        .index_name(GSI1)
        .key_schema(key(GSI1PK, KeyType::Hash)?)
        .key_schema(key(GSI1SK, KeyType::Range)?)
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::All)
                .build(),
        )
        .build()
        .map_err(build_error)?;
    let created = client
        .create_table()
        .table_name(table)
        .attribute_definitions(string_attribute(PK)?)
        .attribute_definitions(string_attribute(SK)?)
        .attribute_definitions(string_attribute(GSI1PK)?)
        .attribute_definitions(string_attribute(GSI1SK)?)
        .key_schema(key(PK, KeyType::Hash)?)
        .key_schema(key(SK, KeyType::Range)?)
        .global_secondary_indexes(index)
        .billing_mode(BillingMode::PayPerRequest)
        .sse_specification(SseSpecification::builder().enabled(true).build())
        .send()
        .await;
    if let Err(error) = created {
        let exists = error
            .as_service_error()
            .is_some_and(|e| e.is_resource_in_use_exception());
        if !exists {
            return Err(call_error(format!("creating table `{table}`"), error));
        }
    }
    wait_until_active(client, table).await?;

    let ttl = client
        .describe_time_to_live()
        .table_name(table)
        .send()
        .await
        .map_err(|e| call_error(format!("reading the TTL of `{table}`"), e))?;
    let ttl_on = ttl.time_to_live_description.is_some_and(|d| {
        matches!(
            d.time_to_live_status,
            Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)
        )
    });
    if !ttl_on {
        let specification = TimeToLiveSpecification::builder()
            .enabled(true)
            .attribute_name(EXPIRES_AT)
            .build()
            .map_err(build_error)?;
        client
            .update_time_to_live()
            .table_name(table)
            .time_to_live_specification(specification)
            .send()
            .await
            .map_err(|e| call_error(format!("enabling TTL on `{table}`"), e))?;
    }

    let recovery = PointInTimeRecoverySpecification::builder()
        .point_in_time_recovery_enabled(true)
        .build()
        .map_err(build_error)?;
    let pitr = client
        .update_continuous_backups()
        .table_name(table)
        .point_in_time_recovery_specification(recovery)
        .send()
        .await;
    if let Err(error) = pitr {
        // Emulators implement point-in-time recovery partially or not at all; it protects
        // data only on AWS, where a failure here must stop the bootstrap.
        let error = call_error(
            format!("enabling point-in-time recovery on `{table}`"),
            error,
        );
        if on_emulator {
            tracing::warn!(%error, "continuing without point-in-time recovery on the emulator");
        } else {
            return Err(error);
        }
    }
    Ok(())
}

async fn wait_until_active(client: &aws_sdk_dynamodb::Client, table: &str) -> Result<(), AwsError> {
    let started = std::time::Instant::now();
    loop {
        let described = client
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(|e| call_error(format!("describing table `{table}`"), e))?;
        let status = described.table.and_then(|t| t.table_status);
        if status == Some(TableStatus::Active) {
            return Ok(());
        }
        if started.elapsed() > TABLE_ACTIVE_TIMEOUT {
            return Err(AwsError::Call {
                action: format!("waiting for table `{table}`"),
                message: format!("still {status:?} after {}s", TABLE_ACTIVE_TIMEOUT.as_secs()),
            });
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// Creates the queues so that every dead-letter queue exists before the queue that
/// redrives to it; returns the URLs by logical name.
async fn ensure_queues(
    client: &aws_sdk_sqs::Client,
    topology: &Topology,
) -> Result<BTreeMap<String, String>, AwsError> {
    let mut urls = BTreeMap::new();
    let mut arns = BTreeMap::new();
    let mut remaining: Vec<&QueueSpec> = topology.queues.iter().collect();
    while !remaining.is_empty() {
        let ready: Vec<&QueueSpec> = remaining
            .iter()
            .copied()
            .filter(|spec| match &spec.redrive {
                Some((dlq, _)) => arns.contains_key(dlq),
                None => true,
            })
            .collect();
        if ready.is_empty() {
            let names: Vec<&str> = remaining.iter().map(|s| s.logical_name.as_str()).collect();
            return Err(AwsError::Settings(format!(
                "the dead-letter queues of {names:?} are missing from the topology or form a cycle"
            )));
        }
        for spec in ready {
            let name = topology.queue_name(&spec.logical_name);
            let redrive = spec.redrive.as_ref().map(|(dlq, max_receives)| {
                json!({"deadLetterTargetArn": arns[dlq], "maxReceiveCount": max_receives})
                    .to_string()
            });
            let url = ensure_queue(client, &name, spec, redrive).await?;
            let arn = queue_arn(client, &url).await?;
            urls.insert(spec.logical_name.clone(), url);
            arns.insert(spec.logical_name.clone(), arn);
        }
        remaining.retain(|spec| !urls.contains_key(&spec.logical_name));
    }
    Ok(urls)
}

async fn ensure_queue(
    client: &aws_sdk_sqs::Client,
    name: &str,
    spec: &QueueSpec,
    redrive: Option<String>,
) -> Result<String, AwsError> {
    let mut attributes = std::collections::HashMap::from([
        (
            QueueAttributeName::VisibilityTimeout,
            spec.visibility_timeout.as_secs().to_string(),
        ),
        (
            QueueAttributeName::MessageRetentionPeriod,
            spec.retention.as_secs().to_string(),
        ),
    ]);
    if let Some(redrive) = redrive {
        attributes.insert(QueueAttributeName::RedrivePolicy, redrive);
    }
    let created = client
        .create_queue()
        .queue_name(name)
        .set_attributes(Some(attributes.clone()))
        .send()
        .await;
    match created {
        Ok(output) => output.queue_url.ok_or_else(|| AwsError::Call {
            action: format!("creating queue `{name}`"),
            message: "no queue URL in the answer".into(),
        }),
        // The queue exists with other attributes (an older topology): bring them up to date.
        Err(error)
            if error
                .as_service_error()
                .is_some_and(|e| e.is_queue_name_exists()) =>
        {
            let url = client
                .get_queue_url()
                .queue_name(name)
                .send()
                .await
                .map_err(|e| call_error(format!("looking up queue `{name}`"), e))?
                .queue_url
                .unwrap_or_default();
            client
                .set_queue_attributes()
                .queue_url(&url)
                .set_attributes(Some(attributes))
                .send()
                .await
                .map_err(|e| call_error(format!("updating queue `{name}`"), e))?;
            Ok(url)
        }
        Err(error) => Err(call_error(format!("creating queue `{name}`"), error)),
    }
}

async fn queue_arn(client: &aws_sdk_sqs::Client, url: &str) -> Result<String, AwsError> {
    client
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| call_error(format!("reading the ARN of `{url}`"), e))?
        .attributes
        .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
        .ok_or_else(|| AwsError::Call {
            action: format!("reading the ARN of `{url}`"),
            message: "no QueueArn attribute in the answer".into(),
        })
}

async fn ensure_bus(client: &aws_sdk_eventbridge::Client, name: &str) -> Result<(), AwsError> {
    let created = client.create_event_bus().name(name).send().await;
    match created {
        Ok(_) => Ok(()),
        Err(error)
            if error
                .as_service_error()
                .is_some_and(|e| e.is_resource_already_exists_exception()) =>
        {
            Ok(())
        }
        Err(error) => Err(call_error(format!("creating event bus `{name}`"), error)),
    }
}
