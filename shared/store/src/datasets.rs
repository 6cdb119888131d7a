//! Datasets: what an import produces, and the statistics users browse.

use std::collections::BTreeMap;

use futures::TryStreamExt;
use mongodb::bson::{doc, to_bson, DateTime};
use mongodb::{Collection, Database, IndexModel};
use serde::{Deserialize, Serialize};
use yds_format::Task;

use crate::findings::Finding;
use crate::images::DuplicateCounts;
use crate::statistics::Statistics;
use crate::{is_duplicate_key, StoreResult};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DatasetStatus {
    Importing,
    Ready,
    Failed,
    /// Being deleted by a delete job (`last_job_id`): answered as missing everywhere, from the
    /// moment the deletion is asked for.
    Deleting,
}

/// Why a dataset failed: the finding its import failed with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    pub code: String,
    pub message: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DatasetDoc {
    #[serde(rename = "_id")]
    pub id: String,
    pub tenant: String,
    pub name: String,
    pub status: DatasetStatus,
    pub job_id: String,
    pub created_at: DateTime,
    #[serde(default)]
    pub task: Option<Task>,
    #[serde(default)]
    pub classes: Vec<String>,
    /// Pose datasets: keypoints per instance and values per keypoint.
    #[serde(default)]
    pub kpt_shape: Option<[u32; 2]>,
    /// Split names in the YAML's order.
    #[serde(default)]
    pub split_names: Vec<String>,
    /// Filled when the import ends.
    #[serde(default, rename = "stats")]
    pub statistics: Option<Statistics>,
    /// Exact duplicate files, found when the import ends.
    #[serde(default)]
    pub duplicates: Option<DuplicateCounts>,
    /// Dataset-level findings from planning (orphan labels, missing list entries...): a sample.
    #[serde(default)]
    pub findings: Vec<Finding>,
    /// Every dataset-level finding code with its count.
    #[serde(default)]
    pub finding_counts: std::collections::BTreeMap<String, u64>,
    /// The newest job of any kind on the dataset: its import, then its delete job. Absent in
    /// records written before it existed (their import, `job_id`, is then the newest).
    #[serde(default)]
    pub last_job_id: Option<String>,
    /// Set when the dataset failed: the finding its import failed with.
    #[serde(default)]
    pub failure: Option<Failure>,
    /// Pose datasets: each keypoint's mirror keypoint (`flip_idx:` of the YAML).
    #[serde(default)]
    pub flip_idx: Option<Vec<u32>>,
    /// Pose datasets: per class index (as text: BSON keys are strings), its keypoint names
    /// (`kpt_names:` of the YAML).
    #[serde(default)]
    pub kpt_names: Option<BTreeMap<String, Vec<String>>>,
    /// Whether Ultralytics can train on it: set when the import ends, false with the finding
    /// `no_train_split` (no split `train` holding a labelled image). Absent before the end,
    /// and in records written before it existed.
    #[serde(default)]
    pub trainable: Option<bool>,
    /// The content hash of what the import read (images, label files, classes), set as the
    /// import ends when every chunk was imported: equal for the same dataset imported twice.
    #[serde(default)]
    pub content_hash: Option<String>,
}

impl DatasetDoc {
    /// The newest job of any kind on the dataset.
    pub fn last_job_id(&self) -> &str {
        self.last_job_id.as_deref().unwrap_or(&self.job_id)
    }
}

/// Matches a dataset that is not being deleted: every lookup on behalf of a tenant uses it, so
/// a deleting dataset is missing to them.
fn visible() -> mongodb::bson::Document {
    doc! {"status": {"$ne": "deleting"}}
}

/// Position after the last dataset of a page: `(created_at ms, id)`.
pub type DatasetCursor = (i64, String);

/// The owner of `datasets`.
#[derive(Clone, Debug)]
pub struct Datasets {
    collection: Collection<DatasetDoc>,
}

impl Datasets {
    pub(crate) fn new(database: &Database) -> Self {
        Self { collection: database.collection("datasets") }
    }

    pub(crate) async fn ensure_indexes(&self) -> StoreResult<()> {
        // GET /datasets: a tenant's datasets, newest first, keyset on (created_at, _id).
        let newest_first = IndexModel::builder().keys(doc! {"tenant": 1, "created_at": -1, "_id": -1}).build();
        // GET /datasets?name=PREFIX: the names in the prefix's range, then newest first.
        let by_name = IndexModel::builder().keys(doc! {"tenant": 1, "name": 1, "created_at": -1, "_id": -1}).build();
        // The import's end: a tenant's earlier dataset of the same content (`duplicate_dataset`).
        let by_content =
            IndexModel::builder().keys(doc! {"tenant": 1, "content_hash": 1, "created_at": 1, "_id": 1}).build();
        self.collection.create_indexes([newest_first, by_name, by_content]).await?;
        Ok(())
    }

    /// Records a dataset being imported; a dataset recorded already (a repeated request) is kept.
    pub async fn insert(&self, dataset: &DatasetDoc) -> StoreResult<()> {
        match self.collection.insert_one(dataset).await {
            Err(err) if !is_duplicate_key(&err) => Err(err.into()),
            _ => Ok(()),
        }
    }

