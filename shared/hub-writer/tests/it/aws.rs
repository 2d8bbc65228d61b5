//! The core scenarios on the AWS adapters against moto. Not the racing writers: moto applies
//! concurrent TransactWriteItems on one item without isolation and loses ADDs (2 of 480 in a
//! measurement with 8 threads), which DynamoDB never does; the race runs on the embedded backend.

use crate::{scenarios, support};

macro_rules! on_moto {
    ($($name:ident $(($($arg:expr),*))?),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let Some(env) = support::aws(concat!("hub-writer aws::", stringify!($name))).await else {
                return;
            };
            scenarios::$name(&env $($(, $arg)*)?).await;
        }
    )*};
}

on_moto!(
    creates_updates_and_skips,
    redelivery_changes_nothing,
    record_failures_are_recorded_and_the_rest_is_written,
    the_cursor_moves_only_once_every_batch_is_written,
    the_cursor_never_moves_backwards,
    a_redelivered_batch_takes_over_the_completion_it_claimed,
    delete_if_removed_removes_what_a_full_sync_no_longer_sees,
    lookup_finds_records_by_external_id,
    dead_batches_end_the_run_and_a_replay_writes_them_once,
    a_run_whose_every_batch_dies_ends_failed,
    a_dead_fetch_job_ends_the_fetch_and_the_run_after_its_batches,
    a_dead_batch_replayed_mid_run_leaves_the_run_to_finish_when_all_are_written,
    a_batch_written_by_a_duplicate_is_not_dead,
    the_batch_driver_counts_a_message_dead_on_its_last_delivery,
);
