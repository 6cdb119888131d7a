//! The images function called through its edge (no server), on a real mongod and a local
//! store: the signed `file_url` and `thumbnail_url` of every Image object, what they fetch
//! without a key, and thumbnails made once, kept, turned as displayed, or refused clearly.

use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use images::ImagesApi;
use serde_json::Value;
use yds_config::ConfiguredKeys;
use yds_edge::cursors::Cursors;
use yds_edge::signed_urls;
use yds_edge::{EdgeOptions, Service, UrlSigner, PUBLIC_MAX_BODY};
use yds_format::image_file::inspect_image;
use yds_storage::{keys, ListPage, LocalStore, ObjectStore, StorageError};
use yds_store::{DatasetDoc, DatasetStatus, DateTime, Db, ImageDoc, LabelFile};

const DATASET: &str = "d1";

struct Fixture {
    service: Service,
    db: Db,
    store: Arc<dyn ObjectStore>,
    signer: UrlSigner,
    _dir: tempfile::TempDir,
}

/// A baseline JPEG of `width`×`height`: red left half, blue right half, green top-left corner.
fn jpeg(width: u32, height: u32) -> Vec<u8> {
    let pixels: Vec<u8> = (0..height)
        .flat_map(|y| {
            (0..width).flat_map(move |x| match (x < width / 8 && y < height / 8, x < width / 2) {
                (true, _) => [0, 255, 0],
                (false, true) => [255, 0, 0],
                (false, false) => [0, 0, 255],
            })
        })
        .collect();
    let mut out = Vec::new();
    jpeg_encoder::Encoder::new(&mut out, 90)
        .encode(&pixels, width as u16, height as u16, jpeg_encoder::ColorType::Rgb)
        .unwrap();
    out
}

/// `jpeg` with an EXIF block whose Orientation tag is `orientation`, right after its start.
fn with_orientation(jpeg: &[u8], orientation: u16) -> Vec<u8> {
    let mut tiff = b"MM\0\x2a\0\0\0\x08".to_vec();
    tiff.extend_from_slice(&1u16.to_be_bytes()); // one entry
    tiff.extend_from_slice(&[0x01, 0x12, 0, 3, 0, 0, 0, 1]); // Orientation, SHORT, count 1
    tiff.extend_from_slice(&orientation.to_be_bytes());
    tiff.extend_from_slice(&[0, 0, 0, 0, 0, 0]); // value padding, no next IFD
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend_from_slice(&tiff);
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(&app1);
    out.extend_from_slice(&jpeg[2..]);
    out
}

/// A PNG whose header says `width`×`height` and that holds no pixels.
fn png_header(width: u32, height: u32) -> Vec<u8> {
    let mut chunk = b"IHDR".to_vec();
    chunk.extend_from_slice(&width.to_be_bytes());
    chunk.extend_from_slice(&height.to_be_bytes());
    chunk.extend_from_slice(&[8, 2, 0, 0, 0]); // RGB, 8 bits
    let mut out = b"\x89PNG\r\n\x1a\n\0\0\0\x0d".to_vec();
    out.extend_from_slice(&chunk);
    out.extend_from_slice(&crc32(&chunk).to_be_bytes());
    // An empty first data chunk: the header ends where the pixels would start.
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(b"IDAT");
    out.extend_from_slice(&crc32(b"IDAT").to_be_bytes());
    out
}

/// CRC-32 (ISO-HDLC), as PNG chunks carry it.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

/// Records `bytes` as the image `path` of the dataset, as an import would, and stores them.
async fn add_image(db: &Db, store: &dyn ObjectStore, path: &str, bytes: &[u8]) -> ImageDoc {
    add_image_with_label(db, store, path, bytes, None).await
}

/// [`add_image`] with the label file `label`, recorded and stored as an import does.
async fn add_image_with_label(
    db: &Db,
    store: &dyn ObjectStore,
    path: &str,
    bytes: &[u8],
    label: Option<&[u8]>,
) -> ImageDoc {
    let (split, file_name) = path.split_once('/').unwrap();
    if let Some(label) = label {
        store.put(&keys::dataset_label(DATASET, split, file_name), Bytes::copy_from_slice(label)).await.unwrap();
    }
    let info = inspect_image(bytes, file_name);
    let image = ImageDoc {
        id: yds_store::images::image_id(DATASET, path),
        dataset_id: DATASET.into(),
        path: path.into(),
        split: split.into(),
        file_name: file_name.into(),
        width: info.width,
        height: info.height,
        stored_width: info.stored_width,
        stored_height: info.stored_height,
        orientation: info.orientation,
        format: info.format,
        size_bytes: bytes.len() as u64,
        content_hash: info.content_hash,
        hash_key: 0,
        valid: info.valid,
        annotations: Vec::new(),
        issues: info.issues,
        issue_codes: Vec::new(),
        class_ids: Vec::new(),
        label: label.map(|label| LabelFile { size_bytes: label.len() as u64, content_hash: blake3_hex(label) }),
    };
    db.images.insert_many(&[&image]).await.unwrap();
    if !bytes.is_empty() {
        let key = keys::dataset_image(DATASET, split, file_name);
        store.put(&key, Bytes::copy_from_slice(bytes)).await.unwrap();
    }
    image
}

