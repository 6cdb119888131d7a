//! Deleting a dataset on a real mongod, tasks delivered in-process: many short steps leave
//! nothing behind (no image document, object, import record or scratch object, no dataset
//! record), exactly under duplicate and crashed deliveries; an importing dataset's import is
//! cancelled, and what its in-flight chunks write late is swept before the job ends; lost steps
//! are sent again, and a deletion lost every time fails and can be started again.

use std::time::{Duration, Instant};

use mongodb::bson::doc;
use serde_json::json;
use testkit::{DatasetSpec, GeneratedDataset};
use yds_import::deletion::{self, DeleteAccepted};
use yds_import::{Attempt, ImportError, Importer, TaskBody};
use yds_queue::LocalQueue;
use yds_storage::keys;
use yds_store::images::image_id;
use yds_store::{DeleteJobDoc, DeletePhase, JobKind, JobStatus};

const TENANT: &str = "default";

/// An importer whose deletions go one small batch a step, and whose lease is `lease`.
async fn importer(dir: &std::path::Path, lease: Duration) -> (Importer, LocalQueue) {
    let (mut importer, queue) = testkit::inline::test_importer(dir).await;
    importer.pacing.chunk_lease = lease;
    importer.pacing.delete_batch = 4;
    importer.pacing.delete_budget = Duration::ZERO;
    importer.pacing.delete_settle = Duration::ZERO;
    (importer, queue)
}

/// A generated dataset of `images` images packed as a tar.gz (its import stages members in
/// scratch storage), and its import started in chunks of `chunk_size`: the job and dataset ids.
async fn start_import(
    importer: &Importer,
    dir: &std::path::Path,
    images: usize,
    chunk_size: u32,
) -> (GeneratedDataset, String, String) {
    let mut spec = DatasetSpec::small(23);
    spec.splits = vec![("train".into(), images * 3 / 4), ("val".into(), images - images * 3 / 4)];
    let generated = testkit::generate(&dir.join("src"), &spec).unwrap();
    let archive = dir.join("d.tar.gz");
    testkit::pack_tar_gz(&dir.join("src"), &archive).unwrap();
    let body =
        json!({"name": "doomed", "archive_url": format!("file://{}", archive.display()), "chunk_size": chunk_size});
    let accepted = testkit::inline::start(importer, &body).await;
    (generated, accepted.job_id, accepted.dataset_id)
}

