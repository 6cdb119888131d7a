use std::io::{self, Cursor, Read, Seek, Write};

use flate2::write::GzEncoder;
use flate2::Compression;
use tar::{Builder, EntryType, Header};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

use super::walker::human_bytes;
use super::*;

mod tar_tests;
mod zip_tests;

type Files = Vec<(String, Vec<u8>)>;

/// Runs a walk with a callback that reads every member whole.
fn collect(walk: impl FnOnce(OnFile<'_>) -> Result<Walk, ArchiveError>) -> (Result<Walk, ArchiveError>, Files) {
    let mut files = Files::new();
    let mut on_file = |name: &str, size: u64, reader: &mut dyn Read| -> Result<(), String> {
        let mut data = Vec::new();
        reader.read_to_end(&mut data).map_err(|e| format!("reading {name}: {e}"))?;
        assert_eq!(data.len() as u64, size, "{name}");
        files.push((name.to_owned(), data));
        Ok(())
    };
    let result = walk(&mut on_file);
    (result, files)
}

fn tar_walk(bytes: &[u8], gz: bool, limits: &Limits) -> (Result<Walk, ArchiveError>, Files) {
    collect(|on_file| walk_tar(bytes, gz, limits, on_file))
}

fn zip_walk(bytes: &[u8], limits: &Limits) -> (Result<Walk, ArchiveError>, Files) {
    collect(|on_file| walk_zip(Cursor::new(bytes), limits, on_file))
}

fn codes(walk: &Walk) -> Vec<(&str, &str)> {
    walk.rejected.iter().map(|r| (r.name.as_str(), r.reason.code())).collect()
}

fn names(files: &Files) -> Vec<&str> {
    files.iter().map(|(name, _)| name.as_str()).collect()
}

/// Incompressible bytes.
fn noise(len: usize) -> Vec<u8> {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// A tar writer that also writes what the `tar` crate's safe API refuses to.
struct TarBuf(Builder<Vec<u8>>);

impl TarBuf {
    fn new() -> Self {
        Self(Builder::new(Vec::new()))
    }

    fn file(&mut self, name: &str, data: &[u8]) -> &mut Self {
        let mut header = Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        self.0.append_data(&mut header, name, data).unwrap();
        self
    }

    /// Any name bytes (up to 100) and entry type, bypassing the builder's path checks.
    fn raw(&mut self, name: &[u8], entry_type: EntryType, data: &[u8]) -> &mut Self {
        let mut header = Header::new_gnu();
        header.as_old_mut().name[..name.len()].copy_from_slice(name);
        header.set_entry_type(entry_type);
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        self.0.append(&header, data).unwrap();
        self
    }

    fn link(&mut self, name: &str, target: &str, entry_type: EntryType) -> &mut Self {
        let mut header = Header::new_gnu();
        header.set_entry_type(entry_type);
        header.set_size(0);
        self.0.append_link(&mut header, name, target).unwrap();
        self
    }

    /// A pax extended header carrying `path`, followed by a ustar member with a short name.
    fn pax_file(&mut self, path: &str, data: &[u8]) -> &mut Self {
        let body = format!(" path={path}\n");
        let mut len = body.len() + 1;
        while format!("{len}{body}").len() != len {
            len += 1;
        }
        let record = format!("{len}{body}");
        self.raw(b"PaxHeaders/x", EntryType::XHeader, record.as_bytes());
        let mut header = Header::new_ustar();
        header.set_path("short").unwrap();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        self.0.append(&header, data).unwrap();
        self
    }

    fn finish(&mut self) -> Vec<u8> {
        let builder = std::mem::replace(&mut self.0, Builder::new(Vec::new()));
        builder.into_inner().unwrap()
    }
}

fn zip_bytes(build: impl FnOnce(&mut ZipWriter<Cursor<Vec<u8>>>)) -> Vec<u8> {
    let mut writer = ZipWriter::new(Cursor::new(Vec::new()));
    build(&mut writer);
    writer.finish().unwrap().into_inner()
}

fn deflated() -> SimpleFileOptions {
    SimpleFileOptions::default().compression_method(CompressionMethod::Deflated)
}

fn zip_file(writer: &mut ZipWriter<Cursor<Vec<u8>>>, name: &str, data: &[u8], options: SimpleFileOptions) {
    writer.start_file(name, options).unwrap();
    writer.write_all(data).unwrap();
}

/// Replaces every occurrence of `from` with `to` (same length) in `bytes`.
fn patch(bytes: &mut [u8], from: &[u8], to: &[u8]) {
    assert_eq!(from.len(), to.len());
    let mut found = false;
    for i in 0..=bytes.len() - from.len() {
        if &bytes[i..i + from.len()] == from {
            bytes[i..i + from.len()].copy_from_slice(to);
            found = true;
        }
    }
    assert!(found, "pattern not found");
}

/// Offset of the first central directory record.
fn central_record(bytes: &[u8]) -> usize {
    bytes.windows(4).position(|w| w == b"PK\x01\x02").unwrap()
}

// ---------------------------------------------------------------- detect and sanitize

#[test]
fn detects_by_magic_then_extension() {
    let mut tar = TarBuf::new().file("a.txt", b"a").finish();
    assert_eq!(detect_kind(&tar[..512], "upload.bin"), Some(ArchiveKind::Tar));
    assert_eq!(detect_kind(&gzip(&tar)[..10], "x.zip"), Some(ArchiveKind::TarGz));
    assert_eq!(detect_kind(b"PK\x03\x04rest", "x.tar"), Some(ArchiveKind::Zip));
    assert_eq!(detect_kind(b"PK\x05\x06\0\0", ""), Some(ArchiveKind::Zip));
    tar[257..262].copy_from_slice(b"\0\0\0\0\0");
    assert_eq!(detect_kind(&tar, "OLD.TAR"), Some(ArchiveKind::Tar));
    assert_eq!(detect_kind(b"", "data.Tar.Gz"), Some(ArchiveKind::TarGz));
    assert_eq!(detect_kind(b"", "data.tgz"), Some(ArchiveKind::TarGz));
    assert_eq!(detect_kind(b"", "data.zip"), Some(ArchiveKind::Zip));
    assert_eq!(detect_kind(b"BZh91AY", "data.tar.bz2"), None);
    assert_eq!(detect_kind(b"", "data"), None);
}

#[test]
fn sanitizes_names() {
    use RejectReason::*;
    let ok = |raw: &str| sanitize_member_name(raw.as_bytes());
    assert_eq!(ok("images/a.jpg"), Ok(Some("images/a.jpg".into())));
    assert_eq!(ok("./images//train/./a.jpg"), Ok(Some("images/train/a.jpg".into())));
    assert_eq!(ok("././a"), Ok(Some("a".into())));
    assert_eq!(ok("...hidden/..x"), Ok(Some("...hidden/..x".into())));
    assert_eq!(ok("images/"), Ok(None));
    assert_eq!(ok("./"), Ok(None));
    assert_eq!(ok("."), Ok(None));
    assert_eq!(ok("a/."), Ok(None));
    assert_eq!(ok(""), Ok(None));
    assert_eq!(ok("../evil"), Err(PathTraversal));
    assert_eq!(ok("a/../../evil"), Err(PathTraversal));
    assert_eq!(ok("a/.."), Err(PathTraversal));
    assert_eq!(ok("/etc/passwd"), Err(AbsolutePath));
    assert_eq!(ok("C:/x"), Err(AbsolutePath));
    assert_eq!(ok("C:\\x"), Err(AbsolutePath));
    assert_eq!(ok("c:x"), Err(AbsolutePath));
    assert_eq!(ok("\\\\server\\share"), Err(AbsolutePath));
    assert_eq!(ok("a\\..\\b"), Err(Backslash));
    assert_eq!(ok("a\0b"), Err(PathTraversal));
    assert_eq!(sanitize_member_name(b"a\xff.jpg"), Err(NotUtf8));
}

/// Found by `cargo xtask fuzz member_name`: a drive letter behind a leading `./` (or `.//`) used
/// to come out of normalization as the drive-relative `d:...`, a name the check refuses when it
/// is written plainly.
#[test]
fn a_drive_letter_after_normalization_is_absolute() {
    for raw in ["./d:@ta/imas/ura.jpg", ".//C:/x", "././c:x", "./C:"] {
        assert_eq!(sanitize_member_name(raw.as_bytes()), Err(RejectReason::AbsolutePath), "{raw}");
    }
    // Further down the path a colon is just a character.
    assert_eq!(sanitize_member_name(b"./a/C:x"), Ok(Some("a/C:x".into())));
}

#[test]
fn reject_codes_are_stable() {
    use RejectReason::*;
    let all = [PathTraversal, AbsolutePath, Backslash, Link, Special, NotUtf8, DuplicateName, TooLarge, Unsupported];
    let codes: Vec<&str> = all.iter().map(RejectReason::code).collect();
    assert_eq!(
        codes,
        [
            "unsafe_path",
            "absolute_path",
            "backslash_path",
            "link_member",
            "special_member",
            "name_not_utf8",
            "duplicate_member",
            "member_too_large",
            "unsupported_member"
        ]
    );
    assert!(all.iter().all(|r| !r.message().is_empty()));
}

#[test]
fn error_messages_are_user_readable() {
    let err = ArchiveError::LimitExceeded(format!("its files add up to more than {}", human_bytes(200 << 30)));
    assert_eq!(err.to_string(), "the archive is too large: its files add up to more than 200 GiB");
    assert_eq!(human_bytes(1536), "1.5 KiB");
    assert_eq!(human_bytes(12), "12 bytes");
}