/// A store with URLs of its own, as Cloud Storage has: signed for the window asked, or failing.
struct SigningStore {
    inner: LocalStore,
    fails: bool,
}

#[async_trait::async_trait]
impl ObjectStore for SigningStore {
    async fn put(&self, key: &str, data: Bytes) -> Result<(), StorageError> {
        self.inner.put(key, data).await
    }
    async fn get(&self, key: &str) -> Result<Bytes, StorageError> {
        self.inner.get(key).await
    }
    async fn get_range(&self, key: &str, range: std::ops::Range<u64>) -> Result<Bytes, StorageError> {
        self.inner.get_range(key, range).await
    }
    async fn size(&self, key: &str) -> Result<Option<u64>, StorageError> {
        self.inner.size(key).await
    }
    async fn list(&self, prefix: &str, page: Option<String>, size: usize) -> Result<ListPage, StorageError> {
        self.inner.list(prefix, page, size).await
    }
    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        self.inner.delete(key).await
    }
    async fn signed_get_url(
        &self,
        key: &str,
        valid_from: SystemTime,
        valid_until: SystemTime,
    ) -> Result<Option<String>, StorageError> {
        if self.fails {
            return Err(StorageError::Io(std::io::Error::other("signBlob: permission denied")));
        }
        let (from, until) = (signed_urls::unix_seconds(valid_from), signed_urls::unix_seconds(valid_until));
        Ok(Some(format!("https://storage.example/bucket/{key}?from={from}&until={until}")))
    }
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    fixture_on(Arc::new(LocalStore::new(dir.path().join("storage"))), dir).await
}

async fn fixture_on(store: Arc<dyn ObjectStore>, dir: tempfile::TempDir) -> Fixture {
    let db = testkit::db::test_db().await;
    let dataset = DatasetDoc {
        id: DATASET.into(),
        tenant: "acme".into(),
        name: "d".into(),
        status: DatasetStatus::Ready,
        job_id: "j1".into(),
        created_at: DateTime::now(),
        task: None,
        classes: Vec::new(),
        kpt_shape: None,
        split_names: vec!["train".into(), "val".into()],
        statistics: None,
        duplicates: None,
        findings: Vec::new(),
        finding_counts: Default::default(),
        flip_idx: None,
        kpt_names: None,
        trainable: None,
        content_hash: None,
        last_job_id: None,
        failure: None,
    };
    db.datasets.insert(&dataset).await.unwrap();
    add_image(&db, store.as_ref(), "train/a-turned.jpg", &with_orientation(&jpeg(1200, 800), 6)).await;
    add_image(&db, store.as_ref(), "train/b-small.jpg", &jpeg(200, 100)).await;
    add_image(&db, store.as_ref(), "train/c-corrupt.jpg", b"\xff\xd8 this is not a JPEG at all").await;
    add_image(&db, store.as_ref(), "train/d-empty.jpg", b"").await;
    add_image(&db, store.as_ref(), "val/e-huge.png", &png_header(20_000, 20_000)).await;
    let signer = UrlSigner::new(b"the images test's signing key!!!");
    let api = ImagesApi::new(db.clone(), Cursors::new(b"cursor key"), store.clone(), signer.clone());
    let options = EdgeOptions {
        api_keys: Some(ConfiguredKeys::parse("k:acme,k2:globex").unwrap().into()),
        max_body_bytes: PUBLIC_MAX_BODY,
        url_signer: Some(signer.clone()),
    };
    Fixture { service: Service::new(api, options), db, store, signer, _dir: dir }
}

struct Answer {
    status: u16,
    headers: http::HeaderMap,
    body: Bytes,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    fn header(&self, name: &str) -> &str {
        self.headers.get(name).map(|v| v.to_str().unwrap()).unwrap_or_default()
    }

