//! The watchdog: no job hangs in `running` because a task was lost.
//!
//! Cloud Tasks retries a failed delivery, but a task can still vanish: its attempts run out
//! while the process crashes before recording anything, or an operator purges the queue. The
//! coordinator's own records tell: a pending chunk whose delivery started longer than the lease
//! ago without an outcome, or (when the job's queue has gone quiet for a whole lease) a chunk
//! never started at all. Such a chunk is enqueued again under a fresh task name (Cloud Tasks
//! refuses a deleted task's name for hours); after [`MAX_REDELIVERIES`] it is recorded as
//! failed with its files as errors, and the job ends `completed_with_errors`.
//!
//! Planning is watched the same way: each pass records when it started (`planning_at`); a job
//! not yet planned whose latest pass (or, before any, whose creation) is older than the lease
//! gets its planning task again under a fresh name, and after [`MAX_REDELIVERIES`] it fails
//! with `planning_lost`. A planning pass is idempotent, so a redelivery that overlaps a slow
//! but live pass costs work, never correctness.
//!
//! The watchdog is itself a task: the import schedules the first round, and each round
//! schedules the next until the job ends, then one last round to clear the scratch space. Every step is a conditional update or a deduplicated
//! enqueue, so duplicate rounds are harmless.

use std::time::Duration;

use futures::TryStreamExt;
use mongodb::bson::{doc, DateTime};

use crate::backends::Backends;
use crate::coordinator::{self, ChunkDoc};
use crate::db::DbResult;
use crate::ingest;
use crate::jobs::{self, FileError, JobDoc};
use crate::queue::{QueueError, TaskQueue};
use crate::tasks::TaskBody;

/// Re-enqueues of one chunk before it is given up as a dead letter.
pub const MAX_REDELIVERIES: u32 = 3;

