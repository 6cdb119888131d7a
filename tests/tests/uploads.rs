//! Uploads end to end on the local stack, under the strict URL policy (production's: an upload
//! is no outside URL): `POST /uploads`, a real zip of a generated dataset sent in pieces with
//! Cloud Storage's resumable protocol through the gateway — a piece cut short by a dropped
//! connection, a piece sent twice, a status query — then imported by its `source_url`, and
//! counted. Another tenant cannot import it, an incomplete one is refused, and the configured
//! limit answers 413.

use std::time::Duration;

use bytes::Bytes;
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;
use yds_tests::{Chaos, TestStack, KEY, OTHER_KEY};

/// The stack's upload limit (`YDS_UPLOAD_MAX_BYTES`), small enough to reach in a test.
const LIMIT: u64 = 8 << 20;
const PIECE: usize = 256 * 1024;

/// One `PUT` to the upload: status and `Range` header.
async fn put(
    stack: &TestStack,
    url: &str,
    key: &str,
    content_range: &str,
    body: Bytes,
) -> (u16, Option<String>, Value) {
    let resp = stack
        .client
        .put(url)
        .header("x-api-key", key)
        .header("content-range", content_range)
        .body(body)
        .send()
        .await
        .expect("PUT");
    let status = resp.status().as_u16();
    let range = resp.headers().get("range").map(|v| v.to_str().unwrap().to_owned());
    (status, range, resp.json().await.unwrap_or(Value::Null))
}

/// A `PUT` whose connection drops half-way through its body: the client sends the headers and
/// half the piece, then closes the socket.
async fn put_cut_short(stack: &TestStack, path: &str, content_range: &str, piece: &[u8]) {
    let mut socket = tokio::net::TcpStream::connect(("127.0.0.1", stack.stack.port)).await.unwrap();
    let head = format!(
        "PUT {path} HTTP/1.1\r\nhost: 127.0.0.1\r\nx-api-key: {KEY}\r\ncontent-range: {content_range}\r\ncontent-length: {}\r\n\r\n",
        piece.len()
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    socket.write_all(&piece[..piece.len() / 2]).await.unwrap();
    socket.flush().await.unwrap();
    drop(socket);
    // Let the gateway notice the reset before the next request.
    tokio::time::sleep(Duration::from_millis(200)).await;
}

async fn post_upload(stack: &TestStack, body: Value) -> (u16, Value) {
    let resp = stack.client.post(stack.url("/uploads")).header("x-api-key", KEY).json(&body).send().await.unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap_or(Value::Null))
}

