//! The `data.yaml` of a pulled tree, as Ultralytics reads it.
//!
//! There is no `path:` key on purpose: Ultralytics resolves a `path:` that exists relative to
//! the current directory (`path: .` means wherever training is started), while without it the
//! split paths are relative to the YAML's own folder. So the tree trains from anywhere and can
//! be moved. Strings are written as JSON strings, which YAML reads as double-quoted scalars,
//! so any class or split name survives; numbers and lists are JSON flow values.

use serde_json::Value;

/// What the YAML says about a dataset.
#[derive(Debug, Clone, Default)]
pub struct DataYaml {
    /// Where it came from, for the comment on top.
    pub origin: String,
    /// Splits written, in order; each is `images/{split}`.
    pub splits: Vec<String>,
    /// Class names by id.
    pub names: Vec<String>,
    pub kpt_shape: Option<Value>,
    pub flip_idx: Option<Value>,
    /// Keypoint names (Ultralytics: class id → list of names), as the dataset has them.
    pub kpt_names: Option<Value>,
}

/// A YAML scalar for `text`: bare when plainly safe, else a JSON (= YAML double-quoted) string.
fn scalar(text: &str) -> String {
    let plain = !text.is_empty()
        && text.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '/' | '.'))
        && !text.starts_with(['-', '.'])
        && text.parse::<f64>().is_err()
        && !matches!(
            text.to_ascii_lowercase().as_str(),
            "true" | "false" | "yes" | "no" | "on" | "off" | "null" | "y" | "n"
        );
    if plain {
        text.to_owned()
    } else {
        serde_json::to_string(text).expect("a string serializes")
    }
}

/// A mapping from ids to values written with integer keys (`0: ...`), as Ultralytics'
/// examples do; other keys quoted.
fn id_key(key: &str) -> String {
    if key.parse::<u64>().is_ok() {
        key.to_owned()
    } else {
        serde_json::to_string(key).expect("a string serializes")
    }
}

impl DataYaml {
    /// The file's text.
    pub fn render(&self) -> String {
        let mut out = format!("# Pulled by `yds pull` from {}.\n", self.origin.replace('\n', " "));
        out.push_str("# No `path:` key: Ultralytics then resolves the paths below from this file's folder.\n");
        for split in &self.splits {
            out.push_str(&format!("{}: {}\n", scalar(split), scalar(&format!("images/{split}"))));
        }
        out.push_str(&format!("nc: {}\n", self.names.len()));
        out.push_str("names:\n");
        for (id, name) in self.names.iter().enumerate() {
            out.push_str(&format!("  {id}: {}\n", serde_json::to_string(name).expect("a string serializes")));
        }
        if let Some(shape) = self.kpt_shape.as_ref().filter(|v| !v.is_null()) {
            out.push_str(&format!("kpt_shape: {shape}\n"));
        }
        if let Some(flip) = self.flip_idx.as_ref().filter(|v| !v.is_null()) {
            out.push_str(&format!("flip_idx: {flip}\n"));
        }
        match self.kpt_names.as_ref() {
            Some(Value::Object(map)) if !map.is_empty() => {
                out.push_str("kpt_names:\n");
                for (key, names) in map {
                    out.push_str(&format!("  {}: {names}\n", id_key(key)));
                }
            }
            Some(other) if !other.is_null() && !other.is_object() => out.push_str(&format!("kpt_names: {other}\n")),
            _ => {}
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use yaml_rust2::{Yaml, YamlLoader};

    #[test]
    fn a_pose_yaml_has_relative_splits_names_by_id_and_keypoint_keys() {
        let yaml = DataYaml {
            origin: "dataset people (d1) on http://127.0.0.1:8080".into(),
            splits: vec!["train".into(), "val".into()],
            names: vec!["person".into(), "a: \"b\" #c".into(), "yes".into()],
            kpt_shape: Some(json!([17, 3])),
            flip_idx: Some(json!([0, 2, 1])),
            kpt_names: Some(json!({"0": ["nose", "left eye"]})),
        }
        .render();
        assert_eq!(
            yaml,
            "# Pulled by `yds pull` from dataset people (d1) on http://127.0.0.1:8080.\n\
             # No `path:` key: Ultralytics then resolves the paths below from this file's folder.\n\
             train: images/train\n\
             val: images/val\n\
             nc: 3\n\
             names:\n  0: \"person\"\n  1: \"a: \\\"b\\\" #c\"\n  2: \"yes\"\n\
             kpt_shape: [17,3]\n\
             flip_idx: [0,2,1]\n\
             kpt_names:\n  0: [\"nose\",\"left eye\"]\n"
        );
        let doc = &YamlLoader::load_from_str(&yaml).unwrap()[0];
        assert_eq!(doc["train"].as_str(), Some("images/train"));
        assert!(doc["path"].is_badvalue(), "no path key");
        assert_eq!(doc["nc"].as_i64(), Some(3));
        assert_eq!(doc["names"][1].as_str(), Some("a: \"b\" #c"));
        assert_eq!(doc["names"][2].as_str(), Some("yes"), "a string, not a boolean");
        assert_eq!(doc["kpt_shape"], Yaml::Array(vec![Yaml::Integer(17), Yaml::Integer(3)]));
        assert_eq!(doc["kpt_names"][0][1].as_str(), Some("left eye"));
    }

    #[test]
    fn odd_split_names_are_quoted_and_a_detect_yaml_has_no_keypoint_keys() {
        let yaml = DataYaml {
            origin: "x".into(),
            splits: vec!["train".into(), "2024 hold-out".into(), "true".into()],
            names: vec!["cat".into()],
            ..DataYaml::default()
        }
        .render();
        let doc = &YamlLoader::load_from_str(&yaml).unwrap()[0];
        assert_eq!(doc["2024 hold-out"].as_str(), Some("images/2024 hold-out"));
        assert_eq!(doc["true"].as_str(), Some("images/true"));
        assert!(!yaml.contains("kpt"));
    }
}
