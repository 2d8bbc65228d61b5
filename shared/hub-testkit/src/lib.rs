//! The one contract suite of the hub's ports. Every backend runs it unchanged through a
//! [`Harness`], so a behaviour pinned here is a behaviour both backends share.
//!
//! Wire a backend with one line in an integration test crate:
//!
//! ```ignore
//! async fn harness() -> MyHarness { MyHarness::new() }
//! hub_testkit::contract_tests!(harness);
//! ```
//!
//! which expands to one `#[test]` per case, named `<module>::<port>::<case>` (for example
//! `contract_embedded::queue::redrive_moves_a_message_to_the_dlq_after_max_receives`), each with
//! its own harness and its own multi-threaded tokio runtime.
//!
//! Cases are grouped per port ([`state_store`], [`queue`], [`bus`], [`secrets`]) plus
//! [`crash`] (kill a writer process and reopen the store, for backends whose durability is ours
//! to prove). Time-based cases move time with [`Harness::advance`] by whole seconds, at most a
//! few per case, since on a real service `advance` sleeps.

pub mod bus;
pub mod crash;
pub mod faults;
pub mod moto;
pub mod queue;
pub mod secrets;
pub mod state_store;

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use hub_core::ports::{
    BusEnvelope, Item, Ports, Queue, QueueSpec, RETENTION, ReceiveOptions, Topology,
};
use serde_json::Value;

/// What the suite needs from a backend.
#[async_trait]
pub trait Harness: Send + Sync {
    /// Every port on new resources that no other case sees (a new data directory, a random
    /// name prefix), created from `topology`: tables, queues with their redrive settings, the
    /// bus and its rules. Cases use logical queue names only, so a harness may change
    /// `topology.prefix`. Panics if the backend cannot be set up (this is test code).
    async fn fresh(&self, topology: &Topology) -> Ports;

    /// Moves time forward by `by` as the ports see it: advancing a `ManualClock`, or sleeping
    /// for a backend on real time.
    async fn advance(&self, by: Duration);

    /// Whether surviving a killed process is this backend's job (an embedded store: yes; a
    /// remote service: no, and the crash case is skipped).
    fn supports_crash(&self) -> bool {
        false
    }

    /// Opens the backend on a data directory that outlives this process. Called by the crash
    /// case only, in the test process and in the writer child it kills.
    async fn open_dir(&self, dir: &Path, topology: &Topology) -> Option<Ports> {
        let _ = (dir, topology);
        None
    }

    /// Whether the backend isolates concurrent writes to one item: an UpdateItem ADD, a
    /// conditional write, a transaction, a secret's compare-and-swap applied as if alone.
    /// DynamoDB, Secrets Manager and the embedded backend do; moto 5.2.5 does not (it reads
    /// and writes without a lock, so racing ADDs lose one another). Cases that race writers
    /// on one item run them one after another where this is false: the race then tests the
    /// emulator, not our adapter, and the embedded backend keeps the race.
    fn isolates_concurrent_writes(&self) -> bool {
        true
    }

    /// Why this backend cannot run here (an emulator that is not installed), or `None`. The
    /// cases then print that they were skipped. A harness must only say so when nobody asked
    /// for the backend: under CI or `HUB_REQUIRE_EMULATOR` a missing emulator is a failure.
    fn unavailable(&self) -> Option<String> {
        None
    }
}

/// Prints why a case is skipped and returns true, or returns false when it can run.
#[doc(hidden)]
pub fn skipped(harness: &dyn Harness, case: &str) -> bool {
    match harness.unavailable() {
        Some(why) => {
            eprintln!("skipped {case}: {why}");
            true
        }
        None => false,
    }
}

/// The topology the queue, bus and crash cases start from.
///
/// - `work`: 30 s visibility, redrives to `work-dlq` after 2 receives;
/// - `work-dlq`: its dead-letter queue;
/// - `short`: a 1 s default visibility timeout;
/// - `events`, `audit`: targets of the bus cases' rules.
pub fn topology() -> Topology {
    let queue = |name: &str, visibility_secs: u64, redrive: Option<(&str, u32)>| QueueSpec {
        logical_name: name.to_owned(),
        visibility_timeout: Duration::from_secs(visibility_secs),
        retention: RETENTION,
        redrive: redrive.map(|(dlq, count)| (dlq.to_owned(), count)),
    };
    Topology {
        prefix: "contract".to_owned(),
        queues: vec![
            queue("work", 30, Some(("work-dlq", 2))),
            queue("work-dlq", 30, None),
            queue("short", 1, None),
            queue("events", 30, None),
            queue("audit", 30, None),
        ],
        rules: Vec::new(),
    }
}

/// A topology with the tables and the bus but no queues (cheaper on a real service).
pub fn tables_only() -> Topology {
    Topology {
        prefix: "contract".to_owned(),
        queues: Vec::new(),
        rules: Vec::new(),
    }
}

/// Runs `writes` at once where the backend isolates concurrent writes, else one after another
/// (see [`Harness::isolates_concurrent_writes`]); the results come in the given order.
pub async fn racing_writes<F: Future>(h: &dyn Harness, writes: Vec<F>) -> Vec<F::Output> {
    if h.isolates_concurrent_writes() {
        return futures::future::join_all(writes).await;
    }
    let mut results = Vec::with_capacity(writes.len());
    for write in writes {
        results.push(write.await);
    }
    results
}

/// An item from a JSON object literal.
pub fn item(value: Value) -> Item {
    match value {
        Value::Object(map) => map,
        other => panic!("an item is a JSON object, not {other}"),
    }
}

