//! `cargo xtask bench import`: how long a real import takes through the local stack, and how
//! that compares with the physical floor of just unpacking the same archive (`tar -xzf`).
//!
//! A command and not a test because it measures rather than judges: it prints wall time,
//! throughput, chunk times and peak memory per process as a table ready for
//! `docs/benchmarks.md`, with the command, machine and commit they come from. It fails only
//! when the figures mean nothing: images lost or invented, a clean dataset not `completed`,
//! or the timeout reached.
//!
//! The dataset comes from [`testkit::bulk`] (one pass, no tree on disk), the functions run as
//! release binaries, and every format gets a fresh stack so that no run warms the next.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use local_stack::stack::{Stack, StackOptions, FUNCTIONS};
use mongodb::bson::doc;
use serde_json::{json, Value};
use testkit::{BulkSpec, BulkSummary, FileServer, SizeMix};

use crate::binaries::build_release_functions;
use crate::measure::{cpu_ticks, proc_status_kb};
use crate::paths;

const API_KEY: &str = "bench-key";
/// `YDS_API_KEYS` entry: the key, then its tenant.
const API_KEYS: &str = "bench-key:bench";
const POLL_EVERY: Duration = Duration::from_millis(500);
/// Consecutive failed status polls tolerated before the run is abandoned.
const MAX_FAILED_POLLS: u32 = 10;
/// Marker beside the unpacked folder source: written once `tar` finished.
const TREE_UNPACKED: &str = "bench-tree.complete";
const TERMINAL: [&str; 3] = ["completed", "completed_with_errors", "failed"];
/// Decimal megabyte, for archive sizes, throughput and memory alike.
const MB: f64 = 1_000_000.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    TarGz,
    Zip,
    /// The tar.gz unpacked into a folder, imported in place (`file://`).
    Dir,
}

impl Format {
    fn label(self) -> &'static str {
        match self {
            Format::TarGz => "tar.gz",
            Format::Zip => "zip",
            Format::Dir => "dir",
        }
    }

    fn file_name(self) -> &'static str {
        match self {
            Format::TarGz => "bench.tar.gz",
            Format::Zip => "bench.zip",
            Format::Dir => "bench-tree",
        }
    }

    /// Bytes of the source: the archive, or the images of the folder.
    fn archive_bytes(self, summary: &BulkSummary) -> u64 {
        match self {
            Format::TarGz => summary.tar_gz_bytes,
            Format::Zip => summary.zip_bytes,
            Format::Dir => summary.image_bytes,
        }
    }
}

/// `cargo xtask bench import|startup`.
#[derive(Debug, clap::Subcommand)]
pub enum BenchCommand {
    /// Time an import of a synthetic dataset against `tar -xzf` of the same archive.
    Import(ImportArgs),
    /// Release binaries: size, exec to first 200, RSS.
    Startup,
    /// The web app in headless Chromium: time until 100 thumbnails are on screen.
    Ui(crate::ui_bench::UiArgs),
    /// Thumbnails: decode, scale and encode time per image, against an import's per image.
    Thumbnails(crate::thumbnail_bench::ThumbnailArgs),
}

/// `cargo xtask bench import` options.
#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// Images in the dataset.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u64).range(1..))]
    pub images: u64,
    /// `small` (32–96 px, many files) or `realistic` (photo-sized).
    #[arg(long, default_value = "small")]
    size_mix: SizeMix,
    /// The sources imported, each on a fresh stack.
    #[arg(long, value_enum, default_value = "both")]
    pub format: FormatChoice,
    /// Files per chunk (default: the stack's).
    #[arg(long)]
    chunk_size: Option<u32>,
    /// Tasks the local queue delivers at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..))]
    concurrency: u64,
    /// Minutes an import may take before the bench gives up.
    #[arg(long, default_value_t = 30)]
    timeout_mins: u64,
    /// Keep the generated data and the stacks' folders in DIR.
    #[arg(long)]
    keep: Option<PathBuf>,
    /// The generator's seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Archive members: `labels/` before `images/` instead of the sorted order.
    #[arg(long)]
    pub labels_first: bool,
}

/// `--format`: one source kind, or several.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum FormatChoice {
    #[value(name = "tar.gz")]
    TarGz,
    Zip,
    Dir,
    Both,
    All,
}

