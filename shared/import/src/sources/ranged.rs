//! Reading a job's sources by byte range, wherever they live: a local file (local mode), an
//! HTTP(S) server that answers `Range` requests, a Cloud Storage object, or an upload in this
//! deployment's own object store.
//!
//! Range reads are what let a 100 GB zip be planned from its central directory alone and each
//! chunk read only its own members: nothing is downloaded whole. [`BlockReader`] turns a source
//! into the `Read + Seek` the archive parsers want, fetching fixed-size blocks with one block of
//! read-ahead, so a sequential pass (a tar stream, a zip central directory) overlaps network and
//! parsing while memory stays at two blocks.

use std::io::{self, Read, Seek, SeekFrom};
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use tokio::runtime::Handle;
use tokio::task::JoinHandle;
use url::Url;
use yds_storage::{GcsStore, ObjectStore, StorageError};

use super::error::SourceError;
use super::fetch::Fetcher;

/// One source file opened for range reads.
#[derive(Clone)]
pub struct RangedFile {
    at: At,
    size: u64,
}

/// Where a [`RangedFile`] is read from.
#[derive(Clone)]
pub(super) enum At {
    Local(PathBuf),
    Http {
        fetcher: Fetcher,
        url: Url,
    },
    Gcs {
        store: Arc<GcsStore>,
        object: String,
    },
    /// An upload: `key` in this deployment's own object store (a bucket or a directory).
    Object {
        store: Arc<dyn ObjectStore>,
        key: String,
    },
}

/// Where a source URL points once opened.
pub enum Opened {
    /// A single file readable by range.
    File(RangedFile),
    /// An HTTP file whose server ignores `Range`: it can only be streamed whole.
    HttpWithoutRanges { url: Url, size: u64 },
    /// A directory tree: a local folder (local mode) or a `gs://bucket/prefix/`.
    Tree(Folder),
}

/// A Cloud Storage failure as a source failure.
pub(super) fn gcs_error(err: StorageError) -> SourceError {
    match err {
        StorageError::NotFound(object) => SourceError::NotFound(format!("no such object `{object}`")),
        StorageError::InvalidKey(key) => SourceError::Refused(format!("invalid object name `{key}`")),
        StorageError::Io(e) => SourceError::Transient(format!("Cloud Storage: {e}")),
        unavailable @ StorageError::Unavailable { .. } => SourceError::Transient(unavailable.to_string()),
    }
}

/// A failure of this deployment's own object store as a source failure.
pub(super) fn object_error(err: StorageError) -> SourceError {
    match err {
        StorageError::NotFound(key) => SourceError::NotFound(format!("no such object `{key}`")),
        StorageError::InvalidKey(key) => SourceError::Refused(format!("invalid object name `{key}`")),
        StorageError::Io(e) => SourceError::Transient(format!("object storage: {e}")),
        unavailable @ StorageError::Unavailable { .. } => SourceError::Transient(unavailable.to_string()),
    }
}

impl RangedFile {
    pub(super) fn new(at: At, size: u64) -> Self {
        Self { at, size }
    }

    /// A file of this machine's own (a downloaded copy), outside any URL policy.
    pub async fn local(path: PathBuf) -> std::io::Result<Self> {
        let size = tokio::fs::metadata(&path).await?.len();
        Ok(RangedFile { at: At::Local(path), size })
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// Bytes `range` (clamped to the end of the file).
    pub async fn read_range(&self, range: Range<u64>) -> Result<Bytes, SourceError> {
        let range = range.start.min(self.size)..range.end.min(self.size);
        if range.is_empty() {
            return Ok(Bytes::new());
        }
        let bytes = match &self.at {
            At::Local(path) => {
                let path = path.clone();
                tokio::task::spawn_blocking(move || read_file_range(&path, range))
                    .await
                    .map_err(|e| SourceError::Transient(e.to_string()))?
                    .map_err(|e| SourceError::Transient(format!("reading the source: {e}")))?
            }
            At::Http { fetcher, url } => fetcher.get_range(url, range.clone()).await?,
            At::Gcs { store, object } => store.get_range(object, range.clone()).await.map_err(gcs_error)?,
            At::Object { store, key } => store.get_range(key, range.clone()).await.map_err(object_error)?,
        };
        Ok(bytes)
    }
}

fn read_file_range(path: &std::path::Path, range: Range<u64>) -> io::Result<Bytes> {
    let mut file = std::fs::File::open(path)?;
    file.seek(SeekFrom::Start(range.start))?;
    let mut buf = vec![0; (range.end - range.start) as usize];
    file.read_exact(&mut buf)?;
    Ok(Bytes::from(buf))
}

/// A directory source, listed page by page and read file by file.
#[derive(Clone)]
pub enum Folder {
    Local(PathBuf),
    Gcs { store: Arc<GcsStore>, prefix: String },
}

impl Folder {
    /// The whole file at `path` (relative to the tree's root, as listed).
    pub async fn read(&self, path: &str) -> Result<Bytes, SourceError> {
        match self {
            Folder::Local(root) => {
                let full = root.join(path);
                let bytes = tokio::fs::read(&full)
                    .await
                    .map_err(|e| SourceError::Transient(format!("reading `{path}` of the source folder: {e}")))?;
                Ok(Bytes::from(bytes))
            }
            Folder::Gcs { store, prefix } => store.get(&format!("{prefix}{path}")).await.map_err(gcs_error),
        }
    }