    /// The problem's detail, checking that it is one.
    fn detail(&self) -> String {
        assert_eq!(self.header("content-type"), "application/problem+json", "{}", String::from_utf8_lossy(&self.body));
        self.json()["detail"].as_str().unwrap().to_owned()
    }
}

async fn get(fixture: &Fixture, url: &str, key: Option<&str>, etag: Option<&str>) -> Answer {
    let mut builder = http::Request::get(url);
    if let Some(key) = key {
        builder = builder.header("x-api-key", key);
    }
    if let Some(etag) = etag {
        builder = builder.header("if-none-match", etag);
    }
    let resp = fixture.service.call(builder.body(Bytes::new()).unwrap()).await;
    Answer { status: resp.status().as_u16(), headers: resp.headers().clone(), body: resp.body().clone() }
}

/// The listed images, by file name.
async fn listed(fixture: &Fixture) -> Vec<Value> {
    let page = get(fixture, &format!("/datasets/{DATASET}/images"), Some("k"), None).await;
    assert_eq!(page.status, 200, "{}", String::from_utf8_lossy(&page.body));
    page.json()["items"].as_array().unwrap().clone()
}

fn named<'a>(images: &'a [Value], file_name: &str) -> &'a Value {
    images.iter().find(|i| i["file_name"] == file_name).unwrap()
}

/// `(width, height)` of a JPEG, decoding it whole.
fn jpeg_size(bytes: &[u8]) -> (u16, u16) {
    let mut decoder = jpeg_decoder::Decoder::new(bytes);
    decoder.decode().expect("a whole JPEG");
    let info = decoder.info().unwrap();
    (info.width, info.height)
}

#[tokio::test]
async fn every_image_carries_signed_urls_that_work_without_a_key() {
    let fixture = fixture().await;
    let images = listed(&fixture).await;
    assert_eq!(images.len(), 5);
    let expires = signed_urls::expiry(SystemTime::now());
    for image in &images {
        let id = image["id"].as_str().unwrap();
        for (field, route) in [("file_url", "file"), ("thumbnail_url", "thumbnail")] {
            let url = image[field].as_str().unwrap();
            let expected = fixture.signer.sign(&format!("/datasets/{DATASET}/images/{id}/{route}"), "acme", expires);
            assert_eq!(
                url, expected,
                "{field} of {}: this function's own URL, signed for the tenant",
                image["file_name"]
            );
        }
    }
    // One image by id carries the same URLs.
    let turned = named(&images, "a-turned.jpg");
    let id = turned["id"].as_str().unwrap();
    let one = get(&fixture, &format!("/datasets/{DATASET}/images/{id}"), Some("k"), None).await;
    if signed_urls::expiry(SystemTime::now()) == expires {
        assert_eq!(&one.json(), turned);
    }
    assert_eq!(one.json()["id"], turned["id"]);

    // The file, as stored, with no key.
    let before = signed_urls::unix_seconds(SystemTime::now());
    let file = get(&fixture, turned["file_url"].as_str().unwrap(), None, None).await;
    let after = signed_urls::unix_seconds(SystemTime::now());
    assert_eq!(file.status, 200);
    assert_eq!(file.body, with_orientation(&jpeg(1200, 800), 6));
    assert_eq!(file.header("content-type"), "image/jpeg");
    let max_age: u64 = file.header("cache-control").strip_prefix("private, max-age=").unwrap().parse().unwrap();
    assert!((expires - after..=expires - before).contains(&max_age), "cached as long as the URL lives: {max_age}");
    // HEAD through the same signed URL: the GET's answer, headers included.
    let head = http::Request::head(turned["file_url"].as_str().unwrap()).body(Bytes::new()).unwrap();
    let head = fixture.service.call(head).await;
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()["content-type"], "image/jpeg");
    assert_eq!(head.headers()["etag"], file.header("etag"));
    // With a key: a day.
    let keyed = get(&fixture, &format!("/datasets/{DATASET}/images/{id}/file"), Some("k"), None).await;
    assert_eq!(keyed.header("cache-control"), "private, max-age=86400");

    // The thumbnail: made now, stored, turned as displayed (1200×800 turned by 6 is 800×1200).
    let thumbnail_key = keys::dataset_thumbnail(DATASET, id);
    assert_eq!(fixture.store.size(&thumbnail_key).await.unwrap(), None);
    let url = turned["thumbnail_url"].as_str().unwrap();
    let thumb = get(&fixture, url, None, None).await;
    assert_eq!(thumb.status, 200, "{}", String::from_utf8_lossy(&thumb.body));
    assert_eq!(thumb.header("content-type"), "image/jpeg");
    assert_eq!(jpeg_size(&thumb.body), (213, 320));
    let etag = format!("\"{}-thumbnail-v1\"", turned["content_hash"].as_str().unwrap());
    assert_eq!(thumb.header("etag"), etag);
    assert!(thumb.header("cache-control").starts_with("private, max-age="));
    let stored = fixture.store.get(&thumbnail_key).await.unwrap();
    assert_eq!(stored, thumb.body, "kept under datasets/{{id}}/thumbnails/");

    // Revalidated without a body; served from storage afterwards, even with its file gone.
    let again = get(&fixture, url, None, Some(&etag)).await;
    assert_eq!((again.status, again.body.len()), (304, 0));
    fixture.store.delete(&keys::dataset_image(DATASET, "train", "a-turned.jpg")).await.unwrap();
    let from_storage = get(&fixture, url, None, None).await;
    assert_eq!((from_storage.status, &from_storage.body), (200, &thumb.body));
    // A stored thumbnail cut short (a first write still going on) is not served: made again,
    // which here needs the file that is gone.
    fixture.store.put(&thumbnail_key, stored.slice(..stored.len() / 2)).await.unwrap();
    assert_eq!(get(&fixture, url, None, None).await.status, 404);

    // Small images are not enlarged; the key works too.
    let small = named(&images, "b-small.jpg");
    let small_thumb = get(&fixture, small["thumbnail_url"].as_str().unwrap(), Some("k"), None).await;
    assert_eq!(jpeg_size(&small_thumb.body), (200, 100));
}

