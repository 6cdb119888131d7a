//! Accepting an import: validate the request exactly as the contract says, record the dataset
//! and the job, and enqueue planning.
//!
//! Order matters for crash safety: the job is inserted first (it is the deduplication point for
//! `Idempotency-Key`), then the dataset, then the planning task. A repeat of the same request
//! with the same key redoes the missing steps, so a crash between them loses nothing.

use mongodb::bson::{doc, DateTime};
use serde::Deserialize;

use crate::config::UrlPolicy;
use crate::datasets::{DatasetDoc, DatasetStatus};
use crate::db::{is_duplicate_key, Db};
use crate::format::Task;
use crate::http::ApiError;
use crate::jobs::{ImportSource, JobDoc, JobStatus};
use crate::queue::TaskQueue;
use crate::source;
use crate::tasks::TaskBody;

/// The body of `POST /datasets/import`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportRequest {
    pub name: String,
    #[serde(default)]
    pub archive_url: Option<String>,
    #[serde(default)]
    pub config_url: Option<String>,
    #[serde(default)]
    pub images_url: Option<String>,
    #[serde(default)]
    pub labels_url: Option<String>,
    #[serde(default)]
    pub chunk_size: Option<u32>,
    /// Extension: the task the labels are written for, when inference should not decide.
    #[serde(default)]
    pub task: Option<String>,
}

pub const MAX_CHUNK_SIZE: u32 = 10_000;
const MAX_NAME_CHARS: usize = 200;
const MAX_IDEMPOTENCY_KEY: usize = 255;

/// What the caller gets back (`202 Accepted`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Accepted {
    pub job_id: String,
    pub dataset_id: String,
    pub status: JobStatus,
}

pub struct ImportSettings {
    pub url_policy: UrlPolicy,
    pub default_chunk_size: u32,
    /// The coordinator's lease ([`crate::config::Pacing::chunk_lease`]): paces the job's watchdog.
    pub lease: std::time::Duration,
}

/// A validated request, ready to become a job.
struct Validated {
    name: String,
    source: ImportSource,
    chunk_size: u32,
    task: Option<Task>,
}

fn validate(body: &[u8], settings: &ImportSettings) -> Result<(Validated, String), ApiError> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| ApiError::BadRequest(format!("the body is not valid JSON: {e}")))?;
    if !value.is_object() {
        return Err(ApiError::BadRequest("the body must be a JSON object".into()));
    }
    let fingerprint = blake3::hash(canonical_json(&value).as_bytes()).to_hex().to_string();
    let request: ImportRequest = serde_json::from_value(value).map_err(|e| ApiError::Unprocessable(e.to_string()))?;

    let name = request.name.trim().to_owned();
    let chars = request.name.chars().count();
    if name.is_empty() || chars > MAX_NAME_CHARS {
        return Err(ApiError::Unprocessable(format!("`name` must be 1 to {MAX_NAME_CHARS} characters")));
    }
    if name.chars().any(char::is_control) {
        return Err(ApiError::Unprocessable("`name` must not contain control characters".into()));
    }
    let check = |field: &str, url: &str| {
        source::parse(url, settings.url_policy)
            .map(|_| ())
            .map_err(|e| ApiError::Unprocessable(format!("`{field}`: {e}")))
    };
    let source = match (&request.archive_url, &request.config_url, &request.images_url, &request.labels_url) {
        (Some(archive), None, None, None) => {
            check("archive_url", archive)?;
            ImportSource::Archive { url: archive.clone() }
        }
        (None, Some(config), Some(images), Some(labels)) => {
            check("config_url", config)?;
            check("images_url", images)?;
            check("labels_url", labels)?;
            ImportSource::Parts { config_url: config.clone(), images_url: images.clone(), labels_url: labels.clone() }
        }
        (None, None, None, None) => {
            return Err(ApiError::Unprocessable(
                "a source is required: `archive_url`, or `config_url` + `images_url` + `labels_url`".into(),
            ))
        }
        (Some(_), _, _, _) => {
            return Err(ApiError::Unprocessable(
                "give exactly one source: `archive_url` or `config_url` + `images_url` + `labels_url`, not both".into(),
            ))
        }
        _ => {
            return Err(ApiError::Unprocessable(
                "`config_url`, `images_url` and `labels_url` must be given together".into(),
            ))
        }
    };
    let chunk_size = request.chunk_size.unwrap_or(settings.default_chunk_size);
    if !(1..=MAX_CHUNK_SIZE).contains(&chunk_size) {
        return Err(ApiError::Unprocessable(format!("`chunk_size` must be from 1 to {MAX_CHUNK_SIZE}")));
    }
    let task = match request.task.as_deref() {
        None => None,
        Some(text) => Some(
            Task::parse(text)
                .ok_or_else(|| ApiError::Unprocessable("`task` must be one of detect, segment, pose, obb".into()))?,
        ),
    };
    Ok((Validated { name, source, chunk_size, task }, fingerprint))
}

