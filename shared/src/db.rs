//! The MongoDB layer: one client per process, the collections, and every index the API's
//! queries use.
//!
//! Collections:
//! - `datasets`: one document per dataset, with its statistics once imported;
//! - `import_jobs`: one per import request (the coordinator's job record);
//! - `import_chunks`: one per chunk of files, the coordinator's unit of exactly-once accounting;
//! - `import_chunk_files`: each chunk's file list, apart so that summing chunks stays cheap;
//! - `images`: one per image, annotations embedded;
//! - `import_members`: one per file of a job's source while it imports (see [`crate::members`]);
//! - `import_plan_states`: where a paused tar staging pass left its early chunks.
//!
//! [`Db::ensure_indexes`] is idempotent and runs at every start.

use mongodb::bson::{doc, Document};
use mongodb::options::IndexOptions;
use mongodb::{Client, Collection, Database, IndexModel};

use crate::api_keys::ApiKeyDoc;
use crate::coordinator::{ChunkDoc, ChunkFilesDoc};
use crate::datasets::DatasetDoc;
use crate::images::ImageDoc;
use crate::jobs::JobDoc;
use crate::members::MemberDoc;

#[derive(Debug, thiserror::Error)]
#[error("database error: {0}")]
pub struct DbError(#[from] pub mongodb::error::Error);

pub type DbResult<T> = Result<T, DbError>;

/// Handles to the collections; cheap to clone, one underlying client.
#[derive(Clone, Debug)]
pub struct Db {
    pub database: Database,
    pub datasets: Collection<DatasetDoc>,
    pub jobs: Collection<JobDoc>,
    pub chunks: Collection<ChunkDoc>,
    pub chunk_files: Collection<ChunkFilesDoc>,
    pub images: Collection<ImageDoc>,
    pub members: Collection<MemberDoc>,
    /// Label files some chunk uses (`_id` = their member id), for the orphan check.
    pub used_labels: Collection<Document>,
    /// Where early chunk cutting stood when a tar staging pass paused (`planning::early`).
    pub plan_states: Collection<Document>,
    pub api_keys: Collection<ApiKeyDoc>,
    /// Per-key request counters of the current window (see [`crate::rate_limit`]).
    pub rate_limits: Collection<Document>,
}

impl Db {
    /// Connects lazily (the driver connects on first use) and returns the handles.
    pub async fn connect(uri: &str, db_name: &str) -> DbResult<Self> {
        let mut options = mongodb::options::ClientOptions::parse(uri).await?;
        options.app_name = Some("yds".into());
        options.server_selection_timeout = Some(std::time::Duration::from_secs(10));
        let client = Client::with_options(options)?;
        Ok(Self::from_database(client.database(db_name)))
    }

    pub fn from_database(database: Database) -> Self {
        Self {
            datasets: database.collection("datasets"),
            jobs: database.collection("import_jobs"),
            chunks: database.collection("import_chunks"),
            chunk_files: database.collection("import_chunk_files"),
            images: database.collection("images"),
            members: database.collection("import_members"),
            used_labels: database.collection("import_used_labels"),
            plan_states: database.collection("import_plan_states"),
            api_keys: database.collection("api_keys"),
            rate_limits: database.collection("rate_limits"),
            database,
        }
    }

    /// Round-trips to the server; the health check.
    pub async fn ping(&self) -> DbResult<()> {
        self.database.run_command(doc! {"ping": 1}).await?;
        Ok(())
    }

    /// Creates every index the queries use; safe to run concurrently and repeatedly.
    /// One `createIndexes` round trip per collection.
    pub async fn ensure_indexes(&self) -> DbResult<()> {
        let index = |keys: Document| IndexModel::builder().keys(keys).build();
        // GET /datasets: a tenant's datasets, newest first, keyset on (created_at, _id).
        self.datasets.create_indexes([index(doc! {"tenant": 1, "created_at": -1, "_id": -1})]).await?;
        // Idempotency-Key: one job per (tenant, key); only jobs that carry a key.
        let idempotency = IndexModel::builder()
            .keys(doc! {"tenant": 1, "idempotency_key": 1})
            .options(
                IndexOptions::builder()
                    .unique(true)
                    .partial_filter_expression(doc! {"idempotency_key": {"$exists": true}})
                    .build(),
            )
            .build();
        self.jobs.create_indexes([idempotency]).await?;
        // `cargo xtask key revoke`: keys by the prefix shown when they were issued.
        self.api_keys.create_indexes([index(doc! {"prefix": 1})]).await?;
        // Rate-limit windows delete themselves once past.
        let expiry = IndexModel::builder()
            .keys(doc! {"expires_at": 1})
            .options(IndexOptions::builder().expire_after(std::time::Duration::ZERO).build())
            .build();
        self.rate_limits.create_indexes([expiry]).await?;
        // Coordinator: pending chunks of a job, and progress sums.
        self.chunks.create_indexes([index(doc! {"job_id": 1, "state": 1})]).await?;
        // Members need no index of their own: `_id` is `{job}:{path}`, queried by range.
        // GET /datasets/{id}/images: keyset on path, each filter served by its own index.
        // The issue and validity indexes hold only the images they find: most images have no
        // issue and are valid, and every key not written saves mongod work on each import
        // (a fifth of its time on `images`). `issue_codes` is absent when empty (see
        // `ImageDoc`); `valid=true` pages come from the split index, nearly every entry a hit.
        let only = |name: &str, keys: Document, filter: Document| {
            let options = IndexOptions::builder().name(name.to_owned()).partial_filter_expression(filter).build();
            IndexModel::builder().keys(keys).options(options).build()
        };
        self.drop_replaced_indexes().await?;
        self.images
            .create_indexes([
                // No index on `{dataset_id, path}`: `_id` is derived from both, so it already
                // keeps a path unique in its dataset, and pages without a split filter merge
                // this one's per-split ranges.
                index(doc! {"dataset_id": 1, "split": 1, "path": 1}),
                // Without a split filter these serve too: one range per split, merged by path.
                index(doc! {"dataset_id": 1, "split": 1, "class_ids": 1, "path": 1}),
                only(
                    ISSUES_INDEX,
                    doc! {"dataset_id": 1, "split": 1, "issue_codes": 1, "path": 1},
                    doc! {"issue_codes": {"$exists": true}},
                ),
                only(INVALID_INDEX, doc! {"dataset_id": 1, "split": 1, "valid": 1, "path": 1}, doc! {"valid": false}),
                // Exact duplicates, grouped when a job ends. Keyed by a number, not the hex
                // hash: about half the cost per import (`ImageDoc::hash_key`).
                index(doc! {"dataset_id": 1, "hash_key": 1}),
            ])
            .await?;
        Ok(())
    }

    /// Drops the indexes of `images` that earlier versions made (data dirs and clusters created
    /// before): the full-size issue and validity indexes that the partial ones replaced (before
    /// those are created with the same keys), and the unique `{dataset_id, path}` one that
    /// `_id` made redundant. Nothing to do once they are gone.
    async fn drop_replaced_indexes(&self) -> DbResult<()> {
        let names = match self.images.list_index_names().await {
            Ok(names) => names,
            Err(err) if command_code(&err) == Some(NAMESPACE_NOT_FOUND) => return Ok(()),
            Err(err) => return Err(err.into()),
        };
        const REPLACED: [&str; 4] = [
            "dataset_id_1_split_1_issue_codes_1_path_1",
            "dataset_id_1_split_1_valid_1_path_1",
            "dataset_id_1_path_1",
            "dataset_id_1_content_hash_1",
        ];
        for replaced in REPLACED {
            if names.iter().any(|name| name == replaced) {
                match self.images.drop_index(replaced).await {
                    // Another process may have dropped it first.
                    Err(err) if command_code(&err) != Some(INDEX_NOT_FOUND) => return Err(err.into()),
                    _ => {}
                }
            }
        }
        Ok(())
    }
}

const NAMESPACE_NOT_FOUND: i32 = 26;
const INDEX_NOT_FOUND: i32 = 27;

fn command_code(err: &mongodb::error::Error) -> Option<i32> {
    match err.kind.as_ref() {
        mongodb::error::ErrorKind::Command(e) => Some(e.code),
        _ => None,
    }
}

/// Names of the partial indexes on `images` (named: the full indexes they replaced had the
/// same keys under the default name).
pub const ISSUES_INDEX: &str = "issues_by_split_path";
pub const INVALID_INDEX: &str = "invalid_by_split_path";

/// Whether `err` is (only) duplicate-key errors: the write was already done.
pub fn is_duplicate_key(err: &mongodb::error::Error) -> bool {
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
