//! The file index of a job's source: one record per usable file, in `import_members`.
//!
//! Planning fills it from a zip's central directory, a tar pass or a folder listing, then reads
//! it back with indexed prefix queries (`_id` is `{job_id}:{path}`, so a folder is an `_id`
//! range). No invocation ever holds a dataset's file list in memory, whatever its size; and
//! since every record has a deterministic `_id`, a retried or resumed pass writes nothing twice.

use std::collections::{HashMap, HashSet};

use bytes::Bytes;
use futures::TryStreamExt;
use mongodb::bson::{doc, Document};
use serde::{Deserialize, Serialize};

use crate::archive::{extract_zip_member, ZipEntry, LOCAL_HEADER_SLACK};
use crate::backends::Backends;
use crate::db::{is_duplicate_key, Db, DbResult};
use crate::format::layout::FileTree;
use crate::jobs::{ImportSource, ERROR_SAMPLE};
use crate::reading::{self, RangeSource, TreeSource};
use crate::source::SourceError;

/// Where a file's bytes are.
///
/// Written as a map tagged by `at`; read through [`LocationFields`], not serde's internally
/// tagged reading, which first copies every field into a buffer of its own (a task body holds
/// two locations per file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "at", rename_all = "snake_case", try_from = "LocationFields")]
pub enum Location {
    /// Copied to scratch storage at `key` (YAML files given by URL).
    Staged { key: String },
    /// Bytes `offset..offset + size` of the pack object `key` in scratch storage (tar sources:
    /// members are staged packed together, see `planning::indexing`).
    Packed { key: String, offset: u64, size: u64 },
    /// A member of the zip archive that is the job's source number `source`, read by range.
    Zip { source: u8, header_offset: u64, compressed_size: u64, size: u64, deflated: bool, crc32: u32 },
    /// File `path` of the folder that is the job's source number `source`.
    Tree { source: u8, path: String },
}

/// Every field any [`Location`] has, read in one pass whatever their order.
#[derive(Deserialize)]
struct LocationFields {
    at: LocationKind,
    key: Option<String>,
    offset: Option<u64>,
    size: Option<u64>,
    source: Option<u8>,
    header_offset: Option<u64>,
    compressed_size: Option<u64>,
    deflated: Option<bool>,
    crc32: Option<u32>,
    path: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum LocationKind {
    Staged,
    Packed,
    Zip,
    Tree,
}

/// A field that a map tagged by its kind must have for that kind (see [`LocationFields`]),
/// with serde's wording when it is missing.
pub(crate) fn required<T>(value: Option<T>, name: &str) -> Result<T, String> {
    value.ok_or_else(|| format!("missing field `{name}`"))
}

impl TryFrom<LocationFields> for Location {
    type Error = String;

    fn try_from(fields: LocationFields) -> Result<Self, String> {
        let LocationFields { at, key, offset, size, source, header_offset, compressed_size, deflated, crc32, path } =
            fields;
        Ok(match at {
            LocationKind::Staged => Location::Staged { key: required(key, "key")? },
            LocationKind::Packed => Location::Packed {
                key: required(key, "key")?,
                offset: required(offset, "offset")?,
                size: required(size, "size")?,
            },
            LocationKind::Zip => Location::Zip {
                source: required(source, "source")?,
                header_offset: required(header_offset, "header_offset")?,
                compressed_size: required(compressed_size, "compressed_size")?,
                size: required(size, "size")?,
                deflated: required(deflated, "deflated")?,
                crc32: required(crc32, "crc32")?,
            },
            LocationKind::Tree => Location::Tree { source: required(source, "source")?, path: required(path, "path")? },
        })
    }
}

impl Location {
    pub fn zip(source: u8, entry: ZipEntry) -> Self {
        Location::Zip {
            source,
            header_offset: entry.header_offset,
            compressed_size: entry.compressed_size,
            size: entry.size,
            deflated: entry.deflated,
            crc32: entry.crc32,
        }
    }

    fn zip_entry(&self) -> Option<(u8, ZipEntry)> {
        match *self {
            Location::Zip { source, header_offset, compressed_size, size, deflated, crc32 } => {
                Some((source, ZipEntry { header_offset, compressed_size, size, deflated, crc32 }))
            }
            _ => None,
        }
    }
}

/// One file of a job's source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemberDoc {
    /// `{job_id}:{path}`.
    #[serde(rename = "_id")]
    pub id: String,
    /// The file's size in bytes.
    #[serde(rename = "bytes")]
    pub size: u64,
    /// Its number in the source (archive entry or listing order): tells a repeated name in the
    /// archive from the same member recorded again by a retried pass.
    #[serde(default)]
    pub entry: u64,
    #[serde(flatten)]
    pub location: Location,
}

