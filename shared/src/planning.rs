//! Planning an import: read the source once, stage its files, and cut the work into chunks.
//!
//! Runs as the job's first task. It streams the source archive(s) member by member into
//! `temp/{job_id}/src/`, reads the dataset YAML, resolves each split to its images the way
//! Ultralytics does, pairs every image with its label file, and writes one chunk record and
//! one chunk task per `chunk_size` images. Everything it does is deterministic and keyed by the
//! job, so a retried plan (after a crash or a duplicate delivery) redoes the same work and
//! creates nothing twice.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io::Read;
use std::path::PathBuf;

use bytes::Bytes;
use mongodb::bson::{doc, DateTime};

use crate::archive::{self, ArchiveError, ArchiveKind};
use crate::backends::Backends;
use crate::coordinator::{self, ChunkFile};
use crate::format::data_yaml::{parse_data_yaml, DatasetConfig};
use crate::format::labels::infer_task;
use crate::format::layout::{self, FileTree, MemoryTree};
use crate::format::Task;
use crate::jobs::{self, FileError, ImportSource, JobDoc, ERROR_SAMPLE};
use crate::queue::TaskBody;
use crate::source::{SourceError, SourceLocation};
use crate::storage::{keys, ObjectStore, StorageError};

/// Why planning stopped.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// The source can never be imported (bad URL, not an archive, no YAML...): the job fails.
    #[error("{}", .0.message)]
    Permanent(FileError),
    /// Infrastructure trouble: the task is retried.
    #[error("{0}")]
    Transient(String),
}

impl PlanError {
    fn permanent(file: &str, code: &str, message: impl Into<String>) -> Self {
        PlanError::Permanent(FileError { file: file.to_owned(), code: code.to_owned(), message: message.into() })
    }
}

impl From<StorageError> for PlanError {
    fn from(err: StorageError) -> Self {
        PlanError::Transient(err.to_string())
    }
}

impl From<crate::db::DbError> for PlanError {
    fn from(err: crate::db::DbError) -> Self {
        PlanError::Transient(err.to_string())
    }
}

impl From<mongodb::error::Error> for PlanError {
    fn from(err: mongodb::error::Error) -> Self {
        PlanError::Transient(err.to_string())
    }
}

impl From<crate::queue::QueueError> for PlanError {
    fn from(err: crate::queue::QueueError) -> Self {
        PlanError::Transient(err.to_string())
    }
}

/// Most files a chunk task lists itself (~170 bytes each, well under 1 MB).
const FILES_IN_TASK_MAX: usize = 2000;

/// Label files read to infer the task when neither the request nor the YAML names it.
const TASK_SNIFF_FILES: usize = 32;

