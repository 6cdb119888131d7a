//! One function's logic behind the shared edge: the [`Handler`] type, and the [`Service`] that
//! wraps it with what every route needs — request ids, API-key auth (or a signed URL on the
//! routes a handler declares signable, [`crate::signed_urls`]), body limits, `/healthz`,
//! problem+json errors ([`crate::problem`]) and gzip — so handlers only turn a request into a
//! response and never ask which runtime they run on ([`crate::server`]).

use std::io::Write;
use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::Bytes;
use http::{header, HeaderValue, Method, StatusCode};
use serde::Serialize;
use tracing::Instrument;

use yds_config::trace::TraceContext;

use crate::access::KeyLookup;
use crate::negotiation::accepts_gzip;
use crate::signed_urls::{self, UrlSigner};
use crate::{ApiError, Dependency};

pub type Request = http::Request<Bytes>;
pub type Response = http::Response<Bytes>;

/// Who is calling, as established by the edge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The tenant owning the API key; `None` on internal routes that take no key.
    pub tenant: Option<String>,
    /// A non-secret identifier of the API key (rate limits); `None` on internal routes and
    /// for a signed URL.
    pub key_id: Option<String>,
    /// When the request came with a signed URL instead of a key: when that URL expires (Unix
    /// seconds), so that what the answer lets a client cache expires with it.
    pub url_expires: Option<u64>,
    pub request_id: String,
}

impl Caller {
    /// The tenant of an authenticated caller (public routes always have one).
    pub fn tenant(&self) -> &str {
        self.tenant.as_deref().unwrap_or("default")
    }
}

/// One function's logic: a request in, a response or an [`ApiError`] out.
#[async_trait]
pub trait Handler: Send + Sync + 'static {
    async fn handle(&self, req: Request, caller: &Caller) -> Result<Response, ApiError>;

    /// Whether a `GET` of `path` may come with a signed URL instead of an API key (an image's
    /// file or thumbnail, for `<img src>`). None by default: a signature opens only the routes
    /// a handler names here.
    fn signable(&self, path: &str) -> bool {
        let _ = path;
        false
    }

    /// The largest body a `method` request to `path` may carry, when the route takes more (or
    /// less) than the function's [`EdgeOptions::max_body_bytes`]: the uploads function takes
    /// pieces of an archive on one route and small JSON on the other. `None` by default.
    fn max_body_bytes(&self, method: &Method, path: &str) -> Option<usize> {
        let _ = (method, path);
        None
    }

    /// Whether the function can serve (checks its database connection).
    async fn health(&self) -> Result<(), String>;
}

/// How the edge treats requests before they reach the handler.
#[derive(Debug, Clone)]
pub struct EdgeOptions {
    /// `Some`: every route except `/healthz` needs a known `x-api-key`. `None`: internal
    /// function (process-chunk), protected by the platform instead.
    pub api_keys: Option<KeyLookup>,
    pub max_body_bytes: usize,
    /// `Some` (with `api_keys`): a `GET` or `HEAD` without a key may instead carry a URL this
    /// signer signed, on the routes the handler declares [`Handler::signable`]; it then acts as
    /// the URL's tenant. `None`: every public route needs a key.
    pub url_signer: Option<UrlSigner>,
}

/// The largest public request body (the contract's 64 KB).
pub const PUBLIC_MAX_BODY: usize = 64 * 1024;
/// Responses smaller than this are not worth compressing.
const GZIP_MIN_BYTES: usize = 1024;

/// A handler behind the shared edge; cheap to clone.
#[derive(Clone)]
pub struct Service {
    handler: Arc<dyn Handler>,
    options: Arc<EdgeOptions>,
}

impl Service {
    pub fn new(handler: impl Handler, options: EdgeOptions) -> Self {
        Self { handler: Arc::new(handler), options: Arc::new(options) }
    }

    pub fn max_body_bytes(&self) -> usize {
        self.options.max_body_bytes
    }

    /// The largest body a `method` request to `path` may carry: what the handler says for that
    /// route ([`Handler::max_body_bytes`]), else the function's limit.
    pub fn body_limit(&self, method: &Method, path: &str) -> usize {
        self.handler.max_body_bytes(method, path).unwrap_or(self.options.max_body_bytes)
    }

