//! Early chunks: while a tar is staged, every image whose label file has been staged too is cut
//! into a chunk, and each chunk is enqueued as soon as it is full, so processing runs while
//! staging goes on. The plan that follows the staging leaves those images out.
//!
//! Only what the rest of the archive cannot change is cut early:
//! - the YAML is a root `data.yaml` seen before anything in a folder (at one depth `data.yaml`
//!   wins, so no later file can replace it, see [`layout::find_config`]);
//! - a split is cut early once the folder its sole source names exists (a folder never stops
//!   existing; `layout::sole_source_dir`); splits with several sources or a list file wait;
//! - an image goes into an early chunk when both it and its label file have been staged; an
//!   image without a label waits (its label may still come).
//!
//! Every decision is a function of the archive's member order alone, never of what another
//! delivery of the same pass already recorded (member records of later entries are ignored), so
//! a retried or duplicated pass cuts the same chunks under the same numbers. A pass that pauses
//! at its budget saves where cutting stands under its stopping position (`import_plan_states`),
//! and the next pass starts from there. The later plan knows from [`EarlyChunks`] which images
//! went early without any per-image mark: those whose later file (image or label) was staged
//! after their split began to be cut early.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};
use yds_format::data_yaml::{parse_data_yaml, DatasetConfig, MAX_YAML_BYTES};
use yds_format::layout;
use yds_format::Task;
use yds_store::{ChunkFile, EarlyChunks, JobDoc, MemberDoc};

use super::cutter::{record_config, task_from_labels, ChunkWriter, CutChunk, TASK_SNIFF_FILES};
use crate::error::ImportError;
use crate::importer::Importer;
use crate::sources::MemberReader;

/// The YAML that can be trusted before the archive's end.
const ROOT_CONFIG: &str = "data.yaml";
/// Image folders whose extensions are tracked (to find an image from its label); past this,
/// early cutting stops: a dataset with more folders is planned once staged.
const MAX_IMAGE_DIRS: usize = 4096;
/// Distinct extensions tracked per folder.
const MAX_EXTENSIONS: usize = 16;
/// Recorded members whose other halves are looked up together.
const TRIGGER_WINDOW: usize = 2_000;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Phase {
    /// Nothing in a folder yet, no root `data.yaml` yet.
    #[default]
    AwaitingConfig,
    Cutting,
    Stopped,
}

/// An image ready for an early chunk.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Ready {
    file: ChunkFile,
    label_id: String,
}

/// Where early cutting stands at one archive position; saved when a pass pauses.
#[derive(Debug, Default, Serialize, Deserialize)]
struct CutState {
    phase: Phase,
    config: Option<String>,
    /// Folders the YAML's paths name that exist.
    existing: Vec<String>,
    /// Image extensions (as written) seen in each folder.
    extensions: Vec<(String, Vec<String>)>,
    /// Folders holding a staged `.txt` file: an image whose label folder has none yet needs
    /// no lookup.
    text_dirs: HashSet<String>,
    /// `(split, entry)`: when each split began to be cut early.
    splits: Vec<(String, u64)>,
    /// `(split, folder)` of the splits whose folder first appeared while cutting (see
    /// [`EarlyChunks::split_folders`]).
    #[serde(default)]
    folders: Vec<(String, String)>,
    stopped_at: Option<u64>,
    task: Option<Task>,
    /// Whether the dataset's classes and task are recorded (before the first chunk is sent).
    configured: bool,
    ready: Vec<Ready>,
    ready_bytes: u64,
    next_index: u32,
    files: u64,
}

/// Cuts early chunks during one staging pass.
pub(super) struct EarlyCutter {
    importer: Importer,
    job: JobDoc,
    state: CutState,
    /// The parsed YAML while cutting.
    config: Option<DatasetConfig>,
    extensions: HashMap<String, Vec<String>>,
    /// The root `data.yaml` staged in this pass: its entry and bytes.
    config_bytes: Option<(u64, Vec<u8>)>,
    folders: Folders,
    writer: ChunkWriter,
}

/// Derived from the YAML and the folders known to exist.
#[derive(Default)]
struct Folders {
    /// Folders whose existence would let more be cut early.
    awaited: Vec<String>,
    /// Per split of the YAML: its folder, when it is cut early.
    roots: Vec<Option<String>>,
}

impl Folders {
    /// The splits cut early that hold `image`, by index.
    fn splits_of(&self, image: &str) -> Vec<usize> {
        let holds =
            |root: &Option<String>| root.as_deref().is_some_and(|root| layout::image_in_dir(root, image).is_some());
        self.roots.iter().enumerate().filter(|(_, root)| holds(root)).map(|(i, _)| i).collect()
    }
}

