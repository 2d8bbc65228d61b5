//! A data directory the user cannot write (another user's, a read-only mount, a copy on a
//! read-only medium) can still be inspected, and a command that writes says why it cannot.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Output};

use hub_core::model::TenantId;
use hub_core::ports::OutgoingMessage;

mod support;
use support::open_embedded;

/// Read and execute only, for everyone: the directory and every file in it.
fn set_read_only(dir: &Path, read_only: bool) {
    let (dir_mode, file_mode) = if read_only {
        (0o555, 0o444)
    } else {
        (0o700, 0o600)
    };
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(dir_mode)).unwrap();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(file_mode)).unwrap();
    }
}

/// Makes the directory writable again when dropped, so a failed test leaves it removable.
struct Writable<'a>(&'a Path);

impl Drop for Writable<'_> {
    fn drop(&mut self) {
        set_read_only(self.0, false);
    }
}

/// `hub ARGS` on the embedded backend in `dir`, as a user bound by file permissions: root
/// ignores them, so as root the command runs without the capabilities that let it
/// (`setpriv` from util-linux drops them).
fn hub(dir: &Path, args: &[&str]) -> Output {
    let root = std::fs::metadata(dir.parent().unwrap()).unwrap().uid() == 0;
    let mut command = if root {
        let mut setpriv = Command::new("setpriv");
        setpriv.args([
            "--bounding-set=-dac_override,-dac_read_search,-fowner",
            "--inh-caps=-all",
            "--",
            env!("CARGO_BIN_EXE_hub"),
        ]);
        setpriv
    } else {
        Command::new(env!("CARGO_BIN_EXE_hub"))
    };
    command
        .args(args)
        .args(["--backend", "embedded", "--data-dir"])
        .arg(dir)
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("HUB_BACKEND")
        .env_remove("HUB_PREFIX")
        .env_remove("HUB_TENANT")
        .output()
        .expect("run hub (as root this needs `setpriv`, from util-linux)")
}

fn succeeded(args: &[&str], output: &Output) -> String {
    assert!(
        output.status.success(),
        "hub {args:?} failed on a read-only data directory: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_data_directory_can_be_inspected() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("data");
    let tenant = TenantId::parse("demo").unwrap();
    let (execution, dead) = {
        let ports = open_embedded(&dir).await;
        for (_, document) in
            hub_host::sample::demo_documents("http://127.0.0.1:9", "sample-api-key").unwrap()
        {
            hub_config::apply(&ports, &document).await.unwrap();
        }
        let sync = hub_sync::SyncService::new(ports.clone());
        let execution = sync
            .run_now(&tenant, "sample-contacts", Some("test"))
            .await
            .unwrap()
            .execution
            .id;
        let body = serde_json::json!({"tenantId": "demo", "taskId": "sample-contacts",
            "executionId": execution});
        let dead = ports
            .queue("transform-dlq")
            .unwrap()
            .send(OutgoingMessage::new(body.to_string()))
            .await
            .unwrap();
        (execution, dead)
    };
    set_read_only(&dir, true);
    let writable = Writable(&dir);

    let reads: [&[&str]; 7] = [
        &["executions", "list", "--tenant", "demo", "--json"],
        &["executions", "show", &execution, "--tenant", "demo"],
        &["executions", "logs", &execution, "--tenant", "demo"],
        &["get", "task", "sample-contacts", "--tenant", "demo"],
        &["dlq", "list", "--json"],
        &["dlq", "show", &dead],
        &[
            "dlq",
            "purge",
            "--queue",
            "transform",
            "--tenant",
            "demo",
            "--dry-run",
        ],
    ];
    let mut outputs = Vec::new();
    for args in reads {
        outputs.push(succeeded(args, &hub(&dir, args)));
    }
    assert!(outputs[0].contains(&execution), "{}", outputs[0]);
    assert!(outputs[1].contains("running"), "{}", outputs[1]);
    assert!(outputs[3].contains("sample-contacts"), "{}", outputs[3]);
    assert!(outputs[4].contains(&dead), "{}", outputs[4]);
    assert!(outputs[5].contains(&execution), "{}", outputs[5]);
    // Listing twice sees the message twice: a read-only listing hides nothing for long.
    let again = succeeded(&["dlq", "list"], &hub(&dir, &["dlq", "list"]));
    assert!(again.contains(&dead), "{again}");

    let refused = hub(
        &dir,
        &["tasks", "run", "sample-contacts", "--tenant", "demo"],
    );
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{stderr}");
    assert!(
        stderr.contains("error[data_dir_read_only]") && stderr.contains("read-only"),
        "a write is refused with a code and a sentence: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");

    // Nothing was lost or changed by the attempts.
    drop(writable);
    let ports = open_embedded(&dir).await;
    let sync = hub_sync::SyncService::new(ports.clone());
    let runs = sync.list_executions(&tenant, 10, None).await.unwrap();
    assert_eq!(runs.executions.len(), 1);
    let depth = ports.queue("transform-dlq").unwrap().depth().await.unwrap();
    assert_eq!(depth.visible, 1, "{depth:?}");
}
