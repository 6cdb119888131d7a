//! `yds pull`: a dataset back onto disk, ready to train on.
//!
//! The images are listed page by page (1000 at a time, the next page fetched while the
//! previous one downloads) and downloaded in parallel: each image to
//! `DIR/images/{split}/{file_name}`, its label file to `DIR/labels/{split}/{stem}.txt` byte for
//! byte as imported; then `data.yaml` (or, with `--format coco`, `annotations/instances_{split}.json`
//! instead of the labels and the YAML).
//!
//! A file already there with the right BLAKE3 (the Image's `content_hash`, its label's
//! `label.content_hash`) is not downloaded again; every download is checked against its hash,
//! written under a hidden partial name and renamed into place, so an interrupted pull leaves
//! no half file for a trainer to read.

pub mod coco;
pub mod data_yaml;
pub mod paths;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use reqwest::{Method, Url};
use serde_json::Value;
use tokio::io::AsyncWriteExt;

use crate::client::Api;
use crate::error::{Error, Result};
use crate::report::split_order;

/// Images listed per page.
const PAGE: usize = 1000;
/// Attempts per download (transient failures only).
const ATTEMPTS: u32 = 4;
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(600);

/// The tree `yds pull` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// `data.yaml`, `images/{split}/`, `labels/{split}/`.
    Yolo,
    /// `images/{split}/` and `annotations/instances_{split}.json`.
    Coco,
}

/// What to pull.
#[derive(Debug, Clone)]
pub struct Options {
    pub valid_only: bool,
    pub split: Option<String>,
    /// A class id (already resolved from a name).
    pub class_id: Option<u64>,
    pub format: Format,
    pub jobs: usize,
}

/// What a pull did.
#[derive(Debug, Default)]
pub struct Summary {
    pub images: u64,
    pub images_downloaded: u64,
    pub labels: u64,
    pub labels_downloaded: u64,
    pub labels_removed: u64,
    pub bytes: u64,
    pub splits: Vec<String>,
    pub coco: Vec<coco::Written>,
    /// Images not in the COCO files (invalid).
    pub coco_left_out: u64,
}

/// Counters shared by the parallel downloads.
#[derive(Default)]
struct Counters {
    images: AtomicU64,
    images_downloaded: AtomicU64,
    labels: AtomicU64,
    labels_downloaded: AtomicU64,
    labels_removed: AtomicU64,
    bytes: AtomicU64,
}

/// One image to fetch, its destinations checked.
struct Item {
    image: Value,
    image_path: PathBuf,
    label_path: Option<PathBuf>,
}