#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error(transparent)]
    Db(#[from] crate::db::DbError),
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error("{0}")]
    Chunk(#[from] ingest::ChunkError),
    #[error(transparent)]
    Storage(#[from] crate::storage::StorageError),
}

impl From<mongodb::error::Error> for WatchError {
    fn from(err: mongodb::error::Error) -> Self {
        WatchError::Db(crate::db::DbError(err))
    }
}

/// Time between two rounds for a given lease.
pub fn interval(lease: Duration) -> Duration {
    (lease / 3).max(Duration::from_secs(1))
}

/// Schedules round `round` of the job's watchdog, one [`interval`] of `lease` from now.
pub async fn schedule(queue: &dyn TaskQueue, lease: Duration, job_id: &str, round: u32) -> Result<(), QueueError> {
    let body = TaskBody::Watch { job_id: job_id.to_owned(), round };
    queue.enqueue_after(&body.task(), interval(lease)).await
}

/// One round: recovers lost chunks, then schedules the next round unless the job ended. The
/// first round after the end clears the job's scratch space and file index, and a last round
/// a lease later clears it again.
pub async fn watch(backends: &Backends, job_id: &str, round: u32) -> Result<(), WatchError> {
    let db = &backends.db;
    let Some(job) = jobs::find(db, job_id).await? else { return Ok(()) };
    if job.status.is_terminal() {
        clean_up(backends, job_id).await?;
        return schedule_last_clean_up(backends, job_id, round).await;
    }
    if job.planned {
        for chunk in lost_chunks(backends, job_id).await? {
            recover(backends, &chunk).await?;
        }
        coordinator::try_finalize(db, job_id).await?;
    } else {
        recover_planning(backends, &job).await?;
    }
    let Some(job) = jobs::find(db, job_id).await? else { return Ok(()) };
    if !job.status.is_terminal() {
        schedule(backends.queue.as_ref(), backends.pacing.chunk_lease, job_id, round + 1).await?;
    }
    Ok(())
}

/// Sends the planning task again when the latest pass (or the job, before any pass) is older
/// than the lease; fails the job once that has happened [`MAX_REDELIVERIES`] times.
async fn recover_planning(backends: &Backends, job: &JobDoc) -> Result<(), WatchError> {
    let lease = backends.pacing.chunk_lease;
    let since = job.planning_at.unwrap_or(job.created_at);
    if DateTime::now().timestamp_millis() - since.timestamp_millis() < lease.as_millis() as i64 {
        return Ok(());
    }
    if job.plan_redeliveries >= MAX_REDELIVERIES {
        tracing::error!(job_id = %job.id, "planning lost too often; the job fails");
        let error = FileError {
            file: String::new(),
            code: "planning_lost".into(),
            message: format!(
                "planning stopped without an outcome {} times (its task was lost or its process died)",
                job.plan_redeliveries + 1
            ),
        };
        jobs::fail(&backends.db, job, error).await?;
        return Ok(());
    }
    let redelivery = job.plan_redeliveries + 1;
    // Claim this redelivery (of two concurrent rounds, one enqueues) and restart the lease.
    let claimed = backends
        .db
        .jobs
        .update_one(
            doc! {"_id": &job.id, "planned": {"$ne": true}, "plan_redeliveries": job.plan_redeliveries},
            doc! {"$set": {"plan_redeliveries": redelivery, "planning_at": DateTime::now()}},
        )
        .await?;
    if claimed.modified_count == 1 {
        tracing::warn!(job_id = %job.id, redelivery, "planning presumed lost; its task is sent again");
        let pass = job.index_cursor.map(|c| c.pass).unwrap_or(0);
        let body = TaskBody::ContinuePlan { job_id: job.id.clone(), pass, redelivery };
        backends.queue.enqueue(&body.task()).await?;
    }
    Ok(())
}

/// After the first clean-up, one more round a lease later: a planning pass delivered twice
/// may still be staging when the job ends and write scratch objects and member records after
/// the first clean-up; no pass outlives a lease. Scheduled once (a conditional mark on the
/// job), so the last round and duplicates of the first schedule nothing.
async fn schedule_last_clean_up(backends: &Backends, job_id: &str, round: u32) -> Result<(), WatchError> {
    let marked = backends
        .db
        .jobs
        .update_one(doc! {"_id": job_id, "last_clean_up": {"$ne": true}}, doc! {"$set": {"last_clean_up": true}})
        .await?;
    if marked.modified_count == 1 {
        let body = TaskBody::Watch { job_id: job_id.to_owned(), round: round + 1 };
        backends.queue.enqueue_after(&body.task(), backends.pacing.chunk_lease).await?;
    }
    Ok(())
}

/// Deletes what only the import needed: staged files, the member records (and which labels
/// are used) and the chunks' file lists (the chunk records stay, with their outcomes).
async fn clean_up(backends: &Backends, job_id: &str) -> Result<(), WatchError> {
    let members = backends.db.members.delete_many(crate::members::under(job_id, "")).await?;
    // Chunk ids are `{job_id}:{index}`, the same shape as member ids.
    backends.db.chunk_files.delete_many(crate::members::under(job_id, "")).await?;
    backends.db.plan_states.delete_many(crate::members::under(job_id, "")).await?;
    backends.db.used_labels.delete_many(crate::members::under(job_id, "")).await?;
    let staged = backends.store.delete_prefix(&crate::storage::keys::job_temp_prefix(job_id)).await?;
    tracing::info!(job_id, members = members.deleted_count, staged, "import scratch cleared");
    Ok(())
}

/// Pending chunks presumed lost.
async fn lost_chunks(backends: &Backends, job_id: &str) -> DbResult<Vec<ChunkDoc>> {
    let db = &backends.db;
    let lease = backends.pacing.chunk_lease;
    let expired = DateTime::from_millis(DateTime::now().timestamp_millis() - lease.as_millis() as i64);
    // Started, and no outcome within the lease.
    let mut lost: Vec<ChunkDoc> = db
        .chunks
        .find(doc! {"job_id": job_id, "state": "pending", "started_at": {"$lt": expired}})
        .await?
        .try_collect()
        .await?;
    // Never started: lost only if the job's queue has been quiet for a whole lease (otherwise
    // the chunk may simply be waiting its turn).
    let recent = doc! {"job_id": job_id, "$or": [
        {"started_at": {"$gte": expired}},
        {"finished_at": {"$gte": expired}},
        {"enqueued_at": {"$gte": expired}},
    ]};
    if db.chunks.count_documents(recent).limit(1).await? == 0 {
        let never_started: Vec<ChunkDoc> = db
            .chunks
            .find(doc! {"job_id": job_id, "state": "pending", "started_at": null})
            .await?
            .try_collect()
            .await?;
        lost.extend(never_started);
    }
    Ok(lost)
}

/// Enqueues a lost chunk again under a fresh name, or records it as a dead letter.
async fn recover(backends: &Backends, chunk: &ChunkDoc) -> Result<(), WatchError> {
    if chunk.redeliveries >= MAX_REDELIVERIES {
        tracing::error!(job_id = %chunk.job_id, index = chunk.index, "chunk lost too often; recorded as failed");
        let cause = format!("its task was lost {} times", chunk.redeliveries + 1);
        ingest::give_up_chunk(backends, &chunk.job_id, chunk.index, &[], &cause).await?;
        return Ok(());
    }
    let redelivery = chunk.redeliveries + 1;
    // Claim this redelivery: of two concurrent rounds, one enqueues.
    let claimed = backends
        .db
        .chunks
        .update_one(
            doc! {"_id": &chunk.id, "state": "pending", "redeliveries": chunk.redeliveries},
            doc! {"$set": {"redeliveries": redelivery, "enqueued_at": DateTime::now()}, "$unset": {"started_at": ""}},
        )
        .await?;
    if claimed.modified_count == 1 {
        tracing::warn!(job_id = %chunk.job_id, index = chunk.index, redelivery, "chunk presumed lost; enqueued again");
        let body = TaskBody::Chunk { job_id: chunk.job_id.clone(), index: chunk.index, files: Vec::new(), redelivery };
        backends.queue.enqueue(&body.task()).await?;
    }
    Ok(())
}
