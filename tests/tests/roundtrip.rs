//! Round trips through the `yds` client: a dataset imported, pulled (`yds pull`), and the
//! pulled tree imported again must be the same dataset — the same images under the same split
//! and file name, the same bytes (content hashes of images and label files), the same
//! annotations, the same verdicts (valid, issues) and statistics. One dataset of each task
//! (detect, segment, pose, obb) and the real exports beside the repository when present.
//!
//! And Ultralytics itself, the pinned version `cargo xtask test` installs
//! (`YDS_TEST_ULTRALYTICS`), finds in a pulled tree the images, kept images and instances it
//! finds in the original (`tools/ultralytics-diff/dataset_check.py`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use yds_tests::cli::Yds;
use yds_tests::{real_datasets, Chaos, TestStack, KEY};

/// A dataset to send round: its name, its folder (with `data.yaml`), its task.
struct Source {
    name: String,
    root: PathBuf,
    task: &'static str,
}

/// One small dataset of each task, written under `work`; the real exports when present.
fn sources(work: &Path, test: &str) -> Vec<Source> {
    let mut sources: Vec<Source> = testkit::TASKS
        .iter()
        .enumerate()
        .map(|(n, task)| {
            let set = testkit::task_dataset(work, task, 8, 3, 40 + n as u64).unwrap();
            Source { name: task.to_string(), root: set.root, task }
        })
        .collect();
    if let Some(real) = real_datasets(test) {
        for name in ["coco8", "roboflow-blackline"] {
            // A writable copy: Ultralytics' check may re-save a JPEG it restores.
            let copy = work.join(name);
            testkit::copy_dir(&real.join(name), &copy).unwrap();
            sources.push(Source { name: name.to_owned(), root: copy, task: "detect" });
        }
    }
    sources
}

/// `yds import ROOT --name NAME --json`: the dataset object at the end.
async fn import(yds: &Yds, root: &Path, name: &str) -> Value {
    let run = yds.run(&["import", root.to_str().unwrap(), "--name", name, "--json"]).await;
    assert_eq!(run.code, 0, "import of {name}:\n{}", run.both());
    let out: Value = serde_json::from_str(&run.stdout).unwrap();
    assert!(out["dataset"].is_object(), "{out}");
    out["dataset"].clone()
}

/// What must survive a round trip of one image.
fn image_facts(image: &Value) -> Value {
    let issues: Vec<Value> =
        image["issues"].as_array().unwrap().iter().map(|i| json!([i["code"], i.get("line")])).collect();
    json!({
        "content_hash": image["content_hash"],
        "size_bytes": image["size_bytes"],
        "label": image["label"],
        "width": image["width"],
        "height": image["height"],
        "format": image["format"],
        "valid": image["valid"],
        "annotations": image["annotations"],
        "issues": issues,
    })
}

/// Every image of a dataset by `split/file_name`.
async fn images(yds: &Yds, dataset_id: &str) -> BTreeMap<String, Value> {
    let all = yds.json(&["images", dataset_id, "--limit", "1000000", "--json"]).await;
    let mut by_name = BTreeMap::new();
    for image in all.as_array().unwrap() {
        let key = format!("{}/{}", image["split"].as_str().unwrap(), image["file_name"].as_str().unwrap());
        assert!(by_name.insert(key.clone(), image_facts(image)).is_none(), "{key} listed twice");
    }
    by_name
}

