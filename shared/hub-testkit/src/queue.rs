//! `Queue` cases: SQS standard-queue semantics of sending, receiving, visibility, receive
//! counts, redrive, depth and purge.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use hub_core::ports::{
    MAX_MESSAGE_BYTES, OutgoingMessage, Queue, QueueDepth, QueueError, ReceiveOptions,
    ReceivedMessage,
};

use crate::{Harness, topology};

fn receive_options(max_messages: usize) -> ReceiveOptions {
    ReceiveOptions {
        max_messages,
        wait: Duration::ZERO,
        visibility_timeout: None,
    }
}

async fn receive_now(queue: &dyn Queue) -> Vec<ReceivedMessage> {
    queue.receive(receive_options(10)).await.expect("receive")
}

/// Receives until `count` messages have arrived or a few long polls come back empty.
async fn receive_count(queue: &dyn Queue, count: usize) -> Vec<ReceivedMessage> {
    let mut received = Vec::new();
    let mut empty_polls = 0;
    while received.len() < count && empty_polls < 3 {
        let batch = queue
            .receive(ReceiveOptions {
                max_messages: 10,
                wait: Duration::from_secs(1),
                visibility_timeout: None,
            })
            .await
            .expect("receive");
        if batch.is_empty() {
            empty_polls += 1;
        }
        received.extend(batch);
    }
    received
}

fn bodies(messages: &[ReceivedMessage]) -> BTreeSet<String> {
    messages.iter().map(|m| m.body.clone()).collect()
}

fn depth(visible: u64, in_flight: u64, delayed: u64) -> QueueDepth {
    QueueDepth {
        visible,
        in_flight,
        delayed,
    }
}

