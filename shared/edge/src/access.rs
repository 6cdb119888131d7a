//! API keys: issued by `cargo xtask key create`, stored hashed (`yds_store::ApiKeys`), and
//! looked up by the edge of every public function.
//!
//! A key is 256 random bits (`yds_` and 64 hex digits) and only its SHA-256 is stored: with that
//! much entropy a fast hash is as safe as a slow password hash, and a lookup is one indexed
//! `_id` read. Keys from `YDS_API_KEYS` (the local stack's) are kept hashed in memory too. Lookups
//! are cached per process for a minute, so a revoked key stops working within a minute.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use yds_config::ConfiguredKeys;
use yds_store::{ApiKeyDoc, DateTime, Db, StoreResult};

/// How long a lookup is trusted: known keys (revocation delay), unknown keys (no database
/// round trip per request for a flood of wrong keys, yet a new key works soon).
const KNOWN_TTL: Duration = Duration::from_secs(60);
const UNKNOWN_TTL: Duration = Duration::from_secs(5);
/// Entries a process caches at most; past it the cache starts over.
const CACHE_ENTRIES: usize = 10_000;

/// Who a key belongs to, as the edge passes it on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyOwner {
    pub tenant: String,
    /// A short, stable, non-secret identifier of the key (rate limits, logs).
    pub key_id: String,
}

/// Hex SHA-256 of a key.
pub fn hash(key: &str) -> String {
    Sha256::digest(key.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// A new random key.
pub fn generate() -> String {
    let mut bytes = [0u8; 32];
    rand::fill(&mut bytes);
    format!("yds_{}", bytes.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

/// Issues a key for `tenant` and returns it: the only time it is ever shown.
pub async fn create(db: &Db, tenant: &str, label: &str) -> StoreResult<String> {
    let key = generate();
    let stored = ApiKeyDoc {
        hash: hash(&key),
        tenant: tenant.to_owned(),
        label: label.to_owned(),
        prefix: key[..12].to_owned(),
        created_at: DateTime::now(),
        revoked_at: None,
    };
    db.api_keys.insert(&stored).await?;
    Ok(key)
}

/// Revokes the keys whose prefix is `prefix` (as `create` printed it); how many were revoked.
pub async fn revoke(db: &Db, prefix: &str) -> StoreResult<u64> {
    db.api_keys.revoke_prefix(prefix).await
}

/// Recent lookups by key hash: the tenant (`None`: unknown key) and when it was looked up.
type LookupCache = Arc<Mutex<HashMap<String, (Option<String>, Instant)>>>;

/// The edge's key check: configured keys first, then the database, with a short cache.
#[derive(Clone, Debug)]
pub struct KeyLookup {
    configured: HashMap<String, String>,
    db: Option<Db>,
    cache: LookupCache,
}

impl From<ConfiguredKeys> for KeyLookup {
    /// Only the configured keys (tests, or a deployment without stored keys).
    fn from(keys: ConfiguredKeys) -> Self {
        // Kept hashed, as stored keys are: the clear key lives only in the environment.
        let configured = keys.entries().map(|(key, tenant)| (hash(key), tenant.to_owned())).collect();
        Self { configured, db: None, cache: Arc::default() }
    }
}

impl KeyLookup {
    /// Configured keys and the keys stored in `db`.
    pub fn new(keys: ConfiguredKeys, db: Db) -> Self {
        Self { db: Some(db), ..Self::from(keys) }
    }

    /// The owner of `key`, `None` for an unknown or revoked key.
    pub async fn owner(&self, key: &str) -> StoreResult<Option<KeyOwner>> {
        let hash = hash(key);
        let owner = |tenant: String| KeyOwner { tenant, key_id: hash[..16].to_owned() };
        if let Some(tenant) = self.configured.get(&hash) {
            return Ok(Some(owner(tenant.clone())));
        }
        let Some(db) = &self.db else { return Ok(None) };
        if let Some((tenant, at)) = self.cache.lock().expect("not poisoned").get(&hash).cloned() {
            let ttl = if tenant.is_some() { KNOWN_TTL } else { UNKNOWN_TTL };
            if at.elapsed() < ttl {
                return Ok(tenant.map(owner));
            }
        }
        let stored = db.api_keys.find_active(&hash).await?;
        let tenant = stored.map(|k| k.tenant);
        let mut cache = self.cache.lock().expect("not poisoned");
        if cache.len() >= CACHE_ENTRIES {
            cache.clear();
        }
        cache.insert(hash.clone(), (tenant.clone(), Instant::now()));
        Ok(tenant.map(owner))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_random_and_only_their_hash_is_kept() {
        let (a, b) = (generate(), generate());
        assert_ne!(a, b);
        assert!(a.starts_with("yds_") && a.len() == 68, "{a}");
        assert_eq!(hash(&a), hash(&a));
        assert_eq!(hash(&a).len(), 64);
        assert!(!hash(&a).contains(&a[4..]), "the hash does not contain the key");
        // The known SHA-256 test vector.
        assert_eq!(hash("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[tokio::test]
    async fn configured_keys_resolve_without_a_database() {
        let lookup = KeyLookup::from(ConfiguredKeys::parse("k1:acme,k2").unwrap());
        let owner = lookup.owner("k1").await.unwrap().unwrap();
        assert_eq!(owner.tenant, "acme");
        assert_eq!(owner.key_id, hash("k1")[..16]);
        assert_eq!(lookup.owner("k2").await.unwrap().unwrap().tenant, "default");
        assert_eq!(lookup.owner("k3").await.unwrap(), None);
    }
}
