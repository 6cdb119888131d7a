//! `parse_label_file` with rules derived from the input: the first bytes pick the task, the
//! class count and the keypoint shape (within what `parse_data_yaml` accepts), the rest is the
//! label file's text (lossy UTF-8, as the ingest reads it).
#![no_main]

use libfuzzer_sys::fuzz_target;
use yds_format::labels::{infer_task, parse_label_file, row_token_counts, LabelRules, MAX_FILE_ISSUES};
use yds_format::Task;

fuzz_target!(|data: &[u8]| {
    let [task, classes, kpt, rest @ ..] = data else {
        return;
    };
    let task = match task % 5 {
        0 => Task::Detect,
        1 => Task::Segment,
        2 => Task::Pose,
        3 => Task::Obb,
        // Inferred from the rows, as the import does for a dataset without `task:`.
        _ => infer_task(row_token_counts(&String::from_utf8_lossy(rest)), None),
    };
    // 0..=255 classes: 0 is not a valid dataset but the parser must not mind.
    let names: Vec<String> = (0..*classes as usize).map(|i| format!("c{i}")).collect();
    // Keypoint shapes the YAML allows: 1..=100_000 keypoints of 2 or 3 dims; the high bit of
    // `kpt` off means no `kpt_shape` (a pose file then reports `kpt_shape_missing`).
    let kpt_shape = (kpt & 0x80 != 0).then(|| {
        let keypoints = match kpt & 0x3f {
            0 => 100_000,
            n => n as usize,
        };
        (keypoints, 2 + (kpt >> 6 & 1) as usize)
    });
    let text = String::from_utf8_lossy(rest);
    let rules = LabelRules { task, names, kpt_shape };
    let parsed = parse_label_file(&text, &rules);

    let lines = text.lines().count().max(text.split(['\n', '\r']).count());
    assert!(parsed.annotations.len() <= lines, "more annotations than lines");
    if parsed.corrupt {
        assert!(parsed.annotations.is_empty());
        assert_eq!(parsed.duplicates_removed, 0);
    }
    // Errors and warnings are each capped, plus one `issues_truncated`.
    assert!(parsed.issues.len() <= MAX_FILE_ISSUES + 1, "{} issues", parsed.issues.len());
    for annotation in &parsed.annotations {
        assert!((annotation.class_id as usize) < rules.names.len());
        assert_eq!(annotation.class_name, rules.names[annotation.class_id as usize]);
    }
});
