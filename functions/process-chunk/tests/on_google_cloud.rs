//! The production wiring end to end, as close to Google Cloud as this machine gets: objects in a
//! real `fake-gcs-server` (the GCS backend), tasks created through the official Cloud Tasks
//! client (its stub seam) and delivered the way Cloud Tasks delivers them — over real HTTP to
//! process-chunk, with the `X-CloudTasks-*` headers and the OIDC token Cloud Run passes on, at
//! least once (every first delivery is duplicated concurrently), retried with backoff on
//! failure, not before a task's schedule time.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use bytes::Bytes;
use google_cloud_gax::error::rpc::{Code, Status};
use google_cloud_gax::options::RequestOptions;
use google_cloud_gax::response::Response;
use google_cloud_tasks_v2::client::CloudTasks;
use google_cloud_tasks_v2::model::{CreateTaskRequest, Task};
use local_stack::fake_gcs::{ensure_fake_gcs, FakeGcs};
use process_chunk::ProcessChunk;
use serde_json::json;
use testkit::inline::{count, of_job, test_importer};
use tokio::sync::mpsc;
use yds_config::Chaos;
use yds_edge::{EdgeOptions, Service};
use yds_import::accept::Acceptor;
use yds_queue::caller::TaskCallers;
use yds_queue::cloud_tasks::{CloudTasksConfig, CloudTasksQueue};
use yds_queue::headers;
use yds_storage::gcs::GcsStore;
use yds_storage::ObjectStore;
use yds_store::JobStatus;

const QUEUE: &str = "projects/yds-test/locations/europe-west1/queues/yds-import";
const INVOKER: &str = "yds-tasks@yds-test.iam.gserviceaccount.com";
const MAX_ATTEMPTS: u32 = 6;

/// Cloud Tasks as far as YDS uses it: `CreateTask` (deduplicated by name, forever within a
/// test) hands each new task to the delivery loop.
#[derive(Debug)]
struct CloudTasksService {
    requests: Mutex<Vec<CreateTaskRequest>>,
    names: Mutex<HashSet<String>>,
    to_deliver: mpsc::UnboundedSender<Task>,
}

impl google_cloud_tasks_v2::stub::CloudTasks for CloudTasksService {
    async fn create_task(
        &self,
        req: CreateTaskRequest,
        _options: RequestOptions,
    ) -> google_cloud_tasks_v2::Result<Response<Task>> {
        self.requests.lock().unwrap().push(req.clone());
        let task = req.task.expect("CreateTask carries a task");
        if !self.names.lock().unwrap().insert(task.name.clone()) {
            let status = Status::default().set_code(Code::AlreadyExists).set_message("Requested entity already exists");
            return Err(google_cloud_tasks_v2::Error::service(status));
        }
        self.to_deliver.send(task.clone()).expect("the delivery loop runs");
        Ok(Response::from(task))
    }
}

