//! Which source URLs are acceptable.
//!
//! Under the `strict` policy (production) a URL may not lead to this machine, a private
//! network or a metadata server: the host is checked when the request arrives, every
//! redirect hop is checked ([`super::fetch`]), and the resolver used to connect drops blocked
//! addresses (`GuardedResolver`), so a DNS answer that changes between check and connect
//! (rebinding) still cannot get through.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;

use url::Url;
use yds_config::UrlPolicy;

use super::error::SourceError;

/// A parsed, policy-checked source URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceUrl {
    Http(Url),
    /// Local mode only.
    File(PathBuf),
    Gcs {
        bucket: String,
        object: String,
    },
    /// One of this deployment's uploads, read from its own object store under either policy
    /// (it is no outside URL): `upload://{upload_id}` as `POST /uploads` answers it, which
    /// acceptance resolves to `upload://{upload_id}/{file_name}` (see [`upload_url`]).
    Upload {
        upload_id: String,
        file_name: Option<String>,
    },
}

/// The scheme of [`SourceUrl::Upload`].
pub const UPLOAD_SCHEME: &str = "upload://";

/// An upload's source URL as a job records it, naming the object's file (whose suffix says
/// what kind of archive it is): `upload://{upload_id}/{file_name}`.
pub fn upload_url(upload_id: &str, file_name: &str) -> String {
    format!("{UPLOAD_SCHEME}{upload_id}/{file_name}")
}

/// `upload://{id}` or `upload://{id}/{file_name}`; the name is taken as it is (no escapes), as
/// [`upload_url`] writes it.
fn parse_upload(raw: &str, rest: &str) -> Result<SourceUrl, SourceError> {
    let (upload_id, file_name) = match rest.split_once('/') {
        Some((id, name)) => (id, Some(name)),
        None => (rest, None),
    };
    let id_ok = !upload_id.is_empty() && upload_id.len() <= 64 && upload_id.bytes().all(|b| b.is_ascii_alphanumeric());
    let name_ok = file_name.is_none_or(|n| !n.is_empty() && !n.contains('/') && !n.chars().any(char::is_control));
    if !id_ok || !name_ok {
        return Err(SourceError::Refused(format!(
            "`{raw}` is not an upload's `source_url`: `POST /uploads` answers one as `upload://UPLOAD_ID`"
        )));
    }
    Ok(SourceUrl::Upload { upload_id: upload_id.to_owned(), file_name: file_name.map(str::to_owned) })
}

/// Host names that reach cloud metadata services whatever they resolve to.
const BLOCKED_HOSTS: &[&str] = &["metadata.google.internal", "metadata", "metadata.goog"];

/// Parses `raw` and checks it against `policy` without touching the network.
pub fn parse(raw: &str, policy: UrlPolicy) -> Result<SourceUrl, SourceError> {
    if let Some(rest) = raw.strip_prefix(UPLOAD_SCHEME) {
        return parse_upload(raw, rest);
    }
    if let Some(path) = plain_path(raw) {
        return Err(SourceError::Refused(path_instead_of_url(raw, &path, policy)));
    }
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
            Ok(SourceUrl::Http(url))
        }
        "gs" => {
            let bucket = url.host_str().unwrap_or("").to_owned();
            let object = url.path().trim_start_matches('/').to_owned();
            if bucket.is_empty() || object.is_empty() {
                return Err(SourceError::Refused(format!("`{raw}` must be gs://bucket/object")));
            }
            Ok(SourceUrl::Gcs { bucket, object })
        }
        "file" if policy == UrlPolicy::Local => {
            let path =
                url.to_file_path().map_err(|_| SourceError::Refused(format!("`{raw}` is not a local file path")))?;
            Ok(SourceUrl::File(path))
        }
        "file" => Err(SourceError::Refused("file:// URLs are only accepted by the local stack".into())),
        other => {
            Err(SourceError::Refused(format!("URL scheme `{other}` is not supported; use https://, http:// or gs://")))
        }
    }
}

/// A file path given where a URL is expected, as `file://` would take it: `/data/x.zip`,
/// `./x`, `~/x`, `C:\\x.zip`, or any text without a scheme (`x.zip`). `None` for a URL.
fn plain_path(raw: &str) -> Option<PathKind> {
    let bytes = raw.as_bytes();
    let drive =
        bytes.len() >= 3 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':' && matches!(bytes[2], b'\\' | b'/');
    if drive || raw.starts_with("\\\\") {
        return Some(PathKind::Windows);
    }
    if raw.starts_with('/') {
        return Some(PathKind::Absolute);
    }
    let relative = raw.starts_with("./") || raw.starts_with("../") || raw.starts_with('~') || raw.starts_with('\\');
    let schemeless = !raw.trim().is_empty() && matches!(Url::parse(raw), Err(url::ParseError::RelativeUrlWithoutBase));
    (relative || schemeless).then_some(PathKind::Relative)
}

