//! The web app in a real browser: headless Chromium (Debian's, installed by `cargo xtask test`)
//! on the whole local stack, doing what a user does — sign in, import from the form and watch it
//! finish, open a dataset of each task and see every annotation drawn, filter, open an image —
//! with no console error on any page. Screenshots land in `target/browser-screenshots/`.

use std::path::Path;

use serde_json::{json, Value};
use testkit::browser::{Browser, Key};
use testkit::{pack_tar_gz, task_dataset, TaskDataset, TASKS};
use yds_tests::{Chaos, TestStack, KEY};

/// Images per dataset: more than one page of the grid would hold at 100 is not needed here;
/// enough that filters change what is shown.
const TRAIN: usize = 14;
const VAL: usize = 6;

struct Imported {
    set: TaskDataset,
    dataset_id: String,
}

fn archive_url(set: &TaskDataset, dir: &Path) -> String {
    let archive = dir.join(format!("{}.tar.gz", set.task));
    pack_tar_gz(&set.root, &archive).expect("packing the dataset");
    format!("file://{}", archive.display())
}

/// Sets an input's value as a user typing it would (the `input` event included).
async fn fill(browser: &Browser, css: &str, value: &str) {
    let script = format!(
        "const el = document.querySelector({}); el.focus(); el.value = {}; \
         el.dispatchEvent(new Event('input', {{bubbles: true}})); \
         el.dispatchEvent(new Event('change', {{bubbles: true}})); return true;",
        json!(css),
        json!(value)
    );
    browser.eval(&script).await;
}

async fn click(browser: &Browser, css: &str) {
    browser.wait_for(css).await.click().await.unwrap_or_else(|e| panic!("clicking {css}: {e}"));
}

