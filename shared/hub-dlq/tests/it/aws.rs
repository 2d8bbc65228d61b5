//! The scenarios on the AWS adapters against moto (which has no `StartMessageMoveTask`: the
//! replayer's receive, send and delete are all it needs).

use crate::{scenarios, support};

macro_rules! on_moto {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let Some(env) = support::aws(concat!("hub-dlq aws::", stringify!($name))).await else {
                return;
            };
            scenarios::$name(&env).await;
        }
    )*};
}

on_moto!(
    dead_messages_are_listed_with_their_reason,
    filters_select_by_tenant_task_code_and_age,
    a_dry_run_sends_nothing,
    a_replay_resends_then_deletes,
    the_rate_limit_is_honoured,
    the_limit_caps_a_replay_over_every_queue,
    purge_deletes_what_the_filter_selects_or_everything_when_told,
);
