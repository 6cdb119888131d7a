//! `yds import PATH|URL`: a URL is imported as it is; a local archive is uploaded as it is, a
//! local folder packed into a tar stream while it uploads; then the import is started and
//! followed to its end, and the dataset summarized.

use std::path::{Path, PathBuf};
use std::time::Instant;

use indicatif::HumanBytes;
use reqwest::Method;
use serde_json::{json, Value};

use super::{print, print_json, Outcome};
use crate::args::ImportArgs;
use crate::client::Api;
use crate::error::{Error, Result};
use crate::upload::source::{FileSource, PackSource};
use crate::upload::{self, HttpTransport, Retry, Uploader};
use crate::{follow, pack, report};

/// The archive suffixes the service reads, longest first.
const ARCHIVE_SUFFIXES: [&str; 4] = [".tar.gz", ".tgz", ".tar", ".zip"];

/// What the SOURCE argument is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Passed to the server as `archive_url`.
    Url(String),
    /// A local archive file, uploaded as it is, under its file name.
    Archive { path: PathBuf, file_name: String },
    /// A local dataset folder, packed on the fly.
    Folder(PathBuf),
}

/// Tells a URL from a local path, and an archive from a folder.
pub fn classify(arg: &str) -> Result<Source> {
    if let Some((scheme, _)) = arg.split_once("://") {
        if !scheme.is_empty() && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) {
            return Ok(Source::Url(arg.to_owned()));
        }
    }
    let path = PathBuf::from(arg);
    let metadata = std::fs::metadata(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::msg(format!(
            "no such file or folder: {arg} (a URL needs its scheme, e.g. https://example.com/data.zip)"
        )),
        _ => Error::io(format!("reading {arg}"), e),
    })?;
    if metadata.is_dir() {
        return Ok(Source::Folder(path));
    }
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    if archive_suffix(&file_name).is_none() {
        return Err(Error::msg(format!("{arg} is neither a folder nor a .zip, .tar, .tar.gz or .tgz archive")));
    }
    Ok(Source::Archive { path, file_name })
}

fn archive_suffix(name: &str) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase();
    ARCHIVE_SUFFIXES.into_iter().find(|s| lower.ends_with(s) && lower.len() > s.len())
}

/// The dataset name when `--name` is not given: the folder's name, the archive's name without
/// its suffix, or the URL's last path segment without it.
pub fn default_name(source: &Source) -> String {
    let strip = |name: &str| match archive_suffix(name) {
        Some(suffix) => name[..name.len() - suffix.len()].to_owned(),
        None => name.to_owned(),
    };
    let name = match source {
        Source::Url(url) => {
            let path = url.split(['?', '#']).next().unwrap_or(url);
            let after_scheme = path.split_once("://").map_or(path, |(_, rest)| rest);
            let last = after_scheme.trim_end_matches('/').rsplit('/').next().unwrap_or("");
            strip(last)
        }
        Source::Archive { file_name, .. } => strip(file_name),
        Source::Folder(path) => {
            // `.` or `..` name no folder: use the real one's.
            let real = std::fs::canonicalize(path).unwrap_or_else(|_| path.clone());
            real.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
        }
    };
    if name.trim().is_empty() {
        "dataset".to_owned()
    } else {
        name.chars().take(200).collect()
    }
}

/// The file name an upload of a folder goes under: its suffix tells the server it is a tar.
fn tar_name(name: &str) -> String {
    let safe: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' }).take(100).collect();
    format!("{}.tar", safe.trim_matches('.'))
}

pub async fn run(api: &Api, args: ImportArgs) -> Result<Outcome> {
    let source = classify(&args.source)?;
    let name = args.name.clone().unwrap_or_else(|| default_name(&source));
    let archive_url = match &source {
        Source::Url(url) => url.clone(),
        Source::Archive { path, file_name } => upload_file(api, path, file_name, args.piece_size).await?,
        Source::Folder(path) => upload_folder(api, path, &name, args.piece_size).await?,
    };
    let mut body = json!({"name": name, "archive_url": archive_url});
    if let Some(task) = &args.task {
        body["task"] = task.clone().into();
    }
    if let Some(chunk_size) = args.chunk_size {
        body["chunk_size"] = chunk_size.into();
    }
    let accepted = api.call(Method::POST, api.url(&["datasets", "import"]), Some(&body)).await?;
    let job_id = accepted["job_id"].as_str().ok_or_else(|| Error::msg("the import was accepted without a job id"))?;
    let dataset_id = accepted["dataset_id"].as_str().unwrap_or_default();
    if args.detach {
        if args.json {
            print_json(&accepted)?;
            return Ok(Outcome::Done);
        }
        eprintln!("import of {name} accepted: dataset {dataset_id}, job {job_id}");
        eprintln!("follow it with: yds status {job_id} --watch");
        print(&format!("{job_id}\n"))?;
        return Ok(Outcome::Done);
    }
    let started = Instant::now();
    let job = follow::job(api, job_id).await?;
    let dataset = match api.get(&["datasets", dataset_id], &[]).await {
        Ok(dataset) => Some(dataset),
        // Deleted in the meantime: the job is all there is to show.
        Err(err) if err.status() == Some(404) => None,
        Err(err) => return Err(err),
    };
    let failed = job["status"] == "failed";
    if args.json {
        print_json(&json!({"job": job, "dataset": dataset}))?;
    } else {
        print(&summary(&job, dataset.as_ref(), started.elapsed().as_secs_f64()))?;
    }
    if failed {
        eprintln!("import failed: {}", report::failure_reason(dataset.as_ref(), &job));
        return Ok(Outcome::JobFailed);
    }
    Ok(Outcome::Done)
}

