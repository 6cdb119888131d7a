//! Following a job to its terminal status with a live progress bar, by polling its status
//! route about twice a second. Without a terminal on stderr there is no bar: each change of
//! status or phase is one line instead, so logs of scripted runs stay readable.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::Value;

use crate::client::Api;
use crate::error::Result;
use crate::report::is_terminal;

const POLL: Duration = Duration::from_millis(500);
/// Failed polls in a row (a dropped connection, a restarting server) before giving up.
const POLL_ATTEMPTS: u32 = 10;

/// A progress bar on stderr, drawn only when stderr is a terminal.
pub fn bar(template: &str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
    bar.set_style(style(template));
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template).expect("a valid template").progress_chars("=> ")
}

/// A job's bar once its files are counted, and before (a spinner: no bar full of nothing).
const JOB_BAR: &str = "{spinner} {msg:<28} [{bar:30}] {pos}/{len} files ({percent}%) ETA {eta}";
const JOB_WAIT: &str = "{spinner} {msg}";

/// True when progress bars are drawn (stderr is a terminal).
pub fn interactive() -> bool {
    console::Term::stderr().is_term()
}

/// Polls job `job_id` until it ends; returns its terminal status object.
pub async fn job(api: &Api, job_id: &str) -> Result<Value> {
    let bar = bar(JOB_WAIT);
    let mut counted = false;
    let interactive = interactive();
    let mut said = String::new();
    let mut failures = 0;
    loop {
        let job = match api.get(&["datasets", "import", job_id, "status"], &[]).await {
            Ok(job) => {
                failures = 0;
                job
            }
            Err(err) if failures < POLL_ATTEMPTS && err.status().is_none_or(|s| s >= 500) => {
                failures += 1;
                tokio::time::sleep(POLL * failures).await;
                continue;
            }
            Err(err) => {
                bar.finish_and_clear();
                return Err(err);
            }
        };
        let status = job["status"].as_str().unwrap_or("unknown");
        let kind = job["kind"].as_str().unwrap_or("import");
        let phase = job["phase"].as_str().map(|p| format!(" · {p}")).unwrap_or_default();
        let progress = &job["progress"];
        let total = progress["files_total"].as_u64().unwrap_or(0);
        if total > 0 && !counted {
            counted = true;
            bar.set_style(style(JOB_BAR));
        }
        bar.set_length(total);
        bar.set_position(progress["files_done"].as_u64().unwrap_or(0));
        let chunks = match progress["chunks_total"].as_u64() {
            Some(c) if c > 0 => format!(" · chunks {}/{c}", progress["chunks_done"].as_u64().unwrap_or(0)),
            _ => String::new(),
        };
        bar.set_message(format!("{kind} {status}{phase}{chunks}"));
        let line = format!("{kind} {status}{phase}");
        if !interactive && line != said {
            eprintln!("job {job_id}: {line}");
            said = line;
        }
        if is_terminal(status) {
            bar.finish_and_clear();
            return Ok(job);
        }
        tokio::time::sleep(POLL).await;
    }
}