pub fn member_id(job_id: &str, path: &str) -> String {
    format!("{job_id}:{path}")
}

impl MemberDoc {
    pub fn new(job_id: &str, path: &str, entry: u64, size: u64, location: Location) -> Self {
        Self { id: member_id(job_id, path), size, entry, location }
    }

    /// The path inside the dataset.
    pub fn path(&self) -> &str {
        self.id.split_once(':').map_or("", |(_, path)| path)
    }
}

/// The `_id` filter of every member of `job_id` below folder `dir` (`""`: all of them).
pub fn under(job_id: &str, dir: &str) -> Document {
    let (from, to) = if dir.is_empty() {
        (format!("{job_id}:"), format!("{job_id};"))
    } else {
        // '0' follows '/' in byte order: the range holds exactly the paths `dir/...`.
        (format!("{job_id}:{dir}/"), format!("{job_id}:{dir}0"))
    };
    doc! {"_id": {"$gte": from, "$lt": to}}
}

/// Records members in batches; re-recording an existing member is a no-op, and a second
/// member of the same name (a different entry) is refused: the first one wins.
///
/// Its memory does not grow with the source: an archive may repeat one name a million times.
pub struct MemberWriter {
    db: Db,
    batch: Vec<MemberDoc>,
    /// Paths of the first refused repeats, for the job's errors (a sample, like them).
    pub duplicates: Vec<String>,
    /// Archive entry numbers of the refused repeats, kept only by a writer made with
    /// [`MemberWriter::tracking_repeats`], whose owner drains them after each flush.
    pub repeated_entries: Vec<u64>,
    track_repeated_entries: bool,
}

/// Members written per `insert_many`.
const WRITE_BATCH: usize = 1000;

impl MemberWriter {
    pub fn new(db: &Db) -> Self {
        Self {
            db: db.clone(),
            batch: Vec::with_capacity(WRITE_BATCH),
            duplicates: Vec::new(),
            repeated_entries: Vec::new(),
            track_repeated_entries: false,
        }
    }

    /// A writer that also keeps the entry numbers of refused repeats (the early cutter's).
    pub fn tracking_repeats(db: &Db) -> Self {
        Self { track_repeated_entries: true, ..Self::new(db) }
    }

    pub async fn add(&mut self, member: MemberDoc) -> DbResult<()> {
        self.batch.push(member);
        if self.batch.len() >= WRITE_BATCH {
            self.flush().await?;
        }
        Ok(())
    }

    pub async fn flush(&mut self) -> DbResult<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.batch);
        let err = match self.db.members.insert_many(&batch).ordered(false).await {
            Ok(_) => return Ok(()),
            Err(err) if is_duplicate_key(&err) => err,
            Err(err) => return Err(err.into()),
        };
        // Each refused insert is either this member recorded before (a retried pass) or another
        // member with the same name (a repeat inside the archive).
        let mongodb::error::ErrorKind::InsertMany(failure) = err.kind.as_ref() else { return Ok(()) };
        let refused: Vec<&MemberDoc> =
            failure.write_errors.iter().flatten().filter_map(|e| batch.get(e.index)).collect();
        // The recorded entries of all refused names in one query, not one round trip each.
        let ids: Vec<&str> = refused.iter().map(|m| m.id.as_str()).collect();
        let recorded: HashMap<String, u64> = self
            .db
            .members
            .clone_with_type::<RecordedEntry>()
            .find(doc! {"_id": {"$in": ids}})
            .projection(doc! {"entry": 1})
            .await?
            .map_ok(|r| (r.id, r.entry))
            .try_collect()
            .await?;
        for member in refused {
            if recorded.get(&member.id).is_some_and(|&entry| entry != member.entry) {
                if self.duplicates.len() < ERROR_SAMPLE {
                    self.duplicates.push(member.path().to_owned());
                }
                if self.track_repeated_entries {
                    self.repeated_entries.push(member.entry);
                }
            }
        }
        Ok(())
    }
}

/// A member record's entry number alone.
#[derive(Deserialize)]
struct RecordedEntry {
    #[serde(rename = "_id")]
    id: String,
    #[serde(default)]
    entry: u64,
}

