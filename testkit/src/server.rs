//! A loopback HTTP/1.1 file server, so imports from `http://` URLs run without the internet.
//!
//! [`FileServer`] serves the files under one root on `127.0.0.1` at a free port: GET and HEAD,
//! `Content-Length`, `Accept-Ranges: bytes`, and one byte range per request (`bytes=a-b`,
//! `bytes=a-`, `bytes=-n`) answered with 206 and `Content-Range`, or 416 when it lies past
//! the end. Several ranges in one header are answered with the whole file (200), which RFC 9110
//! allows. Bodies stream from disk in 64 KiB frames, so benchmark archives of any size are fine.
//! Paths with a `..` segment are refused with 403; missing files and folders get 404.
//! [`FileServer::start_ignoring_ranges`] plays the servers that ignore `Range` (every GET is a
//! 200 with the whole file, no `Accept-Ranges`), which an import must still handle.
//!
//! It must never listen anywhere but loopback. Dropping the [`FileServer`] stops accepting and
//! closes open connections.

use std::convert::Infallible;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncSeekExt, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Size of one body frame read from disk.
const CHUNK: usize = 64 * 1024;

/// A running loopback file server; stops when dropped.
#[derive(Debug)]
pub struct FileServer {
    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub base_url: String,
    requests: Arc<AtomicU64>,
    bytes: Arc<AtomicU64>,
    shutdown: watch::Sender<bool>,
}

struct State {
    root: PathBuf,
    /// Whether `Range` is honoured.
    ranges: bool,
    requests: Arc<AtomicU64>,
    bytes: Arc<AtomicU64>,
}

impl FileServer {
    /// Binds `127.0.0.1:0` and serves the files under `root` on the current tokio runtime.
    pub async fn start(root: PathBuf) -> anyhow::Result<FileServer> {
        Self::serve(root, true).await
    }

    /// Like [`FileServer::start`], but every `Range` header is ignored.
    pub async fn start_ignoring_ranges(root: PathBuf) -> anyhow::Result<FileServer> {
        Self::serve(root, false).await
    }

    async fn serve(root: PathBuf, ranges: bool) -> anyhow::Result<FileServer> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let requests = Arc::new(AtomicU64::new(0));
        let (shutdown, stop) = watch::channel(false);
        let bytes = Arc::new(AtomicU64::new(0));
        let state = Arc::new(State { root, ranges, requests: requests.clone(), bytes: bytes.clone() });
        tokio::spawn(accept_loop(listener, state, stop));
        Ok(FileServer { base_url: format!("http://{addr}"), requests, bytes, shutdown })
    }

    /// The URL of `rel` (a `/`-separated path under the root), each segment percent-encoded.
    pub fn url(&self, rel: &str) -> String {
        let path: Vec<String> = rel.trim_start_matches('/').split('/').map(percent_encode).collect();
        format!("{}/{}", self.base_url, path.join("/"))
    }

    /// Requests answered so far, whatever their status.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }

    /// File bytes answered so far (the sum of the bodies' lengths), to prove what a client
    /// did not download.
    pub fn bytes_served(&self) -> u64 {
        self.bytes.load(Ordering::SeqCst)
    }
}

impl Drop for FileServer {
    fn drop(&mut self) {
        self.shutdown.send_replace(true);
    }
}

async fn accept_loop(listener: TcpListener, state: Arc<State>, mut stop: watch::Receiver<bool>) {
    loop {
        let stream = tokio::select! {
            _ = stop.changed() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => {
                    // Out of file descriptors and the like: wait rather than spin.
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        // A body streamed in pieces must not wait for the client's delayed ACK between them
        // (Nagle's algorithm): that cost up to 40 ms per range request. Real servers set it.
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        let mut stop = stop.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(respond(&state, req).await) }
            });
            let connection = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                _ = connection => {}
                _ = stop.changed() => {}
            }
        });
    }
}

