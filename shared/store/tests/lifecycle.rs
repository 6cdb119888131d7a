//! A dataset's lifecycle in the records, on a real mongod: deleting makes it missing to every
//! tenant lookup at once and is started once; renaming and the name filter; delete jobs'
//! transitions (a step claimed once, progress never lowered, one ending); jobs of both kinds
//! listed newest first with their filters.

use std::collections::BTreeMap;

use testkit::db::test_db;
use yds_store::{
    DatasetDoc, DatasetStatus, DateTime, Db, DeleteJobDoc, DeletePhase, DeleteStart, Finding, JobFilter, JobRecord,
    JobStatus,
};

fn dataset(id: &str, tenant: &str, name: &str, created_ms: i64) -> DatasetDoc {
    DatasetDoc {
        id: id.into(),
        tenant: tenant.into(),
        name: name.into(),
        status: DatasetStatus::Ready,
        job_id: format!("import-{id}"),
        created_at: DateTime::from_millis(created_ms),
        task: None,
        classes: Vec::new(),
        kpt_shape: None,
        split_names: Vec::new(),
        statistics: None,
        duplicates: None,
        findings: Vec::new(),
        finding_counts: BTreeMap::new(),
        flip_idx: None,
        kpt_names: None,
        trainable: None,
        content_hash: None,
        last_job_id: None,
        failure: None,
    }
}

