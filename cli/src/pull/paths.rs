//! Where a pulled file goes, from names the server gives: never outside the pull's folder.
//!
//! A split name and an image's `file_name` come from a dataset someone else may have made;
//! each `/`-separated part must be a plain name (not empty, `.` or `..`, no `\` or NUL), so
//! joining them under DIR cannot climb out of it, whatever the platform.

use std::path::PathBuf;

use crate::error::{Error, Result};

/// `parts` joined as a relative path, each part possibly holding `/`-separated names.
pub fn relative(parts: &[&str]) -> Result<PathBuf> {
    let mut path = PathBuf::new();
    for part in parts {
        for name in part.split('/') {
            let plain = !name.is_empty()
                && name != "."
                && name != ".."
                && !name.contains(['\\', '\0'])
                // `C:` on Windows is a drive, not a folder.
                && !(name.len() >= 2 && name.as_bytes()[1] == b':');
            if !plain {
                return Err(Error::msg(format!(
                    "refusing the file name `{}`: it would leave the folder",
                    parts.join("/")
                )));
            }
            path.push(name);
        }
    }
    Ok(path)
}

/// The label file's name for an image's `file_name`, as Ultralytics derives it: the last
/// suffix replaced by `.txt` (`a/b.v2.jpg` → `a/b.v2.txt`).
pub fn label_name(file_name: &str) -> String {
    let (dir, base) = file_name.rsplit_once('/').map_or(("", file_name), |(d, b)| (d, b));
    let stem = base.rsplit_once('.').map_or(base, |(stem, _)| stem);
    if dir.is_empty() {
        format!("{stem}.txt")
    } else {
        format!("{dir}/{stem}.txt")
    }
}

/// The name a file is written under before it is complete: hidden (Ultralytics' listing
/// skips it) and beside its final name, so the rename is atomic.
pub fn partial(path: &std::path::Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.yds-partial"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_join_and_escaping_ones_are_refused() {
        assert_eq!(relative(&["images", "train", "a/b.jpg"]).unwrap(), PathBuf::from("images/train/a/b.jpg"));
        for bad in [
            "../x.jpg",
            "a/../../x.jpg",
            "/etc/passwd",
            "a//b.jpg",
            "./x.jpg",
            "a\\..\\x.jpg",
            "C:x.jpg",
            "x\0.jpg",
            "",
        ] {
            let err = relative(&["images", "train", bad]).unwrap_err();
            assert!(err.to_string().starts_with("refusing the file name"), "{bad}: {err}");
        }
        assert!(relative(&["images", "..", "x.jpg"]).is_err(), "a split is checked too");
    }

    #[test]
    fn label_names_replace_the_last_suffix() {
        assert_eq!(label_name("a.jpg"), "a.txt");
        assert_eq!(label_name("sub/b.v2.JPG"), "sub/b.v2.txt");
        assert_eq!(label_name("noext"), "noext.txt");
        assert_eq!(label_name("d.x/noext"), "d.x/noext.txt");
        assert_eq!(partial(std::path::Path::new("/d/images/a.jpg")), PathBuf::from("/d/images/.a.jpg.yds-partial"));
    }
}