/// With a store that has URLs of its own (Cloud Storage), `file_url` is the store's, signed
/// for the hour window of this function's own URLs; the thumbnail still comes from here. A store
/// that fails to sign leaves the file to this function's URL, and the listing answers.
#[tokio::test]
async fn file_urls_come_from_the_store_when_it_signs_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let store = SigningStore { inner: LocalStore::new(dir.path().join("storage")), fails: false };
    let fixture = fixture_on(Arc::new(store), dir).await;
    let expires = signed_urls::expiry(SystemTime::now());
    let images = listed(&fixture).await;
    let turned = named(&images, "a-turned.jpg");
    let id = turned["id"].as_str().unwrap();
    let key = keys::dataset_image(DATASET, "train", "a-turned.jpg");
    let from = expires - signed_urls::WINDOW_SECS;
    let expected = format!("https://storage.example/bucket/{key}?from={from}&until={expires}");
    assert_eq!(turned["file_url"], expected.as_str());
    let own = fixture.signer.sign(&format!("/datasets/{DATASET}/images/{id}/thumbnail"), "acme", expires);
    assert_eq!(turned["thumbnail_url"], own.as_str());
    // An empty file was not stored: its URL is this function's, which says so.
    let empty = named(&images, "d-empty.jpg");
    assert!(empty["file_url"].as_str().unwrap().starts_with(&format!("/datasets/{DATASET}/images/")));

    let dir = tempfile::tempdir().unwrap();
    let store = SigningStore { inner: LocalStore::new(dir.path().join("storage")), fails: true };
    let fixture = fixture_on(Arc::new(store), dir).await;
    let images = listed(&fixture).await;
    let turned = named(&images, "a-turned.jpg");
    let file_url = turned["file_url"].as_str().unwrap();
    assert_eq!(file_url, fixture.signer.sign(&format!("/datasets/{DATASET}/images/{id}/file"), "acme", expires));
    assert_eq!(get(&fixture, file_url, None, None).await.status, 200);
}

#[tokio::test]
async fn images_without_a_thumbnail_get_a_clear_422() {
    let fixture = fixture().await;
    let images = listed(&fixture).await;
    for (file_name, detail_has) in [
        ("c-corrupt.jpg", "image cannot be decoded: its bytes are not an image format"),
        ("d-empty.jpg", "image cannot be decoded: the file is empty"),
        ("e-huge.png", "20000×20000 pixels"),
    ] {
        let image = named(&images, file_name);
        let answer = get(&fixture, image["thumbnail_url"].as_str().unwrap(), None, None).await;
        assert_eq!(answer.status, 422, "{file_name}");
        let detail = answer.detail();
        assert!(detail.contains(detail_has), "{file_name}: {detail}");
        let key = keys::dataset_thumbnail(DATASET, image["id"].as_str().unwrap());
        assert_eq!(fixture.store.size(&key).await.unwrap(), None, "{file_name}: nothing stored");
    }
}

