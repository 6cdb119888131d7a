//! A circuit breaker around an object store ([`yds_config::breaker`]): after consecutive
//! failures that say the store cannot be reached, calls fail at once with
//! [`StorageError::Unavailable`] for a cool-down instead of each waiting out its own timeouts
//! and retries; then one call probes, and its success closes the breaker.
//!
//! Only [`StorageError::Io`] failures count (a timeout, a refused or reset connection, a 5xx
//! that outlasted the retries): a missing object or a bad key is an answer, not an outage,
//! and an operation the backend does not offer says nothing about its health.

use std::future::Future;
use std::ops::Range;
use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::Bytes;
use yds_config::breaker::Breaker;

use super::{AppendOutcome, ListPage, ObjectStore, SessionProgress, StorageError};

pub struct BreakerStore {
    inner: Arc<dyn ObjectStore>,
    breaker: Breaker,
}

impl BreakerStore {
    /// `inner` behind a breaker with the default threshold and cool-down.
    pub fn new(inner: Arc<dyn ObjectStore>) -> Self {
        Self::with_breaker(inner, Breaker::default())
    }

    pub fn with_breaker(inner: Arc<dyn ObjectStore>, breaker: Breaker) -> Self {
        Self { inner, breaker }
    }

    /// Runs `call` if the breaker lets it, and tells the breaker how it went.
    async fn guard<T, Fut>(&self, call: Fut) -> Result<T, StorageError>
    where
        Fut: Future<Output = Result<T, StorageError>> + Send,
    {
        self.breaker
            .admit()
            .map_err(|refused| StorageError::Unavailable { retry_after_secs: refused.retry_after_secs() })?;
        let outcome = call.await;
        match &outcome {
            Err(err @ StorageError::Io(_)) if !err.is_unsupported() => self.breaker.failed(),
            _ => self.breaker.succeeded(),
        }
        outcome
    }
}

#[async_trait]
impl ObjectStore for BreakerStore {
    async fn put(&self, key: &str, data: Bytes) -> Result<(), StorageError> {
        self.guard(self.inner.put(key, data)).await
    }

    async fn put_many(&self, objects: Vec<(String, Bytes)>) -> Result<(), StorageError> {
        self.guard(self.inner.put_many(objects)).await
    }

    async fn get(&self, key: &str) -> Result<Bytes, StorageError> {
        self.guard(self.inner.get(key)).await
    }

    async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Bytes, StorageError> {
        self.guard(self.inner.get_range(key, range)).await
    }

    async fn size(&self, key: &str) -> Result<Option<u64>, StorageError> {
        self.guard(self.inner.size(key)).await
    }

    async fn list(&self, prefix: &str, page: Option<String>, page_size: usize) -> Result<ListPage, StorageError> {
        self.guard(self.inner.list(prefix, page, page_size)).await
    }

    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        self.guard(self.inner.delete(key)).await
    }

    async fn copy(&self, from: &str, to: &str) -> Result<(), StorageError> {
        self.guard(self.inner.copy(from, to)).await
    }

    async fn start_upload_session(&self, key: &str, size: Option<u64>) -> Result<Option<String>, StorageError> {
        self.guard(self.inner.start_upload_session(key, size)).await
    }

    async fn upload_session_progress(&self, session_url: &str) -> Result<SessionProgress, StorageError> {
        self.guard(self.inner.upload_session_progress(session_url)).await
    }

    async fn append_at(&self, key: &str, offset: u64, data: Bytes) -> Result<AppendOutcome, StorageError> {
        self.guard(self.inner.append_at(key, offset, data)).await
    }

    async fn delete_written_before(&self, prefix: &str, cutoff: SystemTime) -> Result<u64, StorageError> {
        self.guard(self.inner.delete_written_before(prefix, cutoff)).await
    }

    async fn delete_prefix(&self, prefix: &str) -> Result<u64, StorageError> {
        self.guard(self.inner.delete_prefix(prefix)).await
    }

    /// Signing is local work for most backends; a signer that cannot be reached counts.
    async fn signed_get_url(
        &self,
        key: &str,
        valid_from: SystemTime,
        valid_until: SystemTime,
    ) -> Result<Option<String>, StorageError> {
        self.guard(self.inner.signed_get_url(key, valid_from, valid_until)).await
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::flaky::FlakyStore;
    use crate::LocalStore;

    #[tokio::test]
    async fn a_store_that_is_down_is_refused_at_once_until_a_probe_finds_it_back() {
        let dir = tempfile::tempdir().unwrap();
        // Fails every call with an I/O error while lost (failure 1.0), counting the calls.
        let inner = Arc::new(FlakyStore::new(Arc::new(LocalStore::new(dir.path())), 0.0));
        let cool_down = Duration::from_millis(300);
        let store = BreakerStore::with_breaker(inner.clone(), Breaker::new(3, cool_down));
        store.put("d/a", Bytes::from_static(b"a")).await.unwrap();
        assert!(matches!(store.get("d/missing").await, Err(StorageError::NotFound(_))), "an answer, not an outage");

        inner.set_failure(1.0);
        for _ in 0..3 {
            assert!(matches!(store.get("d/a").await, Err(StorageError::Io(_))));
        }
        let reached = inner.calls();
        let started = std::time::Instant::now();
        let err = store.get("d/a").await.unwrap_err();
        assert!(matches!(err, StorageError::Unavailable { retry_after_secs: 1 }), "{err:?}");
        assert!(err.is_unavailable());
        assert!(started.elapsed() < Duration::from_millis(50), "refused at once");
        assert_eq!(inner.calls(), reached, "the open breaker did not call the store");

        // A probe that fails opens it again.
        tokio::time::sleep(cool_down).await;
        assert!(matches!(store.get("d/a").await, Err(StorageError::Io(_))));
        assert!(matches!(store.get("d/a").await, Err(StorageError::Unavailable { .. })));

        // Back: the next probe goes through and closes it.
        inner.set_failure(0.0);
        tokio::time::sleep(cool_down).await;
        assert_eq!(store.get("d/a").await.unwrap(), Bytes::from_static(b"a"));
        assert_eq!(store.get("d/a").await.unwrap(), Bytes::from_static(b"a"));
    }
}
