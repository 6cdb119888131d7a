//! `GET /datasets/{id}/images` on a real mongod: every filter combination returns exactly the
//! matching images in `path` order, page after page, and is answered from an index without an
//! in-memory sort (the query must stay fast on a million-image dataset).

use mongodb::bson::{doc, Bson, Document};
use mongodb::options::Hint;
use testkit::db::{inspect, test_db};
use yds_store::images::{self, ImageDoc, ImageQuery, INVALID_INDEX, ISSUES_INDEX};

/// Split names chosen so that split order and path order differ: `train-extra/...` sorts before
/// `train/...` although `train` < `train-extra`.
const SPLITS: [&str; 3] = ["train", "train-extra", "val"];
const ISSUES: [&str; 2] = ["label_out_of_bounds", "image_corrupt"];

fn image(dataset_id: &str, n: usize) -> ImageDoc {
    let split = SPLITS[n % 3];
    // 37 is coprime to 600: every name distinct, in an order unrelated to `n`.
    let file_name = format!("img_{:03}.jpg", (n * 37) % 600);
    let path = format!("{split}/{file_name}");
    let class_ids: Vec<u32> = (0..(n % 4) as u32).map(|k| (n as u32 + k * 3) % 5).collect();
    let issue_codes: Vec<String> = if n.is_multiple_of(5) { vec![ISSUES[n % 2].to_owned()] } else { Vec::new() };
    ImageDoc {
        id: images::image_id(dataset_id, &path),
        dataset_id: dataset_id.to_owned(),
        path,
        split: split.to_owned(),
        file_name,
        width: 64,
        height: 48,
        stored_width: 64,
        stored_height: 48,
        orientation: None,
        format: "jpeg".into(),
        size_bytes: 100,
        content_hash: format!("{n:064x}"),
        hash_key: images::hash_key(&format!("{n:064x}")),
        valid: !n.is_multiple_of(5) || n % 2 == 1,
        annotations: Vec::new(),
        issues: Vec::new(),
        issue_codes,
        class_ids,
        label: None,
    }
}

fn matches(image: &ImageDoc, query: &ImageQuery) -> bool {
    query.split.as_ref().is_none_or(|s| &image.split == s)
        && query.class_id.is_none_or(|c| image.class_ids.contains(&c))
        && query.issue.as_ref().is_none_or(|code| image.issue_codes.contains(code))
        && query.valid.is_none_or(|v| image.valid == v)
}

