//! Statistics: counts over a set of images — one chunk's, recorded with its outcome, or (summed)
//! a whole dataset's.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Counts over a set of images: one chunk's, or (summed) a whole dataset's.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Statistics {
    pub images: u64,
    pub labels: u64,
    /// Instances in valid images.
    pub annotations: u64,
    pub background_images: u64,
    pub invalid_images: u64,
    pub invalid_labels: u64,
    pub duplicate_rows_removed: u64,
    /// Per split name.
    #[serde(default)]
    pub splits: BTreeMap<String, SplitStatistics>,
    /// Per class id (as text: BSON keys are strings).
    #[serde(default)]
    pub classes: BTreeMap<String, ClassCounts>,
    /// Per issue code, how many times it was found.
    #[serde(default)]
    pub issues: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SplitStatistics {
    pub images: u64,
    pub annotations: u64,
    pub background_images: u64,
    pub invalid_images: u64,
    /// Per class id (as text), within this split.
    #[serde(default)]
    pub classes: BTreeMap<String, ClassCounts>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClassCounts {
    pub instances: u64,
    pub images: u64,
}

impl Statistics {
    pub fn merge(&mut self, other: &Statistics) {
        self.images += other.images;
        self.labels += other.labels;
        self.annotations += other.annotations;
        self.background_images += other.background_images;
        self.invalid_images += other.invalid_images;
        self.invalid_labels += other.invalid_labels;
        self.duplicate_rows_removed += other.duplicate_rows_removed;
        for (name, s) in &other.splits {
            let mine = self.splits.entry(name.clone()).or_default();
            mine.images += s.images;
            mine.annotations += s.annotations;
            mine.background_images += s.background_images;
            mine.invalid_images += s.invalid_images;
            merge_classes(&mut mine.classes, &s.classes);
        }
        merge_classes(&mut self.classes, &other.classes);
        for (code, n) in &other.issues {
            *self.issues.entry(code.clone()).or_default() += n;
        }
    }
}

fn merge_classes(mine: &mut BTreeMap<String, ClassCounts>, other: &BTreeMap<String, ClassCounts>) {
    for (id, c) in other {
        let entry = mine.entry(id.clone()).or_default();
        entry.instances += c.instances;
        entry.images += c.images;
    }
}
