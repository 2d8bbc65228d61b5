//! What the `hub` binary writes, as scripts and log files see it: `--json` output that is
//! only JSON, even with stderr merged in (`2>&1 | jq`), log lines without terminal colour
//! codes when stderr is not a terminal, and `hub dev`'s answer and log line for a webhook
//! body over the receiver's limit.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

mod support;
use support::HubDev;

const DEMO_TENANT: &str = "demo";
const DEMO_TASK: &str = "sample-contacts";

fn demo_dir() -> &'static str {
    concat!(env!("CARGO_MANIFEST_DIR"), "/../demo")
}

/// `hub args...` on the embedded backend in `data_dir`, with `RUST_LOG` as given (unset
/// otherwise, whatever the test's environment says), stdout and stderr piped.
fn hub(data_dir: &Path, args: &[&str], rust_log: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_hub"));
    command
        .args(args)
        .args(["--backend", "embedded", "--data-dir"])
        .arg(data_dir)
        .env_remove("RUST_LOG")
        .env_remove("HUB_LOG_FORMAT")
        .env_remove("AWS_LAMBDA_FUNCTION_NAME")
        .env_remove("NO_COLOR");
    if let Some(filter) = rust_log {
        command.env("RUST_LOG", filter);
    }
    let output = command.output().expect("run hub");
    assert!(
        output.status.success(),
        "hub {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn applied_demo() -> tempfile::TempDir {
    let data = tempfile::tempdir().unwrap();
    hub(data.path(), &["apply", "-f", demo_dir()], None);
    data
}

#[test]
fn json_commands_print_only_json_on_both_streams() {
    let data = applied_demo();
    let tenant = ["--tenant", DEMO_TENANT];
    let commands: [&[&str]; 4] = [
        &["tasks", "run", DEMO_TASK, "--json"],
        &["executions", "list", "--json"],
        &["apply", "-f", demo_dir(), "--json"],
        &["dlq", "list", "--json"],
    ];
    for args in commands {
        let args: Vec<&str> = if args[0] == "apply" || args[0] == "dlq" {
            args.to_vec()
        } else {
            [args, &tenant[..]].concat()
        };
        let output = hub(data.path(), &args, None);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.trim().is_empty(),
            "hub {args:?} wrote to stderr on success: {stderr}"
        );
        let stdout = String::from_utf8(output.stdout).unwrap();
        for line in stdout.lines().filter(|line| !line.trim().is_empty()) {
            assert!(
                serde_json::from_str::<serde_json::Value>(line).is_ok(),
                "hub {args:?} printed a line that is not JSON: {line}"
            );
        }
    }
}

#[test]
fn logs_to_a_pipe_or_a_file_have_no_colour_codes() {
    let data = applied_demo();
    // Info lines asked for explicitly: the run's start is one.
    let output = hub(
        data.path(),
        &["tasks", "run", DEMO_TASK, "--tenant", DEMO_TENANT],
        Some("info"),
    );
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("sync started"), "{stderr}");
    assert!(
        !stderr.contains('\u{1b}'),
        "escape codes in a log that is not a terminal: {stderr:?}"
    );
}

/// Sends `head` and then `body` on a new connection and returns the status line's code and
/// the answer's body. The server may answer before the body is all sent; a write it refuses
/// then is not an error here.
fn http_exchange(address: &str, head: &str, body: &[u8]) -> (u16, serde_json::Value) {
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream.write_all(head.as_bytes()).unwrap();
    let _refused_rest = stream.write_all(body);
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    let (head, body) = answer
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP answer: {answer:?}"));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"));
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{head}"
    );
    let json = serde_json::from_str(body.trim())
        .unwrap_or_else(|e| panic!("not JSON ({e}): {head}\n\n{body}"));
    (status, json)
}

fn wait_for_lines(log_file: &Path, wanted: usize, needle: &str) -> Vec<String> {
    let started = Instant::now();
    loop {
        let lines: Vec<String> = std::fs::read_to_string(log_file)
            .unwrap_or_default()
            .lines()
            .filter(|line| line.contains(needle))
            .map(str::to_owned)
            .collect();
        if lines.len() >= wanted || started.elapsed() > Duration::from_secs(10) {
            return lines;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn hub_dev_answers_a_webhook_body_over_the_limit_with_json_and_a_warning() {
    const MAX_BODY: usize = 6 * 1024 * 1024;
    let data = tempfile::tempdir().unwrap();
    let log_file = data.path().join("hub-dev.log");
    let hub_dev = HubDev::start(
        &[
            "--backend",
            "embedded",
            "--data-dir",
            data.path().to_str().unwrap(),
        ],
        Stdio::from(std::fs::File::create(&log_file).unwrap()),
    );
    let address = hub_dev.address();
    let path = "/webhooks/rt_0123456789abcdefghijklmnop";
    let marker = b"body-marker-";
    let body_of = |len: usize| {
        let mut body = marker.repeat(len / marker.len() + 1);
        body.truncate(len);
        body
    };

    // 7 MiB announced by its length, and one byte over the limit in chunks without one.
    let body = body_of(7 * 1024 * 1024);
    let declared = http_exchange(
        &address,
        &format!(
            "POST {path} HTTP/1.1\r\nhost: {address}\r\ncontent-type: application/json\r\n\
             content-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        ),
        &body,
    );
    let mut chunked = Vec::new();
    for chunk in body_of(MAX_BODY + 1).chunks(64 * 1024) {
        chunked.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        chunked.extend_from_slice(chunk);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let streamed = http_exchange(
        &address,
        &format!(
            "POST {path} HTTP/1.1\r\nhost: {address}\r\ncontent-type: application/json\r\n\
             transfer-encoding: chunked\r\nconnection: close\r\n\r\n"
        ),
        &chunked,
    );

    let warnings = wait_for_lines(&log_file, 2, "body_too_large");
    drop(hub_dev);
    for (status, answer) in [&declared, &streamed] {
        assert_eq!(*status, 413, "{answer}");
        assert_eq!(answer["code"], "body_too_large", "{answer}");
        let message = answer["message"].as_str().unwrap_or_default();
        assert!(message.contains(&MAX_BODY.to_string()), "{message}");
    }
    let log = std::fs::read_to_string(&log_file).unwrap();
    assert_eq!(warnings.len(), 2, "{log}");
    for line in &warnings {
        assert!(line.contains("WARN"), "{line}");
        assert!(
            !line.contains("body-marker"),
            "the body is never logged: {line}"
        );
    }
    assert!(!log.contains("body-marker"), "the body is never logged");
}
