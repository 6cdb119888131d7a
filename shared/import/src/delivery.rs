//! Running one delivered task: [`deliver`], the one way a task is run — by process-chunk for
//! each delivery of the queue, and by tests that run the queue's tasks in-process.

use tracing::Instrument;

use crate::error::ImportError;
use crate::importer::Importer;
use crate::tasks::TaskBody;
use crate::{coordinator, deletion, ingest, planning, watchdog};

/// How one attempt of a task is to be run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Attempt {
    /// The queue will not deliver the task again: what fails is recorded (the job fails, or the
    /// chunk is given up with its files as errors) instead of asking for a retry.
    pub is_last: bool,
    /// Fault injection (`YDS_CHAOS_CRASH`, never on a last attempt): a chunk stops after
    /// writing half of its documents, a planning pass loses its answer after finishing, a
    /// deletion step stops after its first batch.
    pub crash: bool,
}

/// Runs one attempt of `body`. `Ok` when the task is done or can never succeed (then its
/// failure is recorded); an error when the queue should deliver it again.
///
/// Its lines are logged in a `task` span naming the job (`job_id`) and, for an import's task,
/// its dataset (`dataset_id`), so every line of an import can be found by either.
pub async fn deliver(importer: &Importer, body: &TaskBody, attempt: Attempt) -> Result<(), ImportError> {
    let (job_id, is_import) = match body {
        TaskBody::Plan { job_id }
        | TaskBody::ContinuePlan { job_id, .. }
        | TaskBody::Watch { job_id, .. }
        | TaskBody::Chunk { job_id, .. } => (job_id, true),
        TaskBody::DeleteStep { job_id, .. } | TaskBody::WatchDeletion { job_id, .. } => (job_id, false),
    };
    let span = tracing::info_span!("task", job_id = %job_id, dataset_id = tracing::field::Empty);
    // The delivery's request span, when it declares them (the edge's does): its "served"
    // line then names the job too.
    let request = tracing::Span::current();
    request.record("job_id", job_id.as_str());
    if is_import {
        // One point read by id; a job that is gone is the task's own business to report.
        if let Ok(Some(job)) = importer.db.jobs.find(job_id).await {
            span.record("dataset_id", job.dataset_id.as_str());
            request.record("dataset_id", job.dataset_id.as_str());
        }
    }
    run(importer, body, attempt).instrument(span).await
}

async fn run(importer: &Importer, body: &TaskBody, attempt: Attempt) -> Result<(), ImportError> {
    match body {
        TaskBody::Plan { job_id } | TaskBody::ContinuePlan { job_id, .. } => {
            planning::plan_or_fail(importer, job_id, attempt.is_last).await?;
            // The pass is done but its answer is lost: the next attempt must change nothing.
            match attempt.crash {
                true => Err(ImportError::InjectedCrash),
                false => Ok(()),
            }
        }
        TaskBody::Watch { job_id, round } => watchdog::watch(importer, job_id, *round).await,
        TaskBody::DeleteStep { job_id, step, .. } => deletion::step(importer, job_id, *step, attempt.crash).await,
        TaskBody::WatchDeletion { job_id, round } => deletion::watch(importer, job_id, *round).await,
        TaskBody::Chunk { job_id, index, files, .. } => {
            match ingest::process_chunk(importer, job_id, *index, files, attempt.crash).await {
                Err(err) if attempt.is_last => {
                    tracing::error!(job_id, index, error = %err, "chunk failed on its last attempt");
                    coordinator::give_up_chunk(importer, job_id, *index, files, "storage or database error").await
                }
                outcome => outcome,
            }
        }
    }
}
