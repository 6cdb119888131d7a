//! Machinery shared by the tar and zip walks: error attribution, the bounded member reader and
//! the bookkeeping of names, limits and refusals.

use std::cell::RefCell;
use std::collections::HashSet;
use std::hash::{BuildHasher, RandomState};
use std::io::{self, Read, Seek, SeekFrom};
use std::rc::Rc;

use super::{sanitize_member_name, ArchiveError, Limits, OnFile, RejectReason, Rejected, Walk, MAX_REJECTED_KEPT};

/// Refused names are cut to this many bytes in [`Rejected::name`].
const MAX_REJECTED_NAME_BYTES: usize = 512;

/// The first cause of a failure seen by one of the wrapping readers. Errors that surface
/// through the tar, gzip or zip crates lose their origin; this keeps it.
#[derive(Clone, Default)]
pub(super) struct Trip(Rc<RefCell<Option<ArchiveError>>>);

impl Trip {
    pub(super) fn set(&self, cause: ArchiveError) {
        let mut slot = self.0.borrow_mut();
        if slot.is_none() {
            *slot = Some(cause);
        }
    }

    pub(super) fn take(&self) -> Option<ArchiveError> {
        self.0.borrow_mut().take()
    }

    /// Turns an error that surfaced from a parser into the error the walk returns.
    pub(super) fn resolve(&self, error: io::Error) -> ArchiveError {
        self.take().unwrap_or_else(|| ArchiveError::Corrupt(corrupt_message(&error)))
    }
}

fn corrupt_message(error: &io::Error) -> String {
    if error.kind() == io::ErrorKind::UnexpectedEof {
        "it ends unexpectedly; the upload may be truncated".into()
    } else {
        error.to_string()
    }
}

fn copy_io_error(error: &io::Error) -> io::Error {
    io::Error::new(error.kind(), error.to_string())
}

/// The caller's reader; remembers that a failure came from it rather than from a parser.
pub(super) struct CallerInput<R> {
    pub(super) inner: R,
    pub(super) trip: Trip,
}

impl<R> CallerInput<R> {
    fn note<T>(&self, result: io::Result<T>) -> io::Result<T> {
        if let Err(error) = &result {
            if error.kind() != io::ErrorKind::Interrupted {
                self.trip.set(ArchiveError::Io(copy_io_error(error)));
            }
        }
        result
    }
}

impl<R: Read> Read for CallerInput<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let result = self.inner.read(buf);
        self.note(result)
    }
}

impl<R: Seek> Seek for CallerInput<R> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        let result = self.inner.seek(pos);
        self.note(result)
    }
}

/// The reader handed to the callback: yields exactly the declared size, fails when the data
/// is shorter or longer, and keeps the first failure so the walk can report its real cause.
pub(super) struct MemberData<'a> {
    inner: &'a mut dyn Read,
    label: &'a str,
    declared: u64,
    done: u64,
    trip: &'a Trip,
    failure: Option<io::Error>,
}

impl<'a> MemberData<'a> {
    pub(super) fn new(inner: &'a mut dyn Read, label: &'a str, declared: u64, trip: &'a Trip) -> Self {
        Self { inner, label, declared, done: 0, trip, failure: None }
    }

    fn fail(&mut self, kind: io::ErrorKind, message: String) -> io::Error {
        self.trip.set(ArchiveError::Corrupt(message.clone()));
        self.failure = Some(io::Error::new(kind, message.clone()));
        io::Error::new(kind, message)
    }

    /// Reads what the callback left unread, so the stream is positioned at the next member
    /// and truncation is still noticed.
    pub(super) fn drain(&mut self) -> Result<(), ArchiveError> {
        match io::copy(self, &mut io::sink()) {
            Ok(_) => Ok(()),
            Err(error) => Err(self.trip.resolve(error)),
        }
    }

    /// The walk's error if reading this member failed, whatever the callback made of it.
    fn failure(&mut self) -> Option<ArchiveError> {
        let error = self.failure.take()?;
        Some(match self.trip.take() {
            Some(cause) => cause,
            None => ArchiveError::Corrupt(format!("'{}': {}", self.label, corrupt_message(&error))),
        })
    }
}

impl Read for MemberData<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(failure) = &self.failure {
            return Err(copy_io_error(failure));
        }
        if buf.is_empty() {
            return Ok(0);
        }
        let remaining = self.declared - self.done;
        // One byte more than declared, to notice data that runs past the declared size.
        let want = usize::try_from(remaining.saturating_add(1)).map_or(buf.len(), |r| r.min(buf.len()));
        match self.inner.read(&mut buf[..want]) {
            Ok(0) if remaining > 0 => Err(self.fail(
                io::ErrorKind::UnexpectedEof,
                format!("'{}' ends before its declared size; the upload may be truncated", self.label),
            )),
            Ok(n) if n as u64 > remaining => Err(self.fail(
                io::ErrorKind::InvalidData,
                format!("'{}' holds more data than its header declares", self.label),
            )),
            Ok(n) => {
                self.done += n as u64;
                Ok(n)
            }
            Err(error) if error.kind() == io::ErrorKind::Interrupted => Err(error),
            Err(error) => {
                let copy = copy_io_error(&error);
                self.failure = Some(error);
                Err(copy)
            }
        }
    }
}

