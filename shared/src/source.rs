//! Import sources: which URLs are acceptable, and fetching them to local scratch space.
//!
//! Under the `strict` policy (production) a URL may not lead to this machine, a private
//! network or a metadata server: the host is checked when the request arrives, every
//! redirect hop is checked, and the resolver used to connect drops blocked addresses, so a
//! DNS answer that changes between check and connect (rebinding) still cannot get through.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::io::AsyncWriteExt;
use url::Url;

use crate::config::UrlPolicy;

/// A parsed, policy-checked source location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceLocation {
    Http(Url),
    /// Local mode only.
    File(PathBuf),
    Gcs {
        bucket: String,
        object: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The URL itself is unacceptable; retrying cannot help.
    #[error("{0}")]
    Refused(String),
    /// The source answered, but not with a usable file (404, too large...).
    #[error("{0}")]
    Unusable(String),
    /// Nothing at that location (no such file, object or folder).
    #[error("{0}")]
    NotFound(String),
    /// Network trouble; a retry may succeed.
    #[error("{0}")]
    Transient(String),
}

impl SourceError {
    pub fn is_permanent(&self) -> bool {
        !matches!(self, SourceError::Transient(_))
    }
}

/// Host names that reach cloud metadata services whatever they resolve to.
const BLOCKED_HOSTS: &[&str] = &["metadata.google.internal", "metadata", "metadata.goog"];

/// Parses `raw` and checks it against `policy` without touching the network.
pub fn parse(raw: &str, policy: UrlPolicy) -> Result<SourceLocation, SourceError> {
    let url = Url::parse(raw).map_err(|e| SourceError::Refused(format!("`{raw}` is not a valid URL: {e}")))?;
    match url.scheme() {
        "http" | "https" => {
            let host = url
                .host_str()
                .filter(|h| !h.is_empty())
                .ok_or_else(|| SourceError::Refused(format!("`{raw}` has no host")))?;
            if !url.username().is_empty() || url.password().is_some() {
                return Err(SourceError::Refused("URLs with credentials are not accepted".into()));
            }
            if policy == UrlPolicy::Strict {
                check_host_name(host)?;
            }
            Ok(SourceLocation::Http(url))
        }
        "gs" => {
            let bucket = url.host_str().unwrap_or("").to_owned();
            let object = url.path().trim_start_matches('/').to_owned();
            if bucket.is_empty() || object.is_empty() {
                return Err(SourceError::Refused(format!("`{raw}` must be gs://bucket/object")));
            }
            Ok(SourceLocation::Gcs { bucket, object })
        }
        "file" if policy == UrlPolicy::Local => {
            let path =
                url.to_file_path().map_err(|_| SourceError::Refused(format!("`{raw}` is not a local file path")))?;
            Ok(SourceLocation::File(path))
        }
        "file" => Err(SourceError::Refused("file:// URLs are only accepted by the local stack".into())),
        other => {
            Err(SourceError::Refused(format!("URL scheme `{other}` is not supported; use https://, http:// or gs://")))
        }
    }
}

/// Refuses host names and IP literals that lead to internal addresses.
fn check_host_name(host: &str) -> Result<(), SourceError> {
    let bare = host.trim_start_matches('[').trim_end_matches(']').trim_end_matches('.').to_ascii_lowercase();
    if BLOCKED_HOSTS.contains(&bare.as_str()) || bare == "localhost" || bare.ends_with(".localhost") {
        return Err(refused_host(host));
    }
    if let Ok(ip) = bare.parse::<IpAddr>() {
        if is_blocked(ip) {
            return Err(refused_host(host));
        }
    }
    Ok(())
}

fn refused_host(host: &str) -> SourceError {
    SourceError::Refused(format!("host `{host}` is an internal address; only public hosts are allowed"))
}

/// Addresses an import may never reach in strict mode.
pub fn is_blocked(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_blocked_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_blocked_v4(v4);
            }
            let seg0 = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (seg0 & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (seg0 & 0xffc0) == 0xfe80 // link-local fe80::/10
                || (seg0 & 0xffc0) == 0xfec0 // site-local (deprecated) fec0::/10
                || v6 == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) // AWS IMDS over IPv6
        }
    }
}

fn is_blocked_v4(v4: Ipv4Addr) -> bool {
    let [a, b, ..] = v4.octets();
    v4.is_loopback()
        || v4.is_private()
        || v4.is_link_local() // includes 169.254.169.254
        || v4.is_unspecified()
        || v4.is_broadcast()
        || v4.is_multicast()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // carrier-grade NAT
        || (a == 192 && b == 0 && v4.octets()[2] == 0) // IETF protocol assignments
        || a >= 240 // reserved
}

/// A resolver that drops blocked addresses, so the address connected to is the one checked.
struct GuardedResolver;

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = addrs.into_iter().filter(|a| !is_blocked(a.ip())).collect();
            if allowed.is_empty() {
                return Err(format!("host `{host}` resolves only to internal addresses").into());
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

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
                Ok(SourceLocation::Http(_)) => attempt.follow(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_policy_refuses_internal_hosts() {
        for url in [
            "http://127.0.0.1/x.zip",
            "http://localhost:8080/x.zip",
            "http://10.0.0.8/x",
            "http://169.254.169.254/computeMetadata/v1/",
            "http://metadata.google.internal/x",
            "http://[::1]/x",
            "http://[::ffff:127.0.0.1]/x",
            "http://[fd00::1]/x",
            "http://0.0.0.0/x",
            "http://100.64.0.1/x",
            "file:///etc/passwd",
            "ftp://example.com/x",
            "http://user:pw@example.com/x",
        ] {
            assert!(parse(url, UrlPolicy::Strict).is_err(), "{url} accepted");
        }
        assert!(matches!(parse("https://example.com/d.zip", UrlPolicy::Strict), Ok(SourceLocation::Http(_))));
        assert_eq!(
            parse("gs://bucket/a/b.tar", UrlPolicy::Strict).unwrap(),
            SourceLocation::Gcs { bucket: "bucket".into(), object: "a/b.tar".into() }
        );
    }

    #[test]
    fn local_policy_allows_loopback_and_files() {
        assert!(parse("http://127.0.0.1:9/x.zip", UrlPolicy::Local).is_ok());
        assert_eq!(parse("file:///tmp/x.zip", UrlPolicy::Local).unwrap(), SourceLocation::File("/tmp/x.zip".into()));
        assert!(parse("gopher://x", UrlPolicy::Local).is_err());
    }
}
