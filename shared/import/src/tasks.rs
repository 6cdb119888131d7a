//! The import's tasks: what process-chunk is asked to do, and their names on the queue (how a
//! delivered task is run is [`crate::delivery`]).
//!
//! The queue carries a task's name and JSON body without reading them ([`yds_queue::Task`]);
//! this module alone writes and reads the bodies.

use serde::{Deserialize, Serialize};
use yds_store::{required_field, ChunkFile};

/// What process-chunk is asked to do. The JSON body of every task: a map tagged by `kind`.
///
/// Read through `TaskFields` rather than serde's internally tagged reading, which would copy
/// the whole body (a chunk's file list) into a buffer of its own before reading it again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", try_from = "TaskFields")]
pub enum TaskBody {
    /// Read the job's source, stage its files and enqueue its chunks.
    Plan { job_id: String },
    /// Go on planning a job whose previous planning pass stopped at its time budget, or whose
    /// planning task was lost (then resent by the watchdog with `resend` > 0).
    ContinuePlan {
        job_id: String,
        pass: u32,
        #[serde(default, skip_serializing_if = "is_zero", rename = "redelivery")]
        resend: u32,
    },
    /// Import one chunk of files. The list also lives in the chunk's record; an empty list
    /// means "read it from there" (chunks too large for one task).
    Chunk {
        job_id: String,
        index: u32,
        files: Vec<ChunkFile>,
        /// 0 for the planned task; n for the watchdog's n-th resend (a fresh task name).
        #[serde(default, skip_serializing_if = "is_zero", rename = "redelivery")]
        resend: u32,
    },
    /// One round of the job's watchdog: recover lost chunks (see [`crate::watchdog`]).
    Watch { job_id: String, round: u32 },
    /// One step of a delete job: delete batches until its time budget, then send the next step
    /// (see [`crate::deletion`]). `resend` > 0: sent again by the deletion's watchdog.
    DeleteStep {
        job_id: String,
        step: u32,
        #[serde(default, skip_serializing_if = "is_zero", rename = "redelivery")]
        resend: u32,
    },
    /// One round of a delete job's watchdog: resend a lost step (see [`crate::deletion`]).
    WatchDeletion { job_id: String, round: u32 },
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Every field any [`TaskBody`] has, read in one pass whatever their order.
#[derive(Deserialize)]
struct TaskFields {
    kind: TaskKind,
    job_id: String,
    pass: Option<u32>,
    #[serde(default, rename = "redelivery")]
    resend: u32,
    index: Option<u32>,
    files: Option<Vec<ChunkFile>>,
    round: Option<u32>,
    step: Option<u32>,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum TaskKind {
    Plan,
    ContinuePlan,
    Chunk,
    Watch,
    DeleteStep,
    WatchDeletion,
}

impl TryFrom<TaskFields> for TaskBody {
    type Error = String;

    fn try_from(fields: TaskFields) -> Result<Self, String> {
        let TaskFields { kind, job_id, pass, resend, index, files, round, step } = fields;
        Ok(match kind {
            TaskKind::Plan => TaskBody::Plan { job_id },
            TaskKind::ContinuePlan => TaskBody::ContinuePlan { job_id, pass: required_field(pass, "pass")?, resend },
            TaskKind::Chunk => TaskBody::Chunk {
                job_id,
                index: required_field(index, "index")?,
                files: required_field(files, "files")?,
                resend,
            },
            TaskKind::Watch => TaskBody::Watch { job_id, round: required_field(round, "round")? },
            TaskKind::DeleteStep => TaskBody::DeleteStep { job_id, step: required_field(step, "step")?, resend },
            TaskKind::WatchDeletion => TaskBody::WatchDeletion { job_id, round: required_field(round, "round")? },
        })
    }
}

impl TaskBody {
    /// The queue's task: this body under its name.
    pub fn task(&self) -> yds_queue::Task {
        yds_queue::Task::new(self.task_name(), self)
    }

