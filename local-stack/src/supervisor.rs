//! Runs the function binaries as separate processes, exactly as they are deployed (one
//! process per function, configured by environment, listening on `$PORT`), waits until each
//! answers `GET /healthz`, and stops them all when the stack stops or is dropped, so no test
//! run or Ctrl-C leaves a stray process behind.

use std::collections::HashSet;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};

use crate::util::{self, Running};

/// One process to run.
#[derive(Debug, Clone)]
pub struct ProcessSpec {
    /// Short unique name, e.g. `list`; names the log file `<log_dir>/<name>.log`.
    pub name: String,
    /// The executable, run without arguments.
    pub program: PathBuf,
    /// Extra environment on top of the inherited one and `PORT` (these win over both).
    pub env: Vec<(String, String)>,
    /// Given to the process as `PORT`; its `/healthz` is polled there.
    pub port: u16,
}

struct Entry {
    port: u16,
    log: PathBuf,
    /// Length of the log when this run started: tails in errors show this run only.
    log_offset: u64,
    process: Running,
}

impl Entry {
    fn name(&self) -> &str {
        &self.process.name
    }

    /// The exit status if the child has exited (reaping it), else `None`.
    fn poll_exit(&mut self) -> Option<ExitStatus> {
        self.process.try_exit()
    }
}

/// The children of the stack. Dropping it stops them (SIGTERM, SIGKILL after 5 s) from a
/// background thread; [`Supervisor::shutdown`] does the same and waits.
pub struct Supervisor {
    log_dir: PathBuf,
    children: Mutex<Vec<Entry>>,
}

impl Supervisor {
    /// A supervisor writing children's output to `<log_dir>/<name>.log` (created on first spawn).
    pub fn new(log_dir: PathBuf) -> Self {
        Supervisor { log_dir, children: Mutex::new(Vec::new()) }
    }