/// What kind of path [`plain_path`] found: it decides the `file://` URL to suggest.
enum PathKind {
    Absolute,
    Relative,
    Windows,
}

/// The refusal of a path where a URL is expected, saying what to send instead: under the local
/// policy the `file://` URL of that path (or an upload); under the strict one an upload.
fn path_instead_of_url(raw: &str, kind: &PathKind, policy: UrlPolicy) -> String {
    let upload = format!(
        "upload the file: `POST /uploads` answers an `upload_url` to send it to and a `source_url` to \
         import it by, or run `yds import {raw}`, which does both"
    );
    match (policy, kind) {
        (UrlPolicy::Strict, _) => {
            format!("`{raw}` is a file path, not a URL this service can read (https://, http:// or gs://); {upload}")
        }
        (UrlPolicy::Local, PathKind::Absolute) => {
            format!("`{raw}` is a file path, not a URL: the local stack reads it as `file://{raw}`; or {upload}")
        }
        (UrlPolicy::Local, PathKind::Windows) => format!(
            "`{raw}` is a file path, not a URL: the local stack reads it as `file:///{}`; or {upload}",
            raw.replace('\\', "/")
        ),
        (UrlPolicy::Local, PathKind::Relative) => format!(
            "`{raw}` is a file path, not a URL: the local stack reads local files by `file://` URL with an \
             absolute path (e.g. `file:///home/me/dataset.zip`); or {upload}"
        ),
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
pub(super) struct GuardedResolver;

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
        assert!(matches!(parse("https://example.com/d.zip", UrlPolicy::Strict), Ok(SourceUrl::Http(_))));
        assert_eq!(
            parse("gs://bucket/a/b.tar", UrlPolicy::Strict).unwrap(),
            SourceUrl::Gcs { bucket: "bucket".into(), object: "a/b.tar".into() }
        );
    }

    #[test]
    fn a_path_where_a_url_belongs_is_told_what_to_send() {
        let refusal = |raw: &str, policy| match parse(raw, policy) {
            Err(SourceError::Refused(message)) => message,
            other => panic!("{raw}: {other:?}"),
        };
        let local = refusal("/data/x.zip", UrlPolicy::Local);
        assert!(local.starts_with("`/data/x.zip` is a file path, not a URL"), "{local}");
        assert!(local.contains("`file:///data/x.zip`"), "{local}");
        assert!(local.contains("`POST /uploads`") && local.contains("`yds import /data/x.zip`"), "{local}");

        let windows = refusal("C:\\data\\x.zip", UrlPolicy::Local);
        assert!(windows.contains("`file:///C:/data/x.zip`"), "{windows}");
        for relative in ["./x", "../x.zip", "x.zip", "data/x.tar.gz", "~/x.zip"] {
            let message = refusal(relative, UrlPolicy::Local);
            assert!(message.contains("with an absolute path (e.g. `file:///home/me/dataset.zip`)"), "{message}");
            assert!(message.contains(&format!("`yds import {relative}`")), "{message}");
        }
        // Production reads no local files: only the upload is suggested.
        for raw in ["/data/x.zip", "./x", "C:\\x.zip", "x.zip"] {
            let strict = refusal(raw, UrlPolicy::Strict);
            assert!(strict.contains("not a URL this service can read"), "{strict}");
            assert!(strict.contains("`POST /uploads`"), "{strict}");
            assert!(!strict.contains("file://"), "{strict}");
        }
        // URLs are still URLs.
        assert!(parse("https://example.com/a.zip", UrlPolicy::Strict).is_ok());
        assert!(refusal("c:x", UrlPolicy::Local).contains("scheme `c` is not supported"));
    }

    #[test]
    fn uploads_are_accepted_under_both_policies() {
        for policy in [UrlPolicy::Strict, UrlPolicy::Local] {
            let plain = parse("upload://0123abcd", policy).unwrap();
            assert_eq!(plain, SourceUrl::Upload { upload_id: "0123abcd".into(), file_name: None });
            let named = parse(&upload_url("0123abcd", "My Data.tar.gz"), policy).unwrap();
            let file_name = Some("My Data.tar.gz".to_owned());
            assert_eq!(named, SourceUrl::Upload { upload_id: "0123abcd".into(), file_name });
            for bad in ["upload://", "upload://../etc", "upload://a/b/c.zip", "upload://a/", "upload://a-b"] {
                let err = parse(bad, policy).unwrap_err().to_string();
                assert!(err.contains("is not an upload's `source_url`"), "{bad}: {err}");
            }
        }
    }

    #[test]
    fn local_policy_allows_loopback_and_files() {
        assert!(parse("http://127.0.0.1:9/x.zip", UrlPolicy::Local).is_ok());
        assert_eq!(parse("file:///tmp/x.zip", UrlPolicy::Local).unwrap(), SourceUrl::File("/tmp/x.zip".into()));
        assert!(parse("gopher://x", UrlPolicy::Local).is_err());
    }
}
