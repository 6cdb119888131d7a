//! The web function through the edge's service, as the runtimes call it: no server, no network.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;

use bytes::Bytes;
use http::{Method, StatusCode};
use yds_config::StorageConfig;
use yds_edge::{EdgeOptions, Response, Service, PUBLIC_MAX_BODY};

use super::{bundle, embedded, policy, WebApp};

fn service_for(storage: &StorageConfig) -> Service {
    Service::new(
        WebApp::new(storage).unwrap(),
        EdgeOptions { api_keys: None, max_body_bytes: PUBLIC_MAX_BODY, url_signer: None },
    )
}

fn service() -> Service {
    service_for(&StorageConfig::Local { root: "/unused".into() })
}

async fn send(method: Method, path: &str, headers: &[(&str, &str)]) -> Response {
    let mut builder = http::Request::builder().method(method).uri(path);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    service().call(builder.body(Bytes::new()).unwrap()).await
}

async fn get(path: &str) -> Response {
    send(Method::GET, path, &[]).await
}

async fn get_gzip(path: &str) -> Response {
    send(Method::GET, path, &[("accept-encoding", "gzip, deflate, br")]).await
}

fn header<'a>(response: &'a Response, name: &str) -> &'a str {
    response.headers().get(name).map_or("", |v| v.to_str().unwrap())
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes).read_to_end(&mut out).expect("a gzip stream");
    out
}

fn problem(response: &Response) -> serde_json::Value {
    assert_eq!(header(response, "content-type"), "application/problem+json");
    serde_json::from_slice(response.body()).expect("a problem document")
}

/// `name.{10 hex}.ext`: a content-addressed asset name.
fn is_hashed(name: &str) -> bool {
    let file = name.rsplit('/').next().unwrap();
    let parts: Vec<&str> = file.split('.').collect();
    parts.len() >= 3 && {
        let hash = parts[parts.len() - 2];
        hash.len() == bundle::HASH_LEN && hash.chars().all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
    }
}

/// The `src="…"` and `href="…"` values of an HTML page.
fn html_references(html: &str) -> Vec<String> {
    let mut found = Vec::new();
    for attribute in ["src=\"", "href=\""] {
        for (at, _) in html.match_indices(attribute) {
            let value = &html[at + attribute.len()..];
            found.push(value[..value.find('"').unwrap()].to_owned());
        }
    }
    found
}

/// The relative module specifiers (`"./x.js"`) a JS file holds, found independently of the build's
/// scanner: every quoted string that starts with `./` or `../` and ends with `.js`.
fn relative_imports(js: &str) -> Vec<String> {
    let mut found = Vec::new();
    for quote in ['"', '\''] {
        for (at, _) in js.match_indices(quote) {
            let rest = &js[at + 1..];
            if !(rest.starts_with("./") || rest.starts_with("../")) {
                continue;
            }
            if let Some(end) = rest.find(quote) {
                if rest[..end].ends_with(".js") && !rest[..end].contains(['\n', ' ']) {
                    found.push(rest[..end].to_owned());
                }
            }
        }
    }
    found
}

/// Checks that `name` is served as an asset should be, and returns its raw bytes.
async fn assert_served_asset(name: &str) -> Vec<u8> {
    let path = format!("/ui/assets/{name}");
    assert!(is_hashed(name), "{path} is not a content-addressed name");
    let raw = get(&path).await;
    assert_eq!(raw.status(), 200, "{path}");
    assert_eq!(header(&raw, "cache-control"), "public, max-age=31536000, immutable", "{path}");
    assert!(header(&raw, "etag").contains(name.rsplit('.').nth(1).unwrap()), "{path}: the ETag is the hash");
    assert_eq!(header(&raw, "content-encoding"), "", "{path}: not gzipped unless asked");
    let raw_bytes = raw.body().to_vec();
    let gzipped = get_gzip(&path).await;
    assert_eq!(gzipped.status(), 200, "{path}");
    assert_eq!(header(&gzipped, "content-type"), header(&raw, "content-type"), "{path}");
    if name.ends_with(".js") || name.ends_with(".css") || name.ends_with(".svg") {
        assert_eq!(header(&gzipped, "content-encoding"), "gzip", "{path}");
        assert_eq!(header(&gzipped, "vary"), "accept-encoding", "{path}");
        assert_eq!(gunzip(gzipped.body()), raw_bytes, "{path}: the gzip is the same file");
    }
    raw_bytes
}

#[tokio::test]
async fn the_root_and_ui_redirect_to_the_app() {
    for path in ["/", "/ui"] {
        let response = get(path).await;
        assert_eq!(response.status(), StatusCode::FOUND, "{path}");
        assert_eq!(header(&response, "location"), "/ui/", "{path}");
    }
}

