//! The Cloud Storage backend: the objects of one bucket, through the JSON API client
//! `gcloud-storage` (every call, listing and deletion included, is plain HTTP/JSON, so the same
//! code runs against Cloud Storage and against `fake-gcs-server`).
//!
//! - Uploads are single-shot media uploads (`uploadType=media`): one request, so readers never
//!   see a partial object and nothing depends on resumable-session URLs.
//! - Uploads from outside go to a resumable upload session this backend starts
//!   ([`ObjectStore::start_upload_session`]): the client sends its pieces straight to Cloud
//!   Storage, and the object appears only once the last byte arrived.
//! - Every call is retried a bounded number of times on transient failures (connection errors,
//!   timeouts, 408, 429, 5xx), with exponential backoff, and every request has a timeout: a
//!   failing backend surfaces as an error within a known time, never as an endless retry.
//! - Keys are checked with [`validate_key`] before any request is made.

use std::collections::HashMap;
use std::future::Future;
use std::ops::Range;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use backon::{ExponentialBuilder, Retryable};
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use gcloud_storage::client::{Client, ClientConfig};
use gcloud_storage::http::object_access_controls::Projection;
use gcloud_storage::http::objects::delete::DeleteObjectRequest;
use gcloud_storage::http::objects::download::Range as ByteRange;
use gcloud_storage::http::objects::get::GetObjectRequest;
use gcloud_storage::http::objects::list::ListObjectsRequest;
use gcloud_storage::http::objects::rewrite::RewriteObjectRequest;
use gcloud_storage::http::objects::upload::{Media, UploadObjectRequest, UploadType};
use gcloud_storage::http::resumable_upload_client::UploadStatus;
use gcloud_storage::http::Error as GcsError;
use gcloud_storage::sign::{SignBy, SignedURLMethod, SignedURLOptions, URLStyle};
use reqwest_middleware::reqwest;

use super::{validate_key, ListPage, ObjectStore, SessionProgress, StorageError};

/// Most objects one listing page may hold (the API's own maximum).
const MAX_PAGE_SIZE: usize = 1000;
/// Deletions in flight at once in [`ObjectStore::delete_prefix`].
const DELETE_CONCURRENCY: usize = 16;
/// Signed URLs a store remembers for their window, at most (past it the cache starts over).
const SIGNED_URLS_CACHED: usize = 20_000;

/// How often and how patiently a call is retried.
#[derive(Debug, Clone, Copy)]
struct RetryPolicy {
    /// Attempts in all, the first included.
    attempts: u32,
    first_backoff: Duration,
    max_backoff: Duration,
}

impl RetryPolicy {
    /// The delays between attempts: doubling from the first, capped.
    fn backoff(&self) -> ExponentialBuilder {
        ExponentialBuilder::new()
            .with_min_delay(self.first_backoff)
            .with_max_delay(self.max_backoff)
            .with_max_times(self.attempts.saturating_sub(1) as usize)
    }

    const PRODUCTION: RetryPolicy =
        RetryPolicy { attempts: 5, first_backoff: Duration::from_millis(250), max_backoff: Duration::from_secs(4) };
    const EMULATOR: RetryPolicy =
        RetryPolicy { attempts: 3, first_backoff: Duration::from_millis(50), max_backoff: Duration::from_millis(400) };
}

/// The objects of one Cloud Storage bucket.
#[derive(Clone)]
pub struct GcsStore {
    client: Client,
    bucket: String,
    retry: RetryPolicy,
    /// Set for an emulator: signed URLs then point at it (path style, `http` if it is).
    endpoint: Option<url::Url>,
    /// Signs URLs instead of the credentials' own signer: `(client_email, PEM private key)`.
    signer: Option<(String, SignBy)>,
    /// The URLs [`ObjectStore::signed_get_url`] signed for the current window, by key.
    signed: Arc<Mutex<SignedUrls>>,
}

