//! Plumbing shared by the supervisor, mongod and the gateway: how children are spawned and
//! stopped (own process group, parent-death signal, SIGTERM then SIGKILL, reaping even from a
//! `Drop`), reading the tail of a log file for error messages, and a one-shot HTTP probe.
//!
//! Children are forked from one dedicated thread that lives as long as the process. Linux
//! sends the parent-death signal when the *thread* that forked a child exits, so forking from
//! a test's thread or a runtime's blocking pool would kill the child when that thread ends;
//! forking from this thread ties the child's life to the whole process instead (a `Mongod`
//! shared by many tests in a `static` lives until the test binary exits, then gets SIGTERM).
//! Children are `std::process::Child`ren reaped by polling, so nothing depends on the tokio
//! runtime that started them still running.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, StatusCode, Uri};
use http_body_util::Empty;
use hyper_util::rt::TokioIo;

/// What `/proc/{pid}/stat` says of a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessStatus {
    /// The state letter: `R`, `S`, `D`, ..., `Z` (zombie), `X`/`x` (dead).
    pub state: char,
    pub ppid: u32,
}

impl ProcessStatus {
    /// Exited already: a zombie (its other threads may still be closing its files) or dead.
    pub fn has_exited(&self) -> bool {
        matches!(self.state, 'Z' | 'X' | 'x')
    }
}

