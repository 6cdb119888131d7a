//! Reading member data for one job: zip and packed members by range (a batch of neighbours in
//! one request), staged and folder files whole.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use yds_format::archive::{extract_zip_member, ZipEntry, LOCAL_HEADER_SLACK};
use yds_storage::{ObjectStore, StorageError};
use yds_store::{Location, Sources};

use super::access::SourceAccess;
use super::error::SourceError;
use super::ranged::{Folder, Opened, RangedFile};

/// Reads member data for one job: zip and packed members by range (a batch of neighbours in one
/// request), staged and folder files whole.
pub struct MemberReader {
    access: SourceAccess,
    objects: Arc<dyn ObjectStore>,
    urls: Vec<String>,
    opened: tokio::sync::Mutex<HashMap<u8, OpenedSource>>,
}

/// A source as the reader keeps it open.
#[derive(Clone)]
enum OpenedSource {
    File(RangedFile),
    Folder(Folder),
}

/// Zip members whose data lie this close together are fetched in one range request.
const COALESCE_GAP: u64 = 256 * 1024;
/// Largest single range request when coalescing.
const MAX_SPAN: u64 = 16 * 1024 * 1024;

impl MemberReader {
    /// A reader of the members of `sources`: sources are opened through `access`, staged
    /// members read from `objects`.
    pub fn new(access: &SourceAccess, objects: &Arc<dyn ObjectStore>, sources: &Sources) -> Self {
        Self { access: access.clone(), objects: objects.clone(), urls: sources.urls(), opened: Default::default() }
    }

    /// The opened source number `source`; each is opened (probed) once per reader.
    async fn open(&self, source: u8) -> Result<OpenedSource, SourceError> {
        let mut opened_sources = self.opened.lock().await;
        if let Some(opened) = opened_sources.get(&source) {
            return Ok(opened.clone());
        }
        let url = self
            .urls
            .get(source as usize)
            .ok_or_else(|| SourceError::Unusable(format!("the job has no source number {source}")))?;
        let opened = match self.access.open(url).await? {
            Opened::File(file) => OpenedSource::File(file),
            Opened::Tree(tree) => OpenedSource::Folder(tree),
            Opened::HttpWithoutRanges { .. } => {
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
            Location::Staged { key } => Ok(self.objects.get(key).await.map_err(staged_failure)?),
            Location::Tree { source, path } => match self.open(*source).await? {
                OpenedSource::Folder(tree) => Ok(tree.read(path).await?),
                OpenedSource::File(_) => Err(SourceError::Unusable("the source changed kind".into()).into()),
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
                let OpenedSource::File(file) = self.open(*source).await? else {
                    return Err(SourceError::Unusable("the source changed kind".into()).into());
                };
                Ok(file.read_range(range).await?)
            }
            RangedObject::Staged(key) => self.objects.get_range(key, range).await.map_err(staged_failure),
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

/// A staged copy that cannot be read: gone is the file's problem, the rest the store's.
fn staged_failure(err: StorageError) -> ReadError {
    match err {
        StorageError::NotFound(_) => ReadError::Damaged("the staged copy is missing".into()),
        other => SourceError::Transient(other.to_string()).into(),
    }
}

/// Why one file could not be read.
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
