//! The import run in-process, for tests: an [`Importer`] on local storage and a fresh database,
//! and the queue's tasks delivered by calling [`yds_import::deliver`] — the same entry
//! process-chunk uses — instead of over HTTP. Only with the `import` feature.

use std::path::Path;

use yds_import::accept::{Accepted, Acceptor};
use yds_import::{Attempt, ImportError, Importer, TaskBody};
use yds_queue::LocalQueue;

pub use crate::db::{count, inspect, of_job, test_db};

/// An importer on a fresh database, with storage, queue and scratch under `dir` (local URL
/// policy), and its queue.
pub async fn test_importer(dir: &Path) -> (Importer, LocalQueue) {
    Importer::local(test_db().await, dir, yds_config::UrlPolicy::Local)
}

/// Starts the import `body` asks for, as tenant `default`, with 10 files a chunk unless the
/// body says otherwise.
pub async fn start(importer: &Importer, body: &serde_json::Value) -> Accepted {
    let acceptor = Acceptor::new(importer.clone(), 10);
    acceptor.start("default", None, body.to_string().as_bytes()).await.expect("the import is accepted")
}

/// Takes every due task off the queue, as the import's task bodies.
pub fn take(queue: &LocalQueue) -> Vec<TaskBody> {
    let parse = |task: yds_queue::Task| serde_json::from_str(task.json()).expect("the import wrote the task");
    queue.drain().into_iter().map(parse).collect()
}

/// Delivers every queued task (and the tasks they enqueue) until the queue is empty, each as a
/// first attempt. Returns how many deliveries were made.
pub async fn drain(importer: &Importer, queue: &LocalQueue) -> Result<usize, ImportError> {
    let mut delivered = 0;
    loop {
        let tasks = take(queue);
        if tasks.is_empty() {
            return Ok(delivered);
        }
        for task in tasks {
            yds_import::deliver(importer, &task, Attempt::default()).await?;
            delivered += 1;
        }
    }
}
