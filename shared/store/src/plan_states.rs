//! Where early chunk cutting stood when a tar staging pass paused: one record per job and
//! archive position (`_id` = `{job_id}:{position}`), read by the pass that starts there.
//!
//! The state's shape is the import planner's; this owner stores it as it is given.

use mongodb::bson::{doc, Document};
use mongodb::{Collection, Database};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::{of_job, StoreResult};

/// The owner of `import_plan_states`.
#[derive(Clone, Debug)]
pub struct PlanStates {
    collection: Collection<Document>,
}

fn state_id(job_id: &str, position: u64) -> String {
    format!("{job_id}:{position}")
}

impl PlanStates {
    pub(crate) fn new(database: &Database) -> Self {
        Self { collection: database.collection("import_plan_states") }
    }

    /// Saves the state at archive entry `position`, replacing one saved there before.
    pub async fn save(&self, job_id: &str, position: u64, state: &impl Serialize) -> StoreResult<()> {
        let mut saved = mongodb::bson::to_document(state).expect("plan states serialize");
        let id = state_id(job_id, position);
        saved.insert("_id", &id);
        self.collection.replace_one(doc! {"_id": &id}, saved).upsert(true).await?;
        Ok(())
    }

    /// The state saved at `position`: `None` if none was, `Some(Err(_))` if it no longer reads.
    pub async fn load<T: DeserializeOwned>(
        &self,
        job_id: &str,
        position: u64,
    ) -> StoreResult<Option<Result<T, mongodb::bson::de::Error>>> {
        let Some(mut saved) = self.collection.find_one(doc! {"_id": state_id(job_id, position)}).await? else {
            return Ok(None);
        };
        saved.remove("_id");
        Ok(Some(mongodb::bson::from_document(saved)))
    }

    /// Deletes every state of the job.
    pub async fn delete_job(&self, job_id: &str) -> StoreResult<()> {
        self.collection.delete_many(of_job(job_id)).await?;
        Ok(())
    }
}
