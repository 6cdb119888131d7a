//! `yds jobs [--dataset D] [--status S]`: jobs, newest first.

use super::{print, print_json, Outcome};
use crate::args::JobsArgs;
use crate::client::Api;
use crate::error::{Error, Result};
use crate::{report, resolve};

pub async fn run(api: &Api, args: JobsArgs) -> Result<Outcome> {
    let dataset_id = match &args.dataset {
        // A deleted dataset has no name any more, but its jobs are still listed by its id.
        Some(arg) => Some(match resolve::dataset(api, arg).await {
            Ok(dataset) => dataset["id"].as_str().unwrap_or(arg).to_owned(),
            Err(Error::NoSuchDataset(_)) => arg.clone(),
            Err(err) => return Err(err),
        }),
        None => None,
    };
    let query = [("dataset_id", dataset_id), ("status", args.status.clone())];
    let (jobs, more) = api.all_pages(&["datasets", "import"], &query, 1000, args.limit).await?;
    if args.json {
        print_json(&serde_json::Value::Array(jobs))?;
        return Ok(Outcome::Done);
    }
    if jobs.is_empty() {
        eprintln!("no jobs");
        return Ok(Outcome::Done);
    }
    print(&report::jobs_table(&jobs))?;
    if more {
        eprintln!("(the first {}; --limit shows more)", jobs.len());
    }
    Ok(Outcome::Done)
}
