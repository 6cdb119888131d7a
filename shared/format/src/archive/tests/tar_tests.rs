use super::*;

#[test]
fn tar_gz_delivers_exact_contents_in_order() {
    let tar =
        TarBuf::new().file("b.txt", b"second? no, first").file("a.txt", b"").file("c/d.txt", &[7u8; 70_000]).finish();
    let (walk, files) = tar_walk(&gzip(&tar), true, &Limits::default());
    let walk = walk.unwrap();
    assert_eq!(
        files,
        vec![
            ("b.txt".to_owned(), b"second? no, first".to_vec()),
            ("a.txt".to_owned(), Vec::new()),
            ("c/d.txt".to_owned(), vec![7u8; 70_000]),
        ]
    );
    assert_eq!(walk, Walk { members: 3, bytes: 17 + 70_000, rejected: vec![], rejected_more: 0 });
}

#[test]
fn tar_refuses_unsafe_members_and_keeps_the_rest() {
    let tar = TarBuf::new()
        .file("ok/1.txt", b"one")
        .raw(b"../evil", EntryType::Regular, b"evil")
        .raw(b"/etc/passwd", EntryType::Regular, b"root")
        .raw(b"a\\b.txt", EntryType::Regular, b"bs")
        .raw(b"bad\xff.txt", EntryType::Regular, b"latin1")
        .link("ok/sym", "/etc/shadow", EntryType::Symlink)
        .link("ok/hard", "ok/1.txt", EntryType::Link)
        .raw(b"dev/null", EntryType::Char, b"")
        .raw(b"pipe", EntryType::Fifo, b"")
        .raw(b"../up/", EntryType::Directory, b"")
        .raw(b"./ok/1.txt", EntryType::Regular, b"dup")
        .file("ok/2.txt", b"two")
        .finish();
    let (walk, files) = tar_walk(&tar, false, &Limits::default());
    let walk = walk.unwrap();
    assert_eq!(files, vec![("ok/1.txt".to_owned(), b"one".to_vec()), ("ok/2.txt".to_owned(), b"two".to_vec())]);
    assert_eq!(
        codes(&walk),
        [
            ("../evil", "unsafe_path"),
            ("/etc/passwd", "absolute_path"),
            ("a\\b.txt", "backslash_path"),
            ("bad\u{fffd}.txt", "name_not_utf8"),
            ("ok/sym", "link_member"),
            ("ok/hard", "link_member"),
            ("dev/null", "special_member"),
            ("pipe", "special_member"),
            ("../up/", "unsafe_path"),
            ("./ok/1.txt", "duplicate_member"),
        ]
    );
    assert_eq!((walk.members, walk.bytes), (2, 6));
}

#[test]
fn tar_skips_directories_and_normalizes_prefixes() {
    let tar = TarBuf::new()
        .raw(b"./", EntryType::Directory, b"")
        .raw(b"./data/", EntryType::Directory, b"")
        .raw(b"./data/images/", EntryType::Directory, b"")
        .raw(b"./data/images/a.jpg", EntryType::Regular, b"jpg")
        .raw(b"data//labels/a.txt", EntryType::Regular, b"0 0.5 0.5 1 1\n")
        .raw(b"old-style-dir/", EntryType::Regular, b"")
        .finish();
    let (walk, files) = tar_walk(&tar, false, &Limits::default());
    assert!(walk.unwrap().rejected.is_empty());
    assert_eq!(names(&files), ["data/images/a.jpg", "data/labels/a.txt"]);
}

#[test]
fn tar_reads_gnu_and_pax_long_names() {
    let long = format!("{}/{}.jpg", "d".repeat(120), "f".repeat(150));
    let pax = format!("{}/image.png", "p".repeat(200));
    let tar = TarBuf::new().file(&long, b"gnu").pax_file(&pax, b"pax").file("after.txt", b"x").finish();
    let (walk, files) = tar_walk(&tar, false, &Limits::default());
    walk.unwrap();
    assert_eq!(files, vec![(long, b"gnu".to_vec()), (pax, b"pax".to_vec()), ("after.txt".to_owned(), b"x".to_vec())]);
}

#[test]
fn tar_refuses_oversized_member_without_reading_it() {
    let tar = TarBuf::new().file("big.bin", &[1u8; 5000]).file("small.txt", b"ok").finish();
    let limits = Limits { max_member_bytes: 4096, ..Limits::default() };
    let (walk, files) = tar_walk(&tar, false, &limits);
    assert_eq!(codes(&walk.unwrap()), [("big.bin", "member_too_large")]);
    assert_eq!(names(&files), ["small.txt"]);
}

