//! What the commands print about datasets, jobs and images, as text (tables) from the API's
//! JSON objects. Pure: every function takes the objects and returns the text, so the tests
//! pin it without a server. Fields a server does not send yet are left out, not guessed.

use serde_json::Value;

use crate::table::Table;

/// A job status that never changes again.
pub fn is_terminal(status: &str) -> bool {
    matches!(status, "completed" | "completed_with_errors" | "failed")
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or("")
}

fn n(v: &Value) -> String {
    v.as_u64().map(|n| n.to_string()).unwrap_or_else(|| "-".into())
}

/// An RFC 3339 instant as `YYYY-MM-DD HH:MM` (UTC), for tables.
pub fn minute(timestamp: &str) -> String {
    if timestamp.len() >= 16 && timestamp.as_bytes()[10] == b'T' {
        format!("{} {}", &timestamp[..10], &timestamp[11..16])
    } else {
        timestamp.to_owned()
    }
}

/// Split names as people read them: train, val, test, then the others by name.
pub fn split_order<'a>(names: impl IntoIterator<Item = &'a String>) -> Vec<&'a String> {
    let rank = |name: &str| ["train", "val", "test"].iter().position(|k| *k == name).unwrap_or(3);
    let mut names: Vec<&String> = names.into_iter().collect();
    names.sort_by(|a, b| rank(a).cmp(&rank(b)).then(a.cmp(b)));
    names
}

/// The one-line headline of a dataset: name, status, task, sizes, trainable.
pub fn dataset_headline(dataset: &Value) -> String {
    let mut parts = vec![format!("{} ({})", s(dataset, "name"), s(dataset, "id")), s(dataset, "status").to_owned()];
    if let Some(task) = dataset["task"].as_str() {
        parts.push(task.to_owned());
    }
    let counts = &dataset["counts"];
    if counts.is_object() {
        parts.push(format!("{} images, {} instances", n(&counts["images"]), n(&counts["annotations"])));
    }
    match dataset["trainable"].as_bool() {
        Some(true) => parts.push("trainable".into()),
        Some(false) => parts.push("not trainable".into()),
        None => {}
    }
    parts.join(" · ")
}

/// Images and instances per split, with a total row.
pub fn splits_table(dataset: &Value) -> Option<String> {
    let splits = dataset["splits"].as_object()?;
    if splits.is_empty() {
        return None;
    }
    let mut table = Table::new(&["split", "images", "instances", "background", "invalid"]).right(&[1, 2, 3, 4]);
    let keys: Vec<String> = splits.keys().cloned().collect();
    for name in split_order(&keys) {
        let split = &splits[name];
        table.row([
            name.clone(),
            n(&split["images"]),
            n(&split["annotations"]),
            n(&split["background_images"]),
            n(&split["invalid_images"]),
        ]);
    }
    let counts = &dataset["counts"];
    if splits.len() > 1 && counts.is_object() {
        table.row([
            "all".to_owned(),
            n(&counts["images"]),
            n(&counts["annotations"]),
            n(&counts["background_images"]),
            n(&counts["invalid_images"]),
        ]);
    }
    Some(table.render())
}

/// Instances and images per class; the classes without instances named after the table (a
/// dataset of COCO's 80 classes often uses a few).
pub fn classes_table(dataset: &Value) -> Option<String> {
    let classes = dataset["class_counts"].as_array().filter(|c| !c.is_empty())?;
    let (used, unused): (Vec<&Value>, Vec<&Value>) =
        classes.iter().partition(|c| c["instances"].as_u64().unwrap_or(0) > 0 || dataset["status"] != "ready");
    let mut out = String::new();
    if !used.is_empty() {
        let mut table = Table::new(&["class", "name", "instances", "images"]).right(&[0, 2, 3]);
        for class in used {
            table.row([
                n(&class["class_id"]),
                s(class, "name").to_owned(),
                n(&class["instances"]),
                n(&class["images"]),
            ]);
        }
        out.push_str(&table.render());
    }
    if !unused.is_empty() {
        const SHOWN: usize = 8;
        let mut names: Vec<String> =
            unused.iter().take(SHOWN).map(|c| format!("{} {}", n(&c["class_id"]), s(c, "name"))).collect();
        if unused.len() > SHOWN {
            names.push("…".into());
        }
        let line = format!("{} of {} classes have no instances: {}", unused.len(), classes.len(), names.join(", "));
        out.push_str(&crate::error::printable(&line));
        out.push('\n');
    }
    Some(out)
}

