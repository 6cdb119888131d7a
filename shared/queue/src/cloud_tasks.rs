//! The production [`TaskQueue`]: one Cloud Tasks `CreateTask` call per enqueue.
//!
//! Each task is an HTTP task aimed at process-chunk: a POST of the task's JSON body with an OIDC
//! token for the invoker service account, named `{queue}/tasks/{task.name}`. The name makes
//! Cloud Tasks deduplicate a re-enqueue of the same work (`ALREADY_EXISTS`, taken as success), the
//! same contract as [`LocalQueue`](super::LocalQueue). Retries and backoff are the queue's own
//! retry config; Cloud Tasks then delivers with the `X-CloudTasks-*` headers of
//! [`headers`](super::headers), which process-chunk reads for its dead-letter decision.
//!
//! Note that Cloud Tasks also refuses a name for about an hour after its task ran or was deleted,
//! where the local queue accepts it again once the task is gone: enqueueing finished work anew
//! under the same name is a no-op here.

use std::time::Duration;

use async_trait::async_trait;
use google_cloud_gax::error::rpc::Code;
use google_cloud_gax::options::RequestOptionsBuilder;
use google_cloud_tasks_v2::client::CloudTasks;
use google_cloud_tasks_v2::model::{CreateTaskRequest, HttpMethod, HttpRequest, OidcToken, Task};

use super::{QueueError, Task as QueuedTask, TaskQueue};

/// The dispatch deadline when none is configured: one chunk's time budget.
pub const DEFAULT_DISPATCH_DEADLINE: Duration = Duration::from_secs(10 * 60);
/// The shortest dispatch deadline Cloud Tasks accepts for HTTP tasks.
pub const MIN_DISPATCH_DEADLINE: Duration = Duration::from_secs(15);
/// The longest dispatch deadline Cloud Tasks accepts for HTTP tasks.
pub const MAX_DISPATCH_DEADLINE: Duration = Duration::from_secs(30 * 60);
/// The longest task ID Cloud Tasks accepts.
pub const MAX_TASK_ID_LEN: usize = 500;
/// The largest task Cloud Tasks accepts (body, URL, headers and name together).
pub const MAX_TASK_BYTES: usize = 1_000_000;
/// How long one `CreateTask` attempt may take before the client gives it up (and retries it).
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);

/// Where and how tasks are created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudTasksConfig {
    /// The queue's full name: `projects/P/locations/L/queues/Q`.
    pub queue: String,
    /// process-chunk's URL (its Cloud Run service URL).
    pub target_url: String,
    /// The invoker service account whose OIDC token Cloud Tasks attaches to each delivery.
    pub service_account: String,
    /// The OIDC token's audience; `None` means the origin of `target_url`, as Cloud Run expects.
    pub audience: Option<String>,
    /// How long one delivery may run: the chunk budget (Cloud Tasks allows 15 s to 30 min).
    pub dispatch_deadline: Duration,
}

impl CloudTasksConfig {
    /// A configuration with the default audience and dispatch deadline.
    pub fn new(queue: impl Into<String>, target_url: impl Into<String>, service_account: impl Into<String>) -> Self {
        Self {
            queue: queue.into(),
            target_url: target_url.into(),
            service_account: service_account.into(),
            audience: None,
            dispatch_deadline: DEFAULT_DISPATCH_DEADLINE,
        }
    }

    /// The OIDC audience: the configured one, else `target_url`'s origin (`https://host[:port]`).
    pub fn audience(&self) -> String {
        if let Some(audience) = &self.audience {
            return audience.clone();
        }
        match url::Url::parse(&self.target_url) {
            Ok(url) if url.has_host() => url.origin().ascii_serialization(),
            _ => self.target_url.clone(),
        }
    }

    /// The queue's ID, the last segment of its name (what `X-CloudTasks-QueueName` carries).
    pub fn queue_id(&self) -> &str {
        self.queue.rsplit('/').next().unwrap_or(&self.queue)
    }

    /// Checks what Cloud Tasks would otherwise reject on every enqueue.
    pub fn validate(&self) -> Result<(), QueueError> {
        let invalid = |what: String| Err(QueueError::Unavailable(format!("invalid Cloud Tasks configuration: {what}")));
        let parts: Vec<&str> = self.queue.split('/').collect();
        let queue_ok = parts.len() == 6
            && parts[0] == "projects"
            && parts[2] == "locations"
            && parts[4] == "queues"
            && [parts[1], parts[3], parts[5]].iter().all(|p| !p.is_empty());
        if !queue_ok {
            return invalid(format!("queue {:?} is not projects/P/locations/L/queues/Q", self.queue));
        }
        match url::Url::parse(&self.target_url) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.has_host() => {}
            _ => return invalid(format!("target URL {:?} is not an http(s) URL", self.target_url)),
        }
        if !self.service_account.contains('@') {
            return invalid(format!("service account {:?} is not an email address", self.service_account));
        }
        if !(MIN_DISPATCH_DEADLINE..=MAX_DISPATCH_DEADLINE).contains(&self.dispatch_deadline) {
            return invalid(format!("dispatch deadline {:?} is outside 15 s..30 min", self.dispatch_deadline));
        }
        Ok(())
    }
}

