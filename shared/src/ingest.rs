//! Importing one chunk: read each image's header and label file, judge them, copy them into
//! the dataset's prefix and write the image documents; then report the chunk once.
//!
//! Idempotent by construction: files go to deterministic keys, documents have deterministic ids
//! and are inserted unordered with duplicate keys meaning "already done", and the chunk's
//! outcome is recorded by the coordinator's conditional update. A delivery that crashed half-way
//! leaves a prefix of this work, which the retry completes.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use mongodb::bson::doc;

use crate::backends::Backends;
use crate::coordinator::{self, ChunkFile, ChunkState, ChunkStats};
use crate::datasets::DatasetDoc;
use crate::db::is_duplicate_key;
use crate::format::image_file::inspect_image;
use crate::format::labels::{parse_label_file, LabelRules, ParsedLabels};
use crate::format::Task;
use crate::images::{image_id, ImageDoc};
use crate::jobs::{self, FileError, ERROR_SAMPLE};
use crate::storage::{keys, StorageError};
use crate::validation::Issue;

#[derive(Debug, thiserror::Error)]
pub enum ChunkError {
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
    #[error("{0}")]
    Db(#[from] crate::db::DbError),
    /// Fault injection (`YDS_CHAOS_CRASH`): stopped after writing part of the chunk.
    #[error("injected crash half-way through the chunk")]
    InjectedCrash,
}

impl From<mongodb::error::Error> for ChunkError {
    fn from(err: mongodb::error::Error) -> Self {
        ChunkError::Db(crate::db::DbError(err))
    }
}

/// Files of one chunk read and copied at once.
const FILE_CONCURRENCY: usize = 8;

/// Options of one delivery.
#[derive(Debug, Clone, Copy, Default)]
pub struct Delivery {
    /// Stop after writing half of the documents and fail (fault injection).
    pub crash_half_way: bool,
}

/// Imports chunk `index` of `job_id`. Does nothing for a chunk already recorded, except
/// re-checking completion (the previous delivery may have died right after recording).
pub async fn process_chunk(
    backends: &Backends,
    job_id: &str,
    index: u32,
    files: &[ChunkFile],
    delivery: Delivery,
) -> Result<(), ChunkError> {
    let db = &backends.db;
    let Some(job) = jobs::find(db, job_id).await? else {
        tracing::warn!(job_id, index, "chunk of an unknown job; dropped");
        return Ok(());
    };
    let chunk = db.chunks.find_one(doc! {"_id": coordinator::chunk_id(job_id, index)}).await?;
    let Some(chunk) = chunk.filter(|c| c.state == ChunkState::Pending && !job.status.is_terminal()) else {
        coordinator::try_finalize(db, job_id).await?;
        return Ok(());
    };
    // Large chunks travel without their list (Cloud Tasks caps a task at 1 MB): the chunk's
    // record always has it.
    let files = if files.is_empty() { &chunk.files[..] } else { files };
    let Some(dataset) = db.datasets.find_one(doc! {"_id": &job.dataset_id}).await? else {
        return Ok(());
    };
    let rules = label_rules(&dataset);

    // Owned inputs per future: borrowed ones trip the compiler's Send check in async_trait.
    let rules = std::sync::Arc::new(rules);
    let outcomes: Vec<FileOutcome> = futures::stream::iter(files.to_vec())
        .map(|file| {
            let (backends, rules, dataset_id) = (backends.clone(), rules.clone(), dataset.id.clone());
            async move { import_file(&backends, &dataset_id, &rules, &file).await }
        })
        .buffered(FILE_CONCURRENCY)
        .try_collect()
        .await?;

    let docs: Vec<&ImageDoc> = outcomes.iter().map(|o| &o.doc).collect();
    if delivery.crash_half_way {
        insert_images(backends, &docs[..docs.len() / 2]).await?;
        return Err(ChunkError::InjectedCrash);
    }
    insert_images(backends, &docs).await?;

    let mut stats = ChunkStats::default();
    let mut errors = Vec::new();
    for outcome in &outcomes {
        add_to_stats(&mut stats, outcome);
        if errors.len() < ERROR_SAMPLE {
            errors.extend(outcome.error.clone());
        }
    }
    coordinator::finish_chunk(db, job_id, index, ChunkState::Done, &stats, &errors).await?;
    coordinator::try_finalize(db, job_id).await?;
    Ok(())
}

/// Records chunk `index` as failed (the queue's last attempt failed): its files become errors
/// and the job can still end.
pub async fn give_up_chunk(
    backends: &Backends,
    job_id: &str,
    index: u32,
    files: &[ChunkFile],
    cause: &str,
) -> Result<(), ChunkError> {
    let errors: Vec<FileError> = files
        .iter()
        .take(ERROR_SAMPLE)
        .map(|f| FileError {
            file: format!("{}/{}", f.split, f.file_name),
            code: "chunk_failed".into(),
            message: format!("not imported: the chunk failed on every attempt ({cause})"),
        })
        .collect();
    coordinator::finish_chunk(&backends.db, job_id, index, ChunkState::Failed, &ChunkStats::default(), &errors).await?;
    coordinator::try_finalize(&backends.db, job_id).await?;
    Ok(())
}

fn label_rules(dataset: &DatasetDoc) -> LabelRules {
    LabelRules {
        task: dataset.task.unwrap_or(Task::Detect),
        names: dataset.classes.clone(),
        kpt_shape: dataset.kpt_shape.map(|[n, d]| (n as usize, d as usize)),
    }
}

/// What importing one file produced.
struct FileOutcome {
    doc: ImageDoc,
    has_label: bool,
    label_corrupt: bool,
    duplicates_removed: u32,
    error: Option<FileError>,
}

async fn import_file(
    backends: &Backends,
    dataset_id: &str,
    rules: &LabelRules,
    file: &ChunkFile,
) -> Result<FileOutcome, ChunkError> {
    let path = format!("{}/{}", file.split, file.file_name);
    let image = backends.store.get(&file.image).await?;
    let info = inspect_image(&image, &file.file_name);
    let mut issues = info.issues.clone();

    let label_text = match &file.label {
        Some(key) => Some(backends.store.get(key).await?),
        None => None,
    };
    let parsed = match &label_text {
        None => ParsedLabels { annotations: Vec::new(), issues: Vec::new(), corrupt: false, duplicates_removed: 0 },
        Some(bytes) => match std::str::from_utf8(bytes) {
            Ok(text) => parse_label_file(text, rules),
            Err(_) => ParsedLabels {
                annotations: Vec::new(),
                issues: vec![Issue::new("label_not_utf8", "the label file is not UTF-8 text")],
                corrupt: true,
                duplicates_removed: 0,
            },
        },
    };
    issues.extend(parsed.issues.iter().cloned());

    // Copy before writing the document, so a document never points at a missing file.
    backends.store.put(&keys::dataset_image(dataset_id, &file.split, &file.file_name), image.clone()).await?;
    if let Some(bytes) = &label_text {
        backends.store.put(&keys::dataset_label(dataset_id, &file.split, &file.file_name), Bytes::clone(bytes)).await?;
    }

    let valid = info.valid && !parsed.corrupt;
    let error = (!valid).then(|| {
        let first = issues.first().cloned().unwrap_or_else(|| Issue::new("invalid", "invalid"));
        FileError { file: path.clone(), code: first.code, message: first.message }
    });
    let class_ids: BTreeSet<u32> = parsed.annotations.iter().map(|a| a.class_id).collect();
    let issue_codes: BTreeSet<String> = issues.iter().map(|i| i.code.clone()).collect();
    let doc = ImageDoc {
        id: image_id(dataset_id, &path),
        dataset_id: dataset_id.to_owned(),
        path,
        split: file.split.clone(),
        file_name: file.file_name.clone(),
        width: info.width,
        height: info.height,
        stored_width: info.stored_width,
        stored_height: info.stored_height,
        orientation: info.orientation,
        format: info.format,
        size_bytes: image.len() as u64,
        content_hash: info.content_hash,
        valid,
        annotations: parsed.annotations,
        issues,
        issue_codes: issue_codes.into_iter().collect(),
        class_ids: class_ids.into_iter().collect(),
    };
    Ok(FileOutcome {
        doc,
        has_label: label_text.is_some(),
        label_corrupt: parsed.corrupt,
        duplicates_removed: parsed.duplicates_removed,
        error,
    })
}

async fn insert_images(backends: &Backends, docs: &[&ImageDoc]) -> Result<(), ChunkError> {
    if docs.is_empty() {
        return Ok(());
    }
    match backends.db.images.insert_many(docs.iter().copied()).ordered(false).await {
        Ok(_) => Ok(()),
        Err(err) if is_duplicate_key(&err) => Ok(()),
        Err(err) => Err(err.into()),
    }
}

fn add_to_stats(stats: &mut ChunkStats, outcome: &FileOutcome) {
    let doc = &outcome.doc;
    stats.images += 1;
    stats.labels += outcome.has_label as u64;
    stats.invalid_labels += outcome.label_corrupt as u64;
    stats.duplicate_rows_removed += outcome.duplicates_removed as u64;
    for issue in &doc.issues {
        *stats.issues.entry(issue.code.clone()).or_default() += 1;
    }
    let split = stats.splits.entry(doc.split.clone()).or_default();
    split.images += 1;
    if !doc.valid {
        stats.invalid_images += 1;
        split.invalid_images += 1;
        return;
    }
    let instances = doc.annotations.len() as u64;
    stats.annotations += instances;
    split.annotations += instances;
    if instances == 0 {
        stats.background_images += 1;
        split.background_images += 1;
    }
    let mut per_class: BTreeMap<u32, u64> = BTreeMap::new();
    for annotation in &doc.annotations {
        *per_class.entry(annotation.class_id).or_default() += 1;
    }
    for (class_id, n) in per_class {
        for classes in [&mut stats.classes, &mut split.classes] {
            let class = classes.entry(class_id.to_string()).or_default();
            class.instances += n;
            class.images += 1;
        }
    }
}
