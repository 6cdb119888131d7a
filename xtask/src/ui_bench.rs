//! `cargo xtask bench ui`: how fast the web app puts a dataset on screen, in headless Chromium
//! on the release stack. Two datasets: photo-sized images (a grid of 100 thumbnails, first made
//! on request, then stored, then from the browser's cache), and a large one (1 M small images by
//! default) whose page must open as fast as a small one's.
//!
//! A page counts as "on screen" when its first 100 tiles are in the document and every one of
//! their thumbnails has loaded and decoded, in a window tall enough to show all 100 (1920×3600:
//! thumbnails load as they come into view); times are the page's own clock from the start of
//! the navigation (`performance.now()`), checked every 10 ms.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use local_stack::stack::{Stack, StackOptions};
use serde_json::{json, Value};
use testkit::browser::Browser;
use testkit::{write_bulk_archives, BulkSpec, SizeMix};

use crate::paths;

const KEY: &str = "bench-key";
const TILES: usize = 100;

/// `cargo xtask bench ui` options.
#[derive(Debug, clap::Args)]
pub struct UiArgs {
    /// Photo-sized images in the dataset whose thumbnails are measured.
    #[arg(long, default_value_t = 1000)]
    photos: usize,
    /// Images in the large dataset (0: skip it).
    #[arg(long, default_value_t = 1_000_000)]
    images: usize,
    /// Page loads measured for each figure; the median is printed.
    #[arg(long, default_value_t = 5)]
    repeat: usize,
}

pub async fn run(args: UiArgs) -> anyhow::Result<i32> {
    println!("[1/4] Building the release function binaries; finding the browser");
    let bin_dir = crate::binaries::build_release_functions()?;
    let browser_bins = crate::browser::ensure_browser()?;
    let work = tempfile::tempdir()?;
    let mut options = StackOptions::new(work.path().join("stack"), bin_dir, paths::tools_dir());
    options.api_keys = KEY.into();
    let stack = Stack::start(options).await.context("starting the stack")?;
    let result = measure(&args, &stack, work.path(), &browser_bins).await;
    stack.shutdown().await;
    result?;
    print_thumbnail_times(&work.path().join("stack/logs/images.log"))?;
    Ok(0)
}

/// The images function's own time per thumbnail request (from its request log): those that
/// made their thumbnail and those that read it stored, together.
fn print_thumbnail_times(log: &Path) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(log).with_context(|| format!("reading {}", log.display()))?;
    let mut times: Vec<u64> = text
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|entry| {
            entry["fields"]["message"] == "served"
                && entry["span"]["path"].as_str().is_some_and(|p| p.ends_with("/thumbnail"))
        })
        .filter_map(|entry| entry["fields"]["elapsed_ms"].as_u64())
        .collect();
    if times.is_empty() {
        return Ok(());
    }
    times.sort_unstable();
    let at = |q: f64| times[((times.len() - 1) as f64 * q) as usize];
    println!(
        "  images function, per thumbnail request ({}): p50 {} ms, p90 {} ms, p99 {} ms, max {} ms",
        times.len(),
        at(0.5),
        at(0.9),
        at(0.99),
        times[times.len() - 1]
    );
    Ok(())
}

