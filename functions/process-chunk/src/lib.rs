//! process-chunk: the one task handler. Cloud Tasks (or the local queue) POSTs a
//! [`TaskBody`]: planning a job or importing one chunk.
//!
//! Answers 2xx when the task is done or can never succeed (then the job or chunk is recorded
//! as failed), and 5xx when a retry may help. On the queue's last attempt it records the
//! failure instead, so a job always reaches a terminal status.

use async_trait::async_trait;
use http::{Method, StatusCode};
use serde_json::json;
use yds::backends::Backends;
use yds::config::Chaos;
use yds::http::{json_response, ApiError, Caller, Handler, Request, Response};
use yds::ingest::{self, ChunkError, Delivery};
use yds::planning;
use yds::queue::caller::TaskCallers;
use yds::queue::headers;
use yds::tasks::TaskBody;

pub struct ProcessChunk {
    backends: Backends,
    callers: TaskCallers,
    max_attempts: u32,
    chaos: Chaos,
}

impl ProcessChunk {
    pub fn new(backends: Backends, callers: TaskCallers, max_attempts: u32, chaos: Chaos) -> Self {
        Self { backends, callers, max_attempts, chaos }
    }
}

impl ProcessChunk {
    /// Whether to inject a crash into this delivery (`YDS_CHAOS_CRASH`). Never on the last
    /// attempt: injected faults must not exhaust the queue.
    fn injected_crash(&self, last_attempt: bool) -> bool {
        !last_attempt && self.chaos.crash > 0.0 && rand::random::<f64>() < self.chaos.crash
    }
}

#[async_trait]
impl Handler for ProcessChunk {
    async fn handle(&self, req: Request, _caller: &Caller) -> Result<Response, ApiError> {
        if req.method() != Method::POST {
            return Err(ApiError::MethodNotAllowed);
        }
        if let Err(refused) = self.callers.check(req.headers()) {
            tracing::warn!(reason = refused.0, "task delivery refused");
            return Err(ApiError::Forbidden("only the task queue may call this endpoint".into()));
        }
        let body: TaskBody =
            serde_json::from_slice(req.body()).map_err(|e| ApiError::BadRequest(format!("not a task body: {e}")))?;
        let retries = headers::retry_count(req.headers());
        let last_attempt = retries + 1 >= self.max_attempts;
        match &body {
            TaskBody::Plan { job_id } | TaskBody::ContinuePlan { job_id, .. } => {
                planning::plan_or_fail(&self.backends, job_id, last_attempt).await.map_err(ApiError::Unavailable)?;
                // The pass is done but its answer is lost: the redelivery must change nothing.
                if self.injected_crash(last_attempt) {
                    return Err(ApiError::Internal("injected crash after planning (YDS_CHAOS_CRASH)".into()));
                }
            }
            TaskBody::Watch { job_id, round } => yds::watchdog::watch(&self.backends, job_id, *round)
                .await
                .map_err(|e| ApiError::Unavailable(e.to_string()))?,
            TaskBody::Chunk { job_id, index, files, .. } => {
                let delivery = Delivery { crash_half_way: self.injected_crash(last_attempt) };
                match ingest::process_chunk(&self.backends, job_id, *index, files, delivery).await {
                    Ok(()) => {}
                    Err(ChunkError::InjectedCrash) => {
                        return Err(ApiError::Internal("injected crash (YDS_CHAOS_CRASH)".into()))
                    }
                    Err(err) if last_attempt => {
                        tracing::error!(job_id, index, error = %err, "chunk failed on its last attempt");
                        ingest::give_up_chunk(&self.backends, job_id, *index, files, "storage or database error")
                            .await
                            .map_err(ApiError::internal)?;
                    }
                    Err(err) => return Err(ApiError::Unavailable(err.to_string())),
                }
            }
        }
        Ok(json_response(StatusCode::OK, &json!({"status": "done"})))
    }

    async fn health(&self) -> Result<(), String> {
        self.backends.db.ping().await.map_err(|e| e.to_string())
    }
}

/// Sizes from which glibc's `malloc` maps memory of its own instead of carving it from an
/// arena: above it, a freed buffer goes back to the system at once.
const MMAP_THRESHOLD: i32 = 1 << 20;
/// Allocation arenas, instead of eight per core.
const ARENA_MAX: i32 = 2;

/// Keeps glibc's allocator from holding on to freed image buffers. By default it raises its
/// mmap threshold to the largest block freed so far (up to 32 MiB): after one 16 MiB read, every
/// image buffer comes from arenas that rarely shrink, one per thread. Measured with 10 000
/// realistic images, process-chunk peaked at 145–156 MB that way and at 67–109 MB with a fixed
/// 1 MiB threshold. Called once, first thing, by `main`.
pub fn return_freed_memory_promptly() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `mallopt` only sets allocator parameters; it is called before any other thread
    // exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        libc::mallopt(libc::M_ARENA_MAX, ARENA_MAX);
    }
}
