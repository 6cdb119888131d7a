//! Image documents: one per image of a dataset, annotations and issues embedded.
//!
//! The `_id` is derived from the dataset and the image's path ([`image_id`]), so a retried
//! chunk writes the same documents again instead of new ones.

use std::collections::BTreeMap;

use futures::TryStreamExt;
use mongodb::bson::{doc, Bson, Document};
use mongodb::options::{Hint, IndexOptions};
use mongodb::{Collection, Database, IndexModel};
use serde::{Deserialize, Serialize};
use yds_format::Annotation;
use yds_format::Issue;

use crate::{is_duplicate_key, StoreResult};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageDoc {
    #[serde(rename = "_id")]
    pub id: String,
    pub dataset_id: String,
    /// `{split}/{file_name}`: unique in the dataset, the pagination key.
    pub path: String,
    pub split: String,
    pub file_name: String,
    /// Displayed size, after EXIF orientation.
    pub width: u32,
    pub height: u32,
    /// Size as stored in the file header.
    pub stored_width: u32,
    pub stored_height: u32,
    /// EXIF orientation tag, when the file has one.
    #[serde(default)]
    pub orientation: Option<u16>,
    pub format: String,
    pub size_bytes: u64,
    /// BLAKE3 of the file, for exact-duplicate detection.
    pub content_hash: String,
    /// The hash's first 8 bytes as a number ([`hash_key`]): the duplicate index's key. A short
    /// number costs mongod about half of what 64 hex characters cost to index on every import.
    /// Absent in documents written before it existed (they then share the key `null`, which
    /// the full-hash check still sorts out).
    #[serde(default)]
    pub hash_key: i64,
    /// Ultralytics' verdict: the trainer would use this image.
    pub valid: bool,
    pub annotations: Vec<Annotation>,
    pub issues: Vec<Issue>,
    /// Distinct issue codes, for the `issue` filter; absent when empty, so that only images
    /// with an issue are in its (partial) index.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub issue_codes: Vec<String>,
    /// Distinct class ids among the annotations, for the `class_id` filter.
    pub class_ids: Vec<u32>,
    /// The image's label file as imported (stored at `keys::dataset_label`); `None` when it has
    /// none, when it was too large to read, and in documents written before it was recorded.
    #[serde(default)]
    pub label: Option<LabelFile>,
}

/// An image's label file, as imported byte for byte.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabelFile {
    pub size_bytes: u64,
    /// BLAKE3 of the bytes, lowercase hex: the same algorithm as the image's `content_hash`.
    pub content_hash: String,
}

/// The duplicate index's key of a content hash: its first 16 hex digits as a signed 64-bit
/// number (0 for a hash too short to have them, which the full-hash check sorts out).
pub fn hash_key(content_hash: &str) -> i64 {
    let prefix = content_hash.get(..16).unwrap_or_default();
    u64::from_str_radix(prefix, 16).map_or(0, |key| key as i64)
}

/// The deterministic id of an image: a hash of its dataset and path.
pub fn image_id(dataset_id: &str, path: &str) -> String {
    let mut hasher = blake3::Hasher::new();
    hasher.update(dataset_id.as_bytes());
    hasher.update(b"\0");
    hasher.update(path.as_bytes());
    hasher.finalize().to_hex()[..24].to_owned()
}

/// Names of the partial indexes on `images` (named: the full indexes they replaced had the
/// same keys under the default name, see [`crate::upgrade`]).
pub const ISSUES_INDEX: &str = "issues_by_split_path";
pub const INVALID_INDEX: &str = "invalid_by_split_path";

/// The owner of `images`.
#[derive(Clone, Debug)]
pub struct Images {
    collection: Collection<ImageDoc>,
}

impl Images {
    pub(crate) fn new(database: &Database) -> Self {
        Self { collection: database.collection("images") }
    }

    /// GET /datasets/{id}/images: keyset on path, each filter served by its own index. The
    /// issue and validity indexes hold only the images they find: most images have no issue
    /// and are valid, and every key not written saves mongod work on each import (a fifth of its
    /// time on `images`). `issue_codes` is absent when empty (see [`ImageDoc`]); `valid=true`
    /// pages come from the split index, nearly every entry a hit.
    pub(crate) async fn ensure_indexes(&self) -> StoreResult<()> {
        let index = |keys: Document| IndexModel::builder().keys(keys).build();
        let only = |name: &str, keys: Document, filter: Document| {
            let options = IndexOptions::builder().name(name.to_owned()).partial_filter_expression(filter).build();
            IndexModel::builder().keys(keys).options(options).build()
        };
        self.collection
            .create_indexes([
                // No index on `{dataset_id, path}`: `_id` is derived from both, so it already
                // keeps a path unique in its dataset, and pages without a split filter merge
                // this one's per-split ranges.
                index(doc! {"dataset_id": 1, "split": 1, "path": 1}),
                // Without a split filter these serve too: one range per split, merged by path.
                index(doc! {"dataset_id": 1, "split": 1, "class_ids": 1, "path": 1}),
                only(
                    ISSUES_INDEX,
                    doc! {"dataset_id": 1, "split": 1, "issue_codes": 1, "path": 1},
                    doc! {"issue_codes": {"$exists": true}},
                ),
                only(INVALID_INDEX, doc! {"dataset_id": 1, "split": 1, "valid": 1, "path": 1}, doc! {"valid": false}),
                // Exact duplicates, grouped when a job ends. Keyed by a number, not the hex
                // hash: about half the cost per import (`ImageDoc::hash_key`).
                index(doc! {"dataset_id": 1, "hash_key": 1}),
            ])
            .await?;
        Ok(())
    }

