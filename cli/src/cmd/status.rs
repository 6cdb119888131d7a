//! `yds status JOB [--watch]`: where a job stands; with `--watch`, followed to its end.

use super::{print, print_json, Outcome};
use crate::args::StatusArgs;
use crate::client::Api;
use crate::error::Result;
use crate::{follow, report};

pub async fn run(api: &Api, args: StatusArgs) -> Result<Outcome> {
    let job = if args.watch {
        follow::job(api, &args.job).await?
    } else {
        api.get(&["datasets", "import", &args.job, "status"], &[]).await?
    };
    if args.json {
        print_json(&job)?;
    } else {
        print(&report::job_report(&job))?;
    }
    Ok(if args.watch && job["status"] == "failed" { Outcome::JobFailed } else { Outcome::Done })
}
