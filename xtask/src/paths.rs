//! Where things are in the repository.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The workspace root (xtask's manifest sits one level below it).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives in the workspace").to_path_buf()
}

/// Git-ignored folder for tools the project installs itself (the `mongod` wheel).
pub fn tools_dir() -> PathBuf {
    workspace_root().join(".yds-tools")
}

/// Cargo's target folder.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| workspace_root().join("target"))
}

/// Where `cargo build` puts the function binaries.
pub fn bin_dir() -> PathBuf {
    target_dir().join("debug")
}

/// A `cargo` command run in the workspace, without the variables `cargo run` set for xtask
/// itself. Passed on, they change the fingerprint of build scripts that watch them (ring's
/// watches `CARGO_MANIFEST_DIR`), so the cargo that xtask runs and the one that built xtask (or
/// one typed in a shell) would each rebuild ring and everything above it (the MongoDB driver,
/// our crates) at every `cargo xtask` command.
pub fn cargo() -> Command {
    const SET_BY_CARGO_RUN: [&str; 5] =
        ["CARGO_MANIFEST_DIR", "CARGO_MANIFEST_PATH", "CARGO_CRATE_NAME", "CARGO_BIN_NAME", "CARGO_PRIMARY_PACKAGE"];
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command.current_dir(workspace_root());
    for (name, _) in std::env::vars_os() {
        let Some(name) = name.to_str() else { continue };
        if name.starts_with("CARGO_PKG_") || SET_BY_CARGO_RUN.contains(&name) {
            command.env_remove(name);
        }
    }
    command
}
