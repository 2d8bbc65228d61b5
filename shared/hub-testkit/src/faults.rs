//! Fault injection for tests of the services built on the ports: a state store or queue that
//! passes every call to a real one, after asking the test's hook whether this call should fail
//! instead (a process that dies between two calls, a throttled table) or only be counted.
//!
//! ```
//! use std::sync::Arc;
//! use hub_core::ports::{StateStore, StoreError};
//! use hub_testkit::faults::{FaultyState, StateCall};
//!
//! /// A store whose puts fail and whose other calls reach `state`.
//! fn puts_fail(state: Arc<dyn StateStore>) -> FaultyState {
//!     FaultyState::new(state, |call| match call {
//!         StateCall::Put => Err(StoreError::Unavailable("injected".into())),
//!         _ => Ok(()),
//!     })
//! }
//! ```

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use hub_core::ports::{
    Condition, Item, Key, OutgoingMessage, QueryPage, QueryRequest, Queue, QueueDepth, QueueError,
    ReceiveOptions, ReceivedMessage, SendOutcome, StateStore, StoreError, TransactOp, UpdateAction,
    WriteRequest,
};

/// A call of [`StateStore`] about to be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateCall {
    Get,
    Put,
    Update,
    Delete,
    Query,
    TransactWrite,
    BatchGet,
    BatchWrite,
}

/// A call of [`Queue`] about to be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueCall {
    Send,
    SendBatch,
    Receive,
    Delete,
    ChangeVisibility,
    Depth,
    Purge,
}

type StateHook = dyn Fn(StateCall) -> Result<(), StoreError> + Send + Sync;
type QueueHook = dyn Fn(QueueCall) -> Result<(), QueueError> + Send + Sync;

/// A state store whose calls fail when the hook says so; the rest reach `inner`.
pub struct FaultyState {
    inner: Arc<dyn StateStore>,
    hook: Box<StateHook>,
}

impl FaultyState {
    pub fn new(
        inner: Arc<dyn StateStore>,
        hook: impl Fn(StateCall) -> Result<(), StoreError> + Send + Sync + 'static,
    ) -> Self {
        Self {
            inner,
            hook: Box::new(hook),
        }
    }
}

#[async_trait]
impl StateStore for FaultyState {
    fn table_name(&self) -> &str {
        self.inner.table_name()
    }
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        (self.hook)(StateCall::Get)?;
        self.inner.get(key).await
    }
    async fn put(&self, item: Item, condition: Option<Condition>) -> Result<(), StoreError> {
        (self.hook)(StateCall::Put)?;
        self.inner.put(item, condition).await
    }
    async fn update(
        &self,
        key: &Key,
        actions: Vec<UpdateAction>,
        condition: Option<Condition>,
    ) -> Result<Item, StoreError> {
        (self.hook)(StateCall::Update)?;
        self.inner.update(key, actions, condition).await
    }
    async fn delete(
        &self,
        key: &Key,
        condition: Option<Condition>,
    ) -> Result<Option<Item>, StoreError> {
        (self.hook)(StateCall::Delete)?;
        self.inner.delete(key, condition).await
    }
    async fn query(&self, request: QueryRequest) -> Result<QueryPage, StoreError> {
        (self.hook)(StateCall::Query)?;
        self.inner.query(request).await
    }
    async fn transact_write(&self, ops: Vec<TransactOp>) -> Result<(), StoreError> {
        (self.hook)(StateCall::TransactWrite)?;
        self.inner.transact_write(ops).await
    }
    async fn batch_get(&self, keys: Vec<Key>) -> Result<Vec<Item>, StoreError> {
        (self.hook)(StateCall::BatchGet)?;
        self.inner.batch_get(keys).await
    }
    async fn batch_write(
        &self,
        requests: Vec<WriteRequest>,
    ) -> Result<Vec<WriteRequest>, StoreError> {
        (self.hook)(StateCall::BatchWrite)?;
        self.inner.batch_write(requests).await
    }
}

/// A queue whose calls fail when the hook says so; the rest reach `inner`.
pub struct FaultyQueue {
    inner: Arc<dyn Queue>,
    hook: Box<QueueHook>,
}

impl FaultyQueue {
    pub fn new(
        inner: Arc<dyn Queue>,
        hook: impl Fn(QueueCall) -> Result<(), QueueError> + Send + Sync + 'static,
    ) -> Self {
        Self {
            inner,
            hook: Box::new(hook),
        }
    }
}

#[async_trait]
impl Queue for FaultyQueue {
    fn name(&self) -> &str {
        self.inner.name()
    }
    async fn send(&self, message: OutgoingMessage) -> Result<String, QueueError> {
        (self.hook)(QueueCall::Send)?;
        self.inner.send(message).await
    }
    async fn send_batch(
        &self,
        messages: Vec<OutgoingMessage>,
    ) -> Result<Vec<SendOutcome>, QueueError> {
        (self.hook)(QueueCall::SendBatch)?;
        self.inner.send_batch(messages).await
    }
    async fn receive(&self, options: ReceiveOptions) -> Result<Vec<ReceivedMessage>, QueueError> {
        (self.hook)(QueueCall::Receive)?;
        self.inner.receive(options).await
    }
    async fn delete(&self, receipt_handle: &str) -> Result<(), QueueError> {
        (self.hook)(QueueCall::Delete)?;
        self.inner.delete(receipt_handle).await
    }
    async fn change_visibility(
        &self,
        receipt_handle: &str,
        timeout: Duration,
    ) -> Result<(), QueueError> {
        (self.hook)(QueueCall::ChangeVisibility)?;
        self.inner.change_visibility(receipt_handle, timeout).await
    }
    async fn depth(&self) -> Result<QueueDepth, QueueError> {
        (self.hook)(QueueCall::Depth)?;
        self.inner.depth().await
    }
    async fn purge(&self) -> Result<(), QueueError> {
        (self.hook)(QueueCall::Purge)?;
        self.inner.purge().await
    }
}
