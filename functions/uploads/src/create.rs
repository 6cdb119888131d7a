//! `POST /uploads`: the request's rules, and the record and answer of a new upload.

use serde::{Deserialize, Serialize};
use yds_store::DateTime;

/// The body of `POST /uploads`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUpload {
    /// The archive's name; its suffix says what kind of archive it is.
    pub file_name: String,
    /// The archive's size, when the client knows it (a folder packed on the fly has none).
    #[serde(default)]
    pub size_bytes: Option<u64>,
}

/// The suffixes an upload's name may end with (any case): the archives an import reads.
pub const ARCHIVE_SUFFIXES: [&str; 4] = [".zip", ".tar", ".tar.gz", ".tgz"];
const MAX_FILE_NAME_BYTES: usize = 255;

/// Why a `POST /uploads` is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Not JSON, or not an object: 400.
    Malformed(String),
    /// A field missing, unknown or wrong: 422.
    Invalid(String),
}

/// Reads and checks the body of `POST /uploads`.
pub fn read(body: &[u8]) -> Result<NewUpload, Refusal> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| Refusal::Malformed(format!("the body is not valid JSON: {e}")))?;
    if !value.is_object() {
        return Err(Refusal::Malformed("the body must be a JSON object".into()));
    }
    let request: NewUpload = serde_json::from_value(value).map_err(|e| Refusal::Invalid(e.to_string()))?;
    check_file_name(&request.file_name).map_err(Refusal::Invalid)?;
    if request.size_bytes == Some(0) {
        return Err(Refusal::Invalid("`size_bytes` must be at least 1: an archive is never empty".into()));
    }
    Ok(request)
}

/// A file name is one path segment (it names the object under the upload's folder), printable,
/// not hidden, with an archive's suffix.
pub fn check_file_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_FILE_NAME_BYTES {
        return Err(format!("`file_name` must be 1 to {MAX_FILE_NAME_BYTES} bytes"));
    }
    if name.contains(['/', '\\']) || name.chars().any(char::is_control) {
        return Err("`file_name` is a name, not a path: no `/`, `\\` or control characters".into());
    }
    if name.starts_with('.') {
        return Err("`file_name` must not start with `.`".into());
    }
    let lower = name.to_ascii_lowercase();
    match ARCHIVE_SUFFIXES.iter().find(|suffix| lower.ends_with(*suffix)) {
        Some(suffix) if lower.len() > suffix.len() => Ok(()),
        _ => Err(format!(
            "`file_name` must end with {}: the suffix says what kind of archive the upload is (got `{name}`)",
            ARCHIVE_SUFFIXES.map(|s| format!("`{s}`")).join(", ")
        )),
    }
}

/// The answer to `POST /uploads` (201).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Created {
    pub upload_id: String,
    /// Where the pieces go: a Cloud Storage session URI (absolute), or `/uploads/{id}` on this
    /// API (relative to its base URL).
    pub upload_url: String,
    /// What `POST /datasets/import` takes as `archive_url`: `upload://{id}`.
    pub source_url: String,
    /// When the upload and its record go (RFC 3339).
    pub expires_at: String,
    /// The most bytes it may hold.
    pub max_bytes: u64,
}

impl Created {
    pub fn new(upload: &yds_store::UploadDoc) -> Self {
        Self {
            upload_id: upload.id.clone(),
            upload_url: upload.session_url.clone().unwrap_or_else(|| format!("/uploads/{}", upload.id)),
            source_url: crate::source_url(&upload.id),
            expires_at: yds_store::rfc3339(upload.expires_at),
            max_bytes: upload.max_bytes,
        }
    }
}

/// A day after `created_at`.
pub fn expiry(created_at: DateTime) -> DateTime {
    DateTime::from_millis(created_at.timestamp_millis() + crate::UPLOAD_LIFETIME.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_archive_names() {
        for good in ["data.zip", "My Data (v2).TAR.GZ", "x.tgz", "a.b.tar", "données.zip"] {
            check_file_name(good).unwrap_or_else(|e| panic!("{good}: {e}"));
        }
        for (bad, why) in [
            ("", "1 to 255 bytes"),
            ("data", "must end with `.zip`, `.tar`, `.tar.gz`, `.tgz`"),
            ("data.rar", "must end with"),
            (".zip", "must not start with `.`"),
            ("zip", "must end with"),
            ("a/b.zip", "not a path"),
            ("..\\b.zip", "not a path"),
            ("a\nb.zip", "not a path"),
        ] {
            let err = check_file_name(bad).unwrap_err();
            assert!(err.contains(why), "{bad:?}: {err}");
        }
        assert!(check_file_name(&format!("{}.zip", "n".repeat(252))).is_err());
    }

    #[test]
    fn bodies_are_read_strictly() {
        let upload = read(br#"{"file_name":"d.zip","size_bytes":5}"#).unwrap();
        assert_eq!((upload.file_name.as_str(), upload.size_bytes), ("d.zip", Some(5)));
        assert_eq!(read(br#"{"file_name":"d.zip"}"#).unwrap().size_bytes, None);
        let invalid = |body: &str| match read(body.as_bytes()) {
            Err(Refusal::Invalid(detail)) => detail,
            other => panic!("{body}: {other:?}"),
        };
        assert!(invalid(r#"{"file_name":"d.zip","name":"x"}"#).contains("unknown field `name`"));
        assert!(invalid(r#"{"size_bytes":5}"#).contains("missing field `file_name`"));
        assert!(invalid(r#"{"file_name":"d.zip","size_bytes":-1}"#).contains("invalid value"));
        assert!(invalid(r#"{"file_name":"d.zip","size_bytes":0}"#).contains("at least 1"));
        assert!(invalid(r#"{"file_name":"d.7z"}"#).contains("must end with"));
        assert!(matches!(read(b"{"), Err(Refusal::Malformed(_))));
        assert!(matches!(read(b"[1]"), Err(Refusal::Malformed(_))));
    }
}
