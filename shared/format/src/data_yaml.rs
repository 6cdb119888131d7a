//! The dataset YAML (`data.yaml`): class names, splits and keypoint shape, read the way
//! Ultralytics' `check_det_dataset` reads them.
//!
//! It exists so that an uploaded archive is judged by the same rules the trainer applies
//! before it ever touches an image: `val` is required beside `train` (`validation` counts as
//! `val`), `names` or `nc` is required, `nc` must agree with `names`, a `names` map must be
//! keyed `0..n-1`, and a pose dataset needs a valid `kpt_shape`. Anything the trainer would
//! execute or fetch (`download`) is ignored, never run.
//!
//! One rule is deliberately looser than the trainer's: a YAML without `train:` (a val-only
//! export) still imports, its images worth browsing and checking; the dataset is then marked
//! as not trainable (the import's `no_train_split` finding). What the trainer accepts but a
//! user should know about the YAML (a `flip_idx` that is not a permutation, unusable
//! `kpt_names`) is listed in [`DatasetConfig::warnings`].
//!
//! The YAML comes from users, so parsing is bounded: at most [`MAX_YAML_BYTES`] of text,
//! [`MAX_DEPTH`] levels of nesting and [`MAX_NODES`] values once aliases are expanded. The tree
//! is built from yaml-rust2's event stream (not its loader) so that the depth and alias checks
//! run before anything large is built, and so that a key repeated in a mapping keeps its last
//! value, as PyYAML does.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::TScalarStyle;
use yaml_rust2::Yaml;

use super::{Issue, Task};

/// Largest dataset YAML accepted, in bytes.
pub const MAX_YAML_BYTES: usize = 1 << 20;
/// Deepest nesting of sequences and mappings accepted.
pub const MAX_DEPTH: usize = 64;
/// Most values (scalars, sequences, mappings) a YAML may hold once aliases are expanded.
pub const MAX_NODES: usize = 100_000;
/// Most classes a dataset may declare.
pub const MAX_CLASSES: usize = 100_000;

/// The parts of a dataset YAML that YDS uses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetConfig {
    /// Class names, index = class id.
    pub names: Vec<String>,
    /// The `path:` value as written (often an absolute path from the machine that made it).
    pub path: Option<String>,
    /// `train`, `val`, then `test` and `minival` when present, in that order. `train` may be
    /// absent (then so may `val`): the dataset imports, but cannot be trained on.
    pub splits: Vec<SplitSpec>,
    /// `kpt_shape: [keypoints, dims]` of a pose dataset.
    pub kpt_shape: Option<(usize, usize)>,
    /// `flip_idx`: for each keypoint, its mirror keypoint.
    pub flip_idx: Option<Vec<usize>>,
    /// `kpt_names`: per class index, the names of its keypoints (Ultralytics' pose YAMLs,
    /// e.g. `kpt_names: {0: [nose, left_eye, ...]}`). `None` when absent or unusable (then a
    /// `kpt_names_invalid` warning says why).
    #[serde(default)]
    pub kpt_names: Option<KptNames>,
    /// An explicit `task:` key, if any.
    pub task: Option<Task>,
    /// What the trainer accepts in this YAML but a user should know ([`YAML_WARNING_CODES`]).
    #[serde(default)]
    pub warnings: Vec<Issue>,
}

/// Keypoint names per class index (`kpt_names:`).
pub type KptNames = BTreeMap<u32, Vec<String>>;

/// Codes of [`DatasetConfig::warnings`].
pub const YAML_WARNING_CODES: &[&str] = &["flip_idx_not_permutation", "kpt_names_invalid"];

impl DatasetConfig {
    /// The split with this name (`train`, `val`, `test`, `minival`).
    pub fn split(&self, name: &str) -> Option<&SplitSpec> {
        self.splits.iter().find(|s| s.name == name)
    }
}

/// One split as the YAML names it: its sources, each a folder, a `.txt` list or an image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SplitSpec {
    /// `train`, `val`, `test` or `minival` (a `validation:` key is reported as `val`).
    pub name: String,
    /// The paths as written, relative to the dataset root.
    pub sources: Vec<String>,
}

/// Why a dataset YAML cannot be used. Messages are shown to end users.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum YamlError {
    #[error("the dataset YAML is {size} bytes; the limit is {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    #[error("the dataset YAML is nested more than {limit} levels deep")]
    TooDeep { limit: usize },
    #[error("the dataset YAML is too large: it expands to more than {limit} values (check for YAML aliases that repeat large blocks)")]
    TooManyNodes { limit: usize },
    #[error("the dataset YAML is not valid YAML: {0}")]
    InvalidYaml(String),
    #[error("the dataset YAML holds more than one YAML document (a second `---`); it must hold exactly one")]
    MultipleDocuments,
    #[error("the dataset YAML is empty; it needs at least `train:`, `val:` and `names:`")]
    Empty,
    #[error("the dataset YAML must be a mapping of keys such as `train:`, `val:` and `names:`, but it is {found}")]
    NotAMapping { found: String },
    #[error("the dataset YAML has no `{key}:` key; `train:` and `val:` are required (a `validation:` key is accepted for `val:`)")]
    MissingSplit { key: String },
    #[error("the dataset YAML names no split: give `train:` and `val:` (or at least one of `val:`, `test:`), each a folder, a .txt file listing images, or a list of these")]
    NoSplits,
    #[error("`{key}:` is empty; it must name the images: a folder, a .txt file listing images, or a list of these")]
    EmptySplit { key: String },
    #[error("`{key}:` must be a path or a list of paths, but {found}")]
    InvalidSplit { key: String, found: String },
    #[error("the dataset YAML has neither `names:` (the class names) nor `nc:` (the class count); one is required. A classification dataset (one folder per class) is not supported: YDS imports detection, segmentation, pose and OBB datasets")]
    MissingNames,
    #[error("`names:` must be a list of class names or a mapping from class index to name, but it is {found}")]
    InvalidNames { found: String },
    #[error("`names:` lists no classes")]
    NoClasses,
    #[error("`names:` has {count} classes; the limit is {limit}")]
    TooManyClasses { count: usize, limit: usize },
    #[error("class {index} in `names:` must be a name, but it is {found}")]
    InvalidClassName { index: String, found: String },
    #[error("`names:` key {key} is not a class index; keys must be whole numbers 0, 1, 2, ...")]
    InvalidNameKey { key: String },
    #[error("`names:` defines class index {index} more than once")]
    DuplicateNameKey { index: i64 },
    #[error(
        "`names:` has {count} classes, so its keys must be exactly 0 to {max_expected}; index {missing} is missing"
    )]
    NameKeysNotContiguous { count: usize, max_expected: usize, missing: usize },
    #[error("`nc:` must be a whole number of classes, but it is {found}")]
    InvalidNc { found: String },
    #[error("`nc: {nc}` does not match `names:`, which has {names} classes")]
    NcMismatch { nc: i64, names: usize },
    #[error("`kpt_shape:` must be [number of keypoints (at least 1), dimensions (2 for x,y or 3 for x,y,visible)], e.g. [17, 3], but it is {found}")]
    InvalidKptShape { found: String },
    #[error("`kpt_shape:` is required for a pose dataset, e.g. `kpt_shape: [17, 3]`")]
    MissingKptShape,
    #[error("`flip_idx:` {problem}")]
    InvalidFlipIdx { problem: String },
    #[error("`task: {found}` is not supported; use detect, segment, pose or obb")]
    InvalidTask { found: String },
}

