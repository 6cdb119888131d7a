//! images: `GET /datasets/{id}/images` — a dataset's images with their annotations and
//! findings, in a stable order, keyset-paginated, filtered by split, class, validity and issue —
//! `GET /datasets/{id}/images/{image_id}`, one of them,
//! `GET /datasets/{id}/images/{image_id}/file`, its bytes as imported (what a labelling tool or
//! a training loader fetches), `GET /datasets/{id}/images/{image_id}/label`, its label file as
//! imported, byte for byte, and `GET /datasets/{id}/images/{image_id}/thumbnail`, a JPEG of at
//! most 320 pixels a side, made on first request and kept in storage ([`thumbnail`]).
//!
//! Every Image object carries `file_url` and `thumbnail_url`: expiring URLs that need no API
//! key, for `<img src>` (`yds_edge::signed_urls`). The thumbnail's is always this function's,
//! signed with `YDS_URL_SIGNING_KEY`; the file's is the storage's own when it has one (a Cloud
//! Storage V4 signed URL: the bytes come straight from the bucket), else this function's.

pub mod thumbnail;
mod view;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use http::{header, Method, StatusCode};
use serde::Deserialize;
use serde_json::json;
use yds_edge::cursors::{self, Cursors};
use yds_edge::negotiation::if_none_match;
use yds_edge::query::{self, path_segments, NoParams, QueryParams};
use yds_edge::signed_urls::{self, SignedQuery, UrlSigner};
use yds_edge::{json_response, ApiError, Caller, Handler, Request, Response};
use yds_format::data_yaml::MAX_CLASSES;
use yds_format::issue::{is_image_issue_code, IMAGE_ISSUE_CODES};
use yds_storage::{keys, MemoryBudget, ObjectStore, StorageError};
use yds_store::{Db, ImageDoc, ImageQuery};

/// Image bytes one process reads at once for the files it serves, together; a larger file is
/// not served through the API (Cloud Run answers at most 32 MiB without streaming).
pub const FILE_MEMORY_BYTES: u64 = 32 << 20;
/// Memory one process decodes images in at once to make thumbnails (pixels and the decoders'
/// buffers, [`thumbnail::Plan::memory`]), together. An image that needs more on its own gets no
/// thumbnail (422): 24 megapixels of RGBA, or a progressive JPEG of about 12.
pub const THUMBNAIL_MEMORY_BYTES: u64 = 96 << 20;
/// How long a client may keep a file or thumbnail it fetched with an API key.
const KEYED_MAX_AGE_SECS: u64 = 86_400;
/// Storage signatures made at once for one page of images (on Cloud Run each is a request).
const SIGNING_CONCURRENCY: usize = 16;

pub struct ImagesApi {
    db: Db,
    cursors: Cursors,
    store: Arc<dyn ObjectStore>,
    signer: UrlSigner,
    file_memory: MemoryBudget,
    decode_memory: MemoryBudget,
}

impl ImagesApi {
    /// `signer` must be the one the edge checks signed URLs with (`EdgeOptions::url_signer`).
    pub fn new(db: Db, cursors: Cursors, store: Arc<dyn ObjectStore>, signer: UrlSigner) -> Self {
        Self {
            db,
            cursors,
            store,
            signer,
            file_memory: MemoryBudget::new(FILE_MEMORY_BYTES),
            decode_memory: MemoryBudget::new(THUMBNAIL_MEMORY_BYTES),
        }
    }
}

/// The query of `GET /datasets/{id}/images`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PageQuery {
    limit: Option<String>,
    cursor: Option<String>,
    split: Option<String>,
    class_id: Option<String>,
    valid: Option<String>,
    issue: Option<String>,
}

impl QueryParams for PageQuery {
    const NAMES: &'static [&'static str] = &["limit", "cursor", "split", "class_id", "valid", "issue"];
}

