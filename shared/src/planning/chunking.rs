//! From the indexed files to chunks: the dataset YAML, the split resolution over the member
//! records, and chunks written and enqueued one by one as the splits are walked.
//!
//! Split resolution walks the member records in path order through [`MemberTree`] on a
//! blocking thread; each full chunk is completed (labels looked up, and recorded as used),
//! recorded and enqueued before the walk goes on; the unused labels are found at the end by
//! merging the label members with the used ones, both in `_id` order. Memory holds a few
//! chunks, whatever the dataset size — plus, only for a split with several sources or a list
//! file, a 16-byte hash per image name of that split.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{BuildHasher, RandomState};

use bytes::Bytes;
use futures::TryStreamExt;
use mongodb::bson::{doc, DateTime};
use tokio::runtime::Handle;

use super::indexing::MAX_CONFIG_BYTES;
use super::PlanError;
use crate::backends::Backends;
use crate::coordinator::{self, ChunkFile};
use crate::format::data_yaml::{parse_data_yaml, DatasetConfig};
use crate::format::labels::infer_task;
use crate::format::layout::{self, FileTree};
use crate::format::Task;
use crate::jobs::{EarlyChunks, FileError, JobDoc, ERROR_SAMPLE};
use crate::members::{self, MemberDoc, MemberReader, MemberTree};
use crate::storage::keys;
use crate::tasks::TaskBody;

/// Most files a chunk task lists itself (~250 bytes each, well under Cloud Tasks' 1 MB).
const FILES_IN_TASK_MAX: usize = 2000;

/// Label files read to infer the task when neither the request nor the YAML names it.
const TASK_SNIFF_FILES: i64 = 32;

/// Reads the YAML, resolves the splits and writes every chunk; then marks the job planned.
pub(super) async fn plan_chunks(backends: &Backends, job: &JobDoc) -> Result<(), PlanError> {
    let job_id = &job.id;
    let reader = MemberReader::new(backends, &job.source);
    let (yaml_path, yaml_text) = read_config(backends, job, &reader).await?;
    let config =
        parse_data_yaml(&yaml_text).map_err(|e| PlanError::permanent(&yaml_path, "config_invalid", e.to_string()))?;
    let early_task = job.early.as_ref().and_then(|early| early.task);
    let task = match job.task.or(config.task).or(early_task) {
        Some(task) => task,
        None => sniff_task(backends, job, &config, &reader).await?,
    };
    record_config(backends, job, &yaml_path, &yaml_text, &config, task).await?;

    let cutter = Cutter::new(backends, job);
    let (cutter, split_issues) = {
        let backends = backends.clone();
        let job_id = job_id.clone();
        let source = job.source.clone();
        let runtime = Handle::current();
        tokio::task::spawn_blocking(move || {
            walk_splits(&backends, &job_id, &source, &config, &yaml_path, cutter, runtime)
        })
        .await
        .map_err(|e| PlanError::Transient(format!("split resolution failed: {e}")))??
    };

    let mut findings = split_issues.clone();
    let orphans = orphan_labels(backends, job_id).await?;
    let mut finding_counts: BTreeMap<String, u64> = BTreeMap::new();
    for finding in &findings {
        *finding_counts.entry(finding.code.clone()).or_default() += 1;
    }
    if orphans.count > 0 {
        finding_counts.insert("orphan_label".into(), orphans.count);
    }
    findings.extend(orphans.sample);
    findings.truncate(ERROR_SAMPLE);
    let findings_bson = mongodb::bson::to_bson(&findings).expect("findings serialize");
    backends
        .db
        .datasets
        .update_one(
            doc! {"_id": &job.dataset_id},
            doc! {"$set": {
                "findings": findings_bson.clone(),
                "finding_counts": mongodb::bson::to_bson(&finding_counts).expect("counts serialize"),
            }},
        )
        .await?;
    let mut split_errors = split_issues;
    split_errors.truncate(ERROR_SAMPLE);
    backends
        .db
        .jobs
        .update_one(
            doc! {"_id": job_id, "planned": false},
            doc! {"$set": {
                "planned": true,
                "task": task.as_str(),
                "files_total": cutter.files_total as i64,
                "chunks_total": cutter.next_index as i64,
                "findings": findings_bson,
                "updated_at": DateTime::now(),
            },
            "$push": {"errors": {
                "$each": mongodb::bson::to_bson(&split_errors).expect("errors serialize"),
                "$slice": ERROR_SAMPLE as i64,
            }}},
        )
        .await?;
    tracing::info!(job_id, files = cutter.files_total, chunks = cutter.next_index, task = task.as_str(), "planned");
    Ok(())
}

