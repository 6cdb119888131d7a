//! The uploads function invoked directly (no server) against a real mongod, on a local
//! directory (pieces through `PUT /uploads/{id}`) and on a real `fake-gcs-server` (a resumable
//! session the client writes to itself).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::Method;
use testkit::db::test_db;
use uploads::protocol::PIECE_ALIGNMENT;
use uploads::Uploads;
use yds_config::ConfiguredKeys;
use yds_edge::{EdgeOptions, Service, PUBLIC_MAX_BODY};
use yds_storage::{GcsStore, LocalStore, ObjectStore};

const PIECE: usize = PIECE_ALIGNMENT as usize;

fn service(db: yds_store::Db, objects: Arc<dyn ObjectStore>, max_bytes: u64) -> Service {
    Service::new(
        Uploads::new(db, objects, max_bytes),
        EdgeOptions {
            api_keys: Some(ConfiguredKeys::parse("k:acme,other:globex").unwrap().into()),
            max_body_bytes: PUBLIC_MAX_BODY,
            url_signer: None,
        },
    )
}

fn post(body: &str) -> yds_edge::Request {
    http::Request::post("/uploads").header("x-api-key", "k").body(Bytes::from(body.to_owned())).unwrap()
}

fn put(upload_url: &str, key: &str, content_range: Option<&str>, body: Bytes) -> yds_edge::Request {
    let mut builder = http::Request::put(upload_url).header("x-api-key", key);
    if let Some(range) = content_range {
        builder = builder.header("content-range", range);
    }
    builder.body(body).unwrap()
}

fn json(response: &yds_edge::Response) -> serde_json::Value {
    serde_json::from_slice(response.body()).unwrap()
}

/// `len` bytes that are not all alike, so a shifted or repeated piece shows.
fn pattern(len: usize) -> Bytes {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect::<Vec<u8>>().into()
}

