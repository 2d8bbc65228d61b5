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

on_moto!(
    scheduled_runs_start_once_per_occurrence_and_catch_up_once,
    racing_ticks_start_each_occurrence_once,
    an_occurrence_due_while_the_last_run_goes_on_is_skipped,
    cancel_ends_the_run,
    retry_starts_a_new_execution_of_a_failed_one,
    concurrent_counter_adds_are_all_counted(4, 10),
    finishing_updates_the_task_and_publishes_the_outcome,
    an_interrupted_start_is_delivered_by_a_later_tick,
);
