//! What an import's end writes on its dataset, on a real mongod: the findings of the end put
//! first and counted once however often the end is retried, and the lookup of the tenant's
//! earlier dataset of the same content.

use mongodb::bson::{doc, DateTime};
use testkit::db::test_db;
use yds_store::datasets::Ready;
use yds_store::{DatasetDoc, Db, DuplicateCounts, Finding, Statistics};

/// Records an importing dataset of `tenant` created at `millis`.
async fn insert(db: &Db, id: &str, tenant: &str, millis: i64) {
    let record = doc! {
        "_id": id, "tenant": tenant, "name": format!("name of {id}"), "status": "importing", "job_id": "j",
        "created_at": DateTime::from_millis(millis),
    };
    let dataset: DatasetDoc = mongodb::bson::from_document(record).unwrap();
    db.datasets.insert(&dataset).await.unwrap();
}

async fn ready(db: &Db, id: &str, findings: &[Finding], trainable: bool) {
    let statistics = Statistics { images: 3, ..Statistics::default() };
    let ready = Ready { statistics: &statistics, duplicates: &DuplicateCounts::default(), trainable, findings };
    db.datasets.mark_ready(id, &ready).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_findings_of_the_end_go_first_and_count_once() {
    let db = test_db().await;
    insert(&db, "d", "acme", 1).await;
    let planned = [Finding::new("a.txt", "orphan_label", "x"), Finding::new("b.txt", "orphan_label", "y")];
    let counts: std::collections::BTreeMap<String, u64> = [("orphan_label".to_owned(), 7)].into_iter().collect();
    db.datasets.record_findings("d", &planned, &counts).await.unwrap();
    let end = [Finding::new("", "no_train_split", "why"), Finding::new("", "no_labels", "none")];
    ready(&db, "d", &end, false).await;
    // The end retried: the dataset is ready already, nothing is added again.
    ready(&db, "d", &end, false).await;
    let dataset = db.datasets.find("d").await.unwrap().unwrap();
    let codes: Vec<&str> = dataset.findings.iter().map(|f| f.code.as_str()).collect();
    assert_eq!(codes, ["no_train_split", "no_labels", "orphan_label", "orphan_label"]);
    let totals: Vec<(&str, u64)> = dataset.finding_counts.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    assert_eq!(totals, [("no_labels", 1), ("no_train_split", 1), ("orphan_label", 7)]);
    assert_eq!(dataset.trainable, Some(false));
    assert_eq!(dataset.statistics.unwrap().images, 3);

    // A trainable dataset without findings of its end keeps its planned ones as they were.
    insert(&db, "e", "acme", 2).await;
    db.datasets.record_findings("e", &planned, &counts).await.unwrap();
    ready(&db, "e", &[], true).await;
    let dataset = db.datasets.find("e").await.unwrap().unwrap();
    assert_eq!((dataset.findings.len(), dataset.trainable), (2, Some(true)));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_earliest_other_dataset_of_the_tenant_with_the_content_is_found() {
    let db = test_db().await;
    for (id, tenant, millis) in
        [("late", "acme", 30), ("early", "acme", 10), ("mid", "acme", 20), ("foreign", "globex", 1)]
    {
        insert(&db, id, tenant, millis).await;
    }
    let find = |id: &'static str| {
        let db = db.clone();
        async move { db.datasets.earliest_with_content("acme", "h1", id).await.unwrap().map(|d| d.id) }
    };
    // No hash recorded yet: nothing to find.
    assert_eq!(find("late").await, None);
    for id in ["late", "mid", "foreign"] {
        db.datasets.set_content_hash(id, "h1").await.unwrap();
    }
    // `mid` is ending (its hash set) and earliest with the hash; another tenant's never counts.
    assert_eq!(find("late").await.as_deref(), Some("mid"));
    assert_eq!(find("mid").await.as_deref(), Some("late"), "never itself");
    ready(&db, "mid", &[], true).await;
    db.datasets.set_content_hash("early", "h1").await.unwrap();
    ready(&db, "early", &[], true).await;
    assert_eq!(find("late").await.as_deref(), Some("early"));
    // A hash is recorded only while importing: a ready dataset's stays.
    db.datasets.set_content_hash("early", "h2").await.unwrap();
    assert_eq!(db.datasets.find("early").await.unwrap().unwrap().content_hash.as_deref(), Some("h1"));
    assert_eq!(db.datasets.earliest_with_content("acme", "h2", "late").await.unwrap().map(|d| d.id), None);
}
