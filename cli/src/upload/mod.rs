//! Sending a local archive or folder to an upload target with the resumable protocol
//! (`POST /uploads`, then `PUT` pieces to its `upload_url`).
//!
//! Memory is one piece (8 MiB by default: the local stack takes at most 16 MiB per PUT) and a byte of look-ahead: a piece stays in memory
//! until the server acknowledges it, so a folder packed on the fly, which cannot be read twice,
//! is resumed too. After a dropped connection, a timeout or a 5xx, the client asks the server
//! how much it has (`Content-Range: bytes */…`) and goes on from there, after a backoff; a
//! bounded number of failures in a row without progress ends the upload.

pub mod range;
pub mod source;

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use indicatif::ProgressBar;
use reqwest::{Method, StatusCode, Url};

use crate::client::Api;
use crate::error::{Error, Problem, Result};
use range::ContentRange;
pub use source::Source;

/// How long one PUT of a piece may take.
const PUT_TIMEOUT: Duration = Duration::from_secs(600);
/// What the body stream hands to the connection at a time (and the progress bar's step).
const SEND_STEP: usize = 64 * 1024;

/// What the server said to a PUT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// `308`: it has the first `received` bytes.
    Incomplete { received: u64 },
    /// `200`/`201`: the object is complete.
    Complete,
}

/// Why a PUT did not get an [`Answer`].
#[derive(Debug)]
pub enum PutError {
    /// Worth asking where the server stands and going on (dropped connection, timeout, 5xx).
    Transient(String),
    /// The server refused (413, 404 for an expired upload, 400...): the upload ends.
    Fatal(Error),
}

/// One PUT of the protocol; the HTTP one, or a fake in tests.
pub trait Transport {
    /// Sends `body` as the bytes `range` names (none for a query).
    fn put(&mut self, range: ContentRange, body: Bytes) -> impl std::future::Future<Output = Result<Answer, PutError>>;
}

/// How often and how patiently to go on after failures.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    /// Failures in a row without progress before giving up.
    pub attempts: u32,
    pub first_delay: Duration,
    pub max_delay: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry { attempts: 6, first_delay: Duration::from_millis(500), max_delay: Duration::from_secs(15) }
    }
}

impl Retry {
    /// The wait before the `n`-th retry (1-based): doubling from the first delay, capped.
    pub fn delay(&self, n: u32) -> Duration {
        self.first_delay.saturating_mul(1 << n.saturating_sub(1).min(16)).min(self.max_delay)
    }
}

/// The resumable upload of one source through one transport.
pub struct Uploader<T> {
    pub transport: T,
    /// Bytes per PUT: a multiple of 256 KiB.
    pub piece: usize,
    pub retry: Retry,
    /// Shows acknowledged bytes; its `println` tells about resumptions.
    pub bar: ProgressBar,
}

impl<T: Transport> Uploader<T> {
    /// Sends every byte of `source`; `known_total` when its size is known from the start.
    /// Returns the upload's size once the server has it all.
    pub async fn run<S: Source>(&mut self, source: &mut S, known_total: Option<u64>) -> Result<u64> {
        let mut acked: u64 = 0;
        // The bytes from `acked` on that the client holds: the unacknowledged piece and the
        // look-ahead that tells whether it is the last.
        let mut pending = Bytes::new();
        let mut ended = false;
        let mut failures = 0u32;
        loop {
            if !ended && pending.len() <= self.piece {
                let mut buf = BytesMut::with_capacity(self.piece + 1);
                buf.extend_from_slice(&pending);
                ended = !source.fill(&mut buf, self.piece + 1).await?;
                pending = buf.freeze();
            }
            let last = ended && pending.len() <= self.piece;
            let len = if last { pending.len() } else { self.piece };
            let total = if last { Some(acked + len as u64) } else { known_total };
            let range = match len {
                // Nothing (left) to send: an empty source, finalized by a query with its total.
                0 => ContentRange::Query { total },
                _ => ContentRange::Piece { first: acked, last: acked + len as u64 - 1, total },
            };
            let (answer, recovered) = match self.transport.put(range, pending.slice(..len)).await {
                Ok(answer) => (answer, false),
                Err(PutError::Fatal(err)) => return Err(err),
                Err(PutError::Transient(reason)) => (self.recover(&mut failures, reason, total).await?, true),
            };
            match answer {
                Answer::Complete if last => {
                    let size = acked + len as u64;
                    self.bar.set_position(size);
                    return Ok(size);
                }
                Answer::Complete => return Err(Error::msg("the server ended the upload before its last byte")),
                Answer::Incomplete { received } => {
                    if received < acked {
                        return Err(Error::msg(format!(
                            "the upload server lost bytes it had acknowledged (it has {received}, had {acked}): \
                             run the import again"
                        )));
                    }
                    if received > acked + pending.len() as u64 {
                        return Err(Error::msg(format!(
                            "the upload server claims {received} bytes, more than the {} sent",
                            acked + pending.len() as u64
                        )));
                    }
                    if received > acked {
                        failures = 0;
                    } else if !recovered {
                        // A piece answered without progress: a failure too, or a server that
                        // keeps answering 308 at the same offset would be sent it forever.
                        failures += 1;
                        if failures > self.retry.attempts {
                            return Err(Error::msg(format!("the upload makes no progress at byte {acked}")));
                        }
                    }
                    pending = pending.slice((received - acked) as usize..);
                    acked = received;
                    self.bar.set_position(acked);
                }
            }
        }
    }

