//! YOLO label files (`labels/*.txt`), judged the way Ultralytics' `verify_image_label` judges
//! them, for the four tasks: detect, segment, pose and OBB.
//!
//! It exists so that YDS reports, for every label file, what the trainer would do with it:
//! drop the whole image ("corrupt": any error below), remove repeated rows, or silently accept
//! something a user should know about (warnings). The reference rules:
//!
//! - The file is UTF-8 with or without a byte-order mark. Rows are split on whitespace; lines
//!   that are empty or hold only whitespace are skipped.
//! - Outside pose, when the YAML has `kpt_shape`, rows of exactly `5 + keypoints * dims` values
//!   keep only their first 5 (the box).
//! - Outside pose, a file with any row of more than 6 values is a polygon file: each row is a
//!   class and x,y pairs, and its box is the polygon's bounding box. The trainer checks that
//!   box, not the vertices, so the range checks of polygon and OBB rows apply to it. A 5-value
//!   row in such a file is an error (`box_row_in_polygon_file`: "labels mix segment and
//!   detection rows"). OBB rows are polygon rows: any even number of coordinates is accepted.
//! - Otherwise every row needs 5 values (pose: `5 + keypoints * dims`).
//! - Every value must be a number (`non_numeric`) and at least -0.01, and a box's width and
//!   height at least 0 (`negative_value`); box values (pose: keypoint x,y) must be at most 1.01
//!   (`coordinate_out_of_range`); the class must be a whole number (`non_integer_class`) below
//!   the class count (`class_out_of_range`). Comparisons are done in `f32`, as the trainer does.
//! - Exact repeats of a row (for polygon files: same class and same vertices) are removed.
//!
//! Parsing runs on millions of files: one pass over the text, no regex, no allocation per
//! token beyond one shared vector of numbers.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::Issue;

use super::{Annotation, Task};

/// Issue codes that make a label file corrupt: the trainer drops the image.
pub const ERROR_CODES: &[&str] = &[
    "non_numeric",
    "wrong_column_count",
    "odd_polygon_coordinates",
    "box_row_in_polygon_file",
    "negative_value",
    "coordinate_out_of_range",
    "non_integer_class",
    "class_out_of_range",
    "kpt_shape_missing",
];

/// Issue codes for what the trainer accepts (or silently fixes) but a user should know.
pub const WARNING_CODES: &[&str] = &[
    "segment_without_polygons",
    "obb_without_polygons",
    "obb_corner_count",
    "duplicate_row",
    "box_outside_image",
    "zero_area_box",
    "polygon_outside_image",
    "degenerate_polygon",
    "issues_truncated",
];

/// Most issues reported for one file; the rest are summed up in one `issues_truncated`.
pub const MAX_FILE_ISSUES: usize = 100;

/// Largest label file judged: 16 MiB is hundreds of thousands of boxes or a very dense set of
/// polygons; a larger one is refused (the image counts as corrupt) rather than parsed.
pub const MAX_LABEL_FILE_BYTES: usize = 16 << 20;
/// Longest label line judged: 1 MiB holds a polygon of ~50 000 vertices.
pub const MAX_LABEL_LINE_BYTES: usize = 1 << 20;

/// Largest accepted coordinate (1% tolerance), as in the trainer.
const COORD_MAX: f32 = 1.01;
/// Smallest accepted value (1% tolerance), as in the trainer.
const VALUE_MIN: f32 = -0.01;
/// Slack for the warnings about boxes and vertices beyond the image edge, so that rounding in
/// exported coordinates (usually 6 decimals) is not reported.
const EDGE_EPS: f64 = 1e-6;

/// What a label file is checked against.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelRules {
    pub task: Task,
    /// Class names; their count bounds the class ids.
    pub names: Vec<String>,
    /// `(keypoints, dims)`, required for [`Task::Pose`].
    pub kpt_shape: Option<(usize, usize)>,
}

/// The verdict on one label file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ParsedLabels {
    /// The instances the trainer would use; empty when `corrupt`.
    pub annotations: Vec<Annotation>,
    /// Errors (see [`ERROR_CODES`]) and warnings ([`WARNING_CODES`]) in line order. A corrupt
    /// file reports only its errors.
    pub issues: Vec<Issue>,
    /// The trainer would drop the image.
    pub corrupt: bool,
    /// Repeated rows removed (0 when `corrupt`).
    pub duplicates_removed: u32,
}

/// Guesses a dataset's task from the value counts of sample label rows: pose when `kpt_shape`
/// is set; OBB when every row that is not a 5-value box has exactly 9 values (and there is at
/// least one); segment when any row has more than 6 values; otherwise detect. Rows of 0 values
/// are ignored.
pub fn infer_task(
    sample_rows_token_counts: impl IntoIterator<Item = usize>,
    kpt_shape: Option<(usize, usize)>,
) -> Task {
    if kpt_shape.is_some() {
        return Task::Pose;
    }
    let (mut non_box_rows, mut all_nine, mut polygon) = (false, true, false);
    for count in sample_rows_token_counts {
        if count == 0 {
            continue;
        }
        if count != 5 {
            non_box_rows = true;
            all_nine &= count == 9;
        }
        polygon |= count > 6;
    }
    if non_box_rows && all_nine {
        Task::Obb
    } else if polygon {
        Task::Segment
    } else {
        Task::Detect
    }
}

/// The number of values on each non-blank row of a label file, for [`infer_task`].
pub fn row_token_counts(text: &str) -> Vec<usize> {
    lines(text).map(|line| tokens(line).count()).filter(|&count| count > 0).collect()
}

/// Judges a label file's bytes: refused over the size limits or when not UTF-8 (both make it
/// corrupt), parsed otherwise.
pub fn judge_label_bytes(bytes: &[u8], rules: &LabelRules) -> ParsedLabels {
    let longest_line = bytes.split(|b| *b == b'\n').map(<[u8]>::len).max().unwrap_or(0);
    if bytes.len() > MAX_LABEL_FILE_BYTES || longest_line > MAX_LABEL_LINE_BYTES {
        return too_large(&format!("{} bytes, longest line {longest_line} bytes", bytes.len()));
    }
    match std::str::from_utf8(bytes) {
        Ok(text) => parse_label_file(text, rules),
        Err(_) => ParsedLabels::corrupt(Issue::new("label_not_utf8", "the label file is not UTF-8 text")),
    }
}

/// The verdict on a label file over the limits, which is never parsed; `what` describes its
/// size.
pub fn too_large(what: &str) -> ParsedLabels {
    let message = format!(
        "the label file ({what}) is over the limits of {MAX_LABEL_FILE_BYTES} bytes per file and \
         {MAX_LABEL_LINE_BYTES} per line"
    );
    ParsedLabels::corrupt(Issue::new("label_too_large", message))
}

impl ParsedLabels {
    /// No label file: a background image.
    pub fn none() -> Self {
        Self { annotations: Vec::new(), issues: Vec::new(), corrupt: false, duplicates_removed: 0 }
    }

    /// A label file the trainer would refuse whole, for `issue`.
    pub fn corrupt(issue: Issue) -> Self {
        Self { annotations: Vec::new(), issues: vec![issue], corrupt: true, duplicates_removed: 0 }
    }
}

