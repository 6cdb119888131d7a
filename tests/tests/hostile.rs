//! A corpus of hostile requests through the public API of a stack under the production URL
//! policy: SSRF targets, malformed bodies, abusive headers and queries. Each one gets its
//! expected status as problem+json with a detail written for the client — no driver message,
//! internal path or stack trace — and none of them creates a job.

use serde_json::{json, Value};
use yds_tests::{Chaos, TestStack, KEY};

/// What a request is, and what it must get back: status and a word of the detail.
struct Case {
    name: &'static str,
    method: &'static str,
    path: String,
    /// The API key sent; the test tenant's unless a case is about keys.
    key: Option<String>,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    status: u16,
    detail_has: &'static str,
}

fn import(name: &'static str, body: Value, status: u16, detail_has: &'static str) -> Case {
    raw_import(name, body.to_string().into_bytes(), status, detail_has)
}

fn raw_import(name: &'static str, body: Vec<u8>, status: u16, detail_has: &'static str) -> Case {
    Case {
        name,
        method: "POST",
        path: "/datasets/import".into(),
        key: Some(KEY.into()),
        headers: vec![],
        body,
        status,
        detail_has,
    }
}

fn url(name: &'static str, archive_url: &str, detail_has: &'static str) -> Case {
    import(name, json!({"name": "x", "archive_url": archive_url}), 422, detail_has)
}

fn get(name: &'static str, path: &str, status: u16, detail_has: &'static str) -> Case {
    Case {
        name,
        method: "GET",
        path: path.into(),
        key: Some(KEY.into()),
        headers: vec![],
        body: vec![],
        status,
        detail_has,
    }
}