/// Looks members up by path, many at once.
pub async fn find_many(db: &Db, job_id: &str, paths: &[String]) -> DbResult<HashMap<String, MemberDoc>> {
    if paths.is_empty() {
        return Ok(HashMap::new());
    }
    let ids: Vec<String> = paths.iter().map(|p| member_id(job_id, p)).collect();
    let found: Vec<MemberDoc> = db.members.find(doc! {"_id": {"$in": ids}}).await?.try_collect().await?;
    Ok(found.into_iter().map(|m| (m.path().to_owned(), m)).collect())
}

/// Which of these paths are recorded members: an index-only lookup (no document is read).
pub async fn existing(db: &Db, job_id: &str, paths: &[String]) -> DbResult<HashSet<String>> {
    if paths.is_empty() {
        return Ok(HashSet::new());
    }
    let ids: Vec<String> = paths.iter().map(|p| member_id(job_id, p)).collect();
    let ids_only = db.members.clone_with_type::<Document>();
    let found: Vec<Document> =
        ids_only.find(doc! {"_id": {"$in": ids}}).projection(doc! {"_id": 1}).await?.try_collect().await?;
    let prefix_len = job_id.len() + 1;
    Ok(found.iter().filter_map(|m| m.get_str("_id").ok()).map(|id| id[prefix_len..].to_owned()).collect())
}

/// Records that a chunk uses these label files (member ids): one small document each in
/// `import_used_labels`, so the orphan check at the end reads two sorted `_id` ranges instead
/// of fetching every label's member record. Recording one again (a chunk written twice, two
/// images sharing a label) is a no-op. Cheaper for mongod than marking the member records:
/// an insert of an `_id` rewrites no document.
pub async fn mark_labels_used(db: &Db, label_ids: Vec<String>) -> DbResult<()> {
    let docs = label_ids.into_iter().map(|id| doc! {"_id": id});
    match db.used_labels.insert_many(docs).ordered(false).await {
        Err(err) if is_duplicate_key(&err) => Ok(()),
        other => other.map(drop).map_err(Into::into),
    }
}

/// A [`FileTree`] over the member records, for split resolution. Its methods block on the
/// database through `runtime`, so it is used on a blocking thread (`spawn_blocking`).
pub struct MemberTree {
    pub db: Db,
    pub job_id: String,
    pub runtime: tokio::runtime::Handle,
}

impl MemberTree {
    fn block<F: std::future::IntoFuture>(&self, fut: F) -> F::Output {
        self.runtime.block_on(fut.into_future())
    }

    fn ids(&self) -> mongodb::Collection<Document> {
        self.db.members.clone_with_type()
    }
}

impl FileTree for MemberTree {
    fn is_file(&self, path: &str) -> bool {
        let id = member_id(&self.job_id, path);
        self.block(self.ids().find_one(doc! {"_id": id}).projection(doc! {"_id": 1})).ok().flatten().is_some()
    }

    fn is_dir(&self, path: &str) -> bool {
        if path.is_empty() {
            return true;
        }
        let filter = under(&self.job_id, path);
        self.block(self.ids().find_one(filter).projection(doc! {"_id": 1})).ok().flatten().is_some()
    }

    fn visit_files_under(&self, dir: &str, visit: &mut dyn FnMut(&str)) {
        let filter = under(&self.job_id, dir);
        let ids = self.ids();
        let cursor = self.block(ids.find(filter).projection(doc! {"_id": 1}).sort(doc! {"_id": 1}).batch_size(10_000));
        let Ok(mut cursor) = cursor else { return };
        let prefix_len = self.job_id.len() + 1;
        while let Ok(Some(member)) = self.block(cursor.try_next()) {
            if let Ok(id) = member.get_str("_id") {
                visit(&id[prefix_len..]);
            }
        }
    }
}

/// Reads member data for one job: zip and packed members by range (a batch of neighbours in one
/// request), staged and folder files whole.
pub struct MemberReader {
    backends: Backends,
    sources: Vec<String>,
    opened: tokio::sync::Mutex<HashMap<u8, Opened>>,
}

#[derive(Clone)]
enum Opened {
    Range(RangeSource),
    Tree(TreeSource),
}

/// Zip members whose data lie this close together are fetched in one range request.
const COALESCE_GAP: u64 = 256 * 1024;
/// Largest single range request when coalescing.
const MAX_SPAN: u64 = 16 * 1024 * 1024;

impl MemberReader {
    pub fn new(backends: &Backends, source: &ImportSource) -> Self {
        Self { backends: backends.clone(), sources: source.urls(), opened: Default::default() }
    }

