//! Signed, expiring URLs: how a browser's `<img src>`, which sends no `x-api-key`, may still
//! fetch an image's file or thumbnail.
//!
//! A signed URL is a route's path with three query parameters: `tenant`, `expires` (Unix
//! seconds) and `signature`, the base64url HMAC-SHA256 of the method, the path, the tenant and
//! the expiry under the key `YDS_URL_SIGNING_KEY`. The edge ([`crate::Service`]) lets a `GET` or
//! `HEAD` carrying a valid one through without a key, as that tenant, and only on the routes
//! its handler declares signable ([`crate::Handler::signable`]): a signature never opens any
//! other route. An expired URL, or one whose path, tenant, expiry or signature was edited, is a
//! 403 that says which. Signatures are compared in constant time.
//!
//! URLs signed within one hour expire at the end of the next ([`expiry`]): each is valid for
//! one to two hours, and the same image gives the same URL for a whole hour, so browsers cache
//! what they fetched.
//!
//! This module must never accept a URL whose signature it did not check first, and must never
//! tell an expired URL from an edited one before the signature is checked.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use http::Method;
use serde::Deserialize;
use sha2::Sha256;

use crate::query::QueryParams;
use crate::ApiError;

/// The query parameter that marks a request as signed.
pub const SIGNATURE: &str = "signature";
/// A URL's lifetime is rounded to whole hours of this many seconds.
const HOUR: u64 = 3600;
/// What the signature covers, before the method: a version, so another scheme can come later.
const SCHEME: &str = "yds-url-v1";

/// Signs and checks URLs with one key.
#[derive(Clone)]
pub struct UrlSigner {
    key: Hmac<Sha256>,
}

impl std::fmt::Debug for UrlSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UrlSigner { key: <secret> }")
    }
}

/// Who a valid signed URL lets in, and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedAccess {
    pub tenant: String,
    /// Unix seconds.
    pub expires: u64,
}

/// Why a signed URL was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// Its signature is right but its time is over: the client should fetch a fresh URL.
    #[error("the signed URL expired at {0} (Unix seconds); fetch the image again for a fresh URL")]
    Expired(u64),
    /// Anything else: missing or repeated parameters, or a signature that does not match the
    /// method, path, tenant and expiry (one of them was edited, or another key signed it).
    #[error("invalid URL signature: {0}")]
    Invalid(&'static str),
}

impl From<SignatureError> for ApiError {
    fn from(err: SignatureError) -> Self {
        ApiError::Forbidden(err.to_string())
    }
}

/// Unix seconds at which a URL signed at `now` expires: the end of the hour after `now`'s,
/// so more than one and at most two hours later, and the same for every URL signed in one hour.
pub fn expiry(now: SystemTime) -> u64 {
    (unix_seconds(now) / HOUR + 2) * HOUR
}

/// Seconds a URL's lifetime is rounded to: the window of [`expiry`] starts this long before it
/// (on the hour the URL was signed in).
pub const WINDOW_SECS: u64 = 2 * HOUR;

/// Seconds since the Unix epoch (0 before it).
pub fn unix_seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

impl UrlSigner {
    pub fn new(key: &[u8]) -> Self {
        Self { key: Hmac::new_from_slice(key).expect("HMAC takes a key of any length") }
    }

    /// The signer of the images function: the configured `YDS_URL_SIGNING_KEY`, required under
    /// the strict URL policy; without one in local mode a random key (URLs then live as long as
    /// the process).
    pub fn from_config(config: &yds_config::Config) -> Result<Self, yds_config::ConfigError> {
        Ok(match config.required_url_signing_key()? {
            Some(key) => Self::new(key.as_bytes()),
            None => Self::new(&rand::random::<[u8; 32]>()),
        })
    }

    /// The tag of one URL. `path` is the URL's path as sent (percent-encoded as it is); the
    /// tenant is Debug-quoted, so no character in it can shift a boundary.
    fn tag(&self, method: &str, path: &str, tenant: &str, expires: &str) -> Hmac<Sha256> {
        let mut mac = self.key.clone();
        mac.update(format!("{SCHEME}\n{method}\n{path}\n{tenant:?}\n{expires}").as_bytes());
        mac
    }

