//! Building the function binaries the commands run: debug (the tests' and the local stack's)
//! or release (the bench's and the images').

use std::path::PathBuf;

use anyhow::{bail, Context};
use local_stack::stack::FUNCTIONS;

use crate::paths;

/// Builds the function binaries (debug profile). The whole workspace's binaries, exactly as
/// `cargo xtask test` builds them: the same package selection means the same feature set, so
/// neither command makes the other rebuild its dependencies. (`--release` builds them as
/// `bench` does instead.)
pub fn build_functions() -> anyhow::Result<()> {
    build_workspace(&["--bins"])
}

/// `cargo build --workspace` of the given targets. The test run passes `--all-targets`: then
/// the binaries are built with the same features as the tests (dev-dependencies widen some, e.g.
/// indexmap's `serde`), so `cargo test` reuses them instead of building the graph a second time.
pub fn build_workspace(targets: &[&str]) -> anyhow::Result<()> {
    let status = paths::cargo()
        .args(["build", "--quiet", "--workspace"])
        .args(targets)
        .status()
        .context("running cargo build")?;
    if !status.success() {
        bail!("building the functions failed");
    }
    Ok(())
}

/// Builds the function binaries in the release profile; returns where they are.
pub fn build_release_functions() -> anyhow::Result<PathBuf> {
    let mut command = paths::cargo();
    command.args(["build", "--release", "--bins"]);
    for package in FUNCTIONS {
        command.args(["-p", package]);
    }
    let status = command.status().context("running cargo build --release")?;
    if !status.success() {
        bail!("building the release function binaries failed");
    }
    // `paths::bin_dir` is `<target>/debug`; the release binaries are its sibling.
    Ok(paths::bin_dir().with_file_name("release"))
}