/// Issue codes with their counts, most frequent first.
pub fn issues_table(dataset: &Value) -> Option<String> {
    let issues = dataset["statistics"]["issues"].as_object().filter(|i| !i.is_empty())?;
    let mut rows: Vec<(&String, u64)> =
        issues.iter().map(|(code, count)| (code, count.as_u64().unwrap_or(0))).collect();
    rows.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let mut table = Table::new(&["issue", "count"]).right(&[1]);
    for (code, count) in rows {
        table.row([code.clone(), count.to_string()]);
    }
    Some(table.render())
}

/// Findings about the dataset as a whole (a sample), and why it failed.
pub fn findings_table(dataset: &Value) -> Option<String> {
    let findings = dataset["findings"].as_array().filter(|f| !f.is_empty())?;
    let mut table = Table::new(&["finding", "file", "message"]);
    for finding in findings {
        table.row([s(finding, "code"), s(finding, "file"), s(finding, "message")]);
    }
    Some(table.render())
}

/// A job's errors about files (a sample; the totals are in its counts).
pub fn errors_table(job: &Value) -> Option<String> {
    let errors = job["errors"].as_array().filter(|e| !e.is_empty())?;
    let mut table = Table::new(&["error", "file", "message"]);
    for error in errors {
        table.row([s(error, "code"), s(error, "file"), s(error, "message")]);
    }
    Some(table.render())
}

/// The reason a failed dataset or job gives: the dataset's `failure`, else the job's first error.
pub fn failure_reason(dataset: Option<&Value>, job: &Value) -> String {
    if let Some(failure) = dataset.map(|d| &d["failure"]).filter(|f| f.is_object()) {
        return format!("{}: {}", s(failure, "code"), s(failure, "message"));
    }
    if let Some(error) = job["errors"].as_array().and_then(|e| e.first()) {
        let file = s(error, "file");
        let place = if file.is_empty() { String::new() } else { format!(" ({file})") };
        return format!("{}: {}{place}", s(error, "code"), s(error, "message"));
    }
    "no reason given".to_owned()
}

/// Everything known of a dataset, in sections: headline, facts, splits, classes, issues,
/// findings. `yds show` and the end of `yds import` print it.
pub fn dataset_report(dataset: &Value, job: Option<&Value>) -> String {
    let mut out = dataset_headline(dataset);
    out.push('\n');
    let mut facts = Vec::new();
    if let Some(created) = dataset["created_at"].as_str() {
        facts.push(format!("created {}", minute(created)));
    }
    let last_job = dataset["last_job_id"].as_str().or(dataset["job_id"].as_str());
    if let Some(job_id) = last_job {
        facts.push(format!("last job {job_id}"));
    }
    if let Some(shape) = dataset["kpt_shape"].as_array() {
        facts.push(format!("kpt_shape {}", Value::Array(shape.clone())));
    }
    if !facts.is_empty() {
        out.push_str(&facts.join(" · "));
        out.push('\n');
    }
    if dataset["status"] == "failed" {
        let job = job.cloned().unwrap_or(Value::Null);
        out.push_str(&format!("failed: {}\n", failure_reason(Some(dataset), &job)));
    }
    let sections = [
        splits_table(dataset),
        classes_table(dataset),
        issues_table(dataset),
        findings_table(dataset),
        job.and_then(errors_table),
    ];
    for section in sections.into_iter().flatten() {
        out.push('\n');
        out.push_str(&section);
    }
    out
}