    /// A deterministic name, so a re-enqueue of the same work is deduplicated.
    pub fn task_name(&self) -> String {
        match self {
            TaskBody::Plan { job_id } => format!("{job_id}-plan"),
            TaskBody::ContinuePlan { job_id, pass, resend: 0 } => format!("{job_id}-plan-{pass:04}"),
            TaskBody::ContinuePlan { job_id, pass, resend } => format!("{job_id}-plan-{pass:04}-r{resend}"),
            TaskBody::Chunk { job_id, index, resend: 0, .. } => format!("{job_id}-chunk-{index:07}"),
            TaskBody::Chunk { job_id, index, resend, .. } => format!("{job_id}-chunk-{index:07}-r{resend}"),
            TaskBody::Watch { job_id, round } => format!("{job_id}-watch-{round:05}"),
            TaskBody::DeleteStep { job_id, step, resend: 0 } => format!("{job_id}-delete-{step:06}"),
            TaskBody::DeleteStep { job_id, step, resend } => format!("{job_id}-delete-{step:06}-r{resend}"),
            TaskBody::WatchDeletion { job_id, round } => format!("{job_id}-dwatch-{round:05}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use yds_store::Location;

    #[test]
    fn every_task_body_reads_back_as_written_and_a_missing_field_is_named() {
        let file = ChunkFile {
            split: "train".into(),
            file_name: "a.jpg".into(),
            image: Location::Packed { key: "temp/j/packs/0".into(), offset: 0, size: 10 },
            size: 10,
            label: Some(Location::Tree { source: 0, path: "labels/train/a.txt".into() }),
            label_size: 42,
        };
        let bodies = [
            TaskBody::Plan { job_id: "j".into() },
            TaskBody::ContinuePlan { job_id: "j".into(), pass: 3, resend: 0 },
            TaskBody::ContinuePlan { job_id: "j".into(), pass: 3, resend: 2 },
            TaskBody::Chunk { job_id: "j".into(), index: 7, files: vec![file.clone(), file], resend: 1 },
            TaskBody::Chunk { job_id: "j".into(), index: 8, files: Vec::new(), resend: 0 },
            TaskBody::Watch { job_id: "j".into(), round: 4 },
            TaskBody::DeleteStep { job_id: "j".into(), step: 5, resend: 0 },
            TaskBody::DeleteStep { job_id: "j".into(), step: 5, resend: 2 },
            TaskBody::WatchDeletion { job_id: "j".into(), round: 6 },
        ];
        for body in bodies {
            let json = serde_json::to_string(&body).unwrap();
            assert_eq!(serde_json::from_str::<TaskBody>(&json).unwrap(), body, "{json}");
        }
        let err = serde_json::from_str::<TaskBody>(r#"{"job_id": "j", "kind": "chunk", "files": []}"#).unwrap_err();
        assert!(err.to_string().contains("missing field `index`"), "{err}");
        let err = serde_json::from_str::<TaskBody>(r#"{"job_id": "j", "kind": "delete_step"}"#).unwrap_err();
        assert!(err.to_string().contains("missing field `step`"), "{err}");
        let err = serde_json::from_str::<TaskBody>(r#"{"kind": "plan"}"#).unwrap_err();
        assert!(err.to_string().contains("job_id"), "{err}");
    }

    #[test]
    fn task_names_are_valid_cloud_tasks_task_ids_and_distinct() {
        let job = "0123456789abcdef0123456789abcdef".to_owned();
        let chunk = |index, resend| TaskBody::Chunk { job_id: job.clone(), index, files: vec![], resend };
        let bodies = [
            TaskBody::Plan { job_id: job.clone() },
            TaskBody::ContinuePlan { job_id: job.clone(), pass: 9999, resend: 0 },
            TaskBody::ContinuePlan { job_id: job.clone(), pass: 9999, resend: 3 },
            chunk(9_999_999, 0),
            chunk(9_999_999, 3),
            TaskBody::Watch { job_id: job.clone(), round: 99_999 },
            TaskBody::DeleteStep { job_id: job.clone(), step: 999_999, resend: 0 },
            TaskBody::DeleteStep { job_id: job.clone(), step: 999_999, resend: 3 },
            TaskBody::WatchDeletion { job_id: job.clone(), round: 99_999 },
        ];
        let names: std::collections::BTreeSet<String> = bodies.iter().map(TaskBody::task_name).collect();
        assert_eq!(names.len(), bodies.len(), "{names:?}");
        for name in &names {
            assert!(yds_queue::cloud_tasks::is_valid_task_id(name), "{name}");
            assert_eq!(&yds_queue::cloud_tasks::task_id(name), name, "used as the task ID as it is");
        }
        assert_eq!(bodies[0].task().name, bodies[0].task_name());
    }
}