async fn respond(state: &State, req: Request<Incoming>) -> Response<FileBody> {
    state.requests.fetch_add(1, Ordering::SeqCst);
    let head_only = match *req.method() {
        Method::GET => false,
        Method::HEAD => true,
        _ => {
            let mut res = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
            res.headers_mut().insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            return res;
        }
    };
    let Some(path) = resolve(&state.root, req.uri().path()) else {
        return text(StatusCode::FORBIDDEN, "forbidden path\n");
    };
    let mut file = match tokio::fs::File::open(&path).await {
        Ok(file) => file,
        Err(_) => return text(StatusCode::NOT_FOUND, "not found\n"),
    };
    let len = match file.metadata().await {
        Ok(meta) if meta.is_file() => meta.len(),
        _ => return text(StatusCode::NOT_FOUND, "not found\n"),
    };

    let range = req
        .headers()
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .filter(|_| state.ranges)
        .map_or(ByteRange::Whole, |v| parse_range(v, len));
    let (status, start, count) = match range {
        ByteRange::Whole => (StatusCode::OK, 0, len),
        ByteRange::Part(first, last) => (StatusCode::PARTIAL_CONTENT, first, last - first + 1),
        ByteRange::Unsatisfiable => {
            let mut res = text(StatusCode::RANGE_NOT_SATISFIABLE, "");
            insert(&mut res, header::CONTENT_RANGE, format!("bytes */{len}"));
            insert(&mut res, header::ACCEPT_RANGES, "bytes".into());
            return res;
        }
    };

    let body = if head_only || count == 0 {
        FileBody::Empty
    } else {
        state.bytes.fetch_add(count, Ordering::SeqCst);
        if start > 0 {
            if let Err(e) = file.seek(io::SeekFrom::Start(start)).await {
                return text(StatusCode::INTERNAL_SERVER_ERROR, &format!("{e}\n"));
            }
        }
        FileBody::File { file, remaining: count, buf: vec![0; CHUNK].into_boxed_slice() }
    };
    let mut res = Response::new(body);
    *res.status_mut() = status;
    insert(&mut res, header::CONTENT_LENGTH, count.to_string());
    if state.ranges {
        insert(&mut res, header::ACCEPT_RANGES, "bytes".into());
    }
    insert(&mut res, header::CONTENT_TYPE, content_type(&path).into());
    if status == StatusCode::PARTIAL_CONTENT {
        let last = start + count - 1;
        insert(&mut res, header::CONTENT_RANGE, format!("bytes {start}-{last}/{len}"));
    }
    res
}

fn text(status: StatusCode, body: &str) -> Response<FileBody> {
    let mut res = Response::new(if body.is_empty() {
        FileBody::Empty
    } else {
        FileBody::Bytes(Some(Bytes::copy_from_slice(body.as_bytes())))
    });
    *res.status_mut() = status;
    insert(&mut res, header::CONTENT_LENGTH, body.len().to_string());
    if !body.is_empty() {
        insert(&mut res, header::CONTENT_TYPE, "text/plain; charset=utf-8".into());
    }
    res
}

fn insert(res: &mut Response<FileBody>, name: header::HeaderName, value: String) {
    let value = HeaderValue::try_from(value).expect("header values built here are ASCII");
    res.headers_mut().insert(name, value);
}

fn content_type(path: &Path) -> &'static str {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    match ext.as_str() {
        "zip" => "application/zip",
        "gz" | "tgz" => "application/gzip",
        "tar" => "application/x-tar",
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "yaml" | "yml" => "application/yaml",
        "txt" => "text/plain; charset=utf-8",
        "json" => "application/json",
        _ => "application/octet-stream",
    }
}

/// What a `Range` header asks of a file of a given length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ByteRange {
    /// No usable single range: send everything with 200.
    Whole,
    /// First and last byte, inclusive, both inside the file.
    Part(u64, u64),
    /// Syntactically fine, but starts at or past the end (or is an empty suffix).
    Unsatisfiable,
}