async fn names(db: &Db, tenant: &str, prefix: Option<&str>) -> Vec<String> {
    let (items, _) = db.datasets.page(tenant, prefix, None, 100).await.unwrap();
    items.into_iter().map(|d| d.name).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deleting_dataset_is_missing_to_every_lookup_and_its_deletion_starts_once() {
    let db = test_db().await;
    db.datasets.insert(&dataset("d1", "acme", "cats", 1_000)).await.unwrap();
    db.datasets.insert(&dataset("d2", "acme", "dogs", 2_000)).await.unwrap();

    // Another tenant cannot start it.
    assert!(matches!(db.datasets.begin_delete("globex", "d1", "j-other").await.unwrap(), DeleteStart::Missing));
    let DeleteStart::Started(before) = db.datasets.begin_delete("acme", "d1", "j1").await.unwrap() else {
        panic!("the deletion starts")
    };
    assert_eq!((before.status, before.last_job_id()), (DatasetStatus::Ready, "import-d1"), "as it was before");
    // A second request finds the deletion under way, with its job: it does not start another.
    let DeleteStart::Deleting(deleting) = db.datasets.begin_delete("acme", "d1", "j2").await.unwrap() else {
        panic!("the deletion is under way")
    };
    assert_eq!((deleting.status, deleting.last_job_id()), (DatasetStatus::Deleting, "j1"));

    assert!(db.datasets.find_for_tenant("acme", "d1").await.unwrap().is_none(), "GET /datasets/{{id}}");
    assert_eq!(names(&db, "acme", None).await, ["dogs"], "GET /datasets");
    assert!(names(&db, "acme", Some("cat")).await.is_empty(), "the name filter");
    assert!(db.datasets.rename("acme", "d1", "renamed").await.unwrap().is_none(), "PATCH");
    assert!(db.datasets.find("d1").await.unwrap().is_some(), "the record stays until its job removes it");

    // A failed delete job is handed over only once, and only from that job.
    assert!(!db.datasets.restart_delete("d1", "j-not-its-job", "j3").await.unwrap());
    assert!(db.datasets.restart_delete("d1", "j1", "j3").await.unwrap());
    assert!(!db.datasets.restart_delete("d1", "j1", "j4").await.unwrap(), "a concurrent restart lost");
    assert_eq!(db.datasets.find("d1").await.unwrap().unwrap().last_job_id(), "j3");

    // Only a deleting dataset's record is removed.
    db.datasets.remove("d2").await.unwrap();
    assert!(db.datasets.find("d2").await.unwrap().is_some());
    db.datasets.remove("d1").await.unwrap();
    assert!(db.datasets.find("d1").await.unwrap().is_none());
    assert!(matches!(db.datasets.begin_delete("acme", "d1", "j5").await.unwrap(), DeleteStart::Missing));
}

#[tokio::test(flavor = "multi_thread")]
async fn renaming_and_the_name_prefix_filter_are_exact_case_sensitive_and_per_tenant() {
    let db = test_db().await;
    let all = [
        ("a", "acme", "coco8", 1),
        ("b", "acme", "coco128", 2),
        ("c", "acme", "Coco-upper", 3),
        ("d", "acme", "c.o(co)*[x]+?", 4),
        ("e", "acme", "cocoa", 5),
        ("f", "globex", "coco-other-tenant", 6),
        ("g", "acme", "ünïcode ☃", 7),
    ];
    for (id, tenant, name, at) in all {
        db.datasets.insert(&dataset(id, tenant, name, at * 1000)).await.unwrap();
    }
    assert_eq!(names(&db, "acme", Some("coco")).await, ["cocoa", "coco128", "coco8"], "newest first");
    assert_eq!(names(&db, "acme", Some("Coco")).await, ["Coco-upper"]);
    // Regular expression characters are only themselves.
    assert_eq!(names(&db, "acme", Some("c.o(co)*[")).await, ["c.o(co)*[x]+?"]);
    assert!(names(&db, "acme", Some("c.o(co)*[x]+?!")).await.is_empty());
    assert!(names(&db, "acme", Some(".*")).await.is_empty());
    assert_eq!(names(&db, "acme", Some("ünï")).await, ["ünïcode ☃"]);
    assert_eq!(names(&db, "globex", Some("coco")).await, ["coco-other-tenant"]);

    // Pages of the filter, keyset on (created_at, id).
    let (first, after) = db.datasets.page("acme", Some("coco"), None, 2).await.unwrap();
    assert_eq!(first.iter().map(|d| d.name.as_str()).collect::<Vec<_>>(), ["cocoa", "coco128"]);
    let (rest, end) = db.datasets.page("acme", Some("coco"), after, 2).await.unwrap();
    assert_eq!(rest.iter().map(|d| d.name.as_str()).collect::<Vec<_>>(), ["coco8"]);
    assert!(end.is_none());

    let renamed = db.datasets.rename("acme", "a", "kitten").await.unwrap().expect("renamed");
    assert_eq!((renamed.id.as_str(), renamed.name.as_str()), ("a", "kitten"), "the record as it is now");
    assert!(db.datasets.rename("globex", "a", "stolen").await.unwrap().is_none(), "another tenant's");
    assert_eq!(names(&db, "acme", Some("kit")).await, ["kitten"]);
    assert_eq!(names(&db, "acme", Some("coco")).await, ["cocoa", "coco128"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_delete_job_claims_each_step_once_never_lowers_progress_and_ends_once() {
    let db = test_db().await;
    let job = DeleteJobDoc::new("del", "acme", "d1", "imp", DeletePhase::CancellingImport);
    db.jobs.insert_delete(&job).await.unwrap();
    db.jobs.insert_delete(&job).await.unwrap(); // a repeated request keeps the record
    assert!(db.jobs.find("del").await.unwrap().is_none(), "the import pipeline never sees a delete job");
    assert_eq!(db.jobs.find_delete("del").await.unwrap().unwrap().status, JobStatus::Queued);

    let claimed = db.jobs.claim_delete_step("del", 0).await.unwrap().expect("step 0");
    assert_eq!((claimed.status, claimed.step), (JobStatus::Running, 0));
    assert!(db.jobs.claim_delete_step("del", 0).await.unwrap().is_some(), "its retry, or a twin in step");
    assert!(db.jobs.claim_delete_step("del", 3).await.unwrap().is_some());
    assert!(db.jobs.claim_delete_step("del", 2).await.unwrap().is_none(), "a step behind a later one is stale");

    // The total is counted once; the settle time only moves later.
    let settle = DateTime::from_millis(DateTime::now().timestamp_millis() + 60_000);
    let counted = db.jobs.record_delete_totals("del", 10, settle).await.unwrap().unwrap();
    assert_eq!((counted.files_total, counted.settle_at), (Some(10), Some(settle)));
    let recount = db.jobs.record_delete_totals("del", 4, DateTime::from_millis(0)).await.unwrap().unwrap();
    assert_eq!((recount.files_total, recount.settle_at), (Some(10), Some(settle)));

    db.jobs.record_delete_progress("del", DeletePhase::DeletingImages, 6).await.unwrap();
    db.jobs.record_delete_progress("del", DeletePhase::DeletingImages, 3).await.unwrap(); // a lagging twin
    let job = db.jobs.find_delete("del").await.unwrap().unwrap();
    assert_eq!((job.files_done, job.phase), (6, DeletePhase::DeletingImages), "never lowered");

    assert!(db.jobs.claim_delete_resend("del", 1).await.unwrap());
    assert!(!db.jobs.claim_delete_resend("del", 1).await.unwrap(), "one of two rounds claims it");
    db.jobs.clear_delete_resends("del").await.unwrap();
    assert_eq!(db.jobs.find_delete("del").await.unwrap().unwrap().resends, 0);

    assert!(db.jobs.finish_delete("del", 10).await.unwrap());
    assert!(!db.jobs.finish_delete("del", 10).await.unwrap(), "a terminal status is reached once");
    assert!(!db.jobs.fail("del", &Finding::new("", "late", "too late")).await.unwrap(), "and never left");
    let done = db.jobs.find_delete("del").await.unwrap().unwrap();
    assert_eq!((done.status, done.files_done, done.files_total), (JobStatus::Completed, 10, Some(10)));
    assert!(done.finished_at.is_some());
    assert!(db.jobs.claim_delete_step("del", 4).await.unwrap().is_none(), "an ended job has no step");
    db.jobs.record_delete_progress("del", DeletePhase::DeletingFiles, 0).await.unwrap();
    assert_eq!(db.jobs.find_delete("del").await.unwrap().unwrap().phase, DeletePhase::Finalizing);
}

#[tokio::test(flavor = "multi_thread")]
async fn jobs_of_both_kinds_are_listed_newest_first_per_tenant_with_filters_and_pages() {
    let db = test_db().await;
    let mut expected = Vec::new();
    for n in 0..5 {
        let mut job =
            DeleteJobDoc::new(&format!("del-{n}"), "acme", &format!("d{}", n % 2), "imp", DeletePhase::DeletingImages);
        job.created_at = DateTime::from_millis(1_000 * n);
        db.jobs.insert_delete(&job).await.unwrap();
        expected.push(job.id);
    }
    let other = DeleteJobDoc::new("theirs", "globex", "d0", "imp", DeletePhase::DeletingImages);
    db.jobs.insert_delete(&other).await.unwrap();
    assert!(db.jobs.finish_delete("del-3", 0).await.unwrap());
    expected.reverse();

    let ids = |items: &[JobRecord]| items.iter().map(|j| j.id().to_owned()).collect::<Vec<_>>();
    let all = JobFilter::default();
    let (first, after) = db.jobs.page("acme", &all, None, 2).await.unwrap();
    let (second, after) = db.jobs.page("acme", &all, after, 2).await.unwrap();
    let (third, end) = db.jobs.page("acme", &all, after, 2).await.unwrap();
    assert!(end.is_none());
    assert_eq!([ids(&first), ids(&second), ids(&third)].concat(), expected, "no job twice, none skipped");

    let of_d1 = JobFilter { dataset_id: Some("d1".into()), status: None };
    assert_eq!(ids(&db.jobs.page("acme", &of_d1, None, 10).await.unwrap().0), ["del-3", "del-1"]);
    let done = JobFilter { dataset_id: None, status: Some(JobStatus::Completed) };
    assert_eq!(ids(&db.jobs.page("acme", &done, None, 10).await.unwrap().0), ["del-3"]);
    let both = JobFilter { dataset_id: Some("d0".into()), status: Some(JobStatus::Completed) };
    assert!(db.jobs.page("acme", &both, None, 10).await.unwrap().0.is_empty());

    assert!(matches!(db.jobs.find_record_for_tenant("acme", "del-2").await.unwrap(), Some(JobRecord::Delete(_))));
    assert!(db.jobs.find_record_for_tenant("acme", "theirs").await.unwrap().is_none(), "another tenant's");
    assert_eq!(ids(&db.jobs.page("globex", &all, None, 10).await.unwrap().0), ["theirs"]);
}
