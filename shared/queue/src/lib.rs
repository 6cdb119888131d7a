#![doc = include_str!("../../README.md")]
//!
//! # This crate
//!
//! `yds-queue`: task delivery behind one trait — Cloud Tasks in production, a durable directory
//! locally. An adapter layer: a task is a name and a JSON body the queue carries without
//! reading it; what a task means is the import's business.
//!
//! Delivery is at least once, in any order, possibly concurrently twice. Enqueueing a task whose
//! name was already enqueued is a no-op (as Cloud Tasks deduplicates named tasks), which lets a
//! retried planner re-enqueue its chunks safely. Handlers must be idempotent.
//!
//! ## Layout
//!
//! - [`Task`] and [`TaskQueue`], the trait, with its two backends: [`local`] (a directory, and
//!   the [`local::Dispatcher`] that delivers its tasks over HTTP as Cloud Tasks does) and
//!   [`cloud_tasks`] (one `CreateTask` call per enqueue).
//! - [`headers`]: what each delivery carries, and the attempt it is.
//! - [`caller`]: who may deliver tasks to process-chunk.
//! - [`trace`]: the trace context a task carries to its delivery, so one trace spans a request
//!   and every task it fans out to.
//! - [`open`]: the queue a configuration names.

#![forbid(unsafe_code)]

pub mod caller;
pub mod cloud_tasks;
pub mod local;
pub mod trace;

use std::sync::Arc;

use async_trait::async_trait;
use serde::Serialize;
use serde_json::value::RawValue;

pub use local::LocalQueue;

/// One message for process-chunk: a name, unique per piece of work (a re-enqueue of the same
/// work under the same name is deduplicated), and a JSON body.
#[derive(Debug, Clone)]
pub struct Task {
    pub name: String,
    pub body: Box<RawValue>,
    /// The W3C `traceparent` its delivery carries as a header: the trace of the work that
    /// enqueued it ([`trace::current`]), `None` outside any.
    pub traceparent: Option<String>,
}

impl Task {
    /// The task `name` carrying `body` as JSON, under the current trace ([`trace::scope`]).
    pub fn new(name: impl Into<String>, body: &impl Serialize) -> Self {
        let body = serde_json::value::to_raw_value(body).expect("task bodies serialize to JSON");
        Self { name: name.into(), body, traceparent: trace::current().map(|ctx| ctx.traceparent()) }
    }

    /// The body's JSON text.
    pub fn json(&self) -> &str {
        self.body.get()
    }
}

impl PartialEq for Task {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.json() == other.json()
    }
}

/// Headers Cloud Tasks sets on each delivery; the local dispatcher sets the same ones.
pub mod headers {
    use http::HeaderMap;

    pub const TASK_NAME: &str = "x-cloudtasks-taskname";
    pub const RETRY_COUNT: &str = "x-cloudtasks-taskretrycount";
    pub const EXECUTION_COUNT: &str = "x-cloudtasks-taskexecutioncount";
    pub const QUEUE_NAME: &str = "x-cloudtasks-queuename";

    /// How many earlier attempts of this task failed (0 on its first delivery).
    pub fn retry_count(headers: &HeaderMap) -> u32 {
        headers.get(RETRY_COUNT).and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok()).unwrap_or(0)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("task queue unavailable: {0}")]
    Unavailable(String),
}

#[async_trait]
pub trait TaskQueue: Send + Sync + 'static {
    /// Enqueues `task` under its name, to be delivered no sooner than `delay` from now; an
    /// existing task of that name is kept.
    async fn enqueue_after(&self, task: &Task, delay: std::time::Duration) -> Result<(), QueueError>;

    /// Enqueues `task` for delivery as soon as possible.
    async fn enqueue(&self, task: &Task) -> Result<(), QueueError> {
        self.enqueue_after(task, std::time::Duration::ZERO).await
    }
}

/// The queue `config` names.
pub async fn open(config: &yds_config::QueueConfig) -> Result<Arc<dyn TaskQueue>, QueueError> {
    use yds_config::QueueConfig;
    Ok(match config {
        QueueConfig::Local { dir } => Arc::new(LocalQueue::new(dir.clone())),
        QueueConfig::CloudTasks { queue, target_url, service_account } => {
            let tasks = cloud_tasks::CloudTasksConfig::new(queue.clone(), target_url.clone(), service_account.clone());
            Arc::new(cloud_tasks::CloudTasksQueue::new(tasks).await?)
        }
    })
}
