//! A dataset's lifecycle over real HTTP, against the whole local stack: `DELETE /datasets/{id}`
//! makes it answer 404 at once and its job, followed by the status route, leaves no image
//! document, no dataset record, no object under `datasets/{id}/` and none of its import's
//! scratch, over many short steps, also with tasks delivered twice and crashing, also when the
//! dataset was still importing (that import ends `failed` with `cancelled`); `PATCH` renames,
//! `GET /datasets?name=` filters, and `GET /datasets/import` lists jobs, newest first, by
//! dataset and status, page by page, each tenant its own.

use std::path::Path;
use std::time::{Duration, Instant};

use mongodb::bson::{doc, Document};
use serde_json::{json, Value};
use testkit::DatasetSpec;
use yds_tests::{Chaos, TestStack, KEY, OTHER_KEY};

/// Deletions in steps of 3 records or objects, one batch a step; a 4 s lease (the wait after a
/// cancelled import) and a 1 s settle (the wait after any deletion begins).
fn small_steps() -> Vec<(String, String)> {
    [
        ("YDS_DELETE_BATCH", "3"),
        ("YDS_DELETE_BUDGET_SECS", "0"),
        ("YDS_DELETE_SETTLE_SECS", "1"),
        ("YDS_CHUNK_LEASE_SECS", "4"),
        ("YDS_PLAN_BUDGET_SECS", "2"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

async fn start(chaos: Chaos) -> TestStack {
    TestStack::start_with_env(chaos, small_steps()).await
}

/// A request with `key`, its status and JSON body.
async fn send(stack: &TestStack, method: &str, path: &str, key: &str, body: Option<Value>) -> (u16, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut request = stack.client.request(method, stack.url(path)).header("x-api-key", key);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("the request is answered");
    let status = response.status().as_u16();
    if status == 202 {
        let location = response.headers()["location"].to_str().unwrap().to_owned();
        let body: Value = response.json().await.unwrap();
        assert_eq!(location, format!("/datasets/import/{}/status", body["job_id"].as_str().unwrap()));
        return (status, body);
    }
    (status, response.json().await.unwrap_or(Value::Null))
}

/// A generated dataset packed as `name` (`.zip` or `.tar.gz`) under `work`: its URL and image count.
fn archive(work: &Path, name: &str, seed: u64, images: usize) -> (String, u64) {
    let mut spec = DatasetSpec::small(seed);
    spec.splits = vec![("train".into(), images * 3 / 4), ("val".into(), images - images * 3 / 4)];
    let src = work.join(format!("src-{seed}"));
    let generated = testkit::generate(&src, &spec).unwrap();
    let path = work.join(name);
    if name.ends_with(".zip") {
        testkit::pack_zip(&src, &path).unwrap();
    } else {
        testkit::pack_tar_gz(&src, &path).unwrap();
    }
    (format!("file://{}", path.display()), generated.image_count() as u64)
}

/// Starts an import as `key`'s tenant: `(job_id, dataset_id)`.
async fn import(stack: &TestStack, key: &str, name: &str, url: &str, chunk_size: u32) -> (String, String) {
    let body = json!({"name": name, "archive_url": url, "chunk_size": chunk_size});
    let (code, accepted) = send(stack, "POST", "/datasets/import", key, Some(body)).await;
    assert_eq!(code, 202, "{accepted}");
    (accepted["job_id"].as_str().unwrap().to_owned(), accepted["dataset_id"].as_str().unwrap().to_owned())
}

/// The stack's database, looked at directly.
async fn database(stack: &TestStack) -> mongodb::Database {
    let name = format!("e2e_{}", stack.dir.path().file_name().unwrap().to_string_lossy().replace('.', "_"));
    mongodb::Client::with_uri_str(&stack.stack.mongodb_uri).await.unwrap().database(&name)
}

/// What is left of a dataset and its import, in the database and the storage folder: image
/// documents, the dataset's record, the import's chunk records and member records, objects
/// under `datasets/{id}/` and under `temp/{import job}/`.
async fn leftovers(stack: &TestStack, dataset_id: &str, import_job: &str) -> Vec<String> {
    let db = database(stack).await;
    let count = |collection: &'static str, filter: Document| {
        let db = db.clone();
        async move { db.collection::<Document>(collection).count_documents(filter).await.unwrap() }
    };
    let of_job = doc! {"_id": {"$gte": format!("{import_job}:"), "$lt": format!("{import_job};")}};
    let mut left = Vec::new();
    for (what, n) in [
        ("image documents", count("images", doc! {"dataset_id": dataset_id}).await),
        ("dataset record", count("datasets", doc! {"_id": dataset_id}).await),
        ("chunk records", count("import_chunks", doc! {"job_id": import_job}).await),
        ("members", count("import_members", of_job.clone()).await),
        ("chunk file lists", count("import_chunk_files", of_job).await),
    ] {
        if n > 0 {
            left.push(format!("{n} {what}"));
        }
    }
    let storage = stack.dir.path().join("data/storage");
    for folder in [storage.join("datasets").join(dataset_id), storage.join("temp").join(import_job)] {
        // A folder that is gone has no file left.
        let files = testkit::files_under(&folder).unwrap_or_default();
        if !files.is_empty() {
            left.push(format!("{} files under {}", files.len(), folder.display()));
        }
    }
    left
}

/// Every route of a dataset answers 404, and no listing holds it.
async fn assert_missing(stack: &TestStack, dataset_id: &str, name: &str) {
    for path in [format!("/datasets/{dataset_id}"), format!("/datasets/{dataset_id}/images")] {
        let (code, problem) = stack.get(&path).await;
        assert_eq!(code, 404, "{path}: {problem}");
    }
    let (code, _) = send(stack, "PATCH", &format!("/datasets/{dataset_id}"), KEY, Some(json!({"name": "x"}))).await;
    assert_eq!(code, 404, "renaming it");
    for path in ["/datasets?limit=1000".to_owned(), format!("/datasets?name={name}")] {
        let (code, page) = stack.get(&path).await;
        assert_eq!(code, 200);
        assert!(page["items"].as_array().unwrap().iter().all(|d| d["id"] != dataset_id), "{path} lists it");
    }
}

/// Follows a delete job to its end: completed, every counted image deleted.
async fn wait_deleted(stack: &TestStack, job_id: &str, images: u64) -> Value {
    let status = stack.wait_terminal(job_id).await;
    assert_eq!((status["kind"].as_str(), status["status"].as_str()), (Some("delete"), Some("completed")), "{status}");
    assert_eq!(status["progress"]["files_total"], images, "{status}");
    assert_eq!(status["progress"]["files_done"], images, "{status}");
    status
}

/// Polls until the import has done some work, but not all of it.
async fn wait_under_way(stack: &TestStack, job_id: &str) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (_, status) = stack.get(&format!("/datasets/import/{job_id}/status")).await;
        if status["progress"]["files_done"].as_u64().unwrap_or(0) > 0 {
            assert!(status["finished_at"].is_null(), "the import ended before the deletion: make it larger");
            return;
        }
        assert!(Instant::now() < deadline, "the import never started: {status}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deleted_dataset_answers_404_at_once_and_its_job_leaves_nothing_behind() {
    let work = tempfile::tempdir().unwrap();
    let (url, images) = archive(work.path(), "d.tar.gz", 31, 24);
    let stack = start(Chaos::default()).await;
    let (import_job, dataset_id) = import(&stack, KEY, "doomed", &url, 4).await;
    assert_eq!(stack.wait_terminal(&import_job).await["status"], "completed");
    assert!(!leftovers(&stack, &dataset_id, &import_job).await.is_empty(), "the import left its dataset");

    let path = format!("/datasets/{dataset_id}");
    let (code, _) = send(&stack, "DELETE", &path, OTHER_KEY, None).await;
    assert_eq!(code, 404, "another tenant cannot delete it");
    let (code, accepted) = send(&stack, "DELETE", &path, KEY, None).await;
    assert_eq!(code, 202, "{accepted}");
    assert_eq!(accepted["kind"], "delete");
    assert_eq!(accepted["status"], "queued");
    assert_eq!(accepted["dataset_id"], dataset_id.as_str());
    let job_id = accepted["job_id"].as_str().unwrap().to_owned();
    assert_missing(&stack, &dataset_id, "doomed").await;
    let (code, again) = send(&stack, "DELETE", &path, KEY, None).await;
    assert_eq!((code, again["job_id"].as_str()), (202, Some(job_id.as_str())), "a repeat: the same job");

    wait_deleted(&stack, &job_id, images).await;
    assert_eq!(leftovers(&stack, &dataset_id, &import_job).await, Vec::<String>::new());
    let job = database(&stack).await.collection::<Document>("import_jobs").find_one(doc! {"_id": &job_id}).await;
    let steps = job.unwrap().unwrap().get_i64("step").unwrap();
    assert!(steps > 20, "deleted in {steps} steps of 3 records or objects");

    // Deleted: 404 everywhere, the jobs stay listed as its history, newest first.
    assert_missing(&stack, &dataset_id, "doomed").await;
    let (code, _) = send(&stack, "DELETE", &path, KEY, None).await;
    assert_eq!(code, 404);
    let (code, jobs) = stack.get(&format!("/datasets/import?dataset_id={dataset_id}")).await;
    assert_eq!(code, 200, "{jobs}");
    let kinds: Vec<(&str, &str)> = jobs["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| (j["job_id"].as_str().unwrap(), j["kind"].as_str().unwrap()))
        .collect();
    assert_eq!(kinds, [(job_id.as_str(), "delete"), (import_job.as_str(), "import")]);
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn renames_the_name_filter_and_the_jobs_list_page_per_tenant() {
    let work = tempfile::tempdir().unwrap();
    let (url, _) = archive(work.path(), "d.zip", 32, 8);
    let stack = start(Chaos::default()).await;
    let mut acme_jobs = Vec::new();
    let mut ids = Vec::new();
    for name in ["alpha-1", "alpha-2", "beta"] {
        let (job, dataset) = import(&stack, KEY, name, &url, 4).await;
        stack.wait_terminal(&job).await;
        acme_jobs.push(job);
        ids.push(dataset);
    }
    let (globex_job, _) = import(&stack, OTHER_KEY, "alpha-globex", &url, 4).await;
    let deadline = Instant::now() + Duration::from_secs(120);
    while stack.get_as(OTHER_KEY, &format!("/datasets/import/{globex_job}/status")).await.1["finished_at"].is_null() {
        assert!(Instant::now() < deadline, "the other tenant's import never ended");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Rename: the Dataset object back; the rules of an import's name.
    let beta = format!("/datasets/{}", ids[2]);
    let (code, renamed) = send(&stack, "PATCH", &beta, KEY, Some(json!({"name": " alpha-3 "}))).await;
    assert_eq!(code, 200, "{renamed}");
    assert_eq!((renamed["name"].as_str(), renamed["id"].as_str()), (Some("alpha-3"), Some(ids[2].as_str())));
    assert_eq!(renamed["last_job_id"], acme_jobs[2].as_str());
    assert_eq!(stack.get(&beta).await.1["name"], "alpha-3");
    let (code, problem) = send(&stack, "PATCH", &beta, KEY, Some(json!({"name": ""}))).await;
    assert_eq!(code, 422, "{problem}");
    let (code, problem) = send(&stack, "PATCH", &beta, KEY, Some(json!({"name": "x", "tags": []}))).await;
    assert_eq!(code, 422, "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("tags"), "{problem}");
    let (code, _) = send(&stack, "PATCH", &beta, OTHER_KEY, Some(json!({"name": "stolen"}))).await;
    assert_eq!(code, 404, "another tenant's dataset");

    // The name filter, newest first, page by page; the cursor is bound to it.
    let (code, first) = stack.get("/datasets?name=alpha&limit=2").await;
    assert_eq!(code, 200, "{first}");
    let names = |page: &Value| -> Vec<String> {
        page["items"].as_array().unwrap().iter().map(|d| d["name"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(names(&first), ["alpha-3", "alpha-2"]);
    let cursor = first["next_cursor"].as_str().unwrap();
    let (_, second) = stack.get(&format!("/datasets?name=alpha&limit=2&cursor={cursor}")).await;
    assert_eq!(names(&second), ["alpha-1"]);
    assert!(second["next_cursor"].is_null());
    let (code, _) = stack.get(&format!("/datasets?name=beta&limit=2&cursor={cursor}")).await;
    assert_eq!(code, 400, "a cursor of another filter");
    let (code, _) = stack.get(&format!("/datasets?limit=2&cursor={cursor}")).await;
    assert_eq!(code, 400, "a cursor of the filter, without it");
    assert!(names(&stack.get("/datasets?name=beta").await.1).is_empty(), "renamed away");
    assert!(names(&stack.get("/datasets?name=Alpha").await.1).is_empty(), "case-sensitive");
    assert_eq!(names(&stack.get_as(OTHER_KEY, "/datasets?name=alpha").await.1), ["alpha-globex"]);
    let (code, _) = stack.get("/datasets?name=").await;
    assert_eq!(code, 400);

    // The jobs list: newest first, page by page, the status route's objects.
    let mut listed = Vec::new();
    let mut path = "/datasets/import?limit=2".to_owned();
    loop {
        let (code, page) = stack.get(&path).await;
        assert_eq!(code, 200, "{page}");
        for job in page["items"].as_array().unwrap() {
            let (_, status) = stack.get(&format!("/datasets/import/{}/status", job["job_id"].as_str().unwrap())).await;
            assert_eq!(job, &status, "an item is the status route's object");
            listed.push(job["job_id"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/datasets/import?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    let newest_first: Vec<String> = acme_jobs.iter().rev().cloned().collect();
    assert_eq!(listed, newest_first, "each job once, none of another tenant's");
    let (_, completed) = stack.get("/datasets/import?status=completed&limit=100").await;
    assert_eq!(completed["items"].as_array().unwrap().len(), 3, "{completed}");
    let (_, queued) = stack.get("/datasets/import?status=queued").await;
    assert!(queued["items"].as_array().unwrap().is_empty());
    let (code, problem) = stack.get("/datasets/import?status=done").await;
    assert_eq!(code, 400);
    assert!(problem["detail"].as_str().unwrap().contains("completed_with_errors"), "{problem}");
    let (_, of_one) = stack.get(&format!("/datasets/import?dataset_id={}&status=completed", ids[0])).await;
    let of_one: Vec<&str> = of_one["items"].as_array().unwrap().iter().map(|j| j["job_id"].as_str().unwrap()).collect();
    assert_eq!(of_one, [acme_jobs[0].as_str()]);
    let (_, theirs) = stack.get_as(OTHER_KEY, "/datasets/import").await;
    let theirs: Vec<&str> = theirs["items"].as_array().unwrap().iter().map(|j| j["job_id"].as_str().unwrap()).collect();
    assert_eq!(theirs, [globex_job.as_str()]);
    let (code, _) = stack.get_as(OTHER_KEY, &format!("/datasets/import/{}/status", acme_jobs[0])).await;
    assert_eq!(code, 404, "another tenant's job");
    let (code, _) = stack.get_as(OTHER_KEY, &format!("/datasets/import?dataset_id={}", ids[0])).await;
    assert_eq!(code, 200);
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn deletions_are_exact_under_chaos_and_cancel_an_import_under_way() {
    let work = tempfile::tempdir().unwrap();
    let (small, small_images) = archive(work.path(), "small.zip", 33, 20);
    let (large, _) = archive(work.path(), "large.tar.gz", 34, 400);
    let stack = start(Chaos { duplicate: 0.3, crash: 0.3, storage: 0.0 }).await;

    // A finished dataset, deleted with tasks delivered twice and crashing half-way.
    let (import_job, dataset_id) = import(&stack, KEY, "finished", &small, 3).await;
    assert_eq!(stack.wait_terminal(&import_job).await["status"], "completed");
    let (code, accepted) = send(&stack, "DELETE", &format!("/datasets/{dataset_id}"), KEY, None).await;
    assert_eq!(code, 202, "{accepted}");
    wait_deleted(&stack, accepted["job_id"].as_str().unwrap(), small_images).await;
    assert_eq!(leftovers(&stack, &dataset_id, &import_job).await, Vec::<String>::new());

    // A dataset deleted while it imports: its import is cancelled first.
    let (import_job, dataset_id) = import(&stack, KEY, "importing", &large, 4).await;
    wait_under_way(&stack, &import_job).await;
    let (code, accepted) = send(&stack, "DELETE", &format!("/datasets/{dataset_id}"), KEY, None).await;
    assert_eq!(code, 202, "{accepted}");
    assert_missing(&stack, &dataset_id, "importing").await;
    let cancelled = stack.wait_terminal(&import_job).await;
    assert_eq!(cancelled["status"], "failed", "{cancelled}");
    assert!(cancelled["errors"].as_array().unwrap().iter().any(|e| e["code"] == "cancelled"), "{cancelled}");
    let job_id = accepted["job_id"].as_str().unwrap();
    let status = stack.wait_terminal(job_id).await;
    assert_eq!(status["status"], "completed", "{status}");
    assert_eq!(status["progress"]["files_done"], status["progress"]["files_total"], "{status}");
    assert_eq!(leftovers(&stack, &dataset_id, &import_job).await, Vec::<String>::new());
    // The last sweep came a lease (4 s) after the cancel: no chunk still running could write after it.
    let jobs = database(&stack).await.collection::<Document>("import_jobs");
    let finished = |id: String| {
        let jobs = jobs.clone();
        async move {
            jobs.find_one(doc! {"_id": id})
                .await
                .unwrap()
                .unwrap()
                .get_datetime("finished_at")
                .unwrap()
                .timestamp_millis()
        }
    };
    let waited = finished(job_id.to_owned()).await - finished(import_job.clone()).await;
    assert!(waited >= 4_000, "the deletion ended {waited} ms after the cancel");
    stack.shutdown().await;
}
