//! `yds pull DATASET DIR`: see [`crate::pull`].

use super::{print, Outcome};
use crate::args::PullArgs;
use crate::client::Api;
use crate::error::Result;
use crate::pull::{self, Format, Options};
use crate::resolve;

pub async fn run(api: &Api, args: PullArgs) -> Result<Outcome> {
    let dataset = resolve::dataset(api, &args.dataset).await?;
    let class_id = match &args.class {
        Some(class) => Some(resolve::class(&resolve::class_names(&dataset), class)?),
        None => None,
    };
    let options = Options {
        valid_only: args.valid_only,
        split: args.split,
        class_id,
        format: args.format,
        jobs: args.jobs.into(),
    };
    let summary = pull::run(api, &dataset, &args.dir, &options).await?;
    let mut text = format!(
        "pulled {} images ({} downloaded, {} already there; {} received)",
        summary.images,
        summary.images_downloaded,
        summary.images - summary.images_downloaded,
        indicatif::HumanBytes(summary.bytes)
    );
    match options.format {
        Format::Yolo => {
            text.push_str(&format!(
                " and {} label files ({} downloaded) into {}; data.yaml names {}\n",
                summary.labels,
                summary.labels_downloaded,
                args.dir.display(),
                summary.splits.join(", ")
            ));
            if summary.labels_removed > 0 {
                text.push_str(&format!("removed {} label files the dataset does not have\n", summary.labels_removed));
            }
        }
        Format::Coco => {
            text.push_str(&format!(" into {}\n", args.dir.display()));
            for written in &summary.coco {
                text.push_str(&format!(
                    "annotations/instances_{}.json: {} images, {} annotations\n",
                    written.split, written.images, written.annotations
                ));
            }
            if summary.coco_left_out > 0 {
                text.push_str(&format!(
                    "{} invalid images are in images/ but not in the COCO files (--valid-only leaves them out)\n",
                    summary.coco_left_out
                ));
            }
        }
    }
    print(&text)?;
    Ok(Outcome::Done)
}
