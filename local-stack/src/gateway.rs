//! The local stand-in for API Gateway: one HTTP port serving the public API, routing each
//! request by method and path to the function process that handles it (the same routes as the
//! API Gateway spec in `terraform/`), and answering unknown paths, wrong methods and dead
//! upstreams with `application/problem+json` the way the deployed service does.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::util;

/// Largest request body the gateway forwards; bigger ones get 413.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Largest piece of an upload (`PUT /uploads/{upload_id}`), as the uploads function takes it:
/// the one route whose bodies may be larger than [`MAX_BODY_BYTES`].
pub const UPLOAD_PIECE_MAX_BYTES: usize = 16 << 20;

/// The largest body the gateway forwards on a route.
pub fn body_limit(method: &Method, pattern: &str) -> usize {
    if method == Method::PUT && pattern == "/uploads/{upload_id}" {
        UPLOAD_PIECE_MAX_BYTES
    } else {
        MAX_BODY_BYTES
    }
}
/// How long an upstream may take to start answering before the gateway gives 504
/// (API Gateway's integration timeout is 29 s).
pub const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the gateway's `/healthz` waits for each upstream's `/healthz`.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(3);
/// How long in-flight requests may run on after shutdown is asked for.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

type Body = BoxBody<Bytes, hyper::Error>;

/// One public route: requests with this method whose path matches `pattern` go to `upstream`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub method: Method,
    /// Path pattern, e.g. `/datasets/{id}/images`: literal segments match themselves, `{x}`
    /// matches exactly one non-empty segment, and a last segment `{x=**}` matches all the rest of
    /// the path, one or more segments, empty ones too (`/ui/{path=**}` takes `/ui/` and
    /// `/ui/a/b`, not `/ui`), as API Gateway's double wildcard does.
    pub pattern: &'static str,
    /// Base URL of the function process, e.g. `http://127.0.0.1:8123`.
    pub upstream: String,
}

/// The public routes of the API Gateway spec, by function name:
/// `POST /datasets/import` → `import-trigger`, `GET /datasets` and `GET /datasets/{id}` → `list`,
/// `POST /uploads` and `PUT /uploads/{upload_id}` → `uploads`,
/// `PATCH` and `DELETE /datasets/{id}` → `lifecycle`,
/// `GET /datasets/{id}/images`, `…/images/{image_id}`, `…/images/{image_id}/file` and
/// `…/images/{image_id}/thumbnail` → `images`,
/// `GET /datasets/import` and `GET /datasets/import/{job_id}/status` → `status`, and the web
/// app — `GET /`, `/ui`, `/ui/{path=**}`, `/docs` and `/docs/openapi.json` → `web`.
/// `upstreams` maps those names to base URLs; a route whose function is missing from the map
/// is left out (and logged).
pub fn public_routes(upstreams: &HashMap<String, String>) -> Vec<Route> {
    route_table()
        .into_iter()
        .filter_map(|(method, pattern, function)| match upstreams.get(function) {
            Some(url) => Some(Route { method, pattern, upstream: url.trim_end_matches('/').to_string() }),
            None => {
                tracing::warn!(function, %method, pattern, "no upstream for function; route left out");
                None
            }
        })
        .collect()
}

