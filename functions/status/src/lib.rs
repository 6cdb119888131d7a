//! status: `GET /datasets/import/{job_id}/status` — where an import stands.

use async_trait::async_trait;
use http::{Method, StatusCode};
use mongodb::bson::doc;
use yds::db::Db;
use yds::http::{
    json_response, path_segments, query_params, reject_unknown_params, ApiError, Caller, Handler, Request, Response,
};
use yds::jobs;

pub struct JobStatusHandler {
    db: Db,
}

impl JobStatusHandler {
    pub fn new(db: Db) -> Self {
        Self { db }
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
        reject_unknown_params(&query_params(&req)?, &[])?;
        let job = self
            .db
            .jobs
            .find_one(doc! {"_id": &job_id, "tenant": caller.tenant()})
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("import job `{job_id}` not found")))?;
        Ok(json_response(StatusCode::OK, &jobs::status_view(&self.db, &job).await?))
    }

    async fn health(&self) -> Result<(), String> {
        self.db.ping().await.map_err(|e| e.to_string())
    }
}
