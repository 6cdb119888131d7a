//! The YOLO dataset format, as Ultralytics reads it.
//!
//! - [`data_yaml`]: the dataset configuration (`names`, splits, `kpt_shape`, ...).
//! - [`image_file`]: what an image file is (format, size after EXIF orientation, integrity).
//! - [`layout`]: which files are images, where an image's label file lives, how a split's
//!   sources (directory, list of directories, `.txt` list file) resolve to image paths.
//! - [`labels`]: label lines for the four tasks (detect, segment, pose, OBB).
//!
//! This module only parses and judges text and paths; it never touches storage or the network,
//! so every rule is testable with plain strings.

pub mod data_yaml;
pub mod image_file;
pub mod labels;
pub mod layout;

use serde::{Deserialize, Serialize};

/// The training task a dataset's labels are written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Task {
    Detect,
    Segment,
    Pose,
    Obb,
}

impl Task {
    pub fn as_str(self) -> &'static str {
        match self {
            Task::Detect => "detect",
            Task::Segment => "segment",
            Task::Pose => "pose",
            Task::Obb => "obb",
        }
    }

    pub fn parse(text: &str) -> Option<Task> {
        match text.trim().to_ascii_lowercase().as_str() {
            "detect" => Some(Task::Detect),
            "segment" => Some(Task::Segment),
            "pose" => Some(Task::Pose),
            "obb" => Some(Task::Obb),
            _ => None,
        }
    }
}

/// One labelled instance, in the API's wire shape (normalized coordinates).
///
/// Which geometry fields are present depends on the task; absent ones are not serialized.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Annotation {
    pub class_id: u32,
    pub class_name: String,
    /// `[cx, cy, w, h]`: detect, segment (derived from the polygon) and pose.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bbox: Option<[f64; 4]>,
    /// Segment: the polygon's vertices `[x, y]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub polygon: Option<Vec<[f64; 2]>>,
    /// Pose: `[x, y, v]` per keypoint, or `[x, y]` when `kpt_shape` has 2 dims.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keypoints: Option<Vec<Vec<f64>>>,
    /// OBB: the four corners `[x, y]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub obb: Option<Vec<[f64; 2]>>,
}
