//! Cloud Storage's resumable upload protocol, as `PUT /uploads/{upload_id}` speaks it where the
//! object store has no sessions of its own (the local directory): the same client code then
//! uploads to a Cloud Storage session URI and to the local stack.
//!
//! A `PUT` carries `Content-Range: bytes {first}-{last}/{total|*}` and those bytes (a piece), or
//! an empty body with `bytes */{total|*}` (a status query). The answer is `308` with
//! `Range: bytes=0-{n-1}` while `n` bytes of an unfinished upload are stored (no `Range` when
//! none are), and `200`/`201` once the last byte arrived. A piece that does not start where the
//! stored bytes end writes nothing and gets the `308` that says where they end, so a client
//! that lost an answer (a dropped connection) asks, or resends, from there. Every piece but the
//! last is a multiple of 256 KiB, as Cloud Storage requires.
//!
//! This module is the pure part: reading the header and judging a piece against the upload's
//! limits. Nothing here touches storage.

use bytes::Bytes;
use http::{header, HeaderValue, StatusCode};
use serde::Serialize;

/// Every piece but the last is a multiple of this (Cloud Storage's rule).
pub const PIECE_ALIGNMENT: u64 = 256 * 1024;
/// The largest piece one `PUT` may carry here (Cloud Storage takes more; clients send 8 MiB).
pub const MAX_PIECE_BYTES: usize = 16 << 20;

/// What a `Content-Range` header asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentRange {
    /// `bytes {first}-{last}/{total|*}`: the piece's bytes `first..=last`.
    Piece { first: u64, last: u64, total: Option<u64> },
    /// `bytes */{total|*}`: how far has the upload come?
    Query { total: Option<u64> },
}

impl ContentRange {
    /// Reads the header of a `PUT` whose body has `body_len` bytes. Without the header, a
    /// non-empty body is the whole object in one piece (as Cloud Storage takes it).
    pub fn of_request(header: Option<&str>, body_len: u64) -> Result<Self, String> {
        match header {
            Some(text) => Self::parse(text),
            None if body_len > 0 => Ok(ContentRange::Piece { first: 0, last: body_len - 1, total: Some(body_len) }),
            None => Err("a `Content-Range` header is required: `bytes FIRST-LAST/TOTAL` with the bytes, \
                 or `bytes */TOTAL` to ask how far the upload has come"
                .into()),
        }
    }

    /// Parses `bytes {first}-{last}/{total|*}` or `bytes */{total|*}`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "`Content-Range: {text}` is not `bytes FIRST-LAST/TOTAL`, `bytes FIRST-LAST/*`, `bytes */TOTAL` or `bytes */*`"
            )
        };
        let rest = text.trim().strip_prefix("bytes ").ok_or_else(bad)?.trim_start();
        let (range, total) = rest.split_once('/').ok_or_else(bad)?;
        let number = |digits: &str| {
            let digits = digits.trim();
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            digits.parse::<u64>().map_err(|_| bad())
        };
        let total = match total.trim() {
            "*" => None,
            digits => Some(number(digits)?),
        };
        if range.trim() == "*" {
            return Ok(ContentRange::Query { total });
        }
        let (first, last) = range.split_once('-').ok_or_else(bad)?;
        let (first, last) = (number(first)?, number(last)?);
        if last < first {
            return Err(format!("`Content-Range: {text}`: the last byte comes before the first"));
        }
        if let Some(total) = total {
            if last >= total {
                return Err(format!("`Content-Range: {text}`: the piece ends past the total of {total} bytes"));
            }
        }
        Ok(ContentRange::Piece { first, last, total })
    }

    /// The upload's total size, when the request says it.
    pub fn total(&self) -> Option<u64> {
        match *self {
            ContentRange::Piece { total, .. } | ContentRange::Query { total } => total,
        }
    }
}

/// What an upload may hold: its limit and the size declared when it was created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    pub max_bytes: u64,
    pub declared: Option<u64>,
}

/// Why a request's range is refused before anything is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The upload would grow past its limit: 413.
    TooLarge(String),
    /// The request contradicts itself or the upload: 400.
    Bad(String),
}