impl FormatChoice {
    pub fn formats(self) -> Vec<Format> {
        match self {
            FormatChoice::TarGz => vec![Format::TarGz],
            FormatChoice::Zip => vec![Format::Zip],
            FormatChoice::Dir => vec![Format::Dir],
            FormatChoice::Both => vec![Format::TarGz, Format::Zip],
            FormatChoice::All => vec![Format::TarGz, Format::Zip, Format::Dir],
        }
    }
}

/// `cargo xtask bench <what> ...`; returns the process exit code.
pub async fn run(what: BenchCommand) -> anyhow::Result<i32> {
    match what {
        // Everything after `bench`, as typed: the optimized build parses it again.
        BenchCommand::Import(_) if cfg!(debug_assertions) => rerun_optimized(std::env::args().skip(2).collect()),
        BenchCommand::Import(args) => bench_import(args).await,
        BenchCommand::Startup => crate::startup::run().await,
        BenchCommand::Ui(args) => crate::ui_bench::run(args).await,
        BenchCommand::Thumbnails(_) if cfg!(debug_assertions) => rerun_optimized(std::env::args().skip(2).collect()),
        BenchCommand::Thumbnails(args) => crate::thumbnail_bench::run(args, &git_commit(), &machine()),
    }
}

/// Runs this bench again from xtask built in the `harness` profile. The bench process serves
/// the archive and dispatches the queue's tasks on the same CPUs as the stack it measures: built
/// for debugging, it took 7–14 CPU-s of a 1 M-image import, a tenth of the whole.
fn rerun_optimized(args: Vec<String>) -> anyhow::Result<i32> {
    println!("[0/4] Building the bench itself optimized (profile `harness`)");
    let mut command = paths::cargo();
    command.args(["run", "--quiet", "--profile", "harness", "-p", "xtask", "--"]);
    command.arg("bench").args(args);
    let status = command.status().context("running cargo run --profile harness")?;
    Ok(status.code().unwrap_or(1))
}

async fn bench_import(args: ImportArgs) -> anyhow::Result<i32> {
    let typed: Vec<String> = std::env::args().skip(3).collect();
    let command_line = format!("cargo xtask bench import {}", typed.join(" ")).trim_end().to_owned();

    println!("[1/4] Building the release function binaries");
    let bin_dir = build_release_functions()?;

    let work = WorkDir::create(args.keep.clone())?;
    println!("[2/4] Generating {} {} images into {}", args.images, args.size_mix, work.path.display());
    let (summary, generation) = generate(&args, &work.path).await?;
    println!(
        "      {} images ({} label files, {} boxes, {} backgrounds), {:.1} MB of images; \
         tar.gz {:.1} MB, zip {:.1} MB; {:.1} s",
        summary.images,
        summary.labels,
        summary.boxes,
        summary.backgrounds,
        summary.image_bytes as f64 / MB,
        summary.tar_gz_bytes as f64 / MB,
        summary.zip_bytes as f64 / MB,
        generation.as_secs_f64()
    );

    println!("[3/4] Physical floor: unpacking with the system tools");
    let floor = measure_floor(&work.path).await?;
    println!("      tar -xzf {:.2} s, unzip -q {}", floor.tar_xzf.as_secs_f64(), secs_or_na(floor.unzip));

    let mut runs = Vec::new();
    for format in &args.format.formats() {
        println!("[4/4] Importing {} through a fresh stack", format.label());
        let run = import_once(&args, &bin_dir, &work.path, *format).await?;
        println!("      {} in {:.2} s", run.final_status(), run.wall.as_secs_f64());
        runs.push(run);
    }

    let report = Report { args: &args, command_line, summary, generation, floor, runs };
    report.print();
    Ok(if report.print_sanity() { 0 } else { 1 })
}

/// The bench's working folder: a temporary one removed at the end, or `--keep DIR`.
struct WorkDir {
    path: PathBuf,
    keep: bool,
}