/// A job in a few lines: status, progress, counts, and the files it did not import.
pub fn job_report(job: &Value) -> String {
    let progress = &job["progress"];
    let mut out =
        format!("job {} · {} · {}\n", s(job, "job_id"), job["kind"].as_str().unwrap_or("import"), s(job, "status"));
    let mut facts = vec![format!("dataset {}", s(job, "dataset_id"))];
    if let Some(phase) = job["phase"].as_str() {
        facts.push(format!("phase {phase}"));
    }
    facts.push(format!(
        "files {}/{} ({}%)",
        n(&progress["files_done"]),
        n(&progress["files_total"]),
        progress["percent"].as_f64().map(|p| p.to_string()).unwrap_or_else(|| "-".into())
    ));
    if progress["chunks_total"].as_u64().is_some_and(|c| c > 0) {
        facts.push(format!(
            "chunks {}/{} ({} failed)",
            n(&progress["chunks_done"]),
            n(&progress["chunks_total"]),
            n(&progress["chunks_failed"])
        ));
    }
    out.push_str(&facts.join(" · "));
    out.push('\n');
    let mut times = vec![format!("created {}", minute(s(job, "created_at")))];
    if let Some(finished) = job["finished_at"].as_str() {
        times.push(format!("finished {}", minute(finished)));
    }
    out.push_str(&times.join(" · "));
    out.push('\n');
    let counts = &job["counts"];
    if counts.is_object() && job["kind"].as_str().unwrap_or("import") == "import" {
        let mut table =
            Table::new(&["images", "labels", "instances", "invalid images", "invalid labels"]).right(&[0, 1, 2, 3, 4]);
        table.row([
            n(&counts["images"]),
            n(&counts["labels"]),
            n(&counts["annotations"]),
            n(&counts["invalid_images"]),
            n(&counts["invalid_labels"]),
        ]);
        out.push('\n');
        out.push_str(&table.render());
    }
    if job["status"] == "failed" {
        out.push_str(&format!("failed: {}\n", failure_reason(None, job)));
    }
    if let Some(errors) = errors_table(job) {
        out.push('\n');
        out.push_str(&errors);
    }
    out
}

/// `yds ls`: one row per dataset.
pub fn datasets_table(datasets: &[Value]) -> String {
    let mut table = Table::new(&["id", "name", "status", "task", "images", "instances", "invalid", "created (UTC)"])
        .right(&[4, 5, 6]);
    for d in datasets {
        let counts = &d["counts"];
        table.row([
            s(d, "id").to_owned(),
            s(d, "name").to_owned(),
            s(d, "status").to_owned(),
            d["task"].as_str().unwrap_or("-").to_owned(),
            n(&counts["images"]),
            n(&counts["annotations"]),
            n(&counts["invalid_images"]),
            minute(s(d, "created_at")),
        ]);
    }
    table.render()
}

/// `yds jobs`: one row per job.
pub fn jobs_table(jobs: &[Value]) -> String {
    let mut table = Table::new(&["job", "kind", "dataset", "status", "files", "%", "created (UTC)"]).right(&[4, 5]);
    for job in jobs {
        let progress = &job["progress"];
        table.row([
            s(job, "job_id").to_owned(),
            job["kind"].as_str().unwrap_or("import").to_owned(),
            s(job, "dataset_id").to_owned(),
            s(job, "status").to_owned(),
            format!("{}/{}", n(&progress["files_done"]), n(&progress["files_total"])),
            progress["percent"].as_f64().map(|p| p.to_string()).unwrap_or_default(),
            minute(s(job, "created_at")),
        ]);
    }
    table.render()
}

