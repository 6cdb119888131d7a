//! Per-key rate limits, counted in MongoDB so every instance of a function shares them.
//!
//! A fixed window per key: one counter document `{key_id}:{window}` incremented atomically by
//! each request and deleted by a TTL index after its window. The request that takes a counter
//! past the limit gets 429 with `Retry-After` = seconds to the next window. One upsert per
//! request, on the import route only (imports are the expensive requests).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mongodb::bson::{doc, DateTime, Document};
use mongodb::options::ReturnDocument;

use crate::db::{is_duplicate_key, Db};
use crate::http::ApiError;

/// At most `max` requests per `window` and key; `max` 0 turns the limit off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub max: u32,
    pub window: Duration,
}

impl RateLimit {
    pub fn per_minute(max: u32) -> Self {
        Self { max, window: Duration::from_secs(60) }
    }

    /// Counts one request of `key_id` against the limit named `route`; 429 past the limit.
    pub async fn admit(&self, db: &Db, route: &str, key_id: &str) -> Result<(), ApiError> {
        if self.max == 0 {
            return Ok(());
        }
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        let window_secs = self.window.as_secs().max(1);
        let window = now.as_secs() / window_secs;
        let window_end_secs = (window + 1) * window_secs;
        let id = format!("{route}:{key_id}:{window}");
        let expires_at = DateTime::from_millis((window_end_secs * 1000) as i64);
        let update = doc! {"$inc": {"count": 1}, "$setOnInsert": {"expires_at": expires_at}};
        let increment = || {
            db.rate_limits
                .find_one_and_update(doc! {"_id": &id}, update.clone())
                .upsert(true)
                .return_document(ReturnDocument::After)
        };
        // Two first requests of a window may both insert; the loser's retry finds the winner's.
        let counter: Option<Document> = match increment().await {
            Err(err) if is_duplicate_key(&err) => increment().await?,
            other => other?,
        };
        let count = counter.and_then(|c| c.get("count").and_then(|n| n.as_i32())).unwrap_or(1);
        if count as i64 > self.max as i64 {
            let retry_after = window_end_secs.saturating_sub(now.as_secs()).max(1);
            return Err(ApiError::TooManyRequests { retry_after_secs: retry_after, limit: self.max, window_secs });
        }
        Ok(())
    }
}