/// Parses and judges one label file.
pub fn parse_label_file(text: &str, rules: &LabelRules) -> ParsedLabels {
    let mut report = Report::default();
    let mut values: Vec<f64> = Vec::new();
    let mut rows: Vec<Row> = Vec::new();
    // The trainer reads the file as `utf-8-sig`: a leading byte-order mark is not text.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    // Outside pose, a row shaped like a pose row keeps only its box (the trainer's `x[:5]`).
    let pose_row_len = match (rules.task, rules.kpt_shape) {
        (Task::Pose, _) | (_, None) => None,
        (_, Some((keypoints, dims))) => Some(5 + keypoints * dims).filter(|_| keypoints * dims > 0),
    };

    for (index, line) in lines(text).enumerate() {
        let line_no = u32::try_from(index + 1).unwrap_or(u32::MAX);
        let start = values.len();
        let mut count = tokens(line).count();
        if count == 0 {
            continue; // the trainer skips lines that are empty or only whitespace
        }
        if pose_row_len == Some(count) {
            count = 5;
        }
        let mut bad_token: Option<&str> = None;
        for token in tokens(line).take(count) {
            match parse_number(token) {
                Some(v) if !v.is_nan() => values.push(v),
                _ => {
                    bad_token.get_or_insert(token);
                    values.push(0.0);
                }
            }
        }
        if let Some(token) = bad_token {
            report.error(Issue::at_line("non_numeric", line_no, non_numeric_message(token)));
        }
        rows.push(Row { line: line_no, start, len: count, numeric: bad_token.is_none() });
    }

    if rows.is_empty() {
        return report.finish(Vec::new(), 0);
    }

    let mode = match rules.task {
        Task::Pose => match rules.kpt_shape {
            Some((keypoints, dims)) => Mode::Pose { keypoints, dims },
            None => {
                report.error(Issue::new(
                    "kpt_shape_missing",
                    "pose labels cannot be checked: the dataset YAML has no `kpt_shape:`",
                ));
                return report.finish(Vec::new(), 0);
            }
        },
        Task::Detect | Task::Segment | Task::Obb => {
            if rows.iter().any(|r| r.len > 6) {
                Mode::Polygons { keep: rules.task }
            } else {
                match rules.task {
                    Task::Segment => report.warning(Issue::new(
                        "segment_without_polygons",
                        "this segmentation label file holds only boxes (5 values a line), no \
                         polygons; the trainer accepts the image, but refuses to train a \
                         segmentation dataset on boxes (`class x1 y1 x2 y2 x3 y3 ...` is a polygon)",
                    )),
                    Task::Obb => report.warning(Issue::new(
                        "obb_without_polygons",
                        "this OBB label file holds only axis-aligned boxes (5 values a line); the \
                         trainer accepts the image, but refuses to train an OBB dataset on boxes \
                         (OBB labels are `class x1 y1 x2 y2 x3 y3 x4 y4`)",
                    )),
                    _ => {}
                }
                Mode::Boxes
            }
        }
    };

    let mut checker = Checker { rules, report, kept: Vec::new(), keys: Vec::new() };
    for row in &rows {
        let vals = &values[row.start..row.start + row.len];
        checker.row(row, vals, mode);
    }
    let Checker { mut report, kept, keys, .. } = checker;
    if report.corrupt {
        return report.finish(Vec::new(), 0);
    }

    // Remove repeats, keeping the first (the trainer compares rows as f32).
    let mut first_seen: HashMap<&[u32], u32> = HashMap::with_capacity(kept.len());
    let mut annotations = Vec::with_capacity(kept.len());
    let mut removed = 0u32;
    for kept in kept {
        let key = &keys[kept.key.clone()];
        match first_seen.get(key) {
            Some(&first) => {
                removed += 1;
                let message = format!("same label as line {first}; the trainer keeps only one of them");
                report.warning(Issue::at_line("duplicate_row", kept.line, message));
            }
            None => {
                first_seen.insert(key, kept.line);
                annotations.push(kept.annotation);
            }
        }
    }
    report.finish(annotations, removed)
}

/// One non-blank line: `len` values from `start` in the shared vector.
struct Row {
    line: u32,
    start: usize,
    len: usize,
    /// Every value parsed as a number.
    numeric: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    /// Detect or segment file of 5-value rows.
    Boxes,
    /// A file with polygon rows, annotated for the task `keep` (segment: polygons, OBB:
    /// corners, detect: boxes).
    Polygons {
        keep: Task,
    },
    Pose {
        keypoints: usize,
        dims: usize,
    },
}

/// Issues found so far. At most [`MAX_FILE_ISSUES`] errors and as many warnings are kept;
/// the rest are only counted.
#[derive(Default)]
struct Report {
    errors: Vec<Issue>,
    warnings: Vec<Issue>,
    dropped_errors: usize,
    dropped_warnings: usize,
    corrupt: bool,
}

impl Report {
    fn error(&mut self, issue: Issue) {
        self.corrupt = true;
        if self.errors.len() < MAX_FILE_ISSUES {
            self.errors.push(issue);
        } else {
            self.dropped_errors += 1;
        }
    }

    fn warning(&mut self, issue: Issue) {
        if self.warnings.len() < MAX_FILE_ISSUES {
            self.warnings.push(issue);
        } else {
            self.dropped_warnings += 1;
        }
    }

    /// The verdict; a corrupt file reports only its errors. Issues are ordered by line, those
    /// about the whole file first.
    fn finish(self, annotations: Vec<Annotation>, duplicates_removed: u32) -> ParsedLabels {
        let corrupt = self.corrupt;
        let (mut issues, dropped) =
            if corrupt { (self.errors, self.dropped_errors) } else { (self.warnings, self.dropped_warnings) };
        issues.sort_by_key(|issue| issue.line);
        if dropped > 0 {
            issues.push(Issue::new("issues_truncated", format!("{dropped} more issues in this file are not listed")));
        }
        ParsedLabels {
            annotations: if corrupt { Vec::new() } else { annotations },
            issues,
            corrupt,
            duplicates_removed: if corrupt { 0 } else { duplicates_removed },
        }
    }
}

/// A valid row's annotation.
struct Kept {
    line: u32,
    annotation: Annotation,
    /// Where its duplicate key lies in [`Checker::keys`].
    key: std::ops::Range<usize>,
}

struct Checker<'a> {
    rules: &'a LabelRules,
    report: Report,
    kept: Vec<Kept>,
    /// Duplicate keys of `kept`, flat.
    keys: Vec<u32>,
}

