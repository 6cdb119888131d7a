//! `cargo xtask fuzz [--secs N] [TARGET...]`: runs the cargo-fuzz targets in `fuzz/` (the
//! hand-written parsers: label files, data.yaml, archive member names and walks, image headers)
//! for N seconds each (default 60) on the nightly toolchain. Installs cargo-fuzz into
//! `.yds-tools/cargo-fuzz/` when it is missing. Not part of `cargo xtask test`.
//!
//! The working corpus grows in `fuzz/corpus/TARGET` (git-ignored), seeded from the committed
//! `fuzz/seeds/TARGET`; a crashing input is written to `fuzz/artifacts/TARGET/` and the run
//! stops with a failure.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context};

use crate::paths;

/// The targets, in the order they run.
pub const TARGETS: [&str; 5] = ["labels", "data_yaml", "member_name", "image", "archive"];

/// The pinned cargo-fuzz.
const CARGO_FUZZ_VERSION: &str = "0.13.2";

/// `cargo xtask fuzz [--secs N] [TARGET...]`.
#[derive(Debug, clap::Args)]
pub struct FuzzArgs {
    /// Seconds each target runs.
    #[arg(long, default_value_t = 60)]
    secs: u64,
    /// The targets to run (default: all).
    #[arg(value_parser = clap::builder::PossibleValuesParser::new(TARGETS))]
    targets: Vec<String>,
}

pub fn run(args: FuzzArgs) -> anyhow::Result<i32> {
    let secs = args.secs;
    let mut targets = args.targets;
    if targets.is_empty() {
        targets = TARGETS.iter().map(|t| t.to_string()).collect();
    }
    let bin = ensure_cargo_fuzz()?;
    let root = paths::workspace_root();
    let fuzz_dir = root.join("fuzz");
    let path = std::env::join_paths(
        std::iter::once(bin.clone()).chain(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())),
    )?;

    let mut failed = Vec::new();
    for target in &targets {
        let corpus = fuzz_dir.join("corpus").join(target);
        let seeds = fuzz_dir.join("seeds").join(target);
        std::fs::create_dir_all(&corpus)?;
        std::fs::create_dir_all(&seeds)?;
        eprintln!("xtask: fuzzing `{target}` for {secs} s");
        let started = Instant::now();
        // The parsers are safe Rust: no sanitizer, for more executions per second. Panics,
        // assertion failures, timeouts and out-of-memory are what the targets look for.
        let status = Command::new("rustup")
            .args(["run", "nightly", "cargo", "fuzz", "run", "--sanitizer", "none", "--fuzz-dir"])
            .arg(&fuzz_dir)
            .arg(target)
            .arg(&corpus)
            .arg(&seeds)
            .args([
                "--",
                &format!("-max_total_time={secs}"),
                "-timeout=10",
                "-rss_limit_mb=2048",
                "-print_final_stats=1",
            ])
            .current_dir(&root)
            .env("PATH", &path)
            // `cargo xtask` runs us with the stable toolchain's `CARGO`; cargo-fuzz would use it
            // and rebuild everything with stable cargo. Let `rustup run nightly` pick.
            .env_remove("CARGO")
            .env_remove("RUSTC")
            .env_remove("RUSTDOC")
            .stdin(Stdio::null())
            .status()
            .context("running cargo +nightly fuzz (is the nightly toolchain installed?)")?;
        eprintln!("xtask: `{target}` ran {:.0} s: {status}", started.elapsed().as_secs_f64());
        if !status.success() {
            failed.push(target.clone());
        }
    }
    if failed.is_empty() {
        eprintln!("xtask: no target failed");
        Ok(0)
    } else {
        eprintln!("xtask: failing targets: {} (inputs under fuzz/artifacts/)", failed.join(", "));
        Ok(1)
    }
}

/// The folder holding `cargo-fuzz`, installed with `cargo install --locked` when missing.
fn ensure_cargo_fuzz() -> anyhow::Result<PathBuf> {
    let root = paths::tools_dir().join("cargo-fuzz");
    let bin = root.join("bin");
    if bin.join("cargo-fuzz").is_file() {
        return Ok(bin);
    }
    eprintln!("xtask: installing cargo-fuzz {CARGO_FUZZ_VERSION} into {}", root.display());
    let status = crate::paths::cargo()
        .args(["install", "--locked", "--version", CARGO_FUZZ_VERSION, "--root"])
        .arg(&root)
        .arg("cargo-fuzz")
        .stdin(Stdio::null())
        .status()
        .context("running cargo install cargo-fuzz")?;
    if !status.success() || !bin.join("cargo-fuzz").is_file() {
        bail!("`cargo install cargo-fuzz` failed ({status})");
    }
    Ok(bin)
}