    /// Spawns `spec.program` with the inherited environment plus `PORT=<spec.port>` and
    /// `spec.env`; stdout and stderr are appended to `<log_dir>/<name>.log`.
    pub async fn spawn(&mut self, spec: ProcessSpec) -> anyhow::Result<()> {
        let children = self.children.get_mut().unwrap_or_else(|e| e.into_inner());
        if spec.name.is_empty() || spec.name.contains(['/', '\\']) || spec.name.starts_with('.') {
            bail!("invalid process name {:?}", spec.name);
        }
        if children.iter().any(|e| e.name() == spec.name) {
            bail!("a process named `{}` is already supervised", spec.name);
        }
        fs::create_dir_all(&self.log_dir)
            .with_context(|| format!("creating log directory {}", self.log_dir.display()))?;
        let log = self.log_dir.join(format!("{}.log", spec.name));
        let mut out = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .with_context(|| format!("opening {}", log.display()))?;
        let log_offset = out.metadata().map(|m| m.len()).unwrap_or(0);
        let started = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        writeln!(
            out,
            "--- yds supervisor: starting {} on port {} (unix time {started}) ---",
            spec.program.display(),
            spec.port
        )?;
        let err = out.try_clone()?;

        let mut cmd = Command::new(&spec.program);
        cmd.env("PORT", spec.port.to_string())
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err));
        util::configure(&mut cmd);
        let child = util::spawn(cmd)
            .await
            .with_context(|| format!("starting process `{}` ({})", spec.name, spec.program.display()))?;
        let pid = child.id();
        tracing::info!(name = %spec.name, pid, port = spec.port, log = %log.display(), "started process");
        children.push(Entry { port: spec.port, log, log_offset, process: Running { name: spec.name, pid, child } });
        Ok(())
    }

    /// Polls `GET http://127.0.0.1:<port>/healthz` until it answers 200. Fails at once if the
    /// process exits, or after `timeout`; the error names the process and ends with the tail
    /// of its log.
    pub async fn wait_healthy(&self, name: &str, timeout: Duration) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let (port, log, offset) = {
                let mut children = self.children.lock().unwrap_or_else(|e| e.into_inner());
                let Some(entry) = children.iter_mut().find(|e| e.name() == name) else {
                    bail!("no process named `{name}` is supervised");
                };
                if let Some(status) = entry.poll_exit() {
                    bail!(
                        "process `{name}` (pid {}) exited with {status} before becoming healthy; tail of {}:\n{}",
                        entry.process.pid,
                        entry.log.display(),
                        util::log_tail(&entry.log, entry.log_offset, 20)
                    );
                }
                (entry.port, entry.log.clone(), entry.log_offset)
            };
            let base = format!("http://127.0.0.1:{port}");
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let probe_timeout = left.clamp(Duration::from_millis(50), Duration::from_secs(2));
            let last = match util::http_get_status(&base, "/healthz", probe_timeout).await {
                Ok(s) if s == http::StatusCode::OK => {
                    tracing::info!(name, port, "process is healthy");
                    return Ok(());
                }
                Ok(s) => format!("GET /healthz answered {s}"),
                Err(e) => e,
            };
            if tokio::time::Instant::now() >= deadline {
                bail!(
                    "process `{name}` did not become healthy on port {port} within {timeout:?} (last attempt: {last}); tail of {}:\n{}",
                    log.display(),
                    util::log_tail(&log, offset, 20)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops every child: SIGTERM, then SIGKILL to those still running after 5 s; waits until
    /// all are reaped. The supervisor can be reused afterwards.
    pub async fn shutdown(&mut self) {
        let entries = std::mem::take(self.children.get_mut().unwrap_or_else(|e| e.into_inner()));
        let running = entries.into_iter().map(|e| e.process).collect();
        for (name, status) in util::terminate(running).await {
            tracing::info!(%name, ?status, "process stopped");
        }
    }

    /// `(name, pid)` of every child spawned and not yet shut down, in spawn order.
    pub fn pids(&self) -> Vec<(String, u32)> {
        let children = self.children.lock().unwrap_or_else(|e| e.into_inner());
        children.iter().map(|e| (e.process.name.clone(), e.process.pid)).collect()
    }

    /// The children that have exited on their own since they were spawned, with their status;
    /// lets the stack notice a crashed function.
    pub fn exited(&self) -> Vec<(String, ExitStatus)> {
        let mut children = self.children.lock().unwrap_or_else(|e| e.into_inner());
        children.iter_mut().filter_map(|e| e.poll_exit().map(|s| (e.process.name.clone(), s))).collect()
    }

    /// Where the output of process `name` goes.
    pub fn log_path(&self, name: &str) -> Option<PathBuf> {
        let children = self.children.lock().unwrap_or_else(|e| e.into_inner());
        children.iter().find(|e| e.name() == name).map(|e| e.log.clone())
    }

    /// The directory holding the logs.
    pub fn log_dir(&self) -> &Path {
        &self.log_dir
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        let entries = std::mem::take(self.children.get_mut().unwrap_or_else(|e| e.into_inner()));
        if !entries.is_empty() {
            util::terminate_in_background(entries.into_iter().map(|e| e.process).collect());
        }
    }
}

/// A TCP port on 127.0.0.1 that was free a moment ago (bind to port 0, read, release). Never
/// returns the same port twice in one process, so parallel callers do not collide.
pub fn free_port() -> u16 {
    static HANDED_OUT: Mutex<Option<HashSet<u16>>> = Mutex::new(None);
    let mut handed = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    let handed = handed.get_or_insert_with(HashSet::new);
    for _ in 0..64 {
        let port = std::net::TcpListener::bind(("127.0.0.1", 0))
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("cannot bind a TCP port on 127.0.0.1");
        if handed.insert(port) {
            return port;
        }
    }
    panic!("cannot find a TCP port on 127.0.0.1 not handed out before");
}