/// The ID token Cloud Run hands the container after checking it: claims intact, signature removed.
fn oidc_token_as_cloud_run_passes_it(email: &str, audience: &str) -> String {
    let b64 = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
    let claims = json!({"iss": "https://accounts.google.com", "email": email, "email_verified": true, "aud": audience});
    format!(
        "{}.{}.SIGNATURE_REMOVED_BY_GOOGLE",
        b64(br#"{"alg":"RS256","typ":"JWT"}"#),
        b64(claims.to_string().as_bytes())
    )
}

#[derive(Default)]
struct Deliveries {
    total: AtomicU32,
    retried: AtomicU32,
}

/// One delivery of `task`, as Cloud Tasks makes it; the answer's status.
async fn deliver(client: &reqwest::Client, task: &Task, retry_count: u32) -> u16 {
    let http = task.http_request().expect("an HTTP task");
    let oidc = http.oidc_token().expect("an OIDC token");
    let (queue, task_id) = task.name.split_once("/tasks/").expect("a full task name");
    let mut req = client
        .post(&http.url)
        .header(headers::TASK_NAME, task_id)
        .header(headers::RETRY_COUNT, retry_count.to_string())
        .header(headers::EXECUTION_COUNT, retry_count.to_string())
        .header(headers::QUEUE_NAME, queue.rsplit('/').next().unwrap())
        .header(
            "authorization",
            format!("Bearer {}", oidc_token_as_cloud_run_passes_it(&oidc.service_account_email, &oidc.audience)),
        )
        .body(http.body.clone());
    for (name, value) in &http.headers {
        req = req.header(name, value);
    }
    match req.send().await {
        Ok(resp) => resp.status().as_u16(),
        Err(_) => 599,
    }
}

/// Runs one task to completion as Cloud Tasks would: waits for its schedule time, delivers it
/// (the first time twice at once), retries non-2xx answers with backoff up to the max attempts.
async fn run_task(client: reqwest::Client, task: Task, counts: Arc<Deliveries>) {
    if let Some(at) = &task.schedule_time {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(at.seconds() as u64);
        if let Ok(wait) = at.duration_since(SystemTime::now()) {
            tokio::time::sleep(wait).await;
        }
    }
    for attempt in 0..MAX_ATTEMPTS {
        let status = if attempt == 0 {
            let (a, b) = tokio::join!(deliver(&client, &task, 0), deliver(&client, &task, 0));
            counts.total.fetch_add(2, Ordering::Relaxed);
            if (200..300).contains(&a) {
                a
            } else {
                b
            }
        } else {
            counts.total.fetch_add(1, Ordering::Relaxed);
            counts.retried.fetch_add(1, Ordering::Relaxed);
            deliver(&client, &task, attempt).await
        };
        if (200..300).contains(&status) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
    }
}

async fn all_keys(store: &dyn ObjectStore, prefix: &str) -> Vec<String> {
    let (mut keys, mut page) = (Vec::new(), None);
    loop {
        let listed = store.list(prefix, page, 7).await.unwrap();
        keys.extend(listed.objects.into_iter().map(|(key, _)| key));
        match listed.next_page {
            Some(next) => page = Some(next),
            None => return keys,
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tar_gz_on_gcs_imports_exactly_through_cloud_tasks_deliveries() {
    let bin = tokio::task::spawn_blocking(|| ensure_fake_gcs(&testkit::tools_dir())).await.unwrap().unwrap();
    let gcs =
        FakeGcs::start(&bin, &PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fake-gcs-cloud-run")).await.unwrap();
    gcs.create_bucket("yds-sources").await.unwrap();
    gcs.create_bucket("yds-data").await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let generated = testkit::generate(&dir.path().join("src"), &testkit::DatasetSpec::small(21)).unwrap();
    let archive = dir.path().join("d.tar.gz");
    testkit::pack_tar_gz(&dir.path().join("src"), &archive).unwrap();
    let sources = GcsStore::with_endpoint("yds-sources", &gcs.endpoint).await.unwrap();
    sources.put("exports/d.tar.gz", Bytes::from(std::fs::read(&archive).unwrap())).await.unwrap();

    // process-chunk over real HTTP, accepting only this queue's identity.
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
    let target = format!("http://{}/tasks", listener.local_addr().unwrap());
    let tasks_config = CloudTasksConfig::new(QUEUE, &target, INVOKER);
    let callers = TaskCallers::CloudTasks {
        queue_id: tasks_config.queue_id().to_owned(),
        service_account: INVOKER.to_owned(),
        audience: tasks_config.audience(),
    };
    let (to_deliver, mut delivered) = mpsc::unbounded_channel();
    let service = Arc::new(CloudTasksService { requests: Mutex::default(), names: Mutex::default(), to_deliver });
    let queue = CloudTasksQueue::with_client(CloudTasks::from_stub::<CloudTasksService>(service.clone()), tasks_config);

    let (mut importer, _local_queue) = test_importer(dir.path()).await;
    importer.objects = Arc::new(GcsStore::with_endpoint("yds-data", &gcs.endpoint).await.unwrap());
    importer.queue = Arc::new(queue.clone());
    importer.sources.gcs_endpoint = Some(gcs.endpoint.clone());
    // Short leases and one staging pass per member: many watchdog rounds and ContinuePlan tasks.
    importer.pacing.chunk_lease = Duration::from_secs(3);
    importer.pacing.plan_budget = Duration::ZERO;
    let handler =
        ProcessChunk::new(importer.clone(), callers, MAX_ATTEMPTS, Chaos { crash: 0.5, storage_failure: 0.0 });
    let server = Service::new(handler, EdgeOptions { api_keys: None, max_body_bytes: 8 << 20, url_signer: None });
    tokio::spawn(yds_edge::server::serve(listener, server, std::future::pending()));

    let counts = Arc::new(Deliveries::default());
    let client = reqwest::Client::new();
    {
        let (client, counts) = (client.clone(), counts.clone());
        tokio::spawn(async move {
            while let Some(task) = delivered.recv().await {
                tokio::spawn(run_task(client.clone(), task, counts.clone()));
            }
        });
    }

    let body = json!({"name": "on-gcp", "archive_url": "gs://yds-sources/exports/d.tar.gz"}).to_string();
    let accepted = Acceptor::new(importer.clone(), 2).start("default", None, body.as_bytes()).await.unwrap();
    let scratch = format!("temp/{}/", accepted.job_id);
    let mut staged_seen = false;
    let job = loop {
        let job = importer.db.jobs.find(&accepted.job_id).await.unwrap().unwrap();
        if job.status.is_terminal() {
            break job;
        }
        staged_seen = staged_seen || !all_keys(importer.objects.as_ref(), &scratch).await.is_empty();
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(staged_seen, "the tar.gz was staged under {scratch} in the bucket");

    assert_eq!(job.status, JobStatus::Completed, "errors: {:?}", job.errors);
    let stats = job.result.clone().unwrap().statistics;
    assert_eq!(stats.images, generated.image_count() as u64);
    assert_eq!(stats.annotations, generated.annotation_count() as u64);
    let dataset_id = job.dataset_id.clone();
    let stored = all_keys(importer.objects.as_ref(), &format!("datasets/{dataset_id}/images/")).await;
    assert_eq!(stored.len(), generated.image_count(), "every image stored once in the bucket");
    let documents = count(&importer.db, "images", mongodb::bson::doc! {"dataset_id": &dataset_id}).await;
    assert_eq!(documents, generated.image_count() as u64);

    // Every CreateTask is an HTTP task to process-chunk with the invoker's OIDC token.
    let requests = service.requests.lock().unwrap().clone();
    let created = service.names.lock().unwrap().len();
    assert!(requests.len() > created, "re-enqueues of existing names met ALREADY_EXISTS");
    for req in &requests {
        assert_eq!(req.parent, QUEUE);
        let task = req.task.as_ref().unwrap();
        let http = task.http_request().unwrap();
        assert_eq!(http.url, target);
        let oidc = http.oidc_token().unwrap();
        assert_eq!(oidc.service_account_email, INVOKER);
        assert_eq!(oidc.audience, target.trim_end_matches("/tasks"));
        assert!(task.dispatch_deadline.is_some());
    }
    let continued = requests.iter().filter(|r| r.task.as_ref().unwrap().name.contains("-plan-")).count();
    assert!(continued > 0, "the staging pass continued in new tasks");
    let chunk_tasks = service.names.lock().unwrap().iter().filter(|n| n.contains("-chunk-")).count();
    let chunk_records = count(&importer.db, "import_chunks", mongodb::bson::doc! {"job_id": &accepted.job_id}).await;
    assert_eq!(chunk_tasks as u64, chunk_records, "one task per chunk, however often the planner ran");
    assert!(counts.total.load(Ordering::Relaxed) > 2 * chunk_tasks as u32, "duplicated deliveries");
    assert!(counts.retried.load(Ordering::Relaxed) > 0, "injected crashes were retried");

    // Nobody but the queue's identity runs tasks.
    let forged = reqwest::Client::new().post(&target).json(&json!({"kind": "plan", "job_id": accepted.job_id}));
    assert_eq!(forged.send().await.unwrap().status(), 403);
    let other_queue = reqwest::Client::new()
        .post(&target)
        .header(headers::QUEUE_NAME, "another-queue")
        .header(headers::TASK_NAME, "t")
        .header(
            "authorization",
            format!("Bearer {}", oidc_token_as_cloud_run_passes_it(INVOKER, target.trim_end_matches("/tasks"))),
        )
        .json(&json!({"kind": "plan", "job_id": accepted.job_id}));
    assert_eq!(other_queue.send().await.unwrap().status(), 403);

    // The watchdog's round after the end removes the job's scratch objects.
    let mut left = all_keys(importer.objects.as_ref(), &scratch).await;
    for _ in 0..100 {
        if left.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        left = all_keys(importer.objects.as_ref(), &scratch).await;
    }
    assert!(left.is_empty(), "scratch objects left: {left:?}");
    // So are its member records, which labels were used and the chunk file lists (deleted
    // before the objects); the chunk records stay, with their outcomes.
    let under_job = of_job(&accepted.job_id);
    for scratch_records in ["import_members", "import_used_labels", "import_chunk_files"] {
        assert_eq!(count(&importer.db, scratch_records, under_job.clone()).await, 0, "{scratch_records}");
    }
    let chunks_left = count(&importer.db, "import_chunks", mongodb::bson::doc! {"job_id": &accepted.job_id}).await;
    assert_eq!(chunks_left, chunk_records);
}