    pub async fn find(&self, id: &str) -> StoreResult<Option<DatasetDoc>> {
        Ok(self.collection.find_one(doc! {"_id": id}).await?)
    }

    /// A tenant's dataset; another tenant's, and one being deleted, are reported as missing.
    pub async fn find_for_tenant(&self, tenant: &str, id: &str) -> StoreResult<Option<DatasetDoc>> {
        let mut filter = doc! {"_id": id, "tenant": tenant};
        filter.extend(visible());
        Ok(self.collection.find_one(filter).await?)
    }

    /// One page of a tenant's datasets (those whose name starts with `name_prefix`, when given,
    /// case-sensitively), newest first, and the position after it if more follow. Datasets
    /// being deleted are left out.
    pub async fn page(
        &self,
        tenant: &str,
        name_prefix: Option<&str>,
        after: Option<DatasetCursor>,
        limit: i64,
    ) -> StoreResult<(Vec<DatasetDoc>, Option<DatasetCursor>)> {
        let mut filter = doc! {"tenant": tenant};
        filter.extend(visible());
        if let Some(prefix) = name_prefix {
            // An anchored regex of literal characters: MongoDB reads it as the index range of
            // names starting with the prefix.
            filter.insert("name", doc! {"$regex": format!("^{}", regex_literal(prefix))});
        }
        if let Some((millis, id)) = after {
            let at = DateTime::from_millis(millis);
            filter.insert("$or", vec![doc! {"created_at": {"$lt": at}}, doc! {"created_at": at, "_id": {"$lt": id}}]);
        }
        let sort = doc! {"created_at": -1, "_id": -1};
        let mut items: Vec<DatasetDoc> =
            self.collection.find(filter).sort(sort).limit(limit + 1).await?.try_collect().await?;
        let next = if items.len() as i64 > limit {
            items.truncate(limit as usize);
            items.last().map(|d| (d.created_at.timestamp_millis(), d.id.clone()))
        } else {
            None
        };
        Ok((items, next))
    }

    /// Records what chunks read from the dataset (classes, task, splits, `kpt_shape`); the same
    /// values whenever planning repeats it.
    pub async fn record_config(&self, id: &str, config: &ConfigRecord<'_>) -> StoreResult<()> {
        let kpt_shape = config.kpt_shape.map(|(n, d)| vec![n as i64, d as i64]);
        self.collection
            .update_one(
                doc! {"_id": id},
                doc! {"$set": {
                    "classes": config.classes,
                    "task": config.task.as_str(),
                    "split_names": config.split_names,
                    "kpt_shape": kpt_shape,
                    "flip_idx": config.flip_idx.map(|f| f.iter().map(|&i| i as i64).collect::<Vec<_>>()),
                    "kpt_names": config.kpt_names.map(|names| {
                        names.iter().map(|(class, names)| (class.to_string(), mongodb::bson::Bson::from(names.clone()))).collect::<mongodb::bson::Document>()
                    }),
                }},
            )
            .await?;
        Ok(())
    }

    /// Records the dataset-level findings of planning: a sample, and every code's count.
    pub async fn record_findings(
        &self,
        id: &str,
        findings: &[Finding],
        counts: &BTreeMap<String, u64>,
    ) -> StoreResult<()> {
        self.collection
            .update_one(
                doc! {"_id": id},
                doc! {"$set": {
                    "findings": to_bson(findings).expect("findings serialize"),
                    "finding_counts": to_bson(counts).expect("counts serialize"),
                }},
            )
            .await?;
        Ok(())
    }

    /// An importing dataset becomes ready with its statistics and the findings of its import's
    /// end, which go first in the sample and are counted: one conditional update, so a retried
    /// ending adds nothing twice.
    pub async fn mark_ready(&self, id: &str, ready: &Ready<'_>) -> StoreResult<()> {
        let mut counts = mongodb::bson::Document::new();
        for finding in ready.findings {
            let key = format!("finding_counts.{}", finding.code);
            let n = counts.get_i64(&key).unwrap_or(0);
            counts.insert(key, n + 1);
        }
        let mut update = doc! {
            "$set": {
                "status": "ready",
                "stats": to_bson(ready.statistics).expect("statistics serialize"),
                "duplicates": to_bson(ready.duplicates).expect("counts serialize"),
                "trainable": ready.trainable,
            },
        };
        if !ready.findings.is_empty() {
            let findings = to_bson(ready.findings).expect("findings serialize");
            update.insert(
                "$push",
                doc! {"findings": {"$each": findings, "$position": 0, "$slice": crate::ERROR_SAMPLE as i64}},
            );
            update.insert("$inc", counts);
        }
        self.collection.update_one(doc! {"_id": id, "status": "importing"}, update).await?;
        Ok(())
    }

    /// Records an importing dataset's content hash, before its import's end looks for an
    /// earlier dataset of the same content ([`Datasets::earliest_with_content`]).
    pub async fn set_content_hash(&self, id: &str, content_hash: &str) -> StoreResult<()> {
        self.collection
            .update_one(doc! {"_id": id, "status": "importing"}, doc! {"$set": {"content_hash": content_hash}})
            .await?;
        Ok(())
    }