/// Checks a request against the upload's bounds and its own body, before anything is written.
pub fn check(range: &ContentRange, body_len: u64, bounds: Bounds) -> Result<(), Refusal> {
    if let Some(total) = range.total() {
        if total > bounds.max_bytes {
            return Err(Refusal::TooLarge(format!(
                "the upload is {total} bytes, more than the limit of {} bytes",
                bounds.max_bytes
            )));
        }
        if let Some(declared) = bounds.declared.filter(|declared| *declared != total) {
            return Err(Refusal::Bad(format!(
                "`Content-Range` says the upload is {total} bytes, but {declared} bytes were declared when it was created"
            )));
        }
    }
    match *range {
        ContentRange::Query { .. } if body_len > 0 => {
            Err(Refusal::Bad("a status query (`Content-Range: bytes */…`) has an empty body".into()))
        }
        ContentRange::Query { .. } => Ok(()),
        ContentRange::Piece { first, last, total } => {
            // The size declared up front is the total when the request does not repeat it.
            let total = total.or(bounds.declared);
            let len = last - first + 1;
            if body_len != len {
                return Err(Refusal::Bad(format!(
                    "the body has {body_len} bytes, but `Content-Range: bytes {first}-{last}/…` announces {len}"
                )));
            }
            if last >= bounds.max_bytes {
                return Err(Refusal::TooLarge(format!(
                    "the piece ends at byte {}, past the limit of {} bytes",
                    last + 1,
                    bounds.max_bytes
                )));
            }
            if let Some(total) = total.filter(|total| last >= *total) {
                return Err(Refusal::Bad(format!(
                    "the piece ends at byte {}, past the upload's {total} bytes",
                    last + 1
                )));
            }
            let is_last = total == Some(last + 1);
            if !is_last && len % PIECE_ALIGNMENT != 0 {
                return Err(Refusal::Bad(format!(
                    "a piece other than the last must be a multiple of {PIECE_ALIGNMENT} bytes (256 KiB); this one has {len}"
                )));
            }
            Ok(())
        }
    }
}

/// Where an upload stands, as a `PUT` is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// `received` bytes are stored, and more are to come: `308`.
    Incomplete { received: u64 },
    /// The last byte arrived; `now` when this request is the one that finished it (`201`),
    /// not when it was already finished (`200`).
    Complete { size: u64, now: bool },
}

/// Where an upload stands once `received` bytes are stored, if the request says the total.
pub fn standing(received: u64, total: Option<u64>) -> Standing {
    match total {
        Some(total) if received == total => Standing::Complete { size: total, now: true },
        _ => Standing::Incomplete { received },
    }
}

/// The body of an unfinished upload's answer (`308`).
#[derive(Debug, Serialize)]
struct Progress<'a> {
    upload_id: &'a str,
    received_bytes: u64,
}

/// The body of a finished upload's answer.
#[derive(Debug, Serialize)]
struct Finished<'a> {
    upload_id: &'a str,
    source_url: String,
    size_bytes: u64,
}