impl Checker<'_> {
    fn row(&mut self, row: &Row, vals: &[f64], mode: Mode) {
        let line = row.line;
        let expected = match mode {
            Mode::Boxes => Some(5),
            Mode::Pose { keypoints, dims } => Some(5 + keypoints * dims),
            Mode::Polygons { .. } => None,
        };
        if let Some(count) = expected.filter(|&count| count != row.len) {
            let help = match mode {
                Mode::Pose { keypoints, dims } => format!(
                    "pose labels need {count}: class x_center y_center width height, then \
                     {keypoints} keypoints of {dims} values ({})",
                    if dims == 3 { "x y visibility" } else { "x y" }
                ),
                _ => format!("detection labels need {count}: class x_center y_center width height"),
            };
            self.report.error(Issue::at_line(
                "wrong_column_count",
                line,
                format!("this line has {} values; {help}", row.len),
            ));
            return;
        }
        if !row.numeric {
            return; // already reported
        }
        match mode {
            Mode::Boxes => self.box_row(line, vals),
            Mode::Polygons { keep } => {
                if vals.len() == 5 {
                    self.report.error(Issue::at_line(
                        "box_row_in_polygon_file",
                        line,
                        "a box (5 values) among polygons: Ultralytics refuses a file that mixes \
                         boxes and polygons (\"labels mix segment and detection rows\") and drops \
                         the image; write the box as a polygon (class x1 y1 x2 y2 x3 y3 x4 y4)",
                    ));
                } else if vals.len() == 1 {
                    self.report.error(Issue::at_line(
                        "wrong_column_count",
                        line,
                        "this line has only a class and no polygon; segmentation labels are \
                         `class x1 y1 x2 y2 x3 y3 ...`",
                    ));
                } else if vals.len().is_multiple_of(2) {
                    self.report.error(Issue::at_line(
                        "odd_polygon_coordinates",
                        line,
                        format!(
                            "the polygon has {} coordinates, an odd number; every vertex needs \
                             an x and a y",
                            vals.len() - 1
                        ),
                    ));
                } else {
                    self.polygon_row(line, vals, keep);
                }
            }
            Mode::Pose { keypoints, dims } => self.pose_row(line, vals, keypoints, dims),
        }
    }

    /// A detect row, or a box row of a polygon file.
    fn box_row(&mut self, line: u32, vals: &[f64]) {
        let bbox = [vals[1], vals[2], vals[3], vals[4]];
        let mut ok = self.no_negative(line, vals, |i| BOX_COLUMNS[i].to_owned());
        ok &= self.in_range(line, &bbox, |i| BOX_COLUMNS[i + 1].to_owned(), "");
        let class = self.class(line, vals[0]);
        let Some(class_id) = class.filter(|_| ok) else {
            return;
        };
        self.box_warnings(line, bbox);
        let annotation = self.annotation(class_id, Some(bbox));
        self.keep(line, vals.iter().map(|&v| key(v)), annotation);
    }

    /// A polygon row (segment, OBB, or detect from polygons). The trainer checks the polygon's
    /// bounding box, so the range checks apply to that box.
    fn polygon_row(&mut self, line: u32, vals: &[f64], task: Task) {
        let obb = task == Task::Obb;
        let points: Vec<[f64; 2]> = vals[1..].chunks_exact(2).map(|p| [p[0], p[1]]).collect();
        let (mut x1, mut y1, mut x2, mut y2) = (f64::INFINITY, f64::INFINITY, f64::NEG_INFINITY, f64::NEG_INFINITY);
        for &[x, y] in &points {
            x1 = x1.min(x);
            x2 = x2.max(x);
            y1 = y1.min(y);
            y2 = y2.max(y);
        }
        let bbox = [(x1 + x2) / 2.0, (y1 + y2) / 2.0, x2 - x1, y2 - y1];
        let what = if obb { "box around the OBB" } else { "box around the polygon" };
        let derived = [vals[0], bbox[0], bbox[1], bbox[2], bbox[3]];
        let mut ok = self.no_negative(line, &derived, |i| {
            if i == 0 {
                "class".to_owned()
            } else {
                format!("{} of the {what}", BOX_COLUMNS[i])
            }
        });
        ok &= self.in_range(
            line,
            &bbox,
            |i| format!("{} of the {what}", BOX_COLUMNS[i + 1]),
            " (the trainer checks the bounding box of the points)",
        );
        let class = self.class(line, vals[0]);
        let Some(class_id) = class.filter(|_| ok) else {
            return;
        };
        if points.iter().flatten().any(|&v| !(-EDGE_EPS..=1.0 + EDGE_EPS).contains(&v)) {
            let shape = if obb { "an OBB corner" } else { "a polygon vertex" };
            self.report.warning(Issue::at_line(
                "polygon_outside_image",
                line,
                format!("{shape} lies outside the image (x or y outside 0-1); the trainer clips it"),
            ));
        }
        if !obb && points.len() < 3 {
            self.report.warning(Issue::at_line(
                "degenerate_polygon",
                line,
                format!(
                    "the polygon has {} vertex{}; it covers no area",
                    points.len(),
                    if points.len() == 1 { "" } else { "es" }
                ),
            ));
        }
        if obb && points.len() != 4 {
            self.report.warning(Issue::at_line(
                "obb_corner_count",
                line,
                format!(
                    "the OBB has {} corners, not 4; the trainer accepts it and fits a rotated box \
                     around them",
                    points.len()
                ),
            ));
        }
        if bbox[2] <= 0.0 || bbox[3] <= 0.0 {
            self.report.warning(Issue::at_line("zero_area_box", line, format!("the {what} has zero width or height")));
        }
        let mut annotation = self.annotation(class_id, None);
        if obb {
            annotation.obb = Some(points);
        } else {
            annotation.bbox = Some(bbox);
            annotation.polygon = (task == Task::Segment).then_some(points);
        }
        // Polygons repeat when class and every vertex are the same f32 bytes (the trainer
        // compares `class.tobytes() + polygon.tobytes()`; so -0 and 0 differ here).
        self.keep(line, vals.iter().map(|&v| (v as f32).to_bits()), annotation);
    }

    fn pose_row(&mut self, line: u32, vals: &[f64], keypoints: usize, dims: usize) {
        let column = |i: usize| {
            if i < 5 {
                BOX_COLUMNS[i].to_owned()
            } else {
                let k = (i - 5) / dims;
                let part = ["x", "y", "visibility"][(i - 5) % dims];
                format!("keypoint {k} {part}")
            }
        };
        let mut ok = self.no_negative(line, vals, column);
        // The trainer range-checks only the keypoints' x and y.
        for k in 0..keypoints {
            let at = 5 + k * dims;
            for (j, &v) in vals[at..at + 2].iter().enumerate() {
                if ok && (v as f32) > COORD_MAX {
                    ok = false;
                    self.report.error(Issue::at_line(
                        "coordinate_out_of_range",
                        line,
                        format!(
                            "{} is {v}, above 1.01; coordinates must be normalized to 0-1 \
                             (pixels divided by the image width or height)",
                            column(at + j)
                        ),
                    ));
                }
            }
        }
        let class = self.class(line, vals[0]);
        let Some(class_id) = class.filter(|_| ok) else {
            return;
        };
        let bbox = [vals[1], vals[2], vals[3], vals[4]];
        if bbox.iter().any(|&v| (v as f32) > COORD_MAX) {
            self.report.warning(Issue::at_line(
                "box_outside_image",
                line,
                "the box has a value above 1.01; the trainer accepts it for pose labels and \
                 clips the box to the image",
            ));
        } else {
            self.box_warnings(line, bbox);
        }
        let mut annotation = self.annotation(class_id, Some(bbox));
        annotation.keypoints = Some(vals[5..].chunks_exact(dims).map(<[f64]>::to_vec).collect());
        self.keep(line, vals.iter().map(|&v| key(v)), annotation);
    }

    /// Reports the first value below -0.01, or a box width or height (columns 3 and 4) below 0:
    /// the trainer tolerates -0.01 everywhere else only (`lb.min() >= -0.01 and
    /// lb[:, 3:5].min() >= 0`). `true` when there is none.
    fn no_negative(&mut self, line: u32, vals: &[f64], column: impl Fn(usize) -> String) -> bool {
        let below = |i: usize, v: f64| (v as f32) < if i == 3 || i == 4 { 0.0 } else { VALUE_MIN };
        match vals.iter().enumerate().position(|(i, &v)| below(i, v)) {
            None => true,
            Some(i) => {
                let limit = if i == 3 || i == 4 { "below 0; a box's width and height" } else { "below -0.01; labels" };
                self.report.error(Issue::at_line(
                    "negative_value",
                    line,
                    format!("{} is {}, {limit} cannot be negative", column(i), vals[i]),
                ));
                false
            }
        }
    }

    /// Reports the first box value above 1.01; `true` when there is none.
    fn in_range(&mut self, line: u32, vals: &[f64], column: impl Fn(usize) -> String, note: &str) -> bool {
        match vals.iter().position(|&v| (v as f32) > COORD_MAX) {
            None => true,
            Some(i) => {
                self.report.error(Issue::at_line(
                    "coordinate_out_of_range",
                    line,
                    format!(
                        "{} is {}, above 1.01; coordinates must be normalized to 0-1 (pixels \
                         divided by the image width or height){note}",
                        column(i),
                        vals[i]
                    ),
                ));
                false
            }
        }
    }

    /// The class id, or `None` (reported) when it is not a class of the dataset. Negative
    /// classes are reported by [`Checker::no_negative`].
    fn class(&mut self, line: u32, value: f64) -> Option<u32> {
        let count = self.rules.names.len();
        if (value as f32) < VALUE_MIN {
            return None;
        }
        if (value as f32) >= count as f32 {
            let defined = match count {
                0 => "the dataset defines no classes".to_owned(),
                1 => "the dataset has 1 class (0)".to_owned(),
                n => format!("the dataset has {n} classes (0-{})", n - 1),
            };
            self.report.error(Issue::at_line(
                "class_out_of_range",
                line,
                format!("class {value} is not defined; {defined}"),
            ));
            return None;
        }
        if (value as f32).fract() != 0.0 {
            self.report.error(Issue::at_line(
                "non_integer_class",
                line,
                format!(
                    "class {value} is not a whole number; Ultralytics drops the image (\"non-integer class labels\")"
                ),
            ));
            return None;
        }
        Some((value as f32).max(0.0) as u32)
    }

    fn box_warnings(&mut self, line: u32, [cx, cy, w, h]: [f64; 4]) {
        let (x1, x2, y1, y2) = (cx - w / 2.0, cx + w / 2.0, cy - h / 2.0, cy + h / 2.0);
        if x1 < -EDGE_EPS || y1 < -EDGE_EPS || x2 > 1.0 + EDGE_EPS || y2 > 1.0 + EDGE_EPS {
            self.report.warning(Issue::at_line(
                "box_outside_image",
                line,
                format!(
                    "the box reaches beyond the image (x {x1:.4} to {x2:.4}, y {y1:.4} to \
                     {y2:.4}); the trainer clips it"
                ),
            ));
        }
        if w <= 0.0 || h <= 0.0 {
            self.report.warning(Issue::at_line(
                "zero_area_box",
                line,
                format!("the box has zero width or height (width {w}, height {h})"),
            ));
        }
    }

    fn annotation(&self, class_id: u32, bbox: Option<[f64; 4]>) -> Annotation {
        Annotation {
            class_id,
            class_name: self.rules.names[class_id as usize].clone(),
            bbox,
            polygon: None,
            keypoints: None,
            obb: None,
        }
    }

    /// Keeps a valid row; `key` is what the trainer compares to find repeats.
    fn keep(&mut self, line: u32, key: impl IntoIterator<Item = u32>, annotation: Annotation) {
        let start = self.keys.len();
        self.keys.extend(key);
        self.kept.push(Kept { line, annotation, key: start..self.keys.len() });
    }
}

