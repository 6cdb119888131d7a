//! The import rules users asked for, on the real local stack over HTTP: datasets Ultralytics
//! cannot train on still import (a val-only Roboflow export, a YAML without `train:`, images
//! without labels) and say why they are not trainable; pose datasets show their keypoint
//! settings; filters name what the dataset has; label files come back byte for byte; errors
//! say what to do; and a dataset imported twice names the earlier copy.

use std::path::Path;

use serde_json::{json, Value};
use testkit::{DatasetSpec, Layout};
use yds_tests::{Chaos, TestStack, KEY};

/// Packs `root` into `work/{name}.zip` and imports it: the dataset's id and the job's status.
async fn import_folder(stack: &TestStack, work: &Path, root: &Path, name: &str, extra: Value) -> (String, Value) {
    let archive = work.join(format!("{name}.zip"));
    testkit::pack_zip(root, &archive).unwrap();
    let mut body = json!({"name": name, "archive_url": format!("file://{}", archive.display())});
    for (key, value) in extra.as_object().into_iter().flatten() {
        body[key] = value.clone();
    }
    let (code, accepted) = stack.import(&body).await;
    assert_eq!(code, 202, "{name}: {accepted}");
    let status = stack.wait_terminal(accepted["job_id"].as_str().unwrap()).await;
    (accepted["dataset_id"].as_str().unwrap().to_owned(), status)
}

/// The dataset as `GET /datasets/{id}` answers it.
async fn dataset(stack: &TestStack, id: &str) -> Value {
    let (code, dataset) = stack.get(&format!("/datasets/{id}")).await;
    assert_eq!(code, 200, "{dataset}");
    dataset
}

/// The dataset's findings with `code`.
fn findings<'a>(dataset: &'a Value, code: &str) -> Vec<&'a Value> {
    dataset["findings"].as_array().unwrap().iter().filter(|f| f["code"] == code).collect()
}

fn codes(dataset: &Value) -> Vec<&str> {
    dataset["findings"].as_array().unwrap().iter().map(|f| f["code"].as_str().unwrap()).collect()
}

/// A problem's status and detail, checking it is one.
async fn problem(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
    assert_eq!(content_type, "application/problem+json");
    let body: Value = response.json().await.unwrap();
    (status, body["detail"].as_str().unwrap().to_owned())
}

