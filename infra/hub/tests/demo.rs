//! `hub dev --demo` as a newcomer runs it: the demo tenant is applied, its first run starts at
//! once, and the sample API's records are fetched, seen through `hub executions`.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
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