/// Signed URLs of one validity window. A URL is the same for its whole window (the signature
/// is deterministic), and signing on Cloud Run is a request to IAM: a page of images asks for
/// each of them once an hour, not on every listing.
#[derive(Debug, Default)]
struct SignedUrls {
    window: Option<(SystemTime, SystemTime)>,
    urls: HashMap<String, String>,
}

impl std::fmt::Debug for GcsStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GcsStore")
            .field("bucket", &self.bucket)
            .field("endpoint", &self.endpoint.as_ref().map(url::Url::as_str))
            .field("retry", &self.retry)
            .field("signer", &self.signer.as_ref().map(|(email, _)| email))
            .finish()
    }
}

impl GcsStore {
    /// Production: credentials from the environment (`GOOGLE_APPLICATION_CREDENTIALS`, or the
    /// metadata server on Cloud Run), the public endpoint, 5 attempts per call, 10 minutes per
    /// request. Signed URLs are signed with the key file's private key, or on Cloud Run through
    /// the IAM Credentials `signBlob` API as the service's own account (which needs
    /// `roles/iam.serviceAccountTokenCreator` on itself).
    pub async fn new(bucket: &str) -> Result<Self, StorageError> {
        install_crypto_provider();
        let config = ClientConfig { http: Some(http_client(Duration::from_secs(600))?), ..ClientConfig::default() }
            .with_auth()
            .await
            .map_err(|e| io_error(std::io::ErrorKind::PermissionDenied, format!("Cloud Storage credentials: {e}")))?;
        Ok(GcsStore {
            client: Client::new(config),
            bucket: bucket.to_owned(),
            retry: RetryPolicy::PRODUCTION,
            endpoint: None,
            signer: None,
            signed: Arc::default(),
        })
    }

    /// Tests and emulators: anonymous requests to `endpoint` (e.g. `http://127.0.0.1:4443`),
    /// 3 attempts per call with short backoff, 30 s per request. Makes no request itself.
    pub async fn with_endpoint(bucket: &str, endpoint: &str) -> Result<Self, StorageError> {
        install_crypto_provider();
        let endpoint = endpoint.trim_end_matches('/');
        let parsed = url::Url::parse(endpoint)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
            .ok_or_else(|| io_error(std::io::ErrorKind::InvalidInput, format!("bad storage endpoint {endpoint:?}")))?;
        let config = ClientConfig {
            http: Some(http_client(Duration::from_secs(30))?),
            storage_endpoint: endpoint.to_owned(),
            ..ClientConfig::default()
        }
        .anonymous();
        Ok(GcsStore {
            client: Client::new(config),
            bucket: bucket.to_owned(),
            retry: RetryPolicy::EMULATOR,
            endpoint: Some(parsed),
            signer: None,
            signed: Arc::default(),
        })
    }

    /// Signs URLs with this service-account key (the JSON key file's text: its `client_email`
    /// and `private_key` are used) instead of the credentials' own signer.
    pub fn with_signing_key(mut self, service_account_json: &str) -> Result<Self, StorageError> {
        #[derive(serde::Deserialize)]
        struct Key {
            client_email: String,
            private_key: String,
        }
        let key: Key = serde_json::from_str(service_account_json).map_err(|e| {
            io_error(
                std::io::ErrorKind::InvalidInput,
                format!("service-account key: {e} (needs client_email and private_key)"),
            )
        })?;
        self.signer = Some((key.client_email, SignBy::PrivateKey(key.private_key.into_bytes())));
        // URLs another signer made are not this one's.
        self.signed = Arc::default();
        Ok(self)
    }

    /// The bucket's name.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// A V4 signed URL that lets anyone `GET` the object until `expires` from now (at most 7
    /// days). Signing makes no request when a private key is at hand; on Cloud Run it calls
    /// the IAM Credentials API. The object need not exist.
    pub async fn signed_url(&self, key: &str, expires: Duration) -> Result<String, StorageError> {
        self.signed_url_from(key, None, expires).await
    }