/// A name no other case (or earlier run against a shared service) uses.
pub fn unique(ports: &Ports, label: &str) -> String {
    format!("{label}-{}", ports.ids.new_id().to_lowercase())
}

/// Receives and deletes every message visible in `queue` and returns their bodies: what a test
/// reads of the messages the code under test sent.
pub async fn drain(queue: &dyn Queue) -> Vec<String> {
    let mut bodies = Vec::new();
    loop {
        let batch = queue.receive(ReceiveOptions::default()).await.unwrap();
        if batch.is_empty() {
            return bodies;
        }
        for message in batch {
            queue.delete(&message.receipt_handle).await.unwrap();
            bodies.push(message.body);
        }
    }
}

/// [`drain`]s a queue a bus rule delivers to: each event's detail type and detail.
pub async fn drain_events(queue: &dyn Queue) -> Vec<(String, Value)> {
    drain(queue)
        .await
        .iter()
        .map(|body| {
            let envelope: BusEnvelope = serde_json::from_str(body).unwrap();
            (envelope.detail_type, envelope.detail.to_value().unwrap())
        })
        .collect()
}

/// Runs one case on its own multi-threaded runtime (used by [`contract_tests!`], so the crate
/// that expands it needs no tokio of its own).
#[doc(hidden)]
pub fn block_on(case: impl Future<Output = ()>) {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime for the contract case")
        .block_on(case);
}

/// Expands to one `#[test]` per contract case for the harness made by `$harness`, an async
/// function (in scope where the macro is used) returning a [`Harness`].
#[macro_export]
macro_rules! contract_tests {
    ($harness:path) => {
        $crate::contract_tests!(@group $harness, state_store [
            missing_item_is_none,
            put_then_get_round_trips_every_json_type,
            tables_are_separate,
            put_replaces_the_whole_item,
            conditional_put_creates_only_once,
            conditional_put_checks_attribute_values,
            conditions_compare_values_of_the_same_type_only,
            update_creates_the_item_and_returns_it,
            update_counts_and_keeps_first_values,
            update_with_a_failed_condition_changes_nothing,
            update_rejects_invalid_actions,
            delete_returns_the_old_item_and_honours_its_condition,
            query_returns_one_partition_in_sort_key_order,
            query_applies_each_sort_condition,
            query_pages_forward_and_backward,
            query_applies_the_limit_before_the_filter,
            query_rejects_invalid_requests,
            gsi1_query_is_sparse_and_pages_through_shared_sort_keys,
            gsi1_follows_updates_moves_and_deletes,
            transact_write_applies_every_operation,
            transact_write_cancels_with_a_reason_per_operation,
            transact_write_rejects_invalid_transactions,
            batch_write_and_batch_get,
            batch_limits_are_enforced,
            expired_items_are_absent,
            invalid_items_are_rejected,
        ]);
        $crate::contract_tests!(@group $harness, queue [
            send_receive_delete,
            unknown_queue_is_an_error,
            batch_send_fails_only_the_invalid_entries,
            batch_send_checks_the_whole_batch,
            message_size_limit_is_256_kib,
            delay_hides_a_message_until_it_passes,
            visibility_timeout_hides_and_redelivers_with_a_higher_count,
            queue_default_visibility_timeout_applies,
            change_visibility_releases_and_extends,
            change_visibility_of_a_deleted_message_is_invalid,
            delete_with_an_earlier_receipt_handle_succeeds,
            delete_batch_deletes_each_and_fails_bad_handles_alone,
            redrive_moves_a_message_to_the_dlq_after_max_receives,
            depth_counts_visible_in_flight_and_delayed,
            purge_removes_every_message,
            receive_returns_at_most_max_messages_each_once,
            long_poll_wakes_when_a_message_arrives,
            long_poll_returns_empty_after_the_wait,
            invalid_requests_are_rejected,
        ]);
        $crate::contract_tests!(@group $harness, bus [
            matching_events_reach_the_target_queue_as_envelopes,
            events_matching_no_rule_are_not_delivered,
            every_matching_rule_delivers,
            pattern_operators_route_events,
            put_events_accepts_more_than_ten_events,
            oversize_events_fail_alone,
            put_rule_replaces_a_rule_by_name,
            invalid_patterns_are_rejected,
        ]);
        $crate::contract_tests!(@group $harness, secrets [
            missing_secret_is_none,
            create_then_get,
            create_conflicts_when_the_secret_exists,
            compare_and_swap_replaces_the_current_version,
            compare_and_swap_with_a_stale_version_conflicts,
            concurrent_swaps_from_one_version_have_one_winner,
            delete_removes_the_secret,
            values_never_appear_in_debug_output,
            invalid_names_are_rejected,
        ]);
        mod crash {
            #[allow(unused_imports)]
            use super::*;

            #[test]
            fn killed_writer_loses_nothing() {
                $crate::block_on(async {
                    let harness = $harness().await;
                    if $crate::skipped(&harness, "crash::killed_writer_loses_nothing") {
                        return;
                    }
                    $crate::crash::killed_writer_loses_nothing(
                        &harness,
                        concat!(module_path!(), "::killed_writer_loses_nothing"),
                    )
                    .await;
                });
            }
        }
    };
    (@group $harness:path, $group:ident [$($case:ident),* $(,)?]) => {
        mod $group {
            #[allow(unused_imports)]
            use super::*;

            $(
                #[test]
                fn $case() {
                    $crate::block_on(async {
                        let harness = $harness().await;
                        if $crate::skipped(&harness, concat!(stringify!($group), "::", stringify!($case))) {
                            return;
                        }
                        $crate::$group::$case(&harness).await;
                    });
                }
            )*
        }
    };
}
