//! The one mapping from API errors to `application/problem+json` (RFC 9457).
//!
//! Handlers return [`ApiError`]; only this module decides status codes and wire text.
//! Internal causes are logged here and never sent: a client sees a title and a detail written
//! for it, no driver messages, hostnames or paths.

use bytes::Bytes;
use http::{header, StatusCode};
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("a valid API key is required in the `x-api-key` header")]
    Unauthorized,
    /// 401 saying what was wrong with the credentials and what to send instead.
    #[error("{0}")]
    Unauthenticated(String),
    /// The caller is known but may not use this route (process-chunk: not the task queue).
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("{0}")]
    Conflict(String),
    #[error("request body larger than {0} bytes")]
    PayloadTooLarge(usize),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    Unprocessable(String),
    #[error("more than {limit} requests per {window_secs} s with this API key; retry in {retry_after_secs} s")]
    TooManyRequests { retry_after_secs: u64, limit: u32, window_secs: u64 },
    /// Something failed on our side; the cause is logged, not sent.
    #[error("internal error")]
    Internal(String),
    /// A dependency (database, storage) is down; the client may retry.
    #[error("service unavailable")]
    Unavailable(String),
    /// A named dependency is down (its breaker is open, or a call could not reach it): a 503
    /// naming it, with `Retry-After` (seconds until its breaker lets a call through again).
    #[error("{} is unavailable", dependency.title())]
    DependencyDown { dependency: Dependency, retry_after_secs: u64, cause: String },
}

/// What a function depends on and may find down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dependency {
    MongoDb,
    ObjectStorage,
}

impl Dependency {
    /// The name `/healthz` gives it (`"mongodb"`, `"object_storage"`).
    pub fn name(self) -> &'static str {
        match self {
            Dependency::MongoDb => "mongodb",
            Dependency::ObjectStorage => "object_storage",
        }
    }

    /// The name a problem's detail gives it.
    pub fn title(self) -> &'static str {
        match self {
            Dependency::MongoDb => "MongoDB",
            Dependency::ObjectStorage => "object storage",
        }
    }
}

impl ApiError {
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        ApiError::Internal(cause.to_string())
    }

    /// Object storage is down (refused by its breaker, or `cause` could not reach it); a
    /// request may go again in `retry_after_secs`.
    pub fn object_storage_down(retry_after_secs: u64, cause: impl std::fmt::Display) -> Self {
        ApiError::DependencyDown { dependency: Dependency::ObjectStorage, retry_after_secs, cause: cause.to_string() }
    }

    /// MongoDB is down: refused by its breaker, or `cause` could not reach it.
    pub fn mongodb_down(cause: impl std::fmt::Display) -> Self {
        ApiError::DependencyDown {
            dependency: Dependency::MongoDb,
            retry_after_secs: yds_store::breaker().retry_after().retry_after_secs(),
            cause: cause.to_string(),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized | ApiError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Unavailable(_) | ApiError::DependencyDown { .. } => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The problem document's `detail`: safe to show a client.
    fn detail(&self) -> String {
        match self {
            ApiError::Internal(_) => "the request could not be completed; it was logged".into(),
            ApiError::Unavailable(_) => "a backing service is unavailable; retry later".into(),
            ApiError::DependencyDown { dependency, retry_after_secs, .. } => {
                format!("{} is unavailable; retry in {retry_after_secs} s", dependency.title())
            }
            other => other.to_string(),
        }
    }

    pub fn into_response(self) -> http::Response<Bytes> {
        let status = self.status();
        match &self {
            ApiError::Internal(cause) | ApiError::Unavailable(cause) => {
                tracing::error!(status = status.as_u16(), cause = %cause, "request failed")
            }
            ApiError::DependencyDown { dependency, cause, .. } => {
                tracing::warn!(status = status.as_u16(), dependency = dependency.name(), cause = %cause, "dependency down")
            }
            _ => tracing::info!(status = status.as_u16(), detail = %self, "request rejected"),
        }
        let mut response = problem_response(status, &self.detail());
        if let ApiError::TooManyRequests { retry_after_secs, .. } | ApiError::DependencyDown { retry_after_secs, .. } =
            self
        {
            response.headers_mut().insert(header::RETRY_AFTER, retry_after_secs.into());
        }
        response
    }
}

impl From<yds_store::StoreError> for ApiError {
    fn from(err: yds_store::StoreError) -> Self {
        if err.is_unavailable() {
            ApiError::mongodb_down(err)
        } else {
            ApiError::Unavailable(err.to_string())
        }
    }
}

/// A problem+json response for `status` with a client-safe `detail`.
pub fn problem_response(status: StatusCode, detail: &str) -> http::Response<Bytes> {
    let body = json!({
        "type": "about:blank",
        "title": status.canonical_reason().unwrap_or("Error"),
        "status": status.as_u16(),
        "detail": detail,
    });
    http::Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/problem+json")
        .body(Bytes::from(body.to_string()))
        .expect("static response parts are valid")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_causes_never_reach_the_client() {
        let resp = ApiError::internal("connection refused to mongo-0.internal:27017").into_response();
        assert_eq!(resp.status(), 500);
        assert_eq!(resp.headers()[header::CONTENT_TYPE], "application/problem+json");
        let body: serde_json::Value = serde_json::from_slice(resp.body()).unwrap();
        assert_eq!(body["status"], 500);
        assert_eq!(body["title"], "Internal Server Error");
        assert!(!body.to_string().contains("mongo-0"));
    }

    #[test]
    fn a_dependency_down_is_a_503_naming_it_with_retry_after() {
        let resp = ApiError::DependencyDown {
            dependency: Dependency::ObjectStorage,
            retry_after_secs: 4,
            cause: "connection refused to storage.internal".into(),
        }
        .into_response();
        assert_eq!(resp.status(), 503);
        assert_eq!(resp.headers()[header::RETRY_AFTER], "4");
        let body: serde_json::Value = serde_json::from_slice(resp.body()).unwrap();
        assert_eq!(body["detail"], "object storage is unavailable; retry in 4 s");
        assert!(!body.to_string().contains("storage.internal"));
    }

    #[test]
    fn client_errors_keep_their_detail() {
        let resp = ApiError::Unprocessable("unknown field `nme`".into()).into_response();
        assert_eq!(resp.status(), 422);
        let body: serde_json::Value = serde_json::from_slice(resp.body()).unwrap();
        assert_eq!(body["detail"], "unknown field `nme`");
    }
}
