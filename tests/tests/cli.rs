//! The `yds` command-line client end to end: the built binary run as a user runs it, against the
//! local stack. A folder imported through a connection dropped mid-upload, its summary, every
//! listing command, pulls (again, repaired, COCO), renames, deletes, a failed import's exit
//! status, and the configuration and error messages.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;

use serde_json::Value;
use testkit::{DatasetSpec, Defects, GeneratedDataset};
use yds_tests::cli::{table_row, tree, CuttingProxy, Yds};
use yds_tests::{Chaos, TestStack, KEY};

/// Per split: images, instances, background images, invalid images, as the generator wrote them.
fn split_counts(generated: &GeneratedDataset) -> BTreeMap<String, [usize; 4]> {
    let mut counts: BTreeMap<String, [usize; 4]> = BTreeMap::new();
    for image in &generated.images {
        let c = counts.entry(image.split.clone()).or_default();
        c[0] += 1;
        if image.valid {
            c[1] += image.boxes.len();
            c[2] += usize::from(image.boxes.is_empty());
        } else {
            c[3] += 1;
        }
    }
    counts
}

fn strings(cells: &[usize]) -> Vec<String> {
    cells.iter().map(|c| c.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_folder_imports_through_a_dropped_connection_and_pulls_back_byte_for_byte() {
    let work = tempfile::tempdir().unwrap();
    let mut spec = DatasetSpec::small(11);
    spec.splits = vec![("train".into(), 20), ("val".into(), 6)];
    spec.image_size = (640, 480);
    spec.png_every = 2;
    spec.defects = Defects { corrupt_images: 1, bad_label_lines: 0, tiny_images: 0 };
    let generated = testkit::generate(&work.path().join("birds"), &spec).unwrap();
    let root = generated.root.to_str().unwrap().to_owned();
    let size: u64 = tree(&generated.root).values().map(|b| b.len() as u64).sum();
    assert!(size > 3 * 256 * 1024, "the folder spans several 256 KiB pieces: {size} bytes");

    let stack = TestStack::start(Chaos::default()).await;
    // The second PUT (the second piece) loses its connection after 100 kB.
    let proxy = CuttingProxy::start(&stack.stack.base_url, 2, 100_000).await;
    let yds = Yds::new(&proxy.url, KEY);
    let run = yds.ok(&["import", &root, "--piece-size", "256K"]).await;
    assert!(proxy.cut.load(std::sync::atomic::Ordering::SeqCst), "the proxy cut the upload");
    assert!(run.stderr.contains("upload interrupted"), "{}", run.both());
    let puts = proxy.puts.load(std::sync::atomic::Ordering::SeqCst);
    let pieces = (size as usize).div_ceil(256 * 1024);
    assert!(puts >= pieces + 2, "every piece, the cut one again and a status query: {puts} PUTs for ~{pieces} pieces");

    // The summary: the dataset named after the folder, its splits and classes as written.
    assert!(run.stdout.starts_with("birds ("), "{}", run.both());
    for (split, counts) in split_counts(&generated) {
        let mut expected = vec![split.clone()];
        expected.extend(strings(&counts));
        assert_eq!(table_row(&run.stdout, &split), Some(expected), "{}", run.both());
    }
    for (id, name) in generated.classes.iter().enumerate() {
        let instances: usize = generated
            .images
            .iter()
            .filter(|i| i.valid)
            .map(|i| i.boxes.iter().filter(|(c, _)| *c == id as u32).count())
            .sum();
        let row = table_row(&run.stdout, &id.to_string()).unwrap_or_else(|| panic!("class {id}: {}", run.both()));
        assert_eq!(row[..3], [id.to_string(), name.clone(), instances.to_string()], "{}", run.both());
    }
    assert_eq!(table_row(&run.stdout, "corrupt_image").map(|r| r[1].clone()), Some("1".into()), "{}", run.both());
    // The corrupt image makes it `completed_with_errors`, not a failure.
    assert!(run.stdout.contains(" completed_with_errors in "), "{}", run.both());

    // Listing and showing, by name.
    let listed = yds.json(&["ls", "--json"]).await;
    let dataset_id = listed[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(listed[0]["name"], "birds");
    let text = yds.ok(&["ls", "--name", "bi"]).await.stdout;
    assert_eq!(table_row(&text, &dataset_id).map(|r| r[1].clone()), Some("birds".into()), "{text}");
    assert_eq!(yds.ok(&["ls", "--name", "nothing-like-it"]).await.stdout, "");
    let shown = yds.json(&["show", "birds", "--json"]).await;
    assert_eq!(shown["id"], dataset_id.as_str());
    let text = yds.ok(&["show", "birds"]).await.stdout;
    assert!(text.contains("trainable") && table_row(&text, "train").is_some(), "{text}");

    // Images, filtered; a class by name.
    let invalid = yds.json(&["images", "birds", "--invalid", "--json"]).await;
    assert_eq!(invalid.as_array().unwrap().len(), 1);
    assert_eq!(invalid[0]["valid"], false);
    let cars = yds.json(&["images", &dataset_id, "--class", "car", "--limit", "1000", "--json"]).await;
    let expected_cars = generated.images.iter().filter(|i| i.valid && i.boxes.iter().any(|(c, _)| *c == 1)).count();
    assert_eq!(cars.as_array().unwrap().len(), expected_cars);
    let val = yds.json(&["images", "birds", "--split", "val", "--json"]).await;
    assert_eq!(val.as_array().unwrap().len(), 6);
    let text = yds.ok(&["images", "birds", "--limit", "3"]).await;
    assert_eq!(text.stdout.lines().count(), 4, "a header and 3 rows: {}", text.both());
    assert!(text.stderr.contains("--limit shows more"), "{}", text.both());

    // Jobs and status.
    let jobs = yds.json(&["jobs", "--dataset", "birds", "--json"]).await;
    assert_eq!(jobs.as_array().unwrap().len(), 1, "{jobs}");
    let job_id = jobs[0]["job_id"].as_str().unwrap().to_owned();
    assert_eq!(jobs[0]["status"], "completed_with_errors");
    let status = yds.json(&["status", &job_id, "--json"]).await;
    assert_eq!(status["counts"]["images"], 26);
    let text = yds.ok(&["status", &job_id, "--watch"]).await.stdout;
    assert!(text.starts_with(&format!("job {job_id} · import · completed_with_errors\n")), "{text}");

    // Pull: the tree as imported, byte for byte, and a data.yaml Ultralytics reads.
    let out = work.path().join("pulled");
    let run = yds.ok(&["pull", "birds", out.to_str().unwrap()]).await;
    assert!(run.stdout.starts_with("pulled 26 images (26 downloaded, 0 already there"), "{}", run.both());
    let original = tree(&generated.root);
    let pulled = tree(&out);
    for (rel, bytes) in &original {
        if rel != "data.yaml" {
            assert_eq!(pulled.get(rel), Some(bytes), "{rel} pulled as imported");
        }
    }
    let extra: Vec<&String> = pulled.keys().filter(|k| !original.contains_key(*k)).collect();
    assert!(extra.is_empty(), "pulled files the dataset does not have: {extra:?}");
    let yaml = String::from_utf8(pulled["data.yaml"].clone()).unwrap();
    assert!(yaml.contains("\ntrain: images/train\nval: images/val\nnc: 3\nnames:\n  0: \"person\"\n"), "{yaml}");

    // Again: nothing to download. Then a damaged image and a lost label are mended, only them.
    let run = yds.ok(&["pull", "birds", out.to_str().unwrap()]).await;
    assert!(run.stdout.starts_with("pulled 26 images (0 downloaded, 26 already there"), "{}", run.both());
    let labels = original.keys().filter(|k| k.starts_with("labels/")).count();
    assert!(run.stdout.contains(&format!("and {labels} label files (0 downloaded)")), "{}", run.both());
    let image = original.keys().find(|k| k.starts_with("images/val/")).unwrap();
    std::fs::write(out.join(image), b"damaged").unwrap();
    let label = original.keys().find(|k| k.starts_with("labels/train/")).unwrap();
    std::fs::remove_file(out.join(label)).unwrap();
    let run = yds.ok(&["pull", &dataset_id, out.to_str().unwrap(), "--jobs", "2"]).await;
    assert!(run.stdout.starts_with("pulled 26 images (1 downloaded, 25 already there"), "{}", run.both());
    assert!(run.stdout.contains("label files (1 downloaded)"), "{}", run.both());
    assert_eq!(tree(&out), pulled);

    // Only the valid images; COCO instead of labels.
    let valid_only = work.path().join("valid-only");
    yds.ok(&["pull", "birds", valid_only.to_str().unwrap(), "--valid-only"]).await;
    assert_eq!(testkit::files_under(&valid_only.join("images")).unwrap().len(), 25);
    let coco_dir = work.path().join("coco");
    let run = yds.ok(&["pull", "birds", coco_dir.to_str().unwrap(), "--format", "coco", "--split", "train"]).await;
    let coco: Value =
        serde_json::from_slice(&std::fs::read(coco_dir.join("annotations/instances_train.json")).unwrap()).unwrap();
    let train = yds.json(&["images", "birds", "--split", "train", "--limit", "1000", "--json"]).await;
    let train = train.as_array().unwrap();
    let valid: Vec<&Value> = train.iter().filter(|i| i["valid"] == true).collect();
    let instances: usize = valid.iter().map(|i| i["annotations"].as_array().unwrap().len()).sum();
    assert_eq!(coco["images"].as_array().unwrap().len(), valid.len(), "{}", run.both());
    assert!(run.stdout.contains("1 invalid images are in images/ but not in the COCO files"), "{}", run.both());
    assert_eq!(coco["annotations"].as_array().unwrap().len(), instances);
    assert_eq!(coco["categories"][1]["name"], "car");
    assert!(!coco_dir.join("labels").exists() && !coco_dir.join("data.yaml").exists());
    assert!(!coco_dir.join("annotations/instances_val.json").exists(), "only the split asked for");
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn datasets_are_managed_by_name_and_a_failed_import_exits_non_zero() {
    let work = tempfile::tempdir().unwrap();
    let generated = testkit::generate(&work.path().join("set"), &DatasetSpec::small(5)).unwrap();
    let root = generated.root.to_str().unwrap().to_owned();
    // A delete waits a chunk lease after the dataset's import ended when that import failed
    // (its late writers are not counted): 4 s here, not the default 15 minutes.
    let pacing = [
        ("YDS_CHUNK_LEASE_SECS", "4"),
        ("YDS_PLAN_BUDGET_SECS", "2"),
        ("YDS_DELETE_BUDGET_SECS", "1"),
        ("YDS_DELETE_SETTLE_SECS", "1"),
    ];
    let stack = TestStack::start_with_env(
        Chaos::default(),
        pacing.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
    )
    .await;
    let yds = Yds::new(&stack.stack.base_url, KEY);

    // Two imports of the same name, detached: each prints its job id alone.
    let mut jobs = Vec::new();
    for _ in 0..2 {
        let run = yds.ok(&["import", &root, "--name", "twin", "--detach"]).await;
        let job_id = run.stdout.trim().to_owned();
        assert!(!job_id.is_empty() && !job_id.contains(char::is_whitespace), "{}", run.both());
        assert!(run.stderr.contains(&format!("yds status {job_id} --watch")), "{}", run.both());
        jobs.push(job_id);
    }
    for job_id in &jobs {
        let run = yds.ok(&["status", job_id, "--watch", "--json"]).await;
        let job: Value = serde_json::from_str(&run.stdout).unwrap();
        assert_eq!(job["status"], "completed");
    }
    let listed = yds.json(&["ls", "--json"]).await;
    let ids: Vec<String> = listed.as_array().unwrap().iter().map(|d| d["id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(ids.len(), 2);

    // An ambiguous name is refused with the candidates; an id always works.
    let run = yds.run(&["show", "twin"]).await;
    assert_eq!(run.code, 1, "{}", run.both());
    assert!(run.stderr.contains("2 datasets are named `twin`"), "{}", run.both());
    assert!(ids.iter().all(|id| run.stderr.contains(id.as_str())), "{}", run.both());
    let run = yds.ok(&["rename", &ids[1], "solo"]).await;
    assert_eq!(run.stdout, format!("renamed {}: twin → solo\n", ids[1]));
    assert_eq!(yds.json(&["show", "twin", "--json"]).await["id"], ids[0].as_str());
    assert_eq!(yds.json(&["show", "solo", "--json"]).await["id"], ids[1].as_str());

    // Filters the server refuses say what they take.
    let run = yds.run(&["images", "solo", "--split", "nope"]).await;
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("(HTTP 400)") && run.stderr.contains("train"), "{}", run.both());
    let run = yds.run(&["images", "solo", "--class", "unicorn"]).await;
    assert!(run.stderr.contains("no class `unicorn`; its classes: 0 person, 1 car, 2 dog"), "{}", run.both());

    // A failed import: its summary, its reason, exit status 3.
    let broken = work.path().join("broken.zip");
    std::fs::write(&broken, vec![7u8; 5000]).unwrap();
    let run = yds.run(&["import", broken.to_str().unwrap()]).await;
    assert_eq!(run.code, 3, "{}", run.both());
    assert!(run.stdout.starts_with("broken (") && run.stdout.contains(" failed"), "{}", run.both());
    assert!(run.stderr.contains("import failed: "), "{}", run.both());
    let failed = yds.json(&["jobs", "--status", "failed", "--json"]).await;
    assert_eq!(failed.as_array().unwrap().len(), 1, "{failed}");

    // A URL goes to the server as it is (`file://` under the local stack's URL policy).
    let zip = work.path().join("packed.zip");
    testkit::pack_zip(&generated.root, &zip).unwrap();
    let run = yds.ok(&["import", &format!("file://{}", zip.display())]).await;
    assert!(run.stdout.starts_with("packed (") && !run.stderr.contains("uploading"), "{}", run.both());
    assert_eq!(yds.json(&["jobs", "--json"]).await.as_array().unwrap().len(), 4);

    // Deleting: refused without --yes when nobody can answer; then gone, with its job listed.
    let run = yds.run(&["rm", "solo"]).await;
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("--yes is missing"), "{}", run.both());
    let run = yds.ok(&["rm", "solo", "--yes", "--wait"]).await;
    assert_eq!(run.stdout, format!("deleted solo ({})\n", ids[1]));
    for gone in ["solo", ids[1].as_str()] {
        let run = yds.run(&["show", gone]).await;
        assert_eq!(run.code, 1);
        assert!(run.stderr.contains(&format!("no dataset has the id or the name `{gone}`")), "{}", run.both());
    }
    let jobs = yds.json(&["jobs", "--dataset", &ids[1], "--json"]).await;
    assert_eq!(jobs[0]["kind"], "delete", "{jobs}");
    assert_eq!(jobs[0]["status"], "completed", "{jobs}");
    assert_eq!(yds.json(&["ls", "--json"]).await.as_array().unwrap().len(), 3, "twin, broken and packed stay");
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn configuration_and_errors_are_explained() {
    let stack = TestStack::start(Chaos::default()).await;
    let url = stack.stack.base_url.clone();
    let yds = Yds::new(&url, KEY);

    let run = yds.run_with(&["ls"], &[]).await;
    assert_eq!(
        (run.code, run.stderr.as_str()),
        (1, "error: no API URL configured: set YDS_URL, or run `yds login --url URL`\n")
    );
    let run = yds.run_with(&["ls"], &[("YDS_URL", Some(&url))]).await;
    assert!(run.stderr.starts_with("error: no API key configured"), "{}", run.both());
    let run = yds.run_with(&["ls"], &[("YDS_URL", Some("http://127.0.0.1:1")), ("YDS_API_KEY", Some(KEY))]).await;
    assert_eq!(run.stderr, "error: cannot reach http://127.0.0.1:1: connection refused (is the server running?)\n");
    let run = yds.run_with(&["ls"], &[("YDS_URL", Some(&url)), ("YDS_API_KEY", Some("wrong"))]).await;
    assert_eq!(run.code, 1);
    assert!(run.stderr.starts_with("error: Unauthorized (HTTP 401): "), "{}", run.both());
    assert!(run.stderr.contains("x-api-key") && run.stderr.contains("hint: check YDS_API_KEY"), "{}", run.both());
    assert!(!run.stderr.contains("Error {") && !run.stderr.contains("reqwest"), "no debug dump: {}", run.both());

    // `login` checks before it keeps anything.
    let run = yds.run_with(&["login", "--url", &url, "--api-key", "wrong"], &[]).await;
    assert_eq!(run.code, 1, "{}", run.both());
    assert!(!yds.config_file().exists());
    let run = yds.run_with(&["login", "--url", &url], &[]).await;
    assert!(run.stderr.contains("--api-key is missing, and stdin is not a terminal"), "{}", run.both());
    let run = yds.run_with(&["login", "--url", &url, "--api-key", KEY], &[]).await;
    assert_eq!(run.code, 0, "{}", run.both());
    let mode = std::fs::metadata(yds.config_file()).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let text = std::fs::read_to_string(yds.config_file()).unwrap();
    assert!(text.contains(&format!("url = \"{url}\"")) && text.contains(&format!("api_key = \"{KEY}\"")), "{text}");
    // The file now configures every command; a variable still wins over it.
    let run = yds.run_with(&["ls", "--json"], &[]).await;
    assert_eq!((run.code, run.stdout.as_str()), (0, "[]\n"), "{}", run.both());
    let run = yds.run_with(&["ls"], &[("YDS_API_KEY", Some("wrong"))]).await;
    assert!(run.stderr.contains("HTTP 401"), "{}", run.both());

    let run = yds.run(&["show", "nope"]).await;
    assert_eq!(run.stderr, "error: no dataset has the id or the name `nope` (see `yds ls`)\n");
    let run = yds.run(&["status", "nope"]).await;
    assert!(
        run.stderr.starts_with("error: Not Found (HTTP 404)") || run.stderr.contains("(HTTP 404)"),
        "{}",
        run.both()
    );
    let run = yds.run(&["import", "no/such/folder"]).await;
    assert!(run.stderr.contains("no such file or folder: no/such/folder"), "{}", run.both());
    let run = yds.run(&["import", "--piece-size", "100K", "x"]).await;
    assert_eq!(run.code, 2, "bad usage: {}", run.both());
    stack.shutdown().await;
}
