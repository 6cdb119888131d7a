//! Chunks cut while a tar is still being staged (`planning::early`), on a real mongod with
//! tasks delivered in-process: whatever the order of the archive's members, however its staging
//! is cut into passes, and with passes delivered twice at once, every image is imported exactly
//! once, and images whose label is staged go to chunks before the staging ends.

use std::path::Path;
use std::time::Duration;

use mongodb::bson::doc;
use serde_json::json;
use testkit::{DatasetSpec, GeneratedDataset, Layout};
use yds_import::Attempt;
use yds_import::Importer;
use yds_import::TaskBody;
use yds_queue::LocalQueue;
use yds_store::{JobDoc, JobStatus};

fn spec(layout: Layout, seed: u64) -> DatasetSpec {
    let mut spec = DatasetSpec::small(seed);
    spec.layout = layout;
    spec.splits = vec![("train".into(), 30), ("val".into(), 10)];
    spec
}

/// Writes a tar of `src` with its members in `order` (paths relative to `src`), plus extra
/// `(path, bytes)` members at the end.
fn write_tar(src: &Path, order: &[String], extra: &[(&str, &[u8])], out: &Path) {
    let mut builder = tar::Builder::new(std::fs::File::create(out).unwrap());
    for rel in order {
        builder.append_path_with_name(src.join(rel), rel).unwrap();
    }
    for (path, bytes) in extra {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        builder.append_data(&mut header, path, *bytes).unwrap();
    }
    builder.finish().unwrap();
}

/// A seeded shuffle (no dependency needed for a test permutation).
fn shuffle(items: &mut [String], seed: u64) {
    let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    for i in (1..items.len()).rev() {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        items.swap(i, (state >> 33) as usize % (i + 1));
    }
}

async fn import(importer: &Importer, archive: &Path) -> String {
    let body = json!({"name": "early", "archive_url": format!("file://{}", archive.display()), "chunk_size": 4});
    testkit::inline::start(importer, &body).await.job_id
}

async fn job(importer: &Importer, job_id: &str) -> JobDoc {
    importer.db.jobs.find(job_id).await.unwrap().unwrap()
}

/// How a run went: chunks processed before the job was indexed, and planning passes.
struct Run {
    chunks_while_staging: usize,
    passes: usize,
}

/// Delivers every task until none is left; each planning pass is delivered twice at once.
async fn run(importer: &Importer, queue: &LocalQueue, job_id: &str) -> Run {
    let mut run = Run { chunks_while_staging: 0, passes: 0 };
    loop {
        let tasks = testkit::inline::take(queue);
        if tasks.is_empty() {
            return run;
        }
        for task in tasks {
            match &task {
                TaskBody::Plan { .. } | TaskBody::ContinuePlan { .. } => {
                    run.passes += 1;
                    let (a, b) = tokio::join!(
                        yds_import::deliver(importer, &task, Attempt::default()),
                        yds_import::deliver(importer, &task, Attempt::default()),
                    );
                    a.unwrap();
                    b.unwrap();
                }
                TaskBody::Chunk { .. } => {
                    if !job(importer, job_id).await.indexed {
                        run.chunks_while_staging += 1;
                    }
                    yds_import::deliver(importer, &task, Attempt::default()).await.unwrap();
                }
                _ => yds_import::deliver(importer, &task, Attempt::default()).await.unwrap(),
            }
        }
    }
}

/// The job completed with exactly the generated counts, each image once.
async fn assert_exact(importer: &Importer, job_id: &str, generated: &GeneratedDataset, case: &str) -> JobDoc {
    let job = job(importer, job_id).await;
    assert_eq!(job.status, JobStatus::Completed, "{case}: errors: {:?}", job.errors);
    let stats = job.result.clone().unwrap().statistics;
    assert_eq!(stats.images, generated.image_count() as u64, "{case}: images counted");
    assert_eq!(stats.annotations, generated.annotation_count() as u64, "{case}: annotations");
    assert_eq!(stats.background_images, generated.background_count() as u64, "{case}: backgrounds");
    let images = testkit::inline::count(&importer.db, "images", doc! {"dataset_id": &job.dataset_id}).await;
    assert_eq!(images, generated.image_count() as u64, "{case}: image documents");
    let files: u64 = generated.images.len() as u64;
    assert_eq!(job.files_total, files, "{case}: every image planned once");
    job
}

