//! The gateway against two tiny upstream servers: routing by method and path, query and body
//! pass-through, request ids, problem+json for 404/405/413/502, health aggregation, shutdown.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use local_stack::gateway::{public_routes, serve, Route};
use serde_json::{json, Value};
use tokio::net::TcpListener;

/// An upstream that echoes what it received as JSON; `/healthz` follows `healthy`.
async fn upstream(name: &'static str, healthy: Arc<AtomicBool>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let healthy = healthy.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req: Request<Incoming>| {
                    let healthy = healthy.clone();
                    async move { Ok::<_, Infallible>(echo(name, &healthy, req).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
            });
        }
    });
    format!("http://{addr}")
}

async fn echo(name: &str, healthy: &AtomicBool, req: Request<Incoming>) -> Response<Full<Bytes>> {
    if req.uri().path() == "/healthz" {
        let ok = healthy.load(Ordering::SeqCst);
        let mut resp = Response::new(Full::new(Bytes::from_static(b"{}")));
        if !ok {
            *resp.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
        }
        return resp;
    }
    let (parts, body) = req.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    let header = |n: &str| parts.headers.get(n).map(|v| v.to_str().unwrap().to_string());
    let seen = json!({
        "upstream": name,
        "method": parts.method.as_str(),
        "path": parts.uri.path(),
        "query": parts.uri.query(),
        "body": String::from_utf8_lossy(&body),
        "request_id": header("x-request-id"),
        "api_key": header("x-api-key"),
        "idempotency_key": header("idempotency-key"),
        "forwarded_for": header("x-forwarded-for"),
        "connection_named": header("x-drop-me"),
    });
    let mut resp = Response::new(Full::new(Bytes::from(seen.to_string())));
    resp.headers_mut().insert("content-type", "application/json".parse().unwrap());
    resp.headers_mut().insert("x-upstream", name.parse().unwrap());
    if parts.method == Method::POST {
        *resp.status_mut() = StatusCode::ACCEPTED;
        resp.headers_mut().insert("location", "/datasets/import/j1/status".parse().unwrap());
    }
    resp
}

struct Stack {
    base: String,
    a_healthy: Arc<AtomicBool>,
    b_healthy: Arc<AtomicBool>,
    b_url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    served: tokio::task::JoinHandle<anyhow::Result<()>>,
}

