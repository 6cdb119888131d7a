//! The durable local queue: one JSON file per task in a directory, drained by a [`Dispatcher`]
//! that delivers tasks to process-chunk the way Cloud Tasks does.
//!
//! A task file stays on disk until its delivery succeeds or its attempts run out (then it moves
//! to `dead/`), so a restart of the stack resumes every unfinished import. Delivery is an HTTP
//! POST with Cloud Tasks' headers, retried with exponential backoff, with bounded concurrency;
//! `YDS_CHAOS_DUPLICATE` makes it deliver a task twice at once, as Cloud Tasks may.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use backon::{BackoffBuilder, ExponentialBuilder};
use serde::{Deserialize, Serialize};

use super::caller::LOCAL_TOKEN_HEADER;
use super::{headers, QueueError, Task, TaskQueue};

/// A task as stored on disk, its body as the enqueuer wrote it: the dispatcher posts it as it
/// is, never parsing it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredTask {
    name: String,
    body: RawBody,
    /// Deliveries that already failed.
    failures: u32,
    /// Not to be delivered before this time (ms since the epoch).
    not_before_ms: u64,
    /// Posted as the `traceparent` header, as Cloud Tasks sends a task's headers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    traceparent: Option<String>,
}

/// The enqueue side, used by the functions.
#[derive(Debug, Clone)]
pub struct LocalQueue {
    dir: PathBuf,
}

impl LocalQueue {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    fn pending_dir(&self) -> PathBuf {
        self.dir.join("pending")
    }

    /// Task names currently waiting (for tests and the demo's bookkeeping).
    pub fn pending_names(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.pending_dir())
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().into_string().ok())
            .filter_map(|n| n.strip_suffix(".json").map(str::to_owned))
            .collect();
        names.sort();
        names
    }

    /// Takes every due task off the queue, without HTTP: for tests and tools that deliver tasks
    /// in-process instead of through the dispatcher.
    pub fn drain(&self) -> Vec<Task> {
        let mut tasks = Vec::new();
        let now = now_ms();
        for name in self.pending_names() {
            let path = self.pending_dir().join(format!("{name}.json"));
            match read_task(&path) {
                Some(task) if task.not_before_ms > now => continue,
                Some(task) => tasks.push(Task { name: task.name, body: task.body, traceparent: task.traceparent }),
                None => {}
            }
            let _ = std::fs::remove_file(&path);
        }
        tasks
    }
}

#[async_trait]
impl TaskQueue for LocalQueue {
    async fn enqueue_after(&self, task: &Task, delay: Duration) -> Result<(), QueueError> {
        let not_before_ms = if delay.is_zero() { 0 } else { now_ms() + delay.as_millis() as u64 };
        let task = StoredTask {
            name: task.name.clone(),
            body: task.body.clone(),
            failures: 0,
            not_before_ms,
            traceparent: task.traceparent.clone(),
        };
        let dir = self.pending_dir();
        tokio::task::spawn_blocking(move || write_new(&dir, &task))
            .await
            .map_err(|e| QueueError::Unavailable(e.to_string()))?
            .map_err(|e| QueueError::Unavailable(e.to_string()))
    }
}

/// Writes the task unless one of that name is pending (Cloud Tasks' name deduplication).
fn write_new(dir: &Path, task: &StoredTask) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(format!("{}.json", task.name));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    // Serialized in memory first: `to_writer` on a file is one write call per JSON token.
    std::io::Write::write_all(&mut tmp, &serde_json::to_vec(task)?)?;
    tmp.as_file().sync_all()?;
    match tmp.persist_noclobber(&path) {
        Ok(_) => Ok(()),
        Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e.error),
    }
}

/// Replaces a task's file (to record a failure).
fn write_over(dir: &Path, task: &StoredTask) -> std::io::Result<()> {
    let path = dir.join(format!("{}.json", task.name));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    std::io::Write::write_all(&mut tmp, &serde_json::to_vec(task)?)?;
    tmp.persist(&path).map_err(|e| e.error)?;
    Ok(())
}

/// A task body as the enqueuer wrote it.
type RawBody = Box<serde_json::value::RawValue>;

