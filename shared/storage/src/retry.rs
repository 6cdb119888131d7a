//! Retries of failed storage calls, with backoff, as the Cloud Storage backend does inside
//! itself (`gcs::RetryPolicy`). Wraps the chaos store: `YDS_CHAOS_STORAGE_FAIL` stands for
//! Cloud Storage's occasional 503s and resets, which a client retries before any chunk sees
//! them; only a failure that outlasts the retries fails the chunk's attempt.

use std::future::Future;
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use backon::{ExponentialBuilder, Retryable};
use bytes::Bytes;

use super::{AppendOutcome, ListPage, ObjectStore, SessionProgress, StorageError};

pub struct RetryingStore {
    inner: Arc<dyn ObjectStore>,
    backoff: ExponentialBuilder,
}

impl RetryingStore {
    /// Three attempts, 20 ms then 80 ms apart.
    pub fn new(inner: Arc<dyn ObjectStore>) -> Self {
        Self::with_attempts(inner, 3)
    }

    pub fn with_attempts(inner: Arc<dyn ObjectStore>, attempts: u32) -> Self {
        let backoff = ExponentialBuilder::new()
            .with_min_delay(Duration::from_millis(20))
            .with_factor(4.0)
            .with_max_delay(Duration::from_secs(5))
            .with_max_times(attempts.saturating_sub(1) as usize);
        Self { inner, backoff }
    }

    /// Runs `call` until it succeeds, fails for good (a missing object, a bad key, an
    /// operation the backend does not offer) or has used every attempt.
    async fn retry<T, F, Fut>(&self, call: F) -> Result<T, StorageError>
    where
        F: FnMut() -> Fut + Send,
        Fut: Future<Output = Result<T, StorageError>> + Send,
    {
        call.retry(self.backoff)
            .when(|err| matches!(err, StorageError::Io(_)) && !err.is_unsupported())
            .notify(|err, delay| tracing::debug!(error = %err, ?delay, "storage call failed; retrying"))
            .await
    }
}

#[async_trait]
impl ObjectStore for RetryingStore {
    async fn put(&self, key: &str, data: Bytes) -> Result<(), StorageError> {
        self.retry(|| self.inner.put(key, data.clone())).await
    }

    /// The batch at once first; after a failure, each object on its own with its own retries
    /// (writing an object again is harmless: writes are whole and replace the object).
    async fn put_many(&self, objects: Vec<(String, Bytes)>) -> Result<(), StorageError> {
        match self.inner.put_many(objects.clone()).await {
            Err(StorageError::Io(_)) => {}
            outcome => return outcome,
        }
        for (key, data) in objects {
            self.put(&key, data).await?;
        }
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Bytes, StorageError> {
        self.retry(|| self.inner.get(key)).await
    }

    async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Bytes, StorageError> {
        self.retry(|| self.inner.get_range(key, range.clone())).await
    }

    async fn size(&self, key: &str) -> Result<Option<u64>, StorageError> {
        self.retry(|| self.inner.size(key)).await
    }

    async fn list(&self, prefix: &str, page: Option<String>, page_size: usize) -> Result<ListPage, StorageError> {
        self.retry(|| self.inner.list(prefix, page.clone(), page_size)).await
    }

    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        self.retry(|| self.inner.delete(key)).await
    }

    async fn copy(&self, from: &str, to: &str) -> Result<(), StorageError> {
        self.retry(|| self.inner.copy(from, to)).await
    }

    async fn start_upload_session(&self, key: &str, size: Option<u64>) -> Result<Option<String>, StorageError> {
        self.retry(|| self.inner.start_upload_session(key, size)).await
    }

    async fn upload_session_progress(&self, session_url: &str) -> Result<SessionProgress, StorageError> {
        self.retry(|| self.inner.upload_session_progress(session_url)).await
    }

    /// Retried as any call: an append is conditional on the offset, so an attempt that did write
    /// before failing makes the next one answer [`AppendOutcome::OffsetMismatch`], never a
    /// second copy.
    async fn append_at(&self, key: &str, offset: u64, data: Bytes) -> Result<AppendOutcome, StorageError> {
        self.retry(|| self.inner.append_at(key, offset, data.clone())).await
    }

    async fn delete_written_before(&self, prefix: &str, cutoff: SystemTime) -> Result<u64, StorageError> {
        self.retry(|| self.inner.delete_written_before(prefix, cutoff)).await
    }

    async fn signed_get_url(
        &self,
        key: &str,
        valid_from: SystemTime,
        valid_until: SystemTime,
    ) -> Result<Option<String>, StorageError> {
        self.retry(|| self.inner.signed_get_url(key, valid_from, valid_until)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flaky::FlakyStore;
    use crate::LocalStore;

    #[tokio::test]
    async fn failures_that_a_retry_clears_never_reach_the_caller() {
        let dir = tempfile::tempdir().unwrap();
        let local: Arc<dyn ObjectStore> = Arc::new(LocalStore::new(dir.path()));
        // One call in ten fails: a batch of 100 objects almost never succeeds at once, while an
        // object failing six attempts in a row is a one-in-a-million event.
        let store = RetryingStore::with_attempts(Arc::new(FlakyStore::new(local.clone(), 0.1)), 6);
        let objects: Vec<(String, Bytes)> =
            (0..100).map(|i| (format!("o/{i:03}"), Bytes::from(vec![i as u8; 10]))).collect();
        store.put_many(objects.clone()).await.unwrap();
        for (key, data) in &objects {
            assert_eq!(&local.get(key).await.unwrap(), data);
        }
        assert!(matches!(store.get("o/missing").await, Err(StorageError::NotFound(_))));
    }

    #[tokio::test]
    async fn what_a_backend_cannot_do_is_not_tried_again() {
        let dir = tempfile::tempdir().unwrap();
        let store = RetryingStore::new(Arc::new(LocalStore::new(dir.path())));
        let started = std::time::Instant::now();
        let err = store.upload_session_progress("https://example.com/session").await.unwrap_err();
        assert!(err.is_unsupported(), "{err}");
        assert!(started.elapsed() < Duration::from_millis(20), "no backoff: {:?}", started.elapsed());
        // What it can do goes through.
        let appended = store.append_at("u/f", 0, Bytes::from_static(b"ab")).await.unwrap();
        assert_eq!(appended, AppendOutcome::Appended { size: 2 });
        assert_eq!(store.start_upload_session("u/g", Some(5)).await.unwrap(), None, "a directory has no sessions");
    }

    #[tokio::test]
    async fn a_failure_that_persists_fails_after_the_last_attempt() {
        let dir = tempfile::tempdir().unwrap();
        let local: Arc<dyn ObjectStore> = Arc::new(LocalStore::new(dir.path()));
        let store = RetryingStore::new(Arc::new(FlakyStore::new(local.clone(), 1.0)));
        let started = std::time::Instant::now();
        let err = store.put("o/x", Bytes::from_static(b"x")).await.unwrap_err();
        assert!(err.to_string().contains("injected"), "{err}");
        assert!(started.elapsed() >= Duration::from_millis(100), "two backoffs: 20 ms + 80 ms");
        assert!(store.put_many(vec![("o/y".into(), Bytes::new())]).await.is_err());
        assert_eq!(local.size("o/x").await.unwrap(), None);
    }
}