/// Keeps the YAML in the dataset's `config/` folder and records what chunks read from the
/// dataset (classes, task, splits); the same values whenever planning repeats it.
pub(super) async fn record_config(
    backends: &Backends,
    job: &JobDoc,
    yaml_path: &str,
    yaml_text: &str,
    config: &DatasetConfig,
    task: Task,
) -> Result<(), PlanError> {
    let yaml_name = yaml_path.rsplit('/').next().unwrap_or("data.yaml");
    let text = Bytes::from(yaml_text.to_owned());
    backends.store.put(&keys::dataset_config(&job.dataset_id, yaml_name), text).await?;
    let kpt_shape = config.kpt_shape.map(|(n, d)| vec![n as i64, d as i64]);
    let split_names: Vec<String> = config.splits.iter().map(|s| s.name.clone()).collect();
    backends
        .db
        .datasets
        .update_one(
            doc! {"_id": &job.dataset_id},
            doc! {"$set": {
                "classes": &config.names,
                "task": task.as_str(),
                "split_names": &split_names,
                "kpt_shape": kpt_shape,
            }},
        )
        .await?;
    Ok(())
}

/// The dataset YAML's path and text.
async fn read_config(backends: &Backends, job: &JobDoc, reader: &MemberReader) -> Result<(String, String), PlanError> {
    let filter = doc! {
        "$and": [members::under(&job.id, ""), {"_id": {"$regex": r"\.ya?ml$", "$options": "i"}}]
    };
    let candidates: Vec<members::MemberDoc> =
        backends.db.members.find(filter).limit(10_000).await?.try_collect().await?;
    let paths: Vec<String> = candidates.iter().map(|m| m.path().to_owned()).collect();
    let yaml_path = layout::find_config(&paths).ok_or_else(|| {
        PlanError::permanent("", "config_missing", "no dataset YAML (data.yaml or *.yaml) found in the source")
    })?;
    let member = candidates.iter().find(|m| m.path() == yaml_path).expect("the chosen YAML is a candidate");
    if member.size > MAX_CONFIG_BYTES {
        return Err(PlanError::permanent(&yaml_path, "config_invalid", "the YAML is larger than 1 MiB"));
    }
    let bytes = reader.read(&member.location).await.map_err(|e| read_failure(&yaml_path, e))?;
    let text = String::from_utf8(bytes.to_vec())
        .map_err(|_| PlanError::permanent(&yaml_path, "config_invalid", "the YAML is not valid UTF-8"))?;
    Ok((yaml_path, text))
}

fn read_failure(path: &str, err: members::ReadError) -> PlanError {
    match err {
        members::ReadError::Damaged(message) => PlanError::permanent(path, "source_unreadable", message),
        members::ReadError::Source(e) if e.permanent => PlanError::permanent(path, "source_unavailable", e.message),
        members::ReadError::Source(e) => PlanError::Transient(e.message),
    }
}

async fn sniff_task(
    backends: &Backends,
    job: &JobDoc,
    config: &DatasetConfig,
    reader: &MemberReader,
) -> Result<Task, PlanError> {
    let filter = doc! {"$and": [members::under(&job.id, ""), {"_id": {"$regex": LABEL_ID_PATTERN}}]};
    let labels: Vec<members::MemberDoc> =
        backends.db.members.find(filter).limit(TASK_SNIFF_FILES).await?.try_collect().await?;
    let small = labels.iter().filter(|m| m.size < 1 << 20).map(|m| &m.location);
    Ok(task_from_labels(reader, small, config).await)
}

/// The task the rows of these label files are written for (unreadable files are skipped).
pub(super) async fn task_from_labels<'a>(
    reader: &MemberReader,
    labels: impl Iterator<Item = &'a crate::members::Location>,
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

