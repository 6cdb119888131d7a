//! Opening a source URL under the URL policy.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use yds_config::UrlPolicy;
use yds_storage::{GcsStore, ObjectStore, StorageError};

use super::error::SourceError;
use super::fetch::Fetcher;
use super::policy::{self, SourceUrl};
use super::ranged::{gcs_error, At, Folder, Opened, RangedFile};

/// Largest source file downloaded (an archive of a 100 GB dataset, with room).
pub const MAX_SOURCE_BYTES: u64 = 200 * 1024 * 1024 * 1024;

/// How a process reaches sources: the URL policy, the HTTP client that keeps to it, where
/// downloads are spooled, and which Cloud Storage endpoint `gs://` URLs mean.
#[derive(Clone)]
pub struct SourceAccess {
    pub policy: UrlPolicy,
    pub fetcher: Fetcher,
    /// Local scratch space for downloads (never the object store).
    pub scratch_dir: PathBuf,
    /// Cloud Storage endpoint override for `gs://` sources (emulators); `None`: Google's.
    pub gcs_endpoint: Option<String>,
}

impl SourceAccess {
    /// Sources under `policy`; a download that stalls for `stall_timeout` is abandoned.
    pub fn new(policy: UrlPolicy, stall_timeout: Duration, scratch_dir: PathBuf, gcs_endpoint: Option<String>) -> Self {
        Self { policy, fetcher: Fetcher::new(policy, stall_timeout, MAX_SOURCE_BYTES), scratch_dir, gcs_endpoint }
    }

    /// A Cloud Storage handle on `bucket` for reading a `gs://` source.
    pub async fn gcs_bucket(&self, bucket: &str) -> Result<GcsStore, StorageError> {
        match &self.gcs_endpoint {
            Some(endpoint) => GcsStore::with_endpoint(bucket, endpoint).await,
            None => GcsStore::new(bucket).await,
        }
    }

    /// Opens `url` under the policy: a file read by range, a folder, or an HTTP file whose
    /// server ignores ranges.
    pub async fn open(&self, url: &str) -> Result<Opened, SourceError> {
        match policy::parse(url, self.policy)? {
            SourceUrl::File(path) if path.is_dir() => Ok(Opened::Tree(Folder::Local(path))),
            SourceUrl::File(path) => {
                let size = tokio::fs::metadata(&path)
                    .await
                    .map_err(|_| SourceError::NotFound(format!("`{url}` does not exist")))?
                    .len();
                Ok(Opened::File(RangedFile::new(At::Local(path), size)))
            }
            SourceUrl::Http(url) => {
                let probe = self.fetcher.probe(&url).await?;
                if !probe.ranges {
                    return Ok(Opened::HttpWithoutRanges { url, size: probe.size });
                }
                Ok(Opened::File(RangedFile::new(At::Http { fetcher: self.fetcher.clone(), url }, probe.size)))
            }
            SourceUrl::Gcs { bucket, object } => {
                let store = Arc::new(self.gcs_bucket(&bucket).await.map_err(gcs_error)?);
                if object.is_empty() || object.ends_with('/') {
                    return Ok(Opened::Tree(Folder::Gcs { store, prefix: object }));
                }
                match store.size(&object).await.map_err(gcs_error)? {
                    Some(size) => Ok(Opened::File(RangedFile::new(At::Gcs { store, object }, size))),
                    // `gs://bucket/prefix` without the slash may still name a folder.
                    None => {
                        let prefix = format!("{object}/");
                        let page = store.list(&prefix, None, 1).await.map_err(gcs_error)?;
                        if page.objects.is_empty() {
                            return Err(SourceError::NotFound(format!("no object or folder `{url}`")));
                        }
                        Ok(Opened::Tree(Folder::Gcs { store, prefix }))
                    }
                }
            }
        }
    }

    /// Opens a source that must be a single file (a zip or tar read by range).
    pub async fn open_file(&self, url: &str) -> Result<RangedFile, SourceError> {
        match self.open(url).await? {
            Opened::File(file) => Ok(file),
            Opened::HttpWithoutRanges { .. } => {
                Err(SourceError::Unusable(format!("`{url}` no longer answers byte-range requests")))
            }
            Opened::Tree(_) => Err(SourceError::Unusable(format!("`{url}` is a folder, not a file"))),
        }
    }
}
