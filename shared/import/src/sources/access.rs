//! Opening a source URL under the URL policy.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use yds_config::UrlPolicy;
use yds_storage::{keys, GcsStore, ObjectStore, StorageError};

use super::error::SourceError;
use super::fetch::Fetcher;
use super::policy::{self, SourceUrl};
use super::ranged::{gcs_error, object_error, At, Folder, Opened, RangedFile};

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
    /// This deployment's own object store, where `upload://` sources are; `None`: uploads
    /// cannot be read (set by [`crate::Importer`]).
    pub uploads: Option<Arc<dyn ObjectStore>>,
    /// The Cloud Storage bucket this deployment keeps its datasets in. `gs://` sources are read
    /// with the service's own credentials, so a `gs://` URL naming this bucket would let a
    /// tenant import another tenant's files: refused (uploads come in as `upload://`).
    pub own_bucket: Option<String>,
}

impl SourceAccess {
    /// Sources under `policy`; a download that stalls for `stall_timeout` is abandoned.
    pub fn new(policy: UrlPolicy, stall_timeout: Duration, scratch_dir: PathBuf, gcs_endpoint: Option<String>) -> Self {
        let fetcher = Fetcher::new(policy, stall_timeout, MAX_SOURCE_BYTES);
        Self { policy, fetcher, scratch_dir, gcs_endpoint, uploads: None, own_bucket: None }
    }

    /// The same access, refusing `gs://` sources in `bucket`, the deployment's own.
    pub fn with_own_bucket(self, bucket: Option<String>) -> Self {
        Self { own_bucket: bucket, ..self }
    }

    /// `url` parsed under the policy, or why it may not be read: what acceptance checks and
    /// what every open checks again.
    pub fn check(&self, url: &str) -> Result<SourceUrl, SourceError> {
        let parsed = policy::parse(url, self.policy)?;
        if let SourceUrl::Gcs { bucket, .. } = &parsed {
            if self.own_bucket.as_deref() == Some(bucket.as_str()) {
                return Err(SourceError::Refused(format!(
                    "`gs://{bucket}` is this service's own bucket, which imports may not read; \
                     upload the archive instead (`POST /uploads`, or `yds import PATH`)"
                )));
            }
        }
        Ok(parsed)
    }

    /// The same access, reading `upload://` sources from `objects`.
    pub fn with_uploads(self, objects: Arc<dyn ObjectStore>) -> Self {
        Self { uploads: Some(objects), ..self }
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
        match self.check(url)? {
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
            SourceUrl::Upload { upload_id, file_name } => {
                // Acceptance names the file; a bare `upload://{id}` never reaches a job.
                let file_name = file_name.ok_or_else(|| {
                    SourceError::Unusable(format!("`{url}` names no file: it was not accepted as an import's source"))
                })?;
                let store = self
                    .uploads
                    .clone()
                    .ok_or_else(|| SourceError::Unusable(format!("`{url}`: uploads are not readable here")))?;
                let key = keys::upload(&upload_id, &file_name);
                match store.size(&key).await.map_err(object_error)? {
                    Some(size) => Ok(Opened::File(RangedFile::new(At::Object { store, key }, size))),
                    None => Err(SourceError::NotFound(format!(
                        "upload {upload_id} is gone: uploads are deleted a day after they are made"
                    ))),
                }
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