impl WorkDir {
    fn create(keep: Option<PathBuf>) -> anyhow::Result<WorkDir> {
        let (path, keep) = match keep {
            Some(dir) => (std::path::absolute(dir)?, true),
            None => (std::env::temp_dir().join(format!("yds-bench-{}", uuid::Uuid::new_v4().simple())), false),
        };
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(WorkDir { path, keep })
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

async fn generate(args: &ImportArgs, work: &Path) -> anyhow::Result<(BulkSummary, Duration)> {
    let spec = BulkSpec {
        images: args.images as usize,
        val_fraction: 0.2,
        seed: args.seed,
        size_mix: args.size_mix,
        labels_first: args.labels_first,
    };
    let (tar_gz, zip) = (work.join(Format::TarGz.file_name()), work.join(Format::Zip.file_name()));
    // A kept work dir with the archives of the same spec is reused: generating a million images
    // takes minutes and measures nothing about the import.
    let stamp = work.join("bench-spec.json");
    let mut spec_text = format!("{} {} {} {}", spec.images, spec.val_fraction, spec.seed, spec.size_mix);
    if spec.labels_first {
        spec_text.push_str(" labels-first");
    }
    if let Ok(saved) = std::fs::read_to_string(&stamp) {
        if let Some((text, summary)) = saved.split_once('\n') {
            if text == spec_text && tar_gz.is_file() && zip.is_file() {
                if let Ok(summary) = serde_json::from_str::<Value>(summary) {
                    println!("      reusing the archives of {}", work.display());
                    return Ok((summary_from_json(&summary)?, Duration::ZERO));
                }
            }
        }
    }
    // New archives: a folder unpacked from the old ones is stale.
    let _ = std::fs::remove_file(work.join(TREE_UNPACKED));
    let _ = std::fs::remove_dir_all(work.join(Format::Dir.file_name()));
    let spinner = indicatif::ProgressBar::new_spinner();
    spinner.enable_steady_tick(Duration::from_millis(200));
    let started = Instant::now();
    let summary = tokio::task::spawn_blocking(move || testkit::write_bulk_archives(&spec, &tar_gz, &zip)).await??;
    let elapsed = started.elapsed();
    spinner.finish_and_clear();
    std::fs::write(&stamp, format!("{spec_text}\n{}", summary_to_json(&summary)))?;
    Ok((summary, elapsed))
}

fn summary_to_json(s: &BulkSummary) -> Value {
    json!({
        "images": s.images, "labels": s.labels, "boxes": s.boxes, "backgrounds": s.backgrounds,
        "image_bytes": s.image_bytes, "tar_gz_bytes": s.tar_gz_bytes, "zip_bytes": s.zip_bytes,
    })
}

fn summary_from_json(v: &Value) -> anyhow::Result<BulkSummary> {
    let get = |k: &str| v[k].as_u64().with_context(|| format!("bench-spec.json lacks `{k}`"));
    Ok(BulkSummary {
        images: get("images")?,
        labels: get("labels")?,
        boxes: get("boxes")?,
        backgrounds: get("backgrounds")?,
        image_bytes: get("image_bytes")?,
        tar_gz_bytes: get("tar_gz_bytes")?,
        zip_bytes: get("zip_bytes")?,
    })
}

/// The folder source: the tar.gz unpacked once by `tar` (untimed: the floor times it) and kept
/// beside the archives while they are reused.
async fn unpacked_tree(work: &Path) -> anyhow::Result<PathBuf> {
    let tree = work.join(Format::Dir.file_name());
    let done = work.join(TREE_UNPACKED);
    if done.is_file() {
        return Ok(tree);
    }
    let (archive, target) = (work.join(Format::TarGz.file_name()), tree.clone());
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        let _ = std::fs::remove_dir_all(&target);
        std::fs::create_dir_all(&target)?;
        let status = Command::new("tar").arg("-xzf").arg(&archive).arg("-C").arg(&target).status()?;
        anyhow::ensure!(status.success(), "tar failed: {status}");
        Ok(())
    })
    .await??;
    std::fs::write(done, "")?;
    Ok(tree)
}

/// The time the system tools take to unpack the same archives to disk.
struct Floor {
    tar_xzf: Duration,
    /// `None` when `unzip` is not installed.
    unzip: Option<Duration>,
}

async fn measure_floor(work: &Path) -> anyhow::Result<Floor> {
    let work = work.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let tar_gz = work.join(Format::TarGz.file_name());
        let tar_xzf = time_unpacking(&work, "tar", &["-xzf".as_ref(), tar_gz.as_os_str(), "-C".as_ref()])?;
        let unzip = if has_program("unzip") {
            let zip = work.join(Format::Zip.file_name());
            Some(time_unpacking(&work, "unzip", &["-q".as_ref(), zip.as_os_str(), "-d".as_ref()])?)
        } else {
            None
        };
        Ok(Floor { tar_xzf, unzip })
    })
    .await?
}

