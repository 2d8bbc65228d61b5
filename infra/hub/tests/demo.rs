//! `hub dev --demo` as a newcomer runs it: the demo tenant is applied, its first run starts at
//! once, and the sample API's records are fetched, seen through `hub executions`.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

#[test]
fn the_demo_fetches_the_sample_records() {
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().to_str().unwrap().to_owned();
    let mut child = Command::new(env!("CARGO_BIN_EXE_hub"))
        .args(["dev", "--port", "0", "--tick", "1", "--demo"])
        .args([
            "--sample-records",
            "300",
            "--backend",
            "embedded",
            "--data-dir",
        ])
        .arg(&data_dir)
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("HUB_BACKEND")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start hub dev --demo");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut lines = Vec::new();
    for _ in 0..8 {
        let mut line = String::new();
        if stdout.read_line(&mut line).unwrap() == 0 {
            break;
        }
        let started = line.starts_with("demo: started execution");
        lines.push(line);
        if started {
            break;
        }
    }
    assert!(
        lines[0].contains("sample CRM API on http://127.0.0.1:"),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("SyncTask sample-contacts Created")),
        "{lines:?}"
    );
    let execution = lines
        .last()
        .and_then(|l| l.strip_prefix("demo: started execution "))
        .map(|id| id.trim().to_owned())
        .unwrap_or_else(|| panic!("no run started: {lines:?}"));

    let deadline = Instant::now() + Duration::from_secs(60);
    let fetched = loop {
        let output = Command::new(env!("CARGO_BIN_EXE_hub"))
            .args(["executions", "list", "--tenant", "demo", "--json"])
            .args(["--backend", "embedded", "--data-dir", &data_dir])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let fetched = String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .find(|summary| summary["id"] == execution.as_str())
            .and_then(|summary| summary["results"]["fetched"].as_u64())
            .unwrap_or(0);
        if fetched == 300 || Instant::now() > deadline {
            break fetched;
        }
        std::thread::sleep(Duration::from_millis(300));
    };
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let stopped = Instant::now();
    while child.try_wait().unwrap().is_none() && stopped.elapsed() < Duration::from_secs(15) {
        std::thread::sleep(Duration::from_millis(50));
    }
    if child.try_wait().unwrap().is_none() {
        let _ = child.kill();
    }
    assert_eq!(
        fetched, 300,
        "every sample contact fetched by the demo's first run"
    );
}

/// A `hub dev` process, killed if a failed assertion leaves it running.
struct HubDev(Child);

impl Drop for HubDev {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// `hub dev` with `args` on the embedded backend in `data_dir`, and its stdout line by line.
fn start_hub(data_dir: &Path, args: &[&str]) -> (HubDev, Receiver<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hub"))
        .args(["dev", "--port", "0", "--tick", "1"])
        .args(args)
        .args(["--backend", "embedded", "--data-dir"])
        .arg(data_dir)
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("HUB_BACKEND")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start hub dev");
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let (lines, received) = mpsc::channel();
    std::thread::spawn(move || {
        for line in stdout.lines() {
            let Ok(line) = line else { break };
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    (HubDev(child), received)
}

/// Lines up to and including the first that contains `last`; what came, if it does not come
/// within 30 s or the output ends.
fn read_until(stdout: &Receiver<String>, last: &str) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut lines = Vec::new();
    while let Ok(line) = stdout.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        let done = line.contains(last);
        lines.push(line);
        if done {
            break;
        }
    }
    lines
}

/// Ctrl-C, then everything the host printed until it exited. A clean exit means it got as far
/// as waiting for Ctrl-C, past applying (or not) the demo.
fn stop(mut hub: HubDev, stdout: Receiver<String>) -> Vec<String> {
    let child = &mut hub.0;
    // The Ctrl-C handler is installed once the host is up; give it a moment.
    std::thread::sleep(Duration::from_secs(1));
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let stopped = Instant::now();
    while child.try_wait().unwrap().is_none() && stopped.elapsed() < Duration::from_secs(15) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = child.try_wait().unwrap();
    if status.is_none() {
        let _ = child.kill();
    }
    // The reader ends at the end of the output, which the exit closed.
    let mut rest = Vec::new();
    while let Ok(line) = stdout.recv_timeout(Duration::from_secs(5)) {
        rest.push(line);
    }
    assert!(
        status.is_some_and(|status| status.success()),
        "hub dev stops cleanly on Ctrl-C ({status:?}): {rest:?}"
    );
    rest
}

/// The demo tenant's executions, newest first.
fn demo_executions(data_dir: &Path) -> Vec<serde_json::Value> {
    let output = Command::new(env!("CARGO_BIN_EXE_hub"))
        .args(["executions", "list", "--tenant", "demo", "--json"])
        .args(["--backend", "embedded", "--data-dir"])
        .arg(data_dir)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// The README's first command, `hub dev` and nothing else, shows the hub at work on a new data
/// directory: the demo is applied, its run fetches, and the output says how to watch it and
/// how to turn it off. A data directory that has data, or `--no-demo`, starts idle.
#[test]
fn a_first_start_on_a_new_data_directory_runs_the_demo() {
    let parent = tempfile::tempdir().unwrap();
    let data_dir = parent.path().join("new");
    let (child, stdout) = start_hub(&data_dir, &["--sample-records", "100"]);
    let lines = read_until(&stdout, "demo: follow it");
    assert!(
        lines
            .first()
            .is_some_and(|l| l.starts_with("hub dev listening on http://")),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("new data directory") && l.contains("--no-demo")),
        "says why the demo runs and how to turn it off: {lines:?}"
    );
    let execution = lines
        .iter()
        .find_map(|l| l.strip_prefix("demo: started execution "))
        .map(|id| id.trim().to_owned())
        .unwrap_or_else(|| panic!("no run started: {lines:?}"));
    assert!(
        lines
            .iter()
            .any(|l| l.contains("`hub executions list --tenant demo`")),
        "{lines:?}"
    );
    assert!(
        lines.iter().any(|l| l.contains(&format!(
            "`hub executions show {execution} --follow --tenant demo`"
        ))),
        "{lines:?}"
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let fetched = loop {
        let fetched = demo_executions(&data_dir)
            .iter()
            .find(|summary| summary["id"] == execution.as_str())
            .and_then(|summary| summary["results"]["fetched"].as_u64())
            .unwrap_or(0);
        if fetched == 100 || Instant::now() > deadline {
            break fetched;
        }
        std::thread::sleep(Duration::from_millis(300));
    };
    stop(child, stdout);
    assert_eq!(fetched, 100, "the demo's run fetched every sample contact");

    // The second start finds data: no demo unless asked for.
    let (child, stdout) = start_hub(&data_dir, &[]);
    let first = read_until(&stdout, "listening");
    assert!(first.len() == 1, "{first:?}");
    let rest = stop(child, stdout);
    assert!(
        !rest.iter().any(|l| l.starts_with("demo:")),
        "the demo is applied only to a new data directory: {rest:?}"
    );

    let idle_dir = parent.path().join("idle");
    let (child, stdout) = start_hub(&idle_dir, &["--no-demo"]);
    let first = read_until(&stdout, "listening");
    assert!(first.len() == 1, "{first:?}");
    let rest = stop(child, stdout);
    assert!(!rest.iter().any(|l| l.starts_with("demo:")), "{rest:?}");
    assert_eq!(demo_executions(&idle_dir), Vec::<serde_json::Value>::new());
}