/// Gateway with import-trigger, lifecycle and images on upstream A, list and status on upstream B.
async fn stack() -> Stack {
    let a_healthy = Arc::new(AtomicBool::new(true));
    let b_healthy = Arc::new(AtomicBool::new(true));
    let a = upstream("A", a_healthy.clone()).await;
    let b = upstream("B", b_healthy.clone()).await;
    let map: HashMap<String, String> =
        [("import-trigger", &a), ("lifecycle", &a), ("images", &a), ("list", &b), ("status", &b)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
    let (base, stop, served) = gateway(public_routes(&map)).await;
    Stack { base, a_healthy, b_healthy, b_url: b, stop: Some(stop), served }
}

async fn gateway(
    routes: Vec<Route>,
) -> (String, tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<anyhow::Result<()>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(serve(listener, routes, async move {
        let _ = rx.await;
    }));
    (base, tx, served)
}

async fn call(
    method: Method,
    url: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> (StatusCode, HeaderMap, Bytes) {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut req = Request::builder().method(method).uri(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = client.request(req.body(Full::new(body.into())).unwrap()).await.unwrap();
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    (parts.status, parts.headers, body)
}

async fn get(url: &str) -> (StatusCode, HeaderMap, Value) {
    let (status, headers, body) = call(Method::GET, url, &[], Bytes::new()).await;
    let json = serde_json::from_slice(&body)
        .unwrap_or_else(|e| panic!("{url}: not JSON ({e}): {}", String::from_utf8_lossy(&body)));
    (status, headers, json)
}

fn assert_problem(headers: &HeaderMap, body: &Value, status: u16) {
    assert_eq!(headers["content-type"], "application/problem+json", "{body}");
    assert_eq!(body["type"], "about:blank", "{body}");
    assert_eq!(body["status"], status, "{body}");
    assert!(body["title"].is_string(), "{body}");
    assert!(body["detail"].is_string(), "{body}");
}

#[tokio::test]
async fn routes_each_public_path_to_its_function() {
    let s = stack().await;
    let cases = [
        (Method::GET, "/datasets", "B", "/datasets"),
        (Method::GET, "/datasets/d1", "B", "/datasets/d1"),
        (Method::GET, "/datasets/d1/images", "A", "/datasets/d1/images"),
        (Method::GET, "/datasets/d1/images/i1", "A", "/datasets/d1/images/i1"),
        (Method::GET, "/datasets/d1/images/i1/file", "A", "/datasets/d1/images/i1/file"),
        (Method::GET, "/datasets/import/j1/status", "B", "/datasets/import/j1/status"),
        // `import` is a literal here, but a fine dataset id for the images route.
        (Method::GET, "/datasets/import/images", "A", "/datasets/import/images"),
        (Method::POST, "/datasets/import", "A", "/datasets/import"),
        // One path, three functions by method.
        (Method::PATCH, "/datasets/d1", "A", "/datasets/d1"),
        (Method::DELETE, "/datasets/d1", "A", "/datasets/d1"),
        // The literal path wins: the jobs' listing, not a dataset called `import`.
        (Method::GET, "/datasets/import", "B", "/datasets/import"),
    ];
    for (method, path, upstream, seen_path) in cases {
        let (status, headers, body) = call(method.clone(), &format!("{}{path}", s.base), &[], "{}").await;
        assert!(status.is_success(), "{method} {path}: {status}");
        assert_eq!(headers["x-upstream"], upstream, "{method} {path}");
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["path"], seen_path);
        assert_eq!(body["method"], method.as_str());
    }
}

#[tokio::test]
async fn query_string_is_passed_through_untouched() {
    let s = stack().await;
    let (status, _, body) =
        get(&format!("{}/datasets/d%201/images?limit=5&cursor=abc%2F%3D&split=val&class_id=3", s.base)).await;
    assert_eq!(status, 200);
    assert_eq!(body["path"], "/datasets/d%201/images");
    assert_eq!(body["query"], "limit=5&cursor=abc%2F%3D&split=val&class_id=3");
    let (_, _, body) = get(&format!("{}/datasets", s.base)).await;
    assert_eq!(body["query"], Value::Null);
}

#[tokio::test]
async fn body_headers_and_answer_are_forwarded() {
    let s = stack().await;
    let payload = r#"{"name":"coco8","archive_url":"https://example.com/coco8.zip"}"#;
    let (status, headers, body) = call(
        Method::POST,
        &format!("{}/datasets/import", s.base),
        &[
            ("content-type", "application/json"),
            ("x-api-key", "k1"),
            ("idempotency-key", "idem-7"),
            ("connection", "x-drop-me"),
            ("x-drop-me", "hop"),
        ],
        payload,
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(headers["location"], "/datasets/import/j1/status");
    assert_eq!(headers["content-type"], "application/json");
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["body"], payload);
    assert_eq!(body["api_key"], "k1");
    assert_eq!(body["idempotency_key"], "idem-7");
    assert_eq!(body["forwarded_for"], "127.0.0.1");
    assert_eq!(body["connection_named"], Value::Null, "hop-by-hop header leaked");
}

#[tokio::test]
async fn request_id_is_generated_or_kept_and_forwarded() {
    let s = stack().await;
    let (_, headers, body) = get(&format!("{}/datasets", s.base)).await;
    let id = headers["x-request-id"].to_str().unwrap().to_string();
    assert_eq!(id.len(), 16, "{id}");
    assert!(id.chars().all(|c| c.is_ascii_hexdigit()), "{id}");
    assert_eq!(body["request_id"], id.as_str());

    let (_, headers2, _) = get(&format!("{}/datasets", s.base)).await;
    assert_ne!(headers2["x-request-id"], id.as_str());

    let (_, headers, body) =
        call(Method::GET, &format!("{}/datasets", s.base), &[("x-request-id", "client-id-1")], Bytes::new()).await;
    assert_eq!(headers["x-request-id"], "client-id-1");
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["request_id"], "client-id-1");

    // Problems carry one too.
    let (_, headers, _) = get(&format!("{}/nowhere", s.base)).await;
    assert_eq!(headers["x-request-id"].len(), 16);
}

#[tokio::test]
async fn unknown_paths_get_404_problem() {
    let s = stack().await;
    let (status, headers, body) = get(&format!("{}/x", s.base)).await;
    assert_eq!(status, 404);
    assert_problem(&headers, &body, 404);
    assert_eq!(body, json!({"type":"about:blank","title":"Not Found","status":404,"detail":"no route for GET /x"}));
    for path in [
        "/",
        "/datasets/",
        "/datasets//images",
        "/datasets/d1/images/i1/extra",
        "/datasets/d1/images/i1/file/x",
        "/datasets/import/j1",
        "/datasets/import//status",
    ] {
        let (status, headers, body) = get(&format!("{}{path}", s.base)).await;
        assert_eq!(status, 404, "{path}");
        assert_problem(&headers, &body, 404);
    }
}

#[tokio::test]
async fn wrong_method_gets_405_with_allow() {
    let s = stack().await;
    let cases = [
        (Method::DELETE, "/datasets", "GET"),
        (Method::POST, "/datasets", "GET"),
        // Concrete before templated, as OpenAPI matches: not `DELETE /datasets/{id}` with id
        // `import`.
        (Method::DELETE, "/datasets/import", "GET, POST"),
        (Method::OPTIONS, "/datasets/import", "GET, POST"),
        (Method::PUT, "/datasets/d1", "DELETE, GET, PATCH"),
        (Method::PUT, "/datasets/d1/images", "GET"),
        (Method::POST, "/datasets/import/j1/status", "GET"),
        (Method::POST, "/healthz", "GET"),
    ];
    for (method, path, allow) in cases {
        let (status, headers, body) = call(method.clone(), &format!("{}{path}", s.base), &[], Bytes::new()).await;
        assert_eq!(status, 405, "{method} {path}");
        assert_eq!(headers["allow"], allow, "{method} {path}");
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_problem(&headers, &body, 405);
        assert_eq!(body["title"], "Method Not Allowed");
    }
}

#[tokio::test]
async fn oversized_body_gets_413() {
    let s = stack().await;
    let big = vec![b'a'; 1024 * 1024 + 1];
    let (status, headers, body) = call(Method::POST, &format!("{}/datasets/import", s.base), &[], big).await;
    assert_eq!(status, 413);
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_problem(&headers, &body, 413);

    let exactly = vec![b'a'; 1024 * 1024];
    let (status, _, body) = call(Method::POST, &format!("{}/datasets/import", s.base), &[], exactly).await;
    assert_eq!(status, 202);
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["body"].as_str().unwrap().len(), 1024 * 1024);
}