/// Enqueues tasks on a Cloud Tasks queue.
#[derive(Debug, Clone)]
pub struct CloudTasksQueue {
    client: CloudTasks,
    config: CloudTasksConfig,
    audience: String,
}

impl CloudTasksQueue {
    /// The production client: Cloud Tasks' default endpoint and Application Default Credentials
    /// (on Cloud Run, the service's own identity, which needs `roles/cloudtasks.enqueuer` and
    /// `iam.serviceAccounts.actAs` on `service_account`).
    pub async fn new(config: CloudTasksConfig) -> Result<Self, QueueError> {
        config.validate()?;
        install_crypto_provider();
        let client = CloudTasks::builder()
            .build()
            .await
            .map_err(|e| QueueError::Unavailable(redact(&format!("cannot create the Cloud Tasks client: {e}"))))?;
        Ok(Self::with_client(client, config))
    }

    /// A queue on a given client: a stub (`CloudTasks::from_stub`), or a client of another endpoint
    /// in tests (built after [`install_crypto_provider`], as any real Cloud Tasks client must be).
    pub fn with_client(client: CloudTasks, config: CloudTasksConfig) -> Self {
        let audience = config.audience();
        Self { client, config, audience }
    }

    /// The configuration the queue creates tasks with.
    pub fn config(&self) -> &CloudTasksConfig {
        &self.config
    }

    /// The exact `CreateTask` request that [`enqueue`](TaskQueue::enqueue) sends for `body`.
    pub fn create_task_request(&self, task: &QueuedTask) -> CreateTaskRequest {
        let name = &task.name;
        debug_assert!(is_valid_task_id(name), "task name {name:?} is not a valid Cloud Tasks task ID");
        let id = task_id(name);
        let json = task.json().as_bytes().to_vec();
        let oidc =
            OidcToken::new().set_service_account_email(&self.config.service_account).set_audience(&self.audience);
        let http = HttpRequest::new()
            .set_url(&self.config.target_url)
            .set_http_method(HttpMethod::Post)
            .set_headers(
                std::iter::once(("content-type", "application/json"))
                    .chain(task.traceparent.as_deref().map(|t| (yds_config::trace::TRACEPARENT, t))),
            )
            .set_body(json)
            .set_oidc_token(oidc);
        let deadline = self.config.dispatch_deadline.clamp(MIN_DISPATCH_DEADLINE, MAX_DISPATCH_DEADLINE);
        let task = Task::new()
            .set_name(format!("{}/tasks/{id}", self.config.queue))
            .set_http_request(http)
            .set_dispatch_deadline(google_cloud_wkt::Duration::clamp(deadline.as_secs() as i64, 0));
        CreateTaskRequest::new().set_parent(&self.config.queue).set_task(task)
    }
}

#[async_trait]
impl TaskQueue for CloudTasksQueue {
    async fn enqueue_after(&self, task: &QueuedTask, delay: std::time::Duration) -> Result<(), QueueError> {
        let mut request = self.create_task_request(task);
        if !delay.is_zero() {
            let at = std::time::SystemTime::now() + delay;
            let since_epoch = at.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            let time = google_cloud_wkt::Timestamp::clamp(since_epoch.as_secs() as i64, 0);
            request.task = request.task.map(|task| task.set_schedule_time(time));
        }
        let task = request.task.as_ref().expect("create_task_request sets the task");
        let id = task.name.rsplit('/').next().unwrap_or_default().to_owned();
        let size = task_size(task);
        if size > MAX_TASK_BYTES {
            return Err(QueueError::Unavailable(format!(
                "cannot create Cloud Tasks task {id}: it is {size} bytes, over Cloud Tasks' 1 MB task limit"
            )));
        }
        let result = self
            .client
            .create_task()
            .with_request(request)
            // A named task is safe to create twice: a retry after a lost answer meets ALREADY_EXISTS.
            .with_idempotency(true)
            .with_attempt_timeout(ATTEMPT_TIMEOUT)
            .send()
            .await;
        match result {
            Ok(_) => {
                tracing::debug!(task = %id, "task created");
                Ok(())
            }
            Err(err) if err.status().is_some_and(|s| s.code == Code::AlreadyExists) => {
                tracing::debug!(task = %id, "task already exists; deduplicated");
                Ok(())
            }
            Err(err) => Err(QueueError::Unavailable(describe(&id, &err))),
        }
    }
}

/// Makes ring the process's rustls crypto provider unless one is installed already. The Google
/// client is built without its default provider (aws-lc-rs, a long C build) and panics without one.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A task's size as Cloud Tasks counts it, near enough: name, URL, headers and body.
fn task_size(task: &Task) -> usize {
    let http = task
        .http_request()
        .map_or(0, |h| h.url.len() + h.body.len() + h.headers.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>());
    task.name.len() + http
}

