//! Import jobs: the record of one import request and its state machine.
//!
//! ```text
//! queued ──plan──▶ running ──last chunk──▶ completed | completed_with_errors
//!    └───────────────┴──── permanent failure ──▶ failed
//! ```
//! A terminal status is reached once and never left: every transition is a conditional update
//! that only matches a non-terminal job.
//!
//! The collection holds jobs of two kinds (`kind`): imports ([`JobDoc`]; a record without a
//! `kind` is an import: imports are written without one, as before deletion existed) and delete
//! jobs ([`DeleteJobDoc`]). The import pipeline reads imports only ([`Jobs::find`]); the status
//! routes read either ([`JobRecord`]).

mod deletion;
mod listing;

pub use deletion::{DeleteJobDoc, DeletePhase};
pub use listing::{JobCursor, JobFilter, JobRecord};

use mongodb::bson::{doc, to_bson, DateTime};
use mongodb::{Collection, Database, IndexModel};
use serde::{Deserialize, Serialize};
use yds_format::Task;

use crate::findings::{Finding, ERROR_SAMPLE};
use crate::statistics::Statistics;
use crate::{is_duplicate_key, StoreResult};

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

    /// The status named `text` as the API writes it.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "queued" => JobStatus::Queued,
            "running" => JobStatus::Running,
            "completed" => JobStatus::Completed,
            "completed_with_errors" => JobStatus::CompletedWithErrors,
            "failed" => JobStatus::Failed,
            _ => return None,
        })
    }

    /// Every status, as the API writes them.
    pub const ALL: [&'static str; 5] = ["queued", "running", "completed", "completed_with_errors", "failed"];
}

/// What a job does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    /// Imports a dataset (records without a `kind`).
    #[default]
    Import,
    /// Deletes a dataset: its images, files and records.
    Delete,
}

/// Where an import reads its files from: its sources, numbered as member locations refer to
/// them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Sources {
    /// One archive holding the YAML and the image and label trees.
    Archive { url: String },
    /// The YAML and two archives, one per tree.
    Parts { config_url: String, images_url: String, labels_url: String },
}

impl Sources {
    /// The source URLs, numbered as member locations refer to them.
    pub fn urls(&self) -> Vec<String> {
        match self {
            Sources::Archive { url } => vec![url.clone()],
            Sources::Parts { config_url, images_url, labels_url } => {
                vec![config_url.clone(), images_url.clone(), labels_url.clone()]
            }
        }
    }
}

/// How far indexing the sources got, so that a pass cut short by its time budget resumes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexCursor {
    /// The source being indexed (index into [`Sources::urls`]).
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

/// What planning cut into chunks while a tar was still being staged (the import's
/// `planning::early`); the rest of the plan leaves those images out.
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

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobDoc {
    #[serde(rename = "_id")]
    pub id: String,
    pub tenant: String,
    pub dataset_id: String,
    pub status: JobStatus,
    #[serde(rename = "source")]
    pub sources: Sources,
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
    /// Times the watchdog resent a lost planning task (the import's `watchdog`).
    #[serde(default, rename = "plan_redeliveries")]
    pub plan_resends: u32,
    #[serde(default)]
    pub files_total: u64,
    #[serde(default)]
    pub chunks_total: u64,
    /// What was refused while planning (members, splits, the source itself): a sample.
    #[serde(default)]
    pub errors: Vec<Finding>,
    /// Dataset-level findings from planning (orphan labels, missing list entries...): a sample.
    #[serde(default)]
    pub findings: Vec<Finding>,
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
    #[serde(rename = "stats")]
    pub statistics: Statistics,
    pub chunks_done: u64,
    pub chunks_failed: u64,
    pub errors: Vec<Finding>,
}

/// The owner of `import_jobs`.
#[derive(Clone, Debug)]
pub struct Jobs {
    collection: Collection<JobDoc>,
}

/// Matches a job that has not ended.
fn not_ended(job_id: &str) -> mongodb::bson::Document {
    doc! {"_id": job_id, "status": {"$nin": JobStatus::TERMINAL.to_vec()}}
}

impl Jobs {
    pub(crate) fn new(database: &Database) -> Self {
        Self { collection: database.collection("import_jobs") }
    }