/// Pulls `dataset` (its API object) into `dir`.
pub async fn run(api: &Api, dataset: &Value, dir: &Path, options: &Options) -> Result<Summary> {
    let dataset_id = dataset["id"].as_str().ok_or_else(|| Error::msg("the dataset object has no id"))?.to_owned();
    let classes = crate::resolve::class_names(dataset);
    match dataset["status"].as_str() {
        Some("ready") | None => {}
        Some(status) => eprintln!("note: the dataset is {status}: what it holds now is pulled"),
    }
    std::fs::create_dir_all(dir).map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;

    let expected = expected_count(dataset, options);
    let bar = crate::follow::bar("{spinner} pulling [{bar:30}] {pos}/{len} images ({percent}%) ETA {eta}");
    bar.set_length(expected);

    let kpt_count = dataset["kpt_shape"].get(0).and_then(Value::as_u64).map(|k| k as usize);
    let coco = match options.format {
        Format::Coco => Some(Mutex::new(coco::CocoWriter::new(
            &dir.join("annotations"),
            coco::categories(&classes, kpt_count, dataset.get("kpt_names")),
            &format!("{} ({dataset_id}), pulled by yds", dataset["name"].as_str().unwrap_or("")),
        )?)),
        Format::Yolo => None,
    };
    let splits_seen = Mutex::new(std::collections::BTreeSet::new());
    let counters = Counters::default();

    let query: Vec<(&str, Option<String>)> = vec![
        ("split", options.split.clone()),
        ("class_id", options.class_id.map(|c| c.to_string())),
        ("valid", options.valid_only.then(|| "true".to_owned())),
    ];
    let pages = futures::stream::try_unfold(Some(None::<String>), |state| {
        let query = query.clone();
        let dataset_id = dataset_id.clone();
        async move {
            let Some(cursor) = state else { return Ok(None) };
            let mut q = query;
            q.push(("limit", Some(PAGE.to_string())));
            q.push(("cursor", cursor));
            let page = api.get(&["datasets", &dataset_id, "images"], &q).await?;
            let items = page["items"].as_array().cloned().unwrap_or_default();
            let next = page["next_cursor"].as_str().map(|c| Some(c.to_owned()));
            Ok::<_, Error>(Some((futures::stream::iter(items.into_iter().map(Ok::<_, Error>)), next)))
        }
    });
    let items = pages.try_flatten().and_then(|image| {
        // In listing order: check the names, and give COCO ids in a stable order.
        let item = plan_item(dir, image, options.format);
        if let Ok(item) = &item {
            let split = item.image["split"].as_str().unwrap_or("").to_owned();
            if let Some(coco) = &coco {
                let added = coco.lock().expect("not poisoned").add(&split, &item.image);
                if let Err(err) = added {
                    return futures::future::ready(Err(err));
                }
            }
            splits_seen.lock().expect("not poisoned").insert(split);
        }
        futures::future::ready(item)
    });
    let fetched = items
        .map_ok(|item| {
            let (bar, counters, dataset_id) = (&bar, &counters, &dataset_id);
            async move {
                fetch(api, dataset_id, &item, counters).await?;
                bar.inc(1);
                if bar.position() > bar.length().unwrap_or(0) {
                    bar.set_length(bar.position());
                }
                Ok::<_, Error>(())
            }
        })
        .try_buffer_unordered(options.jobs.max(1))
        .try_for_each(|()| futures::future::ready(Ok(())))
        .await;
    bar.finish_and_clear();
    fetched?;

    let splits = yaml_splits(dataset, options.split.as_deref(), &splits_seen.into_inner().expect("not poisoned"));
    for split in &splits {
        let folder = dir.join(paths::relative(&["images", split])?);
        std::fs::create_dir_all(&folder).map_err(|e| Error::io(format!("creating {}", folder.display()), e))?;
    }
    let mut summary = Summary {
        images: counters.images.into_inner(),
        images_downloaded: counters.images_downloaded.into_inner(),
        labels: counters.labels.into_inner(),
        labels_downloaded: counters.labels_downloaded.into_inner(),
        labels_removed: counters.labels_removed.into_inner(),
        bytes: counters.bytes.into_inner(),
        splits: splits.clone(),
        ..Summary::default()
    };
    match coco {
        Some(writer) => {
            let writer = writer.into_inner().expect("not poisoned");
            summary.coco_left_out = writer.left_out;
            summary.coco = writer.finish(&splits)?;
        }
        None => {
            let yaml = data_yaml::DataYaml {
                origin: format!(
                    "dataset {} ({dataset_id}) on {}",
                    dataset["name"].as_str().unwrap_or(""),
                    api.origin()
                ),
                splits,
                names: classes,
                kpt_shape: dataset.get("kpt_shape").cloned(),
                flip_idx: dataset.get("flip_idx").cloned(),
                kpt_names: dataset.get("kpt_names").cloned(),
            };
            write_atomically(&dir.join("data.yaml"), yaml.render().as_bytes())?;
        }
    }
    Ok(summary)
}

/// How many images the pull should see, from the dataset's statistics where they tell.
fn expected_count(dataset: &Value, options: &Options) -> u64 {
    let splits = &dataset["splits"];
    let of = |v: &Value, key: &str| v[key].as_u64().unwrap_or(0);
    let in_split = |split: &Value| {
        if options.valid_only {
            of(split, "images").saturating_sub(of(split, "invalid_images"))
        } else {
            of(split, "images")
        }
    };
    if let Some(class_id) = options.class_id {
        let class = dataset["class_counts"].as_array().into_iter().flatten().find(|c| c["class_id"] == class_id);
        return class.map_or(0, |c| of(c, "images"));
    }
    match &options.split {
        Some(name) => splits.get(name).map(in_split).unwrap_or(0),
        None => splits.as_object().map_or(0, |s| s.values().map(in_split).sum()),
    }
}

/// The splits `data.yaml` names: the dataset's (only the pulled one with `--split`), in
/// train, val, test order.
fn yaml_splits(dataset: &Value, requested: Option<&str>, seen: &std::collections::BTreeSet<String>) -> Vec<String> {
    let mut names: Vec<String> = dataset["splits"].as_object().map(|s| s.keys().cloned().collect()).unwrap_or_default();
    for split in seen {
        if !names.contains(split) {
            names.push(split.clone());
        }
    }
    if requested.is_some() {
        // The server maps a requested name (`valid`) to the stored one (`val`): keep what came.
        let requested = requested.unwrap_or_default();
        names.retain(|n| seen.contains(n) || (seen.is_empty() && n == requested));
    }
    split_order(&names).into_iter().cloned().collect()
}

/// Where an image and its label go; an error for a name that would leave `dir`.
fn plan_item(dir: &Path, image: Value, format: Format) -> Result<Item> {
    let split = image["split"].as_str().unwrap_or("");
    let file_name = image["file_name"].as_str().unwrap_or("");
    let image_path = dir.join(paths::relative(&["images", split, file_name])?);
    let label_path = match format {
        Format::Yolo => Some(dir.join(paths::relative(&["labels", split, &paths::label_name(file_name)])?)),
        Format::Coco => None,
    };
    Ok(Item { image, image_path, label_path })
}

