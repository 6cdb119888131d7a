//! Faults the cloud throws, against the real local stack: the database killed (SIGKILL, no
//! clean shutdown) and restarted mid-import while tasks are also delivered twice; the whole
//! stack killed the same way and started again. The import must end with the same image
//! documents and counts as a clean import of the same files.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use local_stack::process_status;
use local_stack::stack::Stack;
use serde_json::{json, Value};
use testkit::DatasetSpec;
use yds_tests::{Chaos, TestStack, KEY};

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

/// A generated dataset of `train` + `val` images packed as a tar.gz in `work`, and its URL.
fn tar_gz_dataset(work: &Path, seed: u64, train: usize, val: usize) -> (testkit::GeneratedDataset, String) {
    let mut spec = DatasetSpec::small(seed);
    spec.splits = vec![("train".into(), train), ("val".into(), val)];
    let generated = testkit::generate(&work.join("src"), &spec).unwrap();
    let archive = work.join("d.tar.gz");
    testkit::pack_tar_gz(&work.join("src"), &archive).unwrap();
    (generated, format!("file://{}", archive.display()))
}

/// Imports `source` again on a clean stack and checks that the faulty import made the same
/// image documents and counts.
async fn assert_same_as_clean_import(
    stack: &TestStack,
    faulty: &Value,
    status: &Value,
    source: &str,
    generated: &testkit::GeneratedDataset,
) {
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
}

#[tokio::test(flavor = "multi_thread")]
async fn mongod_killed_mid_import_loses_and_doubles_nothing() {
    let work = tempfile::tempdir().unwrap();
    let (generated, source) = tar_gz_dataset(work.path(), 41, 160, 40);

    let mut stack = TestStack::start_with_own_mongod(Chaos { duplicate: 0.3, crash: 0.0, storage: 0.0 }).await;
    let (code, faulty) = stack.import(&json!({"name": "faulty", "archive_url": source, "chunk_size": 4})).await;
    assert_eq!(code, 202, "{faulty}");
    let faulty_job = faulty["job_id"].as_str().unwrap();
    wait_until_under_way(&stack, faulty_job).await;
    stack.stack.kill_and_restart_mongod(Duration::from_secs(2)).await.expect("mongod comes back");
    let status = stack.wait_terminal(faulty_job).await;
    assert_eq!(status["status"], "completed", "{status}");

    assert_same_as_clean_import(&stack, &faulty, &status, &source, &generated).await;
    stack.shutdown().await;
}

/// Where [`stack_to_be_killed`] keeps its data, and the line it prints once it serves.
const STACK_DIR_VAR: &str = "YDS_TEST_KILLED_STACK_DIR";
const SERVING: &str = "killed-stack serving at ";

/// Not a test of its own: the first life of the stack that
/// [`the_whole_stack_killed_mid_import_finishes_it_exactly_when_started_again`] kills. That
/// test runs this binary again for this function alone, so that the stack (its gateway and
/// queue in this process, mongod and the five functions as its children) can die by SIGKILL.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "a child process of the_whole_stack_killed_mid_import_finishes_it_exactly_when_started_again"]
async fn stack_to_be_killed() {
    let Some(dir) = std::env::var_os(STACK_DIR_VAR) else { return };
    let chaos = Chaos { duplicate: 0.3, crash: 0.3, storage: 0.0 };
    let stack = Stack::start(TestStack::own_mongod_options(Path::new(&dir), chaos)).await.expect("the stack starts");
    println!("{SERVING}{}", stack.base_url);
    std::future::pending::<()>().await;
}

/// The first life's process, killed if the test fails before it does (its children follow).
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The processes below `root`, from `/proc` (children, their children, ...).
fn descendants(root: u32) -> Vec<u32> {
    let parents: Vec<(u32, u32)> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| Some((pid, process_status(pid)?.ppid)))
        .collect();
    let mut found = vec![root];
    let mut at = 0;
    while at < found.len() {
        let parent = found[at];
        found.extend(parents.iter().filter(|(_, ppid)| *ppid == parent).map(|(pid, _)| *pid));
        at += 1;
    }
    found.remove(0);
    found
}