/// JSON text with object keys sorted at every level, so equivalent bodies hash alike
/// (serde_json may preserve insertion order, depending on features other crates enable).
fn canonical_json(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::Object(map) => {
            let sorted: std::collections::BTreeMap<&String, String> =
                map.iter().map(|(k, v)| (k, canonical_json(v))).collect();
            let fields: Vec<String> =
                sorted.iter().map(|(k, v)| format!("{}:{v}", serde_json::Value::from(k.as_str()))).collect();
            format!("{{{}}}", fields.join(","))
        }
        serde_json::Value::Array(items) => {
            format!("[{}]", items.iter().map(canonical_json).collect::<Vec<_>>().join(","))
        }
        other => other.to_string(),
    }
}

/// Handles `POST /datasets/import` for `tenant`.
/// Checks an import request without recording anything (a 4xx problem when it is malformed),
/// so the caller can spend its rate limit only on requests that would start an import.
pub fn check_request(body: &[u8], settings: &ImportSettings) -> Result<(), ApiError> {
    validate(body, settings).map(|_| ())
}

pub async fn start_import(
    db: &Db,
    queue: &dyn TaskQueue,
    settings: &ImportSettings,
    tenant: &str,
    idempotency_key: Option<&str>,
    body: &[u8],
) -> Result<Accepted, ApiError> {
    if let Some(key) = idempotency_key {
        if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY || key.chars().any(|c| c.is_control()) {
            return Err(ApiError::BadRequest(format!(
                "`Idempotency-Key` must be 1 to {MAX_IDEMPOTENCY_KEY} visible characters"
            )));
        }
    }
    let (request, fingerprint) = validate(body, settings)?;
    if let Some(key) = idempotency_key {
        if let Some(existing) = db.jobs.find_one(doc! {"tenant": tenant, "idempotency_key": key}).await? {
            return resume(db, queue, settings.lease, existing, &request.name, &fingerprint).await;
        }
    }

    let now = DateTime::now();
    let job = JobDoc {
        id: uuid::Uuid::new_v4().simple().to_string(),
        tenant: tenant.to_owned(),
        dataset_id: uuid::Uuid::new_v4().simple().to_string(),
        status: JobStatus::Queued,
        source: request.source,
        chunk_size: request.chunk_size,
        task: request.task,
        idempotency_key: idempotency_key.map(str::to_owned),
        request_fingerprint: fingerprint.clone(),
        index_cursor: None,
        indexed: false,
        early: None,
        planned: false,
        planning_at: None,
        plan_redeliveries: 0,
        files_total: 0,
        chunks_total: 0,
        errors: Vec::new(),
        findings: Vec::new(),
        result: None,
        created_at: now,
        updated_at: now,
        finished_at: None,
    };
    match db.jobs.insert_one(&job).await {
        Ok(_) => {}
        Err(err) if is_duplicate_key(&err) => {
            // A concurrent request with the same key won the insert.
            let key = idempotency_key.unwrap_or_default();
            let existing = db
                .jobs
                .find_one(doc! {"tenant": tenant, "idempotency_key": key})
                .await?
                .ok_or_else(|| ApiError::internal("idempotent job vanished"))?;
            return resume(db, queue, settings.lease, existing, &request.name, &fingerprint).await;
        }
        Err(err) => return Err(err.into()),
    }
    resume(db, queue, settings.lease, job, &request.name, &fingerprint).await
}