/// Whether `id` is a valid Cloud Tasks task ID: letters, digits, hyphens and underscores, at most
/// 500 characters.
pub fn is_valid_task_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_TASK_ID_LEN
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The task ID for a task name: the name itself when valid (as the import's task names are),
/// else the name with other characters replaced by `_`, cut to fit, and suffixed with a hash of
/// the original name so distinct names never share an ID.
pub fn task_id(name: &str) -> String {
    if is_valid_task_id(name) {
        return name.to_owned();
    }
    let hash = blake3::hash(name.as_bytes()).to_hex();
    let suffix = &hash.as_str()[..32];
    let cleaned: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' })
        .take(MAX_TASK_ID_LEN - suffix.len() - 1)
        .collect();
    format!("{cleaned}-{suffix}")
}

/// A failed `CreateTask` as a message for [`QueueError::Unavailable`]: the service's code and
/// message, or the kind of failure. No request headers or credentials are included.
fn describe(task: &str, err: &google_cloud_tasks_v2::Error) -> String {
    let what = if let Some(status) = err.status() {
        format!("{}: {}", status.code.name(), status.message)
    } else if err.is_authentication() {
        "cannot obtain credentials for Cloud Tasks".to_owned()
    } else if let Some(code) = err.http_status_code() {
        // A proxy's or load balancer's answer: its payload is not the service's, leave it out.
        format!("HTTP {code} from the Cloud Tasks endpoint")
    } else if err.is_timeout() {
        "the request timed out".to_owned()
    } else if err.is_connect() {
        "cannot connect to the Cloud Tasks endpoint".to_owned()
    } else if err.is_binding() {
        "the queue name does not fit projects/P/locations/L/queues/Q".to_owned()
    } else {
        err.to_string()
    };
    redact(&format!("cannot create Cloud Tasks task {task}: {what}"))
}

/// Replaces anything that looks like a bearer or access token, in case a message carries one.
fn redact(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut hide_next = false;
    for (i, word) in message.split(' ').enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let secret = hide_next || word.contains("ya29.") || word.starts_with("eyJ");
        hide_next = word.eq_ignore_ascii_case("bearer");
        out.push_str(if secret { "[redacted]" } else { word });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_task_ids_are_kept_as_they_are() {
        for name in ["0123456789abcdef0123456789abcdef-plan", "0123456789abcdef0123456789abcdef-chunk-9999999-r3"] {
            assert!(is_valid_task_id(name), "{name}");
            assert_eq!(task_id(name), name);
        }
    }

    #[test]
    fn invalid_names_are_sanitized_without_collisions() {
        let a = task_id("job/1.plan");
        let b = task_id("job_1_plan");
        let c = task_id("job.1/plan");
        assert!(is_valid_task_id(&a), "{a}");
        assert!(a.starts_with("job_1_plan-"), "{a}");
        assert_eq!(b, "job_1_plan");
        assert_ne!(a, c);
        let long = task_id(&"é".repeat(600));
        assert!(is_valid_task_id(&long) && long.len() == MAX_TASK_ID_LEN, "{}", long.len());
        assert!(!is_valid_task_id(""));
        assert!(!is_valid_task_id(&"a".repeat(501)));
    }

    #[test]
    fn audience_defaults_to_the_target_origin() {
        let mut config = CloudTasksConfig::new(
            "projects/p/locations/l/queues/q",
            "https://process-chunk-abc-ew.a.run.app/tasks?x=1",
            "invoker@p.iam.gserviceaccount.com",
        );
        assert_eq!(config.audience(), "https://process-chunk-abc-ew.a.run.app");
        assert_eq!(config.queue_id(), "q");
        config.audience = Some("https://custom".into());
        assert_eq!(config.audience(), "https://custom");
    }

    #[test]
    fn validate_rejects_what_cloud_tasks_would() {
        let good = CloudTasksConfig::new("projects/p/locations/l/queues/q", "https://x.run.app", "sa@p.iam");
        assert!(good.validate().is_ok());
        let bad = [
            CloudTasksConfig { queue: "projects/p/queues/q".into(), ..good.clone() },
            CloudTasksConfig { queue: "projects/p/locations//queues/q".into(), ..good.clone() },
            CloudTasksConfig { target_url: "ftp://x".into(), ..good.clone() },
            CloudTasksConfig { service_account: "sa".into(), ..good.clone() },
            CloudTasksConfig { dispatch_deadline: Duration::from_secs(14), ..good.clone() },
            CloudTasksConfig { dispatch_deadline: Duration::from_secs(1801), ..good.clone() },
        ];
        for config in bad {
            assert!(config.validate().is_err(), "{config:?}");
        }
    }

    #[test]
    fn redact_hides_tokens() {
        let out = redact("header Authorization: Bearer abc.def.ghi and ya29.a0secret and eyJhbGciOi.x.y end");
        assert_eq!(out, "header Authorization: Bearer [redacted] and [redacted] and [redacted] end");
    }
}