/// Runs `program args... <empty dir>` and times it; the unpacked tree is removed afterwards.
fn time_unpacking(work: &Path, program: &str, args: &[&std::ffi::OsStr]) -> anyhow::Result<Duration> {
    let target = work.join("extract");
    let _ = std::fs::remove_dir_all(&target);
    std::fs::create_dir_all(&target)?;
    let started = Instant::now();
    let status =
        Command::new(program).args(args).arg(&target).status().with_context(|| format!("running {program}"))?;
    let elapsed = started.elapsed();
    std::fs::remove_dir_all(&target)?;
    anyhow::ensure!(status.success(), "{program} failed: {status}");
    Ok(elapsed)
}

fn has_program(name: &str) -> bool {
    Command::new(name).arg("-v").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok()
}

/// What one import of one archive gave.
struct ImportRun {
    format: Format,
    /// From the job's `created_at` (the POST) to its `finished_at`, as the server recorded them;
    /// the polled time when the job did not finish.
    wall: Duration,
    status: Value,
    timed_out: bool,
    chunks: ChunkTimes,
    memory: MemoryPeaks,
    /// Duplicate images the import reported: (within a split, across splits).
    duplicates: Option<(u64, u64)>,
    /// Time mongod spent on each collection (its `top` command), largest first.
    mongod_time: Vec<CollectionTime>,
    /// CPU seconds of this process during the import: the HTTP file server, the local queue's
    /// dispatcher, the stack's supervisor and the status polls share the machine too.
    bench_cpu: Option<f64>,
    /// Requests the HTTP file server answered and the bytes it sent: a zip is read by ranges,
    /// a tar.gz streamed once.
    served: (u64, u64),
}

impl ImportRun {
    fn final_status(&self) -> &str {
        if self.timed_out {
            "TIMEOUT"
        } else {
            self.status["status"].as_str().unwrap_or("?")
        }
    }

    fn count(&self, name: &str) -> Option<u64> {
        self.status["counts"][name].as_u64()
    }
}

async fn import_once(args: &ImportArgs, bin_dir: &Path, work: &Path, format: Format) -> anyhow::Result<ImportRun> {
    let data_dir = work.join(format!("stack-{}", format.label()));
    let _ = std::fs::remove_dir_all(&data_dir);
    let mut options = StackOptions::new(data_dir.clone(), bin_dir.to_path_buf(), paths::tools_dir());
    options.api_keys = API_KEYS.into();
    options.url_policy = "local".into();
    options.queue_concurrency = args.concurrency as usize;
    options.chunk_size = args.chunk_size;
    let stack = Stack::start(options).await.context("starting the stack")?;
    let result = drive_import(args, &stack, work, format).await;
    stack.shutdown().await;
    // The imported copy is not needed any more (logs are kept): a million small files would
    // otherwise crowd out the next run when the work dir is in RAM.
    for part in ["storage", "mongodb", "queue"] {
        let _ = std::fs::remove_dir_all(data_dir.join(part));
    }
    result
}

