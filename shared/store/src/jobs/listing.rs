//! Jobs of every kind as a tenant sees them: one by id, or pages newest first
//! (`GET /datasets/import`), filtered by dataset or status, each filter served by its own index.

use futures::TryStreamExt;
use mongodb::bson::{doc, DateTime, Document};
use mongodb::IndexModel;

use super::{DeleteJobDoc, JobDoc, JobStatus, Jobs};
use crate::StoreResult;

/// A job of either kind.
#[derive(Debug, Clone)]
pub enum JobRecord {
    Import(Box<JobDoc>),
    Delete(Box<DeleteJobDoc>),
}

impl JobRecord {
    pub fn id(&self) -> &str {
        match self {
            JobRecord::Import(job) => &job.id,
            JobRecord::Delete(job) => &job.id,
        }
    }

    pub fn created_at(&self) -> DateTime {
        match self {
            JobRecord::Import(job) => job.created_at,
            JobRecord::Delete(job) => job.created_at,
        }
    }

    /// Reads a record of `import_jobs` by its `kind` (none: an import).
    fn read(document: Document) -> Result<Self, mongodb::bson::de::Error> {
        Ok(match document.get_str("kind") {
            Ok("delete") => JobRecord::Delete(Box::new(mongodb::bson::from_document(document)?)),
            _ => JobRecord::Import(Box::new(mongodb::bson::from_document(document)?)),
        })
    }
}

/// Which of a tenant's jobs a page holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobFilter {
    /// Only the jobs of this dataset.
    pub dataset_id: Option<String>,
    /// Only the jobs in this status.
    pub status: Option<JobStatus>,
}

/// Position after the last job of a page: `(created_at ms, id)`.
pub type JobCursor = (i64, String);

/// The indexes of the listing: newest first, per tenant, and the same per dataset and per status.
pub(super) fn indexes() -> Vec<IndexModel> {
    [
        doc! {"tenant": 1, "created_at": -1, "_id": -1},
        doc! {"tenant": 1, "dataset_id": 1, "created_at": -1, "_id": -1},
        doc! {"tenant": 1, "status": 1, "created_at": -1, "_id": -1},
    ]
    .into_iter()
    .map(|keys| IndexModel::builder().keys(keys).build())
    .collect()
}

fn undecodable(err: mongodb::bson::de::Error) -> crate::StoreError {
    crate::StoreError(mongodb::error::Error::custom(format!("a job record does not read: {err}")))
}

impl Jobs {
    fn records(&self) -> mongodb::Collection<Document> {
        self.collection.clone_with_type()
    }

    /// A tenant's job of either kind; another tenant's is reported as missing.
    pub async fn find_record_for_tenant(&self, tenant: &str, job_id: &str) -> StoreResult<Option<JobRecord>> {
        let found = self.records().find_one(doc! {"_id": job_id, "tenant": tenant}).await?;
        found.map(JobRecord::read).transpose().map_err(undecodable)
    }

    /// One page of a tenant's jobs of either kind matching `filter`, newest first, and the
    /// position after it if more follow.
    pub async fn page(
        &self,
        tenant: &str,
        filter: &JobFilter,
        after: Option<JobCursor>,
        limit: i64,
    ) -> StoreResult<(Vec<JobRecord>, Option<JobCursor>)> {
        // Each shape has its index (see `indexes`); with both filters the dataset's serves, a
        // dataset having a job or two. Not hinted: a status function may start before the
        // indexes exist, and these shapes leave the planner no wrong choice.
        let mut query = doc! {"tenant": tenant};
        if let Some(dataset_id) = &filter.dataset_id {
            query.insert("dataset_id", dataset_id);
        }
        if let Some(status) = filter.status {
            query.insert("status", mongodb::bson::to_bson(&status).expect("statuses serialize"));
        }
        if let Some((millis, id)) = after {
            let at = DateTime::from_millis(millis);
            query.insert("$or", vec![doc! {"created_at": {"$lt": at}}, doc! {"created_at": at, "_id": {"$lt": id}}]);
        }
        let documents: Vec<Document> = self
            .records()
            .find(query)
            .sort(doc! {"created_at": -1, "_id": -1})
            .limit(limit + 1)
            .await?
            .try_collect()
            .await?;
        let mut items =
            documents.into_iter().map(JobRecord::read).collect::<Result<Vec<_>, _>>().map_err(undecodable)?;
        let next = if items.len() as i64 > limit {
            items.truncate(limit as usize);
            items.last().map(|job| (job.created_at().timestamp_millis(), job.id().to_owned()))
        } else {
            None
        };
        Ok((items, next))
    }
}
