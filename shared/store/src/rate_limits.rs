//! Per-key request counters, one document `{route}:{key_id}:{window}` per fixed window, deleted
//! by a TTL index once the window is over. Every instance of a function counts in the same
//! document, so a limit holds across instances.

use mongodb::bson::{doc, DateTime, Document};
use mongodb::options::{IndexOptions, ReturnDocument};
use mongodb::{Collection, Database, IndexModel};

use crate::{is_duplicate_key, StoreResult};

/// The owner of `rate_limits`.
#[derive(Clone, Debug)]
pub struct RateLimits {
    collection: Collection<Document>,
}

impl RateLimits {
    pub(crate) fn new(database: &Database) -> Self {
        Self { collection: database.collection("rate_limits") }
    }

    pub(crate) async fn ensure_indexes(&self) -> StoreResult<()> {
        // Windows delete themselves once past.
        let options = IndexOptions::builder().expire_after(std::time::Duration::ZERO).build();
        let expiry = IndexModel::builder().keys(doc! {"expires_at": 1}).options(options).build();
        self.collection.create_indexes([expiry]).await?;
        Ok(())
    }

    /// Counts one request in the window `id`, which ends at `expires_at`; the count so far,
    /// this one included. One atomic upsert.
    pub async fn count(&self, id: &str, expires_at: DateTime) -> StoreResult<u64> {
        let update = doc! {"$inc": {"count": 1}, "$setOnInsert": {"expires_at": expires_at}};
        let increment = || {
            self.collection
                .find_one_and_update(doc! {"_id": id}, update.clone())
                .upsert(true)
                .return_document(ReturnDocument::After)
        };
        // Two first requests of a window may both insert; the loser's retry finds the winner's.
        let counter = match increment().await {
            Err(err) if is_duplicate_key(&err) => increment().await?,
            other => other?,
        };
        let count = counter.and_then(|c| c.get("count").and_then(|n| n.as_i32())).unwrap_or(1);
        Ok(count.max(1) as u64)
    }
}