/// Delivers due tasks (each through `deliver`, which may drop, repeat or break them) until
/// `done` says so; waits for delayed tasks.
async fn run_until<F, D>(importer: &Importer, queue: &LocalQueue, mut deliver: D, done: F)
where
    D: AsyncFnMut(&Importer, TaskBody),
    F: AsyncFn(&Importer) -> bool,
{
    let deadline = Instant::now() + Duration::from_secs(90);
    while !done(importer).await {
        assert!(Instant::now() < deadline, "never done");
        for task in testkit::inline::take(queue) {
            deliver(importer, task).await;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn plainly(importer: &Importer, task: TaskBody) {
    yds_import::deliver(importer, &task, Attempt::default()).await.unwrap();
}

async fn delete_job(importer: &Importer, job_id: &str) -> DeleteJobDoc {
    importer.db.jobs.find_delete(job_id).await.unwrap().expect("the delete job")
}

async fn import_ended(importer: &Importer, job_id: &str) -> bool {
    importer.db.jobs.find(job_id).await.unwrap().unwrap().status.is_terminal()
}

/// Imports the dataset to its end.
async fn import_whole(importer: &Importer, queue: &LocalQueue, job_id: &str) {
    run_until(importer, queue, plainly, async |importer| import_ended(importer, job_id).await).await;
    let job = importer.db.jobs.find(job_id).await.unwrap().unwrap();
    assert_eq!(job.status, JobStatus::Completed, "{:?}", job.errors);
}

/// Starts the deletion as `DELETE /datasets/{id}` does.
async fn begin(importer: &Importer, dataset_id: &str) -> DeleteAccepted {
    deletion::begin(importer, TENANT, dataset_id).await.unwrap().expect("the tenant's dataset")
}

/// Objects under `prefix`.
async fn objects(importer: &Importer, prefix: &str) -> usize {
    importer.objects.list(prefix, None, 10_000).await.unwrap().objects.len()
}

/// Nothing of the dataset or its import is left but the two job records; the delete job ended
/// completed with every image it counted deleted.
async fn assert_gone(importer: &Importer, delete_job_id: &str, dataset_id: &str, import_job_id: &str, images: u64) {
    let db = &importer.db;
    let job = delete_job(importer, delete_job_id).await;
    assert_eq!(job.status, JobStatus::Completed, "{:?}", job.errors);
    assert_eq!((job.files_total, job.files_done), (Some(images), images), "exact progress");
    assert_eq!(job.phase, DeletePhase::Finalizing);
    assert!(db.datasets.find(dataset_id).await.unwrap().is_none(), "the dataset's record");
    assert_eq!(testkit::inline::count(db, "images", doc! {"dataset_id": dataset_id}).await, 0, "image documents");
    assert_eq!(objects(importer, &keys::dataset_prefix(dataset_id)).await, 0, "objects under datasets/{{id}}/");
    assert_eq!(objects(importer, &keys::job_temp_prefix(import_job_id)).await, 0, "the import's scratch");
    for collection in ["import_members", "import_used_labels", "import_chunk_files", "import_plan_states"] {
        let left = testkit::inline::count(db, collection, testkit::inline::of_job(import_job_id)).await;
        assert_eq!(left, 0, "{collection}");
    }
    assert_eq!(testkit::inline::count(db, "import_chunks", doc! {"job_id": import_job_id}).await, 0, "chunks");
    assert!(db.jobs.find(import_job_id).await.unwrap().is_some(), "the import's record stays, as history");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deleted_dataset_is_missing_at_once_then_gone_exactly_after_many_short_steps() {
    let dir = tempfile::tempdir().unwrap();
    let (importer, queue) = importer(dir.path(), Duration::from_millis(600)).await;
    let (generated, import_id, dataset_id) = start_import(&importer, dir.path(), 30, 10).await;
    import_whole(&importer, &queue, &import_id).await;
    assert!(objects(&importer, &keys::dataset_prefix(&dataset_id)).await >= 30);

    assert!(deletion::begin(&importer, "someone-else", &dataset_id).await.unwrap().is_none(), "another tenant's");
    let accepted = begin(&importer, &dataset_id).await;
    assert_eq!(
        (accepted.status, accepted.kind, accepted.dataset_id.as_str()),
        (JobStatus::Queued, JobKind::Delete, dataset_id.as_str())
    );
    assert!(importer.db.datasets.find_for_tenant(TENANT, &dataset_id).await.unwrap().is_none(), "missing at once");
    let dataset = importer.db.datasets.find(&dataset_id).await.unwrap().unwrap();
    assert_eq!(dataset.last_job_id(), accepted.job_id, "the newest job");
    assert_eq!(begin(&importer, &dataset_id).await.job_id, accepted.job_id, "a repeat gets the same job");
    assert_eq!(delete_job(&importer, &accepted.job_id).await.phase, DeletePhase::DeletingImages, "nothing to cancel");

    let mut steps = 0;
    let count_steps = async |importer: &Importer, task: TaskBody| {
        steps += u32::from(matches!(task, TaskBody::DeleteStep { .. }));
        plainly(importer, task).await
    };
    let ended = async |importer: &Importer| delete_job(importer, &accepted.job_id).await.status.is_terminal();
    run_until(&importer, &queue, count_steps, ended).await;
    // 4 records or objects a step: 30 images, 60 objects and the import's chunk records.
    assert!(steps > 20, "{steps} steps");
    assert_gone(&importer, &accepted.job_id, &dataset_id, &import_id, generated.image_count() as u64).await;
    assert!(deletion::begin(&importer, TENANT, &dataset_id).await.unwrap().is_none(), "deleted: 404");
}

#[tokio::test(flavor = "multi_thread")]
async fn duplicated_and_crashed_steps_delete_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let (importer, queue) = importer(dir.path(), Duration::from_millis(600)).await;
    let (generated, import_id, dataset_id) = start_import(&importer, dir.path(), 24, 8).await;
    import_whole(&importer, &queue, &import_id).await;
    let accepted = begin(&importer, &dataset_id).await;

    let mut crashes = 0;
    // Every step: an attempt that crashes after its first batch, then three at once.
    let faulty = async |importer: &Importer, task: TaskBody| {
        if !matches!(task, TaskBody::DeleteStep { .. }) {
            return plainly(importer, task).await;
        }
        match yds_import::deliver(importer, &task, Attempt { is_last: false, crash: true }).await {
            Err(ImportError::InjectedCrash) => crashes += 1,
            other => other.unwrap(),
        }
        // Three at once: one often finds records another deletes before it does.
        let again = || yds_import::deliver(importer, &task, Attempt::default());
        let (a, b, c) = tokio::join!(again(), again(), again());
        for delivered in [a, b, c] {
            delivered.unwrap();
        }
    };
    let ended = async |importer: &Importer| delete_job(importer, &accepted.job_id).await.status.is_terminal();
    run_until(&importer, &queue, faulty, ended).await;
    assert!(crashes > 5, "{crashes} crashed attempts");
    assert_gone(&importer, &accepted.job_id, &dataset_id, &import_id, generated.image_count() as u64).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn deleting_an_importing_dataset_cancels_the_import_and_sweeps_what_its_chunks_write_late() {
    let dir = tempfile::tempdir().unwrap();
    let lease = Duration::from_secs(5);
    let (importer, queue) = importer(dir.path(), lease).await;
    let (_, import_id, dataset_id) = start_import(&importer, dir.path(), 40, 5).await;
    // Planning, and one chunk imported: the import is under way.
    let planned = async |importer: &Importer| importer.db.jobs.find(&import_id).await.unwrap().unwrap().planned;
    let mut chunks = Vec::new();
    let hold_chunks = async |importer: &Importer, task: TaskBody| match task {
        TaskBody::Chunk { .. } => chunks.push(task),
        other => plainly(importer, other).await,
    };
    run_until(&importer, &queue, hold_chunks, planned).await;
    // The chunks planning sent last.
    for task in testkit::inline::take(&queue) {
        match task {
            TaskBody::Chunk { .. } => chunks.push(task),
            other => plainly(&importer, other).await,
        }
    }
    assert!(chunks.len() > 2, "{} chunks", chunks.len());
    plainly(&importer, chunks.remove(0)).await;
    let imported = testkit::inline::count(&importer.db, "images", doc! {"dataset_id": &dataset_id}).await;
    assert!(imported > 0, "a chunk was imported");

    let accepted = begin(&importer, &dataset_id).await;
    let import = importer.db.jobs.find(&import_id).await.unwrap().unwrap();
    assert_eq!(import.status, JobStatus::Failed, "cancelled at once");
    assert!(import.errors.iter().any(|e| e.code == "cancelled"), "{:?}", import.errors);
    assert_eq!(delete_job(&importer, &accepted.job_id).await.phase, DeletePhase::CancellingImport);
    // The cancelled import's chunk tasks do nothing.
    for chunk in chunks {
        plainly(&importer, chunk).await;
    }
    let after = testkit::inline::count(&importer.db, "images", doc! {"dataset_id": &dataset_id}).await;
    assert_eq!(after, imported, "no chunk imported after the cancel");

    // The deletion sweeps everything, then waits a lease after the cancel for the last sweep.
    let waiting =
        async |importer: &Importer| delete_job(importer, &accepted.job_id).await.phase == DeletePhase::Finalizing;
    run_until(&importer, &queue, plainly, waiting).await;
    assert_eq!(testkit::inline::count(&importer.db, "images", doc! {"dataset_id": &dataset_id}).await, 0);
    assert_eq!(delete_job(&importer, &accepted.job_id).await.status, JobStatus::Running, "not ended yet");
    // A chunk attempt that started before the cancel writes now, after that sweep.
    let late_id = image_id(&dataset_id, "train/late.jpg");
    let late = testkit::inline::inspect(&importer.db).await;
    late.collection::<mongodb::bson::Document>("images")
        .insert_one(doc! {"_id": &late_id, "dataset_id": &dataset_id, "split": "train", "path": "train/late.jpg"})
        .await
        .unwrap();
    let key = keys::dataset_image(&dataset_id, "train", "late.jpg");
    importer.objects.put(&key, bytes::Bytes::from_static(b"late")).await.unwrap();

    let ended = async |importer: &Importer| delete_job(importer, &accepted.job_id).await.status.is_terminal();
    run_until(&importer, &queue, plainly, ended).await;
    assert_gone(&importer, &accepted.job_id, &dataset_id, &import_id, imported).await;
    let job = delete_job(&importer, &accepted.job_id).await;
    let cancelled_at = import.finished_at.unwrap().timestamp_millis();
    let finished_at = job.finished_at.unwrap().timestamp_millis();
    assert!(
        finished_at >= cancelled_at + lease.as_millis() as i64,
        "ended {} ms after the cancel",
        finished_at - cancelled_at
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lost_step_is_sent_again_and_a_deletion_lost_every_time_fails_and_starts_again() {
    let dir = tempfile::tempdir().unwrap();
    let (importer, queue) = importer(dir.path(), Duration::from_millis(600)).await;
    let (generated, import_id, dataset_id) = start_import(&importer, dir.path(), 16, 8).await;
    import_whole(&importer, &queue, &import_id).await;

    // Every step is lost: the watchdog resends it, and gives up after MAX_RESENDS.
    let first = begin(&importer, &dataset_id).await;
    let mut lost = 0;
    let lose_steps = async |importer: &Importer, task: TaskBody| match task {
        TaskBody::DeleteStep { .. } => lost += 1,
        other => plainly(importer, other).await,
    };
    let ended = async |importer: &Importer| delete_job(importer, &first.job_id).await.status.is_terminal();
    run_until(&importer, &queue, lose_steps, ended).await;
    assert_eq!(lost, 1 + yds_import::watchdog::MAX_RESENDS, "the first step and every resend");
    let failed = delete_job(&importer, &first.job_id).await;
    assert_eq!(failed.status, JobStatus::Failed);
    assert!(failed.errors.iter().any(|e| e.code == "deletion_lost"), "{:?}", failed.errors);
    assert!(importer.db.datasets.find_for_tenant(TENANT, &dataset_id).await.unwrap().is_none(), "still missing");

    // Deleting it again starts a new job; its second step is lost once and sent again.
    let second = begin(&importer, &dataset_id).await;
    assert_ne!(second.job_id, first.job_id);
    assert_eq!(begin(&importer, &dataset_id).await.job_id, second.job_id);
    let mut lost_once = false;
    let lose_one = async |importer: &Importer, task: TaskBody| match task {
        TaskBody::DeleteStep { step: 1, resend: 0, .. } if !lost_once => lost_once = true,
        other => plainly(importer, other).await,
    };
    let ended = async |importer: &Importer| delete_job(importer, &second.job_id).await.status.is_terminal();
    run_until(&importer, &queue, lose_one, ended).await;
    assert!(lost_once);
    assert_eq!(delete_job(&importer, &second.job_id).await.resends, 0, "the chain went on after the resend");
    assert_gone(&importer, &second.job_id, &dataset_id, &import_id, generated.image_count() as u64).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn each_step_of_a_large_deletion_stops_at_its_time_budget() {
    let dir = tempfile::tempdir().unwrap();
    let (mut importer, queue) = importer(dir.path(), Duration::from_secs(5)).await;
    importer.pacing.delete_batch = 500;
    importer.pacing.delete_budget = Duration::from_millis(300);
    let (_, import_id, dataset_id) = start_import(&importer, dir.path(), 4, 4).await;
    import_whole(&importer, &queue, &import_id).await;
    // 40 000 more image documents and 2 000 more objects: far more than one step deletes.
    let images = testkit::inline::inspect(&importer.db).await.collection::<mongodb::bson::Document>("images");
    for thousand in 0..40 {
        let docs = (0..1000).map(|n| {
            let path = format!("train/bulk-{thousand}-{n}.jpg");
            doc! {"_id": image_id(&dataset_id, &path), "dataset_id": &dataset_id, "split": "train", "path": path}
        });
        images.insert_many(docs).await.unwrap();
    }
    for n in 0..2000 {
        let key = keys::dataset_image(&dataset_id, "train", &format!("bulk-{n}.jpg"));
        importer.objects.put(&key, bytes::Bytes::from_static(b"x")).await.unwrap();
    }
    let total = testkit::inline::count(&importer.db, "images", doc! {"dataset_id": &dataset_id}).await;

    let accepted = begin(&importer, &dataset_id).await;
    let mut longest = Duration::ZERO;
    let mut steps = 0;
    let timed = async |importer: &Importer, task: TaskBody| {
        let step = matches!(task, TaskBody::DeleteStep { .. });
        let started = Instant::now();
        plainly(importer, task).await;
        if step {
            steps += 1;
            longest = longest.max(started.elapsed());
        }
    };
    let ended = async |importer: &Importer| delete_job(importer, &accepted.job_id).await.status.is_terminal();
    run_until(&importer, &queue, timed, ended).await;
    assert_gone(&importer, &accepted.job_id, &dataset_id, &import_id, total).await;
    // Each step stops after the batch that crossed its budget: a dataset of any size is deleted
    // by steps of about the same length.
    eprintln!("{total} image documents deleted in {steps} steps, the longest {longest:?}");
    assert!(steps >= 4, "{steps} steps");
    assert!(longest < Duration::from_secs(3), "the longest step took {longest:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_completed_import_is_not_waited_for_but_an_attempt_still_in_flight_is() {
    let dir = tempfile::tempdir().unwrap();
    // A lease far longer than the test: a deletion that waited for it would never end here.
    let lease = Duration::from_secs(600);
    let (importer, queue) = importer(dir.path(), lease).await;

    // Every chunk attempt of this import ended: nothing can write any more, no wait.
    let (generated, import_id, dataset_id) = start_import(&importer, dir.path(), 12, 4).await;
    import_whole(&importer, &queue, &import_id).await;
    let accepted = begin(&importer, &dataset_id).await;
    let ended = async |importer: &Importer| delete_job(importer, &accepted.job_id).await.status.is_terminal();
    run_until(&importer, &queue, plainly, ended).await;
    assert_gone(&importer, &accepted.job_id, &dataset_id, &import_id, generated.image_count() as u64).await;

    // This one's first attempt on chunk 0 counts itself in flight and dies (its process killed:
    // never counted out); the task's next delivery imports the chunk. The deletion then waits a lease
    // after the import's end, for the dead attempt could still be writing.
    let other = dir.path().join("other");
    let (_, import_id, dataset_id) = start_import(&importer, &other, 12, 4).await;
    let mut died = false;
    let dies_once = async |importer: &Importer, task: TaskBody| {
        if let TaskBody::Chunk { job_id, index: 0, .. } = &task {
            if !died {
                died = true;
                assert!(importer.db.chunks.mark_started(job_id, 0).await.unwrap(), "counted while pending");
            }
        }
        plainly(importer, task).await
    };
    run_until(&importer, &queue, dies_once, async |importer| import_ended(importer, &import_id).await).await;
    let import = importer.db.jobs.find(&import_id).await.unwrap().unwrap();
    assert_eq!(import.status, JobStatus::Completed, "{:?}", import.errors);
    let accepted = begin(&importer, &dataset_id).await;
    let swept = async |importer: &Importer| {
        let job = delete_job(importer, &accepted.job_id).await;
        job.phase == DeletePhase::Finalizing && job.files_done == job.files_total.unwrap_or(u64::MAX)
    };
    run_until(&importer, &queue, plainly, swept).await;
    let job = delete_job(&importer, &accepted.job_id).await;
    assert!(!job.status.is_terminal(), "waits for the attempt that may still write");
    let settle_at = job.settle_at.expect("a settle time").timestamp_millis();
    let import_end = import.finished_at.unwrap().timestamp_millis();
    assert_eq!(settle_at, import_end + lease.as_millis() as i64, "a lease after the import ended");
}
