//! Chunks: the coordinator's unit of exactly-once accounting.
//!
//! Planning writes one [`ChunkDoc`] per chunk (deterministic `_id`), state `pending`, and its
//! file list apart, in `import_chunk_files` under the same `_id`: progress sums and status polls
//! scan the small records only, never a million file entries. A chunk's outcome is recorded by
//! one conditional update `pending → done|failed` that carries the chunk's statistics
//! ([`Chunks::record_outcome`]), so a duplicate or concurrent delivery can never count twice:
//! the loser's update matches nothing. Progress is the sum over finished chunks, which only
//! grows.

use std::borrow::Cow;

use futures::TryStreamExt;
use mongodb::bson::{doc, to_bson, DateTime, Document};
use mongodb::{Collection, Database, IndexModel};
use serde::{Deserialize, Serialize};
use yds_format::labels::MAX_LABEL_FILE_BYTES;

use crate::findings::{Finding, ERROR_SAMPLE};
use crate::members::Location;
use crate::statistics::Statistics;
use crate::{is_duplicate_key, of_job, StoreResult};

/// One image of a chunk, with its label file when it has one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChunkFile {
    pub split: String,
    /// Path relative to the split's image root.
    pub file_name: String,
    /// Where the image's bytes are.
    pub image: Location,
    /// The image's size in bytes.
    pub size: u64,
    /// Where the label file's bytes are, if the source has one.
    #[serde(default)]
    pub label: Option<Location>,
    /// The label file's size in bytes: a label over [`MAX_LABEL_FILE_BYTES`] is judged from it
    /// without being read (an archive may hold a 2 GiB "label"). 0 without a label, and in
    /// chunks planned before it was recorded (their labels are read whatever their size).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub label_size: u64,
}

impl ChunkFile {
    /// Whether the label file is too large to be read (and so judged from its size).
    pub fn label_too_large(&self) -> bool {
        self.label.is_some() && self.label_size > MAX_LABEL_FILE_BYTES as u64
    }

    /// Bytes importing this file reads: the image and, unless too large to read, the label.
    /// Chunks and read groups are bounded by this.
    pub fn bytes_read(&self) -> u64 {
        self.size + if self.label_too_large() { 0 } else { self.label_size }
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChunkState {
    Pending,
    Done,
    /// Gave up after the queue's last attempt; its files are listed as errors.
    Failed,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChunkDoc {
    #[serde(rename = "_id")]
    pub id: String,
    pub job_id: String,
    pub index: u32,
    pub file_count: u64,
    pub state: ChunkState,
    #[serde(default, rename = "stats")]
    pub statistics: Option<Statistics>,
    #[serde(default)]
    pub errors: Vec<Finding>,
    /// When the latest delivery started working on the chunk (the watchdog's lease).
    #[serde(default)]
    pub started_at: Option<DateTime>,
    /// Attempts that started on the chunk (deliveries of its tasks, retries and resends).
    #[serde(default, rename = "deliveries")]
    pub attempts: u32,
    /// When the chunk's latest task was enqueued.
    #[serde(default)]
    pub enqueued_at: Option<DateTime>,
    /// Times the watchdog resent the chunk's lost task (the import's `watchdog`).
    #[serde(default, rename = "redeliveries")]
    pub resends: u32,
    /// When the outcome was recorded.
    #[serde(default)]
    pub finished_at: Option<DateTime>,
    /// Processing time of the attempt that recorded the outcome, in milliseconds.
    #[serde(default)]
    pub elapsed_ms: Option<u64>,
}

/// The `_id` of chunk `index` of `job_id` (and of its file list).
pub fn chunk_id(job_id: &str, index: u32) -> String {
    format!("{job_id}:{index:07}")
}

/// What an attempt records as a chunk's outcome ([`Chunks::record_outcome`]).
#[derive(Debug)]
pub struct Outcome<'a> {
    pub state: ChunkState,
    pub statistics: &'a Statistics,
    /// What went wrong with its files (a sample is kept).
    pub errors: &'a [Finding],
    /// How long the attempt took; none for a chunk given up.
    pub elapsed: Option<std::time::Duration>,
}

/// A chunk's files, under the chunk's `_id`; deleted with the job's other scratch once it has
/// ended.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ChunkFilesDoc {
    #[serde(rename = "_id")]
    id: String,
    files: Vec<ChunkFile>,
}

/// The owner of `import_chunks` and `import_chunk_files`.
#[derive(Clone, Debug)]
pub struct Chunks {
    records: Collection<ChunkDoc>,
    file_lists: Collection<ChunkFilesDoc>,
}

/// A job's finished chunks.
fn finished(job_id: &str) -> Document {
    doc! {"job_id": job_id, "state": {"$in": ["done", "failed"]}}
}

impl Chunks {
    pub(crate) fn new(database: &Database) -> Self {
        Self { records: database.collection("import_chunks"), file_lists: database.collection("import_chunk_files") }
    }

