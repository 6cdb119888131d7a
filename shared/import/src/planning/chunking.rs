//! From the indexed files to chunks: the dataset YAML, the split resolution over the member
//! records, and chunks written and enqueued one by one as the splits are walked.
//!
//! Split resolution walks the member records in path order through a
//! [`yds_store::members::MemberTree`] on a blocking thread; each full chunk is completed (labels
//! looked up, and recorded as used), recorded and enqueued before the walk goes on; the unused
//! labels are found at the end by merging the label members with the used ones, both in `_id`
//! order. Memory holds a few chunks, whatever the dataset size — plus, only for a split with
//! several sources or a list file, a 16-byte hash per image name of that split.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{BuildHasher, RandomState};

use tokio::runtime::Handle;
use yds_format::data_yaml::{parse_data_yaml, DatasetConfig, MAX_YAML_BYTES};
use yds_format::layout::{self, FileTree};
use yds_format::Task;
use yds_store::jobs::Planned;
use yds_store::{ChunkFile, EarlyChunks, Finding, JobDoc, MemberDoc, ERROR_SAMPLE};

use super::cutter::{record_config, task_from_labels, ChunkWriter, CutChunk, TASK_SNIFF_FILES};
use crate::error::ImportError;
use crate::importer::Importer;
use crate::sources::{MemberReader, ReadError};

/// Reads the YAML, resolves the splits and writes every chunk; then marks the job planned.
pub(super) async fn plan_chunks(importer: &Importer, job: &JobDoc) -> Result<(), ImportError> {
    let job_id = &job.id;
    let reader = MemberReader::new(&importer.sources, &importer.objects, &job.sources);
    let (yaml_path, yaml_text) = read_config(importer, job, &reader).await?;
    let config =
        parse_data_yaml(&yaml_text).map_err(|e| ImportError::permanent(&yaml_path, "config_invalid", e.to_string()))?;
    let early_task = job.early.as_ref().and_then(|early| early.task);
    let task = match job.task.or(config.task).or(early_task) {
        Some(task) => task,
        None => sniff_task(importer, job, &config, &reader).await?,
    };
    record_config(importer, job, &yaml_path, &yaml_text, &config, task).await?;
    // What the trainer accepts in the YAML but a user should know: listed before the splits'.
    let yaml_findings: Vec<Finding> =
        config.warnings.iter().map(|w| Finding::new(&yaml_path, &w.code, w.message.clone())).collect();

    let cutter = SplitCutter::new(importer, job);
    let (cutter, split_issues) = {
        let (importer, job) = (importer.clone(), job.clone());
        let runtime = Handle::current();
        tokio::task::spawn_blocking(move || walk_splits(&importer, &job, &config, &yaml_path, cutter, runtime))
            .await
            .map_err(|e| ImportError::Transient(format!("split resolution failed: {e}")))??
    };

    let mut findings = yaml_findings;
    findings.extend(split_issues.iter().cloned());
    let orphans = importer.db.members.orphan_labels(job_id).await?;
    let mut finding_counts: BTreeMap<String, u64> = BTreeMap::new();
    for finding in &findings {
        *finding_counts.entry(finding.code.clone()).or_default() += 1;
    }
    if orphans.count > 0 {
        finding_counts.insert("orphan_label".into(), orphans.count);
    }
    findings.extend(
        orphans
            .sample
            .into_iter()
            .map(|path| Finding::new(path, "orphan_label", "label file with no matching image; it is not imported")),
    );
    findings.truncate(ERROR_SAMPLE);
    importer.db.datasets.record_findings(&job.dataset_id, &findings, &finding_counts).await?;
    let (files_total, chunks_total) = (cutter.writer.files_total, u64::from(cutter.writer.next_index));
    let planned = Planned { task, files_total, chunks_total, findings: &findings, errors: &split_issues };
    importer.db.jobs.mark_planned(job_id, &planned).await?;
    tracing::info!(job_id, files = files_total, chunks = chunks_total, task = task.as_str(), "planned");
    Ok(())
}

/// The dataset YAML's path and text.
async fn read_config(
    importer: &Importer,
    job: &JobDoc,
    reader: &MemberReader,
) -> Result<(String, String), ImportError> {
    let candidates = importer.db.members.yaml_files(&job.id).await?;
    let paths: Vec<String> = candidates.iter().map(|m| m.path().to_owned()).collect();
    let yaml_path = layout::find_config(&paths).ok_or_else(|| {
        ImportError::permanent("", "config_missing", "no dataset YAML (data.yaml or *.yaml) found in the source")
    })?;
    let member = candidates.iter().find(|m| m.path() == yaml_path).expect("the chosen YAML is a candidate");
    if member.size > MAX_YAML_BYTES as u64 {
        return Err(ImportError::permanent(&yaml_path, "config_invalid", "the YAML is larger than 1 MiB"));
    }
    let bytes = reader.read(&member.location).await.map_err(|e| read_failure(&yaml_path, e))?;
    let text = String::from_utf8(bytes.to_vec())
        .map_err(|_| ImportError::permanent(&yaml_path, "config_invalid", "the YAML is not valid UTF-8"))?;
    Ok((yaml_path, text))
}

fn read_failure(path: &str, err: ReadError) -> ImportError {
    match err {
        ReadError::Damaged(message) => ImportError::permanent(path, "source_unreadable", message),
        ReadError::Source(e) if e.permanent => ImportError::permanent(path, "source_unavailable", e.message),
        ReadError::Source(e) => ImportError::Transient(e.message),
    }
}

