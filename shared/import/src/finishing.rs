//! What a job's end adds to its dataset beyond its chunks' sums: whether Ultralytics can train
//! on it (the findings `no_train_split` and `no_labels`), and whether it repeats one of the
//! tenant's earlier datasets (`duplicate_dataset`, found by the dataset's content hash).
//!
//! The content hash is exact under at-least-once delivery and costs no pass over the images:
//! each image adds a 16-byte digest of its split, file name, image bytes and label bytes
//! ([`image_digest`]) to its chunk's [`ContentSum`], recorded once with the chunk's outcome
//! (the coordinator's conditional update), and the job adds up its chunks' sums. A sum does not
//! depend on how the images were cut into chunks nor on the order they finished, so the same
//! source imported twice — other chunk sizes, early chunks or not — gives the same hash; the
//! classes and task are mixed in at the end ([`content_hash`]).
//!
//! Nothing here reads or writes: the coordinator asks and records.

use yds_format::Task;
use yds_store::{ContentSum, Finding, Statistics};

/// The split Ultralytics trains on.
const TRAIN: &str = "train";

/// What an image's label file contributes to its digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelContent<'a> {
    /// No label file.
    None,
    /// Read: the BLAKE3 hex of its bytes.
    Read(&'a str),
    /// Too large to read: its size.
    TooLarge(u64),
    /// It could not be read.
    Unreadable,
}

/// One image's digest: the first 16 bytes of BLAKE3 over its split, file name, image hash and
/// label content, each field delimited so that no two images' inputs run together.
pub fn image_digest(split: &str, file_name: &str, image_hash: &str, label: LabelContent<'_>) -> ContentSum {
    let mut hasher = blake3::Hasher::new();
    for field in [split, file_name, image_hash] {
        hasher.update(&(field.len() as u64).to_le_bytes());
        hasher.update(field.as_bytes());
    }
    let label = match label {
        LabelContent::None => "none".to_owned(),
        LabelContent::Read(hash) => format!("read:{hash}"),
        LabelContent::TooLarge(size) => format!("too_large:{size}"),
        LabelContent::Unreadable => "unreadable".to_owned(),
    };
    hasher.update(&(label.len() as u64).to_le_bytes());
    hasher.update(label.as_bytes());
    let bytes: [u8; 16] = hasher.finalize().as_bytes()[..16].try_into().expect("16 of 32 bytes");
    ContentSum(u128::from_le_bytes(bytes))
}

/// The dataset's content hash (64 lowercase hex digits, like an image's): its images' summed
/// digests with their count, its task and its classes.
pub fn content_hash(task: Option<Task>, classes: &[String], statistics: &Statistics) -> String {
    let mut hasher = blake3::Hasher::new();
    hasher.update(b"yds dataset content v1\0");
    hasher.update(&statistics.images.to_le_bytes());
    hasher.update(&statistics.content.0.to_le_bytes());
    let task = task.map_or("", Task::as_str);
    for field in std::iter::once(task).chain(classes.iter().map(String::as_str)) {
        hasher.update(&(field.len() as u64).to_le_bytes());
        hasher.update(field.as_bytes());
    }
    hasher.finalize().to_hex().to_string()
}

/// `no_train_split` when no split `train` holds a valid image with a label file, saying why,
/// and `no_labels` when no image has a label file at all. Empty: the dataset is trainable.
pub fn training_findings(split_names: &[String], statistics: &Statistics) -> Vec<Finding> {
    let cannot = "Ultralytics cannot train on this dataset; its images can still be browsed and checked";
    let mut findings = Vec::new();
    let train = statistics.splits.get(TRAIN).cloned().unwrap_or_default();
    let why = if !split_names.iter().any(|name| name == TRAIN) {
        Some(format!("the dataset YAML names no `train:` split (it is absent or empty): {cannot}"))
    } else if train.images == 0 {
        Some(format!("split `train` has no images: {cannot}"))
    } else if statistics.labels == 0 {
        Some(format!("no image has a label file: {cannot}"))
    } else if train.labelled_images == 0 {
        Some(format!(
            "no valid image of split `train` has a label file (its {} images are background or invalid \
             images): {cannot}",
            train.images
        ))
    } else {
        None
    };
    findings.extend(why.map(|why| Finding::new("", "no_train_split", why)));
    if statistics.labels == 0 {
        let where_labels_go = "no `labels/` folder beside `images/`, or no .txt files in it";
        let message = match statistics.images {
            0 => format!("no label file was found ({where_labels_go}), and no image either"),
            images => {
                format!(
                    "no image has a label file ({where_labels_go}): each of the {images} images is a background image"
                )
            }
        };
        findings.push(Finding::new("", "no_labels", message));
    }
    findings
}

/// `duplicate_dataset`: the dataset has the same content hash as the tenant's dataset `name`
/// (`id`), imported before.
pub fn duplicate_finding(name: &str, id: &str) -> Finding {
    let message = format!(
        "the same images, label files and classes as dataset `{name}` (id {id}), imported before: this \
         import is a copy of it"
    );
    Finding::new("", "duplicate_dataset", message)
}

#[cfg(test)]
mod tests {
    use yds_store::SplitStatistics;

    use super::*;