async fn drive_import(args: &ImportArgs, stack: &Stack, work: &Path, format: Format) -> anyhow::Result<ImportRun> {
    let server = FileServer::start(work.to_path_buf()).await?;
    let client = reqwest::Client::new();
    let url = match format {
        Format::Dir => format!("file://{}", unpacked_tree(work).await?.display()),
        _ => server.url(format.file_name()),
    };
    let own_cpu_before = own_cpu_ticks();
    let job_id = post_import(&client, stack, &url, format, args.images as usize).await?;

    let mut memory = MemoryPeaks::default();
    let bar = progress_bar();
    let started = Instant::now();
    let mut failed_polls = 0;
    let (status, timed_out) = loop {
        // A poll may fail while the machine is saturated; only a status that stays unreadable
        // ends the run.
        let status = match fetch_status(&client, stack, &job_id).await {
            Ok(status) => status,
            Err(err) if failed_polls < MAX_FAILED_POLLS => {
                failed_polls += 1;
                bar.println(format!("      status poll failed ({failed_polls}/{MAX_FAILED_POLLS}): {err:#}"));
                tokio::time::sleep(POLL_EVERY).await;
                continue;
            }
            Err(err) => return Err(err),
        };
        failed_polls = 0;
        memory.sample(&stack.pids());
        show_progress(&bar, &status);
        if TERMINAL.contains(&status["status"].as_str().unwrap_or_default()) {
            break (status, false);
        }
        if started.elapsed() > Duration::from_secs(args.timeout_mins * 60) {
            break (status, true);
        }
        tokio::time::sleep(POLL_EVERY).await;
    };
    let polled = started.elapsed();
    let bench_cpu = own_cpu_before.zip(own_cpu_ticks()).map(|(before, after)| (after - before) as f64 / CLOCK_TICKS);
    bar.finish();
    memory.sample(&stack.pids());

    let db = yds_store::Db::connect(&stack.mongodb_uri, "yds").await?;
    let job = db.jobs.find(&job_id).await?.context("the job record")?;
    let wall = match job.finished_at {
        Some(finished) => millis(finished.timestamp_millis() - job.created_at.timestamp_millis()),
        None => polled,
    };
    let chunks = ChunkTimes::read(&db, &job_id, job.created_at).await?;
    let dataset_id = status["dataset_id"].as_str().unwrap_or_default();
    let dataset = db.datasets.find(dataset_id).await?;
    let duplicates = dataset.and_then(|d| d.duplicates).map(|d| (d.within_split, d.cross_split));
    // The `top` command is an administrative one, not a collection's: no owner of ours has it.
    let yds = mongodb::Client::with_uri_str(&stack.mongodb_uri).await?.database("yds");
    let mongod_time = mongod_time_by_collection(&yds).await?;
    let served = (server.requests(), server.bytes_served());
    Ok(ImportRun { format, wall, status, timed_out, chunks, memory, duplicates, mongod_time, bench_cpu, served })
}

/// CPU time this process has used so far, in clock ticks.
fn own_cpu_ticks() -> Option<u64> {
    std::fs::read_to_string("/proc/self/stat").ok().and_then(|s| cpu_ticks(&s))
}

