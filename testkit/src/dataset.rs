//! Synthetic YOLO detection datasets whose every expected import result is known in advance.
//!
//! [`generate`] writes `data.yaml` and the image and label trees of a [`DatasetSpec`], and
//! returns a [`GeneratedDataset`] listing, per image, what an importer must report: split,
//! file name, dimensions, format, size, boxes and whether Ultralytics' trainer would use it.
//!
//! Rules a test can rely on:
//! - Same spec, same bytes: every image has its own RNG seeded from `(seed, index)`, so the
//!   output does not depend on thread scheduling, and defects are drawn from the seed alone.
//! - Images are numbered across all splits in spec order, `img_000000`, `img_000001`, ...;
//!   "every n-th" counts that 1-based global number (`png_every: 3` makes images 3, 6, 9, ...
//!   PNG, i.e. `img_000002.png`, `img_000005.png`, ...).
//! - A background image (no label file) takes precedence over an empty label file.
//! - Defects replace the content of distinct images drawn from the seed; they never add images.
//!   Corrupt images (garbage bytes behind a `.jpg`/`.png` name, reported with width and height
//!   0), images with a class id `>= nc` in their label file and 8x8 images are all
//!   `valid: false`, as Ultralytics drops each of them.
//! - Box values are written with 6 decimals, lie strictly inside (0, 1), and each box lies
//!   strictly inside its image; [`ExpectedImage::boxes`] holds the values parsed back from
//!   that text, so a test may compare them with `==`.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use crate::encode::Picture;

/// Where images and labels go, relative to the dataset root (the folder of `data.yaml`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Layout {
    /// `images/{split}/x.jpg` + `labels/{split}/x.txt`; YAML `train: images/train`.
    Ultralytics,
    /// `{folder}/images/x.jpg` + `{folder}/labels/x.txt`, where the folder of split `val` is
    /// named `valid` (others keep their name); YAML `train: ../train/images`,
    /// `val: ../valid/images`, as Roboflow exports them.
    Roboflow,
}

/// Deliberately broken images, each one replacing a distinct normal image.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Defects {
    /// Files with an image extension but garbage bytes.
    pub corrupt_images: usize,
    /// Images whose label file has a row with a class id `>= nc` (appended as its last row).
    pub bad_label_lines: usize,
    /// Real 8x8 images (Ultralytics drops images under 10 pixels a side).
    pub tiny_images: usize,
}

impl Defects {
    fn total(&self) -> usize {
        self.corrupt_images + self.bad_label_lines + self.tiny_images
    }
}

/// What to generate. Every field is public so a test states exactly what it needs.
#[derive(Debug, Clone, PartialEq)]
pub struct DatasetSpec {
    pub seed: u64,
    pub layout: Layout,
    /// Put everything (YAML included) inside this one folder, as many archives ship.
    pub top_folder: Option<String>,
    /// Split names (the YAML keys) and image counts, in order, e.g. `[("train", 20), ("val", 6)]`.
    pub splits: Vec<(String, usize)>,
    pub classes: Vec<String>,
    /// Every n-th image is PNG instead of JPEG (0 = never).
    pub png_every: usize,
    /// Every n-th image has no label file at all (0 = never).
    pub background_every: usize,
    /// Every n-th image has an empty label file (0 = never).
    pub empty_label_every: usize,
    /// Boxes per labelled image: `1..=max_boxes` (0 is taken as 1).
    pub max_boxes: usize,
    /// Base `(width, height)`; each image varies deterministically within ±50%, at least 16.
    pub image_size: (u32, u32),
    pub defects: Defects,
}

impl DatasetSpec {
    /// 16 images for fast tests: Ultralytics layout, `train` 12 + `val` 4, classes
    /// `person`, `car`, `dog`, every 3rd image PNG, every 5th a background image, every 7th an
    /// empty label file, up to 3 boxes, 64x48 base size, no defects.
    pub fn small(seed: u64) -> Self {
        DatasetSpec {
            seed,
            layout: Layout::Ultralytics,
            top_folder: None,
            splits: vec![("train".into(), 12), ("val".into(), 4)],
            classes: vec!["person".into(), "car".into(), "dog".into()],
            png_every: 3,
            background_every: 5,
            empty_label_every: 7,
            max_boxes: 3,
            image_size: (64, 48),
            defects: Defects::default(),
        }
    }