    /// The opened source number `source`; each is opened (probed) once per reader.
    async fn open(&self, source: u8) -> Result<Opened, SourceError> {
        let mut opened_sources = self.opened.lock().await;
        if let Some(opened) = opened_sources.get(&source) {
            return Ok(opened.clone());
        }
        let url = self
            .sources
            .get(source as usize)
            .ok_or_else(|| SourceError::Unusable(format!("the job has no source number {source}")))?;
        let opened = match reading::open(&self.backends, url).await? {
            reading::Opened::File(file) => Opened::Range(file),
            reading::Opened::Tree(tree) => Opened::Tree(tree),
            reading::Opened::HttpWithoutRanges { .. } => {
                return Err(SourceError::Unusable(format!("`{url}` no longer answers byte-range requests")))
            }
        };
        opened_sources.insert(source, opened.clone());
        Ok(opened)
    }

    /// The bytes of one file. `Err(Ok(message))`: the file itself is unreadable (a damaged
    /// member); `Err(Err(_))`: the source could not be reached, which a retry may fix.
    pub async fn read(&self, location: &Location) -> Result<Bytes, ReadError> {
        match location {
            Location::Staged { key } => Ok(self.backends.store.get(key).await.map_err(|e| match e {
                crate::storage::StorageError::NotFound(_) => ReadError::Damaged("the staged copy is missing".into()),
                other => SourceError::Transient(other.to_string()).into(),
            })?),
            Location::Tree { source, path } => match self.open(*source).await? {
                Opened::Tree(tree) => Ok(tree.read(path).await?),
                Opened::Range(_) => Err(SourceError::Unusable("the source changed kind".into()).into()),
            },
            Location::Zip { .. } | Location::Packed { .. } => {
                let mut read = self.read_ranged(std::slice::from_ref(location)).await?;
                read.pop().expect("one file asked, one answered")
            }
        }
    }

    /// Reads many ranged files (zip members, packed members) with as few range requests as
    /// their placement allows: neighbours in one object are fetched together. Results come
    /// back in the order asked; locations that are not ranged come back as damaged.
    pub async fn read_ranged(&self, locations: &[Location]) -> Result<Vec<Result<Bytes, ReadError>>, ReadError> {
        let mut order: Vec<(usize, Ranged)> =
            locations.iter().enumerate().filter_map(|(i, l)| Ranged::of(l).map(|r| (i, r))).collect();
        order.sort_by(|a, b| (&a.1.object, a.1.start).cmp(&(&b.1.object, b.1.start)));
        let mut out: Vec<Option<Result<Bytes, ReadError>>> = vec![None; locations.len()];
        let mut i = 0;
        while i < order.len() {
            let first = &order[i].1;
            let (start, mut end) = (first.start, first.end);
            let mut j = i + 1;
            while j < order.len() {
                let next = &order[j].1;
                if next.object != first.object || next.start > end + COALESCE_GAP || next.end - start > MAX_SPAN {
                    break;
                }
                end = end.max(next.end);
                j += 1;
            }
            let span = self.read_object_range(&first.object, start..end).await?;
            for (index, ranged) in &order[i..j] {
                let bytes = span.get((ranged.start - start) as usize..).unwrap_or_default();
                let extracted = match &ranged.zip {
                    Some(entry) => match extract_zip_member(bytes, entry) {
                        // A name and extra field longer than the slack: fetch this member exactly.
                        Err(_) => self.read_zip_exact(&ranged.object, entry).await?,
                        ok => ok,
                    },
                    // A packed member is a slice of the range read, not a copy of it.
                    None => {
                        let (from, to) = ((ranged.start - start) as usize, (ranged.end - start) as usize);
                        let sliced = (to <= span.len()).then(|| span.slice(from..to));
                        out[*index] =
                            Some(sliced.ok_or_else(|| ReadError::Damaged("the staged copy is truncated".into())));
                        continue;
                    }
                };
                out[*index] = Some(extracted.map(Bytes::from).map_err(ReadError::Damaged));
            }
            i = j;
        }
        Ok(out.into_iter().map(|r| r.unwrap_or_else(|| Err(ReadError::Damaged("not a ranged file".into())))).collect())
    }

    async fn read_object_range(&self, object: &RangedObject, range: std::ops::Range<u64>) -> Result<Bytes, ReadError> {
        match object {
            RangedObject::Source(source) => {
                let Opened::Range(file) = self.open(*source).await? else {
                    return Err(SourceError::Unusable("the source changed kind".into()).into());
                };
                Ok(file.read_range(range).await?)
            }
            RangedObject::Staged(key) => self.backends.store.get_range(key, range).await.map_err(|e| match e {
                crate::storage::StorageError::NotFound(_) => ReadError::Damaged("the staged copy is missing".into()),
                other => SourceError::Transient(other.to_string()).into(),
            }),
        }
    }

