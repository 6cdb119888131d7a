//! Bulk synthetic datasets for benchmarks: one YOLO detection dataset of up to millions of
//! images written straight into a `.tar.gz` and a `.zip` in a single pass, never as a tree.
//!
//! Why not [`generate`](crate::generate) then [`pack_tar_gz`](crate::pack_tar_gz): that encodes
//! every image and writes every file twice (tree, then archive), hours at 10^6 images. Here a
//! pool of 64 real images is encoded once, and each emitted image is a pool image with its own
//! index spliced in (a JPEG `COM` segment after SOI, a PNG `tEXt` chunk after IHDR): still a
//! valid image, distinct bytes (no duplicate is reported), for the cost of a copy. Labels are
//! drawn from a per-image generator seeded by `(seed, index)`, so the same [`BulkSpec`] always
//! gives the same members.
//!
//! Members come in the order `tar` gives for the sorted tree: `data.yaml`, then `images/`, then
//! `labels/` (or `labels/` first, with [`BulkSpec::labels_first`]). One thread renders them in batches; two writer threads (tar.gz, zip) consume the
//! same batches, so the two compressors use both cores.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;

use anyhow::{bail, Context};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::encode::Picture;

/// Class names written in `data.yaml`.
pub const BULK_CLASSES: [&str; 8] = ["person", "car", "dog", "bicycle", "bus", "cat", "truck", "bird"];

/// Distinct base images of each format in the pool.
const POOL_JPEGS: usize = 56;
const POOL_PNGS: usize = 8;
/// Share of emitted images that are PNG (the rest JPEG).
const PNG_SHARE: f64 = 0.1;
/// Share of images without a label file.
const BACKGROUND_SHARE: f64 = 0.1;
const MAX_BOXES: u32 = 4;
/// `img_{n:07}` names sort by index only below this.
const MAX_IMAGES: usize = 10_000_000;
/// Members per batch handed to the writer threads.
const BATCH: usize = 512;
/// Batches in flight per writer.
const QUEUE_DEPTH: usize = 8;
/// Modification time of every tar member: 2023-11-14T22:13:20Z, as in [`crate::archive`].
const TAR_MTIME: u64 = 1_700_000_000;
/// Output buffer of each archive file.
const WRITE_BUFFER: usize = 1 << 20;

/// Image dimensions of the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SizeMix {
    /// 32x32 to 96x96: many files, little data; stresses per-file costs.
    Small,
    /// 320x240 to 1280x720 with photo-like noise: stresses bytes.
    Realistic,
}

impl std::fmt::Display for SizeMix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SizeMix::Small => "small",
            SizeMix::Realistic => "realistic",
        })
    }
}

impl std::str::FromStr for SizeMix {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> anyhow::Result<Self> {
        match s {
            "small" => Ok(SizeMix::Small),
            "realistic" => Ok(SizeMix::Realistic),
            other => bail!("unknown size mix `{other}` (small or realistic)"),
        }
    }
}

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct BulkSpec {
    pub images: usize,
    /// Share of images in the `val` split (the rest are `train`).
    pub val_fraction: f64,
    pub seed: u64,
    pub size_mix: SizeMix,
    /// Write `labels/` before `images/` (as `tar` may when it does not sort): an importer can
    /// then cut chunks while it is still reading the archive.
    pub labels_first: bool,
}

impl BulkSpec {
    /// `images` small images, 20% of them in `val`.
    pub fn new(images: usize, seed: u64) -> Self {
        BulkSpec { images, val_fraction: 0.2, seed, size_mix: SizeMix::Small, labels_first: false }
    }

    fn val_images(&self) -> usize {
        ((self.images as f64 * self.val_fraction).round() as usize).min(self.images)
    }
}

/// What was written: what an importer must find.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BulkSummary {
    pub images: u64,
    /// Label files (images that are not backgrounds).
    pub labels: u64,
    pub boxes: u64,
    /// Images without a label file.
    pub backgrounds: u64,
    /// Sum of the image files' sizes.
    pub image_bytes: u64,
    pub tar_gz_bytes: u64,
    pub zip_bytes: u64,
}