/// Status and `Range` header of an answer.
fn standing(response: &yds_edge::Response) -> (u16, Option<&str>) {
    (response.status().as_u16(), response.headers().get("range").map(|v| v.to_str().unwrap()))
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upload_is_created_then_filled_piece_by_piece_with_the_resumable_protocol() {
    let db = test_db().await;
    let dir = tempfile::tempdir().unwrap();
    let objects: Arc<dyn ObjectStore> = Arc::new(LocalStore::new(dir.path()));
    let service = service(db.clone(), objects.clone(), 1 << 20);
    let data = pattern(2 * PIECE + 1000);
    let total = data.len();

    let created = service.call(post(&format!(r#"{{"file_name":"My Data.zip","size_bytes":{total}}}"#))).await;
    assert_eq!(created.status(), 201);
    let body = json(&created);
    let id = body["upload_id"].as_str().unwrap().to_owned();
    assert_eq!(body["upload_url"], format!("/uploads/{id}"), "no sessions on a directory: the pieces come here");
    assert_eq!(body["source_url"], format!("upload://{id}"));
    assert_eq!(body["max_bytes"], 1 << 20);
    assert_eq!(created.headers()["location"], format!("/uploads/{id}"));
    let record = db.uploads.find_for_tenant("acme", &id).await.unwrap().expect("recorded for the caller's tenant");
    assert_eq!(
        (record.file_name.as_str(), record.declared_bytes, record.completed_bytes),
        ("My Data.zip", Some(total as u64), None)
    );
    let lifetime = record.expires_at.timestamp_millis() - record.created_at.timestamp_millis();
    assert_eq!(lifetime, 24 * 3600 * 1000, "kept a day");
    assert_eq!(body["expires_at"], yds_store::rfc3339(record.expires_at));

    let url = format!("/uploads/{id}");
    let key = format!("temp/uploads/{id}/My Data.zip");
    let range = |first: usize, last: usize| format!("bytes {first}-{last}/{total}");
    // Nothing stored yet: 308 without Range.
    let asked = service.call(put(&url, "k", Some(&format!("bytes */{total}")), Bytes::new())).await;
    assert_eq!(standing(&asked), (308, None));
    let first = service.call(put(&url, "k", Some(&range(0, PIECE - 1)), data.slice(..PIECE))).await;
    assert_eq!(standing(&first), (308, Some("bytes=0-262143")));
    // The same piece again (its answer was lost): nothing is written twice.
    let again = service.call(put(&url, "k", Some(&range(0, PIECE - 1)), data.slice(..PIECE))).await;
    assert_eq!(standing(&again), (308, Some("bytes=0-262143")));
    // A piece past the stored end (one went missing): nothing written, told where to resume.
    let ahead = service.call(put(&url, "k", Some(&range(2 * PIECE, total - 1)), data.slice(2 * PIECE..))).await;
    assert_eq!(standing(&ahead), (308, Some("bytes=0-262143")));
    assert_eq!(objects.size(&key).await.unwrap(), Some(PIECE as u64));
    // Another tenant's key finds no such upload.
    let foreign =
        service.call(put(&url, "other", Some(&range(PIECE, 2 * PIECE - 1)), data.slice(PIECE..2 * PIECE))).await;
    assert_eq!(foreign.status(), 404);
    // A status query, then the rest.
    let asked = service.call(put(&url, "k", Some("bytes */*"), Bytes::new())).await;
    assert_eq!(standing(&asked), (308, Some("bytes=0-262143")));
    let second = service.call(put(&url, "k", Some(&range(PIECE, 2 * PIECE - 1)), data.slice(PIECE..2 * PIECE))).await;
    assert_eq!(standing(&second), (308, Some("bytes=0-524287")));
    assert_eq!(db.uploads.find_for_tenant("acme", &id).await.unwrap().unwrap().completed_bytes, None);
    let last = service.call(put(&url, "k", Some(&range(2 * PIECE, total - 1)), data.slice(2 * PIECE..))).await;
    assert_eq!(last.status(), 201, "{:?}", last.body());
    assert_eq!(
        json(&last),
        serde_json::json!({"upload_id": id, "source_url": format!("upload://{id}"), "size_bytes": total})
    );
    assert_eq!(objects.get(&key).await.unwrap(), data, "the object is the bytes sent, once each");
    assert_eq!(db.uploads.find_for_tenant("acme", &id).await.unwrap().unwrap().completed_bytes, Some(total as u64));
    // Finished: the last piece again, or a query, answers 200.
    let repeated = service.call(put(&url, "k", Some(&range(2 * PIECE, total - 1)), data.slice(2 * PIECE..))).await;
    assert_eq!(repeated.status(), 200);
    assert_eq!(service.call(put(&url, "k", Some(&format!("bytes */{total}")), Bytes::new())).await.status(), 200);
    assert_eq!(objects.get(&key).await.unwrap(), data);
}

#[tokio::test(flavor = "multi_thread")]
async fn limits_bad_requests_and_unknown_uploads_are_refused_with_problems() {
    let db = test_db().await;
    let dir = tempfile::tempdir().unwrap();
    let objects: Arc<dyn ObjectStore> = Arc::new(LocalStore::new(dir.path()));
    let max = 3 * PIECE as u64;
    let service = service(db.clone(), objects.clone(), max);

    // 413 naming the limit and the size asked for.
    let too_large = service.call(post(&format!(r#"{{"file_name":"d.zip","size_bytes":{}}}"#, max + 1))).await;
    assert_eq!(too_large.status(), 413);
    assert_eq!(too_large.headers()["content-type"], "application/problem+json");
    let detail = json(&too_large)["detail"].as_str().unwrap().to_owned();
    assert!(detail.contains("786433 bytes") && detail.contains("limit of 786432 bytes"), "{detail}");
    for (body, status, says) in [
        (r#"{"file_name":"d.zip","extra":1}"#, 422, "unknown field `extra`"),
        (r#"{"size_bytes":10}"#, 422, "missing field `file_name`"),
        (r#"{"file_name":"d.rar"}"#, 422, "must end with"),
        (r#"{"file_name":"../d.zip"}"#, 422, "not a path"),
        (r#"{"file_name":"d.zip","size_bytes":"ten"}"#, 422, "invalid type"),
        ("not json", 400, "not valid JSON"),
    ] {
        let response = service.call(post(body)).await;
        assert_eq!(response.status(), status, "{body}");
        let detail = json(&response)["detail"].as_str().unwrap().to_owned();
        assert!(detail.contains(says), "{body}: {detail}");
    }
    let get = http::Request::get("/uploads").header("x-api-key", "k").body(Bytes::new()).unwrap();
    assert_eq!(service.call(get).await.status(), 405);
    let unkeyed = http::Request::post("/uploads").body(Bytes::from_static(br#"{"file_name":"d.zip"}"#)).unwrap();
    assert_eq!(service.call(unkeyed).await.status(), 401);

    // Size unknown up front: the limit holds piece by piece.
    let created = json(&service.call(post(r#"{"file_name":"d.tar.gz"}"#)).await);
    let url = created["upload_url"].as_str().unwrap().to_owned();
    let data = pattern(4 * PIECE);
    for i in 0..3 {
        let range = format!("bytes {}-{}/*", i * PIECE, (i + 1) * PIECE - 1);
        let response = service.call(put(&url, "k", Some(&range), data.slice(i * PIECE..(i + 1) * PIECE))).await;
        assert_eq!(response.status(), 308);
    }
    let past = service
        .call(put(&url, "k", Some(&format!("bytes {}-{}/*", 3 * PIECE, 4 * PIECE - 1)), data.slice(3 * PIECE..)))
        .await;
    assert_eq!(past.status(), 413);
    let detail = json(&past)["detail"].as_str().unwrap().to_owned();
    assert!(detail.contains("past the limit of 786432 bytes"), "{detail}");
    let total_too_large = service.call(put(&url, "k", Some(&format!("bytes */{}", max + 1)), Bytes::new())).await;
    assert_eq!(total_too_large.status(), 413);
    for (range, body, says) in [
        (Some("bytes 0-9/*"), pattern(10), "multiple of 262144"),
        (Some("bytes 0-99/*"), pattern(10), "the body has 10 bytes"),
        (Some("lines 1-2/3"), pattern(2), "is not `bytes FIRST-LAST/TOTAL`"),
        (None, Bytes::new(), "`Content-Range` header is required"),
    ] {
        let response = service.call(put(&url, "k", range, body)).await;
        assert_eq!(response.status(), 400, "{range:?}");
        let detail = json(&response)["detail"].as_str().unwrap().to_owned();
        assert!(detail.contains(says), "{range:?}: {detail}");
    }
    let declared = json(&service.call(post(r#"{"file_name":"d.zip","size_bytes":100}"#)).await);
    let declared_url = declared["upload_url"].as_str().unwrap();
    let other_total = service.call(put(declared_url, "k", Some("bytes 0-49/50"), pattern(50))).await;
    assert_eq!(other_total.status(), 400, "a total other than the declared size");
    // The declared size is the total when a piece says `*`.
    let whole = service.call(put(declared_url, "k", Some("bytes 0-99/*"), pattern(100))).await;
    assert_eq!(whole.status(), 201, "{:?}", whole.body());
    // An upload already longer than a total a request gives.
    let shorter = service.call(put(&url, "k", Some("bytes */1000"), Bytes::new())).await;
    assert_eq!(shorter.status(), 400);
    assert!(json(&shorter)["detail"].as_str().unwrap().contains("already holds 786432 bytes"));

    for missing in ["/uploads/0123456789abcdef0123456789abcdef", "/uploads/not-an-id"] {
        let response = service.call(put(missing, "k", Some("bytes */*"), Bytes::new())).await;
        assert_eq!(response.status(), 404, "{missing}");
        assert!(json(&response)["detail"].as_str().unwrap().contains("no such upload"));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_piece_takes_up_to_16_mib_and_only_on_the_piece_route() {
    let db = test_db().await;
    let dir = tempfile::tempdir().unwrap();
    let service = service(db, Arc::new(LocalStore::new(dir.path())), 1 << 30);
    assert_eq!(service.body_limit(&Method::PUT, "/uploads/0123456789abcdef0123456789abcdef"), 16 << 20);
    assert_eq!(service.body_limit(&Method::POST, "/uploads"), PUBLIC_MAX_BODY);
    assert_eq!(service.body_limit(&Method::PUT, "/uploads/a/b"), PUBLIC_MAX_BODY);

    let created = json(&service.call(post(r#"{"file_name":"big.tar"}"#)).await);
    let url = created["upload_url"].as_str().unwrap().to_owned();
    let piece = pattern(16 << 20);
    let response = service.call(put(&url, "k", Some("bytes 0-16777215/*"), piece)).await;
    assert_eq!(response.status(), 308);
    assert_eq!(response.headers()["range"], "bytes=0-16777215");
    let oversized = pattern((16 << 20) + PIECE);
    let range = format!("bytes 16777216-{}/*", (16 << 20) + oversized.len() - 1);
    assert_eq!(service.call(put(&url, "k", Some(&range), oversized)).await.status(), 413);
    let big_post = service.call(post(&format!(r#"{{"file_name":"{}.zip"}}"#, "n".repeat(PUBLIC_MAX_BODY)))).await;
    assert_eq!(big_post.status(), 413, "POST keeps the small limit");
}

#[tokio::test(flavor = "multi_thread")]
async fn uploads_written_more_than_a_day_ago_are_swept() {
    let db = test_db().await;
    let dir = tempfile::tempdir().unwrap();
    let objects: Arc<dyn ObjectStore> = Arc::new(LocalStore::new(dir.path()));
    for key in ["temp/uploads/aaaa/old.zip", "temp/uploads/bbbb/new.zip", "datasets/d/images/train/a.jpg"] {
        objects.put(key, Bytes::from_static(b"bytes")).await.unwrap();
    }
    let old = SystemTime::now() - Duration::from_secs(25 * 3600);
    for key in ["temp/uploads/aaaa/old.zip", "datasets/d/images/train/a.jpg"] {
        std::fs::File::options().write(true).open(dir.path().join(key)).unwrap().set_modified(old).unwrap();
    }
    let uploads = Uploads::new(db, objects.clone(), 1 << 20);
    assert_eq!(uploads.sweep().await.unwrap(), 1);
    assert_eq!(objects.size("temp/uploads/aaaa/old.zip").await.unwrap(), None);
    assert_eq!(objects.size("temp/uploads/bbbb/new.zip").await.unwrap(), Some(5), "a fresh upload stays");
    assert_eq!(objects.size("datasets/d/images/train/a.jpg").await.unwrap(), Some(5), "only uploads expire");

    // At start-up the sweep runs in the background; within the hour it does not run again.
    objects.put("temp/uploads/cccc/old.zip", Bytes::from_static(b"x")).await.unwrap();
    std::fs::File::options()
        .write(true)
        .open(dir.path().join("temp/uploads/cccc/old.zip"))
        .unwrap()
        .set_modified(old)
        .unwrap();
    uploads.sweep_if_due();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(objects.size("temp/uploads/cccc/old.zip").await.unwrap(), Some(1), "swept less than an hour ago");
    let fresh = Uploads::new(test_db().await, objects.clone(), 1 << 20);
    fresh.sweep_if_due();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while objects.size("temp/uploads/cccc/old.zip").await.unwrap().is_some() {
        assert!(std::time::Instant::now() < deadline, "the start-up sweep did not run");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// On Cloud Storage (a real `fake-gcs-server`), `upload_url` is a resumable session on the
/// bucket: the client's pieces go there, the object appears with the last one, and this
/// function's own `PUT` route sends the client there.
#[tokio::test(flavor = "multi_thread")]
async fn on_cloud_storage_the_upload_url_is_a_resumable_session_on_the_bucket() {
    let bin =
        tokio::task::spawn_blocking(|| local_stack::ensure_fake_gcs(&testkit::tools_dir())).await.unwrap().unwrap();
    let server =
        local_stack::FakeGcs::start(&bin, &PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("uploads-fake-gcs"))
            .await
            .unwrap();
    server.create_bucket("yds-uploads").await.unwrap();
    let bucket: Arc<dyn ObjectStore> =
        Arc::new(GcsStore::with_endpoint("yds-uploads", &server.endpoint).await.unwrap());
    let db = test_db().await;
    let service = service(db.clone(), bucket.clone(), 1 << 30);
    let data = pattern(PIECE + 123);
    let total = data.len();

    let created = service.call(post(&format!(r#"{{"file_name":"d.tar.gz","size_bytes":{total}}}"#))).await;
    assert_eq!(created.status(), 201);
    let created = json(&created);
    let id = created["upload_id"].as_str().unwrap();
    let session = created["upload_url"].as_str().unwrap();
    assert!(session.starts_with(&format!("{}/upload/storage/v1/b/yds-uploads/o?", server.endpoint)), "{session}");
    let record = db.uploads.find_for_tenant("acme", id).await.unwrap().unwrap();
    assert_eq!(record.session_url.as_deref(), Some(session));

    let client = reqwest::Client::new();
    let first = client
        .put(session)
        .header("content-range", format!("bytes 0-{}/{total}", PIECE - 1))
        .body(data.slice(..PIECE))
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 308);
    assert_eq!(first.headers()["range"], format!("bytes=0-{}", PIECE - 1));
    let last = client
        .put(session)
        .header("content-range", format!("bytes {PIECE}-{}/{total}", total - 1))
        .body(data.slice(PIECE..))
        .send()
        .await
        .unwrap();
    assert!(last.status() == 200 || last.status() == 201, "{}", last.status());
    assert_eq!(bucket.get(&format!("temp/uploads/{id}/d.tar.gz")).await.unwrap(), data);

    let here = service.call(put(&format!("/uploads/{id}"), "k", Some("bytes */*"), Bytes::new())).await;
    assert_eq!(here.status(), 409);
    assert!(json(&here)["detail"].as_str().unwrap().contains("straight to Cloud Storage"));
    server.shutdown().await;
}
