//! process-chunk invoked directly (no server) against a real mongod: planning, chunks,
//! duplicate and concurrent delivery, a crash half-way, and the last attempt's dead letter.

use bytes::Bytes;
use mongodb::bson::doc;
use process_chunk::ProcessChunk;
use serde_json::json;
use testkit::inline::{count, start, take, test_importer};
use testkit::DatasetSpec;
use yds_config::Chaos;
use yds_edge::{EdgeOptions, Service};
use yds_import::{Attempt, Importer, TaskBody};
use yds_queue::caller::TaskCallers;
use yds_queue::headers;
use yds_store::{DatasetStatus, JobStatus};

fn task_request(task: &TaskBody, retries: u32) -> yds_edge::Request {
    http::Request::post("/tasks")
        .header(headers::RETRY_COUNT, retries.to_string())
        .body(Bytes::from(serde_json::to_vec(task).unwrap()))
        .unwrap()
}

async fn setup(
    dir: &std::path::Path,
    chunk_size: u32,
) -> (Service, Importer, yds_queue::LocalQueue, testkit::GeneratedDataset, String) {
    let (importer, queue) = test_importer(dir).await;
    let generated = testkit::generate(&dir.join("src"), &DatasetSpec::small(3)).unwrap();
    let archive = dir.join("d.zip");
    testkit::pack_zip(&dir.join("src"), &archive).unwrap();
    let body = json!({"name": "d", "archive_url": format!("file://{}", archive.display()), "chunk_size": chunk_size});
    let accepted = start(&importer, &body).await;
    let service = Service::new(
        ProcessChunk::new(importer.clone(), TaskCallers::Anyone, 5, Chaos::default()),
        EdgeOptions { api_keys: None, max_body_bytes: 8 << 20, url_signer: None },
    );
    (service, importer, queue, generated, accepted.job_id)
}