/// mongod's time on one collection: the `top` command's total and its split by operation.
struct CollectionTime {
    name: String,
    total: Duration,
    /// The operations that took time, largest first.
    by_operation: Vec<(&'static str, Duration)>,
}

/// Where mongod's time went: the `top` command's total per collection of the `yds` database
/// (time holding the collection's locks, reads and writes together), largest first.
async fn mongod_time_by_collection(db: &mongodb::Database) -> anyhow::Result<Vec<CollectionTime>> {
    const OPERATIONS: [&str; 6] = ["insert", "queries", "getmore", "update", "remove", "commands"];
    let admin = db.client().database("admin");
    let top = admin.run_command(doc! {"top": 1}).await.context("mongod's top command")?;
    let micros = |entry: &mongodb::bson::Document, field: &str| -> Option<Duration> {
        let time = entry.get_document(field).ok()?.get("time")?;
        let time = time.as_i64().or_else(|| time.as_i32().map(i64::from))?;
        Some(Duration::from_micros(time.max(0) as u64))
    };
    let mut times: Vec<CollectionTime> = top
        .get_document("totals")
        .context("top's totals")?
        .iter()
        .filter_map(|(namespace, value)| {
            let collection = namespace.strip_prefix(&format!("{}.", db.name()))?;
            let entry = value.as_document()?;
            let mut by_operation: Vec<(&'static str, Duration)> =
                OPERATIONS.iter().filter_map(|&op| Some((op, micros(entry, op)?))).collect();
            by_operation.sort_by_key(|(_, time)| std::cmp::Reverse(*time));
            Some(CollectionTime { name: collection.to_owned(), total: micros(entry, "total")?, by_operation })
        })
        .collect();
    times.sort_by_key(|c| std::cmp::Reverse(c.total));
    Ok(times)
}

async fn post_import(
    client: &reqwest::Client,
    stack: &Stack,
    url: &str,
    format: Format,
    images: usize,
) -> anyhow::Result<String> {
    // No `chunk_size`: `--chunk-size` reaches the functions as the stack's `YDS_CHUNK_SIZE`.
    let body = json!({
        "name": format!("bench {images} images {}", format.label()),
        "archive_url": url,
    });
    let response = client
        .post(format!("{}/datasets/import", stack.base_url))
        .header("x-api-key", API_KEY)
        .json(&body)
        .send()
        .await?;
    if response.status() != reqwest::StatusCode::ACCEPTED {
        bail!("import refused: {} {}", response.status(), response.text().await?);
    }
    let accepted: Value = response.json().await?;
    Ok(accepted["job_id"].as_str().context("job_id in the answer")?.to_owned())
}

async fn fetch_status(client: &reqwest::Client, stack: &Stack, job_id: &str) -> anyhow::Result<Value> {
    let response = client
        .get(format!("{}/datasets/import/{job_id}/status", stack.base_url))
        .header("x-api-key", API_KEY)
        .send()
        .await?;
    if !response.status().is_success() {
        bail!("status answered {}: {}", response.status(), response.text().await?);
    }
    Ok(response.json().await?)
}

fn progress_bar() -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template("      [{elapsed_precise}] [{bar:40}] {pos}/{len} files {msg}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar
}

fn show_progress(bar: &indicatif::ProgressBar, status: &Value) {
    let progress = &status["progress"];
    bar.set_length(progress["files_total"].as_u64().unwrap_or(0));
    bar.set_position(progress["files_done"].as_u64().unwrap_or(0));
    bar.set_message(format!(
        "({}/{} chunks) {}",
        progress["chunks_done"],
        progress["chunks_total"],
        status["status"].as_str().unwrap_or("")
    ));
}

fn millis(ms: i64) -> Duration {
    Duration::from_millis(ms.max(0) as u64)
}

/// Peak memory of every stack process, by name, from `/proc/<pid>/status`.
#[derive(Default)]
struct MemoryPeaks {
    /// Name -> (largest `VmRSS` sampled, largest `VmHWM` seen), in bytes. `VmHWM` is the
    /// kernel's own high-water mark, so it catches peaks between two samples.
    by_name: BTreeMap<String, (u64, u64)>,
    /// Name -> CPU time used so far (user + system), in clock ticks, from `/proc/<pid>/stat`.
    cpu_ticks: BTreeMap<String, u64>,
}

/// Clock ticks per second of `/proc/<pid>/stat` times (`getconf CLK_TCK`; 100 on Linux).
const CLOCK_TICKS: f64 = 100.0;

impl MemoryPeaks {
    fn sample(&mut self, pids: &[(String, u32)]) {
        for (name, pid) in pids {
            let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/status")) else { continue };
            let entry = self.by_name.entry(name.clone()).or_default();
            entry.0 = entry.0.max(proc_status_kb(&text, "VmRSS:").unwrap_or(0) * 1024);
            entry.1 = entry.1.max(proc_status_kb(&text, "VmHWM:").unwrap_or(0) * 1024);
            if let Some(ticks) = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok().and_then(|s| cpu_ticks(&s)) {
                let seen = self.cpu_ticks.entry(name.clone()).or_default();
                *seen = (*seen).max(ticks);
            }
        }
    }

    /// CPU seconds used by the process, as of the last sample.
    fn cpu_seconds(&self, name: &str) -> Option<f64> {
        self.cpu_ticks.get(name).map(|t| *t as f64 / CLOCK_TICKS)
    }

    /// The true peak: `VmHWM`, or the sampled `VmRSS` if that was larger (a restarted process).
    fn peak(&self, name: &str) -> Option<u64> {
        self.by_name.get(name).map(|(rss, hwm)| *rss.max(hwm))
    }
}

/// Per-chunk figures of one job, from `import_chunks`.
#[derive(Default)]
struct ChunkTimes {
    count: u64,
    failed: u64,
    /// `elapsed_ms` of the chunks that have it, sorted.
    elapsed_ms: Vec<u64>,
    /// First and last `finished_at`, from the job's creation.
    first_done: Option<Duration>,
    last_done: Option<Duration>,
}

impl ChunkTimes {
    async fn read(db: &yds_store::Db, job_id: &str, created: yds_store::DateTime) -> anyhow::Result<ChunkTimes> {
        let mut times = ChunkTimes::default();
        let mut finished = Vec::new();
        for chunk in db.chunks.of_job(job_id).await? {
            times.count += 1;
            times.failed += u64::from(chunk.state == yds_store::ChunkState::Failed);
            times.elapsed_ms.extend(chunk.elapsed_ms);
            if let Some(at) = chunk.finished_at {
                finished.push(millis(at.timestamp_millis() - created.timestamp_millis()));
            }
        }
        times.elapsed_ms.sort_unstable();
        times.first_done = finished.iter().min().copied();
        times.last_done = finished.iter().max().copied();
        Ok(times)
    }

    /// `p50 / p99 / max` in ms, or `n/a` when no chunk records `elapsed_ms`.
    fn summary(&self) -> String {
        let Some(max) = self.elapsed_ms.last() else { return "n/a".into() };
        let mut text = format!("{} / {} / {max}", percentile(&self.elapsed_ms, 50), percentile(&self.elapsed_ms, 99));
        if (self.elapsed_ms.len() as u64) < self.count {
            text.push_str(&format!(" ({} of {} chunks)", self.elapsed_ms.len(), self.count));
        }
        text
    }
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[u64], p: usize) -> u64 {
    let rank = (sorted.len() * p).div_ceil(100).max(1);
    sorted[rank - 1]
}

fn secs_or_na(value: Option<Duration>) -> String {
    value.map_or("n/a".into(), |d| format!("{:.2} s", d.as_secs_f64()))
}

struct Report<'a> {
    args: &'a ImportArgs,
    command_line: String,
    summary: BulkSummary,
    generation: Duration,
    floor: Floor,
    runs: Vec<ImportRun>,
}

impl Report<'_> {
    fn print(&self) {
        let s = &self.summary;
        println!("\n## Import benchmark\n");
        println!("- command: `{}`", self.command_line);
        println!("- commit: {}", git_commit());
        println!("- machine: {}", machine());
        println!(
            "- dataset: {} {} images ({} label files, {} boxes, {} backgrounds, {:.1} MB of images), seed {}",
            s.images,
            self.args.size_mix,
            s.labels,
            s.boxes,
            s.backgrounds,
            s.image_bytes as f64 / MB,
            self.args.seed
        );
        let order = if self.args.labels_first { "data.yaml, labels/, images/" } else { "sorted" };
        println!("- archive member order: {order}");
        println!(
            "- stack: release binaries, queue concurrency {}, chunk size {}",
            self.args.concurrency,
            self.args.chunk_size.map_or("default".into(), |c| c.to_string())
        );
        println!("- generation (testkit::bulk, both archives): {:.1} s", self.generation.as_secs_f64());
        println!(
            "- floor: `tar -xzf` {:.2} s, `unzip -q` {}",
            self.floor.tar_xzf.as_secs_f64(),
            secs_or_na(self.floor.unzip)
        );
        println!();
        self.print_table();
        println!(
            "\nWall time: the job's created_at (POST) to finished_at. Chunk times: `elapsed_ms` of import_chunks."
        );
    }

