//! list: `GET /datasets` — the caller's datasets, newest first, keyset-paginated, optionally
//! only those whose name starts with `name` — and `GET /datasets/{id}`, one of them (what a
//! client polls after an import, without paging). A dataset being deleted is in neither.

use async_trait::async_trait;
use http::{Method, StatusCode};
use serde::Deserialize;
use serde_json::json;
use yds_edge::cursors::{self, Cursors};
use yds_edge::dataset_view as view;
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
    /// Only datasets whose name starts with this, case-sensitively.
    name: Option<String>,
}

impl QueryParams for PageQuery {
    const NAMES: &'static [&'static str] = &["limit", "cursor", "name"];
}

/// The longest name prefix: a dataset's name has at most 200 characters.
const MAX_NAME_PREFIX_CHARS: usize = 200;

/// The `name` filter: 1 to 200 characters without control characters (no name has any).
fn name_prefix(value: Option<String>) -> Result<Option<String>, ApiError> {
    match value {
        None => Ok(None),
        Some(prefix) if prefix.is_empty() || prefix.chars().count() > MAX_NAME_PREFIX_CHARS => Err(
            ApiError::BadRequest(format!("`name` must be 1 to {MAX_NAME_PREFIX_CHARS} characters: a prefix of names")),
        ),
        Some(prefix) if prefix.chars().any(char::is_control) => {
            Err(ApiError::BadRequest("`name` must not contain control characters".into()))
        }
        Some(prefix) => Ok(Some(prefix)),
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
        query::parse::<NoParams>(req)?;
        match self.db.datasets.find_for_tenant(caller.tenant(), id).await? {
            Some(dataset) => Ok(json_response(StatusCode::OK, &view::dataset(&dataset))),
            None => Err(ApiError::NotFound(format!("dataset `{id}` not found"))),
        }
    }

    async fn page(&self, req: &Request, caller: &Caller) -> Result<Response, ApiError> {
        let params: PageQuery = query::parse(req)?;
        let limit = cursors::parse_limit(params.limit.as_ref(), 50, 1000)?;
        let prefix = name_prefix(params.name)?;
        // A cursor is valid only for the tenant it was issued to, and the filter it was issued for.
        let mut scope = format!("datasets\n{:?}", caller.tenant());
        if let Some(prefix) = &prefix {
            scope.push_str(&format!("\nname={prefix:?}"));
        }
        let after: Option<DatasetCursor> = params.cursor.map(|c| self.cursors.decode(&scope, &c)).transpose()?;
        let (items, next) = self.db.datasets.page(caller.tenant(), prefix.as_deref(), after, limit).await?;
        let items: Vec<_> = items.iter().map(view::dataset).collect();
        let next_cursor = next.map(|c| self.cursors.encode(&scope, &c));
        Ok(json_response(StatusCode::OK, &json!({"items": items, "next_cursor": next_cursor})))
    }
}
