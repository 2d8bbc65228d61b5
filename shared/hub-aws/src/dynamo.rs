//! `StateStore` on DynamoDB.
//!
//! TTL: DynamoDB deletes expired items only eventually (and moto never does), so reads drop
//! items whose `expiresAt` is at or before the clock's now, and every write condition is
//! rewritten so an expired item counts as absent (see [`crate::expr::write_condition`]).
//!
//! Limits DynamoDB enforces but moto does not (item size, batch sizes, distinct keys per batch)
//! are checked here before any call, so code tested against the emulator also fits AWS.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::batch_get_item::BatchGetItemError;
use aws_sdk_dynamodb::operation::batch_write_item::BatchWriteItemError;
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::get_item::GetItemError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::query::QueryError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    self as ddb, AttributeValue, CancellationReason, KeysAndAttributes, ReturnValue,
};
use aws_smithy_types::error::operation::BuildError;
use hub_core::ports::{
    CancelReason, Clock, Condition, GSI1PK, GSI1SK, Index, Item, Key, MAX_BATCH_GET,
    MAX_BATCH_WRITE, MAX_ITEM_BYTES, PK, QueryPage, QueryRequest, SK, StateStore, StoreError,
    TransactOp, UpdateAction, WriteRequest, is_expired, reject_duplicate_keys, validate_item,
    validate_transaction, validate_update,
};

use crate::convert::{AttributeMap, from_attribute_map, key_map, to_attribute_map};
use crate::errors::{Fault, code, describe, is_throttling_code, is_validation_code, service_error};
use crate::expr::{
    Placeholders, SortClause, lower, render, render_optional, sort_clause, update_expression,
    write_condition,
};

/// The name of the sparse secondary index on `gsi1pk`/`gsi1sk`.
pub const GSI1: &str = "gsi1";
/// DynamoDB's limit on the total size of one transaction.
const MAX_TRANSACTION_BYTES: usize = 4 * 1024 * 1024;
const MAX_QUERY_LIMIT: usize = 1000;
/// Retries of `UnprocessedKeys` in `batch_get` (the port returns items, not leftovers).
const BATCH_GET_ATTEMPTS: u32 = 8;