    /// Total number of images over all splits.
    pub fn total_images(&self) -> usize {
        self.splits.iter().map(|(_, n)| n).sum()
    }
}

/// One image as an importer must report it.
#[derive(Debug, Clone, PartialEq)]
pub struct ExpectedImage {
    /// The YAML split key: `train`, `val`, `test`, ... (also under the Roboflow layout, whose
    /// folder for `val` is `valid`).
    pub split: String,
    /// Path relative to the split's image root, e.g. `img_000003.jpg`.
    pub file_name: String,
    /// Encoded dimensions; 0 x 0 for a corrupt image.
    pub width: u32,
    pub height: u32,
    /// `"jpeg"` or `"png"` (for a corrupt image: what its extension claims).
    pub format: String,
    pub size_bytes: u64,
    /// `(class_id, [cx, cy, w, h])` per label row, exactly as written to the label file,
    /// including a bad row (class id `>= nc`) when there is one.
    pub boxes: Vec<(u32, [f64; 4])>,
    /// The label file's text; `None` when there is no label file (background image).
    pub label_text: Option<String>,
    /// True when Ultralytics' trainer would use the image.
    pub valid: bool,
}

/// What [`generate`] wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct GeneratedDataset {
    /// The folder holding `data.yaml` (`dir/top_folder` when the spec has a top folder).
    pub root: PathBuf,
    /// Every image, in global number order (split by split, as in the spec).
    pub images: Vec<ExpectedImage>,
    pub classes: Vec<String>,
    pub layout: Layout,
}

impl GeneratedDataset {
    pub fn image_count(&self) -> usize {
        self.images.len()
    }

    /// Boxes of valid images.
    pub fn annotation_count(&self) -> usize {
        self.images.iter().filter(|i| i.valid).map(|i| i.boxes.len()).sum()
    }

    /// Valid images with no boxes (no label file, or an empty one).
    pub fn background_count(&self) -> usize {
        self.images.iter().filter(|i| i.valid && i.boxes.is_empty()).count()
    }

    pub fn invalid_count(&self) -> usize {
        self.images.iter().filter(|i| !i.valid).count()
    }

    /// `data.yaml` under [`root`](Self::root).
    pub fn yaml_path(&self) -> PathBuf {
        self.root.join("data.yaml")
    }

    /// Where the image file is.
    pub fn image_path(&self, image: &ExpectedImage) -> PathBuf {
        self.root.join(image_dir(self.layout, &image.split)).join(&image.file_name)
    }

    /// Where the label file of `image` is (or would be, for a background image).
    pub fn label_path(&self, image: &ExpectedImage) -> PathBuf {
        self.root.join(label_dir(self.layout, &image.split)).join(label_name(&image.file_name))
    }
}

/// Writes the dataset of `spec` under `dir` (or `dir/top_folder`) and returns what it wrote.
///
/// `dir` need not exist. Existing files with the same names are overwritten; others are left.
pub fn generate(dir: &Path, spec: &DatasetSpec) -> anyhow::Result<GeneratedDataset> {
    check(spec)?;
    let root = match &spec.top_folder {
        Some(top) => dir.join(top),
        None => dir.to_path_buf(),
    };
    for (split, _) in &spec.splits {
        for sub in [image_dir(spec.layout, split), label_dir(spec.layout, split)] {
            let path = root.join(sub);
            fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        }
    }

    let defects = draw_defects(spec)?;
    let mut jobs = Vec::with_capacity(spec.total_images());
    for (split, count) in &spec.splits {
        for _ in 0..*count {
            let index = jobs.len();
            jobs.push(Job { split, index, defect: defects[index] });
        }
    }

    let images = render_all(&root, spec, &jobs)?;
    let yaml = data_yaml(spec);
    fs::write(root.join("data.yaml"), yaml).context("writing data.yaml")?;
    Ok(GeneratedDataset { root, images, classes: spec.classes.clone(), layout: spec.layout })
}

