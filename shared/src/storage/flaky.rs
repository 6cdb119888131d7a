//! Fault injection for the local stack: an object store whose every call fails with a given
//! probability (`YDS_CHAOS_STORAGE_FAIL`), as Cloud Storage does now and then (503s, resets).
//! Imports must still end exact: failed chunk and planning attempts are retried by the queue.

use std::ops::Range;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;

use super::{ListPage, ObjectStore, StorageError};

pub struct FlakyStore {
    inner: Arc<dyn ObjectStore>,
    failure: f64,
}

impl FlakyStore {
    pub fn new(inner: Arc<dyn ObjectStore>, failure: f64) -> Self {
        Self { inner, failure }
    }

    fn maybe_fail(&self, call: &str, key: &str) -> Result<(), StorageError> {
        if rand::random::<f64>() < self.failure {
            let error = std::io::Error::other(format!("injected failure of {call} {key} (YDS_CHAOS_STORAGE_FAIL)"));
            return Err(StorageError::Io(error));
        }
        Ok(())
    }
}

#[async_trait]
impl ObjectStore for FlakyStore {
    async fn put(&self, key: &str, data: Bytes) -> Result<(), StorageError> {
        self.maybe_fail("put", key)?;
        self.inner.put(key, data).await
    }

    async fn get(&self, key: &str) -> Result<Bytes, StorageError> {
        self.maybe_fail("get", key)?;
        self.inner.get(key).await
    }

    async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Bytes, StorageError> {
        self.maybe_fail("get_range", key)?;
        self.inner.get_range(key, range).await
    }

    async fn size(&self, key: &str) -> Result<Option<u64>, StorageError> {
        self.maybe_fail("size", key)?;
        self.inner.size(key).await
    }

    async fn list(&self, prefix: &str, page: Option<String>, page_size: usize) -> Result<ListPage, StorageError> {
        self.maybe_fail("list", prefix)?;
        self.inner.list(prefix, page, page_size).await
    }

    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        self.maybe_fail("delete", key)?;
        self.inner.delete(key).await
    }

    async fn copy(&self, from: &str, to: &str) -> Result<(), StorageError> {
        self.maybe_fail("copy", from)?;
        self.inner.copy(from, to).await
    }
}