    /// Lists the files of the tree, `(relative path, size)`, page by page in the background;
    /// a listing failure arrives as the last item.
    pub fn pages(&self, page_size: usize) -> tokio::sync::mpsc::Receiver<Result<Vec<(String, u64)>, String>> {
        let (tx, rx) = tokio::sync::mpsc::channel(2);
        match self.clone() {
            Folder::Local(root) => {
                tokio::task::spawn_blocking(move || {
                    if let Err(e) = walk_local(&root, page_size, &tx) {
                        let _ = tx.blocking_send(Err(format!("listing the source folder: {e}")));
                    }
                });
            }
            Folder::Gcs { store, prefix } => {
                tokio::spawn(async move {
                    let mut token = None;
                    loop {
                        let page = match store.list(&prefix, token, page_size).await {
                            Ok(page) => page,
                            Err(e) => {
                                let _ = tx.send(Err(format!("listing the source bucket: {e}"))).await;
                                return;
                            }
                        };
                        let files = page
                            .objects
                            .into_iter()
                            .filter_map(|(key, size)| Some((key.strip_prefix(prefix.as_str())?.to_owned(), size)))
                            .collect();
                        if tx.send(Ok(files)).await.is_err() {
                            return;
                        }
                        match page.next_page {
                            Some(next) => token = Some(next),
                            None => return,
                        }
                    }
                });
            }
        }
        rx
    }
}

/// Walks a local folder depth-first, never following links, sending pages. Entries are taken
/// as the directory yields them, not collected and sorted: a flat folder of a million images
/// must cost a page of memory, not a million entries (the member index sorts by path anyway).
fn walk_local(
    root: &std::path::Path,
    page_size: usize,
    tx: &tokio::sync::mpsc::Sender<Result<Vec<(String, u64)>, String>>,
) -> io::Result<()> {
    let mut page = Vec::with_capacity(page_size);
    let mut folders = vec![(root.to_path_buf(), String::new())];
    while let Some((dir, rel)) = folders.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let Ok(name) = entry.file_name().into_string() else { continue };
            let file_type = entry.file_type()?;
            let path = if rel.is_empty() { name } else { format!("{rel}/{name}") };
            if file_type.is_dir() {
                folders.push((entry.path(), path));
            } else if file_type.is_file() {
                page.push((path, entry.metadata()?.len()));
                if page.len() == page_size && tx.blocking_send(Ok(std::mem::take(&mut page))).is_err() {
                    return Ok(());
                }
            }
        }
    }
    if !page.is_empty() {
        let _ = tx.blocking_send(Ok(page));
    }
    Ok(())
}

/// `Read + Seek` over a [`RangedFile`] for a blocking thread (inside `spawn_blocking`):
/// fetches `block_size` blocks through the runtime, with the next block read ahead.
pub struct BlockReader {
    source: RangedFile,
    runtime: Handle,
    block_size: u64,
    pos: u64,
    block_start: u64,
    block: Bytes,
    ahead: Option<(u64, JoinHandle<Result<Bytes, SourceError>>)>,
}

impl BlockReader {
    pub fn new(source: RangedFile, runtime: Handle, block_size: u64) -> Self {
        Self { source, runtime, block_size, pos: 0, block_start: 0, block: Bytes::new(), ahead: None }
    }

    fn fetch_block(&mut self, start: u64) -> io::Result<()> {
        let fetched = match self.ahead.take() {
            Some((ahead_start, handle)) if ahead_start == start => {
                self.runtime.block_on(handle).map_err(io::Error::other)?
            }
            other => {
                if let Some((_, handle)) = other {
                    handle.abort();
                }
                let range = start..start + self.block_size;
                self.runtime.block_on(self.source.read_range(range))
            }
        };
        self.block = fetched.map_err(io::Error::other)?;
        self.block_start = start;
        let next = start + self.block_size;
        if next < self.source.size {
            let source = self.source.clone();
            let range = next..next + self.block_size;
            self.ahead = Some((next, self.runtime.spawn(async move { source.read_range(range).await })));
        }
        Ok(())
    }
}

impl Read for BlockReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.source.size || buf.is_empty() {
            return Ok(0);
        }
        let in_block = self.pos >= self.block_start && self.pos < self.block_start + self.block.len() as u64;
        if !in_block {
            let start = self.pos - self.pos % self.block_size;
            self.fetch_block(start)?;
            if self.block.is_empty() {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the source is shorter than announced"));
            }
        }
        let offset = (self.pos - self.block_start) as usize;
        let n = buf.len().min(self.block.len() - offset);
        buf[..n].copy_from_slice(&self.block[offset..offset + n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for BlockReader {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        let target = match pos {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.source.size.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = target.ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before the start"))?;
        Ok(self.pos)
    }
}

impl Drop for BlockReader {
    fn drop(&mut self) {
        if let Some((_, handle)) = self.ahead.take() {
            handle.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread")]
    async fn block_reader_reads_and_seeks_across_blocks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.bin");
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let source = RangedFile { at: At::Local(path), size: data.len() as u64 };
        let handle = Handle::current();
        let expected = data.clone();
        tokio::task::spawn_blocking(move || {
            let mut reader = BlockReader::new(source, handle, 1000);
            let mut all = Vec::new();
            reader.read_to_end(&mut all).unwrap();
            assert_eq!(all, expected);
            reader.seek(SeekFrom::End(-5)).unwrap();
            let mut tail = Vec::new();
            reader.read_to_end(&mut tail).unwrap();
            assert_eq!(tail, &expected[expected.len() - 5..]);
            reader.seek(SeekFrom::Start(1995)).unwrap();
            let mut middle = [0u8; 10];
            reader.read_exact(&mut middle).unwrap();
            assert_eq!(middle, expected[1995..2005]);
        })
        .await
        .unwrap();
    }
}