/// What one recorded member asks of the lookups.
enum Trigger {
    /// An image of these splits (indexes into the YAML's splits); ready if its label came first.
    Image { at: usize, splits: Vec<usize>, label: String },
    /// A label file; ready with each of these images (and their splits) staged before it.
    Label { at: usize, images: Vec<(String, Vec<usize>)> },
}

impl EarlyCutter {
    /// The cutter of a pass starting at archive entry `position`: fresh at 0, else where the
    /// pass that paused there left it.
    pub(super) async fn load(importer: &Importer, job: &JobDoc, position: u64) -> Result<Self, ImportError> {
        let state = if position == 0 {
            CutState::default()
        } else {
            match importer.db.plan_states.load(&job.id, position).await? {
                Some(saved) => {
                    saved.map_err(|e| ImportError::Transient(format!("unreadable early planning state: {e}")))?
                }
                // A pass paused by a version without early cutting: plan everything at the end
                // (see `yds_store::upgrade`).
                None => CutState { phase: Phase::Stopped, ..CutState::default() },
            }
        };
        let writer = ChunkWriter::new(importer, job, state.next_index, state.files);
        let extensions = state.extensions.iter().cloned().collect();
        let config = state.config.as_deref().and_then(|text| parse_data_yaml(text).ok());
        let mut early = Self {
            importer: importer.clone(),
            job: job.clone(),
            state,
            config,
            extensions,
            config_bytes: None,
            folders: Folders::default(),
            writer,
        };
        early.refresh_folders(position);
        early.state.extensions.clear();
        if early.state.phase == Phase::Cutting && early.config.is_none() {
            early.state.phase = Phase::Stopped;
        }
        Ok(early)
    }

    /// Keeps the root `data.yaml`'s bytes as the walk passes it (its record comes later).
    pub(super) fn saw(&mut self, entry: u64, path: &str, data: &[u8]) {
        let wanted = self.state.phase == Phase::AwaitingConfig && self.config_bytes.is_none();
        if wanted && path == ROOT_CONFIG && data.len() <= MAX_YAML_BYTES {
            self.config_bytes = Some((entry, data.to_vec()));
        }
    }

    /// Takes in the members of one pack, in archive order, once they are recorded; `repeated`
    /// are the entries refused as repeated names. Cuts and sends every chunk that fills.
    pub(super) async fn recorded(&mut self, members: &[MemberDoc], repeated: &HashSet<u64>) -> Result<(), ImportError> {
        // A window at a time: the lookups' answers stay small whatever the pack holds.
        for window in members.chunks(TRIGGER_WINDOW) {
            let mut triggers = Vec::new();
            for (at, member) in window.iter().enumerate() {
                if repeated.contains(&member.entry) {
                    continue;
                }
                match self.state.phase {
                    Phase::Stopped => break,
                    Phase::AwaitingConfig => self.before_config(member),
                    Phase::Cutting => {
                        if let Some(trigger) = self.observe(at, member) {
                            triggers.push(trigger);
                        }
                    }
                }
            }
            if !triggers.is_empty() {
                self.match_pairs(window, triggers).await?;
            }
            if self.state.phase == Phase::Stopped {
                break;
            }
        }
        if self.state.phase == Phase::Stopped && !self.state.ready.is_empty() {
            // What was ready before the stop goes out now: the later plan counts it as early.
            self.cut().await?;
        }
        Ok(())
    }

    fn before_config(&mut self, member: &MemberDoc) {
        let path = member.path();
        if path == ROOT_CONFIG {
            self.start(member.entry);
        } else if path.contains('/') {
            // A folder seen before the YAML: its existence would have to be known. Rare enough
            // to plan such archives once staged.
            self.state.phase = Phase::Stopped;
        } else if layout::is_image_path(path) {
            // Root files: a split of the whole archive pairs them once the YAML is there.
            if !self.note_extension(path) {
                self.state.phase = Phase::Stopped;
            }
        } else if path.ends_with(".txt") && !self.note_text(path) {
            self.state.phase = Phase::Stopped;
        }
    }

    fn start(&mut self, entry: u64) {
        let bytes = self.config_bytes.take().filter(|(at, _)| *at == entry).map(|(_, bytes)| bytes);
        let text = bytes.and_then(|bytes| String::from_utf8(bytes).ok());
        let config = text.as_deref().and_then(|text| parse_data_yaml(text).ok());
        match (text, config) {
            (Some(text), Some(config)) => {
                self.state.config = Some(text);
                self.config = Some(config);
                self.state.phase = Phase::Cutting;
                self.refresh_folders(entry);
            }
            // The plan at the end reports what is wrong with it.
            _ => self.state.phase = Phase::Stopped,
        }
    }