    /// Serves one request; never fails (errors become problem+json responses).
    pub async fn call(&self, req: Request) -> Response {
        let request_id = req
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty() && v.len() <= 128)
            .map(str::to_owned)
            .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
        // The caller's trace (a client's, or the one a task was enqueued under), else a new
        // one; handlers find it in the request's extensions to pass on to the tasks they enqueue.
        let headers: Vec<(&str, &str)> =
            req.headers().iter().filter_map(|(name, value)| Some((name.as_str(), value.to_str().ok()?))).collect();
        let trace = TraceContext::from_headers(headers.iter().copied()).unwrap_or_else(new_trace);
        let span = tracing::info_span!(
            "request",
            request_id = %request_id,
            trace_id = %trace.trace_id,
            span_id = %trace.span_id,
            // A handler that learns the job or dataset a request is about records them here,
            // so its "served" line names them (see `yds_import::deliver`).
            job_id = tracing::field::Empty,
            dataset_id = tracing::field::Empty,
        );
        let served = ServedFields::of(&req);
        let accepts_gzip = accepts_gzip(&req);
        let started = std::time::Instant::now();
        let mut req = req;
        req.extensions_mut().insert(trace);
        let mut response =
            self.route(req, request_id.clone()).instrument(span.clone()).await.unwrap_or_else(ApiError::into_response);
        span.in_scope(|| {
            tracing::info!(
                http_method = %served.method,
                http_url = %served.url,
                http_status = response.status().as_u16(),
                http_latency_s = started.elapsed().as_secs_f64(),
                http_user_agent = served.user_agent.as_deref(),
                http_remote_ip = served.remote_ip.as_deref(),
                "served"
            )
        });
        if let Ok(value) = HeaderValue::from_str(&request_id) {
            response.headers_mut().insert("x-request-id", value);
        }
        if accepts_gzip {
            response = gzip(response);
        }
        response
    }

    async fn route(&self, req: Request, request_id: String) -> Result<Response, ApiError> {
        if req.uri().path() == "/healthz" {
            if req.method() != Method::GET && req.method() != Method::HEAD {
                return Err(ApiError::MethodNotAllowed);
            }
            return Ok(self.healthz().await);
        }
        // While MongoDB is known to be down every route would wait for it and fail: answer at
        // once (every route but the web app's reads it, if only for the API key).
        let breaker = yds_store::breaker();
        breaker.admit().map_err(|refused| ApiError::DependencyDown {
            dependency: Dependency::MongoDb,
            retry_after_secs: refused.retry_after_secs(),
            cause: "its breaker is open".into(),
        })?;
        let outcome = self.admitted(req, request_id).await;
        let mongodb_failed = matches!(
            &outcome,
            Err(ApiError::DependencyDown { dependency: Dependency::MongoDb, .. }
                | ApiError::Unavailable(_)
                | ApiError::Internal(_))
        );
        if !mongodb_failed {
            breaker.succeeded();
        }
        outcome
    }

    /// `/healthz`: 200 `{"status":"ok"}`, or 503 naming the dependency that is down, with
    /// `Retry-After` (the handler's check is of its database, [`Handler::health`]).
    async fn healthz(&self) -> Response {
        let breaker = yds_store::breaker();
        let down = match breaker.admit() {
            Err(refused) => Some(refused.retry_after_secs()),
            Ok(()) => match self.handler.health().await {
                Ok(()) => {
                    breaker.succeeded();
                    None
                }
                Err(cause) => {
                    tracing::warn!(dependency = Dependency::MongoDb.name(), cause = %cause, "health check failed");
                    Some(breaker.retry_after().retry_after_secs())
                }
            },
        };
        let Some(retry_after_secs) = down else {
            return json_response(StatusCode::OK, &serde_json::json!({"status": "ok"}));
        };
        let body = serde_json::json!({"status": "unavailable", "dependency": Dependency::MongoDb.name()});
        let mut response = json_response(StatusCode::SERVICE_UNAVAILABLE, &body);
        response.headers_mut().insert(header::RETRY_AFTER, retry_after_secs.into());
        response
    }

    /// A request the MongoDB breaker let through: body limit, caller, handler.
    async fn admitted(&self, req: Request, request_id: String) -> Result<Response, ApiError> {
        let body_limit = self.body_limit(req.method(), req.uri().path());
        if req.body().len() > body_limit {
            return Err(ApiError::PayloadTooLarge(body_limit));
        }
        let caller = match &self.options.api_keys {
            None => Caller { tenant: None, key_id: None, url_expires: None, request_id },
            Some(_) if !req.headers().contains_key("x-api-key") && self.signed(&req) => {
                let signer = self.options.url_signer.as_ref().expect("checked by `signed`");
                let query = req.uri().query().unwrap_or("");
                let access = signer.verify(req.method(), req.uri().path(), query, SystemTime::now())?;
                Caller { tenant: Some(access.tenant), key_id: None, url_expires: Some(access.expires), request_id }
            }
            Some(keys) => {
                let key = req.headers().get("x-api-key").and_then(|v| v.to_str().ok());
                let key = key.filter(|k| !k.is_empty() && k.len() <= 256).ok_or_else(|| missing_key(&req))?;
                let owner = keys.owner(key).await?;
                let owner = owner.ok_or_else(|| {
                    ApiError::Unauthenticated(
                        "the API key in the `x-api-key` header is not a key of this service; check it (no \
                         spaces or quotes around it)"
                            .into(),
                    )
                })?;
                Caller { tenant: Some(owner.tenant), key_id: Some(owner.key_id), url_expires: None, request_id }
            }
        };
        self.handler.handle(req, &caller).await
    }

    /// Whether `req` is to be judged by its signature: a `GET` or `HEAD` carrying one, to a route
    /// its handler declares signable, on an edge that has a signer. Anything else without a key
    /// is a 401, signature or not.
    fn signed(&self, req: &Request) -> bool {
        let carries_signature = || {
            let query = req.uri().query().unwrap_or("");
            query.split('&').any(|pair| pair.split('=').next() == Some(signed_urls::SIGNATURE))
        };
        self.options.url_signer.is_some()
            && (req.method() == Method::GET || req.method() == Method::HEAD)
            && carries_signature()
            && self.handler.signable(req.uri().path())
    }
}

