#![doc = include_str!("../../README.md")]
//!
//! # This crate
//!
//! `yds-import`: the import pipeline — from a request to a dataset, as many short, retryable
//! tasks. The top library layer: it uses the records ([`yds_store`]), object storage
//! ([`yds_storage`]) and the queue ([`yds_queue`]), and judges files by the rules of
//! [`yds_format`].
//!
//! ## Layout
//!
//! In the order an import goes through them (see the README's flow picture):
//! - [`accept`]: `POST /datasets/import` — check the request, record the job and the dataset,
//!   send the first tasks.
//! - [`tasks`]: what process-chunk is asked to do, and the tasks' names.
//! - [`delivery`]: [`deliver`], the one way a delivered task is run (by process-chunk, and
//!   in-process by tests).
//! - [`sources`]: which URLs may be read, and reading them — by range, listed, or downloaded —
//!   down to one member's bytes.
//! - [`planning`]: index the sources' files, resolve splits, cut chunks.
//! - [`ingest`]: one chunk — judge and copy each file, write the image documents.
//! - [`coordinator`]: each chunk's outcome once, progress, and the job's single ending.
//! - [`finishing`]: what that ending adds to the dataset: whether it can be trained on, and its
//!   content hash (is it a copy of an earlier dataset?).
//! - [`watchdog`]: lost tasks found from the records, sent again or given up.
//! - [`deletion`]: `DELETE /datasets/{id}` — a dataset made invisible at once, then deleted
//!   by short steps (images, files, the import's records), its import cancelled first.
//!
//! What every task shares is an [`Importer`] (the records, object storage, the queue, source
//! access and pacing), built once per process; every failure is an [`ImportError`], which says
//! whether a retry may help.

#![forbid(unsafe_code)]

pub mod accept;
pub mod coordinator;
pub mod deletion;
pub mod delivery;
pub mod error;
pub mod finishing;
pub mod importer;
pub mod ingest;
pub mod planning;
pub mod sources;
pub mod tasks;
pub mod watchdog;

pub use delivery::{deliver, Attempt};
pub use error::ImportError;
pub use importer::{Importer, SetupError};
pub use tasks::TaskBody;