fn nested_json(depth: usize) -> Vec<u8> {
    let mut text = String::from(r#"{"name":"x","archive_url":"https://example.com/d.zip","extra":"#);
    text.push_str(&"[".repeat(depth));
    text.push_str(&"]".repeat(depth));
    text.push('}');
    text.into_bytes()
}

fn corpus() -> Vec<Case> {
    let mut cases = vec![
        // SSRF: loopback, private, link-local, metadata, and their disguises.
        url("loopback v4", "http://127.0.0.1/d.zip", "internal address"),
        url("localhost", "http://localhost/d.zip", "internal address"),
        url("loopback short form", "http://127.1/d.zip", "internal address"),
        url("loopback decimal", "http://2130706433/d.zip", "internal address"),
        url("loopback hex", "http://0x7f.0.0.1/d.zip", "internal address"),
        url("loopback v6", "http://[::1]/d.zip", "internal address"),
        url("v4-mapped loopback", "http://[::ffff:127.0.0.1]/d.zip", "internal address"),
        url("unspecified v4", "http://0.0.0.0/d.zip", "internal address"),
        url("unspecified v6", "http://[::]/d.zip", "internal address"),
        url("metadata ip", "http://169.254.169.254/computeMetadata/v1/", "internal address"),
        url("metadata host", "http://metadata.google.internal/computeMetadata/v1/", "internal address"),
        url("metadata short host", "http://metadata/computeMetadata/v1/", "internal address"),
        url("metadata host, trailing dot", "http://metadata.google.internal./x", "internal address"),
        url("private 10/8", "http://10.0.0.5/d.zip", "internal address"),
        url("private 172.16/12", "https://172.16.3.4/d.zip", "internal address"),
        url("private 192.168/16", "http://192.168.1.1/d.zip", "internal address"),
        url("shared address space", "http://100.64.0.1/d.zip", "internal address"),
        url("link-local v6", "http://[fe80::1]/d.zip", "internal address"),
        url("unique-local v6", "http://[fd00::1]/d.zip", "internal address"),
        url("multicast", "http://224.0.0.1/d.zip", "internal address"),
        url("broadcast", "http://255.255.255.255/d.zip", "internal address"),
        url("credentials to loopback", "http://user:pass@127.0.0.1/d.zip", "credentials"),
        url("file under strict policy", "file:///etc/passwd", "file"),
        url("ftp", "ftp://example.com/d.zip", "ftp"),
        url("gopher", "gopher://example.com/_x", "gopher"),
        url("javascript", "javascript:alert(1)", "javascript"),
        url("data url", "data:application/zip;base64,UEsFBgAAAAAAAAAAAAAAAAAAAAAAAA==", "data"),
        url("not a url", "not a url", "URL"),
        url("empty url", "", "URL"),
        // Bodies.
        raw_import("empty body", vec![], 400, "JSON"),
        raw_import("truncated JSON", br#"{"name":"x","archive_url":"#.to_vec(), 400, "JSON"),
        raw_import("JSON array", b"[]".to_vec(), 400, "JSON object"),
        raw_import("JSON null", b"null".to_vec(), 400, "JSON object"),
        raw_import("not UTF-8", vec![0xff, 0xfe, 0x00, 0x7b], 400, "JSON"),
        raw_import("deeply nested JSON", nested_json(5000), 400, "JSON"),
        raw_import("over 64 KB", format!("{{\"name\":\"{}\"}}", "x".repeat(70_000)).into_bytes(), 413, "bytes"),
        import(
            "unknown field",
            json!({"name": "x", "archive_url": "https://e.com/d.zip", "admin": true}),
            422,
            "admin",
        ),
        import("no source", json!({"name": "x"}), 422, ""),
        import("wrong type", json!({"name": "x", "archive_url": 5}), 422, ""),
        import(
            "chunk size zero",
            json!({"name": "x", "archive_url": "https://e.com/d.zip", "chunk_size": 0}),
            422,
            "chunk_size",
        ),
        import(
            "chunk size negative",
            json!({"name": "x", "archive_url": "https://e.com/d.zip", "chunk_size": -5}),
            422,
            "",
        ),
        import(
            "chunk size huge",
            json!({"name": "x", "archive_url": "https://e.com/d.zip", "chunk_size": 1u64 << 40}),
            422,
            "",
        ),
        import(
            "two sources",
            json!({"name": "x", "archive_url": "https://e.com/d.zip", "config_url": "https://e.com/d.yaml"}),
            422,
            "",
        ),
        import("empty name", json!({"name": "", "archive_url": "https://e.com/d.zip"}), 422, "name"),
        import(
            "control characters in name",
            json!({"name": "a\u{0}b\u{7}", "archive_url": "https://e.com/d.zip"}),
            422,
            "name",
        ),
        // Queries and paths.
        get("limit zero", "/datasets?limit=0", 400, "limit"),
        get("limit negative", "/datasets?limit=-1", 400, "limit"),
        get("limit overflow", "/datasets?limit=99999999999999999999999", 400, "limit"),
        get("limit not a number", "/datasets?limit=ten", 400, "limit"),
        get("unknown parameter", "/datasets?where=1", 400, "where"),
        get("garbage cursor", "/datasets?cursor=AAAA", 400, "cursor"),
        get("percent garbage cursor", "/datasets?cursor=%%%", 400, ""),
        get("unsigned cursor", "/datasets?cursor=eyJpZCI6IngifQ", 400, "cursor"),
        get("traversal in dataset id", "/datasets/..%2F..%2Fetc%2Fpasswd/images", 404, ""),
        get("NUL in job id", "/datasets/import/%00/status", 404, ""),
        get("operator in dataset id", "/datasets/%7B%22%24ne%22%3A1%7D/images", 404, ""),
        get("bad valid filter", "/datasets/x/images?valid=maybe", 400, "valid"),
        get("bad class filter", "/datasets/x/images?class_id=-1", 400, "class_id"),
        get("huge issue filter", &format!("/datasets/x/images?issue={}", "a".repeat(200)), 400, "issue"),
        get("unknown route", "/admin", 404, ""),
        get("operator in job status filter", "/datasets/import?status=%7B%22%24ne%22%3A1%7D", 400, "status"),
        get("control character in name filter", "/datasets?name=a%00b", 400, "name"),
        Case {
            name: "operator in a deleted dataset id",
            method: "DELETE",
            path: "/datasets/%7B%22%24ne%22%3A1%7D".into(),
            key: Some(KEY.into()),
            headers: vec![],
            body: vec![],
            status: 404,
            detail_has: "not found",
        },
        Case {
            name: "operator as a new name",
            method: "PATCH",
            path: "/datasets/x".into(),
            key: Some(KEY.into()),
            headers: vec![],
            body: json!({"name": {"$ne": ""}}).to_string().into_bytes(),
            status: 422,
            detail_has: "invalid type",
        },
        Case {
            name: "delete a listing",
            method: "DELETE",
            path: "/datasets".into(),
            key: Some(KEY.into()),
            headers: vec![],
            body: vec![],
            status: 405,
            detail_has: "",
        },
        Case {
            name: "non-ASCII idempotency key",
            method: "POST",
            path: "/datasets/import".into(),
            key: Some(KEY.into()),
            headers: vec![("idempotency-key", "clé".into())],
            body: json!({"name": "x", "archive_url": "https://e.com/d.zip"}).to_string().into_bytes(),
            status: 400,
            detail_has: "Idempotency-Key",
        },
    ];
    // Keys: missing, wrong, absurdly long.
    for (name, key) in [("no key", None), ("wrong key", Some("nope".to_owned())), ("huge key", Some("k".repeat(8000)))]
    {
        let mut case = get(name, "/datasets", 401, "API key");
        case.key = key;
        cases.push(case);
    }
    cases
}

/// Words a client must never see in an error.
const LEAKS: [&str; 8] = ["mongodb", "Mongo", "panicked", "/work/", "src/", "127.0.0.1:", "backtrace", "Kind:"];

#[tokio::test(flavor = "multi_thread")]
async fn hostile_requests_get_clear_problems_and_write_nothing() {
    let stack = TestStack::start_with_policy(Chaos::default(), "strict").await;
    let cases = corpus();
    assert!(cases.len() >= 50, "the corpus has {} cases", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let method = reqwest::Method::from_bytes(case.method.as_bytes()).unwrap();
        let mut req = stack.client.request(method, stack.url(&case.path)).body(case.body.clone());
        if let Some(key) = &case.key {
            req = req.header("x-api-key", key);
        }
        for (name, value) in &case.headers {
            req = req.header(*name, value.as_bytes());
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let content_type = resp.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned());
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        let detail = body["detail"].as_str().unwrap_or_default();
        let problem = content_type.as_deref() == Some("application/problem+json") && body["status"] == status;
        let leaked: Vec<&str> = LEAKS.iter().copied().filter(|w| detail.contains(w)).collect();
        if status != case.status || !problem || !detail.contains(case.detail_has) || !leaked.is_empty() {
            failures
                .push(format!("{}: got {status} {body} (want {} with `{}`)", case.name, case.status, case.detail_has));
        }
    }
    assert!(failures.is_empty(), "{} of {} cases:\n{}", failures.len(), cases.len(), failures.join("\n"));
    let (code, listed) = stack.get("/datasets").await;
    assert_eq!((code, &listed["items"]), (200, &json!([])), "no hostile request created a dataset");
    stack.shutdown().await;
}
