//! The [`Importer`]: what every import task needs, built once per process.

use std::sync::Arc;

use yds_config::{Config, Pacing, UrlPolicy};
use yds_format::archive::Limits;
use yds_queue::{LocalQueue, QueueError, TaskQueue};
use yds_storage::{LocalStore, MemoryBudget, ObjectStore, StorageError};
use yds_store::{Db, StoreError};

use crate::sources::SourceAccess;

/// Image bytes a process's chunk deliveries read at once, together: two read groups of 16 MiB.
/// With what reading them costs on top (a coalesced range and the files cut from it), a process
/// stays under 128 MB whatever the image sizes and however many deliveries it serves.
pub const CHUNK_MEMORY_BYTES: u64 = 32 << 20;

/// What an import needs, built once per process and shared by every task it runs.
#[derive(Clone)]
pub struct Importer {
    /// The records.
    pub db: Db,
    /// Where imported files go, and where sources are staged.
    pub objects: Arc<dyn ObjectStore>,
    /// Where the import's tasks go.
    pub queue: Arc<dyn TaskQueue>,
    /// How source URLs are checked and read.
    pub sources: SourceAccess,
    /// What archives may hold.
    pub archive_limits: Limits,
    /// How the work is cut into tasks and paced.
    pub pacing: Pacing,
    /// Image bytes all of this process's chunk deliveries hold at once.
    pub chunk_memory: MemoryBudget,
}

/// A backend that could not be set up at start-up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Queue(#[from] QueueError),
}

impl Importer {
    /// The importer `config` describes: its database, object store and queue.
    pub async fn from_config(config: &Config) -> Result<Self, SetupError> {
        let db = Db::connect_with_timeout(&config.mongodb_uri, &config.db_name, config.mongodb_timeout).await?;
        let objects = yds_storage::open(&config.storage, &config.chaos).await?;
        let queue = yds_queue::open(&config.queue).await?;
        let (gcs_endpoint, own_bucket) = match &config.storage {
            yds_config::StorageConfig::Gcs { endpoint, bucket } => (endpoint.clone(), Some(bucket.clone())),
            yds_config::StorageConfig::Local { .. } => (None, None),
        };
        let sources =
            SourceAccess::new(config.url_policy, config.fetch_timeout, config.scratch_dir.clone(), gcs_endpoint)
                .with_own_bucket(own_bucket);
        Ok(Self::with(db, objects, queue, sources, config.pacing))
    }

    /// An importer on the local backends under `data_dir` (storage, queue, scratch) and an
    /// existing database; the queue is returned too, for whoever delivers its tasks.
    pub fn local(db: Db, data_dir: &std::path::Path, url_policy: UrlPolicy) -> (Self, LocalQueue) {
        let queue = LocalQueue::new(data_dir.join("queue"));
        let objects = Arc::new(LocalStore::new(data_dir.join("storage")));
        let timeout = std::time::Duration::from_secs(30);
        let sources = SourceAccess::new(url_policy, timeout, data_dir.join("scratch"), None);
        (Self::with(db, objects, Arc::new(queue.clone()), sources, Pacing::default()), queue)
    }

    fn with(
        db: Db,
        objects: Arc<dyn ObjectStore>,
        queue: Arc<dyn TaskQueue>,
        sources: SourceAccess,
        pacing: Pacing,
    ) -> Self {
        // Uploads are read from the store the import writes to.
        let sources = sources.with_uploads(objects.clone());
        Self {
            db,
            objects,
            queue,
            sources,
            archive_limits: Limits::default(),
            pacing,
            chunk_memory: MemoryBudget::new(CHUNK_MEMORY_BYTES),
        }
    }
}
