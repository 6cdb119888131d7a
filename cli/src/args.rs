//! The command line: every subcommand and option, with the help text users read.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::pull::Format;

/// The YDS command-line client: import datasets from this machine, look at them, pull them
/// back ready to train.
#[derive(Debug, Parser)]
#[command(
    name = "yds",
    version,
    after_help = "Configuration: YDS_URL and YDS_API_KEY, or `yds login` (kept in \
                  $XDG_CONFIG_HOME/yds/config.toml or ~/.config/yds/config.toml; the variables win).\n\
                  Exit status: 0 done, 1 error, 2 bad usage, 3 the job followed failed.\n\
                  DATASET is a dataset's id, or a name only one dataset has."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check an API URL and key, and keep them in the config file
    Login(LoginArgs),
    /// Import a dataset: a local folder, a .zip/.tar/.tar.gz/.tgz file, or a URL
    Import(ImportArgs),
    /// List datasets, newest first
    Ls(LsArgs),
    /// A dataset's statistics: counts, splits, classes, issues, findings
    Show(ShowArgs),
    /// List a dataset's images, filtered
    Images(ImagesArgs),
    /// List jobs (imports and deletes), newest first
    Jobs(JobsArgs),
    /// A job's status; --watch follows it to its end
    Status(StatusArgs),
    /// Delete a dataset: its images, labels and records
    Rm(RmArgs),
    /// Rename a dataset
    Rename(RenameArgs),
    /// Download a dataset as a train-ready YOLO (or COCO) tree
    Pull(PullArgs),
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The API's address, e.g. http://127.0.0.1:8080 (asked for when missing)
    #[arg(long)]
    pub url: Option<String>,
    /// The API key (asked for without echo when missing)
    #[arg(long)]
    pub api_key: Option<String>,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// A dataset folder, an archive (.zip, .tar, .tar.gz, .tgz), or a URL (https://, gs://, ...)
    pub source: String,
    /// The dataset's name (default: the folder's or file's name)
    #[arg(long)]
    pub name: Option<String>,
    /// The task, when the labels alone do not tell
    #[arg(long, value_parser = ["detect", "segment", "pose", "obb"])]
    pub task: Option<String>,
    /// Files per import task (1..10000; the server's default otherwise)
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub chunk_size: Option<u32>,
    /// Print the job id once the import is accepted, and return without following it
    #[arg(long)]
    pub detach: bool,
    /// Bytes per upload request: a multiple of 256K, at most 32M
    #[arg(long, default_value = "8M", value_parser = crate::upload::range::parse_piece_size)]
    pub piece_size: usize,
    /// Print the job and the dataset as JSON at the end, instead of tables (with --detach:
    /// the import's acceptance)
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct LsArgs {
    /// Only datasets whose name starts with this
    #[arg(long)]
    pub name: Option<String>,
    /// At most this many datasets
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
    /// JSON: the API's dataset objects
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// An id or a name
    pub dataset: String,
    /// JSON: the API's dataset object
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ImagesArgs {
    /// An id or a name
    pub dataset: String,
    /// Only this split (train, val, test, ...)
    #[arg(long)]
    pub split: Option<String>,
    /// Only images with an instance of this class (an id or a name)
    #[arg(long)]
    pub class: Option<String>,
    /// Only images Ultralytics' trainer would drop
    #[arg(long)]
    pub invalid: bool,
    /// Only images with this issue code
    #[arg(long)]
    pub issue: Option<String>,
    /// At most this many images
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
    /// JSON: the API's image objects
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct JobsArgs {
    /// Only the jobs of this dataset (an id or a name)
    #[arg(long)]
    pub dataset: Option<String>,
    /// Only jobs in this status (queued, running, completed, completed_with_errors, failed)
    #[arg(long)]
    pub status: Option<String>,
    /// At most this many jobs
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
    /// JSON: the API's job objects
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// A job id
    pub job: String,
    /// Follow the job with a progress bar until it ends (exit status 3 if it fails)
    #[arg(long)]
    pub watch: bool,
    /// JSON: the API's job object
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RmArgs {
    /// An id or a name
    pub dataset: String,
    /// Do not ask for confirmation
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Follow the delete job until everything is gone
    #[arg(long)]
    pub wait: bool,
}

#[derive(Debug, Args)]
pub struct RenameArgs {
    /// An id or a name
    pub dataset: String,
    /// The new name
    pub name: String,
}

#[derive(Debug, Args)]
pub struct PullArgs {
    /// An id or a name
    pub dataset: String,
    /// The folder to write into (created when missing; files already right are kept)
    pub dir: PathBuf,
    /// Only the images Ultralytics' trainer would use
    #[arg(long)]
    pub valid_only: bool,
    /// Only this split
    #[arg(long)]
    pub split: Option<String>,
    /// Only images with an instance of this class (an id or a name)
    #[arg(long)]
    pub class: Option<String>,
    /// yolo: data.yaml, images/, labels/ as imported; coco: images/ and annotations/instances_{split}.json
    #[arg(long, value_enum, default_value_t = Format::Yolo)]
    pub format: Format,
    /// Downloads in parallel
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub jobs: u16,
}
