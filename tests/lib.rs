//! Helpers shared by the end-to-end tests: a whole local stack on a real `mongod` (the one
//! `cargo xtask test` starts), spoken to over real HTTP as a user would.

use std::path::Path;
use std::time::{Duration, Instant};

use local_stack::stack::{Stack, StackOptions};
use serde_json::Value;
pub use testkit::{bin_dir, mongodb_uri, real_datasets, tools_dir};

/// The `yds` command-line client run as a subprocess, and a proxy that drops an upload.
pub mod cli;

/// A test's folder for a stack's data and logs, kept after the test with `YDS_TEST_KEEP_DIRS`.
fn test_dir() -> tempfile::TempDir {
    let mut dir = tempfile::tempdir().expect("temp dir");
    if std::env::var_os("YDS_TEST_KEEP_DIRS").is_some() {
        dir.disable_cleanup(true);
        eprintln!("stack data and logs kept in {}", dir.path().display());
    }
    dir
}

pub const KEY: &str = "test-key";
pub const OTHER_KEY: &str = "other-key";

pub struct TestStack {
    pub stack: Stack,
    pub client: reqwest::Client,
    pub dir: tempfile::TempDir,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Chaos {
    pub duplicate: f64,
    pub crash: f64,
    /// Probability that a storage call fails.
    pub storage: f64,
}

impl TestStack {
    pub async fn start(chaos: Chaos) -> TestStack {
        Self::start_with(chaos, "local", Vec::new()).await
    }

    /// A stack under a given URL policy: `strict` is production's (no loopback, no `file://`).
    pub async fn start_with_policy(chaos: Chaos, url_policy: &str) -> TestStack {
        Self::start_with(chaos, url_policy, Vec::new()).await
    }

    /// [`TestStack::start`] with more environment for the five functions.
    pub async fn start_with_env(chaos: Chaos, extra_env: Vec<(String, String)>) -> TestStack {
        Self::start_with(chaos, "local", extra_env).await
    }

    /// A stack with its own `mongod` (data under the stack's folder), for faults that kill it.
    pub async fn start_with_own_mongod(chaos: Chaos) -> TestStack {
        Self::start_with_own_mongod_in(test_dir(), chaos).await
    }

    /// [`TestStack::start_with_own_mongod`] on the data already in `dir`: a stack that ran
    /// there before (and may have died there) comes back, as `serve` run again would.
    pub async fn start_with_own_mongod_in(dir: tempfile::TempDir, chaos: Chaos) -> TestStack {
        let stack = Stack::start(Self::own_mongod_options(dir.path(), chaos)).await.expect("the local stack starts");
        TestStack { stack, client: reqwest::Client::new(), dir }
    }

    /// The options of a stack with its own `mongod`, its data under `dir`.
    pub fn own_mongod_options(dir: &Path, chaos: Chaos) -> StackOptions {
        let mut options = Self::options(dir, chaos);
        options.mongodb_uri = None;
        options
    }

    /// A stack under a given URL policy with more environment for the functions.
    pub async fn start_with(chaos: Chaos, url_policy: &str, extra_env: Vec<(String, String)>) -> TestStack {
        let dir = test_dir();
        let mut options = Self::options(dir.path(), chaos);
        options.url_policy = url_policy.to_owned();
        options.extra_env = extra_env;
        let stack = Stack::start(options).await.expect("the local stack starts");
        TestStack { stack, client: reqwest::Client::new(), dir }
    }

    /// The stack of a test: its data under `dir`, its own database on the shared mongod.
    fn options(dir: &Path, chaos: Chaos) -> StackOptions {
        let mut options = StackOptions::new(dir.join("data"), bin_dir(), tools_dir());
        options.mongodb_uri = Some(mongodb_uri());
        options.db_name = format!("e2e_{}", dir.file_name().unwrap().to_string_lossy().replace('.', "_"));
        options.api_keys = format!("{KEY}:acme,{OTHER_KEY}:globex");
        options.chaos_duplicate = chaos.duplicate;
        options.chaos_crash = chaos.crash;
        options.chaos_storage = chaos.storage;
        options.task_max_attempts = 20;
        options
    }

    /// Stops every process of the stack and starts it again on the same data, queue and
    /// database, as `serve` run again would.
    pub async fn restart(self, chaos: Chaos) -> TestStack {
        let TestStack { stack, client, dir } = self;
        stack.shutdown().await;
        let stack = Stack::start(Self::options(dir.path(), chaos)).await.expect("the local stack restarts");
        TestStack { stack, client, dir }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.stack.base_url, path)
    }

    /// GET with the main tenant's key: status and JSON body.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.get_as(KEY, path).await
    }

    pub async fn get_as(&self, key: &str, path: &str) -> (u16, Value) {
        let resp = self.client.get(self.url(path)).header("x-api-key", key).send().await.expect("GET");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    pub async fn import(&self, body: &Value) -> (u16, Value) {
        let resp = self
            .client
            .post(self.url("/datasets/import"))
            .header("x-api-key", KEY)
            .json(body)
            .send()
            .await
            .expect("POST");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// Polls the job's status until it is terminal, checking that progress never goes back.
    pub async fn wait_terminal(&self, job_id: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(300);
        let mut last_done = 0;
        loop {
            let (code, status) = self.get(&format!("/datasets/import/{job_id}/status")).await;
            assert_eq!(code, 200, "status answered {status}");
            let done = status["progress"]["files_done"].as_u64().unwrap();
            assert!(done >= last_done, "files_done went back from {last_done} to {done}");
            last_done = done;
            let state = status["status"].as_str().unwrap().to_owned();
            if ["completed", "completed_with_errors", "failed"].contains(&state.as_str()) {
                assert_eq!(status["progress"]["percent"], 100.0);
                return status;
            }
            assert!(status["progress"]["percent"].as_f64().unwrap() < 100.0);
            assert!(Instant::now() < deadline, "job {job_id} did not finish: {status}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Every image of a dataset, page by page.
    pub async fn all_images(&self, dataset_id: &str, limit: usize, filter: &str) -> Vec<Value> {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut path = format!("/datasets/{dataset_id}/images?limit={limit}{filter}");
            if let Some(c) = &cursor {
                path.push_str(&format!("&cursor={c}"));
            }
            let (code, page) = self.get(&path).await;
            assert_eq!(code, 200, "{page}");
            let page_items = page["items"].as_array().unwrap();
            assert!(page_items.len() <= limit);
            items.extend(page_items.iter().cloned());
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => return items,
            }
        }
    }

    pub async fn dataset(&self, dataset_id: &str) -> Value {
        let (code, list) = self.get("/datasets?limit=1000").await;
        assert_eq!(code, 200);
        list["items"].as_array().unwrap().iter().find(|d| d["id"] == dataset_id).cloned().expect("dataset listed")
    }

    pub async fn shutdown(self) {
        self.stack.shutdown().await;
    }
}
