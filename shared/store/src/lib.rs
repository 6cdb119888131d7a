#![doc = include_str!("../../README.md")]
//!
//! # This crate
//!
//! `yds-store`: every MongoDB collection, each behind the one owner type that reads and writes
//! it. The records layer: nothing outside this crate touches a `Collection`, so every write to a
//! record is one of the named transitions below, and a conditional update that decides an
//! exactly-once step (a chunk's outcome, a job's ending) is written in exactly one place.
//!
//! ## Layout
//!
//! | owner | collection(s) | what it keeps |
//! |---|---|---|
//! | [`Datasets`] | `datasets` | what an import produces: classes, splits, statistics, findings |
//! | [`Jobs`] | `import_jobs` | one import or delete request and its state machine |
//! | [`Chunks`] | `import_chunks`, `import_chunk_files` | the coordinator's per-chunk records (state, lease, outcome, statistics) and, apart, their file lists |
//! | [`Images`] | `images` | one document per image, annotations and issues embedded |
//! | [`Members`] | `import_members`, `import_used_labels` | the file index of a job's sources while it imports, and which label files chunks use |
//! | [`PlanStates`] | `import_plan_states` | where early chunk cutting stood when a tar staging pass paused |
//! | [`ApiKeys`] | `api_keys` | issued API keys, hashed |
//! | [`RateLimits`] | `rate_limits` | per-key request counters of the current window |
//! | [`Uploads`] | `uploads` | uploads in progress or done, for a day: whose, which object, how large |
//!
//! Shared record parts: [`statistics`] (counts over a set of images) and [`findings`] (what
//! is wrong with a file or a source, with a stable code). Records written by older binaries
//! are read, and their leftovers (indexes) cleared, in [`upgrade`].
//!
//! [`Db::ensure_indexes`] asks every owner for its indexes; idempotent, it runs at every start.
//!
//! ## When MongoDB is down
//!
//! Every failed call goes through [`StoreError`]'s one conversion from the driver's error, which
//! tells the process's MongoDB breaker ([`breaker`]) about connection-class failures (no server
//! to select, a refused or reset connection, a network timeout), never about a missing record or
//! a duplicate key. The edge asks that breaker before each request, so while MongoDB is known to
//! be down a request is answered at once instead of waiting out the driver's timeout
//! ([`Db::connect_with_timeout`]).

#![forbid(unsafe_code)]

pub mod api_keys;
pub mod chunks;
pub mod datasets;
pub mod findings;
pub mod images;
pub mod jobs;
pub mod members;
pub mod plan_states;
pub mod rate_limits;
pub mod statistics;
pub mod upgrade;
pub mod uploads;

use mongodb::bson::doc;
/// Times in records (milliseconds since the epoch, UTC).
pub use mongodb::bson::DateTime;
use mongodb::{Client, Database};

pub use api_keys::{ApiKeyDoc, ApiKeys};
pub use chunks::{ChunkDoc, ChunkFile, ChunkState, Chunks, Progress};
pub use datasets::{DatasetCursor, DatasetDoc, DatasetStatus, Datasets, DeleteStart, Failure};
pub use findings::{Finding, ERROR_SAMPLE};
pub use images::{DuplicateCounts, ImageDoc, ImageQuery, Images, LabelFile};
pub use jobs::{
    DeleteJobDoc, DeletePhase, EarlyChunks, IndexCursor, JobCursor, JobDoc, JobFilter, JobKind, JobRecord, JobResult,
    JobStatus, Jobs, Sources,
};
pub use members::{Location, MemberDoc, MemberWriter, Members};
pub use plan_states::PlanStates;
pub use rate_limits::RateLimits;
pub use statistics::{ClassCounts, ContentSum, SplitStatistics, Statistics};
pub use uploads::{UploadDoc, Uploads};

/// A failed database call.
#[derive(Debug, thiserror::Error)]
#[error("database error: {0}")]
pub struct StoreError(pub mongodb::error::Error);

impl From<mongodb::error::Error> for StoreError {
    /// The one place a driver error enters the records layer: a connection-class failure is
    /// counted by the [`breaker`].
    fn from(err: mongodb::error::Error) -> Self {
        if is_connection_failure(&err) {
            breaker().failed();
        }
        StoreError(err)
    }
}

