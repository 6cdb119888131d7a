//! Why a source could not be read, and whether trying again may help.

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The URL itself is unacceptable; retrying cannot help.
    #[error("{0}")]
    Refused(String),
    /// The source answered, but not with a usable file (404, too large...).
    #[error("{0}")]
    Unusable(String),
    /// Nothing at that location (no such file, object or folder).
    #[error("{0}")]
    NotFound(String),
    /// Network trouble; a retry may succeed.
    #[error("{0}")]
    Transient(String),
}

impl SourceError {
    pub fn is_permanent(&self) -> bool {
        !matches!(self, SourceError::Transient(_))
    }
}