#[tokio::test]
async fn dead_upstream_gets_502_problem() {
    // A port bound but not listening refuses connections, and stays ours while the test runs:
    // a listener dropped at once freed its port, which the gateway itself could then be given
    // (it proxied to itself until the process ran out of file descriptors).
    let reserved = tokio::net::TcpSocket::new_v4().unwrap();
    reserved.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let dead = format!("http://{}", reserved.local_addr().unwrap());
    let routes = vec![Route { method: Method::GET, pattern: "/datasets", upstream: dead.clone() }];
    let (base, _stop, _served) = gateway(routes).await;
    let (status, headers, body) = get(&format!("{base}/datasets")).await;
    assert_eq!(status, 502);
    assert_problem(&headers, &body, 502);
    assert_eq!(body["title"], "Bad Gateway");
    assert!(!body["detail"].as_str().unwrap().contains(&dead), "internal address leaked: {body}");

    let (status, headers, body) = get(&format!("{base}/healthz")).await;
    assert_eq!(status, 503);
    assert_problem(&headers, &body, 503);
    assert!(body["detail"].as_str().unwrap().contains("GET /datasets"), "{body}");
}

#[tokio::test]
async fn healthz_reports_every_upstream() {
    let s = stack().await;
    let (status, headers, body) = get(&format!("{}/healthz", s.base)).await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(body, json!({"status": "ok"}));

    s.b_healthy.store(false, Ordering::SeqCst);
    let (status, headers, body) = get(&format!("{}/healthz", s.base)).await;
    assert_eq!(status, 503);
    assert_problem(&headers, &body, 503);
    let detail = body["detail"].as_str().unwrap();
    assert!(detail.contains(&s.b_url), "{body}");
    assert!(detail.contains("GET /datasets"), "{body}");
    assert!(!detail.contains("POST /datasets/import"), "{body}");
    assert_eq!(body["unhealthy"].as_array().unwrap().len(), 1, "{body}");
    assert_eq!(body["unhealthy"][0]["upstream"], s.b_url.as_str());

    s.a_healthy.store(false, Ordering::SeqCst);
    let (status, _, body) = get(&format!("{}/healthz", s.base)).await;
    assert_eq!(status, 503);
    assert_eq!(body["unhealthy"].as_array().unwrap().len(), 2, "{body}");

    s.a_healthy.store(true, Ordering::SeqCst);
    s.b_healthy.store(true, Ordering::SeqCst);
    let (status, _, _) = get(&format!("{}/healthz", s.base)).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn shutdown_stops_serving() {
    let mut s = stack().await;
    let (status, _, _) = get(&format!("{}/datasets", s.base)).await;
    assert_eq!(status, 200);
    s.stop.take().unwrap().send(()).unwrap();
    let result = tokio::time::timeout(Duration::from_secs(10), &mut s.served)
        .await
        .expect("serve did not return after shutdown")
        .unwrap();
    assert!(result.is_ok(), "{result:?}");
    let addr = s.base.trim_start_matches("http://");
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn bad_route_table_is_refused() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let routes = vec![Route { method: Method::GET, pattern: "datasets", upstream: "http://127.0.0.1:1".into() }];
    assert!(serve(listener, routes, std::future::pending()).await.is_err());
}

#[tokio::test]
async fn oversized_chunked_body_gets_413() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s = stack().await;
    let addr = s.base.trim_start_matches("http://").to_string();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /datasets/import HTTP/1.1\r\nhost: {addr}\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let chunk = vec![b'a'; 64 * 1024];
    let writer = async {
        for _ in 0..17 {
            if stream.write_all(format!("{:x}\r\n", chunk.len()).as_bytes()).await.is_err()
                || stream.write_all(&chunk).await.is_err()
                || stream.write_all(b"\r\n").await.is_err()
            {
                break;
            }
        }
        let _ = stream.write_all(b"0\r\n\r\n").await;
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer).await;
        answer
    };
    let answer = tokio::time::timeout(Duration::from_secs(10), writer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("application/problem+json"), "{answer}");
}

/// A HEAD goes where its GET goes: the function answers it as that GET (the images function
/// does for its files and label files) or refuses it itself.
#[tokio::test]
async fn head_goes_where_its_get_goes() {
    let s = stack().await;
    for (path, upstream) in
        [("/datasets/d1/images/i1/label", "A"), ("/datasets/d1/images/i1/file", "A"), ("/datasets", "B")]
    {
        let (status, headers, body) = call(Method::HEAD, &format!("{}{path}", s.base), &[], Bytes::new()).await;
        assert_eq!(
            (status, &headers["x-upstream"]),
            (StatusCode::OK, &upstream.parse::<http::HeaderValue>().unwrap()),
            "{path}"
        );
        assert!(body.is_empty(), "{path}");
    }
}
