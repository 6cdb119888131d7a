//! Task delivery behind one trait: Cloud Tasks in production, a durable directory locally.
//!
//! Delivery is at least once, in any order, possibly concurrently twice. Enqueueing a task whose
//! name was already enqueued is a no-op (as Cloud Tasks deduplicates named tasks), which lets a
//! retried planner re-enqueue its chunks safely. Handlers must be idempotent.

pub mod cloud_tasks;
pub mod local;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::coordinator::ChunkFile;

pub use local::LocalQueue;

/// What process-chunk is asked to do. The JSON body of every task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TaskBody {
    /// Read the job's source, stage its files and enqueue its chunks.
    Plan { job_id: String },
    /// Import one chunk of files. The list also lives in the chunk's record; an empty list
    /// means "read it from there" (chunks too large for one task).
    Chunk { job_id: String, index: u32, files: Vec<ChunkFile> },
}

impl TaskBody {
    /// A deterministic name, so a re-enqueue of the same work is deduplicated.
    pub fn task_name(&self) -> String {
        match self {
            TaskBody::Plan { job_id } => format!("{job_id}-plan"),
            TaskBody::Chunk { job_id, index, .. } => format!("{job_id}-chunk-{index:07}"),
        }
    }
}

/// Headers Cloud Tasks sets on each delivery; the local dispatcher sets the same ones.
pub mod headers {
    pub const TASK_NAME: &str = "x-cloudtasks-taskname";
    pub const RETRY_COUNT: &str = "x-cloudtasks-taskretrycount";
    pub const EXECUTION_COUNT: &str = "x-cloudtasks-taskexecutioncount";
    pub const QUEUE_NAME: &str = "x-cloudtasks-queuename";
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("task queue unavailable: {0}")]
    Unavailable(String),
}

#[async_trait]
pub trait TaskQueue: Send + Sync + 'static {
    /// Enqueues `body` under its deterministic name; an existing task of that name is kept.
    async fn enqueue(&self, body: &TaskBody) -> Result<(), QueueError>;
}
