//! The public API's contract over real HTTP: auth, problem+json errors, idempotency, filters,
//! tenant isolation and pagination.

use serde_json::{json, Value};
use testkit::{DatasetSpec, Defects, Layout};
use yds_tests::{Chaos, TestStack, KEY, OTHER_KEY};

async fn post_raw(
    stack: &TestStack,
    key: Option<&str>,
    headers: &[(&str, &str)],
    body: String,
) -> (u16, String, Value) {
    let mut req =
        stack.client.post(stack.url("/datasets/import")).header("content-type", "application/json").body(body);
    if let Some(key) = key {
        req = req.header("x-api-key", key);
    }
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let content_type = resp.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    (status, content_type, resp.json().await.unwrap_or(Value::Null))
}

fn assert_problem(code: u16, content_type: &str, body: &Value, expected: u16, detail_has: &str) {
    assert_eq!(code, expected, "{body}");
    assert_eq!(content_type, "application/problem+json");
    assert_eq!(body["status"], expected);
    assert!(body["title"].is_string());
    let detail = body["detail"].as_str().unwrap();
    assert!(detail.contains(detail_has), "detail `{detail}` lacks `{detail_has}`");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_requests_get_clear_problems() {
    let stack = TestStack::start(Chaos::default()).await;
    let ok_body = json!({"name": "x", "archive_url": "http://127.0.0.1:9/x.zip"}).to_string();

    let (code, ct, body) = post_raw(&stack, None, &[], ok_body.clone()).await;
    assert_problem(code, &ct, &body, 401, "API key");
    let (code, ct, body) = post_raw(&stack, Some("wrong"), &[], ok_body.clone()).await;
    assert_problem(code, &ct, &body, 401, "API key");
    let (code, ct, body) = post_raw(&stack, Some(KEY), &[], "{not json".into()).await;
    assert_problem(code, &ct, &body, 400, "JSON");
    let unknown = json!({"name": "x", "archive_url": "http://127.0.0.1:9/x.zip", "colour": 1}).to_string();
    let (code, ct, body) = post_raw(&stack, Some(KEY), &[], unknown).await;
    assert_problem(code, &ct, &body, 422, "colour");
    let (code, ct, body) = post_raw(&stack, Some(KEY), &[], format!("{{\"name\":\"{}\"}}", "x".repeat(70_000))).await;
    assert_problem(code, &ct, &body, 413, "bytes");
    let gopher = json!({"name": "x", "archive_url": "gopher://example.com/x"}).to_string();
    let (code, ct, body) = post_raw(&stack, Some(KEY), &[], gopher).await;
    assert_problem(code, &ct, &body, 422, "gopher");

    let (code, body) = stack.get("/datasets/nope/images").await;
    assert_eq!((code, body["status"].as_u64()), (404, Some(404)));
    let (code, _) = stack.get("/datasets/import/nope/status").await;
    assert_eq!(code, 404);
    let (code, body) = stack.get("/datasets?limit=0").await;
    assert_eq!(code, 400, "{body}");
    let (code, _) = stack.get("/datasets?cursor=%%%").await;
    assert_eq!(code, 400);
    let (code, _) = stack.get("/nowhere").await;
    assert_eq!(code, 404);
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn idempotency_filters_tenants_and_pages() {
    let work = tempfile::tempdir().unwrap();
    let mut spec = DatasetSpec::small(5);
    spec.layout = Layout::Ultralytics;
    let generated = testkit::generate(&work.path().join("src"), &spec).unwrap();
    let archive = work.path().join("d.zip");
    testkit::pack_zip(&work.path().join("src"), &archive).unwrap();
    let stack = TestStack::start(Chaos::default()).await;
    let body = json!({"name": "idem", "archive_url": format!("file://{}", archive.display())}).to_string();

    let (code, _, first) = post_raw(&stack, Some(KEY), &[("idempotency-key", "k-1")], body.clone()).await;
    assert_eq!(code, 202, "{first}");
    let (code, _, again) = post_raw(&stack, Some(KEY), &[("idempotency-key", "k-1")], body.clone()).await;
    assert_eq!(code, 202);
    assert_eq!(again["job_id"], first["job_id"]);
    assert_eq!(again["dataset_id"], first["dataset_id"]);
    let other_body = json!({"name": "other", "archive_url": format!("file://{}", archive.display())}).to_string();
    let (code, _, conflict) = post_raw(&stack, Some(KEY), &[("idempotency-key", "k-1")], other_body).await;
    assert_eq!(code, 422, "{conflict}");

    let job_id = first["job_id"].as_str().unwrap();
    let dataset_id = first["dataset_id"].as_str().unwrap();
    stack.wait_terminal(job_id).await;
    // A second import without a key is a new job.
    let (code, _, second) = post_raw(&stack, Some(KEY), &[], body).await;
    assert_eq!(code, 202);
    assert_ne!(second["job_id"], first["job_id"]);
    stack.wait_terminal(second["job_id"].as_str().unwrap()).await;

    // Filters: split and class.
    let train = stack.all_images(dataset_id, 3, "&split=train").await;
    let expected_train = generated.images.iter().filter(|i| i.split == "train").count();
    assert_eq!(train.len(), expected_train);
    assert!(train.iter().all(|i| i["split"] == "train"));
    let class1 = stack.all_images(dataset_id, 2, "&class_id=1").await;
    let expected_class1 = generated.images.iter().filter(|i| i.valid && i.boxes.iter().any(|(c, _)| *c == 1)).count();
    assert_eq!(class1.len(), expected_class1);
    assert!(class1.iter().all(|i| i["annotations"].as_array().unwrap().iter().any(|a| a["class_id"] == 1)));
    let both = stack.all_images(dataset_id, 2, "&split=val&class_id=1").await;
    assert!(both.iter().all(|i| i["split"] == "val"));
    for bad in ["-1", "100000", "2147483648"] {
        let (code, _) = stack.get(&format!("/datasets/{dataset_id}/images?class_id={bad}")).await;
        assert_eq!(code, 400, "class_id={bad}");
    }

    // Another tenant sees nothing of it.
    let (code, _) = stack.get_as(OTHER_KEY, &format!("/datasets/{dataset_id}/images")).await;
    assert_eq!(code, 404);
    let (code, _) = stack.get_as(OTHER_KEY, &format!("/datasets/import/{job_id}/status")).await;
    assert_eq!(code, 404);
    let (_, list) = stack.get_as(OTHER_KEY, "/datasets").await;
    assert_eq!(list["items"], json!([]));
    let (code, problem) = stack.get_as(OTHER_KEY, &format!("/datasets/{dataset_id}")).await;
    assert_eq!(code, 404, "another tenant's dataset: {problem}");

    // One dataset by id: what the list shows of it, to its owner only.
    let (code, one) = stack.get(&format!("/datasets/{dataset_id}")).await;
    assert_eq!(code, 200, "{one}");
    let (_, mine) = stack.get("/datasets?limit=1000").await;
    let listed = mine["items"].as_array().unwrap().iter().find(|d| d["id"] == dataset_id).expect("listed");
    assert_eq!(&one, listed);
    assert_eq!(one["counts"]["images"], generated.images.len());
    for (path, expected, detail_has) in [
        ("/datasets/no-such-dataset".to_owned(), 404, "not found"),
        // The import path itself (its GET lists jobs), not a dataset named `import` (OpenAPI's
        // concrete-first match).
        ("/datasets/import?colour=red".to_owned(), 400, "expected one of: dataset_id, status, limit, cursor"),
        (format!("/datasets/{dataset_id}?limit=1"), 400, "unknown query parameter `limit`"),
    ] {
        let (code, problem) = stack.get(&path).await;
        assert_eq!(code, expected, "{path}: {problem}");
        assert!(problem["detail"].as_str().unwrap().contains(detail_has), "{path}: {problem}");
    }

    // Datasets page newest first, one per page, none twice.
    let (_, page1) = stack.get("/datasets?limit=1").await;
    assert_eq!(page1["items"][0]["id"], second["dataset_id"]);
    let cursor = page1["next_cursor"].as_str().unwrap();
    let (_, page2) = stack.get(&format!("/datasets?limit=1&cursor={cursor}")).await;
    assert_eq!(page2["items"][0]["id"], first["dataset_id"]);
    assert_eq!(page2["next_cursor"], Value::Null);
    assert!(page2["items"][0]["created_at"].as_str().unwrap().ends_with('Z'));

    // Cursors are tamper-evident and bound to the tenant and the query they were issued for.
    let (_, other_page) = stack.get_as(OTHER_KEY, &format!("/datasets?limit=1&cursor={cursor}")).await;
    assert_eq!(other_page["status"], 400, "another tenant's cursor: {other_page}");
    let (payload, tag) = cursor.split_once('.').expect("payload.tag");
    let forged_position = base64_url(br#"{"created_at":"2999-01-01T00:00:00Z","id":"x"}"#);
    for forged in [format!("{forged_position}.{tag}"), format!("{payload}.{}", base64_url(&[0; 32])), payload.into()] {
        let (code, problem) = stack.get(&format!("/datasets?limit=1&cursor={forged}")).await;
        assert_eq!(code, 400, "forged cursor {forged}: {problem}");
        assert!(problem["detail"].as_str().unwrap().contains("invalid cursor"));
    }
    let (_, images) = stack.get(&format!("/datasets/{dataset_id}/images?limit=2&split=train")).await;
    let images_cursor = images["next_cursor"].as_str().unwrap();
    let (code, _) =
        stack.get(&format!("/datasets/{dataset_id}/images?limit=2&split=train&cursor={images_cursor}")).await;
    assert_eq!(code, 200);
    let (code, _) = stack.get(&format!("/datasets/{dataset_id}/images?limit=2&split=val&cursor={images_cursor}")).await;
    assert_eq!(code, 400, "a cursor of another filter");
    stack.shutdown().await;
}

/// `GET /datasets/{id}/images/{image_id}[/file]`: every image as listed, and its bytes exactly
/// as in the source, typed by the format found in them, revalidated by ETag; nothing of another
/// dataset or tenant.
#[tokio::test(flavor = "multi_thread")]
async fn image_files_are_served_as_imported() {
    let work = tempfile::tempdir().unwrap();
    let mut spec = DatasetSpec::small(21);
    spec.layout = Layout::Ultralytics;
    spec.defects = Defects { corrupt_images: 2, bad_label_lines: 0, tiny_images: 1 };
    let generated = testkit::generate(&work.path().join("src"), &spec).unwrap();
    assert!(generated.images.iter().any(|i| !i.valid), "the spec holds broken images too");
    let archive = work.path().join("d.zip");
    testkit::pack_zip(&work.path().join("src"), &archive).unwrap();
    let stack = TestStack::start(Chaos::default()).await;
    let mut datasets = Vec::new();
    for name in ["files", "files again"] {
        let (code, accepted) =
            stack.import(&json!({"name": name, "archive_url": format!("file://{}", archive.display())})).await;
        assert_eq!(code, 202, "{accepted}");
        stack.wait_terminal(accepted["job_id"].as_str().unwrap()).await;
        datasets.push(accepted["dataset_id"].as_str().unwrap().to_owned());
    }
    let get = |path: String, etag: Option<String>| {
        let mut req = stack.client.get(stack.url(&path)).header("x-api-key", KEY);
        if let Some(etag) = etag {
            req = req.header("if-none-match", etag);
        }
        async move {
            let resp = req.send().await.unwrap();
            let header = |name: &str| resp.headers().get(name).map(|v| v.to_str().unwrap().to_owned());
            let (content_type, etag) = (header("content-type"), header("etag"));
            (resp.status().as_u16(), content_type, etag, resp.bytes().await.unwrap())
        }
    };

    let mut served_types = std::collections::BTreeSet::new();
    let listed = stack.all_images(&datasets[0], 100, "").await;
    assert_eq!(listed.len(), generated.images.len());
    for image in &listed {
        let (split, file_name) = (image["split"].as_str().unwrap(), image["file_name"].as_str().unwrap());
        let source = generated.images.iter().find(|i| i.split == split && i.file_name == file_name).unwrap();
        let (code, one) =
            stack.get(&format!("/datasets/{}/images/{}", datasets[0], image["id"].as_str().unwrap())).await;
        // The same object, but for its signed URLs, whose expiry moves on with the hour.
        let same = |image: &Value| {
            let mut image = image.clone();
            image.as_object_mut().unwrap().retain(|field, _| !field.ends_with("_url"));
            image
        };
        assert_eq!((code, same(&one)), (200, same(image)), "one image by id is what the listing shows");
        assert_eq!(
            one["thumbnail_url"].as_str().unwrap().split('?').next(),
            image["thumbnail_url"].as_str().unwrap().split('?').next()
        );
        let path = format!("/datasets/{}/images/{}/file", datasets[0], image["id"].as_str().unwrap());
        let (code, content_type, etag, body) = get(path.clone(), None).await;
        if source.size_bytes == 0 {
            assert_eq!(code, 404, "{path}: an empty file is not stored");
            continue;
        }
        assert_eq!(code, 200, "{path}: {}", String::from_utf8_lossy(&body));
        assert_eq!(body, std::fs::read(generated.image_path(source)).unwrap(), "{path}: the bytes as imported");
        // Typed by what the bytes are, not by the name: garbage named `.jpg` is plain bytes.
        let expected_type = match source.format.as_str() {
            _ if source.width == 0 => "application/octet-stream",
            "jpeg" => "image/jpeg",
            "png" => "image/png",
            other => panic!("the generator wrote a {other}"),
        };
        assert_eq!(content_type.as_deref(), Some(expected_type), "{path}");
        served_types.insert(expected_type);
        let etag = etag.expect("an ETag");
        assert_eq!(etag, format!("\"{}\"", image["content_hash"].as_str().unwrap()));
        let (code, _, again, body) = get(path.clone(), Some(format!("\"other\", {etag}"))).await;
        assert_eq!((code, body.len(), again), (304, 0, Some(etag.clone())), "{path}: revalidated");
        let (code, _, _, _) = get(path, Some("\"other\"".into())).await;
        assert_eq!(code, 200, "another ETag is no match");
    }

    assert_eq!(served_types.len(), 3, "JPEG, PNG and broken files all served: {served_types:?}");

    // Only through its own dataset, and only for its tenant.
    let id = listed[0]["id"].as_str().unwrap();
    let (code, _, _, body) = get(format!("/datasets/{}/images/{id}/file", datasets[1]), None).await;
    assert_eq!(code, 404, "an image id of another dataset: {}", String::from_utf8_lossy(&body));
    let (code, problem) = stack.get(&format!("/datasets/{}/images/{id}", datasets[1])).await;
    assert_eq!(code, 404, "an image id of another dataset: {problem}");
    let (code, problem) = stack.get_as(OTHER_KEY, &format!("/datasets/{}/images/{id}", datasets[0])).await;
    assert_eq!(code, 404, "another tenant: {problem}");
    let (code, _, _, _) = get(format!("/datasets/{}/images/no-such-image/file", datasets[0]), None).await;
    assert_eq!(code, 404);
    let (code, problem) = stack.get_as(OTHER_KEY, &format!("/datasets/{}/images/{id}/file", datasets[0])).await;
    assert_eq!(code, 404, "another tenant: {problem}");
    let (code, problem) = stack.get(&format!("/datasets/{}/images/{id}/file?size=1", datasets[0])).await;
    assert_eq!(code, 400, "{problem}");
    stack.shutdown().await;
}

/// An Image's `file_url` and `thumbnail_url` are what `<img src>` needs: fetched without the
/// `x-api-key` header they answer the file as imported and a JPEG of at most 320 pixels a side,
/// kept in storage once made; an edited or misplaced signature is a 403, and a signature opens
/// no other route.
#[tokio::test(flavor = "multi_thread")]
async fn signed_image_urls_work_without_a_key() {
    let work = tempfile::tempdir().unwrap();
    let mut spec = DatasetSpec::small(41);
    spec.image_size = (800, 600); // each image 400×300 to 1200×900: every thumbnail is scaled
    let generated = testkit::generate(&work.path().join("src"), &spec).unwrap();
    let archive = work.path().join("d.zip");
    testkit::pack_zip(&work.path().join("src"), &archive).unwrap();
    let stack = TestStack::start(Chaos::default()).await;
    let (code, accepted) =
        stack.import(&json!({"name": "signed", "archive_url": format!("file://{}", archive.display())})).await;
    assert_eq!(code, 202, "{accepted}");
    stack.wait_terminal(accepted["job_id"].as_str().unwrap()).await;
    let dataset_id = accepted["dataset_id"].as_str().unwrap();
    let images = stack.all_images(dataset_id, 100, "").await;
    assert_eq!(images.len(), generated.images.len());
    // Without a key, as a browser fetches them.
    let fetch = |url: String| {
        let req = stack.client.get(stack.url(&url));
        async move {
            let resp = req.send().await.unwrap();
            let header = |name: &str| resp.headers().get(name).map(|v| v.to_str().unwrap().to_owned());
            let content_type = header("content-type").unwrap_or_default();
            (resp.status().as_u16(), content_type, resp.bytes().await.unwrap())
        }
    };
    let thumbnails = stack.dir.path().join("data/storage/datasets").join(dataset_id).join("thumbnails");

    let mut formats = std::collections::BTreeSet::new();
    for image in &images {
        let (split, file_name) = (image["split"].as_str().unwrap(), image["file_name"].as_str().unwrap());
        let source = generated.images.iter().find(|i| i.split == split && i.file_name == file_name).unwrap();
        let id = image["id"].as_str().unwrap();
        let file_url = image["file_url"].as_str().unwrap();
        assert!(file_url.starts_with(&format!("/datasets/{dataset_id}/images/{id}/file?tenant=acme&expires=")));
        let (code, _, body) = fetch(file_url.to_owned()).await;
        assert_eq!(code, 200, "{file_url}: {}", String::from_utf8_lossy(&body));
        assert_eq!(body, std::fs::read(generated.image_path(source)).unwrap(), "{file_url}: the bytes as imported");

        let thumbnail_url = image["thumbnail_url"].as_str().unwrap();
        assert!(thumbnail_url.starts_with(&format!("/datasets/{dataset_id}/images/{id}/thumbnail?tenant=acme&")));
        assert!(!thumbnails.join(format!("{id}.jpg")).exists(), "no thumbnail before the first request");
        let (code, content_type, body) = fetch(thumbnail_url.to_owned()).await;
        assert_eq!((code, content_type.as_str()), (200, "image/jpeg"), "{}", String::from_utf8_lossy(&body));
        let size = imagesize::blob_size(&body).expect("a JPEG's size");
        assert_eq!(imagesize::image_type(&body).unwrap(), imagesize::ImageType::Jpeg);
        let (width, height) = (source.width as usize, source.height as usize);
        let expected = if width >= height {
            (320, (height * 320 + width / 2) / width)
        } else {
            ((width * 320 + height / 2) / height, 320)
        };
        assert_eq!((size.width, size.height), expected, "{file_name} ({width}×{height}): fits 320, same shape");
        assert_eq!(std::fs::read(thumbnails.join(format!("{id}.jpg"))).unwrap(), body, "kept in storage");
        formats.insert(source.format.clone());
    }
    assert_eq!(formats.len(), 2, "JPEG and PNG sources: {formats:?}");

    // Edited: one character of the signature, the expiry, the path.
    let (first, second) = (&images[0], &images[1]);
    let url = first["thumbnail_url"].as_str().unwrap();
    let (path, query) = url.split_once('?').unwrap();
    let (unsigned, signature) = url.rsplit_once("signature=").unwrap();
    let flipped = if signature.starts_with('A') { 'B' } else { 'A' };
    let expires = query.split('&').find_map(|p| p.strip_prefix("expires=")).unwrap();
    let later = (expires.parse::<u64>().unwrap() + 3600).to_string();
    let second_path = format!("/datasets/{dataset_id}/images/{}/thumbnail", second["id"].as_str().unwrap());
    for (what, edited) in [
        ("one character of the signature", format!("{unsigned}signature={flipped}{}", &signature[1..])),
        ("the expiry", url.replace(&format!("expires={expires}"), &format!("expires={later}"))),
        ("another image's path", format!("{second_path}?{query}")),
        ("the file route's path", format!("{}?{query}", path.replace("/thumbnail", "/file"))),
    ] {
        assert_ne!(edited, url);
        let resp = stack.client.get(stack.url(&edited)).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 403, "{what}: {edited}");
        assert_eq!(resp.headers()["content-type"], "application/problem+json");
        let problem: Value = resp.json().await.unwrap();
        assert!(problem["detail"].as_str().unwrap().starts_with("invalid URL signature"), "{what}: {problem}");
    }
    // A signature opens no other route: the listing without a key is a 401, whatever the query.
    for listing in
        [format!("/datasets/{dataset_id}/images?{query}"), format!("/datasets/{dataset_id}/images?signature=x")]
    {
        let resp = stack.client.get(stack.url(&listing)).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 401, "{listing}");
    }
    stack.shutdown().await;
}

fn base64_url(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A tar.gz holding a real dataset plus members that try to escape: `../`, an absolute path
/// and a symlink. They are refused and reported; nothing is written outside the dataset.
fn hostile_archive(root: &std::path::Path, out: &std::path::Path) {
    let file = std::fs::File::create(out).unwrap();
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(file, flate2::Compression::fast()));
    builder.append_dir_all(".", root).unwrap();
    for name in ["../escaped.txt", "/tmp/yds-absolute.txt"] {
        let data = b"0 0.5 0.5 0.1 0.1\n";
        let mut header = tar::Header::new_gnu();
        // The builder refuses such names, so write the raw header field.
        let field = &mut header.as_old_mut().name;
        field[..name.len()].copy_from_slice(name.as_bytes());
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append(&header, &data[..]).unwrap();
    }
    let mut link = tar::Header::new_gnu();
    link.set_entry_type(tar::EntryType::Symlink);
    link.set_size(0);
    builder.append_link(&mut link, "labels/train/link.txt", "/etc/passwd").unwrap();
    builder.into_inner().unwrap().finish().unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_archive_members_are_refused_and_reported() {
    let work = tempfile::tempdir().unwrap();
    let generated = testkit::generate(&work.path().join("src"), &DatasetSpec::small(9)).unwrap();
    let archive = work.path().join("inner").join("hostile.tar.gz");
    std::fs::create_dir_all(archive.parent().unwrap()).unwrap();
    hostile_archive(&work.path().join("src"), &archive);
    let stack = TestStack::start(Chaos::default()).await;
    let (code, accepted) =
        stack.import(&json!({"name": "hostile", "archive_url": format!("file://{}", archive.display())})).await;
    assert_eq!(code, 202);
    let status = stack.wait_terminal(accepted["job_id"].as_str().unwrap()).await;
    assert_eq!(status["status"], "completed_with_errors", "{status}");
    let codes: Vec<&str> = status["errors"].as_array().unwrap().iter().map(|e| e["code"].as_str().unwrap()).collect();
    for expected in ["unsafe_path", "absolute_path", "link_member"] {
        assert!(codes.contains(&expected), "{expected} not reported: {codes:?}");
    }
    // The dataset itself imported whole, and nothing escaped.
    assert_eq!(status["counts"]["images"], generated.image_count());
    assert!(!work.path().join("inner").join("..").join("escaped.txt").exists());
    assert!(!std::path::Path::new("/tmp/yds-absolute.txt").exists());
    let data = stack.dir.path().join("data");
    let escaped = std::process::Command::new("find").arg(&data).args(["-name", "escaped.txt"]).output().unwrap();
    assert!(escaped.stdout.is_empty(), "escaped.txt written under the data dir");
    stack.shutdown().await;
}
