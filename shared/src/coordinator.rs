//! The coordinator: exact progress and exactly-once completion under at-least-once delivery.
//!
//! Planning writes one [`ChunkDoc`] per chunk (deterministic `_id`), state `pending`, and its
//! file list apart, as a [`ChunkFilesDoc`] of the same `_id`: progress sums and status polls
//! scan the small records only, never a million file entries. A chunk's
//! outcome is recorded by one conditional update `pending → done|failed` that carries the
//! chunk's statistics, so a duplicate or concurrent delivery can never count twice: the loser's
//! update matches nothing. Progress is the sum over finished chunks, which only grows.
//!
//! Completion: after every chunk outcome (and after planning), [`try_finalize`] checks whether
//! the job is planned and no chunk is pending; if so it sums the chunks, writes the dataset's
//! statistics (idempotent: same values every time) and then moves the job to its terminal
//! status with a conditional update that only one caller can win. A caller that crashed in
//! between is retried by the queue and finishes the step.

use std::collections::BTreeMap;

use futures::TryStreamExt;
use mongodb::bson::{doc, DateTime};
use serde::{Deserialize, Serialize};

use crate::db::{is_duplicate_key, Db, DbResult};
use crate::ingest::MAX_LABEL_FILE_BYTES;
use crate::jobs::{self, FileError, JobDoc, JobResult, JobStatus, ERROR_SAMPLE};
use crate::members::Location;

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
    #[serde(default)]
    pub stats: Option<ChunkStats>,
    #[serde(default)]
    pub errors: Vec<FileError>,
    /// When the latest delivery started working on the chunk (the watchdog's lease).
    #[serde(default)]
    pub started_at: Option<DateTime>,
    /// Deliveries that started on the chunk.
    #[serde(default)]
    pub deliveries: u32,
    /// When the chunk's latest task was enqueued.
    #[serde(default)]
    pub enqueued_at: Option<DateTime>,
    /// Times the watchdog enqueued the chunk again (see [`crate::watchdog`]).
    #[serde(default)]
    pub redeliveries: u32,
    /// Processing time of the delivery that recorded the outcome, in milliseconds.
    #[serde(default)]
    pub elapsed_ms: Option<u64>,
}

pub fn chunk_id(job_id: &str, index: u32) -> String {
    format!("{job_id}:{index:07}")
}

/// A chunk's files, in `import_chunk_files` under the chunk's `_id`; deleted with the job's
/// other scratch once it has ended.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChunkFilesDoc {
    #[serde(rename = "_id")]
    pub id: String,
    pub files: Vec<ChunkFile>,
}

/// The files of chunk `index`: the task's list when it carried one, else the stored list (large
/// chunks travel without theirs, as do the watchdog's redeliveries; empty if there is none).
pub async fn chunk_files<'a>(
    db: &Db,
    job_id: &str,
    index: u32,
    from_task: &'a [ChunkFile],
) -> DbResult<std::borrow::Cow<'a, [ChunkFile]>> {
    if !from_task.is_empty() {
        return Ok(from_task.into());
    }
    let found = db.chunk_files.find_one(doc! {"_id": chunk_id(job_id, index)}).await?;
    Ok(found.map(|doc| doc.files).unwrap_or_default().into())
}

