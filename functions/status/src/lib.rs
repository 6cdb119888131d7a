//! status: `GET /datasets/import/{job_id}/status` — where a job stands, an import or a delete —
//! and `GET /datasets/import`, the caller's jobs, newest first, keyset-paginated, optionally
//! only those of one dataset or in one status; each item is the status route's object.

use async_trait::async_trait;
use http::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};
use yds_edge::cursors::{self, Cursors};
use yds_edge::query::{self, path_segments, NoParams, QueryParams};
use yds_edge::{json_response, ApiError, Caller, Handler, Request, Response};
use yds_store::{
    rfc3339, Db, DeleteJobDoc, JobCursor, JobDoc, JobFilter, JobRecord, JobStatus, StoreResult, ERROR_SAMPLE,
};

pub struct JobStatusHandler {
    db: Db,
    cursors: Cursors,
}

/// The query of `GET /datasets/import`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PageQuery {
    dataset_id: Option<String>,
    status: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

impl QueryParams for PageQuery {
    const NAMES: &'static [&'static str] = &["dataset_id", "status", "limit", "cursor"];
}

/// The longest dataset id the filter takes (ids are 32 hex digits).
const MAX_DATASET_ID: usize = 128;

impl PageQuery {
    /// The filter the query asks for; a bad value is a 400 naming what is expected.
    fn filter(&self) -> Result<JobFilter, ApiError> {
        let dataset_id = match &self.dataset_id {
            Some(id) if id.is_empty() || id.len() > MAX_DATASET_ID || id.chars().any(char::is_control) => {
                return Err(ApiError::BadRequest(format!(
                    "`dataset_id` must be a dataset id (1 to {MAX_DATASET_ID} characters)"
                )))
            }
            other => other.clone(),
        };
        let status = match &self.status {
            None => None,
            Some(text) => Some(JobStatus::parse(text).ok_or_else(|| {
                ApiError::BadRequest(format!("`status` must be one of: {}", JobStatus::ALL.join(", ")))
            })?),
        };
        Ok(JobFilter { dataset_id, status })
    }
}

impl JobStatusHandler {
    pub fn new(db: Db, cursors: Cursors) -> Self {
        Self { db, cursors }
    }

    /// The API's job object, of either kind.
    async fn view(&self, job: &JobRecord) -> StoreResult<Value> {
        match job {
            JobRecord::Import(job) => self.import_view(job).await,
            JobRecord::Delete(job) => Ok(delete_view(job)),
        }
    }

    /// An import's status object. A finished job answers from its frozen result; a running
    /// one has MongoDB sum its finished chunks.
    async fn import_view(&self, job: &JobDoc) -> StoreResult<Value> {
        let progress = match &job.result {
            Some(r) => (r.files_done, r.statistics.clone(), r.chunks_done, r.chunks_failed, r.errors.clone()),
            None => {
                let p = self.db.chunks.running_totals(&job.id).await?;
                (p.files_done, p.statistics, p.chunks_done, p.chunks_failed, p.errors)
            }
        };
        let (files_done, statistics, chunks_done, chunks_failed, chunk_errors) = progress;
        let mut errors = job.errors.clone();
        errors.extend(chunk_errors);
        errors.truncate(ERROR_SAMPLE);
        // What a running import is doing: reading its source and cutting chunks, or importing them.
        let phase = match job.status {
            JobStatus::Running if !job.planned => Some("planning"),
            JobStatus::Running => Some("importing"),
            _ => None,
        };
        Ok(json!({
            "job_id": job.id,
            "dataset_id": job.dataset_id,
            "kind": "import",
            "status": job.status,
            "phase": phase,
            "progress": {
                "files_total": job.files_total,
                "files_done": files_done,
                "percent": percent(job.status, files_done, job.files_total),
                "chunks_total": job.chunks_total,
                "chunks_done": chunks_done,
                "chunks_failed": chunks_failed,
            },
            "counts": {
                "images": statistics.images,
                "labels": statistics.labels,
                "annotations": statistics.annotations,
                "invalid_images": statistics.invalid_images,
                "invalid_labels": statistics.invalid_labels,
            },
            "errors": errors,
            "findings": job.findings,
            "created_at": rfc3339(job.created_at),
            "updated_at": rfc3339(job.updated_at),
            "finished_at": job.finished_at.map(rfc3339),
        }))
    }