/// The annotations on the first page of images the grid asks for (100, as the app does).
async fn first_page(stack: &TestStack, dataset_id: &str, filter: &str) -> Vec<Value> {
    let (code, page) = stack.get(&format!("/datasets/{dataset_id}/images?limit=100{filter}")).await;
    assert_eq!(code, 200, "{page}");
    page["items"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_user_signs_in_imports_and_sees_every_annotation_of_each_task() {
    let test = "a_user_signs_in_imports_and_sees_every_annotation_of_each_task";
    let Some((chromium, chromedriver)) = testkit::browser(test) else { return };
    let stack = TestStack::start(Chaos::default()).await;
    let data = tempfile::tempdir().unwrap();
    let sets: Vec<TaskDataset> = TASKS
        .iter()
        .enumerate()
        .map(|(n, task)| task_dataset(data.path(), task, TRAIN, VAL, 40 + n as u64).unwrap())
        .collect();
    let browser = Browser::start(&chromium, &chromedriver).await.expect("chromium starts");

    // `/` leads to the app, which asks for a key; a wrong one is refused, the right one kept.
    browser.goto(&stack.url("/")).await;
    let key_input = "#signin-form #api-key";
    browser.wait_for(key_input).await;
    assert!(browser.location().await.starts_with("/ui/"), "{}", browser.location().await);
    fill(&browser, key_input, "not-a-key").await;
    click(&browser, "#signin-submit").await;
    browser
        .wait_until("the wrong key's refusal", "return document.querySelector('#signin-message')?.textContent;")
        .await;
    fill(&browser, key_input, KEY).await;
    click(&browser, "#signin-submit").await;
    browser.wait_for("#datasets-table").await;
    // The wrong key's 401 is the one error Chromium logs (every refused fetch is logged).
    let errors = browser.console_errors().await;
    assert!(errors.iter().all(|e| e.contains("401")), "only the refused key's 401: {errors:#?}");

    // Import the detect dataset from the form and watch it end.
    let detect = &sets[0];
    click(&browser, "#import-open").await;
    fill(&browser, "#import-name", "from the form").await;
    fill(&browser, "#import-archive-url", &archive_url(detect, data.path())).await;
    fill(&browser, "#import-chunk-size", "5").await;
    browser.screenshot("import-form").await;
    click(&browser, "#import-submit").await;
    let outcome = browser
        .wait_until(
            "the import's terminal status",
            "const s = document.querySelector('#import-summary')?.dataset.status; \
             return ['completed', 'completed_with_errors', 'failed'].includes(s) ? s : null;",
        )
        .await;
    assert_eq!(outcome, "completed_with_errors", "one image of the dataset is corrupt");
    let summary =
        browser.eval("return document.querySelector('#import-counts [data-count=images] dd').textContent;").await;
    let summary = summary.as_str().unwrap();
    assert_eq!(summary.trim(), (TRAIN + VAL).to_string(), "the summary counts every image");
    browser.screenshot("import-finished").await;
    browser.assert_no_console_errors("import").await;
    let (_, listed) = stack.get("/datasets?limit=10").await;
    let from_form = listed["items"].as_array().unwrap().iter().find(|d| d["name"] == "from the form").unwrap();
    let mut imported = vec![Imported { set: detect.clone(), dataset_id: from_form["id"].as_str().unwrap().to_owned() }];

    // The three other tasks through the API.
    for set in &sets[1..] {
        let body = json!({"name": set.task, "archive_url": archive_url(set, data.path()), "task": set.task});
        let (code, accepted) = stack.import(&body).await;
        assert_eq!(code, 202, "{accepted}");
        let status = stack.wait_terminal(accepted["job_id"].as_str().unwrap()).await;
        assert_eq!(status["status"], "completed_with_errors", "{status}");
        imported.push(Imported { set: set.clone(), dataset_id: accepted["dataset_id"].as_str().unwrap().to_owned() });
    }

    // The datasets page lists all four, ready.
    browser.goto(&stack.url("/ui/")).await;
    browser
        .wait_until(
            "four ready rows",
            "return document.querySelectorAll('[data-dataset-id][data-status=ready]').length === 4;",
        )
        .await;
    for one in &imported {
        let row = format!("[data-dataset-id=\"{}\"]", one.dataset_id);
        assert_eq!(browser.count(&row).await, 1, "{} is listed once", one.set.task);
    }
    browser.screenshot("datasets").await;
    browser.assert_no_console_errors("datasets").await;

    // Each task: the first page's annotations, every one drawn, in its class.
    for one in &imported {
        let page = first_page(&stack, &one.dataset_id, "").await;
        let expected: usize = page.iter().map(|i| i["annotations"].as_array().unwrap().len()).sum();
        assert!(expected > 0);
        browser.goto(&stack.url(&format!("/ui/datasets/{}", one.dataset_id))).await;
        let tiles = format!("return document.querySelectorAll('[data-image-id]').length === {};", page.len());
        browser.wait_until("the first page of tiles", &tiles).await;
        let drawn =
            format!("return document.querySelectorAll('[data-image-id] [data-annotation]').length === {expected};");
        browser.wait_until(&format!("{expected} {} annotations drawn", one.set.task), &drawn).await;
        // Each tile draws exactly its image's annotations, in their classes.
        for image in &page {
            let classes: Vec<u64> =
                image["annotations"].as_array().unwrap().iter().map(|a| a["class_id"].as_u64().unwrap()).collect();
            let script = format!(
                "return [...document.querySelectorAll('[data-image-id=\"{}\"] [data-annotation]')]\
                 .map(e => Number(e.dataset.classId));",
                image["id"].as_str().unwrap()
            );
            let drawn: Vec<u64> = serde_json::from_value(browser.eval(&script).await).unwrap();
            let (mut drawn, mut classes) = (drawn, classes);
            drawn.sort();
            classes.sort();
            assert_eq!(drawn, classes, "{} image {}", one.set.task, image["file_name"]);
        }
        let shapes = match one.set.task {
            "detect" => "rect",
            "segment" | "obb" => "polygon",
            _ => "g",
        };
        let shape_count = format!("[data-image-id] {shapes}[data-annotation]");
        assert_eq!(browser.count(&shape_count).await, expected, "{} draws {shapes}s", one.set.task);
        browser.screenshot(&format!("dataset-{}", one.set.task)).await;
        browser.assert_no_console_errors(&format!("the {} dataset", one.set.task)).await;
    }

    // Filters change the grid: the val split, then the invalid images.
    let detect = &imported[0];
    browser.goto(&stack.url(&format!("/ui/datasets/{}", detect.dataset_id))).await;
    browser.wait_for("[data-image-id]").await;
    browser.eval("const s = document.querySelector('#filter-split'); s.value = 'val'; s.dispatchEvent(new Event('change', {bubbles: true})); return true;").await;
    let val = format!("return document.querySelectorAll('[data-image-id]').length === {VAL};");
    browser.wait_until("the val split's tiles", &val).await;
    assert!(browser.location().await.contains("split=val"), "the filter is in the URL: {}", browser.location().await);
    let val_ids: Vec<String> = first_page(&stack, &detect.dataset_id, "&split=val")
        .await
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect();
    let shown: Vec<String> = serde_json::from_value(
        browser.eval("return [...document.querySelectorAll('[data-image-id]')].map(e => e.dataset.imageId);").await,
    )
    .unwrap();
    assert_eq!(shown, val_ids, "the grid shows the API's val page, in its order");

    browser.goto(&stack.url(&format!("/ui/datasets/{}?valid=false", detect.dataset_id))).await;
    browser
        .wait_until("the one invalid tile", "return document.querySelectorAll('[data-image-id]').length === 1;")
        .await;
    let invalid = first_page(&stack, &detect.dataset_id, "&valid=false").await;
    assert_eq!(invalid.len(), 1);
    assert_eq!(invalid[0]["file_name"], detect.set.corrupt_image);
    let code = invalid[0]["issues"][0]["code"].as_str().unwrap().to_owned();
    browser.screenshot("dataset-invalid-filter").await;

    // The invalid image's page names its issue.
    click(&browser, "[data-image-id] a, a[data-image-id]").await;
    let issues =
        browser.wait_until("the image's issues", "return document.querySelector('.issues')?.textContent;").await;
    assert!(issues.as_str().unwrap().contains(&code), "the issue {code} is shown: {issues}");
    browser.screenshot("image-invalid").await;
    browser.assert_no_console_errors("the invalid image").await;

    // An image page: its annotations drawn at full size; → goes to the next image of the
    // filter, Esc back to the grid with the filter kept.
    let train = first_page(&stack, &detect.dataset_id, "&split=train").await;
    let (first, second) = (&train[1], &train[2]);
    let image_path =
        |image: &Value| format!("/ui/datasets/{}/images/{}", detect.dataset_id, image["id"].as_str().unwrap());
    browser.goto(&stack.url(&format!("{}?split=train", image_path(first)))).await;
    let drawn = format!(
        "return document.querySelectorAll('main [data-annotation]').length === {};",
        first["annotations"].as_array().unwrap().len()
    );
    browser.wait_until("the image's annotations", &drawn).await;
    browser.screenshot("image").await;
    // ← and → work once the neighbours in the filter are known.
    browser.wait_for("#image-next:not([disabled])").await;
    browser.press(Key::Right).await;
    let next = format!("return location.pathname === {};", json!(image_path(second)));
    browser.wait_until("the next image after →", &next).await;
    browser.press(Key::Escape).await;
    let grid = format!("return location.pathname === '/ui/datasets/{}';", detect.dataset_id);
    browser.wait_until("the grid after Esc", &grid).await;
    assert!(browser.location().await.contains("split=train"), "{}", browser.location().await);
    browser.assert_no_console_errors("the image pages").await;

    // The API reference.
    browser.goto(&stack.url("/docs")).await;
    let docs = browser
        .wait_until(
            "the API reference",
            "return document.body.textContent.includes('/datasets/{id}/images') && document.body.textContent;",
        )
        .await;
    assert!(docs.as_str().unwrap().contains("/datasets/import"), "every route is documented");
    browser.screenshot("docs").await;
    browser.assert_no_console_errors("/docs").await;

    browser.close().await;
    stack.shutdown().await;
}

/// A URL fragment signs in, for automation; it never reaches the server. A failed import says
/// why on the datasets page.
#[tokio::test(flavor = "multi_thread")]
async fn a_key_in_the_fragment_signs_in_and_a_failed_import_says_why() {
    let test = "a_key_in_the_fragment_signs_in_and_a_failed_import_says_why";
    let Some((chromium, chromedriver)) = testkit::browser(test) else { return };
    let stack = TestStack::start(Chaos::default()).await;
    let data = tempfile::tempdir().unwrap();
    let not_an_archive = data.path().join("broken.zip");
    std::fs::write(&not_an_archive, b"these bytes are not a zip archive").unwrap();
    let body = json!({"name": "broken", "archive_url": format!("file://{}", not_an_archive.display())});
    let (code, accepted) = stack.import(&body).await;
    assert_eq!(code, 202, "{accepted}");
    let status = stack.wait_terminal(accepted["job_id"].as_str().unwrap()).await;
    assert_eq!(status["status"], "failed", "{status}");
    let reason = status["errors"][0]["message"].as_str().expect("a failed job says why").to_owned();

    let browser = Browser::start(&chromium, &chromedriver).await.expect("chromium starts");
    browser.goto(&stack.url(&format!("/ui/#api_key={KEY}"))).await;
    browser.wait_for("#datasets-table").await;
    let row = format!("[data-dataset-id=\"{}\"][data-status=failed]", accepted["dataset_id"].as_str().unwrap());
    let shown = browser
        .wait_until(
            "the failed row's reason",
            &format!(
                "const r = document.querySelector({})?.querySelector('.fail-reason')?.textContent; \
                 return r && !r.startsWith('Finding out') && r;",
                json!(row)
            ),
        )
        .await;
    assert!(shown.as_str().unwrap().contains(&reason), "the row says {shown}, the job says {reason}");
    browser.screenshot("datasets-failed").await;
    assert_eq!(browser.count("#signin-form").await, 0, "no sign-in form once the fragment gave the key");
    let hash = browser.eval("return location.hash;").await;
    assert_eq!(hash, "", "the key does not stay in the address bar");
    let kept = browser.eval("return sessionStorage.getItem('yds.api_key');").await;
    assert_eq!(kept, KEY);
    browser.assert_no_console_errors("the fragment sign-in").await;
    let light = page_luminance(&browser).await;
    browser.close().await;

    // Light and dark follow the system.
    let dark_browser = Browser::start_with(&chromium, &chromedriver, &["--force-dark-mode"]).await.unwrap();
    dark_browser.goto(&stack.url(&format!("/ui/#api_key={KEY}"))).await;
    dark_browser.wait_for("#datasets-table").await;
    let dark = page_luminance(&dark_browser).await;
    assert!(light > 0.8 && dark < 0.2, "page background luminance: light {light}, dark {dark}");
    dark_browser.screenshot("datasets-dark").await;
    dark_browser.assert_no_console_errors("the dark datasets page").await;
    dark_browser.close().await;
    stack.shutdown().await;
}

/// The page background's relative luminance (0 black … 1 white).
async fn page_luminance(browser: &Browser) -> f64 {
    let rgb = browser
        .eval(
            "const c = getComputedStyle(document.body).backgroundColor.match(/[\\d.]+/g).map(Number); \
             return (0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2]) / 255;",
        )
        .await;
    rgb.as_f64().expect("a colour")
}

/// Real photos with real boxes (Ultralytics' coco8, beside the repository in CI): the dataset
/// page draws every box of the API's first page. Its screenshot is the README's.
#[tokio::test(flavor = "multi_thread")]
async fn a_real_dataset_is_drawn_as_the_api_describes_it() {
    let test = "a_real_dataset_is_drawn_as_the_api_describes_it";
    let Some((chromium, chromedriver)) = testkit::browser(test) else { return };
    let Some(datasets) = yds_tests::real_datasets(test) else { return };
    let stack = TestStack::start(Chaos::default()).await;
    let data = tempfile::tempdir().unwrap();
    let archive = data.path().join("coco8.tar.gz");
    pack_tar_gz(&datasets.join("coco8"), &archive).unwrap();
    let body = json!({"name": "coco8", "archive_url": format!("file://{}", archive.display())});
    let (code, accepted) = stack.import(&body).await;
    assert_eq!(code, 202, "{accepted}");
    let status = stack.wait_terminal(accepted["job_id"].as_str().unwrap()).await;
    assert_eq!(status["status"], "completed", "{status}");
    let dataset_id = accepted["dataset_id"].as_str().unwrap();
    let page = first_page(&stack, dataset_id, "").await;
    let expected: usize = page.iter().map(|i| i["annotations"].as_array().unwrap().len()).sum();

    let browser = Browser::start(&chromium, &chromedriver).await.expect("chromium starts");
    browser.client.set_window_size(1280, 1500).await.expect("a taller window");
    browser.goto(&stack.url(&format!("/ui/datasets/{dataset_id}#api_key={KEY}"))).await;
    let drawn = format!("return document.querySelectorAll('[data-image-id] [data-annotation]').length === {expected};");
    browser.wait_until(&format!("coco8's {expected} boxes"), &drawn).await;
    // Every thumbnail decoded: a real JPEG made smaller by the images function.
    let loaded = format!(
        "const imgs = [...document.querySelectorAll('[data-image-id] img')]; \
         return imgs.length === {} && imgs.every(i => i.complete && i.naturalWidth > 0 && i.naturalWidth <= 320);",
        page.len()
    );
    browser.wait_until("every thumbnail", &loaded).await;
    // The class chart names coco8's classes by name.
    let chart = browser.eval("return document.querySelector('#class-bars').textContent;").await;
    assert!(chart.as_str().unwrap().contains("person"), "{chart}");
    browser.screenshot("readme-coco8").await;
    browser.assert_no_console_errors("coco8").await;
    browser.close().await;
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dataset_is_found_by_name_renamed_and_deleted_from_its_page() {
    let test = "a_dataset_is_found_by_name_renamed_and_deleted_from_its_page";
    let Some((chromium, chromedriver)) = testkit::browser(test) else { return };
    // The default pacing (a 15-minute chunk lease): a dataset whose import completed with no
    // chunk attempt in flight is deleted without waiting for it.
    let stack = TestStack::start(Chaos::default()).await;
    let data = tempfile::tempdir().unwrap();
    let mut ids = Vec::new();
    for (n, name) in ["alpha cats", "beta dogs"].into_iter().enumerate() {
        let dir = data.path().join(name);
        let set = task_dataset(&dir, "detect", 3, 1, 70 + n as u64).unwrap();
        let (code, accepted) = stack.import(&json!({"name": name, "archive_url": archive_url(&set, &dir)})).await;
        assert_eq!(code, 202, "{accepted}");
        let status = stack.wait_terminal(accepted["job_id"].as_str().unwrap()).await;
        // The generated set holds one corrupt image on purpose.
        assert_eq!(status["status"], "completed_with_errors", "{status}");
        ids.push(accepted["dataset_id"].as_str().unwrap().to_owned());
    }
    let (alpha, beta) = (&ids[0], &ids[1]);
    let row = |id: &str| format!("#datasets-body tr[data-dataset-id=\"{id}\"]");

    let browser = Browser::start(&chromium, &chromedriver).await.expect("chromium starts");
    browser.goto(&stack.url(&format!("/ui/#api_key={KEY}"))).await;
    browser.wait_for(&row(beta)).await;
    assert_eq!(browser.count(&row(alpha)).await, 1, "both datasets listed before filtering");

    // Typing the start of a name keeps only the datasets whose name starts with it.
    fill(&browser, "#datasets-search", "alp").await;
    browser
        .wait_until(
            "the name filter",
            &format!(
                "return document.querySelector({}) === null && document.querySelector({});",
                json!(row(beta)),
                json!(row(alpha))
            ),
        )
        .await;
    assert_eq!(browser.eval("return location.search;").await, "?name=alp", "the filter lives in the URL");

    // Renamed in place on its page: the API has the new name.
    click(&browser, &format!("{} a.ds-link", row(alpha))).await;
    browser.wait_for("#rename-open").await;
    click(&browser, "#rename-open").await;
    fill(&browser, "#rename-input", "alpha cats, cleaned").await;
    click(&browser, "#rename-submit").await;
    browser
        .wait_until(
            "the renamed title",
            "const t = document.querySelector('#dataset-name'); return !t.hidden && t.textContent === 'alpha cats, cleaned';",
        )
        .await;
    assert_eq!(stack.dataset(alpha).await["name"], "alpha cats, cleaned");
    assert_eq!(browser.eval("return document.querySelector('#crumb-name').textContent;").await, "alpha cats, cleaned");
    browser.screenshot("dataset-renamed").await;

    // Deleted after a confirmation: back on the list with a notice, gone from the API at once,
    // and its deletion job ends.
    click(&browser, "#delete-open").await;
    click(&browser, "#delete-confirm").await;
    browser.wait_for("#datasets-notice").await;
    assert_eq!(browser.location().await, "/ui/");
    let (code, _) = stack.get(&format!("/datasets/{alpha}")).await;
    assert_eq!(code, 404, "a deleted dataset answers 404 at once");
    let job_id = browser.eval("return document.querySelector('#datasets-notice code').textContent;").await;
    let job = stack.wait_terminal(job_id.as_str().unwrap()).await;
    assert_eq!((job["kind"].as_str(), job["status"].as_str()), (Some("delete"), Some("completed")), "{job}");
    browser.wait_for(&row(beta)).await;
    assert_eq!(browser.count(&row(alpha)).await, 0, "the deleted dataset is not listed");
    browser.screenshot("datasets-after-delete").await;
    browser.assert_no_console_errors("renaming and deleting").await;
    browser.close().await;
    stack.shutdown().await;
}
