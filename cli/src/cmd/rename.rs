//! `yds rename DATASET NAME`.

use reqwest::Method;
use serde_json::json;

use super::{print, Outcome};
use crate::args::RenameArgs;
use crate::client::Api;
use crate::error::Result;
use crate::resolve;

pub async fn run(api: &Api, args: RenameArgs) -> Result<Outcome> {
    let dataset = resolve::dataset(api, &args.dataset).await?;
    let id = dataset["id"].as_str().unwrap_or_default();
    let renamed = api.call(Method::PATCH, api.url(&["datasets", id]), Some(&json!({"name": args.name}))).await?;
    print(&format!(
        "renamed {id}: {} → {}\n",
        dataset["name"].as_str().unwrap_or(""),
        renamed["name"].as_str().unwrap_or(&args.name)
    ))?;
    Ok(Outcome::Done)
}