impl StoreError {
    /// Whether the call failed because MongoDB could not be reached (not because of what it
    /// answered): worth a 503 and a retry.
    pub fn is_unavailable(&self) -> bool {
        is_connection_failure(&self.0)
    }
}

static BREAKER: yds_config::breaker::Breaker =
    yds_config::breaker::Breaker::new(yds_config::breaker::DEFAULT_THRESHOLD, yds_config::breaker::DEFAULT_COOL_DOWN);

/// The process's MongoDB breaker: one per process, as the driver's connection pool is shared
/// by every [`Db`] of a process in practice. Callers that answer requests [`admit`] through it
/// first and report a success; failures are reported by [`StoreError`]'s conversion.
///
/// [`admit`]: yds_config::breaker::Breaker::admit
pub fn breaker() -> &'static yds_config::breaker::Breaker {
    &BREAKER
}

/// Whether `err` says the server could not be reached: no server selected within the timeout,
/// a refused, reset or timed-out connection, a pool cleared after such an error.
fn is_connection_failure(err: &mongodb::error::Error) -> bool {
    use mongodb::error::ErrorKind;
    matches!(
        err.kind.as_ref(),
        ErrorKind::ServerSelection { .. } | ErrorKind::Io(_) | ErrorKind::ConnectionPoolCleared { .. }
    )
}

pub type StoreResult<T> = Result<T, StoreError>;

/// The owners of one database; cheap to clone, one underlying client.
#[derive(Clone, Debug)]
pub struct Db {
    database: Database,
    pub datasets: Datasets,
    pub jobs: Jobs,
    pub chunks: Chunks,
    pub images: Images,
    pub members: Members,
    pub plan_states: PlanStates,
    pub api_keys: ApiKeys,
    pub rate_limits: RateLimits,
    pub uploads: Uploads,
}

impl Db {
    /// Connects lazily (the driver connects on first use) to database `db_name` at `uri`; a
    /// call waits up to 10 s for a server (tools and tests; functions use
    /// [`Db::connect_with_timeout`]).
    pub async fn connect(uri: &str, db_name: &str) -> StoreResult<Self> {
        Self::connect_with_timeout(uri, db_name, std::time::Duration::from_secs(10)).await
    }

    /// [`Db::connect`] where a call waits at most `server_selection` for a reachable server
    /// before it fails (`YDS_MONGODB_TIMEOUT_MS` in the functions): how long a request takes to
    /// learn that MongoDB is down, before the [`breaker`] opens.
    pub async fn connect_with_timeout(
        uri: &str,
        db_name: &str,
        server_selection: std::time::Duration,
    ) -> StoreResult<Self> {
        let mut options = mongodb::options::ClientOptions::parse(uri).await?;
        options.app_name = Some("yds".into());
        options.server_selection_timeout = Some(server_selection);
        // A connection attempt to a host that does not answer gives up within the same bound.
        options.connect_timeout = Some(server_selection.max(std::time::Duration::from_millis(500)));
        let client = Client::with_options(options)?;
        Ok(Self::from_database(client.database(db_name)))
    }

    fn from_database(database: Database) -> Self {
        Self {
            datasets: Datasets::new(&database),
            jobs: Jobs::new(&database),
            chunks: Chunks::new(&database),
            images: Images::new(&database),
            members: Members::new(&database),
            plan_states: PlanStates::new(&database),
            api_keys: ApiKeys::new(&database),
            rate_limits: RateLimits::new(&database),
            uploads: Uploads::new(&database),
            database,
        }
    }

    /// The database's name (tests and tools open their own client on it to look inside).
    pub fn name(&self) -> &str {
        self.database.name()
    }

    /// Round-trips to the server; the health check.
    pub async fn ping(&self) -> StoreResult<()> {
        self.database.run_command(doc! {"ping": 1}).await?;
        Ok(())
    }

