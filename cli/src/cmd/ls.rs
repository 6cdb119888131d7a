//! `yds ls [--name PREFIX]`: datasets, newest first.

use super::{print, print_json, Outcome};
use crate::args::LsArgs;
use crate::client::Api;
use crate::error::Result;
use crate::report;

pub async fn run(api: &Api, args: LsArgs) -> Result<Outcome> {
    let (datasets, more) = api.all_pages(&["datasets"], &[("name", args.name.clone())], 1000, args.limit).await?;
    if args.json {
        print_json(&serde_json::Value::Array(datasets))?;
        return Ok(Outcome::Done);
    }
    if datasets.is_empty() {
        eprintln!("no datasets{}", args.name.map(|n| format!(" named `{n}…`")).unwrap_or_default());
        return Ok(Outcome::Done);
    }
    print(&report::datasets_table(&datasets))?;
    if more {
        eprintln!("(the first {}; --limit shows more)", datasets.len());
    }
    Ok(Outcome::Done)
}
