//! images: `GET /datasets/{id}/images` — a dataset's images with their annotations and
//! findings, in a stable order, keyset-paginated, filtered by split, class, validity and issue.

use async_trait::async_trait;
use http::{Method, StatusCode};
use serde_json::json;
use yds::datasets;
use yds::db::Db;
use yds::format::data_yaml::MAX_CLASSES;
use yds::http::{
    json_response, path_segments, query_params, reject_unknown_params, ApiError, Caller, Handler, Request, Response,
};
use yds::images::{self, ImageQuery};
use yds::pagination::{self, Cursors};

pub struct ListImages {
    db: Db,
    cursors: Cursors,
}

impl ListImages {
    pub fn new(db: Db, cursors: Cursors) -> Self {
        Self { db, cursors }
    }
}

#[async_trait]
impl Handler for ListImages {
    async fn handle(&self, req: Request, caller: &Caller) -> Result<Response, ApiError> {
        let dataset_id = match path_segments(&req)[..] {
            ["datasets", id, "images"] => id.to_owned(),
            _ => return Err(ApiError::NotFound("no such route".into())),
        };
        if req.method() != Method::GET {
            return Err(ApiError::MethodNotAllowed);
        }
        let params = query_params(&req)?;
        reject_unknown_params(&params, &["limit", "cursor", "split", "class_id", "valid", "issue"])?;
        let limit = pagination::parse_limit(params.get("limit"), 100, 1000)?;
        let class_id = parse_class_id(params.get("class_id"))?;
        let split = params.get("split").cloned();
        if split.as_deref() == Some("") {
            return Err(ApiError::BadRequest("`split` must not be empty".into()));
        }
        let valid = match params.get("valid").map(String::as_str) {
            None => None,
            Some("true") => Some(true),
            Some("false") => Some(false),
            Some(_) => return Err(ApiError::BadRequest("`valid` must be `true` or `false`".into())),
        };
        let issue = params.get("issue").cloned();
        if issue.as_deref().is_some_and(|c| c.is_empty() || c.len() > 64) {
            return Err(ApiError::BadRequest("`issue` must be an issue code".into()));
        }
        let Some(dataset) = datasets::find_for_tenant(&self.db, caller.tenant(), &dataset_id).await? else {
            return Err(ApiError::NotFound(format!("dataset `{dataset_id}` not found")));
        };
        // A cursor is valid only for the tenant, dataset and filters it was issued for.
        let scope =
            format!("images\n{:?}\n{dataset_id:?}\n{split:?}\n{class_id:?}\n{valid:?}\n{issue:?}", caller.tenant());
        let after: Option<String> = params.get("cursor").map(|c| self.cursors.decode(&scope, c)).transpose()?;
        let query =
            ImageQuery { dataset_id, split, class_id, valid, issue, all_splits: dataset.split_names, after, limit };
        let (items, next) = images::page(&self.db, &query).await?;
        let items: Vec<_> = items.iter().map(|i| i.to_view()).collect();
        let next_cursor = next.map(|c| self.cursors.encode(&scope, &c));
        Ok(json_response(StatusCode::OK, &json!({"items": items, "next_cursor": next_cursor})))
    }

    async fn health(&self) -> Result<(), String> {
        self.db.ping().await.map_err(|e| e.to_string())
    }
}

/// `class_id`: a class a dataset can have, `0..MAX_CLASSES` (the spec's `maximum`); larger
/// numbers are refused rather than answered with an empty page.
fn parse_class_id(value: Option<&String>) -> Result<Option<u32>, ApiError> {
    let Some(text) = value else {
        return Ok(None);
    };
    match text.parse::<u32>() {
        Ok(id) if (id as usize) < MAX_CLASSES => Ok(Some(id)),
        _ => Err(ApiError::BadRequest(format!("`class_id` must be an integer from 0 to {}", MAX_CLASSES - 1))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by schemathesis: `class_id=2147483648` (beyond the spec's int32) got 200.
    #[test]
    fn class_id_is_a_possible_class() {
        let parse = |text: &str| parse_class_id(Some(&text.to_owned()));
        assert_eq!(parse_class_id(None).unwrap(), None);
        assert_eq!(parse("0").unwrap(), Some(0));
        assert_eq!(parse("99999").unwrap(), Some(99_999));
        for bad in ["100000", "2147483648", "4294967296", "-1", "1.0", "", "x"] {
            let err = parse(bad).unwrap_err();
            assert_eq!(err.status(), 400, "{bad}");
            assert!(err.to_string().contains("0 to 99999"), "{err}");
        }
    }
}