/// Parses a dataset YAML's text. Never executes or fetches anything (`download:` is ignored).
pub fn parse_data_yaml(text: &str) -> Result<DatasetConfig, YamlError> {
    if text.len() > MAX_YAML_BYTES {
        return Err(YamlError::TooLarge { size: text.len(), limit: MAX_YAML_BYTES });
    }
    let root = load(&strip_unprintable(text))?;
    let map = match root {
        Node::Map(map) => map,
        Node::Null => return Err(YamlError::Empty),
        other => return Err(YamlError::NotAMapping { found: other.describe() }),
    };
    let get = |key: &str| -> Option<&Node> {
        // A repeated key keeps its last value, as in PyYAML; a "None" string means null, as
        // Ultralytics' YAML loader treats it.
        map.iter().rev().find(|(k, _)| matches!(k, Node::Str(s) if s == key)).map(|(_, v)| match v {
            Node::Str(s) if s == "None" => &Node::Null,
            v => v,
        })
    };

    let mut splits = Vec::new();
    // An absent or empty `train:` still imports (see the module doc); with one, `val:` is
    // required as the trainer requires it.
    let train = get("train").map(|node| split_sources("train", node)).transpose()?.flatten();
    let val = get("val").or_else(|| get("validation"));
    let val = match (&train, val) {
        (Some(_), None) => return Err(missing_split("val")),
        (Some(_), Some(node)) => {
            Some(split_sources("val", node)?.ok_or_else(|| YamlError::EmptySplit { key: "val".to_owned() })?)
        }
        (None, node) => node.map(|node| split_sources("val", node)).transpose()?.flatten(),
    };
    for (name, sources) in [("train", train), ("val", val)] {
        if let Some(sources) = sources {
            splits.push(SplitSpec { name: name.to_owned(), sources });
        }
    }
    for name in ["test", "minival"] {
        if let Some(node) = get(name) {
            if let Some(sources) = split_sources(name, node)? {
                splits.push(SplitSpec { name: name.to_owned(), sources });
            }
        }
    }
    if splits.is_empty() {
        return Err(YamlError::NoSplits);
    }

    let names = class_names(get("names"), get("nc"))?;

    let kpt_shape = match get("kpt_shape") {
        None | Some(Node::Null) => None,
        Some(node) => Some(kpt_shape(node)?),
    };
    let flip_idx = match get("flip_idx") {
        None | Some(Node::Null) => None,
        Some(node) => Some(flip_idx(node, kpt_shape)?),
    };
    let mut warnings = Vec::new();
    warnings.extend(flip_idx.as_deref().and_then(flip_idx_warning));
    let kpt_names = match get("kpt_names") {
        None | Some(Node::Null) => None,
        Some(node) => match kpt_names(node, names.len(), kpt_shape) {
            Ok((kpt_names, problem)) => {
                warnings.extend(problem.map(|message| Issue::new("kpt_names_invalid", message)));
                Some(kpt_names)
            }
            Err(message) => {
                warnings.push(Issue::new("kpt_names_invalid", message));
                None
            }
        },
    };
    let task = match get("task") {
        None | Some(Node::Null) => None,
        Some(Node::Str(s)) => Some(Task::parse(s).ok_or_else(|| YamlError::InvalidTask { found: s.clone() })?),
        Some(other) => return Err(YamlError::InvalidTask { found: other.describe() }),
    };
    if task == Some(Task::Pose) && kpt_shape.is_none() {
        return Err(YamlError::MissingKptShape);
    }
    let path = match get("path") {
        Some(Node::Str(s)) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Some(Node::Int(i)) => Some(i.to_string()),
        _ => None,
    };

    Ok(DatasetConfig { names, path, splits, kpt_shape, flip_idx, kpt_names, task, warnings })
}

fn missing_split(key: &str) -> YamlError {
    YamlError::MissingSplit { key: key.to_owned() }
}

/// `None` when the split is absent (null, empty string, empty list).
fn split_sources(key: &str, node: &Node) -> Result<Option<Vec<String>>, YamlError> {
    let invalid = |found: String| YamlError::InvalidSplit { key: key.to_owned(), found };
    match node {
        Node::Null => Ok(None),
        Node::Str(s) if s.trim().is_empty() => Ok(None),
        Node::Str(s) => Ok(Some(vec![s.trim().to_owned()])),
        Node::Seq(items) => {
            let mut sources = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                match item {
                    Node::Str(s) if !s.trim().is_empty() => sources.push(s.trim().to_owned()),
                    Node::Str(_) | Node::Null => return Err(invalid(format!("entry {} of the list is empty", i + 1))),
                    other => {
                        return Err(invalid(format!(
                            "entry {} of the list is {} (quote paths that look like numbers)",
                            i + 1,
                            other.describe()
                        )))
                    }
                }
            }
            Ok((!sources.is_empty()).then_some(sources))
        }
        other => Err(invalid(format!("it is {} (quote paths that look like numbers)", other.describe()))),
    }
}

fn class_names(names: Option<&Node>, nc: Option<&Node>) -> Result<Vec<String>, YamlError> {
    let nc = match nc {
        None | Some(Node::Null) => None,
        Some(node) => Some(class_count(node)?),
    };
    let names = match names {
        None => None,
        Some(Node::Null) => return Err(YamlError::NoClasses),
        Some(Node::Seq(items)) => {
            let mut names = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                names.push(class_name(&i.to_string(), item)?);
            }
            Some(names)
        }
        Some(Node::Map(entries)) => Some(names_from_map(entries)?),
        Some(other) => return Err(YamlError::InvalidNames { found: other.describe() }),
    };
    match (names, nc) {
        (None, None) => Err(YamlError::MissingNames),
        (Some(names), nc) => {
            if let Some(nc) = nc {
                if usize::try_from(nc).ok() != Some(names.len()) {
                    return Err(YamlError::NcMismatch { nc, names: names.len() });
                }
            }
            if names.is_empty() {
                return Err(YamlError::NoClasses);
            }
            if names.len() > MAX_CLASSES {
                return Err(YamlError::TooManyClasses { count: names.len(), limit: MAX_CLASSES });
            }
            Ok(names)
        }
        (None, Some(nc)) => {
            if nc <= 0 {
                return Err(YamlError::NoClasses);
            }
            let count = usize::try_from(nc).unwrap_or(usize::MAX);
            if count > MAX_CLASSES {
                return Err(YamlError::TooManyClasses { count, limit: MAX_CLASSES });
            }
            // Ultralytics' own placeholder names.
            Ok((0..count).map(|i| format!("class_{i}")).collect())
        }
    }
}