#[tokio::test]
async fn any_path_below_ui_is_the_app_page_with_its_policy_and_revalidated() {
    for path in ["/ui/", "/ui/datasets/x/images/y", "/ui/datasets/abc?valid=false"] {
        let response = get(path).await;
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(header(&response, "content-type"), "text/html; charset=utf-8", "{path}");
        assert_eq!(header(&response, "cache-control"), "no-cache", "{path}");
        assert_eq!(response.body().as_ref(), embedded::index_html().raw, "{path}");
        assert_eq!(header(&response, "etag"), format!("\"{}\"", embedded::index_html().hash));
        let csp = header(&response, "content-security-policy");
        assert!(csp.starts_with("default-src 'none'; script-src 'self'; style-src 'self';"), "{csp}");
        assert!(csp.contains("img-src 'self' data: blob:;"), "no other image origin with local storage: {csp}");
        assert!(csp.contains("frame-ancestors 'none'") && csp.contains("base-uri 'none'"), "{csp}");
        for (name, value) in
            [("x-content-type-options", "nosniff"), ("referrer-policy", "no-referrer"), ("x-frame-options", "DENY")]
        {
            let values: Vec<_> = response.headers().get_all(name).iter().collect();
            assert_eq!(values, [value], "{path}: {name} once");
        }
    }
    let page = String::from_utf8(get("/ui/").await.body().to_vec()).unwrap();
    assert!(page.to_ascii_lowercase().contains("<!doctype html"), "index.html is a page:\n{page}");
}

#[tokio::test]
async fn the_policy_allows_no_inline_code_and_adds_the_storage_origin_images_come_from() {
    let local =
        policy::content_security_policy(&policy::image_origins(&StorageConfig::Local { root: "/d".into() }).unwrap());
    let google = StorageConfig::Gcs { bucket: "b".into(), endpoint: None };
    let emulator =
        StorageConfig::Gcs { bucket: "b".into(), endpoint: Some("http://127.0.0.1:4443/storage/v1/".into()) };
    for (storage, origin) in
        [(&google, Some("https://storage.googleapis.com")), (&emulator, Some("http://127.0.0.1:4443"))]
    {
        let csp = policy::content_security_policy(&policy::image_origins(storage).unwrap());
        let images = csp.split("; ").find(|d| d.starts_with("img-src ")).unwrap();
        assert_eq!(images, format!("img-src 'self' data: blob: {}", origin.unwrap()));
        // The page carries the same policy.
        let response = service_for(storage).call(http::Request::get("/docs").body(Bytes::new()).unwrap()).await;
        assert_eq!(header(&response, "content-security-policy"), csp);
    }
    for csp in [local, header(&get("/docs").await, "content-security-policy").to_owned()] {
        assert!(!csp.contains("unsafe-"), "{csp}");
        assert!(!csp.contains('*'), "no wildcard source: {csp}");
        for directive in ["script-src 'self'", "style-src 'self'", "connect-src 'self'", "default-src 'none'"] {
            assert!(csp.split("; ").any(|d| d == directive), "{directive} in {csp}");
        }
    }
    let bad = StorageConfig::Gcs { bucket: "b".into(), endpoint: Some("ftp://x; script-src *".into()) };
    assert!(WebApp::new(&bad).is_err(), "only an http(s) origin may reach the policy");
}

#[tokio::test]
async fn every_asset_the_app_page_names_is_served_by_its_hashed_name_gzipped_and_immutable() {
    let page = String::from_utf8(embedded::index_html().raw.to_vec()).unwrap();
    let assets: Vec<String> = html_references(&page)
        .into_iter()
        .filter_map(|reference| reference.strip_prefix("/ui/assets/").map(str::to_owned))
        .collect();
    assert!(assets.iter().any(|a| a.ends_with(".js")), "index.html loads a script from /ui/assets/: {assets:?}");
    assert!(assets.iter().any(|a| a.ends_with(".css")), "index.html loads a stylesheet from /ui/assets/: {assets:?}");
    for name in &assets {
        assert_served_asset(name).await;
    }
    // The page is gzipped on request too, and the gzip is the page.
    let gzipped = get_gzip("/ui/datasets").await;
    assert_eq!(header(&gzipped, "content-encoding"), "gzip");
    assert_eq!(gunzip(gzipped.body()), embedded::index_html().raw);
}

