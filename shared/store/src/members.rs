//! The file index of a job's sources: one record per usable file, in `import_members`, and the
//! label files some chunk uses, in `import_used_labels`.
//!
//! Planning fills the index from a zip's central directory, a tar pass or a folder listing,
//! then reads it back with indexed prefix queries (`_id` is `{job_id}:{path}`, so a folder is an
//! `_id` range). No invocation ever holds a dataset's file list in memory, whatever its size;
//! and since every record has a deterministic `_id`, a retried or resumed pass writes nothing
//! twice.

use std::collections::{HashMap, HashSet};

use futures::TryStreamExt;
use mongodb::bson::{doc, Document};
use mongodb::{Collection, Database};
use serde::{Deserialize, Serialize};
use yds_format::archive::ZipEntry;
use yds_format::layout::FileTree;

use crate::findings::ERROR_SAMPLE;
use crate::{is_duplicate_key, of_job, required_field, StoreResult};

/// Where a file's bytes are.
///
/// Written as a map tagged by `at`; read through `LocationFields`, not serde's internally
/// tagged reading, which first copies every field into a buffer of its own (a task body holds
/// two locations per file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "at", rename_all = "snake_case", try_from = "LocationFields")]
pub enum Location {
    /// Copied to scratch storage at `key` (YAML files given by URL).
    Staged { key: String },
    /// Bytes `offset..offset + size` of the pack object `key` in scratch storage (tar sources:
    /// members are staged packed together by the import's planning).
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

impl TryFrom<LocationFields> for Location {
    type Error = String;