    pub(crate) async fn ensure_indexes(&self) -> StoreResult<()> {
        // Idempotency-Key: one job per (tenant, key); only jobs that carry a key.
        let options = mongodb::options::IndexOptions::builder()
            .unique(true)
            .partial_filter_expression(doc! {"idempotency_key": {"$exists": true}})
            .build();
        let idempotency = IndexModel::builder().keys(doc! {"tenant": 1, "idempotency_key": 1}).options(options).build();
        let mut indexes = vec![idempotency];
        indexes.extend(listing::indexes());
        self.collection.create_indexes(indexes).await?;
        Ok(())
    }

    /// Records a new job; `false` when a job with its tenant and idempotency key exists already
    /// (a concurrent request with the same key won).
    pub async fn insert(&self, job: &JobDoc) -> StoreResult<bool> {
        match self.collection.insert_one(job).await {
            Ok(_) => Ok(true),
            Err(err) if is_duplicate_key(&err) => Ok(false),
            Err(err) => Err(err.into()),
        }
    }

    /// An import job (a delete job of that id is reported as missing: the import pipeline
    /// drops tasks naming one).
    pub async fn find(&self, job_id: &str) -> StoreResult<Option<JobDoc>> {
        Ok(self.collection.find_one(doc! {"_id": job_id, "kind": {"$ne": "delete"}}).await?)
    }

    /// A tenant's import job; another tenant's is reported as missing.
    pub async fn find_for_tenant(&self, tenant: &str, job_id: &str) -> StoreResult<Option<JobDoc>> {
        Ok(self.collection.find_one(doc! {"_id": job_id, "tenant": tenant, "kind": {"$ne": "delete"}}).await?)
    }

    /// The tenant's job started with `key` as its `Idempotency-Key`.
    pub async fn find_by_idempotency_key(&self, tenant: &str, key: &str) -> StoreResult<Option<JobDoc>> {
        Ok(self.collection.find_one(doc! {"tenant": tenant, "idempotency_key": key}).await?)
    }

    /// Moves a queued job to running; no effect on a job already running or finished.
    pub async fn mark_running(&self, job_id: &str) -> StoreResult<()> {
        self.collection
            .update_one(
                doc! {"_id": job_id, "status": "queued"},
                doc! {"$set": {"status": "running", "updated_at": DateTime::now()}},
            )
            .await?;
        Ok(())
    }

    /// Notes that a planning pass starts now: the watchdog's lease on planning.
    pub async fn mark_planning_started(&self, job_id: &str) -> StoreResult<()> {
        self.collection.update_one(doc! {"_id": job_id}, doc! {"$set": {"planning_at": DateTime::now()}}).await?;
        Ok(())
    }

    /// Records where indexing stopped, for the pass that goes on from there.
    pub async fn save_index_cursor(&self, job_id: &str, cursor: &IndexCursor) -> StoreResult<()> {
        let cursor = to_bson(cursor).expect("cursors serialize");
        self.collection
            .update_one(doc! {"_id": job_id}, doc! {"$set": {"index_cursor": cursor, "updated_at": DateTime::now()}})
            .await?;
        Ok(())
    }

    /// Records that every source file is indexed, with what was cut into chunks meanwhile.
    pub async fn mark_indexed(&self, job_id: &str, early: Option<&EarlyChunks>) -> StoreResult<()> {
        let early = to_bson(&early).expect("early chunks serialize");
        self.collection
            .update_one(
                doc! {"_id": job_id},
                doc! {"$set": {"indexed": true, "early": early, "updated_at": DateTime::now()}},
            )
            .await?;
        Ok(())
    }

    /// Adds findings to the job's errors (a bounded sample).
    pub async fn push_errors(&self, job_id: &str, errors: &[Finding]) -> StoreResult<()> {
        if errors.is_empty() {
            return Ok(());
        }
        let errors = to_bson(&errors[..errors.len().min(ERROR_SAMPLE)]).expect("findings serialize");
        self.collection
            .update_one(
                doc! {"_id": job_id},
                doc! {"$push": {"errors": {"$each": errors, "$slice": ERROR_SAMPLE as i64}},
                "$set": {"updated_at": DateTime::now()}},
            )
            .await?;
        Ok(())
    }