    /// The tenant's earliest dataset but `except_id` with this content hash that is ready, or
    /// whose import is ending (its hash is set only then): a failed, deleting or deleted one
    /// does not count.
    pub async fn earliest_with_content(
        &self,
        tenant: &str,
        content_hash: &str,
        except_id: &str,
    ) -> StoreResult<Option<DatasetDoc>> {
        let filter = doc! {
            "tenant": tenant,
            "content_hash": content_hash,
            "_id": {"$ne": except_id},
            "status": {"$in": ["ready", "importing"]},
        };
        Ok(self.collection.find_one(filter).sort(doc! {"created_at": 1, "_id": 1}).await?)
    }

    /// An importing dataset fails with its import, keeping why (`failure`).
    pub async fn mark_failed(&self, id: &str, failure: &Failure) -> StoreResult<()> {
        let failure = to_bson(failure).expect("failures serialize");
        self.collection
            .update_one(
                doc! {"_id": id, "status": "importing"},
                doc! {"$set": {"status": "failed", "failure": failure}},
            )
            .await?;
        Ok(())
    }

    /// Renames a tenant's dataset (not one being deleted); the renamed dataset, or `None` when
    /// there is no such dataset for the tenant.
    pub async fn rename(&self, tenant: &str, id: &str, name: &str) -> StoreResult<Option<DatasetDoc>> {
        let mut filter = doc! {"_id": id, "tenant": tenant};
        filter.extend(visible());
        Ok(self
            .collection
            .find_one_and_update(filter, doc! {"$set": {"name": name}})
            .return_document(mongodb::options::ReturnDocument::After)
            .await?)
    }

    /// Starts deleting a tenant's dataset on behalf of the delete job `job_id`: the dataset
    /// becomes `deleting` (missing to every lookup) and `job_id` its newest job, in one write,
    /// the deduplication point of `DELETE /datasets/{id}`. A dataset already being deleted is
    /// left as it is.
    pub async fn begin_delete(&self, tenant: &str, id: &str, job_id: &str) -> StoreResult<DeleteStart> {
        let mut filter = doc! {"_id": id, "tenant": tenant};
        filter.extend(visible());
        let started = self
            .collection
            .find_one_and_update(filter, doc! {"$set": {"status": "deleting", "last_job_id": job_id}})
            .await?;
        if let Some(before) = started {
            return Ok(DeleteStart::Started(Box::new(before)));
        }
        let deleting = self.collection.find_one(doc! {"_id": id, "tenant": tenant, "status": "deleting"}).await?;
        Ok(match deleting {
            Some(dataset) => DeleteStart::Deleting(Box::new(dataset)),
            None => DeleteStart::Missing,
        })
    }

    /// Hands a deleting dataset over from its delete job `failed_job_id`, which failed, to a new
    /// delete job; `false` when another request did first (or the dataset is gone).
    pub async fn restart_delete(&self, id: &str, failed_job_id: &str, job_id: &str) -> StoreResult<bool> {
        let updated = self
            .collection
            .update_one(
                doc! {"_id": id, "status": "deleting", "last_job_id": failed_job_id},
                doc! {"$set": {"last_job_id": job_id}},
            )
            .await?;
        Ok(updated.modified_count == 1)
    }

    /// Deletes the record of a dataset being deleted, the last step of its delete job.
    pub async fn remove(&self, id: &str) -> StoreResult<()> {
        self.collection.delete_one(doc! {"_id": id, "status": "deleting"}).await?;
        Ok(())
    }
}

/// What [`Datasets::begin_delete`] found.
#[derive(Debug)]
pub enum DeleteStart {
    /// The dataset was visible and is now being deleted; as it was before.
    Started(Box<DatasetDoc>),
    /// The dataset was already being deleted (by the job `last_job_id`).
    Deleting(Box<DatasetDoc>),
    /// No such dataset for the tenant.
    Missing,
}

/// `text` as a regular expression matching exactly itself: every ASCII character that is not a
/// letter or digit escaped (PCRE reads an escaped punctuation character as itself).
fn regex_literal(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len() * 2);
    for c in text.chars() {
        if c.is_ascii() && !c.is_ascii_alphanumeric() {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// What the dataset's YAML settles for its chunks ([`Datasets::record_config`]).
#[derive(Debug)]
pub struct ConfigRecord<'a> {
    pub classes: &'a [String],
    pub task: Task,
    pub split_names: &'a [String],
    pub kpt_shape: Option<(usize, usize)>,
    pub flip_idx: Option<&'a [usize]>,
    pub kpt_names: Option<&'a BTreeMap<u32, Vec<String>>>,
}

/// What an import's end records on its dataset ([`Datasets::mark_ready`]).
#[derive(Debug)]
pub struct Ready<'a> {
    pub statistics: &'a Statistics,
    pub duplicates: &'a DuplicateCounts,
    pub trainable: bool,
    /// Findings about the dataset as a whole, found at the end (`no_train_split`, `no_labels`,
    /// `duplicate_dataset`).
    pub findings: &'a [Finding],
}
