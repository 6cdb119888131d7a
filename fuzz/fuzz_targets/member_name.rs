//! `sanitize_member_name` on arbitrary bytes: an accepted name is relative, `/`-separated,
//! UTF-8, and can never climb out of the folder it is written under.
#![no_main]

use libfuzzer_sys::fuzz_target;
use yds_format::archive::{sanitize_member_name, RejectReason};

fuzz_target!(|raw: &[u8]| {
    match sanitize_member_name(raw) {
        Ok(Some(name)) => {
            assert!(!name.is_empty());
            assert!(!name.starts_with('/'), "absolute: {name:?}");
            assert!(!name.contains('\\'), "backslash: {name:?}");
            assert!(!name.contains('\0'), "NUL: {name:?}");
            let b = name.as_bytes();
            assert!(!(b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':'), "drive letter: {name:?}");
            for part in name.split('/') {
                assert!(!part.is_empty() && part != "." && part != "..", "segment {part:?} in {name:?}");
            }
            // Normalizing is idempotent, and the name is the raw one minus empty and `.` parts.
            assert_eq!(sanitize_member_name(name.as_bytes()), Ok(Some(name.clone())));
            let raw = std::str::from_utf8(raw).expect("accepted names are UTF-8");
            let kept: Vec<&str> = raw.split('/').filter(|p| !p.is_empty() && *p != ".").collect();
            assert_eq!(kept.join("/"), name);
            // What a `Path` join sees: only normal components.
            let path = std::path::Path::new(&name);
            assert!(path.components().all(|c| matches!(c, std::path::Component::Normal(_))), "{name:?}");
        }
        Ok(None) => {}
        Err(RejectReason::NotUtf8) => assert!(std::str::from_utf8(raw).is_err()),
        Err(_) => {}
    }
});
