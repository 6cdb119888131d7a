//! Indexing a job's sources: every usable file recorded in `import_members` with where its
//! bytes are, reading no more of the source than that needs.
//!
//! - zip (local, HTTP with ranges, `gs://`): the central directory is read by range; members
//!   stay where they are and chunks read them by range later. Nothing is downloaded.
//! - tar and tar.gz: one streaming pass copies the members into pack objects of about 8 MiB
//!   under `temp/{job_id}/src/packs/` (uploads overlap the decompression) and records each
//!   member's pack and offset. A pass that nears its time budget stops at a
//!   member boundary, records how far it got, and planning continues in a new task: a plain tar
//!   from the byte offset of the next member, a tar.gz by decompressing past the members already
//!   staged without redoing their work.
//! - folders (local mode, `gs://bucket/prefix/`): listed page by page; files stay where they are.
//! - an HTTP server that ignores `Range`: downloaded to scratch once, then staged like a tar.

use std::io::Read;
use std::time::Instant;

use bytes::Bytes;
use tokio::sync::mpsc;
use yds_format::archive::{self, ArchiveError, ArchiveKind, Walk};
use yds_format::data_yaml::MAX_YAML_BYTES;
use yds_format::layout;
use yds_storage::{keys, MemoryBudget, ObjectStore, StorageError};
use yds_store::{EarlyChunks, Finding, IndexCursor, JobDoc, Location, MemberDoc, MemberWriter, Sources};

use super::early::EarlyCutter;
use crate::error::ImportError;
use crate::importer::Importer;
use crate::sources::{BlockReader, Folder, Opened, RangedFile, SourceError};

/// Bytes fetched per range request while reading a zip's central directory.
const DIRECTORY_BLOCK: u64 = 256 << 10;
/// Bytes fetched per range request while streaming a tar (two in memory: one read ahead).
const STREAM_BLOCK: u64 = 4 << 20;

/// Whether indexing finished or stopped at its time budget.
pub(super) enum Indexing {
    /// Every source indexed; what was cut into chunks while staging, if anything.
    Done(Option<EarlyChunks>),
    Paused(IndexCursor),
}

/// Whether planning or a chunk will ever read this file; others are not recorded.
fn is_dataset_member(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    layout::is_image_path(path) || lower.ends_with(".txt") || lower.ends_with(".yaml") || lower.ends_with(".yml")
}

/// Indexes the job's sources from its cursor on.
pub(super) async fn index_sources(importer: &Importer, job: &JobDoc) -> Result<Indexing, ImportError> {
    let started = Instant::now();
    let urls = job.sources.urls();
    let cursor = job.index_cursor.unwrap_or_default();
    let parts = matches!(job.sources, Sources::Parts { .. });
    for (number, url) in urls.iter().enumerate().skip(cursor.source as usize) {
        let source = number as u8;
        let resume = if source == cursor.source { cursor } else { IndexCursor { source, ..IndexCursor::default() } };
        let pass = Pass { importer, job, source, url, started, resume };
        let outcome = match (parts, number) {
            (true, 0) => pass.stage_config().await?,
            (true, 1) => pass.index("images").await?,
            (true, _) => pass.index("labels").await?,
            (false, _) => pass.index("").await?,
        };
        match outcome {
            Indexing::Paused(next) => return Ok(Indexing::Paused(IndexCursor { pass: cursor.pass + 1, ..next })),
            // Early chunks need the whole dataset in one archive: only a single source has them.
            Indexing::Done(early) if !parts => return Ok(Indexing::Done(early)),
            Indexing::Done(_) => {}
        }
    }
    Ok(Indexing::Done(None))
}

/// One source of one planning pass.
struct Pass<'a> {
    importer: &'a Importer,
    job: &'a JobDoc,
    source: u8,
    url: &'a str,
    started: Instant,
    resume: IndexCursor,
}

