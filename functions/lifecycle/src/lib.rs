//! lifecycle: `PATCH /datasets/{id}` renames a dataset; `DELETE /datasets/{id}` deletes it as a
//! job the status route follows.
//!
//! A delete answers `202 Accepted` at once: the dataset is missing to every route from then on,
//! and [`yds_import::deletion`] removes its images, files and records by short tasks, cancelling
//! its import first if it still runs. Renaming follows the rules of an import's name
//! ([`yds_import::accept::dataset_name`]).

use async_trait::async_trait;
use http::{header, Method, StatusCode};
use serde::Deserialize;
// The Dataset object as the list answers it, so a renamed dataset reads exactly as listed.
use yds_edge::dataset_view as view;
use yds_edge::query::{self, path_segments, NoParams};
use yds_edge::{json_response, ApiError, Caller, Handler, Request, Response};
use yds_import::accept::dataset_name;
use yds_import::{deletion, ImportError, Importer};

pub struct Lifecycle {
    importer: Importer,
}

impl Lifecycle {
    pub fn new(importer: Importer) -> Self {
        Self { importer }
    }
}

/// The body of `PATCH /datasets/{id}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Rename {
    name: String,
}

fn unavailable(err: ImportError) -> ApiError {
    ApiError::Unavailable(err.to_string())
}

#[async_trait]
impl Handler for Lifecycle {
    async fn handle(&self, req: Request, caller: &Caller) -> Result<Response, ApiError> {
        let dataset_id = match path_segments(&req)[..] {
            ["datasets", id] => id.to_owned(),
            _ => return Err(ApiError::NotFound("no such route".into())),
        };
        query::parse::<NoParams>(&req)?;
        match *req.method() {
            // The delete job's tasks carry the request's trace ([`yds_queue::trace`]).
            Method::DELETE => {
                let trace = req.extensions().get::<yds_queue::trace::TraceContext>().cloned();
                yds_queue::trace::scope(trace, self.delete(caller, &dataset_id)).await
            }
            Method::PATCH => self.rename(&req, caller, &dataset_id).await,
            _ => Err(ApiError::MethodNotAllowed),
        }
    }

    async fn health(&self) -> Result<(), String> {
        self.importer.db.ping().await.map_err(|e| e.to_string())
    }
}

impl Lifecycle {
    /// `DELETE /datasets/{id}`: `202` and the delete job, the same one while it runs.
    async fn delete(&self, caller: &Caller, dataset_id: &str) -> Result<Response, ApiError> {
        let accepted = deletion::begin(&self.importer, caller.tenant(), dataset_id)
            .await
            .map_err(unavailable)?
            .ok_or_else(|| ApiError::NotFound(format!("dataset `{dataset_id}` not found")))?;
        let mut response = json_response(StatusCode::ACCEPTED, &accepted);
        let location = format!("/datasets/import/{}/status", accepted.job_id);
        response.headers_mut().insert(header::LOCATION, location.parse().expect("ids are URL-safe"));
        Ok(response)
    }

    /// `PATCH /datasets/{id}` with `{"name"}`: the renamed dataset.
    async fn rename(&self, req: &Request, caller: &Caller, dataset_id: &str) -> Result<Response, ApiError> {
        // The body must be JSON whatever its Content-Type says, as for an import.
        let body: serde_json::Value = serde_json::from_slice(req.body())
            .map_err(|e| ApiError::BadRequest(format!("the body is not valid JSON: {e}")))?;
        if !body.is_object() {
            return Err(ApiError::BadRequest("the body must be a JSON object: {\"name\": \"...\"}".into()));
        }
        let rename: Rename = serde_json::from_value(body).map_err(|e| ApiError::Unprocessable(e.to_string()))?;
        let name = dataset_name(&rename.name).map_err(ApiError::Unprocessable)?;
        match self.importer.db.datasets.rename(caller.tenant(), dataset_id, &name).await? {
            Some(dataset) => Ok(json_response(StatusCode::OK, &view::dataset(&dataset))),
            None => Err(ApiError::NotFound(format!("dataset `{dataset_id}` not found"))),
        }
    }
}
