//! Fetching HTTP(S) sources under the URL policy: whole (to scratch space), or by byte range,
//! with bounded time and size, every redirect checked again.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::io::AsyncWriteExt;
use url::Url;
use yds_config::UrlPolicy;

use super::error::SourceError;
use super::policy::{parse, GuardedResolver, SourceUrl};

/// Downloads sources under a policy, with bounded time and size.
#[derive(Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    max_bytes: u64,
}

/// Redirects followed at most.
const MAX_REDIRECTS: usize = 5;

impl Fetcher {
    pub fn new(policy: UrlPolicy, stall_timeout: Duration, max_bytes: u64) -> Self {
        let redirect = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= MAX_REDIRECTS {
                return attempt.error("too many redirects");
            }
            match parse(attempt.url().as_str(), policy) {
                Ok(SourceUrl::Http(_)) => attempt.follow(),
                Ok(_) => attempt.error("redirect to a non-HTTP URL"),
                Err(err) => attempt.error(err.to_string()),
            }
        });
        let mut builder = reqwest::Client::builder()
            .redirect(redirect)
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(stall_timeout)
            .user_agent("yds-importer");
        if policy == UrlPolicy::Strict {
            builder = builder.dns_resolver(Arc::new(GuardedResolver));
        }
        Self { client: builder.build().expect("HTTP client configuration is valid"), max_bytes }
    }

    /// Fetches an HTTP(S) URL into `dest`, streaming; returns the byte count.
    pub async fn download(&self, url: &Url, dest: &Path) -> Result<u64, SourceError> {
        let response = self.client.get(url.clone()).send().await.map_err(|e| describe(url, e))?;
        let status = response.status();
        if status.is_client_error() {
            return Err(SourceError::Unusable(format!("{} answered {}", redact(url), status.as_u16())));
        }
        if !status.is_success() {
            return Err(SourceError::Transient(format!("{} answered {}", redact(url), status.as_u16())));
        }
        if response.content_length().is_some_and(|len| len > self.max_bytes) {
            return Err(SourceError::Unusable(format!("{} is larger than {} bytes", redact(url), self.max_bytes)));
        }
        let mut file = tokio::fs::File::create(dest)
            .await
            .map_err(|e| SourceError::Transient(format!("scratch space unavailable: {e}")))?;
        let mut written = 0u64;
        let mut body = response.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| describe(url, e))?;
            written += chunk.len() as u64;
            if written > self.max_bytes {
                return Err(SourceError::Unusable(format!("{} is larger than {} bytes", redact(url), self.max_bytes)));
            }
            file.write_all(&chunk).await.map_err(|e| SourceError::Transient(format!("scratch write failed: {e}")))?;
        }
        file.flush().await.map_err(|e| SourceError::Transient(format!("scratch write failed: {e}")))?;
        Ok(written)
    }
}

impl Fetcher {
    /// The size of an HTTP(S) source and whether it answers byte-range requests, learned from
    /// a one-byte range request (some servers do not answer HEAD the way they answer GET).
    pub async fn probe(&self, url: &Url) -> Result<Probe, SourceError> {
        let response =
            self.client.get(url.clone()).header("range", "bytes=0-0").send().await.map_err(|e| describe(url, e))?;
        let status = check_status(url, response.status())?;
        let total = response
            .headers()
            .get("content-range")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit('/').next())
            .and_then(|v| v.parse::<u64>().ok());
        let probe = match (status.as_u16(), total) {
            (206, Some(size)) => Probe { size, ranges: true },
            _ => Probe { size: response.content_length().unwrap_or(0), ranges: false },
        };
        if probe.size > self.max_bytes {
            return Err(SourceError::Unusable(format!("{} is larger than {} bytes", redact(url), self.max_bytes)));
        }
        Ok(probe)
    }

    /// Bytes `range` of an HTTP(S) source that answers range requests.
    pub async fn get_range(&self, url: &Url, range: std::ops::Range<u64>) -> Result<bytes::Bytes, SourceError> {
        if range.is_empty() {
            return Ok(bytes::Bytes::new());
        }
        let header = format!("bytes={}-{}", range.start, range.end - 1);
        let response =
            self.client.get(url.clone()).header("range", header).send().await.map_err(|e| describe(url, e))?;
        let status = check_status(url, response.status())?;
        if status.as_u16() != 206 {
            return Err(SourceError::Unusable(format!("{} stopped answering byte-range requests", redact(url))));
        }
        let body = response.bytes().await.map_err(|e| describe(url, e))?;
        if body.len() as u64 > range.end - range.start {
            return Err(SourceError::Unusable(format!("{} answered more bytes than asked", redact(url))));
        }
        Ok(body)
    }
}

/// What [`Fetcher::probe`] learned about an HTTP source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    pub size: u64,
    /// The server answers `Range` requests with 206.
    pub ranges: bool,
}

fn check_status(url: &Url, status: reqwest::StatusCode) -> Result<reqwest::StatusCode, SourceError> {
    if status.is_client_error() {
        return Err(SourceError::Unusable(format!("{} answered {}", redact(url), status.as_u16())));
    }
    if !status.is_success() {
        return Err(SourceError::Transient(format!("{} answered {}", redact(url), status.as_u16())));
    }
    Ok(status)
}

/// The URL without query string (which may hold signatures) for messages.
fn redact(url: &Url) -> String {
    let mut shown = url.clone();
    shown.set_query(None);
    shown.set_fragment(None);
    shown.to_string()
}

fn describe(url: &Url, err: reqwest::Error) -> SourceError {
    if err.is_redirect() || err.is_builder() {
        return SourceError::Refused(format!("{}: redirect refused", redact(url)));
    }
    let is_refusal =
        std::error::Error::source(&err).map(|s| s.to_string().contains("internal addresses")).unwrap_or(false);
    if is_refusal {
        return SourceError::Refused(format!("{} resolves only to internal addresses", redact(url)));
    }
    if err.is_timeout() {
        return SourceError::Transient(format!("{}: download stalled", redact(url)));
    }
    SourceError::Transient(format!("{}: could not be downloaded", redact(url)))
}
