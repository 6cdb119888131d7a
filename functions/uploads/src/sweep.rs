//! Expiring uploads where no lifecycle rule does it: on a local directory, the objects under
//! `temp/uploads/` last written more than a day ago are deleted by this function, at start and
//! then at most once an hour, when an upload is created. (A Cloud Storage bucket deletes them
//! itself, by the lifecycle rule in `terraform/`; the store says it cannot sweep, and the
//! sweeper stops asking.) Records expire by their TTL index either way.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use yds_storage::keys::UPLOADS_PREFIX;
use yds_storage::{ObjectStore, StorageError};

/// How often a sweep runs at most.
pub const SWEEP_EVERY: Duration = Duration::from_secs(3600);

#[derive(Debug, Default)]
struct State {
    /// When the last sweep started.
    last: Option<Instant>,
    /// The store cannot sweep (a bucket, which expires uploads by its lifecycle rule).
    unsupported: bool,
}

/// Deletes expired uploads, now or at most once an hour.
pub struct Sweeper {
    objects: Arc<dyn ObjectStore>,
    lifetime: Duration,
    state: Mutex<State>,
}

impl Sweeper {
    /// A sweeper deleting what was last written more than `lifetime` ago.
    pub fn new(objects: Arc<dyn ObjectStore>, lifetime: Duration) -> Self {
        Self { objects, lifetime, state: Mutex::default() }
    }

    /// Sweeps now; how many objects were deleted. `Ok(0)` on a store that cannot sweep.
    pub async fn sweep(&self) -> Result<u64, StorageError> {
        self.state.lock().expect("not poisoned").last = Some(Instant::now());
        let cutoff = SystemTime::now() - self.lifetime;
        match self.objects.delete_written_before(UPLOADS_PREFIX, cutoff).await {
            Err(err) if err.is_unsupported() => {
                self.state.lock().expect("not poisoned").unsupported = true;
                Ok(0)
            }
            Ok(deleted) => {
                if deleted > 0 {
                    tracing::info!(deleted, "expired uploads deleted");
                }
                Ok(deleted)
            }
            Err(err) => Err(err),
        }
    }

    /// Starts a sweep in the background unless one started within the hour (or the store
    /// cannot sweep). Never waits: a request is not held up by the sweep it set off.
    pub fn sweep_if_due(self: &Arc<Self>) {
        {
            let mut state = self.state.lock().expect("not poisoned");
            if state.unsupported || state.last.is_some_and(|last| last.elapsed() < SWEEP_EVERY) {
                return;
            }
            // Claimed here, so concurrent requests start one sweep between them.
            state.last = Some(Instant::now());
        }
        let sweeper = self.clone();
        tokio::spawn(async move {
            if let Err(err) = sweeper.sweep().await {
                tracing::warn!(error = %err, "sweeping expired uploads failed; the next sweep retries");
            }
        });
    }
}
