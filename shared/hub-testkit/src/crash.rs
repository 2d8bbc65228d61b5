//! The crash case: a writer process is killed with SIGKILL in the middle of its writes, several
//! times, and everything it had acknowledged must be there when the store is reopened.
//!
//! The writer is the test executable itself, re-run on this one test with [`WRITER_DIR_ENV`]
//! set: the same case then writes instead of checking. It prints one line per call that
//! returned `Ok`, which is exactly what must survive.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use hub_core::ports::{Key, OutgoingMessage, Ports, ReceiveOptions, UpdateAction};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::{Harness, item, topology};

/// Set in the writer child: the data directory to write to.
pub const WRITER_DIR_ENV: &str = "HUB_TESTKIT_CRASH_WRITER_DIR";
/// Set in the writer child: which writer this is (keys differ per writer).
const WRITER_ID_ENV: &str = "HUB_TESTKIT_CRASH_WRITER_ID";
/// Rounds of two concurrent writers; each writer is killed after a different number of
/// acknowledgements.
const ROUNDS: usize = 3;
/// A writer stops by itself after this long, should its parent be gone.
const WRITER_LIFETIME: Duration = Duration::from_secs(60);
const COUNTER: (&str, &str) = ("crash", "counter");
/// Ends every acknowledgement line, so a line cut short by the kill is not mistaken for one.
const END: &str = ";";

/// What the writers acknowledged.
#[derive(Debug, Default)]
struct Acknowledged {
    items: BTreeSet<String>,
    /// Message body to message id.
    messages: BTreeMap<String, String>,
    counter: u64,
}

impl Acknowledged {
    fn record(&mut self, line: &str) -> bool {
        // The test harness may have printed on the same line before the first one.
        let Some(fields) = line
            .find("ACK ")
            .and_then(|at| line[at + "ACK ".len()..].strip_suffix(END))
        else {
            return false;
        };
        let fields: Vec<&str> = fields.split_whitespace().collect();
        match fields.as_slice() {
            ["item", sk] => self.items.insert((*sk).to_owned()),
            ["message", body, id] => self
                .messages
                .insert((*body).to_owned(), (*id).to_owned())
                .is_none(),
            ["counter", value] => match value.parse::<u64>() {
                Ok(value) => {
                    self.counter = self.counter.max(value);
                    true
                }
                Err(_) => false,
            },
            _ => false,
        }
    }

    fn total(&self) -> usize {
        self.items.len() + self.messages.len()
    }

    fn merge(&mut self, other: Acknowledged) {
        self.items.extend(other.items);
        self.messages.extend(other.messages);
        self.counter = self.counter.max(other.counter);
    }
}

/// The case. `test_path` is the module path of the generated test function (with the crate
/// name first), so the writer child can run exactly this test.
pub async fn killed_writer_loses_nothing(h: &dyn Harness, test_path: &str) {
    if let Some(dir) = std::env::var_os(WRITER_DIR_ENV) {
        let writer = std::env::var(WRITER_ID_ENV).unwrap_or_default();
        write_until_killed(h, Path::new(&dir), &writer).await;
        return;
    }
    if !h.supports_crash() {
        eprintln!("skipped: this backend's durability is the service's, not ours to prove");
        return;
    }
    let dir = tempfile::tempdir().expect("a temporary data directory");
    let test_name = test_path
        .split_once("::")
        .map_or(test_path, |(_crate, rest)| rest);
    let mut acknowledged = Acknowledged::default();
    for round in 0..ROUNDS {
        // Two writer processes at once, as `hub dev` and a `hub` command share a directory.
        let kill_after = 20 + 40 * round;
        let (first_id, second_id) = (format!("{round}a"), format!("{round}b"));
        let (first, second) = tokio::join!(
            run_and_kill(dir.path(), test_name, &first_id, kill_after),
            run_and_kill(dir.path(), test_name, &second_id, kill_after + 7),
        );
        for writer in [first, second] {
            assert!(
                writer.total() > 0,
                "a writer of round {round} acknowledged nothing before it was killed"
            );
            acknowledged.merge(writer);
        }
    }

    eprintln!(
        "crash case: {} items, {} messages and {} increments acknowledged by {} killed writers",
        acknowledged.items.len(),
        acknowledged.messages.len(),
        acknowledged.counter,
        2 * ROUNDS
    );
    let ports = h
        .open_dir(dir.path(), &topology())
        .await
        .expect("a backend that supports the crash case opens a data directory");
    // The writers ran on their own clocks; move past them so their messages are visible.
    h.advance(Duration::from_secs(3600)).await;
    check_everything_survived(&ports, &acknowledged).await;
    check_still_usable(&ports).await;
}

