//! The owners' transitions on a real mongod: the member index's refusal of repeated names, and
//! a chunk's outcome recorded once and summed by MongoDB as by the full sum.

use testkit::db::test_db;
use yds_store::chunks::Outcome;
use yds_store::{ChunkState, Finding, Location, MemberDoc, Statistics, ERROR_SAMPLE};

/// An archive may repeat one name any number of times: the member index refuses every repeat,
/// and what the writer keeps of them stays a sample (and the entry numbers only when asked).
#[tokio::test(flavor = "multi_thread")]
async fn a_name_repeated_many_times_keeps_a_bounded_record_of_the_repeats() {
    let db = test_db().await;
    let repeats = 3 * ERROR_SAMPLE as u64;
    let member = |job: &str, entry: u64| {
        let location = Location::Tree { source: 0, path: format!("copy-{entry}") };
        MemberDoc::new(job, "images/train/a.jpg", entry, 10, location)
    };
    for (job, tracking) in [("plain", false), ("tracking", true)] {
        let mut writer = if tracking { db.members.writer_tracking_repeats() } else { db.members.writer() };
        for entry in 0..=repeats {
            writer.add(member(job, entry)).await.unwrap();
        }
        // The same member recorded again (a retried pass) is no repeat.
        writer.add(member(job, 0)).await.unwrap();
        writer.flush().await.unwrap();
        assert_eq!(writer.duplicates.len(), ERROR_SAMPLE, "{job}");
        assert!(writer.duplicates.iter().all(|path| path == "images/train/a.jpg"));
        let expected: Vec<u64> = if tracking { (1..=repeats).collect() } else { Vec::new() };
        assert_eq!(writer.repeated_entries, expected, "{job}");
        let kept = db.members.find_many(job, &["images/train/a.jpg".to_owned()]).await.unwrap();
        assert_eq!(kept["images/train/a.jpg"].entry, 0, "{job}: the first copy wins");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn status_totals_summed_by_mongodb_equal_the_full_sum_over_chunks() {
    let db = test_db().await;
    let job_id = "totals-job";
    // Counts past i32 in one chunk: `$sum` then answers an int64.
    let big = Statistics { images: 3_000_000_000, annotations: 7, ..Statistics::default() };
    let small =
        Statistics { images: 5, labels: 4, annotations: 11, invalid_images: 1, invalid_labels: 2, ..big.clone() };
    let error = |n: usize| Finding::new(format!("f{n}"), "image_corrupt", "bad");
    for index in 0..4 {
        db.chunks.create(job_id, index, &[]).await.unwrap();
    }
    let errors: Vec<Finding> = (0..40).map(error).collect();
    let outcome = |state, statistics, errors| Outcome { state, statistics, errors, elapsed: None };
    let record = |index, outcome| {
        let db = db.clone();
        async move { db.chunks.record_outcome(job_id, index, &outcome).await.unwrap() }
    };
    assert!(record(0, outcome(ChunkState::Done, &big, &errors)).await);
    assert!(record(1, outcome(ChunkState::Done, &small, &errors)).await);
    assert!(record(2, outcome(ChunkState::Failed, &small, &[])).await);
    // A duplicate outcome is not recorded; chunk 3 stays pending and is not counted.
    assert!(!record(1, outcome(ChunkState::Done, &big, &[])).await);

    let totals = db.chunks.running_totals(job_id).await.unwrap();
    let full = db.chunks.progress(job_id).await.unwrap();
    assert_eq!((totals.chunks_done, totals.chunks_failed), (2, 1));
    assert_eq!(
        (totals.chunks_done, totals.chunks_failed, totals.files_done),
        (full.chunks_done, full.chunks_failed, full.files_done)
    );
    assert_eq!(totals.statistics.images, 3_000_000_010);
    assert_eq!(
        totals.statistics,
        Statistics {
            splits: Default::default(),
            classes: Default::default(),
            issues: Default::default(),
            ..full.statistics
        }
    );
    assert_eq!(totals.errors.len(), ERROR_SAMPLE, "a bounded sample");
    assert_eq!(totals.errors, full.errors);
    assert!(db.chunks.running_totals("no-such-job").await.unwrap() == Default::default());
}
