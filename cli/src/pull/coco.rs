//! COCO JSON from a dataset's images: `annotations/instances_{split}.json` beside the images.
//!
//! YOLO coordinates are normalized to the image as displayed (after EXIF orientation), which is
//! also the size the Image object gives, so absolute pixels are `x · width`, `y · height`,
//! rounded to 1/1000 px. Category ids are the YOLO class ids plus one (COCO's start at 1, and
//! several trainers take 0 for the background). Per task:
//! - detect: `bbox` [x, y, w, h] from the top-left corner, `area` = w · h;
//! - segment: `segmentation` [[x1, y1, x2, y2, ...]], `bbox` its bounds, `area` the polygon's;
//! - pose: `keypoints` [x, y, v, ...] with `num_keypoints` (v > 0); an unlabelled keypoint
//!   (v = 0) is 0, 0, 0 as in COCO; with 2 values per keypoint, v is 2, or 0 when a coordinate
//!   is negative (Ultralytics' rule); the categories carry the keypoint names and an empty
//!   `skeleton`;
//! - obb: the corners as a polygon `segmentation`, `bbox` its bounds, `area` the polygon's.
//!
//! Invalid images (those Ultralytics' trainer would drop: corrupt, unreadable) are left out:
//! COCO readers do not check images, and YDS already knows which ones would break a trainer.
//!
//! A split's file is written while the images are listed, into two hidden part files (its
//! images and its annotations), joined at the end: memory does not grow with the dataset.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::error::{Error, Result};

/// Pixels rounded to 1/1000, without a negative zero.
fn px(v: f64) -> f64 {
    let r = (v * 1000.0).round() / 1000.0;
    if r == 0.0 {
        0.0
    } else {
        r
    }
}

/// The categories: one per class, with keypoint names for pose.
pub fn categories(classes: &[String], kpt_count: Option<usize>, kpt_names: Option<&Value>) -> Value {
    let list: Vec<Value> = classes
        .iter()
        .enumerate()
        .map(|(id, name)| {
            let mut category = json!({"id": id + 1, "name": name, "supercategory": ""});
            if let Some(count) = kpt_count {
                let names: Vec<String> = kpt_names
                    .and_then(|k| k.get(id.to_string()))
                    .and_then(Value::as_array)
                    .map(|names| names.iter().map(|n| n.as_str().unwrap_or("").to_owned()).collect())
                    .filter(|names: &Vec<String>| names.len() == count)
                    .unwrap_or_else(|| (0..count).map(|k| format!("kpt_{k}")).collect());
                category["keypoints"] = json!(names);
                category["skeleton"] = json!([]);
            }
            category
        })
        .collect();
    Value::Array(list)
}

/// An image's COCO entry; `None` when it has no known size (a corrupt file).
pub fn image_entry(id: u64, image: &Value) -> Option<Value> {
    let (w, h) = (image["width"].as_u64()?, image["height"].as_u64()?);
    Some(json!({"id": id, "file_name": image["file_name"], "width": w, "height": h}))
}