/// Writes the dataset of `spec` into `tar_gz` and `zip` (both created or truncated).
pub fn write_bulk_archives(spec: &BulkSpec, tar_gz: &Path, zip: &Path) -> anyhow::Result<BulkSummary> {
    if spec.images > MAX_IMAGES {
        bail!("at most {MAX_IMAGES} images");
    }
    if !(0.0..=1.0).contains(&spec.val_fraction) {
        bail!("val_fraction must be between 0 and 1");
    }
    let pool = Pool::encode(spec.size_mix, spec.seed)?;
    let tar_file = File::create(tar_gz).with_context(|| format!("creating {}", tar_gz.display()))?;
    let zip_file = File::create(zip).with_context(|| format!("creating {}", zip.display()))?;
    let (tar_tx, tar_rx) = sync_channel(QUEUE_DEPTH);
    let (zip_tx, zip_rx) = sync_channel(QUEUE_DEPTH);
    let (mut summary, tar_gz_bytes, zip_bytes) = std::thread::scope(|scope| {
        let tar_writer = std::thread::Builder::new()
            .name("bulk-tar-gz".into())
            .spawn_scoped(scope, move || write_tar_gz(tar_file, tar_rx))?;
        let zip_writer = std::thread::Builder::new()
            .name("bulk-zip".into())
            .spawn_scoped(scope, move || write_zip(zip_file, zip_rx))?;
        let produced = produce(spec, &pool, &[tar_tx, zip_tx]);
        let tar_gz_bytes = tar_writer.join().map_err(|_| anyhow::anyhow!("the tar.gz writer panicked"))?;
        let zip_bytes = zip_writer.join().map_err(|_| anyhow::anyhow!("the zip writer panicked"))?;
        let tar_gz_bytes = tar_gz_bytes.with_context(|| format!("writing {}", tar_gz.display()))?;
        let zip_bytes = zip_bytes.with_context(|| format!("writing {}", zip.display()))?;
        anyhow::Ok((produced?, tar_gz_bytes, zip_bytes))
    })?;
    summary.tar_gz_bytes = tar_gz_bytes;
    summary.zip_bytes = zip_bytes;
    Ok(summary)
}

/// One archive member.
struct Member {
    name: String,
    data: Vec<u8>,
    /// Stored uncompressed in the zip (images: they do not compress).
    stored: bool,
}

type Batch = Arc<Vec<Member>>;

/// Hands batches of members to every writer; stops early (Ok) when a writer has gone, whose
/// own error then explains why.
struct Fanout<'a> {
    writers: &'a [SyncSender<Batch>],
    batch: Vec<Member>,
    open: bool,
}

impl Fanout<'_> {
    fn push(&mut self, member: Member) {
        self.batch.push(member);
        if self.batch.len() == BATCH {
            self.flush();
        }
    }

    fn flush(&mut self) {
        let batch = Arc::new(std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH)));
        for writer in self.writers {
            self.open &= writer.send(batch.clone()).is_ok();
        }
    }
}

/// Renders every member in archive order; counts what it rendered.
fn produce(spec: &BulkSpec, pool: &Pool, writers: &[SyncSender<Batch>]) -> anyhow::Result<BulkSummary> {
    let mut out = Fanout { writers, batch: Vec::with_capacity(BATCH), open: true };
    let mut summary = BulkSummary::default();
    out.push(Member { name: "data.yaml".into(), data: data_yaml().into_bytes(), stored: false });
    if spec.labels_first {
        push_labels(spec, &mut out, &mut summary);
        push_images(spec, pool, &mut out, &mut summary);
    } else {
        push_images(spec, pool, &mut out, &mut summary);
        push_labels(spec, &mut out, &mut summary);
    }
    if out.open {
        out.flush();
    }
    Ok(summary)
}

