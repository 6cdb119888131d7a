//! What both ways of cutting chunks share — the plan once the sources are indexed
//! ([`super::chunking`]) and early cutting while a tar is staged ([`super::early`]): numbering
//! chunks, recording them and sending their tasks ([`ChunkWriter`]), and recording what chunks
//! read of the dataset (its classes and task) before the first one is sent.

use bytes::Bytes;
use tracing::Instrument;
use yds_format::data_yaml::DatasetConfig;
use yds_format::labels::infer_task;
use yds_format::Task;
use yds_store::datasets::ConfigRecord;
use yds_store::{ChunkFile, JobDoc, Location};

use crate::error::ImportError;
use crate::importer::Importer;
use crate::sources::MemberReader;
use crate::tasks::TaskBody;

/// Most files a chunk task lists itself (~250 bytes each, well under Cloud Tasks' 1 MB).
const FILES_IN_TASK_MAX: usize = 2000;

/// Chunks written and enqueued at once (enqueueing is a network call on Cloud Tasks).
const CHUNK_WRITES_IN_FLIGHT: usize = 8;

/// Label files read to infer the task when neither the request nor the YAML names it.
pub(super) const TASK_SNIFF_FILES: usize = 32;

/// A chunk being cut: its files, the bytes they read, and the member ids of their label files.
#[derive(Default)]
pub(super) struct CutChunk {
    pub(super) files: Vec<ChunkFile>,
    pub(super) bytes: u64,
    pub(super) label_ids: Vec<String>,
}

/// Numbers chunks in cutting order (deterministic, so a retried plan rewrites the same chunks),
/// records them and sends their tasks, a few at once in the background.
pub(super) struct ChunkWriter {
    importer: Importer,
    job_id: String,
    /// Most files in a chunk.
    pub(super) chunk_size: usize,
    /// Most bytes of images and label files in a chunk.
    pub(super) chunk_max_bytes: u64,
    pub(super) next_index: u32,
    pub(super) files_total: u64,
    /// Chunk records and tasks being written.
    writes: tokio::task::JoinSet<Result<(), ImportError>>,
}

impl ChunkWriter {
    /// Numbers chunks from `next_index` on, `files_total` files already cut before.
    pub(super) fn new(importer: &Importer, job: &JobDoc, next_index: u32, files_total: u64) -> Self {
        Self {
            importer: importer.clone(),
            job_id: job.id.clone(),
            chunk_size: job.chunk_size.max(1) as usize,
            chunk_max_bytes: importer.pacing.chunk_max_bytes.max(1),
            next_index,
            files_total,
            writes: tokio::task::JoinSet::new(),
        }
    }

    /// Numbers the chunk, then records and enqueues it in the background (a few at once).
    pub(super) async fn write_chunk(&mut self, chunk: CutChunk) -> Result<(), ImportError> {
        let CutChunk { files, label_ids, .. } = chunk;
        if files.is_empty() {
            return Ok(());
        }
        while self.writes.len() >= CHUNK_WRITES_IN_FLIGHT {
            if let Some(joined) = self.writes.join_next().await {
                joined.map_err(|e| ImportError::Transient(format!("writing a chunk failed: {e}")))??;
            }
        }
        let index = self.next_index;
        self.next_index += 1;
        self.files_total += files.len() as u64;
        let (importer, job_id) = (self.importer.clone(), self.job_id.clone());
        let (files_total, chunks_total) = (self.files_total, u64::from(self.next_index));
        // The write runs apart from planning; its task carries planning's trace all the same,
        // and its lines planning's span.
        let (trace, span) = (yds_queue::trace::current(), tracing::Span::current());
        let write = async move {
            let db = &importer.db;
            db.chunks.create(&job_id, index, &files).await?;
            // The label files this chunk uses are recorded in the database, so the orphan check
            // at the end is a merge of two sorted ranges, not a set that grows with the dataset
            // in planning's memory.
            db.members.mark_labels_used(label_ids).await?;
            // A task carries its file list while it stays far below Cloud Tasks' 1 MB limit; a
            // larger chunk's task carries none and process-chunk reads the list from the record.
            let files = if files.len() <= FILES_IN_TASK_MAX { files } else { Vec::new() };
            importer.queue.enqueue(&TaskBody::Chunk { job_id: job_id.clone(), index, files, resend: 0 }.task()).await?;
            // Progress while planning goes on; the final totals are set when planning ends.
            db.jobs.raise_totals(&job_id, files_total, chunks_total).await?;
            Ok(())
        };
        self.writes.spawn(yds_queue::trace::scope(trace, write).instrument(span));
        Ok(())
    }

    /// Waits for every chunk write in flight.
    pub(super) async fn finish(&mut self) -> Result<(), ImportError> {
        while let Some(joined) = self.writes.join_next().await {
            joined.map_err(|e| ImportError::Transient(format!("writing a chunk failed: {e}")))??;
        }
        Ok(())
    }
}

/// Keeps the YAML in the dataset's `config/` folder and records what chunks read from the
/// dataset (classes, task, splits) and what a pose dataset's users need (`kpt_shape`,
/// `flip_idx`, `kpt_names`); the same values whenever planning repeats it.
pub(super) async fn record_config(
    importer: &Importer,
    job: &JobDoc,
    yaml_path: &str,
    yaml_text: &str,
    config: &DatasetConfig,
    task: Task,
) -> Result<(), ImportError> {
    let yaml_name = yaml_path.rsplit('/').next().unwrap_or("data.yaml");
    let text = Bytes::from(yaml_text.to_owned());
    importer.objects.put(&yds_storage::keys::dataset_config(&job.dataset_id, yaml_name), text).await?;
    let split_names: Vec<String> = config.splits.iter().map(|s| s.name.clone()).collect();
    let record = ConfigRecord {
        classes: &config.names,
        task,
        split_names: &split_names,
        kpt_shape: config.kpt_shape,
        flip_idx: config.flip_idx.as_deref(),
        kpt_names: config.kpt_names.as_ref(),
    };
    importer.db.datasets.record_config(&job.dataset_id, &record).await?;
    Ok(())
}

/// The task the rows of these label files are written for (unreadable files are skipped).
pub(super) async fn task_from_labels<'a>(
    reader: &MemberReader,
    labels: impl Iterator<Item = &'a Location>,
    config: &DatasetConfig,
) -> Task {
    let mut counts = Vec::new();
    for label in labels {
        let Ok(bytes) = reader.read(label).await else { continue };
        let text = String::from_utf8_lossy(&bytes);
        counts.extend(text.lines().map(|l| l.split_whitespace().count()).filter(|&n| n > 0));
    }
    infer_task(counts, config.kpt_shape)
}