const BOX_COLUMNS: [&str; 5] = ["class", "x_center", "y_center", "width", "height"];

/// A value as the trainer compares it for duplicates: f32, with -0 equal to 0.
fn key(v: f64) -> u32 {
    let v = v as f32;
    if v == 0.0 {
        0
    } else {
        v.to_bits()
    }
}

fn non_numeric_message(token: &str) -> String {
    let shown: String = token.chars().take(40).collect();
    format!("`{shown}` is not a number")
}

/// A number as Python's `float()` reads it (the trainer converts tokens with NumPy, which uses
/// it): Rust's float syntax plus `_` between two digits (`1_000.5`) and any Unicode decimal
/// digit for its ASCII digit (`０.５`).
fn parse_number(token: &str) -> Option<f64> {
    let ascii;
    let token = if token.is_ascii() {
        token
    } else {
        ascii = ascii_digits(token)?;
        ascii.as_str()
    };
    if !token.contains('_') {
        return token.parse().ok();
    }
    let b = token.as_bytes();
    let digit = |i: Option<usize>| i.and_then(|i| b.get(i)).is_some_and(u8::is_ascii_digit);
    let grouped = b.iter().enumerate().all(|(i, &c)| c != b'_' || (digit(i.checked_sub(1)) && digit(Some(i + 1))));
    if !grouped {
        return None;
    }
    token.replace('_', "").parse().ok()
}

/// The first digit (zero) of every run of ten Unicode decimal digits beyond ASCII (Unicode 14, as
/// in Python 3.11's `unicodedata.decimal`).
const UNICODE_DIGIT_ZEROS: [u32; 65] = [
    0x660, 0x6F0, 0x7C0, 0x966, 0x9E6, 0xA66, 0xAE6, 0xB66, 0xBE6, 0xC66, 0xCE6, 0xD66, 0xDE6, 0xE50, 0xED0, 0xF20,
    0x1040, 0x1090, 0x17E0, 0x1810, 0x1946, 0x19D0, 0x1A80, 0x1A90, 0x1B50, 0x1BB0, 0x1C40, 0x1C50, 0xA620, 0xA8D0,
    0xA900, 0xA9D0, 0xA9F0, 0xAA50, 0xABF0, 0xFF10, 0x104A0, 0x10D30, 0x11066, 0x110F0, 0x11136, 0x111D0, 0x112F0,
    0x11450, 0x114D0, 0x11650, 0x116C0, 0x11730, 0x118E0, 0x11950, 0x11C50, 0x11D50, 0x11DA0, 0x16A60, 0x16AC0,
    0x16B50, 0x1D7CE, 0x1D7D8, 0x1D7E2, 0x1D7EC, 0x1D7F6, 0x1E140, 0x1E2F0, 0x1E950, 0x1FBF0,
];

/// `token` with Unicode decimal digits as ASCII digits; `None` when another non-ASCII character
/// is in it (Python's float() refuses those).
fn ascii_digits(token: &str) -> Option<String> {
    token
        .chars()
        .map(|c| {
            if c.is_ascii() {
                return Some(c);
            }
            let zero = UNICODE_DIGIT_ZEROS.iter().find(|&&zero| (zero..zero + 10).contains(&u32::from(c)))?;
            char::from_digit(u32::from(c) - zero, 10)
        })
        .collect()
}

/// Lines as Python's `str.splitlines` cuts them (`\n`, `\r\n`, `\r`, `\v`, `\f`, `\x1c`-`\x1e`,
/// U+0085, U+2028, U+2029), so line numbers match what the trainer sees.
fn lines(text: &str) -> impl Iterator<Item = &str> {
    let bytes = text.as_bytes();
    let mut pos = 0;
    std::iter::from_fn(move || {
        if pos >= bytes.len() {
            return None;
        }
        let start = pos;
        let mut i = pos;
        while i < bytes.len() {
            let end = match bytes[i] {
                b'\n' | 0x0b | 0x0c | 0x1c..=0x1e => Some(i + 1),
                b'\r' if bytes.get(i + 1) == Some(&b'\n') => Some(i + 2),
                b'\r' => Some(i + 1),
                0xc2 if bytes.get(i + 1) == Some(&0x85) => Some(i + 2),
                0xe2 if bytes.get(i + 1) == Some(&0x80) && matches!(bytes.get(i + 2), Some(0xa8 | 0xa9)) => Some(i + 3),
                _ => None,
            };
            if let Some(end) = end {
                pos = end;
                return Some(&text[start..i]);
            }
            i += 1;
        }
        pos = bytes.len();
        Some(&text[start..])
    })
}