    /// [`GcsStore::signed_url`] valid from `start` (its `X-Goog-Date`; now when `None`) for
    /// `expires`.
    pub async fn signed_url_from(
        &self,
        key: &str,
        start: Option<SystemTime>,
        expires: Duration,
    ) -> Result<String, StorageError> {
        validate_key(key)?;
        let mut opts = SignedURLOptions {
            method: SignedURLMethod::GET,
            start_time: start,
            expires,
            ..SignedURLOptions::default()
        };
        if let Some(endpoint) = &self.endpoint {
            let host = match endpoint.port() {
                Some(port) => format!("{}:{port}", endpoint.host_str().unwrap_or_default()),
                None => endpoint.host_str().unwrap_or_default().to_owned(),
            };
            opts.style = Box::new(EmulatorPathStyle { host });
            opts.insecure = endpoint.scheme() == "http";
        }
        let (access_id, sign_by) = match &self.signer {
            Some((email, sign_by)) => (Some(email.clone()), Some(sign_by.clone())),
            None => (None, None),
        };
        self.client.signed_url(&self.bucket, key, access_id, sign_by, opts).await.map_err(|e| {
            io_error(std::io::ErrorKind::Other, format!("signing a URL for gs://{}/{key}: {e}", self.bucket))
        })
    }

    /// Runs `call` until it succeeds, fails for good, or has used up its attempts.
    async fn retrying<T, F, Fut>(&self, op: &str, key: &str, call: F) -> Result<T, GcsError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, GcsError>>,
    {
        call.retry(self.retry.backoff())
            .when(is_transient)
            .notify(
                |err, delay| tracing::warn!(op, key, ?delay, error = %err, "transient Cloud Storage error; retrying"),
            )
            .await
    }

    /// Deletes `name` as it is in the bucket (no key check: listed names are deleted as found).
    async fn delete_name(&self, name: &str) -> Result<(), StorageError> {
        let req = DeleteObjectRequest { bucket: self.bucket.clone(), object: name.to_owned(), ..Default::default() };
        match self.retrying("delete", name, || self.client.delete_object(&req)).await {
            Ok(()) => Ok(()),
            Err(e) if status_of(&e) == Some(404) => Ok(()),
            Err(e) => Err(self.failure("delete", name, e)),
        }
    }

    fn get_request(&self, key: &str) -> GetObjectRequest {
        GetObjectRequest { bucket: self.bucket.clone(), object: key.to_owned(), ..Default::default() }
    }

    fn failure(&self, op: &str, key: &str, err: GcsError) -> StorageError {
        let kind = match status_of(&err) {
            Some(401 | 403) => std::io::ErrorKind::PermissionDenied,
            Some(404) => std::io::ErrorKind::NotFound,
            Some(408) => std::io::ErrorKind::TimedOut,
            _ if matches!(&err, GcsError::HttpClient(e) if e.is_timeout()) => std::io::ErrorKind::TimedOut,
            _ => std::io::ErrorKind::Other,
        };
        io_error(kind, format!("Cloud Storage {op} gs://{}/{key} failed: {err}", self.bucket))
    }
}

#[async_trait]
impl ObjectStore for GcsStore {
    async fn put(&self, key: &str, data: Bytes) -> Result<(), StorageError> {
        validate_key(key)?;
        let req = UploadObjectRequest { bucket: self.bucket.clone(), ..Default::default() };
        let upload = UploadType::Simple(Media {
            name: key.to_owned().into(),
            content_type: content_type(key).into(),
            content_length: Some(data.len() as u64),
        });
        self.retrying("put", key, || self.client.upload_object(&req, data.clone(), &upload))
            .await
            .map(drop)
            .map_err(|e| self.failure("put", key, e))
    }

