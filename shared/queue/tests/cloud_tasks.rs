//! The Cloud Tasks queue without Google: the client's stub seam records the exact `CreateTask`
//! requests (and answers ALREADY_EXISTS for a name it has seen, as the service does); the real
//! REST transport runs against a loopback fake of the endpoint; and the recorded tasks are then
//! delivered the way Cloud Tasks delivers them, to a loopback HTTP server that reads them as
//! process-chunk does: the body exactly as enqueued, the attempt from the headers.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use google_cloud_gax::error::rpc::{Code, Status};
use google_cloud_gax::options::RequestOptions;
use google_cloud_gax::response::Response;
use google_cloud_tasks_v2::client::CloudTasks;
use google_cloud_tasks_v2::model::{CreateTaskRequest, HttpMethod, Task as CloudTask};
use google_cloud_tasks_v2::Error;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::net::TcpListener;
use yds_queue::cloud_tasks::{CloudTasksConfig, CloudTasksQueue};
use yds_queue::{headers, QueueError, Task, TaskQueue};

const QUEUE: &str = "projects/yds-test/locations/europe-west1/queues/yds-import";
const TARGET: &str = "https://process-chunk-abc123-ew.a.run.app/";
const INVOKER: &str = "yds-invoker@yds-test.iam.gserviceaccount.com";
const JOB: &str = "0123456789abcdef0123456789abcdef";

fn config(target: &str) -> CloudTasksConfig {
    CloudTasksConfig::new(QUEUE, target, INVOKER)
}

fn plan() -> Task {
    Task::new(format!("{JOB}-plan"), &json!({"kind": "plan", "job_id": JOB}))
}

/// A file of a chunk's list, shaped as the import writes them.
fn file(name: &str, size: u64) -> serde_json::Value {
    let at = |ext: &str| json!({"at": "staged", "key": format!("staging/{JOB}/train/{name}.{ext}")});
    json!({"split": "train", "file_name": format!("{name}.jpg"), "image": at("jpg"), "size": size, "label": at("txt"), "label_size": 20})
}

fn chunk() -> Task {
    let body = json!({"kind": "chunk", "job_id": JOB, "index": 3, "files": [file("a", 1000), file("b é", 1000)]});
    Task::new(format!("{JOB}-chunk-0000003"), &body)
}

/// Makes the error a failing `CreateTask` returns.
type MakeError = fn() -> Error;

/// Cloud Tasks as far as `CreateTask` goes: records every call, creates a task once per name.
#[derive(Debug, Default)]
struct FakeCloudTasks {
    calls: Mutex<Vec<(CreateTaskRequest, RequestOptions)>>,
    created: Mutex<Vec<CloudTask>>,
    /// When set, every call fails with this error instead.
    fail: Mutex<Option<MakeError>>,
}

impl FakeCloudTasks {
    fn calls(&self) -> Vec<(CreateTaskRequest, RequestOptions)> {
        self.calls.lock().unwrap().clone()
    }

    fn created(&self) -> Vec<CloudTask> {
        self.created.lock().unwrap().clone()
    }
}

impl google_cloud_tasks_v2::stub::CloudTasks for FakeCloudTasks {
    async fn create_task(
        &self,
        req: CreateTaskRequest,
        options: RequestOptions,
    ) -> google_cloud_tasks_v2::Result<Response<CloudTask>> {
        self.calls.lock().unwrap().push((req.clone(), options));
        if let Some(fail) = *self.fail.lock().unwrap() {
            return Err(fail());
        }
        let task = req.task.expect("CreateTask carries a task");
        let mut created = self.created.lock().unwrap();
        if created.iter().any(|t| t.name == task.name) {
            let status = Status::default().set_code(Code::AlreadyExists).set_message("Requested entity already exists");
            return Err(Error::service(status));
        }
        created.push(task.clone());
        Ok(Response::from(task))
    }
}

