//! Streaming tar and tar.gz walk on top of the `tar` crate.
//!
//! The `tar` crate reads GNU long names and pax extended headers whole into memory, so the
//! stream below it is metered: while the crate looks for the next member it may read at most
//! [`MAX_HEADER_BYTES`], and the whole decompressed stream is capped as well, which bounds both
//! memory and the time a gzip bomb hidden in skipped members can cost.

use std::cell::Cell;
use std::io::{self, BufRead, BufReader, Read};
use std::rc::Rc;

use flate2::bufread::GzDecoder;
use tar::EntryType;

use super::walker::{display_name, human_bytes, CallerInput, MemberData, Trip, Walker};
use super::{ArchiveError, Limits, OnFile, RejectReason, Walk};

/// Most bytes the tar stream may yield between two members: padding, headers, GNU long names
/// and pax records.
const MAX_HEADER_BYTES: u64 = 1 << 20;
/// Allowance per member for headers and padding in the stream cap.
const STREAM_BYTES_PER_MEMBER: u64 = 4096;
/// Allowance for the end-of-archive blocks and record padding.
const STREAM_SLACK: u64 = 64 << 10;

/// Streams a tar (`gz`: gzip-compressed, possibly multi-member) from `reader`.
///
/// Every regular file with a safe, new name and a size within [`Limits::max_member_bytes`] is
/// handed to `on_file(name, size, reader)` in archive order; the callback may stop reading early.
/// Directories are skipped; links, devices, fifos, sparse files, unsafe names and duplicates are
/// recorded in [`Walk::rejected`] and skipped. Too many entries, too many bytes, a truncated or
/// damaged stream, or a callback error stop the walk.
pub fn walk_tar<R: Read>(reader: R, gz: bool, limits: &Limits, on_file: OnFile<'_>) -> Result<Walk, ArchiveError> {
    walk_tar_at(reader, gz, limits, &mut |name, size, data, _| on_file(name, size, data))
}

/// The callback of [`walk_tar_at`]: [`OnFile`]'s arguments and the member's position.
pub type OnFileAt<'a> = &'a mut dyn FnMut(&str, u64, &mut dyn Read, Option<u64>) -> Result<(), String>;

/// [`walk_tar`], also telling the callback where the member starts in the (decompressed)
/// stream: the offset of its first header block, GNU long-name and pax headers included, so a
/// plain tar can be read again from exactly that member by seeking there.
pub fn walk_tar_at<R: Read>(reader: R, gz: bool, limits: &Limits, on_file: OnFileAt<'_>) -> Result<Walk, ArchiveError> {
    let trip = Trip::default();
    let input = CallerInput { inner: reader, trip: trip.clone() };
    let buffered = BufReader::with_capacity(256 << 10, input);
    if gz {
        let members = GzMembers::Member(GzDecoder::new(buffered));
        walk_stream(members, true, limits, on_file, trip)
    } else {
        walk_stream(buffered, false, limits, on_file, trip)
    }
}

enum Kind {
    File,
    Directory,
    Link,
    Special,
    Ignored,
}

fn kind_of(entry_type: EntryType) -> Kind {
    match entry_type {
        EntryType::Regular | EntryType::Continuous => Kind::File,
        EntryType::Directory => Kind::Directory,
        EntryType::Symlink | EntryType::Link => Kind::Link,
        // Global pax headers only carry metadata for the members that follow.
        EntryType::XGlobalHeader => Kind::Ignored,
        // Devices, fifos, GNU sparse files (unbounded zero runs), volume labels, unknown types.
        _ => Kind::Special,
    }
}

