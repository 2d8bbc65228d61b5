//! A run whose every batch dies, on `hub dev` as an operator meets it: the run ends `failed`
//! with its dead letters listed, `hub dlq list --execution` finds them, and once the schema is
//! fixed `hub dlq replay --remap` writes every record exactly once.
//!
//! The broken schema is a version that does not compile, written straight into the state
//! table: what a schema stored by an earlier hub (before `hub apply` compiled schemas) looks
//! like after an upgrade. That is the one fault injected; everything else goes through the
//! `hub` commands.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use hub_core::keys;
use hub_core::model::{ConversionSchema, load_value};
use hub_core::ports::Ports;
use hub_core::repo::doc_item;
use serde_json::{Value, json};

mod support;
use support::{HubDev, open_embedded};

const TENANT: &str = "acme";
const RECORDS: usize = 1000;

struct Hub {
    /// Kept for its drop: the host stops when the test ends.
    _dev: HubDev,
    data_dir: String,
}

impl Hub {
    fn command(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_hub"))
            .args(args)
            .args(["--backend", "embedded", "--data-dir", &self.data_dir])
            .env_remove("AWS_ENDPOINT_URL")
            .env_remove("HUB_BACKEND")
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let output = self.command(args);
        assert!(
            output.status.success(),
            "hub {args:?}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    fn execution(&self, id: &str) -> Value {
        let shown = self.ok(&["executions", "show", id, "--tenant", TENANT, "--json"]);
        serde_json::from_str(shown.trim()).unwrap()
    }

    /// Polls the execution until `done` holds, for at most `limit`.
    fn wait_for(&self, id: &str, limit: Duration, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            let execution = self.execution(id);
            if done(&execution) || Instant::now() > deadline {
                return execution;
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    }
}

/// `hub dev` with a short visibility timeout, so a failing batch uses its five deliveries in
/// seconds; returns the host and the sample API's base URL and key (from the first line).
fn start_hub(data_dir: &str) -> (Hub, String, String) {
    let records = RECORDS.to_string();
    let dev = HubDev::start(
        &[
            "--tick",
            "1",
            "--visibility-timeout",
            "2",
            // This test's own tenant, not the demo a new data directory gets.
            "--no-demo",
            "--sample-records",
            &records,
            "--backend",
            "embedded",
            "--data-dir",
            data_dir,
        ],
        Stdio::null(),
    );
    let (base_url, api_key) = (dev.sample_url(), dev.sample_api_key());
    let hub = Hub {
        _dev: dev,
        data_dir: data_dir.to_owned(),
    };
    (hub, base_url, api_key)
}

fn schema(name: &str, phone_steps: Value) -> Value {
    json!({
        "id": "contact",
        "name": name,
        "source": { "entity": "contacts" },
        "target": {
            "shardTypeId": "c_contact",
            "createIfMissing": true,
            "updateIfExists": true,
            "deleteIfRemoved": false
        },
        "fieldMappings": [
            {
                "targetField": "email",
                "mappingType": "direct",
                "config": { "type": "direct", "sourceField": "email" },
                "required": true
            },
            {
                "targetField": "phone",
                "mappingType": "transform",
                "config": { "type": "transform", "sourceField": "phone", "transformations": phone_steps }
            }
        ],
        "deduplication": { "strategy": "external_id", "externalIdField": "id" },
        "isActive": true
    })
}

fn documents(base_url: &str, api_key: &str) -> Value {
    let definition: Value =
        serde_json::from_str(include_str!("../../demo/10-definition.json")).unwrap();
    json!([
        definition,
        {
            "kind": "Connection",
            "spec": {
                "id": "sample-api", "integrationId": "sample", "scope": "tenant",
                "tenantId": TENANT, "authType": "api_key",
                "credentialsRef": "hub/acme/sample-api", "status": "active"
            },
            "credentials": { "type": "api_key", "apiKey": api_key }
        },
        {
            "kind": "TenantIntegration", "tenantId": TENANT,
            "spec": {
                "id": "sample-crm", "integrationId": "sample", "status": "connected",
                "connectionId": "sample-api", "settings": { "baseUrl": base_url }
            }
        },
        {
            "kind": "ConversionSchema", "tenantId": TENANT,
            "spec": schema("contacts", json!([{ "type": "trim", "config": {} }]))
        },
        {
            "kind": "SyncTask", "tenantId": TENANT,
            "spec": {
                "id": "contacts", "tenantIntegrationId": "sample-crm", "name": "Contacts",
                "conversionSchemaId": "contact", "direction": "pull",
                "schedule": { "type": "manual", "config": { "type": "manual" } },
                "config": { "incrementalSync": true, "stream": "contacts" },
                "status": "active"
            }
        }
    ])
}

fn write_file(dir: &Path, name: &str, value: &Value) -> String {
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_string_pretty(value).unwrap()).unwrap();
    path.to_str().unwrap().to_owned()
}

/// Stores version 2 of the schema as the head without compiling it (the injected fault): its
/// regex does not compile.
async fn store_uncompilable_version(ports: &Ports) {
    let mut stored: ConversionSchema = load_value(schema(
        "contacts (broken)",
        json!([{ "type": "regex_replace", "config": { "pattern": "(", "replace": "" } }]),
    ))
    .unwrap();
    stored.version = Some(2);
    let version = doc_item(
        &keys::schema_version(TENANT, "contact", 2),
        "schema_version",
        &stored,
    )
    .unwrap();
    let mut head = doc_item(&keys::schema_head(TENANT, "contact"), "schema", &stored).unwrap();
    head.insert("version".into(), 2.into());
    ports.state.put(version, None).await.unwrap();
    ports.state.put(head, None).await.unwrap();
}

fn lines_of_json(text: &str) -> Vec<Value> {
    text.lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_whose_batches_all_die_fails_and_a_remapped_replay_writes_each_record_once() {
    let data = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let data_dir = data.path().to_str().unwrap().to_owned();
    let (hub, base_url, api_key) = start_hub(&data_dir);
    let applied = write_file(files.path(), "tenant.json", &documents(&base_url, &api_key));
    hub.ok(&["apply", "-f", &applied]);
    let ports = open_embedded(Path::new(&data_dir)).await;
    store_uncompilable_version(&ports).await;
    drop(ports);

    // Every batch fails to map, five times each, then dies: the run ends, failed.
    let started: Value = serde_json::from_str(
        hub.ok(&["tasks", "run", "contacts", "--tenant", TENANT, "--json"])
            .trim(),
    )
    .unwrap();
    let execution_id = started["id"].as_str().unwrap().to_owned();
    let ended = hub.wait_for(&execution_id, Duration::from_secs(120), |e| {
        e["status"] != "running"
    });
    assert_eq!(ended["status"], "failed", "{ended:#}");
    assert_eq!(ended["results"]["created"], 0, "{ended:#}");
    let errors = ended["errors"].as_array().unwrap();
    let dead: Vec<&Value> = errors
        .iter()
        .filter(|e| e["details"]["code"] == "dead_lettered")
        .collect();
    assert_eq!(dead.len(), RECORDS / 100, "one per batch: {ended:#}");
    assert!(
        dead.iter().all(|e| e["details"]["queue"] == "transform-dlq"
            && e["details"]["reason"] == "schema_invalid")
    );
    // The task is free again.
    let rerun = hub.command(&["tasks", "run", "contacts", "--tenant", TENANT, "--json"]);
    assert!(rerun.status.success(), "the task is not busy any more");
    let rerun: Value = serde_json::from_str(String::from_utf8_lossy(&rerun.stdout).trim()).unwrap();
    hub.ok(&[
        "executions",
        "cancel",
        rerun["id"].as_str().unwrap(),
        "--tenant",
        TENANT,
    ]);

    // The dead letters, found from the execution. The queue moves each message to its DLQ
    // once its last delivery's visibility timeout is over (2 s here).
    let deadline = Instant::now() + Duration::from_secs(30);
    let (messages, listed) = loop {
        let listed = hub.ok(&[
            "dlq",
            "list",
            "--queue",
            "transform",
            "--execution",
            &execution_id,
            "--json",
        ]);
        let messages: usize = lines_of_json(&listed)
            .iter()
            .map(|queue| queue["messages"].as_array().map_or(0, Vec::len))
            .sum();
        if messages == RECORDS / 100 || Instant::now() > deadline {
            break (messages, listed);
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(messages, RECORDS / 100, "{listed}");
    let other_run = hub.ok(&[
        "dlq",
        "list",
        "--queue",
        "transform",
        "--execution",
        "01NOSUCHRUN",
        "--json",
    ]);
    assert!(other_run.contains("\"messages\":[]"), "{other_run}");

    // The fix becomes version 3; replaying with --remap maps with it.
    let fixed = write_file(
        files.path(),
        "fixed.json",
        &json!({
            "kind": "ConversionSchema", "tenantId": TENANT,
            "spec": schema("contacts (fixed)", json!([
                { "type": "regex_replace", "config": { "pattern": "[^0-9+]", "replace": "" } }
            ]))
        }),
    );
    let applied_fix = hub.ok(&["apply", "-f", &fixed]);
    assert!(applied_fix.contains("version 3"), "{applied_fix}");
    hub.ok(&[
        "dlq",
        "replay",
        "--queue",
        "transform",
        "--execution",
        &execution_id,
        "--remap",
        "--rate",
        "100",
    ]);
    let replayed = hub.wait_for(&execution_id, Duration::from_secs(60), |e| {
        e["results"]["created"] == RECORDS
    });
    assert_eq!(replayed["results"]["created"], RECORDS, "{replayed:#}");
    let logs = hub.ok(&["executions", "logs", &execution_id, "--tenant", TENANT]);
    assert!(
        logs.contains("re-mapped with conversion schema contact version 3"),
        "{logs}"
    );

    // Every record once, written by version 3 and never again.
    std::thread::sleep(Duration::from_secs(3));
    let ports = open_embedded(Path::new(&data_dir)).await;
    let records = hub_writer::list_records(ports.records.as_ref(), TENANT, "c_contact")
        .await
        .unwrap();
    assert_eq!(records.len(), RECORDS);
    assert!(records.iter().all(|r| r.version == 1
        && r.lineage.schema_version == 3
        && r.lineage.execution_id.as_deref() == Some(execution_id.as_str())));
    let again = hub.execution(&execution_id);
    assert_eq!(again["results"]["created"], RECORDS);
    let left = hub.ok(&["dlq", "list", "--queue", "transform", "--json"]);
    assert_eq!(
        lines_of_json(&left)
            .iter()
            .map(|queue| queue["messages"].as_array().map_or(0, Vec::len))
            .sum::<usize>(),
        0,
        "{left}"
    );
}