/// Makes sure the job's dataset and planning task exist, then answers with the job.
async fn resume(
    db: &Db,
    queue: &dyn TaskQueue,
    lease: std::time::Duration,
    job: JobDoc,
    name: &str,
    fingerprint: &str,
) -> Result<Accepted, ApiError> {
    if job.request_fingerprint != fingerprint {
        return Err(ApiError::Unprocessable(
            "this Idempotency-Key was already used with a different request body".into(),
        ));
    }
    let dataset = DatasetDoc {
        id: job.dataset_id.clone(),
        tenant: job.tenant.clone(),
        name: name.to_owned(),
        status: DatasetStatus::Importing,
        job_id: job.id.clone(),
        created_at: job.created_at,
        task: job.task,
        classes: Vec::new(),
        kpt_shape: None,
        split_names: Vec::new(),
        stats: None,
        duplicates: None,
        findings: Vec::new(),
        finding_counts: Default::default(),
    };
    match db.datasets.insert_one(&dataset).await {
        Ok(_) => {}
        Err(err) if is_duplicate_key(&err) => {}
        Err(err) => return Err(err.into()),
    }
    if job.status == JobStatus::Queued {
        // The watchdog starts with the job, so even a planning task lost before its first
        // delivery is noticed and sent again.
        let unavailable = |e: crate::queue::QueueError| ApiError::Unavailable(e.to_string());
        crate::watchdog::schedule(queue, lease, &job.id, 0).await.map_err(unavailable)?;
        queue.enqueue(&TaskBody::Plan { job_id: job.id.clone() }.task()).await.map_err(unavailable)?;
    }
    Ok(Accepted { job_id: job.id, dataset_id: job.dataset_id, status: job.status })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> ImportSettings {
        ImportSettings {
            url_policy: UrlPolicy::Strict,
            default_chunk_size: 100,
            lease: crate::config::Pacing::default().chunk_lease,
        }
    }

    fn err(body: &str) -> String {
        match validate(body.as_bytes(), &settings()) {
            Ok(_) => panic!("{body} accepted"),
            Err(e) => format!("{} {}", e.status().as_u16(), e),
        }
    }

    #[test]
    fn requests_are_validated_as_the_contract_says() {
        assert!(err("{").starts_with("400"));
        assert!(err("[]").starts_with("400"));
        assert!(err(r#"{"name":"a","archive_url":"https://x.org/a.zip","nme":1}"#).contains("unknown field `nme`"));
        assert!(err(r#"{"name":"","archive_url":"https://x.org/a.zip"}"#).contains("`name`"));
        let long = format!(r#"{{"name":"{}","archive_url":"https://x.org/a.zip"}}"#, "n".repeat(201));
        assert!(err(&long).contains("`name`"));
        assert!(err(r#"{"name":"a"}"#).contains("source is required"));
        assert!(err(r#"{"name":"a","archive_url":"https://x.org/a","config_url":"https://x.org/c"}"#)
            .contains("exactly one source"));
        assert!(err(r#"{"name":"a","config_url":"https://x.org/c"}"#).contains("together"));
        assert!(err(r#"{"name":"a","archive_url":"https://x.org/a","chunk_size":0}"#).contains("chunk_size"));
        assert!(err(r#"{"name":"a","archive_url":"https://x.org/a","chunk_size":10001}"#).contains("chunk_size"));
        assert!(err(r#"{"name":"a","archive_url":"http://169.254.169.254/a"}"#).contains("internal address"));
        assert!(err(r#"{"name":"a","archive_url":"file:///etc/passwd"}"#).contains("file://"));
        assert!(err(r#"{"name":"a","archive_url":"https://x.org/a","task":"classify"}"#).contains("`task`"));
        let (ok, _) =
            validate(br#"{"name":" n ","archive_url":"https://x.org/a.zip","chunk_size":5}"#, &settings()).unwrap();
        assert_eq!(ok.name, "n");
        assert_eq!(ok.chunk_size, 5);
    }

    #[test]
    fn equivalent_bodies_share_a_fingerprint() {
        let (_, a) = validate(br#"{"name":"n","archive_url":"https://x.org/a"}"#, &settings()).unwrap();
        let (_, b) = validate(br#"{ "archive_url":"https://x.org/a", "name":"n" }"#, &settings()).unwrap();
        let (_, c) = validate(br#"{"name":"m","archive_url":"https://x.org/a"}"#, &settings()).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }
}
