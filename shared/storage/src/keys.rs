//! The object layout, in one place.

/// Where an imported image is stored: `datasets/{id}/images/{split}/{file_name}`.
pub fn dataset_image(dataset_id: &str, split: &str, file_name: &str) -> String {
    format!("datasets/{dataset_id}/images/{split}/{file_name}")
}

/// Where an imported label file is stored: `datasets/{id}/labels/{split}/{stem}.txt`.
pub fn dataset_label(dataset_id: &str, split: &str, file_name: &str) -> String {
    let stem = match file_name.rfind('.') {
        Some(dot) if !file_name[dot..].contains('/') => &file_name[..dot],
        _ => file_name,
    };
    format!("datasets/{dataset_id}/labels/{split}/{stem}.txt")
}

/// Where the dataset's YAML is kept: `datasets/{id}/config/{name}`.
pub fn dataset_config(dataset_id: &str, name: &str) -> String {
    format!("datasets/{dataset_id}/config/{name}")
}

/// Where an image's thumbnail is kept once made: `datasets/{id}/thumbnails/{image_id}.jpg`.
pub fn dataset_thumbnail(dataset_id: &str, image_id: &str) -> String {
    format!("datasets/{dataset_id}/thumbnails/{image_id}.jpg")
}

/// Every object of a dataset: `datasets/{id}/` (what deleting it removes).
pub fn dataset_prefix(dataset_id: &str) -> String {
    format!("datasets/{dataset_id}/")
}

/// A job's scratch space: `temp/{job_id}/`.
pub fn job_temp_prefix(job_id: &str) -> String {
    format!("temp/{job_id}/")
}

/// A staged source member: `temp/{job_id}/src/{member}`.
pub fn staged_member(job_id: &str, member: &str) -> String {
    format!("temp/{job_id}/src/{member}")
}

/// Where every upload lives, and what expires a day after it was written: `temp/uploads/`
/// (the bucket's lifecycle rule in `terraform/` names the same prefix).
pub const UPLOADS_PREFIX: &str = "temp/uploads/";

/// An upload's object: `temp/uploads/{upload_id}/{file_name}`. The name keeps its suffix, which
/// says what kind of archive it is.
pub fn upload(upload_id: &str, file_name: &str) -> String {
    format!("{UPLOADS_PREFIX}{upload_id}/{file_name}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_keys_swap_the_extension_only() {
        assert_eq!(dataset_label("d", "train", "a/b.c.jpg"), "datasets/d/labels/train/a/b.c.txt");
        assert_eq!(dataset_label("d", "val", "x.v1/noext"), "datasets/d/labels/val/x.v1/noext.txt");
    }
}
