//! The coordinator: exact progress and exactly-once completion under at-least-once delivery.
//!
//! Each chunk's outcome is recorded once, by the conditional `pending → done|failed` update of
//! its record ([`yds_store::Chunks::record_outcome`]): a duplicate or concurrent delivery's
//! update matches nothing, so nothing is ever counted twice, and progress — the sum over
//! finished chunks — only grows.
//!
//! Completion: after every chunk outcome (and after planning), [`try_finalize`] checks whether
//! the job is planned and no chunk is pending; if so it sums the chunks, marks exact duplicate
//! files, writes the dataset's statistics and the findings of the end ([`crate::finishing`]:
//! trainable or not, a copy of an earlier dataset or not; one conditional update, so written
//! once) and then moves the job to its terminal status with a conditional update that only
//! one caller can win. A caller that crashed in between is retried by the queue and finishes
//! the step.

use yds_store::chunks::Outcome;
use yds_store::datasets::Ready;
use yds_store::{
    ChunkFile, ChunkState, DatasetDoc, Failure, Finding, JobDoc, JobResult, JobStatus, Progress, Statistics,
    ERROR_SAMPLE,
};

use crate::error::ImportError;
use crate::finishing;
use crate::importer::Importer;

/// Records chunk `index`'s outcome, once, then ends the job if that was its last chunk.
pub async fn record_chunk(
    importer: &Importer,
    job_id: &str,
    index: u32,
    outcome: &Outcome<'_>,
) -> Result<(), ImportError> {
    importer.db.chunks.record_outcome(job_id, index, outcome).await?;
    try_finalize(importer, job_id).await
}

/// Records chunk `index` as failed (the queue's last attempt failed, or the watchdog gave its
/// lost task up): its files become errors, and the job can still end.
pub async fn give_up_chunk(
    importer: &Importer,
    job_id: &str,
    index: u32,
    files: &[ChunkFile],
    cause: &str,
) -> Result<(), ImportError> {
    let files = importer.db.chunks.files(job_id, index, files).await?;
    let errors: Vec<Finding> = files
        .iter()
        .take(ERROR_SAMPLE)
        .map(|f| {
            let message = format!("not imported: the chunk failed on every attempt ({cause})");
            Finding::new(format!("{}/{}", f.split, f.file_name), "chunk_failed", message)
        })
        .collect();
    let outcome =
        Outcome { state: ChunkState::Failed, statistics: &Statistics::default(), errors: &errors, elapsed: None };
    record_chunk(importer, job_id, index, &outcome).await
}

/// Ends a job as failed with `error`, and its dataset with it (keeping `error` as the dataset's
/// `failure`), unless the job already ended. Whether this call made the transition.
pub async fn fail_job(importer: &Importer, job: &JobDoc, error: &Finding) -> Result<bool, ImportError> {
    let failed = importer.db.jobs.fail(&job.id, error).await?;
    let failure = Failure { code: error.code.clone(), message: error.message.clone() };
    importer.db.datasets.mark_failed(&job.dataset_id, &failure).await?;
    Ok(failed)
}

/// The findings the job's end adds to its dataset ([`finishing`]): whether it can be trained
/// on, and, when every chunk was imported, the earlier dataset of the tenant it is a copy of.
/// Its content hash is recorded first, so that of two copies ending at once, at least one finds
/// the other.
async fn dataset_findings(
    importer: &Importer,
    dataset: &DatasetDoc,
    progress: &Progress,
) -> Result<Vec<Finding>, ImportError> {
    let db = &importer.db;
    let mut findings = finishing::training_findings(&dataset.split_names, &progress.statistics);
    if progress.chunks_failed == 0 {
        let content_hash = finishing::content_hash(dataset.task, &dataset.classes, &progress.statistics);
        db.datasets.set_content_hash(&dataset.id, &content_hash).await?;
        if let Some(earlier) = db.datasets.earliest_with_content(&dataset.tenant, &content_hash, &dataset.id).await? {
            findings.push(finishing::duplicate_finding(&earlier.name, &earlier.id));
        }
    }
    Ok(findings)
}

/// Ends the job if it is planned and no chunk is pending. Safe to call any number of times,
/// concurrently: the dataset write is idempotent and only one caller moves the job.
pub async fn try_finalize(importer: &Importer, job_id: &str) -> Result<(), ImportError> {
    let db = &importer.db;
    let Some(job) = db.jobs.find(job_id).await? else { return Ok(()) };
    if job.status.is_terminal() || !job.planned || db.chunks.any_pending(job_id).await? {
        return Ok(());
    }
    let progress = db.chunks.progress(job_id).await?;
    let statistics = &progress.statistics;
    let with_errors = progress.chunks_failed > 0
        || statistics.invalid_images > 0
        || statistics.invalid_labels > 0
        || !job.errors.is_empty();
    let status = if with_errors { JobStatus::CompletedWithErrors } else { JobStatus::Completed };
    let duplicates = db.images.mark_duplicates(&job.dataset_id).await?;
    if let Some(dataset) = db.datasets.find(&job.dataset_id).await? {
        let findings = dataset_findings(importer, &dataset, &progress).await?;
        let trainable = !findings.iter().any(|f| f.code == "no_train_split");
        let ready = Ready { statistics, duplicates: &duplicates, trainable, findings: &findings };
        db.datasets.mark_ready(&job.dataset_id, &ready).await?;
    }
    let result = JobResult {
        files_done: progress.files_done,
        statistics: progress.statistics,
        chunks_done: progress.chunks_done,
        chunks_failed: progress.chunks_failed,
        errors: progress.errors,
    };
    if db.jobs.finish(job_id, status, &result).await? {
        tracing::info!(job_id, status = ?status, "job finished");
    }
    Ok(())
}