#[tokio::test(flavor = "multi_thread")]
async fn datasets_ultralytics_cannot_train_on_import_and_say_why() {
    let work = tempfile::tempdir().unwrap();
    let stack = TestStack::start(Chaos::default()).await;

    // A val-only Roboflow export: `valid/images`, `valid/labels`, a YAML with only `val:`.
    let mut spec = DatasetSpec::small(61);
    spec.layout = Layout::Roboflow;
    spec.splits = vec![("val".into(), 5)];
    spec.background_every = 0;
    let roboflow = testkit::generate(&work.path().join("roboflow"), &spec).unwrap();
    let yaml = std::fs::read_to_string(roboflow.yaml_path()).unwrap();
    assert!(yaml.contains("\nval: ../valid/images\n") && !yaml.contains("train:"), "{yaml}");
    let (id, status) = import_folder(&stack, work.path(), &roboflow.root, "val-only", json!({})).await;
    assert_eq!(status["status"], "completed", "{status}");
    let val_only = dataset(&stack, &id).await;
    assert_eq!(val_only["status"], "ready");
    assert_eq!(val_only["trainable"], false);
    assert_eq!(val_only["splits"].as_object().unwrap().keys().collect::<Vec<_>>(), ["val"]);
    assert_eq!(val_only["counts"]["images"], 5);
    assert_eq!(val_only["counts"]["annotations"], roboflow.annotation_count());
    assert_eq!(codes(&val_only), ["no_train_split"], "labels exist: no `no_labels`");
    let why = findings(&val_only, "no_train_split")[0]["message"].as_str().unwrap();
    assert!(why.starts_with("the dataset YAML names no `train:` split"), "{why}");
    assert_eq!(val_only["statistics"]["issues"]["no_train_split"], 1);
    // Its images are all there under `val`, and `split=valid` (Roboflow's name) finds them.
    let images = stack.all_images(&id, 10, "").await;
    assert!(images.iter().all(|i| i["split"] == "val"));
    let valid = stack.all_images(&id, 10, "&split=valid").await;
    assert_eq!(valid, images);
    let (code, unknown) = stack.get(&format!("/datasets/{id}/images?split=train")).await;
    assert_eq!(code, 400);
    assert_eq!(unknown["detail"], "the dataset has no split `train`; its splits are `val`");
    // The same export as a tar.gz, cut into chunks while it is staged: the same dataset, and a
    // copy of the first.
    let archive = work.path().join("val-only.tar.gz");
    testkit::pack_tar_gz(&roboflow.root, &archive).unwrap();
    let body = json!({"name": "val-only tar", "archive_url": format!("file://{}", archive.display()), "chunk_size": 2});
    let (code, accepted) = stack.import(&body).await;
    assert_eq!(code, 202, "{accepted}");
    let status = stack.wait_terminal(accepted["job_id"].as_str().unwrap()).await;
    assert_eq!(status["status"], "completed", "{status}");
    let from_tar = dataset(&stack, accepted["dataset_id"].as_str().unwrap()).await;
    for key in ["splits", "counts", "trainable", "content_hash"] {
        assert_eq!(from_tar[key], val_only[key], "{key}");
    }
    assert_eq!(codes(&from_tar), ["no_train_split", "duplicate_dataset"]);

    // A YAML without `train:` whose other splits are there, train folder included.
    let mut spec = DatasetSpec::small(62);
    spec.splits = vec![("train".into(), 4), ("val".into(), 3), ("test".into(), 2)];
    let no_train = testkit::generate(&work.path().join("no-train"), &spec).unwrap();
    let yaml = std::fs::read_to_string(no_train.yaml_path()).unwrap().replace("train: images/train\n", "");
    std::fs::write(no_train.yaml_path(), yaml).unwrap();
    let (id, status) = import_folder(&stack, work.path(), &no_train.root, "no-train", json!({})).await;
    assert_eq!(status["status"], "completed", "{status}");
    let no_train_dataset = dataset(&stack, &id).await;
    assert_eq!(no_train_dataset["trainable"], false);
    assert_eq!(no_train_dataset["counts"]["images"], 5, "val and test, not the train folder the YAML leaves out");
    // First the verdict; the train folder's label files are orphans now.
    assert_eq!(codes(&no_train_dataset)[0], "no_train_split");
    assert!(codes(&no_train_dataset).contains(&"orphan_label"), "{}", no_train_dataset["findings"]);

    // Images and no label at all: no `labels/` folder, then a `labels/` folder with no file.
    let mut spec = DatasetSpec::small(63);
    spec.background_every = 1;
    spec.splits = vec![("train".into(), 6), ("val".into(), 2)];
    let unlabelled = testkit::generate(&work.path().join("unlabelled"), &spec).unwrap();
    assert!(unlabelled.images.iter().all(|i| i.label_text.is_none()));
    for (name, labels_folder) in [("no-labels-folder", false), ("empty-labels-folder", true)] {
        let labels = unlabelled.root.join("labels");
        if labels_folder {
            std::fs::create_dir_all(labels.join("train")).unwrap();
            std::fs::write(labels.join("README.md"), "labels will come\n").unwrap();
        } else if labels.exists() {
            std::fs::remove_dir_all(&labels).unwrap();
        }
        let (id, status) = import_folder(&stack, work.path(), &unlabelled.root, name, json!({})).await;
        assert_eq!(status["status"], "completed", "{name}: {status}");
        let unlabelled_dataset = dataset(&stack, &id).await;
        assert_eq!(unlabelled_dataset["trainable"], false, "{name}");
        // The second is the same images without labels as the first: a copy of it.
        let expected: &[&str] = if labels_folder {
            &["no_train_split", "no_labels", "duplicate_dataset"]
        } else {
            &["no_train_split", "no_labels"]
        };
        assert_eq!(codes(&unlabelled_dataset), expected, "{name}");
        let why = findings(&unlabelled_dataset, "no_train_split")[0]["message"].as_str().unwrap();
        assert_eq!(
            why,
            "no image has a label file: Ultralytics cannot train on this dataset; its images can still be browsed and checked"
        );
        let none = findings(&unlabelled_dataset, "no_labels")[0]["message"].as_str().unwrap();
        assert!(none.contains("each of the 8 images is a background image"), "{none}");
        // Judged as today: every image valid, a background image.
        assert_eq!(unlabelled_dataset["counts"]["images"], 8, "{name}");
        assert_eq!(unlabelled_dataset["counts"]["background_images"], 8, "{name}");
        assert_eq!(unlabelled_dataset["counts"]["invalid_images"], 0, "{name}");
        let images = stack.all_images(&id, 10, "").await;
        assert!(images.iter().all(|i| i["valid"] == true && i["label"].is_null()), "{name}");
    }

    // A trainable dataset says so, with none of these findings.
    let trainable = testkit::generate(&work.path().join("trainable"), &DatasetSpec::small(64)).unwrap();
    let (id, status) = import_folder(&stack, work.path(), &trainable.root, "trainable", json!({})).await;
    assert_eq!(status["status"], "completed", "{status}");
    let trainable_dataset = dataset(&stack, &id).await;
    assert_eq!(trainable_dataset["trainable"], true);
    assert!(codes(&trainable_dataset).is_empty(), "{}", trainable_dataset["findings"]);
    // The list shows the same.
    assert_eq!(stack.dataset(&id).await["trainable"], true);
    stack.shutdown().await;
}