    async fn get(&self, key: &str) -> Result<Bytes, StorageError> {
        validate_key(key)?;
        let req = self.get_request(key);
        let whole = ByteRange::default();
        match self.retrying("get", key, || self.client.download_object(&req, &whole)).await {
            Ok(data) => Ok(Bytes::from(data)),
            Err(e) if status_of(&e) == Some(404) => Err(StorageError::NotFound(key.to_owned())),
            Err(e) => Err(self.failure("get", key, e)),
        }
    }

    async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Bytes, StorageError> {
        validate_key(key)?;
        if range.start >= range.end {
            // Nothing to read; still tell a missing object from an empty range.
            return match self.size(key).await? {
                Some(_) => Ok(Bytes::new()),
                None => Err(StorageError::NotFound(key.to_owned())),
            };
        }
        let req = self.get_request(key);
        let wanted = ByteRange(Some(range.start), Some(range.end - 1));
        match self.retrying("get_range", key, || self.client.download_object(&req, &wanted)).await {
            Ok(data) => {
                let len = range.end - range.start;
                if data.len() as u64 > len {
                    // The server ignored the Range header and sent the whole object.
                    let start = (range.start as usize).min(data.len());
                    let end = (range.end.min(data.len() as u64) as usize).max(start);
                    return Ok(Bytes::from(data).slice(start..end));
                }
                Ok(Bytes::from(data))
            }
            Err(e) if status_of(&e) == Some(404) => Err(StorageError::NotFound(key.to_owned())),
            // The range starts at or past the end of the object.
            Err(e) if status_of(&e) == Some(416) => Ok(Bytes::new()),
            Err(e) => Err(self.failure("get_range", key, e)),
        }
    }

    async fn size(&self, key: &str) -> Result<Option<u64>, StorageError> {
        validate_key(key)?;
        let req = GetObjectRequest { projection: Some(Projection::NoAcl), ..self.get_request(key) };
        match self.retrying("size", key, || self.client.get_object(&req)).await {
            Ok(object) => Ok(Some(object.size.max(0) as u64)),
            Err(e) if status_of(&e) == Some(404) => Ok(None),
            Err(e) => Err(self.failure("size", key, e)),
        }
    }

