//! Zip walk through the central directory, one entry at a time.
//!
//! `zip::ZipArchive` indexes every entry in memory and keys them by name, which hides
//! duplicates; `ZipIterable` (exported under `zip::unstable`, so the `zip` version should stay
//! pinned) parses one central-directory record per step instead.

use std::io::{Read, Seek};

use zip::read::Config;
use zip::result::ZipError;
use zip::unstable::read::ZipIterable;
use zip::{CompressionMethod, ZipReadOptions};

use super::walker::{too_many_members, MemberReader, Source, Trip, Walker};
use super::{ArchiveError, Limits, OnFile, RejectReason, Walk};

const S_IFMT: u32 = 0o170_000;
const S_IFREG: u32 = 0o100_000;
const S_IFDIR: u32 = 0o040_000;
const S_IFLNK: u32 = 0o120_000;

/// Walks a zip archive, which needs `Read + Seek` (a local file).
///
/// Same contract as [`super::walk_tar`]. In addition, entries whose unix mode says symlink are
/// refused as links, other non-regular modes as special, encrypted entries and methods other than
/// stored and deflate as unsupported, and entries whose declared size exceeds
/// [`Limits::max_ratio`] times their compressed size as too large. The data handed out never
/// exceeds the declared size: an entry that inflates further fails the walk as corrupt.
pub fn walk_zip<R: Read + Seek>(reader: R, limits: &Limits, on_file: OnFile<'_>) -> Result<Walk, ArchiveError> {
    let trip = Trip::default();
    let source = Source { inner: reader, trip: trip.clone() };
    let mut archive = ZipIterable::try_new(source, Config::default()).map_err(|e| zip_error(&trip, e))?;
    if archive.len() as u64 > limits.max_members {
        return Err(too_many_members(limits));
    }
    let mut walker = Walker::new(limits);
    let files = archive.files().map_err(|e| zip_error(&trip, e))?;
    while let Some(next) = files.next() {
        let entry = next.map_err(|e| zip_error(&trip, e))?;
        walker.count_entry()?;
        let raw = entry.name_raw().to_vec();
        let file_type = entry.unix_mode().map_or(0, |mode| mode & S_IFMT);
        if entry.is_dir() || file_type == S_IFDIR {
            walker.directory(&raw);
            continue;
        }
        if file_type == S_IFLNK {
            walker.reject(&raw, RejectReason::Link);
            continue;
        }
        if file_type != 0 && file_type != S_IFREG {
            walker.reject(&raw, RejectReason::Special);
            continue;
        }
        if entry.encrypted() || !matches!(entry.compression(), CompressionMethod::Stored | CompressionMethod::Deflated)
        {
            walker.reject(&raw, RejectReason::Unsupported);
            continue;
        }
        let size = entry.size();
        let bomb = u128::from(size) > u128::from(entry.compressed_size()) * u128::from(limits.max_ratio);
        let Some(name) = walker.admit(&raw, size, bomb)? else {
            continue;
        };
        let mut file = entry.with_reader(files.reader_mut(), ZipReadOptions::new()).map_err(|e| zip_error(&trip, e))?;
        let mut member = MemberReader::new(&mut file, &name, size, &trip);
        walker.deliver(&name, size, &mut member, on_file)?;
    }
    Ok(walker.walk)
}

fn zip_error(trip: &Trip, error: ZipError) -> ArchiveError {
    match error {
        ZipError::Io(error) => trip.resolve(error),
        ZipError::InvalidArchive(message) => ArchiveError::Corrupt(format!("not a valid zip file ({message})")),
        ZipError::UnsupportedArchive(message) => ArchiveError::Corrupt(format!("unsupported zip feature ({message})")),
        other => ArchiveError::Corrupt(other.to_string()),
    }
}
