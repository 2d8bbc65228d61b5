//! The core scenarios on the AWS adapters against moto.

use crate::{scenarios, support};

macro_rules! on_moto {
    ($($name:ident $(($($arg:expr),*))?),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let Some(env) = support::aws(concat!("hub-sync aws::", stringify!($name))).await else {
                return;
            };
            scenarios::$name(&env $($(, $arg)*)?).await;
        }
    )*};
}

// `racing_ticks_start_each_occurrence_once` runs on the embedded backend only: moto does not
// isolate concurrent TransactWriteItems requests (two racing claims on one task item were both
// accepted in a run on moto 5.2.5), so on moto the race tests the emulator, not our claim. On
// DynamoDB the claim rests on its serializable transactions and condition checks.
on_moto!(
    scheduled_runs_start_once_per_occurrence_and_catch_up_once,
    an_occurrence_due_while_the_last_run_goes_on_is_skipped,
    cancel_ends_the_run,
    retry_starts_a_new_execution_of_a_failed_one,
    concurrent_counter_adds_are_all_counted(4, 10),
    finishing_updates_the_task_and_publishes_the_outcome,
    an_interrupted_start_is_delivered_by_a_later_tick,
);
