//! A fresh database on the test `mongod`, and a look inside it. Only with the `store` feature.

use mongodb::bson::{doc, Document};
use yds_store::Db;

/// A fresh database (a random name) on the MongoDB that `cargo xtask test` started, with its
/// indexes.
pub async fn test_db() -> Db {
    let name = format!("t_{}", uuid::Uuid::new_v4().simple());
    let db = Db::connect(&crate::mongodb_uri(), &name).await.expect("MongoDB URI parses");
    db.ensure_indexes().await.expect("indexes are created");
    db
}

/// The database behind `db`, for tests to look inside; writes go through `db`'s owners.
pub async fn inspect(db: &Db) -> mongodb::Database {
    mongodb::Client::with_uri_str(crate::mongodb_uri()).await.expect("MongoDB URI parses").database(db.name())
}

/// Documents of `collection` matching `filter`.
pub async fn count(db: &Db, collection: &str, filter: Document) -> u64 {
    inspect(db).await.collection::<Document>(collection).count_documents(filter).await.expect("a count")
}

/// The filter of the records of `job_id` whose `_id` is `{job_id}:...` (members, used labels,
/// chunk file lists, plan states).
pub fn of_job(job_id: &str) -> Document {
    doc! {"_id": {"$gte": format!("{job_id}:"), "$lt": format!("{job_id};")}}
}
