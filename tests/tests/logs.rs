//! The logs of an import, end to end: a request with a W3C `traceparent` leads to lines of
//! import-trigger and of process-chunk (every task the import fans out to) in the stack's log
//! files, all under that trace in Cloud Logging's structured form and carrying the job's id.

use serde_json::{json, Value};
use testkit::{DatasetSpec, Layout};
use yds_tests::{Chaos, TestStack, KEY};

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const TRACE_KEY: &str = "logging.googleapis.com/trace";

/// Every JSON line of each process's log file.
fn log_lines(stack: &TestStack) -> Vec<(String, Value)> {
    let mut lines = Vec::new();
    for (name, path) in stack.stack.log_files() {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        lines.extend(text.lines().filter_map(|l| serde_json::from_str::<Value>(l).ok()).map(|v| (name.clone(), v)));
    }
    lines
}

#[tokio::test(flavor = "multi_thread")]
async fn an_import_and_every_task_it_fans_out_to_log_under_the_request_trace() {
    let work = tempfile::tempdir().unwrap();
    let mut spec = DatasetSpec::small(7);
    spec.layout = Layout::Roboflow;
    spec.splits = vec![("train".into(), 10), ("val".into(), 4)];
    testkit::generate(&work.path().join("src"), &spec).unwrap();
    let archive = work.path().join("d.tar.gz");
    testkit::pack_tar_gz(&work.path().join("src"), &archive).unwrap();

    let stack = TestStack::start(Chaos::default()).await;
    let resp = stack
        .client
        .post(stack.url("/datasets/import"))
        .header("x-api-key", KEY)
        .header("traceparent", format!("00-{TRACE}-00f067aa0ba902b7-01"))
        .header("user-agent", "logs-test/1")
        .json(&json!({"name": "traced", "archive_url": format!("file://{}", archive.display()), "chunk_size": 4}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 202);
    let accepted: Value = resp.json().await.unwrap();
    let job_id = accepted["job_id"].as_str().unwrap().to_owned();
    let status = stack.wait_terminal(&job_id).await;
    assert_eq!(status["status"], "completed", "{status}");
    let dataset_id = status["dataset_id"].as_str().map(str::to_owned);

    // Lines reach the files as they are written; the last task's may trail the status a little.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let (trigger, chunk) = loop {
        let lines = log_lines(&stack);
        let traced = |process: &str| -> Vec<Value> {
            lines.iter().filter(|(p, l)| p == process && l[TRACE_KEY] == TRACE).map(|(_, l)| l.clone()).collect()
        };
        let (trigger, chunk) = (traced("import-trigger"), traced("process-chunk"));
        let tasks_served = chunk.iter().filter(|l| l["message"] == "served").count();
        if (!trigger.is_empty() && tasks_served >= 2) || std::time::Instant::now() > deadline {
            break (trigger, chunk);
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };

    // import-trigger's "served" line: Cloud Logging's fields, and the request as httpRequest.
    let served = trigger.iter().find(|l| l["message"] == "served").unwrap_or_else(|| panic!("{trigger:#?}"));
    assert_eq!(served["severity"], "INFO");
    assert!(served["timestamp"].as_str().unwrap().ends_with('Z'));
    assert!(served["request_id"].as_str().is_some_and(|r| !r.is_empty()));
    assert_eq!(served["httpRequest"]["requestMethod"], "POST");
    assert_eq!(served["httpRequest"]["requestUrl"], "/datasets/import");
    assert_eq!(served["httpRequest"]["status"], 202);
    assert_eq!(served["httpRequest"]["userAgent"], "logs-test/1");
    assert!(served["httpRequest"]["latency"].as_str().unwrap().ends_with('s'));

    // process-chunk ran the plan and chunk tasks under the same trace, each line with the job.
    assert!(chunk.len() >= 2, "process-chunk lines under the trace: {chunk:#?}");
    let served_tasks: Vec<&Value> = chunk.iter().filter(|l| l["message"] == "served").collect();
    assert!(served_tasks.len() >= 2, "a plan task and at least one chunk task: {chunk:#?}");
    assert!(chunk.iter().any(|l| l["message"] == "chunks planned"), "{chunk:#?}");
    for line in &chunk {
        assert_eq!(line["job_id"], job_id.as_str(), "{line}");
        assert_eq!(line["dataset_id"].as_str(), dataset_id.as_deref(), "{line}");
        assert!(line["logging.googleapis.com/spanId"].as_str().is_some_and(|s| s.len() == 16), "{line}");
    }
    stack.shutdown().await;
}
