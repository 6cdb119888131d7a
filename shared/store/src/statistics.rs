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
    /// The order-independent sum of the images' content digests (the import's `content`
    /// module): summed like the counts, so a dataset's is its chunks' whatever the chunking.
    #[serde(default, skip_serializing_if = "ContentSum::is_zero")]
    pub content: ContentSum,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SplitStatistics {
    pub images: u64,
    pub annotations: u64,
    pub background_images: u64,
    pub invalid_images: u64,
    /// Valid images with a label file (empty or not): what the trainer learns from in this
    /// split.
    #[serde(default)]
    pub labelled_images: u64,
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
            mine.labelled_images += s.labelled_images;
            merge_classes(&mut mine.classes, &s.classes);
        }
        merge_classes(&mut self.classes, &other.classes);
        for (code, n) in &other.issues {
            *self.issues.entry(code.clone()).or_default() += n;
        }
        self.content.add(other.content);
    }
}

/// A sum modulo 2^128 of 16-byte digests, one per image: the same for the same images however
/// they are grouped or ordered, so chunks can sum their own and a job add the chunks' up.
/// Stored as 32 lowercase hex digits (BSON has no 128-bit integer).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ContentSum(pub u128);

impl ContentSum {
    pub fn is_zero(&self) -> bool {
        self.0 == 0
    }

    /// Adds another sum (or one image's digest, as a sum of one).
    pub fn add(&mut self, other: ContentSum) {
        self.0 = self.0.wrapping_add(other.0);
    }

    pub fn to_hex(self) -> String {
        format!("{:032x}", self.0)
    }
}

impl Serialize for ContentSum {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for ContentSum {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        u128::from_str_radix(&text, 16).map(ContentSum).map_err(serde::de::Error::custom)
    }
}

fn merge_classes(mine: &mut BTreeMap<String, ClassCounts>, other: &BTreeMap<String, ClassCounts>) {
    for (id, c) in other {
        let entry = mine.entry(id.clone()).or_default();
        entry.instances += c.instances;
        entry.images += c.images;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_sums_add_up_whatever_the_grouping_and_round_trip_as_hex() {
        let digests = [u128::MAX, 7, 1 << 100, 12345];
        let chunk = |range: std::ops::Range<usize>| {
            let mut statistics = Statistics::default();
            for &d in &digests[range] {
                statistics.content.add(ContentSum(d));
            }
            statistics
        };
        let mut by_two = chunk(0..2);
        by_two.merge(&chunk(2..4));
        let mut reversed = chunk(3..4);
        reversed.merge(&chunk(0..3));
        assert_eq!(by_two.content, reversed.content);
        assert_eq!(by_two.content, ContentSum(u128::MAX.wrapping_add(7 + (1 << 100) + 12345)));

        let json = serde_json::to_value(&by_two).unwrap();
        assert_eq!(json["content"].as_str().unwrap().len(), 32);
        let back: Statistics = serde_json::from_value(json).unwrap();
        assert_eq!(back, by_two);
        // Statistics recorded before the sum existed read as an empty sum.
        let old: Statistics = serde_json::from_value(serde_json::json!({
            "images": 1, "labels": 0, "annotations": 0, "background_images": 1, "invalid_images": 0,
            "invalid_labels": 0, "duplicate_rows_removed": 0
        }))
        .unwrap();
        assert!(old.content.is_zero());
    }
}