pub async fn send_receive_delete(h: &dyn Harness) {
    let ports = h.fresh(&topology()).await;
    let queue = ports.queue("work").unwrap();
    assert_eq!(queue.name(), "work");
    assert!(receive_now(&*queue).await.is_empty());

    let message = OutgoingMessage::new(r#"{"v":1,"job":"fetch"}"#)
        .attribute("traceHeader", "Root=1-abc")
        .attribute("idempotencyKey", "k-1");
    let id = queue.send(message.clone()).await.unwrap();
    assert!(!id.is_empty());

    let received = receive_now(&*queue).await;
    assert_eq!(received.len(), 1, "{received:?}");
    let got = &received[0];
    assert_eq!(got.message_id, id);
    assert_eq!(got.body, message.body);
    assert_eq!(got.attributes, message.attributes);
    assert_eq!(got.receive_count, 1);
    assert!(!got.receipt_handle.is_empty());

    queue.delete(&got.receipt_handle).await.unwrap();
    assert_eq!(queue.depth().await.unwrap(), depth(0, 0, 0));
    // Deleting a message that is already gone succeeds.
    queue.delete(&got.receipt_handle).await.unwrap();
}

pub async fn unknown_queue_is_an_error(h: &dyn Harness) {
    let ports = h.fresh(&topology()).await;
    assert!(matches!(
        ports.queue("no-such-queue"),
        Err(QueueError::UnknownQueue(name)) if name == "no-such-queue"
    ));
    for name in ["work", "work-dlq", "short", "events", "audit"] {
        assert!(ports.queue(name).is_ok(), "{name} is in the topology");
    }
}

pub async fn batch_send_fails_only_the_invalid_entries(h: &dyn Harness) {
    let ports = h.fresh(&topology()).await;
    let queue = ports.queue("work").unwrap();
    let outcomes = queue
        .send_batch(vec![
            OutgoingMessage::new("first"),
            OutgoingMessage::new("x".repeat(MAX_MESSAGE_BYTES + 1)),
            OutgoingMessage::new(""),
            OutgoingMessage::new("last").attribute("n", "4"),
        ])
        .await
        .unwrap();
    assert_eq!(outcomes.len(), 4);
    assert!(outcomes[0].is_ok(), "{:?}", outcomes[0]);
    assert!(
        matches!(outcomes[1], Err(QueueError::TooLarge { .. })),
        "{:?}",
        outcomes[1]
    );
    assert!(
        matches!(outcomes[2], Err(QueueError::Invalid(_))),
        "{:?}",
        outcomes[2]
    );
    assert!(outcomes[3].is_ok(), "{:?}", outcomes[3]);

    let received = receive_count(&*queue, 2).await;
    assert_eq!(
        bodies(&received),
        BTreeSet::from(["first".to_owned(), "last".to_owned()])
    );
    let ids: BTreeSet<&String> = outcomes.iter().filter_map(|o| o.as_ref().ok()).collect();
    assert_eq!(
        received
            .iter()
            .map(|m| &m.message_id)
            .collect::<BTreeSet<_>>(),
        ids
    );
}

pub async fn batch_send_checks_the_whole_batch(h: &dyn Harness) {
    let ports = h.fresh(&topology()).await;
    let queue = ports.queue("work").unwrap();
    let eleven = (0..11)
        .map(|i| OutgoingMessage::new(format!("m{i}")))
        .collect();
    assert!(matches!(
        queue.send_batch(eleven).await,
        Err(QueueError::Invalid(_))
    ));
    assert!(matches!(
        queue.send_batch(Vec::new()).await,
        Err(QueueError::Invalid(_))
    ));
    // Each entry fits, together they do not.
    let heavy = (0..3)
        .map(|_| OutgoingMessage::new("y".repeat(100 * 1024)))
        .collect();
    assert!(matches!(
        queue.send_batch(heavy).await,
        Err(QueueError::TooLarge { .. })
    ));
    assert_eq!(queue.depth().await.unwrap(), depth(0, 0, 0));
}

pub async fn message_size_limit_is_256_kib(h: &dyn Harness) {
    let ports = h.fresh(&topology()).await;
    let queue = ports.queue("work").unwrap();
    let largest = "z".repeat(MAX_MESSAGE_BYTES);
    queue
        .send(OutgoingMessage::new(largest.clone()))
        .await
        .unwrap();
    let received = receive_now(&*queue).await;
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].body.len(), largest.len());
    assert!(received[0].body == largest);

    let too_large = queue
        .send(OutgoingMessage::new("z".repeat(MAX_MESSAGE_BYTES + 1)))
        .await;
    assert!(
        matches!(too_large, Err(QueueError::TooLarge { size, limit }) if size == MAX_MESSAGE_BYTES + 1 && limit == MAX_MESSAGE_BYTES),
        "{too_large:?}"
    );
    // Attributes count towards the limit.
    let with_attribute =
        OutgoingMessage::new("z".repeat(MAX_MESSAGE_BYTES - 10)).attribute("trace", "0123456789");
    assert!(matches!(
        queue.send(with_attribute).await,
        Err(QueueError::TooLarge { .. })
    ));
    let eleven_attributes = (0..11).fold(OutgoingMessage::new("a"), |m, i| {
        m.attribute(format!("a{i}"), "v")
    });
    assert!(matches!(
        queue.send(eleven_attributes).await,
        Err(QueueError::Invalid(_))
    ));
    assert!(matches!(
        queue.send(OutgoingMessage::new("")).await,
        Err(QueueError::Invalid(_))
    ));
}

pub async fn delay_hides_a_message_until_it_passes(h: &dyn Harness) {
    let ports = h.fresh(&topology()).await;
    let queue = ports.queue("work").unwrap();
    queue
        .send(OutgoingMessage::new("later").delayed(Duration::from_secs(1)))
        .await
        .unwrap();
    queue.send(OutgoingMessage::new("now")).await.unwrap();
    let first = receive_now(&*queue).await;
    assert_eq!(bodies(&first), BTreeSet::from(["now".to_owned()]));
    assert_eq!(queue.depth().await.unwrap(), depth(0, 1, 1));

    h.advance(Duration::from_secs(2)).await;
    let second = receive_now(&*queue).await;
    assert_eq!(bodies(&second), BTreeSet::from(["later".to_owned()]));
    assert_eq!(second[0].receive_count, 1);

    assert!(matches!(
        queue
            .send(OutgoingMessage::new("too late").delayed(Duration::from_secs(901)))
            .await,
        Err(QueueError::Invalid(_))
    ));
}