    fn print_table(&self) {
        let header: Vec<&str> = self.runs.iter().map(|r| r.format.label()).collect();
        println!("| | {} |", header.join(" | "));
        println!("|---|{}", "---:|".repeat(self.runs.len()));
        let row = |name: &str, cell: &dyn Fn(&ImportRun) -> String| {
            let cells: Vec<String> = self.runs.iter().map(cell).collect();
            println!("| {name} | {} |", cells.join(" | "));
        };
        let archive_mb = |r: &ImportRun| r.format.archive_bytes(&self.summary) as f64 / MB;
        row("images", &|_| self.summary.images.to_string());
        row("archive MB", &|r| format!("{:.1}", archive_mb(r)));
        row("wall time s", &|r| format!("{:.2}", r.wall.as_secs_f64()));
        row("images/s", &|r| format!("{:.0}", self.summary.images as f64 / r.wall.as_secs_f64().max(1e-3)));
        row("MB/s", &|r| format!("{:.1}", archive_mb(r) / r.wall.as_secs_f64().max(1e-3)));
        row("wall / tar -xzf", &|r| format!("{:.1}x", r.wall.as_secs_f64() / self.floor.tar_xzf.as_secs_f64()));
        row("chunks (failed)", &|r| format!("{} ({})", r.chunks.count, r.chunks.failed));
        row("chunk p50 / p99 / max ms", &|r| r.chunks.summary());
        row("first / last chunk done s", &|r| format!("{} / {}", secs(r.chunks.first_done), secs(r.chunks.last_done)));
        for name in FUNCTIONS.iter().copied().chain(["mongod"]) {
            row(&format!("peak RSS {name} MB"), &|r| {
                r.memory.peak(name).map_or("n/a".into(), |b| format!("{:.0}", b as f64 / MB))
            });
        }
        for name in ["process-chunk", "mongod"] {
            row(&format!("CPU s {name}"), &|r| r.memory.cpu_seconds(name).map_or("n/a".into(), |s| format!("{s:.1}")));
        }
        row("CPU s bench process (file server, queue dispatcher)", &|r| {
            r.bench_cpu.map_or("n/a".into(), |s| format!("{s:.1}"))
        });
        row("HTTP requests to the source / MB sent", &|r| format!("{} / {:.1}", r.served.0, r.served.1 as f64 / 1e6));
        row("mongod time s by collection (by operation)", &|r| {
            let top: Vec<String> = r
                .mongod_time
                .iter()
                .take(4)
                .map(|c| {
                    let ops: Vec<String> = c
                        .by_operation
                        .iter()
                        .filter(|(_, time)| *time >= Duration::from_millis(100))
                        .map(|(op, time)| format!("{op} {:.1}", time.as_secs_f64()))
                        .collect();
                    let total = format!("{} {:.1}", c.name, c.total.as_secs_f64());
                    if ops.is_empty() {
                        total
                    } else {
                        format!("{total} ({})", ops.join(", "))
                    }
                })
                .collect();
            top.join("; ")
        });
        row("status", &|r| r.final_status().to_owned());
        let count = |r: &ImportRun, name: &str| r.count(name).map_or("?".into(), |n| n.to_string());
        row("images / annotations / invalid", &|r| {
            format!("{} / {} / {}", count(r, "images"), count(r, "annotations"), count(r, "invalid_images"))
        });
        row("duplicates within / across splits", &|r| {
            r.duplicates.map_or("n/a".into(), |(within, across)| format!("{within} / {across}"))
        });
    }

