//! Issued API keys, stored hashed: never a key itself, only its SHA-256 (`_id`), its tenant, a
//! label and the prefix shown when it was issued. Issuing, hashing and checking keys is the
//! edge's business (`yds_edge::access`); this owner only keeps the records.

use mongodb::bson::{doc, DateTime};
use mongodb::{Collection, Database, IndexModel};
use serde::{Deserialize, Serialize};

use crate::StoreResult;

/// A stored key: never the key itself.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiKeyDoc {
    /// Hex SHA-256 of the key.
    #[serde(rename = "_id")]
    pub hash: String,
    pub tenant: String,
    pub label: String,
    /// The key's first characters, to recognise it in a list (`yds_1a2b3c4d`).
    pub prefix: String,
    pub created_at: DateTime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<DateTime>,
}

/// The owner of `api_keys`.
#[derive(Clone, Debug)]
pub struct ApiKeys {
    collection: Collection<ApiKeyDoc>,
}

impl ApiKeys {
    pub(crate) fn new(database: &Database) -> Self {
        Self { collection: database.collection("api_keys") }
    }

    pub(crate) async fn ensure_indexes(&self) -> StoreResult<()> {
        // `cargo xtask key revoke`: keys by the prefix shown when they were issued.
        self.collection.create_indexes([IndexModel::builder().keys(doc! {"prefix": 1}).build()]).await?;
        Ok(())
    }

    pub async fn insert(&self, key: &ApiKeyDoc) -> StoreResult<()> {
        self.collection.insert_one(key).await?;
        Ok(())
    }

    /// The key whose hash is `hash`, unless it was revoked.
    pub async fn find_active(&self, hash: &str) -> StoreResult<Option<ApiKeyDoc>> {
        Ok(self.collection.find_one(doc! {"_id": hash, "revoked_at": null}).await?)
    }

    /// Revokes the active keys whose prefix is `prefix`; how many were revoked.
    pub async fn revoke_prefix(&self, prefix: &str) -> StoreResult<u64> {
        let result = self
            .collection
            .update_many(doc! {"prefix": prefix, "revoked_at": null}, doc! {"$set": {"revoked_at": DateTime::now()}})
            .await?;
        Ok(result.modified_count)
    }
}
