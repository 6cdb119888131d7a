//! Reading uploaded zip, tar and tar.gz archives one member at a time.
//!
//! YDS imports YOLO datasets of up to 100 GB from archives that strangers upload, so every byte
//! of an archive is hostile until proven otherwise. This module is the only place that parses
//! archive formats: it walks the members in order and hands each safe regular file to a callback
//! as a bounded reader, together with a normalized, relative, UTF-8 name.
//!
//! What it must never do:
//! - write anything anywhere: it has no file system access of its own, and a name it hands out
//!   can never climb out of a prefix (`..`), be absolute, or contain a backslash or NUL;
//! - follow, resolve or hand out links: symlinks and hard links are refused, as are devices,
//!   fifos and sparse files;
//! - buffer a whole archive or a whole member: tar is streamed, zip is read through its central
//!   directory one entry at a time, and the memory kept per member is a 16-byte name hash;
//! - trust declared sizes: a member's reader stops at its declared size and fails if the data
//!   is longer or shorter, zip members whose declared size is far larger than their compressed
//!   size are refused, and the total amount of data read or inflated is capped ([`Limits`]).

use std::io::Read;

mod tar_walk;
#[cfg(test)]
mod tests;
mod walker;
mod zip_walk;

pub use tar_walk::{walk_tar, walk_tar_at, OnFileAt};
pub use zip_walk::{extract_zip_member, index_zip, walk_zip, ZipEntry, LOCAL_HEADER_SLACK};

/// The callback that receives each accepted member: its normalized name, its declared size
/// and a reader that yields exactly that many bytes.
pub type OnFile<'a> = &'a mut dyn FnMut(&str, u64, &mut dyn Read) -> Result<(), String>;

/// How many refused members [`Walk::rejected`] keeps; the rest are only counted.
pub const MAX_REJECTED_KEPT: usize = 1000;

/// The archive formats YDS accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ArchiveKind {
    Zip,
    Tar,
    TarGz,
}

/// Tells the archive format by magic bytes, falling back to the name's extension
/// (`.zip`, `.tar`, `.tar.gz`, `.tgz`, case-insensitive) when the bytes say nothing.
///
/// `first_bytes` should hold at least the first 262 bytes of the file when it has them (the tar
/// magic sits at offset 257).
pub fn detect_kind(first_bytes: &[u8], name: &str) -> Option<ArchiveKind> {
    if first_bytes.starts_with(b"PK\x03\x04")
        || first_bytes.starts_with(b"PK\x05\x06")
        || first_bytes.starts_with(b"PK\x07\x08")
    {
        return Some(ArchiveKind::Zip);
    }
    if first_bytes.starts_with(&[0x1f, 0x8b]) {
        return Some(ArchiveKind::TarGz);
    }
    if first_bytes.get(257..262) == Some(b"ustar") {
        return Some(ArchiveKind::Tar);
    }
    let lower = name.to_ascii_lowercase();
    if lower.ends_with(".zip") {
        Some(ArchiveKind::Zip)
    } else if lower.ends_with(".tar.gz") || lower.ends_with(".tgz") {
        Some(ArchiveKind::TarGz)
    } else if lower.ends_with(".tar") {
        Some(ArchiveKind::Tar)
    } else {
        None
    }
}

/// Bounds on what one walk accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Entries of any kind (files, directories, refused members) the archive may have; more
    /// stops the walk with [`ArchiveError::LimitExceeded`].
    pub max_members: u64,
    /// Largest declared size of one member; a larger member is refused as
    /// [`RejectReason::TooLarge`] and never handed out (tar still has to read past it).
    pub max_member_bytes: u64,
    /// Largest sum of the sizes of the members handed to the callback; more stops the walk.
    /// For tar, the whole decompressed stream (skipped members and headers included) is also
    /// capped at this plus 4 KiB per allowed member plus 64 KiB.
    pub max_total_bytes: u64,
    /// Zip only: largest uncompressed/compressed size ratio of one member; a member above it
    /// is refused as [`RejectReason::TooLarge`].
    pub max_ratio: u64,
    /// Refuse a name seen before as [`RejectReason::DuplicateName`]. Costs 16 bytes per member;
    /// a caller that detects repeats itself (the import's member index, keyed by path) turns
    /// it off.
    pub refuse_duplicates: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_members: 5_000_000,
            max_member_bytes: 2 << 30,
            max_total_bytes: 200 << 30,
            max_ratio: 1000,
            refuse_duplicates: true,
        }
    }
}

/// A member that was refused and never handed to the callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// The raw name as lossy UTF-8, cut to 512 bytes.
    pub name: String,
    pub reason: RejectReason,
}