    /// After a transient failure: waits, then asks the server where it stands, until it
    /// answers or `retry.attempts` failures in a row.
    async fn recover(&mut self, failures: &mut u32, mut reason: String, total: Option<u64>) -> Result<Answer> {
        loop {
            *failures += 1;
            if *failures > self.retry.attempts {
                return Err(Error::msg(format!("the upload failed {} times in a row; last: {reason}", *failures - 1)));
            }
            let delay = self.retry.delay(*failures);
            let note = format!("upload interrupted ({reason}); resuming in {:.1} s", delay.as_secs_f64());
            self.bar.suspend(|| eprintln!("{note}"));
            tokio::time::sleep(delay).await;
            match self.transport.put(ContentRange::Query { total }, Bytes::new()).await {
                Ok(answer) => return Ok(answer),
                Err(PutError::Fatal(err)) => return Err(err),
                Err(PutError::Transient(next)) => reason = next,
            }
        }
    }
}

/// The protocol over HTTP to an `upload_url`; the API key only if it is the API's origin.
pub struct HttpTransport {
    pub api: Api,
    pub url: Url,
    /// Moves while a piece's bytes go out.
    pub bar: ProgressBar,
}

impl Transport for HttpTransport {
    async fn put(&mut self, range: ContentRange, body: Bytes) -> Result<Answer, PutError> {
        let start = range.first();
        let len = body.len();
        let bar = self.bar.clone();
        let steps = (0..len).step_by(SEND_STEP).map(move |at| {
            let end = (at + SEND_STEP).min(len);
            bar.set_position(start + end as u64);
            Ok::<_, std::io::Error>(body.slice(at..end))
        });
        let request = self
            .api
            .request(Method::PUT, self.url.clone())
            .header(reqwest::header::CONTENT_RANGE, range.to_string())
            .header(reqwest::header::CONTENT_LENGTH, len)
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .timeout(PUT_TIMEOUT)
            .body(reqwest::Body::wrap_stream(futures::stream::iter(steps)));
        let response = match request.send().await {
            Ok(response) => response,
            Err(err) => return Err(PutError::Transient(transport_reason(&self.api, &err))),
        };
        let status = response.status();
        match status {
            StatusCode::PERMANENT_REDIRECT => {
                let header = response.headers().get(reqwest::header::RANGE).and_then(|v| v.to_str().ok());
                range::received(header)
                    .map(|received| Answer::Incomplete { received })
                    .map_err(|e| PutError::Fatal(Error::msg(e)))
            }
            StatusCode::OK | StatusCode::CREATED => Ok(Answer::Complete),
            s if s.is_server_error() || s == StatusCode::REQUEST_TIMEOUT || s == StatusCode::TOO_MANY_REQUESTS => {
                Err(PutError::Transient(format!("HTTP {}", s.as_u16())))
            }
            s => {
                let bytes = response.bytes().await.unwrap_or_default();
                Err(PutError::Fatal(Error::Api(Problem::from_body(s.as_u16(), &bytes))))
            }
        }
    }
}

/// A transport failure in a few words, for the "resuming" line.
fn transport_reason(api: &Api, err: &reqwest::Error) -> String {
    match crate::error::transport(&api.origin(), err) {
        Error::Unreachable { reason, .. } => reason,
        other => other.to_string(),
    }
}