    /// `GET /datasets/import/{job_id}/status`.
    async fn one(&self, req: &Request, caller: &Caller, job_id: &str) -> Result<Response, ApiError> {
        query::parse::<NoParams>(req)?;
        let job = self
            .db
            .jobs
            .find_record_for_tenant(caller.tenant(), job_id)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("job `{job_id}` not found")))?;
        Ok(json_response(StatusCode::OK, &self.view(&job).await?))
    }

    /// `GET /datasets/import`: one page of the caller's jobs.
    async fn page(&self, req: &Request, caller: &Caller) -> Result<Response, ApiError> {
        let params: PageQuery = query::parse(req)?;
        let limit = cursors::parse_limit(params.limit.as_ref(), 20, 100)?;
        let filter = params.filter()?;
        // A cursor is valid only for the tenant and the filters it was issued for.
        let scope = format!(
            "jobs\n{:?}\ndataset_id={:?}\nstatus={:?}",
            caller.tenant(),
            filter.dataset_id,
            params.status.as_deref().filter(|_| filter.status.is_some())
        );
        let after: Option<JobCursor> = params.cursor.map(|c| self.cursors.decode(&scope, &c)).transpose()?;
        let (jobs, next) = self.db.jobs.page(caller.tenant(), &filter, after, limit).await?;
        let mut items = Vec::with_capacity(jobs.len());
        for job in &jobs {
            items.push(self.view(job).await?);
        }
        let next_cursor = next.map(|c| self.cursors.encode(&scope, &c));
        Ok(json_response(StatusCode::OK, &json!({"items": items, "next_cursor": next_cursor})))
    }
}

/// A job's `percent`: 100 only in a terminal status, rounded to a tenth.
fn percent(status: JobStatus, done: u64, total: u64) -> f64 {
    let percent = if status.is_terminal() {
        100.0
    } else if total == 0 {
        0.0
    } else {
        ((done as f64 / total as f64) * 100.0).min(99.9)
    };
    (percent * 10.0).round() / 10.0
}

/// A delete job's status object: the same shape as an import's; its files are the dataset's
/// images, `files_total` those it had when the deletion counted them and `files_done` those
/// deleted so far. It has no chunks and counts nothing.
fn delete_view(job: &DeleteJobDoc) -> Value {
    let files_total = job.files_total.unwrap_or(0);
    let files_done = job.files_done.min(files_total);
    json!({
        "job_id": job.id,
        "dataset_id": job.dataset_id,
        "kind": "delete",
        "status": job.status,
        "phase": job.phase.as_str(),
        "progress": {
            "files_total": files_total,
            "files_done": files_done,
            "percent": percent(job.status, files_done, files_total),
            "chunks_total": 0,
            "chunks_done": 0,
            "chunks_failed": 0,
        },
        "counts": {"images": 0, "labels": 0, "annotations": 0, "invalid_images": 0, "invalid_labels": 0},
        "errors": job.errors,
        "findings": [],
        "created_at": rfc3339(job.created_at),
        "updated_at": rfc3339(job.updated_at),
        "finished_at": job.finished_at.map(rfc3339),
    })
}

#[async_trait]
impl Handler for JobStatusHandler {
    async fn handle(&self, req: Request, caller: &Caller) -> Result<Response, ApiError> {
        let job_id = match path_segments(&req)[..] {
            ["datasets", "import", id, "status"] => Some(id.to_owned()),
            ["datasets", "import"] => None,
            _ => return Err(ApiError::NotFound("no such route".into())),
        };
        if req.method() != Method::GET {
            return Err(ApiError::MethodNotAllowed);
        }
        match job_id {
            Some(id) => self.one(&req, caller, &id).await,
            None => self.page(&req, caller).await,
        }
    }

    async fn health(&self) -> Result<(), String> {
        self.db.ping().await.map_err(|e| e.to_string())
    }
}