pub async fn visibility_timeout_hides_and_redelivers_with_a_higher_count(h: &dyn Harness) {
    let ports = h.fresh(&topology()).await;
    let queue = ports.queue("work").unwrap();
    let id = queue.send(OutgoingMessage::new("job")).await.unwrap();
    let short = ReceiveOptions {
        max_messages: 1,
        wait: Duration::ZERO,
        visibility_timeout: Some(Duration::from_secs(1)),
    };
    let first = queue.receive(short).await.unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].receive_count, 1);
    assert!(receive_now(&*queue).await.is_empty(), "in flight");

    h.advance(Duration::from_secs(2)).await;
    let second = receive_now(&*queue).await;
    assert_eq!(second.len(), 1, "visible again after the timeout");
    assert_eq!(second[0].message_id, id);
    assert_eq!(second[0].receive_count, 2);
    assert_ne!(second[0].receipt_handle, first[0].receipt_handle);
    assert_eq!(second[0].sent_at, first[0].sent_at);

    queue.delete(&second[0].receipt_handle).await.unwrap();
    assert_eq!(queue.depth().await.unwrap(), depth(0, 0, 0));
}

pub async fn queue_default_visibility_timeout_applies(h: &dyn Harness) {
    let ports = h.fresh(&topology()).await;
    let short = ports.queue("short").unwrap();
    short.send(OutgoingMessage::new("job")).await.unwrap();
    assert_eq!(receive_now(&*short).await.len(), 1);
    assert!(receive_now(&*short).await.is_empty());
    h.advance(Duration::from_secs(2)).await;
    let again = receive_now(&*short).await;
    assert_eq!(again.len(), 1, "the queue's 1 s visibility timeout ran out");
    assert_eq!(again[0].receive_count, 2);

    // A 30 s queue keeps the message hidden over the same time.
    let work = ports.queue("work").unwrap();
    work.send(OutgoingMessage::new("job")).await.unwrap();
    assert_eq!(receive_now(&*work).await.len(), 1);
    h.advance(Duration::from_secs(2)).await;
    assert!(receive_now(&*work).await.is_empty());
}

pub async fn change_visibility_releases_and_extends(h: &dyn Harness) {
    let ports = h.fresh(&topology()).await;
    let queue = ports.queue("work").unwrap();
    queue.send(OutgoingMessage::new("job")).await.unwrap();
    let first = receive_now(&*queue).await;
    assert_eq!(first.len(), 1);
    queue
        .change_visibility(&first[0].receipt_handle, Duration::ZERO)
        .await
        .unwrap();
    let second = receive_now(&*queue).await;
    assert_eq!(second.len(), 1, "released at once");
    assert_eq!(second[0].receive_count, 2);

    queue
        .change_visibility(&second[0].receipt_handle, Duration::from_secs(1))
        .await
        .unwrap();
    queue
        .change_visibility(&second[0].receipt_handle, Duration::from_secs(30))
        .await
        .unwrap();
    h.advance(Duration::from_secs(2)).await;
    assert!(
        receive_now(&*queue).await.is_empty(),
        "the later change (30 s) wins"
    );
    assert_eq!(queue.depth().await.unwrap(), depth(0, 1, 0));
}

/// Only handles of messages that are gone (or were never issued) are pinned as invalid: for an
/// earlier receive's handle of a message still in flight, SQS (and moto) accept the change,
/// while the embedded backend refuses it, as the port's doc asks callers not to rely on it.
pub async fn change_visibility_of_a_deleted_message_is_invalid(h: &dyn Harness) {
    let ports = h.fresh(&topology()).await;
    let queue = ports.queue("work").unwrap();
    queue.send(OutgoingMessage::new("job")).await.unwrap();
    let received = receive_now(&*queue).await;
    assert_eq!(received.len(), 1);
    queue.delete(&received[0].receipt_handle).await.unwrap();
    assert_eq!(
        queue
            .change_visibility(&received[0].receipt_handle, Duration::ZERO)
            .await,
        Err(QueueError::InvalidReceipt),
        "a deleted message"
    );
    assert_eq!(
        queue
            .change_visibility("not-a-receipt-handle", Duration::ZERO)
            .await,
        Err(QueueError::InvalidReceipt),
        "a handle that was never issued"
    );
}

