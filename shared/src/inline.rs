//! Runs the local queue's tasks in this process, without HTTP: for handler tests and tools
//! that want an import's effects without the stack. Production never uses it.

use crate::backends::Backends;
use crate::ingest::{self, Delivery};
use crate::planning;
use crate::queue::LocalQueue;
use crate::tasks::TaskBody;

/// Delivers every queued task (and the tasks they enqueue) until the queue is empty.
/// Returns how many deliveries were made.
pub async fn drain(backends: &Backends, queue: &LocalQueue) -> Result<usize, String> {
    let mut delivered = 0;
    loop {
        let tasks = take(queue);
        if tasks.is_empty() {
            return Ok(delivered);
        }
        for task in tasks {
            deliver(backends, &task, Delivery::default()).await?;
            delivered += 1;
        }
    }
}

/// Takes every due task off the queue, as the import's task bodies.
pub fn take(queue: &LocalQueue) -> Vec<TaskBody> {
    let parse = |task: yds_queue::Task| serde_json::from_str(task.json()).expect("the import wrote the task");
    queue.drain().into_iter().map(parse).collect()
}

/// Delivers one task as process-chunk would.
pub async fn deliver(backends: &Backends, task: &TaskBody, delivery: Delivery) -> Result<(), String> {
    match task {
        TaskBody::Plan { job_id } | TaskBody::ContinuePlan { job_id, .. } => {
            planning::plan_or_fail(backends, job_id, false).await
        }
        TaskBody::Chunk { job_id, index, files, .. } => {
            ingest::process_chunk(backends, job_id, *index, files, delivery).await.map_err(|e| e.to_string())
        }
        TaskBody::Watch { job_id, round } => {
            crate::watchdog::watch(backends, job_id, *round).await.map_err(|e| e.to_string())
        }
    }
}

/// For tests: local backends under `dir` on a fresh database of the MongoDB that
/// `cargo xtask test` started (`YDS_TEST_MONGODB_URI`), with its indexes.
pub async fn test_backends(dir: &std::path::Path) -> (Backends, LocalQueue) {
    let uri = std::env::var("YDS_TEST_MONGODB_URI")
        .expect("YDS_TEST_MONGODB_URI is unset: run the tests with `cargo xtask test`");
    let name = format!("t_{}", uuid::Uuid::new_v4().simple());
    let db = crate::db::Db::connect(&uri, &name).await.expect("MongoDB URI parses");
    db.ensure_indexes().await.expect("indexes are created");
    Backends::local(db, dir, crate::config::UrlPolicy::Local)
}