    fn try_from(fields: LocationFields) -> Result<Self, String> {
        let LocationFields { at, key, offset, size, source, header_offset, compressed_size, deflated, crc32, path } =
            fields;
        Ok(match at {
            LocationKind::Staged => Location::Staged { key: required_field(key, "key")? },
            LocationKind::Packed => Location::Packed {
                key: required_field(key, "key")?,
                offset: required_field(offset, "offset")?,
                size: required_field(size, "size")?,
            },
            LocationKind::Zip => Location::Zip {
                source: required_field(source, "source")?,
                header_offset: required_field(header_offset, "header_offset")?,
                compressed_size: required_field(compressed_size, "compressed_size")?,
                size: required_field(size, "size")?,
                deflated: required_field(deflated, "deflated")?,
                crc32: required_field(crc32, "crc32")?,
            },
            LocationKind::Tree => {
                Location::Tree { source: required_field(source, "source")?, path: required_field(path, "path")? }
            }
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

    /// The source number and central-directory entry of a zip member.
    pub fn zip_entry(&self) -> Option<(u8, ZipEntry)> {
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
fn under(job_id: &str, dir: &str) -> Document {
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
    collection: Collection<MemberDoc>,
    batch: Vec<MemberDoc>,
    /// Paths of the first refused repeats, for the job's errors (a sample, like them).
    pub duplicates: Vec<String>,
    /// Archive entry numbers of the refused repeats, kept only by a writer made with
    /// [`Members::writer_tracking_repeats`], whose owner drains them after each flush.
    pub repeated_entries: Vec<u64>,
    track_repeated_entries: bool,
}

/// Members written per `insert_many`.
const WRITE_BATCH: usize = 1000;

impl MemberWriter {
    fn new(collection: Collection<MemberDoc>) -> Self {
        Self {
            collection,
            batch: Vec::with_capacity(WRITE_BATCH),
            duplicates: Vec::new(),
            repeated_entries: Vec::new(),
            track_repeated_entries: false,
        }
    }

    pub async fn add(&mut self, member: MemberDoc) -> StoreResult<()> {
        self.batch.push(member);
        if self.batch.len() >= WRITE_BATCH {
            self.flush().await?;
        }
        Ok(())
    }

    pub async fn flush(&mut self) -> StoreResult<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.batch);
        let err = match self.collection.insert_many(&batch).ordered(false).await {
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
            .collection
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

/// Member ids of label files: `.txt` files under a `labels` folder.
const LABEL_ID_PATTERN: &str = r"^[^:]*:(.*/)?labels/.*\.txt$";

/// Label files no chunk uses: Ultralytics ignores them silently; we count and sample them.
#[derive(Debug, Default, PartialEq)]
pub struct Orphans {
    pub count: u64,
    /// The first [`ERROR_SAMPLE`] of their paths, in path order.
    pub sample: Vec<String>,
}

/// The owner of `import_members` and `import_used_labels`.
#[derive(Clone, Debug)]
pub struct Members {
    members: Collection<MemberDoc>,
    used_labels: Collection<Document>,
}

impl Members {
    pub(crate) fn new(database: &Database) -> Self {
        Self { members: database.collection("import_members"), used_labels: database.collection("import_used_labels") }
    }

    /// A writer of member records.
    pub fn writer(&self) -> MemberWriter {
        MemberWriter::new(self.members.clone())
    }

    /// A writer that also keeps the entry numbers of refused repeats (the early cutter's).
    pub fn writer_tracking_repeats(&self) -> MemberWriter {
        MemberWriter { track_repeated_entries: true, ..self.writer() }
    }

    /// Looks members up by path, many at once.
    pub async fn find_many(&self, job_id: &str, paths: &[String]) -> StoreResult<HashMap<String, MemberDoc>> {
        if paths.is_empty() {
            return Ok(HashMap::new());
        }
        let ids: Vec<String> = paths.iter().map(|p| member_id(job_id, p)).collect();
        let found: Vec<MemberDoc> = self.members.find(doc! {"_id": {"$in": ids}}).await?.try_collect().await?;
        Ok(found.into_iter().map(|m| (m.path().to_owned(), m)).collect())
    }

    /// Which of these paths are recorded members: an index-only lookup (no document is read).
    pub async fn existing(&self, job_id: &str, paths: &[String]) -> StoreResult<HashSet<String>> {
        if paths.is_empty() {
            return Ok(HashSet::new());
        }
        let ids: Vec<String> = paths.iter().map(|p| member_id(job_id, p)).collect();
        let ids_only = self.members.clone_with_type::<Document>();
        let found: Vec<Document> =
            ids_only.find(doc! {"_id": {"$in": ids}}).projection(doc! {"_id": 1}).await?.try_collect().await?;
        let prefix_len = job_id.len() + 1;
        Ok(found.iter().filter_map(|m| m.get_str("_id").ok()).map(|id| id[prefix_len..].to_owned()).collect())
    }

    /// The YAML files of a job's sources (at most 10 000), the candidates for its dataset config.
    pub async fn yaml_files(&self, job_id: &str) -> StoreResult<Vec<MemberDoc>> {
        let filter = doc! {"$and": [under(job_id, ""), {"_id": {"$regex": r"\.ya?ml$", "$options": "i"}}]};
        Ok(self.members.find(filter).limit(10_000).await?.try_collect().await?)
    }

    /// The first `count` label files of a job's sources, in path order.
    pub async fn some_label_files(&self, job_id: &str, count: i64) -> StoreResult<Vec<MemberDoc>> {
        let filter = doc! {"$and": [under(job_id, ""), {"_id": {"$regex": LABEL_ID_PATTERN}}]};
        Ok(self.members.find(filter).limit(count).await?.try_collect().await?)
    }

    /// Records that a chunk uses these label files (member ids): one small document each in
    /// `import_used_labels`, so the orphan check at the end reads two sorted `_id` ranges instead
    /// of fetching every label's member record. Recording one again (a chunk written twice, two
    /// images sharing a label) is a no-op. Cheaper for mongod than marking the member records:
    /// an insert of an `_id` rewrites no document.
    pub async fn mark_labels_used(&self, label_ids: Vec<String>) -> StoreResult<()> {
        if label_ids.is_empty() {
            return Ok(());
        }
        let docs = label_ids.into_iter().map(|id| doc! {"_id": id});
        match self.used_labels.insert_many(docs).ordered(false).await {
            Err(err) if !is_duplicate_key(&err) => Err(err.into()),
            _ => Ok(()),
        }
    }

    /// Label files of the job with no record in `import_used_labels`: both read in `_id` order
    /// (each a covered scan of its `_id` index) and merged, in constant memory.
    pub async fn orphan_labels(&self, job_id: &str) -> StoreResult<Orphans> {
        let by_id = doc! {"_id": 1};
        let labels = doc! {"$and": [under(job_id, ""), {"_id": {"$regex": LABEL_ID_PATTERN}}]};
        let ids = self.members.clone_with_type::<Document>();
        let mut labels = ids.find(labels).projection(by_id.clone()).sort(by_id.clone()).batch_size(10_000).await?;
        let mut used = self.used_labels.find(under(job_id, "")).sort(by_id).batch_size(10_000).await?;
        let mut next_used = next_id(&mut used).await?;
        let mut orphans = Orphans::default();
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
                orphans.sample.push(id[prefix_len..].to_owned());
            }
        }
        Ok(orphans)
    }

    /// The job's member records as a [`FileTree`], for split resolution on a blocking thread.
    pub fn tree(&self, job_id: &str, runtime: tokio::runtime::Handle) -> MemberTree {
        MemberTree { collection: self.members.clone_with_type(), job_id: job_id.to_owned(), runtime }
    }

    /// Deletes up to `limit` of the job's member records and as many used-label marks. A bounded
    /// piece of work, for a delete job's steps.
    pub async fn delete_some_of_job(&self, job_id: &str, limit: i64) -> StoreResult<crate::Swept> {
        let members = crate::delete_some_of_job(&self.members.clone_with_type(), job_id, limit).await?;
        let used = crate::delete_some_of_job(&self.used_labels, job_id, limit).await?;
        Ok(members + used)
    }

    /// Deletes the job's member records and used-label marks; how many members there were.
    pub async fn delete_job(&self, job_id: &str) -> StoreResult<u64> {
        let members = self.members.delete_many(of_job(job_id)).await?;
        self.used_labels.delete_many(of_job(job_id)).await?;
        Ok(members.deleted_count)
    }
}

/// The next string `_id` of a cursor over `_id`s.
async fn next_id(cursor: &mut mongodb::Cursor<Document>) -> mongodb::error::Result<Option<String>> {
    Ok(cursor.try_next().await?.and_then(|d| d.get_str("_id").ok().map(str::to_owned)))
}

/// A [`FileTree`] over the member records, for split resolution. Its methods block on the
/// database through `runtime`, so it is used on a blocking thread (`spawn_blocking`).
pub struct MemberTree {
    collection: Collection<Document>,
    job_id: String,
    runtime: tokio::runtime::Handle,
}

impl MemberTree {
    fn block<F: std::future::IntoFuture>(&self, fut: F) -> F::Output {
        self.runtime.block_on(fut.into_future())
    }

    fn ids(&self) -> Collection<Document> {
        self.collection.clone()
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
