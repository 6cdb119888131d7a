//! A local dataset folder as a tar stream, made while it is uploaded: no temporary archive on
//! disk, and only one directory listing at a time in memory.
//!
//! The archive is deterministic (the same folder gives the same bytes): entries in byte order
//! of their names, directory by directory; no directory entries; mode 0644, owner 0, time 0.
//! Names starting with `.` are left out at every level (`.git`, `.DS_Store`, editors' files):
//! Ultralytics lists a split's images with Python's `glob`, which skips them too. Symbolic
//! links are followed (a folder of links to the real images is common); a link loop is an
//! error. The archive is plain tar: images are already compressed.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// One tar block.
const BLOCK: u64 = 512;
/// The longest name a GNU header holds; longer ones take a `././@LongLink` entry first.
const NAME_FIELD: usize = 100;

/// What a folder's archive will hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Prediction {
    pub files: u64,
    /// The archive's exact size, if no file changes before it is written.
    pub bytes: u64,
}

/// One file to pack: its name in the archive (`/`-separated, relative) and where it is.
struct Entry {
    name: String,
    path: PathBuf,
}

/// The size of the archive of `root`, walking it once without reading any file.
pub fn predict(root: &Path) -> io::Result<Prediction> {
    let mut prediction = Prediction { files: 0, bytes: 2 * BLOCK };
    walk(root, &mut |entry| {
        let len = std::fs::metadata(&entry.path)?.len();
        prediction.files += 1;
        prediction.bytes += entry_size(&entry.name, len);
        Ok(())
    })?;
    Ok(prediction)
}

/// The bytes one file takes in the archive: its header, its data padded to a block, and a
/// long-name entry before it when its name does not fit the header.
pub fn entry_size(name: &str, len: u64) -> u64 {
    let padded = |n: u64| n.div_ceil(BLOCK) * BLOCK;
    let long_name = if name.len() > NAME_FIELD { BLOCK + padded(name.len() as u64 + 1) } else { 0 };
    long_name + BLOCK + padded(len)
}

/// Writes the archive of `root` into `out`; returns the bytes written.
pub fn write(root: &Path, out: impl Write) -> io::Result<u64> {
    let mut builder = tar::Builder::new(Counting { inner: out, count: 0 });
    walk(root, &mut |entry| {
        let file = File::open(&entry.path)?;
        let len = file.metadata()?.len();
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(len);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        let mut data = Exact { inner: file.take(len), left: len, path: &entry.path };
        builder.append_data(&mut header, &entry.name, &mut data)
    })?;
    builder.finish()?;
    let counting = builder.into_inner()?;
    Ok(counting.count)
}

/// Calls `visit` for every file under `root` in archive order.
fn walk(root: &Path, visit: &mut dyn FnMut(Entry) -> io::Result<()>) -> io::Result<()> {
    let root_real = std::fs::canonicalize(root)?;
    if !std::fs::metadata(&root_real)?.is_dir() {
        return Err(io::Error::other(format!("{} is not a folder", root.display())));
    }
    walk_dir(root, "", &mut vec![root_real], visit)
}

fn walk_dir(
    dir: &Path,
    prefix: &str,
    ancestors: &mut Vec<PathBuf>,
    visit: &mut dyn FnMut(Entry) -> io::Result<()>,
) -> io::Result<()> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name();
        let name = name
            .into_string()
            .map_err(|name| io::Error::other(format!("{}: the file name {name:?} is not UTF-8", dir.display())))?;
        if !name.starts_with('.') {
            names.push(name);
        }
    }
    names.sort_unstable();
    for name in names {
        let path = dir.join(&name);
        let archive_name = if prefix.is_empty() { name } else { format!("{prefix}/{name}") };
        let metadata =
            std::fs::metadata(&path).map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        if metadata.is_dir() {
            let real = std::fs::canonicalize(&path)?;
            if ancestors.contains(&real) {
                return Err(io::Error::other(format!("{} links back to a folder above it", path.display())));
            }
            ancestors.push(real);
            walk_dir(&path, &archive_name, ancestors, visit)?;
            ancestors.pop();
        } else if metadata.is_file() {
            visit(Entry { name: archive_name, path })?;
        }
    }
    Ok(())
}