/// Whitespace-separated tokens, with Python's notion of whitespace.
fn tokens(line: &str) -> impl Iterator<Item = &str> {
    line.split(|c: char| c.is_whitespace() || ('\x1c'..='\x1f').contains(&c)).filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_files_over_the_limits_are_refused_before_parsing() {
        let rules = LabelRules { task: Task::Detect, names: vec!["a".into()], kpt_shape: None };
        assert!(!judge_label_bytes(b"0 0.5 0.5 0.1 0.1\n", &rules).corrupt);
        let long_line = format!("0 {}\n", "0.5 ".repeat(MAX_LABEL_LINE_BYTES / 4 + 1));
        let refused = judge_label_bytes(long_line.as_bytes(), &rules);
        assert!(refused.corrupt && refused.annotations.is_empty());
        assert_eq!(refused.issues[0].code, "label_too_large");
        let many_lines = "0 0.5 0.5 0.1 0.1\n".repeat(MAX_LABEL_FILE_BYTES / 18 + 1);
        assert_eq!(
            judge_label_bytes(many_lines.as_bytes(), &rules).issues[0].code,
            "label_too_large",
            "a file over 16 MiB"
        );
        assert_eq!(judge_label_bytes(&[0xff, 0xfe], &rules).issues[0].code, "label_not_utf8");
    }

    fn rules(task: Task, classes: usize) -> LabelRules {
        LabelRules { task, names: (0..classes).map(|i| format!("c{i}")).collect(), kpt_shape: None }
    }

    fn detect() -> LabelRules {
        rules(Task::Detect, 3)
    }

    fn parse(text: &str, rules: &LabelRules) -> ParsedLabels {
        let parsed = parse_label_file(text, rules);
        for issue in &parsed.issues {
            let is_error = ERROR_CODES.contains(&issue.code.as_str());
            assert!(is_error || WARNING_CODES.contains(&issue.code.as_str()), "unlisted code {}", issue.code);
            assert!(!is_error || parsed.corrupt, "error {} in a valid file", issue.code);
            assert!(!issue.message.is_empty());
        }
        if parsed.corrupt {
            assert!(parsed.annotations.is_empty());
            assert_eq!(parsed.duplicates_removed, 0);
        }
        parsed
    }

    /// `(code, line)` of every issue.
    fn issues(parsed: &ParsedLabels) -> Vec<(&str, Option<u32>)> {
        parsed.issues.iter().map(|i| (i.code.as_str(), i.line)).collect()
    }

    fn assert_close(a: &[f64], b: &[f64]) {
        assert_eq!(a.len(), b.len(), "{a:?} vs {b:?}");
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() < 1e-9, "{a:?} vs {b:?}");
        }
    }

    #[test]
    fn codes_lists_are_disjoint() {
        for code in ERROR_CODES {
            assert!(!WARNING_CODES.contains(code), "{code}");
        }
    }

    #[test]
    fn detect_rows() {
        let parsed = parse("0 0.5 0.5 0.2 0.4\n2 0.25 0.75 0.1 0.1\n", &detect());
        assert!(!parsed.corrupt);
        assert!(parsed.issues.is_empty());
        assert_eq!(parsed.duplicates_removed, 0);
        assert_eq!(parsed.annotations.len(), 2);
        let a = &parsed.annotations[0];
        assert_eq!((a.class_id, a.class_name.as_str()), (0, "c0"));
        assert_eq!(a.bbox, Some([0.5, 0.5, 0.2, 0.4]));
        assert_eq!((&a.polygon, &a.keypoints, &a.obb), (&None, &None, &None));
        assert_eq!(parsed.annotations[1].class_name, "c2");
        let json = serde_json::to_value(a).unwrap();
        assert_eq!(json, serde_json::json!({"class_id": 0, "class_name": "c0", "bbox": [0.5, 0.5, 0.2, 0.4]}));
    }

    #[test]
    fn empty_files_are_valid_backgrounds() {
        for text in ["", "\n", "\n\n\r\n", "   \n\t\n"] {
            let parsed = parse(text, &detect());
            assert!(!parsed.corrupt, "{text:?}");
            assert!(parsed.annotations.is_empty());
            assert!(parsed.issues.is_empty(), "{text:?}");
        }
        // An empty segmentation file is a background image too.
        assert!(!parse("", &rules(Task::Segment, 1)).corrupt);
    }

    #[test]
    fn empty_lines_are_skipped_and_lines_numbered() {
        let text = "\n0 0.5 0.5 0.2 0.2\n\n\n1 0.5 0.5 0.2 0.2\n";
        let parsed = parse(text, &detect());
        assert_eq!(parsed.annotations.len(), 2);
        let parsed = parse("\n\n0 0.5 0.5 0.2 0.2 0.9\n", &detect());
        assert_eq!(issues(&parsed), vec![("wrong_column_count", Some(3))]);
    }

    #[test]
    fn whitespace_only_lines_are_skipped() {
        // Ultralytics 8.4 keeps only lines with something besides whitespace (`if x.strip()`).
        let parsed = parse("0 0.5 0.5 0.2 0.2\n  \n1 0.5 0.5 0.2 0.2\n\t\n2 0.5 0.5 0.2 0.2\n", &detect());
        assert!(!parsed.corrupt);
        assert!(parsed.issues.is_empty(), "{:?}", parsed.issues);
        assert_eq!(parsed.annotations.len(), 3);
        let parsed = parse(" \n\t\n0 0.5 0.5 0.2 0.2\n \n", &detect());
        assert!(!parsed.corrupt);
        assert!(parsed.issues.is_empty());
    }

    #[test]
    fn python_line_breaks() {
        let text =
            "0 0.5 0.5 0.2 0.2\r\n1 0.5 0.5 0.2 0.2\r2 0.5 0.5 0.2 0.2\u{2028}0 0.1 0.1 0.1 0.1\x0b0 0.2 0.2 0.1 0.1 9";
        let parsed = parse(text, &detect());
        assert_eq!(issues(&parsed), vec![("wrong_column_count", Some(5))]);
        assert_eq!(row_token_counts(text), vec![5, 5, 5, 5, 6]);
        let parsed = parse("0\t0.5  0.5 0.2\u{a0}0.2", &detect());
        assert_eq!(parsed.annotations.len(), 1);
    }

    #[test]
    fn non_numeric_values_are_errors() {
        let parsed = parse("0 0.5 0.5 0.2 0.2\n1 0.5 abc 0.2 0.2\n", &detect());
        assert!(parsed.corrupt);
        assert_eq!(issues(&parsed), vec![("non_numeric", Some(2))]);
        assert!(parsed.issues[0].message.contains("`abc`"));
        let parsed = parse("0 nan 0.5 0.2 0.2\n", &detect());
        assert_eq!(issues(&parsed), vec![("non_numeric", Some(1))]);
        let parsed = parse("0 0,5 0.5 0.2 0.2\n", &detect());
        assert_eq!(issues(&parsed), vec![("non_numeric", Some(1))]);
        // A byte-order mark inside the text is not a number; at the start it is not text.
        let parsed = parse("0 0.5 0.5 0.2 0.2\n\u{feff}0 0.5 0.5 0.2 0.2\n", &detect());
        assert_eq!(issues(&parsed), vec![("non_numeric", Some(2))]);
        // Scientific notation and signs are numbers.
        let parsed = parse("+0 5e-1 .5 2E-1 0.2\n", &detect());
        assert!(!parsed.corrupt);
        assert_eq!(parsed.annotations[0].bbox, Some([0.5, 0.5, 0.2, 0.2]));
    }

    #[test]
    fn a_leading_byte_order_mark_is_ignored() {
        // The trainer opens label files as `utf-8-sig`.
        let parsed = parse("\u{feff}0 0.5 0.5 0.2 0.2\n", &detect());
        assert!(!parsed.corrupt);
        assert!(parsed.issues.is_empty());
        assert_eq!(parsed.annotations.len(), 1);
    }

    #[test]
    fn numbers_are_read_as_python_reads_them() {
        // Python's float() accepts `_` between digits; NumPy converts label tokens with it.
        let parsed = parse("0 0.5 0.5 0.2 0.2_0\n1_0 0.5 0.5 0.2 0.2\n", &rules(Task::Detect, 11));
        assert!(!parsed.corrupt, "{:?}", parsed.issues);
        assert_eq!(parsed.annotations[0].bbox, Some([0.5, 0.5, 0.2, 0.2]));
        assert_eq!(parsed.annotations[1].class_id, 10);
        for token in ["_1", "1_", "1__0", "0._5", "1_e5", "in_f"] {
            let parsed = parse(&format!("0 0.5 0.5 0.2 {token}\n"), &detect());
            assert_eq!(issues(&parsed), vec![("non_numeric", Some(1))], "{token}");
        }
        assert_eq!(parse_number("1_2.3_4e1_0"), Some(12.34e10));
        // Any Unicode decimal digit, as Python reads it; other non-ASCII characters are not.
        assert_eq!(parse_number("\u{ff10}.\u{ff15}"), Some(0.5));
        assert_eq!(parse_number("\u{0661}\u{0660}"), Some(10.0));
        assert_eq!(parse_number("\u{1d7ce}"), Some(0.0));
        assert_eq!(parse_number("\u{00b2}"), None); // superscript two: a digit, not decimal
        assert_eq!(parse_number("0.5\u{00e9}"), None);
    }

    #[test]
    fn detect_needs_five_columns() {
        for text in ["0 0.5 0.5 0.2\n", "0 0.5 0.5 0.2 0.2 0.9\n", "0\n"] {
            let parsed = parse(text, &detect());
            assert!(parsed.corrupt, "{text}");
            assert_eq!(issues(&parsed), vec![("wrong_column_count", Some(1))], "{text}");
        }
        let parsed = parse("0 0.5 0.5 0.2 0.2 0.9\n", &detect());
        assert!(parsed.issues[0].message.contains("has 6 values"));
    }

    #[test]
    fn negative_values_are_errors_beyond_the_tolerance() {
        let parsed = parse("0 0.5 0.5 0.2 0.2\n0 0.5 -0.02 0.2 0.2\n", &detect());
        assert!(parsed.corrupt);
        assert_eq!(issues(&parsed), vec![("negative_value", Some(2))]);
        assert!(parsed.issues[0].message.contains("y_center is -0.02"));
        let parsed = parse("-1 0.5 0.5 0.2 0.2\n", &detect());
        assert_eq!(issues(&parsed), vec![("negative_value", Some(1))]);
        // -0.01 is tolerated for the centre.
        let parsed = parse("0 -0.01 0.5 0.2 0.2\n", &detect());
        assert!(!parsed.corrupt);
        assert_eq!(issues(&parsed), vec![("box_outside_image", Some(1))]);
    }

    #[test]
    fn a_negative_width_or_height_is_an_error() {
        // The trainer: `lb.min() >= 0 or (lb.min() >= -0.01 and lb[:, 3:5].min() >= 0)`.
        for text in ["0 0.5 0.5 0.2 -0.005\n", "0 0.5 0.5 -0.005 0.2\n"] {
            let parsed = parse(text, &detect());
            assert!(parsed.corrupt, "{text}");
            assert_eq!(issues(&parsed), vec![("negative_value", Some(1))]);
            assert!(parsed.issues[0].message.contains("below 0"), "{}", parsed.issues[0].message);
        }
        let parsed = parse("0 0.5 0.5 -0 0.2\n", &detect());
        assert!(!parsed.corrupt);
        let parsed = parse("0 0.5 0.5 -0.005 0.4 0.4 0.4 2 0.5 0.5 1 0.6 0.6 0\n", &pose(3, 3));
        assert_eq!(issues(&parsed), vec![("negative_value", Some(1))]);
        // A keypoint slightly below 0 is within the tolerance.
        let parsed = parse("0 0.5 0.5 0.4 0.4 -0.005 0.4 2 0.5 0.5 1 0.6 0.6 0\n", &pose(3, 3));
        assert!(!parsed.corrupt);
    }

    #[test]
    fn coordinates_above_the_tolerance_are_errors() {
        let parsed = parse("0 0.5 0.5 1.02 0.2\n", &detect());
        assert!(parsed.corrupt);
        assert_eq!(issues(&parsed), vec![("coordinate_out_of_range", Some(1))]);
        assert!(parsed.issues[0].message.contains("width is 1.02"));
        let parsed = parse("0 0.5 0.5 0.2 1.0100001\n", &detect());
        assert_eq!(issues(&parsed), vec![("coordinate_out_of_range", Some(1))]);
        // 1.01 is tolerated, and so is what rounds to it in f32, as in the trainer.
        for text in ["0 0.5 0.5 1.01 0.2\n", "0 0.5 0.5 1.01000001 0.2\n"] {
            let parsed = parse(text, &detect());
            assert!(!parsed.corrupt, "{text}");
            assert_eq!(issues(&parsed), vec![("box_outside_image", Some(1))]);
        }
        // Pixel coordinates.
        let parsed = parse("0 320 240 50 60\n", &detect());
        assert_eq!(issues(&parsed), vec![("coordinate_out_of_range", Some(1))]);
        assert!(parsed.issues[0].message.contains("normalized"));
    }

    #[test]
    fn classes_must_be_defined() {
        let parsed = parse("3 0.5 0.5 0.2 0.2\n", &detect());
        assert!(parsed.corrupt);
        assert_eq!(issues(&parsed), vec![("class_out_of_range", Some(1))]);
        assert!(parsed.issues[0].message.contains("3 classes (0-2)"));
        let parsed = parse("0 0.5 0.5 0.2 0.2\n", &rules(Task::Detect, 0));
        assert_eq!(issues(&parsed), vec![("class_out_of_range", Some(1))]);
        let parsed = parse("2 0.5 0.5 0.2 0.2\n", &detect());
        assert!(!parsed.corrupt);
    }

    #[test]
    fn fractional_classes_are_errors() {
        // The trainer: `assert (lb[:, 0] % 1 == 0).all(), "non-integer class labels"`.
        for text in ["1.5 0.5 0.5 0.2 0.2\n", "-0.005 0.5 0.5 0.2 0.2\n", "0.5 0.1 0.1 0.4 0.1 0.4 0.4\n"] {
            let parsed = parse(text, &detect());
            assert!(parsed.corrupt, "{text}");
            assert_eq!(issues(&parsed), vec![("non_integer_class", Some(1))], "{text}");
        }
        // Whole numbers written as decimals, or what is whole in f32, are classes.
        let parsed = parse("1.0 0.4 0.4 0.2 0.2\n2.000000001 0.5 0.5 0.2 0.2\n", &detect());
        assert!(!parsed.corrupt, "{:?}", parsed.issues);
        assert_eq!(parsed.annotations[0].class_id, 1);
        assert_eq!(parsed.annotations[1].class_id, 2);
    }

    #[test]
    fn duplicate_rows_are_removed_and_counted() {
        let text = "0 0.5 0.5 0.2 0.2\n1 0.5 0.5 0.2 0.2\n0 0.50 0.5 0.2 0.200\n0 0.5 0.5 0.2 0.2\n";
        let parsed = parse(text, &detect());
        assert!(!parsed.corrupt);
        assert_eq!(parsed.duplicates_removed, 2);
        assert_eq!(parsed.annotations.len(), 2);
        assert_eq!(issues(&parsed), vec![("duplicate_row", Some(3)), ("duplicate_row", Some(4))]);
        assert!(parsed.issues[0].message.contains("line 1"));
        // -0 and 0 are the same value.
        let parsed = parse("0 0.5 0.5 0.2 0.2\n-0 0.5 0.5 0.2 0.2\n", &detect());
        assert_eq!(parsed.duplicates_removed, 1);
    }

    #[test]
    fn a_corrupt_file_keeps_only_its_errors() {
        let text = "0 0.5 0.5 0.2 0.2\n0 0.5 0.5 0.2 0.2\n1 0.0 0.5 0.2 0.2\n9 0.5 0.5 0.2 0.2\n";
        let parsed = parse(text, &detect());
        assert!(parsed.corrupt);
        assert_eq!(issues(&parsed), vec![("class_out_of_range", Some(4))]);
        assert!(parsed.annotations.is_empty());
        assert_eq!(parsed.duplicates_removed, 0);
    }

    #[test]
    fn every_bad_line_is_reported() {
        let text = "0 0.5 0.5 0.2\n0 x 0.5 0.2 0.2\n0 0.5 0.5 0.2 -1\n7 0.5 0.5 0.2 0.2\n";
        let parsed = parse(text, &detect());
        assert_eq!(
            issues(&parsed),
            vec![
                ("wrong_column_count", Some(1)),
                ("non_numeric", Some(2)),
                ("negative_value", Some(3)),
                ("class_out_of_range", Some(4)),
            ]
        );
    }

    #[test]
    fn box_warnings() {
        let parsed = parse("0 0.05 0.5 0.2 0.2\n", &detect());
        assert!(!parsed.corrupt);
        assert_eq!(issues(&parsed), vec![("box_outside_image", Some(1))]);
        assert_eq!(parsed.annotations.len(), 1);
        let parsed = parse("0 0.5 0.5 0 0.2\n", &detect());
        assert_eq!(issues(&parsed), vec![("zero_area_box", Some(1))]);
        // A box touching the edges exactly, or within rounding, is fine.
        let parsed = parse("0 0.5 0.5 1 1\n0 0.1234565 0.5 0.246913 0.2\n", &detect());
        assert!(parsed.issues.is_empty(), "{:?}", parsed.issues);
    }

    #[test]
    fn polygon_rows_in_a_segment_task() {
        let text = "1 0.1 0.2 0.5 0.2 0.5 0.6 0.1 0.6\n0 0.3 0.3 0.4 0.3 0.35 0.5\n";
        let parsed = parse(text, &rules(Task::Segment, 2));
        assert!(!parsed.corrupt);
        assert!(parsed.issues.is_empty(), "{:?}", parsed.issues);
        let a = &parsed.annotations[0];
        assert_eq!(a.class_id, 1);
        assert_close(&a.bbox.unwrap(), &[0.3, 0.4, 0.4, 0.4]);
        assert_eq!(a.polygon, Some(vec![[0.1, 0.2], [0.5, 0.2], [0.5, 0.6], [0.1, 0.6]]));
        assert_eq!(parsed.annotations[1].polygon.as_ref().unwrap().len(), 3);
    }

    #[test]
    fn polygon_rows_in_a_detect_task_become_boxes() {
        let parsed = parse("0 0.1 0.2 0.5 0.2 0.5 0.6 0.1 0.6\n", &detect());
        assert!(!parsed.corrupt);
        let a = &parsed.annotations[0];
        assert_close(&a.bbox.unwrap(), &[0.3, 0.4, 0.4, 0.4]);
        assert_eq!(a.polygon, None);
    }

    #[test]
    fn a_box_row_in_a_polygon_file_is_an_error() {
        // The trainer: `assert not any(len(x) == 5 for x in lb), "labels mix segment and detection rows"`.
        let text = "0 0.1 0.2 0.5 0.2 0.5 0.6\n1 0.5 0.5 0.2 0.2\n";
        for task in [Task::Detect, Task::Segment, Task::Obb] {
            let parsed = parse(text, &rules(task, 2));
            assert!(parsed.corrupt, "{task:?}");
            assert_eq!(issues(&parsed), vec![("box_row_in_polygon_file", Some(2))]);
        }
        // A polygon of 2 points is 5 values: the same.
        let parsed = parse("0 0.1 0.2 0.5 0.2 0.5 0.6\n1 0.1 0.1 0.3 0.3\n", &rules(Task::Segment, 2));
        assert_eq!(issues(&parsed), vec![("box_row_in_polygon_file", Some(2))]);
    }

    #[test]
    fn polygon_shape_errors() {
        let seg = rules(Task::Segment, 2);
        let parsed = parse("0 0.1 0.2 0.5 0.2 0.5 0.6\n1 0.1 0.2 0.5 0.2 0.5\n", &seg);
        assert!(parsed.corrupt);
        assert_eq!(issues(&parsed), vec![("odd_polygon_coordinates", Some(2))]);
        let parsed = parse("0 0.1 0.2 0.5 0.2 0.5 0.6\n1\n", &seg);
        assert_eq!(issues(&parsed), vec![("wrong_column_count", Some(2))]);
        let parsed = parse("0 0.1 0.2 0.5 0.2 0.5 0.6\n1 0.1 0.2 0.5\n", &seg);
        assert_eq!(issues(&parsed), vec![("odd_polygon_coordinates", Some(2))]);
        let parsed = parse("0 0.1 0.2 0.5 0.2 0.5 0.6\n1 0.1 0.2\n", &seg);
        assert!(!parsed.corrupt);
        assert_eq!(issues(&parsed), vec![("degenerate_polygon", Some(2)), ("zero_area_box", Some(2))]);
    }

    #[test]
    fn box_files_in_segment_and_obb_tasks_are_warned_about() {
        // verify_image_label keeps such a file as boxes; only the dataset as a whole is refused.
        let parsed = parse("0 0.5 0.5 0.2 0.2\n", &rules(Task::Segment, 1));
        assert!(!parsed.corrupt);
        assert_eq!(issues(&parsed), vec![("segment_without_polygons", None)]);
        assert_eq!(parsed.annotations[0].bbox, Some([0.5, 0.5, 0.2, 0.2]));
        let parsed = parse("0 0.5 0.5 0.2 0.2\n", &rules(Task::Obb, 1));
        assert!(!parsed.corrupt);
        assert_eq!(issues(&parsed), vec![("obb_without_polygons", None)]);
        assert_eq!(parsed.annotations.len(), 1);
    }

    #[test]
    fn polygon_range_checks_apply_to_the_bounding_box() {
        let seg = rules(Task::Segment, 1);
        // A vertex at x = 1.05 with the polygon's box centred at 0.975, width 0.15: accepted
        // by the trainer (which clips it).
        let parsed = parse("0 0.9 0.1 1.05 0.1 1.05 0.3 0.9 0.3\n", &seg);
        assert!(!parsed.corrupt);
        assert_eq!(issues(&parsed), vec![("polygon_outside_image", Some(1))]);
        // Far outside: the box's centre is out of range too.
        let parsed = parse("0 0.9 0.1 1.5 0.1 1.5 0.3\n", &seg);
        assert!(parsed.corrupt);
        assert_eq!(issues(&parsed), vec![("coordinate_out_of_range", Some(1))]);
        assert!(parsed.issues[0].message.contains("x_center of the box around the polygon"));
        // Entirely left of the image: the box's centre is negative.
        let parsed = parse("0 -0.3 0.1 -0.2 0.1 -0.2 0.3\n", &seg);
        assert_eq!(issues(&parsed), vec![("negative_value", Some(1))]);
        // Vertices within the tolerance, yet a box wider than 1.01.
        let parsed = parse("0 -0.01 0.1 1.01 0.1 1.01 0.3\n", &seg);
        assert_eq!(issues(&parsed), vec![("coordinate_out_of_range", Some(1))]);
        assert!(parsed.issues[0].message.contains("width"));
        // Class checks apply to polygon rows.
        let parsed = parse("1 0.1 0.1 0.2 0.1 0.2 0.2\n", &seg);
        assert_eq!(issues(&parsed), vec![("class_out_of_range", Some(1))]);
    }

    #[test]
    fn polygon_duplicates_compare_vertices() {
        // Ultralytics 8.4 compares class and polygon bytes: distinct polygons sharing a box stay.
        for task in [Task::Segment, Task::Obb, Task::Detect] {
            let text = "0 0.1 0.1 0.5 0.1 0.5 0.5 0.1 0.5\n0 0.1 0.1 0.5 0.5 0.1 0.5 0.5 0.1\n";
            let parsed = parse(text, &rules(task, 1));
            assert_eq!((parsed.duplicates_removed, parsed.annotations.len()), (0, 2), "{task:?}");
            let text = "0 0.1 0.1 0.5 0.1 0.5 0.5 0.1 0.5\n0 0.1 0.1 0.5 0.1 0.5 0.5 0.1 0.50\n";
            let parsed = parse(text, &rules(task, 1));
            assert_eq!((parsed.duplicates_removed, parsed.annotations.len()), (1, 1), "{task:?}");
            assert_eq!(issues(&parsed), vec![("duplicate_row", Some(2))]);
        }
        // Byte comparison: -0 and 0 differ.
        let parsed = parse("0 0 0.1 0.5 0.1 0.5 0.5\n0 -0 0.1 0.5 0.1 0.5 0.5\n", &rules(Task::Segment, 1));
        assert_eq!(parsed.duplicates_removed, 0);
    }

    #[test]
    fn obb_rows() {
        let obb = rules(Task::Obb, 2);
        let parsed = parse("1 0.1 0.1 0.4 0.1 0.4 0.3 0.1 0.3\n", &obb);
        assert!(!parsed.corrupt);
        assert!(parsed.issues.is_empty());
        let a = &parsed.annotations[0];
        assert_eq!(a.obb, Some(vec![[0.1, 0.1], [0.4, 0.1], [0.4, 0.3], [0.1, 0.3]]));
        assert_eq!((a.bbox, &a.polygon), (None, &None));
        assert_eq!(a.class_name, "c1");
        // The trainer reads OBB rows as polygons: 3 or 5 corners are accepted (with a warning),
        // an odd number of coordinates is not.
        for (text, corners) in [("0 0.1 0.1 0.4 0.1 0.4 0.3\n", 3), ("0 0.1 0.1 0.4 0.1 0.4 0.3 0.1 0.3 0.2 0.2\n", 5)]
        {
            let parsed = parse(text, &obb);
            assert!(!parsed.corrupt, "{text}");
            assert_eq!(issues(&parsed), vec![("obb_corner_count", Some(1))]);
            assert_eq!(parsed.annotations[0].obb.as_ref().map(Vec::len), Some(corners));
        }
        let parsed = parse("0 0.1 0.1 0.4 0.1 0.4 0.3 0.1 0.3 0.2\n", &obb);
        assert_eq!(issues(&parsed), vec![("odd_polygon_coordinates", Some(1))]);
        let parsed = parse("0 0.9 0.1 1.05 0.1 1.05 0.3 0.9 0.3\n", &obb);
        assert!(!parsed.corrupt);
        assert_eq!(issues(&parsed), vec![("polygon_outside_image", Some(1))]);
        let parsed = parse("0 0.9 0.1 1.9 0.1 1.9 0.3 0.9 0.3\n", &obb);
        assert_eq!(issues(&parsed), vec![("coordinate_out_of_range", Some(1))]);
        assert!(parsed.issues[0].message.contains("box around the OBB"));
        let parsed = parse("0 0.1 0.1 0.4 0.1 0.4 -0.3 0.1 0.3\n", &obb);
        assert!(!parsed.corrupt, "y_center of the box is 0.0");
        let parsed = parse("3 0.1 0.1 0.4 0.1 0.4 0.3 0.1 0.3\n", &obb);
        assert_eq!(issues(&parsed), vec![("class_out_of_range", Some(1))]);
    }

    fn pose(kpts: usize, dims: usize) -> LabelRules {
        LabelRules { kpt_shape: Some((kpts, dims)), ..rules(Task::Pose, 1) }
    }

    #[test]
    fn pose_rows_with_visibility() {
        let parsed = parse("0 0.5 0.5 0.4 0.4 0.4 0.4 2 0.6 0.6 0\n", &pose(2, 3));
        assert!(!parsed.corrupt);
        assert!(parsed.issues.is_empty(), "{:?}", parsed.issues);
        let a = &parsed.annotations[0];
        assert_eq!(a.bbox, Some([0.5, 0.5, 0.4, 0.4]));
        assert_eq!(a.keypoints, Some(vec![vec![0.4, 0.4, 2.0], vec![0.6, 0.6, 0.0]]));
        assert_eq!((&a.polygon, &a.obb), (&None, &None));
    }

    #[test]
    fn pose_rows_without_visibility() {
        let parsed = parse("0 0.5 0.5 0.4 0.4 0.4 0.4 0.6 0.6 0.5 0.5\n", &pose(3, 2));
        assert!(!parsed.corrupt);
        assert_eq!(parsed.annotations[0].keypoints, Some(vec![vec![0.4, 0.4], vec![0.6, 0.6], vec![0.5, 0.5]]));
    }

    #[test]
    fn pose_rules() {
        let rules = pose(2, 3);
        // Column count: 5 + 2 * 3.
        let parsed = parse("0 0.5 0.5 0.4 0.4 0.4 0.4 2 0.6 0.6\n", &rules);
        assert_eq!(issues(&parsed), vec![("wrong_column_count", Some(1))]);
        assert!(parsed.issues[0].message.contains("pose labels need 11"));
        let parsed = parse("0 0.5 0.5 0.4 0.4\n", &rules);
        assert_eq!(issues(&parsed), vec![("wrong_column_count", Some(1))]);
        // Keypoint x/y above 1.01.
        let parsed = parse("0 0.5 0.5 0.4 0.4 0.4 1.2 2 0.6 0.6 0\n", &rules);
        assert_eq!(issues(&parsed), vec![("coordinate_out_of_range", Some(1))]);
        assert!(parsed.issues[0].message.contains("keypoint 0 y is 1.2"));
        // Negative visibility.
        let parsed = parse("0 0.5 0.5 0.4 0.4 0.4 0.4 -1 0.6 0.6 0\n", &rules);
        assert_eq!(issues(&parsed), vec![("negative_value", Some(1))]);
        assert!(parsed.issues[0].message.contains("keypoint 0 visibility"));
        // The trainer does not range-check a pose box: only a warning.
        let parsed = parse("0 0.5 0.5 1.2 0.4 0.4 0.4 2 0.6 0.6 0\n", &rules);
        assert!(!parsed.corrupt);
        assert_eq!(issues(&parsed), vec![("box_outside_image", Some(1))]);
        // A negative box value is an error.
        let parsed = parse("0 0.5 -0.5 0.2 0.4 0.4 0.4 2 0.6 0.6 0\n", &rules);
        assert_eq!(issues(&parsed), vec![("negative_value", Some(1))]);
        // Classes.
        let parsed = parse("1 0.5 0.5 0.2 0.4 0.4 0.4 2 0.6 0.6 0\n", &rules);
        assert_eq!(issues(&parsed), vec![("class_out_of_range", Some(1))]);
        // Duplicates compare whole rows.
        let row = "0 0.5 0.5 0.2 0.4 0.4 0.4 2 0.6 0.6 0\n";
        let parsed = parse(&format!("{row}{row}0 0.5 0.5 0.2 0.4 0.4 0.4 2 0.6 0.6 1\n"), &rules);
        assert_eq!(parsed.duplicates_removed, 1);
        assert_eq!(parsed.annotations.len(), 2);
    }

    #[test]
    fn pose_rows_outside_pose_keep_their_box() {
        // With `kpt_shape` in the YAML and another task, the trainer keeps `x[:5]` of every row
        // of exactly 5 + keypoints * dims values, before anything else looks at it.
        let detect = LabelRules { kpt_shape: Some((2, 3)), ..rules(Task::Detect, 2) };
        let text = "0 0.5 0.5 0.4 0.4 1.4 0.4 2 x 0.5 1\n1 0.3 0.3 0.2 0.2\n";
        let parsed = parse(text, &detect);
        assert!(!parsed.corrupt, "{:?}", parsed.issues);
        assert_eq!(parsed.annotations.len(), 2);
        assert_eq!(parsed.annotations[0].bbox, Some([0.5, 0.5, 0.4, 0.4]));
        assert_eq!(parsed.annotations[0].keypoints, None);
        // Other lengths are read as they are: 9 values make a polygon file.
        let parsed = parse("0 0.5 0.5 0.4 0.4 0.4 0.4 2 0.5\n", &detect);
        assert_eq!(issues(&parsed), vec![("coordinate_out_of_range", Some(1))]);
    }

    #[test]
    fn pose_needs_kpt_shape() {
        let parsed = parse("0 0.5 0.5 0.4 0.4 0.4 0.4 2\n", &rules(Task::Pose, 1));
        assert!(parsed.corrupt);
        assert_eq!(issues(&parsed), vec![("kpt_shape_missing", None)]);
        assert!(!parse("", &rules(Task::Pose, 1)).corrupt);
    }

    #[test]
    fn issues_are_capped() {
        let text = "0 0.5 0.5 0.2\n".repeat(MAX_FILE_ISSUES + 7);
        let parsed = parse(&text, &detect());
        assert_eq!(parsed.issues.len(), MAX_FILE_ISSUES + 1);
        assert_eq!(parsed.issues[0].line, Some(1));
        let last = parsed.issues.last().unwrap();
        assert_eq!((last.code.as_str(), last.line), ("issues_truncated", None));
        assert!(last.message.starts_with("7 more"));
        // Warnings too.
        let text: String = (0..MAX_FILE_ISSUES + 3).map(|i| format!("0 0.{i:03} 0.5 0 0.2\n")).collect();
        let parsed = parse(&text, &detect());
        assert!(!parsed.corrupt);
        assert_eq!(parsed.issues.len(), MAX_FILE_ISSUES + 1);
        assert!(parsed.issues.last().unwrap().message.starts_with("3 more"));
    }

    #[test]
    fn file_level_issues_come_first() {
        let parsed = parse("0 0.5 0.5 0.2 0.2 0.1 0.1 2 0.3 0.3\n", &pose(3, 3));
        assert_eq!(issues(&parsed), vec![("wrong_column_count", Some(1))]);
        let parsed = parse("0 0.5 0.5 0.2 0.2\n0 0.5 0.5 0.2 0.2\n", &rules(Task::Segment, 1));
        assert_eq!(issues(&parsed), vec![("segment_without_polygons", None), ("duplicate_row", Some(2))]);
    }

    #[test]
    fn task_inference() {
        assert_eq!(infer_task([5, 5, 5], None), Task::Detect);
        assert_eq!(infer_task([], None), Task::Detect);
        assert_eq!(infer_task([5, 6], None), Task::Detect);
        assert_eq!(infer_task([9, 9], None), Task::Obb);
        assert_eq!(infer_task([5, 9, 0], None), Task::Obb);
        assert_eq!(infer_task([9, 7], None), Task::Segment);
        assert_eq!(infer_task([5, 11], None), Task::Segment);
        assert_eq!(infer_task([3], None), Task::Detect);
        assert_eq!(infer_task([5, 5], Some((17, 3))), Task::Pose);
        assert_eq!(infer_task([9], Some((1, 2))), Task::Pose);
        assert_eq!(infer_task(row_token_counts("0 1 2 3 4\n\n0 1 2 3 4 5 6 7 8\n"), None), Task::Obb);
    }

    // ---- Real files ----------------------------------------------------------------------

    fn label_files(datasets: &std::path::Path, dir: &str) -> Vec<String> {
        let dir = datasets.join(dir);
        let mut files: Vec<String> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "txt"))
            .map(|p| std::fs::read_to_string(p).unwrap())
            .collect();
        files.sort();
        files
    }

    #[test]
    fn coco8_labels_are_valid_detect_labels() {
        let Some(datasets) = testkit::real_datasets("coco8_labels_are_valid_detect_labels") else { return };
        let rules = rules(Task::Detect, 80);
        let mut total = 0;
        for dir in ["coco8/labels/train", "coco8/labels/val"] {
            let files = label_files(&datasets, dir);
            assert_eq!(files.len(), 4, "{dir}");
            for text in files {
                assert_eq!(infer_task(row_token_counts(&text), None), Task::Detect);
                let parsed = parse(&text, &rules);
                assert!(!parsed.corrupt, "{:?}", parsed.issues);
                total += parsed.annotations.len();
            }
        }
        assert!(total > 8);
    }

    #[test]
    fn roboflow_labels_are_valid_detect_labels() {
        let Some(datasets) = testkit::real_datasets("roboflow_labels_are_valid_detect_labels") else { return };
        let rules = LabelRules { task: Task::Detect, names: vec!["blackline".into()], kpt_shape: None };
        let files = label_files(&datasets, "roboflow-blackline/train/labels");
        assert_eq!(files.len(), 21);
        for text in files {
            let parsed = parse(&text, &rules);
            assert!(!parsed.corrupt, "{:?}", parsed.issues);
            assert!(parsed.annotations.iter().all(|a| a.class_name == "blackline"));
        }
    }
}