    /// Works out, from the folders known to exist, which folders are still awaited and which
    /// splits are cut early (noting from which entry on).
    fn refresh_folders(&mut self, entry: u64) {
        let Some(config) = &self.config else { return };
        let exists = |dir: &str| dir.is_empty() || self.state.existing.iter().any(|d| d == dir);
        let mut awaited = Vec::new();
        let base = match layout::base_awaited(config, ROOT_CONFIG) {
            None => Some(String::new()),
            Some(dir) if exists(&dir) => Some(dir),
            Some(dir) => {
                awaited.push(dir);
                None
            }
        };
        let mut roots = Vec::with_capacity(config.splits.len());
        for spec in &config.splits {
            let dir = base.as_deref().and_then(|base| layout::sole_source_dir(spec, base));
            match dir {
                Some(dir) if exists(&dir) => {
                    if !self.state.splits.iter().any(|(name, _)| *name == spec.name) {
                        self.state.splits.push((spec.name.clone(), entry));
                        // A folder exists from its first member on, and no member in a folder
                        // came before cutting began (that stops it): all of its images come
                        // from this entry on. Not so for the root, which held files before.
                        if !dir.is_empty() {
                            self.state.folders.push((spec.name.clone(), dir.clone()));
                        }
                    }
                    roots.push(Some(dir));
                }
                Some(dir) => {
                    awaited.push(dir);
                    roots.push(None);
                }
                None => roots.push(None),
            }
        }
        self.folders = Folders { awaited, roots };
    }

    /// Notes the awaited folders `path` lies in.
    fn note_folders(&mut self, path: &str, entry: u64) {
        let inside = |dir: &String| path.strip_prefix(dir.as_str()).is_some_and(|rest| rest.starts_with('/'));
        while let Some(dir) = self.folders.awaited.iter().find(|dir| inside(dir)).cloned() {
            self.state.existing.push(dir);
            self.refresh_folders(entry);
        }
    }

    fn note_extension(&mut self, path: &str) -> bool {
        let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
        let Some((_, ext)) = name.rsplit_once('.') else { return true };
        if !self.extensions.contains_key(dir) {
            if self.extensions.len() >= MAX_IMAGE_DIRS {
                return false;
            }
            self.extensions.insert(dir.to_owned(), Vec::new());
        }
        let known = self.extensions.get_mut(dir).expect("inserted above");
        if !known.iter().any(|e| e == ext) {
            if known.len() >= MAX_EXTENSIONS {
                return false;
            }
            known.push(ext.to_owned());
        }
        true
    }

    fn note_text(&mut self, path: &str) -> bool {
        let dir = path.rsplit_once('/').map_or("", |(dir, _)| dir);
        if self.state.text_dirs.contains(dir) {
            return true;
        }
        if self.state.text_dirs.len() >= MAX_IMAGE_DIRS {
            return false;
        }
        self.state.text_dirs.insert(dir.to_owned());
        true
    }

    fn stop(&mut self, entry: u64) {
        self.state.phase = Phase::Stopped;
        self.state.stopped_at = Some(entry);
    }

    /// Updates the state with one recorded member; what it may complete.
    fn observe(&mut self, at: usize, member: &MemberDoc) -> Option<Trigger> {
        let path = member.path();
        self.note_folders(path, member.entry);
        if layout::is_image_path(path) {
            if !self.note_extension(path) {
                self.stop(member.entry);
                return None;
            }
            let splits = self.folders.splits_of(path);
            if splits.is_empty() {
                return None;
            }
            let label = layout::label_path_for(path);
            let label_dir = label.rsplit_once('/').map_or("", |(dir, _)| dir);
            return self.state.text_dirs.contains(label_dir).then_some(Trigger::Image { at, splits, label });
        }
        if !path.ends_with(".txt") {
            return None;
        }
        if !self.note_text(path) {
            self.stop(member.entry);
            return None;
        }
        let extensions = &self.extensions;
        let candidates = layout::images_for_label(path, &|dir| extensions.get(dir).cloned().unwrap_or_default());
        let images: Vec<(String, Vec<usize>)> = candidates
            .into_iter()
            .map(|image| {
                let splits = self.folders.splits_of(&image);
                (image, splits)
            })
            .filter(|(_, splits)| !splits.is_empty())
            .collect();
        (!images.is_empty()).then_some(Trigger::Label { at, images })
    }