    /// One zip member read with two requests: its local header, then exactly its header and
    /// data.
    async fn read_zip_exact(
        &self,
        object: &RangedObject,
        entry: &ZipEntry,
    ) -> Result<Result<Vec<u8>, String>, ReadError> {
        let header = self.read_object_range(object, entry.header_offset..entry.header_offset + 30).await?;
        if header.len() < 30 {
            return Ok(Err("the member's local header is truncated".into()));
        }
        let extra = u64::from(u16::from_le_bytes([header[26], header[27]]))
            + u64::from(u16::from_le_bytes([header[28], header[29]]));
        let end = entry.header_offset + 30 + extra + entry.compressed_size;
        let bytes = self.read_object_range(object, entry.header_offset..end).await?;
        Ok(extract_zip_member(&bytes, entry))
    }
}

/// Where a ranged file's bytes are: a source file or a staged object.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum RangedObject {
    Source(u8),
    Staged(String),
}

/// A file read by range: the object, the bytes to fetch and, for a zip member, its entry.
struct Ranged {
    object: RangedObject,
    start: u64,
    end: u64,
    zip: Option<ZipEntry>,
}

impl Ranged {
    fn of(location: &Location) -> Option<Ranged> {
        match location {
            Location::Packed { key, offset, size } => Some(Ranged {
                object: RangedObject::Staged(key.clone()),
                start: *offset,
                end: offset + size,
                zip: None,
            }),
            _ => {
                let (source, entry) = location.zip_entry()?;
                Some(Ranged {
                    object: RangedObject::Source(source),
                    start: entry.header_offset,
                    // Header, name and extra field (a bounded guess), then the data.
                    end: entry.header_offset + LOCAL_HEADER_SLACK + entry.compressed_size,
                    zip: Some(entry),
                })
            }
        }
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum ReadError {
    /// This file cannot be read (damaged member, missing staged copy): report it, go on.
    #[error("{0}")]
    Damaged(String),
    /// The source could not be reached.
    #[error("{0}")]
    Source(SourceErrorText),
}

/// [`SourceError`] is not `Clone`; batches need to copy the failure.
#[derive(Debug, Clone)]
pub struct SourceErrorText {
    pub permanent: bool,
    pub message: String,
}

impl std::fmt::Display for SourceErrorText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<SourceError> for ReadError {
    fn from(err: SourceError) -> Self {
        ReadError::Source(SourceErrorText { permanent: err.is_permanent(), message: err.to_string() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_kind() -> Vec<Location> {
        vec![
            Location::Staged { key: "temp/j/data.yaml".into() },
            Location::Packed { key: "temp/j/packs/0".into(), offset: 512, size: 1400 },
            Location::Zip { source: 1, header_offset: 9, compressed_size: 70, size: 90, deflated: true, crc32: 7 },
            Location::Tree { source: 0, path: "images/train/a.jpg".into() },
        ]
    }

    #[test]
    fn locations_read_back_as_written_in_json_and_inside_member_records() {
        for location in every_kind() {
            let json = serde_json::to_string(&location).unwrap();
            assert_eq!(serde_json::from_str::<Location>(&json).unwrap(), location, "{json}");
            let member = MemberDoc::new("job", "images/train/a.jpg", 3, 90, location);
            let bson = mongodb::bson::to_document(&member).unwrap();
            assert_eq!(mongodb::bson::from_document::<MemberDoc>(bson).unwrap(), member);
        }
    }

    #[test]
    fn a_location_reads_in_any_field_order_and_names_a_missing_field() {
        let reordered = r#"{"size": 5, "offset": 4, "key": "k", "at": "packed"}"#;
        let expected = Location::Packed { key: "k".into(), offset: 4, size: 5 };
        assert_eq!(serde_json::from_str::<Location>(reordered).unwrap(), expected);
        let err = serde_json::from_str::<Location>(r#"{"at": "packed", "key": "k", "size": 5}"#).unwrap_err();
        assert!(err.to_string().contains("missing field `offset`"), "{err}");
        let err = serde_json::from_str::<Location>(r#"{"at": "elsewhere"}"#).unwrap_err();
        assert!(err.to_string().contains("elsewhere"), "{err}");
    }
}