/// The HTTP answer for an upload's standing.
pub fn answer(upload_id: &str, standing: Standing) -> http::Response<Bytes> {
    match standing {
        Standing::Incomplete { received } => {
            // The body repeats the `Range` for people reading it; clients read the header.
            let body = Progress { upload_id, received_bytes: received };
            let mut response = yds_edge::json_response(StatusCode::PERMANENT_REDIRECT, &body);
            if received > 0 {
                let range = HeaderValue::from_str(&format!("bytes=0-{}", received - 1)).expect("digits are valid");
                response.headers_mut().insert(header::RANGE, range);
            }
            response
        }
        Standing::Complete { size, now } => {
            let status = if now { StatusCode::CREATED } else { StatusCode::OK };
            let body = Finished { upload_id, source_url: crate::source_url(upload_id), size_bytes: size };
            yds_edge::json_response(status, &body)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn piece(first: u64, last: u64, total: Option<u64>) -> ContentRange {
        ContentRange::Piece { first, last, total }
    }

    #[test]
    fn content_ranges_are_read_as_cloud_storage_writes_them() {
        assert_eq!(ContentRange::parse("bytes 0-262143/1000000").unwrap(), piece(0, 262_143, Some(1_000_000)));
        assert_eq!(ContentRange::parse("bytes 262144-524287/*").unwrap(), piece(262_144, 524_287, None));
        assert_eq!(ContentRange::parse("bytes */1000000").unwrap(), ContentRange::Query { total: Some(1_000_000) });
        assert_eq!(ContentRange::parse("bytes */*").unwrap(), ContentRange::Query { total: None });
        assert_eq!(ContentRange::parse("  bytes 5-5/6 ").unwrap(), piece(5, 5, Some(6)));
        for bad in
            ["", "bytes", "bytes 0-9", "items 0-9/10", "bytes 0-/10", "bytes -9/10", "bytes a-9/10", "bytes 0-9/ten"]
        {
            let err = ContentRange::parse(bad).unwrap_err();
            assert!(err.contains("is not `bytes FIRST-LAST/TOTAL`"), "{bad:?}: {err}");
        }
        assert!(ContentRange::parse("bytes +1-9/10").is_err(), "digits only");
        assert!(ContentRange::parse("bytes 9-0/10").unwrap_err().contains("before the first"));
        assert!(ContentRange::parse("bytes 0-10/10").unwrap_err().contains("past the total"));
        assert!(ContentRange::parse("bytes 0-99999999999999999999/*").is_err(), "beyond u64");
    }

    #[test]
    fn a_put_without_content_range_is_the_whole_object() {
        assert_eq!(ContentRange::of_request(None, 10).unwrap(), piece(0, 9, Some(10)));
        assert!(ContentRange::of_request(None, 0).unwrap_err().contains("`Content-Range` header is required"));
        assert_eq!(ContentRange::of_request(Some("bytes */*"), 0).unwrap(), ContentRange::Query { total: None });
    }

    #[test]
    fn pieces_are_checked_against_the_limit_the_declared_size_and_their_body() {
        let bounds = Bounds { max_bytes: 4 * MIB, declared: None };
        let aligned = PIECE_ALIGNMENT;
        check(&piece(0, aligned - 1, None), aligned, bounds).unwrap();
        check(&piece(aligned, aligned + 9, Some(aligned + 10)), 10, bounds).unwrap();
        check(&ContentRange::Query { total: None }, 0, bounds).unwrap();
        // 413: a total past the limit, or a piece that reaches past it.
        let too_large = check(&ContentRange::Query { total: Some(4 * MIB + 1) }, 0, bounds).unwrap_err();
        assert_eq!(
            too_large,
            Refusal::TooLarge("the upload is 4194305 bytes, more than the limit of 4194304 bytes".into())
        );
        let past = check(&piece(4 * MIB, 4 * MIB + aligned - 1, None), aligned, bounds).unwrap_err();
        assert!(matches!(&past, Refusal::TooLarge(m) if m.contains("past the limit of 4194304 bytes")), "{past:?}");
        check(&piece(4 * MIB - aligned, 4 * MIB - 1, None), aligned, bounds).unwrap();
        // 400: a body that is not the announced piece, a misaligned piece that is not the last,
        // a total other than the declared one, a query with a body.
        let short = check(&piece(0, aligned - 1, None), aligned - 7, bounds).unwrap_err();
        assert!(matches!(&short, Refusal::Bad(m) if m.contains("the body has 262137 bytes")), "{short:?}");
        let misaligned = check(&piece(0, 999, None), 1000, bounds).unwrap_err();
        assert!(matches!(&misaligned, Refusal::Bad(m) if m.contains("multiple of 262144")), "{misaligned:?}");
        let misaligned = check(&piece(0, 999, Some(5000)), 1000, bounds).unwrap_err();
        assert!(matches!(misaligned, Refusal::Bad(_)), "not the last piece of 5000 bytes");
        check(&piece(0, 999, Some(1000)), 1000, bounds).unwrap();
        let declared = Bounds { declared: Some(1000), ..bounds };
        check(&piece(0, 999, Some(1000)), 1000, declared).unwrap();
        check(&piece(0, 999, None), 1000, declared).expect("the declared size makes it the last piece");
        let past = check(&piece(0, 1000, None), 1001, declared).unwrap_err();
        assert!(matches!(&past, Refusal::Bad(m) if m.contains("past the upload's 1000 bytes")), "{past:?}");
        let other = check(&piece(0, 1000, Some(1001)), 1001, declared).unwrap_err();
        assert!(matches!(&other, Refusal::Bad(m) if m.contains("1000 bytes were declared")), "{other:?}");
        let query = check(&ContentRange::Query { total: None }, 3, bounds).unwrap_err();
        assert!(matches!(query, Refusal::Bad(_)));
    }

    #[test]
    fn the_answer_is_308_with_the_stored_range_until_the_last_byte() {
        assert_eq!(standing(0, None), Standing::Incomplete { received: 0 });
        assert_eq!(standing(10, Some(11)), Standing::Incomplete { received: 10 });
        assert_eq!(standing(11, Some(11)), Standing::Complete { size: 11, now: true });

        let nothing = answer("u1", Standing::Incomplete { received: 0 });
        assert_eq!(nothing.status(), 308);
        assert!(!nothing.headers().contains_key(header::RANGE), "no Range when nothing is stored");
        let some = answer("u1", Standing::Incomplete { received: 262_144 });
        assert_eq!(some.status(), 308);
        assert_eq!(some.headers()[header::RANGE], "bytes=0-262143");
        assert_eq!(some.headers()[header::CONTENT_TYPE], "application/json");
        let body: serde_json::Value = serde_json::from_slice(some.body()).unwrap();
        assert_eq!(body, serde_json::json!({"upload_id": "u1", "received_bytes": 262_144}));
        let finished = answer("u1", Standing::Complete { size: 11, now: true });
        assert_eq!(finished.status(), 201);
        let body: serde_json::Value = serde_json::from_slice(finished.body()).unwrap();
        assert_eq!(body, serde_json::json!({"upload_id": "u1", "source_url": "upload://u1", "size_bytes": 11}));
        assert_eq!(answer("u1", Standing::Complete { size: 11, now: false }).status(), 200);
    }
}