fn stub_queue(target: &str) -> (Arc<FakeCloudTasks>, CloudTasksQueue) {
    let fake = Arc::new(FakeCloudTasks::default());
    let queue = CloudTasksQueue::with_client(CloudTasks::from_stub::<FakeCloudTasks>(fake.clone()), config(target));
    (fake, queue)
}

#[test]
fn create_task_request_is_exactly_the_cloud_tasks_http_task() {
    let (_, queue) = stub_queue(TARGET);
    for queued in [plan(), chunk()] {
        let req = queue.create_task_request(&queued);
        assert_eq!(req.parent, QUEUE);
        let task = req.task.as_ref().expect("a task");
        assert_eq!(task.name, format!("{QUEUE}/tasks/{}", queued.name));
        assert!(task.schedule_time.is_none(), "no schedule: retries are the queue's");
        assert_eq!(task.dispatch_deadline, Some(google_cloud_wkt::Duration::clamp(600, 0)));
        let http = task.http_request().expect("an HTTP task");
        assert_eq!(http.url, TARGET);
        assert_eq!(http.http_method, HttpMethod::Post);
        assert_eq!(http.headers, HashMap::from([("content-type".to_owned(), "application/json".to_owned())]));
        assert_eq!(
            http.body,
            Bytes::from(queued.json().to_owned()),
            "the body as enqueued: raw JSON bytes, not base64"
        );
        let oidc = http.oidc_token().expect("an OIDC token");
        assert_eq!(oidc.service_account_email, INVOKER);
        assert_eq!(oidc.audience, "https://process-chunk-abc123-ew.a.run.app");
        assert!(http.oauth_token().is_none());
    }
    assert_eq!(queue.create_task_request(&plan()).task.unwrap().name, format!("{QUEUE}/tasks/{JOB}-plan"));
    assert_eq!(queue.create_task_request(&chunk()).task.unwrap().name, format!("{QUEUE}/tasks/{JOB}-chunk-0000003"));

    let custom = CloudTasksConfig {
        audience: Some("https://yds.example/process-chunk".into()),
        dispatch_deadline: Duration::from_secs(25 * 60),
        ..config(TARGET)
    };
    let queue = CloudTasksQueue::with_client(CloudTasks::from_stub(FakeCloudTasks::default()), custom);
    let task = queue.create_task_request(&plan()).task.unwrap();
    assert_eq!(task.http_request().unwrap().oidc_token().unwrap().audience, "https://yds.example/process-chunk");
    assert_eq!(task.dispatch_deadline, Some(google_cloud_wkt::Duration::clamp(1500, 0)));
}

#[test]
fn a_task_under_a_trace_carries_its_traceparent_as_a_header() {
    let (_, queue) = stub_queue(TARGET);
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let traced = Task { traceparent: Some(traceparent.into()), ..plan() };
    let task = queue.create_task_request(&traced).task.unwrap();
    let headers = &task.http_request().unwrap().headers;
    assert_eq!(headers.get("traceparent").map(String::as_str), Some(traceparent));
    assert_eq!(headers.get("content-type").map(String::as_str), Some("application/json"));
}

#[tokio::test]
async fn enqueue_sends_create_task_and_a_repeat_is_deduplicated() {
    let (fake, queue) = stub_queue(TARGET);
    queue.enqueue(&plan()).await.expect("first enqueue");
    queue.enqueue(&plan()).await.expect("the repeat meets ALREADY_EXISTS, which is success");
    queue.enqueue(&chunk()).await.expect("a chunk");

    let calls = fake.calls();
    assert_eq!(calls.len(), 3);
    for ((req, options), queued) in calls.iter().zip([plan(), plan(), chunk()]) {
        assert_eq!(req, &queue.create_task_request(&queued), "enqueue sends exactly create_task_request");
        assert_eq!(options.idempotent(), Some(true), "named tasks make CreateTask safe to retry");
        assert_eq!(options.attempt_timeout(), &Some(Duration::from_secs(30)));
    }
    let names: Vec<String> = fake.created().into_iter().map(|t| t.name).collect();
    assert_eq!(names, [format!("{QUEUE}/tasks/{JOB}-plan"), format!("{QUEUE}/tasks/{JOB}-chunk-0000003")]);
}