/// The status of process `pid`; `None` once it is gone (reaped).
pub fn process_status(pid: u32) -> Option<ProcessStatus> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) state ppid ...`: comm may hold spaces and parentheses.
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some(ProcessStatus { state, ppid })
}

/// How long a child gets between SIGTERM and SIGKILL.
pub(crate) const GRACE: Duration = Duration::from_secs(5);
/// How often exits are polled for.
const POLL: Duration = Duration::from_millis(20);

/// Applies what every child of the stack gets: no stdin, its own process group (so a terminal's
/// Ctrl-C reaches the stack, which then stops children in order), and on Linux SIGTERM from the
/// kernel when the stack's process dies, even by SIGKILL.
pub(crate) fn configure(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    cmd.stdin(Stdio::null()).process_group(0);
    #[cfg(target_os = "linux")]
    {
        // SAFETY: getpid has no preconditions.
        let parent = unsafe { libc::getpid() };
        // SAFETY: the closure runs in the forked child before exec and only calls
        // async-signal-safe functions (prctl, getppid).
        unsafe {
            cmd.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM as libc::c_ulong, 0, 0, 0) != 0 {
                    return Err(io::Error::last_os_error());
                }
                // The parent may have died between fork and prctl: then nobody would signal us.
                if libc::getppid() != parent {
                    return Err(io::Error::other("parent exited during spawn"));
                }
                Ok(())
            });
        }
    }
}

type SpawnJob = Box<dyn FnOnce() + Send>;

/// Spawns `cmd` from the process-lifetime spawner thread (see the module doc).
pub(crate) async fn spawn(cmd: Command) -> io::Result<Child> {
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<SpawnJob>>> = OnceLock::new();
    let sender = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnJob>();
        std::thread::Builder::new()
            .name("yds-spawner".into())
            .spawn(move || {
                // Never returns while the process lives: the sender sits in a static.
                while let Ok(job) = rx.recv() {
                    job();
                }
            })
            .expect("cannot start the yds-spawner thread");
        Mutex::new(tx)
    });
    let (tx, rx) = tokio::sync::oneshot::channel();
    let mut cmd = cmd;
    let job: SpawnJob = Box::new(move || {
        let _ = tx.send(cmd.spawn());
    });
    sender
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .send(job)
        .map_err(|_| io::Error::other("the yds-spawner thread is gone"))?;
    rx.await.map_err(|_| io::Error::other("the yds-spawner thread dropped the request"))?
}

/// Sends `sig` to the child's process group (it leads one, see [`configure`]), or to the
/// child alone if the group is gone. Only call this for a child not yet reaped, so the pid
/// cannot have been reused.
pub(crate) fn signal(pid: u32, sig: libc::c_int) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    // SAFETY: plain syscalls on a pid we own.
    unsafe {
        if libc::kill(-pid, sig) != 0 {
            libc::kill(pid, sig);
        }
    }
}

/// A child to stop: its name (for logs), handle and pid. Dropping one that still runs sends
/// it SIGKILL (the backstop if nothing stopped it properly).
pub(crate) struct Running {
    pub name: String,
    pub pid: u32,
    pub child: Child,
}

impl Running {
    /// The exit status once the child has exited (std caches it, so asking again is safe).
    pub fn try_exit(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            tracing::warn!(name = %self.name, pid = self.pid, "child still running when dropped; sending SIGKILL");
            signal(self.pid, libc::SIGKILL);
        }
    }
}

/// SIGTERM to all, then waits for them together for [`GRACE`], SIGKILL to the rest, and reaps
/// everything. Returns each child's exit status (when it could be obtained).
pub(crate) async fn terminate(children: Vec<Running>) -> Vec<(String, Option<ExitStatus>)> {
    let mut live = Vec::new();
    let mut done = Vec::new();
    for mut r in children {
        match r.try_exit() {
            Some(status) => done.push((r.name.clone(), Some(status))),
            None => {
                signal(r.pid, libc::SIGTERM);
                live.push(r);
            }
        }
    }
    let deadline = Instant::now() + GRACE;
    let mut killed = false;
    while !live.is_empty() {
        let mut still = Vec::new();
        for mut r in live {
            match r.try_exit() {
                Some(status) => {
                    tracing::debug!(name = %r.name, pid = r.pid, %status, "child stopped");
                    done.push((r.name.clone(), Some(status)));
                }
                None => still.push(r),
            }
        }
        live = still;
        if live.is_empty() {
            break;
        }
        let now = Instant::now();
        if !killed && now >= deadline {
            for r in &live {
                tracing::warn!(name = %r.name, pid = r.pid, "did not stop within {GRACE:?} of SIGTERM; sending SIGKILL");
                signal(r.pid, libc::SIGKILL);
            }
            killed = true;
        }
        if killed && now >= deadline + GRACE {
            // Unkillable for now (uninterruptible sleep): leave them to the background reaper.
            for r in &live {
                done.push((r.name.clone(), None));
            }
            terminate_in_background(live);
            break;
        }
        tokio::time::sleep(POLL).await;
    }
    done
}

/// What `Drop` does: SIGTERM now, and a detached thread that reaps the children, sending
/// SIGKILL to those still alive after [`GRACE`]. Needs no async runtime, so it also works while
/// the runtime itself is being torn down.
pub(crate) fn terminate_in_background(children: Vec<Running>) {
    let mut live = Vec::new();
    for mut r in children {
        if r.try_exit().is_none() {
            signal(r.pid, libc::SIGTERM);
            live.push(r);
        }
    }
    if live.is_empty() {
        return;
    }
    // If the thread cannot be spawned, `live` is dropped here and each child gets SIGKILL.
    let _ = std::thread::Builder::new()
        .name("yds-reaper".into())
        .spawn(move || {
            let deadline = Instant::now() + GRACE;
            let mut killed = false;
            loop {
                live.retain_mut(|r| r.try_exit().is_none());
                if live.is_empty() {
                    return;
                }
                let now = Instant::now();
                if !killed && now >= deadline {
                    for r in &live {
                        tracing::warn!(name = %r.name, pid = r.pid, "did not stop within {GRACE:?} of SIGTERM; sending SIGKILL");
                        signal(r.pid, libc::SIGKILL);
                    }
                    killed = true;
                }
                if killed && now >= deadline + GRACE {
                    return; // unkillable for now; dropping `live` sends SIGKILL once more
                }
                std::thread::sleep(POLL);
            }
        });
}

/// The last `max_lines` lines of `path` from byte `offset` on (at most the last 16 KiB), for
/// error messages. Never fails: a missing file gives a note instead.
pub(crate) fn log_tail(path: &Path, offset: u64, max_lines: usize) -> String {
    const MAX_BYTES: u64 = 16 * 1024;
    let read = || -> io::Result<String> {
        let mut f = File::open(path)?;
        let len = f.metadata()?.len();
        let start = offset.max(len.saturating_sub(MAX_BYTES)).min(len);
        f.seek(SeekFrom::Start(start))?;
        let mut buf = Vec::new();
        f.take(len - start).read_to_end(&mut buf)?;
        Ok(String::from_utf8_lossy(&buf).into_owned())
    };
    match read() {
        Ok(text) => {
            let lines: Vec<&str> = text.lines().collect();
            let from = lines.len().saturating_sub(max_lines);
            let tail = lines[from..].join("\n");
            if tail.trim().is_empty() {
                format!("({} is empty)", path.display())
            } else {
                tail
            }
        }
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}

/// Appended content of `path` from `offset` on (whole), or an empty string.
pub(crate) fn read_from(path: &Path, offset: u64) -> String {
    let read = || -> io::Result<String> {
        let mut f = File::open(path)?;
        f.seek(SeekFrom::Start(offset))?;
        let mut buf = Vec::new();
        f.read_to_end(&mut buf)?;
        Ok(String::from_utf8_lossy(&buf).into_owned())
    };
    read().unwrap_or_default()
}

/// One `GET base+path` on a fresh connection; the status, or why there is none.
pub(crate) async fn http_get_status(base: &str, path: &str, timeout: Duration) -> Result<StatusCode, String> {
    http_get(base, path, timeout).await.map(|answer| answer.status)
}

/// What a `GET` answered: its status, its `Retry-After` and its body, when JSON.
pub(crate) struct Answer {
    pub status: StatusCode,
    pub retry_after: Option<u64>,
    pub body: Option<serde_json::Value>,
}

/// `GET {base}{path}` on a fresh connection, its body read, within `timeout`.
pub(crate) async fn http_get(base: &str, path: &str, timeout: Duration) -> Result<Answer, String> {
    let uri: Uri = base.parse().map_err(|e| format!("bad URL {base:?}: {e}"))?;
    let authority = uri.authority().ok_or_else(|| format!("URL {base:?} has no host"))?.clone();
    let host = authority.host().trim_start_matches('[').trim_end_matches(']').to_string();
    let port = authority.port_u16().unwrap_or(80);
    let attempt = async move {
        let stream =
            tokio::net::TcpStream::connect((host.as_str(), port)).await.map_err(|e| format!("connect: {e}"))?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|e| format!("handshake: {e}"))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let req = Request::get(path)
            .header(http::header::HOST, authority.as_str())
            .body(Empty::<Bytes>::new())
            .map_err(|e| e.to_string())?;
        let resp = sender.send_request(req).await.map_err(|e| format!("request: {e}"))?;
        let status = resp.status();
        let retry_after = resp.headers().get(http::header::RETRY_AFTER).and_then(|v| v.to_str().ok()?.parse().ok());
        let bytes = http_body_util::BodyExt::collect(resp.into_body()).await.map(|b| b.to_bytes()).ok();
        let body = bytes.and_then(|b| serde_json::from_slice(&b).ok());
        Ok(Answer { status, retry_after, body })
    };
    tokio::time::timeout(timeout, attempt).await.map_err(|_| format!("no answer within {timeout:?}"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_status_reads_state_and_parent_and_none_once_gone() {
        let own = process_status(std::process::id()).expect("this process runs");
        assert_eq!(own.ppid, std::os::unix::process::parent_id());
        assert!(matches!(own.state, 'R' | 'S'), "{own:?}");
        assert!(!own.has_exited());
        // Above the kernel's largest pid (2^22).
        assert_eq!(process_status(u32::MAX), None);

        let mut child = Command::new("true").spawn().unwrap();
        let pid = child.id();
        let deadline = Instant::now() + Duration::from_secs(5);
        while !process_status(pid).expect("unreaped, it stays").has_exited() {
            assert!(Instant::now() < deadline, "`true` never exited");
            std::thread::sleep(Duration::from_millis(5));
        }
        child.wait().unwrap();
        assert_eq!(process_status(pid), None, "reaped");
    }
}
