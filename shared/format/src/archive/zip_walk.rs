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

use super::walker::{too_many_members, CallerInput, MemberData, Trip, Walker};
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
    let (trip, mut archive) = open(reader, limits)?;
    let mut walker = Walker::new(limits);
    let files = archive.files().map_err(|e| zip_error(&trip, e))?;
    while let Some(next) = files.next() {
        let entry = next.map_err(|e| zip_error(&trip, e))?;
        let Some((name, size)) = admit_entry(&mut walker, &entry, limits)? else {
            continue;
        };
        let mut file = entry.with_reader(files.reader_mut(), ZipReadOptions::new()).map_err(|e| zip_error(&trip, e))?;
        let mut member = MemberData::new(&mut file, &name, size, &trip);
        walker.deliver(&name, size, &mut member, on_file)?;
    }
    Ok(walker.walk)
}

/// Where a zip member's bytes are, from its central-directory record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZipEntry {
    /// Offset of the member's local header in the archive.
    pub header_offset: u64,
    pub compressed_size: u64,
    pub size: u64,
    /// Deflate; otherwise stored.
    pub deflated: bool,
    pub crc32: u32,
}

/// Bytes read after a local header's fixed part to reach the data in one request: the name
/// and extra field rarely need more.
pub const LOCAL_HEADER_SLACK: u64 = 30 + 1024;

/// Reads a zip's central directory one record at a time (through range reads when `reader` is
/// a remote source) and hands each accepted member's name and location to `on_entry`, without
/// reading any member data. Refusals follow [`walk_zip`]'s rules exactly.
pub fn index_zip<R: Read + Seek>(
    reader: R,
    limits: &Limits,
    on_entry: &mut dyn FnMut(&str, ZipEntry) -> Result<(), String>,
) -> Result<Walk, ArchiveError> {
    let (trip, mut archive) = open(reader, limits)?;
    let mut walker = Walker::new(limits);
    let files = archive.files().map_err(|e| zip_error(&trip, e))?;
    for next in files {
        let entry = next.map_err(|e| zip_error(&trip, e))?;
        let Some((name, size)) = admit_entry(&mut walker, &entry, limits)? else {
            continue;
        };
        let location = ZipEntry {
            header_offset: entry.header_start(),
            compressed_size: entry.compressed_size(),
            size,
            deflated: entry.compression() == CompressionMethod::Deflated,
            crc32: entry.crc32(),
        };
        on_entry(&name, location).map_err(ArchiveError::Callback)?;
    }
    Ok(walker.walk)
}

/// The member's data, from `bytes` that start at its local header: checks the header, inflates
/// when needed, and verifies the declared size and the CRC-32, so a member never comes back
/// different from what the central directory promised.
pub fn extract_zip_member(bytes: &[u8], entry: &ZipEntry) -> Result<Vec<u8>, String> {
    const SIGNATURE: [u8; 4] = *b"PK\x03\x04";
    if bytes.len() < 30 || bytes[..4] != SIGNATURE {
        return Err("the member's local header is missing".into());
    }
    let name_len = u16::from_le_bytes([bytes[26], bytes[27]]) as usize;
    let extra_len = u16::from_le_bytes([bytes[28], bytes[29]]) as usize;
    let start = 30 + name_len + extra_len;
    let end = usize::try_from(entry.compressed_size).ok().and_then(|n| n.checked_add(start));
    let data = end.and_then(|end| bytes.get(start..end)).ok_or("the member's data is truncated")?;
    let capacity = usize::try_from(entry.size).map_err(|_| "the member is too large")?;
    let mut out = Vec::with_capacity(capacity);
    if entry.deflated {
        let mut inflater = flate2::read::DeflateDecoder::new(data).take(entry.size + 1);
        inflater.read_to_end(&mut out).map_err(|e| format!("the member does not inflate: {e}"))?;
    } else {
        out.extend_from_slice(data);
    }
    if out.len() as u64 != entry.size {
        return Err("the member's size differs from its declared size".into());
    }
    let mut crc = flate2::Crc::new();
    crc.update(&out);
    if crc.sum() != entry.crc32 {
        return Err("the member's CRC-32 does not match".into());
    }
    Ok(out)
}

/// Applies the refusal rules to one central-directory record; `Some((name, size))` when the
/// member is accepted.
fn admit_entry(
    walker: &mut Walker<'_>,
    entry: &zip::read::ZipFileEntry<'_>,
    limits: &Limits,
) -> Result<Option<(String, u64)>, ArchiveError> {
    walker.count_entry()?;
    let raw = entry.name_raw();
    let file_type = entry.unix_mode().map_or(0, |mode| mode & S_IFMT);
    if entry.is_dir() || file_type == S_IFDIR {
        walker.directory(raw);
        return Ok(None);
    }
    if file_type == S_IFLNK {
        walker.reject(raw, RejectReason::Link);
        return Ok(None);
    }
    if file_type != 0 && file_type != S_IFREG {
        walker.reject(raw, RejectReason::Special);
        return Ok(None);
    }
    if entry.encrypted() || !matches!(entry.compression(), CompressionMethod::Stored | CompressionMethod::Deflated) {
        walker.reject(raw, RejectReason::Unsupported);
        return Ok(None);
    }
    let size = entry.size();
    let bomb = u128::from(size) > u128::from(entry.compressed_size()) * u128::from(limits.max_ratio);
    Ok(walker.admit(raw, size, bomb)?.map(|name| (name, size)))
}

/// Opens the central directory (its end record) and checks the member count.
fn open<R: Read + Seek>(reader: R, limits: &Limits) -> Result<(Trip, ZipIterable<CallerInput<R>>), ArchiveError> {
    let trip = Trip::default();
    let input = CallerInput { inner: reader, trip: trip.clone() };
    let archive = ZipIterable::try_new(input, Config::default()).map_err(|e| zip_error(&trip, e))?;
    if archive.len() as u64 > limits.max_members {
        return Err(too_many_members(limits));
    }
    Ok((trip, archive))
}

fn zip_error(trip: &Trip, error: ZipError) -> ArchiveError {
    match error {
        ZipError::Io(error) => trip.resolve(error),
        ZipError::InvalidArchive(message) => ArchiveError::Corrupt(format!("not a valid zip file ({message})")),
        ZipError::UnsupportedArchive(message) => ArchiveError::Corrupt(format!("unsupported zip feature ({message})")),
        other => ArchiveError::Corrupt(other.to_string()),
    }
}