fn check(spec: &DatasetSpec) -> anyhow::Result<()> {
    ensure!(!spec.classes.is_empty(), "a dataset needs at least one class");
    ensure!(!spec.splits.is_empty(), "a dataset needs at least one split");
    for (i, (name, _)) in spec.splits.iter().enumerate() {
        ensure!(
            !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\\', ':', '\n']),
            "bad split name {name:?}"
        );
        ensure!(!spec.splits[..i].iter().any(|(other, _)| other == name), "split {name:?} given twice");
        if spec.layout == Layout::Roboflow {
            ensure!(
                !(name == "valid" && spec.splits.iter().any(|(o, _)| o == "val")),
                "splits `val` and `valid` would share the Roboflow folder `valid`"
            );
        }
    }
    ensure!(spec.image_size.0 > 0 && spec.image_size.1 > 0, "image_size must be positive");
    if let Some(top) = &spec.top_folder {
        ensure!(
            !top.is_empty() && !Path::new(top).is_absolute() && !top.split('/').any(|s| s == ".."),
            "bad top folder {top:?}"
        );
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Defect {
    Corrupt,
    BadLabel,
    Tiny,
}

/// Which image gets which defect: distinct images, drawn from the seed alone.
fn draw_defects(spec: &DatasetSpec) -> anyhow::Result<Vec<Option<Defect>>> {
    let total = spec.total_images();
    let d = &spec.defects;
    if d.total() > total {
        bail!("{} defects asked for but only {total} images", d.total());
    }
    let mut out = vec![None; total];
    if d.total() == 0 {
        return Ok(out);
    }
    let mut order: Vec<usize> = (0..total).collect();
    order.shuffle(&mut StdRng::seed_from_u64(mix(spec.seed, u64::MAX)));
    let kinds = std::iter::repeat_n(Defect::Corrupt, d.corrupt_images)
        .chain(std::iter::repeat_n(Defect::BadLabel, d.bad_label_lines))
        .chain(std::iter::repeat_n(Defect::Tiny, d.tiny_images));
    for (index, kind) in order.into_iter().zip(kinds) {
        out[index] = Some(kind);
    }
    Ok(out)
}

struct Job<'a> {
    split: &'a str,
    index: usize,
    defect: Option<Defect>,
}

/// Renders the jobs on a few threads; results come back in job order.
fn render_all(root: &Path, spec: &DatasetSpec, jobs: &[Job]) -> anyhow::Result<Vec<ExpectedImage>> {
    // Twice the cores: file writes wait on the disk as much as encoding uses the CPU.
    let threads = std::thread::available_parallelism().map(|n| n.get() * 2).unwrap_or(2).clamp(1, 16);
    let threads = threads.min(jobs.len().div_ceil(256)).max(1);
    if threads == 1 {
        return jobs.iter().map(|job| render_one(root, spec, job)).collect();
    }
    let per_thread = jobs.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = jobs
            .chunks(per_thread)
            .map(|chunk| {
                scope.spawn(move || {
                    chunk.iter().map(|job| render_one(root, spec, job)).collect::<anyhow::Result<Vec<_>>>()
                })
            })
            .collect();
        let mut images = Vec::with_capacity(jobs.len());
        for handle in handles {
            let part = handle.join().map_err(|_| anyhow::anyhow!("an image generator thread panicked"))??;
            images.extend(part);
        }
        Ok(images)
    })
}

