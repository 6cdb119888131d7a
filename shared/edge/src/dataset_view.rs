//! The API's Dataset object, from a dataset's record: what `GET /datasets`, `GET /datasets/{id}`
//! and `PATCH /datasets/{id}` answer with.

use serde_json::{json, Value};
use yds_store::{rfc3339, DatasetDoc, DatasetStatus};

/// The Dataset object of `GET /datasets` and `GET /datasets/{id}`.
pub fn dataset(dataset: &DatasetDoc) -> Value {
    let statistics = dataset.statistics.clone().unwrap_or_default();
    let splits: serde_json::Map<String, Value> = dataset
        .split_names
        .iter()
        .map(|name| {
            let s = statistics.splits.get(name).cloned().unwrap_or_default();
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
    let class_counts: Vec<Value> = dataset
        .classes
        .iter()
        .enumerate()
        .map(|(id, name)| {
            let c = statistics.classes.get(&id.to_string()).cloned().unwrap_or_default();
            json!({"class_id": id, "name": name, "instances": c.instances, "images": c.images})
        })
        .collect();
    let imported = dataset.statistics.is_some();
    let unused_classes: Vec<usize> = (0..dataset.classes.len())
        .filter(|id| imported && statistics.classes.get(&id.to_string()).is_none_or(|c| c.instances == 0))
        .collect();
    let mut issue_counts = statistics.issues.clone();
    for (code, n) in &dataset.finding_counts {
        *issue_counts.entry(code.clone()).or_default() += n;
    }
    // Duplicates are found after the chunks counted their issues.
    let duplicates = dataset.duplicates.clone().unwrap_or_default();
    for (code, n) in [("duplicate_image", duplicates.within_split), ("cross_split_duplicate", duplicates.cross_split)] {
        if n > 0 {
            issue_counts.insert(code.into(), n);
        }
    }
    if !unused_classes.is_empty() {
        issue_counts.insert("class_without_instances".into(), unused_classes.len() as u64);
    }
    json!({
        "id": dataset.id,
        "name": dataset.name,
        "status": dataset.status,
        "created_at": rfc3339(dataset.created_at),
        "task": dataset.task,
        // The import that made it: its status route tells progress, and why it failed.
        "job_id": dataset.job_id,
        // The newest job of any kind on it (its import, or a later one).
        "last_job_id": dataset.last_job_id(),
        // Why it failed (its import's failing finding); null unless `failed`.
        "failure": dataset.failure,
        "classes": dataset.classes,
        // Whether Ultralytics can train on it; when not, the finding `no_train_split` says why.
        "trainable": trainable(dataset),
        "kpt_shape": dataset.kpt_shape,
        // Pose datasets, from the YAML: each keypoint's mirror, and per class its keypoints' names.
        "flip_idx": dataset.flip_idx,
        "kpt_names": dataset.kpt_names,
        // Equal for the same images, label files and classes imported twice (`duplicate_dataset`).
        "content_hash": dataset.content_hash,
        "counts": {
            "images": statistics.images,
            "annotations": statistics.annotations,
            "background_images": statistics.background_images,
            "invalid_images": statistics.invalid_images,
        },
        "splits": splits,
        "class_counts": class_counts,
        "statistics": {
            "labels": statistics.labels,
            "invalid_labels": statistics.invalid_labels,
            "duplicate_rows_removed": statistics.duplicate_rows_removed,
            "issues": issue_counts,
            "duplicates": duplicates,
            "classes_without_instances": unused_classes,
        },
        "findings": dataset.findings,
    })
}

/// Whether Ultralytics can train on the dataset: as its import's end recorded it; for a record
/// written before that was recorded, a ready dataset with a `train` split and label files.
fn trainable(dataset: &DatasetDoc) -> bool {
    dataset.trainable.unwrap_or_else(|| {
        dataset.status == DatasetStatus::Ready
            && dataset.split_names.iter().any(|name| name == "train")
            && dataset.statistics.as_ref().is_some_and(|s| s.labels > 0)
    })
}
