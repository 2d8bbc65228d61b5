//! What a backend knows about its storage beyond the result of each call: a local disk that
//! is full. `/health` reports it, and the local host records it on the runs it stalls.

use chrono::{DateTime, Utc};
use serde::Serialize;

/// The stable code of a storage that refuses writes because its disk is full.
pub const DISK_FULL: &str = "disk_full";

/// A condition of the backend's storage that holds up every write, not one call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StorageFault {
    /// Stable snake_case code ([`DISK_FULL`]).
    pub code: &'static str,
    /// For people: what failed and what to do.
    pub message: String,
    /// When the condition was first seen (it may have held for a while without a write).
    pub since: DateTime<Utc>,
}

pub trait StorageHealth: Send + Sync {
    /// The condition holding up writes now, if any.
    fn fault(&self) -> Option<StorageFault>;
}

/// A storage with nothing to report beyond each call's error: the AWS services, which have no
/// disk of ours to fill.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoStorageFaults;

impl StorageHealth for NoStorageFaults {
    fn fault(&self) -> Option<StorageFault> {
        None
    }
}