fn render_one(root: &Path, spec: &DatasetSpec, job: &Job) -> anyhow::Result<ExpectedImage> {
    let number = job.index + 1;
    let mut rng = StdRng::seed_from_u64(mix(spec.seed, job.index as u64));
    let is_png = every(spec.png_every, number);
    let (ext, format) = if is_png { ("png", "png") } else { ("jpg", "jpeg") };
    let file_name = format!("img_{:06}.{ext}", job.index);

    let (width, height) = match job.defect {
        Some(Defect::Tiny) => (8, 8),
        _ => (vary(spec.image_size.0, &mut rng), vary(spec.image_size.1, &mut rng)),
    };

    // Label rows.
    let nc = spec.classes.len() as u32;
    let background = every(spec.background_every, number);
    let empty = !background && every(spec.empty_label_every, number);
    let mut rows: Vec<(u32, [f64; 4])> = Vec::new();
    if !background && !empty {
        let count = rng.random_range(1..=spec.max_boxes.max(1));
        for _ in 0..count {
            rows.push((rng.random_range(0..nc), random_box(&mut rng)));
        }
    }
    if job.defect == Some(Defect::BadLabel) {
        rows.push((nc + rng.random_range(0..3), random_box(&mut rng)));
    }
    let has_label_file = !background || job.defect == Some(Defect::BadLabel);
    let mut label_text = String::new();
    for (class, b) in &rows {
        writeln!(label_text, "{class} {:.6} {:.6} {:.6} {:.6}", b[0], b[1], b[2], b[3]).expect("writing to a String");
    }
    let boxes = parse_rows(&label_text);

    // Image bytes.
    let base: [u8; 3] = rng.random();
    let bytes = if job.defect == Some(Defect::Corrupt) {
        let len = rng.random_range(64..512);
        let mut garbage = vec![0u8; len];
        rng.fill(&mut garbage[..]);
        // Neither the JPEG (FF D8) nor the PNG (89 50) signature.
        garbage[0] = b'#';
        garbage
    } else {
        let mut picture = Picture::gradient(width, height, base);
        for (class, b) in &boxes {
            picture.fill_box(*b, class_color(*class));
        }
        if is_png {
            picture.to_png()?
        } else {
            picture.to_jpeg()?
        }
    };

    let image_path = root.join(image_dir(spec.layout, job.split)).join(&file_name);
    fs::write(&image_path, &bytes).with_context(|| format!("writing {}", image_path.display()))?;
    if has_label_file {
        let label_path = root.join(label_dir(spec.layout, job.split)).join(label_name(&file_name));
        fs::write(&label_path, &label_text).with_context(|| format!("writing {}", label_path.display()))?;
    }

    let corrupt = job.defect == Some(Defect::Corrupt);
    Ok(ExpectedImage {
        split: job.split.to_owned(),
        file_name,
        width: if corrupt { 0 } else { width },
        height: if corrupt { 0 } else { height },
        format: format.to_owned(),
        size_bytes: bytes.len() as u64,
        boxes,
        label_text: has_label_file.then_some(label_text),
        valid: job.defect.is_none(),
    })
}

/// A box of 5%..50% of each side, at least 0.001 from every edge, so that after rounding
/// to 6 decimals it is still strictly inside the image.
fn random_box(rng: &mut StdRng) -> [f64; 4] {
    const MARGIN: f64 = 0.001;
    let w: f64 = rng.random_range(0.05..0.5);
    let h: f64 = rng.random_range(0.05..0.5);
    let cx = rng.random_range(w / 2.0 + MARGIN..1.0 - w / 2.0 - MARGIN);
    let cy = rng.random_range(h / 2.0 + MARGIN..1.0 - h / 2.0 - MARGIN);
    [cx, cy, w, h]
}

fn parse_rows(text: &str) -> Vec<(u32, [f64; 4])> {
    text.lines()
        .map(|line| {
            let mut parts = line.split(' ');
            let class = parts.next().and_then(|p| p.parse().ok()).expect("class id");
            let mut values = [0.0; 4];
            for v in &mut values {
                *v = parts.next().and_then(|p| p.parse().ok()).expect("box value");
            }
            (class, values)
        })
        .collect()
}

fn class_color(class: u32) -> [u8; 3] {
    const COLORS: [[u8; 3]; 8] = [
        [230, 25, 75],
        [60, 180, 75],
        [255, 225, 25],
        [0, 130, 200],
        [245, 130, 48],
        [145, 30, 180],
        [70, 240, 240],
        [240, 50, 230],
    ];
    COLORS[class as usize % COLORS.len()]
}

/// `base` scaled by a factor in [0.5, 1.5], at least 16 so no normal image is "tiny".
fn vary(base: u32, rng: &mut StdRng) -> u32 {
    let factor: f64 = rng.random_range(0.5..=1.5);
    ((base as f64 * factor).round() as u32).clamp(16, u16::MAX as u32)
}

fn every(n: usize, number: usize) -> bool {
    number.checked_rem(n) == Some(0)
}

