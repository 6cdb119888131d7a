//! import-trigger invoked directly (no server) against a real mongod.

use bytes::Bytes;
use futures::TryStreamExt;
use import_trigger::ImportTrigger;
use mongodb::bson::{doc, Document};
use testkit::inline::{inspect, take, test_importer};
use yds_config::ConfiguredKeys;
use yds_edge::access::KeyLookup;
use yds_edge::rate_limit::RateLimit;
use yds_edge::{EdgeOptions, Service, PUBLIC_MAX_BODY};
use yds_import::TaskBody;
use yds_store::DatasetStatus;

/// Documents in one of the database's collections.
async fn count(db: &yds_store::Db, collection: &str) -> u64 {
    inspect(db).await.collection::<Document>(collection).count_documents(doc! {}).await.unwrap()
}

fn post(body: &str, idempotency_key: Option<&str>) -> yds_edge::Request {
    let mut builder =
        http::Request::post("/datasets/import").header("x-api-key", "k").header("content-type", "application/json");
    if let Some(key) = idempotency_key {
        builder = builder.header("idempotency-key", key);
    }
    builder.body(Bytes::from(body.to_owned())).unwrap()
}

#[tokio::test]
async fn accepted_imports_record_the_job_and_enqueue_planning_once() {
    let dir = tempfile::tempdir().unwrap();
    let (importer, queue) = test_importer(dir.path()).await;
    let db = importer.db.clone();
    let service = Service::new(
        ImportTrigger::new(importer, 50, RateLimit::per_minute(0)),
        EdgeOptions {
            api_keys: Some(ConfiguredKeys::parse("k:acme").unwrap().into()),
            max_body_bytes: PUBLIC_MAX_BODY,
            url_signer: None,
        },
    );
    let body = r#"{"name":"d","archive_url":"http://127.0.0.1:1/d.zip"}"#;
    let resp = service.call(post(body, Some("abc"))).await;
    assert_eq!(resp.status(), 202);
    let accepted: serde_json::Value = serde_json::from_slice(resp.body()).unwrap();
    let job_id = accepted["job_id"].as_str().unwrap();
    assert_eq!(resp.headers()["location"], format!("/datasets/import/{job_id}/status"));
    assert_eq!(accepted["status"], "queued");

    let job = db.jobs.find(job_id).await.unwrap().expect("job recorded");
    assert_eq!(job.tenant, "acme");
    assert_eq!(job.chunk_size, 50);
    let dataset = db.datasets.find(&job.dataset_id).await.unwrap().unwrap();
    assert_eq!(dataset.name, "d");
    assert_eq!(dataset.status, DatasetStatus::Importing);

    // The same request again: same job, planning still enqueued once.
    let again = service.call(post(body, Some("abc"))).await;
    let again: serde_json::Value = serde_json::from_slice(again.body()).unwrap();
    assert_eq!(again["job_id"], job_id);
    assert_eq!(take(&queue), vec![TaskBody::Plan { job_id: job_id.to_owned() }]);
    assert_eq!(count(&db, "import_jobs").await, 1);
}

#[tokio::test]
async fn invalid_requests_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (importer, queue) = test_importer(dir.path()).await;
    let db = importer.db.clone();
    let service = Service::new(
        ImportTrigger::new(importer, 50, RateLimit::per_minute(0)),
        EdgeOptions {
            api_keys: Some(ConfiguredKeys::parse("k").unwrap().into()),
            max_body_bytes: PUBLIC_MAX_BODY,
            url_signer: None,
        },
    );
    for (body, status) in [
        (r#"{"name":"d"}"#, 422),
        (r#"{"name":"d","archive_url":"file:///x.zip","extra":true}"#, 422),
        (r#"not json"#, 400),
    ] {
        assert_eq!(service.call(post(body, None)).await.status(), status, "{body}");
    }
    let get = http::Request::get("/datasets/import").header("x-api-key", "k").body(Bytes::new()).unwrap();
    assert_eq!(service.call(get).await.status(), 405);
    assert!(take(&queue).is_empty());
    assert_eq!(count(&db, "import_jobs").await, 0);
    assert_eq!(count(&db, "datasets").await, 0);
}

#[tokio::test]
async fn stored_keys_authenticate_hashed_and_imports_are_rate_limited_per_key() {
    let dir = tempfile::tempdir().unwrap();
    let (importer, _queue) = test_importer(dir.path()).await;
    let db = importer.db.clone();
    let key = yds_edge::access::create(&db, "acme", "ci").await.unwrap();
    let other = yds_edge::access::create(&db, "acme", "second").await.unwrap();
    // Only the hash is stored: the clear key appears nowhere in the collection.
    let api_keys = inspect(&db).await.collection::<Document>("api_keys");
    let stored: Vec<_> = api_keys.find(doc! {}).await.unwrap().try_collect().await.unwrap();
    assert_eq!(stored.len(), 2);
    let dump = format!("{stored:?}");
    assert!(!dump.contains(&key[4..]) && !dump.contains(&other[4..]), "{dump}");

    let keys = KeyLookup::new(ConfiguredKeys::default(), db.clone());
    let service = Service::new(
        ImportTrigger::new(importer, 50, RateLimit::per_minute(3)),
        EdgeOptions { api_keys: Some(keys), max_body_bytes: PUBLIC_MAX_BODY, url_signer: None },
    );
    let request = |key: &str| {
        http::Request::post("/datasets/import")
            .header("x-api-key", key)
            .body(Bytes::from_static(br#"{"name":"d","archive_url":"http://127.0.0.1:1/d.zip"}"#))
            .unwrap()
    };
    for _ in 0..3 {
        assert_eq!(service.call(request(&key)).await.status(), 202);
    }
    let limited = service.call(request(&key)).await;
    assert_eq!(limited.status(), 429);
    let retry_after: u64 = limited.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert_eq!(limited.headers()["content-type"], "application/problem+json");
    // The limit is per key: the tenant's other key still imports.
    assert_eq!(service.call(request(&other)).await.status(), 202);
    assert_eq!(count(&db, "import_jobs").await, 4, "the refused import wrote nothing");

    // Unknown and revoked keys get 401.
    assert_eq!(service.call(request("yds_not-a-key")).await.status(), 401);
    assert_eq!(yds_edge::access::revoke(&db, &other[..12]).await.unwrap(), 1);
    let fresh = Service::new(
        ImportTrigger::new(test_importer(dir.path()).await.0, 50, RateLimit::per_minute(0)),
        EdgeOptions {
            api_keys: Some(KeyLookup::new(ConfiguredKeys::default(), db.clone())),
            max_body_bytes: PUBLIC_MAX_BODY,
            url_signer: None,
        },
    );
    assert_eq!(fresh.call(request(&other)).await.status(), 401, "a revoked key");
}
