//! Planning an import: index the source's files, read the dataset YAML, resolve each split to
//! its images the way Ultralytics does, and cut the work into chunks.
//!
//! Runs as the job's first task, and in more tasks when indexing a large tar needs more than one
//! pass ([`indexing`]). The file list lives in MongoDB (`import_members`), never in memory, and
//! chunks are written and enqueued as soon as each is full ([`chunking`]), so processing starts
//! while planning goes on. Everything is deterministic and keyed by the job: a retried pass
//! (after a crash or a duplicate delivery) redoes the same work and creates nothing twice.

mod chunking;
mod early;
mod indexing;

use mongodb::bson::{doc, DateTime};

use crate::backends::Backends;
use crate::coordinator;
use crate::jobs::{self, FileError};
use crate::storage::StorageError;
use crate::tasks::TaskBody;

use indexing::Indexing;

/// Why planning stopped.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// The source can never be imported (bad URL, not an archive, no YAML...): the job fails.
    #[error("{}", .0.message)]
    Permanent(FileError),
    /// Infrastructure trouble: the task is retried.
    #[error("{0}")]
    Transient(String),
}

impl PlanError {
    fn permanent(file: &str, code: &str, message: impl Into<String>) -> Self {
        PlanError::Permanent(FileError { file: file.to_owned(), code: code.to_owned(), message: message.into() })
    }
}

impl From<StorageError> for PlanError {
    fn from(err: StorageError) -> Self {
        PlanError::Transient(err.to_string())
    }
}

impl From<crate::db::DbError> for PlanError {
    fn from(err: crate::db::DbError) -> Self {
        PlanError::Transient(err.to_string())
    }
}

impl From<mongodb::error::Error> for PlanError {
    fn from(err: mongodb::error::Error) -> Self {
        PlanError::Transient(err.to_string())
    }
}

impl From<crate::queue::QueueError> for PlanError {
    fn from(err: crate::queue::QueueError) -> Self {
        PlanError::Transient(err.to_string())
    }
}

/// Plans `job_id` as a task delivery does: a permanent failure, or a transient one on the
/// queue's last attempt, ends the job as failed (recorded, not retried). Returns the cause of
/// a transient failure that a retry may fix.
pub async fn plan_or_fail(backends: &Backends, job_id: &str, last_attempt: bool) -> Result<(), String> {
    let failure = match plan(backends, job_id).await {
        Ok(()) => return Ok(()),
        Err(PlanError::Permanent(error)) => error,
        Err(PlanError::Transient(cause)) if last_attempt => FileError {
            file: String::new(),
            code: "planning_failed".into(),
            message: format!("the source could not be read after every attempt: {cause}"),
        },
        Err(PlanError::Transient(cause)) => return Err(cause),
    };
    tracing::warn!(job_id, code = %failure.code, message = %failure.message, "import failed");
    let job = jobs::find(&backends.db, job_id).await.map_err(|e| e.to_string())?;
    if let Some(job) = job {
        jobs::fail(&backends.db, &job, failure).await.map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Runs the next planning step of `job_id`. A job that is already planned or finished is only
/// checked for completion.
pub async fn plan(backends: &Backends, job_id: &str) -> Result<(), PlanError> {
    let Some(mut job) = jobs::find(&backends.db, job_id).await? else {
        tracing::warn!(job_id, "planning task for an unknown job; dropped");
        return Ok(());
    };
    if job.status.is_terminal() {
        return Ok(());
    }
    if job.planned {
        coordinator::try_finalize(&backends.db, job_id).await?;
        return Ok(());
    }
    jobs::mark_running(&backends.db, job_id).await?;
    if !job.indexed && job.index_cursor.is_none() {
        // The import started the job's watchdog; the first pass makes sure of it (for a job
        // accepted by an older import-trigger). Same task name, so usually a no-op.
        let (queue, lease) = (backends.queue.as_ref(), backends.pacing.chunk_lease);
        crate::watchdog::schedule(queue, lease, job_id, 0).await?;
    }
    // The watchdog's lease on planning: a pass that started longer than a lease ago and left no
    // outcome was lost (see `crate::watchdog`).
    backends.db.jobs.update_one(doc! {"_id": job_id}, doc! {"$set": {"planning_at": DateTime::now()}}).await?;

    if !job.indexed {
        let started = std::time::Instant::now();
        match indexing::index_sources(backends, &job).await? {
            Indexing::Paused(cursor) => {
                // Record the cursor first: the next pass must find it whichever task runs it.
                let cursor_bson = mongodb::bson::to_bson(&cursor).expect("cursor serializes");
                backends
                    .db
                    .jobs
                    .update_one(
                        doc! {"_id": job_id},
                        doc! {"$set": {"index_cursor": cursor_bson, "updated_at": DateTime::now()}},
                    )
                    .await?;
                backends
                    .queue
                    .enqueue(
                        &TaskBody::ContinuePlan { job_id: job_id.to_owned(), pass: cursor.pass, redelivery: 0 }.task(),
                    )
                    .await?;
                return Ok(());
            }
            Indexing::Done(early) => {
                tracing::info!(job_id, elapsed_ms = started.elapsed().as_millis() as u64, "sources indexed");
                let early_bson = mongodb::bson::to_bson(&early).expect("early chunks serialize");
                backends
                    .db
                    .jobs
                    .update_one(
                        doc! {"_id": job_id},
                        doc! {"$set": {"indexed": true, "early": early_bson, "updated_at": DateTime::now()}},
                    )
                    .await?;
                job.early = early;
            }
        }
    }
    let started = std::time::Instant::now();
    chunking::plan_chunks(backends, &job).await?;
    tracing::info!(job_id, elapsed_ms = started.elapsed().as_millis() as u64, "chunks planned");
    coordinator::try_finalize(&backends.db, job_id).await?;
    Ok(())
}
