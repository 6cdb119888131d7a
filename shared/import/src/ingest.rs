//! Importing one chunk: read each image's header and label file, judge them, copy them into
//! the dataset's prefix and write the image documents; then report the chunk once.
//!
//! Idempotent by construction: files go to deterministic keys, documents have deterministic ids
//! and are inserted unordered with duplicate keys meaning "already done", and the chunk's
//! outcome is recorded by the coordinator's conditional update. A delivery that crashed half-way
//! leaves a prefix of this work, which the retry completes.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::OwnedSemaphorePermit;
use yds_format::image_file::inspect_image;
use yds_format::labels::{self, judge_label_bytes, LabelRules, ParsedLabels};
use yds_format::{Issue, Task};
use yds_storage::keys;
use yds_store::chunks::Outcome;
use yds_store::images::{hash_key, image_id};
use yds_store::{
    ChunkFile, ChunkState, ContentSum, DatasetDoc, Finding, ImageDoc, JobDoc, LabelFile, Location, Statistics,
    ERROR_SAMPLE,
};

use crate::coordinator;
use crate::error::ImportError;
use crate::finishing::{self, LabelContent};
use crate::importer::Importer;
use crate::sources::{MemberReader, ReadError};

/// Files of a folder source read at once (zip and packed members come by coalesced ranges).
const FILE_CONCURRENCY: usize = 8;
/// Files read, judged and copied per group (folder files are read one by one,
/// `FILE_CONCURRENCY` at once).
const READ_GROUP_FILES: usize = 64;
/// Image and label bytes read per request group: memory per chunk stays near this, whatever
/// the chunk.
const READ_GROUP_BYTES: u64 = 16 << 20;

/// Imports chunk `index` of `job_id`. Does nothing for a chunk already recorded, except
/// re-checking completion (the previous attempt may have died right after recording). With
/// `crash`, stops after writing half of the documents and fails (fault injection).
pub async fn process_chunk(
    importer: &Importer,
    job_id: &str,
    index: u32,
    files: &[ChunkFile],
    crash: bool,
) -> Result<(), ImportError> {
    let db = &importer.db;
    let Some(job) = db.jobs.find(job_id).await? else {
        tracing::warn!(job_id, index, "chunk of an unknown job; dropped");
        return Ok(());
    };
    let chunk = db.chunks.find(job_id, index).await?;
    if !chunk.is_some_and(|c| c.state == ChunkState::Pending && !job.status.is_terminal()) {
        return coordinator::try_finalize(importer, job_id).await;
    }
    // Large chunks travel without their list (Cloud Tasks caps a task at 1 MB).
    let files = &db.chunks.files(job_id, index, files).await?[..];
    let Some(dataset) = db.datasets.find(&job.dataset_id).await? else {
        return Ok(());
    };
    if !db.chunks.mark_started(job_id, index).await? {
        // Another attempt recorded the outcome since the look above.
        return coordinator::try_finalize(importer, job_id).await;
    }
    let written = import_files(importer, &job, &dataset, index, files, crash).await;
    // Counted out whatever happened: a dataset's deletion waits for no attempt that stopped.
    db.chunks.mark_ended(job_id, index).await?;
    written
}