    /// Creates every index the queries use; safe to run concurrently and repeatedly. One
    /// `createIndexes` round trip per collection that has any.
    pub async fn ensure_indexes(&self) -> StoreResult<()> {
        self.datasets.ensure_indexes().await?;
        self.jobs.ensure_indexes().await?;
        self.chunks.ensure_indexes().await?;
        self.api_keys.ensure_indexes().await?;
        self.rate_limits.ensure_indexes().await?;
        self.uploads.ensure_indexes().await?;
        upgrade::drop_replaced_indexes(&self.database).await?;
        self.images.ensure_indexes().await?;
        // Members, used labels and plan states need no index of their own: their `_id`s are
        // `{job}:{...}`, queried by range.
        Ok(())
    }
}

/// RFC 3339 text of a record's time (millisecond precision, UTC), as the API shows times.
pub fn rfc3339(time: DateTime) -> String {
    time.try_to_rfc3339_string().unwrap_or_default()
}

/// A field that a map tagged by its kind must have for that kind (a [`Location`], a task
/// body), with serde's wording when it is missing. Such maps are read through a struct of
/// every field rather than serde's internally tagged reading, which first copies every field
/// into a buffer of its own.
pub fn required_field<T>(value: Option<T>, name: &str) -> Result<T, String> {
    value.ok_or_else(|| format!("missing field `{name}`"))
}

/// Whether `err` is (only) duplicate-key errors: the write was already done.
fn is_duplicate_key(err: &mongodb::error::Error) -> bool {
    use mongodb::error::{ErrorKind, WriteFailure};
    match err.kind.as_ref() {
        ErrorKind::Write(WriteFailure::WriteError(e)) => e.code == 11000,
        ErrorKind::InsertMany(e) => {
            e.write_concern_error.is_none()
                && e.write_errors.as_ref().is_some_and(|errs| errs.iter().all(|w| w.code == 11000))
        }
        ErrorKind::Command(e) => e.code == 11000,
        _ => false,
    }
}

/// The `_id` range of every record of `job_id`: members, used labels, chunk file lists and
/// plan states are all keyed `{job_id}:{...}`.
fn of_job(job_id: &str) -> mongodb::bson::Document {
    doc! {"_id": {"$gte": format!("{job_id}:"), "$lt": format!("{job_id};")}}
}

/// What one bounded deletion found and deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    /// Records it found to delete: 0 means none was left when it looked.
    pub found: u64,
    /// Records it deleted: fewer than found when a concurrent delivery deleted some first, so
    /// only `found` tells whether any may be left.
    pub deleted: u64,
}

impl std::ops::Add for Swept {
    type Output = Swept;

    fn add(self, other: Swept) -> Swept {
        Swept { found: self.found + other.found, deleted: self.deleted + other.deleted }
    }
}

/// Deletes up to `limit` of the records of `collection` matching `filter`, their ids read first
/// (through the index the filter names): a bounded piece of work however many there are.
async fn delete_some(
    collection: &mongodb::Collection<mongodb::bson::Document>,
    filter: mongodb::bson::Document,
    hint: Option<mongodb::bson::Document>,
    limit: i64,
) -> StoreResult<Swept> {
    use futures::TryStreamExt;
    let mut find = collection.find(filter.clone()).projection(doc! {"_id": 1}).limit(limit);
    if let Some(keys) = hint {
        find = find.hint(mongodb::options::Hint::Keys(keys));
    }
    let ids: Vec<mongodb::bson::Document> = find.await?.try_collect().await?;
    if ids.is_empty() {
        return Ok(Swept::default());
    }
    let found = ids.len() as u64;
    let ids: Vec<mongodb::bson::Bson> = ids.into_iter().filter_map(|mut d| d.remove("_id")).collect();
    // The filter again: only what it matches is deleted, whatever the ids.
    let mut chosen = filter;
    chosen.insert("_id", doc! {"$in": ids});
    let deleted = collection.delete_many(chosen).await?.deleted_count;
    Ok(Swept { found, deleted })
}

/// [`delete_some`] of `job_id`'s records in `collection` (those keyed `{job_id}:{...}`).
async fn delete_some_of_job(
    collection: &mongodb::Collection<mongodb::bson::Document>,
    job_id: &str,
    limit: i64,
) -> StoreResult<Swept> {
    delete_some(collection, of_job(job_id), None, limit).await
}
