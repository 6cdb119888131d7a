//! The `uploads` owner on a real mongod: records are found by their tenant only and only
//! until they expire, completion is recorded once, and a TTL index deletes them.

use futures::TryStreamExt;
use mongodb::bson::Document;
use testkit::db::{inspect, test_db};
use yds_store::{DateTime, UploadDoc};

fn upload(id: &str, expires_in_ms: i64) -> UploadDoc {
    let now = DateTime::now();
    UploadDoc {
        id: id.to_owned(),
        tenant: "acme".into(),
        file_name: "d.tar.gz".into(),
        max_bytes: 100 << 30,
        declared_bytes: Some(5_000_000_000),
        session_url: None,
        created_at: now,
        expires_at: DateTime::from_millis(now.timestamp_millis() + expires_in_ms),
        completed_bytes: None,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn uploads_are_the_tenants_until_they_expire_and_complete_once() {
    let db = test_db().await;
    db.uploads.insert(&upload("u1", 86_400_000)).await.unwrap();
    db.uploads.insert(&upload("old", -1)).await.unwrap();
    assert!(db.uploads.insert(&upload("u1", 86_400_000)).await.is_err(), "one record per upload id");

    let found = db.uploads.find_for_tenant("acme", "u1").await.unwrap().expect("the tenant's upload");
    assert_eq!(found, upload_with_times(&found));
    assert_eq!(db.uploads.find_for_tenant("globex", "u1").await.unwrap(), None, "another tenant's is missing");
    assert_eq!(db.uploads.find_for_tenant("acme", "old").await.unwrap(), None, "an expired one is missing");

    // Sizes past 4 GiB round-trip; completion is recorded by the first call only.
    assert!(db.uploads.complete("u1", 5_000_000_000).await.unwrap());
    assert!(!db.uploads.complete("u1", 7).await.unwrap());
    let completed = db.uploads.find_for_tenant("acme", "u1").await.unwrap().unwrap();
    assert_eq!(completed.completed_bytes, Some(5_000_000_000));
    assert_eq!(completed.declared_bytes, Some(5_000_000_000));

    // MongoDB deletes records once `expires_at` is past.
    let indexes: Vec<Document> = inspect(&db)
        .await
        .collection::<Document>("uploads")
        .list_indexes()
        .await
        .unwrap()
        .map_ok(|i| {
            let mut described = i.keys.clone();
            described.insert("ttl", i.options.and_then(|o| o.expire_after).map(|d| d.as_secs() as i64));
            described
        })
        .try_collect()
        .await
        .unwrap();
    assert!(
        indexes.iter().any(|i| i.contains_key("expires_at") && i.get_i64("ttl") == Ok(0)),
        "a TTL index on expires_at: {indexes:?}"
    );
}

/// `expected` as inserted, with the times the database gave back (millisecond precision).
fn upload_with_times(found: &UploadDoc) -> UploadDoc {
    UploadDoc { created_at: found.created_at, expires_at: found.expires_at, ..upload("u1", 0) }
}
