//! list: `GET /datasets` — the caller's datasets, newest first, keyset-paginated — and
//! `GET /datasets/{id}`, one of them (what a client polls after an import, without paging).

use async_trait::async_trait;
use http::{Method, StatusCode};
use serde_json::json;
use yds::datasets::{self, DatasetCursor};
use yds::db::Db;
use yds::http::{
    json_response, path_segments, query_params, reject_unknown_params, ApiError, Caller, Handler, Request, Response,
};
use yds::pagination::{self, Cursors};

pub struct ListDatasets {
    db: Db,
    cursors: Cursors,
}

impl ListDatasets {
    pub fn new(db: Db, cursors: Cursors) -> Self {
        Self { db, cursors }
    }
}

#[async_trait]
impl Handler for ListDatasets {
    async fn handle(&self, req: Request, caller: &Caller) -> Result<Response, ApiError> {
        let dataset_id = match path_segments(&req)[..] {
            ["datasets"] => None,
            ["datasets", id] => Some(id.to_owned()),
            _ => return Err(ApiError::NotFound("no such route".into())),
        };
        if req.method() != Method::GET {
            return Err(ApiError::MethodNotAllowed);
        }
        match dataset_id {
            Some(id) => self.one(&req, caller, &id).await,
            None => self.page(&req, caller).await,
        }
    }

    async fn health(&self) -> Result<(), String> {
        self.db.ping().await.map_err(|e| e.to_string())
    }
}

impl ListDatasets {
    async fn one(&self, req: &Request, caller: &Caller, id: &str) -> Result<Response, ApiError> {
        reject_unknown_params(&query_params(req)?, &[])?;
        match datasets::find_for_tenant(&self.db, caller.tenant(), id).await? {
            Some(dataset) => Ok(json_response(StatusCode::OK, &dataset.to_view())),
            None => Err(ApiError::NotFound(format!("dataset `{id}` not found"))),
        }
    }

    async fn page(&self, req: &Request, caller: &Caller) -> Result<Response, ApiError> {
        let params = query_params(req)?;
        reject_unknown_params(&params, &["limit", "cursor"])?;
        let limit = pagination::parse_limit(params.get("limit"), 50, 1000)?;
        // A cursor is valid only for the tenant it was issued to.
        let scope = format!("datasets\n{:?}", caller.tenant());
        let after: Option<DatasetCursor> = params.get("cursor").map(|c| self.cursors.decode(&scope, c)).transpose()?;
        let (items, next) = datasets::page(&self.db, caller.tenant(), after, limit).await?;
        let items: Vec<_> = items.iter().map(|d| d.to_view()).collect();
        let next_cursor = next.map(|c| self.cursors.encode(&scope, &c));
        Ok(json_response(StatusCode::OK, &json!({"items": items, "next_cursor": next_cursor})))
    }
}