impl Pass<'_> {
    fn permanent(&self, code: &str, message: impl Into<String>) -> ImportError {
        ImportError::permanent(self.url, code, message)
    }

    fn source_error(&self, err: SourceError) -> ImportError {
        if let SourceError::NotFound(message) = err {
            return self.permanent("source_not_found", message);
        }
        if err.is_permanent() {
            self.permanent("source_unavailable", err.to_string())
        } else {
            ImportError::Transient(err.to_string())
        }
    }

    /// The `config_url` of a split source: a single YAML, staged as `data.yaml`.
    async fn stage_config(&self) -> Result<Indexing, ImportError> {
        let file = self.importer.sources.open_file(self.url).await.map_err(|e| self.source_error(e))?;
        if file.size() > MAX_YAML_BYTES as u64 {
            return Err(self.permanent("config_invalid", "the YAML is larger than 1 MiB"));
        }
        let bytes = file.read_range(0..file.size()).await.map_err(|e| self.source_error(e))?;
        let key = keys::staged_member(&self.job.id, "data.yaml");
        let size = bytes.len() as u64;
        self.importer.objects.put(&key, bytes).await?;
        let mut writer = self.importer.db.members.writer();
        writer.add(MemberDoc::new(&self.job.id, "data.yaml", 0, size, Location::Staged { key })).await?;
        writer.flush().await?;
        Ok(Indexing::Done(None))
    }

    /// An archive or folder; every member under `prefix` (unless it already starts with it, as
    /// an `images.zip` holding `images/...` does).
    async fn index(&self, prefix: &str) -> Result<Indexing, ImportError> {
        match self.importer.sources.open(self.url).await.map_err(|e| self.source_error(e))? {
            Opened::Tree(tree) => self.index_tree(&tree, prefix).await,
            Opened::File(file) => {
                let head = file.read_range(0..512).await.map_err(|e| self.source_error(e))?;
                match archive::detect_kind(&head, self.url) {
                    Some(ArchiveKind::Zip) => self.index_zip(file, prefix).await,
                    Some(ArchiveKind::Tar) => self.stage_tar(file, false, prefix).await,
                    Some(ArchiveKind::TarGz) => self.stage_tar(file, true, prefix).await,
                    None => Err(self.not_an_archive()),
                }
            }
            Opened::HttpWithoutRanges { url, .. } => self.stage_download(&url, prefix).await,
        }
    }

    /// The archive limits, without the walker's own repeat detection: the member index finds
    /// repeated names itself (see [`MemberWriter`]) at no memory cost.
    fn limits(&self) -> archive::Limits {
        archive::Limits { refuse_duplicates: false, ..self.importer.archive_limits }
    }

    fn not_an_archive(&self) -> ImportError {
        self.permanent("archive_unsupported", "the source is not a zip, tar or tar.gz archive")
    }

    fn member_path(prefix: &str, name: &str) -> String {
        if prefix.is_empty() || name.starts_with(&format!("{prefix}/")) {
            name.to_owned()
        } else {
            format!("{prefix}/{name}")
        }
    }

    async fn index_tree(&self, tree: &Folder, prefix: &str) -> Result<Indexing, ImportError> {
        let mut writer = self.importer.db.members.writer();
        let mut pages = tree.pages(1000);
        let mut refused = Vec::new();
        let mut entry = 0;
        while let Some(page) = pages.recv().await {
            for (name, size) in page.map_err(ImportError::Transient)? {
                entry += 1;
                // Object names are as hostile as archive member names.
                match archive::sanitize_member_name(name.as_bytes()) {
                    Ok(Some(clean)) if clean == name => {
                        if is_dataset_member(&name) {
                            let path = Self::member_path(prefix, &name);
                            let location = Location::Tree { source: self.source, path: name };
                            writer.add(MemberDoc::new(&self.job.id, &path, entry, size, location)).await?;
                        }
                    }
                    Ok(_) => {}
                    Err(reason) => refused.push(archive::Rejected { name, reason }),
                }
            }
        }
        writer.flush().await?;
        record_refusals(self.importer, &self.job.id, &refused).await?;
        record_duplicates(self.importer, &self.job.id, &writer).await?;
        Ok(Indexing::Done(None))
    }

    /// Reads the central directory by range; members are read by range by their chunks.
    async fn index_zip(&self, file: RangedFile, prefix: &str) -> Result<Indexing, ImportError> {
        let (tx, mut rx) = mpsc::channel::<MemberDoc>(1024);
        let runtime = tokio::runtime::Handle::current();
        let (limits, job_id, source, prefix) = (self.limits(), self.job.id.clone(), self.source, prefix.to_owned());
        let walk = tokio::task::spawn_blocking(move || {
            let reader = BlockReader::new(file, runtime, DIRECTORY_BLOCK);
            let mut number = 0;
            archive::index_zip(reader, &limits, &mut |name, entry| {
                number += 1;
                if !is_dataset_member(name) {
                    return Ok(());
                }
                let path = Self::member_path(&prefix, name);
                let member = MemberDoc::new(&job_id, &path, number, entry.size, Location::zip(source, entry));
                tx.blocking_send(member).map_err(|_| "indexing stopped".to_owned())
            })
        });
        let mut writer = self.importer.db.members.writer();
        let mut write_error = None;
        while let Some(member) = rx.recv().await {
            if let Err(err) = writer.add(member).await {
                write_error = Some(err);
                break;
            }
        }
        drop(rx);
        let walk = walk.await.map_err(|e| ImportError::Transient(format!("indexing task failed: {e}")))?;
        if let Some(err) = write_error {
            return Err(err.into());
        }
        writer.flush().await?;
        let walk = walk.map_err(|e| self.walk_error(e))?;
        record_refusals(self.importer, &self.job.id, &walk.rejected).await?;
        record_duplicates(self.importer, &self.job.id, &writer).await?;
        Ok(Indexing::Done(None))
    }

    /// Downloads a source whose server cannot serve ranges, then stages it as an archive.
    async fn stage_download(&self, url: &url::Url, prefix: &str) -> Result<Indexing, ImportError> {
        let scratch = &self.importer.sources.scratch_dir;
        std::fs::create_dir_all(scratch).map_err(|e| ImportError::Transient(e.to_string()))?;
        let temp = tempfile::Builder::new()
            .prefix(&format!("yds-{}-", self.job.id))
            .tempfile_in(scratch)
            .map_err(|e| ImportError::Transient(e.to_string()))?
            .into_temp_path();
        self.importer.sources.fetcher.download(url, &temp).await.map_err(|e| self.source_error(e))?;
        // The copy is ours (whatever the URL policy says about `file://`) and lives only as long
        // as this task, so its staging has no time budget: it cannot resume in another task.
        let file = RangedFile::local(temp.to_path_buf())
            .await
            .map_err(|e| ImportError::Transient(format!("the downloaded copy could not be opened: {e}")))?;
        let head = file.read_range(0..512).await.map_err(|e| self.source_error(e))?;
        let kind = match archive::detect_kind(&head, self.url) {
            Some(ArchiveKind::Zip) => Kind::Zip,
            Some(ArchiveKind::Tar) => Kind::Tar,
            Some(ArchiveKind::TarGz) => Kind::TarGz,
            None => return Err(self.not_an_archive()),
        };
        self.stage_walk(file, kind, prefix, None).await
    }

    async fn stage_tar(&self, file: RangedFile, gz: bool, prefix: &str) -> Result<Indexing, ImportError> {
        let budget = Some(self.importer.pacing.plan_budget);
        self.stage_walk(file, if gz { Kind::TarGz } else { Kind::Tar }, prefix, budget).await
    }

    /// Streams the archive, copying each member to scratch storage (several uploads in flight)
    /// and recording it; stops at a member boundary once the pass's budget is spent.
    async fn stage_walk(
        &self,
        file: RangedFile,
        kind: Kind,
        prefix: &str,
        budget: Option<std::time::Duration>,
    ) -> Result<Indexing, ImportError> {
        let started = self.started;
        let resume = self.resume;
        // A plain tar resumes at the byte offset of its next member; a gzip stream cannot be
        // entered in the middle, so it is decompressed from the start and the members already
        // staged are skipped.
        let (start_offset, skip) = match kind {
            Kind::Tar => (resume.offset, 0),
            Kind::TarGz | Kind::Zip => (0, resume.members_done),
        };
        let (tx, rx) = mpsc::channel::<Staged>(256);
        let runtime = tokio::runtime::Handle::current();
        // Members on their way to a pack hold a share of this: the queue between the walk and
        // the packs is bounded in bytes, not only in members (photos may be megabytes each).
        let queue_bytes = MemoryBudget::new(STAGING_QUEUE_BYTES);
        let reserve = {
            let (runtime, queue_bytes) = (runtime.clone(), queue_bytes.clone());
            move |bytes: usize| runtime.block_on(queue_bytes.reserve(bytes as u64))
        };
        let limits = self.limits();
        let prefix = prefix.to_owned();
        let walker = tokio::task::spawn_blocking(move || -> Result<(Walk, WalkEnd), ArchiveError> {
            let mut reader = BlockReader::new(file, runtime, STREAM_BLOCK);
            std::io::Seek::seek(&mut reader, std::io::SeekFrom::Start(start_offset)).map_err(ArchiveError::Io)?;
            let mut end = WalkEnd { members_done: resume.members_done, next_offset: start_offset, paused: false };
            let mut seen = 0u64;
            let mut on_file = |name: &str, _size: u64, data: &mut dyn Read, position: Option<u64>| {
                seen += 1;
                if seen <= skip {
                    return Ok(());
                }
                // Every pass stages at least one member, so a pass always makes progress.
                let spent = budget.is_some_and(|budget| started.elapsed() >= budget);
                if spent && end.members_done > resume.members_done {
                    end.paused = true;
                    if let Some(position) = position {
                        end.next_offset = start_offset + position;
                    }
                    return Err(PAUSED.to_owned());
                }
                let number = end.members_done;
                end.members_done += 1;
                if !is_dataset_member(name) {
                    return Ok(());
                }
                let mut bytes = Vec::new();
                data.read_to_end(&mut bytes).map_err(|e| format!("reading {name}: {e}"))?;
                let reserved = reserve(bytes.len());
                let staged = Staged { number, path: Self::member_path(&prefix, name), data: bytes, reserved };
                tx.blocking_send(staged).map_err(|_| "staging stopped".to_owned())
            };
            let walk = match kind {
                Kind::Zip => archive::walk_zip(reader, &limits, &mut |n, s, r| on_file(n, s, r, None)),
                Kind::Tar => archive::walk_tar_at(reader, false, &limits, &mut on_file),
                Kind::TarGz => archive::walk_tar_at(reader, true, &limits, &mut on_file),
            };
            match walk {
                Err(ArchiveError::Callback(message)) if message == PAUSED => Ok((Walk::default(), end)),
                other => other.map(|walk| (walk, end)),
            }
        });
        // One archive holding the whole dataset can be cut into chunks while it is staged.
        let mut early = match self.job.sources {
            Sources::Archive { .. } => Some(EarlyCutter::load(self.importer, self.job, resume.members_done).await?),
            Sources::Parts { .. } => None,
        };
        let uploaded = self.upload(rx, early.as_mut()).await;
        let walked = walker.await.map_err(|e| ImportError::Transient(format!("staging task failed: {e}")))?;
        uploaded?;
        let (walk, end) = walked.map_err(|e| self.walk_error(e))?;
        record_refusals(self.importer, &self.job.id, &walk.rejected).await?;
        if end.paused {
            tracing::info!(job_id = %self.job.id, members = end.members_done, "planning pass reached its budget");
            if let Some(early) = early {
                early.pause(end.members_done).await?;
            }
            let cursor =
                IndexCursor { source: self.source, members_done: end.members_done, offset: end.next_offset, pass: 0 };
            return Ok(Indexing::Paused(cursor));
        }
        match early {
            Some(early) => Ok(Indexing::Done(Some(early.finish().await?))),
            None => Ok(Indexing::Done(None)),
        }
    }

    /// Packs staged members into pack objects, uploads each full pack (two in flight) and
    /// then records its members, pack after pack in archive order (the first of two members
    /// with one name is the one kept), and hands them to the early cutter.
    async fn upload(
        &self,
        mut rx: mpsc::Receiver<Staged>,
        mut early: Option<&mut EarlyCutter>,
    ) -> Result<(), ImportError> {
        let mut pack = Pack::new();
        let mut uploads = std::collections::VecDeque::new();
        let members = &self.importer.db.members;
        let mut writer = if early.is_some() { members.writer_tracking_repeats() } else { members.writer() };
        loop {
            let next = rx.recv().await;
            // A pack closes before it would outgrow its size, so its buffer never reallocates.
            let close = match &next {
                Some(staged) => {
                    !pack.members.is_empty()
                        && ((pack.data.len() + staged.data.len()) as u64 > PACK_BYTES
                            || pack.members.len() >= PACK_MEMBERS)
                }
                None => !pack.members.is_empty(),
            };
            if close {
                if uploads.len() >= PACKS_IN_FLIGHT {
                    self.record_pack(uploads.pop_front(), &mut writer, early.as_deref_mut()).await?;
                }
                let full = std::mem::replace(&mut pack, Pack::new());
                let (objects, job_id, source) = (self.importer.objects.clone(), self.job.id.clone(), self.source);
                uploads.push_back(tokio::spawn(async move { full.upload(objects.as_ref(), &job_id, source).await }));
            }
            match next {
                Some(staged) => {
                    if let Some(early) = early.as_deref_mut() {
                        early.saw(staged.number, &staged.path, &staged.data);
                    }
                    pack.add(staged)
                }
                None => break,
            }
        }
        while !uploads.is_empty() {
            self.record_pack(uploads.pop_front(), &mut writer, early.as_deref_mut()).await?;
        }
        writer.flush().await?;
        record_duplicates(self.importer, &self.job.id, &writer).await
    }

    async fn record_pack(
        &self,
        upload: Option<tokio::task::JoinHandle<Result<Vec<MemberDoc>, StorageError>>>,
        writer: &mut MemberWriter,
        early: Option<&mut EarlyCutter>,
    ) -> Result<(), ImportError> {
        let Some(upload) = upload else { return Ok(()) };
        let members = upload.await.map_err(|e| ImportError::Transient(format!("pack upload failed: {e}")))??;
        let Some(early) = early else {
            for member in members {
                writer.add(member).await?;
            }
            return Ok(());
        };
        for member in &members {
            writer.add(member.clone()).await?;
        }
        // The cutter looks up earlier members: all of them must be recorded first.
        writer.flush().await?;
        let repeated: std::collections::HashSet<u64> = writer.repeated_entries.drain(..).collect();
        early.recorded(&members, &repeated).await
    }

    fn walk_error(&self, err: ArchiveError) -> ImportError {
        match err {
            ArchiveError::Callback(msg) => ImportError::Transient(msg),
            ArchiveError::Io(e) => ImportError::Transient(format!("reading the source: {e}")),
            ArchiveError::Corrupt(msg) => self.permanent("archive_corrupt", msg),
            ArchiveError::LimitExceeded(msg) => self.permanent("archive_too_large", msg),
        }
    }
}

