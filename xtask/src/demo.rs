//! `cargo xtask demo`: the main job in one command. Starts the stack, generates a sample YOLO
//! dataset (real JPEG and PNG files, a few defects), imports it through the public API with a
//! live progress bar, prints what was found and the address of the dataset's page in the web
//! app, and keeps serving.

use std::time::Duration;

use anyhow::{bail, Context};
use serde_json::{json, Value};
use testkit::{DatasetSpec, Defects};

use crate::serve::StackArgs;
use crate::serve::{start_stack, wait_for_signal};

pub async fn run(args: StackArgs) -> anyhow::Result<()> {
    let (stack, key) = start_stack(&args).await?;
    let base = stack.base_url.clone();
    println!("YDS listening on {base}");

    let result = import_sample(&args, &base, &key).await;
    match &result {
        // The fragment signs the browser in; it never reaches a server.
        Ok(dataset_id) => {
            println!("\nSee it in the web app: {base}/ui/datasets/{dataset_id}#api_key={key}");
            println!("Or with the command-line client, from another terminal:");
            println!("  export YDS_URL={base} YDS_API_KEY={key}");
            println!("  cargo run -q --bin yds -- show {dataset_id}");
            println!("  cargo run -q --bin yds -- pull {dataset_id} ./sample-train");
        }
        Err(err) => eprintln!("demo import failed: {err:#}"),
    }
    println!("\nThe API keeps serving at {base} (header x-api-key: {key}). Ctrl-C to stop.");
    wait_for_signal().await;
    stack.shutdown().await;
    result.map(|_| ())
}

/// Generates and imports the sample; the imported dataset's id.
async fn import_sample(args: &StackArgs, base: &str, key: &str) -> anyhow::Result<String> {
    let demo_dir = std::path::absolute(args.data_dir.join("demo"))?;
    let sample_dir = demo_dir.join("sample");
    let _ = std::fs::remove_dir_all(&sample_dir);
    let mut spec = DatasetSpec::small(7);
    spec.splits = vec![("train".into(), 160), ("val".into(), 40)];
    spec.classes = vec!["person".into(), "car".into(), "dog".into(), "bicycle".into()];
    spec.defects = Defects { corrupt_images: 2, bad_label_lines: 3, tiny_images: 1 };
    let generated = testkit::generate(&sample_dir, &spec)?;
    let archive = demo_dir.join("sample.zip");
    testkit::pack_zip(&sample_dir, &archive)?;
    println!(
        "Generated a sample dataset: {} images in {} classes, packed as {}",
        generated.images.len(),
        generated.classes.len(),
        archive.display()
    );

    let client = reqwest::Client::new();
    let archive_url = format!("file://{}", archive.display());
    let response = client
        .post(format!("{base}/datasets/import"))
        .header("x-api-key", key)
        .json(&json!({"name": "demo sample", "archive_url": archive_url, "chunk_size": 25}))
        .send()
        .await?;
    if response.status() != 202 {
        bail!("import refused: {} {}", response.status(), response.text().await?);
    }
    let accepted: Value = response.json().await?;
    let job_id = accepted["job_id"].as_str().context("job_id in the answer")?.to_owned();
    println!("Import accepted: job {job_id}");

    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} [{bar:40}] {pos}/{len} files {msg}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    let status = loop {
        let status: Value = client
            .get(format!("{base}/datasets/import/{job_id}/status"))
            .header("x-api-key", key)
            .send()
            .await?
            .json()
            .await?;
        let progress = &status["progress"];
        bar.set_length(progress["files_total"].as_u64().unwrap_or(0));
        bar.set_position(progress["files_done"].as_u64().unwrap_or(0));
        bar.set_message(format!(
            "({} of {} chunks) {}",
            progress["chunks_done"],
            progress["chunks_total"],
            status["status"].as_str().unwrap_or("")
        ));
        if matches!(status["status"].as_str(), Some("completed" | "completed_with_errors" | "failed")) {
            bar.finish();
            break status;
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    };
    print_summary(&client, base, key, &status).await?;
    Ok(status["dataset_id"].as_str().unwrap_or_default().to_owned())
}

async fn print_summary(client: &reqwest::Client, base: &str, key: &str, status: &Value) -> anyhow::Result<()> {
    println!("\nImport {}.", status["status"].as_str().unwrap_or("?"));
    let dataset_id = status["dataset_id"].as_str().unwrap_or_default();
    let datasets: Value =
        client.get(format!("{base}/datasets?limit=20")).header("x-api-key", key).send().await?.json().await?;
    let Some(dataset) = datasets["items"].as_array().into_iter().flatten().find(|d| d["id"] == dataset_id) else {
        bail!("dataset {dataset_id} not listed");
    };
    let counts = &dataset["counts"];
    println!(
        "Dataset {} ({}): {} images, {} annotations, {} background, {} invalid",
        dataset["name"].as_str().unwrap_or(""),
        dataset_id,
        counts["images"],
        counts["annotations"],
        counts["background_images"],
        counts["invalid_images"]
    );
    println!("\nImages per split:");
    for (split, s) in dataset["splits"].as_object().into_iter().flatten() {
        println!("  {split:<8} {:>6} images {:>7} annotations", s["images"], s["annotations"]);
    }
    println!("\nInstances per class:");
    for c in dataset["class_counts"].as_array().into_iter().flatten() {
        println!(
            "  {:>3} {:<12} {:>6} instances in {:>5} images",
            c["class_id"],
            c["name"].as_str().unwrap_or(""),
            c["instances"],
            c["images"]
        );
    }
    let errors = status["errors"].as_array().cloned().unwrap_or_default();
    println!("\nIssues found ({}):", errors.len());
    for e in &errors {
        println!(
            "  {:<28} {:<22} {}",
            e["file"].as_str().unwrap_or(""),
            e["code"].as_str().unwrap_or(""),
            e["message"].as_str().unwrap_or("")
        );
    }
    Ok(())
}