/// Counts over a set of images: one chunk's, or (summed) a whole dataset's.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChunkStats {
    pub images: u64,
    pub labels: u64,
    /// Instances in valid images.
    pub annotations: u64,
    pub background_images: u64,
    pub invalid_images: u64,
    pub invalid_labels: u64,
    pub duplicate_rows_removed: u64,
    /// Per split name.
    #[serde(default)]
    pub splits: BTreeMap<String, SplitStats>,
    /// Per class id (as text: BSON keys are strings).
    #[serde(default)]
    pub classes: BTreeMap<String, ClassStats>,
    /// Per issue code, how many times it was found.
    #[serde(default)]
    pub issues: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SplitStats {
    pub images: u64,
    pub annotations: u64,
    pub background_images: u64,
    pub invalid_images: u64,
    /// Per class id (as text), within this split.
    #[serde(default)]
    pub classes: BTreeMap<String, ClassStats>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClassStats {
    pub instances: u64,
    pub images: u64,
}

impl ChunkStats {
    pub fn merge(&mut self, other: &ChunkStats) {
        self.images += other.images;
        self.labels += other.labels;
        self.annotations += other.annotations;
        self.background_images += other.background_images;
        self.invalid_images += other.invalid_images;
        self.invalid_labels += other.invalid_labels;
        self.duplicate_rows_removed += other.duplicate_rows_removed;
        for (name, s) in &other.splits {
            let mine = self.splits.entry(name.clone()).or_default();
            mine.images += s.images;
            mine.annotations += s.annotations;
            mine.background_images += s.background_images;
            mine.invalid_images += s.invalid_images;
            merge_classes(&mut mine.classes, &s.classes);
        }
        merge_classes(&mut self.classes, &other.classes);
        for (code, n) in &other.issues {
            *self.issues.entry(code.clone()).or_default() += n;
        }
    }
}

fn merge_classes(mine: &mut BTreeMap<String, ClassStats>, other: &BTreeMap<String, ClassStats>) {
    for (id, c) in other {
        let entry = mine.entry(id.clone()).or_default();
        entry.instances += c.instances;
        entry.images += c.images;
    }
}

/// Creates one chunk record, its file list first (a chunk record never lacks its files); what
/// already exists (a retried plan) is kept.
pub async fn create_chunk(db: &Db, job_id: &str, index: u32, files: &[ChunkFile]) -> DbResult<()> {
    let list = ChunkFilesDoc { id: chunk_id(job_id, index), files: files.to_vec() };
    match db.chunk_files.insert_one(list).await {
        Ok(_) => {}
        Err(err) if is_duplicate_key(&err) => {}
        Err(err) => return Err(err.into()),
    }
    let chunk = ChunkDoc {
        id: chunk_id(job_id, index),
        job_id: job_id.to_owned(),
        index,
        file_count: files.len() as u64,
        state: ChunkState::Pending,
        stats: None,
        errors: Vec::new(),
        started_at: None,
        deliveries: 0,
        enqueued_at: Some(DateTime::now()),
        redeliveries: 0,
        elapsed_ms: None,
    };
    match db.chunks.insert_one(chunk).await {
        Ok(_) => Ok(()),
        Err(err) if is_duplicate_key(&err) => Ok(()),
        Err(err) => Err(err.into()),
    }
}

/// Notes that a delivery starts working on a pending chunk (its lease starts now).
pub async fn start_chunk(db: &Db, job_id: &str, index: u32) -> DbResult<()> {
    db.chunks
        .update_one(
            doc! {"_id": chunk_id(job_id, index), "state": "pending"},
            doc! {"$set": {"started_at": DateTime::now()}, "$inc": {"deliveries": 1}},
        )
        .await?;
    Ok(())
}

/// Records a chunk's outcome once. Returns false when it was already recorded (a duplicate).
pub async fn finish_chunk(
    db: &Db,
    job_id: &str,
    index: u32,
    state: ChunkState,
    stats: &ChunkStats,
    errors: &[FileError],
    elapsed: Option<std::time::Duration>,
) -> DbResult<bool> {
    let elapsed_ms = elapsed.map(|d| d.as_millis() as i64);
    let stats = mongodb::bson::to_bson(stats).expect("stats serialize");
    let errors = mongodb::bson::to_bson(&errors[..errors.len().min(ERROR_SAMPLE)]).expect("errors serialize");
    let state = mongodb::bson::to_bson(&state).expect("state serializes");
    let result = db
        .chunks
        .update_one(
            doc! {"_id": chunk_id(job_id, index), "state": "pending"},
            doc! {"$set": {
                "state": state,
                "stats": stats,
                "errors": errors,
                "finished_at": DateTime::now(),
                "elapsed_ms": elapsed_ms,
            }},
        )
        .await?;
    Ok(result.modified_count == 1)
}

/// Progress of a job, summed over its finished chunks.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Progress {
    pub files_done: u64,
    pub chunks_done: u64,
    pub chunks_failed: u64,
    pub stats: ChunkStats,
    pub errors: Vec<FileError>,
}

/// Sums every finished chunk of `job_id`, streaming (memory bounded by classes and splits).
pub async fn progress(db: &Db, job_id: &str) -> DbResult<Progress> {
    let mut cursor = db.chunks.find(doc! {"job_id": job_id, "state": {"$in": ["done", "failed"]}}).await?;
    let mut progress = Progress::default();
    while let Some(chunk) = cursor.try_next().await? {
        progress.files_done += chunk.file_count;
        match chunk.state {
            ChunkState::Done => progress.chunks_done += 1,
            ChunkState::Failed => progress.chunks_failed += 1,
            ChunkState::Pending => {}
        }
        if let Some(stats) = &chunk.stats {
            progress.stats.merge(stats);
        }
        let room = ERROR_SAMPLE.saturating_sub(progress.errors.len());
        progress.errors.extend(chunk.errors.into_iter().take(room));
    }
    Ok(progress)
}