async fn sniff_task(
    importer: &Importer,
    job: &JobDoc,
    config: &DatasetConfig,
    reader: &MemberReader,
) -> Result<Task, ImportError> {
    let labels = importer.db.members.some_label_files(&job.id, TASK_SNIFF_FILES as i64).await?;
    let small = labels.iter().filter(|m| m.size < 1 << 20).map(|m| &m.location);
    Ok(task_from_labels(reader, small, config).await)
}

/// Walks every split on a blocking thread, feeding the cutter; returns it and the split issues.
fn walk_splits(
    importer: &Importer,
    job: &JobDoc,
    config: &DatasetConfig,
    yaml_path: &str,
    mut cutter: SplitCutter,
    runtime: Handle,
) -> Result<(SplitCutter, Vec<Finding>), ImportError> {
    let job_id = &job.id;
    let tree = importer.db.members.tree(job_id, runtime.clone());
    let base = layout::resolve_base(config, yaml_path, &tree);
    let reader = MemberReader::new(&importer.sources, &importer.objects, &job.sources);
    let mut read_list = |path: &str| -> Option<String> {
        let found = runtime.block_on(importer.db.members.find_many(job_id, &[path.to_owned()])).ok()?;
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
            if cutter.pending.len() >= cutter.writer.chunk_size {
                failure = runtime.block_on(cutter.flush()).err();
            }
        });
        if let Some(err) = failure {
            return Err(err);
        }
        issues.extend(split_issues.into_iter().map(|issue| Finding::new(&spec.name, &issue.code, issue.message)));
    }
    runtime.block_on(cutter.finish())?;
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

/// Cuts the images of the split walk into chunks of at most `chunk_size` files and
/// `chunk_max_bytes` bytes of images and labels, leaving out those cut early.
struct SplitCutter {
    importer: Importer,
    job_id: String,
    pending: Vec<Pending>,
    /// The chunk being filled from the pending images.
    filling: CutChunk,
    /// Images cut while the source was staged; left out here.
    early: Option<EarlyChunks>,
    writer: ChunkWriter,
}

impl SplitCutter {
    /// Numbers chunks after the early ones, if any.
    fn new(importer: &Importer, job: &JobDoc) -> Self {
        let early = job.early.clone().filter(|early| early.chunks > 0);
        let (chunks, files) = early.as_ref().map_or((0, 0), |e| (e.chunks, e.files));
        Self {
            importer: importer.clone(),
            job_id: job.id.clone(),
            pending: Vec::new(),
            filling: CutChunk::default(),
            early,
            writer: ChunkWriter::new(importer, job, chunks, files),
        }
    }

    /// Cuts what is pending, writes the last chunk, then waits for every chunk write.
    async fn finish(&mut self) -> Result<(), ImportError> {
        self.flush().await?;
        let last = std::mem::take(&mut self.filling);
        self.writer.write_chunk(last).await?;
        self.writer.finish().await
    }

    /// Completes the pending images (locations, labels), then records and enqueues them as one
    /// or more chunks.
    async fn flush(&mut self) -> Result<(), ImportError> {
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
        let images = self.importer.db.members.find_many(&self.job_id, &image_paths).await?;
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
            if !chunk.files.is_empty() && chunk.bytes + file.bytes_read() > self.writer.chunk_max_bytes {
                self.writer.write_chunk(std::mem::take(&mut chunk)).await?;
            }
            chunk.bytes += file.bytes_read();
            chunk.label_ids.extend(label_member.map(|m| m.id.clone()));
            chunk.files.push(file);
            if chunk.files.len() >= self.writer.chunk_size {
                self.writer.write_chunk(std::mem::take(&mut chunk)).await?;
            }
        }
        self.filling = chunk;
        Ok(())
    }

    /// Whether each pending image that went early if it has a label file, known from its folder
    /// alone ([`EarlyChunks::has_if_labelled_in_folder`]), has one: an index-only lookup, and
    /// no member record read for those that have one (nearly every image, when a tar was cut
    /// early). Images of other folders are not in the answer.
    async fn labelled_by_folder(&self, pending: &[Pending]) -> Result<HashMap<String, bool>, ImportError> {
        let Some(early) = &self.early else { return Ok(HashMap::new()) };
        let decided: Vec<&Pending> =
            pending.iter().filter(|image| early.has_if_labelled_in_folder(&image.split, &image.path)).collect();
        let labels: Vec<String> = decided.iter().map(|image| layout::label_path_for(&image.path)).collect();
        let existing = self.importer.db.members.existing(&self.job_id, &labels).await?;
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
    ) -> Result<HashMap<String, Label>, ImportError> {
        let members = &self.importer.db.members;
        let label_of = |image: &Pending| layout::label_path_for(&image.path);
        let Some(early) = &self.early else {
            let paths: Vec<String> = pending.iter().map(|image| label_of(image)).collect();
            let found = members.find_many(&self.job_id, &paths).await?;
            return Ok(found.into_iter().map(|(path, label)| (path, Label::Member(label))).collect());
        };
        let went_early_if_labelled = |image: &&Pending| {
            images.get(&image.path).is_some_and(|member| early.has_if_labelled(&image.split, member.entry))
        };
        let (decided, undecided): (Vec<&Pending>, Vec<&Pending>) =
            pending.iter().copied().partition(went_early_if_labelled);
        let decided: Vec<String> = decided.into_iter().map(label_of).collect();
        let mut labels: HashMap<String, Label> = HashMap::with_capacity(pending.len());
        for path in members.existing(&self.job_id, &decided).await? {
            labels.insert(path, Label::WentEarly);
        }
        let undecided: Vec<String> = undecided.into_iter().map(label_of).collect();
        for (path, label) in members.find_many(&self.job_id, &undecided).await? {
            labels.insert(path, Label::Member(label));
        }
        Ok(labels)
    }
}

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
    use yds_format::layout::MemoryTree;

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
