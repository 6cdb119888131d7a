//! The `yds` command-line client as a user runs it: the built binary as a subprocess, with its
//! own empty config folder, against a test stack; and a proxy that drops a connection in the
//! middle of an upload.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::bin_dir;

/// The longest a command may take before the test fails (and the command is killed).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(300);

/// The `yds` binary, configured for one API.
pub struct Yds {
    pub bin: PathBuf,
    pub url: String,
    pub key: String,
    /// `HOME` and `XDG_CONFIG_HOME` of every run: no user's config file leaks in.
    pub home: tempfile::TempDir,
}

/// What a run of `yds` did.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Both streams, for assertion messages.
    pub fn both(&self) -> String {
        format!("exit {}\n--- stdout\n{}--- stderr\n{}", self.code, self.stdout, self.stderr)
    }
}

impl Yds {
    /// The binary `cargo build --bins` put beside the function binaries.
    pub fn new(url: &str, key: &str) -> Yds {
        let bin = bin_dir().join("yds");
        assert!(bin.is_file(), "{} is missing: run `cargo build --bins` first", bin.display());
        Yds { bin, url: url.to_owned(), key: key.to_owned(), home: tempfile::tempdir().expect("temp dir") }
    }

    /// Runs `yds ARGS` with `YDS_URL` and `YDS_API_KEY` set, in `cwd` when given.
    pub async fn run(&self, args: &[&str]) -> Run {
        self.run_with(args, &[("YDS_URL", Some(&self.url)), ("YDS_API_KEY", Some(&self.key))]).await
    }

    /// Runs `yds ARGS` with only the given `YDS_*` variables (`None`: unset).
    pub async fn run_with(&self, args: &[&str], env: &[(&str, Option<&str>)]) -> Run {
        let mut command = tokio::process::Command::new(&self.bin);
        command
            .args(args)
            .env_remove("YDS_URL")
            .env_remove("YDS_API_KEY")
            .env("HOME", self.home.path())
            .env("XDG_CONFIG_HOME", self.home.path().join("config"))
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true);
        for (name, value) in env {
            match value {
                Some(value) => command.env(name, value),
                None => command.env_remove(name),
            };
        }
        let output = tokio::time::timeout(COMMAND_TIMEOUT, command.output())
            .await
            .unwrap_or_else(|_| panic!("`yds {}` did not end in {COMMAND_TIMEOUT:?}", args.join(" ")))
            .expect("yds runs");
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Runs `yds ARGS` and asserts it succeeded.
    pub async fn ok(&self, args: &[&str]) -> Run {
        let run = self.run(args).await;
        assert_eq!(run.code, 0, "`yds {}` failed:\n{}", args.join(" "), run.both());
        run
    }

    /// Runs `yds ARGS` (which should include `--json`) and parses its stdout.
    pub async fn json(&self, args: &[&str]) -> Value {
        let run = self.ok(args).await;
        serde_json::from_str(&run.stdout)
            .unwrap_or_else(|e| panic!("`yds {}`: not JSON ({e}):\n{}", args.join(" "), run.both()))
    }

    /// The config file `yds login` writes for this runner.
    pub fn config_file(&self) -> PathBuf {
        self.home.path().join("config/yds/config.toml")
    }
}

/// The rows of a text table whose first cell is `first`, split on whitespace.
pub fn table_row(text: &str, first: &str) -> Option<Vec<String>> {
    text.lines()
        .map(|l| l.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
        .find(|cells| cells.first().map(String::as_str) == Some(first))
}

/// A TCP proxy in front of the stack that drops the connection in the middle of one `PUT` to
/// `/uploads/…`: after `after` bytes of the `nth` such request (1-based), both sides are closed,
/// as a laptop's Wi-Fi would.
pub struct CuttingProxy {
    pub url: String,
    /// `PUT /uploads/` requests seen (pieces and status queries).
    pub puts: Arc<AtomicUsize>,
    /// Set once the cut happened.
    pub cut: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl CuttingProxy {
    pub async fn start(upstream: &str, nth: usize, after: usize) -> CuttingProxy {
        let upstream = upstream.trim_start_matches("http://").trim_end_matches('/').to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let puts = Arc::new(AtomicUsize::new(0));
        let cut = Arc::new(AtomicBool::new(false));
        let (p, c) = (puts.clone(), cut.clone());
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(&upstream).await else { continue };
                tokio::spawn(relay(client, server, p.clone(), c.clone(), nth, after));
            }
        });
        CuttingProxy { url, puts, cut, task }
    }
}

impl Drop for CuttingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One connection: bytes both ways until either side closes, or the cut.
async fn relay(
    client: TcpStream,
    server: TcpStream,
    puts: Arc<AtomicUsize>,
    cut: Arc<AtomicBool>,
    nth: usize,
    after: usize,
) {
    const NEEDLE: &[u8] = b"PUT /uploads/";
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let upward = async {
        let mut buf = vec![0u8; 64 * 1024];
        let mut tail: Vec<u8> = Vec::new();
        // Bytes forwarded since the request to cut started.
        let mut cutting: Option<usize> = None;
        loop {
            let n = match client_read.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            let mut window = std::mem::take(&mut tail);
            window.extend_from_slice(&buf[..n]);
            for _ in window.windows(NEEDLE.len()).filter(|w| *w == NEEDLE) {
                let seen = puts.fetch_add(1, Ordering::SeqCst) + 1;
                if seen == nth && !cut.load(Ordering::SeqCst) {
                    cutting = Some(0);
                }
            }
            tail = window[window.len().saturating_sub(NEEDLE.len() - 1)..].to_vec();
            if let Some(sent) = cutting {
                if sent + n >= after {
                    let _ = server_write.write_all(&buf[..after.saturating_sub(sent)]).await;
                    cut.store(true, Ordering::SeqCst);
                    return;
                }
                cutting = Some(sent + n);
            }
            if server_write.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    };
    let downward = async {
        let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
    };
    // Whichever side ends first ends the connection: both sockets are dropped here.
    tokio::select! {
        () = upward => {}
        () = downward => {}
    }
}

/// Every file under `root` with its bytes, by `/`-separated relative path.
pub fn tree(root: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    testkit::files_under(root)
        .expect("list files")
        .into_iter()
        .map(|rel| {
            let bytes = std::fs::read(root.join(&rel)).expect("read");
            (rel, bytes)
        })
        .collect()
}
