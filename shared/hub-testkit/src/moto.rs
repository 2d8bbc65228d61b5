//! A moto server (the AWS emulator the AWS backend's tests run against) on a free loopback port.
//!
//! [`MotoServer::start`] finds `moto_server` (env `HUB_MOTO_SERVER`, else
//! `${HUB_TOOLS_DIR:-${XDG_CACHE_HOME:-~/.cache}/integration-hub}/venv/bin/moto_server`, where
//! `infra/test` installs it), starts it on `127.0.0.1` and waits until it answers HTTP.
//!
//! If it is not installed, the result depends on the environment: with `CI` or
//! `HUB_REQUIRE_EMULATOR` set it is a hard error ([`MotoError::Required`]); otherwise
//! [`MotoError::NotInstalled`], which tests turn into a printed `skipped: moto not installed`
//! line ([`MotoServer::shared_or_skip`]) instead of a silent pass.
//!
//! The server dies with its owner: dropping a [`MotoServer`] stops it (also while a panicking
//! test unwinds), and because moto runs under a small shell watchdog that holds the read end of
//! a pipe whose only write end is in the test process, the server also stops when the test
//! process exits in any way, including `SIGKILL` and a `static` that is never dropped.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Env var naming the `moto_server` executable explicitly.
pub const ENV_MOTO_SERVER: &str = "HUB_MOTO_SERVER";
/// Env var that makes a missing emulator a failure even outside CI.
pub const ENV_REQUIRE_EMULATOR: &str = "HUB_REQUIRE_EMULATOR";
/// How long moto may take to answer after it was started (it imports every service on start).
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);
/// Port collisions between picking a free port and moto binding it are retried this often.
const START_ATTEMPTS: u32 = 3;
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// Runs moto as `$0 -H 127.0.0.1 -p $1`, logging to `$2`. The watchdog subshell reads the
/// inherited stdin (saved as fd 3, since an asynchronous list's own stdin is /dev/null) until
/// EOF, then stops moto. `MOTO_ALLOW_NONEXISTENT_REGION` lets each test use a region of its own,
/// which isolates every resource (secrets included) between tests sharing one server.
const WATCHDOG: &str = r#"exec 3<&0
MOTO_ALLOW_NONEXISTENT_REGION=True "$0" -H 127.0.0.1 -p "$1" >"$2" 2>&1 </dev/null 3<&- &
moto=$!
( while read -r _ <&3; do :; done; kill "$moto" 2>/dev/null ) &
watchdog=$!
exec 3<&-
wait "$moto"
status=$?
kill "$watchdog" 2>/dev/null
exit "$status"
"#;

/// Why no moto server could be had.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MotoError {
    /// Not installed, and nothing requires it: the caller skips (and says so).
    NotInstalled { looked_at: PathBuf },
    /// Not installed, but `CI` or `HUB_REQUIRE_EMULATOR` demands it.
    Required { looked_at: PathBuf },
    /// Installed but it did not start or answer.
    Start(String),
}

impl MotoError {
    /// True for the one outcome a test may turn into a skip.
    pub fn is_not_installed(&self) -> bool {
        matches!(self, Self::NotInstalled { .. })
    }
}

impl std::fmt::Display for MotoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotInstalled { looked_at } => write!(
                f,
                "moto not installed (no executable at {}; run infra/test or set {ENV_MOTO_SERVER})",
                looked_at.display()
            ),
            Self::Required { looked_at } => write!(
                f,
                "moto is required (CI or {ENV_REQUIRE_EMULATOR} is set) but there is no \
                 executable at {}: install it with `infra/test` (or pip install 'moto[server]' \
                 into that venv) or point {ENV_MOTO_SERVER} at it",
                looked_at.display()
            ),
            Self::Start(reason) => write!(f, "moto server did not start: {reason}"),
        }
    }
}

impl std::error::Error for MotoError {}

/// A running moto server, stopped on drop.
#[derive(Debug)]
pub struct MotoServer {
    watchdog: Child,
    /// Dropping it closes the pipe the watchdog waits on.
    lifeline: Option<ChildStdin>,
    endpoint: String,
    startup: Duration,
}

impl MotoServer {
    /// Starts a server of its own on a free loopback port.
    pub fn start() -> Result<MotoServer, MotoError> {
        let executable = locate()?;
        let mut last_failure = String::new();
        for _ in 0..START_ATTEMPTS {
            match start_on_free_port(&executable)? {
                Ok(server) => return Ok(server),
                Err(failure) => last_failure = failure,
            }
        }
        Err(MotoError::Start(last_failure))
    }