fn class_count(node: &Node) -> Result<i64, YamlError> {
    match node {
        Node::Int(i) => Ok(*i),
        Node::Real(text) => match Yaml::Real(text.clone()).as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() < 1e15 => Ok(f as i64),
            _ => Err(YamlError::InvalidNc { found: text.clone() }),
        },
        other => Err(YamlError::InvalidNc { found: other.describe() }),
    }
}

/// A class name as Ultralytics makes it (`str(value)`): scalars become text, anything else is
/// rejected.
fn class_name(index: &str, node: &Node) -> Result<String, YamlError> {
    match node {
        Node::Str(s) => Ok(s.clone()),
        Node::Int(i) => Ok(i.to_string()),
        Node::Real(text) => Ok(text.clone()),
        Node::Bool(true) => Ok("True".to_owned()),
        Node::Bool(false) => Ok("False".to_owned()),
        Node::Null => Ok("None".to_owned()),
        other => Err(YamlError::InvalidClassName { index: index.to_owned(), found: other.describe() }),
    }
}

fn names_from_map(entries: &[(Node, Node)]) -> Result<Vec<String>, YamlError> {
    let mut by_index: HashMap<i64, String> = HashMap::with_capacity(entries.len());
    for (key, value) in entries {
        let index = match key {
            Node::Int(i) => Some(*i),
            Node::Str(s) => s.trim().parse::<i64>().ok(),
            Node::Real(text) => {
                Yaml::Real(text.clone()).as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 1e15).map(|f| f as i64)
            }
            _ => None,
        };
        let index = index.ok_or_else(|| YamlError::InvalidNameKey { key: key.describe_key() })?;
        let name = class_name(&index.to_string(), value)?;
        if by_index.insert(index, name).is_some() {
            return Err(YamlError::DuplicateNameKey { index });
        }
    }
    let count = by_index.len();
    if count > MAX_CLASSES {
        return Err(YamlError::TooManyClasses { count, limit: MAX_CLASSES });
    }
    let mut names = Vec::with_capacity(count);
    for i in 0..count {
        match by_index.remove(&(i as i64)) {
            Some(name) => names.push(name),
            None => {
                return Err(YamlError::NameKeysNotContiguous {
                    count,
                    max_expected: count.saturating_sub(1),
                    missing: i,
                })
            }
        }
    }
    Ok(names)
}

fn kpt_shape(node: &Node) -> Result<(usize, usize), YamlError> {
    let invalid = || YamlError::InvalidKptShape { found: node.describe_value() };
    let Node::Seq(items) = node else {
        return Err(invalid());
    };
    match items.as_slice() {
        [Node::Int(n), Node::Int(d)] if *n > 0 && (*d == 2 || *d == 3) && *n <= 100_000 => {
            Ok((*n as usize, *d as usize))
        }
        _ => Err(invalid()),
    }
}

fn flip_idx(node: &Node, kpt_shape: Option<(usize, usize)>) -> Result<Vec<usize>, YamlError> {
    let invalid = |problem: String| YamlError::InvalidFlipIdx { problem };
    let Node::Seq(items) = node else {
        return Err(invalid(format!("must be a list of keypoint indices, but it is {}", node.describe())));
    };
    let mut indices = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        match item {
            Node::Int(v) if *v >= 0 => indices.push(*v as usize),
            other => {
                return Err(invalid(format!(
                    "entry {} must be a keypoint index (0, 1, 2, ...), but it is {}",
                    i + 1,
                    other.describe_value()
                )))
            }
        }
    }
    if let Some((n, _)) = kpt_shape {
        if indices.len() != n {
            return Err(invalid(format!(
                "has {} entries, but `kpt_shape:` declares {n} keypoints; it needs one entry per keypoint",
                indices.len()
            )));
        }
        if let Some(bad) = indices.iter().find(|&&v| v >= n) {
            return Err(invalid(format!(
                "refers to keypoint {bad}, but `kpt_shape:` declares only {n} keypoints (0 to {})",
                n - 1
            )));
        }
    }
    Ok(indices)
}

/// A `flip_idx` of the right length and range that is still not a permutation (a keypoint
/// named twice, another never): the trainer takes it (it checks only the length), and a
/// horizontal flip then moves keypoints to the wrong places.
fn flip_idx_warning(indices: &[usize]) -> Option<Issue> {
    let n = indices.len();
    let mut seen = vec![0u32; n];
    for &i in indices {
        if i < n {
            seen[i] += 1;
        }
    }
    if seen.iter().all(|&count| count == 1) {
        return None;
    }
    let twice: Vec<String> = (0..n).filter(|&i| seen[i] > 1).map(|i| i.to_string()).collect();
    let never: Vec<String> = (0..n).filter(|&i| seen[i] == 0).map(|i| i.to_string()).collect();
    let mut problem = format!("is not a permutation of the keypoints 0 to {}", n.saturating_sub(1));
    if !twice.is_empty() {
        problem.push_str(&format!("; named more than once: {}", first_few(&twice)));
    }
    if !never.is_empty() {
        problem.push_str(&format!("; never named: {}", first_few(&never)));
    }
    Some(Issue::new(
        "flip_idx_not_permutation",
        format!(
            "`flip_idx:` {problem}. Ultralytics trains with it, but its horizontal flip then moves \
             keypoints to the wrong places; each keypoint must appear exactly once"
        ),
    ))
}

fn first_few(items: &[String]) -> String {
    const SHOWN: usize = 8;
    match items.len() {
        n if n <= SHOWN => items.join(", "),
        n => format!("{} and {} more", items[..SHOWN].join(", "), n - SHOWN),
    }
}

/// `kpt_names`: a mapping from class index to that class's keypoint names, as Ultralytics'
/// pose YAMLs write it. Returns the names with a problem worth a warning (a list whose length
/// is not `kpt_shape`'s keypoint count, a class index with no class), or why it is unusable.
/// The trainer only keeps them as the model's labels, so none of this stops an import.
fn kpt_names(
    node: &Node,
    classes: usize,
    kpt_shape: Option<(usize, usize)>,
) -> Result<(KptNames, Option<String>), String> {
    let Node::Map(entries) = node else {
        return Err(format!(
            "`kpt_names:` must map each class index to its keypoint names (e.g. `0: [nose, left_eye]`), but it is {}; \
             it is ignored",
            node.describe()
        ));
    };
    let mut names = BTreeMap::new();
    let mut problems = Vec::new();
    for (key, value) in entries {
        let index = match key {
            Node::Int(i) => u32::try_from(*i).ok(),
            Node::Str(s) => s.trim().parse::<u32>().ok(),
            _ => None,
        };
        let Some(index) = index else {
            return Err(format!("`kpt_names:` key {} is not a class index; it is ignored", key.describe_key()));
        };
        let Node::Seq(items) = value else {
            return Err(format!(
                "`kpt_names:` class {index} must list keypoint names, but it is {}; it is ignored",
                value.describe()
            ));
        };
        let mut list = Vec::with_capacity(items.len());
        for item in items {
            match class_name("", item) {
                Ok(name) => list.push(name),
                Err(_) => {
                    return Err(format!(
                        "`kpt_names:` class {index} holds {}, not a name; it is ignored",
                        item.describe()
                    ))
                }
            }
        }
        if index as usize >= classes {
            problems.push(format!("class {index} is not a class of `names:` (0 to {})", classes.saturating_sub(1)));
        }
        if let Some((n, _)) = kpt_shape {
            if list.len() != n {
                problems.push(format!("class {index} names {} keypoints, but `kpt_shape:` declares {n}", list.len()));
            }
        }
        names.insert(index, list);
    }
    let problem = (!problems.is_empty()).then(|| format!("`kpt_names:` {}", problems.join("; ")));
    Ok((names, problem))
}

