//! Delete jobs: the record of one `DELETE /datasets/{id}` and its state machine, in
//! `import_jobs` beside the imports (`kind: "delete"`).
//!
//! ```text
//! queued ──first step──▶ running ──everything swept after the dataset settled──▶ completed
//!    └──────────────────────┴──── its steps lost too often ──▶ failed
//! ```
//! The deletion runs as a chain of steps (tasks), each bounded in work and time. A step claims
//! its number first ([`Jobs::claim_delete_step`]): a step older than one already started is
//! stale (a duplicate that lagged) and does nothing, so duplicate chains die out. Counts are
//! derived from what remains, and `files_done` only grows (`$max`). The ending is one
//! conditional update, as for imports.

use mongodb::bson::{doc, to_bson, DateTime};
use serde::{Deserialize, Serialize};

use super::{not_ended, JobKind, JobStatus, Jobs};
use crate::findings::Finding;
use crate::{is_duplicate_key, StoreResult};

/// Where a deletion stands: the `phase` of its status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeletePhase {
    /// The dataset's import is still running: it is being cancelled.
    CancellingImport,
    /// Image documents are being deleted.
    DeletingImages,
    /// Objects under `datasets/{id}/` are being deleted.
    DeletingFiles,
    /// The import's records (members, chunks, plan states) and scratch objects are being deleted.
    DeletingRecords,
    /// Waiting until no earlier writer can still write, then the last sweep and the dataset's
    /// own record.
    Finalizing,
}