/// Why a member was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectReason {
    /// A `..` component, a NUL byte or an otherwise unusable name.
    PathTraversal,
    /// `/x`, `\x`, `C:/x`, `C:\x` or `C:x`.
    AbsolutePath,
    /// A backslash inside the name (a Windows separator or an escape trick).
    Backslash,
    /// A symbolic or hard link.
    Link,
    /// A device, fifo, socket, sparse file or unknown entry type.
    Special,
    /// The raw name is not valid UTF-8.
    NotUtf8,
    /// An earlier member had the same normalized name; the first one wins.
    DuplicateName,
    /// Larger than [`Limits::max_member_bytes`], or (zip) compressed beyond [`Limits::max_ratio`].
    TooLarge,
    /// Zip only: encrypted, or compressed with a method other than stored or deflate.
    Unsupported,
}

impl RejectReason {
    /// Stable snake_case code, part of the API contract: add new ones, never rename.
    pub fn code(&self) -> &'static str {
        match self {
            Self::PathTraversal => "unsafe_path",
            Self::AbsolutePath => "absolute_path",
            Self::Backslash => "backslash_path",
            Self::Link => "link_member",
            Self::Special => "special_member",
            Self::NotUtf8 => "name_not_utf8",
            Self::DuplicateName => "duplicate_member",
            Self::TooLarge => "member_too_large",
            Self::Unsupported => "unsupported_member",
        }
    }

    /// One sentence for a user.
    pub fn message(&self) -> &'static str {
        match self {
            Self::PathTraversal => "the name contains '..' or a NUL byte, so it was skipped",
            Self::AbsolutePath => "the name is an absolute path, so it was skipped",
            Self::Backslash => "the name contains a backslash, so it was skipped",
            Self::Link => "links are not followed, so it was skipped",
            Self::Special => "it is not a regular file (device, fifo or sparse file)",
            Self::NotUtf8 => "the name is not valid UTF-8, so it was skipped",
            Self::DuplicateName => "an earlier member has the same name; the first one was kept",
            Self::TooLarge => "it is larger than the per-file limit or compressed suspiciously well",
            Self::Unsupported => "it is encrypted or uses a compression method other than deflate",
        }
    }
}

impl std::fmt::Display for RejectReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message())
    }
}

/// What a finished walk saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Walk {
    /// Members handed to the callback.
    pub members: u64,
    /// Sum of the declared sizes of the members handed to the callback.
    pub bytes: u64,
    /// The first [`MAX_REJECTED_KEPT`] refused members, in archive order.
    pub rejected: Vec<Rejected>,
    /// Refused members beyond those kept in `rejected`.
    pub rejected_more: u64,
}

/// Why a walk stopped. Messages are meant for the uploader and never name a local path.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// Reading the upload itself failed.
    #[error("the archive could not be read: {0}")]
    Io(std::io::Error),
    /// The bytes are not a valid archive of the expected kind, or are truncated.
    #[error("the archive is damaged: {0}")]
    Corrupt(String),
    /// The archive is larger than [`Limits`] allow.
    #[error("the archive is too large: {0}")]
    LimitExceeded(String),
    /// The callback failed; its message is passed through unchanged.
    #[error("{0}")]
    Callback(String),
}

/// Normalizes a raw member name into a relative, `/`-separated UTF-8 path.
///
/// Strips leading `./`, drops empty and `.` components (so `a//./b` becomes `a/b`) and refuses
/// `..`, absolute names (`/x`, `\x`, `C:/x`, `C:\x`, `C:x`), backslashes, NUL and non-UTF-8.
/// Returns `Ok(None)` for a directory (trailing `/`) or a name with no component left.
pub fn sanitize_member_name(raw: &[u8]) -> Result<Option<String>, RejectReason> {
    if raw.contains(&0) {
        return Err(RejectReason::PathTraversal);
    }
    let name = std::str::from_utf8(raw).map_err(|_| RejectReason::NotUtf8)?;
    if name.starts_with('/') || name.starts_with('\\') || starts_with_drive(name) {
        return Err(RejectReason::AbsolutePath);
    }
    if name.contains('\\') {
        return Err(RejectReason::Backslash);
    }
    let mut out = String::with_capacity(name.len());
    for part in name.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(RejectReason::PathTraversal),
            part => {
                if !out.is_empty() {
                    out.push('/');
                }
                out.push_str(part);
            }
        }
    }
    // `./C:x` normalizes to `C:x`: the drive check holds for the name handed out too.
    if starts_with_drive(&out) {
        return Err(RejectReason::AbsolutePath);
    }
    let directory = name.ends_with('/') || name == "." || name.ends_with("/.");
    Ok(if directory || out.is_empty() { None } else { Some(out) })
}

/// `C:` at the start: a Windows drive (`C:/x`, `C:\\x`, or the drive-relative `C:x`).
fn starts_with_drive(name: &str) -> bool {
    let bytes = name.as_bytes();
    bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':'
}