/// The work of one counted attempt on a chunk: judge and copy its files, write their
/// documents, record the outcome.
async fn import_files(
    importer: &Importer,
    job: &JobDoc,
    dataset: &DatasetDoc,
    index: u32,
    files: &[ChunkFile],
    crash: bool,
) -> Result<(), ImportError> {
    let db = &importer.db;
    let job_id = job.id.as_str();
    let started = Instant::now();
    let rules = label_rules(dataset);
    let reader = MemberReader::new(&importer.sources, &importer.objects, &job.sources);

    let groups = read_groups(files);
    let read = |at: usize, wait: bool| read_group(importer, &reader, files, groups.get(at).cloned(), wait);
    let mut current = read(0, true).await?;
    let mut outcomes: Vec<FileOutcome> = Vec::with_capacity(files.len());
    for (at, group) in groups.iter().enumerate() {
        let GroupRead { reserved, images, labels } = match current.take() {
            Some(prefetched) => prefetched,
            None => read(at, true).await?.expect("a waiting read always reads"),
        };
        let mut copies = Vec::with_capacity(group.len() * 2);
        for ((i, image), label) in group.clone().zip(images).zip(labels) {
            let image = image.unwrap_or_else(|| Err("no image".into()));
            outcomes.push(judge_file(&dataset.id, &rules, &files[i], image, label, &mut copies));
        }
        // Copy before writing the documents, so a document never points at a missing file.
        // The next group is read meanwhile, if the memory budget has room for it right now:
        // waiting for room while holding this group's could deadlock deliveries.
        let (written, next) = tokio::join!(importer.objects.put_many(copies), read(at + 1, false));
        written?;
        drop(reserved);
        current = next?;
    }

    let docs: Vec<&ImageDoc> = outcomes.iter().map(|o| &o.doc).collect();
    if crash {
        db.images.insert_many(&docs[..docs.len() / 2]).await?;
        return Err(ImportError::InjectedCrash);
    }
    db.images.insert_many(&docs).await?;

    let mut statistics = Statistics::default();
    let mut errors = Vec::new();
    for outcome in &outcomes {
        add_to_statistics(&mut statistics, outcome);
        if errors.len() < ERROR_SAMPLE {
            errors.extend(outcome.error.clone());
        }
    }
    let outcome =
        Outcome { state: ChunkState::Done, statistics: &statistics, errors: &errors, elapsed: Some(started.elapsed()) };
    coordinator::record_chunk(importer, job_id, index, &outcome).await
}

/// A read group's images and label files, with the share of the memory budget they hold.
struct GroupRead {
    reserved: OwnedSemaphorePermit,
    images: Vec<FileRead>,
    /// `None` for a file without a label, or with one too large to read.
    labels: Vec<FileRead>,
}

/// Reads the images and label files of `group` (none: nothing to read), together so that
/// packed and zip members come in as few range requests as possible. Waits for the memory
/// budget when `wait`; otherwise reads only if the budget has room now, and returns `None` if
/// not.
async fn read_group(
    importer: &Importer,
    reader: &MemberReader,
    files: &[ChunkFile],
    group: Option<std::ops::Range<usize>>,
    wait: bool,
) -> Result<Option<GroupRead>, ImportError> {
    let Some(group) = group else { return Ok(None) };
    let files = &files[group];
    let bytes = files.iter().map(ChunkFile::bytes_read).sum();
    // Held until the group's copies are written: the process's deliveries together hold at
    // most the budget's worth of files.
    let reserved = if wait {
        importer.chunk_memory.reserve(bytes).await
    } else {
        let Some(reserved) = importer.chunk_memory.try_reserve(bytes) else { return Ok(None) };
        reserved
    };
    let images = files.iter().map(|f| Some(f.image.clone()));
    let labels = files.iter().map(|f| f.label.clone().filter(|_| !f.label_too_large()));
    let locations: Vec<Option<Location>> = images.chain(labels).collect();
    let mut images = read_all(reader, &locations).await?;
    let labels = images.split_off(files.len());
    Ok(Some(GroupRead { reserved, images, labels }))
}

/// One file's bytes once read: `None` when there is no such file, `Some(Err(reason))` when it
/// could not be read.
type FileRead = Option<Result<Bytes, String>>;

/// Consecutive runs of files whose images are read together: bounded by count and bytes.
fn read_groups(files: &[ChunkFile]) -> Vec<std::ops::Range<usize>> {
    let mut groups = Vec::new();
    let (mut start, mut bytes) = (0, 0u64);
    for (i, file) in files.iter().enumerate() {
        let full = i > start && (bytes + file.bytes_read() > READ_GROUP_BYTES || i - start >= READ_GROUP_FILES);
        if full {
            groups.push(start..i);
            (start, bytes) = (i, 0);
        }
        bytes += file.bytes_read();
    }
    if start < files.len() {
        groups.push(start..files.len());
    }
    groups
}

