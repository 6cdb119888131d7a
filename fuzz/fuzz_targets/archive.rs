//! The archive walkers (tar, tar.gz, zip) on arbitrary bytes: never panic, and every member
//! they hand out has a safe name and exactly its declared size.
#![no_main]

use std::io::{Cursor, Read};

use libfuzzer_sys::fuzz_target;
use yds_format::archive::{sanitize_member_name, walk_tar, walk_zip, Limits};

fuzz_target!(|data: &[u8]| {
    let Some((&kind, bytes)) = data.split_first() else {
        return;
    };
    let limits = Limits { max_members: 1000, max_member_bytes: 1 << 20, max_total_bytes: 4 << 20, ..Limits::default() };
    let mut on_file = |name: &str, size: u64, reader: &mut dyn Read| -> Result<(), String> {
        assert_eq!(sanitize_member_name(name.as_bytes()), Ok(Some(name.to_owned())), "unsafe name {name:?}");
        let mut buf = Vec::new();
        match reader.read_to_end(&mut buf) {
            Ok(n) => assert_eq!(n as u64, size, "{name:?}: read {n}, declared {size}"),
            Err(e) => return Err(e.to_string()),
        }
        Ok(())
    };
    let _ = match kind % 3 {
        0 => walk_tar(bytes, false, &limits, &mut on_file),
        1 => walk_tar(bytes, true, &limits, &mut on_file),
        _ => walk_zip(Cursor::new(bytes), &limits, &mut on_file),
    };
});