    /// One server shared by every test of this test binary, started on first use. It is never
    /// dropped; the watchdog stops it when the process exits.
    pub fn shared() -> Result<&'static MotoServer, MotoError> {
        static SHARED: OnceLock<Result<MotoServer, MotoError>> = OnceLock::new();
        SHARED
            .get_or_init(MotoServer::start)
            .as_ref()
            .map_err(Clone::clone)
    }

    /// The shared server, or `None` after writing `skipped: <test>: moto not installed ...` to
    /// stderr when it is not installed and nothing requires it. Panics on any other failure.
    pub fn shared_or_skip(test: &str) -> Option<&'static MotoServer> {
        match MotoServer::shared() {
            Ok(server) => Some(server),
            Err(error) if error.is_not_installed() => {
                // Straight to the process's stderr: the test harness captures `println!` and
                // `eprintln!` of passing tests, which would hide the skip.
                let _ = writeln!(std::io::stderr(), "skipped: {test}: {error}");
                None
            }
            Err(error) => panic!("{test}: {error}"),
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// How long the server took from spawn to its first HTTP answer.
    pub fn startup_time(&self) -> Duration {
        self.startup
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        drop(self.lifeline.take());
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            match self.watchdog.try_wait() {
                Ok(Some(_)) | Err(_) => return,
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
        // The watchdog did not stop in time: take it down (moto goes with the closed pipe).
        let _ = self.watchdog.kill();
        let _ = self.watchdog.wait();
    }
}

fn env_set(name: &str) -> bool {
    std::env::var_os(name).is_some_and(|v| !v.is_empty())
}

/// The executable, or the error for its absence.
fn locate() -> Result<PathBuf, MotoError> {
    let looked_at = match std::env::var_os(ENV_MOTO_SERVER).filter(|v| !v.is_empty()) {
        Some(explicit) => PathBuf::from(explicit),
        None => tools_dir().join("venv").join("bin").join("moto_server"),
    };
    if looked_at.is_file() {
        return Ok(looked_at);
    }
    if env_set("CI") || env_set(ENV_REQUIRE_EMULATOR) {
        Err(MotoError::Required { looked_at })
    } else {
        Err(MotoError::NotInstalled { looked_at })
    }
}

/// `${HUB_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/integration-hub}`, as `infra/test` uses.
fn tools_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("HUB_TOOLS_DIR").filter(|v| !v.is_empty()) {
        return PathBuf::from(dir);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache")
        });
    cache.join("integration-hub")
}

fn free_port() -> Result<u16, MotoError> {
    let listener = TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0))
        .map_err(|e| MotoError::Start(format!("no free loopback port: {e}")))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| MotoError::Start(format!("no free loopback port: {e}")))
}

/// `Ok(Ok(server))` when up, `Ok(Err(reason))` when this attempt failed in a way another port
/// may fix, `Err` when retrying is pointless.
fn start_on_free_port(executable: &Path) -> Result<Result<MotoServer, String>, MotoError> {
    let port = free_port()?;
    let log = tempfile::Builder::new()
        .prefix("moto-server-")
        .suffix(".log")
        .tempfile()
        .map_err(|e| MotoError::Start(format!("cannot create a log file: {e}")))?;
    let started = Instant::now();
    let mut watchdog = Command::new("sh")
        .arg("-c")
        .arg(WATCHDOG)
        .arg(executable)
        .arg(port.to_string())
        .arg(log.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| MotoError::Start(format!("cannot run sh: {e}")))?;
    let lifeline = watchdog.stdin.take();
    let server = MotoServer {
        watchdog,
        lifeline,
        endpoint: format!("http://127.0.0.1:{port}"),
        startup: Duration::ZERO,
    };
    match wait_until_answering(port, server, started) {
        Ok(server) => Ok(Ok(server)),
        Err(exited) => {
            let mut output = String::new();
            let _ = std::fs::File::open(log.path()).and_then(|mut f| f.read_to_string(&mut output));
            let tail: String = output
                .lines()
                .rev()
                .take(15)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n");
            let reason = format!("{exited}; its log ends with:\n{tail}");
            Ok(Err(reason))
        }
    }
}

/// Polls until moto answers an HTTP request, the process exits, or the timeout passes (the
/// server is dropped, and so stopped, in both failure cases).
fn wait_until_answering(
    port: u16,
    mut server: MotoServer,
    started: Instant,
) -> Result<MotoServer, String> {
    let address = SocketAddrV4::new(Ipv4Addr::LOCALHOST, port).into();
    loop {
        if let Ok(Some(status)) = server.watchdog.try_wait() {
            return Err(format!("moto_server exited ({status}) before answering"));
        }
        if started.elapsed() > STARTUP_TIMEOUT {
            return Err(format!(
                "moto_server did not answer within {}s",
                STARTUP_TIMEOUT.as_secs()
            ));
        }
        if let Ok(mut stream) = TcpStream::connect_timeout(&address, Duration::from_millis(200)) {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
            let request = "GET /moto-api/ HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
            let mut head = [0u8; 5];
            if stream.write_all(request.as_bytes()).is_ok()
                && stream.read_exact(&mut head).is_ok()
                && &head == b"HTTP/"
            {
                server.startup = started.elapsed();
                return Ok(server);
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_missing_install_without_requirement_counts_as_skippable() {
        let missing = PathBuf::from("/nonexistent/moto_server");
        let error = MotoError::NotInstalled {
            looked_at: missing.clone(),
        };
        assert!(error.is_not_installed());
        assert!(error.to_string().contains("moto not installed"));
        assert!(!MotoError::Required { looked_at: missing }.is_not_installed());
    }

    #[test]
    fn a_started_server_answers_and_stops_on_drop() {
        let server = match MotoServer::start() {
            Ok(server) => server,
            Err(error) if error.is_not_installed() => {
                println!("skipped: {error}");
                return;
            }
            Err(error) => panic!("{error}"),
        };
        let port: u16 = server
            .endpoint()
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("endpoint ends with a port");
        let address = SocketAddrV4::new(Ipv4Addr::LOCALHOST, port).into();
        assert!(TcpStream::connect_timeout(&address, Duration::from_secs(1)).is_ok());
        println!("moto started in {:?}", server.startup_time());
        drop(server);
        let deadline = Instant::now() + STOP_TIMEOUT;
        while TcpStream::connect_timeout(&address, Duration::from_millis(100)).is_ok() {
            assert!(Instant::now() < deadline, "moto still answers after drop");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
