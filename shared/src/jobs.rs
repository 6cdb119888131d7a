//! Import jobs: the record of one import request and its state machine.
//!
//! ```text
//! queued ──plan──▶ running ──last chunk──▶ completed | completed_with_errors
//!    └───────────────┴──── permanent failure ──▶ failed
//! ```
//! A terminal status is reached once and never left: every transition is a conditional update
//! that only matches a non-terminal job.

use mongodb::bson::{doc, DateTime};
use serde::{Deserialize, Serialize};

use crate::coordinator::ChunkStats;
use crate::db::{Db, DbResult};
use crate::format::Task;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Queued,
    Running,
    Completed,
    CompletedWithErrors,
    Failed,
}

impl JobStatus {
    pub const TERMINAL: [&'static str; 3] = ["completed", "completed_with_errors", "failed"];

    pub fn is_terminal(self) -> bool {
        matches!(self, JobStatus::Completed | JobStatus::CompletedWithErrors | JobStatus::Failed)
    }
}

/// Where an import reads its files from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ImportSource {
    /// One archive holding the YAML and the image and label trees.
    Archive { url: String },
    /// The YAML and two archives, one per tree.
    Parts { config_url: String, images_url: String, labels_url: String },
}

impl ImportSource {
    /// The source URLs, numbered as member locations refer to them.
    pub fn urls(&self) -> Vec<String> {
        match self {
            ImportSource::Archive { url } => vec![url.clone()],
            ImportSource::Parts { config_url, images_url, labels_url } => {
                vec![config_url.clone(), images_url.clone(), labels_url.clone()]
            }
        }
    }
}

/// How far indexing the sources got, so that a pass cut short by its time budget resumes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexCursor {
    /// The source being indexed (index into [`ImportSource::urls`]).
    pub source: u8,
    /// Archive members of that source already handled (staged or skipped).
    pub members_done: u64,
    /// Plain tar: byte offset of the next member's header, where the next pass starts reading.
    #[serde(default)]
    pub offset: u64,
    /// Planning task number of the next pass (each pass is its own named task).
    #[serde(default)]
    pub pass: u32,
}

/// What planning cut into chunks while a tar was still being staged (`planning::early`); the
/// rest of the plan leaves those images out.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EarlyChunks {
    pub chunks: u32,
    pub files: u64,
    /// The task inferred from the first early chunk's labels, when neither the request nor the
    /// YAML names one.
    pub task: Option<Task>,
    /// `(split, entry)`: the archive entry from which that split's images were cut early.
    pub splits: Vec<(String, u64)>,
    /// `(split, folder)`: splits whose image folder first appeared while they were cut early,
    /// so that each image in it was staged after its split began to be cut.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub split_folders: Vec<(String, String)>,
    /// The entry at which early cutting stopped, if it did before the archive's end.
    pub stopped_at: Option<u64>,
}

impl EarlyChunks {
    /// Whether the image of `split` recorded at archive entry `image`, with its label file at
    /// entry `label`, went into an early chunk: it did when the later of the two was staged
    /// while that split was being cut early.
    pub fn has(&self, split: &str, image: u64, label: Option<u64>) -> bool {
        let Some(label) = label else { return false };
        let later = image.max(label);
        self.splits.iter().any(|(name, from)| name == split && *from <= later)
            && self.stopped_at.is_none_or(|stop| later < stop)
    }

    /// Whether `has` is true for this image whatever its label file's entry, as long as it has
    /// one: its split was cut early from before the image, and cutting never stopped. Then the
    /// label's existence decides, and its record need not be read.
    pub fn has_if_labelled(&self, split: &str, image: u64) -> bool {
        self.stopped_at.is_none() && self.splits.iter().any(|(name, from)| name == split && *from <= image)
    }

    /// Whether `has` is true for the image at `path` of `split` whatever either entry, as long
    /// as it has a label file: it lies in a folder that first appeared while its split was cut
    /// early, and cutting never stopped. Then not even the image's record need be read.
    pub fn has_if_labelled_in_folder(&self, split: &str, path: &str) -> bool {
        let inside = |folder: &str| path.strip_prefix(folder).is_some_and(|rest| rest.starts_with('/'));
        self.stopped_at.is_none() && self.split_folders.iter().any(|(name, folder)| name == split && inside(folder))
    }
}

/// A problem with one file (or the whole source, `file` empty), as the status endpoint lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileError {
    pub file: String,
    pub code: String,
    pub message: String,
}

/// How many errors a job or chunk keeps as a sample; totals live in the counts.
pub const ERROR_SAMPLE: usize = 50;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobDoc {
    #[serde(rename = "_id")]
    pub id: String,
    pub tenant: String,
    pub dataset_id: String,
    pub status: JobStatus,
    pub source: ImportSource,
    pub chunk_size: u32,
    /// Task the request asked for; inferred from the labels when absent.
    #[serde(default)]
    pub task: Option<Task>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    /// Hash of the request body, to tell a repeat from a different request with the same key.
    pub request_fingerprint: String,
    /// Set while the sources are being indexed by several planning passes.
    #[serde(default)]
    pub index_cursor: Option<IndexCursor>,
    /// True once every source file is recorded in `import_members`.
    #[serde(default)]
    pub indexed: bool,
    /// The chunks cut while a tar was being staged, set with `indexed`.
    #[serde(default)]
    pub early: Option<EarlyChunks>,
    /// True once planning has created every chunk.
    #[serde(default)]
    pub planned: bool,
    /// When the latest planning pass started (the watchdog's lease on planning).
    #[serde(default)]
    pub planning_at: Option<DateTime>,
    /// Times the watchdog sent a planning task again (see [`crate::watchdog`]).
    #[serde(default)]
    pub plan_redeliveries: u32,
    #[serde(default)]
    pub files_total: u64,
    #[serde(default)]
    pub chunks_total: u64,
    /// Source-level problems found while planning (a bounded sample).
    #[serde(default)]
    pub errors: Vec<FileError>,
    /// Dataset-level findings from planning (orphan labels, missing list entries...): a sample.
    #[serde(default)]
    pub findings: Vec<FileError>,
    /// Totals over all chunks, written once when the job ends.
    #[serde(default)]
    pub result: Option<JobResult>,
    pub created_at: DateTime,
    pub updated_at: DateTime,
    #[serde(default)]
    pub finished_at: Option<DateTime>,
}