#[test]
fn tar_stops_at_member_and_total_limits() {
    let tar = TarBuf::new().file("1", b"aa").file("2", b"bb").file("3", b"cc").finish();
    let (walk, files) = tar_walk(&tar, false, &Limits { max_members: 2, ..Limits::default() });
    assert!(matches!(walk, Err(ArchiveError::LimitExceeded(m)) if m.contains("more than 2 members")));
    assert_eq!(files.len(), 2);

    let (walk, files) = tar_walk(&tar, false, &Limits { max_total_bytes: 5, ..Limits::default() });
    assert!(matches!(walk, Err(ArchiveError::LimitExceeded(_))));
    assert_eq!(files.len(), 2);
}

#[test]
fn tar_caps_the_stream_even_for_skipped_members() {
    // A 1 MiB member refused as too large still has to be inflated to be skipped.
    let tar = TarBuf::new().file("huge.bin", &vec![0u8; 1 << 20]).file("after", b"x").finish();
    let limits = Limits { max_members: 4, max_member_bytes: 10, max_total_bytes: 10, ..Limits::default() };
    let (walk, files) = tar_walk(&gzip(&tar), true, &limits);
    assert!(matches!(walk, Err(ArchiveError::LimitExceeded(m)) if m.contains("expands")));
    assert!(files.is_empty());
}

#[test]
fn tar_refuses_a_huge_gnu_long_name() {
    let name = "n".repeat(2 << 20);
    let tar = TarBuf::new().file(&name, b"x").finish();
    let (walk, files) = tar_walk(&tar, false, &Limits::default());
    assert!(matches!(walk, Err(ArchiveError::Corrupt(m)) if m.contains("long name")));
    assert!(files.is_empty());
}

#[test]
fn tar_keeps_the_first_thousand_rejections() {
    let mut tar = TarBuf::new();
    for i in 0..1005 {
        tar.link(&format!("l{i}"), "target", EntryType::Symlink);
    }
    let (walk, _) = tar_walk(&tar.finish(), false, &Limits::default());
    let walk = walk.unwrap();
    assert_eq!((walk.rejected.len(), walk.rejected_more), (1000, 5));
    assert_eq!(walk.rejected[999].name, "l999");
}

#[test]
fn truncated_gzip_is_corrupt() {
    let tar = TarBuf::new().file("a.bin", &noise(200_000)).finish();
    let gz = gzip(&tar);
    for cut in [5, 40, gz.len() / 2, gz.len() - 4] {
        let (walk, _) = tar_walk(&gz[..cut], true, &Limits::default());
        assert!(matches!(walk, Err(ArchiveError::Corrupt(_))), "cut at {cut}: {walk:?}");
    }
}

#[test]
fn damaged_gzip_checksum_is_corrupt() {
    let mut gz = gzip(&TarBuf::new().file("a.txt", b"hello").finish());
    let crc = gz.len() - 8;
    gz[crc] ^= 0xff;
    let (walk, _) = tar_walk(&gz, true, &Limits::default());
    assert!(matches!(walk, Err(ArchiveError::Corrupt(_))), "{walk:?}");
}

#[test]
fn truncated_tar_is_corrupt_even_when_the_callback_swallows_it() {
    let tar = TarBuf::new().file("a.bin", &[9u8; 5000]).finish();
    let cut = &tar[..512 + 3000];
    let mut calls = 0;
    let mut on_file = |_: &str, _: u64, reader: &mut dyn Read| -> Result<(), String> {
        calls += 1;
        let _ = io::copy(reader, &mut io::sink());
        Ok(())
    };
    let walk = walk_tar(cut, false, &Limits::default(), &mut on_file);
    assert!(matches!(walk, Err(ArchiveError::Corrupt(m)) if m.contains("a.bin")));
    assert_eq!(calls, 1);
    // A header cut in half.
    let (walk, _) = tar_walk(&tar[..700], false, &Limits::default());
    assert!(walk.is_err());
    // Garbage.
    let (walk, _) = tar_walk(&[0x55u8; 2048], false, &Limits::default());
    assert!(matches!(walk, Err(ArchiveError::Corrupt(_))), "{walk:?}");
}