    pub(crate) async fn ensure_indexes(&self) -> StoreResult<()> {
        // Pending chunks of a job, and progress sums.
        self.records.create_indexes([IndexModel::builder().keys(doc! {"job_id": 1, "state": 1}).build()]).await?;
        Ok(())
    }

    /// Creates one chunk record, its file list first (a chunk record never lacks its files);
    /// what already exists (a retried plan) is kept.
    pub async fn create(&self, job_id: &str, index: u32, files: &[ChunkFile]) -> StoreResult<()> {
        let list = ChunkFilesDoc { id: chunk_id(job_id, index), files: files.to_vec() };
        match self.file_lists.insert_one(list).await {
            Err(err) if !is_duplicate_key(&err) => return Err(err.into()),
            _ => {}
        }
        let chunk = ChunkDoc {
            id: chunk_id(job_id, index),
            job_id: job_id.to_owned(),
            index,
            file_count: files.len() as u64,
            state: ChunkState::Pending,
            statistics: None,
            errors: Vec::new(),
            started_at: None,
            attempts: 0,
            enqueued_at: Some(DateTime::now()),
            resends: 0,
            finished_at: None,
            elapsed_ms: None,
        };
        match self.records.insert_one(chunk).await {
            Err(err) if !is_duplicate_key(&err) => Err(err.into()),
            _ => Ok(()),
        }
    }

    pub async fn find(&self, job_id: &str, index: u32) -> StoreResult<Option<ChunkDoc>> {
        Ok(self.records.find_one(doc! {"_id": chunk_id(job_id, index)}).await?)
    }

    /// Every chunk record of a job, in no particular order (benchmarks read their timings).
    pub async fn of_job(&self, job_id: &str) -> StoreResult<Vec<ChunkDoc>> {
        Ok(self.records.find(doc! {"job_id": job_id}).await?.try_collect().await?)
    }