pub async fn delete_with_an_earlier_receipt_handle_succeeds(h: &dyn Harness) {
    let ports = h.fresh(&topology()).await;
    let queue = ports.queue("work").unwrap();
    queue.send(OutgoingMessage::new("job")).await.unwrap();
    let first = receive_now(&*queue).await;
    queue
        .change_visibility(&first[0].receipt_handle, Duration::ZERO)
        .await
        .unwrap();
    let second = receive_now(&*queue).await;
    assert_eq!(second.len(), 1);
    // Whether an earlier handle removes the message is the service's choice; it is no error.
    queue.delete(&first[0].receipt_handle).await.unwrap();
    queue.delete(&second[0].receipt_handle).await.unwrap();
    assert_eq!(queue.depth().await.unwrap(), depth(0, 0, 0));
}

pub async fn delete_batch_deletes_each_and_fails_bad_handles_alone(h: &dyn Harness) {
    let ports = h.fresh(&topology()).await;
    let queue = ports.queue("work").unwrap();
    for body in ["a", "b", "c"] {
        queue.send(OutgoingMessage::new(body)).await.unwrap();
    }
    let received = receive_count(&*queue, 3).await;
    assert_eq!(received.len(), 3);
    let mut handles: Vec<String> = received.iter().map(|m| m.receipt_handle.clone()).collect();
    handles.insert(1, String::new());
    let outcomes = queue.delete_batch(&handles).await.unwrap();
    assert_eq!(
        outcomes,
        vec![Ok(()), Err(QueueError::InvalidReceipt), Ok(()), Ok(())]
    );
    assert_eq!(queue.depth().await.unwrap(), depth(0, 0, 0));
    // As with `delete`, a message that is already gone deletes without error.
    assert_eq!(
        queue.delete_batch(&handles[..1]).await.unwrap(),
        vec![Ok(())]
    );
    for size in [0, 11] {
        assert!(
            matches!(
                queue.delete_batch(&vec![handles[0].clone(); size]).await,
                Err(QueueError::Invalid(_))
            ),
            "a batch of {size} handles"
        );
    }
}

pub async fn redrive_moves_a_message_to_the_dlq_after_max_receives(h: &dyn Harness) {
    let ports = h.fresh(&topology()).await;
    let work = ports.queue("work").unwrap();
    let dlq = ports.queue("work-dlq").unwrap();
    let message = OutgoingMessage::new("poison").attribute("idempotencyKey", "k-9");
    let id = work.send(message.clone()).await.unwrap();
    let mut sent_at = None;
    // `work` redrives after 2 receives.
    for expected_count in 1..=2 {
        let received = receive_now(&*work).await;
        assert_eq!(received.len(), 1, "receive {expected_count}");
        assert_eq!(received[0].receive_count, expected_count);
        sent_at = Some(received[0].sent_at);
        work.change_visibility(&received[0].receipt_handle, Duration::ZERO)
            .await
            .unwrap();
    }
    assert!(
        receive_now(&*work).await.is_empty(),
        "the third receive moves the message instead of delivering it"
    );
    let dead = receive_count(&*dlq, 1).await;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].message_id, id);
    assert_eq!(dead[0].body, message.body);
    assert_eq!(dead[0].attributes, message.attributes);
    assert_eq!(Some(dead[0].sent_at), sent_at);
    assert_eq!(work.depth().await.unwrap(), depth(0, 0, 0));
}

pub async fn depth_counts_visible_in_flight_and_delayed(h: &dyn Harness) {
    let ports = h.fresh(&topology()).await;
    let queue = ports.queue("work").unwrap();
    assert_eq!(queue.depth().await.unwrap(), depth(0, 0, 0));
    for i in 0..3 {
        queue
            .send(OutgoingMessage::new(format!("m{i}")))
            .await
            .unwrap();
    }
    queue
        .send(OutgoingMessage::new("delayed").delayed(Duration::from_secs(60)))
        .await
        .unwrap();
    assert_eq!(queue.depth().await.unwrap(), depth(3, 0, 1));
    let received = queue.receive(receive_options(1)).await.unwrap();
    assert_eq!(received.len(), 1);
    assert_eq!(queue.depth().await.unwrap(), depth(2, 1, 1));
    queue.delete(&received[0].receipt_handle).await.unwrap();
    assert_eq!(queue.depth().await.unwrap(), depth(2, 0, 1));
}