#[tokio::test]
async fn modules_import_each_other_by_hashed_names_that_are_served() {
    let page = String::from_utf8(embedded::index_html().raw.to_vec()).unwrap();
    let mut pending: Vec<String> = html_references(&page)
        .into_iter()
        .filter_map(|r| r.strip_prefix("/ui/assets/").map(str::to_owned))
        .filter(|name| name.ends_with(".js"))
        .collect();
    // Every module reachable from the page, through the imports as served.
    let mut seen = BTreeSet::new();
    let mut imports = 0;
    while let Some(name) = pending.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        let js = String::from_utf8(assert_served_asset(&name).await).unwrap();
        for specifier in relative_imports(&js) {
            imports += 1;
            assert!(is_hashed(&specifier), "{name} imports {specifier}, not a hashed name");
            pending.push(bundle::resolve(&name, &specifier).unwrap());
        }
    }
    assert!(imports > 0, "the app's modules import each other ({seen:?})");
    // Every module the bundle holds is named, by its hashed name, by a page or another file
    // (an import, or a `/ui/assets/` path such as a worker's): none is left behind unhashed.
    let texts: Vec<&[u8]> = [embedded::index_html(), embedded::docs_html()]
        .into_iter()
        .chain(embedded::assets())
        .map(|file| file.raw)
        .collect();
    for asset in embedded::assets().iter().filter(|a| a.name.ends_with(".js")) {
        let file_name = asset.name.rsplit('/').next().unwrap();
        let named = texts.iter().any(|text| std::str::from_utf8(text).is_ok_and(|t| t.contains(file_name)));
        assert!(named || seen.contains(asset.name), "{} is served but nothing names it", asset.name);
    }
}

#[tokio::test]
async fn a_known_etag_gets_304_without_a_body() {
    let asset = &embedded::assets()[0];
    let path = format!("/ui/assets/{}", asset.name);
    let etag = format!("\"{}\"", asset.hash);
    for (path, etag) in [(path.as_str(), etag.as_str()), ("/ui/", &*format!("\"{}\"", embedded::index_html().hash))] {
        let response = send(Method::GET, path, &[("if-none-match", &format!("\"nope\", W/{etag}"))]).await;
        assert_eq!(response.status(), StatusCode::NOT_MODIFIED, "{path}");
        assert!(response.body().is_empty(), "{path}");
        assert_eq!(header(&response, "etag"), etag, "{path}");
        let other = send(Method::GET, path, &[("if-none-match", "\"0000000000\"")]).await;
        assert_eq!(other.status(), 200, "{path}: another ETag gets the file");
    }
}

#[tokio::test]
async fn unknown_assets_and_paths_get_404_problems() {
    let asset = &embedded::assets()[0];
    let unhashed = bundle::PAGES[0];
    let stale = asset.name.replace(asset.hash, "0123456789");
    for path in [
        format!("/ui/assets/{stale}"),
        format!("/ui/assets/{unhashed}"),
        "/ui/assets/".into(),
        "/nope".into(),
        "/docs/".into(),
    ] {
        let response = get(&path).await;
        assert_eq!(response.status(), 404, "{path}");
        assert_eq!(problem(&response)["status"], 404, "{path}");
    }
}

#[tokio::test]
async fn other_methods_get_405_and_head_gets_the_get_answer() {
    for method in [Method::POST, Method::PUT, Method::DELETE, Method::PATCH] {
        for path in ["/", "/ui/", "/docs", "/docs/openapi.json"] {
            let response = send(method.clone(), path, &[]).await;
            assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
            assert_eq!(problem(&response)["status"], 405);
        }
    }
    let head = send(Method::HEAD, "/ui/", &[]).await;
    assert_eq!(head.status(), 200);
    assert_eq!(header(&head, "etag"), format!("\"{}\"", embedded::index_html().hash));
}

#[tokio::test]
async fn the_docs_page_and_the_openapi_document_are_served() {
    let docs = get("/docs").await;
    assert_eq!(docs.status(), 200);
    assert_eq!(header(&docs, "content-type"), "text/html; charset=utf-8");
    assert_eq!(docs.body().as_ref(), embedded::docs_html().raw);
    for reference in html_references(std::str::from_utf8(docs.body()).unwrap()) {
        if let Some(name) = reference.strip_prefix("/ui/assets/") {
            assert_served_asset(name).await;
        }
    }

    let spec = get_gzip("/docs/openapi.json").await;
    assert_eq!(spec.status(), 200);
    assert_eq!(header(&spec, "content-type"), "application/json");
    assert_eq!(header(&spec, "cache-control"), "no-cache");
    assert!(!header(&spec, "etag").is_empty());
    let spec: serde_json::Value = serde_json::from_slice(&gunzip(spec.body())).expect("the document is JSON");
    assert_eq!(spec["swagger"], "2.0");
    let paths: BTreeMap<String, serde_json::Value> = serde_json::from_value(spec["paths"].clone()).unwrap();
    assert!(paths.contains_key("/datasets/{id}/images"), "{:?}", paths.keys());
    assert_eq!(paths["/datasets/{id}/images"]["get"]["operationId"], "listDatasetImages");
    assert!(!spec.to_string().contains("x-google-backend"), "deployment details are left out");
}