    /// The files of chunk `index`: the task's list when it carried one, else the stored list
    /// (large chunks travel without theirs, as do the watchdog's resends; empty if there is
    /// none).
    pub async fn files<'a>(
        &self,
        job_id: &str,
        index: u32,
        from_task: &'a [ChunkFile],
    ) -> StoreResult<Cow<'a, [ChunkFile]>> {
        if !from_task.is_empty() {
            return Ok(from_task.into());
        }
        let found = self.file_lists.find_one(doc! {"_id": chunk_id(job_id, index)}).await?;
        Ok(found.map(|doc| doc.files).unwrap_or_default().into())
    }

    /// Notes that an attempt starts working on a pending chunk (its lease starts now) and is
    /// in flight until [`Chunks::mark_ended`]. Whether the chunk was still pending: an attempt
    /// that finds it ended writes nothing, so once a job has ended, every attempt that may
    /// still write is counted ([`Chunks::any_in_flight`]).
    pub async fn mark_started(&self, job_id: &str, index: u32) -> StoreResult<bool> {
        let started = self
            .records
            .update_one(
                doc! {"_id": chunk_id(job_id, index), "state": "pending"},
                doc! {"$set": {"started_at": DateTime::now()}, "$inc": {"deliveries": 1, "in_flight": 1}},
            )
            .await?;
        Ok(started.matched_count == 1)
    }

    /// Notes that an attempt [`Chunks::mark_started`] counted stopped writing, whether it
    /// succeeded or failed. An attempt whose process died is never uncounted: its chunk stays
    /// in flight, and whoever waits for it falls back to a lease.
    pub async fn mark_ended(&self, job_id: &str, index: u32) -> StoreResult<()> {
        self.records.update_one(doc! {"_id": chunk_id(job_id, index)}, doc! {"$inc": {"in_flight": -1}}).await?;
        Ok(())
    }

    /// Whether an attempt on one of the job's chunks may still be writing.
    pub async fn any_in_flight(&self, job_id: &str) -> StoreResult<bool> {
        let busy = self
            .records
            .clone_with_type::<Document>()
            .find_one(doc! {"job_id": job_id, "in_flight": {"$gt": 0}})
            .projection(doc! {"_id": 1})
            .await?;
        Ok(busy.is_some())
    }

    /// Records a chunk's outcome once. Returns false when it was already recorded (a
    /// duplicate).
    pub async fn record_outcome(&self, job_id: &str, index: u32, outcome: &Outcome<'_>) -> StoreResult<bool> {
        let errors = &outcome.errors[..outcome.errors.len().min(ERROR_SAMPLE)];
        let result = self
            .records
            .update_one(
                doc! {"_id": chunk_id(job_id, index), "state": "pending"},
                doc! {"$set": {
                    "state": to_bson(&outcome.state).expect("states serialize"),
                    "stats": to_bson(outcome.statistics).expect("statistics serialize"),
                    "errors": to_bson(errors).expect("findings serialize"),
                    "finished_at": DateTime::now(),
                    "elapsed_ms": outcome.elapsed.map(|d| d.as_millis() as i64),
                }},
            )
            .await?;
        Ok(result.modified_count == 1)
    }

    /// Whether any chunk of the job is pending: one index entry read, where counting them would
    /// read every pending one on each chunk's completion (quadratic over a large job).
    pub async fn any_pending(&self, job_id: &str) -> StoreResult<bool> {
        let pending = self
            .records
            .clone_with_type::<Document>()
            .find_one(doc! {"job_id": job_id, "state": "pending"})
            .projection(doc! {"_id": 0, "state": 1})
            .await?;
        Ok(pending.is_some())
    }

    /// Pending chunks whose latest attempt started before `expired`.
    pub async fn started_before(&self, job_id: &str, expired: DateTime) -> StoreResult<Vec<ChunkDoc>> {
        let filter = doc! {"job_id": job_id, "state": "pending", "started_at": {"$lt": expired}};
        Ok(self.records.find(filter).await?.try_collect().await?)
    }

    /// Whether any chunk of the job was enqueued, started or finished since `since`: the job's
    /// queue is not quiet.
    pub async fn active_since(&self, job_id: &str, since: DateTime) -> StoreResult<bool> {
        let recent = doc! {"job_id": job_id, "$or": [
            {"started_at": {"$gte": since}},
            {"finished_at": {"$gte": since}},
            {"enqueued_at": {"$gte": since}},
        ]};
        Ok(self.records.count_documents(recent).limit(1).await? > 0)
    }

    /// Pending chunks no attempt has started.
    pub async fn never_started(&self, job_id: &str) -> StoreResult<Vec<ChunkDoc>> {
        let filter = doc! {"job_id": job_id, "state": "pending", "started_at": null};
        Ok(self.records.find(filter).await?.try_collect().await?)
    }

    /// Claims the watchdog's `resends`-th resend of a lost chunk's task, restarting its wait:
    /// of two concurrent rounds that saw `resends - 1`, one claims it. Whether this call did.
    pub async fn claim_resend(&self, chunk_id: &str, resends: u32) -> StoreResult<bool> {
        // Stored as `redeliveries`, the name records had before the glossary settled on resends.
        let claimed = self
            .records
            .update_one(
                doc! {"_id": chunk_id, "state": "pending", "redeliveries": resends - 1},
                doc! {"$set": {"redeliveries": resends, "enqueued_at": DateTime::now()}, "$unset": {"started_at": ""}},
            )
            .await?;
        Ok(claimed.modified_count == 1)
    }

    /// Deletes up to `limit` of a job's chunk file lists and as many chunk records. A bounded
    /// piece of work, for a delete job's steps.
    pub async fn delete_some_of_job(&self, job_id: &str, limit: i64) -> StoreResult<crate::Swept> {
        let lists = crate::delete_some_of_job(&self.file_lists.clone_with_type(), job_id, limit).await?;
        // Chunk records share their file list's `_id` (`{job_id}:{index}`).
        let records = crate::delete_some_of_job(&self.records.clone_with_type(), job_id, limit).await?;
        Ok(lists + records)
    }

    /// Deletes the file lists of a job's chunks (the records stay, with their outcomes).
    pub async fn delete_file_lists(&self, job_id: &str) -> StoreResult<u64> {
        Ok(self.file_lists.delete_many(of_job(job_id)).await?.deleted_count)
    }

    /// Sums every finished chunk of `job_id`, streaming (memory bounded by classes and splits).
    pub async fn progress(&self, job_id: &str) -> StoreResult<Progress> {
        let mut cursor = self.records.find(finished(job_id)).await?;
        let mut progress = Progress::default();
        while let Some(chunk) = cursor.try_next().await? {
            progress.files_done += chunk.file_count;
            match chunk.state {
                ChunkState::Done => progress.chunks_done += 1,
                ChunkState::Failed => progress.chunks_failed += 1,
                ChunkState::Pending => {}
            }
            if let Some(stats) = &chunk.statistics {
                progress.statistics.merge(stats);
            }
            let room = ERROR_SAMPLE.saturating_sub(progress.errors.len());
            progress.errors.extend(chunk.errors.into_iter().take(room));
        }
        Ok(progress)
    }

    /// The totals a status poll shows, summed by MongoDB (one small answer however many chunks a
    /// job has): files and chunks finished, the scalar counts, and a sample of the chunks' errors.
    /// Per-class and per-split figures are left out; [`Chunks::progress`] sums those once, at the
    /// end.
    pub async fn running_totals(&self, job_id: &str) -> StoreResult<Progress> {
        let finished = finished(job_id);
        let count_state = |state: &str| doc! {"$sum": {"$cond": [{"$eq": ["$state", state]}, 1, 0]}};
        let pipeline = [
            doc! {"$match": finished.clone()},
            doc! {"$group": {
                "_id": null,
                "files_done": {"$sum": "$file_count"},
                "chunks_done": count_state("done"),
                "chunks_failed": count_state("failed"),
                "images": {"$sum": "$stats.images"},
                "labels": {"$sum": "$stats.labels"},
                "annotations": {"$sum": "$stats.annotations"},
                "background_images": {"$sum": "$stats.background_images"},
                "invalid_images": {"$sum": "$stats.invalid_images"},
                "invalid_labels": {"$sum": "$stats.invalid_labels"},
                "duplicate_rows_removed": {"$sum": "$stats.duplicate_rows_removed"},
            }},
        ];
        let mut progress = Progress::default();
        if let Some(sums) = self.records.aggregate(pipeline).await?.try_next().await? {
            // `$sum` answers an int32 or an int64 depending on the size of the total.
            let number =
                |name: &str| sums.get(name).and_then(|v| v.as_i64().or(v.as_i32().map(i64::from))).unwrap_or(0);
            let count = |name: &str| number(name).max(0) as u64;
            progress.files_done = count("files_done");
            progress.chunks_done = count("chunks_done");
            progress.chunks_failed = count("chunks_failed");
            progress.statistics = Statistics {
                images: count("images"),
                labels: count("labels"),
                annotations: count("annotations"),
                background_images: count("background_images"),
                invalid_images: count("invalid_images"),
                invalid_labels: count("invalid_labels"),
                duplicate_rows_removed: count("duplicate_rows_removed"),
                ..Statistics::default()
            };
        }
        let mut with_errors = self
            .records
            .find(doc! {"$and": [finished, {"errors.0": {"$exists": true}}]})
            .projection(doc! {"stats": 0})
            .limit(ERROR_SAMPLE as i64)
            .await?;
        while let Some(chunk) = with_errors.try_next().await? {
            let room = ERROR_SAMPLE.saturating_sub(progress.errors.len());
            progress.errors.extend(chunk.errors.into_iter().take(room));
        }
        Ok(progress)
    }
}

/// Progress of a job, summed over its finished chunks.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Progress {
    pub files_done: u64,
    pub chunks_done: u64,
    pub chunks_failed: u64,
    pub statistics: Statistics,
    pub errors: Vec<Finding>,
}