fn parse_range(header: &str, len: u64) -> ByteRange {
    fn number(text: &str) -> Option<u64> {
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        text.parse().ok()
    }
    let header = header.trim();
    let Some(spec) = header.get(..6).filter(|unit| unit.eq_ignore_ascii_case("bytes=")).map(|_| &header[6..]) else {
        return ByteRange::Whole;
    };
    if spec.contains(',') {
        return ByteRange::Whole;
    }
    let Some((first, last)) = spec.split_once('-') else {
        return ByteRange::Whole;
    };
    let (first, last) = (first.trim(), last.trim());
    if first.is_empty() {
        // Suffix: the last n bytes.
        let Some(n) = number(last) else {
            return ByteRange::Whole;
        };
        if n == 0 || len == 0 {
            return ByteRange::Unsatisfiable;
        }
        return ByteRange::Part(len - n.min(len), len - 1);
    }
    let Some(first) = number(first) else {
        return ByteRange::Whole;
    };
    let last = if last.is_empty() {
        None
    } else {
        match number(last) {
            Some(last) if last >= first => Some(last),
            _ => return ByteRange::Whole,
        }
    };
    if first >= len {
        return ByteRange::Unsatisfiable;
    }
    ByteRange::Part(first, last.unwrap_or(len - 1).min(len - 1))
}

