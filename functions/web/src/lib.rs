//! web: the web app and the API reference. Static files compiled into the binary by `build.rs`;
//! no database and no API key (the app asks its user for a key and sends it to the API itself,
//! on the same origin, through the gateway).
//!
//! ## Routes (GET and HEAD)
//!
//! - `/` and `/ui` → 302 to `/ui/`.
//! - `/ui/assets/{hashed name}` → an asset (`app.0123456789.js`): its name changes with its
//!   content, so it is cached for a year, `immutable`.
//! - Any other `/ui/…` → `index.html` (history routing: the app reads the path), revalidated
//!   on every use (`no-cache` with an ETag), so a deployment shows at the next load.
//! - `/docs` → `docs.html`, the API reference; `/docs/openapi.json` → the OpenAPI document it
//!   renders, as JSON.
//!
//! Every answer has an ETag (If-None-Match gets 304) and, for text, is sent gzipped as
//! compressed at build time when the client accepts it. Pages carry a strict
//! Content-Security-Policy ([`policy`]).
//!
//! ## Layout
//!
//! - [`embedded`]: the files `build.rs` compiled in (and `build/bundle.rs`, how it named them).
//! - [`policy`]: the Content-Security-Policy and the origins images may come from.

pub mod embedded;
pub mod policy;

use async_trait::async_trait;
use bytes::Bytes;
use http::{header, HeaderValue, Method, StatusCode};
use yds_config::StorageConfig;
use yds_edge::negotiation::{accepts_gzip, if_none_match};
use yds_edge::{ApiError, Caller, Handler, Request, Response};

use embedded::Embedded;

/// Where the app lives, and where its assets are served from.
pub const APP_PATH: &str = "/ui/";
pub const ASSETS_PATH: &str = "/ui/assets/";

/// Assets are named by their content: a name never changes meaning.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// Pages and the spec keep their URLs: a cache must ask (cheaply, with the ETag) every time.
const REVALIDATE: &str = "no-cache";

pub struct WebApp {
    csp: HeaderValue,
}

impl WebApp {
    /// The app for a deployment whose objects live in `storage` (which decides where images may
    /// come from). Fails on a storage endpoint that is not an `http(s)` URL.
    pub fn new(storage: &StorageConfig) -> Result<Self, String> {
        let csp = policy::content_security_policy(&policy::image_origins(storage)?);
        let csp =
            HeaderValue::from_str(&csp).map_err(|_| format!("the Content-Security-Policy `{csp}` is not a header"))?;
        Ok(Self { csp })
    }
}

/// What a path asks for.
#[derive(Debug, PartialEq, Eq)]
enum Route<'a> {
    Redirect(&'static str),
    Asset(&'a str),
    App,
    Docs,
    OpenApi,
}

impl<'a> Route<'a> {
    fn of(path: &'a str) -> Option<Self> {
        Some(match path {
            "/" | "/ui" => Route::Redirect(APP_PATH),
            "/docs" => Route::Docs,
            "/docs/openapi.json" => Route::OpenApi,
            _ => match path.strip_prefix(ASSETS_PATH) {
                Some(name) => Route::Asset(name),
                None if path.starts_with(APP_PATH) => Route::App,
                None => return None,
            },
        })
    }
}

#[async_trait]
impl Handler for WebApp {
    async fn handle(&self, req: Request, _caller: &Caller) -> Result<Response, ApiError> {
        let route = Route::of(req.uri().path()).ok_or_else(|| ApiError::NotFound("no such route".into()))?;
        if req.method() != Method::GET && req.method() != Method::HEAD {
            return Err(ApiError::MethodNotAllowed);
        }
        Ok(match route {
            Route::Redirect(to) => redirect(to),
            Route::Asset(name) => {
                let asset = embedded::asset(name).ok_or_else(|| ApiError::NotFound(format!("no asset `{name}`")))?;
                self.serve(&req, asset, IMMUTABLE)
            }
            Route::App => self.serve(&req, embedded::index_html(), REVALIDATE),
            Route::Docs => self.serve(&req, embedded::docs_html(), REVALIDATE),
            Route::OpenApi => self.serve(&req, embedded::openapi_json(), REVALIDATE),
        })
    }

    /// Nothing to check: everything it serves is in the binary.
    async fn health(&self) -> Result<(), String> {
        Ok(())
    }
}

impl WebApp {
    /// `file` as `req` can take it: 304 when its ETag is known, gzipped when accepted. A HEAD
    /// gets the same answer; the runtime sends no body for it.
    fn serve(&self, req: &Request, file: &'static Embedded, cache_control: &'static str) -> Response {
        let etag = format!("\"{}\"", file.hash);
        let mut builder = http::Response::builder()
            .header(header::CACHE_CONTROL, cache_control)
            .header(header::ETAG, &etag)
            .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
        if file.gzip.is_some() {
            builder = builder.header(header::VARY, "accept-encoding");
        }
        if file.content_type.starts_with("text/html") {
            builder = builder.header(header::CONTENT_SECURITY_POLICY, self.csp.clone());
            for (name, value) in policy::PAGE_HEADERS {
                builder = builder.header(name, value);
            }
        }
        if if_none_match(req, &etag) {
            return builder
                .status(StatusCode::NOT_MODIFIED)
                .body(Bytes::new())
                .expect("static response parts are valid");
        }
        let body = match file.gzip {
            Some(gzipped) if accepts_gzip(req) => {
                builder = builder.header(header::CONTENT_ENCODING, "gzip");
                gzipped
            }
            _ => file.raw,
        };
        builder
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, file.content_type)
            .body(Bytes::from_static(body))
            .expect("static response parts are valid")
    }
}

fn redirect(to: &'static str) -> Response {
    http::Response::builder()
        .status(StatusCode::FOUND)
        .header(header::LOCATION, to)
        .body(Bytes::new())
        .expect("static response parts are valid")
}

#[cfg(test)]
#[path = "../build/bundle.rs"]
#[allow(dead_code)]
mod bundle;

#[cfg(test)]
mod tests;