#[tokio::test]
async fn signatures_open_only_their_own_path_tenant_and_time() {
    let fixture = fixture().await;
    let images = listed(&fixture).await;
    let (a, b) = (named(&images, "a-turned.jpg"), named(&images, "b-small.jpg"));
    let url = a["thumbnail_url"].as_str().unwrap();

    // One character of the signature changed.
    let (unsigned, signature) = url.rsplit_once("signature=").unwrap();
    let flipped = if signature.starts_with('A') { 'B' } else { 'A' };
    let forged = format!("{unsigned}signature={flipped}{}", &signature[1..]);
    let answer = get(&fixture, &forged, None, None).await;
    assert_eq!(answer.status, 403);
    assert!(answer.detail().starts_with("invalid URL signature"));
    // The expiry edited.
    let expires = signed_urls::expiry(SystemTime::now());
    let later = url.replace(&format!("expires={expires}"), &format!("expires={}", expires + 3600));
    assert_ne!(later, url);
    assert_eq!(get(&fixture, &later, None, None).await.status, 403);
    // Another image's path under this one's signature.
    let b_path = format!("/datasets/{DATASET}/images/{}/thumbnail", b["id"].as_str().unwrap());
    let swapped = format!("{b_path}?{}", url.split_once('?').unwrap().1);
    assert_eq!(get(&fixture, &swapped, None, None).await.status, 403);
    // Expired, though signed right.
    let a_path = url.split_once('?').unwrap().0;
    let expired = fixture.signer.sign(a_path, "acme", signed_urls::unix_seconds(SystemTime::now()) - 1);
    let answer = get(&fixture, &expired, None, None).await;
    assert_eq!(answer.status, 403);
    assert!(answer.detail().contains("expired"));
    // Signed for another tenant: that tenant sees no such dataset.
    let globex = fixture.signer.sign(a_path, "globex", expires);
    assert_eq!(get(&fixture, &globex, None, None).await.status, 404);
    // A signature opens no other route: the listing and one image need a key.
    for path in
        [format!("/datasets/{DATASET}/images"), format!("/datasets/{DATASET}/images/{}", a["id"].as_str().unwrap())]
    {
        let signed = fixture.signer.sign(&path, "acme", expires);
        let answer = get(&fixture, &signed, None, None).await;
        assert_eq!(answer.status, 401, "{path}");
    }
    // Other query parameters are refused by name, with a key or with a signature.
    let answer = get(&fixture, &format!("{url}&size=1"), None, None).await;
    assert_eq!(answer.status, 400);
    assert!(answer.detail().contains("`size`"));
}

/// BLAKE3 of `bytes`, lowercase hex: what an import records as a file's `content_hash`.
fn blake3_hex(bytes: &[u8]) -> String {
    inspect_image(bytes, "any").content_hash
}

/// The label route answers the label file byte for byte (BOM, CRLF and trailing spaces kept),
/// tagged with its hash, 304 when revalidated, HEAD as GET, and 404 for an image without one.
#[tokio::test]
async fn the_label_route_answers_the_label_file_as_imported() {
    let fixture = fixture().await;
    let label = b"\xef\xbb\xbf0 0.5 0.5 0.25 0.25  \r\n1 0.1 0.1 0.05 0.05\t\r\n\r\n";
    let image =
        add_image_with_label(&fixture.db, fixture.store.as_ref(), "train/f-labelled.jpg", &jpeg(40, 30), Some(label))
            .await;
    let url = format!("/datasets/{DATASET}/images/{}/label", image.id);
    let answer = get(&fixture, &url, Some("k"), None).await;
    assert_eq!(answer.status, 200, "{}", String::from_utf8_lossy(&answer.body));
    assert_eq!(&answer.body[..], &label[..]);
    assert_eq!(answer.header("content-type"), "text/plain; charset=utf-8");
    let etag = format!("\"{}\"", blake3_hex(label));
    assert_eq!(answer.header("etag"), etag);
    let again = get(&fixture, &url, Some("k"), Some(&etag)).await;
    assert_eq!((again.status, again.body.len()), (304, 0));
    let head = http::Request::head(&url).header("x-api-key", "k").body(Bytes::new()).unwrap();
    let head = fixture.service.call(head).await;
    assert_eq!((head.status().as_u16(), head.headers()["etag"].to_str().unwrap()), (200, etag.as_str()));

    // The Image object tells the label file apart from its absence.
    let one = get(&fixture, &format!("/datasets/{DATASET}/images/{}", image.id), Some("k"), None).await;
    assert_eq!(one.json()["label"]["size_bytes"], label.len());
    assert_eq!(one.json()["label"]["content_hash"], blake3_hex(label).as_str());
    let images = listed(&fixture).await;
    let bare = named(&images, "b-small.jpg");
    assert!(bare["label"].is_null(), "{bare}");
    let none =
        get(&fixture, &format!("/datasets/{DATASET}/images/{}/label", bare["id"].as_str().unwrap()), Some("k"), None)
            .await;
    assert_eq!(none.status, 404);
    assert!(none.detail().contains("has no label file"), "{}", none.detail());
    // Another tenant sees no such dataset; no key is a 401; signatures do not open it.
    assert_eq!(get(&fixture, &url, Some("k2"), None).await.status, 404);
    assert_eq!(get(&fixture, &url, None, None).await.status, 401);
    let signed = fixture.signer.sign(&url, "acme", signed_urls::expiry(SystemTime::now()));
    assert_eq!(get(&fixture, &signed, None, None).await.status, 401);
}