/// Makes `item`'s image and label file be there with the right bytes.
async fn fetch(api: &Api, dataset_id: &str, item: &Item, counters: &Counters) -> Result<()> {
    let image = &item.image;
    let image_id = image["id"].as_str().ok_or_else(|| Error::msg("an image without an id"))?;
    let hash = image["content_hash"].as_str();
    counters.images.fetch_add(1, Ordering::Relaxed);
    if !has_hash(&item.image_path, hash).await? {
        let own = api.url(&["datasets", dataset_id, "images", image_id, "file"]);
        let signed = image["file_url"].as_str().map(|u| api.resolve(u)).transpose()?;
        let bytes = match signed {
            Some(url) => match download(api, url, &item.image_path, hash).await {
                // An expired signature: the route with the key gives the same bytes.
                Err(err) if matches!(err.status(), Some(401 | 403)) => download(api, own, &item.image_path, hash).await,
                other => other,
            },
            None => download(api, own, &item.image_path, hash).await,
        }?;
        counters.images_downloaded.fetch_add(1, Ordering::Relaxed);
        counters.bytes.fetch_add(bytes.unwrap_or(0), Ordering::Relaxed);
    }
    let Some(label_path) = &item.label_path else { return Ok(()) };
    let label_url = api.url(&["datasets", dataset_id, "images", image_id, "label"]);
    match image.get("label") {
        Some(Value::Null) => {
            // No label file: one left there (by an earlier pull of another dataset) would be
            // read by Ultralytics as this image's.
            if tokio::fs::try_exists(label_path).await.unwrap_or(false) {
                tokio::fs::remove_file(label_path)
                    .await
                    .map_err(|e| Error::io(format!("removing {}", label_path.display()), e))?;
                counters.labels_removed.fetch_add(1, Ordering::Relaxed);
            }
        }
        Some(label) => {
            counters.labels.fetch_add(1, Ordering::Relaxed);
            let hash = label["content_hash"].as_str();
            if !has_hash(label_path, hash).await? {
                let bytes = download(api, label_url, label_path, hash).await?;
                counters.labels_downloaded.fetch_add(1, Ordering::Relaxed);
                counters.bytes.fetch_add(bytes.unwrap_or(0), Ordering::Relaxed);
            }
        }
        None => {
            // A server without the `label` field: ask the label route; 404 is no label file.
            match download(api, label_url, label_path, None).await {
                Ok(bytes) => {
                    counters.labels.fetch_add(1, Ordering::Relaxed);
                    counters.labels_downloaded.fetch_add(1, Ordering::Relaxed);
                    counters.bytes.fetch_add(bytes.unwrap_or(0), Ordering::Relaxed);
                }
                Err(err) if err.status() == Some(404) => {}
                Err(err) => return Err(err),
            }
        }
    }
    Ok(())
}

/// True when `path` holds bytes whose BLAKE3 is `hash`.
async fn has_hash(path: &Path, hash: Option<&str>) -> Result<bool> {
    let Some(hash) = hash else { return Ok(false) };
    let path = path.to_owned();
    let hash = hash.to_ascii_lowercase();
    tokio::task::spawn_blocking(move || match std::fs::File::open(&path) {
        Ok(file) => {
            let mut hasher = blake3::Hasher::new();
            hasher.update_reader(file).map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
            Ok(hasher.finalize().to_hex().as_str() == hash)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Error::io(format!("reading {}", path.display()), e)),
    })
    .await
    .map_err(|e| Error::msg(format!("hashing stopped: {e}")))?
}

/// Downloads `url` to `path` through a partial file, checking the bytes' BLAKE3 against
/// `hash` when given; retries transient failures. Returns the bytes written.
async fn download(api: &Api, url: Url, path: &Path, hash: Option<&str>) -> Result<Option<u64>> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match download_once(api, url.clone(), path, hash).await {
            Err(err) if attempt < ATTEMPTS && transient(&err) => {
                tokio::time::sleep(Duration::from_millis(300 << attempt)).await;
            }
            other => return other.map(Some),
        }
    }
}

fn transient(err: &Error) -> bool {
    matches!(err, Error::Unreachable { .. }) || err.status().is_some_and(|s| s >= 500 || s == 429)
}

