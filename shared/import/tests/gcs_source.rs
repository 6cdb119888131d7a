//! `gs://` import sources read through the Cloud Storage backend (ranged reads), against a
//! real `fake-gcs-server`: an archive (planned by range reads) and a `gs://bucket/prefix/`
//! folder (listed page by page) import like any other source.

use std::path::PathBuf;

use bytes::Bytes;
use local_stack::fake_gcs::{ensure_fake_gcs, FakeGcs};
use serde_json::json;
use yds_import::accept::Acceptor;
use yds_storage::gcs::GcsStore;
use yds_storage::ObjectStore;
use yds_store::JobStatus;

#[tokio::test(flavor = "multi_thread")]
async fn gs_archives_and_folders_import_and_missing_objects_fail_the_job() {
    let bin = tokio::task::spawn_blocking(|| ensure_fake_gcs(&testkit::tools_dir())).await.unwrap().unwrap();
    let server =
        FakeGcs::start(&bin, &PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fake-gcs-source")).await.unwrap();
    server.create_bucket("sources").await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let generated = testkit::generate(&dir.path().join("src"), &testkit::DatasetSpec::small(13)).unwrap();
    let archive = dir.path().join("d.zip");
    testkit::pack_zip(&dir.path().join("src"), &archive).unwrap();
    let bucket = GcsStore::with_endpoint("sources", &server.endpoint).await.unwrap();
    bucket.put("exports/d.zip", Bytes::from(std::fs::read(&archive).unwrap())).await.unwrap();
    // The same dataset as a folder of objects.
    for rel in testkit::files_under(&dir.path().join("src")).unwrap() {
        let data = Bytes::from(std::fs::read(dir.path().join("src").join(&rel)).unwrap());
        bucket.put(&format!("trees/d/{rel}"), data).await.unwrap();
    }

    let (mut importer, queue) = testkit::inline::test_importer(dir.path()).await;
    importer.sources.gcs_endpoint = Some(server.endpoint.clone());
    let acceptor = Acceptor::new(importer.clone(), 5);
    let import = |url: &str| {
        let body = json!({"name": "gs", "archive_url": url}).to_string();
        let acceptor = acceptor.clone();
        async move { acceptor.start("default", None, body.as_bytes()).await.unwrap() }
    };
    let ok = import("gs://sources/exports/d.zip").await;
    let tree = import("gs://sources/trees/d/").await;
    let missing = import("gs://sources/nope.zip").await;
    testkit::inline::drain(&importer, &queue).await.unwrap();

    let job = importer.db.jobs.find(&ok.job_id).await.unwrap().unwrap();
    assert_eq!(job.status, JobStatus::Completed);
    let stats = job.result.unwrap().statistics;
    assert_eq!(stats.images, generated.image_count() as u64);
    assert_eq!(stats.annotations, generated.annotation_count() as u64);

    // The folder is listed page by page and its objects are read where they are.
    let job = importer.db.jobs.find(&tree.job_id).await.unwrap().unwrap();
    assert_eq!(job.status, JobStatus::Completed, "errors: {:?}", job.errors);
    let stats = job.result.unwrap().statistics;
    assert_eq!(stats.images, generated.image_count() as u64);
    assert_eq!(stats.annotations, generated.annotation_count() as u64);
    let staged = importer.objects.list(&format!("temp/{}/", tree.job_id), None, 10).await.unwrap();
    assert!(staged.objects.is_empty(), "a folder source is not staged: {:?}", staged.objects);

    let job = importer.db.jobs.find(&missing.job_id).await.unwrap().unwrap();
    assert_eq!(job.status, JobStatus::Failed);
    assert_eq!(job.errors[0].code, "source_not_found");
}
