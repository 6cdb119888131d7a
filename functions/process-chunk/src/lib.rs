//! process-chunk: the one task handler. Cloud Tasks (or the local queue) POSTs a
//! [`TaskBody`]: planning a job or importing one chunk.
//!
//! Answers 2xx when the task is done or can never succeed (then the job or chunk is recorded
//! as failed), and 5xx when a retry may help. On the queue's last attempt it records the
//! failure instead, so a job always reaches a terminal status.

use async_trait::async_trait;
use http::{Method, StatusCode};
use serde_json::json;
use yds_config::Chaos;
use yds_edge::{json_response, ApiError, Caller, Handler, Request, Response};
use yds_import::{Attempt, ImportError, Importer, TaskBody};
use yds_queue::caller::TaskCallers;
use yds_queue::headers;

pub struct ProcessChunk {
    importer: Importer,
    callers: TaskCallers,
    max_attempts: u32,
    chaos: Chaos,
}

impl ProcessChunk {
    pub fn new(importer: Importer, callers: TaskCallers, max_attempts: u32, chaos: Chaos) -> Self {
        Self { importer, callers, max_attempts, chaos }
    }

    /// Whether to inject a crash into this attempt (`YDS_CHAOS_CRASH`). Never on the last
    /// attempt: injected faults must not exhaust the queue.
    fn injected_crash(&self, is_last: bool) -> bool {
        !is_last && self.chaos.crash > 0.0 && rand::random::<f64>() < self.chaos.crash
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
        let is_last = headers::retry_count(req.headers()) + 1 >= self.max_attempts;
        let attempt = Attempt { is_last, crash: self.injected_crash(is_last) };
        // The task was delivered with the trace it was enqueued under (the edge read its
        // `traceparent`); the tasks it enqueues in turn carry the same one.
        let trace = req.extensions().get::<yds_queue::trace::TraceContext>().cloned();
        match yds_queue::trace::scope(trace, yds_import::deliver(&self.importer, &body, attempt)).await {
            Ok(()) => Ok(json_response(StatusCode::OK, &json!({"status": "done"}))),
            Err(ImportError::InjectedCrash) => Err(ApiError::Internal("injected crash (YDS_CHAOS_CRASH)".into())),
            Err(err) => Err(ApiError::Unavailable(err.to_string())),
        }
    }

    async fn health(&self) -> Result<(), String> {
        self.importer.db.ping().await.map_err(|e| e.to_string())
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