/// The 401 of a request without a usable `x-api-key`, saying where the key goes; and, when the
/// request carried an `Authorization` header instead (a bearer token, as many APIs take), that
/// this one is not read.
fn missing_key(req: &Request) -> ApiError {
    let present = req.headers().get("x-api-key").is_some();
    let detail = if req.headers().contains_key(header::AUTHORIZATION) && !present {
        "this request sent an `Authorization` header, which this API does not read: send the API key in \
         the `x-api-key` header instead (`x-api-key: YOUR_KEY`)"
    } else if present {
        "the `x-api-key` header is empty or not a valid key: send the API key in it (`x-api-key: YOUR_KEY`)"
    } else {
        "this request has no `x-api-key` header: send the API key in it (`x-api-key: YOUR_KEY`)"
    };
    ApiError::Unauthenticated(detail.into())
}

fn gzip(response: Response) -> Response {
    if response.body().len() < GZIP_MIN_BYTES || response.headers().contains_key(header::CONTENT_ENCODING) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let mut encoder = flate2::write::GzEncoder::new(Vec::with_capacity(body.len() / 4), flate2::Compression::fast());
    if encoder.write_all(&body).is_err() {
        return http::Response::from_parts(parts, body);
    }
    match encoder.finish() {
        Ok(compressed) => {
            parts.headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            parts.headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
            parts.headers.remove(header::CONTENT_LENGTH);
            http::Response::from_parts(parts, Bytes::from(compressed))
        }
        Err(_) => http::Response::from_parts(parts, body),
    }
}

/// A JSON response with `status`.
pub fn json_response(status: StatusCode, value: &impl Serialize) -> Response {
    let body = serde_json::to_vec(value).expect("API views serialize");
    http::Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Bytes::from(body))
        .expect("static response parts are valid")
}

/// The peer of a request's connection, which the hyper runtime records in its extensions.
#[derive(Debug, Clone, Copy)]
pub struct RemoteAddr(pub std::net::SocketAddr);

/// A fresh trace for a request that came without one.
fn new_trace() -> TraceContext {
    let span = uuid::Uuid::new_v4().simple().to_string();
    TraceContext { trace_id: uuid::Uuid::new_v4().simple().to_string(), span_id: span[..16].to_owned(), sampled: false }
}

/// What a request's "served" line says about it (Cloud Logging's `httpRequest`).
struct ServedFields {
    method: Method,
    /// Path and query.
    url: String,
    user_agent: Option<String>,
    /// The client: the first `X-Forwarded-For` entry (Cloud Run's front end), else the peer.
    remote_ip: Option<String>,
}