/// `POST /uploads`: an upload target for `file_name` (whose suffix tells the archive type).
pub async fn create(api: &Api, file_name: &str, size: Option<u64>) -> Result<Target> {
    let mut body = serde_json::json!({ "file_name": file_name });
    if let Some(size) = size {
        body["size_bytes"] = size.into();
    }
    let answer = api.call(Method::POST, api.url(&["uploads"]), Some(&body)).await?;
    let field = |name: &str| {
        answer[name]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| Error::msg(format!("POST /uploads answered without `{name}`")))
    };
    Ok(Target { upload_url: api.resolve(&field("upload_url")?)?, source_url: field("source_url")? })
}

/// Where to send an upload's bytes, and what to import afterwards.
#[derive(Debug, Clone)]
pub struct Target {
    pub upload_url: Url,
    /// `upload://{upload_id}`: the `archive_url` of the import.
    pub source_url: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server in memory that keeps what it is sent, loses connections when told to, and
    /// persists only whole 256 KiB granules of an interrupted piece, as Cloud Storage may.
    struct FakeServer {
        stored: Vec<u8>,
        complete: bool,
        /// Per PUT of a piece, in order: `Some(n)` = the connection drops after `n` bytes.
        drops: Vec<Option<usize>>,
        /// Queries fail this many times first.
        failing_queries: u32,
        puts: Vec<ContentRange>,
    }

    impl FakeServer {
        fn new(drops: Vec<Option<usize>>) -> Self {
            FakeServer { stored: Vec::new(), complete: false, drops, failing_queries: 0, puts: Vec::new() }
        }
    }

    impl Transport for FakeServer {
        async fn put(&mut self, range: ContentRange, body: Bytes) -> Result<Answer, PutError> {
            self.puts.push(range);
            match range {
                ContentRange::Query { total } => {
                    if self.failing_queries > 0 {
                        self.failing_queries -= 1;
                        return Err(PutError::Transient("refused".into()));
                    }
                    if total == Some(self.stored.len() as u64) {
                        self.complete = true;
                    }
                }
                ContentRange::Piece { first, last, total } => {
                    assert_eq!(last - first + 1, body.len() as u64);
                    if first != self.stored.len() as u64 {
                        // Not at the current offset: tell the client where it stands.
                        return Ok(Answer::Incomplete { received: self.stored.len() as u64 });
                    }
                    let drop = if self.drops.is_empty() { None } else { self.drops.remove(0) };
                    if let Some(cut) = drop {
                        let kept = cut.min(body.len()) / range::GRANULE * range::GRANULE;
                        self.stored.extend_from_slice(&body[..kept]);
                        return Err(PutError::Transient("connection reset".into()));
                    }
                    if total.is_none() {
                        assert_eq!(body.len() % range::GRANULE, 0, "a piece that is not the last is whole granules");
                    }
                    self.stored.extend_from_slice(&body);
                    if total == Some(self.stored.len() as u64) {
                        self.complete = true;
                    }
                }
            }
            if self.complete {
                Ok(Answer::Complete)
            } else {
                Ok(Answer::Incomplete { received: self.stored.len() as u64 })
            }
        }
    }

    fn uploader(server: FakeServer, piece: usize) -> Uploader<FakeServer> {
        let retry = Retry { attempts: 3, first_delay: Duration::ZERO, max_delay: Duration::ZERO };
        Uploader { transport: server, piece, retry, bar: ProgressBar::hidden() }
    }

