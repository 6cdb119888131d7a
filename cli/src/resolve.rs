//! Turning what a user typed into what the API names: a DATASET argument (an id, or a name
//! that only one dataset has) and a `--class` argument (a class id or a class name).

use serde_json::Value;

use crate::client::Api;
use crate::error::{Error, Result};
use crate::report::minute;

/// The dataset `arg` names: the one with that id, else the only one with exactly that name.
pub async fn dataset(api: &Api, arg: &str) -> Result<Value> {
    if arg.is_empty() {
        return Err(Error::msg("a dataset id or name is empty"));
    }
    // `GET /datasets/{id}`, unless the argument is a path of its own (`/datasets/import` lists
    // jobs): only an answer that is the dataset with that id counts.
    match api.get(&["datasets", arg], &[]).await {
        Ok(dataset) if dataset["id"].as_str() == Some(arg) => return Ok(dataset),
        Ok(_) => {}
        Err(err) if matches!(err.status(), Some(400 | 404 | 405)) => {}
        Err(err) => return Err(err),
    }
    // `name=` is a prefix filter: keep the exact matches.
    let (candidates, _) = api.all_pages(&["datasets"], &[("name", Some(arg.to_owned()))], 1000, usize::MAX).await?;
    pick(arg, candidates.into_iter().filter(|d| d["name"] == arg).collect())
}

/// The one dataset of `matches` (those named exactly `arg`), or an error that lists them.
pub fn pick(arg: &str, mut matches: Vec<Value>) -> Result<Value> {
    match matches.len() {
        0 => Err(Error::NoSuchDataset(arg.to_owned())),
        1 => Ok(matches.remove(0)),
        n => {
            let mut text = format!("{n} datasets are named `{arg}`; name one by its id:\n");
            for d in &matches {
                text.push_str(&format!(
                    "  {}  {}  {}\n",
                    d["id"].as_str().unwrap_or(""),
                    d["status"].as_str().unwrap_or(""),
                    minute(d["created_at"].as_str().unwrap_or(""))
                ));
            }
            Err(Error::msg(text.trim_end()))
        }
    }
}

/// The class id `arg` names among `classes` (the dataset's names by id): a number is an id, a
/// text a name. A number that is both one class' id and another class' name is ambiguous.
pub fn class(classes: &[String], arg: &str) -> Result<u64> {
    let by_name = classes.iter().position(|c| c == arg);
    let by_id = arg.parse::<usize>().ok().filter(|id| *id < classes.len());
    match (by_id, by_name) {
        (Some(id), Some(named)) if id != named => Err(Error::msg(format!(
            "`{arg}` is ambiguous: class {id} is `{}`, and class {named} is named `{arg}`",
            classes[id]
        ))),
        (Some(id), _) | (None, Some(id)) => Ok(id as u64),
        (None, None) => {
            let known: Vec<String> = classes.iter().enumerate().map(|(i, c)| format!("{i} {c}")).collect();
            Err(Error::msg(format!("the dataset has no class `{arg}`; its classes: {}", known.join(", "))))
        }
    }
}

/// The class names of a dataset object, by id.
pub fn class_names(dataset: &Value) -> Vec<String> {
    dataset["classes"].as_array().into_iter().flatten().map(|c| c.as_str().unwrap_or("").to_owned()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn one_exact_match_is_the_dataset_and_several_are_listed_with_their_ids() {
        let a = json!({"id": "a1", "name": "x", "status": "ready", "created_at": "2026-01-01T10:00:00Z"});
        let b = json!({"id": "b2", "name": "x", "status": "failed", "created_at": "2026-01-02T11:30:00Z"});
        assert_eq!(pick("x", vec![a.clone()]).unwrap(), a);
        assert_eq!(
            pick("x", vec![a, b]).unwrap_err().to_string(),
            "2 datasets are named `x`; name one by its id:\n  a1  ready  2026-01-01 10:00\n  b2  failed  2026-01-02 11:30"
        );
        assert_eq!(pick("y", vec![]).unwrap_err().to_string(), "no dataset has the id or the name `y` (see `yds ls`)");
    }

    #[test]
    fn a_class_is_an_id_or_a_name_and_a_clash_is_refused() {
        let classes: Vec<String> = ["cat", "dog", "7"].map(String::from).into();
        assert_eq!(class(&classes, "1").unwrap(), 1);
        assert_eq!(class(&classes, "dog").unwrap(), 1);
        assert_eq!(class(&classes, "7").unwrap(), 2, "a number that is no id but a name");
        let clash: Vec<String> = ["5", "0"].map(String::from).into();
        assert_eq!(
            class(&clash, "0").unwrap_err().to_string(),
            "`0` is ambiguous: class 0 is `5`, and class 1 is named `0`"
        );
        assert_eq!(class(&clash, "5").unwrap(), 0, "a name that is no id");
        assert_eq!(
            class(&classes, "cow").unwrap_err().to_string(),
            "the dataset has no class `cow`; its classes: 0 cat, 1 dog, 2 7"
        );
    }
}