/// Walks every split on a blocking thread, feeding the cutter; returns it and the split issues.
fn walk_splits(
    backends: &Backends,
    job_id: &str,
    source: &crate::jobs::ImportSource,
    config: &DatasetConfig,
    yaml_path: &str,
    mut cutter: Cutter,
    runtime: Handle,
) -> Result<(Cutter, Vec<FileError>), PlanError> {
    let tree = MemberTree { db: backends.db.clone(), job_id: job_id.to_owned(), runtime: runtime.clone() };
    let base = layout::resolve_base(config, yaml_path, &tree);
    let reader = MemberReader::new(backends, source);
    let mut read_list = |path: &str| -> Option<String> {
        let found = runtime.block_on(members::find_many(&backends.db, job_id, &[path.to_owned()])).ok()?;
        let member = found.get(path).filter(|m| m.size <= 64 << 20)?;
        let bytes = runtime.block_on(reader.read(&member.location)).ok()?;
        String::from_utf8(bytes.to_vec()).ok()
    };
    let mut issues = Vec::new();
    for spec in &config.splits {
        let roots = split_roots(&spec.sources, &base, &tree);
        // Two images of one split can share a relative name only with several sources or a list.
        let mut names = (spec.sources.len() > 1 || roots.is_empty()).then(NameSet::default);
        let mut failure = None;
        let split_issues = layout::visit_split(spec, &base, &tree, &mut read_list, &mut |image| {
            if failure.is_some() {
                return;
            }
            let mut file_name = relative_to_roots(image, &roots, &base);
            if let Some(names) = &mut names {
                if !names.insert(&file_name) {
                    // Two sources of one split hold the same relative name: keep the longer path.
                    file_name = image.strip_prefix(&format!("{base}/")).unwrap_or(image).to_owned();
                    names.insert(&file_name);
                }
            }
            cutter.pending.push(Pending { split: spec.name.clone(), path: image.to_owned(), file_name });
            if cutter.pending.len() >= cutter.chunk_size {
                failure = runtime.block_on(cutter.flush()).err();
            }
        });
        if let Some(err) = failure {
            return Err(err);
        }
        issues.extend(split_issues.into_iter().map(|issue| FileError {
            file: spec.name.clone(),
            code: issue.code,
            message: issue.message,
        }));
    }
    runtime.block_on(async {
        cutter.flush().await?;
        cutter.finish().await
    })?;
    Ok((cutter, issues))
}

/// Image names already used in one split, as 16-byte hashes.
#[derive(Default)]
struct NameSet {
    seen: HashSet<u128>,
    hashers: (RandomState, RandomState),
}

impl NameSet {
    fn insert(&mut self, name: &str) -> bool {
        let key = (u128::from(self.hashers.0.hash_one(name)) << 64) | u128::from(self.hashers.1.hash_one(name));
        self.seen.insert(key)
    }
}

/// What planning needs to know of a pending image's label file.
enum Label {
    /// It exists, and so the image went into an early chunk.
    WentEarly,
    Member(MemberDoc),
}

/// An image waiting for its chunk.
struct Pending {
    split: String,
    path: String,
    file_name: String,
}

/// Cuts images into chunks of at most `chunk_size` files and `chunk_max_bytes` bytes of images and labels,
/// numbering them in walk order (deterministic, so a retried plan rewrites the same chunks).
pub(super) struct Cutter {
    backends: Backends,
    job_id: String,
    pub(super) chunk_size: usize,
    pub(super) chunk_max_bytes: u64,
    pending: Vec<Pending>,
    /// The chunk being filled from the pending images.
    filling: CutChunk,
    /// Images cut while the source was staged; left out here.
    early: Option<EarlyChunks>,
    pub(super) next_index: u32,
    pub(super) files_total: u64,
    /// Chunk records and tasks being written.
    writes: tokio::task::JoinSet<Result<(), PlanError>>,
}

/// A chunk being cut: its files, the bytes they read, and the member ids of their label files.
#[derive(Default)]
pub(super) struct CutChunk {
    pub(super) files: Vec<ChunkFile>,
    pub(super) bytes: u64,
    pub(super) label_ids: Vec<String>,
}

/// Chunks written and enqueued at once (enqueueing is a network call on Cloud Tasks).
const CHUNK_WRITES_IN_FLIGHT: usize = 8;