async fn download_once(api: &Api, url: Url, path: &Path, hash: Option<&str>) -> Result<u64> {
    let response = api.send(api.request(Method::GET, url).timeout(DOWNLOAD_TIMEOUT)).await?;
    if let Some(parent) = path.parent() {
        tokio::fs::create_dir_all(parent).await.map_err(|e| Error::io(format!("creating {}", parent.display()), e))?;
    }
    let partial = paths::partial(path);
    let io = |e| Error::io(format!("writing {}", partial.display()), e);
    let mut file = tokio::fs::File::create(&partial).await.map_err(io)?;
    let mut hasher = blake3::Hasher::new();
    let mut written = 0u64;
    let mut body = response.bytes_stream();
    let result: Result<()> = async {
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| crate::error::transport(&api.origin(), &e))?;
            hasher.update(&chunk);
            file.write_all(&chunk).await.map_err(io)?;
            written += chunk.len() as u64;
        }
        file.flush().await.map_err(io)?;
        Ok(())
    }
    .await;
    drop(file);
    if let Err(err) = result {
        let _ = tokio::fs::remove_file(&partial).await;
        return Err(err);
    }
    if let Some(expected) = hash {
        let got = hasher.finalize();
        if !got.to_hex().as_str().eq_ignore_ascii_case(expected) {
            let _ = tokio::fs::remove_file(&partial).await;
            return Err(Error::msg(format!(
                "the bytes downloaded for {} do not have its content hash ({expected}, got {})",
                path.display(),
                got.to_hex()
            )));
        }
    }
    tokio::fs::rename(&partial, path).await.map_err(|e| Error::io(format!("renaming into {}", path.display()), e))?;
    Ok(written)
}

/// Writes a small file through a partial name.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let partial = paths::partial(path);
    std::fs::write(&partial, bytes).map_err(|e| Error::io(format!("writing {}", partial.display()), e))?;
    std::fs::rename(&partial, path).map_err(|e| Error::io(format!("writing {}", path.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn dataset() -> Value {
        json!({
            "splits": {"train": {"images": 10, "invalid_images": 2}, "val": {"images": 4, "invalid_images": 0}, "test": {"images": 1}},
            "class_counts": [{"class_id": 0, "images": 7}, {"class_id": 1, "images": 3}]
        })
    }

    fn options() -> Options {
        Options { valid_only: false, split: None, class_id: None, format: Format::Yolo, jobs: 8 }
    }

    #[test]
    fn the_expected_count_follows_the_filters() {
        assert_eq!(expected_count(&dataset(), &options()), 15);
        assert_eq!(expected_count(&dataset(), &Options { valid_only: true, ..options() }), 13);
        assert_eq!(expected_count(&dataset(), &Options { split: Some("val".into()), ..options() }), 4);
        assert_eq!(expected_count(&dataset(), &Options { class_id: Some(1), ..options() }), 3);
    }

    #[test]
    fn the_yaml_names_every_split_or_the_pulled_one() {
        let seen = |names: &[&str]| names.iter().map(|n| n.to_string()).collect();
        assert_eq!(yaml_splits(&dataset(), None, &seen(&["val", "train"])), ["train", "val", "test"]);
        // `--split valid` on a dataset that stores it as `val`.
        assert_eq!(yaml_splits(&dataset(), Some("valid"), &seen(&["val"])), ["val"]);
        assert_eq!(yaml_splits(&dataset(), Some("test"), &seen(&[])), ["test"]);
    }

    #[test]
    fn items_go_under_images_and_labels_of_their_split_and_escapes_are_refused() {
        let dir = Path::new("/out");
        let item = plan_item(dir, json!({"split": "train", "file_name": "sub/a.png"}), Format::Yolo).unwrap();
        assert_eq!(item.image_path, Path::new("/out/images/train/sub/a.png"));
        assert_eq!(item.label_path.as_deref(), Some(Path::new("/out/labels/train/sub/a.txt")));
        let item = plan_item(dir, json!({"split": "val", "file_name": "a.png"}), Format::Coco).unwrap();
        assert_eq!(item.label_path, None);
        assert!(plan_item(dir, json!({"split": "train", "file_name": "../../x.png"}), Format::Yolo).is_err());
        assert!(plan_item(dir, json!({"split": "..", "file_name": "x.png"}), Format::Yolo).is_err());
    }

    #[tokio::test]
    async fn a_file_has_the_hash_only_when_its_bytes_match() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.jpg");
        std::fs::write(&path, b"bytes").unwrap();
        let hash = blake3::hash(b"bytes").to_hex().to_string();
        assert!(has_hash(&path, Some(&hash)).await.unwrap());
        assert!(has_hash(&path, Some(&hash.to_uppercase())).await.unwrap());
        assert!(!has_hash(&path, Some(&blake3::hash(b"other").to_hex())).await.unwrap());
        assert!(!has_hash(&path, None).await.unwrap(), "no hash: always download");
        assert!(!has_hash(&dir.path().join("none"), Some(&hash)).await.unwrap());
    }
}
