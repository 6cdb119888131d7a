//! `yds show DATASET`: a dataset's statistics as tables.

use super::{print, print_json, Outcome};
use crate::args::ShowArgs;
use crate::client::Api;
use crate::error::Result;
use crate::{report, resolve};

pub async fn run(api: &Api, args: ShowArgs) -> Result<Outcome> {
    let dataset = resolve::dataset(api, &args.dataset).await?;
    if args.json {
        print_json(&dataset)?;
        return Ok(Outcome::Done);
    }
    // The last job says how the dataset came to be as it is (and a failed import, why).
    let last_job = dataset["last_job_id"].as_str().or(dataset["job_id"].as_str());
    let job = match last_job {
        Some(job_id) => api.get(&["datasets", "import", job_id, "status"], &[]).await.ok(),
        None => None,
    };
    let mut text = report::dataset_report(&dataset, job.as_ref());
    if let Some(job) = &job {
        text.push_str(&format!(
            "\nlast job {}: {} {}\n",
            job["job_id"].as_str().unwrap_or(""),
            job["kind"].as_str().unwrap_or("import"),
            job["status"].as_str().unwrap_or("")
        ));
    }
    print(&text)?;
    Ok(Outcome::Done)
}
