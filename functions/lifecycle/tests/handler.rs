//! lifecycle invoked directly (no server) against a real mongod: a delete answers 202 with its
//! job (the same one when repeated) and sends its first step, a rename answers the Dataset
//! object; another tenant's dataset, a deleting one and a bad body are refused.

use bytes::Bytes;
use lifecycle::Lifecycle;
use serde_json::{json, Value};
use testkit::inline::{take, test_importer};
use yds_config::ConfiguredKeys;
use yds_edge::{EdgeOptions, Service, PUBLIC_MAX_BODY};
use yds_import::TaskBody;
use yds_store::{DatasetStatus, JobStatus};

const ACME: &str = "acme-key";
const GLOBEX: &str = "globex-key";

fn request(method: &str, path: &str, key: &str, body: &str) -> yds_edge::Request {
    http::Request::builder()
        .method(method)
        .uri(path)
        .header("x-api-key", key)
        .body(Bytes::from(body.to_owned()))
        .unwrap()
}

async fn call(service: &Service, method: &str, path: &str, key: &str, body: &str) -> (u16, Value) {
    let response = service.call(request(method, path, key, body)).await;
    let status = response.status().as_u16();
    if status == 202 {
        let job_id = serde_json::from_slice::<Value>(response.body()).unwrap()["job_id"].as_str().unwrap().to_owned();
        assert_eq!(response.headers()["location"], format!("/datasets/import/{job_id}/status"));
    }
    (status, serde_json::from_slice(response.body()).unwrap_or(Value::Null))
}

/// The service, on a fresh database holding one finished dataset of tenant `acme`: its id.
async fn fixture(dir: &std::path::Path) -> (Service, yds_import::Importer, yds_queue::LocalQueue, String) {
    let (importer, queue) = test_importer(dir).await;
    let keys = ConfiguredKeys::parse(&format!("{ACME}:acme,{GLOBEX}:globex")).unwrap();
    let service = Service::new(
        Lifecycle::new(importer.clone()),
        EdgeOptions { api_keys: Some(keys.into()), max_body_bytes: PUBLIC_MAX_BODY, url_signer: None },
    );
    let acceptor = yds_import::accept::Acceptor::new(importer.clone(), 10);
    let body = json!({"name": "cats", "archive_url": "http://127.0.0.1:1/d.zip"}).to_string();
    let accepted = acceptor.start("acme", None, body.as_bytes()).await.unwrap();
    // The import ends (its source is unreachable): the dataset is failed, with why.
    let import = importer.db.jobs.find(&accepted.job_id).await.unwrap().unwrap();
    let finding = yds_store::Finding::new("", "source_unreachable", "the archive could not be read");
    yds_import::coordinator::fail_job(&importer, &import, &finding).await.unwrap();
    take(&queue);
    (service, importer, queue, accepted.dataset_id)
}

#[tokio::test]
async fn a_rename_answers_the_dataset_object_and_follows_the_import_name_rules() {
    let dir = tempfile::tempdir().unwrap();
    let (service, importer, _queue, id) = fixture(dir.path()).await;
    let path = format!("/datasets/{id}");

    let (status, dataset) = call(&service, "PATCH", &path, ACME, r#"{"name": "  kittens  "}"#).await;
    assert_eq!(status, 200, "{dataset}");
    assert_eq!((dataset["id"].as_str(), dataset["name"].as_str()), (Some(id.as_str()), Some("kittens")), "trimmed");
    // The Dataset object as the list answers it: its failure and its newest job.
    assert_eq!(dataset["status"], "failed");
    assert_eq!(dataset["failure"], json!({"code": "source_unreachable", "message": "the archive could not be read"}));
    assert_eq!(dataset["last_job_id"], dataset["job_id"]);
    assert_eq!(importer.db.datasets.find(&id).await.unwrap().unwrap().name, "kittens");

    let long = format!(r#"{{"name": "{}"}}"#, "n".repeat(201));
    for (body, code, says) in [
        ("not json", 400, "not valid JSON"),
        ("[]", 400, "JSON object"),
        (r#"{"name": "   "}"#, 422, "`name` must be 1 to 200 characters"),
        (long.as_str(), 422, "`name` must be 1 to 200 characters"),
        (r#"{"name": "a\u0007b"}"#, 422, "control characters"),
        (r#"{"name": "x", "colour": "red"}"#, 422, "unknown field `colour`"),
        (r#"{}"#, 422, "missing field `name`"),
    ] {
        let (status, problem) = call(&service, "PATCH", &path, ACME, body).await;
        assert_eq!(status, code, "{body}: {problem}");
        assert!(problem["detail"].as_str().unwrap().contains(says), "{body}: {problem}");
    }
    let (status, _) = call(&service, "PATCH", &path, GLOBEX, r#"{"name": "mine"}"#).await;
    assert_eq!(status, 404, "another tenant's dataset");
    let (status, _) = call(&service, "PATCH", "/datasets/no-such-id", ACME, r#"{"name": "x"}"#).await;
    assert_eq!(status, 404);
    assert_eq!(importer.db.datasets.find(&id).await.unwrap().unwrap().name, "kittens", "nothing else renamed it");
}

#[tokio::test]
async fn a_delete_answers_its_job_at_once_and_the_same_job_when_repeated() {
    let dir = tempfile::tempdir().unwrap();
    let (service, importer, queue, id) = fixture(dir.path()).await;
    let path = format!("/datasets/{id}");

    let (status, _) = call(&service, "DELETE", &path, GLOBEX, "").await;
    assert_eq!(status, 404, "another tenant cannot delete it");
    let (status, accepted) = call(&service, "DELETE", &path, ACME, "").await;
    assert_eq!(status, 202, "{accepted}");
    assert_eq!((accepted["dataset_id"].as_str(), accepted["kind"].as_str()), (Some(id.as_str()), Some("delete")));
    assert_eq!(accepted["status"], "queued");
    let job_id = accepted["job_id"].as_str().unwrap().to_owned();
    let tasks = take(&queue);
    assert!(tasks.contains(&TaskBody::DeleteStep { job_id: job_id.clone(), step: 0, resend: 0 }), "{tasks:?}");

    // Missing at once: renaming it is a 404; deleting it again answers the same job.
    let dataset = importer.db.datasets.find(&id).await.unwrap().unwrap();
    assert_eq!((dataset.status, dataset.last_job_id()), (DatasetStatus::Deleting, job_id.as_str()));
    let (status, _) = call(&service, "PATCH", &path, ACME, r#"{"name": "x"}"#).await;
    assert_eq!(status, 404);
    let (status, again) = call(&service, "DELETE", &path, ACME, "").await;
    assert_eq!((status, again["job_id"].as_str()), (202, Some(job_id.as_str())));
    let job = importer.db.jobs.find_delete(&job_id).await.unwrap().unwrap();
    assert_eq!((job.status, job.tenant.as_str(), job.dataset_id.as_str()), (JobStatus::Queued, "acme", id.as_str()));

    let (status, _) = call(&service, "DELETE", "/datasets/no-such-id", ACME, "").await;
    assert_eq!(status, 404);
    for (method, path) in [("GET", path.as_str()), ("POST", path.as_str()), ("DELETE", "/datasets")] {
        let (status, _) = call(&service, method, path, ACME, "").await;
        assert!([404, 405].contains(&status), "{method} {path}: {status}");
    }
    let (status, problem) = call(&service, "DELETE", &format!("{path}?force=1"), ACME, "").await;
    assert_eq!(status, 400, "{problem}");
    let (status, _) = call(&service, "DELETE", &path, "wrong-key", "").await;
    assert_eq!(status, 401);
}