    /// Looks up the other half of each trigger; pairs whose other half was staged earlier are
    /// ready, in archive order.
    async fn match_pairs(&mut self, members: &[MemberDoc], triggers: Vec<Trigger>) -> Result<(), ImportError> {
        let mut wanted: Vec<String> = Vec::new();
        for trigger in &triggers {
            match trigger {
                Trigger::Image { label, .. } => wanted.push(label.clone()),
                Trigger::Label { images, .. } => wanted.extend(images.iter().map(|(image, _)| image.clone())),
            }
        }
        let found = self.importer.db.members.find_many(&self.job.id, &wanted).await?;
        // Records of later entries come from another delivery running ahead: not staged yet here.
        let staged_before = |path: &str, entry: u64| found.get(path).filter(|m: &&MemberDoc| m.entry < entry);
        let mut pairs: Vec<(usize, MemberDoc, MemberDoc)> = Vec::new();
        for trigger in triggers {
            match trigger {
                Trigger::Image { at, splits, label } => {
                    let image = &members[at];
                    if let Some(label) = staged_before(&label, image.entry) {
                        pairs.extend(splits.into_iter().map(|split| (split, image.clone(), label.clone())));
                    }
                }
                Trigger::Label { at, images } => {
                    let label = &members[at];
                    for (path, splits) in images {
                        if let Some(image) = staged_before(&path, label.entry) {
                            pairs.extend(splits.into_iter().map(|split| (split, image.clone(), label.clone())));
                        }
                    }
                }
            }
        }
        let roots = self.folders.roots.clone();
        let names: Vec<String> =
            self.config.as_ref().map(|c| c.splits.iter().map(|s| s.name.clone()).collect()).unwrap_or_default();
        for (split, image, label) in pairs {
            let Some(root) = roots.get(split).and_then(Option::as_deref) else { continue };
            let Some(file_name) = layout::image_in_dir(root, image.path()) else { continue };
            let file = ChunkFile {
                split: names[split].clone(),
                file_name: file_name.to_owned(),
                image: image.location.clone(),
                size: image.size,
                label: Some(label.location.clone()),
                label_size: label.size,
            };
            self.push(Ready { file, label_id: label.id.clone() }).await?;
        }
        Ok(())
    }

    /// Adds a ready image, cutting a chunk as the plan does: before the bytes limit would be
    /// passed, and when the file count is reached.
    async fn push(&mut self, ready: Ready) -> Result<(), ImportError> {
        let size = ready.file.bytes_read();
        if !self.state.ready.is_empty() && self.state.ready_bytes + size > self.writer.chunk_max_bytes {
            self.cut().await?;
        }
        self.state.ready_bytes += size;
        self.state.ready.push(ready);
        if self.state.ready.len() >= self.writer.chunk_size {
            self.cut().await?;
        }
        Ok(())
    }

    async fn cut(&mut self) -> Result<(), ImportError> {
        if self.state.ready.is_empty() {
            return Ok(());
        }
        if !self.state.configured {
            self.configure().await?;
        }
        let ready = std::mem::take(&mut self.state.ready);
        let bytes = std::mem::take(&mut self.state.ready_bytes);
        let label_ids = ready.iter().map(|r| r.label_id.clone()).collect();
        let files = ready.into_iter().map(|r| r.file).collect();
        self.writer.write_chunk(CutChunk { files, bytes, label_ids }).await
    }

    /// Records the dataset's classes and task before its first chunk is sent (chunks read them).
    async fn configure(&mut self) -> Result<(), ImportError> {
        let (Some(config), Some(text)) = (&self.config, &self.state.config) else {
            return Err(ImportError::Transient("early cutting without a YAML".into()));
        };
        let task = match self.job.task.or(config.task).or(self.state.task) {
            Some(task) => task,
            None => {
                // From the labels of the first chunk: the plan at the end uses the same task.
                let reader = MemberReader::new(&self.importer.sources, &self.importer.objects, &self.job.sources);
                let labels = self.state.ready.iter().filter_map(|r| r.file.label.as_ref()).take(TASK_SNIFF_FILES);
                task_from_labels(&reader, labels, config).await
            }
        };
        record_config(&self.importer, &self.job, ROOT_CONFIG, text, config, task).await?;
        self.state.task = Some(task);
        self.state.configured = true;
        Ok(())
    }

    /// The pass paused at archive entry `position`: waits for the chunks in flight and saves
    /// the state for the pass that starts there.
    pub(super) async fn pause(mut self, position: u64) -> Result<(), ImportError> {
        self.writer.finish().await?;
        self.sync_state();
        self.importer.db.plan_states.save(&self.job.id, position, &self.state).await?;
        Ok(())
    }

    /// The archive's end: cuts what is ready, waits for every chunk write.
    pub(super) async fn finish(mut self) -> Result<EarlyChunks, ImportError> {
        if self.state.phase == Phase::Cutting {
            self.cut().await?;
        }
        self.writer.finish().await?;
        self.sync_state();
        let state = self.state;
        Ok(EarlyChunks {
            chunks: state.next_index,
            files: state.files,
            task: state.task.filter(|_| state.next_index > 0),
            splits: state.splits,
            split_folders: state.folders,
            stopped_at: state.stopped_at,
        })
    }

    fn sync_state(&mut self) {
        self.state.next_index = self.writer.next_index;
        self.state.files = self.writer.files_total;
        self.state.extensions = self.extensions.iter().map(|(dir, exts)| (dir.clone(), exts.clone())).collect();
        self.state.extensions.sort();
    }
}
