//! A real browser for the web app's tests: Debian's headless Chromium driven over WebDriver
//! (`chromedriver`, spoken to with fantoccini), with the console's errors collected and
//! screenshots written under `target/browser-screenshots/` for a person to look at.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::actions::{InputSource, KeyAction, KeyActions};
pub use fantoccini::key::Key;
use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

/// How long a wait for the page may take before the test fails (the stack is a debug build on
/// a busy 2-core machine; the pages themselves answer in milliseconds).
pub const PAGE_TIMEOUT: Duration = Duration::from_secs(30);

/// Chromium under its ChromeDriver, one WebDriver session, closed on drop.
pub struct Browser {
    pub client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
    shots: PathBuf,
}

impl Browser {
    /// Starts `chromedriver` on a free port and opens a headless Chromium session with an empty
    /// profile and the browser log kept (console errors are read back by [`Browser::console_errors`]).
    pub async fn start(chromium: &Path, chromedriver: &Path) -> anyhow::Result<Browser> {
        Self::start_with(chromium, chromedriver, &[]).await
    }

    /// [`Browser::start`] with more Chromium flags (e.g. `--force-dark-mode`: the system asks
    /// for dark pages).
    pub async fn start_with(chromium: &Path, chromedriver: &Path, flags: &[&str]) -> anyhow::Result<Browser> {
        let port = free_port()?;
        let driver = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let profile = tempfile::tempdir()?;
        // The flags keep Chromium off the network (this machine has none) and off the GPU.
        let args = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--window-size=1280,900",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain(flags.iter().map(|s| s.to_string()))
        .chain([format!("--user-data-dir={}", profile.path().display())])
        .collect::<Vec<_>>();
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": chromium, "args": args},
            "goog:loggingPrefs": {"browser": "ALL"},
        });
        let capabilities = match capabilities {
            Value::Object(map) => map,
            _ => unreachable!("an object literal"),
        };
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + PAGE_TIMEOUT;
        let client = loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector).capabilities(capabilities.clone()).connect(&url).await {
                Ok(client) => break client,
                Err(err) if Instant::now() > deadline => anyhow::bail!("chromedriver at {url}: {err}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        };
        let shots = crate::env::workspace_root().join("target/browser-screenshots");
        std::fs::create_dir_all(&shots)?;
        Ok(Browser { client, driver, _profile: profile, shots })
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap_or_else(|e| panic!("opening {url}: {e}"));
    }

    /// Waits until `css` matches at least one element and returns the first.
    pub async fn wait_for(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(PAGE_TIMEOUT)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("waiting for `{css}`: {e}"))
    }

    /// Waits until `script` (a function body returning a value) returns something truthy, and
    /// returns that value; `what` names the wait in the failure message.
    pub async fn wait_until(&self, what: &str, script: &str) -> Value {
        let deadline = Instant::now() + PAGE_TIMEOUT;
        loop {
            let value = self.eval(script).await;
            let truthy = !matches!(&value, Value::Null | Value::Bool(false))
                && value.as_f64() != Some(0.0)
                && value.as_str() != Some("");
            if truthy {
                return value;
            }
            if Instant::now() > deadline {
                self.screenshot("timeout").await;
                panic!("timed out waiting for {what} (last value {value})");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Runs `script` as a function body in the page and returns its value.
    pub async fn eval(&self, script: &str) -> Value {
        self.client.execute(script, Vec::new()).await.unwrap_or_else(|e| panic!("running `{script}`: {e}"))
    }

    /// How many elements match `css`.
    pub async fn count(&self, css: &str) -> usize {
        let script = format!("return document.querySelectorAll({}).length;", json!(css));
        self.eval(&script).await.as_u64().unwrap_or(0) as usize
    }

    /// Presses `key` as the keyboard would: sent to the window, not to an element that a
    /// re-render may have replaced.
    pub async fn press(&self, key: Key) {
        let actions = KeyActions::new("keyboard".into())
            .then(KeyAction::Down { value: key.into() })
            .then(KeyAction::Up { value: key.into() });
        self.client.perform_actions(actions).await.unwrap_or_else(|e| panic!("pressing {key:?}: {e}"));
    }

    /// The page's path and query.
    pub async fn location(&self) -> String {
        self.eval("return location.pathname + location.search;").await.as_str().unwrap_or_default().to_owned()
    }

    /// Saves a PNG of the viewport as `target/browser-screenshots/{name}.png`.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let path = self.shots.join(format!("{name}.png"));
        match self.client.screenshot().await {
            Ok(png) => {
                let _ = std::fs::write(&path, png);
            }
            Err(err) => eprintln!("screenshot {name}: {err}"),
        }
        path
    }

    /// The console's errors (and uncaught exceptions) since the last call; reading empties the log.
    pub async fn console_errors(&self) -> Vec<String> {
        let entries = self.client.issue_cmd(BrowserLog).await.unwrap_or(Value::Null);
        entries
            .as_array()
            .into_iter()
            .flatten()
            .filter(|entry| entry["level"] == "SEVERE")
            .map(|entry| entry["message"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// Fails the test when the console logged an error since the last check.
    pub async fn assert_no_console_errors(&self, page: &str) {
        let errors = self.console_errors().await;
        assert!(errors.is_empty(), "the console logged errors on {page}: {errors:#?}");
    }
}

impl Browser {
    /// Ends the session (Chromium exits) and stops the driver.
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}

/// A port nobody listens on now.
fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// ChromeDriver's browser log (`POST /session/{id}/se/log`), which W3C WebDriver lacks.
#[derive(Debug)]
struct BrowserLog;

impl WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(&self, base: &url::Url, session: Option<&str>) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/se/log", session.unwrap_or_default()))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(r#"{"type":"browser"}"#.to_owned()))
    }
}