/// The file a request path names, or `None` when the path must be refused (a `..` segment,
/// a bad escape, a backslash or a NUL).
fn resolve(root: &Path, uri_path: &str) -> Option<PathBuf> {
    let decoded = percent_decode(uri_path)?;
    let mut path = root.to_path_buf();
    for segment in decoded.split('/') {
        match segment {
            "" | "." => continue,
            ".." => return None,
            s if s.contains(['\\', '\0']) => return None,
            s => path.push(s),
        }
    }
    Some(path)
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn percent_encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A response body: nothing, a small text, or part of a file streamed in 64 KiB frames.
enum FileBody {
    Empty,
    Bytes(Option<Bytes>),
    File { file: tokio::fs::File, remaining: u64, buf: Box<[u8]> },
}

impl Body for FileBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        match self.get_mut() {
            FileBody::Empty => Poll::Ready(None),
            FileBody::Bytes(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            FileBody::File { file, remaining, buf } => {
                if *remaining == 0 {
                    return Poll::Ready(None);
                }
                let want = (*remaining).min(buf.len() as u64) as usize;
                let mut read = ReadBuf::new(&mut buf[..want]);
                match Pin::new(file).poll_read(cx, &mut read) {
                    Poll::Pending => Poll::Pending,
                    Poll::Ready(Err(e)) => Poll::Ready(Some(Err(e))),
                    Poll::Ready(Ok(())) if read.filled().is_empty() => Poll::Ready(Some(Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "file shrank while being served",
                    )))),
                    Poll::Ready(Ok(())) => {
                        *remaining -= read.filled().len() as u64;
                        Poll::Ready(Some(Ok(Frame::data(Bytes::copy_from_slice(read.filled())))))
                    }
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            FileBody::Empty => true,
            FileBody::Bytes(bytes) => bytes.is_none(),
            FileBody::File { remaining, .. } => *remaining == 0,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            FileBody::Empty => SizeHint::with_exact(0),
            FileBody::Bytes(bytes) => SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64)),
            FileBody::File { remaining, .. } => SizeHint::with_exact(*remaining),
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    use super::*;

    struct Answer {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    }

    impl Answer {
        fn header(&self, name: &str) -> Option<&str> {
            self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
        }
    }

    /// One request over a fresh connection, raw, so nothing normalizes the path.
    async fn ask(server: &FileServer, method: &str, path: &str, extra: &[(&str, &str)]) -> Answer {
        let addr = server.base_url.trim_start_matches("http://");
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
        for (name, value) in extra {
            req.push_str(&format!("{name}: {value}\r\n"));
        }
        req.push_str("\r\n");
        stream.write_all(req.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.unwrap();
        let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        let head = std::str::from_utf8(&raw[..split]).unwrap();
        let mut lines = head.split("\r\n");
        let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
        let headers = lines
            .map(|l| {
                let (n, v) = l.split_once(':').unwrap();
                (n.trim().to_owned(), v.trim().to_owned())
            })
            .collect();
        Answer { status, headers, body: raw[split + 4..].to_vec() }
    }

    fn fixture(name: &str) -> (PathBuf, Vec<u8>) {
        let root = std::env::temp_dir().join(format!("yds-testkit-server-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("sub dir")).unwrap();
        // 200 000 bytes: several 64 KiB frames.
        let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::write(root.join("sub dir/big.bin"), &data).unwrap();
        std::fs::write(root.join("empty.txt"), b"").unwrap();
        (root, data)
    }

    #[tokio::test]
    async fn get_whole_file_and_head() {
        let (root, data) = fixture("get");
        let server = FileServer::start(root.clone()).await.unwrap();
        assert!(server.base_url.starts_with("http://127.0.0.1:"));
        let url = server.url("sub dir/big.bin");
        assert_eq!(url, format!("{}/sub%20dir/big.bin", server.base_url));
        let path = url.trim_start_matches(&server.base_url);

        let got = ask(&server, "GET", path, &[]).await;
        assert_eq!(got.status, 200);
        assert_eq!(got.header("content-length"), Some("200000"));
        assert_eq!(got.header("accept-ranges"), Some("bytes"));
        assert!(got.body == data);

        let head = ask(&server, "HEAD", path, &[]).await;
        assert_eq!(head.status, 200);
        assert_eq!(head.header("content-length"), Some("200000"));
        assert_eq!(head.header("accept-ranges"), Some("bytes"));
        assert!(head.body.is_empty());

        let empty = ask(&server, "GET", "/empty.txt", &[]).await;
        assert_eq!(empty.status, 200);
        assert_eq!(empty.header("content-length"), Some("0"));
        assert!(empty.body.is_empty());

        assert_eq!(server.requests(), 3);
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[tokio::test]
    async fn a_server_ignoring_ranges_answers_the_whole_file() {
        let (root, data) = fixture("noranges");
        let server = FileServer::start_ignoring_ranges(root.clone()).await.unwrap();
        let got = ask(&server, "GET", "/sub%20dir/big.bin", &[("Range", "bytes=10-19")]).await;
        assert_eq!(got.status, 200);
        assert_eq!(got.header("accept-ranges"), None);
        assert_eq!(got.header("content-range"), None);
        assert!(got.body == data);
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[tokio::test]
    async fn range_requests() {
        let (root, data) = fixture("range");
        let server = FileServer::start(root.clone()).await.unwrap();
        let path = "/sub%20dir/big.bin";

        let cases: [(&str, usize, usize); 5] = [
            ("bytes=0-0", 0, 0),
            ("bytes=100-70099", 100, 70_099),
            ("bytes=199990-", 199_990, 199_999),
            ("bytes=-10", 199_990, 199_999),
            ("bytes=150000-999999", 150_000, 199_999),
        ];
        for (range, first, last) in cases {
            let got = ask(&server, "GET", path, &[("Range", range)]).await;
            assert_eq!(got.status, 206, "{range}");
            assert_eq!(got.header("content-range"), Some(format!("bytes {first}-{last}/200000").as_str()), "{range}");
            let len = last - first + 1;
            assert_eq!(got.header("content-length"), Some(len.to_string().as_str()));
            assert!(got.body == data[first..=last], "{range}");
        }

        // A suffix longer than the file is the whole file.
        let got = ask(&server, "GET", path, &[("Range", "bytes=-500000")]).await;
        assert_eq!(got.status, 206);
        assert!(got.body == data);

        for range in ["bytes=200000-", "bytes=300000-300010", "bytes=-0"] {
            let got = ask(&server, "GET", path, &[("Range", range)]).await;
            assert_eq!(got.status, 416, "{range}");
            assert_eq!(got.header("content-range"), Some("bytes */200000"));
            assert!(got.body.is_empty());
        }
        let got = ask(&server, "GET", "/empty.txt", &[("Range", "bytes=0-")]).await;
        assert_eq!(got.status, 416);

        // Unusable or multiple ranges: the whole file.
        for range in ["bytes=5-1", "items=0-5", "bytes=0-1,5-6", "bytes=x-"] {
            let got = ask(&server, "GET", path, &[("Range", range)]).await;
            assert_eq!(got.status, 200, "{range}");
            assert!(got.body == data);
        }

        let head = ask(&server, "HEAD", path, &[("Range", "bytes=10-19")]).await;
        assert_eq!(head.status, 206);
        assert_eq!(head.header("content-length"), Some("10"));
        assert_eq!(head.header("content-range"), Some("bytes 10-19/200000"));
        assert!(head.body.is_empty());
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[tokio::test]
    async fn missing_forbidden_and_other_methods() {
        let (root, _) = fixture("errors");
        let outside = root.with_extension("secret");
        std::fs::write(&outside, b"secret").unwrap();
        let server = FileServer::start(root.clone()).await.unwrap();

        assert_eq!(ask(&server, "GET", "/nope.zip", &[]).await.status, 404);
        assert_eq!(ask(&server, "HEAD", "/nope.zip", &[]).await.status, 404);
        assert_eq!(ask(&server, "GET", "/sub%20dir", &[]).await.status, 404);
        assert_eq!(ask(&server, "GET", "/", &[]).await.status, 404);
        let name = outside.file_name().unwrap().to_str().unwrap();
        for path in [format!("/../{name}"), format!("/sub%20dir/../../{name}"), format!("/%2e%2e/{name}")] {
            let got = ask(&server, "GET", &path, &[]).await;
            assert_eq!(got.status, 403, "{path}");
            assert!(!got.body.windows(6).any(|w| w == b"secret"));
        }
        let post = ask(&server, "POST", "/empty.txt", &[("Content-Length", "0")]).await;
        assert_eq!(post.status, 405);
        assert_eq!(post.header("allow"), Some("GET, HEAD"));
        assert_eq!(server.requests(), 8);
        std::fs::remove_file(&outside).unwrap();
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[tokio::test]
    async fn dropping_the_server_stops_it() {
        let (root, _) = fixture("drop");
        let server = FileServer::start(root.clone()).await.unwrap();
        let addr = server.base_url.trim_start_matches("http://").to_owned();
        assert_eq!(ask(&server, "GET", "/empty.txt", &[]).await.status, 200);
        drop(server);
        // Let the accept loop see the signal; then connecting fails or the connection is
        // closed without an answer.
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
        if let Ok(mut stream) = TcpStream::connect(&addr).await {
            let _ = stream.write_all(b"GET /empty.txt HTTP/1.1\r\nHost: x\r\n\r\n").await;
            let mut raw = Vec::new();
            let read = tokio::time::timeout(std::time::Duration::from_secs(5), stream.read_to_end(&mut raw)).await;
            assert!(read.is_err() || raw.is_empty(), "answered after drop");
        }
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn range_parsing() {
        assert_eq!(parse_range("bytes=0-9", 100), ByteRange::Part(0, 9));
        assert_eq!(parse_range("Bytes = 0-9", 100), ByteRange::Whole);
        assert_eq!(parse_range("BYTES=90-", 100), ByteRange::Part(90, 99));
        assert_eq!(parse_range("bytes=-1", 100), ByteRange::Part(99, 99));
        assert_eq!(parse_range("bytes=100-", 100), ByteRange::Unsatisfiable);
        assert_eq!(parse_range("bytes=+1-2", 100), ByteRange::Whole);
        assert_eq!(parse_range("bytes=-", 100), ByteRange::Whole);
    }
}
