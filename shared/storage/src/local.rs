//! The local-filesystem backend: objects are files under a root directory.
//!
//! A new key is written in place; an existing one is replaced through a temporary file renamed
//! over it, so an object that was once written whole is never seen partial. Files are named
//! relative to an open handle on their directory: the kernel then resolves one name per call
//! instead of the whole path (those path walks were about a tenth of process-chunk's CPU).

use std::ffi::OsStr;
use std::ops::Range;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::Bytes;
use rustix::fs::{AtFlags, Mode, OFlags};

use super::{validate_key, AppendOutcome, ListPage, ObjectStore, StorageError};

#[derive(Debug, Clone)]
pub struct LocalStore {
    root: PathBuf,
}

impl LocalStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path_of(&self, key: &str) -> Result<PathBuf, StorageError> {
        validate_key(key)?;
        Ok(self.root.join(key))
    }
}

/// Runs filesystem work on the blocking pool: one thread hop for the whole closure (tokio's
/// own `fs` functions take one per call, which costs more than a small file's write).
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StorageError> + Send + 'static,
) -> Result<T, StorageError> {
    tokio::task::spawn_blocking(work).await.map_err(|e| StorageError::Io(std::io::Error::other(e)))?
}

/// Writes every file, each atomically, opening each directory once (a batch spans a few: a
/// chunk's images and labels, so a short list searched by byte comparison).
fn write_all_atomically(files: &[(PathBuf, Bytes)]) -> Result<(), StorageError> {
    let mut dirs: Vec<(&OsStr, OwnedFd)> = Vec::new();
    for (path, data) in files {
        let dir = path.parent().expect("a validated key has a parent under root");
        let name = path.file_name().expect("a validated key names a file");
        let known = dirs.iter().position(|(open, _)| *open == dir.as_os_str());
        let at = match known {
            Some(at) => at,
            None => {
                dirs.push((dir.as_os_str(), open_dir(dir)?));
                dirs.len() - 1
            }
        };
        write_in(&dirs[at].1, name, data)?;
    }
    Ok(())
}

/// A handle on `dir` for the `*at` calls, creating it only when it is missing (most writes go
/// to a directory that exists).
fn open_dir(dir: &Path) -> std::io::Result<OwnedFd> {
    let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
    match rustix::fs::open(dir, flags, Mode::empty()) {
        Err(rustix::io::Errno::NOENT) => {
            std::fs::create_dir_all(dir)?;
            Ok(rustix::fs::open(dir, flags, Mode::empty())?)
        }
        opened => Ok(opened?),
    }
}

/// Writes `data` as `name` in `dir`. A new name is created and written in place; an existing
/// one is replaced whole: `data` goes to a new `.tmp…` file renamed over it (removed if either
/// step fails). Nearly every write of an import is of a new name, and creating a file in place
/// costs a third less than a temporary file and a rename. A crash during a first write leaves a
/// short file, but nobody reads a key before its put returned (keys are recorded after), and
/// the retried put replaces it.
fn write_in(dir: &OwnedFd, name: &OsStr, data: &[u8]) -> std::io::Result<()> {
    let create = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC;
    match rustix::fs::openat(dir, name, create, Mode::from_raw_mode(0o644)) {
        // Not removed if the write fails: a concurrent put may have replaced it by then.
        Ok(file) => std::io::Write::write_all(&mut &std::fs::File::from(file), data),
        Err(rustix::io::Errno::EXIST) => replace_in(dir, name, data),
        Err(err) => Err(err.into()),
    }
}

/// Writes `data` to a new `.tmp…` file in `dir`, then renames it over `name`; the temporary
/// file is removed if either step fails.
fn replace_in(dir: &OwnedFd, name: &OsStr, data: &[u8]) -> std::io::Result<()> {
    let create = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC;
    let (tmp, file) = loop {
        let tmp = format!(".tmp{:016x}", rand::random::<u64>());
        match rustix::fs::openat(dir, tmp.as_str(), create, Mode::from_raw_mode(0o644)) {
            Err(rustix::io::Errno::EXIST) => continue,
            opened => break (tmp, std::fs::File::from(opened?)),
        }
    };
    let written = std::io::Write::write_all(&mut &file, data)
        .and_then(|()| Ok(rustix::fs::renameat(dir, tmp.as_str(), dir, name)?));
    if written.is_err() {
        let _ = rustix::fs::unlinkat(dir, tmp.as_str(), AtFlags::empty());
    }
    written
}

