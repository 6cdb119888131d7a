//! Failing fast and degrading gracefully, against the real local stack: its own mongod stopped
//! under it, the reads answer 503 problem+json naming MongoDB with `Retry-After` within a
//! couple of seconds each (never a hang); mongod started again on the same data, the same
//! requests succeed without restarting the stack, and the dataset is whole.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use testkit::DatasetSpec;
use yds_tests::{Chaos, TestStack, KEY};

/// Generous for CI: the functions wait ~1 s (`YDS_MONGODB_TIMEOUT_MS`) for a server before the
/// breaker opens, then answer at once.
const BOUND: Duration = Duration::from_secs(5);

struct Answer {
    status: u16,
    retry_after: Option<u64>,
    content_type: String,
    body: Value,
    took: Duration,
}

async fn get(client: &reqwest::Client, base: &str, path: &str) -> Answer {
    let started = Instant::now();
    let resp = client
        .get(format!("{base}{path}"))
        .header("x-api-key", KEY)
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    let status = resp.status().as_u16();
    let retry_after = resp.headers().get("retry-after").and_then(|v| v.to_str().ok()?.parse().ok());
    let content_type = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let body = resp.json().await.unwrap_or(Value::Null);
    Answer { status, retry_after, content_type, body, took: started.elapsed() }
}

#[tokio::test(flavor = "multi_thread")]
async fn reads_answer_503_at_once_while_mongod_is_down_and_recover_when_it_is_back() {
    let work = tempfile::tempdir().unwrap();
    let generated = testkit::generate(&work.path().join("src"), &DatasetSpec::small(7)).unwrap();
    let archive = work.path().join("d.tar.gz");
    testkit::pack_tar_gz(&work.path().join("src"), &archive).unwrap();

    let mut stack = TestStack::start_with_own_mongod(Chaos::default()).await;
    let (code, accepted) =
        stack.import(&json!({"name": "kept", "archive_url": format!("file://{}", archive.display())})).await;
    assert_eq!(code, 202, "{accepted}");
    let status = stack.wait_terminal(accepted["job_id"].as_str().unwrap()).await;
    assert_eq!(status["status"], "completed", "{status}");
    let dataset_id = accepted["dataset_id"].as_str().unwrap().to_owned();
    let before = stack.dataset(&dataset_id).await;
    let images_before = stack.all_images(&dataset_id, 500, "").await;
    assert_eq!(images_before.len(), generated.image_count());

    // A standalone mongod acknowledges a write before its journal holds it and commits the
    // journal every 100 ms, so a SIGKILL right after the import ended could take its last
    // writes with it: that is not what this test is about.
    tokio::time::sleep(Duration::from_secs(1)).await;

    let base = stack.stack.base_url.clone();
    let client = stack.client.clone();
    let dataset_path = format!("/datasets/{dataset_id}");
    let job_id = accepted["job_id"].as_str().unwrap();
    // One read of each function that serves reads (list, images, status), and the health check.
    let reads = [
        "/datasets".to_owned(),
        dataset_path.clone(),
        format!("{dataset_path}/images?limit=5"),
        format!("/datasets/import/{job_id}/status"),
        "/healthz".to_owned(),
    ];
    let probe = async {
        // `kill_and_restart_mongod` kills at its first poll, before this runs.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut answers = Vec::new();
        // Four rounds: the first calls wait out the server selection timeout (~1 s) until each
        // function's breaker has seen three failures and opens (`/healthz` asks every function,
        // so theirs open in the third round); the last round is refused at once.
        for round in 0..4 {
            for path in &reads {
                let answer = get(&client, &base, path).await;
                eprintln!("round {round}: GET {path} -> {} in {:?}", answer.status, answer.took);
                answers.push((path.clone(), answer));
            }
        }
        answers
    };
    let (restarted, answers) = tokio::join!(stack.stack.kill_and_restart_mongod(Duration::from_secs(25)), probe);
    restarted.expect("mongod comes back");

    for (path, answer) in &answers {
        assert_eq!(answer.status, 503, "GET {path} while mongod is down: {}", answer.body);
        assert!(answer.took < BOUND, "GET {path} took {:?} while mongod is down", answer.took);
        if path == "/healthz" {
            // The gateway's aggregate, naming each function's failing health check.
            assert_eq!(answer.body["status"], "unavailable", "{}", answer.body);
            assert_eq!(answer.body["dependency"], "mongodb", "{}", answer.body);
        } else {
            assert_eq!(answer.content_type, "application/problem+json");
            let detail = answer.body["detail"].as_str().unwrap_or_default();
            assert!(detail.starts_with("MongoDB is unavailable"), "GET {path}: {detail}");
            assert!(answer.retry_after.is_some_and(|s| (1..=30).contains(&s)), "GET {path}: Retry-After");
        }
    }
    let last_round = &answers[answers.len() - reads.len()..];
    for (path, answer) in last_round {
        assert!(answer.took < Duration::from_secs(1), "GET {path} with the breaker open took {:?}", answer.took);
    }

    // Back on the same data, the same stack: each read succeeds once its breaker lets a probe
    // through (at most a cool-down after the failures).
    let back = Instant::now();
    for path in &reads {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let answer = get(&client, &base, path).await;
            if answer.status == 200 {
                eprintln!("GET {path} -> 200 {:?} after mongod was back", back.elapsed());
                break;
            }
            assert_eq!(answer.status, 503, "GET {path} after mongod is back: {}", answer.body);
            assert!(Instant::now() < deadline, "GET {path} still 503 30 s after mongod is back");
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    let after = stack.dataset(&dataset_id).await;
    assert_eq!(after["counts"], before["counts"], "the dataset's counts");
    assert_eq!(after["status"], "ready");
    let images_after = stack.all_images(&dataset_id, 500, "").await;
    assert_eq!(images_after, images_before, "every image document kept");
    stack.shutdown().await;
}
