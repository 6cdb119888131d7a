//! Accepting an import: check the request exactly as the contract says, record the job and
//! the dataset, and send the first tasks (planning, and the job's watchdog).
//!
//! Order matters for crash safety: the job is inserted first (it is the deduplication point for
//! `Idempotency-Key`), then the dataset, then the tasks. A repeat of the same request with the
//! same key redoes the missing steps, so a crash between them loses nothing.

use serde::Deserialize;
use yds_format::Task;
use yds_store::{DatasetDoc, DatasetStatus, DateTime, JobDoc, JobStatus, Sources};

use crate::error::ImportError;
use crate::importer::Importer;
use crate::sources::uploads::{self, UploadError};
use crate::tasks::TaskBody;
use crate::watchdog;

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

/// Why an import request was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum AcceptError {
    /// The request cannot be read at all (not JSON, not an object, a bad header): 400.
    #[error("{0}")]
    Malformed(String),
    /// The request reads, but asks for what cannot be done (a missing or refused field): 422.
    #[error("{0}")]
    Invalid(String),
    /// Recording or sending the import failed; the same request may be sent again.
    #[error(transparent)]
    Unavailable(#[from] ImportError),
}

impl From<yds_store::StoreError> for AcceptError {
    fn from(err: yds_store::StoreError) -> Self {
        AcceptError::Unavailable(err.into())
    }
}

/// Accepts import requests for one process: checks them and starts their jobs.
#[derive(Clone)]
pub struct Acceptor {
    importer: Importer,
    /// Files per chunk when a request names none (`YDS_CHUNK_SIZE`).
    default_chunk_size: u32,
}

/// A validated request, ready to become a job.
struct Validated {
    name: String,
    sources: Sources,
    chunk_size: u32,
    task: Option<Task>,
}

fn validate(body: &[u8], acceptor: &Acceptor) -> Result<(Validated, String), AcceptError> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| AcceptError::Malformed(format!("the body is not valid JSON: {e}")))?;
    if !value.is_object() {
        return Err(AcceptError::Malformed("the body must be a JSON object".into()));
    }
    let fingerprint = blake3::hash(canonical_json(&value).as_bytes()).to_hex().to_string();
    let request: ImportRequest = serde_json::from_value(value).map_err(|e| AcceptError::Invalid(e.to_string()))?;

    let name = dataset_name(&request.name).map_err(AcceptError::Invalid)?;
    let check = |field: &str, url: &str| {
        acceptor.importer.sources.check(url).map(|_| ()).map_err(|e| AcceptError::Invalid(format!("`{field}`: {e}")))
    };
    let sources = match (&request.archive_url, &request.config_url, &request.images_url, &request.labels_url) {
        (Some(archive), None, None, None) => {
            check("archive_url", archive)?;
            Sources::Archive { url: archive.clone() }
        }
        (None, Some(config), Some(images), Some(labels)) => {
            check("config_url", config)?;
            check("images_url", images)?;
            check("labels_url", labels)?;
            Sources::Parts { config_url: config.clone(), images_url: images.clone(), labels_url: labels.clone() }
        }
        (None, None, None, None) => {
            return Err(AcceptError::Invalid(
                "a source is required: `archive_url`, or `config_url` + `images_url` + `labels_url`".into(),
            ))
        }
        (Some(_), _, _, _) => {
            return Err(AcceptError::Invalid(
                "give exactly one source: `archive_url` or `config_url` + `images_url` + `labels_url`, not both".into(),
            ))
        }
        _ => {
            return Err(AcceptError::Invalid(
                "`config_url`, `images_url` and `labels_url` must be given together".into(),
            ))
        }
    };
    let chunk_size = request.chunk_size.unwrap_or(acceptor.default_chunk_size);
    if !(1..=MAX_CHUNK_SIZE).contains(&chunk_size) {
        return Err(AcceptError::Invalid(format!("`chunk_size` must be from 1 to {MAX_CHUNK_SIZE}")));
    }
    let task = match request.task.as_deref() {
        None => None,
        Some(text) => Some(
            Task::parse(text)
                .ok_or_else(|| AcceptError::Invalid("`task` must be one of detect, segment, pose, obb".into()))?,
        ),
    };
    Ok((Validated { name, sources, chunk_size, task }, fingerprint))
}

