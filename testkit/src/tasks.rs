//! Small datasets of each of YOLO's four tasks (detect, segment, pose, obb), with real JPEGs
//! and one label row shape per task, for the tests that draw annotations (the web app's).
//!
//! [`generate`](crate::generate) writes detect datasets of any size and defect mix; these are
//! the other shapes, kept small: what a test compares is the drawing of each row, not volume.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::encode::Picture;

/// One of the four tasks, by the name the API uses.
pub const TASKS: [&str; 4] = ["detect", "segment", "pose", "obb"];

/// Classes of every task dataset.
pub const TASK_CLASSES: [&str; 3] = ["cat", "dog", "bird"];

/// What [`task_dataset`] wrote.
#[derive(Debug, Clone)]
pub struct TaskDataset {
    /// The dataset's root: `data.yaml`, `images/{train,val}`, `labels/{train,val}`.
    pub root: PathBuf,
    pub task: &'static str,
    /// Images written, the corrupt one included.
    pub images: usize,
    /// Label rows written (every one valid).
    pub annotations: usize,
    /// The file name (under `images/train/`) of the one image whose bytes are not an image.
    pub corrupt_image: String,
}

/// Writes a `task` dataset of `train` + `val` images under `dir/{task}`: 160×120 JPEGs with
/// 1–3 objects each, every object a valid row of the task's shape; pose rows carry COCO's 17
/// keypoints (`kpt_shape: [17, 3]`, some not visible). The first train image's bytes are
/// garbage, so the dataset has exactly one invalid image.
pub fn task_dataset(
    dir: &Path,
    task: &'static str,
    train: usize,
    val: usize,
    seed: u64,
) -> anyhow::Result<TaskDataset> {
    anyhow::ensure!(TASKS.contains(&task), "unknown task {task}");
    anyhow::ensure!(train >= 1, "the corrupt image goes in train");
    let root = dir.join(task);
    let mut rng = StdRng::seed_from_u64(seed);
    let mut annotations = 0;
    let mut corrupt_image = String::new();
    for (split, count) in [("train", train), ("val", val)] {
        std::fs::create_dir_all(root.join("images").join(split))?;
        std::fs::create_dir_all(root.join("labels").join(split))?;
        for n in 0..count {
            let stem = format!("{task}_{split}_{n:03}");
            let objects = rng.random_range(1..=3usize);
            let mut picture = Picture::gradient(160, 120, [rng.random(), rng.random(), rng.random()]);
            let mut label = String::new();
            for _ in 0..objects {
                let class = rng.random_range(0..TASK_CLASSES.len());
                let (w, h) = (rng.random_range(0.15..0.4), rng.random_range(0.15..0.4));
                let (cx, cy) = (rng.random_range(w / 2.0..1.0 - w / 2.0), rng.random_range(h / 2.0..1.0 - h / 2.0));
                picture.fill_box([cx, cy, w, h], [40 + 80 * class as u8, 200 - 60 * class as u8, 90]);
                writeln!(label, "{class} {}", row(task, [cx, cy, w, h], &mut rng))?;
            }
            let image = root.join("images").join(split).join(format!("{stem}.jpg"));
            if split == "train" && n == 0 {
                // Not an image at all: the importer must report it and keep going.
                std::fs::write(&image, b"these bytes are not a JPEG")?;
                corrupt_image = format!("{stem}.jpg");
            } else {
                std::fs::write(&image, picture.to_jpeg()?)?;
                annotations += objects;
            }
            std::fs::write(root.join("labels").join(split).join(format!("{stem}.txt")), label)?;
        }
    }
    let mut yaml = String::from("train: images/train\nval: images/val\nnames:\n");
    for (id, name) in TASK_CLASSES.iter().enumerate() {
        writeln!(yaml, "  {id}: {name}")?;
    }
    if task == "pose" {
        yaml.push_str("kpt_shape: [17, 3]\nflip_idx: [0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15]\n");
    }
    std::fs::write(root.join("data.yaml"), yaml)?;
    Ok(TaskDataset { root, task, images: train + val, annotations, corrupt_image })
}

/// The numbers after the class id of one row of `task` for the object in `bbox`.
fn row(task: &str, [cx, cy, w, h]: [f64; 4], rng: &mut StdRng) -> String {
    let (x0, y0, x1, y1) = (cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0);
    let numbers: Vec<f64> = match task {
        "detect" => vec![cx, cy, w, h],
        // A hexagon inside the box.
        "segment" => (0..6)
            .flat_map(|k| {
                let angle = std::f64::consts::PI * k as f64 / 3.0;
                [cx + angle.cos() * w / 2.0, cy + angle.sin() * h / 2.0]
            })
            .collect(),
        "pose" => {
            let mut numbers = vec![cx, cy, w, h];
            for k in 0..17 {
                let visibility = if k % 5 == 4 { 0.0 } else { 2.0 };
                numbers.extend([rng.random_range(x0..x1), rng.random_range(y0..y1), visibility]);
            }
            numbers
        }
        // The box turned into its four corners, clockwise.
        _ => vec![x0, y0, x1, y0, x1, y1, x0, y1],
    };
    numbers.iter().map(|v| format!("{v:.6}")).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_task_writes_rows_of_its_shape() {
        let dir = tempfile::tempdir().unwrap();
        for (task, numbers) in [("detect", 4), ("segment", 12), ("pose", 4 + 17 * 3), ("obb", 8)] {
            let set = task_dataset(dir.path(), task, 3, 2, 7).unwrap();
            assert_eq!(set.images, 5);
            let mut rows = 0;
            for split in ["train", "val"] {
                for entry in std::fs::read_dir(set.root.join("labels").join(split)).unwrap() {
                    let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
                    for line in text.lines() {
                        let fields: Vec<f64> = line.split(' ').map(|f| f.parse().unwrap()).collect();
                        assert_eq!(fields.len(), 1 + numbers, "{task}: {line}");
                        assert!(fields[1..].iter().all(|v| (0.0..=2.0).contains(v)), "{task}: {line}");
                        rows += 1;
                    }
                }
            }
            let corrupt_rows =
                std::fs::read_to_string(set.root.join("labels/train").join(set.corrupt_image.replace(".jpg", ".txt")))
                    .unwrap()
                    .lines()
                    .count();
            assert_eq!(rows, set.annotations + corrupt_rows, "{task}");
            let yaml = std::fs::read_to_string(set.root.join("data.yaml")).unwrap();
            assert_eq!(yaml.contains("kpt_shape"), task == "pose");
            assert_eq!(std::fs::read(set.root.join("images/train").join(&set.corrupt_image)).unwrap()[0], b't');
        }
    }
}