fn read_task(path: &Path) -> Option<StoredTask> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// How the dispatcher delivers.
#[derive(Debug, Clone)]
pub struct DispatcherOptions {
    /// process-chunk's URL.
    pub target: String,
    pub queue_name: String,
    pub max_attempts: u32,
    pub max_concurrent: usize,
    pub min_backoff: Duration,
    pub max_backoff: Duration,
    /// The dispatch deadline of one delivery.
    pub deadline: Duration,
    /// Probability of delivering a task a second time, concurrently.
    pub chaos_duplicate: f64,
    /// The stack's secret, sent as [`LOCAL_TOKEN_HEADER`] so process-chunk knows the caller.
    pub token: Option<String>,
}

impl DispatcherOptions {
    pub fn new(target: impl Into<String>) -> Self {
        Self {
            target: target.into(),
            queue_name: "projects/local/locations/local/queues/yds-import".into(),
            max_attempts: 8,
            max_concurrent: 4,
            min_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(10),
            deadline: Duration::from_secs(30 * 60),
            chaos_duplicate: 0.0,
            token: None,
        }
    }
}

/// The delivery side, run by the local stack.
pub struct Dispatcher {
    queue: LocalQueue,
    options: DispatcherOptions,
    client: reqwest::Client,
    in_flight: Arc<Mutex<HashSet<String>>>,
    /// Tasks seen waiting for a later time, with that time: not read again before it.
    delayed: Mutex<HashMap<String, u64>>,
}

impl Dispatcher {
    pub fn new(queue: LocalQueue, options: DispatcherOptions) -> Self {
        let client = reqwest::Client::builder().timeout(options.deadline).build().expect("a plain HTTP client builds");
        Self { queue, options, client, in_flight: Arc::default(), delayed: Mutex::default() }
    }

