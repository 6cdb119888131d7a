//! `cargo xtask conformance`: the differential check of YDS' image verdicts against real
//! Ultralytics (`tools/ultralytics-diff/`). Installs the pinned reference
//! (`tools/ultralytics-diff/requirements.txt`) into `.yds-tools/`, starts the local stack on a
//! free port with its data in a temporary folder, runs the harness, stops the stack. Exit status
//! is the harness': 0 when every image agrees. Not part of `cargo xtask test`, which only
//! installs the same reference ([`ensure_ultralytics`]) for the round-trip test's check of a
//! pulled tree (about 85 MB of wheels, 265 MB installed; a few seconds from PyPI).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context};

use crate::paths;
use crate::serve::{self, StackArgs};

/// The folder under `.yds-tools/` the reference is installed into; named after the pin, so a
/// changed pin installs afresh.
const TOOLS_FOLDER: &str = "ultralytics-8.4.190";

pub async fn run() -> anyhow::Result<i32> {
    let root = paths::workspace_root();
    let harness = root.join("tools/ultralytics-diff");
    let tools = ensure_ultralytics()?;

    let work = std::env::temp_dir().join(format!("yds-conformance-{}", std::process::id()));
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let stack_args = StackArgs { port, data_dir: work.join("stack"), release: false };
    let (stack, key) = serve::start_stack(&stack_args).await?;
    eprintln!("xtask: YDS listening on http://127.0.0.1:{port}");

    let status = Command::new("python3")
        .arg(harness.join("diff.py"))
        .arg("--tools")
        .arg(&tools)
        .args(["--yds", &format!("http://127.0.0.1:{port}"), "--key", &key, "--work"])
        .arg(work.join("harness"))
        .stdin(Stdio::null())
        .status()
        .context("running python3 tools/ultralytics-diff/diff.py");
    stack.shutdown().await;
    let _ = fs::remove_dir_all(&work);
    Ok(status?.code().unwrap_or(1))
}

/// The pinned Ultralytics reference (`tools/ultralytics-diff/requirements.txt`), installed into
/// `.yds-tools/` unless it is there; its folder.
pub fn ensure_ultralytics() -> anyhow::Result<PathBuf> {
    let requirements = paths::workspace_root().join("tools/ultralytics-diff/requirements.txt");
    install(&requirements, &paths::tools_dir().join(TOOLS_FOLDER))
}

/// pip-installs the requirements (pinned, without dependency resolution) into `dir` unless it
/// is there: into a temporary sibling first, renamed into place.
fn install(requirements: &Path, dir: &Path) -> anyhow::Result<PathBuf> {
    if dir.join("ultralytics").is_dir() {
        return Ok(dir.to_path_buf());
    }
    let partial = dir.with_extension(format!("partial-{}", std::process::id()));
    let _ = fs::remove_dir_all(&partial);
    eprintln!("xtask: installing the Ultralytics reference into {}", dir.display());
    let status = Command::new("python3")
        .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps", "--target"])
        .arg(&partial)
        .arg("-r")
        .arg(requirements)
        .env("PIP_ROOT_USER_ACTION", "ignore")
        .stdin(Stdio::null())
        .status()
        .context("running python3 -m pip (is python3 installed?)")?;
    if !status.success() || !partial.join("ultralytics").is_dir() {
        let _ = fs::remove_dir_all(&partial);
        bail!("`pip install -r {}` failed ({status})", requirements.display());
    }
    fs::rename(&partial, dir).with_context(|| format!("moving the install into {}", dir.display()))?;
    Ok(dir.to_path_buf())
}