/// Plans `job_id` as a task delivery does: a permanent failure, or a transient one on the
/// queue's last attempt, ends the job as failed (recorded, not retried). Returns the cause of
/// a transient failure that a retry may fix.
pub async fn plan_or_fail(backends: &Backends, job_id: &str, last_attempt: bool) -> Result<(), String> {
    let failure = match plan(backends, job_id).await {
        Ok(()) => return Ok(()),
        Err(PlanError::Permanent(error)) => error,
        Err(PlanError::Transient(cause)) if last_attempt => FileError {
            file: String::new(),
            code: "planning_failed".into(),
            message: format!("the source could not be read after every attempt: {cause}"),
        },
        Err(PlanError::Transient(cause)) => return Err(cause),
    };
    tracing::warn!(job_id, code = %failure.code, message = %failure.message, "import failed");
    let job = jobs::find(&backends.db, job_id).await.map_err(|e| e.to_string())?;
    if let Some(job) = job {
        jobs::fail(&backends.db, &job, failure).await.map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Plans `job_id`. A job that is already planned or finished is only checked for completion.
pub async fn plan(backends: &Backends, job_id: &str) -> Result<(), PlanError> {
    let Some(job) = jobs::find(&backends.db, job_id).await? else {
        tracing::warn!(job_id, "planning task for an unknown job; dropped");
        return Ok(());
    };
    if job.status.is_terminal() {
        return Ok(());
    }
    if job.planned {
        coordinator::try_finalize(&backends.db, job_id).await?;
        return Ok(());
    }
    jobs::mark_running(&backends.db, job_id).await?;

    let staged = stage_source(backends, &job).await?;
    let mut errors: Vec<FileError> = staged.rejected;
    let tree = MemoryTree::new(staged.members.iter().cloned());

    let member_list: Vec<String> = staged.members.iter().cloned().collect();
    let yaml_path = layout::find_config(&member_list).ok_or_else(|| {
        PlanError::permanent("", "config_missing", "no dataset YAML (data.yaml or *.yaml) found in the source")
    })?;
    let yaml_bytes = backends.store.get(&keys::staged_member(job_id, &yaml_path)).await?;
    let yaml_text = String::from_utf8(yaml_bytes.to_vec())
        .map_err(|_| PlanError::permanent(&yaml_path, "config_invalid", "the YAML is not valid UTF-8"))?;
    let config =
        parse_data_yaml(&yaml_text).map_err(|e| PlanError::permanent(&yaml_path, "config_invalid", e.to_string()))?;

    let (files, split_names, split_issues) = resolve_files(backends, job_id, &config, &yaml_path, &tree).await?;
    errors.extend(split_issues.iter().cloned());
    let mut findings = split_issues;
    findings.extend(orphan_labels(&files, &tree, job_id));
    let mut finding_counts: BTreeMap<String, u64> = BTreeMap::new();
    for finding in &findings {
        *finding_counts.entry(finding.code.clone()).or_default() += 1;
    }
    findings.truncate(ERROR_SAMPLE);

    let task = match job.task.or(config.task) {
        Some(task) => task,
        None => sniff_task(backends, &files, &config).await?,
    };

    let yaml_name = yaml_path.rsplit('/').next().unwrap_or("data.yaml");
    backends.store.put(&keys::dataset_config(&job.dataset_id, yaml_name), Bytes::from(yaml_text.clone())).await?;
    let kpt_shape = config.kpt_shape.map(|(n, d)| vec![n as i64, d as i64]);
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
                "findings": mongodb::bson::to_bson(&findings).expect("findings serialize"),
                "finding_counts": mongodb::bson::to_bson(&finding_counts).expect("counts serialize"),
            }},
        )
        .await?;

    let chunks: Vec<Vec<ChunkFile>> = files.chunks(job.chunk_size.max(1) as usize).map(<[_]>::to_vec).collect();
    coordinator::create_chunks(&backends.db, job_id, &chunks).await?;
    for (index, files) in chunks.iter().enumerate() {
        // A task carries its file list while it stays far below Cloud Tasks' 1 MB limit; a
        // larger chunk's task carries none and process-chunk reads the list from the record.
        let files = if files.len() <= FILES_IN_TASK_MAX { files.clone() } else { Vec::new() };
        let body = TaskBody::Chunk { job_id: job_id.to_owned(), index: index as u32, files };
        backends.queue.enqueue(&body).await?;
    }
    errors.truncate(ERROR_SAMPLE);
    backends
        .db
        .jobs
        .update_one(
            doc! {"_id": job_id, "planned": false},
            doc! {"$set": {
                "planned": true,
                "task": task.as_str(),
                "files_total": files.len() as i64,
                "chunks_total": chunks.len() as i64,
                "errors": mongodb::bson::to_bson(&errors).expect("errors serialize"),
                "findings": mongodb::bson::to_bson(&findings).expect("findings serialize"),
                "updated_at": DateTime::now(),
            }},
        )
        .await?;
    tracing::info!(job_id, files = files.len(), chunks = chunks.len(), task = task.as_str(), "planned");
    coordinator::try_finalize(&backends.db, job_id).await?;
    Ok(())
}

