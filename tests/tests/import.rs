//! The import path end to end: generated and real datasets, from zip and tar.gz over HTTP and
//! from file:// URLs, through the local stack, checked image by image and box by box.

use std::collections::{BTreeMap, HashSet};

use serde_json::{json, Value};
use testkit::{DatasetSpec, Defects, FileServer, GeneratedDataset, Layout};
use yds_tests::{Chaos, TestStack};

/// A dataset with every common case: JPEG and PNG, backgrounds, empty label files, a top folder.
fn spec(seed: u64, layout: Layout) -> DatasetSpec {
    let mut spec = DatasetSpec::small(seed);
    spec.layout = layout;
    spec.top_folder = Some("export".into());
    spec.splits = vec![("train".into(), 30), ("val".into(), 9), ("test".into(), 4)];
    spec.empty_label_every = 7;
    spec.max_boxes = 4;
    spec
}

/// Checks every image of the dataset against what the generator wrote.
fn assert_images_match(images: &[Value], generated: &GeneratedDataset) {
    let mut seen = HashSet::new();
    for image in images {
        let key = format!("{}/{}", image["split"].as_str().unwrap(), image["file_name"].as_str().unwrap());
        assert!(seen.insert(key.clone()), "{key} listed twice");
    }
    assert_eq!(images.len(), generated.images.len(), "image count");
    let by_key: BTreeMap<String, &Value> = images
        .iter()
        .map(|i| (format!("{}/{}", i["split"].as_str().unwrap(), i["file_name"].as_str().unwrap()), i))
        .collect();
    for expected in &generated.images {
        let key = format!("{}/{}", expected.split, expected.file_name);
        let image = by_key.get(&key).unwrap_or_else(|| panic!("{key} missing"));
        assert_eq!(image["width"], expected.width, "{key} width");
        assert_eq!(image["height"], expected.height, "{key} height");
        assert_eq!(image["size_bytes"], expected.size_bytes, "{key} size");
        assert_eq!(image["valid"], expected.valid, "{key} valid");
        if !expected.valid {
            assert!(!image["issues"].as_array().unwrap().is_empty(), "{key}: an invalid image says why");
            continue;
        }
        assert_eq!(image["format"], expected.format.as_str(), "{key} format");
        let annotations = image["annotations"].as_array().unwrap();
        assert_eq!(annotations.len(), expected.boxes.len(), "{key} annotation count");
        for (annotation, (class_id, bbox)) in annotations.iter().zip(&expected.boxes) {
            assert_eq!(annotation["class_id"], *class_id, "{key} class");
            assert_eq!(annotation["class_name"], generated.classes[*class_id as usize].as_str());
            let got: Vec<f64> = annotation["bbox"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
            assert_eq!(got, bbox.to_vec(), "{key} bbox");
        }
    }
}

fn assert_counts_match(dataset: &Value, generated: &GeneratedDataset) {
    let counts = &dataset["counts"];
    assert_eq!(counts["images"], generated.image_count());
    assert_eq!(counts["annotations"], generated.annotation_count());
    assert_eq!(counts["background_images"], generated.background_count());
    assert_eq!(counts["invalid_images"], generated.invalid_count());
    let mut per_split: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    let mut per_class: BTreeMap<u32, (u64, HashSet<String>)> = BTreeMap::new();
    for image in &generated.images {
        let entry = per_split.entry(&image.split).or_default();
        entry.0 += 1;
        if image.valid {
            entry.1 += image.boxes.len() as u64;
            for (class_id, _) in &image.boxes {
                let c = per_class.entry(*class_id).or_default();
                c.0 += 1;
                c.1.insert(format!("{}/{}", image.split, image.file_name));
            }
        }
    }
    for (split, (images, annotations)) in per_split {
        assert_eq!(dataset["splits"][split]["images"], images, "{split} images");
        assert_eq!(dataset["splits"][split]["annotations"], annotations, "{split} annotations");
        let per_class_in_split: u64 = dataset["splits"][split]["classes"]
            .as_object()
            .unwrap()
            .values()
            .map(|c| c["instances"].as_u64().unwrap())
            .sum();
        assert_eq!(per_class_in_split, annotations, "{split}: per-class instances add up");
    }
    for class in dataset["class_counts"].as_array().unwrap() {
        let id = class["class_id"].as_u64().unwrap() as u32;
        let (instances, images) = per_class.get(&id).map(|(n, s)| (*n, s.len() as u64)).unwrap_or((0, 0));
        assert_eq!(class["instances"], instances, "class {id} instances");
        assert_eq!(class["images"], images, "class {id} images");
    }
}

/// Imports `body` and waits for the job; returns (dataset id, final status).
async fn import_and_wait(stack: &TestStack, body: Value) -> (String, Value) {
    let (code, accepted) = stack.import(&body).await;
    assert_eq!(code, 202, "{accepted}");
    assert_eq!(accepted["status"], "queued");
    let status = stack.wait_terminal(accepted["job_id"].as_str().unwrap()).await;
    (accepted["dataset_id"].as_str().unwrap().to_owned(), status)
}

#[tokio::test(flavor = "multi_thread")]
async fn zip_and_tar_gz_over_http_import_every_image_and_box() {
    let work = tempfile::tempdir().unwrap();
    let generated = testkit::generate(&work.path().join("src"), &spec(11, Layout::Ultralytics)).unwrap();
    let served = work.path().join("served");
    std::fs::create_dir_all(&served).unwrap();
    testkit::pack_zip(&work.path().join("src"), &served.join("d.zip")).unwrap();
    testkit::pack_tar_gz(&work.path().join("src"), &served.join("d.tar.gz")).unwrap();
    let server = FileServer::start(served).await.unwrap();
    let stack = TestStack::start(Chaos::default()).await;

    for archive in ["d.zip", "d.tar.gz"] {
        let (dataset_id, status) =
            import_and_wait(&stack, json!({"name": archive, "archive_url": server.url(archive), "chunk_size": 6}))
                .await;
        assert_eq!(status["status"], "completed", "{status}");
        assert_eq!(status["progress"]["files_total"], generated.image_count());
        assert_eq!(status["progress"]["files_done"], generated.image_count());
        assert_eq!(status["progress"]["chunks_total"], generated.image_count().div_ceil(6));
        assert_eq!(status["counts"]["annotations"], generated.annotation_count());
        let images = stack.all_images(&dataset_id, 7, "").await;
        assert_images_match(&images, &generated);
        let dataset = stack.dataset(&dataset_id).await;
        assert_eq!(dataset["status"], "ready");
        assert_eq!(dataset["classes"], json!(generated.classes));
        assert_counts_match(&dataset, &generated);
    }
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn duplicate_delivery_and_crashes_change_nothing() {
    let work = tempfile::tempdir().unwrap();
    let mut spec = spec(23, Layout::Roboflow);
    spec.defects = Defects { corrupt_images: 1, bad_label_lines: 2, tiny_images: 1 };
    let generated = testkit::generate(&work.path().join("src"), &spec).unwrap();
    let archive = work.path().join("d.tar.gz");
    testkit::pack_tar_gz(&work.path().join("src"), &archive).unwrap();
    let body =
        |name: &str| json!({"name": name, "archive_url": format!("file://{}", archive.display()), "chunk_size": 4});

    let clean = TestStack::start(Chaos::default()).await;
    let (clean_id, clean_status) = import_and_wait(&clean, body("clean")).await;
    let clean_images = clean.all_images(&clean_id, 1000, "").await;
    let clean_dataset = clean.dataset(&clean_id).await;
    clean.shutdown().await;

    let chaotic = TestStack::start(Chaos { duplicate: 0.5, crash: 0.2, storage: 0.02 }).await;
    let (chaos_id, chaos_status) = import_and_wait(&chaotic, body("chaos")).await;
    let chaos_images = chaotic.all_images(&chaos_id, 1000, "").await;
    let chaos_dataset = chaotic.dataset(&chaos_id).await;
    // Nothing was written outside the dataset's prefix and the job's scratch space.
    let storage = chaotic.dir.path().join("data").join("storage");
    let job_id = chaos_status["job_id"].as_str().unwrap_or_default().to_owned();
    for path in testkit::files_under(&storage).unwrap() {
        assert!(
            path.starts_with(&format!("datasets/{chaos_id}/")) || path.starts_with(&format!("temp/{job_id}/")),
            "{path} is outside the dataset's prefix"
        );
    }
    chaotic.shutdown().await;

    assert_eq!(clean_status["status"], "completed_with_errors");
    assert_eq!(chaos_status["status"], clean_status["status"]);
    assert_eq!(chaos_status["counts"], clean_status["counts"]);
    assert_eq!(chaos_status["progress"]["chunks_done"], clean_status["progress"]["chunks_done"]);
    // The content hash too: summed once per chunk, whatever was delivered twice or crashed.
    assert_eq!(clean_dataset["content_hash"].as_str().map(str::len), Some(64));
    for key in ["counts", "splits", "class_counts", "classes", "content_hash", "trainable"] {
        assert_eq!(chaos_dataset[key], clean_dataset[key], "{key}");
    }
    let strip_ids = |images: Vec<Value>| -> Vec<Value> {
        images
            .into_iter()
            .map(|mut i| {
                // Ids, and the URLs that name them, differ between two imports.
                for key in ["id", "file_url", "thumbnail_url"] {
                    i.as_object_mut().unwrap().remove(key);
                }
                i
            })
            .collect()
    };
    assert_eq!(strip_ids(chaos_images.clone()), strip_ids(clean_images));
    assert_images_match(&chaos_images, &generated);
    assert_counts_match(&chaos_dataset, &generated);
}

/// A split of a real dataset: its name, image folder and label folder.
type RealSplit = (&'static str, &'static str, &'static str);

/// Counts a real dataset's files imply: images per split and label rows.
fn count_real(root: &std::path::Path, splits: &[RealSplit]) -> (u64, u64, BTreeMap<String, u64>) {
    let mut images = 0;
    let mut rows = 0;
    let mut per_split = BTreeMap::new();
    for (split, image_dir, label_dir) in splits {
        let mut n = 0;
        for entry in std::fs::read_dir(root.join(image_dir)).unwrap() {
            let path = entry.unwrap().path();
            n += 1;
            let label = root.join(label_dir).join(path.with_extension("txt").file_name().unwrap());
            if let Ok(text) = std::fs::read_to_string(label) {
                rows += text.lines().filter(|l| !l.trim().is_empty()).count() as u64;
            }
        }
        images += n;
        per_split.insert(split.to_string(), n);
    }
    (images, rows, per_split)
}

#[tokio::test(flavor = "multi_thread")]
async fn real_datasets_import_with_the_counts_their_files_imply() {
    let Some(datasets) = yds_tests::real_datasets("real_datasets_import_with_the_counts_their_files_imply") else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let stack = TestStack::start(Chaos::default()).await;
    let cases: [(&str, Vec<RealSplit>); 2] = [
        ("coco8", vec![("train", "images/train", "labels/train"), ("val", "images/val", "labels/val")]),
        (
            "roboflow-blackline",
            vec![
                ("train", "train/images", "train/labels"),
                ("val", "valid/images", "valid/labels"),
                ("test", "test/images", "test/labels"),
            ],
        ),
    ];
    for (name, splits) in cases {
        let root = datasets.join(name);
        let (images, rows, per_split) = count_real(&root, &splits);
        let archive = work.path().join(format!("{name}.zip"));
        testkit::pack_zip(&root, &archive).unwrap();
        let (dataset_id, status) =
            import_and_wait(&stack, json!({"name": name, "archive_url": format!("file://{}", archive.display())}))
                .await;
        assert_eq!(status["status"], "completed", "{name}: {status}");
        let dataset = stack.dataset(&dataset_id).await;
        assert_eq!(dataset["counts"]["images"], images, "{name}");
        assert_eq!(dataset["counts"]["annotations"], rows, "{name}");
        assert_eq!(dataset["counts"]["invalid_images"], 0, "{name}");
        for (split, n) in per_split {
            assert_eq!(dataset["splits"][&split]["images"], n, "{name} {split}");
        }
        let listed = stack.all_images(&dataset_id, 5, "").await;
        assert_eq!(listed.len() as u64, images);
        let class_total: u64 =
            dataset["class_counts"].as_array().unwrap().iter().map(|c| c["instances"].as_u64().unwrap()).sum();
        assert_eq!(class_total, rows, "{name}: per-class instances add up");
    }
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn findings_are_reported_and_filterable() {
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("src");
    let mut spec = DatasetSpec::small(31);
    spec.defects = Defects { corrupt_images: 1, bad_label_lines: 1, tiny_images: 1 };
    let generated = testkit::generate(&root, &spec).unwrap();
    // Train/val leakage: one valid train image copied into val; and a label with no image.
    let leaked = generated.images.iter().find(|i| i.split == "train" && i.valid).unwrap();
    let ext = leaked.file_name.rsplit('.').next().unwrap();
    std::fs::copy(generated.image_path(leaked), root.join(format!("images/val/leaked.{ext}"))).unwrap();
    std::fs::write(root.join("labels/train/ghost.txt"), "0 0.5 0.5 0.1 0.1\n").unwrap();
    let archive = work.path().join("d.zip");
    testkit::pack_zip(&root, &archive).unwrap();

    let stack = TestStack::start(Chaos::default()).await;
    let (dataset_id, status) =
        import_and_wait(&stack, json!({"name": "findings", "archive_url": format!("file://{}", archive.display())}))
            .await;
    assert_eq!(status["status"], "completed_with_errors");
    assert_eq!(status["counts"]["invalid_images"], generated.invalid_count());
    assert!(status["findings"].as_array().unwrap().iter().any(|f| f["code"] == "orphan_label"));

    let invalid = stack.all_images(&dataset_id, 2, "&valid=false").await;
    assert_eq!(invalid.len(), generated.invalid_count());
    assert!(invalid.iter().all(|i| i["valid"] == false && !i["issues"].as_array().unwrap().is_empty()));
    let valid = stack.all_images(&dataset_id, 50, "&valid=true").await;
    assert_eq!(valid.len(), generated.image_count() + 1 - generated.invalid_count());

    let leaks = stack.all_images(&dataset_id, 50, "&issue=cross_split_duplicate").await;
    let mut names: Vec<String> = leaks
        .iter()
        .map(|i| format!("{}/{}", i["split"].as_str().unwrap(), i["file_name"].as_str().unwrap()))
        .collect();
    names.sort();
    assert_eq!(names, [format!("train/{}", leaked.file_name), format!("val/leaked.{ext}")]);
    let (code, page) = stack.get(&format!("/datasets/{dataset_id}/images?issue=cross_split_duplicate&split=val")).await;
    assert_eq!(code, 200);
    assert_eq!(page["items"].as_array().unwrap().len(), 1);

    let dataset = stack.dataset(&dataset_id).await;
    let statistics = &dataset["statistics"];
    assert_eq!(statistics["duplicates"]["cross_split"], 2);
    assert_eq!(statistics["issues"]["cross_split_duplicate"], 2);
    assert_eq!(statistics["issues"]["orphan_label"], 1);
    assert!(dataset["findings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["code"] == "orphan_label" && f["file"] == "labels/train/ghost.txt"));
    let (code, _) = stack.get(&format!("/datasets/{dataset_id}/images?valid=maybe")).await;
    assert_eq!(code, 400);
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn yaml_plus_two_archives_import_like_one() {
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("src");
    let generated = testkit::generate(&root, &spec(41, Layout::Ultralytics)).unwrap();
    let top = root.join("export");
    let served = work.path().join("served");
    std::fs::create_dir_all(&served).unwrap();
    // The images archive holds the tree's contents (`train/...`), the labels one keeps its
    // `labels/` folder: both forms are accepted.
    testkit::pack_tar_gz(&top.join("images"), &served.join("images.tar.gz")).unwrap();
    let labels_parent = work.path().join("labels-only");
    testkit::copy_dir(&top.join("labels"), &labels_parent.join("labels")).unwrap();
    testkit::pack_zip(&labels_parent, &served.join("labels.zip")).unwrap();
    std::fs::copy(top.join("data.yaml"), served.join("data.yaml")).unwrap();
    let server = FileServer::start(served).await.unwrap();

    let stack = TestStack::start(Chaos::default()).await;
    let body = json!({
        "name": "parts",
        "config_url": server.url("data.yaml"),
        "images_url": server.url("images.tar.gz"),
        "labels_url": server.url("labels.zip"),
        "chunk_size": 8,
    });
    let (dataset_id, status) = import_and_wait(&stack, body).await;
    assert_eq!(status["status"], "completed", "{status}");
    let images = stack.all_images(&dataset_id, 9, "").await;
    assert_images_match(&images, &generated);
    assert_counts_match(&stack.dataset(&dataset_id).await, &generated);
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stack_restarted_mid_import_finishes_it_exactly() {
    let work = tempfile::tempdir().unwrap();
    let generated = testkit::generate(&work.path().join("src"), &spec(53, Layout::Ultralytics)).unwrap();
    let archive = work.path().join("d.zip");
    testkit::pack_zip(&work.path().join("src"), &archive).unwrap();

    // Every chunk delivery crashes half-way (never on the last attempt): the import is
    // stuck retrying, with some documents written, when the whole stack goes down.
    let stack = TestStack::start(Chaos { duplicate: 0.0, crash: 1.0, storage: 0.0 }).await;
    let (code, accepted) = stack
        .import(&json!({"name": "restart", "archive_url": format!("file://{}", archive.display()), "chunk_size": 5}))
        .await;
    assert_eq!(code, 202);
    let job_id = accepted["job_id"].as_str().unwrap().to_owned();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let (_, status) = stack.get(&format!("/datasets/import/{job_id}/status")).await;
        if status["progress"]["chunks_total"].as_u64().unwrap_or(0) > 0 {
            assert_eq!(status["status"], "running");
            assert_eq!(status["progress"]["chunks_done"], 0);
            break;
        }
        assert!(std::time::Instant::now() < deadline, "planning never finished: {status}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    let stack = stack.restart(Chaos::default()).await;
    let status = stack.wait_terminal(&job_id).await;
    assert_eq!(status["status"], "completed", "{status}");
    assert_eq!(status["progress"]["files_done"], generated.image_count());
    let dataset_id = accepted["dataset_id"].as_str().unwrap();
    let images = stack.all_images(dataset_id, 10, "").await;
    assert_images_match(&images, &generated);
    assert_counts_match(&stack.dataset(dataset_id).await, &generated);
    stack.shutdown().await;
}
