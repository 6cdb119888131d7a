//! Uploads: one record per `POST /uploads`, saying whose upload it is, which object it fills
//! (`temp/uploads/{upload_id}/{file_name}`), how large it may be, and, once the last byte
//! arrived, how large it is. A record lives a day (a TTL index on `expires_at`), as its object
//! does (the bucket's lifecycle rule, or the uploads function's sweep of a directory); an
//! import reads the object, not the record, so an import that runs past the day is unaffected
//! by the record's going.

use mongodb::bson::{doc, DateTime};
use mongodb::options::IndexOptions;
use mongodb::{Collection, Database, IndexModel};
use serde::{Deserialize, Serialize};

use crate::StoreResult;

/// One upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadDoc {
    #[serde(rename = "_id")]
    pub id: String,
    pub tenant: String,
    /// The name the client gave, kept as the object's name: its suffix says what kind of
    /// archive it is.
    pub file_name: String,
    /// The most bytes it may hold: the limit in force when it was created.
    pub max_bytes: u64,
    /// The size the client declared when it created the upload, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub declared_bytes: Option<u64>,
    /// The Cloud Storage resumable session the client uploads to, when the object store has
    /// sessions; `None`: the pieces come through the uploads function (`PUT /uploads/{id}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_url: Option<String>,
    pub created_at: DateTime,
    /// When the record is deleted (a day after it was created).
    pub expires_at: DateTime,
    /// Set once, when the last byte arrived: the object's size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_bytes: Option<u64>,
}

/// The owner of `uploads`.
#[derive(Clone, Debug)]
pub struct Uploads {
    collection: Collection<UploadDoc>,
}

impl Uploads {
    pub(crate) fn new(database: &Database) -> Self {
        Self { collection: database.collection("uploads") }
    }

    pub(crate) async fn ensure_indexes(&self) -> StoreResult<()> {
        // Records delete themselves once expired (MongoDB's TTL monitor runs every minute;
        // reads do not wait for it, see `find_for_tenant`).
        let options = IndexOptions::builder().expire_after(std::time::Duration::ZERO).build();
        let expiry = IndexModel::builder().keys(doc! {"expires_at": 1}).options(options).build();
        self.collection.create_indexes([expiry]).await?;
        Ok(())
    }

    pub async fn insert(&self, upload: &UploadDoc) -> StoreResult<()> {
        self.collection.insert_one(upload).await?;
        Ok(())
    }

    /// A tenant's upload that has not expired; another tenant's, or an expired one not yet
    /// removed, is reported as missing.
    pub async fn find_for_tenant(&self, tenant: &str, upload_id: &str) -> StoreResult<Option<UploadDoc>> {
        let filter = doc! {"_id": upload_id, "tenant": tenant, "expires_at": {"$gt": DateTime::now()}};
        Ok(self.collection.find_one(filter).await?)
    }

    /// Records that the upload's last byte arrived and the object is `size` bytes long. Only
    /// the first call records (a repeated last piece changes nothing); whether this one did.
    pub async fn complete(&self, upload_id: &str, size: u64) -> StoreResult<bool> {
        let filter = doc! {"_id": upload_id, "completed_bytes": null};
        let update = doc! {"$set": {"completed_bytes": size as i64}};
        Ok(self.collection.update_one(filter, update).await?.modified_count == 1)
    }
}
