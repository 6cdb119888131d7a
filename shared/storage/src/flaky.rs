//! Fault injection for the local stack: an object store whose every call fails with a given
//! probability (`YDS_CHAOS_STORAGE_FAIL`), as Cloud Storage does now and then (503s, resets).
//! Imports must still end exact: failed chunk and planning attempts are retried by the queue.

use std::ops::Range;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::Bytes;

use super::{AppendOutcome, ListPage, ObjectStore, SessionProgress, StorageError};

pub struct FlakyStore {
    inner: Arc<dyn ObjectStore>,
    /// The probability that a call fails, as `f64` bits: tests change it while the store is in
    /// use (1.0: storage lost; 0.0: back).
    failure: AtomicU64,
    /// Calls made, failed or not: how a test tells whether a caller reached the store at all.
    calls: AtomicUsize,
}

impl FlakyStore {
    pub fn new(inner: Arc<dyn ObjectStore>, failure: f64) -> Self {
        Self { inner, failure: AtomicU64::new(failure.to_bits()), calls: AtomicUsize::new(0) }
    }

    /// Every call fails from now on with probability `failure`.
    pub fn set_failure(&self, failure: f64) {
        self.failure.store(failure.to_bits(), Ordering::SeqCst);
    }

    /// The calls made so far.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    fn maybe_fail(&self, call: &str, key: &str) -> Result<(), StorageError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if rand::random::<f64>() < f64::from_bits(self.failure.load(Ordering::SeqCst)) {
            return Self::injected(call, key);
        }
        Ok(())
    }

    fn injected(call: &str, key: &str) -> Result<(), StorageError> {
        let error = std::io::Error::other(format!("injected failure of {call} {key} (YDS_CHAOS_STORAGE_FAIL)"));
        Err(StorageError::Io(error))
    }
}

#[async_trait]
impl ObjectStore for FlakyStore {
    async fn put(&self, key: &str, data: Bytes) -> Result<(), StorageError> {
        self.maybe_fail("put", key)?;
        self.inner.put(key, data).await
    }

    async fn put_many(&self, objects: Vec<(String, Bytes)>) -> Result<(), StorageError> {
        // Each object may fail, as separate uploads would: the ones before it are written.
        let failing = objects.iter().position(|(key, _)| self.maybe_fail("put", key).is_err());
        let Some(at) = failing else { return self.inner.put_many(objects).await };
        let key = objects[at].0.clone();
        self.inner.put_many(objects.into_iter().take(at).collect()).await?;
        Self::injected("put", &key)
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

    async fn start_upload_session(&self, key: &str, size: Option<u64>) -> Result<Option<String>, StorageError> {
        self.maybe_fail("start_upload_session", key)?;
        self.inner.start_upload_session(key, size).await
    }

    async fn upload_session_progress(&self, session_url: &str) -> Result<SessionProgress, StorageError> {
        self.maybe_fail("upload_session_progress", "a session")?;
        self.inner.upload_session_progress(session_url).await
    }

    async fn append_at(&self, key: &str, offset: u64, data: Bytes) -> Result<AppendOutcome, StorageError> {
        self.maybe_fail("append_at", key)?;
        self.inner.append_at(key, offset, data).await
    }

    async fn delete_written_before(&self, prefix: &str, cutoff: SystemTime) -> Result<u64, StorageError> {
        self.maybe_fail("delete_written_before", prefix)?;
        self.inner.delete_written_before(prefix, cutoff).await
    }

    async fn signed_get_url(
        &self,
        key: &str,
        valid_from: SystemTime,
        valid_until: SystemTime,
    ) -> Result<Option<String>, StorageError> {
        // Signing may be a request too (Cloud Storage's, on Cloud Run: IAM's signBlob).
        self.maybe_fail("signed_get_url", key)?;
        self.inner.signed_get_url(key, valid_from, valid_until).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LocalStore;

    #[tokio::test]
    async fn a_failing_batch_writes_a_prefix_of_its_objects_then_fails() {
        let dir = tempfile::tempdir().unwrap();
        let inner: Arc<dyn ObjectStore> = Arc::new(LocalStore::new(dir.path()));
        let keys: Vec<String> = (0..20).map(|i| format!("o/{i:02}")).collect();
        let objects = || keys.iter().map(|k| (k.clone(), Bytes::from(k.clone()))).collect::<Vec<_>>();
        let (mut failed, mut succeeded) = (0, 0);
        for _ in 0..40 {
            inner.delete_prefix("o/").await.unwrap();
            let result = FlakyStore::new(inner.clone(), 0.05).put_many(objects()).await;
            let written: Vec<bool> = futures::future::join_all(keys.iter().map(|k| inner.size(k)))
                .await
                .into_iter()
                .map(|size| size.unwrap().is_some())
                .collect();
            let prefix = written.iter().take_while(|w| **w).count();
            assert!(written[prefix..].iter().all(|w| !w), "only a prefix is written: {written:?}");
            match result {
                Ok(()) => {
                    succeeded += 1;
                    assert_eq!(prefix, keys.len());
                }
                Err(err) => {
                    failed += 1;
                    assert!(err.to_string().contains("injected"), "{err}");
                }
            }
        }
        // 20 objects at 5 % each: a batch fails ~64 % of the time.
        assert!(failed > 0 && succeeded > 0, "failed {failed}, succeeded {succeeded}");
        let all = FlakyStore::new(inner.clone(), 1.0).put_many(vec![("p/x".into(), Bytes::new())]).await;
        assert!(all.is_err() && inner.size("p/x").await.unwrap().is_none());
    }
}
