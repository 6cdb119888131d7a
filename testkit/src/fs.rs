//! Filesystem helpers for tests: copying a dataset tree somewhere writable, listing one.
//!
//! The shared real datasets are laid out read-only (CI copies them without write bits), so a
//! test that needs a variant copies them first; the copies are made writable by their owner.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// Copies the tree `src` into `dst` (created if missing), following symlinks.
///
/// Copied files and folders get owner write permission even when the source has none.
pub fn copy_dir(src: &Path, dst: &Path) -> io::Result<()> {
    fs::create_dir_all(dst)?;
    make_writable(dst)?;
    for entry in fs::read_dir(src)? {
        let entry = entry?;
        let from = entry.path();
        let to = dst.join(entry.file_name());
        if fs::metadata(&from)?.is_dir() {
            copy_dir(&from, &to)?;
        } else {
            fs::copy(&from, &to)?;
            make_writable(&to)?;
        }
    }
    Ok(())
}

fn make_writable(path: &Path) -> io::Result<()> {
    let mut perms = fs::metadata(path)?.permissions();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        perms.set_mode(perms.mode() | 0o200);
    }
    #[cfg(not(unix))]
    {
        #[allow(clippy::permissions_set_readonly_false)]
        perms.set_readonly(false);
    }
    fs::set_permissions(path, perms)
}

/// Every regular file under `dir` (following symlinks) as `(relative path with '/', path)`,
/// sorted by the relative path.
pub(crate) fn list_files(dir: &Path) -> io::Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    let mut stack = vec![(String::new(), dir.to_path_buf())];
    while let Some((prefix, folder)) = stack.pop() {
        for entry in fs::read_dir(&folder)? {
            let entry = entry?;
            let name = entry.file_name().into_string().map_err(|name| {
                io::Error::new(io::ErrorKind::InvalidData, format!("file name {name:?} is not UTF-8"))
            })?;
            let rel = if prefix.is_empty() { name } else { format!("{prefix}/{name}") };
            let path = entry.path();
            let meta = fs::metadata(&path)?;
            if meta.is_dir() {
                stack.push((rel, path));
            } else if meta.is_file() {
                out.push((rel, path));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Every file below `root`, as relative `/`-separated paths, sorted.
pub fn files_under(root: &Path) -> io::Result<Vec<String>> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(rel) = path.strip_prefix(root) {
                let parts: Vec<String> =
                    rel.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
                out.push(parts.join("/"));
            }
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_a_tree_and_makes_it_writable() {
        let base = std::env::temp_dir().join(format!("yds-testkit-copy-{}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        let src = base.join("src");
        fs::create_dir_all(src.join("a/b")).unwrap();
        fs::write(src.join("top.txt"), b"top").unwrap();
        fs::write(src.join("a/b/deep.bin"), [1u8, 2, 3]).unwrap();
        let mut perms = fs::metadata(src.join("top.txt")).unwrap().permissions();
        perms.set_readonly(true);
        fs::set_permissions(src.join("top.txt"), perms).unwrap();

        let dst = base.join("dst");
        copy_dir(&src, &dst).unwrap();
        assert_eq!(fs::read(dst.join("top.txt")).unwrap(), b"top");
        assert_eq!(fs::read(dst.join("a/b/deep.bin")).unwrap(), [1, 2, 3]);
        assert!(!fs::metadata(dst.join("top.txt")).unwrap().permissions().readonly());
        let listed: Vec<String> = list_files(&dst).unwrap().into_iter().map(|f| f.0).collect();
        assert_eq!(listed, ["a/b/deep.bin", "top.txt"]);
        fs::remove_dir_all(&base).unwrap();
    }
}