/// What must survive a round trip of a dataset: everything but its identity and the finding
/// that it is a copy of another.
fn dataset_facts(dataset: &Value) -> Value {
    let mut statistics = dataset["statistics"].clone();
    if let Some(issues) = statistics["issues"].as_object_mut() {
        issues.remove("duplicate_dataset");
    }
    let findings: Vec<Value> = dataset["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["code"] != "duplicate_dataset")
        .map(|f| f["code"].clone())
        .collect();
    json!({
        "status": dataset["status"],
        "task": dataset["task"],
        "classes": dataset["classes"],
        "kpt_shape": dataset["kpt_shape"],
        "flip_idx": dataset["flip_idx"],
        "kpt_names": dataset["kpt_names"],
        "trainable": dataset["trainable"],
        "counts": dataset["counts"],
        "splits": dataset["splits"],
        "class_counts": dataset["class_counts"],
        "statistics": statistics,
        "findings": findings,
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn every_task_and_the_real_exports_round_trip_exactly() {
    let work = tempfile::tempdir().unwrap();
    let stack = TestStack::start(Chaos::default()).await;
    let yds = Yds::new(&stack.stack.base_url, KEY);
    for source in sources(work.path(), "every_task_and_the_real_exports_round_trip_exactly") {
        let name = &source.name;
        let first = import(&yds, &source.root, name).await;
        let first_id = first["id"].as_str().unwrap();
        assert!(first["counts"]["images"].as_u64().unwrap() > 0, "{name}: {first}");
        let pulled = work.path().join("pulled").join(name);
        yds.ok(&["pull", first_id, pulled.to_str().unwrap()]).await;
        let second = import(&yds, &pulled, &format!("{name} again")).await;

        assert_eq!(dataset_facts(&second), dataset_facts(&first), "{name}: the dataset");
        // The server's own judgment: the same images, label files and classes as the first.
        let copy = second["findings"].as_array().unwrap().iter().find(|f| f["code"] == "duplicate_dataset");
        let copy = copy.unwrap_or_else(|| panic!("{name}: the re-import is found to be a copy: {second}"));
        assert!(copy["message"].as_str().unwrap().contains(first_id), "{name}: {copy}");

        let (before, after) = (images(&yds, first_id).await, images(&yds, second["id"].as_str().unwrap()).await);
        assert_eq!(before.len(), first["counts"]["images"].as_u64().unwrap() as usize, "{name}: every image listed");
        assert_eq!(before.keys().collect::<Vec<_>>(), after.keys().collect::<Vec<_>>(), "{name}: the same images");
        for (key, facts) in &before {
            assert_eq!(&after[key], facts, "{name}: {key}");
        }
        if source.task == "pose" {
            assert_eq!(first["kpt_shape"], json!([17, 3]), "{name}");
            assert!(first["flip_idx"].is_array(), "{name}: {first}");
        }
        // Pulled by class (its most frequent), the label files still hold every class, as imported.
        let class_counts = first["class_counts"].as_array().unwrap();
        let top = class_counts.iter().max_by_key(|c| c["images"].as_u64()).unwrap();
        if class_counts.len() > 1 {
            let by_class = work.path().join("by-class").join(name);
            let class = top["name"].as_str().unwrap();
            let run = yds.ok(&["pull", first_id, by_class.to_str().unwrap(), "--class", class]).await;
            let listed = yds.json(&["images", first_id, "--class", class, "--limit", "100000", "--json"]).await;
            let expected = format!("pulled {} images", listed.as_array().unwrap().len());
            assert!(run.stdout.starts_with(&expected), "{name}: {}", run.both());
            assert!(listed.as_array().unwrap().len() as u64 >= top["images"].as_u64().unwrap(), "{name}");
            for label in testkit::files_under(&by_class.join("labels")).unwrap() {
                let original = std::fs::read(pulled.join("labels").join(&label)).unwrap();
                assert_eq!(std::fs::read(by_class.join("labels").join(&label)).unwrap(), original, "{name}: {label}");
            }
        }
    }
    stack.shutdown().await;
}

/// `dataset_check.py` on a data.yaml: per split, what Ultralytics finds, keeps and counts.
fn ultralytics_view(tools: &Path, data_yaml: &Path, task: &str) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tools/ultralytics-diff/dataset_check.py");
    let output = std::process::Command::new("python3")
        .arg(script)
        .arg("--tools")
        .arg(tools)
        .args(["--task", task])
        .arg(data_yaml)
        // From elsewhere: the tree's paths must not depend on the current directory.
        .current_dir(std::env::temp_dir())
        .output()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}: {stdout}\n{}", data_yaml.display(), String::from_utf8_lossy(&output.stderr));
    serde_json::from_str(stdout.lines().last().unwrap_or("")).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn ultralytics_finds_in_a_pulled_tree_what_it_finds_in_the_original() {
    let Some(tools) = std::env::var_os("YDS_TEST_ULTRALYTICS").map(PathBuf::from) else {
        eprintln!(
            "skipped ultralytics_finds_in_a_pulled_tree_what_it_finds_in_the_original: no Ultralytics \
             (`cargo xtask test` installs the pinned one and sets YDS_TEST_ULTRALYTICS)"
        );
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let stack = TestStack::start(Chaos::default()).await;
    let yds = Yds::new(&stack.stack.base_url, KEY);
    for source in sources(work.path(), "ultralytics_finds_in_a_pulled_tree_what_it_finds_in_the_original") {
        let name = &source.name;
        let dataset = import(&yds, &source.root, name).await;
        let pulled = work.path().join("pulled").join(name);
        yds.ok(&["pull", dataset["id"].as_str().unwrap(), pulled.to_str().unwrap()]).await;
        let original = ultralytics_view(&tools, &source.root.join("data.yaml"), source.task);
        let copy = ultralytics_view(&tools, &pulled.join("data.yaml"), source.task);
        assert_eq!(copy, original, "{name}: Ultralytics' view of the pulled tree");
        assert!(original["train"]["images_kept"].as_u64().unwrap() > 0, "{name}: {original}");
        // And it agrees with YDS' own counts of kept images and instances.
        for (split, counts) in original.as_object().unwrap() {
            let stats = &dataset["splits"][split];
            let kept = stats["images"].as_u64().unwrap() - stats["invalid_images"].as_u64().unwrap();
            assert_eq!(counts["images_kept"].as_u64(), Some(kept), "{name} {split}: {original} vs {stats}");
            assert_eq!(counts["instances"], stats["annotations"], "{name} {split}: {original} vs {stats}");
        }
    }
    stack.shutdown().await;
}