fn members_of(src: &Path) -> Vec<String> {
    let mut members = testkit::files_under(src).unwrap();
    members.sort();
    members
}

#[tokio::test(flavor = "multi_thread")]
async fn any_member_order_imports_every_image_once_and_cuts_chunks_while_staging() {
    for (case, layout, seed, budget) in [
        ("sorted, images before labels", Layout::Ultralytics, 0, None),
        ("shuffled, one member per pass", Layout::Ultralytics, 1, Some(Duration::ZERO)),
        ("shuffled roboflow, one member per pass", Layout::Roboflow, 2, Some(Duration::ZERO)),
        ("shuffled roboflow", Layout::Roboflow, 3, None),
        ("labels before images", Layout::Ultralytics, 4, None),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let (mut importer, queue) = testkit::inline::test_importer(dir.path()).await;
        if let Some(budget) = budget {
            importer.pacing.plan_budget = budget;
        }
        let src = dir.path().join("src");
        let generated = testkit::generate(&src, &spec(layout, seed)).unwrap();
        let mut order: Vec<String> = members_of(&src).into_iter().filter(|m| m != "data.yaml").collect();
        match seed {
            0 => {}
            4 => order.sort_by_key(|m| !m.starts_with("labels/")),
            _ => shuffle(&mut order, seed),
        }
        order.insert(0, "data.yaml".into());
        let archive = dir.path().join("d.tar");
        write_tar(&src, &order, &[], &archive);

        let job_id = import(&importer, &archive).await;
        let run = run(&importer, &queue, &job_id).await;
        let job = assert_exact(&importer, &job_id, &generated, case).await;
        let early = job.early.clone().unwrap_or_default();
        // Each split's folder appeared while cutting: the plan at the end knows from the
        // folder alone that a labelled image went early.
        assert_eq!(early.split_folders.len(), 2, "{case}: split folders {:?}", early.split_folders);
        let labelled = generated.images.iter().filter(|i| i.label_text.is_some()).count() as u64;
        // Images with a label file were cut early; backgrounds waited for the end of staging.
        assert_eq!(early.files, labelled, "{case}: early files");
        // The images left for the end fill whole chunks (of 4), not one per batch walked.
        let late_files = job.files_total - early.files;
        assert_eq!(job.chunks_total - u64::from(early.chunks), late_files.div_ceil(4), "{case}: late chunks");
        assert!(late_files > 0, "{case}: backgrounds are planned at the end");
        assert!(run.chunks_while_staging > 0 || budget.is_none(), "{case}: no chunk ran while staging");
        if budget.is_some() {
            assert!(run.passes >= order.len(), "{case}: {} passes", run.passes);
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_yaml_after_the_folders_or_a_split_list_means_no_early_chunks_and_the_same_import() {
    let dir = tempfile::tempdir().unwrap();
    let (importer, queue) = testkit::inline::test_importer(dir.path()).await;
    let src = dir.path().join("src");
    let generated = testkit::generate(&src, &spec(Layout::Ultralytics, 5)).unwrap();
    let mut order = members_of(&src);
    order.retain(|m| m != "data.yaml");
    order.push("data.yaml".into());
    let archive = dir.path().join("d.tar");
    write_tar(&src, &order, &[], &archive);
    let job_id = import(&importer, &archive).await;
    run(&importer, &queue, &job_id).await;
    let job = assert_exact(&importer, &job_id, &generated, "yaml last").await;
    assert_eq!(job.early.unwrap_or_default().chunks, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn images_sharing_a_label_orphans_and_repeats_are_planned_as_without_early_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let (importer, queue) = testkit::inline::test_importer(dir.path()).await;
    let src = dir.path().join("src");
    let generated = testkit::generate(&src, &spec(Layout::Ultralytics, 6)).unwrap();
    let labelled = generated.images.iter().find(|i| i.split == "train" && i.label_text.is_some()).unwrap();
    let stem = labelled.file_name.rsplit_once('.').unwrap().0.to_owned();
    let sibling_ext = if labelled.file_name.ends_with(".png") { "jpg" } else { "png" };
    let sibling = format!("images/train/{stem}.{sibling_ext}");
    std::fs::copy(src.join(format!("images/train/{}", labelled.file_name)), src.join(&sibling)).unwrap();
    let mut order: Vec<String> = members_of(&src).into_iter().filter(|m| m != "data.yaml").collect();
    shuffle(&mut order, 6);
    order.insert(0, "data.yaml".into());
    let first_image = order.iter().find(|m| m.starts_with("images/")).unwrap().clone();
    let archive = dir.path().join("d.tar");
    let orphan = b"0 0.5 0.5 0.1 0.1\n".as_slice();
    let garbage = b"not the first copy".as_slice();
    write_tar(&src, &order, &[("labels/train/orphan.txt", orphan), (&first_image, garbage)], &archive);

    let job_id = import(&importer, &archive).await;
    run(&importer, &queue, &job_id).await;
    let job = job(&importer, &job_id).await;
    assert_eq!(job.status, JobStatus::CompletedWithErrors, "the repeat is reported: {:?}", job.errors);
    let stats = job.result.clone().unwrap().statistics;
    // The sibling image shares the label file of `labelled` (a mislabelled file name), as the
    // trainer would read it.
    let expected_boxes = generated.annotation_count() + labelled.boxes.len();
    assert_eq!(stats.images, generated.image_count() as u64 + 1);
    assert_eq!(stats.invalid_images, 0, "the first copy of the repeated name was imported");
    assert_eq!(stats.annotations, expected_boxes as u64);
    assert_eq!(job.files_total, generated.image_count() as u64 + 1);
    assert!(job.early.unwrap_or_default().chunks > 0);
    let dataset = importer.db.datasets.find(&job.dataset_id).await.unwrap().unwrap();
    assert_eq!(dataset.finding_counts.get("orphan_label"), Some(&1), "findings: {:?}", dataset.finding_counts);
}

#[tokio::test(flavor = "multi_thread")]
async fn cutting_that_stops_half_way_leaves_every_later_pair_to_the_plan_at_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let (importer, queue) = testkit::inline::test_importer(dir.path()).await;
    let src = dir.path().join("src");
    let generated = testkit::generate(&src, &spec(Layout::Ultralytics, 7)).unwrap();
    // Text files in more folders than early cutting tracks, staged between two label files of
    // `train`: cutting stops there, after the splits' folders were noted.
    let mut notes = Vec::new();
    for i in 0..=4096 {
        let note = format!("notes/{i:04}/readme.txt");
        std::fs::create_dir_all(src.join(format!("notes/{i:04}"))).unwrap();
        std::fs::write(src.join(&note), b"not a label\n").unwrap();
        notes.push(note);
    }
    let mut order: Vec<String> = members_of(&src).into_iter().filter(|m| m != "data.yaml").collect();
    order.retain(|m| !m.starts_with("notes/"));
    let half = order.iter().position(|m| m.starts_with("labels/train/")).unwrap() + 5;
    order.splice(half..half, notes);
    order.insert(0, "data.yaml".into());
    let archive = dir.path().join("d.tar");
    write_tar(&src, &order, &[], &archive);

    let job_id = import(&importer, &archive).await;
    run(&importer, &queue, &job_id).await;
    let job = assert_exact(&importer, &job_id, &generated, "stopped half-way").await;
    let early = job.early.clone().unwrap_or_default();
    assert!(early.stopped_at.is_some(), "cutting stopped: {early:?}");
    assert_eq!(early.split_folders.len(), 2, "{:?}", early.split_folders);
    let labelled = generated.images.iter().filter(|i| i.label_text.is_some()).count() as u64;
    assert!(early.files > 0 && early.files < labelled, "{} of {labelled} labelled images went early", early.files);
}