/// One archive member read by a staging walk.
struct Staged {
    /// Its number among the archive's entries.
    number: u64,
    path: String,
    data: Vec<u8>,
    /// Its share of the staging queue's bytes, given back once it is in a pack.
    reserved: tokio::sync::OwnedSemaphorePermit,
}

/// Member bytes between the walk and the packs.
const STAGING_QUEUE_BYTES: u64 = 8 << 20;

/// Largest pack object, and most members in one: staging writes a few large objects instead of
/// millions of small ones (object stores charge and throttle per object).
const PACK_BYTES: u64 = 8 << 20;
const PACK_MEMBERS: usize = 20_000;
/// Pack uploads in flight at once; memory holds one filling pack and these.
const PACKS_IN_FLIGHT: usize = 2;

/// Members concatenated into one staging object.
struct Pack {
    data: Vec<u8>,
    /// `(archive entry number, path, offset, size)`.
    members: Vec<(u64, String, u64, u64)>,
}

impl Pack {
    fn new() -> Self {
        Self { data: Vec::with_capacity(PACK_BYTES as usize), members: Vec::new() }
    }

    fn add(&mut self, staged: Staged) {
        let offset = self.data.len() as u64;
        self.members.push((staged.number, staged.path, offset, staged.data.len() as u64));
        self.data.extend_from_slice(&staged.data);
        drop(staged.reserved);
    }