#[tokio::test]
async fn errors_other_than_already_exists_are_unavailable_without_secrets() {
    let cases: [(MakeError, &str); 5] = [
        (
            || {
                Error::service(
                    Status::default().set_code(Code::PermissionDenied).set_message("lacks cloudtasks.tasks.create"),
                )
            },
            "PERMISSION_DENIED: lacks cloudtasks.tasks.create",
        ),
        (
            || Error::service(Status::default().set_code(Code::NotFound).set_message("Queue does not exist.")),
            "NOT_FOUND",
        ),
        (|| Error::service(Status::default().set_code(Code::Unavailable).set_message("try again")), "UNAVAILABLE"),
        (
            || {
                let payload = Bytes::from_static(b"<html>401 Authorization: Bearer ya29.a0-secret-token</html>");
                Error::http(401, http::HeaderMap::new(), payload)
            },
            "HTTP 401",
        ),
        (|| Error::timeout("deadline exceeded"), "timed out"),
    ];
    for (make, expected) in cases {
        let (fake, queue) = stub_queue(TARGET);
        *fake.fail.lock().unwrap() = Some(make);
        match queue.enqueue(&chunk()).await {
            Err(QueueError::Unavailable(message)) => {
                assert!(message.contains(expected), "{message:?} lacks {expected:?}");
                assert!(message.contains(&format!("{JOB}-chunk-0000003")), "{message:?} names the task");
                assert!(!message.contains("ya29") && !message.contains("secret"), "{message:?} leaks a token");
            }
            Ok(()) => panic!("{expected}: an error must not be success"),
        }
    }
}

#[tokio::test]
async fn a_task_over_the_size_limit_is_refused_before_the_call() {
    let (fake, queue) = stub_queue(TARGET);
    let files =
        |n: usize| -> Vec<serde_json::Value> { (0..n).map(|i| file(&format!("images/{i:08}"), 100_000)).collect() };
    let big = Task::new(format!("{JOB}-chunk-0000000"), &json!({"kind": "chunk", "files": files(10_000)}));
    match queue.enqueue(&big).await {
        Err(QueueError::Unavailable(message)) => assert!(message.contains("1 MB task limit"), "{message}"),
        Ok(()) => panic!("a task over 1 MB is refused"),
    }
    assert!(fake.calls().is_empty(), "no CreateTask call for a task Cloud Tasks would refuse");
    // Planning puts at most 2,000 files in a task (more travel in the chunk's record).
    let fits = Task::new(format!("{JOB}-chunk-0000001"), &json!({"kind": "chunk", "files": files(2_000)}));
    queue.enqueue(&fits).await.expect("2,000 such files fit");
}

/// One request as the process-chunk stand-in received it.
#[derive(Debug, Clone)]
struct Received {
    method: String,
    path: String,
    headers: http::HeaderMap,
    body: Bytes,
}

impl Received {
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default()
    }

    /// What process-chunk takes from a delivery: the task body and the retry count.
    fn as_process_chunk_reads_it(&self) -> (String, u32) {
        let body = String::from_utf8(self.body.to_vec()).expect("a UTF-8 JSON body");
        (body, headers::retry_count(&self.headers))
    }
}

/// How a loopback server answers a request: status and JSON body.
type Responder = Box<dyn FnMut(&Received) -> (u16, String) + Send>;