/// Bytes `range` of the file, clamped to its end.
fn read_range(path: &Path, range: Range<u64>) -> std::io::Result<Bytes> {
    use std::io::{Read, Seek};
    let mut file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    let start = range.start.min(len);
    let end = range.end.clamp(start, len);
    file.seek(std::io::SeekFrom::Start(start))?;
    // Read into spare capacity: zeroing a buffer the read overwrites anyway costs a chunk's
    // worth of pack bytes in memset.
    let wanted = (end - start) as usize;
    let mut buf = Vec::with_capacity(wanted);
    file.take(wanted as u64).read_to_end(&mut buf)?;
    if buf.len() < wanted {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    Ok(Bytes::from(buf))
}

/// Appends `data` to the file at `path` if it is `offset` bytes long, under an exclusive lock
/// on the file, so that of two appends at one offset (two processes, or a client that sent a
/// piece twice) exactly one writes. A write that fails part-way is cut back to `offset`: the
/// file never holds part of a piece.
fn append_in_place(path: &Path, offset: u64, data: &[u8]) -> std::io::Result<AppendOutcome> {
    let mut options = std::fs::OpenOptions::new();
    options.append(true);
    let file = match options.open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound && offset == 0 => {
            std::fs::create_dir_all(path.parent().expect("a validated key has a parent under root"))?;
            options.create(true).open(path)?
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(AppendOutcome::OffsetMismatch { size: 0 }),
        Err(err) => return Err(err),
    };
    rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive)?;
    let size = file.metadata()?.len();
    if size != offset {
        return Ok(AppendOutcome::OffsetMismatch { size });
    }
    if let Err(err) = std::io::Write::write_all(&mut &file, data) {
        let _ = file.set_len(offset);
        return Err(err);
    }
    // The lock goes with the file handle.
    Ok(AppendOutcome::Appended { size: offset + data.len() as u64 })
}

fn not_found(key: &str, err: std::io::Error) -> StorageError {
    if err.kind() == std::io::ErrorKind::NotFound {
        StorageError::NotFound(key.to_owned())
    } else {
        StorageError::Io(err)
    }
}

#[async_trait]
impl ObjectStore for LocalStore {
    async fn put(&self, key: &str, data: Bytes) -> Result<(), StorageError> {
        self.put_many(vec![(key.to_owned(), data)]).await
    }

    async fn put_many(&self, objects: Vec<(String, Bytes)>) -> Result<(), StorageError> {
        let files = objects
            .into_iter()
            .map(|(key, data)| Ok((self.path_of(&key)?, data)))
            .collect::<Result<Vec<_>, StorageError>>()?;
        blocking(move || write_all_atomically(&files)).await
    }

    async fn get(&self, key: &str) -> Result<Bytes, StorageError> {
        let path = self.path_of(key)?;
        let key = key.to_owned();
        blocking(move || std::fs::read(&path).map(Bytes::from).map_err(|e| not_found(&key, e))).await
    }

    async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Bytes, StorageError> {
        let path = self.path_of(key)?;
        let key = key.to_owned();
        blocking(move || read_range(&path, range).map_err(|e| not_found(&key, e))).await
    }