impl ServedFields {
    fn of(req: &Request) -> Self {
        let header = |name| req.headers().get(name).and_then(|v| v.to_str().ok());
        let forwarded = header("x-forwarded-for").and_then(|v| v.split(',').next()).map(|v| v.trim().to_owned());
        Self {
            method: req.method().clone(),
            url: req.uri().path_and_query().map_or_else(|| req.uri().path().to_owned(), |pq| pq.as_str().to_owned()),
            user_agent: header("user-agent").map(str::to_owned),
            remote_ip: forwarded
                .filter(|v| !v.is_empty())
                .or_else(|| req.extensions().get::<RemoteAddr>().map(|a| a.0.ip().to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Echo;

    #[async_trait]
    impl Handler for Echo {
        async fn handle(&self, req: Request, caller: &Caller) -> Result<Response, ApiError> {
            let big = "x".repeat(if req.uri().path() == "/big" { 4096 } else { 1 });
            let body = serde_json::json!({"tenant": caller.tenant, "big": big, "url_expires": caller.url_expires});
            Ok(json_response(StatusCode::OK, &body))
        }
        fn signable(&self, path: &str) -> bool {
            path.ends_with("/thumbnail")
        }
        fn max_body_bytes(&self, method: &Method, path: &str) -> Option<usize> {
            (method == Method::PUT && path == "/pieces").then_some(64)
        }
        async fn health(&self) -> Result<(), String> {
            Err("db down".into())
        }
    }

    fn service() -> Service {
        Service::new(
            Echo,
            EdgeOptions {
                api_keys: Some(yds_config::ConfiguredKeys::parse("k1:acme").unwrap().into()),
                max_body_bytes: 16,
                url_signer: Some(signer()),
            },
        )
    }

    fn signer() -> UrlSigner {
        UrlSigner::new(b"a key of thirty-two characters!!")
    }

    fn request(path: &str, key: Option<&str>, body: &'static str) -> Request {
        let mut builder = http::Request::builder().uri(path).header("accept-encoding", "br, gzip;q=0.5");
        if let Some(key) = key {
            builder = builder.header("x-api-key", key);
        }
        builder.body(Bytes::from_static(body.as_bytes())).unwrap()
    }

    #[tokio::test]
    async fn keys_map_to_tenants_and_unknown_keys_get_401() {
        let svc = service();
        let resp = svc.call(request("/x", Some("k1"), "")).await;
        assert_eq!(resp.status(), 200);
        let body: serde_json::Value = serde_json::from_slice(resp.body()).unwrap();
        assert_eq!(body["tenant"], "acme");
        assert!(resp.headers().contains_key("x-request-id"));
        assert_eq!(svc.call(request("/x", Some("nope"), "")).await.status(), 401);
        assert_eq!(svc.call(request("/x", None, "")).await.status(), 401);
    }

    /// What a signed request got: status, and the body's `tenant` (200) or `detail` (problem).
    async fn call_signed(svc: &Service, method: Method, url: &str, key: Option<&str>) -> (u16, String) {
        let mut builder = http::Request::builder().method(method).uri(url);
        if let Some(key) = key {
            builder = builder.header("x-api-key", key);
        }
        let resp = svc.call(builder.body(Bytes::new()).unwrap()).await;
        let body: serde_json::Value = serde_json::from_slice(resp.body()).unwrap();
        let text = body.get("detail").or(body.get("tenant")).and_then(|v| v.as_str()).unwrap_or_default();
        if resp.status() != 200 {
            assert_eq!(resp.headers()[header::CONTENT_TYPE], "application/problem+json");
        }
        (resp.status().as_u16(), text.to_owned())
    }

    #[tokio::test]
    async fn signed_urls_stand_in_for_a_key_on_signable_routes_only() {
        let svc = service();
        let expires = signed_urls::expiry(SystemTime::now());
        let url = signer().sign("/d/i/thumbnail", "globex", expires);
        assert_eq!(call_signed(&svc, Method::GET, &url, None).await, (200, "globex".into()), "the URL's tenant");
        let resp = svc.call(http::Request::get(&url).body(Bytes::new()).unwrap()).await;
        let body: serde_json::Value = serde_json::from_slice(resp.body()).unwrap();
        assert_eq!(body["url_expires"], expires, "the handler learns when the URL expires");
        assert_eq!(call_signed(&svc, Method::HEAD, &url, None).await.0, 200);

        // Refused with 403 saying why: edited, or expired.
        let edited = url.replacen("tenant=globex", "tenant=acme", 1);
        let (code, detail) = call_signed(&svc, Method::GET, &edited, None).await;
        assert_eq!(code, 403);
        assert!(detail.starts_with("invalid URL signature"), "{detail}");
        let past = signed_urls::unix_seconds(SystemTime::now()) - 1;
        let expired = signer().sign("/d/i/thumbnail", "globex", past);
        let (code, detail) = call_signed(&svc, Method::GET, &expired, None).await;
        assert_eq!(code, 403);
        assert!(detail.contains("expired"), "{detail}");

        // A signature opens no other route and no other method: those still need a key.
        let elsewhere = signer().sign("/d/i", "globex", expires);
        assert_eq!(call_signed(&svc, Method::GET, &elsewhere, None).await.0, 401);
        assert_eq!(call_signed(&svc, Method::POST, &url, None).await.0, 401);
        // A key decides when there is one, whatever the query says.
        assert_eq!(call_signed(&svc, Method::GET, &edited, Some("k1")).await, (200, "acme".into()));
        assert_eq!(call_signed(&svc, Method::GET, &url, Some("nope")).await.0, 401);
        // An edge without a signer takes no signature.
        let keys_only = Service::new(
            Echo,
            EdgeOptions {
                api_keys: Some(yds_config::ConfiguredKeys::parse("k1:acme").unwrap().into()),
                max_body_bytes: 16,
                url_signer: None,
            },
        );
        assert_eq!(call_signed(&keys_only, Method::GET, &url, None).await.0, 401);
    }

    /// What a 401 says: where the key goes, and that `Authorization` is not read when it was
    /// sent instead.
    #[tokio::test]
    async fn a_401_says_where_the_key_goes() {
        let svc = service();
        let detail = |resp: Response| {
            assert_eq!(resp.status(), 401);
            assert_eq!(resp.headers()[header::CONTENT_TYPE], "application/problem+json");
            let body: serde_json::Value = serde_json::from_slice(resp.body()).unwrap();
            body["detail"].as_str().unwrap().to_owned()
        };
        let none = detail(svc.call(request("/x", None, "")).await);
        assert_eq!(none, "this request has no `x-api-key` header: send the API key in it (`x-api-key: YOUR_KEY`)");
        let bearer = http::Request::get("/x").header("authorization", "Bearer k1").body(Bytes::new()).unwrap();
        let bearer = detail(svc.call(bearer).await);
        assert!(bearer.starts_with("this request sent an `Authorization` header, which this API does not read"));
        assert!(bearer.contains("send the API key in the `x-api-key` header instead"), "{bearer}");
        let unknown = detail(svc.call(request("/x", Some("nope"), "")).await);
        assert!(unknown.starts_with("the API key in the `x-api-key` header is not a key of this service"));
        let empty = detail(svc.call(request("/x", Some(""), "")).await);
        assert!(empty.starts_with("the `x-api-key` header is empty"), "{empty}");
        // A key and an Authorization header: the key decides.
        let both = http::Request::get("/x").header("authorization", "Bearer z").header("x-api-key", "k1");
        assert_eq!(svc.call(both.body(Bytes::new()).unwrap()).await.status(), 200);
    }

    #[tokio::test]
    async fn oversized_bodies_get_413_and_health_reports_503() {
        let svc = service();
        let resp = svc.call(request("/x", Some("k1"), "0123456789abcdefXYZ")).await;
        assert_eq!(resp.status(), 413);
        let health = svc.call(request("/healthz", None, "")).await;
        assert_eq!(health.status(), 503);
        assert_eq!(health.headers()[header::RETRY_AFTER], "1");
        let body: serde_json::Value = serde_json::from_slice(health.body()).unwrap();
        assert_eq!(body, serde_json::json!({"status": "unavailable", "dependency": "mongodb"}));
    }

    #[tokio::test]
    async fn a_route_may_take_larger_bodies_than_the_rest_of_its_function() {
        let svc = service();
        let piece = |method: Method, len: usize| {
            http::Request::builder()
                .method(method)
                .uri("/pieces")
                .header("x-api-key", "k1")
                .body(Bytes::from(vec![b'x'; len]))
                .unwrap()
        };
        assert_eq!(svc.body_limit(&Method::PUT, "/pieces"), 64);
        assert_eq!(svc.body_limit(&Method::POST, "/pieces"), 16, "the function's limit elsewhere");
        assert_eq!(svc.call(piece(Method::PUT, 64)).await.status(), 200);
        assert_eq!(svc.call(piece(Method::PUT, 65)).await.status(), 413);
        assert_eq!(svc.call(piece(Method::POST, 40)).await.status(), 413, "only the route named takes more");
    }

    #[tokio::test]
    async fn large_responses_are_gzipped_when_accepted() {
        let resp = service().call(request("/big", Some("k1"), "")).await;
        assert_eq!(resp.headers()[header::CONTENT_ENCODING], "gzip");
        let mut decoded = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&resp.body()[..]), &mut decoded).unwrap();
        assert!(decoded.contains(&"x".repeat(4096)));
        let small = service().call(request("/x", Some("k1"), "")).await;
        assert!(!small.headers().contains_key(header::CONTENT_ENCODING));
    }
}
