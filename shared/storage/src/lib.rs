#![doc = include_str!("../../README.md")]
//!
//! # This crate
//!
//! `yds-storage`: object storage behind one trait, so the same code runs on Cloud Storage and
//! on a local directory. An adapter layer: it knows keys and bytes, never what they mean.
//!
//! Keys are `/`-separated relative paths. The layout is fixed:
//! `datasets/{dataset_id}/{images,labels,config}/...` for imported files,
//! `datasets/{dataset_id}/thumbnails/...` for the thumbnails made of them, and
//! `temp/{job_id}/...` for staging ([`keys`]). A backend must never write outside its root,
//! whatever key it is handed.
//!
//! ## Layout
//!
//! - [`ObjectStore`], the trait, with its two backends: [`local`] (a directory) and [`gcs`]
//!   (a Cloud Storage bucket through its JSON API, so every call can run on an emulator).
//! - [`retry`] and [`flaky`]: the local stack's injected failures (`YDS_CHAOS_STORAGE_FAIL`)
//!   and the retries that absorb them, as the Cloud Storage backend retries real ones.
//! - [`keys`]: the object layout, in one place.
//! - [`budget`]: a process's budget of file bytes held in memory at once.
//! - [`open`]: the store a configuration names.

#![forbid(unsafe_code)]

pub mod budget;
pub mod flaky;
pub mod gcs;
pub mod keys;
pub mod local;
pub mod retry;

use std::ops::Range;
use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::Bytes;

pub use budget::MemoryBudget;
pub use gcs::GcsStore;
pub use local::LocalStore;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("object not found: {0}")]
    NotFound(String),
    #[error("invalid object key: {0}")]
    InvalidKey(String),
    #[error("storage I/O failed: {0}")]
    Io(#[from] std::io::Error),
}

/// One page of a listing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListPage {
    /// `(key, size)` in key order.
    pub objects: Vec<(String, u64)>,
    /// Pass back to get the next page; `None` at the end.
    pub next_page: Option<String>,
}

/// Uploads in flight at once in the default [`ObjectStore::put_many`].
const PUTS_IN_FLIGHT: usize = 8;

#[async_trait]
pub trait ObjectStore: Send + Sync + 'static {
    /// Writes the whole object. Once a put returned, readers see all of it, and a later put
    /// replaces it whole. A key whose first put has not returned may read short on the local
    /// store; nothing reads such a key, since keys are recorded only after their put.
    async fn put(&self, key: &str, data: Bytes) -> Result<(), StorageError>;
    async fn get(&self, key: &str) -> Result<Bytes, StorageError>;
    /// Bytes `range` of the object (clamped to its end).
    async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Bytes, StorageError>;
    /// Size of the object, or `None` when it does not exist.
    async fn size(&self, key: &str) -> Result<Option<u64>, StorageError>;
    /// Objects whose key starts with `prefix`, at most `page_size` per page.
    async fn list(&self, prefix: &str, page: Option<String>, page_size: usize) -> Result<ListPage, StorageError>;
    /// Deletes the object; deleting a missing object succeeds.
    async fn delete(&self, key: &str) -> Result<(), StorageError>;
    /// A URL that lets anyone `GET` the object from `valid_from` until `valid_until`, straight
    /// from the backend (a Cloud Storage V4 signed URL); the same window gives the same URL, so
    /// a browser caches what it fetched. `None` when the backend has no such URLs (a local
    /// directory, an emulator without a signing key): the caller then serves the bytes itself.
    /// The object need not exist. Every backend answers, wrappers by asking what they wrap.
    async fn signed_get_url(
        &self,
        key: &str,
        valid_from: SystemTime,
        valid_until: SystemTime,
    ) -> Result<Option<String>, StorageError>;

    /// Writes several objects, each as [`ObjectStore::put`] does; on error some may be written.
    /// Backends whose calls cost a thread hop (the local filesystem) override this to pay it
    /// once per batch instead of once per object.
    async fn put_many(&self, objects: Vec<(String, Bytes)>) -> Result<(), StorageError> {
        use futures::{StreamExt, TryStreamExt};
        futures::stream::iter(objects)
            .map(|(key, data)| async move { self.put(&key, data).await })
            .buffer_unordered(PUTS_IN_FLIGHT)
            .try_collect::<()>()
            .await
    }

    /// Copies an object; backends with a server-side copy override this.
    async fn copy(&self, from: &str, to: &str) -> Result<(), StorageError> {
        let data = self.get(from).await?;
        self.put(to, data).await
    }

    /// Deletes every object under `prefix`, page by page.
    async fn delete_prefix(&self, prefix: &str) -> Result<u64, StorageError> {
        let mut deleted = 0;
        loop {
            // Always list from the start: the previous page's objects are gone now.
            let page = self.list(prefix, None, 1000).await?;
            if page.objects.is_empty() {
                return Ok(deleted);
            }
            for (key, _) in &page.objects {
                self.delete(key).await?;
                deleted += 1;
            }
        }
    }
}

/// The object store `config` names, with the local stack's injected failures (`chaos`) and
/// the retries that absorb them when those are on.
pub async fn open(
    config: &yds_config::StorageConfig,
    chaos: &yds_config::Chaos,
) -> Result<Arc<dyn ObjectStore>, StorageError> {
    use yds_config::StorageConfig;
    let store: Arc<dyn ObjectStore> = match config {
        StorageConfig::Local { root } => Arc::new(LocalStore::new(root.clone())),
        StorageConfig::Gcs { bucket, endpoint: None } => Arc::new(GcsStore::new(bucket).await?),
        StorageConfig::Gcs { bucket, endpoint: Some(endpoint) } => {
            Arc::new(GcsStore::with_endpoint(bucket, endpoint).await?)
        }
    };
    Ok(match chaos.storage_failure {
        // Injected failures are retried as the Cloud Storage client retries real ones.
        p if p > 0.0 => Arc::new(retry::RetryingStore::new(Arc::new(flaky::FlakyStore::new(store, p)))),
        _ => store,
    })
}

/// Refuses keys that could escape a backend's root or alias another key.
pub fn validate_key(key: &str) -> Result<(), StorageError> {
    let bad = key.is_empty()
        || key.starts_with('/')
        || key.contains('\\')
        || key.contains('\0')
        || key.split('/').any(|seg| seg.is_empty() || seg == "." || seg == "..");
    if bad {
        return Err(StorageError::InvalidKey(key.to_owned()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_that_escape_are_refused() {
        for key in ["", "/etc/passwd", "a/../b", "a//b", "a/./b", "a\\b", "..", "a/"] {
            assert!(validate_key(key).is_err(), "{key:?} accepted");
        }
        validate_key("datasets/d1/images/train/a b.jpg").unwrap();
    }
}
