//! What the `hub` test binaries share: a `hub dev` process that is stopped when the test ends,
//! and the embedded backend opened in the test's own process (beside a running host, as a
//! second Lambda would be).
//!
//! Each test binary uses some of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::Arc;

use hub_core::ports::{Ports, SystemClock, Topology};

/// A `hub dev` process, killed when dropped: a test that fails never leaves one behind.
pub struct HubDev {
    pub child: Child,
    /// Its stdout after the first line.
    pub stdout: BufReader<ChildStdout>,
    /// The first line: the address and the sample API (scripts read it there).
    pub first_line: String,
}

impl Drop for HubDev {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl HubDev {
    /// `hub dev --port 0 ARGS` with its log to `stderr`, once it printed its first line. The
    /// AWS backend settings of the test's environment are removed.
    pub fn start(args: &[&str], stderr: Stdio) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_hub"))
            .args(["dev", "--port", "0"])
            .args(args)
            .env_remove("AWS_ENDPOINT_URL")
            .env_remove("HUB_BACKEND")
            // Its default log level and format, whatever the test's environment says.
            .env_remove("RUST_LOG")
            .env_remove("HUB_LOG_FORMAT")
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("start hub dev");
        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut first_line = String::new();
        stdout
            .read_line(&mut first_line)
            .expect("read hub dev's first line");
        Self {
            child,
            stdout,
            first_line,
        }
    }

    /// Where it listens (`127.0.0.1:PORT`).
    pub fn address(&self) -> String {
        self.word_after("http://")
    }

    /// The sample CRM API's base URL.
    pub fn sample_url(&self) -> String {
        self.word_after("sample CRM API on ")
    }

    /// The sample CRM API's key.
    pub fn sample_api_key(&self) -> String {
        self.first_line
            .split("API key `")
            .nth(1)
            .and_then(|rest| rest.split('`').next())
            .unwrap_or_else(|| panic!("no API key in {:?}", self.first_line))
            .to_owned()
    }

    fn word_after(&self, marker: &str) -> String {
        self.first_line
            .split(marker)
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("no `{marker}` in {:?}", self.first_line))
            .to_owned()
    }
}

/// The embedded backend on `dir`, opened off the async threads (opening may wait on a lock).
pub async fn open_embedded(dir: &Path) -> Ports {
    let dir = dir.to_owned();
    tokio::task::spawn_blocking(move || {
        hub_embedded::EmbeddedBackend::open(&dir, &Topology::default(), Arc::new(SystemClock))
    })
    .await
    .expect("the open task")
    .expect("open the embedded backend")
}