/// The COCO annotations of one image, ids from `next_id` on.
pub fn annotations(image: &Value, image_id: u64, next_id: &mut u64) -> Vec<Value> {
    let (Some(w), Some(h)) = (image["width"].as_f64(), image["height"].as_f64()) else { return Vec::new() };
    let point = |p: &Value| -> Option<(f64, f64)> { Some((p.get(0)?.as_f64()? * w, p.get(1)?.as_f64()? * h)) };
    let mut out = Vec::new();
    for annotation in image["annotations"].as_array().into_iter().flatten() {
        let Some(class_id) = annotation["class_id"].as_u64() else { continue };
        let mut entry = json!({"id": *next_id, "image_id": image_id, "category_id": class_id + 1, "iscrowd": 0});
        let polygon = annotation["polygon"].as_array().or(annotation["obb"].as_array());
        if let Some(vertices) = polygon {
            let points: Vec<(f64, f64)> = vertices.iter().filter_map(point).collect();
            if points.len() < 3 {
                continue;
            }
            let flat: Vec<f64> = points.iter().flat_map(|&(x, y)| [px(x), px(y)]).collect();
            entry["segmentation"] = json!([flat]);
            entry["bbox"] = json!(bounds(&points));
            entry["area"] = json!(px(shoelace(&points)));
        } else if let Some([cx, cy, bw, bh]) = four(&annotation["bbox"]) {
            let (bw, bh) = (bw * w, bh * h);
            entry["bbox"] = json!([px(cx * w - bw / 2.0), px(cy * h - bh / 2.0), px(bw), px(bh)]);
            entry["area"] = json!(px(bw * bh));
            if let Some(keypoints) = annotation["keypoints"].as_array() {
                let mut flat = Vec::with_capacity(keypoints.len() * 3);
                let mut visible = 0;
                for kp in keypoints {
                    let x = kp.get(0).and_then(Value::as_f64).unwrap_or(0.0);
                    let y = kp.get(1).and_then(Value::as_f64).unwrap_or(0.0);
                    let v = match kp.get(2).and_then(Value::as_f64) {
                        Some(v) => v.round().clamp(0.0, 2.0),
                        None if x < 0.0 || y < 0.0 => 0.0,
                        None => 2.0,
                    };
                    if v > 0.0 {
                        visible += 1;
                        flat.extend([px(x * w), px(y * h), v]);
                    } else {
                        flat.extend([0.0, 0.0, 0.0]);
                    }
                }
                entry["keypoints"] = json!(flat);
                entry["num_keypoints"] = json!(visible);
            }
        } else {
            continue;
        }
        *next_id += 1;
        out.push(entry);
    }
    out
}

fn four(v: &Value) -> Option<[f64; 4]> {
    let a = v.as_array()?;
    Some([a.first()?.as_f64()?, a.get(1)?.as_f64()?, a.get(2)?.as_f64()?, a.get(3)?.as_f64()?])
}

/// `[x, y, w, h]` of the points' bounding box.
fn bounds(points: &[(f64, f64)]) -> [f64; 4] {
    let (mut x0, mut y0, mut x1, mut y1) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
    for &(x, y) in points {
        (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x), y1.max(y));
    }
    [px(x0), px(y0), px(x1 - x0), px(y1 - y0)]
}

/// A simple polygon's area.
fn shoelace(points: &[(f64, f64)]) -> f64 {
    let twice: f64 =
        points.iter().zip(points.iter().cycle().skip(1)).map(|(&(x0, y0), &(x1, y1))| x0 * y1 - x1 * y0).sum();
    twice.abs() / 2.0
}

/// One split's file being written: its images and annotations, each into a part file.
struct SplitFile {
    images: BufWriter<File>,
    annotations: BufWriter<File>,
    image_count: u64,
    annotation_count: u64,
    next_annotation: u64,
    parts: [PathBuf; 2],
}

/// The COCO files of a pull, split by split.
pub struct CocoWriter {
    dir: PathBuf,
    categories: Value,
    info: Value,
    splits: BTreeMap<String, SplitFile>,
    /// Images left out: invalid, or without a size.
    pub left_out: u64,
}

/// What one split's file holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub split: String,
    pub images: u64,
    pub annotations: u64,
}

