//! list: `GET /datasets` — the caller's datasets, newest first, keyset-paginated — and
//! `GET /datasets/{id}`, one of them (what a client polls after an import, without paging).

mod view;

use async_trait::async_trait;
use http::{Method, StatusCode};
use serde::Deserialize;
use serde_json::json;
use yds_edge::cursors::{self, Cursors};
use yds_edge::query::{self, path_segments, NoParams, QueryParams};
use yds_edge::{json_response, ApiError, Caller, Handler, Request, Response};
use yds_store::{DatasetCursor, Db};

pub struct ListDatasets {
    db: Db,
    cursors: Cursors,
}

impl ListDatasets {
    pub fn new(db: Db, cursors: Cursors) -> Self {
        Self { db, cursors }
    }
}

/// The query of `GET /datasets`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PageQuery {
    limit: Option<String>,
    cursor: Option<String>,
}

impl QueryParams for PageQuery {
    const NAMES: &'static [&'static str] = &["limit", "cursor"];
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
        query::parse::<NoParams>(req)?;
        match self.db.datasets.find_for_tenant(caller.tenant(), id).await? {
            Some(dataset) => Ok(json_response(StatusCode::OK, &view::dataset(&dataset))),
            None => Err(ApiError::NotFound(format!("dataset `{id}` not found"))),
        }
    }

    async fn page(&self, req: &Request, caller: &Caller) -> Result<Response, ApiError> {
        let params: PageQuery = query::parse(req)?;
        let limit = cursors::parse_limit(params.limit.as_ref(), 50, 1000)?;
        // A cursor is valid only for the tenant it was issued to.
        let scope = format!("datasets\n{:?}", caller.tenant());
        let after: Option<DatasetCursor> = params.cursor.map(|c| self.cursors.decode(&scope, &c)).transpose()?;
        let (items, next) = self.db.datasets.page(caller.tenant(), after, limit).await?;
        let items: Vec<_> = items.iter().map(view::dataset).collect();
        let next_cursor = next.map(|c| self.cursors.encode(&scope, &c));
        Ok(json_response(StatusCode::OK, &json!({"items": items, "next_cursor": next_cursor})))
    }
}