    /// Raises the totals while planning goes on (never lowers them: chunk writes finish in any
    /// order); the final totals come with [`Jobs::mark_planned`].
    pub async fn raise_totals(&self, job_id: &str, files_total: u64, chunks_total: u64) -> StoreResult<()> {
        self.collection
            .update_one(
                doc! {"_id": job_id, "planned": false},
                doc! {"$max": {"files_total": files_total as i64, "chunks_total": chunks_total as i64}},
            )
            .await?;
        Ok(())
    }

    /// Records that planning created every chunk: the task, the final totals, the findings,
    /// and the errors planning found in the splits. Once.
    pub async fn mark_planned(&self, job_id: &str, plan: &Planned<'_>) -> StoreResult<()> {
        let errors = &plan.errors[..plan.errors.len().min(ERROR_SAMPLE)];
        self.collection
            .update_one(
                doc! {"_id": job_id, "planned": false},
                doc! {"$set": {
                    "planned": true,
                    "task": plan.task.as_str(),
                    "files_total": plan.files_total as i64,
                    "chunks_total": plan.chunks_total as i64,
                    "findings": to_bson(plan.findings).expect("findings serialize"),
                    "updated_at": DateTime::now(),
                },
                "$push": {"errors": {"$each": to_bson(errors).expect("findings serialize"), "$slice": ERROR_SAMPLE as i64}}},
            )
            .await?;
        Ok(())
    }

    /// Ends a job as failed with `error`, unless it already ended. Whether this call made the
    /// transition.
    pub async fn fail(&self, job_id: &str, error: &Finding) -> StoreResult<bool> {
        let now = DateTime::now();
        let errors = to_bson(&vec![error]).expect("findings serialize");
        let updated = self
            .collection
            .update_one(
                not_ended(job_id),
                doc! {"$set": {"status": "failed", "updated_at": now, "finished_at": now},
                "$push": {"errors": {"$each": errors, "$slice": ERROR_SAMPLE as i64}}},
            )
            .await?;
        Ok(updated.modified_count == 1)
    }

    /// Ends a job with `status` and its frozen result, unless it already ended: of concurrent
    /// callers, exactly one wins. Whether this call did.
    pub async fn finish(&self, job_id: &str, status: JobStatus, result: &JobResult) -> StoreResult<bool> {
        let now = DateTime::now();
        let won = self
            .collection
            .update_one(
                not_ended(job_id),
                doc! {"$set": {
                    "status": to_bson(&status).expect("statuses serialize"),
                    "result": to_bson(result).expect("results serialize"),
                    "updated_at": now,
                    "finished_at": now,
                }},
            )
            .await?;
        Ok(won.modified_count == 1)
    }

    /// Claims the watchdog's `resends`-th resend of a lost planning task, restarting the lease:
    /// of two concurrent rounds that saw `resends - 1`, one claims it. Whether this call did.
    pub async fn claim_plan_resend(&self, job_id: &str, resends: u32) -> StoreResult<bool> {
        // Stored as `plan_redeliveries`, the name records had before the glossary settled on
        // resends.
        let claimed = self
            .collection
            .update_one(
                doc! {"_id": job_id, "planned": {"$ne": true}, "plan_redeliveries": resends - 1},
                doc! {"$set": {"plan_redeliveries": resends, "planning_at": DateTime::now()}},
            )
            .await?;
        Ok(claimed.modified_count == 1)
    }

    /// Marks that the job's last clean-up round is scheduled; `true` the first time only.
    pub async fn claim_last_clean_up(&self, job_id: &str) -> StoreResult<bool> {
        let marked = self
            .collection
            .update_one(doc! {"_id": job_id, "last_clean_up": {"$ne": true}}, doc! {"$set": {"last_clean_up": true}})
            .await?;
        Ok(marked.modified_count == 1)
    }
}

/// What planning settled, recorded by [`Jobs::mark_planned`].
#[derive(Debug)]
pub struct Planned<'a> {
    pub task: Task,
    pub files_total: u64,
    pub chunks_total: u64,
    pub findings: &'a [Finding],
    pub errors: &'a [Finding],
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