/// What staging left in storage.
struct Staged {
    /// Member paths staged under `temp/{job_id}/src/`.
    members: BTreeSet<String>,
    /// Members refused (unsafe names, links...) as job errors.
    rejected: Vec<FileError>,
}

/// Whether planning or a chunk will ever read this member; others are not staged.
fn is_dataset_member(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    layout::is_image_path(path) || lower.ends_with(".txt") || lower.ends_with(".yaml") || lower.ends_with(".yml")
}

async fn stage_source(backends: &Backends, job: &JobDoc) -> Result<Staged, PlanError> {
    let mut staged = Staged { members: BTreeSet::new(), rejected: Vec::new() };
    match &job.source {
        ImportSource::Archive { url } => {
            stage_archive(backends, job, url, "", &mut staged).await?;
        }
        ImportSource::Parts { config_url, images_url, labels_url } => {
            let local = fetch(backends, job, config_url).await?;
            let text = std::fs::read(local.path())
                .map_err(|_| PlanError::permanent(config_url, "source_unreadable", "the YAML could not be read"))?;
            backends.store.put(&keys::staged_member(&job.id, "data.yaml"), Bytes::from(text)).await?;
            staged.members.insert("data.yaml".into());
            stage_archive(backends, job, images_url, "images", &mut staged).await?;
            stage_archive(backends, job, labels_url, "labels", &mut staged).await?;
        }
    }
    Ok(staged)
}

/// A source file on local disk: the user's own file (local mode) or a downloaded copy that is
/// deleted when dropped.
enum LocalSource {
    Borrowed(PathBuf),
    Downloaded(tempfile::TempPath),
}

impl LocalSource {
    fn path(&self) -> &std::path::Path {
        match self {
            LocalSource::Borrowed(p) => p,
            LocalSource::Downloaded(p) => p,
        }
    }
}

async fn fetch(backends: &Backends, job: &JobDoc, url: &str) -> Result<LocalSource, PlanError> {
    let location = crate::source::parse(url, backends.url_policy).map_err(|e| source_error(url, e))?;
    match location {
        SourceLocation::File(path) => {
            if !path.is_file() {
                return Err(PlanError::permanent(url, "source_not_found", "the file does not exist"));
            }
            Ok(LocalSource::Borrowed(path))
        }
        SourceLocation::Http(http_url) => {
            let temp = scratch_file(backends, job)?;
            backends.fetcher.download(&http_url, &temp).await.map_err(|e| source_error(url, e))?;
            Ok(LocalSource::Downloaded(temp))
        }
        SourceLocation::Gcs { bucket, object } => {
            let temp = scratch_file(backends, job)?;
            download_gcs(backends, &bucket, &object, &temp).await.map_err(|e| match e {
                StorageError::NotFound(_) => PlanError::permanent(url, "source_not_found", "no such object"),
                StorageError::InvalidKey(_) => PlanError::permanent(url, "source_unavailable", "invalid object name"),
                StorageError::Io(e) => PlanError::Transient(format!("reading {url}: {e}")),
            })?;
            Ok(LocalSource::Downloaded(temp))
        }
    }
}

fn scratch_file(backends: &Backends, job: &JobDoc) -> Result<tempfile::TempPath, PlanError> {
    std::fs::create_dir_all(&backends.scratch_dir).map_err(|e| PlanError::Transient(e.to_string()))?;
    Ok(tempfile::Builder::new()
        .prefix(&format!("yds-{}-", job.id))
        .tempfile_in(&backends.scratch_dir)
        .map_err(|e| PlanError::Transient(e.to_string()))?
        .into_temp_path())
}

/// Bytes read from Cloud Storage per ranged request: memory stays bounded by this.
const GCS_READ_BLOCK: u64 = 8 * 1024 * 1024;

