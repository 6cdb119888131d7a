//! Deleting a dataset: `DELETE /datasets/{id}` as a job, run by many short tasks.
//!
//! A dataset may hold a million image documents, twice as many objects under
//! `datasets/{id}/`, and its import's records; no request or task may delete all that at once.
//! [`begin`] makes the dataset invisible at once (status `deleting`: every lookup on a tenant's
//! behalf treats it as missing), records the delete job, cancels the dataset's import if it still
//! runs (the import job fails with `cancelled`; its chunk and planning tasks then do nothing), and
//! sends the first step. Each [`step`] deletes bounded batches — image documents, then objects,
//! then the import's records and scratch objects — until its time budget
//! (`pacing.delete_budget`), and hands over to the next step, named by its number.
//!
//! **No orphan.** Some writers may still write after the deletion began: a chunk or planning
//! pass of the cancelled import that started before the cancel, or a chunk attempt of a
//! finished import delivered twice (none outlives a chunk lease; chunk attempts are counted in
//! flight, so a completed import with none in flight is not waited for),
//! and an API request that read the dataset before (a thumbnail being made, which looks at the
//! dataset again after its write and removes it when the dataset is deleting;
//! `pacing.delete_settle` is a margin for such writes). So the job *settles* at the later of the deletion's start plus
//! `delete_settle` and the import's end plus `chunk_lease`; only a step that starts after that
//! time and finds nothing left ends the job, deleting the dataset's record last: nothing can
//! appear after it.
//!
//! **Exact under duplicate delivery and crashes.** Every deletion is idempotent; a step claims its
//! number before working ([`yds_store::Jobs::claim_delete_step`]) and one older than a step
//! already started does nothing, so a lagging duplicate chain dies out; progress is derived from
//! what remains (`files_done` = images counted at the start less those still there, never
//! lowered); the ending is one conditional update that exactly one caller wins.
//!
//! **Always ends.** The deletion has its own watchdog rounds ([`watch`]): a chain of steps not
//! seen working for a lease (and not waiting for a delayed step) gets its next step resent under
//! a fresh name; after [`MAX_RESENDS`] resends in a row the job fails with `deletion_lost`, and
//! a new `DELETE` of the dataset starts a new job that goes on from what is left.

use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use serde::Serialize;
use yds_queue::TaskQueue;
use yds_storage::keys;
use yds_store::{DateTime, DeleteJobDoc, DeletePhase, DeleteStart, Finding, JobKind, JobStatus, Swept};

use crate::coordinator;
use crate::error::ImportError;
use crate::importer::Importer;
use crate::tasks::TaskBody;
use crate::watchdog::{interval, lease_ago, MAX_RESENDS};

/// Object deletions in flight at once within a batch.
const DELETES_IN_FLIGHT: usize = 16;

/// What `DELETE /datasets/{id}` answers (`202 Accepted`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeleteAccepted {
    pub job_id: String,
    pub dataset_id: String,
    pub status: JobStatus,
    pub kind: JobKind,
}

/// Starts deleting the tenant's dataset `dataset_id`, or finds the deletion under way: the
/// job that follows it, or `None` when the tenant has no such dataset. A dataset whose previous
/// delete job failed gets a new one. Safe to repeat: a repeat redoes whatever a crash left
/// undone (the dataset's transition is the deduplication point, then the job, then its tasks).
pub async fn begin(importer: &Importer, tenant: &str, dataset_id: &str) -> Result<Option<DeleteAccepted>, ImportError> {
    let db = &importer.db;
    let fresh = uuid::Uuid::new_v4().simple().to_string();
    let (job_id, import_job_id) = match db.datasets.begin_delete(tenant, dataset_id, &fresh).await? {
        DeleteStart::Missing => return Ok(None),
        DeleteStart::Started(before) => (fresh, before.job_id),
        DeleteStart::Deleting(dataset) => {
            let current = dataset.last_job_id().to_owned();
            let failed = db.jobs.find_delete(&current).await?.is_some_and(|job| job.status == JobStatus::Failed);
            if !failed {
                (current, dataset.job_id)
            } else if db.datasets.restart_delete(dataset_id, &current, &fresh).await? {
                tracing::info!(dataset_id, failed = %current, job_id = %fresh, "a failed deletion starts again");
                (fresh, dataset.job_id)
            } else {
                // A concurrent request restarted it first: its job.
                let Some(now) = db.datasets.find(dataset_id).await? else { return Ok(None) };
                (now.last_job_id().to_owned(), now.job_id)
            }
        }
    };
    let phase = match db.jobs.find(&import_job_id).await? {
        Some(import) if !import.status.is_terminal() => DeletePhase::CancellingImport,
        _ => DeletePhase::DeletingImages,
    };
    db.jobs.insert_delete(&DeleteJobDoc::new(&job_id, tenant, dataset_id, &import_job_id, phase)).await?;
    let job =
        db.jobs.find_delete(&job_id).await?.ok_or_else(|| ImportError::Transient("a delete job vanished".into()))?;
    if !job.status.is_terminal() {
        cancel_import(importer, &import_job_id).await?;
        // The watchdog first, so that even a first step lost before its delivery is sent again.
        schedule_watch(importer.queue.as_ref(), importer.pacing.chunk_lease, &job_id, 0).await?;
        importer.queue.enqueue(&TaskBody::DeleteStep { job_id: job_id.clone(), step: 0, resend: 0 }.task()).await?;
    }
    Ok(Some(DeleteAccepted { job_id, dataset_id: dataset_id.to_owned(), status: job.status, kind: JobKind::Delete }))
}