fn walk_stream<S: Read>(
    stream: S,
    verify_tail: bool,
    limits: &Limits,
    on_file: OnFileAt<'_>,
    trip: Trip,
) -> Result<Walk, ArchiveError> {
    let cap = limits
        .max_total_bytes
        .saturating_add(limits.max_members.saturating_mul(STREAM_BYTES_PER_MEMBER))
        .saturating_add(STREAM_SLACK);
    let meter = Rc::new(Meter { read: Cell::new(0), cap, window: Cell::new(None), trip: trip.clone() });
    let mut archive = tar::Archive::new(Metered { inner: stream, meter: meter.clone() });
    let mut walker = Walker::new(limits);
    {
        let mut entries = archive.entries().map_err(|e| trip.resolve(e))?;
        // Stored bytes of the previous member left for the `tar` crate to skip.
        let mut unread: u64 = 0;
        // Where the next member's first header block starts.
        let mut next_start: u64 = 0;
        loop {
            meter.window.set(Some(MAX_HEADER_BYTES.saturating_add(unread)));
            let next = entries.next();
            meter.window.set(None);
            let mut entry = match next {
                None => break,
                Some(Ok(entry)) => entry,
                Some(Err(error)) => return Err(trip.resolve(error)),
            };
            walker.count_entry()?;
            let start = next_start;
            let stored = entry.header().entry_size().map_err(|e| trip.resolve(e))?;
            next_start = entry.raw_file_position().saturating_add(stored.div_ceil(512) * 512);
            let raw = entry.path_bytes().into_owned();
            let size = entry.size();
            let admitted = match kind_of(entry.header().entry_type()) {
                Kind::File => walker.admit(&raw, size, false)?,
                Kind::Directory => {
                    walker.directory(&raw);
                    None
                }
                Kind::Link => {
                    walker.reject(&raw, RejectReason::Link);
                    None
                }
                Kind::Special => {
                    walker.reject(&raw, RejectReason::Special);
                    None
                }
                Kind::Ignored => None,
            };
            if entry.header().entry_type().is_gnu_sparse() {
                // Reading a sparse entry would expand its holes (any length of zeros, from
                // nothing); let the crate skip the bytes actually stored instead.
                unread = entry.header().entry_size().map_err(|e| trip.resolve(e))?;
                continue;
            }
            unread = 0;
            let label = admitted.clone().unwrap_or_else(|| display_name(&raw));
            let mut member = MemberData::new(&mut entry, &label, size, &trip);
            if let Some(name) = &admitted {
                walker.deliver(name, size, &mut member, &mut |n, s, r| on_file(n, s, r, Some(start)))?;
            }
            member.drain()?;
        }
    }
    if verify_tail {
        // Reading gzip to its end checks its CRC and length trailer.
        let mut rest = archive.into_inner();
        io::copy(&mut rest, &mut io::sink()).map_err(|e| trip.resolve(e))?;
    }
    Ok(walker.walk)
}

/// Counts the decompressed tar stream against the overall cap and, while a header is being
/// looked for, against [`MAX_HEADER_BYTES`].
struct Meter {
    read: Cell<u64>,
    cap: u64,
    window: Cell<Option<u64>>,
    trip: Trip,
}

struct Metered<S> {
    inner: S,
    meter: Rc<Meter>,
}

impl<S: Read> Read for Metered<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let meter = &self.meter;
        let read = meter.read.get().saturating_add(n as u64);
        meter.read.set(read);
        if read > meter.cap {
            let message = format!("it expands to more than {}", human_bytes(meter.cap));
            meter.trip.set(ArchiveError::LimitExceeded(message.clone()));
            return Err(io::Error::other(message));
        }
        if let Some(left) = meter.window.get() {
            let Some(left) = left.checked_sub(n as u64) else {
                let message =
                    format!("a member header or its long name is larger than {}", human_bytes(MAX_HEADER_BYTES));
                meter.trip.set(ArchiveError::Corrupt(message.clone()));
                return Err(io::Error::other(message));
            };
            meter.window.set(Some(left));
        }
        Ok(n)
    }
}

/// Concatenated gzip members, read like `gzip -d` does: whatever follows the last member
/// without starting with the gzip magic (zero padding, junk) is ignored. Each member's CRC and
/// length are checked when it ends.
enum GzMembers<R> {
    Member(GzDecoder<R>),
    Done,
}

impl<R: BufRead> Read for GzMembers<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let GzMembers::Member(decoder) = self else {
                return Ok(0);
            };
            let n = decoder.read(buf)?;
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
            let GzMembers::Member(decoder) = std::mem::replace(self, GzMembers::Done) else {
                return Ok(0);
            };
            let mut rest = decoder.into_inner();
            if rest.fill_buf()?.first() == Some(&0x1f) {
                *self = GzMembers::Member(GzDecoder::new(rest));
            }
        }
    }
}