    /// Writes image documents, unordered; those written already (a retried chunk) are kept.
    pub async fn insert_many(&self, docs: &[&ImageDoc]) -> StoreResult<()> {
        if docs.is_empty() {
            return Ok(());
        }
        match self.collection.insert_many(docs.iter().copied()).ordered(false).await {
            Err(err) if !is_duplicate_key(&err) => Err(err.into()),
            _ => Ok(()),
        }
    }

    /// One image of a dataset by id, or `None`.
    pub async fn find(&self, dataset_id: &str, image_id: &str) -> StoreResult<Option<ImageDoc>> {
        Ok(self.collection.find_one(doc! {"_id": image_id, "dataset_id": dataset_id}).await?)
    }

    /// Images in `path` order after the cursor, each query served by a hinted index so the
    /// planner never falls back to scanning `_id` or sorting in memory.
    ///
    /// Every index leads with `split`: a query without a split filter names every split (`$in`),
    /// and MongoDB merges the per-split index ranges in `path` order. Four indexes fewer to
    /// maintain on every imported image than one set with and one without `split`.
    pub async fn page(&self, query: &ImageQuery) -> StoreResult<(Vec<ImageDoc>, Option<String>)> {
        let (filter, hint) = query.filter_and_hint();
        let mut items: Vec<ImageDoc> = self
            .collection
            .find(filter)
            .sort(doc! {"path": 1})
            .hint(hint)
            .limit(query.limit + 1)
            .await?
            .try_collect()
            .await?;
        let next = if items.len() as i64 > query.limit {
            items.truncate(query.limit as usize);
            items.last().map(|i| i.path.clone())
        } else {
            None
        };
        Ok((items, next))
    }

    /// Finds files with the same content hash and records the finding on each of them.
    /// Idempotent: the issues are added with `$addToSet` and have deterministic text.
    ///
    /// Streams the `{dataset_id, hash_key}` index in key order (a covered scan: a million images
    /// cost a few seconds and constant memory) and looks at runs of equal keys; only the images of
    /// such a run are then read, and grouped by their full hash (equal keys are almost always equal
    /// files, but only equal hashes count).
    pub async fn mark_duplicates(&self, dataset_id: &str) -> StoreResult<DuplicateCounts> {
        let hashes = self.collection.clone_with_type::<Document>();
        let mut cursor = hashes
            .find(doc! {"dataset_id": dataset_id})
            .sort(doc! {"dataset_id": 1, "hash_key": 1})
            .projection(doc! {"_id": 0, "hash_key": 1})
            .hint(Hint::Keys(doc! {"dataset_id": 1, "hash_key": 1}))
            .batch_size(10_000)
            .await?;
        let mut shared_keys: Vec<Bson> = Vec::new();
        let (mut previous, mut run) = (None::<Bson>, 0u64);
        while let Some(entry) = cursor.try_next().await? {
            // A document written before `hash_key` existed has none: `null`, as in the index.
            let key = entry.get("hash_key").cloned().unwrap_or(Bson::Null);
            if previous.as_ref() == Some(&key) {
                run += 1;
                if run == 2 {
                    shared_keys.push(key);
                }
            } else {
                (previous, run) = (Some(key), 1);
            }
        }
        let mut counts = DuplicateCounts::default();
        for key in shared_keys {
            let run = hashes
                .find(doc! {"dataset_id": dataset_id, "hash_key": key})
                .projection(doc! {"_id": 1, "split": 1, "path": 1, "content_hash": 1})
                .await?;
            let run: Vec<Document> = run.try_collect().await?;
            let mut by_hash: BTreeMap<String, Vec<(String, String, String)>> = BTreeMap::new();
            for image in &run {
                let get = |k: &str| image.get_str(k).unwrap_or_default().to_owned();
                by_hash.entry(get("content_hash")).or_default().push((get("_id"), get("split"), get("path")));
            }
            for (hash, members) in by_hash {
                if members.len() > 1 && !hash.is_empty() {
                    self.mark_duplicate_group(members, &mut counts).await?;
                }
            }
        }
        Ok(counts)
    }

