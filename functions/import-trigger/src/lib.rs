//! import-trigger: `POST /datasets/import`.
//!
//! Checks the request, records the dataset and the job, enqueues planning and answers
//! `202 Accepted` with the job's status URL. All rules live in [`yds_import::accept`].

use async_trait::async_trait;
use http::{header, Method, StatusCode};
use yds_edge::query::path_segments;
use yds_edge::rate_limit::RateLimit;
use yds_edge::{json_response, ApiError, Caller, Handler, Request, Response};
use yds_import::accept::{AcceptError, Acceptor};
use yds_queue::trace::TraceContext;
use yds_store::Db;

pub struct ImportTrigger {
    db: Db,
    acceptor: Acceptor,
    limit: RateLimit,
}

impl ImportTrigger {
    pub fn new(importer: yds_import::Importer, default_chunk_size: u32, limit: RateLimit) -> Self {
        Self { db: importer.db.clone(), acceptor: Acceptor::new(importer, default_chunk_size), limit }
    }
}

/// The edge's answer to a refused import.
fn refusal(err: AcceptError) -> ApiError {
    match err {
        AcceptError::Malformed(detail) => ApiError::BadRequest(detail),
        AcceptError::Invalid(detail) => ApiError::Unprocessable(detail),
        AcceptError::Unavailable(cause) => ApiError::Unavailable(cause.to_string()),
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
        self.acceptor.check(req.body()).map_err(refusal)?;
        if let Some(key_id) = &caller.key_id {
            self.limit.admit(&self.db, "import", key_id).await?;
        }
        // The tasks the import enqueues carry the request's trace ([`yds_queue::trace`]).
        let trace = req.extensions().get::<TraceContext>().cloned();
        let accepted =
            yds_queue::trace::scope(trace, self.acceptor.start(caller.tenant(), idempotency_key, req.body()))
                .await
                .map_err(refusal)?;
        // The request's own lines (its "served" line) name the job and dataset it started.
        let span = tracing::Span::current();
        span.record("job_id", accepted.job_id.as_str());
        span.record("dataset_id", accepted.dataset_id.as_str());
        let mut response = json_response(StatusCode::ACCEPTED, &accepted);
        let location = format!("/datasets/import/{}/status", accepted.job_id);
        response.headers_mut().insert(header::LOCATION, location.parse().expect("ids are URL-safe"));
        Ok(response)
    }

    async fn health(&self) -> Result<(), String> {
        self.db.ping().await.map_err(|e| e.to_string())
    }
}