    /// One line per check; false when any failed.
    fn print_sanity(&self) -> bool {
        println!();
        let s = &self.summary;
        let mut all_ok = true;
        for run in &self.runs {
            let label = run.format.label();
            let mut check = |what: &str, got: Option<u64>, want: u64| {
                if got == Some(want) {
                    println!("ok       {label}: {what} {want}");
                } else {
                    all_ok = false;
                    let got = got.map_or("none".into(), |g| g.to_string());
                    println!("MISMATCH {label}: {what} imported {got}, generated {want}  <<<<<<<<<<");
                }
            };
            check("images", run.count("images"), s.images);
            check("label files", run.count("labels"), s.labels);
            check("annotations", run.count("annotations"), s.boxes);
            check("invalid images", run.count("invalid_images"), 0);
            check("duplicate images", run.duplicates.map(|(within, across)| within + across), 0);
            if run.final_status() != "completed" {
                all_ok = false;
                println!("MISMATCH {label}: status {}, expected completed  <<<<<<<<<<", run.final_status());
            }
        }
        all_ok
    }
}

fn secs(value: Option<Duration>) -> String {
    value.map_or("n/a".into(), |d| format!("{:.2}", d.as_secs_f64()))
}

/// `abc1234`, with `-dirty` when tracked files are modified.
fn git_commit() -> String {
    let git = |args: &[&str]| {
        Command::new("git")
            .current_dir(paths::workspace_root())
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    let Some(commit) = git(&["rev-parse", "--short", "HEAD"]) else { return "unknown".into() };
    let dirty = git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    if dirty {
        format!("{commit}-dirty")
    } else {
        commit
    }
}

/// `N CPUs (model), M GB RAM`.
fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown model", |(_, m)| m.trim());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let memory = proc_status_kb(&meminfo, "MemTotal:").map_or("? GB".into(), |kb| format!("{:.1} GB", kb as f64 / 1e6));
    format!("{cpus} CPUs ({model}), {memory} RAM")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let values: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&values, 50), 50);
        assert_eq!(percentile(&values, 99), 99);
        assert_eq!(percentile(&[7], 99), 7);
        assert_eq!(percentile(&[1, 2, 3], 50), 2);
    }
}
