//! `hub apply` as a user runs it: what it refuses, what it stores, what it reports.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::{Value, json};

fn hub(data_dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hub"))
        .args(args)
        .args(["--backend", "embedded", "--data-dir"])
        .arg(data_dir)
        .output()
        .unwrap()
}

/// The `error[code]: message` a failed command printed (the message may span lines).
fn error_line(output: &Output) -> String {
    assert!(!output.status.success(), "the command succeeded");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let at = stderr
        .find("error[")
        .unwrap_or_else(|| panic!("no error in: {stderr}"));
    stderr[at..].trim_end().to_owned()
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn demo(file: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../demo")
        .join(file);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn write(dir: &Path, file: &str, document: &Value) -> String {
    let path = dir.join(file);
    std::fs::write(&path, document.to_string()).unwrap();
    path.to_str().unwrap().to_owned()
}

#[test]
fn a_schema_the_compiler_refuses_is_refused_as_schema_test_refuses_it_and_nothing_is_stored() {
    let data = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    write(files.path(), "a-good.json", &demo("40-schema-contact.json"));
    let mut bad = demo("40-schema-contact.json");
    bad["spec"]["id"] = json!("bad-regex");
    bad["spec"]["fieldMappings"][3]["config"]["transformations"][0] =
        json!({"type": "regex_replace", "config": {"pattern": "(unclosed", "replace": ""}});
    let bad_file = write(files.path(), "b-bad.json", &bad);
    let sample = write(
        files.path(),
        "sample.txt",
        &json!({"email": "a@example.com"}),
    );
    let dir = files.path().to_str().unwrap();

    let tested = Command::new(env!("CARGO_BIN_EXE_hub"))
        .args(["schema", "test", "--schema", &bad_file, "--sample", &sample])
        .output()
        .unwrap();
    let expected = error_line(&tested);
    assert!(
        expected.starts_with(&format!(
            "error[invalid_regex]: {bad_file}: spec.fieldMappings[3].config.transformations[0].config.pattern: "
        )),
        "{expected}"
    );
    for args in [
        &["apply", "-f", dir, "--dry-run"][..],
        &["apply", "-f", dir],
    ] {
        let refused = hub(data.path(), args);
        assert_eq!(error_line(&refused), expected, "hub {args:?}");
        assert!(refused.stdout.is_empty(), "hub {args:?} reported documents");
    }
    let stored = stdout(&hub(data.path(), &["get", "schema", "--tenant", "demo"]));
    assert_eq!(
        serde_json::from_str::<Value>(&stored).unwrap(),
        json!([]),
        "the good schema of the same apply is not stored either"
    );
}

#[test]
fn a_task_naming_a_missing_schema_is_refused_and_one_applied_with_it_is_accepted() {
    let data = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let task = write(files.path(), "a-task.json", &demo("50-task-contacts.json"));

    for args in [
        &["apply", "-f", &task, "--dry-run"][..],
        &["apply", "-f", &task],
    ] {
        let refused = error_line(&hub(data.path(), args));
        assert!(
            refused.starts_with(&format!(
                "error[unknown_reference]: {task}: SyncTask `sample-contacts`: \
                 spec.conversionSchemaId: no ConversionSchema `sample-contact` of tenant `demo`"
            )),
            "hub {args:?}: {refused}"
        );
    }
    let stored = stdout(&hub(data.path(), &["get", "task", "--tenant", "demo"]));
    assert_eq!(serde_json::from_str::<Value>(&stored).unwrap(), json!([]));

    // The rest of the demo in the same apply, in files that sort after the task.
    for (file, demo_file) in [
        ("b-definition.json", "10-definition.json"),
        ("c-connection.json", "20-connection.json"),
        ("d-integration.json", "30-integration.json"),
        ("e-schema.json", "40-schema-contact.json"),
    ] {
        write(files.path(), file, &demo(demo_file));
    }
    let dir = files.path().to_str().unwrap();
    assert!(stdout(&hub(data.path(), &["apply", "-f", dir, "--dry-run"])).contains("is valid"));
    let applied = stdout(&hub(data.path(), &["apply", "-f", dir]));
    assert!(
        applied.contains("SyncTask sample-contacts Created"),
        "{applied}"
    );
}