    /// The root-relative URL that lets anyone `GET` (or `HEAD`) `path` as `tenant` until
    /// `expires` (Unix seconds, normally [`expiry`]).
    pub fn sign(&self, path: &str, tenant: &str, expires: u64) -> String {
        let expires = expires.to_string();
        let signature = URL_SAFE_NO_PAD.encode(self.tag("GET", path, tenant, &expires).finalize().into_bytes());
        let query = serde_urlencoded::to_string([("tenant", tenant), ("expires", &expires), (SIGNATURE, &signature)])
            .expect("string pairs encode");
        format!("{path}?{query}")
    }

    /// Checks a request to `path` with `query` (the raw query string) at `now`: the access it
    /// grants, or why not. `HEAD` is checked as the `GET` it mirrors; other methods are invalid.
    pub fn verify(
        &self,
        method: &Method,
        path: &str,
        query: &str,
        now: SystemTime,
    ) -> Result<SignedAccess, SignatureError> {
        let method = match *method {
            Method::GET | Method::HEAD => "GET",
            _ => return Err(SignatureError::Invalid("only GET and HEAD may be signed")),
        };
        let pairs: Vec<(String, String)> =
            serde_urlencoded::from_str(query).map_err(|_| SignatureError::Invalid("unreadable query string"))?;
        let one = |name: &str| {
            let mut values = pairs.iter().filter(|(key, _)| key == name).map(|(_, value)| value.as_str());
            match (values.next(), values.next()) {
                (Some(value), None) => Ok(value),
                (None, _) => Err(SignatureError::Invalid("a signed URL needs `tenant`, `expires` and `signature`")),
                (Some(_), Some(_)) => Err(SignatureError::Invalid("a signed URL's parameters appear once each")),
            }
        };
        let (tenant, expires, signature) = (one("tenant")?, one("expires")?, one(SIGNATURE)?);
        let signature = URL_SAFE_NO_PAD
            .decode(signature.as_bytes())
            .map_err(|_| SignatureError::Invalid("the signature is not base64url"))?;
        // Over the expiry as written: `expires=0123` is not the `123` that was signed.
        self.tag(method, path, tenant, expires)
            .verify_slice(&signature)
            .map_err(|_| SignatureError::Invalid("it does not match this path, tenant and expiry"))?;
        let expires: u64 = expires.parse().map_err(|_| SignatureError::Invalid("`expires` is not a number"))?;
        if expires <= unix_seconds(now) {
            return Err(SignatureError::Expired(expires));
        }
        Ok(SignedAccess { tenant: tenant.to_owned(), expires })
    }
}

/// The query a signable route takes: the signed URL's own parameters, already checked by the
/// edge when the request came without a key (and ignored when it came with one).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedQuery {
    pub tenant: Option<String>,
    pub expires: Option<String>,
    pub signature: Option<String>,
}

