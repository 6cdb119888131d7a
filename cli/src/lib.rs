//! `yds`, the command-line client of YDS: imports a dataset from the user's machine (a folder
//! packed on the fly, an archive, or a URL) and follows the import to its summary, lists and
//! shows datasets, images and jobs, renames and deletes datasets, and pulls a dataset back as
//! a train-ready YOLO tree (or COCO JSON). It speaks only the public HTTP API, with the key in
//! `x-api-key`, and shares no code with the service: `cargo install --path cli` builds it
//! anywhere.
//!
//! # Layout
//!
//! - `args`: the command line (clap), with its help texts.
//! - `cmd`: one file per subcommand, each a `run` over the parsed arguments.
//! - `config`: `YDS_URL` / `YDS_API_KEY` and the config file `yds login` writes.
//! - `client`: the API: URLs under the base, JSON calls, paging, errors from problem+json,
//!   the key sent only to the API's own origin.
//! - `error`: the one error type, each case a sentence for the user.
//! - `resolve`: a DATASET argument (id or unambiguous name) and a `--class` (id or name).
//! - `pack`: a folder as a deterministic tar stream, made while it is read.
//! - `upload`: the resumable upload protocol (pieces, `Content-Range`, resuming from the
//!   server's offset after a failure) and its sources (an archive file, a packed folder).
//! - `follow`: a job followed to its end with a progress bar.
//! - `report` and `table`: what is printed, as plain aligned tables.
//! - `pull`: the download of a dataset into a YOLO tree (`data_yaml`) or COCO JSON (`coco`),
//!   with file names checked (`paths`).

mod args;
mod client;
mod cmd;
mod config;
mod error;
mod follow;
mod pack;
mod pull;
mod report;
mod resolve;
mod table;
mod upload;

use std::process::ExitCode;

use clap::Parser;

/// Runs the command line of this process; the exit status: 0 done, 1 error, 2 bad usage
/// (clap's), 3 the job the command followed failed.
pub fn main() -> ExitCode {
    let cli = args::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start: {err}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(cmd::run(cli)) {
        Ok(cmd::Outcome::Done) => ExitCode::SUCCESS,
        Ok(cmd::Outcome::JobFailed) => ExitCode::from(3),
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::from(1)
        }
    }
}
