//! The trace context a request or task carries: W3C `traceparent`
//! (`00-{32 hex trace id}-{16 hex span id}-{2 hex flags}`) or Google's `X-Cloud-Trace-Context`
//! (`{32 hex trace id}/{decimal span id};o=1`). Plain parsing only — what to do with a request
//! that carries neither (a new trace) is the edge's business, and where the context travels
//! (task headers) the queue's. A malformed header is ignored, never an error: a client's
//! tracing must not fail its request.

/// The W3C header name, on requests and on task deliveries.
pub const TRACEPARENT: &str = "traceparent";
/// Google's own header, which Cloud Run's front end and older clients send.
pub const CLOUD_TRACE_CONTEXT: &str = "x-cloud-trace-context";

/// One trace and the span within it that a line belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    /// 32 lowercase hex digits, not all zero.
    pub trace_id: String,
    /// 16 lowercase hex digits, not all zero.
    pub span_id: String,
    pub sampled: bool,
}

impl TraceContext {
    /// Parses a W3C `traceparent` value; `None` when malformed (wrong lengths, not hex, an
    /// all-zero id, version `ff`).
    pub fn from_traceparent(value: &str) -> Option<Self> {
        let mut parts = value.trim().split('-');
        let (version, trace_id, span_id, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        // Version 00 has exactly four parts; later versions may append more.
        if version.len() != 2 || !is_hex(version) || version == "ff" || (version == "00" && parts.next().is_some()) {
            return None;
        }
        if !is_id(trace_id, 32) || !is_id(span_id, 16) || flags.len() != 2 || !is_hex(flags) {
            return None;
        }
        let flags = u8::from_str_radix(flags, 16).ok()?;
        Some(Self { trace_id: trace_id.to_owned(), span_id: span_id.to_owned(), sampled: flags & 1 == 1 })
    }

    /// Parses an `X-Cloud-Trace-Context` value (`TRACE_ID/SPAN_ID;o=1`, the span id decimal,
    /// `;o=…` optional); `None` when malformed.
    pub fn from_cloud_trace_context(value: &str) -> Option<Self> {
        let (ids, options) = match value.trim().split_once(';') {
            Some((ids, options)) => (ids, Some(options)),
            None => (value.trim(), None),
        };
        let (trace_id, span_id) = ids.split_once('/')?;
        if !is_id(trace_id, 32) || span_id.is_empty() || !span_id.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let span: u64 = span_id.parse().ok().filter(|&s| s != 0)?;
        let sampled = match options {
            None => false,
            Some(o) => match o.strip_prefix("o=")? {
                "1" => true,
                "0" => false,
                _ => return None,
            },
        };
        Some(Self { trace_id: trace_id.to_owned(), span_id: format!("{span:016x}"), sampled })
    }

    /// The context of `headers` as `(name, value)` pairs: `traceparent` first, else
    /// `X-Cloud-Trace-Context`, names compared case-insensitively; a malformed one is skipped.
    pub fn from_headers<'a>(headers: impl IntoIterator<Item = (&'a str, &'a str)> + Clone) -> Option<Self> {
        let find = |wanted: &str| {
            headers.clone().into_iter().find(|(name, _)| name.eq_ignore_ascii_case(wanted)).map(|(_, value)| value)
        };
        find(TRACEPARENT)
            .and_then(Self::from_traceparent)
            .or_else(|| find(CLOUD_TRACE_CONTEXT).and_then(Self::from_cloud_trace_context))
    }

    /// The W3C `traceparent` value of this context.
    pub fn traceparent(&self) -> String {
        format!("00-{}-{}-{:02x}", self.trace_id, self.span_id, u8::from(self.sampled))
    }
}

fn is_hex(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// `len` lowercase hex digits, not all zero (the W3C spec's invalid id).
fn is_id(s: &str, len: usize) -> bool {
    s.len() == len && is_hex(s) && s.bytes().any(|b| b != b'0')
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

    #[test]
    fn a_w3c_traceparent_gives_its_trace_span_and_sampled_flag() {
        let ctx = TraceContext::from_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
        assert_eq!(ctx.trace_id, TRACE);
        assert_eq!(ctx.span_id, "00f067aa0ba902b7");
        assert!(ctx.sampled);
        assert_eq!(ctx.traceparent(), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
    }

    #[test]
    fn a_cloud_trace_context_gives_its_trace_and_its_decimal_span_in_hex() {
        let ctx = TraceContext::from_cloud_trace_context(&format!("{TRACE}/123;o=1")).unwrap();
        assert_eq!(ctx, TraceContext { trace_id: TRACE.into(), span_id: "000000000000007b".into(), sampled: true });
        let unsampled = TraceContext::from_cloud_trace_context(&format!("{TRACE}/123")).unwrap();
        assert!(!unsampled.sampled);
    }

    #[test]
    fn malformed_headers_are_ignored() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902bz-01",
        ] {
            assert_eq!(TraceContext::from_traceparent(bad), None, "{bad:?}");
        }
        for bad in [
            "",
            TRACE,
            &format!("{TRACE}/"),
            &format!("{TRACE}/0;o=1"),
            &format!("{TRACE}/12a;o=1"),
            &format!("{TRACE}/12;o=2"),
            "nothex/12;o=1",
            &format!("{TRACE}/99999999999999999999999"),
        ] {
            assert_eq!(TraceContext::from_cloud_trace_context(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn traceparent_wins_and_a_malformed_one_falls_back_to_the_cloud_header() {
        let other = "0af7651916cd43dd8448eb211c80319c";
        let cloud = format!("{other}/1;o=1");
        let good = format!("00-{TRACE}-00f067aa0ba902b7-00");
        let both = [("Traceparent", good.as_str()), ("X-Cloud-Trace-Context", cloud.as_str())];
        assert_eq!(TraceContext::from_headers(both).unwrap().trace_id, TRACE);
        let broken = [("traceparent", "garbage"), ("x-cloud-trace-context", cloud.as_str())];
        assert_eq!(TraceContext::from_headers(broken).unwrap().trace_id, other);
        assert_eq!(TraceContext::from_headers([("x-other", "1")]), None);
    }
}
