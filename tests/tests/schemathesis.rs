//! Schemathesis against the whole local stack, from the deployed API spec
//! (`terraform/openapi.yaml`): generated valid and invalid requests for every operation of the
//! API (not the web app's, tagged `web`), with and without the API key. No answer may be a 5xx, every answer must match the spec
//! (status code, content type, body schema), invalid input must be refused and a missing key
//! must get 401.
//!
//! schemathesis and its dependencies are pinned in `tests/schemathesis-requirements.txt` and
//! pip-installed once into `.yds-tools/schemathesis-<version>/`. Imports the generated bodies
//! trigger never leave the machine: the functions get a proxy on a closed loopback port for
//! every non-loopback host (and for Google's metadata server), so a generated `http://`,
//! `https://` or `gs://` source fails at once.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use testkit::DatasetSpec;
use yds_tests::{Chaos, TestStack, KEY};

const VERSION: &str = "4.32.5";

/// The longest the run may take; schemathesis gets a little less and stops itself.
const BUDGET: Duration = Duration::from_secs(90);

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// pip-installs the pinned requirements into `.yds-tools/schemathesis-<version>` unless they
/// are there: into a temporary sibling first, renamed into place.
fn ensure_schemathesis() -> PathBuf {
    let tools = yds_tests::tools_dir();
    let dir = tools.join(format!("schemathesis-{VERSION}"));
    if dir.join("schemathesis").is_dir() {
        return dir;
    }
    std::fs::create_dir_all(&tools).expect("creating the tools folder");
    let partial = tools.join(format!(".schemathesis-{VERSION}.partial-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&partial);
    let output = Command::new("python3")
        .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-input", "--no-deps"])
        .args(["--no-warn-script-location", "--target"])
        .arg(&partial)
        .arg("-r")
        .arg(repo().join("tests/schemathesis-requirements.txt"))
        .env("PIP_ROOT_USER_ACTION", "ignore")
        .stdin(Stdio::null())
        .output()
        .expect("running python3 -m pip (is python3 installed?)");
    if !output.status.success() || !partial.join("schemathesis").is_dir() {
        let _ = std::fs::remove_dir_all(&partial);
        panic!(
            "installing schemathesis failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    if std::fs::rename(&partial, &dir).is_err() && !dir.join("schemathesis").is_dir() {
        panic!("moving the schemathesis install into {}", dir.display());
    }
    let _ = std::fs::remove_dir_all(&partial);
    dir
}

/// Keeps the functions' outgoing HTTP on this machine: every host but loopback goes through a
/// "proxy" on a port nobody listens on (connection refused at once), and downloads that do
/// start stall out quickly.
fn offline_env() -> Vec<(String, String)> {
    let closed = "http://127.0.0.1:9";
    let mut env: Vec<(String, String)> =
        ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"]
            .iter()
            .map(|name| (name.to_string(), closed.to_owned()))
            .collect();
    for name in ["NO_PROXY", "no_proxy"] {
        env.push((name.to_owned(), "127.0.0.1,localhost,::1".to_owned()));
    }
    // Google's metadata server (credentials for a `gs://` source) and its endpoint, closed too.
    env.push(("GCE_METADATA_HOST".to_owned(), "127.0.0.1:9".to_owned()));
    env.push(("GCE_METADATA_IP".to_owned(), "127.0.0.1:9".to_owned()));
    env.push(("YDS_FETCH_TIMEOUT_SECS".to_owned(), "5".to_owned()));
    env
}

/// The run's configuration: the imported dataset's and job's ids, and real split names, mixed
/// into the generated parameters.
fn config_toml(dataset_id: &str, job_id: &str) -> String {
    format!(
        r#"[dictionaries.datasets]
values = ["{dataset_id}"]

[dictionaries.jobs]
values = ["{job_id}"]

[dictionaries.splits]
values = ["train", "val"]

[[operations]]
include-operation-id = "listDatasetImages"
parameters = {{ "path.id" = {{ dictionary = "datasets", probability = 0.7 }}, "query.split" = {{ dictionary = "splits", probability = 0.3 }} }}

[[operations]]
include-operation-id = "getImportStatus"
parameters = {{ "path.job_id" = {{ dictionary = "jobs", probability = 0.7 }} }}
"#
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn schemathesis_finds_no_server_error_and_no_spec_violation() {
    let install = tokio::task::spawn_blocking(ensure_schemathesis).await.unwrap();
    let stack = TestStack::start_with_env(Chaos::default(), offline_env()).await;
    let work = tempfile::tempdir().expect("temp dir");

    // One real dataset, so that the list, images and status routes answer with real items
    // (checked against the spec's schemas) for part of the generated requests.
    let generated = testkit::generate(&work.path().join("src"), &DatasetSpec::small(5)).expect("dataset");
    let archive = work.path().join("small.zip");
    testkit::pack_zip(&work.path().join("src"), &archive).expect("zip");
    let (code, accepted) =
        stack.import(&json!({"name": "schemathesis", "archive_url": format!("file://{}", archive.display())})).await;
    assert_eq!(code, 202, "{accepted}");
    let job_id = accepted["job_id"].as_str().unwrap().to_owned();
    let dataset_id = accepted["dataset_id"].as_str().unwrap().to_owned();
    let status = stack.wait_terminal(&job_id).await;
    assert_eq!(status["counts"]["images"], generated.image_count(), "{status}");
    let config = work.path().join("schemathesis.toml");
    std::fs::write(&config, config_toml(&dataset_id, &job_id)).expect("writing schemathesis.toml");
    let spec = repo().join("terraform/openapi.yaml");
    let report = work.path().join("report");

    let started = Instant::now();
    let mut command = tokio::process::Command::new("python3");
    command
        .args(["-c", "import sys; from schemathesis.cli import schemathesis; sys.exit(schemathesis())"])
        .arg("--config-file")
        .arg(&config)
        .arg("run")
        .arg(&spec)
        .args(["--url", &stack.stack.base_url])
        .args(["--header", &format!("x-api-key: {KEY}")])
        .args(["--checks", "all"])
        // Not checked: the stateful-only checks (the spec declares no links), and "schema-valid
        // data must be accepted", which cannot hold here: cursors are opaque (a made-up one is
        // refused with 400) and the import validates its source beyond any schema (422).
        .args(["--exclude-checks", "use_after_free,ensure_resource_availability,positive_data_acceptance"])
        // The web app's routes (pages and files, no schemas) are not the API; functions/web's
        // tests and tests/tests/web.rs check them. schemathesis could not call `/ui/{path=**}`
        // anyway: API Gateway's wildcard template is no OpenAPI it knows.
        .args(["--exclude-tag", "web"])
        .args(["--phases", "examples,coverage,fuzzing"])
        .args(["--max-examples", "60"])
        .args(["--max-time", &(BUDGET.as_secs() - 20).to_string()])
        .args(["--seed", "20240601"])
        .args(["--request-timeout", "10"])
        // One worker: CPython 3.11's AST constructor is not thread-safe, and schemathesis compiles
        // while it generates ("SystemError: AST constructor recursion depth mismatch" with 2).
        .args(["--workers", "1"])
        .args(["--generation-database", "none"])
        .args(["--no-color", "--output-truncate", "false"])
        .args(["--report", "junit", "--report-dir"])
        .arg(&report)
        .current_dir(work.path())
        .env("PYTHONPATH", &install)
        .env("PYTHONNOUSERSITE", "1")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost")
        .env("SCHEMATHESIS_HOOKS", "")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let output = tokio::time::timeout(BUDGET + Duration::from_secs(30), command.output())
        .await
        .expect("schemathesis ran past its budget")
        .expect("running python3 with schemathesis");
    let took = started.elapsed();
    stack.shutdown().await;

    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprintln!("schemathesis took {:.1} s", took.as_secs_f64());
    assert!(output.status.success(), "schemathesis failed ({}):\n{stdout}\n{stderr}", output.status);
    // Something was tested: every operation selected (`Selected: 7/12`: all but the web app's).
    let figure = |label: &str| {
        let line = stdout.lines().find_map(|l| l.trim().strip_prefix(label)).unwrap_or_default();
        line.trim().split('/').next().and_then(|n| n.trim().parse::<usize>().ok())
    };
    let (tested, total) = (figure("Tested:"), figure("Selected:"));
    assert!(tested.is_some_and(|n| n >= 5) && tested == total, "not every operation was tested:\n{stdout}");
    let generated = stdout.lines().find(|l| l.contains(" generated, ")).unwrap_or_default();
    eprintln!("schemathesis: {}", generated.trim());
}
