//! Findings: what is wrong with a file or a source, or what a user should know about the
//! dataset as a whole, each with a stable snake_case code.
//!
//! A job's `errors` are findings about what was not imported as it is (a refused archive member,
//! an invalid image, a chunk that failed); a dataset's `findings` are about the dataset as a
//! whole (orphan label files, missing list entries, a split without a source, its YAML's
//! `flip_idx`; and, found when its import ends, `no_train_split`, `no_labels` and
//! `duplicate_dataset`). What is found about one image lives on the image instead, as an
//! `Issue` (`yds_format::Issue`).

use serde::{Deserialize, Serialize};

/// One finding, as the status endpoint and the dataset list it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// The file it is about (path in the dataset, archive member or URL); empty for the whole
    /// source.
    pub file: String,
    pub code: String,
    pub message: String,
}

impl Finding {
    pub fn new(file: impl Into<String>, code: &str, message: impl Into<String>) -> Self {
        Self { file: file.into(), code: code.to_owned(), message: message.into() }
    }
}

/// How many findings a job, chunk or dataset keeps as a sample; totals live in the counts.
pub const ERROR_SAMPLE: usize = 50;
