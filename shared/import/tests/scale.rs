//! The machinery that lets a 100 GB import run as many short tasks, on a real mongod with tasks
//! delivered in-process: zip planning by range requests (no download), tar staging cut into
//! several passes by the time budget, folder sources listed instead of archived, and the
//! watchdog that re-enqueues lost chunks or records them as dead letters.

use std::time::Duration;

use mongodb::bson::doc;
use serde_json::json;
use testkit::{DatasetSpec, FileServer, GeneratedDataset};
use yds_import::Attempt;
use yds_import::Importer;
use yds_import::TaskBody;
use yds_queue::LocalQueue;
use yds_store::{JobDoc, JobStatus};

fn spec(images: usize) -> DatasetSpec {
    let mut spec = DatasetSpec::small(11);
    spec.splits = vec![("train".into(), images * 3 / 4), ("val".into(), images - images * 3 / 4)];
    spec
}

async fn import(importer: &Importer, url: &str, chunk_size: u32) -> String {
    let body = json!({"name": "scale", "archive_url": url, "chunk_size": chunk_size});
    testkit::inline::start(importer, &body).await.job_id
}

async fn job(importer: &Importer, job_id: &str) -> JobDoc {
    importer.db.jobs.find(job_id).await.unwrap().unwrap()
}

/// The job ended completed with exactly the generated dataset's counts.
async fn assert_exact(importer: &Importer, job_id: &str, generated: &GeneratedDataset) {
    let job = job(importer, job_id).await;
    assert_eq!(job.status, JobStatus::Completed, "errors: {:?}", job.errors);
    let stats = job.result.unwrap().statistics;
    assert_eq!(stats.images, generated.image_count() as u64);
    assert_eq!(stats.annotations, generated.annotation_count() as u64);
    assert_eq!(stats.background_images, generated.background_count() as u64);
    let images = testkit::inline::count(&importer.db, "images", doc! {"dataset_id": &job.dataset_id}).await;
    assert_eq!(images, generated.image_count() as u64);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_zip_over_http_is_planned_from_its_central_directory_and_read_by_range() {
    let dir = tempfile::tempdir().unwrap();
    let (importer, queue) = testkit::inline::test_importer(dir.path()).await;
    let mut big = spec(160);
    big.image_size = (800, 600);
    let generated = testkit::generate(&dir.path().join("src"), &big).unwrap();
    let served = dir.path().join("www");
    std::fs::create_dir_all(&served).unwrap();
    testkit::pack_zip(&dir.path().join("src"), &served.join("d.zip")).unwrap();
    let archive_bytes = std::fs::metadata(served.join("d.zip")).unwrap().len();
    let server = FileServer::start(served).await.unwrap();
    let job_id = import(&importer, &server.url("d.zip"), 40).await;

    // Planning alone reads the central directory and the YAML, not the members.
    for task in testkit::inline::take(&queue) {
        yds_import::deliver(&importer, &task, Attempt::default()).await.unwrap();
    }
    let planned = job(&importer, &job_id).await;
    assert!(planned.planned);
    assert_eq!(planned.chunks_total, 4);
    assert!(
        server.bytes_served() * 4 < archive_bytes,
        "planning downloaded {} of {archive_bytes} bytes",
        server.bytes_served()
    );
    // The chunks read their members by range: about the archive once, in few requests.
    let before = server.requests();
    testkit::inline::drain(&importer, &queue).await.unwrap();
    assert_exact(&importer, &job_id, &generated).await;
    let chunk_requests = server.requests() - before;
    assert!(chunk_requests <= 6 * 4, "{chunk_requests} requests for 4 chunks");
    assert!(server.bytes_served() < archive_bytes * 2, "{} bytes served", server.bytes_served());
}

#[tokio::test(flavor = "multi_thread")]
async fn tar_staging_continues_over_many_passes_when_the_budget_is_spent() {
    for name in ["d.tar", "d.tar.gz"] {
        let dir = tempfile::tempdir().unwrap();
        let (mut importer, queue) = testkit::inline::test_importer(dir.path()).await;
        // No time at all: every pass stages one member and hands over to the next.
        importer.pacing.plan_budget = Duration::ZERO;
        let generated = testkit::generate(&dir.path().join("src"), &spec(20)).unwrap();
        let archive = dir.path().join(name);
        if name.ends_with(".gz") {
            testkit::pack_tar_gz(&dir.path().join("src"), &archive).unwrap();
        } else {
            testkit::pack_tar(&dir.path().join("src"), &archive).unwrap();
        }
        let job_id = import(&importer, &format!("file://{}", archive.display()), 7).await;
        let mut passes = 0;
        let mut duplicated = false;
        loop {
            let tasks = testkit::inline::take(&queue);
            if tasks.is_empty() {
                break;
            }
            for task in tasks {
                if matches!(task, TaskBody::ContinuePlan { .. }) {
                    passes += 1;
                    // At-least-once: one pass delivered twice.
                    if !duplicated {
                        duplicated = true;
                        yds_import::deliver(&importer, &task, Attempt::default()).await.unwrap();
                    }
                }
                yds_import::deliver(&importer, &task, Attempt::default()).await.unwrap();
            }
        }
        // YAML + 20 images + their label files, one per pass.
        let members = 1 + 20 + generated.images.iter().filter(|i| i.label_text.is_some()).count();
        assert!(passes >= members - 1, "{name}: {passes} passes for {members} members");
        assert_exact(&importer, &job_id, &generated).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_folder_source_is_listed_and_read_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let (importer, queue) = testkit::inline::test_importer(dir.path()).await;
    let generated = testkit::generate(&dir.path().join("src"), &spec(30)).unwrap();
    let job_id = import(&importer, &format!("file://{}/", dir.path().join("src").display()), 8).await;
    testkit::inline::drain(&importer, &queue).await.unwrap();
    assert_exact(&importer, &job_id, &generated).await;
    // Nothing was staged: the files were read where they are.
    let staged = importer.objects.list(&format!("temp/{job_id}/"), None, 10).await.unwrap();
    assert!(staged.objects.is_empty(), "{:?}", staged.objects);
}

#[tokio::test(flavor = "multi_thread")]
async fn orphan_labels_are_counted_exactly_across_chunks_and_duplicate_deliveries() {
    let dir = tempfile::tempdir().unwrap();
    let (importer, queue) = testkit::inline::test_importer(dir.path()).await;
    let src = dir.path().join("src");
    let generated = testkit::generate(&src, &spec(40)).unwrap();
    let orphans = [("train", 7), ("val", 2)];
    for (split, n) in orphans {
        let image = generated.images.iter().find(|i| i.split == split).unwrap();
        let labels_dir = generated.label_path(image).parent().unwrap().to_owned();
        std::fs::create_dir_all(&labels_dir).unwrap();
        for i in 0..n {
            std::fs::write(labels_dir.join(format!("ghost_{i}.txt")), "0 0.5 0.5 0.1 0.1\n").unwrap();
        }
    }
    let job_id = import(&importer, &format!("file://{}/", src.display()), 8).await;
    // Every task twice, as Cloud Tasks may: planning marks the same labels used again.
    loop {
        let tasks = testkit::inline::take(&queue);
        if tasks.is_empty() {
            break;
        }
        for task in tasks.iter().chain(&tasks) {
            yds_import::deliver(&importer, task, Attempt::default()).await.unwrap();
        }
    }
    assert_exact(&importer, &job_id, &generated).await;
    let dataset_id = job(&importer, &job_id).await.dataset_id;
    let dataset = importer.db.datasets.find(&dataset_id).await.unwrap().unwrap();
    assert_eq!(dataset.finding_counts.get("orphan_label"), Some(&9), "{:?}", dataset.finding_counts);
    let stats = job(&importer, &job_id).await.result.unwrap().statistics;
    let label_files = generated.images.iter().filter(|i| i.label_text.is_some()).count();
    assert_eq!(stats.labels, label_files as u64, "the ghosts are not any image's labels");
}

/// A chunk reads its images in groups (64 files at most), the next group while the current
/// one is written if the process's memory budget has room right now. With a budget smaller
/// than one group every group waits for the one before; deliveries of the same chunk at once
/// share the budget and still never wait on each other for good. Counts are exact either way.
#[tokio::test(flavor = "multi_thread")]
async fn chunks_of_several_read_groups_import_exactly_whatever_the_memory_budget() {
    for budget in [1, 64 << 20] {
        let dir = tempfile::tempdir().unwrap();
        let (mut importer, queue) = testkit::inline::test_importer(dir.path()).await;
        importer.chunk_memory = yds_storage::MemoryBudget::new(budget);
        let src = dir.path().join("src");
        let generated = testkit::generate(&src, &spec(200)).unwrap();
        testkit::pack_tar_gz(&src, &dir.path().join("d.tar.gz")).unwrap();
        let url = format!("file://{}", dir.path().join("d.tar.gz").display());
        let job_id = import(&importer, &url, 200).await;
        loop {
            let tasks = testkit::inline::take(&queue);
            if tasks.is_empty() {
                break;
            }
            for task in &tasks {
                let deliver = || yds_import::deliver(&importer, task, Attempt::default());
                let twice = futures::future::try_join(deliver(), deliver());
                let delivered = tokio::time::timeout(Duration::from_secs(60), twice).await;
                delivered.expect("deliveries sharing the budget never wait forever").unwrap();
            }
        }
        assert_exact(&importer, &job_id, &generated).await;
        // Images with labels go in one chunk cut while staging, backgrounds in one at the end.
        let chunks = importer.db.chunks.of_job(&job_id).await.unwrap();
        let largest = chunks.iter().map(|chunk| chunk.file_count).max().unwrap();
        assert!(largest > 2 * 64, "a chunk of several read groups: {largest} files");
    }
}

/// An import of `images` generated images packed as `archive` (`.zip` or `.tar.gz`), in chunks
/// of 10, on importer whose 600 ms lease has the watchdog act within seconds.
async fn import_with_short_lease(
    dir: &std::path::Path,
    images: usize,
    archive: &str,
) -> (Importer, LocalQueue, GeneratedDataset, String) {
    let (mut importer, queue) = testkit::inline::test_importer(dir).await;
    importer.pacing.chunk_lease = Duration::from_millis(600);
    let generated = testkit::generate(&dir.join("src"), &spec(images)).unwrap();
    let path = dir.join(archive);
    if archive.ends_with(".zip") {
        testkit::pack_zip(&dir.join("src"), &path).unwrap();
    } else {
        testkit::pack_tar_gz(&dir.join("src"), &path).unwrap();
    }
    let job_id = import(&importer, &format!("file://{}", path.display()), 10).await;
    (importer, queue, generated, job_id)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_watchdog_re_enqueues_a_lost_chunk_then_gives_up_on_one_lost_every_time() {
    let dir = tempfile::tempdir().unwrap();
    let (importer, queue, generated, job_id) = import_with_short_lease(dir.path(), 40, "d.zip").await;

    // Chunk 1's task is lost once; chunk 3's is lost every time.
    let mut lost_once = false;
    let mut lost_chunk_3 = 0;
    run_losing(&importer, &queue, &job_id, |task| match task {
        TaskBody::Chunk { index: 1, .. } if !lost_once => {
            lost_once = true;
            true
        }
        TaskBody::Chunk { index: 3, .. } => {
            lost_chunk_3 += 1;
            true
        }
        _ => false,
    })
    .await;
    let job = job(&importer, &job_id).await;
    assert_eq!(job.status, JobStatus::CompletedWithErrors);
    assert_eq!(lost_chunk_3 as u32, 1 + yds_import::watchdog::MAX_RESENDS);
    let result = job.result.unwrap();
    assert_eq!(result.chunks_failed, 1);
    assert_eq!(result.chunks_done, 3);
    // Chunk 3's files are listed as dead letters; everything else is imported exactly once.
    assert_eq!(result.errors.iter().filter(|e| e.code == "chunk_failed").count(), 10);
    assert_eq!(result.statistics.images, generated.image_count() as u64 - 10);
    let images = testkit::inline::count(&importer.db, "images", doc! {"dataset_id": &job.dataset_id}).await;
    assert_eq!(images, generated.image_count() as u64 - 10);
}

/// Delivers the queue's tasks until the job ends; the tasks `lose` picks are dropped (lost).
async fn run_losing(importer: &Importer, queue: &LocalQueue, job_id: &str, mut lose: impl FnMut(&TaskBody) -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !job(importer, job_id).await.status.is_terminal() {
        assert!(std::time::Instant::now() < deadline, "the job never ended");
        for task in testkit::inline::take(queue) {
            if !lose(&task) {
                yds_import::deliver(importer, &task, Attempt::default()).await.unwrap();
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Delivers the queue's tasks until the job ends, dropping the planning tasks `lose` picks
/// (given how many were dropped before). Returns how many were dropped.
async fn run_losing_planning(importer: &Importer, queue: &LocalQueue, job_id: &str, lose: impl Fn(u32) -> bool) -> u32 {
    let mut lost = 0;
    run_losing(importer, queue, job_id, |task| {
        let dropped = matches!(task, TaskBody::Plan { .. } | TaskBody::ContinuePlan { .. }) && lose(lost);
        lost += u32::from(dropped);
        dropped
    })
    .await;
    lost
}

#[tokio::test(flavor = "multi_thread")]
async fn the_watchdog_sends_a_lost_planning_task_again_and_the_import_is_exact() {
    let dir = tempfile::tempdir().unwrap();
    let (importer, queue, generated, job_id) = import_with_short_lease(dir.path(), 30, "d.tar.gz").await;

    // The first planning task vanishes before any delivery: only the watchdog can notice.
    let lost = run_losing_planning(&importer, &queue, &job_id, |lost| lost == 0).await;
    assert_eq!(lost, 1);
    assert_exact(&importer, &job_id, &generated).await;
    assert_eq!(job(&importer, &job_id).await.plan_resends, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_whose_planning_is_lost_every_time_fails_as_planning_lost() {
    let dir = tempfile::tempdir().unwrap();
    let (importer, queue, _, job_id) = import_with_short_lease(dir.path(), 8, "d.zip").await;

    let lost = run_losing_planning(&importer, &queue, &job_id, |_| true).await;
    assert_eq!(lost, 1 + yds_import::watchdog::MAX_RESENDS, "the first task and every resend were lost");
    let job = job(&importer, &job_id).await;
    assert_eq!(job.status, JobStatus::Failed);
    assert!(job.errors.iter().any(|e| e.code == "planning_lost"), "errors: {:?}", job.errors);
    let dataset = importer.db.datasets.find(&job.dataset_id).await.unwrap().unwrap();
    assert_eq!(dataset.status, yds_store::DatasetStatus::Failed);
}

#[tokio::test(flavor = "multi_thread")]
async fn archives_from_a_server_that_ignores_ranges_are_downloaded_once_and_imported_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let (importer, queue) = testkit::inline::test_importer(dir.path()).await;
    let generated = testkit::generate(&dir.path().join("src"), &spec(40)).unwrap();
    let served = dir.path().join("served");
    std::fs::create_dir_all(&served).unwrap();
    testkit::pack_zip(&dir.path().join("src"), &served.join("d.zip")).unwrap();
    testkit::pack_tar_gz(&dir.path().join("src"), &served.join("d.tar.gz")).unwrap();
    let server = FileServer::start_ignoring_ranges(served.clone()).await.unwrap();

    for name in ["d.zip", "d.tar.gz"] {
        let before = server.bytes_served();
        let job_id = import(&importer, &server.url(name), 10).await;
        testkit::inline::drain(&importer, &queue).await.unwrap();
        assert_exact(&importer, &job_id, &generated).await;
        // One whole download (the size probe may read it once more): never one per chunk.
        let size = std::fs::metadata(served.join(name)).unwrap().len();
        let read = server.bytes_served() - before;
        assert!(read <= 2 * size, "{name}: {read} bytes served for an archive of {size}");
        // The scratch copy is gone once planning ended.
        let leftovers: Vec<_> = std::fs::read_dir(&importer.sources.scratch_dir)
            .map(|d| d.filter_map(Result::ok).map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(leftovers.iter().all(|n| !n.to_string_lossy().contains(&job_id)), "left in scratch: {leftovers:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_name_repeated_in_an_archive_keeps_the_first_copy_and_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let (importer, queue) = testkit::inline::test_importer(dir.path()).await;
    let src = dir.path().join("src");
    let generated = testkit::generate(&src, &spec(12)).unwrap();
    let first = &generated.images[0];
    let repeated = format!("images/{}/{}", first.split, first.file_name);
    let archive = dir.path().join("d.tar");
    let mut builder = tar::Builder::new(std::fs::File::create(&archive).unwrap());
    for rel in testkit::files_under(&src).unwrap() {
        builder.append_path_with_name(src.join(&rel), &rel).unwrap();
    }
    // The same name again, with other bytes: the archive's first copy must win.
    let garbage = b"not the first copy".to_vec();
    let mut header = tar::Header::new_gnu();
    header.set_size(garbage.len() as u64);
    header.set_mode(0o644);
    builder.append_data(&mut header, &repeated, garbage.as_slice()).unwrap();
    builder.finish().unwrap();
    drop(builder);

    let job_id = import(&importer, &format!("file://{}", archive.display()), 5).await;
    testkit::inline::drain(&importer, &queue).await.unwrap();
    let job = job(&importer, &job_id).await;
    assert_eq!(job.status, JobStatus::CompletedWithErrors, "the repeat is reported");
    assert!(job.errors.iter().any(|e| e.code == "duplicate_member" && e.file == repeated), "errors: {:?}", job.errors);
    let stats = job.result.unwrap().statistics;
    assert_eq!(stats.images, generated.image_count() as u64);
    assert_eq!(stats.invalid_images, 0, "the first (valid) copy was imported");
    assert_eq!(stats.annotations, generated.annotation_count() as u64);
}

/// A label file far over the 16 MiB limit is judged from its recorded size, never read: a
/// 1 GiB (sparse) label in a folder source makes its image invalid with `label_too_large`, and
/// every other image imports as usual.
#[tokio::test(flavor = "multi_thread")]
async fn a_huge_label_file_is_judged_from_its_size_without_being_read() {
    let dir = tempfile::tempdir().unwrap();
    let (importer, queue) = testkit::inline::test_importer(dir.path()).await;
    let src = dir.path().join("src");
    let generated = testkit::generate(&src, &spec(12)).unwrap();
    let victim = generated.images.iter().find(|i| i.valid && i.label_text.is_some()).unwrap();
    let huge = std::fs::OpenOptions::new().write(true).truncate(true).open(generated.label_path(victim)).unwrap();
    huge.set_len(1 << 30).unwrap();
    drop(huge);

    let job_id = import(&importer, &format!("file://{}/", src.display()), 5).await;
    testkit::inline::drain(&importer, &queue).await.unwrap();
    let job = job(&importer, &job_id).await;
    let stats = job.result.as_ref().unwrap().statistics.clone();
    assert_eq!(stats.images, generated.image_count() as u64);
    assert_eq!(stats.invalid_images, 1, "only the image with the huge label: {:?}", job.errors);
    let path = format!("{}/{}", victim.split, victim.file_name);
    let image_id = yds_store::images::image_id(&job.dataset_id, &path);
    let image = importer.db.images.find(&job.dataset_id, &image_id).await.unwrap();
    let issue = &image.unwrap().issues[0];
    assert_eq!(issue.code, "label_too_large");
    assert!(issue.message.contains("1073741824 bytes, not read"), "{}", issue.message);
}

/// A planning pass delivered twice can still be staging when the job ends: what it writes
/// after the first clean-up (here, an object put right after the first round that saw the job
/// ended) is cleared by the watchdog's last round, a lease later; then no round follows.
#[tokio::test(flavor = "multi_thread")]
async fn scratch_written_after_the_first_clean_up_is_cleared_by_the_last_round() {
    let dir = tempfile::tempdir().unwrap();
    let (mut importer, queue) = testkit::inline::test_importer(dir.path()).await;
    importer.pacing.chunk_lease = Duration::from_millis(600);
    testkit::generate(&dir.path().join("src"), &spec(8)).unwrap();
    let archive = dir.path().join("d.tar.gz");
    testkit::pack_tar_gz(&dir.path().join("src"), &archive).unwrap();
    let job_id = import(&importer, &format!("file://{}", archive.display()), 4).await;
    let late = format!("{}src/packs/late", yds_storage::keys::job_temp_prefix(&job_id));
    let mut late_written = false;
    // Rounds are due one lease / 3 apart (at least 1 s), the last one a lease after the end.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        let tasks = testkit::inline::take(&queue);
        if tasks.is_empty() {
            if late_written && importer.objects.size(&late).await.unwrap().is_none() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        }
        for task in tasks {
            let ended_round =
                matches!(task, TaskBody::Watch { .. }) && job(&importer, &job_id).await.status.is_terminal();
            yds_import::deliver(&importer, &task, Attempt::default()).await.unwrap();
            if ended_round && !late_written {
                importer.objects.put(&late, bytes::Bytes::from_static(b"late pack")).await.unwrap();
                late_written = true;
            }
        }
    }
    assert!(late_written, "a watchdog round ran after the end");
    assert_eq!(importer.objects.size(&late).await.unwrap(), None, "the last round cleared it");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(testkit::inline::take(&queue).is_empty(), "no round after the last");
}