#[tokio::test(flavor = "multi_thread")]
async fn every_chunk_counts_once_under_duplicates_and_crashes() {
    let dir = tempfile::tempdir().unwrap();
    let (service, importer, queue, generated, job_id) = setup(dir.path(), 3).await;

    let plan = take(&queue);
    assert_eq!(plan, vec![TaskBody::Plan { job_id: job_id.clone() }]);
    assert_eq!(service.call(task_request(&plan[0], 0)).await.status(), 200);
    // A duplicate plan delivery re-enqueues nothing new and creates no chunk twice.
    assert_eq!(service.call(task_request(&plan[0], 0)).await.status(), 200);
    let chunks = take(&queue);
    assert_eq!(chunks.len(), generated.image_count().div_ceil(3));
    assert_eq!(count(&importer.db, "import_chunks", doc! {"job_id": &job_id}).await, chunks.len() as u64);

    // The first chunk crashes half-way, then is retried.
    let crashed = yds_import::deliver(&importer, &chunks[0], Attempt { is_last: false, crash: true }).await;
    assert!(crashed.is_err());
    let job = importer.db.jobs.find(&job_id).await.unwrap().unwrap();
    assert_eq!(job.status, JobStatus::Running);
    // Chunks too large for one task travel without their list: the record has it.
    let chunks: Vec<TaskBody> = chunks
        .into_iter()
        .enumerate()
        .map(|(i, task)| match task {
            TaskBody::Chunk { job_id, index, .. } if i % 2 == 1 => {
                TaskBody::Chunk { job_id, index, files: vec![], resend: 0 }
            }
            other => other,
        })
        .collect();
    for chunk in &chunks {
        // Every chunk delivered twice at once.
        let (a, b) = tokio::join!(service.call(task_request(chunk, 0)), service.call(task_request(chunk, 1)));
        assert_eq!((a.status().as_u16(), b.status().as_u16()), (200, 200));
    }
    // A late duplicate after the end changes nothing.
    assert_eq!(service.call(task_request(&chunks[1], 0)).await.status(), 200);

    let job = importer.db.jobs.find(&job_id).await.unwrap().unwrap();
    assert_eq!(job.status, JobStatus::Completed);
    let result = job.result.unwrap();
    assert_eq!(result.statistics.images, generated.image_count() as u64);
    assert_eq!(result.statistics.annotations, generated.annotation_count() as u64);
    assert_eq!(result.statistics.background_images, generated.background_count() as u64);
    assert_eq!(result.chunks_done, chunks.len() as u64);
    assert_eq!(count(&importer.db, "images", doc! {}).await, generated.image_count() as u64);
    let dataset = importer.db.datasets.find(&job.dataset_id).await.unwrap().unwrap();
    assert_eq!(dataset.status, DatasetStatus::Ready);
    assert_eq!(dataset.statistics.unwrap().annotations, generated.annotation_count() as u64);
    // Every imported file is in the dataset's prefix.
    let listed = importer.objects.list(&format!("datasets/{}/images/", job.dataset_id), None, 10_000).await.unwrap();
    assert_eq!(listed.objects.len(), generated.image_count());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_chunk_failing_on_its_last_attempt_is_recorded_and_the_job_ends() {
    let dir = tempfile::tempdir().unwrap();
    let (service, importer, queue, generated, job_id) = setup(dir.path(), 100).await;
    let plan = take(&queue);
    assert_eq!(service.call(task_request(&plan[0], 0)).await.status(), 200);
    let chunks = take(&queue);
    assert_eq!(chunks.len(), 1);
    assert!(matches!(&chunks[0], TaskBody::Chunk { .. }));
    // The source archive vanished after planning: every attempt fails.
    std::fs::remove_file(dir.path().join("d.zip")).unwrap();
    assert_eq!(service.call(task_request(&chunks[0], 0)).await.status(), 503);
    let job = importer.db.jobs.find(&job_id).await.unwrap().unwrap();
    assert_eq!(job.status, JobStatus::Running);
    // Last attempt (5 max): recorded as failed, answered 200, the job ends. The task comes
    // without its file list, as a large chunk's does: the dead letter still lists the files.
    let mut without_list = chunks[0].clone();
    if let TaskBody::Chunk { files, .. } = &mut without_list {
        assert_eq!(files.len(), generated.image_count());
        files.clear();
    }
    assert_eq!(service.call(task_request(&without_list, 4)).await.status(), 200);
    let job = importer.db.jobs.find(&job_id).await.unwrap().unwrap();
    assert_eq!(job.status, JobStatus::CompletedWithErrors);
    let result = job.result.unwrap();
    assert_eq!(result.chunks_failed, 1);
    assert_eq!(result.errors.len(), generated.image_count().min(50));
    assert!(result.errors.iter().all(|e| e.code == "chunk_failed"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_source_that_cannot_be_read_fails_the_job_once() {
    let dir = tempfile::tempdir().unwrap();
    let (importer, queue) = test_importer(dir.path()).await;
    let not_archive = dir.path().join("notes.zip");
    std::fs::write(&not_archive, b"this is not an archive").unwrap();
    let body = json!({"name": "bad", "archive_url": format!("file://{}", not_archive.display())});
    let accepted = start(&importer, &body).await;
    let service = Service::new(
        ProcessChunk::new(importer.clone(), TaskCallers::Anyone, 5, Chaos::default()),
        EdgeOptions { api_keys: None, max_body_bytes: 1 << 20, url_signer: None },
    );
    let plan = take(&queue);
    assert_eq!(service.call(task_request(&plan[0], 0)).await.status(), 200);
    assert_eq!(service.call(task_request(&plan[0], 0)).await.status(), 200);
    let job = importer.db.jobs.find(&accepted.job_id).await.unwrap().unwrap();
    assert_eq!(job.status, JobStatus::Failed);
    assert_eq!(job.errors.len(), 1);
    assert_eq!(job.errors[0].code, "archive_corrupt", "named .zip, so read as zip, and it is not one");
    let dataset = importer.db.datasets.find(&accepted.dataset_id).await.unwrap().unwrap();
    assert_eq!(dataset.status, DatasetStatus::Failed);
    assert!(take(&queue).is_empty());
}