impl CocoWriter {
    /// Writes under `dir` (the pull's `annotations/`).
    pub fn new(dir: &Path, categories: Value, description: &str) -> Result<CocoWriter> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        Ok(CocoWriter {
            dir: dir.to_owned(),
            categories,
            info: json!({"description": description, "version": "1.0"}),
            splits: BTreeMap::new(),
            left_out: 0,
        })
    }

    /// Adds an image (and its annotations) to its split's file, unless it is invalid.
    pub fn add(&mut self, split: &str, image: &Value) -> Result<()> {
        if !self.splits.contains_key(split) {
            let file = self.open(split)?;
            self.splits.insert(split.to_owned(), file);
        }
        let file = self.splits.get_mut(split).expect("just inserted");
        let image_id = file.image_count + 1;
        let entry = image_entry(image_id, image).filter(|_| image["valid"] != false);
        let Some(entry) = entry else {
            self.left_out += 1;
            return Ok(());
        };
        let io = |e| Error::io("writing COCO annotations", e);
        let separator = if file.image_count > 0 { "," } else { "" };
        write!(file.images, "{separator}{entry}").map_err(io)?;
        file.image_count += 1;
        for annotation in annotations(image, image_id, &mut file.next_annotation) {
            let separator = if file.annotation_count > 0 { "," } else { "" };
            write!(file.annotations, "{separator}{annotation}").map_err(io)?;
            file.annotation_count += 1;
        }
        Ok(())
    }

    fn open(&self, split: &str) -> Result<SplitFile> {
        let part = |what: &str| self.dir.join(format!(".instances_{split}.{what}.yds-partial"));
        let parts = [part("images"), part("annotations")];
        let create = |p: &PathBuf| {
            File::create(p).map(BufWriter::new).map_err(|e| Error::io(format!("creating {}", p.display()), e))
        };
        Ok(SplitFile {
            images: create(&parts[0])?,
            annotations: create(&parts[1])?,
            image_count: 0,
            annotation_count: 0,
            next_annotation: 1,
            parts,
        })
    }

    /// Also writes a file for each of `splits` that got no image.
    pub fn finish(mut self, splits: &[String]) -> Result<Vec<Written>> {
        for split in splits {
            if !self.splits.contains_key(split) {
                let file = self.open(split)?;
                self.splits.insert(split.clone(), file);
            }
        }
        let mut written = Vec::new();
        for (split, file) in std::mem::take(&mut self.splits) {
            let SplitFile { images, annotations, image_count, annotation_count, parts, .. } = file;
            let io = |e| Error::io(format!("writing instances_{split}.json"), e);
            images.into_inner().map_err(|e| io(e.into_error()))?;
            annotations.into_inner().map_err(|e| io(e.into_error()))?;
            let target = self.dir.join(format!("instances_{split}.json"));
            let temp = super::paths::partial(&target);
            let mut out = BufWriter::new(File::create(&temp).map_err(io)?);
            write!(out, "{{\"info\":{},\"licenses\":[],\"images\":[", self.info).map_err(io)?;
            std::io::copy(&mut File::open(&parts[0]).map_err(io)?, &mut out).map_err(io)?;
            write!(out, "],\"annotations\":[").map_err(io)?;
            std::io::copy(&mut File::open(&parts[1]).map_err(io)?, &mut out).map_err(io)?;
            write!(out, "],\"categories\":{}}}", self.categories).map_err(io)?;
            out.into_inner().map_err(|e| io(e.into_error()))?;
            std::fs::rename(&temp, &target).map_err(io)?;
            for part in parts {
                let _ = std::fs::remove_file(part);
            }
            written.push(Written { split, images: image_count, annotations: annotation_count });
        }
        Ok(written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(annotations: Value) -> Value {
        json!({"file_name": "a/b.jpg", "width": 640, "height": 480, "annotations": annotations})
    }

    #[test]
    fn a_box_becomes_absolute_pixels_from_the_top_left_corner() {
        let img = image(
            json!([{"class_id": 2, "bbox": [0.5, 0.5, 0.25, 0.5]}, {"class_id": 0, "bbox": [0.1, 0.2, 0.1, 0.1]}]),
        );
        let mut next = 7;
        let out = annotations(&img, 3, &mut next);
        assert_eq!(next, 9);
        assert_eq!(
            out,
            [
                json!({"id": 7, "image_id": 3, "category_id": 3, "iscrowd": 0, "bbox": [240.0, 120.0, 160.0, 240.0], "area": 38400.0}),
                json!({"id": 8, "image_id": 3, "category_id": 1, "iscrowd": 0, "bbox": [32.0, 72.0, 64.0, 48.0], "area": 3072.0}),
            ]
        );
        assert_eq!(image_entry(3, &img), Some(json!({"id": 3, "file_name": "a/b.jpg", "width": 640, "height": 480})));
        assert_eq!(image_entry(1, &json!({"file_name": "x.jpg", "width": null})), None);
    }

    #[test]
    fn a_polygon_and_an_obb_are_segmentations_with_their_bounds_and_area() {
        // A right triangle of legs 320 and 240 px; an axis-aligned OBB of 64 x 48 px.
        let img = image(json!([
            {"class_id": 0, "polygon": [[0.0, 0.0], [0.5, 0.0], [0.0, 0.5]], "bbox": [0.25, 0.25, 0.5, 0.5]},
            {"class_id": 1, "obb": [[0.1, 0.1], [0.2, 0.1], [0.2, 0.2], [0.1, 0.2]]},
        ]));
        let out = annotations(&img, 1, &mut 1);
        assert_eq!(out[0]["segmentation"], json!([[0.0, 0.0, 320.0, 0.0, 0.0, 240.0]]));
        assert_eq!(out[0]["bbox"], json!([0.0, 0.0, 320.0, 240.0]));
        assert_eq!(out[0]["area"], json!(38400.0));
        assert_eq!(out[1]["segmentation"], json!([[64.0, 48.0, 128.0, 48.0, 128.0, 96.0, 64.0, 96.0]]));
        assert_eq!(out[1]["bbox"], json!([64.0, 48.0, 64.0, 48.0]));
        assert_eq!(out[1]["area"], json!(3072.0));
        assert_eq!(out[1]["category_id"], 2);
    }

    #[test]
    fn keypoints_are_absolute_triplets_with_unlabelled_ones_zeroed() {
        let img = image(json!([{"class_id": 0, "bbox": [0.5, 0.5, 0.5, 0.5],
            "keypoints": [[0.5, 0.25, 2.0], [0.3, 0.3, 0.0], [0.25, 0.75, 1.0]]}]));
        let out = annotations(&img, 1, &mut 1);
        assert_eq!(out[0]["keypoints"], json!([320.0, 120.0, 2.0, 0.0, 0.0, 0.0, 160.0, 360.0, 1.0]));
        assert_eq!(out[0]["num_keypoints"], 2);
        // Two values per keypoint: visible unless a coordinate is negative.
        let img = image(json!([{"class_id": 0, "bbox": [0.5, 0.5, 0.5, 0.5], "keypoints": [[0.5, 0.5], [-1.0, 0.2]]}]));
        let out = annotations(&img, 1, &mut 1);
        assert_eq!(out[0]["keypoints"], json!([320.0, 240.0, 2.0, 0.0, 0.0, 0.0]));
        assert_eq!(out[0]["num_keypoints"], 1);
    }

    #[test]
    fn pose_categories_name_their_keypoints() {
        let classes = vec!["person".to_owned(), "dog".to_owned()];
        let cats = categories(&classes, Some(2), Some(&json!({"0": ["nose", "tail"]})));
        assert_eq!(
            cats,
            json!([
                {"id": 1, "name": "person", "supercategory": "", "keypoints": ["nose", "tail"], "skeleton": []},
                {"id": 2, "name": "dog", "supercategory": "", "keypoints": ["kpt_0", "kpt_1"], "skeleton": []},
            ])
        );
        assert_eq!(categories(&classes, None, None)[1], json!({"id": 2, "name": "dog", "supercategory": ""}));
    }

    #[test]
    fn the_writer_makes_one_valid_json_file_per_split() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = CocoWriter::new(dir.path(), categories(&["cat".to_owned()], None, None), "test").unwrap();
        let one = image(json!([{"class_id": 0, "bbox": [0.5, 0.5, 0.5, 0.5]}]));
        writer.add("train", &one).unwrap();
        writer.add("train", &image(json!([]))).unwrap();
        writer.add("train", &json!({"file_name": "broken.jpg", "width": null, "height": null})).unwrap();
        let mut invalid = one.clone();
        invalid["valid"] = false.into();
        writer.add("train", &invalid).unwrap();
        writer.add("train", &one).unwrap();
        assert_eq!(writer.left_out, 2);
        let written = writer.finish(&["train".to_owned(), "val".to_owned()]).unwrap();
        assert_eq!(
            written,
            [
                Written { split: "train".into(), images: 3, annotations: 2 },
                Written { split: "val".into(), images: 0, annotations: 0 }
            ]
        );
        let train: Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("instances_train.json")).unwrap()).unwrap();
        assert_eq!(train["images"].as_array().unwrap().len(), 3);
        assert_eq!(train["annotations"][1]["id"], 2);
        assert_eq!(train["annotations"][1]["image_id"], 3, "image ids count the images written");
        assert_eq!(train["categories"][0]["name"], "cat");
        let val: Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("instances_val.json")).unwrap()).unwrap();
        assert_eq!(val["images"], json!([]));
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(left.len(), 2, "no part file left: {left:?}");
    }
}