/// Removes the characters Ultralytics' YAML loader strips before parsing (control characters
/// other than tab and line breaks, and non-characters).
fn strip_unprintable(text: &str) -> std::borrow::Cow<'_, str> {
    fn allowed(c: char) -> bool {
        matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{7e}' | '\u{85}')
            || ('\u{a0}'..='\u{d7ff}').contains(&c)
            || ('\u{e000}'..='\u{fffd}').contains(&c)
            || c >= '\u{10000}'
    }
    if text.chars().all(allowed) {
        std::borrow::Cow::Borrowed(text)
    } else {
        std::borrow::Cow::Owned(text.chars().filter(|&c| allowed(c)).collect())
    }
}

/// A YAML value. Mappings keep their entries in order, repeated keys included.
#[derive(Debug, Clone, PartialEq)]
enum Node {
    Null,
    Bool(bool),
    Int(i64),
    /// The text of a float, as written.
    Real(String),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

impl Node {
    /// "a number (12)", "a list", ... for error messages.
    fn describe(&self) -> String {
        match self {
            Node::Null => "empty".to_owned(),
            Node::Bool(b) => format!("a true/false value ({b})"),
            Node::Int(i) => format!("a number ({i})"),
            Node::Real(r) => format!("a number ({r})"),
            Node::Str(s) => format!("the text {:?}", truncate(s)),
            Node::Seq(_) => "a list".to_owned(),
            Node::Map(_) => "a mapping".to_owned(),
        }
    }

    /// Like [`Node::describe`], but shows a short list of scalars as written.
    fn describe_value(&self) -> String {
        match self {
            Node::Seq(items) if items.len() <= 8 && items.iter().all(Node::is_scalar) => {
                let parts: Vec<String> = items.iter().map(Node::describe_key).collect();
                format!("[{}]", parts.join(", "))
            }
            other => other.describe(),
        }
    }

    fn describe_key(&self) -> String {
        match self {
            Node::Null => "null".to_owned(),
            Node::Bool(b) => b.to_string(),
            Node::Int(i) => i.to_string(),
            Node::Real(r) => r.clone(),
            Node::Str(s) => format!("{:?}", truncate(s)),
            other => other.describe(),
        }
    }

    fn is_scalar(&self) -> bool {
        !matches!(self, Node::Seq(_) | Node::Map(_))
    }
}

fn truncate(s: &str) -> String {
    const MAX: usize = 60;
    match s.char_indices().nth(MAX) {
        Some((at, _)) => format!("{}...", &s[..at]),
        None => s.to_owned(),
    }
}

/// An open sequence or mapping while the tree is built.
struct Open {
    node: Node,
    anchor: usize,
    /// Node count before this node was counted, to size it for aliases.
    count_before: usize,
    /// A mapping's key waiting for its value.
    key: Option<Node>,
}

/// Builds the single document of `text` from the parser's events, enforcing the limits.
fn load(text: &str) -> Result<Node, YamlError> {
    let mut parser = Parser::new_from_str(text);
    let mut stack: Vec<Open> = Vec::new();
    // Anchored nodes with their expanded size, for aliases.
    let mut anchors: HashMap<usize, (Node, usize)> = HashMap::new();
    let mut count = 0usize;
    let mut documents = 0usize;
    let mut root: Option<Node> = None;
    loop {
        let (event, _) = parser.next_token().map_err(|e| YamlError::InvalidYaml(e.to_string()))?;
        let finished = match event {
            Event::StreamEnd => break,
            Event::StreamStart | Event::Nothing | Event::DocumentEnd => continue,
            Event::DocumentStart => {
                documents += 1;
                if documents > 1 {
                    return Err(YamlError::MultipleDocuments);
                }
                anchors.clear();
                continue;
            }
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                let node = if matches!(event, Event::SequenceStart(..)) {
                    Node::Seq(Vec::new())
                } else {
                    Node::Map(Vec::new())
                };
                stack.push(Open { node, anchor, count_before: count, key: None });
                count += 1;
                if count > MAX_NODES {
                    return Err(YamlError::TooManyNodes { limit: MAX_NODES });
                }
                if stack.len() > MAX_DEPTH {
                    return Err(YamlError::TooDeep { limit: MAX_DEPTH });
                }
                continue;
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let open = stack.pop().expect("the parser balances start and end events");
                if open.anchor > 0 {
                    anchors.insert(open.anchor, (open.node.clone(), count - open.count_before));
                }
                open.node
            }
            Event::Scalar(value, style, anchor, tag) => {
                count += 1;
                if count > MAX_NODES {
                    return Err(YamlError::TooManyNodes { limit: MAX_NODES });
                }
                let node = scalar(value, style, tag.as_ref());
                if anchor > 0 {
                    anchors.insert(anchor, (node.clone(), 1));
                }
                node
            }
            Event::Alias(id) => {
                let (node, size) = anchors.get(&id).cloned().unwrap_or((Node::Null, 1));
                count += size;
                if count > MAX_NODES {
                    return Err(YamlError::TooManyNodes { limit: MAX_NODES });
                }
                node
            }
        };
        match stack.last_mut() {
            None => root = Some(finished),
            Some(Open { node: Node::Seq(items), .. }) => items.push(finished),
            Some(Open { node: Node::Map(entries), key, .. }) => match key.take() {
                None => *key = Some(finished),
                Some(k) => entries.push((k, finished)),
            },
            Some(_) => unreachable!("only sequences and mappings are opened"),
        }
    }
    Ok(root.unwrap_or(Node::Null))
}