/// The totals a status poll shows, summed by MongoDB (one small answer however many chunks a
/// job has): files and chunks finished, the scalar counts, and a sample of the chunks' errors.
/// Per-class and per-split figures are left out; [`progress`] sums those once, at the end.
pub async fn running_totals(db: &Db, job_id: &str) -> DbResult<Progress> {
    let finished = doc! {"job_id": job_id, "state": {"$in": ["done", "failed"]}};
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
    if let Some(sums) = db.chunks.aggregate(pipeline).await?.try_next().await? {
        // `$sum` answers an int32 or an int64 depending on the size of the total.
        let number = |name: &str| sums.get(name).and_then(|v| v.as_i64().or(v.as_i32().map(i64::from))).unwrap_or(0);
        let count = |name: &str| number(name).max(0) as u64;
        progress.files_done = count("files_done");
        progress.chunks_done = count("chunks_done");
        progress.chunks_failed = count("chunks_failed");
        progress.stats = ChunkStats {
            images: count("images"),
            labels: count("labels"),
            annotations: count("annotations"),
            background_images: count("background_images"),
            invalid_images: count("invalid_images"),
            invalid_labels: count("invalid_labels"),
            duplicate_rows_removed: count("duplicate_rows_removed"),
            ..ChunkStats::default()
        };
    }
    let mut with_errors = db
        .chunks
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

/// Ends the job if it is planned and no chunk is pending. Safe to call any number of times,
/// concurrently: the dataset write is idempotent and only one caller moves the job.
pub async fn try_finalize(db: &Db, job_id: &str) -> DbResult<()> {
    let Some(job) = jobs::find(db, job_id).await? else { return Ok(()) };
    if job.status.is_terminal() || !job.planned {
        return Ok(());
    }
    // Whether any chunk is pending: one index entry read, where counting them would read every
    // pending one on each chunk's completion (quadratic over a large job).
    let pending = db
        .chunks
        .clone_with_type::<mongodb::bson::Document>()
        .find_one(doc! {"job_id": job_id, "state": "pending"})
        .projection(doc! {"_id": 0, "state": 1})
        .await?;
    if pending.is_some() {
        return Ok(());
    }
    let progress = progress(db, job_id).await?;
    let status = if progress.chunks_failed > 0
        || progress.stats.invalid_images > 0
        || progress.stats.invalid_labels > 0
        || !job.errors.is_empty()
    {
        JobStatus::CompletedWithErrors
    } else {
        JobStatus::Completed
    };
    finish(db, &job, status, progress).await
}

async fn finish(db: &Db, job: &JobDoc, status: JobStatus, progress: Progress) -> DbResult<()> {
    let duplicates = crate::images::mark_duplicates(db, &job.dataset_id).await?;
    let stats = mongodb::bson::to_bson(&progress.stats).expect("stats serialize");
    let duplicates = mongodb::bson::to_bson(&duplicates).expect("counts serialize");
    db.datasets
        .update_one(
            doc! {"_id": &job.dataset_id, "status": "importing"},
            doc! {"$set": {"status": "ready", "stats": stats, "duplicates": duplicates}},
        )
        .await?;
    let result = JobResult {
        files_done: progress.files_done,
        stats: progress.stats,
        chunks_done: progress.chunks_done,
        chunks_failed: progress.chunks_failed,
        errors: progress.errors,
    };
    let now = DateTime::now();
    let won = db
        .jobs
        .update_one(
            doc! {"_id": &job.id, "status": {"$nin": JobStatus::TERMINAL.to_vec()}},
            doc! {"$set": {
                "status": mongodb::bson::to_bson(&status).expect("status serializes"),
                "result": mongodb::bson::to_bson(&result).expect("result serializes"),
                "updated_at": now,
                "finished_at": now,
            }},
        )
        .await?;
    if won.modified_count == 1 {
        tracing::info!(job_id = %job.id, status = ?status, "job finished");
    }
    Ok(())
}
