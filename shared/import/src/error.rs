//! The one error of the import pipeline, and whether a retry may help.
//!
//! A task that fails with a retryable error is answered 5xx and the queue delivers it again; a
//! permanent one is recorded (the job fails with its finding) and the task is done. On the
//! queue's last attempt every failure is recorded instead (see [`crate::delivery::deliver`]), so a
//! job always reaches a terminal status.

use yds_queue::QueueError;
use yds_storage::StorageError;
use yds_store::{Finding, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The source can never be imported as asked (a refused URL, not an archive, no YAML...):
    /// the job fails with this finding.
    #[error("{}", .0.message)]
    Permanent(Finding),
    /// A dependency failed (database, object storage, queue, the source's server); a retry
    /// may succeed.
    #[error("{0}")]
    Transient(String),
    /// Fault injection (`YDS_CHAOS_CRASH`): the attempt stopped on purpose after doing part of
    /// its work, as a crashed process would.
    #[error("injected crash (YDS_CHAOS_CRASH)")]
    InjectedCrash,
}

impl ImportError {
    /// A permanent failure about `file` (empty: the whole source).
    pub fn permanent(file: &str, code: &str, message: impl Into<String>) -> Self {
        ImportError::Permanent(Finding::new(file, code, message))
    }

    /// Whether the queue should deliver the task again.
    pub fn is_retryable(&self) -> bool {
        !matches!(self, ImportError::Permanent(_))
    }
}

impl From<StoreError> for ImportError {
    fn from(err: StoreError) -> Self {
        ImportError::Transient(err.to_string())
    }
}

impl From<StorageError> for ImportError {
    fn from(err: StorageError) -> Self {
        ImportError::Transient(format!("storage: {err}"))
    }
}

impl From<QueueError> for ImportError {
    fn from(err: QueueError) -> Self {
        ImportError::Transient(err.to_string())
    }
}