/// Ends the import `import_job_id` as failed with `cancelled`, unless it already ended.
async fn cancel_import(importer: &Importer, import_job_id: &str) -> Result<(), ImportError> {
    let Some(import) = importer.db.jobs.find(import_job_id).await? else { return Ok(()) };
    if import.status.is_terminal() {
        return Ok(());
    }
    let finding = Finding::new("", "cancelled", "the import was cancelled: its dataset was deleted");
    if coordinator::fail_job(importer, &import, &finding).await? {
        tracing::info!(job_id = import_job_id, dataset_id = %import.dataset_id, "import cancelled by its dataset's deletion");
    }
    Ok(())
}

/// What one batch deletes, in the order a step goes through them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Batch {
    /// Image documents of the dataset.
    Images,
    /// Objects under `datasets/{id}/`: images, labels, the YAML, thumbnails.
    Files,
    /// The import's member index, chunk records and their file lists, and saved plan states.
    ImportRecords,
    /// The import's scratch objects under `temp/{import_job_id}/`.
    ImportScratch,
}

impl Batch {
    const ORDER: [Batch; 4] = [Batch::Images, Batch::Files, Batch::ImportRecords, Batch::ImportScratch];

    fn phase(self) -> DeletePhase {
        match self {
            Batch::Images => DeletePhase::DeletingImages,
            Batch::Files => DeletePhase::DeletingFiles,
            Batch::ImportRecords | Batch::ImportScratch => DeletePhase::DeletingRecords,
        }
    }
}

/// Runs step `number` of the delete job `job_id`: deletes batches until nothing is left or the
/// step's time is up, then hands over to the next step, or ends the job. With `crash`, stops
/// after its first batch and fails (fault injection).
pub async fn step(importer: &Importer, job_id: &str, number: u32, crash: bool) -> Result<(), ImportError> {
    let started = DateTime::now();
    let clock = Instant::now();
    let db = &importer.db;
    let Some(job) = db.jobs.claim_delete_step(job_id, number).await? else {
        // Ended, or a later step started: this delivery lags behind and has nothing to do.
        return Ok(());
    };
    cancel_import(importer, &job.import_job_id).await?;
    let import = db.jobs.find(&job.import_job_id).await?;
    // An import that completed, with no chunk attempt still counted in flight, has no writer
    // left: every later attempt finds its chunk ended and writes nothing. Asked before this
    // step deletes the chunk records; the settle time recorded from the first answer only
    // moves later.
    let import_quiet = match &import {
        Some(import) => {
            matches!(import.status, JobStatus::Completed | JobStatus::CompletedWithErrors)
                && !db.chunks.any_in_flight(&import.id).await?
        }
        None => true,
    };
    let import_ended = import.and_then(|import| import.finished_at).filter(|_| !import_quiet);
    let mut remaining = db.images.count(&job.dataset_id).await?;
    let settles = settle_time(importer, &job, import_ended);
    let Some(job) = db.jobs.record_delete_totals(job_id, remaining, settles).await? else { return Ok(()) };
    let total = job.files_total.unwrap_or(remaining);
    let settle_at = job.settle_at.unwrap_or(settles);

    for batch in Batch::ORDER {
        loop {
            // Only finding nothing means nothing is left: a concurrent delivery of this step may
            // delete what this one found first.
            let swept = delete_batch(importer, &job, batch).await?;
            if swept.found == 0 {
                break;
            }
            if batch == Batch::Images {
                remaining = remaining.saturating_sub(swept.deleted);
            }
            db.jobs.record_delete_progress(job_id, batch.phase(), total.saturating_sub(remaining)).await?;
            if crash {
                return Err(ImportError::InjectedCrash);
            }
            if clock.elapsed() >= importer.pacing.delete_budget {
                return hand_over(importer, job_id, number + 1, None).await;
            }
        }
    }
    // This step found everything gone. Only if it started once no earlier writer could still
    // write is that final.
    if started < settle_at {
        db.jobs.record_delete_progress(job_id, DeletePhase::Finalizing, total.saturating_sub(remaining)).await?;
        return hand_over(importer, job_id, number + 1, Some(settle_at)).await;
    }
    db.datasets.remove(&job.dataset_id).await?;
    if db.jobs.finish_delete(job_id, total).await? {
        tracing::info!(job_id, dataset_id = %job.dataset_id, images = total, "dataset deleted");
    }
    Ok(())
}

