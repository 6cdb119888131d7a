//! Findings about a user's files, each with a stable snake_case code.
//!
//! An [`Issue`] never changes a file: it records what Ultralytics' trainer would do with it
//! (drop the image, drop a row) or what it silently accepts that a user should know. Codes are
//! part of the API contract: add new ones, never rename.

use serde::{Deserialize, Serialize};

/// Every code an image's issues can carry: the one list of them, what the `issue=` filter of the
/// images route accepts. Found in the image file ([`crate::image_file`]), in its label file
/// ([`crate::labels`]: its `ERROR_CODES` and `WARNING_CODES`, and the two ways a file is refused
/// before it is parsed), when reading a file fails at import (`image_unreadable`,
/// `label_unreadable`), and among the dataset's images once they are all in
/// (`duplicate_image`, `cross_split_duplicate`). Codes are part of the API: add, never rename.
pub const IMAGE_ISSUE_CODES: &[&str] = &[
    // The image file.
    "corrupt_image",
    "image_too_small",
    "unsupported_format",
    "jpeg_truncated",
    "jpeg_trailing_data",
    "exif_orientation_invalid",
    "image_unreadable",
    // The label file, refused whole.
    "label_not_utf8",
    "label_too_large",
    "label_unreadable",
    // Its rows: errors, then warnings.
    "non_numeric",
    "wrong_column_count",
    "odd_polygon_coordinates",
    "box_row_in_polygon_file",
    "negative_value",
    "coordinate_out_of_range",
    "non_integer_class",
    "class_out_of_range",
    "kpt_shape_missing",
    "segment_without_polygons",
    "obb_without_polygons",
    "obb_corner_count",
    "duplicate_row",
    "box_outside_image",
    "zero_area_box",
    "polygon_outside_image",
    "degenerate_polygon",
    "issues_truncated",
    // Among the dataset's images.
    "duplicate_image",
    "cross_split_duplicate",
];

/// Whether `code` is one of [`IMAGE_ISSUE_CODES`].
pub fn is_image_issue_code(code: &str) -> bool {
    IMAGE_ISSUE_CODES.contains(&code)
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels::{ERROR_CODES, WARNING_CODES};

    /// The string literals passed as the code to `Issue::new`, `Issue::at_line` and the image
    /// judge's `reject` in `source` (whitespace and line breaks after the parenthesis allowed).
    fn emitted_codes(source: &str) -> Vec<String> {
        let mut codes = Vec::new();
        for call in ["Issue::new(", "Issue::at_line(", ".reject("] {
            for (at, _) in source.match_indices(call) {
                let rest = source[at + call.len()..].trim_start();
                let Some(literal) = rest.strip_prefix('"') else { continue };
                let code = &literal[..literal.find('"').expect("a closed literal")];
                codes.push(code.to_owned());
            }
        }
        codes
    }

    #[test]
    fn every_code_the_format_crate_puts_on_an_image_is_listed() {
        let mut emitted = Vec::new();
        for source in [include_str!("labels.rs"), include_str!("image_file.rs")] {
            emitted.extend(emitted_codes(source));
        }
        // The scan finds the calls (a change of style would empty it without this).
        assert!(emitted.len() >= 25, "{emitted:?}");
        for code in &emitted {
            assert!(is_image_issue_code(code), "`{code}` is emitted but not in IMAGE_ISSUE_CODES");
        }
        for code in ERROR_CODES.iter().chain(WARNING_CODES) {
            assert!(is_image_issue_code(code), "`{code}` is not in IMAGE_ISSUE_CODES");
        }
    }

    #[test]
    fn codes_are_unique_snake_case() {
        let mut seen = std::collections::HashSet::new();
        for code in IMAGE_ISSUE_CODES {
            assert!(seen.insert(code), "{code} listed twice");
            assert!(code.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'), "{code}");
        }
        assert!(!is_image_issue_code("no_such_code"));
    }
}
