//! The AWS Lambda path, unchanged binaries: a function started with `AWS_LAMBDA_RUNTIME_API`
//! pointing at a loopback implementation of Lambda's Runtime API (what `cargo lambda watch`
//! and the AWS runtime provide) takes API Gateway events from `/invocation/next` and posts its
//! answers, which must be the same answers the HTTP server gives.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::sync::mpsc;

const RUNTIME: &str = "/2018-06-01/runtime";

/// The Runtime API's state: events waiting to be handed out, and answers posted back.
struct RuntimeApi {
    events: Mutex<VecDeque<(String, Value)>>,
    answers: mpsc::UnboundedSender<(String, Value)>,
}

impl RuntimeApi {
    async fn handle(self: Arc<Self>, req: hyper::Request<Incoming>) -> hyper::Response<Full<Bytes>> {
        let path = req.uri().path().to_owned();
        let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
        if path == format!("{RUNTIME}/invocation/next") {
            let next = self.events.lock().unwrap().pop_front();
            let Some((id, event)) = next else {
                // Lambda holds `next` open until an event arrives; none will.
                std::future::pending::<()>().await;
                unreachable!()
            };
            let deadline = std::time::SystemTime::now() + Duration::from_secs(30);
            let deadline_ms = deadline.duration_since(std::time::UNIX_EPOCH).unwrap().as_millis();
            return hyper::Response::builder()
                .header("lambda-runtime-aws-request-id", &id)
                .header("lambda-runtime-deadline-ms", deadline_ms.to_string())
                .header(
                    "lambda-runtime-invoked-function-arn",
                    "arn:aws:lambda:eu-west-1:123456789012:function:yds-list",
                )
                .header("lambda-runtime-trace-id", "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1")
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from(event.to_string())))
                .unwrap();
        }
        let answer = path
            .strip_prefix(&format!("{RUNTIME}/invocation/"))
            .and_then(|rest| rest.strip_suffix("/response").or_else(|| rest.strip_suffix("/error")));
        match answer {
            Some(id) => {
                let value =
                    serde_json::from_slice(&body).unwrap_or(Value::String(String::from_utf8_lossy(&body).into()));
                let _ = self.answers.send((id.to_owned(), value));
                hyper::Response::builder().status(202).body(Full::new(Bytes::from_static(b"{}"))).unwrap()
            }
            None => hyper::Response::builder().status(404).body(Full::new(Bytes::new())).unwrap(),
        }
    }
}

/// An API Gateway REST API (v1) proxy event, as the gateway sends it to a Lambda function.
fn rest_event(path: &str, query: Option<(&str, &str)>, api_key: Option<&str>) -> Value {
    let mut headers = json!({"Host": "abc123.execute-api.eu-west-1.amazonaws.com", "Accept-Encoding": "identity"});
    if let Some(key) = api_key {
        headers["x-api-key"] = json!(key);
    }
    let multi_headers: serde_json::Map<String, Value> =
        headers.as_object().unwrap().iter().map(|(k, v)| (k.clone(), json!([v]))).collect();
    let (query, multi_query) = match query {
        Some((k, v)) => (json!({ k: v }), json!({ k: [v] })),
        None => (Value::Null, Value::Null),
    };
    json!({
        "resource": path, "path": path, "httpMethod": "GET",
        "headers": headers, "multiValueHeaders": multi_headers,
        "queryStringParameters": query, "multiValueQueryStringParameters": multi_query,
        "pathParameters": null, "stageVariables": null, "body": null, "isBase64Encoded": false,
        "requestContext": {
            "accountId": "123456789012", "resourceId": "r1", "stage": "prod", "requestId": "req",
            "identity": {"sourceIp": "203.0.113.9"}, "resourcePath": path, "httpMethod": "GET",
            "apiId": "abc123", "path": format!("/prod{path}"), "protocol": "HTTP/1.1",
            "requestTimeEpochMs": 1_700_000_000_000u64,
        },
    })
}

fn body_json(answer: &Value) -> Value {
    let body = answer["body"].as_str().unwrap_or_default();
    let bytes = if answer["isBase64Encoded"] == true {
        base64::engine::general_purpose::STANDARD.decode(body).expect("base64 body")
    } else {
        body.as_bytes().to_vec()
    };
    serde_json::from_slice(&bytes).expect("a JSON body")
}

/// A response header, from `headers` or (REST APIs) `multiValueHeaders`.
fn header(answer: &Value, name: &str) -> String {
    let find = |field: &str| {
        answer[field].as_object().and_then(|h| h.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v))
    };
    match (find("headers"), find("multiValueHeaders")) {
        (Some(Value::String(v)), _) => v.clone(),
        (_, Some(Value::Array(values))) => values.first().and_then(Value::as_str).unwrap_or_default().to_owned(),
        _ => String::new(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_list_function_answers_api_gateway_events_through_the_runtime_api() {
    let events = [
        ("ok", rest_event("/datasets", Some(("limit", "5")), Some("lambda-key"))),
        ("no-key", rest_event("/datasets", None, None)),
        ("bad-limit", rest_event("/datasets", Some(("limit", "many")), Some("lambda-key"))),
    ];
    let (answers, mut received) = mpsc::unbounded_channel();
    let api = Arc::new(RuntimeApi {
        events: Mutex::new(events.iter().map(|(id, e)| (id.to_string(), e.clone())).collect()),
        answers,
    });
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let api = api.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let api = api.clone();
                    async move { Ok::<_, Infallible>(api.handle(req).await) }
                });
                let _ =
                    hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
            });
        }
    });

    let mut function = tokio::process::Command::new(yds_tests::bin_dir().join("list"))
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", address.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", "yds-list")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "2026/11/28/[$LATEST]test")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/yds-list")
        .env("MONGODB_URI", yds_tests::mongodb_uri())
        .env("YDS_DB_NAME", format!("lambda_{}", std::process::id()))
        .env("YDS_API_KEYS", "lambda-key:acme")
        .kill_on_drop(true)
        .spawn()
        .expect("the list binary starts (built by `cargo xtask test`)");

    let mut by_id = std::collections::HashMap::new();
    while by_id.len() < events.len() {
        let (id, answer) = tokio::time::timeout(Duration::from_secs(30), received.recv())
            .await
            .expect("the function answers every event in time")
            .unwrap();
        by_id.insert(id, answer);
    }
    function.kill().await.unwrap();

    let ok = &by_id["ok"];
    assert_eq!(ok["statusCode"], 200, "{ok}");
    let listed = body_json(ok);
    assert!(listed["items"].is_array(), "the same JSON the HTTP server returns: {listed}");

    let unauthorized = &by_id["no-key"];
    assert_eq!(unauthorized["statusCode"], 401);
    assert_eq!(header(unauthorized, "content-type"), "application/problem+json");
    assert_eq!(body_json(unauthorized)["status"], 401);

    let bad = &by_id["bad-limit"];
    assert_eq!(bad["statusCode"], 400);
    assert!(body_json(bad)["detail"].as_str().unwrap().contains("limit"), "{}", body_json(bad));
}