/// `yds images`: one row per image.
pub fn images_table(images: &[Value]) -> String {
    let mut table = Table::new(&["split", "file", "size", "format", "instances", "valid", "issues", "id"]).right(&[4]);
    for image in images {
        let size = match (image["width"].as_u64(), image["height"].as_u64()) {
            (Some(w), Some(h)) => format!("{w}x{h}"),
            _ => "-".into(),
        };
        let mut codes: Vec<&str> =
            image["issues"].as_array().into_iter().flatten().filter_map(|i| i["code"].as_str()).collect();
        codes.dedup();
        table.row([
            s(image, "split").to_owned(),
            s(image, "file_name").to_owned(),
            size,
            image["format"].as_str().unwrap_or("-").to_owned(),
            image["annotations"].as_array().map_or(0, Vec::len).to_string(),
            if image["valid"].as_bool() == Some(true) { "yes" } else { "no" }.to_owned(),
            codes.join(","),
            s(image, "id").to_owned(),
        ]);
    }
    table.render()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn dataset() -> Value {
        json!({
            "id": "d1", "name": "birds", "status": "ready", "task": "detect", "trainable": true,
            "created_at": "2026-01-02T03:04:05.678Z", "job_id": "j0", "last_job_id": "j1",
            "counts": {"images": 12, "annotations": 30, "background_images": 1, "invalid_images": 2},
            "splits": {
                "val": {"images": 2, "annotations": 5, "background_images": 0, "invalid_images": 0},
                "train": {"images": 10, "annotations": 25, "background_images": 1, "invalid_images": 2}
            },
            "class_counts": [
                {"class_id": 0, "name": "cat", "instances": 20, "images": 8},
                {"class_id": 1, "name": "dog", "instances": 10, "images": 4},
                {"class_id": 2, "name": "cow", "instances": 0, "images": 0}
            ],
            "statistics": {"issues": {"corrupt_image": 2, "duplicate_row": 3}},
            "findings": [{"file": "labels/train/x.txt", "code": "orphan_label", "message": "no image"}]
        })
    }

    #[test]
    fn a_dataset_report_has_its_headline_splits_classes_issues_and_findings() {
        assert_eq!(
            dataset_report(&dataset(), None),
            "birds (d1) · ready · detect · 12 images, 30 instances · trainable\n\
             created 2026-01-02 03:04 · last job j1\n\
             \n\
             split  images  instances  background  invalid\n\
             train      10         25           1        2\n\
             val         2          5           0        0\n\
             all        12         30           1        2\n\
             \n\
             class  name  instances  images\n    \
                 0  cat          20       8\n    \
                 1  dog          10       4\n\
             1 of 3 classes have no instances: 2 cow\n\
             \n\
             issue          count\n\
             duplicate_row      3\n\
             corrupt_image      2\n\
             \n\
             finding       file                message\n\
             orphan_label  labels/train/x.txt  no image\n"
        );
    }

    #[test]
    fn a_failed_dataset_says_why_from_its_failure_or_its_jobs_first_error() {
        let mut failed = dataset();
        failed["status"] = "failed".into();
        failed["failure"] = json!({"code": "no_yaml", "message": "no data.yaml in the archive"});
        assert!(dataset_report(&failed, None).contains("failed: no_yaml: no data.yaml in the archive\n"));
        let job = json!({"errors": [{"file": "x.zip", "code": "bad_archive", "message": "not a zip"}]});
        assert_eq!(failure_reason(None, &job), "bad_archive: not a zip (x.zip)");
        assert_eq!(failure_reason(None, &json!({})), "no reason given");
    }

    #[test]
    fn a_job_report_shows_progress_counts_and_errors() {
        let job = json!({
            "job_id": "j1", "dataset_id": "d1", "status": "completed_with_errors", "kind": "import",
            "progress": {"files_total": 10, "files_done": 10, "percent": 100.0, "chunks_total": 2, "chunks_done": 2, "chunks_failed": 0},
            "counts": {"images": 9, "labels": 9, "annotations": 20, "invalid_images": 1, "invalid_labels": 0},
            "errors": [{"file": "images/train/x.gif", "code": "unreadable", "message": "cannot read"}],
            "created_at": "2026-01-02T03:04:05Z", "finished_at": "2026-01-02T03:05:00Z"
        });
        assert_eq!(
            job_report(&job),
            "job j1 · import · completed_with_errors\n\
             dataset d1 · files 10/10 (100%) · chunks 2/2 (0 failed)\n\
             created 2026-01-02 03:04 · finished 2026-01-02 03:05\n\
             \n\
             images  labels  instances  invalid images  invalid labels\n     \
                  9       9         20               1               0\n\
             \n\
             error       file                message\n\
             unreadable  images/train/x.gif  cannot read\n"
        );
    }

    #[test]
    fn list_tables_have_one_row_per_item() {
        let text = datasets_table(&[dataset()]);
        assert_eq!(
            text,
            "id  name   status  task    images  instances  invalid  created (UTC)\n\
             d1  birds  ready   detect      12         30        2  2026-01-02 03:04\n"
        );
        let image = json!({"id": "i1", "split": "train", "file_name": "a/b.jpg", "width": 640, "height": 480,
            "format": "jpeg", "valid": false, "annotations": [{}, {}],
            "issues": [{"code": "corrupt_image"}, {"code": "corrupt_image"}, {"code": "x"}]});
        assert_eq!(
            images_table(&[image]),
            "split  file     size     format  instances  valid  issues           id\n\
             train  a/b.jpg  640x480  jpeg            2  no     corrupt_image,x  i1\n"
        );
    }

    #[test]
    fn splits_read_train_val_test_first() {
        let names: Vec<String> = ["zeta", "test", "alpha", "train", "val"].map(String::from).into();
        let order: Vec<&str> = split_order(&names).into_iter().map(String::as_str).collect();
        assert_eq!(order, ["train", "val", "test", "alpha", "zeta"]);
    }
}
