//! The browser the web app's tests drive: Debian's `chromium` and `chromium-driver`, found on
//! the machine or installed with apt when missing, as `mongod` is installed from its wheel.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};

/// Chromium and the ChromeDriver of the same version.
pub struct Browser {
    pub chromium: PathBuf,
    pub chromedriver: PathBuf,
}

const PACKAGES: [&str; 2] = ["chromium", "chromium-driver"];

/// The browser, installed first when it is missing.
pub fn ensure_browser() -> anyhow::Result<Browser> {
    if let Some(browser) = find() {
        return Ok(browser);
    }
    eprintln!("xtask: installing Debian's {} for the browser tests", PACKAGES.join(" and "));
    // A fresh machine's package lists may be stale or empty: install, else refresh and retry.
    if apt(&["install", "-y", "-q", "--no-install-recommends"]).is_err() {
        apt(&["update", "-q"])?;
        apt(&["install", "-y", "-q", "--no-install-recommends"])?;
    }
    find().context("chromium and chromedriver are still not on PATH after installing them")
}

fn find() -> Option<Browser> {
    let chromium = ["chromium", "chromium-browser"].into_iter().find_map(on_path)?;
    let chromedriver = on_path("chromedriver")?;
    Some(Browser { chromium, chromedriver })
}

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?).map(|dir| dir.join(name)).find(|path| is_executable(path))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// `apt-get ARGS` (with the packages when installing), as root or through `sudo -n`.
fn apt(args: &[&str]) -> anyhow::Result<()> {
    let installing = args.first() == Some(&"install");
    let as_root = is_root();
    let mut command = if as_root { Command::new("apt-get") } else { Command::new("sudo") };
    if !as_root {
        command.args(["-n", "apt-get"]);
    }
    command.args(args).env("DEBIAN_FRONTEND", "noninteractive");
    if installing {
        command.args(PACKAGES);
    }
    let status = command.status().context("running apt-get (is this a Debian or Ubuntu machine?)")?;
    if !status.success() {
        bail!("`apt-get {}` failed ({status}); install {} yourself", args.join(" "), PACKAGES.join(" and "));
    }
    Ok(())
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|out| out.stdout.starts_with(b"0\n"))
}
