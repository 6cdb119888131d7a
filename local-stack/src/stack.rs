//! The whole local stack in one value: MongoDB, the eight function processes, the durable
//! queue's dispatcher and the gateway. `cargo xtask serve`, `demo` and the end-to-end tests
//! all start it through [`Stack::start`], so they run exactly the same thing.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use yds_queue::local::{Dispatcher, DispatcherOptions};
use yds_queue::LocalQueue;

use crate::{ensure_mongod, free_port, gateway, Mongod, ProcessSpec, Supervisor};

/// The function binaries, by the name the gateway routes to.
pub const FUNCTIONS: [&str; 8] =
    ["import-trigger", "uploads", "lifecycle", "list", "images", "status", "process-chunk", "web"];

#[derive(Debug, Clone)]
pub struct StackOptions {
    /// Gateway port; 0 picks a free one.
    pub port: u16,
    /// Storage, queue, logs and (when started here) MongoDB's data live below it.
    pub data_dir: PathBuf,
    /// Where the function binaries are.
    pub bin_dir: PathBuf,
    /// Where `mongod` is installed when none is given.
    pub tools_dir: PathBuf,
    /// Use this MongoDB instead of starting one.
    pub mongodb_uri: Option<String>,
    pub db_name: String,
    /// `YDS_API_KEYS` for the functions.
    pub api_keys: String,
    /// `local` or `strict`.
    pub url_policy: String,
    pub chaos_duplicate: f64,
    pub chaos_crash: f64,
    /// `YDS_CHAOS_STORAGE_FAIL` for the functions: probability that a storage call fails.
    pub chaos_storage: f64,
    /// Files per chunk when a request names none.
    pub chunk_size: Option<u32>,
    /// Deliveries of one task before the queue gives up (process-chunk records a dead letter on
    /// the last). 20 by default, more than the production queue's 8: the local stack is where
    /// fault injection (`YDS_CHAOS_CRASH`) fails attempts on purpose, and 20 attempts of the
    /// local queue (0.1 s backoff doubling to 10 s) still end within ~2.5 minutes.
    pub task_max_attempts: u32,
    /// Concurrent deliveries of the local queue.
    pub queue_concurrency: usize,
    /// More environment for the functions, after the stack's own (tests: e.g. a proxy
    /// that keeps imports of generated URLs off the network).
    pub extra_env: Vec<(String, String)>,
}

impl StackOptions {
    pub fn new(data_dir: PathBuf, bin_dir: PathBuf, tools_dir: PathBuf) -> Self {
        Self {
            port: 0,
            data_dir,
            bin_dir,
            tools_dir,
            mongodb_uri: None,
            db_name: "yds".into(),
            api_keys: String::new(),
            url_policy: "local".into(),
            chaos_duplicate: 0.0,
            chaos_crash: 0.0,
            chaos_storage: 0.0,
            chunk_size: None,
            task_max_attempts: 20,
            queue_concurrency: 4,
            extra_env: Vec::new(),
        }
    }
}

pub struct Stack {
    pub base_url: String,
    pub port: u16,
    pub mongodb_uri: String,
    mongod: Option<Mongod>,
    supervisor: Supervisor,
    stop: watch::Sender<bool>,
    background: Vec<JoinHandle<()>>,
}

impl Stack {
    /// Fault injection: kills the stack's own `mongod` (SIGKILL) and starts it again after
    /// `down_for`, on the same port and data. Fails for a stack on an external MongoDB.
    pub async fn kill_and_restart_mongod(&mut self, down_for: Duration) -> anyhow::Result<()> {
        let mongod = self.mongod.as_mut().context("this stack uses an external MongoDB")?;
        mongod.kill_and_restart(down_for).await
    }