/// `(method, path pattern, function)` of every public route: what [`public_routes`] serves, and
/// what the deployment tests compare with the API Gateway spec.
pub fn route_table() -> Vec<(Method, &'static str, &'static str)> {
    vec![
        (Method::POST, "/datasets/import", "import-trigger"),
        (Method::POST, "/uploads", "uploads"),
        (Method::PUT, "/uploads/{upload_id}", "uploads"),
        (Method::GET, "/datasets", "list"),
        (Method::GET, "/datasets/{id}", "list"),
        (Method::PATCH, "/datasets/{id}", "lifecycle"),
        (Method::DELETE, "/datasets/{id}", "lifecycle"),
        (Method::GET, "/datasets/{id}/images", "images"),
        (Method::GET, "/datasets/{id}/images/{image_id}", "images"),
        (Method::GET, "/datasets/{id}/images/{image_id}/file", "images"),
        (Method::GET, "/datasets/{id}/images/{image_id}/label", "images"),
        (Method::GET, "/datasets/{id}/images/{image_id}/thumbnail", "images"),
        (Method::GET, "/datasets/import", "status"),
        (Method::GET, "/datasets/import/{job_id}/status", "status"),
        (Method::GET, "/", "web"),
        (Method::GET, "/ui", "web"),
        (Method::GET, "/ui/{path=**}", "web"),
        (Method::GET, "/docs", "web"),
        (Method::GET, "/docs/openapi.json", "web"),
    ]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Segment {
    Literal(&'static str),
    /// `{x}`: one non-empty segment.
    Param,
    /// `{x=**}`, last: every remaining segment, at least one, empty ones too.
    Rest,
}

struct CompiledRoute {
    method: Method,
    pattern: &'static str,
    segments: Vec<Segment>,
    upstream: String,
    /// The largest body forwarded ([`body_limit`]).
    max_body: usize,
}

impl CompiledRoute {
    fn new(route: Route) -> anyhow::Result<Self> {
        let Some(rest) = route.pattern.strip_prefix('/') else {
            bail!("route pattern {:?} does not start with '/'", route.pattern);
        };
        let segments: Vec<Segment> = rest
            .split('/')
            .map(|s| {
                if s.starts_with('{') && s.ends_with("=**}") && s.len() > 5 {
                    Segment::Rest
                } else if s.starts_with('{') && s.ends_with('}') && s.len() > 2 {
                    Segment::Param
                } else {
                    Segment::Literal(s)
                }
            })
            .collect();
        if segments.iter().rev().skip(1).any(|s| *s == Segment::Rest) {
            bail!("route pattern {:?}: a `{{x=**}}` wildcard must be the last segment", route.pattern);
        }
        let upstream = route.upstream.trim_end_matches('/').to_string();
        let uri: Uri = upstream.parse().with_context(|| format!("upstream URL {upstream:?} of {}", route.pattern))?;
        if uri.scheme_str() != Some("http") || uri.authority().is_none() {
            bail!("upstream URL {upstream:?} of {} must be http://host:port", route.pattern);
        }
        if uri.path() != "/" && !uri.path().is_empty() {
            bail!("upstream URL {upstream:?} of {} must not have a path", route.pattern);
        }
        let max_body = body_limit(&route.method, route.pattern);
        Ok(CompiledRoute { method: route.method, pattern: route.pattern, segments, upstream, max_body })
    }

    fn matches(&self, path: &[&str]) -> bool {
        let rest = self.segments.last() == Some(&Segment::Rest);
        let length_fits = if rest { path.len() >= self.segments.len() } else { path.len() == self.segments.len() };
        length_fits
            && self.segments.iter().zip(path).all(|(seg, got)| match seg {
                Segment::Literal(lit) => lit == got,
                Segment::Param => !got.is_empty(),
                Segment::Rest => true,
            })
    }

    fn literal_count(&self) -> usize {
        self.segments.iter().filter(|s| matches!(s, Segment::Literal(_))).count()
    }
}

struct Gateway {
    routes: Vec<CompiledRoute>,
    client: Client<HttpConnector, Full<Bytes>>,
}

/// Serves the routes on `listener` until `shutdown` resolves, then stops accepting, lets
/// in-flight requests finish (at most 5 s) and returns.
///
/// Requests are matched by method and path segments (the query string is passed through) and
/// proxied with their headers (minus hop-by-hop ones) and body (up to 1 MiB, an upload's piece up
/// to 16 MiB, else 413); the
/// answer is streamed back. Unknown path → 404, known path with another method → 405 with
/// `Allow`, upstream unreachable → 502, upstream too slow → 504, all `application/problem+json`.
/// `GET /healthz` answers 200 `{"status":"ok"}` when every distinct upstream's `/healthz`
/// answers 200, else 503 naming the failing ones (and, when the functions name a dependency
/// that is down, `{"status":"unavailable","dependency":...}` with their `Retry-After`, as each
/// function's own `/healthz` answers). Every request gets an `x-request-id`
/// (the client's, or a generated one), forwarded upstream and returned to the client.
pub async fn serve(
    listener: TcpListener,
    routes: Vec<Route>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let routes = routes.into_iter().map(CompiledRoute::new).collect::<anyhow::Result<Vec<_>>>()?;
    let client = Client::builder(TokioExecutor::new()).pool_idle_timeout(Duration::from_secs(30)).build_http();
    let gateway = Arc::new(Gateway { routes, client });
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut connections = JoinSet::new();
    let shutdown = std::pin::pin!(shutdown);
    let mut shutdown = shutdown;
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "gateway listening");
    }
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    let gateway = gateway.clone();
                    let stop = stop_rx.clone();
                    connections.spawn(serve_connection(gateway, stream, peer, stop));
                }
                Err(e) => {
                    // Typically EMFILE: back off instead of spinning.
                    tracing::warn!(error = %e, "gateway accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, async { while connections.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        tracing::warn!("gateway: connections still busy {DRAIN_TIMEOUT:?} after shutdown; closing them");
        connections.shutdown().await;
    }
    tracing::info!("gateway stopped");
    Ok(())
}