impl QueryParams for SignedQuery {
    const NAMES: &'static [&'static str] = &["tenant", "expires", "signature"];
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const PATH: &str = "/datasets/d1/images/i1/thumbnail";

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    /// The path and query of a signed URL.
    fn split(url: &str) -> (&str, &str) {
        url.split_once('?').expect("a query")
    }

    fn verify(signer: &UrlSigner, url: &str, now: u64) -> Result<SignedAccess, SignatureError> {
        let (path, query) = split(url);
        signer.verify(&Method::GET, path, query, at(now))
    }

    #[test]
    fn expiry_is_the_end_of_the_next_whole_hour() {
        assert_eq!(expiry(at(7200)), 14_400, "on the hour: two hours");
        assert_eq!(expiry(at(7201)), 14_400);
        assert_eq!(expiry(at(10_799)), 14_400, "the same URL for the whole hour");
        assert_eq!(expiry(at(10_800)), 18_000, "the next hour, the next URL");
        for now in [7200, 7201, 9000, 10_799] {
            let lifetime = expiry(at(now)) - now;
            assert!(lifetime > 3600 && lifetime <= 7200, "{now}: {lifetime}");
            assert!(expiry(at(now)) - WINDOW_SECS <= now, "the window starts no later than now");
        }
    }

    #[test]
    fn a_signed_url_grants_its_tenant_until_it_expires() {
        let signer = UrlSigner::new(b"a key of thirty-two characters!!");
        let url = signer.sign(PATH, "acme", 10_800);
        let (path, query) = split(&url);
        assert_eq!(path, PATH);
        let names: Vec<&str> = query.split('&').map(|p| p.split_once('=').unwrap().0).collect();
        assert_eq!(names, ["tenant", "expires", "signature"]);
        let access = SignedAccess { tenant: "acme".into(), expires: 10_800 };
        assert_eq!(verify(&signer, &url, 7201), Ok(access.clone()));
        assert_eq!(signer.verify(&Method::HEAD, path, query, at(7201)), Ok(access), "HEAD is GET's");
        assert_eq!(verify(&signer, &url, 10_799).unwrap().tenant, "acme", "valid to its last second");
        assert_eq!(signer.sign(PATH, "acme", 10_800), url, "the same URL within an hour");
        // A tenant with characters a query must escape round-trips.
        let odd = signer.sign(PATH, "a&b=c d\n", 10_800);
        assert_eq!(verify(&signer, &odd, 7201).unwrap().tenant, "a&b=c d\n");
    }

    #[test]
    fn expired_urls_are_told_from_edited_ones() {
        let signer = UrlSigner::new(b"a key of thirty-two characters!!");
        let url = signer.sign(PATH, "acme", 10_800);
        assert_eq!(verify(&signer, &url, 10_800), Err(SignatureError::Expired(10_800)));
        assert_eq!(verify(&signer, &url, 99_999), Err(SignatureError::Expired(10_800)));
        let err = ApiError::from(SignatureError::Expired(10_800));
        assert_eq!(err.status(), 403);
        assert!(err.to_string().contains("expired"), "{err}");

        let invalid = |url: &str, now: u64| match verify(&signer, url, now) {
            Err(SignatureError::Invalid(why)) => why,
            other => panic!("{url}: {other:?}"),
        };
        // Each signed field edited, the signature kept.
        let (path, query) = split(&url);
        let other_path = format!("/datasets/d1/images/i2/thumbnail?{query}");
        let file_path = format!("/datasets/d1/images/i1/file?{query}");
        let other_tenant = format!("{path}?{}", query.replacen("tenant=acme", "tenant=globex", 1));
        let later = format!("{path}?{}", query.replacen("expires=10800", "expires=99999", 1));
        let padded = format!("{path}?{}", query.replacen("expires=10800", "expires=010800", 1));
        for edited in [&other_path, &file_path, &other_tenant, &later, &padded] {
            assert_ne!(edited, &url);
            assert!(invalid(edited, 7201).contains("does not match"), "{edited}");
        }
        // An edited expiry is invalid, not expired, even once it is in the past.
        let earlier = format!("{path}?{}", query.replacen("expires=10800", "expires=7000", 1));
        assert!(invalid(&earlier, 7201).contains("does not match"));
        // The signature edited: one character changed, cut short, not base64url, missing.
        let signature = query.rsplit_once("signature=").unwrap().1;
        let flipped = if signature.starts_with('A') { "B" } else { "A" };
        let one_char = format!("{}{flipped}{}", &url[..url.len() - signature.len()], &signature[1..]);
        assert!(invalid(&one_char, 7201).contains("does not match"));
        assert!(invalid(&url[..url.len() - 3], 7201).contains("does not match"));
        assert!(invalid(&format!("{}!!", &url[..url.len() - 2]), 7201).contains("base64url"));
        let unsigned = url.split("&signature=").next().unwrap();
        assert!(invalid(unsigned, 7201).contains("needs"));
        assert!(invalid(&format!("{url}&tenant=acme"), 7201).contains("once"));
        // Another key's URL, and methods that are never signed.
        let other_key = UrlSigner::new(b"another key of 32 characters!!!!");
        assert!(invalid(&other_key.sign(PATH, "acme", 10_800), 7201).contains("does not match"));
        let err = signer.verify(&Method::POST, path, query, at(7201)).unwrap_err();
        assert_eq!(err, SignatureError::Invalid("only GET and HEAD may be signed"));
        let err = ApiError::from(err);
        assert_eq!(err.status(), 403);
        assert!(err.to_string().starts_with("invalid URL signature"), "{err}");
    }

    #[test]
    fn signable_routes_take_the_signed_parameters_and_no_other() {
        let request = |query: &str| http::Request::get(format!("{PATH}?{query}")).body(bytes::Bytes::new()).unwrap();
        let signer = UrlSigner::new(b"k");
        let url = signer.sign(PATH, "acme", 10_800);
        let parsed: SignedQuery = crate::query::parse(&request(split(&url).1)).unwrap();
        assert_eq!(parsed.tenant.as_deref(), Some("acme"));
        let err = crate::query::parse::<SignedQuery>(&request("size=1")).unwrap_err();
        assert!(err.to_string().contains("tenant, expires, signature"), "{err}");
    }
}