pub async fn purge_removes_every_message(h: &dyn Harness) {
    let ports = h.fresh(&topology()).await;
    let queue = ports.queue("work").unwrap();
    // Another queue keeps its messages. (SQS allows one purge per queue per 60 s, so the case
    // purges once.)
    let other = ports.queue("short").unwrap();
    other.send(OutgoingMessage::new("kept")).await.unwrap();
    for i in 0..3 {
        queue
            .send(OutgoingMessage::new(format!("m{i}")))
            .await
            .unwrap();
    }
    queue
        .send(OutgoingMessage::new("delayed").delayed(Duration::from_secs(60)))
        .await
        .unwrap();
    assert_eq!(queue.receive(receive_options(1)).await.unwrap().len(), 1);
    queue.purge().await.unwrap();
    assert_eq!(queue.depth().await.unwrap(), depth(0, 0, 0));
    assert!(receive_now(&*queue).await.is_empty());
    assert_eq!(other.depth().await.unwrap(), depth(1, 0, 0));
}

pub async fn receive_returns_at_most_max_messages_each_once(h: &dyn Harness) {
    let ports = h.fresh(&topology()).await;
    let queue = ports.queue("work").unwrap();
    let sent: BTreeSet<String> = (0..5).map(|i| format!("m{i}")).collect();
    for body in &sent {
        queue
            .send(OutgoingMessage::new(body.clone()))
            .await
            .unwrap();
    }
    let mut received = Vec::new();
    for _ in 0..20 {
        let batch = queue.receive(receive_options(2)).await.unwrap();
        assert!(batch.len() <= 2, "{batch:?}");
        received.extend(batch);
        if received.len() >= sent.len() {
            break;
        }
    }
    assert_eq!(
        received.len(),
        sent.len(),
        "each message once: {received:?}"
    );
    assert_eq!(bodies(&received), sent);
    let handles: BTreeSet<&String> = received.iter().map(|m| &m.receipt_handle).collect();
    assert_eq!(handles.len(), sent.len(), "a receipt handle per receive");
}

pub async fn long_poll_wakes_when_a_message_arrives(h: &dyn Harness) {
    let ports = h.fresh(&topology()).await;
    let queue = ports.queue("work").unwrap();
    let sender = ports.queue("work").unwrap();
    let send = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        sender.send(OutgoingMessage::new("wake up")).await
    });
    let started = Instant::now();
    let received = queue
        .receive(ReceiveOptions {
            max_messages: 10,
            wait: Duration::from_secs(10),
            visibility_timeout: None,
        })
        .await
        .unwrap();
    let waited = started.elapsed();
    send.await.expect("sender task").unwrap();
    assert_eq!(bodies(&received), BTreeSet::from(["wake up".to_owned()]));
    assert!(
        waited < Duration::from_secs(5),
        "a long poll returns soon after a send, not at the end of its wait ({waited:?})"
    );
}

pub async fn long_poll_returns_empty_after_the_wait(h: &dyn Harness) {
    let ports = h.fresh(&topology()).await;
    let queue = ports.queue("work").unwrap();
    let started = Instant::now();
    let received = queue
        .receive(ReceiveOptions {
            max_messages: 10,
            wait: Duration::from_secs(1),
            visibility_timeout: None,
        })
        .await
        .unwrap();
    let waited = started.elapsed();
    assert!(received.is_empty());
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(5),
        "waited {waited:?} for a 1 s long poll"
    );
}

pub async fn invalid_requests_are_rejected(h: &dyn Harness) {
    let ports = h.fresh(&topology()).await;
    let queue = ports.queue("work").unwrap();
    let invalid = [
        receive_options(0),
        receive_options(11),
        ReceiveOptions {
            wait: Duration::from_secs(21),
            ..receive_options(1)
        },
        ReceiveOptions {
            visibility_timeout: Some(Duration::from_secs(12 * 3600 + 1)),
            ..receive_options(1)
        },
    ];
    for options in invalid {
        assert!(
            matches!(queue.receive(options).await, Err(QueueError::Invalid(_))),
            "{options:?}"
        );
    }
}
