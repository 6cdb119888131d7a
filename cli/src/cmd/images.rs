//! `yds images DATASET [--split S] [--class C] [--invalid] [--issue CODE]`: a table of images.

use super::{print, print_json, Outcome};
use crate::args::ImagesArgs;
use crate::client::Api;
use crate::error::Result;
use crate::{report, resolve};

pub async fn run(api: &Api, args: ImagesArgs) -> Result<Outcome> {
    let dataset = resolve::dataset(api, &args.dataset).await?;
    let id = dataset["id"].as_str().unwrap_or_default();
    let class_id = match &args.class {
        Some(class) => Some(resolve::class(&resolve::class_names(&dataset), class)?),
        None => None,
    };
    let query = [
        ("split", args.split.clone()),
        ("class_id", class_id.map(|c| c.to_string())),
        ("valid", args.invalid.then(|| "false".to_owned())),
        ("issue", args.issue.clone()),
    ];
    let (images, more) = api.all_pages(&["datasets", id, "images"], &query, 1000, args.limit).await?;
    if args.json {
        print_json(&serde_json::Value::Array(images))?;
        return Ok(Outcome::Done);
    }
    if images.is_empty() {
        eprintln!("no images match");
        return Ok(Outcome::Done);
    }
    print(&report::images_table(&images))?;
    if more {
        eprintln!("(the first {}; --limit shows more)", images.len());
    }
    Ok(Outcome::Done)
}
