//! Planning an import: index the source's files, read the dataset YAML, resolve each split to
//! its images the way Ultralytics does, and cut the work into chunks.
//!
//! Runs as the job's first task, and in more tasks when indexing a large tar needs more than one
//! pass (`indexing`). The file list lives in MongoDB (`import_members`), never in memory, and
//! chunks are written and enqueued as soon as each is full (`chunking`), so processing starts
//! while planning goes on. Everything is deterministic and keyed by the job: a retried pass
//! (after a crash or a duplicate delivery) redoes the same work and creates nothing twice.

mod chunking;
mod cutter;
mod early;
mod indexing;

use yds_store::Finding;

use crate::coordinator;
use crate::error::ImportError;
use crate::importer::Importer;
use crate::tasks::TaskBody;
use crate::watchdog;

use indexing::Indexing;

/// Plans `job_id` as a task delivery does: a permanent failure, or a transient one on the
/// queue's last attempt, ends the job as failed (recorded, not retried). Returns a transient
/// failure that a retry may fix.
pub async fn plan_or_fail(importer: &Importer, job_id: &str, last_attempt: bool) -> Result<(), ImportError> {
    let failure = match plan(importer, job_id).await {
        Ok(()) => return Ok(()),
        Err(err) if err.is_retryable() && !last_attempt => return Err(err),
        Err(ImportError::Permanent(error)) => error,
        Err(err) => {
            let message = format!("the source could not be read after every attempt: {err}");
            Finding::new("", "planning_failed", message)
        }
    };
    tracing::warn!(job_id, code = %failure.code, message = %failure.message, "import failed");
    if let Some(job) = importer.db.jobs.find(job_id).await? {
        coordinator::fail_job(importer, &job, &failure).await?;
    }
    Ok(())
}

/// Runs the next planning step of `job_id`. A job that is already planned or finished is only
/// checked for completion.
pub async fn plan(importer: &Importer, job_id: &str) -> Result<(), ImportError> {
    let db = &importer.db;
    let Some(mut job) = db.jobs.find(job_id).await? else {
        tracing::warn!(job_id, "planning task for an unknown job; dropped");
        return Ok(());
    };
    if job.status.is_terminal() {
        return Ok(());
    }
    if job.planned {
        return coordinator::try_finalize(importer, job_id).await;
    }
    db.jobs.mark_running(job_id).await?;
    if !job.indexed && job.index_cursor.is_none() {
        // The import started the job's watchdog; the first pass makes sure of it (for a job
        // accepted by an older import-trigger). Same task name, so usually a no-op.
        watchdog::schedule(importer.queue.as_ref(), importer.pacing.chunk_lease, job_id, 0).await?;
    }
    // The watchdog's lease on planning: a pass that started longer than a lease ago and left no
    // outcome was lost (see `crate::watchdog`).
    db.jobs.mark_planning_started(job_id).await?;

    if !job.indexed {
        let started = std::time::Instant::now();
        match indexing::index_sources(importer, &job).await? {
            Indexing::Paused(cursor) => {
                // Record the cursor first: the next pass must find it whichever task runs it.
                db.jobs.save_index_cursor(job_id, &cursor).await?;
                let next = TaskBody::ContinuePlan { job_id: job_id.to_owned(), pass: cursor.pass, resend: 0 };
                importer.queue.enqueue(&next.task()).await?;
                return Ok(());
            }
            Indexing::Done(early) => {
                tracing::info!(job_id, elapsed_ms = started.elapsed().as_millis() as u64, "sources indexed");
                db.jobs.mark_indexed(job_id, early.as_ref()).await?;
                job.early = early;
            }
        }
    }
    let started = std::time::Instant::now();
    chunking::plan_chunks(importer, &job).await?;
    tracing::info!(job_id, elapsed_ms = started.elapsed().as_millis() as u64, "chunks planned");
    coordinator::try_finalize(importer, job_id).await
}