/// `split=valid` is Roboflow's name for `val`; other unknown splits and issue codes are 400s
/// that list what there is.
#[tokio::test]
async fn filters_name_what_the_dataset_has() {
    let fixture = fixture().await;
    let page = |query: &'static str| {
        let fixture = &fixture;
        async move { get(fixture, &format!("/datasets/{DATASET}/images?{query}"), Some("k"), None).await }
    };
    let valid = page("split=valid").await;
    assert_eq!(valid.status, 200);
    let items = valid.json()["items"].as_array().unwrap().clone();
    let splits: Vec<&str> = items.iter().map(|i| i["split"].as_str().unwrap()).collect();
    assert_eq!(splits, ["val"], "the val image");
    assert_eq!(page("split=val").await.json()["items"], valid.json()["items"]);

    let unknown = page("split=test").await;
    assert_eq!(unknown.status, 400);
    assert_eq!(unknown.detail(), "the dataset has no split `test`; its splits are `train`, `val`");

    let bad_issue = page("issue=blurry").await;
    assert_eq!(bad_issue.status, 400);
    let detail = bad_issue.detail();
    assert!(detail.starts_with("`issue=blurry` is not an issue code; the codes are: corrupt_image, "), "{detail}");
    for code in yds_format::issue::IMAGE_ISSUE_CODES {
        assert!(detail.contains(code), "{code} listed");
    }
    let corrupt = page("issue=corrupt_image").await;
    assert_eq!(corrupt.status, 200);
}

#[tokio::test]
async fn files_answer_503_naming_object_storage_while_it_is_down_and_the_listing_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    // A local store whose every call fails while it is lost (failure 1.0).
    let losable =
        Arc::new(yds_storage::flaky::FlakyStore::new(Arc::new(LocalStore::new(dir.path().join("storage"))), 0.0));
    let breaker = yds_config::breaker::Breaker::new(2, std::time::Duration::from_secs(30));
    let store = Arc::new(yds_storage::breaker::BreakerStore::with_breaker(losable.clone(), breaker));
    let fixture = fixture_on(store, dir).await;
    let id = named(&listed(&fixture).await, "b-small.jpg")["id"].as_str().unwrap().to_owned();
    let file = format!("/datasets/{DATASET}/images/{id}/file");
    assert_eq!(get(&fixture, &file, Some("k"), None).await.status, 200);

    losable.set_failure(1.0);
    for _ in 0..2 {
        let answer = get(&fixture, &file, Some("k"), None).await;
        assert_eq!(answer.status, 503);
        assert_eq!(answer.detail(), "object storage is unavailable; retry in 1 s");
        assert_eq!(answer.header("retry-after"), "1");
    }
    // Two failures in a row opened the breaker: refused at once, until it half-opens.
    let answer = get(&fixture, &file, Some("k"), None).await;
    assert_eq!(answer.status, 503);
    let retry_after: u64 = answer.header("retry-after").parse().unwrap();
    assert!((29..=30).contains(&retry_after), "{retry_after}");
    assert_eq!(answer.detail(), format!("object storage is unavailable; retry in {retry_after} s"));
    // What MongoDB alone answers is still served.
    assert_eq!(listed(&fixture).await.len(), 5);
    let one = get(&fixture, &format!("/datasets/{DATASET}/images/{id}"), Some("k"), None).await;
    assert_eq!(one.status, 200);
}