#[async_trait]
impl Handler for ImagesApi {
    async fn handle(&self, req: Request, caller: &Caller) -> Result<Response, ApiError> {
        let route = match path_segments(&req)[..] {
            ["datasets", id, "images"] => Route::Page(id.to_owned()),
            ["datasets", id, "images", image_id] => Route::Image(id.to_owned(), image_id.to_owned()),
            ["datasets", id, "images", image_id, "file"] => Route::File(id.to_owned(), image_id.to_owned()),
            ["datasets", id, "images", image_id, "label"] => Route::Label(id.to_owned(), image_id.to_owned()),
            ["datasets", id, "images", image_id, "thumbnail"] => Route::Thumbnail(id.to_owned(), image_id.to_owned()),
            _ => return Err(ApiError::NotFound("no such route".into())),
        };
        // HEAD is the GET it mirrors (the runtime sends no body), as the edge checks a signed one.
        if req.method() != Method::GET && req.method() != Method::HEAD {
            return Err(ApiError::MethodNotAllowed);
        }
        match route {
            Route::Page(dataset_id) => self.page(&req, caller, dataset_id).await,
            Route::Image(dataset_id, image_id) => {
                query::parse::<NoParams>(&req)?;
                let image = self.image(caller, &dataset_id, &image_id).await?;
                let urls = self.urls(caller.tenant(), std::slice::from_ref(&image)).await;
                Ok(json_response(StatusCode::OK, &view::image(&image, &urls[0])))
            }
            Route::File(dataset_id, image_id) => self.file(&req, caller, &dataset_id, &image_id).await,
            Route::Label(dataset_id, image_id) => self.label(&req, caller, &dataset_id, &image_id).await,
            Route::Thumbnail(dataset_id, image_id) => self.thumbnail(&req, caller, &dataset_id, &image_id).await,
        }
    }

    /// An image's file and thumbnail: what `<img src>` fetches with a signed URL.
    fn signable(&self, path: &str) -> bool {
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        matches!(segments[..], ["datasets", _, "images", _, "file" | "thumbnail"])
    }

    async fn health(&self) -> Result<(), String> {
        self.db.ping().await.map_err(|e| e.to_string())
    }
}

impl ImagesApi {
    async fn page(&self, req: &Request, caller: &Caller, dataset_id: String) -> Result<Response, ApiError> {
        let params: PageQuery = query::parse(req)?;
        let limit = cursors::parse_limit(params.limit.as_ref(), 100, 1000)?;
        let class_id = parse_class_id(params.class_id.as_ref())?;
        if params.split.as_deref() == Some("") {
            return Err(ApiError::BadRequest("`split` must not be empty".into()));
        }
        let valid = match params.valid.as_deref() {
            None => None,
            Some("true") => Some(true),
            Some("false") => Some(false),
            Some(_) => return Err(ApiError::BadRequest("`valid` must be `true` or `false`".into())),
        };
        let issue = params.issue;
        if let Some(code) = issue.as_deref().filter(|code| !is_image_issue_code(code)) {
            return Err(ApiError::BadRequest(format!(
                "`issue={}` is not an issue code; the codes are: {}",
                code.chars().take(64).collect::<String>(),
                IMAGE_ISSUE_CODES.join(", ")
            )));
        }
        let Some(dataset) = self.db.datasets.find_for_tenant(caller.tenant(), &dataset_id).await? else {
            return Err(ApiError::NotFound(format!("dataset `{dataset_id}` not found")));
        };
        let split = params.split.map(|split| dataset_split(&dataset.split_names, split)).transpose()?;
        // A cursor is valid only for the tenant, dataset and filters it was issued for.
        let scope =
            format!("images\n{:?}\n{dataset_id:?}\n{split:?}\n{class_id:?}\n{valid:?}\n{issue:?}", caller.tenant());
        let after: Option<String> = params.cursor.map(|c| self.cursors.decode(&scope, &c)).transpose()?;
        let query =
            ImageQuery { dataset_id, split, class_id, valid, issue, all_splits: dataset.split_names, after, limit };
        let (items, next) = self.db.images.page(&query).await?;
        let urls = self.urls(caller.tenant(), &items).await;
        let items: Vec<_> = items.iter().zip(&urls).map(|(image, urls)| view::image(image, urls)).collect();
        let next_cursor = next.map(|c| self.cursors.encode(&scope, &c));
        Ok(json_response(StatusCode::OK, &json!({"items": items, "next_cursor": next_cursor})))
    }

    /// An image of a dataset of the caller's tenant; 404 for anything else.
    async fn image(&self, caller: &Caller, dataset_id: &str, image_id: &str) -> Result<ImageDoc, ApiError> {
        if self.db.datasets.find_for_tenant(caller.tenant(), dataset_id).await?.is_none() {
            return Err(ApiError::NotFound(format!("dataset `{dataset_id}` not found")));
        }
        self.db.images.find(dataset_id, image_id).await?.ok_or_else(|| image_not_found(dataset_id, image_id))
    }