    /// Delivers tasks until `shutdown` resolves; tasks in flight then are left on disk and
    /// delivered again after a restart (at-least-once).
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) {
        let this = Arc::new(self);
        let permits = Arc::new(tokio::sync::Semaphore::new(this.options.max_concurrent));
        // A finished delivery wakes the loop at once: waiting for the next poll would leave its
        // slot idle for half a poll on average, a sixth of a short chunk's time.
        let slot_freed = Arc::new(tokio::sync::Notify::new());
        tokio::pin!(shutdown);
        loop {
            let free = permits.available_permits();
            for task in if free > 0 { this.due_tasks(free) } else { Vec::new() } {
                let Ok(permit) = permits.clone().try_acquire_owned() else { break };
                this.in_flight.lock().expect("not poisoned").insert(task.name.clone());
                let (worker, slot_freed) = (this.clone(), slot_freed.clone());
                tokio::spawn(async move {
                    worker.deliver(task).await;
                    drop(permit);
                    slot_freed.notify_one();
                });
            }
            tokio::select! {
                _ = &mut shutdown => return,
                _ = slot_freed.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(25)) => {}
            }
        }
    }

    /// Up to `want` due tasks, in name order (a job's chunks front to back). Only the files of
    /// tasks about to be delivered are read, so a queue of thousands of large chunk tasks costs
    /// one directory listing per poll.
    fn due_tasks(&self, want: usize) -> Vec<StoredTask> {
        let now = now_ms();
        let in_flight = self.in_flight.lock().expect("not poisoned").clone();
        let mut delayed = self.delayed.lock().expect("not poisoned");
        let mut due = Vec::new();
        for name in self.queue.pending_names() {
            if due.len() >= want {
                break;
            }
            if in_flight.contains(&name) || delayed.get(&name).is_some_and(|&at| at > now) {
                continue;
            }
            let Some(task) = read_task(&self.queue.pending_dir().join(format!("{name}.json"))) else {
                continue;
            };
            if task.not_before_ms > now {
                delayed.insert(name, task.not_before_ms);
                continue;
            }
            delayed.remove(&name);
            due.push(task);
        }
        due
    }

    async fn deliver(&self, mut task: StoredTask) {
        let duplicate = self.options.chaos_duplicate > 0.0 && rand::random::<f64>() < self.options.chaos_duplicate;
        let ok = if duplicate {
            let (a, b) = tokio::join!(self.post(&task), self.post(&task));
            a || b
        } else {
            self.post(&task).await
        };
        let dir = self.queue.pending_dir();
        let path = dir.join(format!("{}.json", task.name));
        if ok {
            let _ = std::fs::remove_file(&path);
        } else {
            task.failures += 1;
            if task.failures >= self.options.max_attempts {
                tracing::warn!(task = %task.name, "attempts exhausted; task moved to dead/");
                let dead = self.queue.dir.join("dead");
                let _ = std::fs::create_dir_all(&dead);
                let _ = std::fs::rename(&path, dead.join(format!("{}.json", task.name)));
            } else {
                task.not_before_ms = now_ms() + self.backoff(task.failures).as_millis() as u64;
                if let Err(err) = write_over(&dir, &task) {
                    tracing::error!(task = %task.name, error = %err, "could not record a failed delivery");
                }
            }
        }
        self.in_flight.lock().expect("not poisoned").remove(&task.name);
    }

    /// How long a task waits after its `failures`-th failed delivery: doubling from the
    /// minimum, capped at the maximum, as Cloud Tasks' retry config does.
    fn backoff(&self, failures: u32) -> Duration {
        let schedule = ExponentialBuilder::new()
            .with_min_delay(self.options.min_backoff)
            .with_max_delay(self.options.max_backoff)
            .without_max_times()
            .build();
        schedule.take(failures as usize + 1).last().unwrap_or(self.options.min_backoff)
    }

    /// One delivery; true on a 2xx answer.
    async fn post(&self, task: &StoredTask) -> bool {
        let mut request = self.client.post(&self.options.target);
        if let Some(token) = &self.options.token {
            request = request.header(LOCAL_TOKEN_HEADER, token);
        }
        if let Some(traceparent) = &task.traceparent {
            request = request.header(yds_config::trace::TRACEPARENT, traceparent);
        }
        let result = request
            .header(headers::TASK_NAME, &task.name)
            .header(headers::RETRY_COUNT, task.failures.to_string())
            .header(headers::EXECUTION_COUNT, task.failures.to_string())
            .header(headers::QUEUE_NAME, &self.options.queue_name)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(task.body.get().to_owned())
            .send()
            .await;
        match result {
            Ok(resp) if resp.status().is_success() => true,
            Ok(resp) => {
                tracing::info!(task = %task.name, status = resp.status().as_u16(), "delivery failed; will retry");
                false
            }
            Err(err) => {
                tracing::info!(task = %task.name, error = %err, "delivery failed; will retry");
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    #[tokio::test]
    async fn enqueue_deduplicates_by_name_and_survives_a_new_handle() {
        let dir = tempfile::tempdir().unwrap();
        let queue = LocalQueue::new(dir.path());
        let plan = Task::new("j1-plan", &json!({"kind": "plan", "job_id": "j1"}));
        queue.enqueue(&plan).await.unwrap();
        let same_name = Task::new("j1-plan", &json!({"kind": "plan", "job_id": "another"}));
        queue.enqueue(&same_name).await.unwrap();
        queue.enqueue(&Task::new("j1-chunk-0000003", &json!({"kind": "chunk"}))).await.unwrap();
        let reopened = LocalQueue::new(dir.path());
        assert_eq!(reopened.pending_names(), ["j1-chunk-0000003", "j1-plan"]);
        let tasks = reopened.drain();
        assert_eq!(tasks.len(), 2);
        assert!(tasks.contains(&plan), "the first task of a name is kept: {tasks:?}");
        assert!(reopened.pending_names().is_empty());
    }

    #[test]
    fn a_failed_task_waits_twice_as_long_each_time_up_to_the_maximum() {
        let options = DispatcherOptions {
            min_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
            ..DispatcherOptions::new("http://127.0.0.1:9/")
        };
        let dispatcher = Dispatcher::new(LocalQueue::new("/nonexistent"), options);
        let waits: Vec<u128> = (1..=6).map(|failures| dispatcher.backoff(failures).as_millis()).collect();
        assert_eq!(waits, [200, 400, 800, 1000, 1000, 1000]);
    }

    /// A loopback task target that fails the first `failures` deliveries of each task and
    /// records every delivery's task name (with ` traceparent=…` when it came with one), retry
    /// count and body.
    async fn target(failures: u32) -> (String, Arc<Mutex<Vec<(String, u32, Value)>>>) {
        use http_body_util::{BodyExt, Full};
        use hyper::body::Incoming;
        let seen: Arc<Mutex<Vec<(String, u32, Value)>>> = Arc::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/tasks", listener.local_addr().unwrap());
        let log = seen.clone();
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let log = log.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req: http::Request<Incoming>| {
                        let log = log.clone();
                        async move {
                            let header = |n: &str| req.headers()[n].to_str().unwrap().to_owned();
                            let (mut name, retries): (String, u32) =
                                (header(headers::TASK_NAME), header(headers::RETRY_COUNT).parse().unwrap());
                            if let Some(trace) = req.headers().get("traceparent") {
                                name = format!("{name} traceparent={}", trace.to_str().unwrap());
                            }
                            assert_eq!(header("content-type"), "application/json");
                            let bytes = req.into_body().collect().await.unwrap().to_bytes();
                            let body: Value = serde_json::from_slice(&bytes).unwrap();
                            log.lock().unwrap().push((name, retries, body));
                            let status = if retries < failures { 500 } else { 200 };
                            Ok::<_, std::convert::Infallible>(
                                http::Response::builder().status(status).body(Full::new(bytes::Bytes::new())).unwrap(),
                            )
                        }
                    });
                    let io = hyper_util::rt::TokioIo::new(stream);
                    let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, service).await;
                });
            }
        });
        (url, seen)
    }

    async fn run_until_empty(queue: &LocalQueue, options: DispatcherOptions) {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(Dispatcher::new(queue.clone(), options).run(async {
            let _ = stopped.await;
        }));
        for _ in 0..400 {
            if queue.pending_names().is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let _ = stop.send(());
        task.await.unwrap();
    }

    fn fast(target: String) -> DispatcherOptions {
        DispatcherOptions {
            min_backoff: Duration::from_millis(5),
            max_backoff: Duration::from_millis(20),
            ..DispatcherOptions::new(target)
        }
    }

    #[tokio::test]
    async fn a_task_is_delivered_with_the_traceparent_it_was_enqueued_under() {
        let dir = tempfile::tempdir().unwrap();
        let queue = LocalQueue::new(dir.path());
        let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let trace = crate::trace::TraceContext::from_traceparent(traceparent);
        let traced = crate::trace::scope(trace, async { Task::new("traced", &json!({"n": 1})) }).await;
        queue.enqueue(&traced).await.unwrap();
        queue.enqueue(&Task::new("plain", &json!({"n": 2}))).await.unwrap();
        let (url, seen) = target(1).await;
        run_until_empty(&queue, fast(url)).await;
        let mut names: Vec<_> =
            seen.lock().unwrap().iter().map(|(name, retries, _)| (name.clone(), *retries)).collect();
        names.sort();
        let traced = format!("traced traceparent={traceparent}");
        assert_eq!(names, [("plain".into(), 0), ("plain".into(), 1), (traced.clone(), 0), (traced, 1)]);
    }

    #[tokio::test]
    async fn failed_deliveries_are_retried_with_growing_retry_counts_and_the_same_body() {
        let dir = tempfile::tempdir().unwrap();
        let queue = LocalQueue::new(dir.path());
        let body = json!({"kind": "chunk", "files": [{"file_name": "a \"quoted\" é.jpg", "size": 12}]});
        let chunk = Task::new("j-chunk-0000007", &body);
        queue.enqueue(&chunk).await.unwrap();
        let (url, seen) = target(2).await;
        run_until_empty(&queue, fast(url)).await;
        let seen = seen.lock().unwrap().clone();
        let name = chunk.name.clone();
        let expected: Vec<_> = (0..3).map(|retries| (name.clone(), retries, body.clone())).collect();
        // The body is posted as stored, also after each failure rewrote the task's file.
        assert_eq!(seen, expected);
        assert!(!dir.path().join(format!("dead/{name}.json")).exists());
    }

    #[tokio::test]
    async fn exhausted_tasks_move_to_dead_letters() {
        let dir = tempfile::tempdir().unwrap();
        let queue = LocalQueue::new(dir.path());
        queue.enqueue(&Task::new("j-plan", &json!({"kind": "plan"}))).await.unwrap();
        let (url, seen) = target(u32::MAX).await;
        run_until_empty(&queue, DispatcherOptions { max_attempts: 3, ..fast(url) }).await;
        assert_eq!(seen.lock().unwrap().len(), 3);
        assert!(dir.path().join("dead/j-plan.json").exists());
        assert!(queue.pending_names().is_empty());
    }

    #[tokio::test]
    async fn chaos_duplicate_delivers_twice() {
        let dir = tempfile::tempdir().unwrap();
        let queue = LocalQueue::new(dir.path());
        queue.enqueue(&Task::new("j-plan", &json!({"kind": "plan"}))).await.unwrap();
        let (url, seen) = target(0).await;
        run_until_empty(&queue, DispatcherOptions { chaos_duplicate: 1.0, ..fast(url) }).await;
        assert_eq!(seen.lock().unwrap().len(), 2);
    }
}
