//! Faults the cloud throws, against the real local stack: the database killed (SIGKILL, no
//! clean shutdown) and restarted mid-import while tasks are also delivered twice. The import
//! must end with the same image documents and counts as a clean import of the same files.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{json, Value};
use testkit::DatasetSpec;
use yds_tests::{Chaos, TestStack};

/// What an image document must be in both imports (ids and times differ by design).
fn comparable(images: &[Value]) -> BTreeMap<String, Value> {
    images
        .iter()
        .map(|i| {
            let key = format!("{}/{}", i["split"].as_str().unwrap(), i["file_name"].as_str().unwrap());
            let kept = json!({
                "width": i["width"], "height": i["height"], "valid": i["valid"],
                "annotations": i["annotations"], "issues": i["issues"], "content_hash": i["content_hash"],
            });
            (key, kept)
        })
        .collect()
}

/// Polls the job until it has done some work but not all of it; tolerates a busy stack.
async fn wait_until_under_way(stack: &TestStack, job_id: &str) {
    for _ in 0..600 {
        let (code, status) = stack.get(&format!("/datasets/import/{job_id}/status")).await;
        if code == 200 && status["progress"]["files_done"].as_u64().unwrap_or(0) > 0 {
            assert_ne!(status["status"], "completed", "the import finished before the fault: make it larger");
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("job {job_id} never started");
}

#[tokio::test(flavor = "multi_thread")]
async fn mongod_killed_mid_import_loses_and_doubles_nothing() {
    let work = tempfile::tempdir().unwrap();
    let mut spec = DatasetSpec::small(41);
    spec.splits = vec![("train".into(), 160), ("val".into(), 40)];
    let generated = testkit::generate(&work.path().join("src"), &spec).unwrap();
    let archive = work.path().join("d.tar.gz");
    testkit::pack_tar_gz(&work.path().join("src"), &archive).unwrap();
    let source = format!("file://{}", archive.display());

    let mut stack = TestStack::start_with_own_mongod(Chaos { duplicate: 0.3, crash: 0.0, storage: 0.0 }).await;
    let (code, faulty) = stack.import(&json!({"name": "faulty", "archive_url": source, "chunk_size": 4})).await;
    assert_eq!(code, 202, "{faulty}");
    let faulty_job = faulty["job_id"].as_str().unwrap();
    wait_until_under_way(&stack, faulty_job).await;
    stack.stack.kill_and_restart_mongod(Duration::from_secs(2)).await.expect("mongod comes back");
    let status = stack.wait_terminal(faulty_job).await;
    assert_eq!(status["status"], "completed", "{status}");

    let (code, clean) = stack.import(&json!({"name": "clean", "archive_url": source, "chunk_size": 4})).await;
    assert_eq!(code, 202);
    let clean_status = stack.wait_terminal(clean["job_id"].as_str().unwrap()).await;
    assert_eq!(clean_status["status"], "completed");

    for (name, counts) in [("after the fault", &status["counts"]), ("clean", &clean_status["counts"])] {
        assert_eq!(counts["images"], generated.image_count(), "{name}: {counts}");
        assert_eq!(counts["annotations"], generated.annotation_count(), "{name}: {counts}");
    }
    let faulty_images = stack.all_images(faulty["dataset_id"].as_str().unwrap(), 500, "").await;
    let clean_images = stack.all_images(clean["dataset_id"].as_str().unwrap(), 500, "").await;
    assert_eq!(faulty_images.len(), generated.image_count(), "no image lost or doubled");
    assert_eq!(comparable(&faulty_images), comparable(&clean_images), "the same documents as a clean import");
    stack.shutdown().await;
}