/// Reads files: zip and packed members by coalesced range requests, others several at once. A file that
/// cannot be read comes back as `Some(Err(reason))`; an unreachable source fails the chunk.
async fn read_all(reader: &MemberReader, locations: &[Option<Location>]) -> Result<Vec<FileRead>, ImportError> {
    let mut out: Vec<FileRead> = vec![None; locations.len()];
    let is_ranged = |l: &Location| matches!(l, Location::Zip { .. } | Location::Packed { .. });
    let ranged: Vec<usize> = (0..locations.len()).filter(|&i| locations[i].as_ref().is_some_and(is_ranged)).collect();
    if !ranged.is_empty() {
        let asked: Vec<Location> = ranged.iter().filter_map(|&i| locations[i].clone()).collect();
        let read = reader.read_ranged(&asked).await.map_err(source_failure)?;
        for (i, result) in ranged.into_iter().zip(read) {
            out[i] = Some(damaged_or(result)?);
        }
    }
    let others: Vec<(usize, Location)> =
        locations.iter().enumerate().filter_map(|(i, l)| l.clone().filter(|l| !is_ranged(l)).map(|l| (i, l))).collect();
    let read: Vec<(usize, Result<Bytes, ReadError>)> = futures::stream::iter(others)
        .map(|(i, location)| async move { (i, reader.read(&location).await) })
        .buffer_unordered(FILE_CONCURRENCY)
        .collect()
        .await;
    for (i, result) in read {
        out[i] = Some(damaged_or(result)?);
    }
    Ok(out)
}

/// A damaged file is the file's problem; a source failure is the chunk's.
fn damaged_or(result: Result<Bytes, ReadError>) -> Result<Result<Bytes, String>, ImportError> {
    match result {
        Ok(bytes) => Ok(Ok(bytes)),
        Err(ReadError::Damaged(reason)) => Ok(Err(reason)),
        Err(err) => Err(source_failure(err)),
    }
}

fn source_failure(err: ReadError) -> ImportError {
    ImportError::Transient(format!("source: {err}"))
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
    error: Option<Finding>,
    /// Its share of the dataset's content hash ([`finishing::image_digest`]).
    digest: ContentSum,
}