    /// Starts every part and returns once each answers its health check.
    pub async fn start(options: StackOptions) -> anyhow::Result<Stack> {
        let data_dir = std::path::absolute(&options.data_dir)?;
        std::fs::create_dir_all(&data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
        let (mongod, mongodb_uri) = match &options.mongodb_uri {
            Some(uri) => (None, uri.clone()),
            None => {
                let install = ensure_mongod(&options.tools_dir)?;
                let db_dir = data_dir.join("mongodb");
                std::fs::create_dir_all(&db_dir)?;
                let mongod = Mongod::start(&install, &db_dir).await?;
                let uri = mongod.uri.clone();
                (Some(mongod), uri)
            }
        };

        let queue_dir = data_dir.join("queue");
        let mut env = vec![
            ("MONGODB_URI".to_owned(), mongodb_uri.clone()),
            ("YDS_DB_NAME".to_owned(), options.db_name.clone()),
            ("YDS_STORAGE_DIR".to_owned(), data_dir.join("storage").display().to_string()),
            ("YDS_QUEUE_DIR".to_owned(), queue_dir.display().to_string()),
            ("YDS_SCRATCH_DIR".to_owned(), data_dir.join("scratch").display().to_string()),
            ("YDS_API_KEYS".to_owned(), options.api_keys.clone()),
            ("YDS_URL_POLICY".to_owned(), options.url_policy.clone()),
            ("YDS_CHAOS_CRASH".to_owned(), options.chaos_crash.to_string()),
            ("YDS_CHAOS_STORAGE_FAIL".to_owned(), options.chaos_storage.to_string()),
            ("YDS_TASK_MAX_ATTEMPTS".to_owned(), options.task_max_attempts.to_string()),
            // One key for every function of this run: a cursor from `list` reads in any instance.
            ("YDS_CURSOR_SECRET".to_owned(), format!("{}", uuid::Uuid::new_v4().simple())),
            // The key of the images' signed URLs (64 hex digits), new every run like the above.
            (
                "YDS_URL_SIGNING_KEY".to_owned(),
                format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple()),
            ),
        ];
        if let Some(size) = options.chunk_size {
            env.push(("YDS_CHUNK_SIZE".to_owned(), size.to_string()));
        }
        env.extend(options.extra_env.iter().cloned());

        // Only the dispatcher and process-chunk know it: nothing else can run a task.
        let task_token = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
        let mut supervisor = Supervisor::new(data_dir.join("logs"));
        let mut upstreams = HashMap::new();
        for name in FUNCTIONS {
            let port = free_port();
            let program = options.bin_dir.join(name);
            anyhow::ensure!(program.is_file(), "function binary {} is missing; build it first", program.display());
            let mut env = env.clone();
            if name == "process-chunk" {
                env.push(("YDS_TASK_TOKEN".to_owned(), task_token.clone()));
            }
            supervisor.spawn(ProcessSpec { name: name.to_owned(), program, env, port }).await?;
            upstreams.insert(name.to_owned(), format!("http://127.0.0.1:{port}"));
        }
        for name in FUNCTIONS {
            supervisor.wait_healthy(name, Duration::from_secs(60)).await?;
        }

        let (stop, stopped) = watch::channel(false);
        let wait_stop = |mut rx: watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };

        let mut dispatch = DispatcherOptions::new(format!("{}/tasks", upstreams["process-chunk"]));
        dispatch.max_attempts = options.task_max_attempts;
        dispatch.max_concurrent = options.queue_concurrency;
        dispatch.chaos_duplicate = options.chaos_duplicate;
        dispatch.token = Some(task_token);
        let dispatcher = Dispatcher::new(LocalQueue::new(queue_dir), dispatch);
        let mut background = vec![tokio::spawn(dispatcher.run(wait_stop(stopped.clone())))];

        let listener = TcpListener::bind(("127.0.0.1", options.port))
            .await
            .with_context(|| format!("port {} is not free", options.port))?;
        let port = listener.local_addr()?.port();
        let routes = gateway::public_routes(&upstreams);
        let gateway_stop = wait_stop(stopped);
        background.push(tokio::spawn(async move {
            if let Err(err) = gateway::serve(listener, routes, gateway_stop).await {
                tracing::error!(error = %err, "gateway stopped");
            }
        }));

        Ok(Stack {
            base_url: format!("http://127.0.0.1:{port}"),
            port,
            mongodb_uri,
            mongod,
            supervisor,
            stop,
            background,
        })
    }

    /// Where each function's output goes (`<data_dir>/logs/<name>.log`, its JSON log lines),
    /// by function name.
    pub fn log_files(&self) -> Vec<(String, PathBuf)> {
        let mut files: Vec<_> = self
            .supervisor
            .pids()
            .into_iter()
            .filter_map(|(name, _)| self.supervisor.log_path(&name).map(|path| (name, path)))
            .collect();
        files.sort();
        files
    }

    /// Process ids of the functions (and mongod), for measurements.
    pub fn pids(&self) -> Vec<(String, u32)> {
        let mut pids = self.supervisor.pids();
        if let Some(m) = &self.mongod {
            pids.push(("mongod".into(), m.pid()));
        }
        pids
    }

    /// Stops the gateway and dispatcher, then the functions, then MongoDB.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        for task in self.background.drain(..) {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
        self.supervisor.shutdown().await;
        if let Some(mongod) = self.mongod.take() {
            mongod.shutdown().await;
        }
    }
}