#[tokio::test]
async fn health_needs_nothing_and_no_route_needs_a_key() {
    let health = get("/healthz").await;
    assert_eq!(health.status(), 200);
    for path in ["/ui/", "/docs", "/docs/openapi.json"] {
        assert_eq!(get(path).await.status(), 200, "{path} without x-api-key");
    }
}

#[tokio::test]
async fn gzip_is_only_sent_to_clients_that_take_it() {
    for accept in ["gzip;q=0", "br", "identity"] {
        let response = send(Method::GET, "/ui/", &[("accept-encoding", accept)]).await;
        assert_eq!(header(&response, "content-encoding"), "", "{accept}");
        assert_eq!(response.body().as_ref(), embedded::index_html().raw, "{accept}");
    }
    let response = send(Method::GET, "/ui/", &[("accept-encoding", "*")]).await;
    assert_eq!(header(&response, "content-encoding"), "gzip");
}

// -- The build's bundling rules (build/bundle.rs) ---------------------------------------------

fn graph(files: &[(&str, &str)]) -> Result<Vec<String>, String> {
    let exists = |path: &str| files.iter().any(|(p, _)| *p == path);
    let mut edges = BTreeMap::new();
    for (path, text) in files {
        let found = bundle::references(path, text, &exists)?;
        edges.insert(path.to_string(), found.into_iter().map(|r| r.target).collect::<BTreeSet<_>>());
    }
    bundle::dependency_order(&edges)
}

#[test]
fn modules_are_hashed_after_what_they_import_and_a_cycle_is_refused() {
    let order = graph(&[
        ("app.js", "import { a } from \"./a.js\";\nimport './b.js';"),
        ("a.js", "export const a = 1; const later = () => import(\"./b.js\");"),
        ("b.js", "export const b = 2;"),
        ("index.html", "<script type=module src=\"/ui/assets/app.js\"></script>"),
    ])
    .unwrap();
    let at = |name: &str| order.iter().position(|n| n == name).unwrap();
    assert!(at("b.js") < at("a.js") && at("a.js") < at("app.js") && at("app.js") < at("index.html"), "{order:?}");

    let err =
        graph(&[("a.js", "import \"./b.js\";"), ("b.js", "export * from './c.js';"), ("c.js", "import './a.js';")])
            .unwrap_err();
    assert!(err.contains("cycle") && err.contains("a.js → b.js → c.js → a.js"), "{err}");
}

#[test]
fn references_are_found_outside_comments_and_must_name_files() {
    let js = "// import x from './gone.js'\n/* import './gone.js' */\nconst s = \"./not-an-import.js\";\nexport { y } from '../lib/y.js';";
    let exists = |path: &str| path == "lib/y.js";
    let found = bundle::references("app/main.js", js, &exists).unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].target, "lib/y.js");
    assert_eq!(&js[found[0].start..found[0].end], "y.js", "only the file name is replaced");
    assert_eq!(
        bundle::rewrite(js, &found, &|_| "lib/y.0123456789.js".into()).lines().last().unwrap(),
        "export { y } from '../lib/y.0123456789.js';"
    );

    let err = bundle::references("app.js", "import { h } from \"./dom.js\";", &|_| false).unwrap_err();
    assert!(err.contains("app.js") && err.contains("./dom.js"), "{err}");
    let err = bundle::references("index.html", "<link href=\"/ui/assets/syle.css\">", &|_| false).unwrap_err();
    assert!(err.contains("/ui/assets/syle.css"), "{err}");
    assert!(bundle::references("x.js", "import './../../out.js';", &|_| true).is_err(), "outside assets/");
    // CSS: relative url()s and absolute paths; data: and fragments are not files.
    let css = "a { background: url(icons/x.svg) } b { background: url('/ui/assets/y.png') } c { mask: url(data:image/svg+xml,z) }";
    let found = bundle::references("style.css", css, &|p| p == "icons/x.svg" || p == "y.png").unwrap();
    assert_eq!(found.iter().map(|r| r.target.as_str()).collect::<Vec<_>>(), ["icons/x.svg", "y.png"]);
    assert_eq!(bundle::hashed_name("icons/x.svg", "0123456789"), "icons/x.0123456789.svg");
}
