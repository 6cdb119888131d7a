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
                (name.clone(), json!({"images": s.images, "annotations": s.annotations}))
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
