//! `gs://` import sources read through the Cloud Storage backend (ranged reads), against a
//! real `fake-gcs-server`: an archive (planned by range reads) and a `gs://bucket/prefix/`
//! folder (listed page by page) import like any other source.

use std::path::PathBuf;

use bytes::Bytes;
use local_stack::fake_gcs::{ensure_fake_gcs, FakeGcs};
use serde_json::json;
use yds::config::UrlPolicy;
use yds::import::{start_import, ImportSettings};
use yds::jobs::JobStatus;
use yds::storage::gcs::GcsStore;
use yds::storage::ObjectStore;

fn tools_dir() -> PathBuf {
    std::env::var_os("YDS_TEST_TOOLS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join(".yds-tools"))
}

#[tokio::test(flavor = "multi_thread")]
async fn gs_archives_and_folders_import_and_missing_objects_fail_the_job() {
    let bin = tokio::task::spawn_blocking(|| ensure_fake_gcs(&tools_dir())).await.unwrap().unwrap();
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

    let (mut backends, queue) = yds::inline::test_backends(dir.path()).await;
    backends.gcs_endpoint = Some(server.endpoint.clone());
    let settings =
        ImportSettings { url_policy: UrlPolicy::Local, default_chunk_size: 5, lease: backends.pacing.chunk_lease };
    let import = |url: &str| json!({"name": "gs", "archive_url": url}).to_string();

    let ok =
        start_import(&backends.db, &queue, &settings, "default", None, import("gs://sources/exports/d.zip").as_bytes())
            .await
            .unwrap();
    let tree =
        start_import(&backends.db, &queue, &settings, "default", None, import("gs://sources/trees/d/").as_bytes())
            .await
            .unwrap();
    let missing =
        start_import(&backends.db, &queue, &settings, "default", None, import("gs://sources/nope.zip").as_bytes())
            .await
            .unwrap();
    yds::inline::drain(&backends, &queue).await.unwrap();

    let job = yds::jobs::find(&backends.db, &ok.job_id).await.unwrap().unwrap();
    assert_eq!(job.status, JobStatus::Completed);
    let stats = job.result.unwrap().stats;
    assert_eq!(stats.images, generated.image_count() as u64);
    assert_eq!(stats.annotations, generated.annotation_count() as u64);

    // The folder is listed page by page and its objects are read where they are.
    let job = yds::jobs::find(&backends.db, &tree.job_id).await.unwrap().unwrap();
    assert_eq!(job.status, JobStatus::Completed, "errors: {:?}", job.errors);
    let stats = job.result.unwrap().stats;
    assert_eq!(stats.images, generated.image_count() as u64);
    assert_eq!(stats.annotations, generated.annotation_count() as u64);
    let staged = backends.store.list(&format!("temp/{}/", tree.job_id), None, 10).await.unwrap();
    assert!(staged.objects.is_empty(), "a folder source is not staged: {:?}", staged.objects);

    let job = yds::jobs::find(&backends.db, &missing.job_id).await.unwrap().unwrap();
    assert_eq!(job.status, JobStatus::Failed);
    assert_eq!(job.errors[0].code, "source_not_found");
}
