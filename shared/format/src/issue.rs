//! Findings about a user's files, each with a stable snake_case code.
//!
//! An [`Issue`] never changes a file: it records what Ultralytics' trainer would do with it
//! (drop the image, drop a row) or what it silently accepts that a user should know. Codes are
//! part of the API contract: add new ones, never rename.

use serde::{Deserialize, Serialize};

/// One finding about an image, a label file or a label line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Issue {
    /// Stable snake_case identifier, for filtering and statistics.
    pub code: String,
    /// Human-readable explanation naming the offending value.
    pub message: String,
    /// 1-based line of the label file, when the finding is about one line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
}

impl Issue {
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        Self { code: code.to_owned(), message: message.into(), line: None }
    }

    pub fn at_line(code: &str, line: u32, message: impl Into<String>) -> Self {
        Self { code: code.to_owned(), message: message.into(), line: Some(line) }
    }
}
