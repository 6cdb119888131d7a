//! Log lines in Cloud Logging's structured form: one JSON object per event, on one line, with
//! the fields Cloud Logging reads — `severity`, `message`, `timestamp`, a request's
//! `httpRequest`, and `logging.googleapis.com/trace` / `logging.googleapis.com/spanId` — so
//! the console groups a request's lines, and every task it fans out to, under one trace.
//!
//! The fields of the spans an event is in (`request_id`, `job_id`, `dataset_id`, …) are
//! flattened into its line, outermost first. Two span or event fields are renamed rather than
//! copied: `trace_id` becomes `logging.googleapis.com/trace` (`projects/{project}/traces/{id}`
//! when the project is known, else the bare id) and `span_id` becomes
//! `logging.googleapis.com/spanId`. An event with an `http_status` field is a request's
//! "served" line: its `http_*` fields become `httpRequest`.
//!
//! A [`tracing_subscriber::Layer`] of our own rather than `fmt().json()`, whose field names
//! Cloud Logging does not read; it never writes anything but whole lines.

use std::fmt;
use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

/// Cloud Logging's key for the trace a line belongs to.
pub const TRACE_KEY: &str = "logging.googleapis.com/trace";
/// Cloud Logging's key for the span a line belongs to.
pub const SPAN_KEY: &str = "logging.googleapis.com/spanId";

/// Writes each event as one Cloud Logging JSON line to `writer`.
pub struct CloudLoggingLayer<W> {
    /// `GOOGLE_CLOUD_PROJECT`: traces are named `projects/{project}/traces/{id}` when set.
    project: Option<String>,
    writer: W,
}

impl<W> CloudLoggingLayer<W> {
    pub fn new(project: Option<String>, writer: W) -> Self {
        Self { project: project.filter(|p| !p.is_empty()), writer }
    }
}

/// A span's fields, kept in its extensions until it closes.
struct SpanFields(Map<String, Value>);

impl<S, W> Layer<S> for CloudLoggingLayer<W>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + 'static,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = JsonVisitor::default();
        attrs.record(&mut fields);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(SpanFields(fields.0));
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            let mut extensions = span.extensions_mut();
            if let Some(SpanFields(fields)) = extensions.get_mut::<SpanFields>() {
                let mut visitor = JsonVisitor(std::mem::take(fields));
                values.record(&mut visitor);
                *fields = visitor.0;
            }
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut line = Map::new();
        line.insert("severity".into(), severity(event.metadata().level()).into());
        line.insert("timestamp".into(), rfc3339(SystemTime::now()).into());
        let mut fields = Map::new();
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                if let Some(SpanFields(span_fields)) = span.extensions().get::<SpanFields>() {
                    fields.extend(span_fields.iter().map(|(k, v)| (k.clone(), v.clone())));
                }
            }
        }
        let mut visitor = JsonVisitor(fields);
        event.record(&mut visitor);
        let mut fields = visitor.0;
        let message = fields.remove("message").unwrap_or_else(|| Value::String(String::new()));
        line.insert("message".into(), message);
        if let Some(Value::String(trace)) = fields.remove("trace_id") {
            let trace = match &self.project {
                Some(project) => format!("projects/{project}/traces/{trace}"),
                None => trace,
            };
            line.insert(TRACE_KEY.into(), trace.into());
        }
        if let Some(span) = fields.remove("span_id") {
            line.insert(SPAN_KEY.into(), span);
        }
        if fields.contains_key("http_status") {
            line.insert("httpRequest".into(), http_request(&mut fields).into());
        }
        line.insert("target".into(), event.metadata().target().into());
        line.extend(fields);
        let mut bytes = serde_json::to_vec(&Value::Object(line)).unwrap_or_default();
        bytes.push(b'\n');
        // One write per line, so lines of concurrent events never interleave.
        let _ = self.writer.make_writer().write_all(&bytes);
    }
}

/// Cloud Logging's `HttpRequest` from the `http_*` fields of a "served" event.
fn http_request(fields: &mut Map<String, Value>) -> Map<String, Value> {
    let mut request = Map::new();
    for (field, key) in [
        ("http_method", "requestMethod"),
        ("http_url", "requestUrl"),
        ("http_status", "status"),
        ("http_user_agent", "userAgent"),
        ("http_remote_ip", "remoteIp"),
    ] {
        if let Some(value) = fields.remove(field) {
            request.insert(key.into(), value);
        }
    }
    if let Some(seconds) = fields.remove("http_latency_s").and_then(|v| v.as_f64()) {
        request.insert("latency".into(), format!("{seconds:.3}s").into());
    }
    request
}

