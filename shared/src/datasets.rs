//! Datasets: what an import produces, and the statistics users browse.

use mongodb::bson::DateTime;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::coordinator::ChunkStats;
use crate::format::Task;

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
    #[serde(default)]
    pub stats: Option<ChunkStats>,
    /// Exact duplicate files, found when the import ends.
    #[serde(default)]
    pub duplicates: Option<crate::images::DuplicateCounts>,
    /// Dataset-level findings from planning (orphan labels, missing list entries...): a sample.
    #[serde(default)]
    pub findings: Vec<crate::jobs::FileError>,
    /// Every dataset-level finding code with its count.
    #[serde(default)]
    pub finding_counts: std::collections::BTreeMap<String, u64>,
}

impl DatasetDoc {
    /// The API's Dataset object.
    pub fn to_view(&self) -> Value {
        let stats = self.stats.clone().unwrap_or_default();
        let splits: serde_json::Map<String, Value> = self
            .split_names
            .iter()
            .map(|name| {
                let s = stats.splits.get(name).cloned().unwrap_or_default();
                let classes: serde_json::Map<String, Value> = s
                    .classes
                    .iter()
                    .map(|(id, c)| (id.clone(), json!({"instances": c.instances, "images": c.images})))
                    .collect();
                (
                    name.clone(),
                    json!({
                        "images": s.images,
                        "annotations": s.annotations,
                        "background_images": s.background_images,
                        "invalid_images": s.invalid_images,
                        "classes": classes,
                    }),
                )
            })
            .collect();
        let class_counts: Vec<Value> = self
            .classes
            .iter()
            .enumerate()
            .map(|(id, name)| {
                let c = stats.classes.get(&id.to_string()).cloned().unwrap_or_default();
                json!({"class_id": id, "name": name, "instances": c.instances, "images": c.images})
            })
            .collect();
        let unused_classes: Vec<usize> = (0..self.classes.len())
            .filter(|id| self.stats.is_some() && stats.classes.get(&id.to_string()).is_none_or(|c| c.instances == 0))
            .collect();
        let mut issue_counts = stats.issues.clone();
        for (code, n) in &self.finding_counts {
            *issue_counts.entry(code.clone()).or_default() += n;
        }
        // Duplicates are found after the chunks counted their issues.
        let duplicates = self.duplicates.clone().unwrap_or_default();
        for (code, n) in
            [("duplicate_image", duplicates.within_split), ("cross_split_duplicate", duplicates.cross_split)]
        {
            if n > 0 {
                issue_counts.insert(code.into(), n);
            }
        }
        if !unused_classes.is_empty() {
            issue_counts.insert("class_without_instances".into(), unused_classes.len() as u64);
        }
        json!({
            "id": self.id,
            "name": self.name,
            "status": self.status,
            "created_at": rfc3339(self.created_at),
            "task": self.task,
            "classes": self.classes,
            "counts": {
                "images": stats.images,
                "annotations": stats.annotations,
                "background_images": stats.background_images,
                "invalid_images": stats.invalid_images,
            },
            "splits": splits,
            "class_counts": class_counts,
            "statistics": {
                "labels": stats.labels,
                "invalid_labels": stats.invalid_labels,
                "duplicate_rows_removed": stats.duplicate_rows_removed,
                "issues": issue_counts,
                "duplicates": duplicates,
                "classes_without_instances": unused_classes,
            },
            "findings": self.findings,
        })
    }
}

/// RFC 3339 text of a BSON time (millisecond precision, UTC).
pub fn rfc3339(time: DateTime) -> String {
    time.try_to_rfc3339_string().unwrap_or_default()
}

/// A tenant's dataset; another tenant's is reported as missing.
pub async fn find_for_tenant(db: &crate::db::Db, tenant: &str, id: &str) -> crate::db::DbResult<Option<DatasetDoc>> {
    Ok(db.datasets.find_one(mongodb::bson::doc! {"_id": id, "tenant": tenant}).await?)
}

/// Position after the last dataset of a page: `(created_at ms, id)`.
pub type DatasetCursor = (i64, String);

/// One page of a tenant's datasets, newest first.
pub async fn page(
    db: &crate::db::Db,
    tenant: &str,
    after: Option<DatasetCursor>,
    limit: i64,
) -> crate::db::DbResult<(Vec<DatasetDoc>, Option<DatasetCursor>)> {
    use futures::TryStreamExt;
    use mongodb::bson::doc;

    let mut filter = doc! {"tenant": tenant};
    if let Some((millis, id)) = after {
        let at = DateTime::from_millis(millis);
        filter.insert("$or", vec![doc! {"created_at": {"$lt": at}}, doc! {"created_at": at, "_id": {"$lt": id}}]);
    }
    let mut items: Vec<DatasetDoc> =
        db.datasets.find(filter).sort(doc! {"created_at": -1, "_id": -1}).limit(limit + 1).await?.try_collect().await?;
    let next = if items.len() as i64 > limit {
        items.truncate(limit as usize);
        items.last().map(|d| (d.created_at.timestamp_millis(), d.id.clone()))
    } else {
        None
    };
    Ok((items, next))
}
