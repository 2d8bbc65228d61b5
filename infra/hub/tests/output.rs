//! What the `hub` binary writes, as scripts and log files see it: `--json` output that is
//! only JSON, even with stderr merged in (`2>&1 | jq`), and log lines without terminal colour
//! codes when stderr is not a terminal.

use std::path::Path;
use std::process::{Command, Output};

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
