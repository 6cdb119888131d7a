//! `cargo xtask test`: install and start what the tests need (a real `mongod`; Debian's
//! `chromium` and `chromium-driver` for the web app's tests; the pinned Ultralytics for the
//! round-trip test's check of a pulled tree), build the function binaries the
//! end-to-end tests launch, run every test of the workspace, stop what was started. Extra
//! arguments go to `cargo test`.

use anyhow::Context;
use local_stack::{ensure_mongod, Mongod};

use crate::browser::Browser;
use crate::paths;

pub async fn run(extra_args: &[String]) -> anyhow::Result<i32> {
    let install = ensure_mongod(&paths::tools_dir())?;
    let ultralytics = crate::conformance::ensure_ultralytics()?;
    let browser = match crate::browser::ensure_browser() {
        Ok(browser) => Some(browser),
        // CI sets YDS_REQUIRE_BROWSER: there, browser tests that cannot run are a failure.
        Err(err) if std::env::var_os("YDS_REQUIRE_BROWSER").is_none() => {
            eprintln!("xtask: no browser, the browser tests will be skipped: {err:#}");
            None
        }
        Err(err) => return Err(err),
    };
    let data = scratch_dir()?;
    let mongod = Mongod::start(&install, &data).await?;
    eprintln!("xtask: mongod {} at {}", install.bin.display(), mongod.uri);

    let result = run_cargo(&mongod.uri, browser.as_ref(), &ultralytics, extra_args);
    mongod.shutdown().await;
    let _ = std::fs::remove_dir_all(&data);
    result
}

fn run_cargo(
    mongodb_uri: &str,
    browser: Option<&Browser>,
    ultralytics: &std::path::Path,
    extra_args: &[String],
) -> anyhow::Result<i32> {
    if let Err(err) = crate::binaries::build_workspace(&["--all-targets"]) {
        eprintln!("xtask: {err:#}");
        return Ok(1);
    }
    let mut cargo = paths::cargo();
    if let Some(browser) = browser {
        cargo.env("YDS_TEST_CHROMIUM", &browser.chromium).env("YDS_TEST_CHROMEDRIVER", &browser.chromedriver);
    }
    let status = cargo
        .args(["test", "--workspace", "--no-fail-fast"])
        .args(extra_args)
        .env("YDS_TEST_MONGODB_URI", mongodb_uri)
        .env("YDS_TEST_BIN_DIR", paths::bin_dir())
        .env("YDS_TEST_TOOLS_DIR", paths::tools_dir())
        .env("YDS_TEST_ULTRALYTICS", ultralytics)
        .status()
        .context("running cargo test")?;
    Ok(status.code().unwrap_or(1))
}

/// The test mongod's data, under `target/` and wiped first: an interrupted run leaves no
/// 300 MB directory behind in `/tmp` for every attempt.
fn scratch_dir() -> anyhow::Result<std::path::PathBuf> {
    let dir = paths::workspace_root().join("target").join("yds-test-mongod");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