/// Resolves a scalar the way yaml-rust2's loader does (YAML 1.2 core schema).
fn scalar(value: String, style: TScalarStyle, tag: Option<&yaml_rust2::parser::Tag>) -> Node {
    if style != TScalarStyle::Plain {
        return Node::Str(value);
    }
    if let Some(tag) = tag {
        let core = tag.handle == "tag:yaml.org,2002:";
        if !core || !matches!(tag.suffix.as_str(), "bool" | "int" | "float" | "null") {
            return Node::Str(value);
        }
    }
    match Yaml::from_str(&value) {
        Yaml::Null => Node::Null,
        Yaml::Boolean(b) => Node::Bool(b),
        Yaml::Integer(i) => Node::Int(i),
        Yaml::Real(r) => Node::Real(r),
        _ => Node::Str(value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = "train: images/train\nval: images/val\nnames: [cat, dog]\n";

    fn err(text: &str) -> YamlError {
        parse_data_yaml(text).expect_err("expected the YAML to be rejected")
    }

    fn ok(text: &str) -> DatasetConfig {
        parse_data_yaml(text).expect("expected the YAML to parse")
    }

    fn split_names(config: &DatasetConfig) -> Vec<&str> {
        config.splits.iter().map(|s| s.name.as_str()).collect()
    }

    #[test]
    fn minimal_config() {
        let config = ok(MINIMAL);
        assert_eq!(config.names, vec!["cat", "dog"]);
        assert_eq!(config.path, None);
        assert_eq!(split_names(&config), vec!["train", "val"]);
        assert_eq!(config.splits[0].sources, vec!["images/train"]);
        assert_eq!(config.kpt_shape, None);
        assert_eq!(config.flip_idx, None);
        assert_eq!(config.task, None);
        assert_eq!(config.split("val").unwrap().sources, vec!["images/val"]);
        assert!(config.split("test").is_none());
    }

    #[test]
    fn too_large_text_is_rejected_before_parsing() {
        let text = format!("{MINIMAL}#{}\n", "x".repeat(MAX_YAML_BYTES));
        assert_eq!(err(&text), YamlError::TooLarge { size: text.len(), limit: MAX_YAML_BYTES });
    }

    #[test]
    fn deep_nesting_is_rejected() {
        let deep = format!("{MINIMAL}extra: {}{}\n", "[".repeat(70), "]".repeat(70));
        assert_eq!(err(&deep), YamlError::TooDeep { limit: MAX_DEPTH });
        // 63 levels under the top mapping is fine.
        let fine = format!("{MINIMAL}extra: {}{}\n", "[".repeat(63), "]".repeat(63));
        ok(&fine);
    }

    #[test]
    fn very_deep_documents_fail_without_exhausting_the_stack() {
        let block = format!("{MINIMAL}extra:\n  {}1\n", "- ".repeat(20_000));
        assert_eq!(err(&block), YamlError::TooDeep { limit: MAX_DEPTH });
        let flow = format!("{MINIMAL}extra: {}\n", "[".repeat(100_000));
        assert!(matches!(err(&flow), YamlError::TooDeep { .. } | YamlError::InvalidYaml(_)));
    }

    #[test]
    fn alias_bombs_are_rejected() {
        let mut text = String::from(MINIMAL);
        text.push_str("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..8 {
            let prev = i - 1;
            text.push_str(&format!(
                "a{i}: &a{i} [*a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}]\n"
            ));
        }
        assert_eq!(err(&text), YamlError::TooManyNodes { limit: MAX_NODES });
    }

    #[test]
    fn small_aliases_are_expanded() {
        let config = ok("common: &c [a, b]\ntrain: x\nval: y\nnames: *c\n");
        assert_eq!(config.names, vec!["a", "b"]);
    }

    #[test]
    fn invalid_yaml_is_rejected_with_the_parser_message() {
        match err("train: [unclosed\nval: x\n") {
            YamlError::InvalidYaml(message) => assert!(!message.is_empty()),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn repeated_keys_keep_the_last_value() {
        let config = ok("train: a\nval: b\nnames: [x]\nnames: [y, z]\n");
        assert_eq!(config.names, vec!["y", "z"]);
    }

    #[test]
    fn multiple_documents_are_rejected() {
        assert_eq!(err(&format!("{MINIMAL}---\nfoo: 1\n")), YamlError::MultipleDocuments);
    }

    #[test]
    fn empty_and_non_mapping_documents_are_rejected() {
        assert_eq!(err(""), YamlError::Empty);
        assert_eq!(err("# only a comment\n"), YamlError::Empty);
        assert_eq!(err("~\n"), YamlError::Empty);
        assert_eq!(err("- train\n- val\n"), YamlError::NotAMapping { found: "a list".to_owned() });
        assert!(matches!(err("just text"), YamlError::NotAMapping { .. }));
    }

    #[test]
    fn val_is_required_beside_train() {
        assert_eq!(err("train: x\nnames: [a]\n"), YamlError::MissingSplit { key: "val".to_owned() });
        assert_eq!(err("train: x\nval: ''\nnames: [a]\n"), YamlError::EmptySplit { key: "val".to_owned() });
        assert_eq!(err("train: x\nval: []\nnames: [a]\n"), YamlError::EmptySplit { key: "val".to_owned() });
        assert_eq!(err("train: x\ntest: y\nnames: [a]\n"), YamlError::MissingSplit { key: "val".to_owned() });
    }

    #[test]
    fn a_yaml_without_train_imports_its_other_splits() {
        // A val-only Roboflow export.
        let config = ok("val: ../valid/images\nnc: 1\nnames: ['blackline']\n");
        assert_eq!(split_names(&config), vec!["val"]);
        assert_eq!(config.splits[0].sources, vec!["../valid/images"]);
        // An empty `train:` is no train split either, whatever spelling of empty.
        for train in ["train:", "train: ''", "train: []", "train: None", "train: null"] {
            let config = ok(&format!("{train}\nval: x\nnames: [a]\n"));
            assert_eq!(split_names(&config), vec!["val"], "{train}");
        }
        assert_eq!(split_names(&ok("validation: v\nnames: [a]\n")), vec!["val"]);
        assert_eq!(split_names(&ok("test: t\nnames: [a]\n")), vec!["test"]);
        assert_eq!(split_names(&ok("val: v\ntest: t\nnames: [a]\n")), vec!["val", "test"]);
        // Without train, an empty val is no split rather than an error.
        assert_eq!(split_names(&ok("val:\ntest: t\nnames: [a]\n")), vec!["test"]);
        assert!(config_has_no_warnings(&ok("val: v\nnames: [a]\n")));
    }

    #[test]
    fn a_yaml_naming_no_split_is_refused() {
        assert_eq!(err("names: [a]\n"), YamlError::NoSplits);
        assert_eq!(err("train:\nval:\ntest: []\nnames: [a]\n"), YamlError::NoSplits);
        assert!(err("names: [a]\n").to_string().contains("names no split"));
        // Wrongly typed splits still say what is wrong with them.
        assert!(matches!(err("train: 3\nnames: [a]\n"), YamlError::InvalidSplit { key, .. } if key == "train"));
    }

    fn config_has_no_warnings(config: &DatasetConfig) -> bool {
        config.warnings.is_empty()
    }

    #[test]
    fn validation_key_counts_as_val() {
        let config = ok("train: a\nvalidation: b\nnames: [x]\n");
        assert_eq!(split_names(&config), vec!["train", "val"]);
        assert_eq!(config.splits[1].sources, vec!["b"]);
        // `val` wins when both are present.
        let config = ok("train: a\nvalidation: b\nval: c\nnames: [x]\n");
        assert_eq!(config.split("val").unwrap().sources, vec!["c"]);
    }

    #[test]
    fn split_values_string_list_and_null() {
        let config = ok("test: t\nminival: m\nval: [v1, ' v2 ']\ntrain: tr/\nnames: [x]\n");
        assert_eq!(split_names(&config), vec!["train", "val", "test", "minival"]);
        assert_eq!(config.splits[0].sources, vec!["tr/"]);
        assert_eq!(config.splits[1].sources, vec!["v1", "v2"]);
        for test in ["test:", "test: ''", "test: []", "test: None", "test: null"] {
            let config = ok(&format!("{MINIMAL}{test}\n"));
            assert_eq!(split_names(&config), vec!["train", "val"], "{test}");
        }
    }

    #[test]
    fn only_known_split_keys_are_splits() {
        let config = ok(&format!("{MINIMAL}extra: images/extra\nmasks_dir: masks\n"));
        assert_eq!(split_names(&config), vec!["train", "val"]);
    }

    #[test]
    fn split_values_of_the_wrong_type_are_rejected() {
        assert!(matches!(
            err("train: 2017\nval: x\nnames: [a]\n"),
            YamlError::InvalidSplit { key, .. } if key == "train"
        ));
        assert!(matches!(
            err("train: {a: b}\nval: x\nnames: [a]\n"),
            YamlError::InvalidSplit { key, .. } if key == "train"
        ));
        assert!(matches!(
            err("train: x\nval: [a, 3]\nnames: [a]\n"),
            YamlError::InvalidSplit { key, .. } if key == "val"
        ));
        assert!(matches!(
            err("train: x\nval: [a, '']\nnames: [a]\n"),
            YamlError::InvalidSplit { key, .. } if key == "val"
        ));
        assert!(matches!(
            err(&format!("{MINIMAL}test: true\n")),
            YamlError::InvalidSplit { key, .. } if key == "test"
        ));
    }

    #[test]
    fn names_or_nc_is_required() {
        // A classification config: folders only, no names.
        assert_eq!(err("path: mnist\ntrain: train\nval: val\n"), YamlError::MissingNames);
    }

    #[test]
    fn nc_alone_makes_placeholder_names() {
        let config = ok("train: a\nval: b\nnc: 3\n");
        assert_eq!(config.names, vec!["class_0", "class_1", "class_2"]);
        assert_eq!(err("train: a\nval: b\nnc: 0\n"), YamlError::NoClasses);
        assert_eq!(err("train: a\nval: b\nnc: -2\n"), YamlError::NoClasses);
        assert_eq!(
            err("train: a\nval: b\nnc: 100000000000\n"),
            YamlError::TooManyClasses { count: 100_000_000_000, limit: MAX_CLASSES }
        );
        assert_eq!(
            err("train: a\nval: b\nnc: three\n"),
            YamlError::InvalidNc { found: "the text \"three\"".to_owned() }
        );
        assert_eq!(err("train: a\nval: b\nnc: 2.5\n"), YamlError::InvalidNc { found: "2.5".to_owned() });
        assert_eq!(ok("train: a\nval: b\nnc: 2.0\n").names.len(), 2);
    }

    #[test]
    fn nc_must_match_names() {
        assert_eq!(ok(&format!("{MINIMAL}nc: 2\n")).names.len(), 2);
        assert_eq!(err(&format!("{MINIMAL}nc: 3\n")), YamlError::NcMismatch { nc: 3, names: 2 });
        assert_eq!(err(&format!("{MINIMAL}nc: -1\n")), YamlError::NcMismatch { nc: -1, names: 2 });
        // A null nc is ignored.
        assert_eq!(ok(&format!("{MINIMAL}nc:\n")).names.len(), 2);
    }

    #[test]
    fn names_as_a_mapping() {
        let config = ok("train: a\nval: b\nnames:\n  1: dog\n  0: cat\n  2: bird\n");
        assert_eq!(config.names, vec!["cat", "dog", "bird"]);
        let config = ok("train: a\nval: b\nnames: {'0': cat, '1': dog}\n");
        assert_eq!(config.names, vec!["cat", "dog"]);
        assert_eq!(
            err("train: a\nval: b\nnames: {0: cat, 2: dog}\n"),
            YamlError::NameKeysNotContiguous { count: 2, max_expected: 1, missing: 1 }
        );
        assert_eq!(
            err("train: a\nval: b\nnames: {1: cat, 2: dog}\n"),
            YamlError::NameKeysNotContiguous { count: 2, max_expected: 1, missing: 0 }
        );
        assert_eq!(
            err("train: a\nval: b\nnames: {-1: cat, 0: dog}\n"),
            YamlError::NameKeysNotContiguous { count: 2, max_expected: 1, missing: 1 }
        );
        assert_eq!(err("train: a\nval: b\nnames: {0: cat, '0': dog}\n"), YamlError::DuplicateNameKey { index: 0 });
        assert_eq!(err("train: a\nval: b\nnames: {cat: 0}\n"), YamlError::InvalidNameKey { key: "\"cat\"".to_owned() });
        assert_eq!(err("train: a\nval: b\nnames: {0.5: cat}\n"), YamlError::InvalidNameKey { key: "0.5".to_owned() });
        assert_eq!(err("train: a\nval: b\nnames: {}\n"), YamlError::NoClasses);
    }

    #[test]
    fn names_values_become_text_like_python_str() {
        let config = ok("train: a\nval: b\nnames: [7, 1.5, true, null, 'x y']\n");
        assert_eq!(config.names, vec!["7", "1.5", "True", "None", "x y"]);
        assert!(matches!(
            err("train: a\nval: b\nnames: [[a]]\n"),
            YamlError::InvalidClassName { index, .. } if index == "0"
        ));
        assert!(matches!(
            err("train: a\nval: b\nnames: {0: {a: b}}\n"),
            YamlError::InvalidClassName { index, .. } if index == "0"
        ));
    }

    #[test]
    fn names_of_the_wrong_shape_are_rejected() {
        assert_eq!(err("train: a\nval: b\nnames: []\n"), YamlError::NoClasses);
        assert_eq!(err("train: a\nval: b\nnames:\n"), YamlError::NoClasses);
        assert_eq!(
            err("train: a\nval: b\nnames: cat\n"),
            YamlError::InvalidNames { found: "the text \"cat\"".to_owned() }
        );
    }

    #[test]
    fn kpt_shape_rules() {
        let config = ok(&format!("{MINIMAL}kpt_shape: [17, 3]\n"));
        assert_eq!(config.kpt_shape, Some((17, 3)));
        assert_eq!(ok(&format!("{MINIMAL}kpt_shape: [4, 2]\n")).kpt_shape, Some((4, 2)));
        assert_eq!(ok(&format!("{MINIMAL}kpt_shape:\n")).kpt_shape, None);
        for bad in ["[0, 3]", "[17, 4]", "[17, 1]", "[17]", "[17, 3, 1]", "17", "[-1, 2]", "[a, 3]"] {
            assert!(matches!(err(&format!("{MINIMAL}kpt_shape: {bad}\n")), YamlError::InvalidKptShape { .. }), "{bad}");
        }
        assert_eq!(
            err(&format!("{MINIMAL}kpt_shape: [0, 3]\n")).to_string(),
            "`kpt_shape:` must be [number of keypoints (at least 1), dimensions (2 for x,y or 3 for x,y,visible)], e.g. [17, 3], but it is [0, 3]"
        );
    }

    #[test]
    fn flip_idx_rules() {
        let config = ok(&format!("{MINIMAL}kpt_shape: [3, 2]\nflip_idx: [0, 2, 1]\n"));
        assert_eq!(config.flip_idx, Some(vec![0, 2, 1]));
        assert!(matches!(
            err(&format!("{MINIMAL}kpt_shape: [3, 2]\nflip_idx: [0, 1]\n")),
            YamlError::InvalidFlipIdx { problem } if problem.contains("has 2 entries")
        ));
        assert!(matches!(
            err(&format!("{MINIMAL}kpt_shape: [3, 2]\nflip_idx: [0, 1, 3]\n")),
            YamlError::InvalidFlipIdx { problem } if problem.contains("keypoint 3")
        ));
        assert!(matches!(
            err(&format!("{MINIMAL}kpt_shape: [2, 2]\nflip_idx: [0, x]\n")),
            YamlError::InvalidFlipIdx { .. }
        ));
        assert!(matches!(err(&format!("{MINIMAL}flip_idx: 3\n")), YamlError::InvalidFlipIdx { .. }));
        // Without kpt_shape only the type is checked.
        assert_eq!(ok(&format!("{MINIMAL}flip_idx: [1, 0]\n")).flip_idx, Some(vec![1, 0]));
    }

    #[test]
    fn flip_idx_that_is_not_a_permutation_is_a_warning() {
        // The trainer checks only the length: a repeated keypoint is taken, and flips wrongly.
        let config = ok(&format!("{MINIMAL}kpt_shape: [3, 2]\nflip_idx: [0, 0, 1]\n"));
        assert_eq!(config.flip_idx, Some(vec![0, 0, 1]));
        assert_eq!(config.warnings.len(), 1);
        let warning = &config.warnings[0];
        assert_eq!(warning.code, "flip_idx_not_permutation");
        assert!(warning.message.contains("named more than once: 0"), "{}", warning.message);
        assert!(warning.message.contains("never named: 2"), "{}", warning.message);
        // Without kpt_shape, an index past the list is not a permutation either.
        let config = ok(&format!("{MINIMAL}flip_idx: [1, 5]\n"));
        assert_eq!(config.warnings[0].code, "flip_idx_not_permutation");
        // Permutations, including the identity, are fine.
        for flip in ["[0, 2, 1]", "[0, 1, 2]", "[2, 1, 0]"] {
            let config = ok(&format!("{MINIMAL}kpt_shape: [3, 3]\nflip_idx: {flip}\n"));
            assert!(config.warnings.is_empty(), "{flip}: {:?}", config.warnings);
        }
    }

    #[test]
    fn kpt_names_map_classes_to_keypoint_names() {
        let config =
            ok(&format!("{MINIMAL}kpt_shape: [2, 3]\nkpt_names:\n  0: [nose, tail]\n  1:\n    - left\n    - 7\n"));
        let names = config.kpt_names.unwrap();
        assert_eq!(names[&0], vec!["nose", "tail"]);
        assert_eq!(names[&1], vec!["left", "7"]);
        assert!(config.warnings.is_empty(), "{:?}", config.warnings);
        assert_eq!(ok(&format!("{MINIMAL}kpt_names:\n")).kpt_names, None);
        assert_eq!(ok(MINIMAL).kpt_names, None);
    }

    #[test]
    fn unusable_kpt_names_are_a_warning_not_an_error() {
        for (value, says) in [
            ("[nose, tail]", "must map each class index"),
            ("{x: [a]}", "is not a class index"),
            ("{0: nose}", "must list keypoint names"),
            ("{0: [[a]]}", "not a name"),
        ] {
            let config = ok(&format!("{MINIMAL}kpt_shape: [2, 3]\nkpt_names: {value}\n"));
            assert_eq!(config.kpt_names, None, "{value}");
            assert_eq!(config.warnings.len(), 1, "{value}");
            assert_eq!(config.warnings[0].code, "kpt_names_invalid");
            assert!(config.warnings[0].message.contains(says), "{value}: {}", config.warnings[0].message);
        }
        // Kept, but a count that does not match kpt_shape, or a class that does not exist, is said.
        let config = ok(&format!("{MINIMAL}kpt_shape: [2, 3]\nkpt_names: {{0: [a], 5: [b, c]}}\n"));
        assert_eq!(config.kpt_names.as_ref().unwrap().len(), 2);
        let message = &config.warnings[0].message;
        assert!(message.contains("class 0 names 1 keypoints, but `kpt_shape:` declares 2"), "{message}");
        assert!(message.contains("class 5 is not a class of `names:` (0 to 1)"), "{message}");
    }

    #[test]
    fn every_warning_code_is_listed() {
        let configs = [format!("{MINIMAL}flip_idx: [0, 0]\n"), format!("{MINIMAL}kpt_names: 3\n")];
        for text in configs {
            for warning in ok(&text).warnings {
                assert!(YAML_WARNING_CODES.contains(&warning.code.as_str()), "{}", warning.code);
            }
        }
    }

    #[test]
    fn task_key() {
        assert_eq!(ok(&format!("{MINIMAL}task: segment\n")).task, Some(Task::Segment));
        assert_eq!(ok(&format!("{MINIMAL}task: OBB\n")).task, Some(Task::Obb));
        assert_eq!(ok(&format!("{MINIMAL}task:\n")).task, None);
        assert_eq!(err(&format!("{MINIMAL}task: classify\n")), YamlError::InvalidTask { found: "classify".to_owned() });
        assert_eq!(err(&format!("{MINIMAL}task: pose\n")), YamlError::MissingKptShape);
        let config = ok(&format!("{MINIMAL}task: pose\nkpt_shape: [5, 3]\n"));
        assert_eq!(config.task, Some(Task::Pose));
    }

    #[test]
    fn path_download_and_other_keys() {
        let config = ok(&format!(
            "{MINIMAL}path: /content/datasets/x\ndownload: |\n  import os\n  os.system('rm -rf /')\nroboflow:\n  workspace: w\nchannels: 3\n"
        ));
        assert_eq!(config.path.as_deref(), Some("/content/datasets/x"));
        assert_eq!(ok(&format!("{MINIMAL}path: ''\n")).path, None);
        assert_eq!(ok(&format!("{MINIMAL}path:\n")).path, None);
        assert_eq!(ok(&format!("{MINIMAL}path: ../data\n")).path.as_deref(), Some("../data"));
    }

    #[test]
    fn download_only_config_is_not_rejected_for_its_download() {
        // Splits point at folders that a download would create: still a valid config.
        let config = ok("path: ../datasets/coco8\ntrain: images/train\nval: images/val\nnames: [a]\ndownload: https://example.invalid/coco8.zip\n");
        assert_eq!(config.names, vec!["a"]);
    }

    #[test]
    fn control_characters_are_stripped_like_ultralytics() {
        let config = ok("train: a\u{7}\nval: b\nnames: [c\u{1}at]\n");
        assert_eq!(config.names, vec!["cat"]);
        assert_eq!(config.splits[0].sources, vec!["a"]);
    }

    #[test]
    fn quoted_and_tagged_scalars_stay_text() {
        let config = ok("train: '2017'\nval: !!str 2018\nnames: ['1', \"true\"]\n");
        assert_eq!(config.splits[0].sources, vec!["2017"]);
        assert_eq!(config.splits[1].sources, vec!["2018"]);
        assert_eq!(config.names, vec!["1", "true"]);
    }

    #[test]
    fn config_round_trips_through_json() {
        let config = ok(&format!("{MINIMAL}kpt_shape: [2, 3]\nflip_idx: [1, 0]\ntask: pose\n"));
        let json = serde_json::to_string(&config).unwrap();
        let back: DatasetConfig = serde_json::from_str(&json).unwrap();
        assert_eq!(back, config);
    }

    #[test]
    fn error_messages_are_user_facing() {
        assert_eq!(
            err("train: x\nnames: [a]\n").to_string(),
            "the dataset YAML has no `val:` key; `train:` and `val:` are required (a `validation:` key is accepted for `val:`)"
        );
        assert_eq!(
            err(&format!("{MINIMAL}nc: 3\n")).to_string(),
            "`nc: 3` does not match `names:`, which has 2 classes"
        );
        assert!(err("train: a\nval: b\n").to_string().contains("neither `names:`"));
    }

    // ---- Real files ----------------------------------------------------------------------

    fn read(datasets: &std::path::Path, relative: &str) -> String {
        let path = datasets.join(relative);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
    }

    #[test]
    fn every_ultralytics_yaml_parses_or_fails_clearly() {
        let Some(datasets) = testkit::real_datasets("every_ultralytics_yaml_parses_or_fails_clearly") else { return };
        let dir = datasets.join("ultralytics-yamls");
        let mut entries: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
            .collect();
        entries.sort();
        assert!(entries.len() >= 50, "expected the Ultralytics YAMLs in {}", dir.display());
        for path in entries {
            let text = std::fs::read_to_string(&path).unwrap();
            match parse_data_yaml(&text) {
                Ok(config) => {
                    assert!(!config.names.is_empty(), "{path:?}");
                    assert_eq!(config.splits[0].name, "train", "{path:?}");
                    assert_eq!(config.splits[1].name, "val", "{path:?}");
                    assert!(config.path.is_some(), "{path:?}");
                }
                Err(e) => assert!(!e.to_string().is_empty(), "{path:?}"),
            }
        }
    }

    #[test]
    fn known_ultralytics_configs() {
        let Some(datasets) = testkit::real_datasets("known_ultralytics_configs") else { return };
        let yaml = |name: &str| parse_data_yaml(&read(&datasets, &format!("ultralytics-yamls/{name}")));

        let coco8 = yaml("coco8.yaml").unwrap();
        assert_eq!(coco8.names.len(), 80);
        assert_eq!(coco8.names[0], "person");
        assert_eq!(coco8.names[79], "toothbrush");
        assert_eq!(coco8.path.as_deref(), Some("coco8"));
        assert_eq!(split_names(&coco8), vec!["train", "val"]);
        assert_eq!(coco8.kpt_shape, None);

        let pose = yaml("coco8-pose.yaml").unwrap();
        assert_eq!(pose.names, vec!["person"]);
        assert_eq!(pose.kpt_shape, Some((17, 3)));
        assert_eq!(pose.flip_idx, Some(vec![0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15]));
        let kpt_names = pose.kpt_names.as_ref().expect("coco8-pose names its keypoints");
        assert_eq!(kpt_names.len(), 1);
        assert_eq!(kpt_names[&0].len(), 17);
        assert_eq!((kpt_names[&0][0].as_str(), kpt_names[&0][16].as_str()), ("nose", "right_ankle"));
        assert!(pose.warnings.is_empty(), "{:?}", pose.warnings);

        let tiger = yaml("tiger-pose.yaml").unwrap();
        assert_eq!(tiger.kpt_shape, Some((12, 2)));
        assert_eq!(tiger.flip_idx, Some((0..12).collect()));
        assert_eq!(tiger.kpt_names.as_ref().unwrap()[&0][11], "left_front_paw");
        assert!(tiger.warnings.is_empty(), "{:?}", tiger.warnings);
        // dog-pose has no flip_idx (the trainer then turns horizontal flips off).
        let dog = yaml("dog-pose.yaml").unwrap();
        assert_eq!((dog.kpt_shape, dog.flip_idx.as_ref()), (Some((24, 3)), None));
        assert_eq!(dog.kpt_names.as_ref().unwrap()[&0].len(), 24);
        assert!(dog.warnings.is_empty(), "{:?}", dog.warnings);
        let hand = yaml("hand-keypoints.yaml").unwrap();
        assert!(hand.warnings.is_empty(), "{:?}", hand.warnings);
        assert_eq!(yaml("dota8.yaml").unwrap().names.len(), 15);
        assert_eq!(yaml("coco8-seg.yaml").unwrap().names.len(), 80);
        assert_eq!(yaml("lvis.yaml").unwrap().names.len(), 1203);
        assert_eq!(split_names(&yaml("lvis.yaml").unwrap()), vec!["train", "val", "minival"]);
        assert_eq!(yaml("coco.yaml").unwrap().splits[0].sources, vec!["train2017.txt"]);

        let wheat = yaml("GlobalWheat2020.yaml").unwrap();
        assert_eq!(split_names(&wheat), vec!["train", "val", "test"]);
        assert_eq!(wheat.splits[0].sources.len(), 7);
        assert_eq!(wheat.splits[1].sources, vec!["images/ethz_1"]);
        assert_eq!(yaml("VOC.yaml").unwrap().names.len(), 20);

        // ImageNet.yaml carries `names:` (1000 classes), so from the YAML alone it is a valid
        // detection config; only its folders (one per class, no labels) tell it apart.
        assert_eq!(yaml("ImageNet.yaml").unwrap().names.len(), 1000);
    }

    #[test]
    fn classification_configs_are_rejected() {
        // The shape of Ultralytics' classification configs (mnist, imagenet10, ...): folders
        // without `names:` or `nc:`.
        for text in [
            "path: ../datasets/mnist160\ntrain: train\nval: val\ntest: test\n",
            "path: imagenet10\ntrain: train\nval: val\ndownload: https://example.invalid/imagenet10.zip\n",
        ] {
            assert_eq!(err(text), YamlError::MissingNames);
        }
    }

    #[test]
    fn sample_dataset_configs() {
        let Some(datasets) = testkit::real_datasets("sample_dataset_configs") else { return };
        let read = |relative: &str| read(&datasets, relative);
        let coco8 = parse_data_yaml(&read("coco8/data.yaml")).unwrap();
        assert_eq!(coco8.names.len(), 80);
        assert_eq!(coco8.path, None);
        assert_eq!(split_names(&coco8), vec!["train", "val"]);
        assert_eq!(coco8.splits[0].sources, vec!["images/train"]);

        let roboflow = parse_data_yaml(&read("roboflow-blackline/data.yaml")).unwrap();
        assert_eq!(roboflow.names, vec!["blackline"]);
        assert_eq!(split_names(&roboflow), vec!["train", "val", "test"]);
        assert_eq!(roboflow.splits[1].sources, vec!["valid/images"]);

        let original = parse_data_yaml(&read("roboflow-blackline/data.yaml.orig")).unwrap();
        assert_eq!(original.names, vec!["blackline"]);
        assert!(original.path.is_some());
    }
}
