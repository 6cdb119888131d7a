//! Where things are in the repository.

use std::path::{Path, PathBuf};

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
