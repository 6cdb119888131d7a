//! `PUT /uploads/{upload_id}`: one piece, or a status query, of an upload whose object store has
//! no sessions (the local directory), written with [`ObjectStore::append_at`] so that a piece
//! lands whole, at the end of what is stored, or not at all. One piece is in memory at a time:
//! the edge collects it (at most [`crate::protocol::MAX_PIECE_BYTES`]), and it is appended.

use bytes::Bytes;
use http::{header, StatusCode};
use yds_edge::problem::problem_response;
use yds_edge::{ApiError, Request, Response};
use yds_storage::{keys, AppendOutcome, ObjectStore};
use yds_store::{Db, UploadDoc};

use crate::protocol::{self, Bounds, ContentRange, Refusal, Standing};

/// Answers one `PUT` to `upload` (the caller's, not expired).
pub async fn receive(
    db: &Db,
    objects: &dyn ObjectStore,
    upload: &UploadDoc,
    req: Request,
) -> Result<Response, ApiError> {
    if upload.session_url.is_some() {
        return Err(ApiError::Conflict(format!(
            "upload {} goes straight to Cloud Storage: send its pieces to the `upload_url` that POST /uploads answered",
            upload.id
        )));
    }
    let (parts, body): (_, Bytes) = req.into_parts();
    let header = match parts.headers.get(header::CONTENT_RANGE) {
        None => None,
        Some(value) => Some(value.to_str().map_err(|_| ApiError::BadRequest("`Content-Range` must be ASCII".into()))?),
    };
    let range = ContentRange::of_request(header, body.len() as u64).map_err(ApiError::BadRequest)?;
    let bounds = Bounds { max_bytes: upload.max_bytes, declared: upload.declared_bytes };
    match protocol::check(&range, body.len() as u64, bounds) {
        Ok(()) => {}
        Err(Refusal::Bad(detail)) => return Err(ApiError::BadRequest(detail)),
        Err(Refusal::TooLarge(detail)) => {
            let detail = format!("upload {}: {detail} (YDS_UPLOAD_MAX_BYTES)", upload.id);
            return Ok(problem_response(StatusCode::PAYLOAD_TOO_LARGE, &detail));
        }
    }
    // A finished upload answers as finished, whatever comes after (a client that missed the
    // answer to its last piece sends it again, or asks).
    if let Some(size) = upload.completed_bytes {
        return Ok(protocol::answer(&upload.id, Standing::Complete { size, now: false }));
    }
    let key = keys::upload(&upload.id, &upload.file_name);
    let unavailable = |e: yds_storage::StorageError| ApiError::object_storage_down(e.retry_after_secs(), e);
    let received = match range {
        ContentRange::Query { .. } => objects.size(&key).await.map_err(unavailable)?.unwrap_or(0),
        ContentRange::Piece { first, .. } => match objects.append_at(&key, first, body).await.map_err(unavailable)? {
            AppendOutcome::Appended { size } | AppendOutcome::OffsetMismatch { size } => size,
        },
    };
    // The size declared up front is the total when a request does not repeat it.
    let total = range.total().or(upload.declared_bytes);
    if let Some(total) = total.filter(|total| received > *total) {
        return Err(ApiError::BadRequest(format!(
            "upload {} already holds {received} bytes, more than the total of {total} this request gives",
            upload.id
        )));
    }
    let standing = match protocol::standing(received, total) {
        Standing::Complete { size, .. } => {
            // Recorded once: of two requests that both see the last byte, one answers 201.
            let now = db.uploads.complete(&upload.id, size).await?;
            Standing::Complete { size, now }
        }
        incomplete => incomplete,
    };
    Ok(protocol::answer(&upload.id, standing))
}