fn is_gone(pid: u32) -> bool {
    process_status(pid).is_none_or(|status| status.has_exited())
}

/// How the first life of the stack dies.
#[derive(Clone, Copy, PartialEq)]
enum Death {
    /// Every process at once, by SIGKILL: a host dying.
    Everything,
    /// Only the stack's own process (`cargo xtask serve` killed): the kernel then sends its
    /// children SIGTERM, and mongod is still shutting down when the stack starts again.
    StackProcess,
}

#[tokio::test(flavor = "multi_thread")]
async fn the_whole_stack_killed_mid_import_finishes_it_exactly_when_started_again() {
    killed_mid_import_then_started_again(Death::Everything).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stack_started_again_at_once_after_its_process_was_killed_finishes_the_import() {
    killed_mid_import_then_started_again(Death::StackProcess).await;
}

async fn killed_mid_import_then_started_again(death: Death) {
    let work = tempfile::tempdir().unwrap();
    let (generated, source) = tar_gz_dataset(work.path(), 43, 200, 50);

    // First life: the stack in a child process, tasks delivered twice and chunks crashing.
    let dir = tempfile::tempdir().unwrap();
    let mut first =
        KillOnDrop(testkit::child::run_helper("stack_to_be_killed", &[(STACK_DIR_VAR, dir.path().as_os_str())]));
    let stdout = first.0.stdout.take().unwrap();
    let base_url = tokio::task::spawn_blocking(move || testkit::child::line_after(stdout, SERVING))
        .await
        .unwrap()
        .expect("the killed stack's first life starts");
    let client = reqwest::Client::new();
    let faulty: Value = client
        .post(format!("{base_url}/datasets/import"))
        .header("x-api-key", KEY)
        .json(&json!({"name": "faulty", "archive_url": source, "chunk_size": 4}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let job_id = faulty["job_id"].as_str().expect("the import is accepted").to_owned();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status: Value = client
            .get(format!("{base_url}/datasets/import/{job_id}/status"))
            .header("x-api-key", KEY)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap_or(Value::Null);
        if status["progress"]["files_done"].as_u64().unwrap_or(0) > 0 {
            assert_eq!(status["status"], "running", "the import finished before the kill: make it larger");
            break;
        }
        assert!(Instant::now() < deadline, "the import never got under way: {status}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // The stack's process is stopped first so that it starts nothing more; then SIGKILL for its
    // children (mongod, the five functions) when everything dies, and for itself.
    let root = first.0.id();
    // SAFETY: plain kill(2) calls on processes this test started.
    unsafe { libc::kill(root as i32, libc::SIGSTOP) };
    let children = descendants(root);
    assert!(children.len() >= 6, "mongod and the five functions run below the stack: {children:?}");
    if death == Death::Everything {
        for pid in &children {
            // SAFETY: kill(2) on processes this test started.
            unsafe { libc::kill(*pid as i32, libc::SIGKILL) };
        }
    }
    // SAFETY: kill(2) on the process this test started.
    unsafe { libc::kill(root as i32, libc::SIGKILL) };
    first.0.wait().unwrap();
    if death == Death::Everything {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !children.iter().all(|pid| is_gone(*pid)) {
            assert!(Instant::now() < deadline, "killed processes still run");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    } else {
        assert!(!children.iter().all(|pid| is_gone(*pid)), "the stack's children take a moment to stop");
    }

    // Second life: the same data, queue and database files, as `serve` run again.
    let stack = TestStack::start_with_own_mongod_in(dir, Chaos::default()).await;
    let status = stack.wait_terminal(&job_id).await;
    assert_eq!(status["status"], "completed", "{status}");
    assert_eq!(status["progress"]["files_done"], generated.image_count());
    assert_same_as_clean_import(&stack, &faulty, &status, &source, &generated).await;
    stack.shutdown().await;
}