impl Cutter {
    /// Numbers chunks after the early ones, if any.
    pub(super) fn new(backends: &Backends, job: &JobDoc) -> Self {
        let early = job.early.clone().filter(|early| early.chunks > 0);
        Self {
            backends: backends.clone(),
            job_id: job.id.clone(),
            chunk_size: job.chunk_size.max(1) as usize,
            chunk_max_bytes: backends.pacing.chunk_max_bytes.max(1),
            pending: Vec::new(),
            filling: CutChunk::default(),
            next_index: early.as_ref().map_or(0, |e| e.chunks),
            files_total: early.as_ref().map_or(0, |e| e.files),
            early,
            writes: tokio::task::JoinSet::new(),
        }
    }

    /// Numbers chunks from `next_index` on, `files_total` files already cut (early cutting
    /// resumed by a later pass).
    pub(super) fn resume(backends: &Backends, job: &JobDoc, next_index: u32, files_total: u64) -> Self {
        Self { next_index, files_total, early: None, ..Self::new(backends, job) }
    }

    /// Writes the last chunk, then waits for every chunk write in flight.
    pub(super) async fn finish(&mut self) -> Result<(), PlanError> {
        let last = std::mem::take(&mut self.filling);
        self.write_chunk(last).await?;
        while let Some(joined) = self.writes.join_next().await {
            joined.map_err(|e| PlanError::Transient(format!("writing a chunk failed: {e}")))??;
        }
        Ok(())
    }