    fn statistics(labels: u64, train: Option<(u64, u64)>) -> Statistics {
        let mut statistics = Statistics { images: 10, labels, ..Statistics::default() };
        if let Some((images, labelled_images)) = train {
            statistics
                .splits
                .insert(TRAIN.into(), SplitStatistics { images, labelled_images, ..SplitStatistics::default() });
        }
        statistics
    }

    fn codes(findings: &[Finding]) -> Vec<&str> {
        findings.iter().map(|f| f.code.as_str()).collect()
    }

    fn names(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn a_train_split_with_a_labelled_image_is_trainable() {
        assert!(training_findings(&names(&["train", "val"]), &statistics(3, Some((5, 1)))).is_empty());
    }

    #[test]
    fn each_reason_a_dataset_cannot_be_trained_on_is_said() {
        let val_only = training_findings(&names(&["val"]), &statistics(3, None));
        assert_eq!(codes(&val_only), ["no_train_split"]);
        assert!(val_only[0].message.starts_with("the dataset YAML names no `train:` split"), "{}", val_only[0].message);

        let unlabelled = training_findings(&names(&["train", "val"]), &statistics(0, Some((6, 0))));
        assert_eq!(codes(&unlabelled), ["no_train_split", "no_labels"]);
        assert!(unlabelled[0].message.starts_with("no image has a label file: Ultralytics cannot train"));
        assert!(unlabelled[1].message.contains("each of the 10 images is a background image"));

        let empty_train = training_findings(&names(&["train", "val"]), &statistics(2, Some((0, 0))));
        assert_eq!(codes(&empty_train), ["no_train_split"]);
        assert!(empty_train[0].message.starts_with("split `train` has no images"));
        let nothing = Statistics::default();
        let nothing = training_findings(&names(&["train", "val"]), &nothing);
        assert_eq!(codes(&nothing), ["no_train_split", "no_labels"]);
        assert!(nothing[0].message.starts_with("split `train` has no images"));
        assert!(nothing[1].message.ends_with("and no image either"), "{}", nothing[1].message);

        let background_train = training_findings(&names(&["train", "val"]), &statistics(2, Some((4, 0))));
        assert!(background_train[0].message.contains("its 4 images are background or invalid"));

        let neither = training_findings(&names(&["val"]), &statistics(0, None));
        assert_eq!(codes(&neither), ["no_train_split", "no_labels"]);
    }

    #[test]
    fn digests_tell_apart_every_field_and_not_the_order_of_images() {
        let base = image_digest("train", "a.jpg", "h1", LabelContent::Read("l1"));
        for other in [
            image_digest("val", "a.jpg", "h1", LabelContent::Read("l1")),
            image_digest("train", "b.jpg", "h1", LabelContent::Read("l1")),
            image_digest("train", "a.jpg", "h2", LabelContent::Read("l1")),
            image_digest("train", "a.jpg", "h1", LabelContent::Read("l2")),
            image_digest("train", "a.jpg", "h1", LabelContent::None),
            image_digest("train", "a.jpg", "h1", LabelContent::TooLarge(5)),
            image_digest("train", "a.jpg", "h1", LabelContent::Unreadable),
            // Fields are delimited: moving a character from one to the next changes the digest.
            image_digest("trai", "na.jpg", "h1", LabelContent::Read("l1")),
        ] {
            assert_ne!(other, base);
        }
        assert_eq!(base, image_digest("train", "a.jpg", "h1", LabelContent::Read("l1")));
    }

    #[test]
    fn the_content_hash_is_the_same_however_images_were_chunked() {
        let digests: Vec<ContentSum> =
            (0..7).map(|n| image_digest("train", &format!("{n}.jpg"), "h", LabelContent::None)).collect();
        let (task, classes) = (Some(Task::Detect), names(&["cat", "dog"]));
        // Chunks as `(first, end)` image numbers.
        let chunked = |cuts: &[(usize, usize)]| {
            let mut total = Statistics::default();
            for &(first, end) in cuts {
                let mut chunk = Statistics { images: (end - first) as u64, ..Statistics::default() };
                for digest in &digests[first..end] {
                    chunk.content.add(*digest);
                }
                total.merge(&chunk);
            }
            content_hash(task, &classes, &total)
        };
        let whole = chunked(&[(0, 7)]);
        assert_eq!(whole.len(), 64);
        assert_eq!(whole, chunked(&[(3, 7), (0, 3)]));
        assert_eq!(whole, chunked(&[(0, 1), (1, 2), (2, 7)]));
        assert_ne!(whole, chunked(&[(0, 6)]), "an image fewer");
        let mut total = Statistics { images: 7, ..Statistics::default() };
        digests.iter().for_each(|d| total.content.add(*d));
        assert_eq!(content_hash(task, &classes, &total), whole);
        assert_ne!(content_hash(task, &names(&["cat", "wolf"]), &total), whole, "other classes, other content");
        assert_ne!(content_hash(Some(Task::Segment), &classes, &total), whole, "another task");
    }

    #[test]
    fn the_duplicate_finding_names_the_earlier_dataset() {
        let finding = duplicate_finding("coco8 first", "abc123");
        assert_eq!(finding.code, "duplicate_dataset");
        assert!(finding.message.contains("`coco8 first` (id abc123)"), "{}", finding.message);
    }
}
