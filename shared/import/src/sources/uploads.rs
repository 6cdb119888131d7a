//! `upload://` sources: an archive uploaded to this deployment (`POST /uploads`, the uploads
//! function), imported by its `source_url`. Resolved once, when the import is accepted: the
//! upload must be the caller's tenant's and complete, and the job then records
//! `upload://{upload_id}/{file_name}`, which its tasks read by range from the deployment's own
//! object store ([`super::access`]) without looking at the upload's record again (it expires
//! after a day, perhaps while a long import still runs).

use yds_storage::{keys, ObjectStore, SessionProgress, StorageError};
use yds_store::{Db, Sources, UploadDoc};

use super::policy::{self, SourceUrl};
use crate::error::ImportError;

/// Why an upload cannot be imported.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// Not the caller's, gone, incomplete, or where an upload cannot be: the import is refused.
    #[error("{0}")]
    Refused(String),
    /// The records or the object store could not be reached; the same request may succeed.
    #[error(transparent)]
    Unavailable(#[from] ImportError),
}

/// `sources` with every `upload://{upload_id}` resolved for `tenant` to the URL its job reads,
/// or why not. Sources of other kinds come back as they are.
pub async fn resolve_sources(
    db: &Db,
    objects: &dyn ObjectStore,
    tenant: &str,
    sources: Sources,
) -> Result<Sources, UploadError> {
    let upload_id = |url: &str| match policy::parse(url, yds_config::UrlPolicy::Strict) {
        Ok(SourceUrl::Upload { upload_id, .. }) => Some(upload_id),
        _ => None,
    };
    match sources {
        Sources::Archive { url } => match upload_id(&url) {
            Some(id) => Ok(Sources::Archive { url: resolve(db, objects, tenant, &id).await? }),
            None => Ok(Sources::Archive { url }),
        },
        Sources::Parts { config_url, images_url, labels_url } => {
            if [&config_url, &images_url, &labels_url].iter().any(|url| upload_id(url).is_some()) {
                return Err(UploadError::Refused(
                    "an upload is imported whole, as `archive_url`; `config_url`, `images_url` and `labels_url` \
                     take URLs"
                        .into(),
                ));
            }
            Ok(Sources::Parts { config_url, images_url, labels_url })
        }
    }
}

/// The URL a job reads upload `upload_id` of `tenant` by, once it is complete.
async fn resolve(db: &Db, objects: &dyn ObjectStore, tenant: &str, upload_id: &str) -> Result<String, UploadError> {
    let upload = db.uploads.find_for_tenant(tenant, upload_id).await.map_err(ImportError::from)?.ok_or_else(|| {
        UploadError::Refused(format!(
            "no such upload `{upload_id}`: uploads are made by `POST /uploads`, belong to the API key's tenant and \
             are kept for a day"
        ))
    })?;
    let size = match upload.completed_bytes {
        Some(size) => size,
        None => received_in_full(db, objects, &upload).await?,
    };
    if size > upload.max_bytes {
        return Err(UploadError::Refused(format!(
            "upload {upload_id} is {size} bytes, more than the limit of {} bytes",
            upload.max_bytes
        )));
    }
    Ok(policy::upload_url(upload_id, &upload.file_name))
}

/// The size of an upload not recorded as complete, if it is complete after all (a Cloud Storage
/// session finishes without telling anyone), or why it cannot be imported yet.
async fn received_in_full(db: &Db, objects: &dyn ObjectStore, upload: &UploadDoc) -> Result<u64, UploadError> {
    let key = keys::upload(&upload.id, &upload.file_name);
    let stored = objects.size(&key).await.map_err(ImportError::from)?;
    let received = match (&upload.session_url, stored) {
        // A session's object exists only once its last byte arrived.
        (Some(_), Some(size)) => {
            db.uploads.complete(&upload.id, size).await.map_err(ImportError::from)?;
            return Ok(size);
        }
        (Some(session), None) => match objects.upload_session_progress(session).await {
            Ok(SessionProgress::Complete(size)) => return Ok(size),
            Ok(SessionProgress::Received(received)) => Some(received),
            // An emulator cannot be asked; a lapsed session has nothing more to give.
            Err(err) if err.is_unsupported() || matches!(err, StorageError::NotFound(_)) => None,
            Err(err) => return Err(ImportError::from(err).into()),
        },
        // Pieces through the uploads function: the object grows piece by piece, and is
        // recorded complete with its last one.
        (None, stored) => Some(stored.unwrap_or(0)),
    };
    let id = &upload.id;
    Err(UploadError::Refused(match (received, upload.declared_bytes) {
        (Some(received), Some(declared)) => {
            format!("upload {id} is not complete: {received} of {declared} bytes received")
        }
        (Some(received), None) => {
            format!("upload {id} is not complete: {received} bytes received, and not the last piece")
        }
        (None, _) => format!("upload {id} is not complete: its last piece has not arrived"),
    }))
}
