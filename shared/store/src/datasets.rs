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
        self.collection.create_indexes([newest_first]).await?;
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

    /// A tenant's dataset; another tenant's is reported as missing.
    pub async fn find_for_tenant(&self, tenant: &str, id: &str) -> StoreResult<Option<DatasetDoc>> {
        Ok(self.collection.find_one(doc! {"_id": id, "tenant": tenant}).await?)
    }

    /// One page of a tenant's datasets, newest first, and the position after it if more follow.
    pub async fn page(
        &self,
        tenant: &str,
        after: Option<DatasetCursor>,
        limit: i64,
    ) -> StoreResult<(Vec<DatasetDoc>, Option<DatasetCursor>)> {
        let mut filter = doc! {"tenant": tenant};
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

    /// An importing dataset becomes ready with its statistics (idempotent: the same values
    /// every time the job's ending is retried).
    pub async fn mark_ready(&self, id: &str, statistics: &Statistics, duplicates: &DuplicateCounts) -> StoreResult<()> {
        self.collection
            .update_one(
                doc! {"_id": id, "status": "importing"},
                doc! {"$set": {
                    "status": "ready",
                    "stats": to_bson(statistics).expect("statistics serialize"),
                    "duplicates": to_bson(duplicates).expect("counts serialize"),
                }},
            )
            .await?;
        Ok(())
    }

    /// An importing dataset fails with its import.
    pub async fn mark_failed(&self, id: &str) -> StoreResult<()> {
        self.collection
            .update_one(doc! {"_id": id, "status": "importing"}, doc! {"$set": {"status": "failed"}})
            .await?;
        Ok(())
    }
}

/// What the dataset's YAML settles for its chunks ([`Datasets::record_config`]).
#[derive(Debug)]
pub struct ConfigRecord<'a> {
    pub classes: &'a [String],
    pub task: Task,
    pub split_names: &'a [String],
    pub kpt_shape: Option<(usize, usize)>,
}
