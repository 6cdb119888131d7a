//! `cargo xtask bench thumbnails`: what a thumbnail costs, against what an import spends per
//! image, to decide when thumbnails are made: at import (only if that adds at most 10 % to an
//! import's time) or on their first request.
//!
//! It generates photo-like images (`testkit::photo`: gradient, boxes, grain, as the realistic
//! import bench's), then times on one thread, per image, the import's own per-image work on
//! the bytes (`inspect_image`: header, EXIF, validity, BLAKE3) and the images function's
//! thumbnail (`images::thumbnail`: header, decode, scale, orient, encode), in this optimized
//! build. It prints a table for `docs/benchmarks.md` with the import's measured cost per image
//! from there beside it, and the verdict. A command and not a test: it measures, and fails only
//! when a thumbnail cannot be made.

use std::time::{Duration, Instant};

use anyhow::Context;

/// `cargo xtask bench thumbnails` options.
#[derive(Debug, clap::Args)]
pub struct ThumbnailArgs {
    /// 640×480 JPEGs (the common size of training images).
    #[arg(long, default_value_t = 200)]
    small: u32,
    /// 4000×3000 JPEGs (12-megapixel photos).
    #[arg(long, default_value_t = 20)]
    large: u32,
    /// 1280×720 PNGs (decoded at full size: no decoder scales a PNG).
    #[arg(long, default_value_t = 20)]
    png: u32,
    /// The generator's seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

/// An import's cost per image of the realistic mix (320×240 to 1280×720 photos, 166 KB each),
/// from `docs/benchmarks.md` ("10 000 realistic images"): wall ms per image (2 vCPUs) and CPU
/// ms per image (process-chunk and mongod), tar.gz and zip.
const IMPORT_PER_IMAGE: [(&str, f64, f64); 2] = [("tar.gz", 0.82, 1.27), ("zip", 0.45, 0.54)];
/// The most thumbnails made at import may add to an import's time.
const AT_IMPORT_BUDGET: f64 = 0.10;

/// One set of images and what it cost.
struct Measured {
    label: String,
    count: usize,
    bytes: u64,
    /// ms per image, sorted.
    inspect: Vec<f64>,
    thumbnail: Vec<f64>,
    thumbnail_bytes: u64,
    /// Largest memory a thumbnail planned to hold.
    memory: u64,
}

/// Runs the bench; `commit` and `machine` head its report.
pub fn run(args: ThumbnailArgs, commit: &str, machine: &str) -> anyhow::Result<i32> {
    println!("[1/2] Generating {} + {} JPEGs and {} PNGs (seed {})", args.small, args.large, args.png, args.seed);
    let started = Instant::now();
    let sets = [
        ("640×480 JPEG".to_owned(), 640, 480, false, args.small),
        ("4000×3000 JPEG".to_owned(), 4000, 3000, false, args.large),
        ("1280×720 PNG".to_owned(), 1280, 720, true, args.png),
    ];
    let mut generated = Vec::new();
    for (label, width, height, png, count) in sets {
        let images = (0..count)
            .map(|i| {
                testkit::photo(width, height, png, args.seed.wrapping_mul(1_000_003) + u64::from(i) + u64::from(width))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        generated.push((label, if png { "png" } else { "jpeg" }, images));
    }
    println!("      {:.1} s", started.elapsed().as_secs_f64());

    println!("[2/2] Timing, one image at a time on one thread");
    let mut measured = Vec::new();
    for (label, format, images) in &generated {
        if images.is_empty() {
            continue;
        }
        let mut set = Measured {
            label: label.clone(),
            count: images.len(),
            bytes: images.iter().map(|i| i.len() as u64).sum(),
            inspect: Vec::new(),
            thumbnail: Vec::new(),
            thumbnail_bytes: 0,
            memory: 0,
        };
        for (n, bytes) in images.iter().enumerate() {
            let name = format!("img_{n}.{}", if *format == "png" { "png" } else { "jpg" });
            let (info, took) = timed(|| yds_format::image_file::inspect_image(bytes, &name));
            anyhow::ensure!(info.valid, "{label} {n}: the import would not take it: {:?}", info.issues);
            set.inspect.push(ms(took));
            let (thumbnail, took) = timed(|| {
                let plan = images::thumbnail::plan(bytes, format)?;
                let memory = plan.memory;
                images::thumbnail::make(bytes, &plan, info.orientation).map(|jpeg| (jpeg, memory))
            });
            let (jpeg, memory) = thumbnail.with_context(|| format!("{label} {n}: no thumbnail"))?;
            set.thumbnail.push(ms(took));
            set.thumbnail_bytes += jpeg.len() as u64;
            set.memory = set.memory.max(memory);
        }
        set.inspect.sort_by(f64::total_cmp);
        set.thumbnail.sort_by(f64::total_cmp);
        measured.push(set);
    }

    report(&args, &measured, commit, machine);
    Ok(0)
}

fn timed<T>(work: impl FnOnce() -> T) -> (T, Duration) {
    let started = Instant::now();
    let result = work();
    (result, started.elapsed())
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len().max(1) as f64
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], p: usize) -> f64 {
    let rank = (p * sorted.len()).div_ceil(100).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn report(args: &ThumbnailArgs, measured: &[Measured], commit: &str, machine: &str) {
    println!();
    println!(
        "`cargo xtask bench thumbnails --small {} --large {} --png {} --seed {}` at {}, {}:",
        args.small, args.large, args.png, args.seed, commit, machine
    );
    println!();
    println!(
        "| images | n | KB each | import's per-image work ms (mean) | thumbnail ms mean / p50 / max | thumbnail / \
         that work | thumbnail KB | decode memory MB |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for set in measured {
        let (inspect, thumbnail) = (mean(&set.inspect), mean(&set.thumbnail));
        println!(
            "| {} | {} | {:.0} | {:.2} | {:.2} / {:.2} / {:.2} | {:.0}× | {:.1} | {:.1} |",
            set.label,
            set.count,
            set.bytes as f64 / set.count as f64 / 1000.0,
            inspect,
            thumbnail,
            percentile(&set.thumbnail, 50),
            set.thumbnail.last().copied().unwrap_or_default(),
            thumbnail / inspect,
            set.thumbnail_bytes as f64 / set.count as f64 / 1000.0,
            set.memory as f64 / 1e6,
        );
    }
    println!();
    let Some(typical) = measured.first() else { return };
    let thumbnail = mean(&typical.thumbnail);
    println!(
        "A {} thumbnail against a whole import's cost per image (docs/benchmarks.md, realistic mix):",
        typical.label
    );
    let mut within = true;
    for (format, wall, cpu) in IMPORT_PER_IMAGE {
        // On the import's two vCPUs the extra CPU time lengthens the wall time about as much
        // as the CPU time, the import being CPU-bound: compare with both.
        let (of_wall, of_cpu) = (thumbnail / wall, thumbnail / cpu);
        within &= of_wall <= AT_IMPORT_BUDGET && of_cpu <= AT_IMPORT_BUDGET;
        println!(
            "- {format}: import {wall:.2} ms wall / {cpu:.2} CPU-ms per image; a thumbnail adds {:.0} % of the wall time, \
             {:.0} % of the CPU time",
            of_wall * 100.0,
            of_cpu * 100.0
        );
    }
    let verdict = if within {
        "at import: within the 10 % an import may grow by"
    } else {
        "on first request: making them at import would add more than 10 % to an import's time"
    };
    println!("Verdict: thumbnails {verdict}.");
}