/// Judges one file and adds the copies it needs (image, label) to `copies`.
fn judge_file(
    dataset_id: &str,
    rules: &LabelRules,
    file: &ChunkFile,
    image: Result<Bytes, String>,
    label: Option<Result<Bytes, String>>,
    copies: &mut Vec<(String, Bytes)>,
) -> FileOutcome {
    let path = format!("{}/{}", file.split, file.file_name);
    let (image, unreadable) = match image {
        Ok(bytes) => (bytes, None),
        Err(reason) => {
            (Bytes::new(), Some(Issue::new("image_unreadable", format!("the image could not be read: {reason}"))))
        }
    };
    let info = inspect_image(&image, &file.file_name);
    let mut issues: Vec<Issue> = unreadable.into_iter().collect();
    issues.extend(info.issues.iter().cloned());
    let valid_image = info.valid && issues.iter().all(|i| i.code != "image_unreadable");

    let (label_text, parsed) = match label {
        None if file.label_too_large() => (None, labels::too_large(&format!("{} bytes, not read", file.label_size))),
        None => (None, ParsedLabels::none()),
        Some(Err(reason)) => {
            let unreadable = Issue::new("label_unreadable", format!("the label file could not be read: {reason}"));
            (None, ParsedLabels::corrupt(unreadable))
        }
        Some(Ok(bytes)) => {
            let parsed = judge_label_bytes(&bytes, rules);
            (Some(bytes), parsed)
        }
    };
    // The label file as stored, byte for byte, hashed as the image is.
    let label_file = label_text.as_ref().map(|bytes| LabelFile {
        size_bytes: bytes.len() as u64,
        content_hash: blake3::hash(bytes).to_hex().to_string(),
    });
    let label_content = match (&label_file, file.label.is_some()) {
        (Some(stored), _) => LabelContent::Read(&stored.content_hash),
        (None, false) => LabelContent::None,
        (None, true) if file.label_too_large() => LabelContent::TooLarge(file.label_size),
        (None, true) => LabelContent::Unreadable,
    };
    let digest = finishing::image_digest(&file.split, &file.file_name, &info.content_hash, label_content);
    let has_label = label_text.is_some() || parsed.corrupt;
    issues.extend(parsed.issues.iter().cloned());

    if !image.is_empty() {
        copies.push((keys::dataset_image(dataset_id, &file.split, &file.file_name), image.clone()));
    }
    if let Some(bytes) = label_text {
        copies.push((keys::dataset_label(dataset_id, &file.split, &file.file_name), bytes));
    }

    let valid = valid_image && !parsed.corrupt;
    let error = (!valid).then(|| {
        let first = issues.first().cloned().unwrap_or_else(|| Issue::new("invalid", "invalid"));
        Finding::new(path.clone(), &first.code, first.message)
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
        hash_key: hash_key(&info.content_hash),
        content_hash: info.content_hash,
        valid,
        annotations: parsed.annotations,
        issues,
        issue_codes: issue_codes.into_iter().collect(),
        class_ids: class_ids.into_iter().collect(),
        label: label_file,
    };
    FileOutcome {
        doc,
        has_label,
        label_corrupt: parsed.corrupt,
        duplicates_removed: parsed.duplicates_removed,
        error,
        digest,
    }
}

fn add_to_statistics(stats: &mut Statistics, outcome: &FileOutcome) {
    let doc = &outcome.doc;
    stats.images += 1;
    stats.content.add(outcome.digest);
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
    split.labelled_images += outcome.has_label as u64;
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

#[cfg(test)]
mod tests {
    use yds_format::issue::is_image_issue_code;

    use super::*;

    fn rules() -> LabelRules {
        LabelRules { task: Task::Detect, names: vec!["a".into(), "b".into()], kpt_shape: None }
    }

    fn file(label_size: Option<u64>) -> ChunkFile {
        let at = |path: &str| Location::Tree { source: 0, path: path.into() };
        ChunkFile {
            split: "train".into(),
            file_name: "sub/x.jpg".into(),
            image: at("images/train/sub/x.jpg"),
            size: 10,
            label: label_size.map(|_| at("labels/train/sub/x.txt")),
            label_size: label_size.unwrap_or(0),
        }
    }

    #[test]
    fn a_label_file_is_stored_and_recorded_byte_for_byte() {
        // A byte-order mark, CRLF line ends and trailing spaces: judged as Ultralytics reads
        // them, stored as they came.
        let label = Bytes::from_static(b"\xef\xbb\xbf0 0.5 0.5 0.2 0.2  \r\n1 0.3 0.3 0.1 0.1 \r\n");
        let mut copies = Vec::new();
        let outcome = judge_file(
            "d1",
            &rules(),
            &file(Some(label.len() as u64)),
            Ok(Bytes::new()),
            Some(Ok(label.clone())),
            &mut copies,
        );
        let recorded = outcome.doc.label.clone().expect("the label file is recorded");
        assert_eq!(recorded.size_bytes, label.len() as u64);
        assert_eq!(recorded.content_hash, blake3::hash(&label).to_hex().to_string());
        let key = keys::dataset_label("d1", "train", "sub/x.jpg");
        assert_eq!(copies.iter().find(|(k, _)| *k == key).map(|(_, b)| b), Some(&label));
        assert_eq!(outcome.doc.annotations.len(), 2);

        // Without a label file: nothing recorded, nothing stored, and another digest.
        let mut copies = Vec::new();
        let bare = judge_file("d1", &rules(), &file(None), Ok(Bytes::new()), None, &mut copies);
        assert_eq!(bare.doc.label, None);
        assert!(copies.iter().all(|(k, _)| *k != key));
        assert_ne!(bare.digest, outcome.digest);
    }

    #[test]
    fn the_codes_of_files_that_cannot_be_read_are_issue_codes() {
        let mut copies = Vec::new();
        let unreadable =
            judge_file("d1", &rules(), &file(Some(5)), Err("gone".into()), Some(Err("gone too".into())), &mut copies);
        let codes: Vec<&str> = unreadable.doc.issues.iter().map(|i| i.code.as_str()).collect();
        assert!(codes.contains(&"image_unreadable") && codes.contains(&"label_unreadable"), "{codes:?}");
        for code in codes {
            assert!(is_image_issue_code(code), "{code}");
        }
        assert_eq!(unreadable.doc.label, None, "an unreadable label file was not stored");
        assert!(copies.is_empty());
    }
}
