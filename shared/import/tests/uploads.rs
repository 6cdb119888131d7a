//! `upload://` sources: an archive uploaded to the deployment (`POST /uploads`) is imported by
//! its `source_url` under either URL policy, read by range from the deployment's own object
//! store; another tenant's, an incomplete and an expired upload are refused before any record.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use serde_json::json;
use yds_config::UrlPolicy;
use yds_import::accept::{AcceptError, Acceptor};
use yds_import::Importer;
use yds_storage::{keys, ObjectStore};
use yds_store::{DateTime, JobStatus, Sources, UploadDoc};

/// An upload record of `tenant` for `file_name`, created now, kept a day.
fn upload(id: &str, tenant: &str, file_name: &str, declared: Option<u64>) -> UploadDoc {
    let now = DateTime::now();
    UploadDoc {
        id: id.to_owned(),
        tenant: tenant.to_owned(),
        file_name: file_name.to_owned(),
        max_bytes: 1 << 30,
        declared_bytes: declared,
        session_url: None,
        created_at: now,
        expires_at: DateTime::from_millis(now.timestamp_millis() + 86_400_000),
        completed_bytes: None,
    }
}

/// A generated dataset packed as `name` (zip or tar.gz by its suffix): the archive's bytes and
/// the dataset's image and annotation counts.
fn archive(dir: &Path, name: &str, seed: u64) -> (Bytes, u64, u64) {
    let tree = dir.join(format!("tree-{seed}"));
    let generated = testkit::generate(&tree, &testkit::DatasetSpec::small(seed)).unwrap();
    let path = dir.join(name);
    if name.ends_with(".zip") {
        testkit::pack_zip(&tree, &path).unwrap();
    } else {
        testkit::pack_tar_gz(&tree, &path).unwrap();
    }
    let bytes = Bytes::from(std::fs::read(&path).unwrap());
    (bytes, generated.image_count() as u64, generated.annotation_count() as u64)
}

fn body(archive_url: &str) -> Vec<u8> {
    json!({"name": "uploaded", "archive_url": archive_url}).to_string().into_bytes()
}