/// Copies a Cloud Storage object to `dest` by ranged reads, through the storage backend.
async fn download_gcs(
    backends: &Backends,
    bucket: &str,
    object: &str,
    dest: &std::path::Path,
) -> Result<u64, StorageError> {
    use tokio::io::AsyncWriteExt;
    let store = backends.gcs_bucket(bucket).await?;
    let size = store.size(object).await?.ok_or_else(|| StorageError::NotFound(object.to_owned()))?;
    let mut file = tokio::fs::File::create(dest).await?;
    let mut offset = 0;
    while offset < size {
        let end = (offset + GCS_READ_BLOCK).min(size);
        let block = store.get_range(object, offset..end).await?;
        if block.is_empty() {
            return Err(StorageError::Io(std::io::Error::other("object shorter than its size")));
        }
        file.write_all(&block).await?;
        offset += block.len() as u64;
    }
    file.flush().await?;
    Ok(size)
}

fn source_error(url: &str, err: SourceError) -> PlanError {
    if err.is_permanent() {
        PlanError::permanent(url, "source_unavailable", err.to_string())
    } else {
        PlanError::Transient(err.to_string())
    }
}

/// Streams one archive into staging, each member under `prefix` (unless it already starts
/// with it, as an `images.zip` holding `images/...` does).
async fn stage_archive(
    backends: &Backends,
    job: &JobDoc,
    url: &str,
    prefix: &str,
    staged: &mut Staged,
) -> Result<(), PlanError> {
    let local = fetch(backends, job, url).await?;
    let path = local.path().to_owned();
    let store = backends.store.clone();
    let limits = backends.archive_limits;
    let job_id = job.id.clone();
    let prefix = prefix.to_owned();
    let url_owned = url.to_owned();
    let runtime = tokio::runtime::Handle::current();
    let (members, walk) = tokio::task::spawn_blocking(move || -> Result<_, PlanError> {
        let unreadable = |_| PlanError::permanent(&url_owned, "source_unreadable", "the archive could not be read");
        let mut file = std::fs::File::open(&path).map_err(unreadable)?;
        let mut head = [0u8; 512];
        let n = read_up_to(&mut file, &mut head).map_err(unreadable)?;
        let kind = archive::detect_kind(&head[..n], &url_owned).ok_or_else(|| {
            PlanError::permanent(&url_owned, "archive_unsupported", "the source is not a zip, tar or tar.gz archive")
        })?;
        let file = std::fs::File::open(&path).map_err(unreadable)?;
        let mut members = Vec::new();
        let mut stage = |name: &str, _size: u64, reader: &mut dyn Read| -> Result<(), String> {
            if !is_dataset_member(name) {
                return Ok(());
            }
            let mut data = Vec::new();
            reader.read_to_end(&mut data).map_err(|e| format!("reading {name}: {e}"))?;
            let member = if prefix.is_empty() || name.starts_with(&format!("{prefix}/")) {
                name.to_owned()
            } else {
                format!("{prefix}/{name}")
            };
            runtime
                .block_on(store.put(&keys::staged_member(&job_id, &member), Bytes::from(data)))
                .map_err(|e| format!("staging {name}: {e}"))?;
            members.push(member);
            Ok(())
        };
        let walk = match kind {
            ArchiveKind::Zip => archive::walk_zip(file, &limits, &mut stage),
            ArchiveKind::Tar => archive::walk_tar(std::io::BufReader::new(file), false, &limits, &mut stage),
            ArchiveKind::TarGz => archive::walk_tar(std::io::BufReader::new(file), true, &limits, &mut stage),
        };
        Ok((members, walk))
    })
    .await
    .map_err(|e| PlanError::Transient(format!("staging task failed: {e}")))??;
    let walk = walk.map_err(|e| match e {
        ArchiveError::Callback(msg) => PlanError::Transient(msg),
        ArchiveError::Io(_) => PlanError::permanent(url, "archive_corrupt", "the archive could not be read to its end"),
        ArchiveError::Corrupt(msg) => PlanError::permanent(url, "archive_corrupt", msg),
        ArchiveError::LimitExceeded(msg) => PlanError::permanent(url, "archive_too_large", msg),
    })?;
    for rejected in walk.rejected {
        staged.rejected.push(FileError {
            file: rejected.name.clone(),
            code: rejected.reason.code().to_owned(),
            message: format!("archive member `{}` refused and not imported", rejected.name),
        });
    }
    staged.members.extend(members);
    Ok(())
}