    /// The signed URLs of `images` for `tenant`, in their order. Signed URLs of one hour are
    /// the same, so a browser that fetched them keeps them; a storage that cannot sign (or
    /// fails to) leaves the file to this function's own URL.
    async fn urls(&self, tenant: &str, images: &[ImageDoc]) -> Vec<view::Urls> {
        let expires = signed_urls::expiry(SystemTime::now());
        // Collected first: a lazy `map` in the stream would hold a closure whose lifetimes the
        // compiler cannot prove `Send` across the await.
        let signing: Vec<_> = images.iter().map(|image| self.image_urls(tenant, image, expires)).collect();
        futures::stream::iter(signing).buffered(SIGNING_CONCURRENCY).collect().await
    }

    /// One image's URLs, expiring at `expires`.
    async fn image_urls(&self, tenant: &str, image: &ImageDoc, expires: u64) -> view::Urls {
        let valid_until = UNIX_EPOCH + Duration::from_secs(expires);
        let valid_from = valid_until - Duration::from_secs(signed_urls::WINDOW_SECS);
        let base = format!("/datasets/{}/images/{}", image.dataset_id, image.id);
        let own = |route: &str| self.signer.sign(&format!("{base}/{route}"), tenant, expires);
        let key = keys::dataset_image(&image.dataset_id, &image.split, &image.file_name);
        // An empty file was not stored: this function's URL says so (404).
        let stored = match image.size_bytes {
            0 => Ok(None),
            _ => self.store.signed_get_url(&key, valid_from, valid_until).await,
        };
        let file = stored.unwrap_or_else(|err| {
            tracing::warn!(key, error = %err, "signing a storage URL failed; serving the file here");
            None
        });
        view::Urls { file: file.unwrap_or_else(|| own("file")), thumbnail: own("thumbnail") }
    }

    /// The image's bytes, with its BLAKE3 hash as the entity tag: an imported file never
    /// changes, so a client revalidating with `If-None-Match` gets 304 and no body.
    async fn file(
        &self,
        req: &Request,
        caller: &Caller,
        dataset_id: &str,
        image_id: &str,
    ) -> Result<Response, ApiError> {
        query::parse::<SignedQuery>(req)?;
        let image = self.image(caller, dataset_id, image_id).await?;
        let etag = format!("\"{}\"", image.content_hash);
        let response = bytes_response(caller, &etag, view::media_type(&image.format));
        if if_none_match(req, &etag) {
            return Ok(response(StatusCode::NOT_MODIFIED, Bytes::new()));
        }
        if image.size_bytes == 0 {
            // An empty file is an issue of the image and was not stored.
            return Err(ApiError::NotFound(format!("image `{image_id}` is an empty file; nothing was stored")));
        }
        if image.size_bytes > FILE_MEMORY_BYTES {
            return Err(ApiError::Unprocessable(format!(
                "image `{image_id}` is {} bytes; the API serves files up to {FILE_MEMORY_BYTES} bytes",
                image.size_bytes
            )));
        }
        let key = keys::dataset_image(dataset_id, &image.split, &image.file_name);
        let bytes = self.read_stored(&key, image.size_bytes, || image_not_found(dataset_id, image_id)).await?;
        Ok(response(StatusCode::OK, bytes))
    }

    /// The object at `key`, read while `size` bytes of the files' budget are held; `missing`
    /// answers for an object that is gone.
    async fn read_stored(&self, key: &str, size: u64, missing: impl FnOnce() -> ApiError) -> Result<Bytes, ApiError> {
        let _held = self.file_memory.reserve(size).await;
        self.store.get(key).await.map_err(|err| match err {
            StorageError::NotFound(_) => missing(),
            other => storage_down(key, other),
        })
    }

    /// The image's label file, byte for byte as imported (a BOM, CRLF line ends, trailing
    /// spaces and all), with its BLAKE3 hash as the entity tag; 404 when the image has none.
    async fn label(
        &self,
        req: &Request,
        caller: &Caller,
        dataset_id: &str,
        image_id: &str,
    ) -> Result<Response, ApiError> {
        query::parse::<NoParams>(req)?;
        let image = self.image(caller, dataset_id, image_id).await?;
        let Some(label) = &image.label else {
            return Err(ApiError::NotFound(format!(
                "image `{image_id}` has no label file (a background image, or one whose label file was too \
                 large to import)"
            )));
        };
        let etag = format!("\"{}\"", label.content_hash);
        let response = bytes_response(caller, &etag, "text/plain; charset=utf-8");
        if if_none_match(req, &etag) {
            return Ok(response(StatusCode::NOT_MODIFIED, Bytes::new()));
        }
        let key = keys::dataset_label(dataset_id, &image.split, &image.file_name);
        let missing = || ApiError::NotFound(format!("image `{image_id}`: its label file is missing"));
        let bytes = self.read_stored(&key, label.size_bytes, missing).await?;
        Ok(response(StatusCode::OK, bytes))
    }

