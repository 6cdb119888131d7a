//! `cargo xtask bench startup`: what the release profile gives a serverless function — binary
//! size, time from `exec` to the first `200` (a cold start without the platform's share), and
//! resident memory after serving requests — for each function, on a real `mongod` (web, which
//! has no database, ignores it).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use local_stack::mongod::{ensure_mongod, Mongod};
use local_stack::stack::FUNCTIONS;

use crate::measure::healthz;
use crate::paths;

/// Cold starts measured per function; the median is reported.
const STARTS: usize = 7;
/// Requests served before memory is read.
const REQUESTS: usize = 200;

pub async fn run() -> anyhow::Result<i32> {
    println!("[1/2] Building the release function binaries");
    let bin_dir = crate::binaries::build_release_functions()?;
    println!("[2/2] Starting each function {STARTS} times on a real mongod");
    let work = tempfile::tempdir()?;
    let install = ensure_mongod(&paths::tools_dir())?;
    let mongod = Mongod::start(&install, work.path()).await?;

    println!("\n| function | binary | exec → first 200 (median of {STARTS}) | RSS after {REQUESTS} requests |");
    println!("|---|---|---|---|");
    for function in FUNCTIONS {
        let binary = bin_dir.join(function);
        let size = std::fs::metadata(&binary).with_context(|| format!("{}", binary.display()))?.len();
        let mut starts = Vec::new();
        let mut rss_kb = 0;
        for _ in 0..STARTS {
            let (start, rss) = measure(&binary, &mongod.uri)?;
            starts.push(start);
            rss_kb = rss_kb.max(rss);
        }
        starts.sort();
        println!(
            "| {function} | {:.1} MB | {:.1} ms | {:.1} MB |",
            size as f64 / 1e6,
            starts[STARTS / 2].as_secs_f64() * 1e3,
            rss_kb as f64 / 1024.0
        );
    }
    mongod.shutdown().await;
    Ok(0)
}

/// Starts `binary`, times its first `200` on `/healthz`, serves [`REQUESTS`] more, and returns
/// the start time and its resident memory (kB).
fn measure(binary: &Path, mongodb_uri: &str) -> anyhow::Result<(Duration, u64)> {
    let port = local_stack::free_port();
    let started = Instant::now();
    let mut child = Command::new(binary)
        .env_clear()
        .env("PORT", port.to_string())
        .env("MONGODB_URI", mongodb_uri)
        .env("YDS_DB_NAME", "bench_startup")
        .env("YDS_API_KEYS", "bench-key")
        .env("YDS_TASK_TOKEN", "bench-token")
        .env("YDS_CURSOR_SECRET", "bench-cursor-secret-of-at-least-32-chars")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let first = loop {
        if healthz(port) == Some(200) {
            break started.elapsed();
        }
        anyhow::ensure!(started.elapsed() < Duration::from_secs(30), "{} never answered", binary.display());
        std::thread::sleep(Duration::from_millis(1));
    };
    for _ in 0..REQUESTS {
        healthz(port);
    }
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id()))?;
    let rss = crate::measure::proc_status_kb(&status, "VmRSS:").unwrap_or(0);
    child.kill()?;
    child.wait()?;
    Ok((first, rss))
}