async fn serve_connection(
    gateway: Arc<Gateway>,
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let service = service_fn(move |req| {
        let gateway = gateway.clone();
        async move { Ok::<_, Infallible>(gateway.handle(req, peer).await) }
    });
    let conn = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service);
    let mut conn = std::pin::pin!(conn);
    let stopped = async move {
        let _ = stop.wait_for(|stop| *stop).await;
    };
    tokio::select! {
        res = conn.as_mut() => {
            if let Err(e) = res {
                tracing::debug!(error = %e, %peer, "gateway connection ended with an error");
            }
        }
        () = stopped => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

impl Gateway {
    async fn handle(&self, req: Request<Incoming>, peer: SocketAddr) -> Response<Body> {
        let started = Instant::now();
        let request_id =
            req.headers().get(&REQUEST_ID).filter(|v| valid_request_id(v)).cloned().unwrap_or_else(new_request_id);
        let method = req.method().clone();
        let path = req.uri().path().to_string();

        let mut resp = self.dispatch(req, peer, &request_id).await;

        if !resp.headers().contains_key(&REQUEST_ID) {
            resp.headers_mut().insert(REQUEST_ID, request_id.clone());
        }
        tracing::info!(
            request_id = request_id.to_str().unwrap_or(""),
            %method,
            path,
            status = resp.status().as_u16(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "gateway request"
        );
        resp
    }

    async fn dispatch(&self, req: Request<Incoming>, peer: SocketAddr, request_id: &HeaderValue) -> Response<Body> {
        let path = req.uri().path();
        if path == "/healthz" {
            if req.method() != Method::GET {
                return method_not_allowed(req.method(), path, &[Method::GET]);
            }
            return self.health().await;
        }
        let segments: Vec<&str> = match path.strip_prefix('/') {
            Some(rest) => rest.split('/').collect(),
            None => Vec::new(), // e.g. `*` (OPTIONS *): matches nothing
        };
        let matching = || self.routes.iter().filter(|r| r.matches(&segments));
        let Some(most_literal) = matching().map(CompiledRoute::literal_count).max() else {
            return problem(StatusCode::NOT_FOUND, format!("no route for {} {path}", req.method()));
        };
        // As OpenAPI matches paths: a concrete path wins over a templated one, whatever the
        // method (`GET /datasets/import` is the import path without GET, not a dataset `import`).
        let candidates: Vec<&CompiledRoute> = matching().filter(|r| r.literal_count() == most_literal).collect();
        // A HEAD goes where its GET goes: the function answers it as the GET it mirrors (the
        // images function's files and label files), or refuses it itself.
        let head_as_get = |r: &&&CompiledRoute| req.method() == Method::HEAD && r.method == Method::GET;
        let chosen =
            candidates.iter().find(|r| r.method == req.method()).or_else(|| candidates.iter().find(head_as_get));
        match chosen {
            Some(route) => self.proxy(route, req, peer, request_id).await,
            None => {
                let mut allowed: Vec<Method> = candidates.iter().map(|r| r.method.clone()).collect();
                allowed.sort_by(|a, b| a.as_str().cmp(b.as_str()));
                allowed.dedup();
                method_not_allowed(req.method(), path, &allowed)
            }
        }
    }

    async fn proxy(
        &self,
        route: &CompiledRoute,
        req: Request<Incoming>,
        peer: SocketAddr,
        request_id: &HeaderValue,
    ) -> Response<Body> {
        let label = format!("{} {}", route.method, route.pattern);
        let (parts, body) = req.into_parts();
        let declared_len =
            parts.headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
        if declared_len.is_some_and(|n| n > route.max_body as u64) {
            return too_large(route.max_body);
        }
        let body = match Limited::new(body, route.max_body).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => return too_large(route.max_body),
            Err(e) => {
                tracing::debug!(error = %e, "could not read request body");
                return problem(StatusCode::BAD_REQUEST, "the request body could not be read");
            }
        };

        let path_and_query = parts.uri.path_and_query().map(|pq| pq.as_str()).unwrap_or("/");
        let uri: Uri = match format!("{}{path_and_query}", route.upstream).parse() {
            Ok(uri) => uri,
            Err(_) => return problem(StatusCode::BAD_REQUEST, "the request target is invalid"),
        };

        let mut headers = parts.headers;
        let original_host = headers.get(header::HOST).cloned();
        strip_hop_by_hop(&mut headers);
        headers.remove(header::HOST);
        headers.remove(header::CONTENT_LENGTH);
        headers.insert(REQUEST_ID, request_id.clone());
        append_forwarded_for(&mut headers, peer);
        if !headers.contains_key("x-forwarded-proto") {
            headers.insert("x-forwarded-proto", HeaderValue::from_static("http"));
        }
        if let Some(host) = original_host {
            if !headers.contains_key("x-forwarded-host") {
                headers.insert("x-forwarded-host", host);
            }
        }

        let mut upstream_req = Request::new(Full::new(body));
        *upstream_req.method_mut() = parts.method;
        *upstream_req.uri_mut() = uri;
        *upstream_req.headers_mut() = headers;

        match tokio::time::timeout(UPSTREAM_TIMEOUT, self.client.request(upstream_req)).await {
            Err(_) => {
                tracing::warn!(route = %label, upstream = %route.upstream, "upstream did not answer within {UPSTREAM_TIMEOUT:?}");
                problem(StatusCode::GATEWAY_TIMEOUT, format!("the function serving {label} did not answer in time"))
            }
            Ok(Err(e)) => {
                tracing::warn!(route = %label, upstream = %route.upstream, error = %e, "upstream unreachable");
                problem(StatusCode::BAD_GATEWAY, format!("the function serving {label} is unavailable"))
            }
            Ok(Ok(resp)) => {
                let (mut parts, body) = resp.into_parts();
                strip_hop_by_hop(&mut parts.headers);
                Response::from_parts(parts, body.boxed())
            }
        }
    }

    async fn health(&self) -> Response<Body> {
        let mut upstreams: Vec<(&str, Vec<String>)> = Vec::new();
        for route in &self.routes {
            let label = format!("{} {}", route.method, route.pattern);
            match upstreams.iter_mut().find(|(u, _)| *u == route.upstream) {
                Some((_, labels)) => labels.push(label),
                None => upstreams.push((&route.upstream, vec![label])),
            }
        }
        let mut checks = JoinSet::new();
        for (index, (upstream, _)) in upstreams.iter().enumerate() {
            let upstream = upstream.to_string();
            checks.spawn(async move {
                let result = util::http_get(&upstream, "/healthz", HEALTH_TIMEOUT).await;
                (index, result)
            });
        }
        let mut failing = Vec::new();
        // What the functions say is down (`{"dependency": "mongodb"}`), and the longest they
        // ask to wait.
        let mut dependency: Option<String> = None;
        let mut retry_after: Option<u64> = None;
        while let Some(joined) = checks.join_next().await {
            let Ok((index, result)) = joined else {
                continue;
            };
            let reason = match result {
                Ok(answer) if answer.status == StatusCode::OK => continue,
                Ok(answer) => {
                    let named = answer.body.as_ref().and_then(|b| b["dependency"].as_str()).map(str::to_owned);
                    dependency = dependency.or(named);
                    retry_after = retry_after.max(answer.retry_after);
                    format!("/healthz answered {}", answer.status.as_u16())
                }
                Err(e) => e,
            };
            failing.push((index, reason));
        }
        if failing.is_empty() {
            return json_response(StatusCode::OK, "application/json", &serde_json::json!({"status": "ok"}));
        }
        failing.sort();
        let unhealthy: Vec<serde_json::Value> = failing
            .iter()
            .map(|(index, reason)| {
                let (upstream, routes) = &upstreams[*index];
                serde_json::json!({"upstream": upstream, "routes": routes, "error": reason})
            })
            .collect();
        let detail = failing
            .iter()
            .map(|(index, reason)| {
                let (upstream, routes) = &upstreams[*index];
                format!("{} ({upstream}): {reason}", routes.join(", "))
            })
            .collect::<Vec<_>>()
            .join("; ");
        // A dependency down answers as each function does (`{"status":"unavailable",
        // "dependency":...}`); anything else as a problem naming the failing upstreams.
        let (content_type, mut body) = match dependency {
            Some(dependency) => (
                "application/json",
                serde_json::json!({"status": "unavailable", "dependency": dependency, "detail": format!("unhealthy: {detail}")}),
            ),
            None => (
                "application/problem+json",
                problem_json(StatusCode::SERVICE_UNAVAILABLE, format!("unhealthy: {detail}")),
            ),
        };
        body["unhealthy"] = serde_json::Value::Array(unhealthy);
        let mut response = json_response(StatusCode::SERVICE_UNAVAILABLE, content_type, &body);
        if let Some(secs) = retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, secs.into());
        }
        response
    }
}

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1), plus any the
/// `Connection` header names.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in [
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    ] {
        headers.remove(name);
    }
}