/// One DynamoDB table behind the `StateStore` port.
#[derive(Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
    clock: Arc<dyn Clock>,
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>, clock: Arc<dyn Clock>) -> Self {
        Self {
            client,
            table: table.into(),
            clock,
        }
    }

    fn placeholders(&self) -> Placeholders {
        Placeholders::new(self.clock.now().timestamp())
    }

    /// The item, unless TTL made it absent.
    fn live(&self, map: &AttributeMap) -> Result<Option<Item>, StoreError> {
        let item = from_attribute_map(map)?;
        Ok((!is_expired(&item, self.clock.now())).then_some(item))
    }

    fn error(&self, fault: Fault) -> StoreError {
        match fault {
            Fault::Transport(message) => StoreError::Unavailable(message),
            Fault::Construction(message) => StoreError::Validation(message),
        }
    }

    /// The error for a service error code no variant of the operation's enum covers.
    fn by_code(
        &self,
        error: &impl aws_smithy_types::error::metadata::ProvideErrorMetadata,
    ) -> StoreError {
        let code = code(error);
        if code == "ConditionalCheckFailedException" {
            StoreError::ConditionFailed
        } else if code == "ResourceNotFoundException" {
            StoreError::NoSuchTable(self.table.clone())
        } else if is_throttling_code(code) {
            StoreError::Throttled
        } else if is_validation_code(code) {
            StoreError::Validation(describe(error))
        } else {
            StoreError::Unavailable(describe(error))
        }
    }

    fn get_error(&self, error: SdkError<GetItemError>) -> StoreError {
        match service_error(error) {
            Err(fault) => self.error(fault),
            Ok(GetItemError::ResourceNotFoundException(_)) => self.no_such_table(),
            Ok(
                GetItemError::ProvisionedThroughputExceededException(_)
                | GetItemError::RequestLimitExceeded(_)
                | GetItemError::ThrottlingException(_),
            ) => StoreError::Throttled,
            Ok(
                e @ (GetItemError::InternalServerError(_)
                | GetItemError::InvalidEndpointException(_)),
            ) => StoreError::Unavailable(describe(&e)),
            Ok(other) => self.by_code(&other),
        }
    }

    fn put_error(&self, error: SdkError<PutItemError>) -> StoreError {
        match service_error(error) {
            Err(fault) => self.error(fault),
            Ok(PutItemError::ConditionalCheckFailedException(_)) => StoreError::ConditionFailed,
            Ok(PutItemError::ResourceNotFoundException(_)) => self.no_such_table(),
            Ok(
                PutItemError::ProvisionedThroughputExceededException(_)
                | PutItemError::RequestLimitExceeded(_)
                | PutItemError::ThrottlingException(_),
            ) => StoreError::Throttled,
            Ok(e @ PutItemError::ItemCollectionSizeLimitExceededException(_)) => {
                StoreError::Validation(describe(&e))
            }
            Ok(
                e @ (PutItemError::InternalServerError(_)
                | PutItemError::InvalidEndpointException(_)
                | PutItemError::ReplicatedWriteConflictException(_)
                | PutItemError::TransactionConflictException(_)),
            ) => StoreError::Unavailable(describe(&e)),
            Ok(other) => self.by_code(&other),
        }
    }

    fn update_error(&self, error: SdkError<UpdateItemError>) -> StoreError {
        match service_error(error) {
            Err(fault) => self.error(fault),
            Ok(UpdateItemError::ConditionalCheckFailedException(_)) => StoreError::ConditionFailed,
            Ok(UpdateItemError::ResourceNotFoundException(_)) => self.no_such_table(),
            Ok(
                UpdateItemError::ProvisionedThroughputExceededException(_)
                | UpdateItemError::RequestLimitExceeded(_)
                | UpdateItemError::ThrottlingException(_),
            ) => StoreError::Throttled,
            Ok(e @ UpdateItemError::ItemCollectionSizeLimitExceededException(_)) => {
                StoreError::Validation(describe(&e))
            }
            Ok(
                e @ (UpdateItemError::InternalServerError(_)
                | UpdateItemError::InvalidEndpointException(_)
                | UpdateItemError::ReplicatedWriteConflictException(_)
                | UpdateItemError::TransactionConflictException(_)),
            ) => StoreError::Unavailable(describe(&e)),
            Ok(other) => self.by_code(&other),
        }
    }

    fn delete_error(&self, error: SdkError<DeleteItemError>) -> StoreError {
        match service_error(error) {
            Err(fault) => self.error(fault),
            Ok(DeleteItemError::ConditionalCheckFailedException(_)) => StoreError::ConditionFailed,
            Ok(DeleteItemError::ResourceNotFoundException(_)) => self.no_such_table(),
            Ok(
                DeleteItemError::ProvisionedThroughputExceededException(_)
                | DeleteItemError::RequestLimitExceeded(_)
                | DeleteItemError::ThrottlingException(_),
            ) => StoreError::Throttled,
            Ok(e @ DeleteItemError::ItemCollectionSizeLimitExceededException(_)) => {
                StoreError::Validation(describe(&e))
            }
            Ok(
                e @ (DeleteItemError::InternalServerError(_)
                | DeleteItemError::InvalidEndpointException(_)
                | DeleteItemError::ReplicatedWriteConflictException(_)
                | DeleteItemError::TransactionConflictException(_)),
            ) => StoreError::Unavailable(describe(&e)),
            Ok(other) => self.by_code(&other),
        }
    }

    fn query_error(&self, error: SdkError<QueryError>) -> StoreError {
        match service_error(error) {
            Err(fault) => self.error(fault),
            Ok(QueryError::ResourceNotFoundException(_)) => self.no_such_table(),
            Ok(
                QueryError::ProvisionedThroughputExceededException(_)
                | QueryError::RequestLimitExceeded(_)
                | QueryError::ThrottlingException(_),
            ) => StoreError::Throttled,
            Ok(
                e @ (QueryError::InternalServerError(_) | QueryError::InvalidEndpointException(_)),
            ) => StoreError::Unavailable(describe(&e)),
            Ok(other) => self.by_code(&other),
        }
    }

    fn transact_error(&self, error: SdkError<TransactWriteItemsError>, ops: usize) -> StoreError {
        match service_error(error) {
            Err(fault) => self.error(fault),
            Ok(TransactWriteItemsError::TransactionCanceledException(cancelled)) => {
                cancellation(cancelled.cancellation_reasons(), ops)
            }
            Ok(TransactWriteItemsError::ResourceNotFoundException(_)) => self.no_such_table(),
            Ok(
                TransactWriteItemsError::ProvisionedThroughputExceededException(_)
                | TransactWriteItemsError::RequestLimitExceeded(_)
                | TransactWriteItemsError::ThrottlingException(_),
            ) => StoreError::Throttled,
            // Another transaction with the same items is still running: the port's `Conflict`.
            Ok(TransactWriteItemsError::TransactionInProgressException(_)) => {
                StoreError::TransactionCanceled {
                    reasons: vec![CancelReason::Conflict; ops],
                }
            }
            Ok(e @ TransactWriteItemsError::IdempotentParameterMismatchException(_)) => {
                StoreError::Validation(describe(&e))
            }
            Ok(
                e @ (TransactWriteItemsError::InternalServerError(_)
                | TransactWriteItemsError::InvalidEndpointException(_)),
            ) => StoreError::Unavailable(describe(&e)),
            Ok(other) => self.by_code(&other),
        }
    }

    fn batch_get_error(&self, error: SdkError<BatchGetItemError>) -> StoreError {
        match service_error(error) {
            Err(fault) => self.error(fault),
            Ok(BatchGetItemError::ResourceNotFoundException(_)) => self.no_such_table(),
            Ok(
                BatchGetItemError::ProvisionedThroughputExceededException(_)
                | BatchGetItemError::RequestLimitExceeded(_)
                | BatchGetItemError::ThrottlingException(_),
            ) => StoreError::Throttled,
            Ok(
                e @ (BatchGetItemError::InternalServerError(_)
                | BatchGetItemError::InvalidEndpointException(_)),
            ) => StoreError::Unavailable(describe(&e)),
            Ok(other) => self.by_code(&other),
        }
    }

    fn batch_write_error(&self, error: SdkError<BatchWriteItemError>) -> StoreError {
        match service_error(error) {
            Err(fault) => self.error(fault),
            Ok(BatchWriteItemError::ResourceNotFoundException(_)) => self.no_such_table(),
            Ok(
                BatchWriteItemError::ProvisionedThroughputExceededException(_)
                | BatchWriteItemError::RequestLimitExceeded(_)
                | BatchWriteItemError::ThrottlingException(_),
            ) => StoreError::Throttled,
            Ok(e @ BatchWriteItemError::ItemCollectionSizeLimitExceededException(_)) => {
                StoreError::Validation(describe(&e))
            }
            Ok(
                e @ (BatchWriteItemError::InternalServerError(_)
                | BatchWriteItemError::InvalidEndpointException(_)
                | BatchWriteItemError::ReplicatedWriteConflictException(_)),
            ) => StoreError::Unavailable(describe(&e)),
            Ok(other) => self.by_code(&other),
        }
    }

    fn no_such_table(&self) -> StoreError {
        StoreError::NoSuchTable(self.table.clone())
    }

    /// One operation of a transaction, with its own placeholders.
    fn transact_item(&self, op: TransactOp) -> Result<ddb::TransactWriteItem, StoreError> {
        let mut p = self.placeholders();
        let item = match op {
            TransactOp::Put { item, condition } => {
                let condition = render_optional(&write_condition(condition.as_ref()), &mut p);
                let put = ddb::Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(to_attribute_map(&item)))
                    .set_condition_expression(condition)
                    .set_expression_attribute_names(p.take_names())
                    .set_expression_attribute_values(p.take_values())
                    .build()
                    .map_err(build_error)?;
                ddb::TransactWriteItem::builder().put(put).build()
            }
            TransactOp::Update {
                key,
                actions,
                condition,
            } => {
                check_update_size(&actions)?;
                let update = update_expression(&actions, &mut p);
                let condition = render_optional(&write_condition(condition.as_ref()), &mut p);
                let update = ddb::Update::builder()
                    .table_name(&self.table)
                    .set_key(Some(key_map(&key)?))
                    .update_expression(update)
                    .set_condition_expression(condition)
                    .set_expression_attribute_names(p.take_names())
                    .set_expression_attribute_values(p.take_values())
                    .build()
                    .map_err(build_error)?;
                ddb::TransactWriteItem::builder().update(update).build()
            }
            TransactOp::Delete { key, condition } => {
                let condition = render_optional(&write_condition(condition.as_ref()), &mut p);
                let delete = ddb::Delete::builder()
                    .table_name(&self.table)
                    .set_key(Some(key_map(&key)?))
                    .set_condition_expression(condition)
                    .set_expression_attribute_names(p.take_names())
                    .set_expression_attribute_values(p.take_values())
                    .build()
                    .map_err(build_error)?;
                ddb::TransactWriteItem::builder().delete(delete).build()
            }
            TransactOp::Check { key, condition } => {
                // A check always needs an expression, even when the condition is constant.
                let condition = render(&write_condition(Some(&condition)), &mut p);
                let check = ddb::ConditionCheck::builder()
                    .table_name(&self.table)
                    .set_key(Some(key_map(&key)?))
                    .condition_expression(condition)
                    .set_expression_attribute_names(p.take_names())
                    .set_expression_attribute_values(p.take_values())
                    .build()
                    .map_err(build_error)?;
                ddb::TransactWriteItem::builder()
                    .condition_check(check)
                    .build()
            }
        };
        Ok(item)
    }
}