    /// Completes the pending images (locations, labels), then records and enqueues them as one
    /// or more chunks.
    async fn flush(&mut self) -> Result<(), PlanError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let pending = std::mem::take(&mut self.pending);
        let labelled_by_folder = self.labelled_by_folder(&pending).await?;
        let image_paths: Vec<String> = pending
            .iter()
            .filter(|image| labelled_by_folder.get(&image.path) != Some(&true))
            .map(|image| image.path.clone())
            .collect();
        let images = members::find_many(&self.backends.db, &self.job_id, &image_paths).await?;
        let by_entry: Vec<&Pending> =
            pending.iter().filter(|image| !labelled_by_folder.contains_key(&image.path)).collect();
        let labels = self.find_labels(&by_entry, &images).await?;
        // The chunk being filled carries over to the next batch: images left out because they
        // went early do not leave small chunks behind.
        let mut chunk = std::mem::take(&mut self.filling);
        for image in pending {
            let label_member = match labelled_by_folder.get(&image.path) {
                Some(true) => continue,
                Some(false) => None,
                None => match labels.get(&layout::label_path_for(&image.path)) {
                    Some(Label::WentEarly) => continue,
                    Some(Label::Member(label)) => Some(label),
                    None => None,
                },
            };
            let Some(member) = images.get(&image.path) else { continue };
            if let Some(early) = &self.early {
                if early.has(&image.split, member.entry, label_member.map(|m| m.entry)) {
                    continue;
                }
            }
            let file = ChunkFile {
                split: image.split,
                file_name: image.file_name,
                image: member.location.clone(),
                size: member.size,
                label: label_member.map(|m| m.location.clone()),
                label_size: label_member.map_or(0, |m| m.size),
            };
            if !chunk.files.is_empty() && chunk.bytes + file.bytes_read() > self.chunk_max_bytes {
                self.write_chunk(std::mem::take(&mut chunk)).await?;
            }
            chunk.bytes += file.bytes_read();
            chunk.label_ids.extend(label_member.map(|m| m.id.clone()));
            chunk.files.push(file);
            if chunk.files.len() >= self.chunk_size {
                self.write_chunk(std::mem::take(&mut chunk)).await?;
            }
        }
        self.filling = chunk;
        Ok(())
    }

    /// Whether each pending image that went early if it has a label file, known from its folder
    /// alone ([`EarlyChunks::has_if_labelled_in_folder`]), has one: an index-only lookup, and
    /// no member record read for those that have one (nearly every image, when a tar was cut
    /// early). Images of other folders are not in the answer.
    async fn labelled_by_folder(&self, pending: &[Pending]) -> Result<HashMap<String, bool>, PlanError> {
        let Some(early) = &self.early else { return Ok(HashMap::new()) };
        let decided: Vec<&Pending> =
            pending.iter().filter(|image| early.has_if_labelled_in_folder(&image.split, &image.path)).collect();
        let labels: Vec<String> = decided.iter().map(|image| layout::label_path_for(&image.path)).collect();
        let existing = members::existing(&self.backends.db, &self.job_id, &labels).await?;
        Ok(decided
            .into_iter()
            .zip(labels)
            .map(|(image, label)| (image.path.clone(), existing.contains(&label)))
            .collect())
    }

    /// The label files of the pending images, by path. A label whose image went early whatever
    /// the label's entry is only checked to exist, an index-only lookup; the others are read
    /// whole.
    async fn find_labels(
        &self,
        pending: &[&Pending],
        images: &HashMap<String, MemberDoc>,
    ) -> Result<HashMap<String, Label>, PlanError> {
        let db = &self.backends.db;
        let label_of = |image: &Pending| layout::label_path_for(&image.path);
        let Some(early) = &self.early else {
            let paths: Vec<String> = pending.iter().map(|image| label_of(image)).collect();
            let found = members::find_many(db, &self.job_id, &paths).await?;
            return Ok(found.into_iter().map(|(path, label)| (path, Label::Member(label))).collect());
        };
        let went_early_if_labelled = |image: &&Pending| {
            images.get(&image.path).is_some_and(|member| early.has_if_labelled(&image.split, member.entry))
        };
        let (decided, undecided): (Vec<&Pending>, Vec<&Pending>) =
            pending.iter().copied().partition(went_early_if_labelled);
        let decided: Vec<String> = decided.into_iter().map(label_of).collect();
        let mut labels: HashMap<String, Label> = HashMap::with_capacity(pending.len());
        for path in members::existing(db, &self.job_id, &decided).await? {
            labels.insert(path, Label::WentEarly);
        }
        let undecided: Vec<String> = undecided.into_iter().map(label_of).collect();
        for (path, label) in members::find_many(db, &self.job_id, &undecided).await? {
            labels.insert(path, Label::Member(label));
        }
        Ok(labels)
    }

    /// Numbers the chunk, then records and enqueues it in the background (a few at once).
    pub(super) async fn write_chunk(&mut self, chunk: CutChunk) -> Result<(), PlanError> {
        let CutChunk { files, label_ids, .. } = chunk;
        if files.is_empty() {
            return Ok(());
        }
        while self.writes.len() >= CHUNK_WRITES_IN_FLIGHT {
            if let Some(joined) = self.writes.join_next().await {
                joined.map_err(|e| PlanError::Transient(format!("writing a chunk failed: {e}")))??;
            }
        }
        let index = self.next_index;
        self.next_index += 1;
        self.files_total += files.len() as u64;
        let (backends, job_id) = (self.backends.clone(), self.job_id.clone());
        let (files_total, chunks_total) = (self.files_total as i64, self.next_index as i64);
        self.writes.spawn(async move {
            coordinator::create_chunk(&backends.db, &job_id, index, &files).await?;
            // The label files this chunk uses are recorded in the database, so the orphan check
            // at the end is a merge of two sorted ranges, not a set that grows with the dataset
            // in planning's memory.
            if !label_ids.is_empty() {
                members::mark_labels_used(&backends.db, label_ids).await?;
            }
            // A task carries its file list while it stays far below Cloud Tasks' 1 MB limit; a
            // larger chunk's task carries none and process-chunk reads the list from the record.
            let files = if files.len() <= FILES_IN_TASK_MAX { files } else { Vec::new() };
            backends
                .queue
                .enqueue(&TaskBody::Chunk { job_id: job_id.clone(), index, files, redelivery: 0 }.task())
                .await?;
            // Progress while planning goes on; the final totals are set when planning ends.
            backends
                .db
                .jobs
                .update_one(
                    doc! {"_id": &job_id, "planned": false},
                    doc! {"$max": {"files_total": files_total, "chunks_total": chunks_total}},
                )
                .await?;
            Ok(())
        });
        Ok(())
    }
}

/// Label files no chunk uses: Ultralytics ignores them silently; we count and sample them.
struct Orphans {
    count: u64,
    sample: Vec<FileError>,
}