    /// Records on each image of `members` (`(_id, split, path)`, all of the same content) which
    /// others it duplicates, and counts them.
    async fn mark_duplicate_group(
        &self,
        mut members: Vec<(String, String, String)>,
        counts: &mut DuplicateCounts,
    ) -> StoreResult<()> {
        // Sorted, so the messages (and thus `$addToSet`) are the same on every run.
        members.sort_by(|a, b| a.2.cmp(&b.2));
        for (id, split, _) in &members {
            let others = name_some(members.iter().filter(|(i, ..)| i != id).map(|(.., p)| p.as_str()));
            let same_split = members.iter().any(|(i, s, _)| i != id && s == split);
            let other_split = members.iter().any(|(_, s, _)| s != split);
            let mut issues = Vec::new();
            if same_split {
                counts.within_split += 1;
                issues.push(Issue::new("duplicate_image", format!("identical file content to {others}")));
            }
            if other_split {
                counts.cross_split += 1;
                issues.push(Issue::new(
                    "cross_split_duplicate",
                    format!("identical file content appears in another split ({others}): train/val leakage"),
                ));
            }
            let codes: Vec<&str> = issues.iter().map(|i| i.code.as_str()).collect();
            let issues = mongodb::bson::to_bson(&issues).expect("issues serialize");
            self.collection
                .update_one(
                    doc! {"_id": id},
                    doc! {"$addToSet": {"issues": {"$each": issues}, "issue_codes": {"$each": codes}}},
                )
                .await?;
        }
        Ok(())
    }
}

/// Deleting a dataset's images, batch by batch (a delete job's steps).
impl Images {
    /// How many image documents the dataset has (a count over its split index, no document read).
    pub async fn count(&self, dataset_id: &str) -> StoreResult<u64> {
        Ok(self
            .collection
            .count_documents(doc! {"dataset_id": dataset_id})
            .hint(Hint::Keys(doc! {"dataset_id": 1, "split": 1, "path": 1}))
            .await?)
    }

    /// Deletes up to `limit` of the dataset's image documents. Their ids are read from the
    /// split index first, so one call's work is bounded whatever the dataset's size.
    pub async fn delete_some(&self, dataset_id: &str, limit: i64) -> StoreResult<crate::Swept> {
        let by_split = doc! {"dataset_id": 1, "split": 1, "path": 1};
        crate::delete_some(&self.collection.clone_with_type(), doc! {"dataset_id": dataset_id}, Some(by_split), limit)
            .await
    }
}

/// One page of `GET /datasets/{id}/images`.
#[derive(Debug, Clone, Default)]
pub struct ImageQuery {
    pub dataset_id: String,
    pub split: Option<String>,
    pub class_id: Option<u32>,
    pub valid: Option<bool>,
    /// Images carrying this issue code.
    pub issue: Option<String>,
    /// Every split of the dataset: without a `split` filter, the other filters are served by
    /// their per-split indexes merged in `path` order.
    pub all_splits: Vec<String>,
    /// The `path` of the previous page's last image.
    pub after: Option<String>,
    pub limit: i64,
}

impl ImageQuery {
    /// The filter of a page's query and the index that serves it (sorted by `path`).
    pub fn filter_and_hint(&self) -> (Document, Hint) {
        let query = self;
        let mut filter = doc! {"dataset_id": &query.dataset_id};
        if let Some(split) = &query.split {
            filter.insert("split", split);
        } else {
            filter.insert("split", doc! {"$in": &query.all_splits});
        }
        // Every filter narrows the query; the most selective one present also picks the index
        // (one multikey field per index), and the others are checked on its entries.
        if let Some(class_id) = query.class_id {
            filter.insert("class_ids", class_id as i64);
        }
        if let Some(code) = &query.issue {
            filter.insert("issue_codes", code);
        }
        if let Some(valid) = query.valid {
            filter.insert("valid", valid);
        }
        let hint = if query.class_id.is_some() {
            Hint::Keys(doc! {"dataset_id": 1, "split": 1, "class_ids": 1, "path": 1})
        } else if query.issue.is_some() {
            Hint::Name(ISSUES_INDEX.to_owned())
        } else if query.valid == Some(false) {
            Hint::Name(INVALID_INDEX.to_owned())
        } else {
            // Also `valid=true`: nearly every image is valid, so the split index's entries are
            // nearly all hits.
            Hint::Keys(doc! {"dataset_id": 1, "split": 1, "path": 1})
        };
        if let Some(after) = &query.after {
            filter.insert("path", doc! {"$gt": after});
        }
        (filter, hint)
    }
}

/// Exact duplicates found among a dataset's images.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DuplicateCounts {
    /// Images whose content also appears elsewhere in the same split.
    pub within_split: u64,
    /// Images whose content also appears in another split (train/val leakage).
    pub cross_split: u64,
}

/// Up to five names, then how many more.
fn name_some<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let names: Vec<&str> = names.collect();
    match names.len() {
        0..=5 => names.join(", "),
        n => format!("{} and {} more", names[..5].join(", "), n - 5),
    }
}

#[cfg(test)]
mod tests {
    /// The codes this module puts on images are in the one list the `issue=` filter takes.
    #[test]
    fn duplicate_codes_are_image_issue_codes() {
        for code in ["duplicate_image", "cross_split_duplicate"] {
            assert!(yds_format::issue::is_image_issue_code(code), "{code}");
        }
    }
}
