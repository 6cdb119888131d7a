//! `yds rm DATASET [--yes] [--wait]`: deletes a dataset (after a confirmation), and with
//! `--wait` follows the delete job until everything is gone.

use reqwest::Method;

use super::{ask, print, Outcome};
use crate::args::RmArgs;
use crate::client::Api;
use crate::error::{Error, Result};
use crate::{follow, report, resolve};

pub async fn run(api: &Api, args: RmArgs) -> Result<Outcome> {
    let dataset = resolve::dataset(api, &args.dataset).await?;
    let id = dataset["id"].as_str().unwrap_or_default().to_owned();
    let name = dataset["name"].as_str().unwrap_or_default();
    if !args.yes {
        let images = dataset["counts"]["images"].as_u64().unwrap_or(0);
        let answer = ask(&format!("delete dataset {name} ({id}) and its {images} images? [y/N] "), "--yes")?;
        if !matches!(answer.to_ascii_lowercase().as_str(), "y" | "yes") {
            return Err(Error::msg("not deleted"));
        }
    }
    let accepted = api.call(Method::DELETE, api.url(&["datasets", &id]), None).await?;
    let job_id = accepted["job_id"].as_str().unwrap_or_default().to_owned();
    eprintln!("deleting {name} ({id}): job {job_id}");
    if !args.wait {
        print(&format!("{job_id}\n"))?;
        return Ok(Outcome::Done);
    }
    let job = follow::job(api, &job_id).await?;
    if job["status"] == "failed" {
        eprintln!("the delete failed: {}", report::failure_reason(None, &job));
        return Ok(Outcome::JobFailed);
    }
    print(&format!("deleted {name} ({id})\n"))?;
    Ok(Outcome::Done)
}
