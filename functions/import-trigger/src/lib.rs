//! import-trigger: `POST /datasets/import`.
//!
//! Validates the request, records the dataset and the job, enqueues planning and answers
//! `202 Accepted` with the job's status URL. All rules live in [`yds::import`].

use async_trait::async_trait;
use http::{header, Method, StatusCode};
use yds::backends::Backends;
use yds::http::{json_response, path_segments, ApiError, Caller, Handler, Request, Response};
use yds::import::{check_request, start_import, ImportSettings};
use yds::rate_limit::RateLimit;

pub struct ImportTrigger {
    backends: Backends,
    settings: ImportSettings,
    limit: RateLimit,
}

impl ImportTrigger {
    pub fn new(backends: Backends, default_chunk_size: u32, limit: RateLimit) -> Self {
        let lease = backends.pacing.chunk_lease;
        let settings = ImportSettings { url_policy: backends.url_policy, default_chunk_size, lease };
        Self { backends, settings, limit }
    }
}

#[async_trait]
impl Handler for ImportTrigger {
    async fn handle(&self, req: Request, caller: &Caller) -> Result<Response, ApiError> {
        if path_segments(&req) != ["datasets", "import"] {
            return Err(ApiError::NotFound("no such route".into()));
        }
        if req.method() != Method::POST {
            return Err(ApiError::MethodNotAllowed);
        }
        // The body must be JSON whatever its Content-Type says: `curl -d` sends a form type.
        let idempotency_key = match req.headers().get("idempotency-key") {
            None => None,
            Some(value) => {
                Some(value.to_str().map_err(|_| ApiError::BadRequest("`Idempotency-Key` must be ASCII text".into()))?)
            }
        };
        // Only well-formed imports count against the key's limit: a malformed request costs
        // nothing and gets its own precise problem.
        check_request(req.body(), &self.settings)?;
        if let Some(key_id) = &caller.key_id {
            self.limit.admit(&self.backends.db, "import", key_id).await?;
        }
        let accepted = start_import(
            &self.backends.db,
            self.backends.queue.as_ref(),
            &self.settings,
            caller.tenant(),
            idempotency_key,
            req.body(),
        )
        .await?;
        let mut response = json_response(StatusCode::ACCEPTED, &accepted);
        let location = format!("/datasets/import/{}/status", accepted.job_id);
        response.headers_mut().insert(header::LOCATION, location.parse().expect("ids are URL-safe"));
        Ok(response)
    }

    async fn health(&self) -> Result<(), String> {
        self.backends.db.ping().await.map_err(|e| e.to_string())
    }
}