#[test]
fn callback_error_propagates_and_early_stop_is_fine() {
    let tar = TarBuf::new().file("a.txt", &[1u8; 3000]).file("b.txt", b"bee").file("c.txt", b"sea").finish();
    let mut seen = Vec::new();
    let mut on_file = |name: &str, _: u64, reader: &mut dyn Read| -> Result<(), String> {
        let mut first = [0u8; 3];
        reader.read_exact(&mut first).unwrap();
        seen.push((name.to_owned(), first));
        if name == "c.txt" {
            return Err("label file is not YOLO".into());
        }
        Ok(())
    };
    let walk = walk_tar(&gzip(&tar)[..], true, &Limits::default(), &mut on_file);
    assert!(matches!(walk, Err(ArchiveError::Callback(m)) if m == "label file is not YOLO"));
    assert_eq!(seen, [("a.txt".into(), [1, 1, 1]), ("b.txt".into(), *b"bee"), ("c.txt".into(), *b"sea")]);
}

/// Yields `good` bytes, then fails like a dying disk.
struct Failing<'a> {
    data: &'a [u8],
    good: usize,
}

impl Read for Failing<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.good == 0 {
            return Err(io::Error::other("device went away"));
        }
        let n = buf.len().min(self.good).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        self.good -= n;
        Ok(n)
    }
}

impl Seek for Failing<'_> {
    fn seek(&mut self, _: io::SeekFrom) -> io::Result<u64> {
        Err(io::Error::other("device went away"))
    }
}

#[test]
fn source_failure_is_io_not_corrupt() {
    let tar = TarBuf::new().file("a.bin", &noise(100_000)).finish();
    for gz in [false, true] {
        let bytes = if gz { gzip(&tar) } else { tar.clone() };
        let (walk, _) =
            collect(|on_file| walk_tar(Failing { data: &bytes, good: 600 }, gz, &Limits::default(), on_file));
        assert!(matches!(&walk, Err(ArchiveError::Io(e)) if e.to_string() == "device went away"), "{walk:?}");
    }
    let (walk, _) = collect(|on_file| walk_zip(Failing { data: b"", good: 0 }, &Limits::default(), on_file));
    assert!(matches!(walk, Err(ArchiveError::Io(_))), "{walk:?}");
}

#[test]
fn concatenated_gzip_members_and_trailing_padding() {
    let tar = TarBuf::new().file("a.bin", &noise(30_000)).file("b.txt", b"bee").finish();
    // Split at an arbitrary point, not on a tar block boundary.
    let mut gz = gzip(&tar[..12_345]);
    gz.extend(gzip(&tar[12_345..]));
    let (walk, files) = tar_walk(&gz, true, &Limits::default());
    walk.unwrap();
    assert_eq!(files, vec![("a.bin".to_owned(), noise(30_000)), ("b.txt".to_owned(), b"bee".to_vec())]);

    // Zero padding after the last member is ignored, as gzip -d does.
    let mut padded = gzip(&tar);
    padded.extend([0u8; 4096]);
    let (walk, files) = tar_walk(&padded, true, &Limits::default());
    assert_eq!(walk.unwrap().members, 2);
    assert_eq!(files.len(), 2);

    // A second member that is itself damaged is not ignored.
    let mut bad = gzip(&tar[..12_345]);
    bad.extend(&gzip(&tar[12_345..])[..40]);
    let (walk, _) = tar_walk(&bad, true, &Limits::default());
    assert!(matches!(walk, Err(ArchiveError::Corrupt(_))), "{walk:?}");
}

#[test]
fn sparse_member_is_refused_without_expanding_it() {
    // One stored byte at the end of a claimed 1 PiB file: expanding it would never finish.
    let mut header = Header::new_gnu();
    header.as_old_mut().name[..9].copy_from_slice(b"holes.bin");
    header.set_entry_type(EntryType::GNUSparse);
    header.set_size(512);
    header.set_mode(0o644);
    let gnu = header.as_gnu_mut().unwrap();
    gnu.set_real_size(1 << 50);
    gnu.sparse[0].set_offset((1 << 50) - 512);
    gnu.sparse[0].set_length(512);
    header.set_cksum();
    let mut tar = TarBuf::new();
    tar.0.append(&header, &[1u8; 512][..]).unwrap();
    tar.file("after.txt", b"after");
    let (walk, files) = tar_walk(&tar.finish(), false, &Limits::default());
    assert_eq!(codes(&walk.unwrap()), [("holes.bin", "special_member")]);
    assert_eq!(names(&files), ["after.txt"]);
}
