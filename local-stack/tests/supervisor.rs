//! The supervisor with real child processes: environment and `PORT`, health waiting (success,
//! timeout, early exit), and that shutdown and drop leave no process behind, grandchildren
//! and SIGTERM-ignoring children included.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use local_stack::supervisor::{free_port, ProcessSpec, Supervisor};

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().subsec_nanos();
        let dir = std::env::temp_dir().join(format!("yds-ls-sup-{tag}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn script(&self, name: &str, body: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, body).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn spec(name: &str, program: &Path) -> ProcessSpec {
    ProcessSpec { name: name.into(), program: program.into(), env: Vec::new(), port: free_port() }
}

/// True while the pid exists and has not exited (not a zombie).
fn alive(pid: u32) -> bool {
    local_stack::process_status(pid).is_some_and(|status| !status.has_exited())
}

/// True once the pid no longer exists at all (reaped).
fn gone(pid: u32) -> bool {
    !Path::new(&format!("/proc/{pid}")).exists()
}

async fn wait_until(what: &str, timeout: Duration, f: impl Fn() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

const SLEEPER: &str = "#!/bin/sh\necho hello from the child\nexec sleep 30\n";

#[tokio::test]
async fn shutdown_stops_children() {
    let tmp = TempDir::new("shutdown");
    let sleeper = tmp.script("sleeper.sh", SLEEPER);
    let mut sup = Supervisor::new(tmp.0.join("logs"));
    sup.spawn(spec("one", &sleeper)).await.unwrap();
    sup.spawn(spec("two", &sleeper)).await.unwrap();
    let pids = sup.pids();
    assert_eq!(pids.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), ["one", "two"]);
    for (_, pid) in &pids {
        assert!(alive(*pid));
    }
    // The child's first line reaches its log when it gets the CPU: wait for it (a loaded
    // machine can take a while), so the check below is about the log, not about scheduling.
    let log_path = tmp.0.join("logs/one.log");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !std::fs::read_to_string(&log_path).unwrap_or_default().contains("hello from the child") {
        assert!(Instant::now() < deadline, "the child never wrote its first line");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let started = Instant::now();
    sup.shutdown().await;
    assert!(started.elapsed() < Duration::from_secs(4), "{:?}", started.elapsed());
    for (_, pid) in &pids {
        assert!(gone(*pid), "pid {pid} still there after shutdown");
    }
    assert!(sup.pids().is_empty());
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(log.contains("hello from the child"), "{log}");
}

#[tokio::test]
async fn drop_stops_children() {
    let tmp = TempDir::new("drop");
    let sleeper = tmp.script("sleeper.sh", SLEEPER);
    let mut sup = Supervisor::new(tmp.0.join("logs"));
    sup.spawn(spec("sleeper", &sleeper)).await.unwrap();
    let (_, pid) = sup.pids()[0].clone();
    assert!(alive(pid));
    drop(sup);
    wait_until("the child is gone after drop", Duration::from_secs(4), || gone(pid)).await;
}

#[tokio::test]
async fn grandchildren_are_stopped_too() {
    let tmp = TempDir::new("grand");
    let pidfile = tmp.0.join("grandchild.pid");
    let script = tmp.script("forker.sh", &format!("#!/bin/sh\nsleep 30 &\necho $! > {}\nwait\n", pidfile.display()));
    let mut sup = Supervisor::new(tmp.0.join("logs"));
    sup.spawn(spec("forker", &script)).await.unwrap();
    wait_until("the grandchild pid is written", Duration::from_secs(5), || {
        std::fs::read_to_string(&pidfile).map(|s| s.ends_with('\n')).unwrap_or(false)
    })
    .await;
    let grandchild: u32 = std::fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
    assert!(alive(grandchild));
    sup.shutdown().await;
    // The grandchild is not ours to reap; it must at least be dead (reaped by init).
    wait_until("the grandchild is dead", Duration::from_secs(3), || !alive(grandchild)).await;
}

#[tokio::test]
async fn sigterm_ignoring_child_gets_sigkill() {
    let tmp = TempDir::new("stubborn");
    let script = tmp.script("stubborn.sh", "#!/bin/sh\ntrap '' TERM\nexec sleep 30\n");
    let mut sup = Supervisor::new(tmp.0.join("logs"));
    sup.spawn(spec("stubborn", &script)).await.unwrap();
    let (_, pid) = sup.pids()[0].clone();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    sup.shutdown().await;
    let took = started.elapsed();
    assert!(gone(pid));
    assert!(took >= Duration::from_millis(4500) && took < Duration::from_secs(8), "{took:?}");
}

#[tokio::test]
async fn wait_healthy_times_out_naming_the_process_and_its_log() {
    let tmp = TempDir::new("timeout");
    let sleeper = tmp.script("sleeper.sh", SLEEPER);
    let mut sup = Supervisor::new(tmp.0.join("logs"));
    sup.spawn(spec("mute", &sleeper)).await.unwrap();
    let started = Instant::now();
    let err = sup.wait_healthy("mute", Duration::from_millis(800)).await.unwrap_err().to_string();
    assert!(started.elapsed() < Duration::from_secs(4));
    assert!(err.contains("`mute`"), "{err}");
    assert!(err.contains("did not become healthy"), "{err}");
    assert!(err.contains("hello from the child"), "{err}");
    sup.shutdown().await;
}

#[tokio::test]
async fn early_exit_is_reported_at_once() {
    let tmp = TempDir::new("exit");
    let script = tmp.script("crash.sh", "#!/bin/sh\necho boom: no config >&2\nexit 3\n");
    let mut sup = Supervisor::new(tmp.0.join("logs"));
    sup.spawn(spec("crashy", &script)).await.unwrap();
    let started = Instant::now();
    let err = sup.wait_healthy("crashy", Duration::from_secs(30)).await.unwrap_err().to_string();
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    assert!(err.contains("`crashy`"), "{err}");
    assert!(err.contains("exit status: 3"), "{err}");
    assert!(err.contains("boom: no config"), "{err}");
    assert_eq!(sup.exited().len(), 1);
    assert!(sup.wait_healthy("nobody", Duration::from_secs(1)).await.is_err());
}

#[tokio::test]
async fn healthy_process_gets_port_and_env() {
    let tmp = TempDir::new("healthy");
    let server = tmp.script(
        "server.py",
        r#"#!/usr/bin/env python3
import http.server, os
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        ok = self.path == "/healthz" and os.environ.get("YDS_TEST_VAR") == "yes"
        self.send_response(200 if ok else 500)
        self.send_header("content-length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass
print("listening", flush=True)
http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
"#,
    );
    let mut sup = Supervisor::new(tmp.0.join("logs"));
    let mut s = spec("py", &server);
    s.env.push(("YDS_TEST_VAR".into(), "yes".into()));
    sup.spawn(s).await.unwrap();
    sup.wait_healthy("py", Duration::from_secs(20)).await.unwrap();
    assert!(sup.exited().is_empty());

    let mut s = spec("py-no-env", &server);
    s.env.push(("YDS_TEST_VAR".into(), "no".into()));
    sup.spawn(s).await.unwrap();
    let err = sup.wait_healthy("py-no-env", Duration::from_secs(2)).await.unwrap_err().to_string();
    assert!(err.contains("500"), "{err}");
    sup.shutdown().await;
}

#[tokio::test]
async fn spawn_errors_are_clear() {
    let tmp = TempDir::new("errors");
    let sleeper = tmp.script("sleeper.sh", SLEEPER);
    let mut sup = Supervisor::new(tmp.0.join("logs"));
    let err = sup.spawn(spec("missing", &tmp.0.join("no-such-binary"))).await.unwrap_err();
    assert!(format!("{err:#}").contains("`missing`"), "{err:#}");
    sup.spawn(spec("dup", &sleeper)).await.unwrap();
    assert!(sup.spawn(spec("dup", &sleeper)).await.is_err());
    assert!(sup.spawn(spec("../evil", &sleeper)).await.is_err());
    sup.shutdown().await;
}

#[test]
fn free_ports_are_distinct() {
    let ports: std::collections::HashSet<u16> = (0..50).map(|_| free_port()).collect();
    assert_eq!(ports.len(), 50);
    assert!(!ports.contains(&0));
}

#[test]
fn children_outlive_the_thread_and_runtime_that_started_them() {
    let tmp = TempDir::new("thread");
    let sleeper = tmp.script("sleeper.sh", SLEEPER);
    let logs = tmp.0.join("logs");
    let sup = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let mut sup = Supervisor::new(logs);
        rt.block_on(sup.spawn(spec("sleeper", &sleeper))).unwrap();
        sup
    })
    .join()
    .unwrap();
    let (_, pid) = sup.pids()[0].clone();
    std::thread::sleep(Duration::from_millis(300));
    assert!(alive(pid), "child died with the thread that started it");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let mut sup = sup;
    rt.block_on(sup.shutdown());
    assert!(gone(pid));
}

const HELPER_ENV: &str = "YDS_LS_TEST_HELPER_PIDFILE";

/// Run only by `parent_killed_by_sigkill_takes_children_along`, in a child process: starts a
/// supervised sleeper, records its pid and waits.
#[tokio::test]
#[ignore = "helper of parent_killed_by_sigkill_takes_children_along, run in a child process"]
async fn helper_process_for_parent_death() {
    let Some(pidfile) = std::env::var_os(HELPER_ENV) else {
        return;
    };
    let pidfile = PathBuf::from(pidfile);
    let dir = pidfile.parent().unwrap().to_path_buf();
    let sleeper = dir.join("helper-sleeper.sh");
    std::fs::write(&sleeper, SLEEPER).unwrap();
    std::fs::set_permissions(&sleeper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut sup = Supervisor::new(dir.join("logs"));
    sup.spawn(spec("orphan", &sleeper)).await.unwrap();
    let pid = sup.pids()[0].1;
    std::fs::write(&pidfile, format!("{pid}\n")).unwrap();
    tokio::time::sleep(Duration::from_secs(60)).await;
}

#[tokio::test]
async fn parent_killed_by_sigkill_takes_children_along() {
    let tmp = TempDir::new("pdeath");
    let pidfile = tmp.0.join("child.pid");
    let mut helper =
        testkit::child::run_helper("helper_process_for_parent_death", &[(HELPER_ENV, pidfile.as_os_str())]);
    wait_until("the helper reports its child", Duration::from_secs(20), || {
        std::fs::read_to_string(&pidfile).map(|s| s.ends_with('\n')).unwrap_or(false)
    })
    .await;
    let child: u32 = std::fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
    assert!(alive(child));
    helper.kill().unwrap(); // SIGKILL: no destructor runs in the helper
    helper.wait().unwrap();
    wait_until("the orphaned child is dead", Duration::from_secs(5), || !alive(child)).await;
}

/// The stack's futures can be handed to `tokio::spawn`, and a supervisor shared between tasks.
#[test]
fn futures_are_send_and_supervisor_is_sync() {
    fn is_send<T: Send>(_: &T) {}
    fn is_sync<T: Sync>() {}
    is_sync::<Supervisor>();
    let mut sup = Supervisor::new(PathBuf::from("/nonexistent"));
    is_send(&sup.wait_healthy("x", Duration::from_secs(1)));
    is_send(&sup.shutdown());
    is_send(&sup.spawn(spec("x", Path::new("/bin/true"))));
    let install = local_stack::MongodInstall { bin: PathBuf::from("/nonexistent") };
    is_send(&local_stack::Mongod::start(&install, Path::new("/nonexistent")));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let _guard = rt.enter();
    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
    is_send(&local_stack::serve(listener, Vec::new(), std::future::pending()));
}