/// Cloud Logging's severity for a tracing level (it has no TRACE: DEBUG).
fn severity(level: &Level) -> &'static str {
    match *level {
        Level::ERROR => "ERROR",
        Level::WARN => "WARNING",
        Level::INFO => "INFO",
        _ => "DEBUG",
    }
}

/// `time` as RFC 3339 in UTC with microseconds (`2026-12-07T16:30:00.123456Z`).
pub fn rfc3339(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rest) = ((secs / 86_400) as i64, secs % 86_400);
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        rest / 3600,
        rest / 60 % 60,
        rest % 60,
        since.subsec_micros()
    )
}

/// Collects fields as JSON values: numbers and booleans as such, everything else as text.
#[derive(Default)]
struct JsonVisitor(Map<String, Value>);

impl Visit for JsonVisitor {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0.insert(field.name().into(), value.to_string().into());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().into(), format!("{value:?}").into());
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Lines {
        type Writer = Lines;
        fn make_writer(&'a self) -> Lines {
            self.clone()
        }
    }

    fn capture(project: Option<&str>, work: impl FnOnce()) -> Vec<Value> {
        let lines = Lines::default();
        let subscriber =
            tracing_subscriber::registry().with(CloudLoggingLayer::new(project.map(str::to_owned), lines.clone()));
        tracing::subscriber::with_default(subscriber, work);
        let bytes = lines.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    }

    #[test]
    fn a_served_line_has_severity_message_timestamp_trace_span_fields_and_http_request() {
        let lines = capture(Some("proj"), || {
            let span = tracing::info_span!(
                "request",
                request_id = "r1",
                trace_id = "4bf92f3577b34da6a3ce929d0e0e4736",
                span_id = "00f067aa0ba902b7"
            );
            let _in = span.enter();
            let job = tracing::info_span!("task", job_id = "j1", dataset_id = tracing::field::Empty);
            job.record("dataset_id", "d1");
            let _job = job.enter();
            tracing::info!(
                http_method = "POST",
                http_url = "/datasets/import?x=1",
                http_status = 202u64,
                http_latency_s = 0.0123,
                http_user_agent = "curl/8",
                http_remote_ip = "10.0.0.1",
                "served"
            );
        });
        assert_eq!(lines.len(), 1);
        let line = &lines[0];
        assert_eq!(line["severity"], "INFO");
        assert_eq!(line["message"], "served");
        assert_eq!(line[TRACE_KEY], "projects/proj/traces/4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(line[SPAN_KEY], "00f067aa0ba902b7");
        assert_eq!(
            (&line["request_id"], &line["job_id"], &line["dataset_id"]),
            (&"r1".into(), &"j1".into(), &"d1".into())
        );
        assert_eq!(
            line["httpRequest"],
            serde_json::json!({"requestMethod": "POST", "requestUrl": "/datasets/import?x=1", "status": 202,
                "latency": "0.012s", "userAgent": "curl/8", "remoteIp": "10.0.0.1"})
        );
        assert!(line.get("trace_id").is_none() && line.get("http_status").is_none());
        let ts = line["timestamp"].as_str().unwrap();
        assert_eq!((ts.len(), &ts[10..11], &ts[ts.len() - 1..]), (27, "T", "Z"), "{ts}");
    }

    #[test]
    fn levels_map_to_cloud_severities_and_a_bare_trace_id_without_a_project() {
        let lines = capture(None, || {
            let span = tracing::info_span!("request", trace_id = "abc");
            let _in = span.enter();
            tracing::error!(error = "boom", "e");
            tracing::warn!("w");
            tracing::debug!(n = 3, "d");
            tracing::trace!("t");
        });
        let severities: Vec<_> = lines.iter().map(|l| l["severity"].as_str().unwrap()).collect();
        assert_eq!(severities, ["ERROR", "WARNING", "DEBUG", "DEBUG"]);
        assert_eq!(lines[0][TRACE_KEY], "abc");
        assert_eq!(lines[0]["error"], "boom");
        assert_eq!(lines[2]["n"], 3);
        assert!(lines[1].get("httpRequest").is_none());
    }

    #[test]
    fn timestamps_are_rfc3339_utc() {
        let t = UNIX_EPOCH + std::time::Duration::from_micros(1_796_660_400_123_456);
        assert_eq!(rfc3339(t), "2026-12-07T16:20:00.123456Z");
        assert_eq!(rfc3339(UNIX_EPOCH + std::time::Duration::from_secs(951_782_400)), "2000-02-29T00:00:00.000000Z");
    }
}