/// Writes a pose dataset whose `data.yaml` is `yaml`: the images and labels of testkit's pose
/// dataset (17 keypoints of 3 values, classes cat, dog, bird).
fn pose_dataset(work: &Path, name: &str, yaml: &str) -> std::path::PathBuf {
    let pose = testkit::task_dataset(&work.join(name), "pose", 3, 2, 71).unwrap();
    std::fs::write(pose.root.join("data.yaml"), yaml).unwrap();
    pose.root
}

#[tokio::test(flavor = "multi_thread")]
async fn pose_datasets_show_their_keypoint_settings() {
    let work = tempfile::tempdir().unwrap();
    let stack = TestStack::start(Chaos::default()).await;

    // A generated YAML with keypoint names, and one whose flip_idx is not a permutation.
    let names: Vec<String> = (0..17).map(|k| format!("kp{k}")).collect();
    let yaml = format!(
        "train: images/train\nval: images/val\nnames: [cat, dog, bird]\nkpt_shape: [17, 3]\n\
         flip_idx: [0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15]\n\
         kpt_names:\n  0: [{}]\n  2: [{}]\n",
        names.join(", "),
        names.join(", ")
    );
    let root = pose_dataset(work.path(), "named", &yaml);
    let (id, status) = import_folder(&stack, work.path(), &root, "pose-named", json!({})).await;
    assert_eq!(status["status"], "completed_with_errors", "one corrupt image: {status}");
    let pose = dataset(&stack, &id).await;
    assert_eq!(pose["task"], "pose");
    assert_eq!(pose["kpt_shape"], json!([17, 3]));
    assert_eq!(pose["flip_idx"], json!([0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15]));
    assert_eq!(pose["kpt_names"], json!({"0": names, "2": names}));
    assert_eq!(pose["trainable"], true);

    let repeated = "train: images/train\nval: images/val\nnames: [cat, dog, bird]\nkpt_shape: [17, 3]\n\
                    flip_idx: [0, 0, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15]\n";
    let root = pose_dataset(work.path(), "repeated", repeated);
    let (id, _) = import_folder(&stack, work.path(), &root, "pose-repeated", json!({})).await;
    let pose = dataset(&stack, &id).await;
    assert_eq!(pose["flip_idx"][1], 0, "kept as the YAML has it");
    assert_eq!(pose["kpt_names"], Value::Null);
    let warning = findings(&pose, "flip_idx_not_permutation");
    assert_eq!(warning.len(), 1, "{}", pose["findings"]);
    assert_eq!(warning[0]["file"], "data.yaml");
    let message = warning[0]["message"].as_str().unwrap();
    assert!(message.contains("named more than once: 0") && message.contains("never named: 2"), "{message}");

    // A flip_idx of the wrong length stops Ultralytics' trainer: the import fails saying so.
    let short = "train: images/train\nval: images/val\nnames: [cat, dog, bird]\nkpt_shape: [17, 3]\nflip_idx: [1, 0]\n";
    let root = pose_dataset(work.path(), "short", short);
    let (_, status) = import_folder(&stack, work.path(), &root, "pose-short", json!({})).await;
    assert_eq!(status["status"], "failed", "{status}");
    let said = status["errors"].as_array().unwrap().iter().any(|error| {
        error["code"] == "config_invalid"
            && error["message"].as_str().unwrap().contains("has 2 entries, but `kpt_shape:` declares 17")
    });
    assert!(said, "{status}");

    // Ultralytics' own pose YAMLs, over the same images.
    let Some(datasets) = yds_tests::real_datasets("pose_datasets_show_their_keypoint_settings (real YAMLs)") else {
        stack.shutdown().await;
        return;
    };
    let real = |name: &str| std::fs::read_to_string(datasets.join("ultralytics-yamls").join(name)).unwrap();
    let root = pose_dataset(work.path(), "coco8-pose", &real("coco8-pose.yaml"));
    let (id, _) = import_folder(&stack, work.path(), &root, "coco8-pose", json!({})).await;
    let coco = dataset(&stack, &id).await;
    assert_eq!(coco["kpt_shape"], json!([17, 3]));
    assert_eq!(coco["flip_idx"], json!([0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15]));
    let coco_names = coco["kpt_names"]["0"].as_array().unwrap();
    assert_eq!(coco_names.len(), 17);
    assert_eq!((&coco_names[0], &coco_names[16]), (&json!("nose"), &json!("right_ankle")));
    assert!(findings(&coco, "kpt_names_invalid").is_empty());

    let root = pose_dataset(work.path(), "dog-pose", &real("dog-pose.yaml"));
    let (id, _) = import_folder(&stack, work.path(), &root, "dog-pose", json!({})).await;
    let dog = dataset(&stack, &id).await;
    assert_eq!(dog["kpt_shape"], json!([24, 3]));
    assert_eq!(dog["flip_idx"], Value::Null, "dog-pose.yaml has no flip_idx");
    assert_eq!(dog["kpt_names"]["0"][23], "throat");

    let root = pose_dataset(work.path(), "tiger-pose", &real("tiger-pose.yaml"));
    let (id, _) = import_folder(&stack, work.path(), &root, "tiger-pose", json!({})).await;
    let tiger = dataset(&stack, &id).await;
    assert_eq!(tiger["kpt_shape"], json!([12, 2]));
    assert_eq!(tiger["flip_idx"], json!((0..12).collect::<Vec<_>>()));
    assert_eq!(tiger["kpt_names"]["0"][0], "nose");
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn label_files_come_back_byte_for_byte() {
    let work = tempfile::tempdir().unwrap();
    let stack = TestStack::start(Chaos::default()).await;
    let generated = testkit::generate(&work.path().join("src"), &DatasetSpec::small(81)).unwrap();
    // Labels as editors write them: a byte-order mark, CRLF line ends, trailing spaces and tabs,
    // a blank last line; an empty label file stays in the set (empty_label_every).
    let labelled: Vec<_> = generated.images.iter().filter(|i| i.label_text.is_some()).collect();
    let mut rewritten = Vec::new();
    for (n, image) in labelled.iter().enumerate().take(3) {
        let text = image.label_text.as_deref().unwrap();
        let bytes: Vec<u8> = match n {
            0 => [b"\xef\xbb\xbf".as_slice(), text.replace('\n', "\r\n").as_bytes()].concat(),
            1 => text.replace('\n', "  \t\n").into_bytes(),
            _ => format!("{text}\r\n\r\n").into_bytes(),
        };
        let path = generated
            .root
            .join("labels")
            .join(&image.split)
            .join(image.file_name.replace(".png", ".txt").replace(".jpg", ".txt"));
        std::fs::write(&path, &bytes).unwrap();
        rewritten.push(format!("{}/{}", image.split, image.file_name));
    }
    let (id, status) = import_folder(&stack, work.path(), &generated.root, "labels", json!({})).await;
    assert_eq!(status["status"], "completed", "{status}");
    let images = stack.all_images(&id, 50, "").await;
    assert_eq!(images.len(), generated.images.len());
    let mut checked = 0;
    for image in &images {
        let key = format!("{}/{}", image["split"].as_str().unwrap(), image["file_name"].as_str().unwrap());
        let expected = generated.images.iter().find(|g| format!("{}/{}", g.split, g.file_name) == key).unwrap();
        let url = stack.url(&format!("/datasets/{id}/images/{}/label", image["id"].as_str().unwrap()));
        let response = stack.client.get(&url).header("x-api-key", KEY).send().await.unwrap();
        if expected.label_text.is_none() {
            assert!(image["label"].is_null(), "{key}: {image}");
            let (code, detail) = problem(response).await;
            assert_eq!(code, 404, "{key}");
            assert!(detail.contains("has no label file"), "{detail}");
            continue;
        }
        let on_disk = std::fs::read(
            generated
                .root
                .join("labels")
                .join(&expected.split)
                .join(expected.file_name.replace(".png", ".txt").replace(".jpg", ".txt")),
        )
        .unwrap();
        assert_eq!(response.status(), 200, "{key}");
        assert_eq!(response.headers()["content-type"], "text/plain; charset=utf-8");
        let etag = response.headers()["etag"].to_str().unwrap().to_owned();
        let body = response.bytes().await.unwrap();
        assert_eq!(&body[..], &on_disk[..], "{key}: byte for byte");
        assert_eq!(image["label"]["size_bytes"], on_disk.len(), "{key}");
        let hash = image["label"]["content_hash"].as_str().unwrap();
        assert_eq!(etag, format!("\"{hash}\""), "{key}");
        assert_eq!(hash.len(), 64);
        assert!(hash.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        // Revalidated: 304 without a body. HEAD: the GET's headers.
        let again =
            stack.client.get(&url).header("x-api-key", KEY).header("if-none-match", &etag).send().await.unwrap();
        assert_eq!(again.status(), 304);
        assert!(again.bytes().await.unwrap().is_empty());
        let head = stack.client.head(&url).header("x-api-key", KEY).send().await.unwrap();
        assert_eq!((head.status().as_u16(), head.headers()["etag"].to_str().unwrap()), (200, etag.as_str()));
        checked += 1;
    }
    assert_eq!(checked, labelled.len());
    // The rewritten files were judged as Ultralytics reads them: their boxes count.
    for key in &rewritten {
        let image = images
            .iter()
            .find(|i| format!("{}/{}", i["split"].as_str().unwrap(), i["file_name"].as_str().unwrap()) == *key)
            .unwrap();
        let expected = generated.images.iter().find(|g| format!("{}/{}", g.split, g.file_name) == *key).unwrap();
        assert_eq!(image["annotations"].as_array().unwrap().len(), expected.boxes.len(), "{key}");
        assert_eq!(image["valid"], true, "{key}");
    }
    // An unknown issue code is a 400 listing the codes.
    let (code, bad) = stack.get(&format!("/datasets/{id}/images?issue=blurry")).await;
    assert_eq!(code, 400);
    let detail = bad["detail"].as_str().unwrap();
    assert!(detail.starts_with("`issue=blurry` is not an issue code; the codes are: corrupt_image,"), "{detail}");
    assert!(detail.contains("cross_split_duplicate") && detail.contains("wrong_column_count"), "{detail}");
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn errors_say_what_to_send_instead() {
    let stack = TestStack::start(Chaos::default()).await;
    let url = stack.url("/datasets");
    let (code, detail) = problem(stack.client.get(&url).send().await.unwrap()).await;
    assert_eq!(code, 401);
    assert_eq!(detail, "this request has no `x-api-key` header: send the API key in it (`x-api-key: YOUR_KEY`)");
    let bearer = stack.client.get(&url).header("authorization", format!("Bearer {KEY}")).send().await.unwrap();
    let (code, detail) = problem(bearer).await;
    assert_eq!(code, 401);
    assert!(
        detail.starts_with("this request sent an `Authorization` header, which this API does not read"),
        "{detail}"
    );
    assert!(detail.contains("`x-api-key`"), "{detail}");
    let (code, detail) = problem(stack.client.get(&url).header("x-api-key", "wrong").send().await.unwrap()).await;
    assert_eq!(code, 401);
    assert!(detail.starts_with("the API key in the `x-api-key` header is not a key of this service"), "{detail}");

    // A path where a URL belongs: the local stack suggests its `file://` URL, or an upload.
    for (path, suggested) in [
        ("/data/x.zip", "`file:///data/x.zip`"),
        ("C:\\data\\x.zip", "`file:///C:/data/x.zip`"),
        ("./x", "with an absolute path"),
    ] {
        let (code, body) = stack.import(&json!({"name": "path", "archive_url": path})).await;
        assert_eq!(code, 422, "{path}: {body}");
        let detail = body["detail"].as_str().unwrap();
        assert!(detail.starts_with(&format!("`archive_url`: `{path}` is a file path, not a URL")), "{detail}");
        assert!(detail.contains(suggested), "{path}: {detail}");
        assert!(detail.contains("`POST /uploads`") && detail.contains(&format!("`yds import {path}`")), "{detail}");
    }
    let (code, body) =
        stack.import(&json!({"name": "p", "config_url": "data.yaml", "images_url": "https://h/i.zip", "labels_url": "https://h/l.zip"})).await;
    assert_eq!(code, 422);
    assert!(body["detail"].as_str().unwrap().starts_with("`config_url`: `data.yaml` is a file path"), "{body}");
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dataset_imported_twice_names_the_earlier_copy() {
    let work = tempfile::tempdir().unwrap();
    let stack = TestStack::start(Chaos::default()).await;
    let mut spec = DatasetSpec::small(91);
    spec.splits = vec![("train".into(), 14), ("val".into(), 5)];
    let generated = testkit::generate(&work.path().join("src"), &spec).unwrap();

    let (first, _) = import_folder(&stack, work.path(), &generated.root, "first", json!({"chunk_size": 7})).await;
    // The same archive again without an Idempotency-Key: a new dataset, in other chunks.
    let (second, status) =
        import_folder(&stack, work.path(), &generated.root, "second", json!({"chunk_size": 3})).await;
    assert_eq!(status["status"], "completed", "a copy is no error: {status}");
    assert_ne!(first, second);
    let (first_dataset, second_dataset) = (dataset(&stack, &first).await, dataset(&stack, &second).await);
    let hash = first_dataset["content_hash"].as_str().unwrap();
    assert_eq!(hash.len(), 64);
    assert_eq!(second_dataset["content_hash"], hash, "the same content whatever the chunking");
    assert!(findings(&first_dataset, "duplicate_dataset").is_empty());
    let duplicate = findings(&second_dataset, "duplicate_dataset");
    assert_eq!(duplicate.len(), 1, "{}", second_dataset["findings"]);
    let message = duplicate[0]["message"].as_str().unwrap();
    assert!(message.contains(&format!("dataset `first` (id {first})")), "{message}");
    assert_eq!(second_dataset["statistics"]["issues"]["duplicate_dataset"], 1);
    assert_eq!(second_dataset["trainable"], true, "a copy is as trainable as its original");

    // Another tenant's copy is not a copy of this tenant's dataset.
    let archive = work.path().join("second.zip");
    let body = json!({"name": "theirs", "archive_url": format!("file://{}", archive.display())});
    let response = stack
        .client
        .post(stack.url("/datasets/import"))
        .header("x-api-key", yds_tests::OTHER_KEY)
        .json(&body)
        .send()
        .await
        .unwrap();
    let accepted: Value = response.json().await.unwrap();
    let job = accepted["job_id"].as_str().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let theirs = loop {
        let (_, theirs) = stack
            .get_as(yds_tests::OTHER_KEY, &format!("/datasets/{}", accepted["dataset_id"].as_str().unwrap()))
            .await;
        if theirs["status"] == "ready" {
            break theirs;
        }
        assert!(std::time::Instant::now() < deadline, "job {job} did not finish: {theirs}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(theirs["content_hash"], hash);
    assert!(findings(&theirs, "duplicate_dataset").is_empty(), "{}", theirs["findings"]);

    // Different content: one label file changed.
    let changed = generated.images.iter().find(|i| i.label_text.as_deref().is_some_and(|t| !t.is_empty())).unwrap();
    let label = generated
        .root
        .join("labels")
        .join(&changed.split)
        .join(changed.file_name.replace(".png", ".txt").replace(".jpg", ".txt"));
    let mut text = std::fs::read_to_string(&label).unwrap();
    text.push_str("0 0.5 0.5 0.1 0.1\n");
    std::fs::write(&label, text).unwrap();
    let (third, _) = import_folder(&stack, work.path(), &generated.root, "third", json!({})).await;
    let third_dataset = dataset(&stack, &third).await;
    assert_ne!(third_dataset["content_hash"], hash);
    assert!(findings(&third_dataset, "duplicate_dataset").is_empty(), "{}", third_dataset["findings"]);
    stack.shutdown().await;
}