/// Counts what goes through.
struct Counting<W> {
    inner: W,
    count: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A file's bytes that must be exactly the length its header states: a file that shrank
/// while being packed would otherwise shift every later entry.
struct Exact<'a, R> {
    inner: R,
    left: u64,
    path: &'a Path,
}

impl<R: Read> Read for Exact<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && self.left > 0 && !buf.is_empty() {
            return Err(io::Error::other(format!("{} changed while it was being packed", self.path.display())));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(root: &Path) {
        for (path, bytes) in [
            ("data.yaml", b"train: images/train\nnames: [a]\n".to_vec()),
            ("images/train/b.jpg", vec![7; 1000]),
            ("images/train/a.jpg", vec![1; 512]),
            ("labels/train/a.txt", b"0 0.5 0.5 0.1 0.1\n".to_vec()),
            (".git/config", b"hidden".to_vec()),
            ("images/train/.DS_Store", b"hidden".to_vec()),
            (&format!("images/train/{}.jpg", "n".repeat(150)), vec![3; 10]),
            ("images/train/empty.jpg", Vec::new()),
        ] {
            let path = root.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, bytes).unwrap();
        }
    }

    #[test]
    fn the_archive_is_sorted_deterministic_and_exactly_as_predicted() {
        let dir = tempfile::tempdir().unwrap();
        tree(dir.path());
        let mut first = Vec::new();
        let written = write(dir.path(), &mut first).unwrap();
        let mut second = Vec::new();
        write(dir.path(), &mut second).unwrap();
        assert_eq!(first, second, "same folder, same bytes");
        assert_eq!(written, first.len() as u64);
        let prediction = predict(dir.path()).unwrap();
        assert_eq!(prediction, Prediction { files: 6, bytes: first.len() as u64 });

        let mut archive = tar::Archive::new(first.as_slice());
        let mut names = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let name = entry.path().unwrap().to_string_lossy().into_owned();
            assert_eq!(entry.header().mtime().unwrap(), 0);
            assert_eq!(entry.header().mode().unwrap(), 0o644);
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).unwrap();
            assert_eq!(bytes, std::fs::read(dir.path().join(&name)).unwrap(), "{name}");
            names.push(name);
        }
        let long = format!("images/train/{}.jpg", "n".repeat(150));
        assert_eq!(
            names,
            [
                "data.yaml",
                "images/train/a.jpg",
                "images/train/b.jpg",
                "images/train/empty.jpg",
                &long,
                "labels/train/a.txt"
            ]
        );
    }

    #[cfg(unix)]
    #[test]
    fn links_are_followed_and_a_link_loop_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        std::fs::create_dir_all(real.join("images")).unwrap();
        std::fs::write(real.join("images/x.jpg"), b"x").unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir(&root).unwrap();
        std::os::unix::fs::symlink(real.join("images"), root.join("images")).unwrap();
        let mut out = Vec::new();
        write(&root, &mut out).unwrap();
        let names: Vec<String> = tar::Archive::new(out.as_slice())
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["images/x.jpg"]);

        // Through the link, `images/again` leads back to the root.
        std::os::unix::fs::symlink(&root, real.join("images/again")).unwrap();
        let err = write(&root, io::sink()).unwrap_err();
        assert!(err.to_string().contains("links back"), "{err}");
    }

    #[test]
    fn entry_sizes_count_headers_padding_and_long_names() {
        assert_eq!(entry_size("a", 0), 512);
        assert_eq!(entry_size("a", 1), 1024);
        assert_eq!(entry_size("a", 512), 1024);
        assert_eq!(entry_size(&"n".repeat(100), 1), 1024);
        assert_eq!(entry_size(&"n".repeat(101), 1), 1024 + 1024);
        assert_eq!(entry_size(&"n".repeat(511), 1), 1024 + 1024);
        assert_eq!(entry_size(&"n".repeat(512), 1), 1024 + 512 + 1024);
    }
}
