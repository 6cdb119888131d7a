//! The watchdog: no job hangs in `running` because a task was lost.
//!
//! Cloud Tasks retries a failed delivery, but a task can still vanish: its attempts run out
//! while the process crashes before recording anything, or an operator purges the queue. The
//! coordinator's own records tell: a pending chunk whose attempt started longer than the lease
//! ago without an outcome, or (when the job's queue has gone quiet for a whole lease) a chunk
//! never started at all. Such a chunk's task is resent under a fresh name (Cloud Tasks refuses
//! a deleted task's name for hours); after [`MAX_RESENDS`] it is recorded as failed with its
//! files as errors, and the job ends `completed_with_errors`.
//!
//! Planning is watched the same way: each pass records when it started (`planning_at`); a job
//! not yet planned whose latest pass (or, before any, whose creation) is older than the lease
//! gets its planning task resent under a fresh name, and after [`MAX_RESENDS`] it fails with
//! `planning_lost`. A planning pass is idempotent, so a resend that overlaps a slow
//! but live pass costs work, never correctness.
//!
//! The watchdog is itself a task: the import schedules the first round, and each round
//! schedules the next until the job ends, then one last round to clear the scratch space. Every step is a conditional update or a deduplicated
//! enqueue, so duplicate rounds are harmless.

use std::time::Duration;

use yds_queue::{QueueError, TaskQueue};
use yds_store::{ChunkDoc, DateTime, Finding, JobDoc};

use crate::coordinator;
use crate::error::ImportError;
use crate::importer::Importer;
use crate::tasks::TaskBody;

/// Resends of one lost task before it is given up (a chunk as a dead letter, planning as lost).
pub const MAX_RESENDS: u32 = 3;

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
pub async fn watch(importer: &Importer, job_id: &str, round: u32) -> Result<(), ImportError> {
    let db = &importer.db;
    let Some(job) = db.jobs.find(job_id).await? else { return Ok(()) };
    if job.status.is_terminal() {
        clean_up(importer, job_id).await?;
        return schedule_last_clean_up(importer, job_id, round).await;
    }
    if job.planned {
        for chunk in lost_chunks(importer, job_id).await? {
            recover(importer, &chunk).await?;
        }
        coordinator::try_finalize(importer, job_id).await?;
    } else {
        recover_planning(importer, &job).await?;
    }
    let Some(job) = db.jobs.find(job_id).await? else { return Ok(()) };
    if !job.status.is_terminal() {
        schedule(importer.queue.as_ref(), importer.pacing.chunk_lease, job_id, round + 1).await?;
    }
    Ok(())
}

/// The time a lease ago.
pub(crate) fn lease_ago(importer: &Importer) -> DateTime {
    DateTime::from_millis(DateTime::now().timestamp_millis() - importer.pacing.chunk_lease.as_millis() as i64)
}

/// Resends the planning task when the latest pass (or the job, before any pass) is older than
/// the lease; fails the job once that has happened [`MAX_RESENDS`] times.
async fn recover_planning(importer: &Importer, job: &JobDoc) -> Result<(), ImportError> {
    let since = job.planning_at.unwrap_or(job.created_at);
    if since > lease_ago(importer) {
        return Ok(());
    }
    if job.plan_resends >= MAX_RESENDS {
        tracing::error!(job_id = %job.id, "planning lost too often; the job fails");
        let message = format!(
            "planning stopped without an outcome {} times (its task was lost or its process died)",
            job.plan_resends + 1
        );
        coordinator::fail_job(importer, job, &Finding::new("", "planning_lost", message)).await?;
        return Ok(());
    }
    let resend = job.plan_resends + 1;
    // Of two concurrent rounds, one claims this resend (and restarts the lease) and sends it.
    if importer.db.jobs.claim_plan_resend(&job.id, resend).await? {
        tracing::warn!(job_id = %job.id, resend, "planning presumed lost; its task is sent again");
        let pass = job.index_cursor.map(|c| c.pass).unwrap_or(0);
        let body = TaskBody::ContinuePlan { job_id: job.id.clone(), pass, resend };
        importer.queue.enqueue(&body.task()).await?;
    }
    Ok(())
}

/// After the first clean-up, one more round a lease later: a planning pass delivered twice
/// may still be staging when the job ends and write scratch objects and member records after
/// the first clean-up; no pass outlives a lease. Scheduled once (a conditional mark on the
/// job), so the last round and duplicates of the first schedule nothing.
async fn schedule_last_clean_up(importer: &Importer, job_id: &str, round: u32) -> Result<(), ImportError> {
    if importer.db.jobs.claim_last_clean_up(job_id).await? {
        let body = TaskBody::Watch { job_id: job_id.to_owned(), round: round + 1 };
        importer.queue.enqueue_after(&body.task(), importer.pacing.chunk_lease).await?;
    }
    Ok(())
}

/// Deletes what only the import needed: staged files, the member records (and which labels
/// are used), the chunks' file lists and the saved planning states (the chunk records stay,
/// with their outcomes).
async fn clean_up(importer: &Importer, job_id: &str) -> Result<(), ImportError> {
    let db = &importer.db;
    let members = db.members.delete_job(job_id).await?;
    db.chunks.delete_file_lists(job_id).await?;
    db.plan_states.delete_job(job_id).await?;
    let staged = importer.objects.delete_prefix(&yds_storage::keys::job_temp_prefix(job_id)).await?;
    tracing::info!(job_id, members, staged, "import scratch cleared");
    Ok(())
}

/// Pending chunks presumed lost: started, and no outcome within the lease; or never started,
/// when the job's queue has been quiet for a whole lease (otherwise such a chunk may simply be
/// waiting its turn).
async fn lost_chunks(importer: &Importer, job_id: &str) -> Result<Vec<ChunkDoc>, ImportError> {
    let chunks = &importer.db.chunks;
    let expired = lease_ago(importer);
    let mut lost = chunks.started_before(job_id, expired).await?;
    if !chunks.active_since(job_id, expired).await? {
        lost.extend(chunks.never_started(job_id).await?);
    }
    Ok(lost)
}

/// Resends a lost chunk's task under a fresh name, or records it as a dead letter.
async fn recover(importer: &Importer, chunk: &ChunkDoc) -> Result<(), ImportError> {
    if chunk.resends >= MAX_RESENDS {
        tracing::error!(job_id = %chunk.job_id, index = chunk.index, "chunk lost too often; recorded as failed");
        let cause = format!("its task was lost {} times", chunk.resends + 1);
        return coordinator::give_up_chunk(importer, &chunk.job_id, chunk.index, &[], &cause).await;
    }
    let resend = chunk.resends + 1;
    // Of two concurrent rounds, one claims this resend and sends it.
    if importer.db.chunks.claim_resend(&chunk.id, resend).await? {
        tracing::warn!(job_id = %chunk.job_id, index = chunk.index, resend, "chunk presumed lost; its task is sent again");
        let body = TaskBody::Chunk { job_id: chunk.job_id.clone(), index: chunk.index, files: Vec::new(), resend };
        importer.queue.enqueue(&body.task()).await?;
    }
    Ok(())
}