fn append_forwarded_for(headers: &mut HeaderMap, peer: SocketAddr) {
    let ip = peer.ip().to_string();
    let value = match headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
        Some(existing) if !existing.trim().is_empty() => format!("{existing}, {ip}"),
        _ => ip,
    };
    if let Ok(value) = HeaderValue::from_str(&value) {
        headers.insert("x-forwarded-for", value);
    }
}

fn valid_request_id(v: &HeaderValue) -> bool {
    let bytes = v.as_bytes();
    (1..=128).contains(&bytes.len()) && bytes.iter().all(|b| b.is_ascii_graphic())
}

/// 16 hex characters: 40 bits of milliseconds since the epoch, 24 bits of a counter.
fn new_request_id() -> HeaderValue {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let millis = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let id = format!("{:010x}{:06x}", millis & 0xff_ffff_ffff, n & 0xff_ffff);
    HeaderValue::from_str(&id).expect("hex is a valid header value")
}

fn problem_json(status: StatusCode, detail: impl Into<String>) -> serde_json::Value {
    serde_json::json!({
        "type": "about:blank",
        "title": status.canonical_reason().unwrap_or("Error"),
        "status": status.as_u16(),
        "detail": detail.into(),
    })
}

fn problem(status: StatusCode, detail: impl Into<String>) -> Response<Body> {
    json_response(status, "application/problem+json", &problem_json(status, detail))
}

