//! Per-key rate limits, counted in MongoDB so every instance of a function shares them.
//!
//! A fixed window per key: one counter (`yds_store::RateLimits`) incremented atomically by
//! each request and deleted by a TTL index after its window. The request that takes a counter
//! past the limit gets 429 with `Retry-After` = seconds to the next window. One upsert per
//! request, on the import route only (imports are the expensive requests).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use yds_store::Db;

use crate::ApiError;

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
        let expires_at = yds_store::DateTime::from_millis((window_end_secs * 1000) as i64);
        let count = db.rate_limits.count(&id, expires_at).await?;
        if count > u64::from(self.max) {
            let retry_after = window_end_secs.saturating_sub(now.as_secs()).max(1);
            return Err(ApiError::TooManyRequests { retry_after_secs: retry_after, limit: self.max, window_secs });
        }
        Ok(())
    }
}