fn build_error(error: BuildError) -> StoreError {
    StoreError::Validation(error.to_string())
}

/// The per-operation reasons of a cancelled transaction. Reasons the port has no variant for
/// become the error they stand for (throttling, validation), or `Unavailable` when unknown.
fn cancellation(reasons: &[CancellationReason], ops: usize) -> StoreError {
    if reasons.len() != ops {
        return StoreError::Unavailable(format!(
            "the transaction was cancelled with {} reasons for {ops} operations",
            reasons.len()
        ));
    }
    let mut mapped = Vec::with_capacity(ops);
    for reason in reasons {
        let message = || reason.message().unwrap_or("no message").to_owned();
        mapped.push(match reason.code().unwrap_or("None") {
            "None" | "" => CancelReason::None,
            "ConditionalCheckFailed" => CancelReason::ConditionFailed,
            "TransactionConflict" => CancelReason::Conflict,
            "ThrottlingError" | "ProvisionedThroughputExceeded" | "RequestLimitExceeded" => {
                return StoreError::Throttled;
            }
            "ValidationError" | "ItemCollectionSizeLimitExceeded" => {
                return StoreError::Validation(message());
            }
            other => {
                return StoreError::Unavailable(format!(
                    "the transaction was cancelled: {other}: {}",
                    message()
                ));
            }
        });
    }
    StoreError::TransactionCanceled { reasons: mapped }
}