    async fn size(&self, key: &str) -> Result<Option<u64>, StorageError> {
        let path = self.path_of(key)?;
        match tokio::fs::metadata(&path).await {
            Ok(meta) if meta.is_file() => Ok(Some(meta.len())),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// None: a directory has no URLs of its own; the function serving it signs its own.
    async fn signed_get_url(
        &self,
        key: &str,
        _valid_from: SystemTime,
        _valid_until: SystemTime,
    ) -> Result<Option<String>, StorageError> {
        validate_key(key)?;
        Ok(None)
    }

    async fn list(&self, prefix: &str, page: Option<String>, page_size: usize) -> Result<ListPage, StorageError> {
        let root = self.root.clone();
        let prefix = prefix.to_owned();
        blocking(move || list_sorted(&root, &prefix, page.as_deref(), page_size.max(1))).await
    }

    async fn append_at(&self, key: &str, offset: u64, data: Bytes) -> Result<AppendOutcome, StorageError> {
        let path = self.path_of(key)?;
        Ok(blocking(move || Ok(append_in_place(&path, offset, &data)?)).await?)
    }

    /// By each file's modification time: the last append of an upload, the write of anything
    /// else.
    async fn delete_written_before(&self, prefix: &str, cutoff: SystemTime) -> Result<u64, StorageError> {
        let mut stale = Vec::new();
        let mut page = None;
        loop {
            let listed = self.list(prefix, page, 1000).await?;
            for (key, _) in listed.objects {
                let modified = match tokio::fs::metadata(self.path_of(&key)?).await {
                    Ok(meta) => meta.modified()?,
                    // Deleted since it was listed.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(e.into()),
                };
                if modified < cutoff {
                    stale.push(key);
                }
            }
            match listed.next_page {
                Some(next) => page = Some(next),
                None => break,
            }
        }
        for key in &stale {
            self.delete(key).await?;
        }
        Ok(stale.len() as u64)
    }

    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        let path = self.path_of(key)?;
        match tokio::fs::remove_file(&path).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        // Folders are an artifact of this backend, not objects: the last key of a folder takes
        // the folder with it (a job's scratch leaves nothing behind). Stops at the first folder
        // that still holds something.
        let mut dir = path.parent();
        while let Some(current) = dir.filter(|d| *d != self.root) {
            if tokio::fs::remove_dir(current).await.is_err() {
                break;
            }
            dir = current.parent();
        }
        Ok(())
    }
}

/// Lists keys under `prefix` after `after`, in key order. Walks only the directories that can
/// hold matching keys, in sorted order, and stops once the page is full.
fn list_sorted(root: &Path, prefix: &str, after: Option<&str>, page_size: usize) -> Result<ListPage, StorageError> {
    // The deepest directory that contains every key with this prefix.
    let dir_part = match prefix.rfind('/') {
        Some(i) => &prefix[..i],
        None => "",
    };
    let mut objects = Vec::new();
    let mut more = false;
    walk(root, &root.join(dir_part), prefix, after, page_size, &mut objects, &mut more)?;
    let next_page = if more { objects.last().map(|(k, _)| k.clone()) } else { None };
    Ok(ListPage { objects, next_page })
}

fn walk(
    root: &Path,
    dir: &Path,
    prefix: &str,
    after: Option<&str>,
    page_size: usize,
    out: &mut Vec<(String, u64)>,
    more: &mut bool,
) -> Result<(), StorageError> {
    let mut entries: Vec<(String, std::fs::DirEntry)> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().into_string().ok().map(|n| (n, e)))
            .filter(|(name, _)| !name.starts_with(".tmp"))
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    // Key order: a directory `a` sorts as `a/`, so compare names with their trailing slash.
    entries.sort_by_cached_key(|(name, e)| {
        if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            format!("{name}/")
        } else {
            name.clone()
        }
    });
    for (_, entry) in entries {
        if *more {
            return Ok(());
        }
        let path = entry.path();
        let key = match path.strip_prefix(root).ok().and_then(|p| p.to_str()) {
            Some(k) => k.replace(std::path::MAIN_SEPARATOR, "/"),
            None => continue,
        };
        let file_type = entry.file_type()?;
        if file_type.is_dir() {
            let dir_key = format!("{key}/");
            let could_match = dir_key.starts_with(prefix) || prefix.starts_with(&dir_key);
            let could_follow = after.is_none_or(|a| dir_key.as_str() > a || a.starts_with(&dir_key));
            if could_match && could_follow {
                walk(root, &path, prefix, after, page_size, out, more)?;
            }
        } else if file_type.is_file() && key.starts_with(prefix) && after.is_none_or(|a| key.as_str() > a) {
            if out.len() == page_size {
                *more = true;
                return Ok(());
            }
            out.push((key, entry.metadata()?.len()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn put_get_range_list_delete() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path());
        for key in ["p/b/2", "p/a", "p/b/1", "p/c", "q/x"] {
            store.put(key, Bytes::from(key.to_owned())).await.unwrap();
        }
        assert_eq!(store.get("p/b/1").await.unwrap(), "p/b/1");
        assert_eq!(store.get_range("p/b/1", 2..4).await.unwrap(), "b/");
        assert_eq!(store.get_range("p/b/1", 3..99).await.unwrap(), "/1");
        assert_eq!(store.size("p/c").await.unwrap(), Some(3));
        assert_eq!(store.size("p/zz").await.unwrap(), None);
        assert!(matches!(store.get("p/zz").await, Err(StorageError::NotFound(_))));

        let first = store.list("p/", None, 2).await.unwrap();
        let keys: Vec<_> = first.objects.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["p/a", "p/b/1"]);
        let second = store.list("p/", first.next_page, 2).await.unwrap();
        let keys: Vec<_> = second.objects.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["p/b/2", "p/c"]);
        assert_eq!(second.next_page, None);

        assert_eq!(store.delete_prefix("p/").await.unwrap(), 4);
        assert!(store.list("p/", None, 10).await.unwrap().objects.is_empty());
        assert!(!dir.path().join("p").exists(), "no empty folder is left behind");
        assert!(dir.path().join("q").is_dir(), "a folder that holds objects stays");
        assert_eq!(store.get("q/x").await.unwrap(), "q/x");
        store.delete("q/missing").await.unwrap();
    }

    #[tokio::test]
    async fn appends_land_only_at_the_current_end_and_whole() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path());
        let key = "temp/uploads/u1/data.zip";
        let append = |offset, data: &'static [u8]| store.append_at(key, offset, Bytes::from_static(data));
        // A missing object is 0 bytes long: only an append at 0 creates it.
        assert_eq!(append(3, b"xyz").await.unwrap(), AppendOutcome::OffsetMismatch { size: 0 });
        assert_eq!(store.size(key).await.unwrap(), None, "a misplaced piece creates nothing");
        assert_eq!(append(0, b"abc").await.unwrap(), AppendOutcome::Appended { size: 3 });
        // The same piece again (a client that did not hear the answer) writes nothing.
        assert_eq!(append(0, b"abc").await.unwrap(), AppendOutcome::OffsetMismatch { size: 3 });
        assert_eq!(append(2, b"cd").await.unwrap(), AppendOutcome::OffsetMismatch { size: 3 });
        assert_eq!(append(3, b"def").await.unwrap(), AppendOutcome::Appended { size: 6 });
        assert_eq!(store.get(key).await.unwrap(), "abcdef");
        assert!(matches!(store.append_at("../x", 0, Bytes::new()).await, Err(StorageError::InvalidKey(_))));
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn of_concurrent_appends_at_one_offset_exactly_one_writes() {
        let dir = tempfile::tempdir().unwrap();
        let store = std::sync::Arc::new(LocalStore::new(dir.path()));
        store.append_at("u/f", 0, Bytes::from_static(b"0123")).await.unwrap();
        let racers: Vec<_> = (0..8u8)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move { store.append_at("u/f", 4, Bytes::from(vec![b'a' + i; 1 << 16])).await })
            })
            .collect();
        let mut appended = 0;
        for racer in racers {
            match racer.await.unwrap().unwrap() {
                AppendOutcome::Appended { size } => {
                    appended += 1;
                    assert_eq!(size, 4 + (1 << 16));
                }
                AppendOutcome::OffsetMismatch { size } => assert_eq!(size, 4 + (1 << 16)),
            }
        }
        assert_eq!(appended, 1);
        let data = store.get("u/f").await.unwrap();
        assert_eq!(data.len(), 4 + (1 << 16));
        assert!(data[4..].iter().all(|b| *b == data[4]), "one piece, not a mix of two");
    }

    #[tokio::test]
    async fn objects_written_before_a_time_are_deleted_and_newer_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path());
        for key in ["temp/uploads/old/a.zip", "temp/uploads/new/b.zip", "temp/job/x", "datasets/d/old.jpg"] {
            store.put(key, Bytes::from_static(b"x")).await.unwrap();
        }
        let two_days_ago = SystemTime::now() - std::time::Duration::from_secs(2 * 86_400);
        for old in ["temp/uploads/old/a.zip", "datasets/d/old.jpg"] {
            std::fs::File::options()
                .write(true)
                .open(dir.path().join(old))
                .unwrap()
                .set_modified(two_days_ago)
                .unwrap();
        }
        let a_day_ago = SystemTime::now() - std::time::Duration::from_secs(86_400);
        assert_eq!(store.delete_written_before("temp/uploads/", a_day_ago).await.unwrap(), 1);
        assert_eq!(store.size("temp/uploads/old/a.zip").await.unwrap(), None);
        assert!(!dir.path().join("temp/uploads/old").exists(), "its folder went with it");
        for kept in ["temp/uploads/new/b.zip", "temp/job/x", "datasets/d/old.jpg"] {
            assert_eq!(store.size(kept).await.unwrap(), Some(1), "{kept}");
        }
        assert_eq!(store.delete_written_before("temp/uploads/", a_day_ago).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn escaping_keys_never_touch_the_disk() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path().join("root"));
        let err = store.put("../outside", Bytes::from_static(b"x")).await.unwrap_err();
        assert!(matches!(err, StorageError::InvalidKey(_)));
        assert!(!dir.path().join("outside").exists());
    }

    #[tokio::test]
    async fn put_many_writes_every_object_or_none_when_a_key_is_bad() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path());
        let objects = |keys: &[&str]| keys.iter().map(|k| (k.to_string(), Bytes::from(k.to_string()))).collect();
        store.put_many(objects(&["d/images/a.jpg", "d/labels/a.txt", "d/images/deep/b.jpg"])).await.unwrap();
        for key in ["d/images/a.jpg", "d/labels/a.txt", "d/images/deep/b.jpg"] {
            assert_eq!(store.get(key).await.unwrap(), key);
        }
        // Rewriting replaces whole objects; no temporary file is left beside them.
        store.put_many(vec![("d/images/a.jpg".into(), Bytes::from_static(b"new"))]).await.unwrap();
        assert_eq!(store.get("d/images/a.jpg").await.unwrap(), "new");
        let names: Vec<_> =
            std::fs::read_dir(dir.path().join("d/images")).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names.len(), 2, "{names:?}");

        let err = store.put_many(objects(&["e/first", "../escape", "e/last"])).await.unwrap_err();
        assert!(matches!(err, StorageError::InvalidKey(_)));
        assert!(!dir.path().join("e").exists(), "a batch with a bad key writes nothing");
    }

    #[tokio::test]
    async fn a_short_file_left_by_a_crashed_first_write_is_replaced_whole() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path());
        std::fs::create_dir_all(dir.path().join("d")).unwrap();
        std::fs::write(dir.path().join("d/a.jpg"), b"\xff\xd8").unwrap();
        store.put("d/a.jpg", Bytes::from_static(b"\xff\xd8 whole image")).await.unwrap();
        assert_eq!(store.get("d/a.jpg").await.unwrap(), &b"\xff\xd8 whole image"[..]);
        let names: Vec<_> = std::fs::read_dir(dir.path().join("d")).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["a.jpg"]);
    }

    #[tokio::test]
    async fn a_write_that_fails_leaves_no_temporary_file_and_keeps_earlier_objects() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path());
        store.put("d/a.jpg", Bytes::from_static(b"old")).await.unwrap();
        // `d/b` becomes a directory, so renaming a file onto it fails after the file is written.
        store.put("d/b/inner", Bytes::from_static(b"x")).await.unwrap();
        let batch = vec![("d/c.jpg".into(), Bytes::from_static(b"c")), ("d/b".into(), Bytes::from_static(b"file"))];
        assert!(store.put_many(batch).await.is_err());
        let mut names: Vec<_> =
            std::fs::read_dir(dir.path().join("d")).unwrap().map(|e| e.unwrap().file_name()).collect();
        names.sort();
        assert_eq!(names, ["a.jpg", "b", "c.jpg"], "only whole objects are left");
        assert_eq!(store.get("d/a.jpg").await.unwrap(), "old");
        assert_eq!(store.get("d/c.jpg").await.unwrap(), "c");
    }
}