async fn measure(args: &UiArgs, stack: &Stack, work: &Path, bins: &crate::browser::Browser) -> anyhow::Result<()> {
    println!("[2/4] Importing {} photo-sized images (twice) and {} small images", args.photos, args.images);
    let photos = import(stack, work, "photos", args.photos, SizeMix::Realistic).await?;
    // A second copy whose thumbnails nobody asked for yet: a second first view.
    let photos_again = import(stack, work, "photos-again", args.photos, SizeMix::Realistic).await?;
    let large = match args.images {
        0 => None,
        n => Some(import(stack, work, "large", n, SizeMix::Small).await?),
    };

    println!("[3/4] Opening the pages in headless Chromium ({} loads each)", args.repeat);
    let page = |id: &str| format!("{}/ui/datasets/{id}#api_key={KEY}", stack.base_url);
    let mut rows = Vec::new();
    // Thumbnails made on request: only the first load of a dataset is that case, hence two
    // copies of the photos.
    let mut first = Vec::new();
    for dataset in [&photos, &photos_again] {
        first.push(open(bins, &page(dataset)).await?);
    }
    rows.push((format!("{} photos: thumbnails made on request", args.photos), first));
    let mut stored = Vec::new();
    for _ in 0..args.repeat {
        stored.push(open(bins, &page(&photos)).await?);
    }
    rows.push((format!("{} photos: thumbnails stored", args.photos), stored));
    if let Some(large) = &large {
        let mut loads = Vec::new();
        for _ in 0..args.repeat {
            loads.push(open(bins, &page(large)).await?);
        }
        rows.push((format!("{} images: dataset page", args.images), loads));
    }
    let mut list = Vec::new();
    let datasets = 2 + large.iter().count();
    for _ in 0..args.repeat {
        list.push(open_list(bins, &format!("{}/ui/#api_key={KEY}", stack.base_url), datasets).await?);
    }
    rows.push(("datasets page (every dataset listed)".into(), list));

    println!("[4/4] Results (page clock from the navigation's start; a fresh browser each load)");
    println!("  {:<64} {:>9} {:>9} {:>9}", "page: until 100 thumbnails are decoded", "median", "min", "max");
    for (name, mut times) in rows {
        times.sort_by(f64::total_cmp);
        let median = times[times.len() / 2];
        let (min, max) = (times[0], times[times.len() - 1]);
        println!("  {name:<64} {median:>7.0}ms {min:>7.0}ms {max:>7.0}ms");
    }
    Ok(())
}

/// Generates, imports and waits for a dataset; its id.
async fn import(stack: &Stack, work: &Path, name: &str, images: usize, size_mix: SizeMix) -> anyhow::Result<String> {
    let (tar_gz, zip) = (work.join(format!("{name}.tar.gz")), work.join(format!("{name}.zip")));
    let spec = BulkSpec { size_mix, ..BulkSpec::new(images, 11) };
    tokio::task::spawn_blocking(move || write_bulk_archives(&spec, &tar_gz, &zip)).await??;
    let client = reqwest::Client::new();
    let url = format!("file://{}", work.join(format!("{name}.tar.gz")).display());
    let accepted: Value = client
        .post(format!("{}/datasets/import", stack.base_url))
        .header("x-api-key", KEY)
        .json(&json!({"name": name, "archive_url": url}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let job = accepted["job_id"].as_str().context("no job id")?;
    let started = Instant::now();
    loop {
        let status: Value = client
            .get(format!("{}/datasets/import/{job}/status", stack.base_url))
            .header("x-api-key", KEY)
            .send()
            .await?
            .json()
            .await?;
        match status["status"].as_str() {
            Some("completed" | "completed_with_errors") => break,
            Some("failed") => anyhow::bail!("the import of {name} failed: {status}"),
            _ => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
    println!("      {name}: {images} images imported in {:.1} s", started.elapsed().as_secs_f64());
    Ok(accepted["dataset_id"].as_str().context("no dataset id")?.to_owned())
}

/// Milliseconds from navigation start until the first 100 tiles are in the page, each with its
/// thumbnail decoded.
async fn open(bins: &crate::browser::Browser, url: &str) -> anyhow::Result<f64> {
    let ready = format!(
        "const tiles = document.querySelectorAll('[data-image-id] img'); \
         return tiles.length >= {TILES} && [...tiles].slice(0, {TILES}).every(i => i.complete && i.naturalWidth > 0) \
         && performance.now();"
    );
    on_screen(bins, url, &ready).await
}

/// Milliseconds from navigation start until the datasets page lists its `rows` rows.
async fn open_list(bins: &crate::browser::Browser, url: &str, rows: usize) -> anyhow::Result<f64> {
    let ready = format!("return document.querySelectorAll('[data-dataset-id]').length >= {rows} && performance.now();");
    on_screen(bins, url, &ready).await
}

/// Opens `url` in a fresh browser (no cache, no session) and polls `ready` until it returns a
/// time. The window (1920×3600) shows all 100 tiles of a first page at once: thumbnails load as
/// they come into view, so "100 on screen" must mean 100 in view.
async fn on_screen(bins: &crate::browser::Browser, url: &str, ready: &str) -> anyhow::Result<f64> {
    let browser = Browser::start(&bins.chromium, &bins.chromedriver).await?;
    browser.client.set_window_size(1920, 3600).await?;
    browser.goto(url).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let result = loop {
        if let Some(ms) = browser.eval(ready).await.as_f64() {
            break Ok(ms);
        }
        if Instant::now() > deadline {
            break Err(anyhow::anyhow!("{url} was not on screen within 60 s"));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    browser.close().await;
    result
}