    /// The image's thumbnail ([`thumbnail`]): from storage when it was made before, else made
    /// now and stored. Its entity tag is the file's hash and the thumbnail version, so a client
    /// revalidating gets 304 without a decode or a read.
    async fn thumbnail(
        &self,
        req: &Request,
        caller: &Caller,
        dataset_id: &str,
        image_id: &str,
    ) -> Result<Response, ApiError> {
        query::parse::<SignedQuery>(req)?;
        let image = self.image(caller, dataset_id, image_id).await?;
        let etag = format!("\"{}-thumbnail-v{}\"", image.content_hash, thumbnail::VERSION);
        let response = bytes_response(caller, &etag, "image/jpeg");
        if if_none_match(req, &etag) {
            return Ok(response(StatusCode::NOT_MODIFIED, Bytes::new()));
        }
        let key = keys::dataset_thumbnail(dataset_id, image_id);
        match self.store.get(&key).await {
            Ok(stored) if thumbnail::is_current(&stored) => return Ok(response(StatusCode::OK, stored)),
            // Another version, or a first write still going on: made (again) below.
            Ok(_) | Err(StorageError::NotFound(_)) => {}
            Err(other) => return Err(storage_down(&key, other)),
        }
        let made = Bytes::from(self.make_thumbnail(&image).await?);
        // Kept for the next request; two first requests may both make it, and either whole
        // object is the same thumbnail. A failed write only costs the next request a decode.
        if let Err(err) = self.store.put(&key, made.clone()).await {
            tracing::warn!(key, error = %err, "storing a thumbnail failed");
        } else if self.db.datasets.find_for_tenant(caller.tenant(), dataset_id).await?.is_none() {
            // The dataset began to be deleted while the thumbnail was made: its deletion may have
            // swept the folder already, so this write must not outlive it. The deletion marks
            // the dataset before it sweeps, so one of the two removes the thumbnail.
            if let Err(err) = self.store.delete(&key).await {
                tracing::warn!(key, error = %err, "removing a thumbnail of a deleted dataset failed");
            }
        }
        Ok(response(StatusCode::OK, made))
    }

    /// Reads the image's file and makes its thumbnail within the process's budgets: its bytes
    /// from the files' budget, then what its decode holds from the decoding budget, always in
    /// that order (a holder of decoding memory never waits for file memory).
    async fn make_thumbnail(&self, image: &ImageDoc) -> Result<Vec<u8>, ApiError> {
        let refused = |err: thumbnail::ThumbnailError| ApiError::Unprocessable(err.to_string());
        if image.size_bytes == 0 {
            return Err(refused(thumbnail::ThumbnailError::Undecodable("the file is empty".into())));
        }
        if image.size_bytes > FILE_MEMORY_BYTES {
            return Err(ApiError::Unprocessable(format!(
                "image `{}` is {} bytes; thumbnails are made of files up to {FILE_MEMORY_BYTES} bytes",
                image.id, image.size_bytes
            )));
        }
        let file_held = self.file_memory.reserve(image.size_bytes).await;
        let key = keys::dataset_image(&image.dataset_id, &image.split, &image.file_name);
        let bytes = self.store.get(&key).await.map_err(|err| match err {
            StorageError::NotFound(_) => image_not_found(&image.dataset_id, &image.id),
            other => storage_down(&key, other),
        })?;
        let plan = thumbnail::plan(&bytes, &image.format)
            .and_then(|plan| plan.within(THUMBNAIL_MEMORY_BYTES))
            .map_err(refused)?;
        let pixels_held = self.decode_memory.reserve(plan.memory).await;
        let orientation = image.orientation;
        // The reservations go with the decode: a request given up (its client gone) leaves the
        // decode running, and its memory counted until it ends.
        tokio::task::spawn_blocking(move || {
            let made = thumbnail::make(&bytes, &plan, orientation);
            drop((bytes, pixels_held, file_held));
            made
        })
        .await
        .map_err(ApiError::internal)?
        .map_err(refused)
    }
}

/// The answers of the file and thumbnail routes: `status` with `body`, tagged `etag`, typed
/// `content_type`, cached no longer than the caller's access lasts ([`cache_control`]).
fn bytes_response<'a>(
    caller: &Caller,
    etag: &'a str,
    content_type: &'static str,
) -> impl Fn(StatusCode, Bytes) -> Response + 'a {
    let cache_control = cache_control(caller);
    move |status, body| {
        http::Response::builder()
            .status(status)
            .header(header::ETAG, etag)
            .header(header::CACHE_CONTROL, &cache_control)
            .header(header::CONTENT_TYPE, content_type)
            .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
            .body(body)
            .expect("valid response parts")
    }
}