/// The values an update writes cannot make an item smaller than themselves: reject updates
/// that could never fit (the final size depends on the stored item, which DynamoDB checks).
fn check_update_size(actions: &[UpdateAction]) -> Result<(), StoreError> {
    let size: usize = actions
        .iter()
        .map(|action| match action {
            UpdateAction::Set(name, value) | UpdateAction::SetIfNotExists(name, value) => {
                name.len() + serde_json::to_vec(value).map_or(usize::MAX / 2, |v| v.len())
            }
            UpdateAction::Add(name, _) | UpdateAction::Remove(name) => name.len(),
        })
        .fold(0usize, usize::saturating_add);
    if size > MAX_ITEM_BYTES {
        return Err(StoreError::Validation(format!(
            "the update writes {size} bytes; an item is at most {MAX_ITEM_BYTES}"
        )));
    }
    Ok(())
}

/// The `pk`/`sk` of an attribute map returned by the service.
fn key_of(map: &AttributeMap) -> Option<Key> {
    match (map.get(PK), map.get(SK)) {
        (Some(AttributeValue::S(pk)), Some(AttributeValue::S(sk))) => Some(Key::new(pk, sk)),
        _ => None,
    }
}

#[async_trait]
impl StateStore for DynamoStore {
    fn table_name(&self) -> &str {
        &self.table
    }

    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key_map(key)?))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.get_error(e))?;
        match output.item {
            Some(map) if !map.is_empty() => self.live(&map),
            _ => Ok(None),
        }
    }

    async fn put(&self, item: Item, condition: Option<Condition>) -> Result<(), StoreError> {
        validate_item(&item)?;
        let mut p = self.placeholders();
        let condition = render_optional(&write_condition(condition.as_ref()), &mut p);
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_attribute_map(&item)))
            .set_condition_expression(condition)
            .set_expression_attribute_names(p.take_names())
            .set_expression_attribute_values(p.take_values())
            .send()
            .await
            .map_err(|e| self.put_error(e))?;
        Ok(())
    }

    async fn update(
        &self,
        key: &Key,
        actions: Vec<UpdateAction>,
        condition: Option<Condition>,
    ) -> Result<Item, StoreError> {
        validate_update(&actions)?;
        check_update_size(&actions)?;
        let key = key_map(key)?;
        let mut p = self.placeholders();
        let update = update_expression(&actions, &mut p);
        let condition = render_optional(&write_condition(condition.as_ref()), &mut p);
        let output = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .update_expression(update)
            .set_condition_expression(condition)
            .set_expression_attribute_names(p.take_names())
            .set_expression_attribute_values(p.take_values())
            .return_values(ReturnValue::AllNew)
            .send()
            .await
            .map_err(|e| self.update_error(e))?;
        let attributes = output
            .attributes
            .ok_or_else(|| StoreError::Corrupt("the update returned no attributes".into()))?;
        from_attribute_map(&attributes)
    }

    async fn delete(
        &self,
        key: &Key,
        condition: Option<Condition>,
    ) -> Result<Option<Item>, StoreError> {
        let mut p = self.placeholders();
        let condition = render_optional(&write_condition(condition.as_ref()), &mut p);
        let output = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key_map(key)?))
            .set_condition_expression(condition)
            .set_expression_attribute_names(p.take_names())
            .set_expression_attribute_values(p.take_values())
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| self.delete_error(e))?;
        match output.attributes {
            // An expired item was already absent: deleting it deletes nothing the caller saw.
            Some(map) if !map.is_empty() => self.live(&map),
            _ => Ok(None),
        }
    }

    async fn query(&self, request: QueryRequest) -> Result<QueryPage, StoreError> {
        if let Some(limit) = request.limit
            && !(1..=MAX_QUERY_LIMIT).contains(&limit)
        {
            return Err(StoreError::Validation(format!(
                "a query limit is 1 to {MAX_QUERY_LIMIT}, not {limit}"
            )));
        }
        // Key attributes are never empty, so neither is any partition they can match.
        if request.partition.is_empty() {
            return Ok(QueryPage::default());
        }
        let (partition_key, sort_key, index_name) = match request.index {
            Index::Primary => (PK, SK, None),
            Index::Gsi1 => (GSI1PK, GSI1SK, Some(GSI1)),
        };
        let mut p = self.placeholders();
        let partition_name = p.name(partition_key);
        let partition_value = p.value(AttributeValue::S(request.partition.clone()));
        let mut key_condition = format!("{partition_name} = {partition_value}");
        if let Some(sort) = &request.sort {
            match sort_clause(sort, sort_key, &mut p) {
                SortClause::Nothing => return Ok(QueryPage::default()),
                SortClause::Everything => {}
                SortClause::Expression(clause) => {
                    key_condition.push_str(" AND ");
                    key_condition.push_str(&clause);
                }
            }
        }
        let filter = match &request.filter {
            Some(filter) => render_optional(&lower(filter), &mut p),
            None => None,
        };
        let limit = request.limit.map(|l| i32::try_from(l).unwrap_or(i32::MAX));
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .set_index_name(index_name.map(str::to_owned))
            .key_condition_expression(key_condition)
            .set_filter_expression(filter)
            .set_expression_attribute_names(p.take_names())
            .set_expression_attribute_values(p.take_values())
            .scan_index_forward(request.forward)
            .set_limit(limit)
            // Global secondary indexes only offer eventually consistent reads.
            .set_consistent_read((request.index == Index::Primary).then_some(true))
            .set_exclusive_start_key(request.start_after.as_ref().map(to_attribute_map))
            .send()
            .await
            .map_err(|e| self.query_error(e))?;
        let mut items = Vec::new();
        for map in output.items.unwrap_or_default() {
            if let Some(item) = self.live(&map)? {
                items.push(item);
            }
        }
        let last_evaluated_key = match output.last_evaluated_key {
            Some(map) if !map.is_empty() => Some(from_attribute_map(&map)?),
            _ => None,
        };
        Ok(QueryPage {
            items,
            last_evaluated_key,
        })
    }

    async fn transact_write(&self, ops: Vec<TransactOp>) -> Result<(), StoreError> {
        validate_transaction(&ops)?;
        let size: usize = ops
            .iter()
            .map(|op| match op {
                TransactOp::Put { item, .. } => serde_json::to_vec(item).map_or(0, |b| b.len()),
                TransactOp::Update { .. }
                | TransactOp::Delete { .. }
                | TransactOp::Check { .. } => 0,
            })
            .sum();
        if size > MAX_TRANSACTION_BYTES {
            return Err(StoreError::Validation(format!(
                "the transaction writes {size} bytes; the limit is {MAX_TRANSACTION_BYTES}"
            )));
        }
        let count = ops.len();
        let items = ops
            .into_iter()
            .map(|op| self.transact_item(op))
            .collect::<Result<Vec<_>, _>>()?;
        self.client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
            .map_err(|e| self.transact_error(e, count))?;
        Ok(())
    }

    async fn batch_get(&self, keys: Vec<Key>) -> Result<Vec<Item>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        if keys.len() > MAX_BATCH_GET {
            return Err(StoreError::Validation(format!(
                "a batch get reads at most {MAX_BATCH_GET} keys, not {}",
                keys.len()
            )));
        }
        reject_duplicate_keys(&keys, "the batch get")?;
        let mut pending = keys.iter().map(key_map).collect::<Result<Vec<_>, _>>()?;
        let mut found = Vec::new();
        let mut attempt = 0;
        while !pending.is_empty() {
            let request = KeysAndAttributes::builder()
                .set_keys(Some(std::mem::take(&mut pending)))
                .consistent_read(true)
                .build()
                .map_err(build_error)?;
            let output = self
                .client
                .batch_get_item()
                .request_items(&self.table, request)
                .send()
                .await
                .map_err(|e| self.batch_get_error(e))?;
            let mut responses = output.responses.unwrap_or_default();
            for map in responses.remove(&self.table).unwrap_or_default() {
                if let Some(item) = self.live(&map)? {
                    found.push(item);
                }
            }
            let mut unprocessed = output.unprocessed_keys.unwrap_or_default();
            pending = unprocessed
                .remove(&self.table)
                .map(|k| k.keys)
                .unwrap_or_default();
            if pending.is_empty() {
                break;
            }
            attempt += 1;
            if attempt >= BATCH_GET_ATTEMPTS {
                return Err(StoreError::Throttled);
            }
            tokio::time::sleep(Duration::from_millis(25 << attempt)).await;
        }
        Ok(found)
    }

    async fn batch_write(
        &self,
        requests: Vec<WriteRequest>,
    ) -> Result<Vec<WriteRequest>, StoreError> {
        if requests.is_empty() {
            return Ok(Vec::new());
        }
        if requests.len() > MAX_BATCH_WRITE {
            return Err(StoreError::Validation(format!(
                "a batch write holds at most {MAX_BATCH_WRITE} requests, not {}",
                requests.len()
            )));
        }
        let mut by_key = HashMap::with_capacity(requests.len());
        let mut writes = Vec::with_capacity(requests.len());
        let mut keys = Vec::with_capacity(requests.len());
        for request in &requests {
            let write = match request {
                WriteRequest::Put(item) => {
                    keys.push(validate_item(item)?);
                    let put = ddb::PutRequest::builder()
                        .set_item(Some(to_attribute_map(item)))
                        .build()
                        .map_err(build_error)?;
                    ddb::WriteRequest::builder().put_request(put).build()
                }
                WriteRequest::Delete(key) => {
                    keys.push(key.clone());
                    let delete = ddb::DeleteRequest::builder()
                        .set_key(Some(key_map(key)?))
                        .build()
                        .map_err(build_error)?;
                    ddb::WriteRequest::builder().delete_request(delete).build()
                }
            };
            writes.push(write);
        }
        reject_duplicate_keys(&keys, "the batch write")?;
        for (key, request) in keys.into_iter().zip(requests) {
            by_key.insert(key, request);
        }
        let output = self
            .client
            .batch_write_item()
            .request_items(&self.table, writes)
            .send()
            .await
            .map_err(|e| self.batch_write_error(e))?;
        let mut unprocessed = output.unprocessed_items.unwrap_or_default();
        let mut leftover = Vec::new();
        // Hand back the caller's own requests (not a re-parse of the service's echo), so a
        // retry writes exactly what was asked.
        for write in unprocessed.remove(&self.table).unwrap_or_default() {
            let key = match (&write.put_request, &write.delete_request) {
                (Some(put), _) => key_of(&put.item),
                (None, Some(delete)) => key_of(&delete.key),
                (None, None) => None,
            };
            let request = key.and_then(|k| by_key.remove(&k)).ok_or_else(|| {
                StoreError::Corrupt(
                    "the service returned an unprocessed request we did not send".into(),
                )
            })?;
            leftover.push(request);
        }
        Ok(leftover)
    }
}