fn refusal(result: Result<yds_import::accept::Accepted, AcceptError>) -> String {
    match result {
        Err(AcceptError::Invalid(detail)) => detail,
        Err(other) => panic!("expected a 422, got {other}"),
        Ok(accepted) => panic!("accepted: {accepted:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_complete_upload_imports_under_either_policy_by_its_source_url() {
    for (policy, name) in [(UrlPolicy::Strict, "My Export.tar.gz"), (UrlPolicy::Local, "data.zip")] {
        let dir = tempfile::tempdir().unwrap();
        let (importer, queue) = Importer::local(testkit::inline::test_db().await, dir.path(), policy);
        let (bytes, images, annotations) = archive(dir.path(), "packed", 21);
        let id = "0123456789abcdef0123456789abcdef";
        importer.db.uploads.insert(&upload(id, "acme", name, Some(bytes.len() as u64))).await.unwrap();
        importer.objects.put(&keys::upload(id, name), bytes.clone()).await.unwrap();
        assert!(importer.db.uploads.complete(id, bytes.len() as u64).await.unwrap());

        let acceptor = Acceptor::new(importer.clone(), 7);
        let accepted = acceptor.start("acme", None, &body(&format!("upload://{id}"))).await.unwrap();
        let job = importer.db.jobs.find(&accepted.job_id).await.unwrap().unwrap();
        assert_eq!(job.sources, Sources::Archive { url: format!("upload://{id}/{name}") }, "the job names the file");
        testkit::inline::drain(&importer, &queue).await.unwrap();
        let job = importer.db.jobs.find(&accepted.job_id).await.unwrap().unwrap();
        assert_eq!(job.status, JobStatus::Completed, "{policy:?}: {:?}", job.errors);
        let statistics = job.result.unwrap().statistics;
        assert_eq!((statistics.images, statistics.annotations), (images, annotations), "{policy:?}");
        assert_eq!(
            importer.objects.get(&keys::upload(id, name)).await.unwrap(),
            bytes,
            "the upload is read, not moved"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn uploads_of_another_tenant_incomplete_or_expired_are_refused_before_any_record() {
    let dir = tempfile::tempdir().unwrap();
    let (importer, queue) = testkit::inline::test_importer(dir.path()).await;
    let acceptor = Acceptor::new(importer.clone(), 7);
    let (bytes, _, _) = archive(dir.path(), "packed.zip", 3);
    let complete = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    importer.db.uploads.insert(&upload(complete, "acme", "d.zip", None)).await.unwrap();
    importer.objects.put(&keys::upload(complete, "d.zip"), bytes.clone()).await.unwrap();
    importer.db.uploads.complete(complete, bytes.len() as u64).await.unwrap();

    let foreign = refusal(acceptor.start("globex", None, &body(&format!("upload://{complete}"))).await);
    assert!(foreign.starts_with(&format!("no such upload `{complete}`")), "{foreign}");
    let unknown = refusal(acceptor.start("acme", None, &body("upload://bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb")).await);
    assert!(unknown.starts_with("no such upload"), "{unknown}");

    // 100 of 200 bytes, through the uploads function's pieces.
    let partial = "cccccccccccccccccccccccccccccccc";
    importer.db.uploads.insert(&upload(partial, "acme", "d.zip", Some(200))).await.unwrap();
    importer.objects.append_at(&keys::upload(partial, "d.zip"), 0, bytes.slice(..100)).await.unwrap();
    let incomplete = refusal(acceptor.start("acme", None, &body(&format!("upload://{partial}"))).await);
    assert_eq!(incomplete, format!("upload {partial} is not complete: 100 of 200 bytes received"));
    let undeclared = "dddddddddddddddddddddddddddddddd";
    importer.db.uploads.insert(&upload(undeclared, "acme", "d.zip", None)).await.unwrap();
    let nothing = refusal(acceptor.start("acme", None, &body(&format!("upload://{undeclared}"))).await);
    assert_eq!(nothing, format!("upload {undeclared} is not complete: 0 bytes received, and not the last piece"));

    // A day old: gone, even before MongoDB's TTL monitor removes the record.
    let expired = "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee";
    let mut old = upload(expired, "acme", "d.zip", None);
    old.expires_at = DateTime::from_millis(DateTime::now().timestamp_millis() - 1000);
    old.completed_bytes = Some(bytes.len() as u64);
    importer.db.uploads.insert(&old).await.unwrap();
    importer.objects.put(&keys::upload(expired, "d.zip"), bytes.clone()).await.unwrap();
    assert!(refusal(acceptor.start("acme", None, &body(&format!("upload://{expired}"))).await)
        .starts_with("no such upload"));

    // A session's client may send more than the limit when it declared no size: refused here.
    let oversized = "abababababababababababababababab";
    let mut large = upload(oversized, "acme", "d.zip", None);
    (large.max_bytes, large.completed_bytes) = (1000, Some(bytes.len() as u64));
    importer.db.uploads.insert(&large).await.unwrap();
    let refused = refusal(acceptor.start("acme", None, &body(&format!("upload://{oversized}"))).await);
    assert_eq!(refused, format!("upload {oversized} is {} bytes, more than the limit of 1000 bytes", bytes.len()));

    // An upload is an archive source only; a malformed one is no upload at all.
    let parts = json!({"name": "p", "config_url": format!("upload://{complete}"), "images_url": "https://x.org/i.zip",
        "labels_url": "https://x.org/l.zip"});
    let parts = refusal(acceptor.start("acme", None, parts.to_string().as_bytes()).await);
    assert!(parts.contains("imported whole, as `archive_url`"), "{parts}");
    let malformed = refusal(acceptor.start("acme", None, &body("upload://../../etc/passwd")).await);
    assert!(malformed.contains("is not an upload's `source_url`"), "{malformed}");

    assert_eq!(testkit::inline::count(&importer.db, "import_jobs", mongodb::bson::doc! {}).await, 0);
    assert_eq!(testkit::inline::count(&importer.db, "datasets", mongodb::bson::doc! {}).await, 0);
    assert!(testkit::inline::take(&queue).is_empty());
}

/// On Cloud Storage (a real `fake-gcs-server`) the client finishes a session without telling
/// the service: the object's existence says the upload is complete, and is recorded.
#[tokio::test(flavor = "multi_thread")]
async fn a_session_upload_is_complete_once_its_object_exists() {
    use local_stack::fake_gcs::{ensure_fake_gcs, FakeGcs};
    let bin = tokio::task::spawn_blocking(|| ensure_fake_gcs(&testkit::tools_dir())).await.unwrap().unwrap();
    let server =
        FakeGcs::start(&bin, &PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fake-gcs-uploads")).await.unwrap();
    server.create_bucket("yds-data").await.unwrap();
    let bucket: Arc<dyn ObjectStore> =
        Arc::new(yds_storage::GcsStore::with_endpoint("yds-data", &server.endpoint).await.unwrap());

    let dir = tempfile::tempdir().unwrap();
    let (local, queue) = testkit::inline::test_importer(dir.path()).await;
    let importer =
        Importer { objects: bucket.clone(), sources: local.sources.clone().with_uploads(bucket.clone()), ..local };
    let (bytes, images, _) = archive(dir.path(), "packed.tar.gz", 8);
    let id = "ffffffffffffffffffffffffffffffff";
    let key = keys::upload(id, "d.tar.gz");
    let session = bucket.start_upload_session(&key, Some(bytes.len() as u64)).await.unwrap().unwrap();
    let mut record = upload(id, "acme", "d.tar.gz", Some(bytes.len() as u64));
    record.session_url = Some(session.clone());
    importer.db.uploads.insert(&record).await.unwrap();
    let acceptor = Acceptor::new(importer.clone(), 7);

    // An emulator's session is not asked how far it came (it would finish the object).
    let pending = refusal(acceptor.start("acme", None, &body(&format!("upload://{id}"))).await);
    assert_eq!(pending, format!("upload {id} is not complete: its last piece has not arrived"));
    let resp = reqwest::Client::new()
        .put(&session)
        .header("content-range", format!("bytes 0-{}/{}", bytes.len() - 1, bytes.len()))
        .body(bytes.clone())
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());
    let accepted = acceptor.start("acme", None, &body(&format!("upload://{id}"))).await.unwrap();
    let recorded = importer.db.uploads.find_for_tenant("acme", id).await.unwrap().unwrap();
    assert_eq!(recorded.completed_bytes, Some(bytes.len() as u64), "completion found and recorded");
    testkit::inline::drain(&importer, &queue).await.unwrap();
    let job = importer.db.jobs.find(&accepted.job_id).await.unwrap().unwrap();
    assert_eq!(job.status, JobStatus::Completed, "{:?}", job.errors);
    assert_eq!(job.result.unwrap().statistics.images, images);
    server.shutdown().await;
}