    async fn list(&self, prefix: &str, page: Option<String>, page_size: usize) -> Result<ListPage, StorageError> {
        let req = ListObjectsRequest {
            bucket: self.bucket.clone(),
            prefix: (!prefix.is_empty()).then(|| prefix.to_owned()),
            page_token: page,
            max_results: Some(page_size.clamp(1, MAX_PAGE_SIZE) as i32),
            projection: Some(Projection::NoAcl),
            ..Default::default()
        };
        let resp = self
            .retrying("list", prefix, || self.client.list_objects(&req))
            .await
            .map_err(|e| self.failure("list", prefix, e))?;
        let objects = resp.items.unwrap_or_default().into_iter().map(|o| (o.name, o.size.max(0) as u64)).collect();
        let next_page = resp.next_page_token.filter(|t| !t.is_empty());
        Ok(ListPage { objects, next_page })
    }

    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        validate_key(key)?;
        self.delete_name(key).await
    }

    /// A resumable upload session (JSON API, `uploadType=resumable`, with
    /// `X-Upload-Content-Length` when the size is known) started with this store's credentials:
    /// its URI lets whoever holds it upload that one object, for a week at most.
    async fn start_upload_session(&self, key: &str, size: Option<u64>) -> Result<Option<String>, StorageError> {
        validate_key(key)?;
        let req = UploadObjectRequest { bucket: self.bucket.clone(), ..Default::default() };
        let upload = UploadType::Simple(Media {
            name: key.to_owned().into(),
            content_type: content_type(key).into(),
            content_length: size,
        });
        // Starting a session twice is harmless: the first is never used and lapses.
        let session = self
            .retrying("start_upload_session", key, || self.client.prepare_resumable_upload(&req, &upload))
            .await
            .map_err(|e| self.failure("start an upload session for", key, e))?;
        Ok(Some(session.url().to_owned()))
    }

    /// A status query on the session (`PUT` with `Content-Range: bytes */*`), as Cloud Storage
    /// documents it. Unsupported on an emulator: `fake-gcs-server` takes a status query for the
    /// last piece and finishes the object with what it has.
    async fn upload_session_progress(&self, session_url: &str) -> Result<SessionProgress, StorageError> {
        if self.endpoint.is_some() {
            return Err(super::unsupported("query upload sessions on an emulator"));
        }
        let session = self.client.get_resumable_upload(session_url.to_owned());
        let status =
            self.retrying("upload_session_progress", "a session", || session.status(None)).await.map_err(|e| {
                match status_of(&e) {
                    Some(404 | 410) => StorageError::NotFound("the upload session (it lapsed or was cancelled)".into()),
                    _ => self.failure("query an upload session of", "", e),
                }
            })?;
        Ok(match status {
            UploadStatus::Ok(object) => SessionProgress::Complete(object.size.max(0) as u64),
            UploadStatus::NotStarted => SessionProgress::Received(0),
            UploadStatus::ResumeIncomplete(range) => SessionProgress::Received(range.last_byte + 1),
        })
    }

    /// A V4 signed URL, cached for its window. `None` on an emulator without a signing key
    /// (anonymous requests have no signer); in production the credentials always have one.
    async fn signed_get_url(
        &self,
        key: &str,
        valid_from: SystemTime,
        valid_until: SystemTime,
    ) -> Result<Option<String>, StorageError> {
        validate_key(key)?;
        if self.endpoint.is_some() && self.signer.is_none() {
            return Ok(None);
        }
        let lifetime = valid_until.duration_since(valid_from).ok().filter(|d| !d.is_zero()).ok_or_else(|| {
            io_error(std::io::ErrorKind::InvalidInput, format!("signing gs://{}/{key}: an empty window", self.bucket))
        })?;
        let window = Some((valid_from, valid_until));
        {
            let signed = self.signed.lock().expect("not poisoned");
            if signed.window == window {
                if let Some(url) = signed.urls.get(key) {
                    return Ok(Some(url.clone()));
                }
            }
        }
        let url = self.signed_url_from(key, Some(valid_from), lifetime).await?;
        let mut signed = self.signed.lock().expect("not poisoned");
        if signed.window != window || signed.urls.len() >= SIGNED_URLS_CACHED {
            *signed = SignedUrls { window, urls: HashMap::new() };
        }
        signed.urls.insert(key.to_owned(), url.clone());
        Ok(Some(url))
    }

    /// A server-side copy (`rewrite`, continued until done, so large objects and objects in
    /// other storage classes copy too).
    async fn copy(&self, from: &str, to: &str) -> Result<(), StorageError> {
        validate_key(from)?;
        validate_key(to)?;
        let mut req = RewriteObjectRequest {
            source_bucket: self.bucket.clone(),
            source_object: from.to_owned(),
            destination_bucket: self.bucket.clone(),
            destination_object: to.to_owned(),
            projection: Some(Projection::NoAcl),
            ..Default::default()
        };
        loop {
            let resp = match self.retrying("copy", from, || self.client.rewrite_object(&req)).await {
                Ok(resp) => resp,
                Err(e) if status_of(&e) == Some(404) => return Err(StorageError::NotFound(from.to_owned())),
                Err(e) => return Err(self.failure("copy", from, e)),
            };
            if resp.done {
                return Ok(());
            }
            match resp.rewrite_token {
                Some(token) => req.rewrite_token = Some(token),
                None => {
                    let msg =
                        format!("Cloud Storage copy gs://{}/{from} failed: rewrite not done, no token", self.bucket);
                    return Err(io_error(std::io::ErrorKind::Other, msg));
                }
            }
        }
    }

    /// Lists page by page and deletes each page's objects concurrently.
    async fn delete_prefix(&self, prefix: &str) -> Result<u64, StorageError> {
        let mut deleted = 0;
        loop {
            // Always list from the start: the previous page's objects are gone now.
            let page = self.list(prefix, None, MAX_PAGE_SIZE).await?;
            if page.objects.is_empty() {
                return Ok(deleted);
            }
            let count = page.objects.len() as u64;
            futures::stream::iter(page.objects)
                .map(|(name, _)| async move { self.delete_name(&name).await })
                .buffer_unordered(DELETE_CONCURRENCY)
                .try_collect::<Vec<()>>()
                .await?;
            deleted += count;
        }
    }
}

