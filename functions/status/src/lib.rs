//! status: `GET /datasets/import/{job_id}/status` — where an import stands.

use async_trait::async_trait;
use http::{Method, StatusCode};
use serde_json::{json, Value};
use yds_edge::query::{self, path_segments, NoParams};
use yds_edge::{json_response, ApiError, Caller, Handler, Request, Response};
use yds_store::{rfc3339, Db, JobDoc, StoreResult, ERROR_SAMPLE};

pub struct JobStatusHandler {
    db: Db,
}

impl JobStatusHandler {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// The API's job status object. A finished job answers from its frozen result; a running
    /// one has MongoDB sum its finished chunks.
    async fn status_view(&self, job: &JobDoc) -> StoreResult<Value> {
        let progress = match &job.result {
            Some(r) => (r.files_done, r.statistics.clone(), r.chunks_done, r.chunks_failed, r.errors.clone()),
            None => {
                let p = self.db.chunks.running_totals(&job.id).await?;
                (p.files_done, p.statistics, p.chunks_done, p.chunks_failed, p.errors)
            }
        };
        let (files_done, statistics, chunks_done, chunks_failed, chunk_errors) = progress;
        let percent = if job.status.is_terminal() {
            100.0
        } else if job.files_total == 0 {
            0.0
        } else {
            // Never 100 before the terminal status.
            ((files_done as f64 / job.files_total as f64) * 100.0).min(99.9)
        };
        let mut errors = job.errors.clone();
        errors.extend(chunk_errors);
        errors.truncate(ERROR_SAMPLE);
        Ok(json!({
            "job_id": job.id,
            "dataset_id": job.dataset_id,
            "status": job.status,
            "progress": {
                "files_total": job.files_total,
                "files_done": files_done,
                "percent": (percent * 10.0).round() / 10.0,
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
}

#[async_trait]
impl Handler for JobStatusHandler {
    async fn handle(&self, req: Request, caller: &Caller) -> Result<Response, ApiError> {
        let job_id = match path_segments(&req)[..] {
            ["datasets", "import", id, "status"] => id.to_owned(),
            _ => return Err(ApiError::NotFound("no such route".into())),
        };
        if req.method() != Method::GET {
            return Err(ApiError::MethodNotAllowed);
        }
        query::parse::<NoParams>(&req)?;
        let job = self
            .db
            .jobs
            .find_for_tenant(caller.tenant(), &job_id)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("import job `{job_id}` not found")))?;
        Ok(json_response(StatusCode::OK, &self.status_view(&job).await?))
    }

    async fn health(&self) -> Result<(), String> {
        self.db.ping().await.map_err(|e| e.to_string())
    }
}