/// What `yds import` prints at the end: the dataset's report, and how the job went.
fn summary(job: &Value, dataset: Option<&Value>, seconds: f64) -> String {
    let mut text = match dataset {
        Some(dataset) => report::dataset_report(dataset, Some(job)),
        None => report::job_report(job),
    };
    let counts = &job["counts"];
    text.push_str(&format!(
        "\njob {} {} in {seconds:.1} s: {} images, {} labels, {} instances read\n",
        job["job_id"].as_str().unwrap_or(""),
        job["status"].as_str().unwrap_or(""),
        counts["images"].as_u64().unwrap_or(0),
        counts["labels"].as_u64().unwrap_or(0),
        counts["annotations"].as_u64().unwrap_or(0),
    ));
    text
}

/// A progress bar of upload bytes.
fn upload_bar(total: u64) -> indicatif::ProgressBar {
    let bar = follow::bar("{spinner} uploading [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}");
    bar.set_length(total);
    bar
}

async fn upload_file(api: &Api, path: &Path, file_name: &str, piece: usize) -> Result<String> {
    let mut source = FileSource::open(path).await?;
    let size = source.size();
    let target = upload::create(api, file_name, Some(size)).await?;
    eprintln!("uploading {} ({})", path.display(), HumanBytes(size));
    let bar = upload_bar(size);
    let transport = HttpTransport { api: api.clone(), url: target.upload_url.clone(), bar: bar.clone() };
    let mut uploader = Uploader { transport, piece, retry: Retry::default(), bar: bar.clone() };
    let result = uploader.run(&mut source, Some(size)).await;
    bar.finish_and_clear();
    result?;
    Ok(target.source_url)
}

async fn upload_folder(api: &Api, path: &Path, name: &str, piece: usize) -> Result<String> {
    let walked = path.to_owned();
    let prediction = tokio::task::spawn_blocking(move || pack::predict(&walked))
        .await
        .map_err(|e| Error::msg(format!("reading the folder stopped: {e}")))?
        .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
    if prediction.files == 0 {
        return Err(Error::msg(format!("{} holds no files to import", path.display())));
    }
    let target = upload::create(api, &tar_name(name), Some(prediction.bytes)).await?;
    eprintln!(
        "packing and uploading {} files from {} ({})",
        prediction.files,
        path.display(),
        HumanBytes(prediction.bytes)
    );
    let bar = upload_bar(prediction.bytes);
    let transport = HttpTransport { api: api.clone(), url: target.upload_url.clone(), bar: bar.clone() };
    let mut uploader = Uploader { transport, piece, retry: Retry::default(), bar: bar.clone() };
    let mut source = PackSource::start(path);
    // The size is a prediction (a file may change meanwhile): the last piece states the real one.
    let result = uploader.run(&mut source, None).await;
    bar.finish_and_clear();
    result?;
    Ok(target.source_url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_archives_and_folders_are_told_apart() {
        assert_eq!(classify("https://x.org/a.zip").unwrap(), Source::Url("https://x.org/a.zip".into()));
        assert_eq!(classify("gs://bucket/prefix/").unwrap(), Source::Url("gs://bucket/prefix/".into()));
        let dir = tempfile::tempdir().unwrap();
        let archive = dir.path().join("Birds.V2.TAR.GZ");
        std::fs::write(&archive, b"x").unwrap();
        let arg = archive.to_str().unwrap();
        assert_eq!(
            classify(arg).unwrap(),
            Source::Archive { path: archive.clone(), file_name: "Birds.V2.TAR.GZ".into() }
        );
        assert_eq!(classify(dir.path().to_str().unwrap()).unwrap(), Source::Folder(dir.path().to_owned()));
        let other = dir.path().join("notes.rar");
        std::fs::write(&other, b"x").unwrap();
        assert!(classify(other.to_str().unwrap()).unwrap_err().to_string().contains("neither a folder nor"));
        let missing = classify("example.com/data.zip").unwrap_err().to_string();
        assert!(missing.contains("no such file or folder") && missing.contains("https://"), "{missing}");
    }

    #[test]
    fn default_names_drop_archive_suffixes() {
        let archive = |name: &str| Source::Archive { path: name.into(), file_name: name.into() };
        assert_eq!(default_name(&archive("birds.v2.tar.gz")), "birds.v2");
        assert_eq!(default_name(&archive("coco8.zip")), "coco8");
        assert_eq!(default_name(&Source::Url("https://h/x/coco8.tgz?sig=1".into())), "coco8");
        assert_eq!(default_name(&Source::Url("gs://bucket/sets/cars/".into())), "cars");
        assert_eq!(default_name(&Source::Url("https://host".into())), "host");
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("my set");
        std::fs::create_dir(&folder).unwrap();
        assert_eq!(default_name(&Source::Folder(folder.join("."))), "my set");
        assert_eq!(tar_name("my set/ü"), "my_set__.tar");
    }
}