/// Label members with no record in `import_used_labels`: both read in `_id` order (each a
/// covered scan of its `_id` index) and merged.
async fn orphan_labels(backends: &Backends, job_id: &str) -> Result<Orphans, PlanError> {
    let by_id = doc! {"_id": 1};
    let labels = doc! {"$and": [members::under(job_id, ""), {"_id": {"$regex": LABEL_ID_PATTERN}}]};
    let ids = backends.db.members.clone_with_type::<mongodb::bson::Document>();
    let mut labels = ids.find(labels).projection(by_id.clone()).sort(by_id.clone()).batch_size(10_000).await?;
    let mut used = backends.db.used_labels.find(members::under(job_id, "")).sort(by_id).batch_size(10_000).await?;
    let mut next_used = next_id(&mut used).await?;
    let mut orphans = Orphans { count: 0, sample: Vec::new() };
    let prefix_len = job_id.len() + 1;
    while let Some(id) = next_id(&mut labels).await? {
        // Both in `_id` order: skip the used ids below this label; an equal one means it is used.
        while next_used.as_ref().is_some_and(|used_id| *used_id < id) {
            next_used = next_id(&mut used).await?;
        }
        if next_used.as_ref() == Some(&id) {
            continue;
        }
        orphans.count += 1;
        if orphans.sample.len() < ERROR_SAMPLE {
            orphans.sample.push(FileError {
                file: id[prefix_len..].to_owned(),
                code: "orphan_label".into(),
                message: "label file with no matching image; it is not imported".into(),
            });
        }
    }
    Ok(orphans)
}

/// The next string `_id` of a cursor over `_id`s.
async fn next_id(cursor: &mut mongodb::Cursor<mongodb::bson::Document>) -> mongodb::error::Result<Option<String>> {
    Ok(cursor.try_next().await?.and_then(|d| d.get_str("_id").ok().map(str::to_owned)))
}

/// Member ids of label files: `.txt` files under a `labels` folder.
const LABEL_ID_PATTERN: &str = r"^[^:]*:(.*/)?labels/.*\.txt$";

/// The directories a split's sources resolve to, longest first.
fn split_roots(sources: &[String], base: &str, tree: &dyn FileTree) -> Vec<String> {
    let mut roots: Vec<String> = sources
        .iter()
        .flat_map(|s| {
            let trimmed = s.trim_end_matches('/');
            [trimmed.to_owned(), trimmed.strip_prefix("../").unwrap_or(trimmed).to_owned()]
        })
        .map(|s| normalize(&join(base, &s)))
        .filter(|dir| tree.is_dir(dir))
        .collect();
    roots.sort_by_key(|r| std::cmp::Reverse(r.len()));
    roots.dedup();
    roots
}

fn relative_to_roots(image: &str, roots: &[String], base: &str) -> String {
    for root in roots {
        if root.is_empty() {
            return image.to_owned();
        }
        if let Some(rest) = image.strip_prefix(&format!("{root}/")) {
            return rest.to_owned();
        }
    }
    // A list-file entry: name it by its folder below the `images` directory, as Ultralytics'
    // label rule does, or by its path in the dataset.
    match image.rfind("images/") {
        Some(i) if i == 0 || image.as_bytes()[i - 1] == b'/' => image[i + "images/".len()..].to_owned(),
        _ => image.strip_prefix(&format!("{base}/")).unwrap_or(image).to_owned(),
    }
}

fn join(base: &str, rel: &str) -> String {
    if base.is_empty() {
        rel.to_owned()
    } else {
        format!("{base}/{rel}")
    }
}

/// Collapses `.` and `..` segments (never above the root).
fn normalize(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    out.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::layout::MemoryTree;

    #[test]
    fn file_names_are_relative_to_the_split_root() {
        let tree = MemoryTree::new(
            ["d/images/train/a.jpg", "d/images/train/sub/b.jpg", "d/train/images/c.jpg"].map(String::from),
        );
        let roots = split_roots(&["images/train".into()], "d", &tree);
        assert_eq!(relative_to_roots("d/images/train/sub/b.jpg", &roots, "d"), "sub/b.jpg");
        let roots = split_roots(&["../train/images".into()], "d", &tree);
        assert_eq!(roots, ["d/train/images"]);
        assert_eq!(relative_to_roots("d/train/images/c.jpg", &roots, "d"), "c.jpg");
        assert_eq!(relative_to_roots("d/images/val/x.jpg", &[], "d"), "val/x.jpg");
        assert_eq!(normalize("a/./b/../c"), "a/c");
    }
}