/// The frozen outcome of a finished job.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JobResult {
    pub files_done: u64,
    pub stats: ChunkStats,
    pub chunks_done: u64,
    pub chunks_failed: u64,
    pub errors: Vec<FileError>,
}

pub async fn find(db: &Db, job_id: &str) -> DbResult<Option<JobDoc>> {
    Ok(db.jobs.find_one(doc! {"_id": job_id}).await?)
}

/// Moves a queued job to running; no effect on a job already running or finished.
pub async fn mark_running(db: &Db, job_id: &str) -> DbResult<()> {
    db.jobs
        .update_one(
            doc! {"_id": job_id, "status": "queued"},
            doc! {"$set": {"status": "running", "updated_at": DateTime::now()}},
        )
        .await?;
    Ok(())
}

/// Ends a job as failed (and its dataset), unless it already ended. Returns whether this call
/// made the transition.
pub async fn fail(db: &Db, job: &JobDoc, error: FileError) -> DbResult<bool> {
    let now = DateTime::now();
    let errors = mongodb::bson::to_bson(&vec![error]).expect("errors serialize");
    let updated = db
        .jobs
        .update_one(
            doc! {"_id": &job.id, "status": {"$nin": JobStatus::TERMINAL.to_vec()}},
            doc! {"$set": {"status": "failed", "updated_at": now, "finished_at": now},
            "$push": {"errors": {"$each": errors, "$slice": ERROR_SAMPLE as i64}}},
        )
        .await?;
    db.datasets
        .update_one(doc! {"_id": &job.dataset_id, "status": "importing"}, doc! {"$set": {"status": "failed"}})
        .await?;
    Ok(updated.modified_count == 1)
}

/// The API's job status object. A finished job answers from its frozen result; a running one
/// has MongoDB sum its finished chunks.
pub async fn status_view(db: &Db, job: &JobDoc) -> DbResult<serde_json::Value> {
    let (files_done, stats, chunks_done, chunks_failed, chunk_errors) = match &job.result {
        Some(r) => (r.files_done, r.stats.clone(), r.chunks_done, r.chunks_failed, r.errors.clone()),
        None => {
            let p = crate::coordinator::running_totals(db, &job.id).await?;
            (p.files_done, p.stats, p.chunks_done, p.chunks_failed, p.errors)
        }
    };
    let percent = if job.status.is_terminal() {
        100.0
    } else if job.files_total == 0 {
        0.0
    } else {
        // Never 100 before the terminal status.
        ((files_done as f64 / job.files_total as f64) * 100.0).min(99.9)
    };
    let mut errors = job.errors.clone();
    errors.extend(chunk_errors);
    errors.truncate(ERROR_SAMPLE);
    Ok(serde_json::json!({
        "job_id": job.id,
        "dataset_id": job.dataset_id,
        "status": job.status,
        "progress": {
            "files_total": job.files_total,
            "files_done": files_done,
            "percent": (percent * 10.0).round() / 10.0,
            "chunks_total": job.chunks_total,
            "chunks_done": chunks_done,
            "chunks_failed": chunks_failed,
        },
        "counts": {
            "images": stats.images,
            "labels": stats.labels,
            "annotations": stats.annotations,
            "invalid_images": stats.invalid_images,
            "invalid_labels": stats.invalid_labels,
        },
        "errors": errors,
        "findings": job.findings,
        "created_at": crate::datasets::rfc3339(job.created_at),
        "updated_at": crate::datasets::rfc3339(job.updated_at),
        "finished_at": job.finished_at.map(crate::datasets::rfc3339),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn early(stopped_at: Option<u64>) -> EarlyChunks {
        EarlyChunks {
            splits: vec![("train".into(), 7), ("val".into(), 1)],
            split_folders: vec![("train".into(), "images/train".into())],
            stopped_at,
            ..EarlyChunks::default()
        }
    }

    #[test]
    fn an_image_goes_early_by_folder_only_inside_its_splits_folder_and_when_cutting_never_stopped() {
        let early = early(None);
        assert!(early.has_if_labelled_in_folder("train", "images/train/a.jpg"));
        assert!(early.has_if_labelled_in_folder("train", "images/train/deeper/a.jpg"));
        // A sibling folder sharing the name's start, another split, a split without a folder.
        assert!(!early.has_if_labelled_in_folder("train", "images/train2/a.jpg"));
        assert!(!early.has_if_labelled_in_folder("val", "images/train/a.jpg"));
        assert!(!early.has_if_labelled_in_folder("val", "images/val/a.jpg"));
        assert!(!self::early(Some(100)).has_if_labelled_in_folder("train", "images/train/a.jpg"));
    }
}