/// A loopback HTTP/1.1 server that records each request and answers through a [`Responder`].
struct Recorder {
    url: String,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Recorder {
    async fn start(responder: Responder) -> Recorder {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let received: Arc<Mutex<Vec<Received>>> = Arc::default();
        let responder = Arc::new(Mutex::new(responder));
        let rec = received.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (rec, responder) = (rec.clone(), responder.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                        let (rec, responder) = (rec.clone(), responder.clone());
                        async move {
                            let (parts, body) = req.into_parts();
                            let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                            let got = Received {
                                method: parts.method.to_string(),
                                path: parts.uri.path().to_owned(),
                                headers: parts.headers,
                                body,
                            };
                            let (status, json) = (responder.lock().unwrap())(&got);
                            rec.lock().unwrap().push(got);
                            let mut res = hyper::Response::new(Full::new(Bytes::from(json)));
                            *res.status_mut() = http::StatusCode::from_u16(status).unwrap();
                            res.headers_mut()
                                .insert("content-type", http::HeaderValue::from_static("application/json"));
                            Ok::<_, Infallible>(res)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Recorder { url, received }
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

/// A process-chunk stand-in: answers the scripted statuses in turn, then 200.
async fn process_chunk_stand_in(script: Arc<Mutex<Vec<u16>>>) -> Recorder {
    Recorder::start(Box::new(move |_| {
        let mut script = script.lock().unwrap();
        let status = if script.is_empty() { 200 } else { script.remove(0) };
        (status, r#"{"status":"done"}"#.to_owned())
    }))
    .await
}

/// Delivers `task` as Cloud Tasks does: its method, URL, headers and body, plus the
/// `X-CloudTasks-*` headers; returns the answer's status.
async fn deliver(client: &reqwest::Client, task: &CloudTask, retry_count: u32, execution_count: u32) -> u16 {
    let http = task.http_request().expect("an HTTP task");
    assert_eq!(http.http_method, HttpMethod::Post);
    let (queue_name, task_id) = task.name.split_once("/tasks/").expect("a full task name");
    let mut req = client
        .post(&http.url)
        .header(headers::TASK_NAME, task_id)
        .header(headers::RETRY_COUNT, retry_count.to_string())
        .header(headers::EXECUTION_COUNT, execution_count.to_string())
        .header(headers::QUEUE_NAME, queue_name.rsplit('/').next().unwrap())
        .header("user-agent", "Google-Cloud-Tasks")
        .body(http.body.clone());
    for (name, value) in &http.headers {
        req = req.header(name, value);
    }
    req.send().await.expect("the stand-in answers").status().as_u16()
}

#[tokio::test]
async fn created_tasks_deliver_as_process_chunk_expects() {
    let script: Arc<Mutex<Vec<u16>>> = Arc::default();
    let server = process_chunk_stand_in(script.clone()).await;
    let (fake, queue) = stub_queue(&server.url);
    queue.enqueue(&plan()).await.unwrap();
    queue.enqueue(&chunk()).await.unwrap();
    queue.enqueue(&chunk()).await.unwrap();
    let created = fake.created();
    assert_eq!(created.len(), 2, "the repeated chunk was deduplicated");
    let (plan_task, chunk_task) = (&created[0], &created[1]);

    let client = reqwest::Client::new();
    // The plan, delivered twice at once (Cloud Tasks may), both answered.
    let (a, b) = tokio::join!(deliver(&client, plan_task, 0, 0), deliver(&client, plan_task, 0, 0));
    assert_eq!((a, b), (200, 200));
    // The chunk fails once (503), and Cloud Tasks retries it with RetryCount 1.
    script.lock().unwrap().push(503);
    assert_eq!(deliver(&client, chunk_task, 0, 0).await, 503);
    assert_eq!(deliver(&client, chunk_task, 1, 1).await, 200);

    let received = server.received();
    assert_eq!(received.len(), 4);
    let expected = [(plan(), 0, "0"), (plan(), 0, "0"), (chunk(), 0, "0"), (chunk(), 1, "1")];
    for (got, (queued, retries, executions)) in received.iter().zip(expected) {
        assert_eq!(got.method, "POST");
        assert_eq!(got.path, "/");
        assert_eq!(got.header("content-type"), "application/json");
        assert_eq!(got.header(headers::TASK_NAME), queued.name);
        assert_eq!(got.header(headers::QUEUE_NAME), "yds-import");
        assert_eq!(got.header(headers::EXECUTION_COUNT), executions);
        assert_eq!(got.as_process_chunk_reads_it(), (queued.json().to_owned(), retries));
    }
}

/// The Cloud Tasks REST endpoint as far as `tasks.create` goes, on loopback: creates a task once
/// per name and answers 409 ALREADY_EXISTS for a repeated one, as the service does; a task whose
/// name contains `denied` gets 403 PERMISSION_DENIED.
async fn fake_rest_endpoint() -> Recorder {
    let mut names = std::collections::HashSet::new();
    Recorder::start(Box::new(move |req| {
        let error = |code: u16, status: &str, message: &str| {
            let json = serde_json::json!({"error": {"code": code, "status": status, "message": message}});
            (code, json.to_string())
        };
        let json: serde_json::Value = match serde_json::from_slice(&req.body) {
            Ok(json) => json,
            Err(_) => return error(400, "INVALID_ARGUMENT", "not JSON"),
        };
        let task = &json["task"];
        let name = task["name"].as_str().unwrap_or_default().to_owned();
        if name.contains("denied") {
            error(403, "PERMISSION_DENIED", "The principal lacks IAM permission cloudtasks.tasks.create")
        } else if !names.insert(name) {
            error(409, "ALREADY_EXISTS", "Requested entity already exists")
        } else {
            (200, task.to_string())
        }
    }))
    .await
}

#[tokio::test]
async fn real_transport_against_a_loopback_endpoint() {
    let endpoint = fake_rest_endpoint().await;
    yds_queue::cloud_tasks::install_crypto_provider();
    let client = CloudTasks::builder()
        .with_endpoint(endpoint.url.trim_end_matches('/'))
        .with_credentials(google_cloud_auth::credentials::anonymous::Builder::new().build())
        .build()
        .await
        .expect("a client on the loopback endpoint");
    let queue = CloudTasksQueue::with_client(client, config(TARGET));

    queue.enqueue(&chunk()).await.expect("created");
    queue.enqueue(&chunk()).await.expect("ALREADY_EXISTS is success");
    match queue.enqueue(&Task::new("denied-plan", &json!({"kind": "plan"}))).await {
        Err(QueueError::Unavailable(message)) => {
            assert!(message.contains("PERMISSION_DENIED: The principal lacks"), "{message}")
        }
        Ok(()) => panic!("a 403 is an error"),
    }

    let received = endpoint.received();
    assert_eq!(received.len(), 3, "409 and 403 are not retried");
    let first = &received[0];
    assert_eq!(first.method, "POST");
    assert_eq!(first.path, format!("/v2/{QUEUE}/tasks"));
    assert!(first.header("authorization").is_empty(), "anonymous credentials send no token");
    let json: serde_json::Value = serde_json::from_slice(&first.body).unwrap();
    let task = &json["task"];
    assert_eq!(task["name"], format!("{QUEUE}/tasks/{JOB}-chunk-0000003"));
    assert_eq!(task["dispatchDeadline"], "600s");
    let http = &task["httpRequest"];
    assert_eq!(http["url"], TARGET);
    assert!(http["httpMethod"] == "POST" || http["httpMethod"] == 1, "{}", http["httpMethod"]);
    assert_eq!(http["headers"], serde_json::json!({"content-type": "application/json"}));
    assert_eq!(http["oidcToken"]["serviceAccountEmail"], INVOKER);
    assert_eq!(http["oidcToken"]["audience"], "https://process-chunk-abc123-ew.a.run.app");
    let body = base64::engine::general_purpose::STANDARD.decode(http["body"].as_str().unwrap()).unwrap();
    assert_eq!(body, chunk().json().as_bytes(), "the body as enqueued");
    assert_eq!(received[1].body, first.body, "the repeat sends the same request");
}