fn too_large(limit: usize) -> Response<Body> {
    problem(StatusCode::PAYLOAD_TOO_LARGE, format!("the request body exceeds {limit} bytes"))
}

fn method_not_allowed(method: &Method, path: &str, allowed: &[Method]) -> Response<Body> {
    let allow = allowed.iter().map(Method::as_str).collect::<Vec<_>>().join(", ");
    let mut resp =
        problem(StatusCode::METHOD_NOT_ALLOWED, format!("method {method} is not allowed for {path}; allowed: {allow}"));
    if let Ok(value) = HeaderValue::from_str(&allow) {
        resp.headers_mut().insert(header::ALLOW, value);
    }
    resp
}

fn json_response(status: StatusCode, content_type: &'static str, body: &serde_json::Value) -> Response<Body> {
    let bytes = Bytes::from(serde_json::to_vec(body).expect("JSON values serialize"));
    let mut resp = Response::new(Full::new(bytes).map_err(|never| match never {}).boxed());
    *resp.status_mut() = status;
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(method: Method, pattern: &'static str) -> CompiledRoute {
        CompiledRoute::new(Route { method, pattern, upstream: "http://127.0.0.1:1".into() }).unwrap()
    }

    fn segs(path: &str) -> Vec<&str> {
        path.strip_prefix('/').unwrap().split('/').collect()
    }

    #[test]
    fn patterns_match_whole_segments() {
        let import = route(Method::POST, "/datasets/import");
        let list = route(Method::GET, "/datasets");
        let dataset = route(Method::GET, "/datasets/{id}");
        let images = route(Method::GET, "/datasets/{id}/images");
        let status = route(Method::GET, "/datasets/import/{job_id}/status");

        assert!(import.matches(&segs("/datasets/import")));
        assert!(!images.matches(&segs("/datasets/import")));
        assert!(list.matches(&segs("/datasets")));
        assert!(!list.matches(&segs("/datasets/")));
        assert!(dataset.matches(&segs("/datasets/abc")));
        assert!(!dataset.matches(&segs("/datasets/abc/images")));
        assert!(images.matches(&segs("/datasets/abc/images")));
        assert!(!images.matches(&segs("/datasets//images")));
        assert!(!images.matches(&segs("/datasets/import/j1/status")));
        assert!(status.matches(&segs("/datasets/import/j1/status")));
        assert!(!status.matches(&segs("/datasets/abc/j1/status")));
        assert!(!status.matches(&segs("/datasets/import/j1/status/x")));
    }

    #[test]
    fn a_trailing_double_wildcard_takes_the_rest_of_the_path() {
        let root = route(Method::GET, "/");
        let ui = route(Method::GET, "/ui");
        let app = route(Method::GET, "/ui/{path=**}");
        let docs = route(Method::GET, "/docs");

        assert!(root.matches(&segs("/")));
        assert!(!root.matches(&segs("/ui")));
        assert!(ui.matches(&segs("/ui")));
        assert!(!ui.matches(&segs("/ui/")));
        assert!(!app.matches(&segs("/ui")), "as API Gateway: `/ui/{{path=**}}` needs the slash");
        for deep in ["/ui/", "/ui/datasets", "/ui/datasets/abc/images/xyz", "/ui/assets/app.0123456789.js", "/ui//x/"] {
            assert!(app.matches(&segs(deep)), "{deep}");
        }
        assert!(!app.matches(&segs("/uix/a")));
        assert!(!app.matches(&segs("/docs")));
        assert!(docs.matches(&segs("/docs")) && !docs.matches(&segs("/docs/x")));
        assert_eq!(app.literal_count(), 1);

        let misplaced = CompiledRoute::new(Route {
            method: Method::GET,
            pattern: "/ui/{path=**}/x",
            upstream: "http://127.0.0.1:1".into(),
        });
        assert!(misplaced.is_err(), "a wildcard that is not last is refused");
    }

    /// A gateway in front of one function named `function`, played by `answer` (what it answers
    /// for the request it got); its base URL, and the sender that stops it with the handle.
    async fn gateway_in_front_of<F, Fut>(
        function: &str,
        answer: F,
    ) -> (String, tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<anyhow::Result<()>>)
    where
        F: Fn(Request<Incoming>) -> Fut + Copy + Send + Sync + 'static,
        Fut: std::future::Future<Output = String> + Send + 'static,
    {
        let upstream = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let upstream_url = format!("http://{}", upstream.local_addr().unwrap());
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = upstream.accept().await else { return };
                tokio::spawn(async move {
                    let function = service_fn(move |req: Request<Incoming>| async move {
                        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(answer(req).await))))
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), function)
                        .await;
                });
            }
        });
        let upstreams: HashMap<String, String> = [(function.to_owned(), upstream_url)].into_iter().collect();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let gateway = tokio::spawn(serve(listener, public_routes(&upstreams), async move {
            let _ = stopped.await;
        }));
        (base, stop, gateway)
    }

    #[tokio::test]
    async fn the_gateway_sends_every_depth_below_ui_to_the_web_function() {
        // The "web function": echoes the path it was asked for.
        let echo = |req: Request<Incoming>| async move {
            req.uri().path_and_query().map(|p| p.to_string()).unwrap_or_default()
        };
        let (base, stop, gateway) = gateway_in_front_of("web", echo).await;
        let client = reqwest::Client::new();
        for path in ["/", "/ui", "/ui/", "/ui/datasets/abc/images/xyz?valid=false", "/docs", "/docs/openapi.json"] {
            let response = client.get(format!("{base}{path}")).send().await.unwrap();
            assert_eq!(response.status(), 200, "{path}");
            assert_eq!(response.text().await.unwrap(), path, "{path} reaches the function unchanged");
        }
        let post = client.post(format!("{base}/ui/x")).send().await.unwrap();
        assert_eq!(post.status(), 405);
        assert_eq!(post.headers()["allow"], "GET");
        assert_eq!(client.get(format!("{base}/docs/other")).send().await.unwrap().status(), 404);
        let _ = stop.send(());
        gateway.await.unwrap().unwrap();
    }

    #[test]
    fn request_ids_are_16_hex_and_distinct() {
        let a = new_request_id();
        let b = new_request_id();
        assert_eq!(a.len(), 16);
        assert!(a.to_str().unwrap().chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn bad_upstreams_are_rejected() {
        for upstream in ["127.0.0.1:80", "https://x:1", "http://x:1/base"] {
            let r = CompiledRoute::new(Route { method: Method::GET, pattern: "/a", upstream: upstream.into() });
            assert!(r.is_err(), "{upstream} accepted");
        }
    }

    #[test]
    fn public_routes_cover_every_public_function() {
        let map: HashMap<String, String> =
            ["import-trigger", "list", "images", "status", "web", "lifecycle", "uploads"]
                .iter()
                .enumerate()
                .map(|(i, n)| (n.to_string(), format!("http://127.0.0.1:{}/", 9000 + i)))
                .collect();
        let routes = public_routes(&map);
        assert_eq!(routes.len(), route_table().len(), "every route has its function");
        let thumbnail = "/datasets/{id}/images/{image_id}/thumbnail";
        assert!(routes.iter().any(|r| r.pattern == thumbnail && r.upstream == "http://127.0.0.1:9002"));
        assert!(routes.iter().any(|r| r.pattern == "/ui/{path=**}" && r.upstream == "http://127.0.0.1:9004"));
        assert!(routes.iter().all(|r| !r.upstream.ends_with('/')));
        assert!(routes.iter().any(|r| r.method == Method::POST && r.pattern == "/datasets/import"));
        for method in [Method::PATCH, Method::DELETE] {
            let lifecycle = |r: &Route| r.method == method && r.upstream == "http://127.0.0.1:9005";
            assert!(routes.iter().any(|r| r.pattern == "/datasets/{id}" && lifecycle(r)), "{method}");
        }
        assert!(routes.iter().any(|r| r.method == Method::GET
            && r.pattern == "/datasets/import"
            && r.upstream == "http://127.0.0.1:9003"));
        for (method, pattern) in [(Method::POST, "/uploads"), (Method::PUT, "/uploads/{upload_id}")] {
            let uploads = |r: &&Route| r.method == method && r.pattern == pattern;
            assert_eq!(routes.iter().find(uploads).map(|r| r.upstream.as_str()), Some("http://127.0.0.1:9006"));
        }
    }

    #[tokio::test]
    async fn an_upload_piece_may_be_16_mib_and_every_other_body_1_mib() {
        // The "uploads function": answers with the length of the body it got.
        let length = |req: Request<Incoming>| async move {
            req.into_body().collect().await.map(|b| b.to_bytes().len()).unwrap_or(0).to_string()
        };
        let (base, stop, gateway) = gateway_in_front_of("uploads", length).await;
        let client = reqwest::Client::new();
        let piece_url = format!("{base}/uploads/0123456789abcdef0123456789abcdef");
        let piece = client.put(&piece_url).body(vec![7u8; UPLOAD_PIECE_MAX_BYTES]).send().await.unwrap();
        assert_eq!(piece.status(), 200);
        assert_eq!(piece.text().await.unwrap(), UPLOAD_PIECE_MAX_BYTES.to_string(), "the whole piece went through");
        let oversized = client.put(&piece_url).body(vec![7u8; UPLOAD_PIECE_MAX_BYTES + 1]).send().await.unwrap();
        assert_eq!(oversized.status(), 413);
        assert_eq!(oversized.headers()["content-type"], "application/problem+json");
        let post = client.post(format!("{base}/uploads")).body(vec![b' '; MAX_BODY_BYTES + 1]).send().await.unwrap();
        assert_eq!(post.status(), 413, "the other route keeps the small limit");
        assert_eq!(body_limit(&Method::PUT, "/uploads/{upload_id}"), 16 << 20);
        assert_eq!(body_limit(&Method::POST, "/uploads"), MAX_BODY_BYTES);
        let _ = stop.send(());
        gateway.await.unwrap().unwrap();
    }
}