/// What a client may keep of a file or thumbnail: a day with an API key; with a signed URL,
/// no longer than the URL is valid.
fn cache_control(caller: &Caller) -> String {
    let max_age = match caller.url_expires {
        Some(expires) => expires.saturating_sub(signed_urls::unix_seconds(SystemTime::now())).min(KEYED_MAX_AGE_SECS),
        None => KEYED_MAX_AGE_SECS,
    };
    format!("private, max-age={max_age}")
}

enum Route {
    /// `/datasets/{id}/images`
    Page(String),
    /// `/datasets/{id}/images/{image_id}`
    Image(String, String),
    /// `/datasets/{id}/images/{image_id}/file`
    File(String, String),
    /// `/datasets/{id}/images/{image_id}/label`
    Label(String, String),
    /// `/datasets/{id}/images/{image_id}/thumbnail`
    Thumbnail(String, String),
}

/// A read of `key` that object storage did not answer: a 503 naming it, with `Retry-After`
/// (until its breaker lets a call through again, or a second).
fn storage_down(key: &str, err: StorageError) -> ApiError {
    ApiError::object_storage_down(err.retry_after_secs(), format!("reading {key}: {err}"))
}

fn image_not_found(dataset_id: &str, image_id: &str) -> ApiError {
    ApiError::NotFound(format!("image `{image_id}` not found in dataset `{dataset_id}`"))
}

/// The split a `split=` filter names among the dataset's: as given, or `valid` (Roboflow's name
/// for the split its YAML calls `val`, under which it is stored) for `val`. Any other name is a
/// 400 listing the dataset's splits. A dataset whose splits are not known yet (its YAML not read)
/// takes any name, and has no images to find.
fn dataset_split(splits: &[String], split: String) -> Result<String, ApiError> {
    let has = |name: &str| splits.iter().any(|s| s == name);
    if splits.is_empty() || has(&split) {
        return Ok(split);
    }
    if split == "valid" && has("val") {
        return Ok("val".to_owned());
    }
    let listed: Vec<String> = splits.iter().map(|s| format!("`{s}`")).collect();
    Err(ApiError::BadRequest(format!(
        "the dataset has no split `{}`; its splits are {}",
        split.chars().take(64).collect::<String>(),
        listed.join(", ")
    )))
}

/// `class_id`: a class a dataset can have, `0..MAX_CLASSES` (the spec's `maximum`); larger
/// numbers are refused rather than answered with an empty page.
fn parse_class_id(value: Option<&String>) -> Result<Option<u32>, ApiError> {
    let Some(text) = value else {
        return Ok(None);
    };
    match text.parse::<u32>() {
        Ok(id) if (id as usize) < MAX_CLASSES => Ok(Some(id)),
        _ => Err(ApiError::BadRequest(format!("`class_id` must be an integer from 0 to {}", MAX_CLASSES - 1))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by schemathesis: `class_id=2147483648` (beyond the spec's int32) got 200.
    #[test]
    fn split_valid_finds_val_and_unknown_splits_are_listed() {
        let splits = vec!["train".to_owned(), "val".to_owned()];
        assert_eq!(dataset_split(&splits, "val".into()).unwrap(), "val");
        assert_eq!(dataset_split(&splits, "valid".into()).unwrap(), "val");
        let err = dataset_split(&splits, "test".into()).unwrap_err();
        assert_eq!(err.status(), 400);
        assert_eq!(err.to_string(), "the dataset has no split `test`; its splits are `train`, `val`");
        // A dataset with a split really named so keeps it; one without val has no `valid`.
        let valid = vec!["valid".to_owned(), "val".to_owned()];
        assert_eq!(dataset_split(&valid, "valid".into()).unwrap(), "valid");
        assert!(dataset_split(&["train".to_owned()], "valid".into()).is_err());
        assert_eq!(dataset_split(&[], "anything".into()).unwrap(), "anything");
    }

    #[test]
    fn class_id_is_a_possible_class() {
        let parse = |text: &str| parse_class_id(Some(&text.to_owned()));
        assert_eq!(parse_class_id(None).unwrap(), None);
        assert_eq!(parse("0").unwrap(), Some(0));
        assert_eq!(parse("99999").unwrap(), Some(99_999));
        for bad in ["100000", "2147483648", "4294967296", "-1", "1.0", "", "x"] {
            let err = parse(bad).unwrap_err();
            assert_eq!(err.status(), 400, "{bad}");
            assert!(err.to_string().contains("0 to 99999"), "{err}");
        }
    }
}