/// Bookkeeping shared by the tar and zip walks: member count, names seen, refusals, totals.
pub(super) struct Walker<'a> {
    limits: &'a Limits,
    pub(super) walk: Walk,
    entries: u64,
    seen: HashSet<u128>,
    hashers: (RandomState, RandomState),
}

impl<'a> Walker<'a> {
    pub(super) fn new(limits: &'a Limits) -> Self {
        Self {
            limits,
            walk: Walk::default(),
            entries: 0,
            seen: HashSet::new(),
            hashers: (RandomState::new(), RandomState::new()),
        }
    }

    /// Counts one entry of any kind against [`Limits::max_members`].
    pub(super) fn count_entry(&mut self) -> Result<(), ArchiveError> {
        self.entries += 1;
        if self.entries > self.limits.max_members {
            return Err(too_many_members(self.limits));
        }
        Ok(())
    }

    pub(super) fn reject(&mut self, raw: &[u8], reason: RejectReason) {
        if self.walk.rejected.len() < MAX_REJECTED_KEPT {
            self.walk.rejected.push(Rejected { name: display_name(raw), reason });
        } else {
            self.walk.rejected_more += 1;
        }
    }

    /// A directory is never handed out, but an unsafe directory name is still reported.
    pub(super) fn directory(&mut self, raw: &[u8]) {
        if let Err(reason) = sanitize_member_name(raw) {
            self.reject(raw, reason);
        }
    }

    /// Decides whether a regular file is handed out; counts it when it is. `bomb` marks a
    /// compression ratio above the limit.
    pub(super) fn admit(&mut self, raw: &[u8], size: u64, bomb: bool) -> Result<Option<String>, ArchiveError> {
        let name = match sanitize_member_name(raw) {
            Ok(Some(name)) => name,
            Ok(None) => return Ok(None),
            Err(reason) => {
                self.reject(raw, reason);
                return Ok(None);
            }
        };
        // Two independent 64-bit keyed hashes: a false duplicate is as likely as guessing a
        // 128-bit key, and 5 million names cost 16 bytes each instead of the names themselves.
        let key = (u128::from(self.hashers.0.hash_one(&name)) << 64) | u128::from(self.hashers.1.hash_one(&name));
        if self.limits.refuse_duplicates && self.seen.contains(&key) {
            self.reject(raw, RejectReason::DuplicateName);
            return Ok(None);
        }
        if size > self.limits.max_member_bytes || bomb {
            self.reject(raw, RejectReason::TooLarge);
            return Ok(None);
        }
        let total = self.walk.bytes.saturating_add(size);
        if total > self.limits.max_total_bytes {
            return Err(ArchiveError::LimitExceeded(format!(
                "its files add up to more than {}",
                human_bytes(self.limits.max_total_bytes)
            )));
        }
        if self.limits.refuse_duplicates {
            self.seen.insert(key);
        }
        self.walk.members += 1;
        self.walk.bytes = total;
        Ok(Some(name))
    }

    /// Runs the callback on an admitted member and sorts out whose failure it was.
    pub(super) fn deliver(
        &mut self,
        name: &str,
        size: u64,
        member: &mut MemberData<'_>,
        on_file: OnFile<'_>,
    ) -> Result<(), ArchiveError> {
        let result = on_file(name, size, member);
        if let Some(error) = member.failure() {
            return Err(error);
        }
        result.map_err(ArchiveError::Callback)
    }
}

pub(super) fn too_many_members(limits: &Limits) -> ArchiveError {
    ArchiveError::LimitExceeded(format!("it has more than {} members", limits.max_members))
}

/// Lossy UTF-8, cut on a character boundary.
pub(super) fn display_name(raw: &[u8]) -> String {
    let mut name = String::from_utf8_lossy(raw).into_owned();
    if name.len() > MAX_REJECTED_NAME_BYTES {
        let mut end = MAX_REJECTED_NAME_BYTES;
        while !name.is_char_boundary(end) {
            end -= 1;
        }
        name.truncate(end);
        name.push('…');
    }
    name
}

pub(super) fn human_bytes(bytes: u64) -> String {
    const UNITS: [(&str, u64); 4] = [("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    for (unit, size) in UNITS {
        if bytes >= size {
            let tenths = (u128::from(bytes) * 10 + u128::from(size) / 2) / u128::from(size);
            return if tenths % 10 == 0 {
                format!("{} {unit}", tenths / 10)
            } else {
                format!("{}.{} {unit}", tenths / 10, tenths % 10)
            };
        }
    }
    format!("{bytes} bytes")
}
