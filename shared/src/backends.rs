//! The backends a function talks to, built once per process from [`Config`].
//!
//! One MongoDB client, one object store and one queue handle are shared by every request the
//! process serves; building them is the only place that picks an implementation.

use std::path::PathBuf;
use std::sync::Arc;

use crate::archive::Limits;
use crate::config::{Config, Pacing, StorageConfig, UrlPolicy};
use crate::db::Db;
use crate::memory::MemoryBudget;
use crate::queue::{LocalQueue, QueueError, TaskQueue};
use crate::source::Fetcher;
use crate::storage::{GcsStore, LocalStore, ObjectStore, StorageError};

/// Largest source file downloaded (an archive of a 100 GB dataset, with room).
pub const MAX_SOURCE_BYTES: u64 = 200 * 1024 * 1024 * 1024;

/// Image bytes a process's chunk deliveries read at once, together: two read groups of 16 MiB.
/// With what reading them costs on top (a coalesced range and the files cut from it), a process
/// stays under 128 MB whatever the image sizes and however many deliveries it serves.
pub const CHUNK_MEMORY_BYTES: u64 = 32 << 20;

/// A backend that could not be set up at start-up.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error(transparent)]
    Db(#[from] crate::db::DbError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Queue(#[from] QueueError),
}

#[derive(Clone)]
pub struct Backends {
    pub db: Db,
    pub store: Arc<dyn ObjectStore>,
    pub queue: Arc<dyn TaskQueue>,
    pub fetcher: Fetcher,
    pub url_policy: UrlPolicy,
    pub scratch_dir: PathBuf,
    pub archive_limits: Limits,
    pub pacing: Pacing,
    /// Cloud Storage endpoint override for `gs://` sources (emulators); `None`: Google's.
    pub gcs_endpoint: Option<String>,
    /// Image bytes all of this process's chunk deliveries hold at once.
    pub chunk_memory: MemoryBudget,
}

impl Backends {
    /// Local backends under `data_dir` (storage, queue, scratch) on an existing database.
    pub fn local(db: Db, data_dir: &std::path::Path, url_policy: UrlPolicy) -> (Self, LocalQueue) {
        let queue = LocalQueue::new(data_dir.join("queue"));
        let backends = Self {
            db,
            store: Arc::new(LocalStore::new(data_dir.join("storage"))),
            queue: Arc::new(queue.clone()),
            fetcher: Fetcher::new(url_policy, std::time::Duration::from_secs(30), MAX_SOURCE_BYTES),
            url_policy,
            scratch_dir: data_dir.join("scratch"),
            archive_limits: Limits::default(),
            pacing: Pacing::default(),
            gcs_endpoint: None,
            chunk_memory: MemoryBudget::new(CHUNK_MEMORY_BYTES),
        };
        (backends, queue)
    }

    /// A Cloud Storage handle on `bucket` for reading a `gs://` source.
    pub async fn gcs_bucket(&self, bucket: &str) -> Result<GcsStore, StorageError> {
        match &self.gcs_endpoint {
            Some(endpoint) => GcsStore::with_endpoint(bucket, endpoint).await,
            None => GcsStore::new(bucket).await,
        }
    }

    pub async fn from_config(config: &Config) -> Result<Self, BackendError> {
        let db = Db::connect(&config.mongodb_uri, &config.db_name).await?;
        let store = object_store(config).await?;
        let queue = yds_queue::open(&config.queue).await?;
        Ok(Self {
            db,
            store,
            queue,
            fetcher: Fetcher::new(config.url_policy, config.fetch_timeout, MAX_SOURCE_BYTES),
            url_policy: config.url_policy,
            scratch_dir: config.scratch_dir.clone(),
            archive_limits: Limits::default(),
            pacing: config.pacing,
            gcs_endpoint: match &config.storage {
                StorageConfig::Gcs { endpoint, .. } => endpoint.clone(),
                StorageConfig::Local { .. } => None,
            },
            chunk_memory: MemoryBudget::new(CHUNK_MEMORY_BYTES),
        })
    }
}

/// The object store `config` names (with the local chaos settings applied); for the functions
/// that need only it.
pub async fn object_store(config: &Config) -> Result<Arc<dyn ObjectStore>, StorageError> {
    yds_storage::open(&config.storage, &config.chaos).await
}
