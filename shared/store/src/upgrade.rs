//! Records and indexes left by older binaries: what reads them, and what clears them, off the
//! main path. Each item says which change made it necessary, so it can go once no deployment
//! older than that change is left.
//!
//! Read-side allowances that stay in the record types as `#[serde(default)]`:
//! - `ChunkFile::label_size` absent (chunks planned before label sizes were recorded): 0, and
//!   such labels are read whatever their size;
//! - `ImageDoc::hash_key` absent (images imported before the duplicate key existed): `null` in
//!   the index, sorted out by the full-hash comparison;
//! - a tar staging pass paused by a version without early chunk cutting has no saved plan
//!   state: its job is planned whole once staged (the import's `planning::early`).

use mongodb::bson::Document;
use mongodb::Database;

use crate::StoreResult;

/// Indexes of `images` that earlier versions made (data folders and clusters created before):
/// the full-size issue and validity indexes that the partial ones replaced, the unique
/// `{dataset_id, path}` one that the derived `_id` made redundant, and the hex-hash duplicate
/// index that `hash_key` replaced.
const REPLACED_IMAGE_INDEXES: [&str; 4] = [
    "dataset_id_1_split_1_issue_codes_1_path_1",
    "dataset_id_1_split_1_valid_1_path_1",
    "dataset_id_1_path_1",
    "dataset_id_1_content_hash_1",
];

const NAMESPACE_NOT_FOUND: i32 = 26;
const INDEX_NOT_FOUND: i32 = 27;

/// Drops the [`REPLACED_IMAGE_INDEXES`] still there, before the partial indexes that reuse
/// their keys are created. Nothing to do once they are gone.
pub(crate) async fn drop_replaced_indexes(database: &Database) -> StoreResult<()> {
    let images = database.collection::<Document>("images");
    let names = match images.list_index_names().await {
        Ok(names) => names,
        Err(err) if command_code(&err) == Some(NAMESPACE_NOT_FOUND) => return Ok(()),
        Err(err) => return Err(err.into()),
    };
    for replaced in REPLACED_IMAGE_INDEXES {
        if names.iter().any(|name| name == replaced) {
            match images.drop_index(replaced).await {
                // Another process may have dropped it first.
                Err(err) if command_code(&err) != Some(INDEX_NOT_FOUND) => return Err(err.into()),
                _ => {}
            }
        }
    }
    Ok(())
}

fn command_code(err: &mongodb::error::Error) -> Option<i32> {
    match err.kind.as_ref() {
        mongodb::error::ErrorKind::Command(e) => Some(e.code),
        _ => None,
    }
}
