//! `hub dev` as a user runs it: a process that serves `/health` and stops cleanly on Ctrl-C.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn wait_for_exit(
    child: &mut std::process::Child,
    limit: Duration,
) -> Option<std::process::ExitStatus> {
    let started = Instant::now();
    while started.elapsed() < limit {
        if let Some(status) = child.try_wait().expect("poll the child") {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

/// Starts an idle `hub dev` (no demo) on a free port with `args`; returns the process and its
/// address.
fn start_hub(args: &[&str]) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hub"))
        .args(["dev", "--port", "0", "--tick", "1", "--no-demo"])
        .args(args)
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("HUB_BACKEND")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start hub dev");
    let mut first_line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first_line)
        .unwrap();
    let address = first_line
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no address in {first_line:?}"))
        .to_owned();
    (child, address)
}

/// Sends Ctrl-C (SIGINT) and expects a clean exit within 15 s.
fn interrupt_and_expect_clean_exit(mut child: Child) {
    let interrupted = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    let status = wait_for_exit(&mut child, Duration::from_secs(15));
    if status.is_none() {
        let _ = child.kill();
    }
    assert!(
        status
            .expect("hub dev stops within 15 s of Ctrl-C")
            .success()
    );
}

async fn health(address: &str) -> serde_json::Value {
    reqwest::get(format!("http://{address}/health"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn hub_dev_serves_health_and_stops_on_ctrl_c() {
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().to_str().unwrap();
    let (child, address) = start_hub(&["--backend", "embedded", "--data-dir", data_dir]);

    let health = health(&address).await;
    assert_eq!(health["backend"], "embedded");
    assert_eq!(health["status"], "ok");
    assert!(
        health["queues"]
            .as_array()
            .unwrap()
            .iter()
            .any(|q| q["name"] == "fetch-dlq")
    );
    assert!(
        data.path().join("hub.sqlite3").exists(),
        "data lives in --data-dir"
    );

    interrupt_and_expect_clean_exit(child);
}

#[tokio::test]
async fn hub_dev_on_an_aws_endpoint_creates_its_resources() {
    let Some(moto) = hub_testkit::moto::MotoServer::shared_or_skip("hub_dev_on_an_aws_endpoint")
    else {
        return;
    };
    let prefix = format!("dev{}", std::process::id());
    let (child, address) = start_hub(&["--aws-endpoint", moto.endpoint(), "--prefix", &prefix]);

    let health = health(&address).await;
    assert_eq!(health["backend"], "aws", "{health}");
    assert_eq!(health["status"], "ok", "{health}");
    let names: Vec<_> = health["queues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["name"].clone())
        .collect();
    assert_eq!(
        names,
        [
            "fetch",
            "fetch-dlq",
            "transform",
            "transform-dlq",
            "write",
            "write-dlq"
        ]
    );

    interrupt_and_expect_clean_exit(child);
}

#[test]
fn a_port_in_use_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let data = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_hub"))
        .args([
            "dev",
            "--port",
            &port,
            "--backend",
            "embedded",
            "--data-dir",
        ])
        .arg(data.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("error[port_unavailable]"), "{stderr}");
}

#[tokio::test]
async fn apply_and_get_work_beside_a_running_hub_dev() {
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().to_str().unwrap().to_owned();
    let (child, _address) = start_hub(&["--backend", "embedded", "--data-dir", &data_dir]);

    let schema: serde_json::Value = serde_json::from_str(include_str!(
        "../../../shared/hub-core/tests/fixtures/seed/conversion-schema.sf-opportunity.json"
    ))
    .unwrap();
    let file = data.path().join("schema.json");
    let document =
        serde_json::json!({"kind": "ConversionSchema", "tenantId": "acme", "spec": schema});
    std::fs::write(&file, document.to_string()).unwrap();
    let hub = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_hub"))
            .args(args)
            .args(["--backend", "embedded", "--data-dir", &data_dir])
            .output()
            .unwrap()
    };
    let applied = hub(&["apply", "-f", file.to_str().unwrap()]);
    assert!(
        applied.status.success(),
        "{}",
        String::from_utf8_lossy(&applied.stderr)
    );
    assert!(
        String::from_utf8_lossy(&applied.stdout)
            .contains("ConversionSchema sf-opportunity Created (version 1)")
    );

    let got = hub(&["get", "schema", "sf-opportunity", "--tenant", "acme"]);
    assert!(
        got.status.success(),
        "{}",
        String::from_utf8_lossy(&got.stderr)
    );
    let stored: serde_json::Value = serde_json::from_slice(&got.stdout).unwrap();
    assert_eq!(stored["version"], 1);

    std::fs::write(
        &file,
        r#"{"kind": "ConversionSchema", "tenantId": "acme", "spec": {"id": "x"}}"#,
    )
    .unwrap();
    let rejected = hub(&["apply", "-f", file.to_str().unwrap()]);
    assert!(!rejected.status.success());
    let stderr = String::from_utf8_lossy(&rejected.stderr);
    assert!(
        stderr.contains("schema.json") && stderr.contains("spec"),
        "{stderr}"
    );

    interrupt_and_expect_clean_exit(child);
}

#[test]
fn tasks_and_executions_from_the_command_line() {
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().to_str().unwrap().to_owned();
    let hub = |args: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_hub"))
            .args(args)
            .args([
                "--backend",
                "embedded",
                "--data-dir",
                &data_dir,
                "--tenant",
                "acme",
            ])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "hub {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    };
    let mut task: serde_json::Value = serde_json::from_str(include_str!(
        "../../../shared/hub-core/tests/fixtures/seed/sync-task.sf-contact-daily.json"
    ))
    .unwrap();
    task["tenantIntegrationId"] = serde_json::json!("ti-sf");
    let seed = |file: &str| -> serde_json::Value {
        let path = format!(
            "{}/../../shared/hub-core/tests/fixtures/seed/{file}",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    };
    let file = data.path().join("task.json");
    // The task with what it names: its schema and its tenant integration (and that one's
    // definition).
    let document = serde_json::json!([
        {"kind": "IntegrationDefinition", "spec": seed("integration-definition.salesforce.json")},
        {"kind": "TenantIntegration", "tenantId": "acme",
         "spec": {"id": "ti-sf", "integrationId": "salesforce", "status": "pending"}},
        {"kind": "ConversionSchema", "tenantId": "acme",
         "spec": seed("conversion-schema.sf-contact-to-contact.json")},
        {"kind": "SyncTask", "tenantId": "acme", "spec": task}
    ]);
    std::fs::write(&file, document.to_string()).unwrap();
    // `apply` takes no --tenant: the documents name theirs.
    let applied = Command::new(env!("CARGO_BIN_EXE_hub"))
        .args([
            "apply",
            "-f",
            file.to_str().unwrap(),
            "--backend",
            "embedded",
            "--data-dir",
            &data_dir,
        ])
        .output()
        .unwrap();
    assert!(
        applied.status.success(),
        "{}",
        String::from_utf8_lossy(&applied.stderr)
    );

    let started: serde_json::Value =
        serde_json::from_str(&hub(&["tasks", "run", "sf-contact-daily", "--json"])).unwrap();
    let id = started["id"].as_str().unwrap().to_owned();
    assert_eq!(started["triggeredBy"], "manual");

    let listed = hub(&["executions", "list", "--json"]);
    let first: serde_json::Value = serde_json::from_str(listed.lines().next().unwrap()).unwrap();
    assert_eq!(
        (first["id"].as_str(), first["status"].as_str()),
        (Some(id.as_str()), Some("running"))
    );
    assert!(hub(&["executions", "show", &id]).contains("running"));

    hub(&["executions", "cancel", &id]);
    let shown: serde_json::Value =
        serde_json::from_str(&hub(&["executions", "show", &id, "--json"])).unwrap();
    assert_eq!(shown["status"], "cancelled");
    let retried: serde_json::Value =
        serde_json::from_str(&hub(&["executions", "retry", &id, "--json"])).unwrap();
    assert_eq!(
        (retried["retryOf"].as_str(), retried["triggeredBy"].as_str()),
        (Some(id.as_str()), Some("retry"))
    );

    hub(&["tasks", "pause", "sf-contact-daily"]);
    assert!(hub(&["tasks", "resume", "sf-contact-daily"]).contains("next run"));
}

#[test]
fn schema_test_and_diff_on_sample_records() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/hub-core/tests/fixtures/seed/conversion-schema.sf-contact-to-contact.json"
    );
    let sample = dir.path().join("contacts.jsonl");
    std::fs::write(
        &sample,
        concat!(
            r#"{"Id":"003A","Email":"ada@example.com","FirstName":"Ada","LastName":"Lovelace","Phone":"+44 20 7946 0000","MailingAddress":{"street":"12 St James's Sq"},"IsDeleted":false}"#,
            "\n",
            r#"{"Id":"003B","FirstName":"No","LastName":"Email","IsDeleted":false}"#,
            "\n",
            r#"{"Id":"003C","Email":"gone@example.com","IsDeleted":true}"#,
            "\n"
        ),
    )
    .unwrap();
    let hub = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_hub"))
            .args(args)
            .output()
            .unwrap()
    };

    let output = hub(&[
        "schema",
        "test",
        "--schema",
        fixture,
        "--sample",
        sample.to_str().unwrap(),
        "--json",
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let outcome: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let statuses: Vec<_> = outcome["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["mapped", "failed", "skipped"]);
    assert_eq!(outcome["records"][0]["data"]["name"], "Ada Lovelace");
    assert_eq!(outcome["records"][0]["data"]["phone"], "+442079460000");
    assert_eq!(outcome["records"][1]["errors"][0]["targetField"], "email");

    let text = hub(&[
        "schema",
        "test",
        "--schema",
        fixture,
        "--sample",
        sample.to_str().unwrap(),
    ]);
    assert!(String::from_utf8_lossy(&text.stdout).contains("1 mapped, 1 skipped, 1 failed"));

    let mut changed: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture).unwrap()).unwrap();
    changed["fieldMappings"][4]["config"]["value"] = serde_json::json!("sf");
    let changed_file = dir.path().join("v2.json");
    std::fs::write(&changed_file, changed.to_string()).unwrap();
    let diff = hub(&[
        "schema",
        "diff",
        "--from",
        fixture,
        "--to",
        changed_file.to_str().unwrap(),
        "--sample",
        sample.to_str().unwrap(),
        "--json",
    ]);
    assert!(
        diff.status.success(),
        "{}",
        String::from_utf8_lossy(&diff.stderr)
    );
    let diffs: serde_json::Value = serde_json::from_slice(&diff.stdout).unwrap();
    assert_eq!(
        diffs.as_array().unwrap().len(),
        1,
        "only the mapped record changes: {diffs}"
    );
    assert_eq!(diffs[0]["changes"][0]["field"], "source");
    assert_eq!(diffs[0]["changes"][0]["after"], "sf");

    let bad = hub(&[
        "schema",
        "test",
        "--schema",
        sample.to_str().unwrap(),
        "--sample",
        sample.to_str().unwrap(),
    ]);
    assert!(!bad.status.success());
}
