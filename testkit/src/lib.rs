//! Test and benchmark helpers for YDS: everything a test needs to put a YOLO dataset behind
//! a URL without touching the internet.
//!
//! # Layout
//!
//! - [`dataset`]: [`generate`] writes a synthetic YOLO dataset (`data.yaml`, image and label
//!   trees in the Ultralytics or Roboflow layout) with real encoded JPEG and PNG files, and
//!   returns what an importer must find in it ([`GeneratedDataset`], [`ExpectedImage`]).
//!   Reproducible: the same [`DatasetSpec`] gives byte-identical files.
//! - [`archive`]: [`pack_zip`], [`pack_tar_gz`] and [`pack_tar`] turn a directory into the
//!   archive a user would upload, members sorted, timestamps fixed.
//! - [`server`]: [`FileServer`], a loopback HTTP/1.1 server over a directory, with HEAD and
//!   single byte-range requests, for imports from `http://` URLs.
//! - [`child`]: a test's helper process — this test binary run again for one ignored test.
//! - [`fs`]: [`copy_dir`], to copy the read-only shared datasets into a writable temp dir.
//! - `db` (feature `store`): a fresh database on the test `mongod`, and a look inside it.
//! - `inline` (feature `import`): the import run in-process on such a database, its tasks
//!   delivered by calling the same entry process-chunk uses.
//! - [`env`](mod@env): what `cargo xtask test` provides: the test `mongod`'s URI, the tools folder, the
//!   function binaries; and the real datasets beside the repository, when they are there.
//! - [`bulk`]: [`write_bulk_archives`] writes one large synthetic dataset (up to millions of
//!   images) straight into a `.tar.gz` and a `.zip`, without the tree, for benchmarks.
//! - `browser` (feature `browser`): headless Chromium driven over WebDriver, its console errors
//!   and screenshots, for the web app's tests and benchmark.
//! - [`tasks`]: [`task_dataset`] writes a small dataset of each task (detect, segment, pose,
//!   obb), one corrupt image included, for the tests that draw annotations.
//!
//! This crate is for tests, benchmarks and the demo only: it never ships in a function binary,
//! and its server must never listen anywhere but loopback.

pub mod archive;
#[cfg(feature = "browser")]
pub mod browser;
pub mod bulk;
pub mod child;
pub mod dataset;
#[cfg(feature = "store")]
pub mod db;
mod encode;
pub mod env;
pub mod fs;
#[cfg(feature = "import")]
pub mod inline;
pub mod server;
pub mod tasks;

pub use archive::{pack_tar, pack_tar_gz, pack_zip};
pub use bulk::{photo, write_bulk_archives, BulkSpec, BulkSummary, SizeMix};
pub use dataset::{generate, DatasetSpec, Defects, ExpectedImage, GeneratedDataset, Layout};
pub use env::{bin_dir, browser, mongodb_uri, real_datasets, tools_dir};
pub use fs::{copy_dir, files_under};
pub use server::FileServer;
pub use tasks::{task_dataset, TaskDataset, TASKS, TASK_CLASSES};