    /// Uploads the pack under a name fixed by its first entry and its member count, so a
    /// repeated pass writes the same bytes under the same name; returns its members' records.
    async fn upload(self, objects: &dyn ObjectStore, job_id: &str, source: u8) -> Result<Vec<MemberDoc>, StorageError> {
        let first = self.members.first().map_or(0, |m| m.0);
        let key = keys::staged_member(job_id, &format!("packs/{source}-{first:010}-{}", self.members.len()));
        objects.put(&key, Bytes::from(self.data)).await?;
        Ok(self
            .members
            .into_iter()
            .map(|(entry, path, offset, size)| {
                MemberDoc::new(job_id, &path, entry, size, Location::Packed { key: key.clone(), offset, size })
            })
            .collect())
    }
}

/// The callback's way of stopping a walk at the budget.
const PAUSED: &str = "planning pass paused at its time budget";

#[derive(Clone, Copy)]
enum Kind {
    Zip,
    Tar,
    TarGz,
}

/// Where a staging walk stopped.
struct WalkEnd {
    members_done: u64,
    next_offset: u64,
    paused: bool,
}

/// Repeated names the member index refused become job errors, as the walker's would.
async fn record_duplicates(importer: &Importer, job_id: &str, writer: &MemberWriter) -> Result<(), ImportError> {
    let refused: Vec<archive::Rejected> = writer
        .duplicates
        .iter()
        .map(|name| archive::Rejected { name: name.clone(), reason: archive::RejectReason::DuplicateName })
        .collect();
    record_refusals(importer, job_id, &refused).await
}

/// Refused members become job errors (a bounded sample).
async fn record_refusals(importer: &Importer, job_id: &str, refused: &[archive::Rejected]) -> Result<(), ImportError> {
    let errors: Vec<Finding> = refused
        .iter()
        .take(yds_store::ERROR_SAMPLE)
        .map(|r| {
            let message = format!("archive member `{}` refused and not imported: {}", r.name, r.reason.message());
            Finding::new(&r.name, r.reason.code(), message)
        })
        .collect();
    importer.db.jobs.push_errors(job_id, &errors).await?;
    Ok(())
}