/// Path-style URLs on an emulator's host (`http://127.0.0.1:4443/bucket/key`).
struct EmulatorPathStyle {
    host: String,
}

impl URLStyle for EmulatorPathStyle {
    fn host(&self, _bucket: &str) -> String {
        self.host.clone()
    }

    fn path(&self, bucket: &str, object: &str) -> String {
        format!("{bucket}/{object}")
    }
}

fn http_client(timeout: Duration) -> Result<reqwest_middleware::ClientWithMiddleware, StorageError> {
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .timeout(timeout)
        .build()
        .map_err(|e| io_error(std::io::ErrorKind::Other, format!("building the Cloud Storage HTTP client: {e}")))?;
    Ok(reqwest_middleware::ClientBuilder::new(client).build())
}

/// `gcloud-storage`'s HTTP client (reqwest 0.13) is built with rustls but no crypto provider
/// of its own: use the `ring` provider the rest of the workspace already links, unless the
/// process chose one already.
fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The HTTP status of a failed call, if it got that far.
fn status_of(err: &GcsError) -> Option<u16> {
    match err {
        GcsError::Response(r) => Some(r.code),
        GcsError::HttpClient(e) | GcsError::RawResponse(e, _) => e.status().map(|s| s.as_u16()),
        _ => None,
    }
}

/// Worth another attempt: the same request may well succeed.
fn is_transient(err: &GcsError) -> bool {
    match status_of(err) {
        Some(code) => matches!(code, 408 | 429 | 500..=599),
        None => match err {
            GcsError::HttpClient(e) => e.is_connect() || e.is_timeout() || e.is_request() || e.is_body(),
            GcsError::TokenSource(_) => true,
            _ => false,
        },
    }
}

fn io_error(kind: std::io::ErrorKind, msg: String) -> StorageError {
    StorageError::Io(std::io::Error::new(kind, msg))
}

/// The `Content-Type` an object is stored with, from its extension.
fn content_type(key: &str) -> &'static str {
    let name = key.rsplit('/').next().unwrap_or(key);
    let ext = name.rsplit_once('.').map(|(_, ext)| ext.to_ascii_lowercase()).unwrap_or_default();
    match ext.as_str() {
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "bmp" => "image/bmp",
        "tif" | "tiff" => "image/tiff",
        "txt" => "text/plain; charset=utf-8",
        "json" => "application/json",
        "yaml" | "yml" => "application/yaml",
        "zip" => "application/zip",
        "gz" | "tgz" => "application/gzip",
        "tar" => "application/x-tar",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_follow_extensions() {
        assert_eq!(content_type("datasets/d/images/train/a.JPG"), "image/jpeg");
        assert_eq!(content_type("datasets/d/labels/train/a.txt"), "text/plain; charset=utf-8");
        assert_eq!(content_type("temp/j/src/archive"), "application/octet-stream");
        assert_eq!(content_type("dir.d/file"), "application/octet-stream");
    }

    #[tokio::test]
    async fn bad_endpoints_are_refused() {
        for endpoint in ["", "127.0.0.1:4443", "ftp://127.0.0.1"] {
            assert!(GcsStore::with_endpoint("b", endpoint).await.is_err(), "{endpoint:?} accepted");
        }
    }
}