/// Spawns a writer, reads its acknowledgements until `kill_after`, kills it with SIGKILL, then
/// reads what it printed before it died.
async fn run_and_kill(
    dir: &Path,
    test_name: &str,
    writer: &str,
    kill_after: usize,
) -> Acknowledged {
    let mut acknowledged = Acknowledged::default();
    let exe = std::env::current_exe().expect("the test executable");
    let mut child = tokio::process::Command::new(exe)
        .args([test_name, "--exact", "--nocapture", "--test-threads=1"])
        .env(WRITER_DIR_ENV, dir)
        .env(WRITER_ID_ENV, writer)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn the writer");
    let stdout = child.stdout.take().expect("the writer's stdout");
    let mut lines = BufReader::new(stdout).lines();
    let mut seen = 0;
    let reading = async {
        while seen < kill_after {
            match lines.next_line().await.expect("read the writer's output") {
                Some(line) => {
                    if acknowledged.record(&line) {
                        seen += 1;
                    }
                }
                None => panic!("the writer exited before it was killed"),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), reading)
        .await
        .expect("the writer acknowledges writes within a minute");
    // `start_kill` sends SIGKILL on Unix: no destructor, no flush, no checkpoint runs.
    child.start_kill().expect("kill the writer");
    let status = child.wait().await.expect("reap the writer");
    assert!(!status.success(), "the writer was killed: {status:?}");
    // Lines printed before the kill are acknowledged writes too.
    while let Some(line) = lines.next_line().await.expect("read the writer's output") {
        acknowledged.record(&line);
    }
    acknowledged
}

/// The writer: puts items, sends messages and increments a counter until killed, printing
/// one line per acknowledged call.
async fn write_until_killed(h: &dyn Harness, dir: &Path, writer: &str) {
    let ports = h
        .open_dir(dir, &topology())
        .await
        .expect("the writer opens the data directory");
    let queue = ports.queue("work").expect("the work queue");
    // Ends the test harness's "test <name> ... " line.
    println!();
    let started = Instant::now();
    let mut i: u64 = 0;
    while started.elapsed() < WRITER_LIFETIME {
        let sk = format!("w{writer}-{i:06}");
        ports
            .state
            .put(item(json!({"pk": "crash", "sk": sk, "i": i})), None)
            .await
            .expect("put");
        println!("ACK item {sk} {END}");
        let id = queue
            .send(OutgoingMessage::new(sk.clone()).attribute("writer", writer))
            .await
            .expect("send");
        println!("ACK message {sk} {id} {END}");
        let counter = ports
            .state
            .update(
                &Key::new(COUNTER.0, COUNTER.1),
                vec![UpdateAction::Add("n".into(), 1)],
                None,
            )
            .await
            .expect("update");
        println!("ACK counter {} {END}", counter["n"]);
        i += 1;
    }
}

async fn check_everything_survived(ports: &Ports, acknowledged: &Acknowledged) {
    for sk in &acknowledged.items {
        let got = ports
            .state
            .get(&Key::new("crash", sk.as_str()))
            .await
            .expect("get after reopening");
        assert!(got.is_some(), "acknowledged item {sk} was lost");
    }
    let counter = ports
        .state
        .get(&Key::new(COUNTER.0, COUNTER.1))
        .await
        .expect("get the counter")
        .and_then(|c| c["n"].as_u64())
        .unwrap_or(0);
    assert!(
        counter >= acknowledged.counter,
        "the counter is {counter}, but {} increments were acknowledged",
        acknowledged.counter
    );

    let queue = ports.queue("work").expect("the work queue");
    let mut received = BTreeMap::new();
    loop {
        let batch = queue
            .receive(ReceiveOptions::default())
            .await
            .expect("receive after reopening");
        if batch.is_empty() {
            break;
        }
        for message in batch {
            received.insert(message.body, message.message_id);
        }
    }
    for (body, id) in &acknowledged.messages {
        assert_eq!(
            received.get(body),
            Some(id),
            "acknowledged message {body} ({id}) was lost"
        );
    }
}

async fn check_still_usable(ports: &Ports) {
    ports
        .state
        .put(item(json!({"pk": "crash", "sk": "after"})), None)
        .await
        .expect("put after reopening");
    assert!(
        ports
            .state
            .get(&Key::new("crash", "after"))
            .await
            .expect("get")
            .is_some()
    );
    let queue = ports.queue("short").expect("the short queue");
    queue
        .send(OutgoingMessage::new("after"))
        .await
        .expect("send after reopening");
    let received = queue
        .receive(ReceiveOptions::default())
        .await
        .expect("receive");
    assert_eq!(received.len(), 1);
}
