#![doc = include_str!("../../README.md")]
//!
//! # This crate
//!
//! `yds-storage`: object storage behind one trait, so the same code runs on Cloud Storage and
//! on a local directory. An adapter layer: it knows keys and bytes, never what they mean.
//!
//! Keys are `/`-separated relative paths. The layout is fixed:
//! `datasets/{dataset_id}/{images,labels,config}/...` for imported files,
//! `datasets/{dataset_id}/thumbnails/...` for the thumbnails made of them,
//! `temp/{job_id}/...` for staging, and `temp/uploads/{upload_id}/{file_name}` for uploads
//! ([`keys`]). A backend must never write outside its root, whatever key it is handed.
//!
//! ## Layout
//!
//! - [`ObjectStore`], the trait, with its two backends: [`local`] (a directory) and [`gcs`]
//!   (a Cloud Storage bucket through its JSON API, so every call can run on an emulator).
//! - [`retry`] and [`flaky`]: the local stack's injected failures (`YDS_CHAOS_STORAGE_FAIL`)
//!   and the retries that absorb them, as the Cloud Storage backend retries real ones.
//! - [`breaker`]: the circuit breaker every opened store ([`open`]) sits behind, so a store
//!   that cannot be reached is refused at once ([`StorageError::Unavailable`]) until it is back.
//! - [`keys`]: the object layout, in one place.
//! - [`budget`]: a process's budget of file bytes held in memory at once.
//! - Resumable uploads: [`ObjectStore::start_upload_session`] on a bucket (a Cloud Storage
//!   session the client writes to), or [`ObjectStore::append_at`] on a directory (the caller
//!   takes the pieces); and [`ObjectStore::delete_written_before`], how a directory expires
//!   what a bucket's lifecycle rule expires.
//! - [`open`]: the store a configuration names.

#![forbid(unsafe_code)]

pub mod breaker;
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
    /// Refused without trying: the store failed too often in a row and its breaker
    /// ([`breaker`]) is open; a call may go again in `retry_after_secs`.
    #[error("object storage is unavailable; retry in {retry_after_secs} s")]
    Unavailable { retry_after_secs: u64 },
}

/// One page of a listing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListPage {
    /// `(key, size)` in key order.
    pub objects: Vec<(String, u64)>,
    /// Pass back to get the next page; `None` at the end.
    pub next_page: Option<String>,
}

impl StorageError {
    /// Whether the backend cannot do what was asked at all (an operation it does not offer),
    /// so asking again is pointless.
    pub fn is_unsupported(&self) -> bool {
        matches!(self, StorageError::Io(e) if e.kind() == std::io::ErrorKind::Unsupported)
    }

    /// How long a client should wait before asking again after this failure: until the
    /// breaker lets a call through, or a second.
    pub fn retry_after_secs(&self) -> u64 {
        match self {
            StorageError::Unavailable { retry_after_secs } => *retry_after_secs,
            _ => 1,
        }
    }

    /// Whether the store could not be reached (or is refused by its breaker): a 503 and a
    /// retry, not an answer about the object.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StorageError::Unavailable { .. })
            || matches!(self, StorageError::Io(_)) && !self.is_unsupported()
    }
}

/// The error of an operation a backend does not offer.
pub fn unsupported(what: &str) -> StorageError {
    StorageError::Io(std::io::Error::new(std::io::ErrorKind::Unsupported, format!("this object store cannot {what}")))
}

/// What [`ObjectStore::append_at`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendOutcome {
    /// The bytes were added at the end; the object is now `size` bytes long.
    Appended { size: u64 },
    /// The object was not as long as the offset said, so nothing was written: it is `size`
    /// bytes long (0 when missing).
    OffsetMismatch { size: u64 },
}

/// How far a resumable upload session ([`ObjectStore::start_upload_session`]) has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionProgress {
    /// The first `n` bytes are stored; the object does not exist yet.
    Received(u64),
    /// The upload is finished: the object exists with this size.
    Complete(u64),
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

    /// Starts a resumable upload of `key` straight to the backend and returns the session's
    /// URL, which authorizes the upload by itself (Cloud Storage's resumable protocol: `PUT`s
    /// with `Content-Range`); `size`, when known, is the object's size, which the session then
    /// holds the client to. `None`: the backend has no sessions (a local directory), and the
    /// caller takes the pieces itself and writes them with [`ObjectStore::append_at`].
    async fn start_upload_session(&self, key: &str, size: Option<u64>) -> Result<Option<String>, StorageError> {
        let _ = size;
        validate_key(key)?;
        Ok(None)
    }

    /// How far the upload session at `session_url` (one [`ObjectStore::start_upload_session`]
    /// returned) has come.
    async fn upload_session_progress(&self, session_url: &str) -> Result<SessionProgress, StorageError> {
        let _ = session_url;
        Err(unsupported("start upload sessions"))
    }

    /// Appends `data` to the object if it is exactly `offset` bytes long now (a missing object is
    /// 0 bytes long, and is created by an append at 0); otherwise writes nothing and says how
    /// long it is. A piece is appended whole or not at all, and two appends at the same offset
    /// never both succeed. Only the local directory can (a resumable upload without sessions);
    /// other backends answer unsupported ([`StorageError::is_unsupported`]).
    async fn append_at(&self, key: &str, offset: u64, data: Bytes) -> Result<AppendOutcome, StorageError> {
        let _ = (key, offset, data);
        Err(unsupported("append to objects"))
    }

    /// Deletes the objects under `prefix` last written before `cutoff`; how many. Only the local
    /// directory can; a bucket expires such objects by its own lifecycle rule, and other
    /// backends answer unsupported ([`StorageError::is_unsupported`]).
    async fn delete_written_before(&self, prefix: &str, cutoff: SystemTime) -> Result<u64, StorageError> {
        let _ = (prefix, cutoff);
        Err(unsupported("find objects by age"))
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
    let store: Arc<dyn ObjectStore> = match chaos.storage_failure {
        // Injected failures are retried as the Cloud Storage client retries real ones.
        p if p > 0.0 => Arc::new(retry::RetryingStore::new(Arc::new(flaky::FlakyStore::new(store, p)))),
        _ => store,
    };
    // Outermost: only what outlasted the retries counts towards the breaker.
    Ok(Arc::new(breaker::BreakerStore::new(store)))
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
