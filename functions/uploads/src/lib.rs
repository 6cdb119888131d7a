//! uploads: `POST /uploads` and `PUT /uploads/{upload_id}`.
//!
//! A dataset on a laptop reaches a deployment that cannot read the laptop's disk through an
//! upload: `POST /uploads` names the archive and answers where its bytes go (`upload_url`) and
//! what to import afterwards (`source_url`, `upload://{upload_id}`, which
//! `POST /datasets/import` takes as `archive_url`). The bytes go in pieces, with Cloud Storage's
//! resumable protocol, so a dropped connection costs one piece:
//!
//! - on Cloud Storage, `upload_url` is a resumable session this function starts on the bucket,
//!   and the client sends its pieces straight there;
//! - on a directory (the local stack), `upload_url` is `/uploads/{upload_id}` on this API, and
//!   this function takes the pieces ([`receive`]) speaking the same protocol ([`protocol`]).
//!
//! Either way the object is `temp/uploads/{upload_id}/{file_name}`, its record in `uploads`, and
//! both go a day later ([`sweep`] where no bucket lifecycle rule does it).
//!
//! ## Layout
//!
//! - [`create`]: `POST /uploads` — the request's rules and the answer.
//! - [`protocol`]: the resumable protocol's pure part: `Content-Range`, the checks, the answers.
//! - [`receive`]: `PUT /uploads/{upload_id}` — one piece appended, or a status query.
//! - [`sweep`]: expired uploads deleted from a directory.

pub mod create;
pub mod protocol;
pub mod receive;
pub mod sweep;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use http::{header, Method, StatusCode};
use yds_edge::problem::problem_response;
use yds_edge::query::path_segments;
use yds_edge::{json_response, ApiError, Caller, Handler, Request, Response};
use yds_storage::{keys, ObjectStore, StorageError};
use yds_store::{DateTime, Db, UploadDoc};

/// How long an upload, and its record, are kept: a day, imported or not.
pub const UPLOAD_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// What `POST /datasets/import` takes as `archive_url` for an upload.
pub fn source_url(upload_id: &str) -> String {
    format!("upload://{upload_id}")
}

/// The uploads function.
pub struct Uploads {
    db: Db,
    objects: Arc<dyn ObjectStore>,
    /// The most bytes an upload may hold (`YDS_UPLOAD_MAX_BYTES`).
    max_bytes: u64,
    sweeper: Arc<sweep::Sweeper>,
}

impl Uploads {
    pub fn new(db: Db, objects: Arc<dyn ObjectStore>, max_bytes: u64) -> Self {
        let sweeper = Arc::new(sweep::Sweeper::new(objects.clone(), UPLOAD_LIFETIME));
        Self { db, objects, max_bytes, sweeper }
    }

    /// Deletes the uploads written more than a day ago now; how many.
    pub async fn sweep(&self) -> Result<u64, StorageError> {
        self.sweeper.sweep().await
    }

    /// Starts [`Uploads::sweep`] in the background unless one started within the hour: at
    /// start-up, and with every upload created.
    pub fn sweep_if_due(&self) {
        self.sweeper.sweep_if_due();
    }

    /// `POST /uploads`.
    async fn create(&self, req: &Request, caller: &Caller) -> Result<Response, ApiError> {
        let request = create::read(req.body()).map_err(|refusal| match refusal {
            create::Refusal::Malformed(detail) => ApiError::BadRequest(detail),
            create::Refusal::Invalid(detail) => ApiError::Unprocessable(detail),
        })?;
        if let Some(size) = request.size_bytes.filter(|size| *size > self.max_bytes) {
            let detail = format!(
                "an upload of {size} bytes is larger than this deployment's limit of {} bytes (YDS_UPLOAD_MAX_BYTES)",
                self.max_bytes
            );
            return Ok(problem_response(StatusCode::PAYLOAD_TOO_LARGE, &detail));
        }
        self.sweep_if_due();
        let id = uuid::Uuid::new_v4().simple().to_string();
        let key = keys::upload(&id, &request.file_name);
        let session_url = self
            .objects
            .start_upload_session(&key, request.size_bytes)
            .await
            .map_err(|e| ApiError::object_storage_down(e.retry_after_secs(), e))?;
        let created_at = DateTime::now();
        let upload = UploadDoc {
            id,
            tenant: caller.tenant().to_owned(),
            file_name: request.file_name,
            max_bytes: self.max_bytes,
            declared_bytes: request.size_bytes,
            session_url,
            created_at,
            expires_at: create::expiry(created_at),
            completed_bytes: None,
        };
        self.db.uploads.insert(&upload).await?;
        let mut response = json_response(StatusCode::CREATED, &create::Created::new(&upload));
        let location = format!("/uploads/{}", upload.id);
        response.headers_mut().insert(header::LOCATION, location.parse().expect("ids are URL-safe"));
        Ok(response)
    }
}

/// Whether `id` can be an upload id (what `create` makes: 32 lowercase hex digits).
fn is_upload_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[async_trait]
impl Handler for Uploads {
    async fn handle(&self, req: Request, caller: &Caller) -> Result<Response, ApiError> {
        match path_segments(&req)[..] {
            ["uploads"] if req.method() == Method::POST => self.create(&req, caller).await,
            ["uploads"] => Err(ApiError::MethodNotAllowed),
            ["uploads", id] if req.method() == Method::PUT => {
                let missing = || ApiError::NotFound(format!("no such upload `{id}` (uploads are kept for a day)"));
                if !is_upload_id(id) {
                    return Err(missing());
                }
                let upload = self.db.uploads.find_for_tenant(caller.tenant(), id).await?.ok_or_else(missing)?;
                receive::receive(&self.db, self.objects.as_ref(), &upload, req).await
            }
            ["uploads", _] => Err(ApiError::MethodNotAllowed),
            _ => Err(ApiError::NotFound("no such route".into())),
        }
    }

    /// A piece of an upload is up to 16 MiB; everything else is a small JSON body.
    fn max_body_bytes(&self, method: &Method, path: &str) -> Option<usize> {
        let piece = method == Method::PUT && path.strip_prefix("/uploads/").is_some_and(|id| !id.contains('/'));
        piece.then_some(protocol::MAX_PIECE_BYTES)
    }

    async fn health(&self) -> Result<(), String> {
        self.db.ping().await.map_err(|e| e.to_string())
    }
}
