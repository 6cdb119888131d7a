//! The trace a task carries: work running inside [`scope`] (a request the edge serves, a task
//! process-chunk delivers) enqueues its tasks with that trace's `traceparent`, which the queue
//! sends as a header of the task's delivery (Cloud Tasks' `HttpRequest.headers`; the local
//! dispatcher likewise). The edge reads it back from the delivery, so an import request and
//! every task it fans out to log under one trace id.

use std::future::Future;

pub use yds_config::trace::{TraceContext, TRACEPARENT};

tokio::task_local! {
    static CURRENT: Option<TraceContext>;
}

/// Runs `work` with `trace` as the current trace: the tasks it creates carry it (none with
/// `None`).
pub async fn scope<F: Future>(trace: Option<TraceContext>, work: F) -> F::Output {
    CURRENT.scope(trace, work).await
}

/// The trace of the work running now, if it runs inside [`scope`].
pub fn current() -> Option<TraceContext> {
    CURRENT.try_with(Clone::clone).ok().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Task;

    #[tokio::test]
    async fn a_task_created_in_a_scope_carries_its_traceparent_and_none_outside() {
        let trace = TraceContext::from_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
        let inside = scope(Some(trace), async { Task::new("t", &1) }).await;
        assert_eq!(inside.traceparent.as_deref(), Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
        assert_eq!(Task::new("t", &1).traceparent, None);
    }
}