/// When the job settles: no writer that started before the deletion can write after it. An
/// import still running is cancelled before this is asked, so it has ended; `import_ended` is
/// when, for an import that may still have writers (cancelled, failed, or a chunk attempt
/// still in flight or killed), and `None` when nothing is to be waited for.
fn settle_time(importer: &Importer, job: &DeleteJobDoc, import_ended: Option<DateTime>) -> DateTime {
    let after = |at: DateTime, wait: Duration| DateTime::from_millis(at.timestamp_millis() + wait.as_millis() as i64);
    let requests = after(job.created_at, importer.pacing.delete_settle);
    match import_ended {
        Some(ended) => requests.max(after(ended, importer.pacing.chunk_lease)),
        None => requests,
    }
}

/// Deletes one batch of `batch`'s kind (at most `pacing.delete_batch` of each record or object
/// kind).
async fn delete_batch(importer: &Importer, job: &DeleteJobDoc, batch: Batch) -> Result<Swept, ImportError> {
    let db = &importer.db;
    let limit = i64::from(importer.pacing.delete_batch);
    Ok(match batch {
        Batch::Images => db.images.delete_some(&job.dataset_id, limit).await?,
        Batch::Files => delete_objects(importer, &keys::dataset_prefix(&job.dataset_id), limit).await?,
        Batch::ImportRecords => {
            // Plan states are a handful per job: deleted whole.
            db.plan_states.delete_job(&job.import_job_id).await?;
            let members = db.members.delete_some_of_job(&job.import_job_id, limit).await?;
            members + db.chunks.delete_some_of_job(&job.import_job_id, limit).await?
        }
        Batch::ImportScratch => delete_objects(importer, &keys::job_temp_prefix(&job.import_job_id), limit).await?,
    })
}

/// Deletes the first `limit` objects under `prefix`.
async fn delete_objects(importer: &Importer, prefix: &str, limit: i64) -> Result<Swept, ImportError> {
    let page = importer.objects.list(prefix, None, limit as usize).await?;
    let count = page.objects.len() as u64;
    futures::stream::iter(page.objects)
        .map(|(key, _)| async move { importer.objects.delete(&key).await })
        .buffer_unordered(DELETES_IN_FLIGHT)
        .try_collect::<()>()
        .await?;
    // Deleting an object already gone succeeds: no telling which this delivery deleted.
    Ok(Swept { found: count, deleted: count })
}

/// Sends step `next`, due now or at `due` (noted first, so the watchdog waits for it), and
/// notes that the chain works: the watchdog's resends in a row start again.
async fn hand_over(importer: &Importer, job_id: &str, next: u32, due: Option<DateTime>) -> Result<(), ImportError> {
    let task = TaskBody::DeleteStep { job_id: job_id.to_owned(), step: next, resend: 0 }.task();
    match due {
        None => importer.queue.enqueue(&task).await?,
        Some(at) => {
            importer.db.jobs.expect_delete_step(job_id, at).await?;
            let wait = at.timestamp_millis().saturating_sub(DateTime::now().timestamp_millis()).max(0);
            // A little past the time, so that the step surely starts after it.
            importer.queue.enqueue_after(&task, Duration::from_millis(wait as u64 + 50)).await?;
        }
    }
    importer.db.jobs.clear_delete_resends(job_id).await?;
    Ok(())
}

/// Schedules round `round` of a delete job's watchdog, one [`interval`] of `lease` from now.
async fn schedule_watch(
    queue: &dyn TaskQueue,
    lease: Duration,
    job_id: &str,
    round: u32,
) -> Result<(), yds_queue::QueueError> {
    let body = TaskBody::WatchDeletion { job_id: job_id.to_owned(), round };
    queue.enqueue_after(&body.task(), interval(lease)).await
}

/// One watchdog round of the delete job `job_id`: a chain of steps not seen working for a lease
/// (nor waiting for a delayed step) gets its next step resent under a fresh name, or, after
/// [`MAX_RESENDS`] resends in a row, the job fails. Schedules the next round until the job ends.
pub async fn watch(importer: &Importer, job_id: &str, round: u32) -> Result<(), ImportError> {
    let db = &importer.db;
    let Some(job) = db.jobs.find_delete(job_id).await? else { return Ok(()) };
    if job.status.is_terminal() {
        return Ok(());
    }
    if job.active_at <= lease_ago(importer) {
        if job.resends >= MAX_RESENDS {
            tracing::error!(job_id, dataset_id = %job.dataset_id, "deletion lost too often; the job fails");
            let message = format!(
                "the deletion stopped without an outcome {} times (its task was lost or its process died); \
                 delete the dataset again to go on",
                job.resends + 1
            );
            db.jobs.fail(job_id, &Finding::new("", "deletion_lost", message)).await?;
            return Ok(());
        }
        let resend = job.resends + 1;
        // Of two concurrent rounds, one claims this resend (and restarts the lease) and sends it.
        if db.jobs.claim_delete_resend(job_id, resend).await? {
            tracing::warn!(job_id, step = job.step + 1, resend, "deletion presumed lost; its next step is sent");
            let body = TaskBody::DeleteStep { job_id: job_id.to_owned(), step: job.step + 1, resend };
            importer.queue.enqueue(&body.task()).await?;
        }
    }
    schedule_watch(importer.queue.as_ref(), importer.pacing.chunk_lease, job_id, round + 1).await?;
    Ok(())
}
