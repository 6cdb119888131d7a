//! `inspect_image` on arbitrary bytes: never panics, and its verdict is consistent.
#![no_main]

use libfuzzer_sys::fuzz_target;
use yds_format::image_file::{inspect_image, MIN_IMAGE_SIDE};

fuzz_target!(|bytes: &[u8]| {
    let info = inspect_image(bytes, "f.jpg");
    assert_eq!(info.content_hash.len(), 64);
    assert_eq!(info.valid, info.issues.iter().all(|i| !is_rejection(&i.code)), "{info:?}");
    if info.valid {
        assert!(info.width >= MIN_IMAGE_SIDE && info.height >= MIN_IMAGE_SIDE, "{info:?}");
        assert_ne!(info.format, "unknown");
    }
    let (w, h, sw, sh) = (info.width, info.height, info.stored_width, info.stored_height);
    assert!((w, h) == (sw, sh) || (w, h) == (sh, sw), "{info:?}");
    if let Some(o) = info.orientation {
        assert!((1..=8).contains(&o));
    }
});

fn is_rejection(code: &str) -> bool {
    matches!(code, "corrupt_image" | "image_too_small" | "unsupported_format" | "jpeg_truncated")
}