    fn data(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 % 251) as u8).collect()
    }

    async fn upload(len: usize, piece: usize, drops: Vec<Option<usize>>, known: bool) -> (Result<u64>, FakeServer) {
        let bytes = data(len);
        let mut up = uploader(FakeServer::new(drops), piece);
        let mut source = source::Memory::new(bytes);
        let result = up.run(&mut source, known.then_some(len as u64)).await;
        (result, up.transport)
    }

    const G: usize = range::GRANULE;

    #[tokio::test]
    async fn a_stream_goes_in_whole_pieces_and_the_last_one_names_the_total() {
        let (result, server) = upload(2 * G + 10, G, vec![], false).await;
        assert_eq!(result.unwrap(), 2 * G as u64 + 10);
        assert_eq!(server.stored, data(2 * G + 10));
        let g = G as u64;
        assert_eq!(
            server.puts,
            [
                ContentRange::Piece { first: 0, last: g - 1, total: None },
                ContentRange::Piece { first: g, last: 2 * g - 1, total: None },
                ContentRange::Piece { first: 2 * g, last: 2 * g + 9, total: Some(2 * g + 10) },
            ]
        );
    }

    #[tokio::test]
    async fn a_stream_ending_on_a_piece_boundary_still_sends_its_last_piece_with_the_total() {
        let (result, server) = upload(2 * G, G, vec![], false).await;
        assert_eq!(result.unwrap(), 2 * G as u64);
        let g = G as u64;
        assert_eq!(server.puts.last(), Some(&ContentRange::Piece { first: g, last: 2 * g - 1, total: Some(2 * g) }));
        assert_eq!(server.puts.len(), 2);
    }

    #[tokio::test]
    async fn an_empty_source_is_finalized_by_a_query_with_total_zero() {
        let (result, server) = upload(0, G, vec![], false).await;
        assert_eq!(result.unwrap(), 0);
        assert_eq!(server.puts, [ContentRange::Query { total: Some(0) }]);
    }

    #[tokio::test]
    async fn a_dropped_piece_resumes_from_the_servers_offset_mid_piece() {
        // The second piece drops after 1.5 granules: the server keeps one granule of it.
        let (result, server) = upload(5 * G + 3, 2 * G, vec![None, Some(G + G / 2)], true).await;
        assert_eq!(result.unwrap(), 5 * G as u64 + 3);
        assert_eq!(server.stored, data(5 * G + 3), "every byte once, in order");
        let g = G as u64;
        let total = Some(5 * g + 3);
        assert_eq!(
            server.puts,
            [
                ContentRange::Piece { first: 0, last: 2 * g - 1, total },
                ContentRange::Piece { first: 2 * g, last: 4 * g - 1, total },
                ContentRange::Query { total },
                // The rest of the dropped piece, topped up from the source to a whole piece.
                ContentRange::Piece { first: 3 * g, last: 5 * g - 1, total },
                ContentRange::Piece { first: 5 * g, last: 5 * g + 2, total },
            ]
        );
    }

    #[tokio::test]
    async fn a_dropped_last_piece_that_arrived_whole_completes_on_the_query() {
        // The connection drops after the server stored everything (the answer was lost).
        let (result, server) = upload(G, G, vec![Some(G)], false).await;
        assert_eq!(result.unwrap(), G as u64);
        assert_eq!(server.stored, data(G));
        assert_eq!(server.puts.last(), Some(&ContentRange::Query { total: Some(G as u64) }));
    }

    #[tokio::test]
    async fn failing_queries_are_retried_and_too_many_failures_end_the_upload() {
        let mut server = FakeServer::new(vec![Some(0)]);
        server.failing_queries = 2;
        let mut up = uploader(server, G);
        let mut source = source::Memory::new(data(G + 1));
        assert_eq!(up.run(&mut source, None).await.unwrap(), G as u64 + 1);

        let mut server = FakeServer::new(vec![Some(0)]);
        server.failing_queries = 10;
        let mut up = uploader(server, G);
        let mut source = source::Memory::new(data(10));
        let err = up.run(&mut source, None).await.unwrap_err();
        assert!(err.to_string().contains("failed 3 times in a row; last: refused"), "{err}");
    }

    #[tokio::test]
    async fn a_server_that_loses_acknowledged_bytes_is_an_error() {
        struct Forgetful(u32);
        impl Transport for Forgetful {
            async fn put(&mut self, _: ContentRange, _: Bytes) -> Result<Answer, PutError> {
                self.0 += 1;
                Ok(Answer::Incomplete { received: if self.0 == 1 { G as u64 } else { 0 } })
            }
        }
        let retry = Retry { attempts: 3, first_delay: Duration::ZERO, max_delay: Duration::ZERO };
        let mut up = Uploader { transport: Forgetful(0), piece: G, retry, bar: ProgressBar::hidden() };
        let err = up.run(&mut source::Memory::new(data(3 * G)), None).await.unwrap_err();
        assert!(err.to_string().contains("lost bytes it had acknowledged"), "{err}");
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let retry = Retry::default();
        assert_eq!(retry.delay(1), Duration::from_millis(500));
        assert_eq!(retry.delay(3), Duration::from_secs(2));
        assert_eq!(retry.delay(10), Duration::from_secs(15));
    }
}