impl DeletePhase {
    /// The phase as the API names it.
    pub fn as_str(self) -> &'static str {
        match self {
            DeletePhase::CancellingImport => "cancelling_import",
            DeletePhase::DeletingImages => "deleting_images",
            DeletePhase::DeletingFiles => "deleting_files",
            DeletePhase::DeletingRecords => "deleting_records",
            DeletePhase::Finalizing => "finalizing",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeleteJobDoc {
    #[serde(rename = "_id")]
    pub id: String,
    /// Always [`JobKind::Delete`]: what tells this record from an import's.
    pub kind: JobKind,
    pub tenant: String,
    pub dataset_id: String,
    /// The import that made the dataset: cancelled first if it still runs.
    pub import_job_id: String,
    pub status: JobStatus,
    pub phase: DeletePhase,
    /// Image documents the dataset had when the deletion first counted them (set once).
    #[serde(default)]
    pub files_total: Option<u64>,
    /// Image documents deleted: `files_total` less those still there, never lowered.
    #[serde(default)]
    pub files_done: u64,
    /// From this time on no writer that started before the deletion (a chunk of the cancelled
    /// import, a thumbnail request) can still write: only a sweep that starts after it may
    /// finish the job.
    #[serde(default)]
    pub settle_at: Option<DateTime>,
    /// The latest step number claimed ([`Jobs::claim_delete_step`]).
    #[serde(default)]
    pub step: u32,
    /// When the chain of steps was last seen working, or when its next, delayed, step is due:
    /// the watchdog's lease on the deletion.
    pub active_at: DateTime,
    /// Times in a row the watchdog resent a lost step.
    #[serde(default)]
    pub resends: u32,
    /// Why the job failed (a sample, as an import's errors).
    #[serde(default)]
    pub errors: Vec<Finding>,
    pub created_at: DateTime,
    pub updated_at: DateTime,
    #[serde(default)]
    pub finished_at: Option<DateTime>,
}

impl DeleteJobDoc {
    /// A new, queued delete job of `dataset_id`, made by its import `import_job_id`, starting in
    /// `phase`.
    pub fn new(id: &str, tenant: &str, dataset_id: &str, import_job_id: &str, phase: DeletePhase) -> Self {
        let now = DateTime::now();
        Self {
            id: id.to_owned(),
            kind: JobKind::Delete,
            tenant: tenant.to_owned(),
            dataset_id: dataset_id.to_owned(),
            import_job_id: import_job_id.to_owned(),
            status: JobStatus::Queued,
            phase,
            files_total: None,
            files_done: 0,
            settle_at: None,
            step: 0,
            active_at: now,
            resends: 0,
            errors: Vec::new(),
            created_at: now,
            updated_at: now,
            finished_at: None,
        }
    }
}

/// A delete job that has not ended.
fn live_deletion(job_id: &str) -> mongodb::bson::Document {
    let mut filter = not_ended(job_id);
    filter.insert("kind", "delete");
    filter
}

impl Jobs {
    fn deletions(&self) -> mongodb::Collection<DeleteJobDoc> {
        self.collection.clone_with_type()
    }

    /// Records a new delete job; a job of that id recorded already (a repeated request) is kept.
    pub async fn insert_delete(&self, job: &DeleteJobDoc) -> StoreResult<()> {
        match self.deletions().insert_one(job).await {
            Err(err) if !is_duplicate_key(&err) => Err(err.into()),
            _ => Ok(()),
        }
    }

    /// A delete job (an import of that id is reported as missing).
    pub async fn find_delete(&self, job_id: &str) -> StoreResult<Option<DeleteJobDoc>> {
        Ok(self.deletions().find_one(doc! {"_id": job_id, "kind": "delete"}).await?)
    }

    /// Claims step `step` of a delete job that has not ended, and notes that it works now: the
    /// job as it is then, or `None` when the job ended or a later step was claimed already (a
    /// duplicate that lagged behind, which must do nothing).
    pub async fn claim_delete_step(&self, job_id: &str, step: u32) -> StoreResult<Option<DeleteJobDoc>> {
        let mut filter = live_deletion(job_id);
        filter.insert("step", doc! {"$lte": step as i64});
        let now = DateTime::now();
        Ok(self
            .deletions()
            .find_one_and_update(
                filter,
                doc! {"$set": {"step": step as i64, "status": "running", "active_at": now, "updated_at": now}},
            )
            .return_document(mongodb::options::ReturnDocument::After)
            .await?)
    }

    /// Records what a step found: its phase, the image documents deleted so far (never lowered)
    /// and that it is alive.
    pub async fn record_delete_progress(&self, job_id: &str, phase: DeletePhase, files_done: u64) -> StoreResult<()> {
        let now = DateTime::now();
        self.deletions()
            .update_one(
                live_deletion(job_id),
                doc! {"$set": {"phase": to_bson(&phase).expect("phases serialize"), "active_at": now, "updated_at": now},
                "$max": {"files_done": files_done as i64}},
            )
            .await?;
        Ok(())
    }

    /// Records how many image documents the dataset had when first counted (once: a recount,
    /// by a retried or duplicate step, is ignored) and when it settles; the job as it is then.
    pub async fn record_delete_totals(
        &self,
        job_id: &str,
        files_total: u64,
        settle_at: DateTime,
    ) -> StoreResult<Option<DeleteJobDoc>> {
        let mut uncounted = live_deletion(job_id);
        uncounted.insert("files_total", mongodb::bson::Bson::Null);
        self.deletions().update_one(uncounted, doc! {"$set": {"files_total": files_total as i64}}).await?;
        Ok(self
            .deletions()
            .find_one_and_update(live_deletion(job_id), doc! {"$max": {"settle_at": settle_at}})
            .return_document(mongodb::options::ReturnDocument::After)
            .await?)
    }

    /// Notes that the chain's next step is due at `at` (a delayed step): until a lease after
    /// it, the watchdog does not take the chain for lost.
    pub async fn expect_delete_step(&self, job_id: &str, at: DateTime) -> StoreResult<()> {
        self.deletions().update_one(live_deletion(job_id), doc! {"$max": {"active_at": at}}).await?;
        Ok(())
    }

    /// Notes that a step finished its work and handed over to the next: the watchdog's count
    /// of resends in a row starts again.
    pub async fn clear_delete_resends(&self, job_id: &str) -> StoreResult<()> {
        self.deletions().update_one(live_deletion(job_id), doc! {"$set": {"resends": 0}}).await?;
        Ok(())
    }

    /// Claims the watchdog's `resends`-th resend in a row of a lost step, restarting the lease:
    /// of two concurrent rounds that saw `resends - 1`, one claims it. Whether this call did.
    pub async fn claim_delete_resend(&self, job_id: &str, resends: u32) -> StoreResult<bool> {
        let mut filter = live_deletion(job_id);
        filter.insert("resends", (resends - 1) as i64);
        let claimed = self
            .deletions()
            .update_one(filter, doc! {"$set": {"resends": resends as i64, "active_at": DateTime::now()}})
            .await?;
        Ok(claimed.modified_count == 1)
    }

    /// Ends a delete job as completed, every one of its `files_total` image documents deleted,
    /// unless it already ended: of concurrent callers, exactly one wins. Whether this call did.
    pub async fn finish_delete(&self, job_id: &str, files_total: u64) -> StoreResult<bool> {
        let now = DateTime::now();
        let won = self
            .deletions()
            .update_one(
                live_deletion(job_id),
                doc! {"$set": {
                    "status": "completed",
                    "phase": to_bson(&DeletePhase::Finalizing).expect("phases serialize"),
                    "files_total": files_total as i64,
                    "files_done": files_total as i64,
                    "updated_at": now,
                    "finished_at": now,
                }},
            )
            .await?;
        Ok(won.modified_count == 1)
    }
}