async fn import_as(stack: &TestStack, key: &str, body: &Value) -> (u16, Value) {
    let resp =
        stack.client.post(stack.url("/datasets/import")).header("x-api-key", key).json(body).send().await.unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_zip_uploaded_in_pieces_over_a_flaky_connection_imports_by_its_source_url() {
    let work = tempfile::tempdir().unwrap();
    let mut spec = testkit::DatasetSpec::small(5);
    spec.splits = vec![("train".into(), 40), ("val".into(), 12)];
    // Photos large enough that the archive takes several pieces.
    spec.image_size = (1024, 768);
    spec.png_every = 2;
    let generated = testkit::generate(&work.path().join("src"), &spec).unwrap();
    let archive = work.path().join("export.zip");
    testkit::pack_zip(&work.path().join("src"), &archive).unwrap();
    let data = Bytes::from(std::fs::read(&archive).unwrap());
    let total = data.len();
    assert!(total > 3 * PIECE, "the archive spans several pieces: {total} bytes");
    assert!((total as u64) < LIMIT);

    let env = vec![("YDS_UPLOAD_MAX_BYTES".to_owned(), LIMIT.to_string())];
    let stack = TestStack::start_with(Chaos::default(), "strict", env).await;

    // The limit: 413 naming it and the size asked for.
    let (code, refused) = post_upload(&stack, json!({"file_name": "huge.zip", "size_bytes": LIMIT + 1})).await;
    assert_eq!(code, 413, "{refused}");
    let detail = refused["detail"].as_str().unwrap();
    assert!(
        detail.contains(&format!("{} bytes", LIMIT + 1)) && detail.contains(&format!("limit of {LIMIT} bytes")),
        "{detail}"
    );
    let (code, bad) = post_upload(&stack, json!({"file_name": "notes.txt"})).await;
    assert_eq!(code, 422, "{bad}");

    let (code, created) = post_upload(&stack, json!({"file_name": "export.zip", "size_bytes": total})).await;
    assert_eq!(code, 201, "{created}");
    let id = created["upload_id"].as_str().unwrap().to_owned();
    let path = created["upload_url"].as_str().unwrap().to_owned();
    assert_eq!(path, format!("/uploads/{id}"), "relative to the API's base URL on the local stack");
    assert_eq!(created["max_bytes"], LIMIT);
    let source_url = created["source_url"].as_str().unwrap().to_owned();
    assert_eq!(source_url, format!("upload://{id}"));
    let url = stack.url(&path);
    let range = |first: usize, last: usize| format!("bytes {first}-{last}/{total}");

    // The first piece.
    let (code, stored, _) = put(&stack, &url, KEY, &range(0, PIECE - 1), data.slice(..PIECE)).await;
    assert_eq!((code, stored.as_deref()), (308, Some("bytes=0-262143")));
    // The second is cut short by a dropped connection: nothing of it is kept.
    put_cut_short(&stack, &path, &range(PIECE, 2 * PIECE - 1), &data[PIECE..2 * PIECE]).await;
    let (code, stored, _) = put(&stack, &url, KEY, &format!("bytes */{total}"), Bytes::new()).await;
    assert_eq!((code, stored.as_deref()), (308, Some("bytes=0-262143")), "the status query says where to resume");
    // The first again (its answer was lost, say): written once.
    let (code, stored, _) = put(&stack, &url, KEY, &range(0, PIECE - 1), data.slice(..PIECE)).await;
    assert_eq!((code, stored.as_deref()), (308, Some("bytes=0-262143")));

    // Not complete yet: refused, saying how far it got; nothing is recorded.
    let import = json!({"name": "from a laptop", "archive_url": source_url});
    let (code, refused) = import_as(&stack, KEY, &import).await;
    assert_eq!(code, 422, "{refused}");
    assert_eq!(refused["detail"], format!("upload {id} is not complete: {PIECE} of {total} bytes received"));

    // The rest, in pieces of 512 KiB.
    let mut at = PIECE;
    while at < total {
        let end = (at + 2 * PIECE).min(total);
        let (code, stored, finished) = put(&stack, &url, KEY, &range(at, end - 1), data.slice(at..end)).await;
        if end < total {
            assert_eq!((code, stored), (308, Some(format!("bytes=0-{}", end - 1))));
        } else {
            assert_eq!(code, 201, "{finished}");
            assert_eq!(finished["size_bytes"], total);
        }
        at = end;
    }
    let (code, _, _) = put(&stack, &url, KEY, &format!("bytes */{total}"), Bytes::new()).await;
    assert_eq!(code, 200, "complete, once and for all");
    // Bytes past the limit are refused whatever the upload.
    let (code, _, _) = put(&stack, &url, KEY, &format!("bytes */{}", LIMIT + 1), Bytes::new()).await;
    assert_eq!(code, 413);

    // Another tenant can neither write to it nor import it.
    let (code, _, _) = put(&stack, &url, OTHER_KEY, &format!("bytes */{total}"), Bytes::new()).await;
    assert_eq!(code, 404);
    let (code, refused) = import_as(&stack, OTHER_KEY, &import).await;
    assert_eq!(code, 422, "{refused}");
    assert!(refused["detail"].as_str().unwrap().starts_with(&format!("no such upload `{id}`")), "{refused}");

    // The owner imports it, under the strict policy, and every image and box is there.
    let (code, accepted) = import_as(&stack, KEY, &import).await;
    assert_eq!(code, 202, "{accepted}");
    let status = stack.wait_terminal(accepted["job_id"].as_str().unwrap()).await;
    assert_eq!(status["status"], "completed", "{status}");
    let dataset = stack.dataset(accepted["dataset_id"].as_str().unwrap()).await;
    assert_eq!(dataset["counts"]["images"], generated.image_count(), "{dataset}");
    assert_eq!(dataset["counts"]["annotations"], generated.annotation_count());
    assert_eq!(dataset["counts"]["invalid_images"], generated.invalid_count());
    for split in ["train", "val"] {
        let expected = generated.images.iter().filter(|i| i.split == split).count();
        assert_eq!(dataset["splits"][split]["images"], expected, "{split}");
    }
    stack.shutdown().await;
}