fn read_up_to(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

/// Every image of every split, in order, with its label; the split names; split-level issues.
async fn resolve_files(
    backends: &Backends,
    job_id: &str,
    config: &DatasetConfig,
    yaml_path: &str,
    tree: &MemoryTree,
) -> Result<(Vec<ChunkFile>, Vec<String>, Vec<FileError>), PlanError> {
    let base = layout::resolve_base(config, yaml_path, tree);
    let store = backends.store.clone();
    let mut read_list = |path: &str| -> Option<String> {
        let key = keys::staged_member(job_id, path);
        let bytes = tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(store.get(&key))).ok()?;
        String::from_utf8(bytes.to_vec()).ok()
    };
    let mut files = Vec::new();
    let mut split_names = Vec::new();
    let mut issues = Vec::new();
    for spec in &config.splits {
        let resolved = layout::resolve_split(spec, &base, tree, &mut read_list);
        for issue in &resolved.issues {
            issues.push(FileError {
                file: spec.name.clone(),
                code: issue.code.clone(),
                message: issue.message.clone(),
            });
        }
        let roots = split_roots(&spec.sources, &base, tree);
        let mut seen = HashSet::new();
        for image in resolved.images {
            let mut file_name = relative_to_roots(&image, &roots, &base);
            if !seen.insert(file_name.clone()) {
                // Two sources of one split hold the same relative name: keep the longer path.
                file_name = image.strip_prefix(&format!("{base}/")).unwrap_or(&image).to_owned();
                seen.insert(file_name.clone());
            }
            let label_path = layout::label_path_for(&image);
            let label = tree.is_file(&label_path).then(|| keys::staged_member(job_id, &label_path));
            files.push(ChunkFile {
                split: spec.name.clone(),
                file_name,
                image: keys::staged_member(job_id, &image),
                label,
            });
        }
        split_names.push(spec.name.clone());
    }
    Ok((files, split_names, issues))
}

/// Label files that no image of any split uses: Ultralytics ignores them silently.
fn orphan_labels(files: &[ChunkFile], tree: &MemoryTree, job_id: &str) -> Vec<FileError> {
    let staged_prefix = keys::staged_member(job_id, "");
    let used: HashSet<&str> =
        files.iter().filter_map(|f| f.label.as_deref()).filter_map(|k| k.strip_prefix(&staged_prefix)).collect();
    tree.paths()
        .filter(|p| p.ends_with(".txt") && (p.starts_with("labels/") || p.contains("/labels/")))
        .filter(|p| !used.contains(p))
        .map(|p| FileError {
            file: p.to_owned(),
            code: "orphan_label".into(),
            message: "label file with no matching image; it is not imported".into(),
        })
        .collect()
}

/// The directories a split's sources resolve to, longest first.
fn split_roots(sources: &[String], base: &str, tree: &MemoryTree) -> Vec<String> {
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

async fn sniff_task(backends: &Backends, files: &[ChunkFile], config: &DatasetConfig) -> Result<Task, PlanError> {
    let mut counts = Vec::new();
    for label in files.iter().filter_map(|f| f.label.as_deref()).take(TASK_SNIFF_FILES) {
        let bytes = backends.store.get(label).await?;
        let text = String::from_utf8_lossy(&bytes);
        counts.extend(text.lines().map(|l| l.split_whitespace().count()).filter(|&n| n > 0));
    }
    Ok(infer_task(counts, config.kpt_shape))
}

#[cfg(test)]
mod tests {
    use super::*;

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