/// A dataset's name as given by a user (an import's `name`, a rename's): 1 to 200 characters
/// without control characters, trimmed; the refusal names the rule otherwise.
pub fn dataset_name(raw: &str) -> Result<String, String> {
    let name = raw.trim().to_owned();
    if name.is_empty() || raw.chars().count() > MAX_NAME_CHARS {
        return Err(format!("`name` must be 1 to {MAX_NAME_CHARS} characters"));
    }
    if name.chars().any(char::is_control) {
        return Err("`name` must not contain control characters".into());
    }
    Ok(name)
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

impl Acceptor {
    pub fn new(importer: Importer, default_chunk_size: u32) -> Self {
        Self { importer, default_chunk_size }
    }

    /// Checks an import request without recording anything (a refusal when it is malformed),
    /// so the caller can spend its rate limit only on requests that would start an import.
    pub fn check(&self, body: &[u8]) -> Result<(), AcceptError> {
        validate(body, self).map(|_| ())
    }

    /// Starts the import `body` asks for on behalf of `tenant`: `POST /datasets/import`.
    pub async fn start(
        &self,
        tenant: &str,
        idempotency_key: Option<&str>,
        body: &[u8],
    ) -> Result<Accepted, AcceptError> {
        if let Some(key) = idempotency_key {
            if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY || key.chars().any(|c| c.is_control()) {
                return Err(AcceptError::Malformed(format!(
                    "`Idempotency-Key` must be 1 to {MAX_IDEMPOTENCY_KEY} visible characters"
                )));
            }
        }
        let (request, fingerprint) = validate(body, self)?;
        let jobs = &self.importer.db.jobs;
        if let Some(key) = idempotency_key {
            if let Some(existing) = jobs.find_by_idempotency_key(tenant, key).await? {
                return self.resume(existing, &request.name, &fingerprint).await;
            }
        }
        // An upload is the caller's and complete, or the import is refused before any record.
        let importer = &self.importer;
        let sources = uploads::resolve_sources(&importer.db, importer.objects.as_ref(), tenant, request.sources)
            .await
            .map_err(|err| match err {
                UploadError::Refused(detail) => AcceptError::Invalid(detail),
                UploadError::Unavailable(cause) => AcceptError::Unavailable(cause),
            })?;
        let now = DateTime::now();
        let job = JobDoc {
            id: uuid::Uuid::new_v4().simple().to_string(),
            tenant: tenant.to_owned(),
            dataset_id: uuid::Uuid::new_v4().simple().to_string(),
            status: JobStatus::Queued,
            sources,
            chunk_size: request.chunk_size,
            task: request.task,
            idempotency_key: idempotency_key.map(str::to_owned),
            request_fingerprint: fingerprint.clone(),
            index_cursor: None,
            indexed: false,
            early: None,
            planned: false,
            planning_at: None,
            plan_resends: 0,
            files_total: 0,
            chunks_total: 0,
            errors: Vec::new(),
            findings: Vec::new(),
            result: None,
            created_at: now,
            updated_at: now,
            finished_at: None,
        };
        if jobs.insert(&job).await? {
            return self.resume(job, &request.name, &fingerprint).await;
        }
        // A concurrent request with the same key won the insert.
        let key = idempotency_key.unwrap_or_default();
        let existing = jobs
            .find_by_idempotency_key(tenant, key)
            .await?
            .ok_or_else(|| ImportError::Transient("an idempotent job vanished".into()))?;
        self.resume(existing, &request.name, &fingerprint).await
    }

    /// Makes sure the job's dataset and first tasks exist, then answers with the job.
    async fn resume(&self, job: JobDoc, name: &str, fingerprint: &str) -> Result<Accepted, AcceptError> {
        if job.request_fingerprint != fingerprint {
            return Err(AcceptError::Invalid(
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
            statistics: None,
            duplicates: None,
            findings: Vec::new(),
            finding_counts: Default::default(),
            flip_idx: None,
            kpt_names: None,
            trainable: None,
            content_hash: None,
            last_job_id: Some(job.id.clone()),
            failure: None,
        };
        // An ended job's dataset was recorded before its first task, and may be deleted since:
        // a repeated request must not bring it back.
        if !job.status.is_terminal() {
            self.importer.db.datasets.insert(&dataset).await?;
        }
        if job.status == JobStatus::Queued {
            // The watchdog starts with the job, so even a planning task lost before its first
            // delivery is noticed and sent again.
            let queue = self.importer.queue.as_ref();
            let unavailable = |e: yds_queue::QueueError| AcceptError::Unavailable(e.into());
            watchdog::schedule(queue, self.importer.pacing.chunk_lease, &job.id, 0).await.map_err(unavailable)?;
            queue.enqueue(&TaskBody::Plan { job_id: job.id.clone() }.task()).await.map_err(unavailable)?;
        }
        Ok(Accepted { job_id: job.id, dataset_id: job.dataset_id, status: job.status })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An acceptor under the strict policy, on a database it never reaches (`validate` reads
    /// nothing).
    fn acceptor() -> Acceptor {
        let dir = std::env::temp_dir();
        let db = tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(yds_store::Db::connect("mongodb://127.0.0.1:9", "never"))
            .unwrap();
        let (importer, _) = Importer::local(db, &dir, yds_config::UrlPolicy::Strict);
        Acceptor::new(importer, 100)
    }

    fn err(body: &str) -> String {
        match validate(body.as_bytes(), &acceptor()) {
            Ok(_) => panic!("{body} accepted"),
            Err(AcceptError::Malformed(e)) => format!("400 {e}"),
            Err(AcceptError::Invalid(e)) => format!("422 {e}"),
            Err(e) => panic!("{body}: {e}"),
        }
    }

    #[test]
    fn the_deployments_own_bucket_is_no_source() {
        let mut acceptor = acceptor();
        acceptor.importer.sources = acceptor.importer.sources.clone().with_own_bucket(Some("yds-data".into()));
        let refused = match validate(br#"{"name":"a","archive_url":"gs://yds-data/datasets/d/x.zip"}"#, &acceptor) {
            Err(AcceptError::Invalid(detail)) => detail,
            other => panic!("accepted or wrong refusal: {:?}", other.map(|_| ())),
        };
        assert!(refused.contains("own bucket") && refused.contains("POST /uploads"), "{refused}");
        validate(br#"{"name":"a","archive_url":"gs://another/x.zip"}"#, &acceptor)
            .expect("other buckets stay readable");
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
            validate(br#"{"name":" n ","archive_url":"https://x.org/a.zip","chunk_size":5}"#, &acceptor()).unwrap();
        assert_eq!(ok.name, "n");
        assert_eq!(ok.chunk_size, 5);
    }

    #[test]
    fn equivalent_bodies_share_a_fingerprint() {
        let (_, a) = validate(br#"{"name":"n","archive_url":"https://x.org/a"}"#, &acceptor()).unwrap();
        let (_, b) = validate(br#"{ "archive_url":"https://x.org/a", "name":"n" }"#, &acceptor()).unwrap();
        let (_, c) = validate(br#"{"name":"m","archive_url":"https://x.org/a"}"#, &acceptor()).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }
}
