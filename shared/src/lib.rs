//! YDS shared library: everything the five functions have in common.
//!
//! # Layout
//!
//! Domain (pure rules, no I/O):
//! - [`format`]: the YOLO format — `data.yaml`, the images→labels path rule, label lines.
//! - [`validation`]: findings about a user's files, with stable codes.
//! - [`archive`]: streaming zip/tar/tar.gz members, refusing hostile ones.
//!
//! The import pipeline (see the README's flow picture):
//! - [`import`]: `POST /datasets/import` — validate, record the job, enqueue planning.
//! - [`planning`]: the planning task — index the source, resolve splits, cut chunks.
//! - [`members`]: the index of a source's files in MongoDB, and reading them back.
//! - [`ingest`]: a chunk task — judge and copy each file, write image documents.
//! - [`coordinator`]: exactly-once chunk accounting, progress, and the job's single ending.
//! - [`watchdog`]: lost chunks found from the coordinator's records, enqueued again or given up.
//!
//! - [`inline`]: the same tasks run in-process, for handler tests.
//!
//! Records and their API views: [`jobs`], [`datasets`], [`images`], [`pagination`].
//!
//! Access: [`api_keys`] (hashed keys, the edge's lookup), [`rate_limit`] (per-key limits).
//!
//! Infrastructure, each behind a trait or a single entry point:
//! - [`config`]: the environment, read once.
//! - [`backends`]: the clients a process builds once and shares.
//! - [`db`]: MongoDB collections and indexes.
//! - [`storage`]: object storage (local filesystem, Cloud Storage).
//! - [`queue`]: task delivery (durable local queue, Cloud Tasks).
//! - [`source`]: which URLs may be fetched, and fetching them.
//! - [`reading`]: sources read by byte range (local file, HTTP, Cloud Storage) or listed (folders).
//! - [`http`]: the edge — handler type, auth, problem+json, gzip, hyper and Lambda runtimes.

pub mod api_keys;
pub use yds_format::archive;
pub mod backends;
pub use yds_config as config;
pub mod coordinator;
pub mod datasets;
pub mod db;
pub use yds_format as format;
pub mod http;
pub mod images;
pub mod import;
pub mod ingest;
pub mod inline;
pub mod jobs;
pub mod members;
pub mod memory {
    pub use yds_storage::MemoryBudget;
}
pub mod pagination;
pub mod planning;
pub use yds_queue as queue;
pub mod rate_limit;
pub mod reading;
pub mod source;
pub mod tasks;
pub use yds_storage as storage;
pub mod validation {
    pub use yds_format::Issue;
}
pub mod watchdog;
