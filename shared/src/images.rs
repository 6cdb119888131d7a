//! Image documents: one per image of a dataset, annotations and findings embedded.
//!
//! The `_id` is derived from the dataset and the image's path, so a retried chunk writes the
//! same documents again instead of new ones.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::format::Annotation;
use crate::validation::Issue;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageDoc {
    #[serde(rename = "_id")]
    pub id: String,
    pub dataset_id: String,
    /// `{split}/{file_name}`: unique in the dataset, the pagination key.
    pub path: String,
    pub split: String,
    pub file_name: String,
    pub width: u32,
    pub height: u32,
    pub format: String,
    pub size_bytes: u64,
    pub valid: bool,
    pub annotations: Vec<Annotation>,
    pub issues: Vec<Issue>,
    /// Distinct class ids among the annotations, for the `class_id` filter.
    pub class_ids: Vec<u32>,
}

/// The deterministic id of an image: a hash of its dataset and path.
pub fn image_id(dataset_id: &str, path: &str) -> String {
    let mut hasher = blake3::Hasher::new();
    hasher.update(dataset_id.as_bytes());
    hasher.update(b"\0");
    hasher.update(path.as_bytes());
    hasher.finalize().to_hex()[..24].to_owned()
}

impl ImageDoc {
    /// The API's Image object.
    pub fn to_view(&self) -> Value {
        json!({
            "id": self.id,
            "file_name": self.file_name,
            "split": self.split,
            "width": self.width,
            "height": self.height,
            "format": self.format,
            "size_bytes": self.size_bytes,
            "valid": self.valid,
            "annotations": self.annotations,
            "issues": self.issues,
        })
    }
}

/// One page of `GET /datasets/{id}/images`.
#[derive(Debug, Clone, Default)]
pub struct ImageQuery {
    pub dataset_id: String,
    pub split: Option<String>,
    pub class_id: Option<u32>,
    /// The `path` of the previous page's last image.
    pub after: Option<String>,
    pub limit: i64,
}

/// Images in `path` order after the cursor; each filter combination is served by its own
/// index (hinted, so the planner never falls back to scanning `_id`).
pub async fn page(db: &crate::db::Db, query: &ImageQuery) -> crate::db::DbResult<(Vec<ImageDoc>, Option<String>)> {
    use futures::TryStreamExt;
    use mongodb::bson::doc;

    let mut filter = doc! {"dataset_id": &query.dataset_id};
    let mut hint = doc! {"dataset_id": 1};
    if let Some(split) = &query.split {
        filter.insert("split", split);
        hint.insert("split", 1);
    }
    if let Some(class_id) = query.class_id {
        filter.insert("class_ids", class_id as i64);
        hint.insert("class_ids", 1);
    }
    hint.insert("path", 1);
    if let Some(after) = &query.after {
        filter.insert("path", doc! {"$gt": after});
    }
    let mut items: Vec<ImageDoc> = db
        .images
        .find(filter)
        .sort(doc! {"path": 1})
        .hint(mongodb::options::Hint::Keys(hint))
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
