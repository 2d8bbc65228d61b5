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
// For the same reason `concurrent_counter_adds_are_all_counted` has one writer here: moto
// applies an UpdateItem's ADD as a read and a write without a lock, so concurrent ADDs can
// lose one another (seen once on moto 5.2.5, a run with the machine's two cores busy:
// `pagesPending` ended at a value other than 0). On moto the case checks that our adapter's
// ADDs, negative ones included, land; the race runs on the embedded backend, and on DynamoDB
// an ADD is atomic.
on_moto!(
    scheduled_runs_start_once_per_occurrence_and_catch_up_once,
    an_occurrence_due_while_the_last_run_goes_on_is_skipped,
    cancel_ends_the_run,
    retry_starts_a_new_execution_of_a_failed_one,
    concurrent_counter_adds_are_all_counted(1, 20),
    finishing_updates_the_task_and_publishes_the_outcome,
    an_interrupted_start_is_delivered_by_a_later_tick,
);