/// `(split, image numbers)` in archive order.
fn splits(spec: &BulkSpec) -> [(&'static str, std::ops::Range<usize>); 2] {
    let train = spec.images - spec.val_images();
    [("train", 0..train), ("val", train..spec.images)]
}

/// Every image; stops early when a writer has gone.
fn push_images(spec: &BulkSpec, pool: &Pool, out: &mut Fanout, summary: &mut BulkSummary) {
    for (split, range) in splits(spec) {
        for n in range {
            if !out.open {
                return;
            }
            let plan = ImagePlan::draw(spec.seed, n);
            let data = pool.unique_copy(plan.png, plan.pool_index, n);
            summary.images += 1;
            summary.image_bytes += data.len() as u64;
            let ext = if plan.png { "png" } else { "jpg" };
            out.push(Member { name: format!("images/{split}/img_{n:07}.{ext}"), data, stored: true });
        }
    }
}

/// Every label file; stops early when a writer has gone.
fn push_labels(spec: &BulkSpec, out: &mut Fanout, summary: &mut BulkSummary) {
    for (split, range) in splits(spec) {
        for n in range {
            if !out.open {
                return;
            }
            let plan = ImagePlan::draw(spec.seed, n);
            if plan.boxes.is_empty() {
                summary.backgrounds += 1;
                continue;
            }
            summary.labels += 1;
            summary.boxes += plan.boxes.len() as u64;
            let data = label_text(&plan.boxes).into_bytes();
            out.push(Member { name: format!("labels/{split}/img_{n:07}.txt"), data, stored: false });
        }
    }
}

fn data_yaml() -> String {
    let mut yaml = String::from("# Bulk synthetic YOLO dataset written by yds-testkit\n");
    yaml.push_str("train: images/train\nval: images/val\n\n");
    let _ = writeln!(yaml, "nc: {}", BULK_CLASSES.len());
    yaml.push_str("names:\n");
    for name in BULK_CLASSES {
        let _ = writeln!(yaml, "  - '{name}'");
    }
    yaml
}

/// Everything random about image `n`, from its own generator: both passes (images, then
/// labels) draw the same plan without keeping it.
struct ImagePlan {
    png: bool,
    pool_index: usize,
    /// `(class, [cx, cy, w, h])`; empty for a background.
    boxes: Vec<(u32, [f64; 4])>,
}

impl ImagePlan {
    fn draw(seed: u64, n: usize) -> ImagePlan {
        let mut rng = StdRng::seed_from_u64(splitmix(seed ^ splitmix(n as u64)));
        let png = rng.random_bool(PNG_SHARE);
        let pool_index = rng.random_range(0..if png { POOL_PNGS } else { POOL_JPEGS });
        let count = if rng.random_bool(BACKGROUND_SHARE) { 0 } else { rng.random_range(1..=MAX_BOXES) };
        let boxes =
            (0..count).map(|_| (rng.random_range(0..BULK_CLASSES.len() as u32), random_box(&mut rng))).collect();
        ImagePlan { png, pool_index, boxes }
    }
}

/// A box of 2%..50% of each side, at least 0.001 from every edge, so that after rounding to
/// 6 decimals it is still strictly inside the frame.
fn random_box(rng: &mut StdRng) -> [f64; 4] {
    const MARGIN: f64 = 0.001;
    let w: f64 = rng.random_range(0.02..0.5);
    let h: f64 = rng.random_range(0.02..0.5);
    let cx = rng.random_range(w / 2.0 + MARGIN..1.0 - w / 2.0 - MARGIN);
    let cy = rng.random_range(h / 2.0 + MARGIN..1.0 - h / 2.0 - MARGIN);
    [cx, cy, w, h]
}

fn label_text(boxes: &[(u32, [f64; 4])]) -> String {
    let mut text = String::with_capacity(boxes.len() * 40);
    for (class, b) in boxes {
        let _ = writeln!(text, "{class} {:.6} {:.6} {:.6} {:.6}", b[0], b[1], b[2], b[3]);
    }
    text
}

/// SplitMix64's finalizer: spreads neighbouring inputs over the whole range.
fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The pre-encoded base images.
struct Pool {
    jpegs: Vec<Vec<u8>>,
    pngs: Vec<Vec<u8>>,
}

impl Pool {
    fn encode(mix: SizeMix, seed: u64) -> anyhow::Result<Pool> {
        let mut rng = StdRng::seed_from_u64(splitmix(seed ^ 0x706f_6f6c));
        let mut picture = || base_picture(mix, &mut rng);
        let jpegs = (0..POOL_JPEGS).map(|_| picture().to_jpeg()).collect::<anyhow::Result<_>>()?;
        let pngs: Vec<Vec<u8>> = (0..POOL_PNGS).map(|_| picture().to_png()).collect::<anyhow::Result<_>>()?;
        for png in &pngs {
            anyhow::ensure!(png.get(12..16) == Some(b"IHDR".as_slice()), "PNG without IHDR first");
        }
        Ok(Pool { jpegs, pngs })
    }

    /// Base image `index` made unique by `n`.
    fn unique_copy(&self, png: bool, index: usize, n: usize) -> Vec<u8> {
        let tag = format!("yds-bulk image {n}");
        if png {
            png_with_text(&self.pngs[index], &tag)
        } else {
            jpeg_with_comment(&self.jpegs[index], &tag)
        }
    }
}

fn base_picture(mix: SizeMix, rng: &mut StdRng) -> Picture {
    const REALISTIC: [(u32, u32); 6] = [(320, 240), (640, 480), (640, 480), (800, 600), (1024, 768), (1280, 720)];
    let (width, height) = match mix {
        SizeMix::Small => (rng.random_range(32..=96), rng.random_range(32..=96)),
        SizeMix::Realistic => REALISTIC[rng.random_range(0..REALISTIC.len())],
    };
    let mut picture = Picture::gradient(width, height, rng.random());
    for _ in 0..rng.random_range(1..=MAX_BOXES) {
        picture.fill_box(random_box(rng), rng.random());
    }
    if mix == SizeMix::Realistic {
        add_noise(&mut picture, rng.random());
    }
    picture
}

/// One photo-like image of `width`×`height`, as the realistic pool draws them (a gradient, up to
/// four filled boxes, grain), encoded as a baseline JPEG (`png`: false) or a PNG: the same
/// `seed` gives the same bytes. For benchmarks of what is done per image (thumbnails).
pub fn photo(width: u32, height: u32, png: bool, seed: u64) -> anyhow::Result<Vec<u8>> {
    let mut rng = StdRng::seed_from_u64(splitmix(seed));
    let mut picture = Picture::gradient(width, height, rng.random());
    for _ in 0..rng.random_range(1..=MAX_BOXES) {
        picture.fill_box(random_box(&mut rng), rng.random());
    }
    add_noise(&mut picture, rng.random());
    if png {
        picture.to_png()
    } else {
        picture.to_jpeg()
    }
}

/// Photo-like grain (±12 per channel), so realistic images weigh what photos do instead of
/// compressing to almost nothing.
fn add_noise(picture: &mut Picture, seed: u64) {
    let mut state = seed | 1;
    for value in picture.rgb.iter_mut() {
        // xorshift64: cheap, and plenty for grain.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let grain = (state % 25) as i16 - 12;
        *value = (*value as i16 + grain).clamp(0, 255) as u8;
    }
}

/// `jpeg` with a `COM` segment carrying `text` right after SOI.
fn jpeg_with_comment(jpeg: &[u8], text: &str) -> Vec<u8> {
    let length = u16::try_from(text.len() + 2).expect("short comment");
    let mut out = Vec::with_capacity(jpeg.len() + text.len() + 4);
    out.extend_from_slice(&jpeg[..2]);
    out.extend_from_slice(&[0xFF, 0xFE]);
    out.extend_from_slice(&length.to_be_bytes());
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(&jpeg[2..]);
    out
}

/// `png` with a `tEXt` chunk (`Comment`) carrying `text` right after IHDR.
fn png_with_text(png: &[u8], text: &str) -> Vec<u8> {
    /// Signature (8) + IHDR chunk (4 length + 4 type + 13 data + 4 CRC).
    const AFTER_IHDR: usize = 33;
    let mut chunk = Vec::with_capacity(text.len() + 20);
    chunk.extend_from_slice(b"tEXt");
    chunk.extend_from_slice(b"Comment\0");
    chunk.extend_from_slice(text.as_bytes());
    let mut crc = flate2::Crc::new();
    crc.update(&chunk);
    let length = u32::try_from(chunk.len() - 4).expect("short text");

    let mut out = Vec::with_capacity(png.len() + chunk.len() + 8);
    out.extend_from_slice(&png[..AFTER_IHDR]);
    out.extend_from_slice(&length.to_be_bytes());
    out.extend_from_slice(&chunk);
    out.extend_from_slice(&crc.sum().to_be_bytes());
    out.extend_from_slice(&png[AFTER_IHDR..]);
    out
}

/// Writes every batch as GNU tar members through gzip; returns the archive's size.
fn write_tar_gz(file: File, batches: Receiver<Batch>) -> anyhow::Result<u64> {
    // Level 1: this writer is what bounds generation (deflate is unoptimized in dev builds),
    // and level 1 makes it about 1.5x faster for a 9% larger archive. Decompressing, which is
    // what an import pays, costs the same at any level.
    let level = flate2::Compression::fast();
    let gz = flate2::write::GzEncoder::new(BufWriter::with_capacity(WRITE_BUFFER, file), level);
    let mut builder = tar::Builder::new(gz);
    for batch in batches {
        for member in batch.iter() {
            let mut header = tar::Header::new_gnu();
            header.set_size(member.data.len() as u64);
            header.set_mode(0o644);
            header.set_mtime(TAR_MTIME);
            header.set_uid(0);
            header.set_gid(0);
            header.set_entry_type(tar::EntryType::Regular);
            builder.append_data(&mut header, &member.name, member.data.as_slice())?;
        }
    }
    let mut out = builder.into_inner()?.finish()?;
    out.flush()?;
    Ok(out.get_ref().metadata()?.len())
}

/// Writes every batch as zip members (images Stored, text Deflated); zip64 records are added
/// by the zip crate when the entry count or offsets need them. Returns the archive's size.
fn write_zip(file: File, batches: Receiver<Batch>) -> anyhow::Result<u64> {
    let mut zip = zip::ZipWriter::new(BufWriter::with_capacity(WRITE_BUFFER, file));
    for batch in batches {
        for member in batch.iter() {
            let method = if member.stored { zip::CompressionMethod::Stored } else { zip::CompressionMethod::Deflated };
            let options = zip::write::SimpleFileOptions::default()
                .compression_method(method)
                .last_modified_time(zip::DateTime::default())
                .unix_permissions(0o644);
            zip.start_file(member.name.as_str(), options)?;
            zip.write_all(&member.data)?;
        }
    }
    let mut out = zip.finish()?;
    out.flush()?;
    Ok(out.get_ref().metadata()?.len())
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::io::Read;

    use super::*;

    fn read_zip(path: &Path) -> Vec<(String, Vec<u8>, zip::CompressionMethod)> {
        let mut zip = zip::ZipArchive::new(File::open(path).unwrap()).unwrap();
        (0..zip.len())
            .map(|i| {
                let mut member = zip.by_index(i).unwrap();
                let name = member.name().unwrap().into_owned();
                let mut bytes = Vec::new();
                member.read_to_end(&mut bytes).unwrap();
                (name, bytes, member.compression())
            })
            .collect()
    }

    fn read_tar_gz(path: &Path) -> Vec<(String, Vec<u8>)> {
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(File::open(path).unwrap()));
        archive
            .entries()
            .unwrap()
            .map(|entry| {
                let mut entry = entry.unwrap();
                assert_eq!(entry.header().mode().unwrap(), 0o644);
                assert_eq!(entry.header().mtime().unwrap(), TAR_MTIME);
                let name = entry.path().unwrap().to_str().unwrap().to_owned();
                let mut bytes = Vec::new();
                entry.read_to_end(&mut bytes).unwrap();
                (name, bytes)
            })
            .collect()
    }

    /// Every line is `class cx cy w h` with 6 decimals, the box strictly inside the frame.
    fn check_label(text: &str) -> u64 {
        for line in text.lines() {
            let fields: Vec<&str> = line.split(' ').collect();
            assert_eq!(fields.len(), 5, "{line}");
            assert!(fields[0].parse::<usize>().unwrap() < BULK_CLASSES.len(), "{line}");
            let v: Vec<f64> = fields[1..].iter().map(|f| f.parse().unwrap()).collect();
            assert!(fields[1..].iter().all(|f| f.split_once('.').unwrap().1.len() == 6), "{line}");
            assert!(v.iter().all(|x| *x > 0.0 && *x < 1.0), "{line}");
            assert!(v[0] - v[2] / 2.0 > 0.0 && v[0] + v[2] / 2.0 < 1.0, "{line}");
            assert!(v[1] - v[3] / 2.0 > 0.0 && v[1] + v[3] / 2.0 < 1.0, "{line}");
        }
        text.lines().count() as u64
    }

    fn check_image(name: &str, bytes: &[u8]) {
        if name.ends_with(".jpg") {
            assert_eq!(&bytes[..2], [0xFF, 0xD8], "{name}");
            assert_eq!(&bytes[2..4], [0xFF, 0xFE], "{name}: COM right after SOI");
            assert_eq!(&bytes[bytes.len() - 2..], [0xFF, 0xD9], "{name}");
        } else {
            assert!(name.ends_with(".png"), "{name}");
            let mut reader = png::Decoder::new(std::io::Cursor::new(bytes)).read_info().unwrap();
            let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
            reader.next_frame(&mut pixels).unwrap();
            assert!(reader.info().uncompressed_latin1_text.iter().any(|t| t.text.starts_with("yds-bulk image")));
        }
    }

    #[test]
    fn both_archives_hold_the_same_valid_distinct_members_in_tar_order() {
        let dir = std::env::temp_dir().join(format!("yds-testkit-bulk-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let (tgz, zip) = (dir.join("bulk.tar.gz"), dir.join("bulk.zip"));
        let spec = BulkSpec { images: 300, val_fraction: 0.25, seed: 5, size_mix: SizeMix::Small, labels_first: false };
        let summary = write_bulk_archives(&spec, &tgz, &zip).unwrap();

        let from_zip = read_zip(&zip);
        let from_tar = read_tar_gz(&tgz);
        let zip_members: Vec<(&str, &[u8])> = from_zip.iter().map(|(n, b, _)| (n.as_str(), b.as_slice())).collect();
        let tar_members: Vec<(&str, &[u8])> = from_tar.iter().map(|(n, b)| (n.as_str(), b.as_slice())).collect();
        assert_eq!(zip_members, tar_members);
        let names: Vec<&str> = tar_members.iter().map(|(n, _)| *n).collect();
        assert_eq!(names[0], "data.yaml");
        assert!(names.windows(2).all(|w| w[0] < w[1]), "sorted, as tar of a sorted tree");
        assert_eq!(names.iter().filter(|n| n.starts_with("images/val/")).count(), 75);

        let images: Vec<&(&str, &[u8])> = tar_members.iter().filter(|(n, _)| n.starts_with("images/")).collect();
        let distinct: HashSet<&[u8]> = images.iter().map(|(_, b)| *b).collect();
        assert_eq!(distinct.len(), images.len());
        images.iter().for_each(|(name, bytes)| check_image(name, bytes));
        let pngs = images.iter().filter(|(n, _)| n.ends_with(".png")).count();
        assert!((10..=60).contains(&pngs), "about 10% PNG, got {pngs}");

        let labels: Vec<&(&str, &[u8])> = tar_members.iter().filter(|(n, _)| n.starts_with("labels/")).collect();
        let boxes: u64 = labels.iter().map(|(_, b)| check_label(std::str::from_utf8(b).unwrap())).sum();
        let image_bytes: u64 = images.iter().map(|(_, b)| b.len() as u64).sum();
        assert_eq!(summary.images, images.len() as u64);
        assert_eq!(summary.images, 300);
        assert_eq!(summary.labels, labels.len() as u64);
        assert_eq!(summary.backgrounds, summary.images - summary.labels);
        assert!(summary.backgrounds > 0);
        assert_eq!(summary.boxes, boxes);
        assert_eq!(summary.image_bytes, image_bytes);
        assert_eq!(summary.tar_gz_bytes, std::fs::metadata(&tgz).unwrap().len());
        assert_eq!(summary.zip_bytes, std::fs::metadata(&zip).unwrap().len());

        for (name, _, method) in &from_zip {
            let want = if name.starts_with("images/") {
                zip::CompressionMethod::Stored
            } else {
                zip::CompressionMethod::Deflated
            };
            assert_eq!(*method, want, "{name}");
        }
        let yaml = std::str::from_utf8(tar_members[0].1).unwrap();
        assert!(yaml.contains("train: images/train\nval: images/val\n"), "{yaml}");
        assert!(yaml.contains("names:\n  - 'person'\n"), "{yaml}");

        // Deterministic.
        let (tgz2, zip2) = (dir.join("again.tar.gz"), dir.join("again.zip"));
        assert_eq!(write_bulk_archives(&spec, &tgz2, &zip2).unwrap(), summary);
        assert_eq!(std::fs::read(&tgz).unwrap(), std::fs::read(&tgz2).unwrap());

        // Labels first: the same members, the label files before every image.
        let labels_first = BulkSpec { labels_first: true, ..spec };
        let (tgz3, zip3) = (dir.join("labels-first.tar.gz"), dir.join("labels-first.zip"));
        assert_eq!(write_bulk_archives(&labels_first, &tgz3, &zip3).unwrap().boxes, summary.boxes);
        let reordered = read_tar_gz(&tgz3);
        let names3: Vec<&str> = reordered.iter().map(|(n, _)| n.as_str()).collect();
        let first_image = names3.iter().position(|n| n.starts_with("images/")).unwrap();
        assert_eq!(first_image, 1 + labels.len(), "data.yaml, then every label file");
        let mut sorted = reordered.clone();
        sorted.sort();
        assert_eq!(sorted, from_tar, "the same members");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
