//! `parse_data_yaml` on arbitrary text: never panics, stays bounded, and what it accepts obeys
//! the documented limits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use yds_format::data_yaml::{parse_data_yaml, MAX_CLASSES};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(config) = parse_data_yaml(text) {
        assert!(!config.names.is_empty() && config.names.len() <= MAX_CLASSES);
        // At least one split, in the order train, val, test, minival; val beside train.
        assert!(!config.splits.is_empty());
        let names: Vec<&str> = config.splits.iter().map(|s| s.name.as_str()).collect();
        let order = ["train", "val", "test", "minival"];
        let ranks: Vec<usize> =
            names.iter().map(|n| order.iter().position(|o| o == n).expect("a known split")).collect();
        assert!(ranks.windows(2).all(|w| w[0] < w[1]), "{names:?}");
        if names[0] == "train" {
            assert_eq!(names.get(1), Some(&"val"));
        }
        assert!(config.warnings.iter().all(|w| yds_format::data_yaml::YAML_WARNING_CODES.contains(&w.code.as_str())));
        for split in &config.splits {
            assert!(!split.sources.is_empty());
            assert!(split.sources.iter().all(|s| !s.trim().is_empty()));
        }
        if let Some((keypoints, dims)) = config.kpt_shape {
            assert!((1..=100_000).contains(&keypoints) && (dims == 2 || dims == 3));
            if let Some(flip) = &config.flip_idx {
                assert_eq!(flip.len(), keypoints);
                assert!(flip.iter().all(|&i| i < keypoints));
            }
        }
    }
});