/// Every stage name in an explain plan tree.
fn stages(plan: &Document, out: &mut Vec<String>) {
    if let Ok(stage) = plan.get_str("stage") {
        out.push(stage.to_owned());
    }
    for (_, value) in plan {
        match value {
            Bson::Document(child) => stages(child, out),
            Bson::Array(children) => {
                for child in children.iter().filter_map(Bson::as_document) {
                    stages(child, out);
                }
            }
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_filter_combination_pages_in_path_order_from_an_index() {
    let db = &test_db().await;
    let raw = inspect(db).await;
    let mut dataset: Vec<ImageDoc> = (0..600).map(|n| image("ds1", n)).collect();
    db.images.insert_many(&dataset.iter().collect::<Vec<_>>()).await.unwrap();
    dataset.sort_by(|a, b| a.path.cmp(&b.path));
    // Another dataset's images must never leak into the pages.
    let other: Vec<ImageDoc> = (0..50).map(|n| image("ds2", n)).collect();
    db.images.insert_many(&other.iter().collect::<Vec<_>>()).await.unwrap();

    let mut checked_nonempty = 0;
    for split in [None, Some("train"), Some("train-extra"), Some("val")] {
        for class_id in [None, Some(0), Some(4)] {
            for issue in [None, Some(ISSUES[0])] {
                for valid in [None, Some(true), Some(false)] {
                    let mut query = ImageQuery {
                        dataset_id: "ds1".into(),
                        split: split.map(str::to_owned),
                        class_id,
                        valid,
                        issue: issue.map(str::to_owned),
                        all_splits: SPLITS.iter().map(|s| s.to_string()).collect(),
                        after: None,
                        limit: 7,
                    };
                    let expected: Vec<&str> =
                        dataset.iter().filter(|i| matches(i, &query)).map(|i| i.path.as_str()).collect();
                    let mut got = Vec::new();
                    loop {
                        let (items, next) = db.images.page(&query).await.unwrap();
                        assert!(items.len() <= 7);
                        got.extend(items.into_iter().map(|i| i.path));
                        match next {
                            Some(after) => query.after = Some(after),
                            None => break,
                        }
                    }
                    assert_eq!(got, expected, "{query:?}");
                    checked_nonempty += usize::from(!expected.is_empty());

                    query.after = None;
                    let (filter, hint) = query.filter_and_hint();
                    let hint = match hint {
                        Hint::Keys(keys) => Bson::Document(keys),
                        Hint::Name(name) => Bson::String(name),
                        other => panic!("unexpected hint {other:?}"),
                    };
                    let explain = raw
                        .run_command(doc! {
                            "explain": {"find": "images", "filter": filter, "sort": {"path": 1}, "hint": hint, "limit": 8},
                            "verbosity": "queryPlanner",
                        })
                        .await
                        .unwrap();
                    let plan = explain.get_document("queryPlanner").unwrap().get_document("winningPlan").unwrap();
                    let mut names = Vec::new();
                    stages(plan, &mut names);
                    assert!(names.iter().any(|s| s == "IXSCAN"), "{query:?}: {names:?}");
                    assert!(!names.iter().any(|s| s == "SORT" || s == "COLLSCAN"), "{query:?}: {names:?}");
                }
            }
        }
    }
    // The fixture exercises the filters: most combinations have images to page through.
    assert!(checked_nonempty > 40, "only {checked_nonempty} non-empty combinations");
}

/// Only images with an issue are in the issue index, and only invalid ones in the validity
/// index: the keys not written are what the partial indexes save on every import. Counted by
/// mongod's own `validate`, which reports the keys of each index.
#[tokio::test(flavor = "multi_thread")]
async fn issue_and_validity_indexes_hold_only_the_images_they_find() {
    let db = &test_db().await;
    let raw = inspect(db).await;
    let images_raw = raw.collection::<ImageDoc>("images");
    let dataset: Vec<ImageDoc> = (0..600).map(|n| image("ds1", n)).collect();
    db.images.insert_many(&dataset.iter().collect::<Vec<_>>()).await.unwrap();
    // Running again (every function start does) keeps the same indexes.
    db.ensure_indexes().await.unwrap();

    let validate = raw.run_command(doc! {"validate": "images", "full": true}).await.unwrap();
    let keys = validate.get_document("keysPerIndex").unwrap();
    let count = |name: &str| keys.get(name).and_then(Bson::as_i64).or_else(|| keys.get_i32(name).ok().map(i64::from));
    let with_issues = dataset.iter().map(|i| i.issue_codes.len() as i64).sum::<i64>();
    let invalid = dataset.iter().filter(|i| !i.valid).count() as i64;
    assert!(with_issues > 0 && with_issues < 600 && invalid > 0, "the fixture has both kinds");
    assert_eq!(count(ISSUES_INDEX), Some(with_issues), "{keys:?}");
    assert_eq!(count(INVALID_INDEX), Some(invalid), "{keys:?}");
    assert_eq!(count("dataset_id_1_split_1_path_1"), Some(600), "{keys:?}");
    assert!(dataset[1].issue_codes.is_empty());
    let stored =
        images_raw.clone_with_type::<Document>().find_one(doc! {"_id": &dataset[1].id}).await.unwrap().unwrap();
    assert!(!stored.contains_key("issue_codes"), "an image without issues stores no codes: {stored:?}");
}

/// A database created before the partial indexes had full ones under the default names with
/// the same keys, a unique index on `{dataset_id, path}` and a duplicate index on the hex
/// hash; starting a function replaces the first two and drops the others.
#[tokio::test(flavor = "multi_thread")]
async fn the_full_indexes_the_partial_ones_replaced_are_dropped() {
    let db = &test_db().await;
    let raw = inspect(db).await;
    let images_raw = raw.collection::<ImageDoc>("images");
    images_raw.drop_index(ISSUES_INDEX).await.unwrap();
    images_raw.drop_index(INVALID_INDEX).await.unwrap();
    let old = [
        doc! {"dataset_id": 1, "split": 1, "issue_codes": 1, "path": 1},
        doc! {"dataset_id": 1, "split": 1, "valid": 1, "path": 1},
    ];
    images_raw.create_indexes(old.map(|keys| mongodb::IndexModel::builder().keys(keys).build())).await.unwrap();
    let unique = mongodb::options::IndexOptions::builder().unique(true).build();
    let by_path = mongodb::IndexModel::builder().keys(doc! {"dataset_id": 1, "path": 1}).options(unique).build();
    images_raw.create_index(by_path).await.unwrap();
    let by_hex_hash = mongodb::IndexModel::builder().keys(doc! {"dataset_id": 1, "content_hash": 1}).build();
    images_raw.create_index(by_hex_hash).await.unwrap();

    db.ensure_indexes().await.unwrap();
    let names = images_raw.list_index_names().await.unwrap();
    assert!(names.iter().any(|n| n == ISSUES_INDEX), "{names:?}");
    assert!(names.iter().any(|n| n == INVALID_INDEX), "{names:?}");
    assert!(!names.iter().any(|n| n.contains("issue_codes_1") || n.contains("valid_1")), "{names:?}");
    assert!(!names.iter().any(|n| n == "dataset_id_1_path_1"), "{names:?}");
    assert!(!names.iter().any(|n| n == "dataset_id_1_content_hash_1"), "{names:?}");
    assert!(names.iter().any(|n| n == "dataset_id_1_hash_key_1"), "{names:?}");
}

/// Duplicates are runs of equal `hash_key` confirmed on the full hash: files whose hashes share
/// their first 8 bytes but differ after are not duplicates; equal files are, within a split and
/// across splits; documents without a key (written before it existed) are still compared.
#[tokio::test(flavor = "multi_thread")]
async fn duplicates_are_equal_full_hashes_not_equal_keys() {
    let db = &test_db().await;
    let raw = inspect(db).await;
    let images_raw = raw.collection::<ImageDoc>("images");
    let dataset_id = "dups";
    let same_key = |tail: &str| format!("{:0<48}{tail:0>16}", "ab".repeat(8));
    let image_with = |n: usize, split: &str, hash: String| {
        let path = format!("{split}/img_{n}.jpg");
        ImageDoc {
            id: images::image_id(dataset_id, &path),
            path,
            split: split.to_owned(),
            file_name: format!("img_{n}.jpg"),
            hash_key: images::hash_key(&hash),
            content_hash: hash,
            issue_codes: Vec::new(),
            ..image(dataset_id, n)
        }
    };
    let docs = [
        // Same key, three different files: none is a duplicate.
        image_with(1, "train", same_key("1")),
        image_with(2, "train", same_key("2")),
        image_with(3, "val", same_key("3")),
        // Same key and same file: a duplicate within train and across to val.
        image_with(4, "train", same_key("4")),
        image_with(5, "train", same_key("4")),
        image_with(6, "val", same_key("4")),
    ];
    assert!(docs.iter().all(|d| d.hash_key == docs[0].hash_key), "the test needs one shared key");
    db.images.insert_many(&docs.iter().collect::<Vec<_>>()).await.unwrap();
    // Two equal files written before `hash_key` existed: no key at all.
    let raw = images_raw.clone_with_type::<Document>();
    for n in [7, 8] {
        let mut old = mongodb::bson::to_document(&image_with(n, "val", format!("{:064x}", 7))).unwrap();
        old.remove("hash_key");
        raw.insert_one(old).await.unwrap();
    }

    let counts = db.images.mark_duplicates(dataset_id).await.unwrap();
    assert_eq!((counts.within_split, counts.cross_split), (4, 3), "{counts:?}");
    let codes_of = |n: usize, split: &str| {
        let id = images::image_id(dataset_id, &format!("{split}/img_{n}.jpg"));
        let raw = raw.clone();
        async move {
            let stored = raw.find_one(doc! {"_id": id}).await.unwrap().unwrap();
            let codes =
                stored.get_array("issue_codes").map(|a| a.iter().filter_map(Bson::as_str).map(str::to_owned).collect());
            codes.unwrap_or_else(|_| Vec::<String>::new())
        }
    };
    for (n, split) in [(1, "train"), (2, "train"), (3, "val")] {
        assert!(codes_of(n, split).await.is_empty(), "img_{n} shares only the key");
    }
    assert_eq!(codes_of(4, "train").await, ["duplicate_image", "cross_split_duplicate"]);
    assert_eq!(codes_of(6, "val").await, ["cross_split_duplicate"]);
    assert_eq!(codes_of(7, "val").await, ["duplicate_image"]);
    // Marking again changes nothing (`$addToSet`, deterministic messages).
    assert_eq!(db.images.mark_duplicates(dataset_id).await.unwrap(), counts);
    assert_eq!(codes_of(5, "train").await, ["duplicate_image", "cross_split_duplicate"]);
}