/// SplitMix64 of the seed and a stream number: independent per-image RNG seeds.
fn mix(seed: u64, stream: u64) -> u64 {
    fn splitmix(mut z: u64) -> u64 {
        z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    splitmix(splitmix(seed) ^ stream)
}

fn split_folder(layout: Layout, split: &str) -> &str {
    match (layout, split) {
        (Layout::Roboflow, "val") => "valid",
        _ => split,
    }
}

fn image_dir(layout: Layout, split: &str) -> String {
    match layout {
        Layout::Ultralytics => format!("images/{split}"),
        Layout::Roboflow => format!("{}/images", split_folder(layout, split)),
    }
}

fn label_dir(layout: Layout, split: &str) -> String {
    match layout {
        Layout::Ultralytics => format!("labels/{split}"),
        Layout::Roboflow => format!("{}/labels", split_folder(layout, split)),
    }
}

fn label_name(file_name: &str) -> String {
    let stem = file_name.rsplit_once('.').map_or(file_name, |(stem, _)| stem);
    format!("{stem}.txt")
}

/// Single-quoted YAML scalar: safe for any class name (`'` doubled, as YAML wants).
fn quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

fn data_yaml(spec: &DatasetSpec) -> String {
    let mut yaml =
        format!("# Synthetic YOLO dataset written by yds-testkit (seed {}, {:?} layout)\n", spec.seed, spec.layout);
    for (split, _) in &spec.splits {
        let dir = match spec.layout {
            Layout::Ultralytics => image_dir(spec.layout, split),
            Layout::Roboflow => format!("../{}", image_dir(spec.layout, split)),
        };
        let _ = writeln!(yaml, "{}: {dir}", quoted_key(split));
    }
    let _ = writeln!(yaml, "\nnc: {}", spec.classes.len());
    match spec.layout {
        // Block sequence, one name a line.
        Layout::Ultralytics => {
            yaml.push_str("names:\n");
            for name in &spec.classes {
                let _ = writeln!(yaml, "  - {}", quoted(name));
            }
        }
        // Flow sequence, as Roboflow writes it.
        Layout::Roboflow => {
            let names: Vec<String> = spec.classes.iter().map(|n| quoted(n)).collect();
            let _ = writeln!(yaml, "names: [{}]", names.join(", "));
        }
    }
    yaml
}

fn quoted_key(key: &str) -> String {
    if key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        key.to_owned()
    } else {
        quoted(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (width, height) from the SOF0 marker of a baseline JPEG.
    fn jpeg_size(bytes: &[u8]) -> Option<(u32, u32)> {
        if bytes.get(..2)? != [0xFF, 0xD8] {
            return None;
        }
        let mut at = 2;
        loop {
            if *bytes.get(at)? != 0xFF {
                return None;
            }
            let marker = *bytes.get(at + 1)?;
            let len = u16::from_be_bytes([*bytes.get(at + 2)?, *bytes.get(at + 3)?]) as usize;
            if marker == 0xC0 {
                let h = u16::from_be_bytes([*bytes.get(at + 5)?, *bytes.get(at + 6)?]);
                let w = u16::from_be_bytes([*bytes.get(at + 7)?, *bytes.get(at + 8)?]);
                return Some((w as u32, h as u32));
            }
            at += 2 + len;
        }
    }

    /// (width, height) from a PNG's IHDR chunk.
    fn png_size(bytes: &[u8]) -> Option<(u32, u32)> {
        if bytes.get(..8)? != b"\x89PNG\r\n\x1a\n" || bytes.get(12..16)? != b"IHDR" {
            return None;
        }
        let w = u32::from_be_bytes(bytes.get(16..20)?.try_into().ok()?);
        let h = u32::from_be_bytes(bytes.get(20..24)?.try_into().ok()?);
        Some((w, h))
    }

    fn all_files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
        let mut out = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for entry in fs::read_dir(&d).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    let bytes = fs::read(&path).unwrap();
                    out.push((path.strip_prefix(dir).unwrap().to_path_buf(), bytes));
                }
            }
        }
        out.sort();
        out
    }

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "yds-testkit-{name}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn small_has_the_documented_counts_and_real_images() {
        let dir = temp("small");
        let ds = generate(&dir, &DatasetSpec::small(7)).unwrap();
        assert_eq!(ds.image_count(), 16);
        assert_eq!(ds.invalid_count(), 0);
        // Numbers 5, 10, 15 have no label file; 7 and 14 an empty one.
        assert_eq!(ds.background_count(), 5);
        let no_label = ds.images.iter().filter(|i| i.label_text.is_none()).count();
        assert_eq!(no_label, 3);
        let pngs = ds.images.iter().filter(|i| i.format == "png").count();
        assert_eq!(pngs, 5);
        assert_eq!(ds.images.iter().filter(|i| i.split == "train").count(), 12);
        assert_eq!(ds.images[12].split, "val");
        assert_eq!(ds.images[12].file_name, "img_000012.jpg");
        assert_eq!(ds.images[2].file_name, "img_000002.png");
        let boxes: usize = ds.images.iter().map(|i| i.boxes.len()).sum();
        assert_eq!(ds.annotation_count(), boxes);
        assert!((11..=33).contains(&boxes));

        for image in &ds.images {
            let path = ds.image_path(image);
            assert!(path.starts_with(dir.join("images").join(&image.split)));
            let bytes = fs::read(&path).unwrap();
            assert_eq!(bytes.len() as u64, image.size_bytes);
            let size = match image.format.as_str() {
                "jpeg" => jpeg_size(&bytes),
                "png" => png_size(&bytes),
                other => panic!("format {other}"),
            };
            assert_eq!(size, Some((image.width, image.height)), "{}", image.file_name);
            assert!((32..=96).contains(&image.width) && (24..=72).contains(&image.height));

            let label = ds.label_path(image);
            assert!(label.starts_with(dir.join("labels").join(&image.split)));
            match &image.label_text {
                None => assert!(!label.exists()),
                Some(text) => {
                    assert_eq!(&fs::read_to_string(&label).unwrap(), text);
                    assert_eq!(text.lines().count(), image.boxes.len());
                }
            }
            for (class, b) in &image.boxes {
                assert!(*class < 3);
                assert!(b.iter().all(|v| *v > 0.0 && *v < 1.0), "{b:?}");
                assert!(b[0] - b[2] / 2.0 > 0.0 && b[0] + b[2] / 2.0 < 1.0);
                assert!(b[1] - b[3] / 2.0 > 0.0 && b[1] + b[3] / 2.0 < 1.0);
            }
        }
        // Not all the same picture.
        let digests: std::collections::HashSet<Vec<u8>> =
            ds.images.iter().map(|i| fs::read(ds.image_path(i)).unwrap()).collect();
        assert_eq!(digests.len(), ds.images.len());
        let a = fs::read(ds.image_path(&ds.images[0])).unwrap();
        let b = fs::read(ds.image_path(&ds.images[1])).unwrap();
        assert_ne!(a, b);

        let yaml = fs::read_to_string(dir.join("data.yaml")).unwrap();
        assert!(yaml.contains("\ntrain: images/train\n"), "{yaml}");
        assert!(yaml.contains("\nval: images/val\n"), "{yaml}");
        assert!(yaml.contains("nc: 3\n"));
        assert!(yaml.contains("names:\n  - 'person'\n  - 'car'\n  - 'dog'\n"), "{yaml}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn png_pixels_show_the_boxes() {
        let dir = temp("pixels");
        let ds = generate(&dir, &DatasetSpec::small(8)).unwrap();
        let mut checked = 0;
        for image in ds.images.iter().filter(|i| i.format == "png") {
            let file = fs::File::open(ds.image_path(image)).unwrap();
            let mut reader = png::Decoder::new(std::io::BufReader::new(file)).read_info().unwrap();
            let mut rgb = vec![0; reader.output_buffer_size().unwrap()];
            let info = reader.next_frame(&mut rgb).unwrap();
            assert_eq!((info.width, info.height), (image.width, image.height));
            // The last box is drawn last, so its centre has its class colour.
            let Some((class, b)) = image.boxes.last() else { continue };
            let x = (b[0] * image.width as f64) as usize;
            let y = (b[1] * image.height as f64) as usize;
            let at = (y * image.width as usize + x) * 3;
            assert_eq!(rgb[at..at + 3], class_color(*class), "{}", image.file_name);
            checked += 1;
        }
        assert!(checked > 0);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn label_text_matches_boxes_exactly() {
        let dir = temp("labels");
        let ds = generate(&dir, &DatasetSpec::small(3)).unwrap();
        for image in &ds.images {
            let Some(text) = &image.label_text else {
                continue;
            };
            for (line, (class, b)) in text.lines().zip(&image.boxes) {
                let expected = format!("{class} {:.6} {:.6} {:.6} {:.6}", b[0], b[1], b[2], b[3]);
                assert_eq!(line, expected);
            }
        }
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn roboflow_layout_uses_split_first_folders_and_valid() {
        let dir = temp("roboflow");
        let spec = DatasetSpec {
            layout: Layout::Roboflow,
            top_folder: Some("export".into()),
            splits: vec![("train".into(), 5), ("val".into(), 2), ("test".into(), 1)],
            ..DatasetSpec::small(11)
        };
        let ds = generate(&dir, &spec).unwrap();
        assert_eq!(ds.root, dir.join("export"));
        let root = dir.join("export");
        assert!(root.join("train/images/img_000000.jpg").is_file());
        assert!(root.join("train/labels/img_000000.txt").is_file());
        assert!(root.join("valid/images/img_000005.png").is_file());
        assert!(root.join("test/images/img_000007.jpg").is_file());
        assert!(!root.join("images").exists());
        assert_eq!(ds.images[5].split, "val");
        assert_eq!(ds.image_path(&ds.images[5]), root.join("valid/images/img_000005.png"));
        let yaml = fs::read_to_string(root.join("data.yaml")).unwrap();
        assert!(yaml.contains("\ntrain: ../train/images\n"), "{yaml}");
        assert!(yaml.contains("\nval: ../valid/images\n"), "{yaml}");
        assert!(yaml.contains("\ntest: ../test/images\n"), "{yaml}");
        assert!(yaml.contains("names: ['person', 'car', 'dog']\n"), "{yaml}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn same_seed_same_bytes_other_seed_other_bytes() {
        let (a, b, c) = (temp("same-a"), temp("same-b"), temp("same-c"));
        let spec = DatasetSpec {
            defects: Defects { corrupt_images: 1, bad_label_lines: 1, tiny_images: 1 },
            ..DatasetSpec::small(42)
        };
        let da = generate(&a, &spec).unwrap();
        let db = generate(&b, &spec).unwrap();
        generate(&c, &DatasetSpec::small(43)).unwrap();
        assert_eq!(da.images, db.images);
        let (fa, fb, fc) = (all_files(&a), all_files(&b), all_files(&c));
        assert!(fa.len() > 16);
        assert_eq!(fa, fb);
        assert_ne!(fa, fc);
        for d in [a, b, c] {
            fs::remove_dir_all(d).unwrap();
        }
    }

    #[test]
    fn defects_are_marked_invalid_and_written_as_described() {
        let dir = temp("defects");
        let spec = DatasetSpec {
            splits: vec![("train".into(), 30), ("val".into(), 10)],
            defects: Defects { corrupt_images: 2, bad_label_lines: 3, tiny_images: 4 },
            ..DatasetSpec::small(5)
        };
        let ds = generate(&dir, &spec).unwrap();
        assert_eq!(ds.image_count(), 40);
        assert_eq!(ds.invalid_count(), 9);
        let mut corrupt = 0;
        let mut bad = 0;
        let mut tiny = 0;
        for image in ds.images.iter().filter(|i| !i.valid) {
            let bytes = fs::read(ds.image_path(image)).unwrap();
            if image.width == 0 {
                corrupt += 1;
                assert!(jpeg_size(&bytes).is_none() && png_size(&bytes).is_none());
            } else if image.width == 8 {
                tiny += 1;
                assert_eq!(image.height, 8);
            } else {
                bad += 1;
                let last = image.boxes.last().unwrap();
                assert!(last.0 >= 3);
                let text = fs::read_to_string(ds.label_path(image)).unwrap();
                assert_eq!(Some(&text), image.label_text.as_ref());
            }
        }
        assert_eq!((corrupt, bad, tiny), (2, 3, 4));
        let valid_boxes: usize = ds.images.iter().filter(|i| i.valid).map(|i| i.boxes.len()).sum();
        assert_eq!(ds.annotation_count(), valid_boxes);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn bad_specs_are_refused() {
        let dir = temp("bad");
        let no_classes = DatasetSpec { classes: vec![], ..DatasetSpec::small(1) };
        assert!(generate(&dir, &no_classes).is_err());
        let too_many_defects =
            DatasetSpec { defects: Defects { corrupt_images: 17, ..Defects::default() }, ..DatasetSpec::small(1) };
        assert!(generate(&dir, &too_many_defects).is_err());
        let _ = fs::remove_dir_all(&dir);
    }

    /// `cargo test -p yds-testkit --release -- --ignored --nocapture generates_100k`
    #[test]
    #[ignore = "benchmark-sized: writes 100 000 images"]
    fn generates_100k_images_quickly() {
        let dir = temp("100k");
        let spec =
            DatasetSpec { splits: vec![("train".into(), 80_000), ("val".into(), 20_000)], ..DatasetSpec::small(9) };
        let started = std::time::Instant::now();
        let ds = generate(&dir, &spec).unwrap();
        let took = started.elapsed();
        eprintln!("100 000 images in {took:?}");
        assert_eq!(ds.image_count(), 100_000);
        assert!(took.as_secs() < 60);
        fs::remove_dir_all(&dir).unwrap();
    }
}
