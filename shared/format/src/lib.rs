#![doc = include_str!("../../README.md")]
//!
//! # This crate
//!
//! `yds-format`: the YOLO dataset format as Ultralytics reads it, and the archives it comes in.
//! The bottom layer: it parses and judges bytes, text and paths, and never touches storage, the
//! database or the network (no tokio here), so every rule is testable with plain strings and
//! fuzzed on its own (`fuzz/`).
//!
//! ## Layout
//!
//! - [`data_yaml`]: the dataset configuration (`names`, splits, `kpt_shape`, ...).
//! - [`layout`]: which files are images, where an image's label file lives, how a split's
//!   sources (directory, list of directories, `.txt` list file) resolve to image paths.
//! - [`labels`]: label files and lines for the four tasks (detect, segment, pose, OBB).
//! - [`image_file`]: what an image file is (format, size after EXIF orientation, integrity).
//! - [`issue`]: an [`Issue`], a finding about one image or its label file, with a stable code.
//! - [`archive`]: zip, tar and tar.gz members one at a time, refusing hostile ones.

#![forbid(unsafe_code)]

pub mod archive;
pub mod data_yaml;
pub mod image_file;
pub mod issue;
pub mod labels;
pub mod layout;

pub use issue::Issue;

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
