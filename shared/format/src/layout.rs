//! Where things are inside a dataset archive: which files are images, where an image's label
//! file lives, which YAML is the dataset's, and which images each split names.
//!
//! It exists so that an archive resolves to the same image list Ultralytics' trainer would
//! build from it (`img2label_paths`, `BaseDataset.get_img_files`, the path handling of
//! `check_det_dataset`), without touching storage: the archive's file set is seen through the
//! small [`FileTree`] trait, and list files are read through a callback.
//!
//! Paths are archive-relative, `/`-separated, with no leading `/`; `""` is the archive root.
//! Nothing here ever resolves to a path above the root.

use std::collections::{BTreeSet, HashSet};
use std::hash::{BuildHasher, RandomState};

use crate::Issue;

use super::data_yaml::{DatasetConfig, SplitSpec};

/// Image file extensions Ultralytics trains on (its `IMG_FORMATS`, 8.4), lower case. Files with
/// other extensions (`.pfm`, `.gif`, `.j2k`) are not images of the dataset for the trainer.
pub const IMAGE_EXTENSIONS: &[&str] =
    &["avif", "bmp", "dng", "heic", "heif", "jp2", "jpeg", "jpg", "mpo", "png", "tif", "tiff", "webp"];

/// Most issues [`resolve_split`] reports for one split; the rest are summed up in one issue.
pub const MAX_SPLIT_ISSUES: usize = 1000;

/// Whether the file name ends in one of [`IMAGE_EXTENSIONS`] (case-insensitive).
pub fn is_image_path(path: &str) -> bool {
    let name = file_name(path);
    match name.rsplit_once('.') {
        Some((_, ext)) => IMAGE_EXTENSIONS.iter().any(|e| e.eq_ignore_ascii_case(ext)),
        None => false,
    }
}

/// The label file Ultralytics reads for an image: the last `/images/` segment of the path
/// becomes `/labels/` (a path starting with `images/` counts), and the extension becomes
/// `.txt`. Without an `images` segment the label sits next to the image. Case-sensitive.
pub fn label_path_for(image_path: &str) -> String {
    // One allocation: this runs for every image, several times per import.
    let name_start = image_path.rfind('/').map_or(0, |i| i + 1);
    let stem_end = image_path[name_start..].rfind('.').map_or(image_path.len(), |dot| name_start + dot);
    // The last `images` segment: `/images/` inside the path, else `images/` at its start. It
    // ends with `/`, so it lies before the file name.
    let segment = match image_path.rfind("/images/") {
        Some(slash) => Some(slash + 1),
        None => image_path.starts_with("images/").then_some(0),
    };
    let mut label = String::with_capacity(stem_end + ".txt".len());
    match segment {
        Some(at) => {
            label.push_str(&image_path[..at]);
            label.push_str("labels/");
            label.push_str(&image_path[at + "images/".len()..stem_end]);
        }
        None => label.push_str(&image_path[..stem_end]),
    }
    label.push_str(".txt");
    label
}

/// A read-only view of an archive's file set.
pub trait FileTree {
    /// Whether `path` is a file.
    fn is_file(&self, path: &str) -> bool;
    /// Whether `path` is a directory (`""`, the root, always is).
    fn is_dir(&self, path: &str) -> bool;
    /// Calls `visit` with every file below `dir`, recursively, in sorted order; `""` visits
    /// the whole tree. A visitor rather than a list: a tree may hold millions of files.
    fn visit_files_under(&self, dir: &str, visit: &mut dyn FnMut(&str));
}

/// A [`FileTree`] over a set of file paths; directories are the paths' prefixes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemoryTree(BTreeSet<String>);

impl MemoryTree {
    /// Entries that are empty or end in `/` (directory entries of an archive) are skipped.
    pub fn new<I, S>(paths: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self(paths.into_iter().map(Into::into).filter(|p| !p.is_empty() && !p.ends_with('/')).collect())
    }

    /// The files, sorted.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
}

impl FileTree for MemoryTree {
    fn is_file(&self, path: &str) -> bool {
        self.0.contains(path)
    }

    fn is_dir(&self, path: &str) -> bool {
        let path = path.trim_end_matches('/');
        if path.is_empty() {
            return true;
        }
        let prefix = format!("{path}/");
        self.0.range(prefix.clone()..).next().is_some_and(|p| p.starts_with(&prefix))
    }

    fn visit_files_under(&self, dir: &str, visit: &mut dyn FnMut(&str)) {
        let dir = dir.trim_end_matches('/');
        let prefix = if dir.is_empty() { String::new() } else { format!("{dir}/") };
        for path in self.0.range(prefix.clone()..).take_while(|p| p.starts_with(&prefix)) {
            visit(path);
        }
    }
}

/// One split's images, in the order the YAML's sources name them, without duplicates.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedSplit {
    pub name: String,
    /// Archive paths of the images.
    pub images: Vec<String>,
    /// Sources or list entries that could not be used.
    pub issues: Vec<Issue>,
}

/// The dataset root inside the archive: the YAML's directory joined with `path:` when that is
/// relative and names a directory of the archive; otherwise the YAML's directory. Absolute or
/// missing `path:` values (exports often carry e.g. `/content/datasets/x`) are ignored.
pub fn resolve_base(config: &DatasetConfig, yaml_path: &str, tree: &dyn FileTree) -> String {
    let yaml_dir = parent(yaml_path);
    if let Some(path) = config.path.as_deref() {
        if !is_absolute(path) {
            if let Some(joined) = join(yaml_dir, path) {
                if tree.is_dir(&joined) {
                    return joined;
                }
            }
        }
    }
    yaml_dir.to_owned()
}

/// Resolves a split's sources to image paths. A source is a directory (every image below it,
/// hidden files and folders skipped as Ultralytics' glob skips them), a single image, or a list
/// file (any other file, read with `read_list`: one image path per line, relative to the list
/// file's directory). A source starting with `../` that does not exist is retried without it,
/// as Ultralytics does (Roboflow exports write `train: ../train/images`).
pub fn resolve_split(
    spec: &SplitSpec,
    base: &str,
    tree: &dyn FileTree,
    read_list: &mut dyn FnMut(&str) -> Option<String>,
) -> ResolvedSplit {
    let mut images = Vec::new();
    let issues = visit_split(spec, base, tree, read_list, &mut |path| images.push(path.to_owned()));
    ResolvedSplit { name: spec.name.clone(), images, issues }
}

/// [`resolve_split`] without collecting: `on_image` receives each image path once, in order,
/// and the split's issues are returned. Memory stays at 16 bytes per image whatever the split.
pub fn visit_split(
    spec: &SplitSpec,
    base: &str,
    tree: &dyn FileTree,
    read_list: &mut dyn FnMut(&str) -> Option<String>,
    on_image: &mut dyn FnMut(&str),
) -> Vec<Issue> {
    // One folder, visited in sorted order, never yields a path twice: paths are remembered only
    // when there are several sources or a list file.
    let mut out = SplitBuilder::new(on_image, spec.sources.len() > 1);
    for source in &spec.sources {
        let source = source.trim();
        let Some(path) = locate_source(&spec.name, source, base, tree, &mut out) else {
            continue;
        };
        if tree.is_dir(&path) {
            let prefix_len = if path.is_empty() { 0 } else { path.len() + 1 };
            tree.visit_files_under(&path, &mut |file| {
                if is_image_path(file) && !has_hidden_component(&file[prefix_len..]) {
                    out.add_image(file);
                }
            });
        } else if is_image_path(&path) {
            out.add_image(&path);
        } else {
            out.seen.get_or_insert_with(HashSet::new);
            read_list_file(&spec.name, &path, tree, read_list, &mut out);
        }
    }
    if out.images == 0 {
        out.issue(Issue::new(
            "split_empty",
            format!("split `{}` has no images; the trainer stops on an empty split", spec.name),
        ));
    }
    if out.dropped_issues > 0 {
        out.issues.push(Issue::new(
            "issues_truncated",
            format!("{} more issues in split `{}` are not listed", out.dropped_issues, spec.name),
        ));
    }
    out.issues
}

/// The folder `resolve_base` would return for a YAML at `yaml_path` once that folder exists,
/// when it is not the YAML's own folder (a relative `path:` naming a subfolder); `None` when
/// the base is the YAML's folder whatever the archive holds.
pub fn base_awaited(config: &DatasetConfig, yaml_path: &str) -> Option<String> {
    let path = config.path.as_deref().filter(|p| !is_absolute(p))?;
    let yaml_dir = parent(yaml_path);
    join(yaml_dir, path).filter(|joined| joined != yaml_dir)
}

/// The folder a split with one source resolves to once that folder exists, following
/// `locate_source`: the source joined to `base`, or, when that climbs above the root, the
/// source without its leading `../`. `None` for several sources or an absolute one. Once the
/// folder exists, nothing added to the archive changes the split's images: every image below
/// it (hidden paths skipped), named relative to it.
pub fn sole_source_dir(spec: &SplitSpec, base: &str) -> Option<String> {
    let [source] = spec.sources.as_slice() else { return None };
    let source = source.trim();
    if is_absolute(source) {
        return None;
    }
    join(base, source).or_else(|| join(base, source.strip_prefix("../")?))
}

/// The name of `path` inside split folder `root` when it is one of the split's images: an
/// image below `root` with no hidden component below it.
pub fn image_in_dir<'a>(root: &str, path: &'a str) -> Option<&'a str> {
    let relative = if root.is_empty() { path } else { path.strip_prefix(root)?.strip_prefix('/')? };
    (is_image_path(relative) && !has_hidden_component(relative)).then_some(relative)
}

/// Image paths whose label file ([`label_path_for`]) is `label_path`, for the given image
/// extensions (as written) of each candidate folder: the label's own folder and each folder
/// with one `labels` component turned into `images`.
pub fn images_for_label(label_path: &str, extensions_in: &dyn Fn(&str) -> Vec<String>) -> Vec<String> {
    let Some(stem_path) = label_path.strip_suffix(".txt") else { return Vec::new() };
    let dir = parent(label_path);
    let stem = &stem_path[dir.len()..].trim_start_matches('/');
    let mut dirs = vec![dir.to_owned()];
    let parts: Vec<&str> = if dir.is_empty() { Vec::new() } else { dir.split('/').collect() };
    for (i, part) in parts.iter().enumerate() {
        if *part == "labels" {
            let mut swapped = parts.clone();
            swapped[i] = "images";
            dirs.push(swapped.join("/"));
        }
    }
    let mut images = Vec::new();
    for dir in dirs {
        for ext in extensions_in(&dir) {
            let image = if dir.is_empty() { format!("{stem}.{ext}") } else { format!("{dir}/{stem}.{ext}") };
            if label_path_for(&image) == label_path && !images.contains(&image) {
                images.push(image);
            }
        }
    }
    images
}

/// The dataset YAML of an archive: `data.yaml` (or `data.yml`) at the shallowest depth it
/// occurs; otherwise any `*.yaml`/`*.yml` at the shallowest depth. Ties go to the smallest path.
/// Hidden files and folders (`.x`, macOS `__MACOSX/`) are never chosen.
pub fn find_config(tree_paths: &[String]) -> Option<String> {
    let candidates = tree_paths.iter().filter(|p| {
        let name = file_name(p).to_ascii_lowercase();
        (name.ends_with(".yaml") || name.ends_with(".yml"))
            && !has_hidden_component(p)
            && !p.split('/').any(|c| c == "__MACOSX")
    });
    // At one depth, `data.yaml` itself wins over its case variants and `data.yml`: a root
    // `data.yaml` is then the dataset's YAML whatever else the archive holds, which lets a tar
    // be planned while it is still being staged (`planning::early`).
    let key = |p: &&String| (p.matches('/').count(), file_name(p) != "data.yaml", p.to_string());
    let is_data = |p: &&String| {
        let name = file_name(p).to_ascii_lowercase();
        name == "data.yaml" || name == "data.yml"
    };
    candidates.clone().filter(is_data).min_by_key(key).or_else(|| candidates.min_by_key(key)).cloned()
}

struct SplitBuilder<'a> {
    on_image: &'a mut dyn FnMut(&str),
    images: u64,
    /// Two keyed 64-bit hashes per image seen: 16 bytes instead of the path (`None` when the
    /// split cannot repeat a path).
    seen: Option<HashSet<u128>>,
    hashers: (RandomState, RandomState),
    issues: Vec<Issue>,
    dropped_issues: usize,
}

impl<'a> SplitBuilder<'a> {
    fn new(on_image: &'a mut dyn FnMut(&str), dedup: bool) -> Self {
        let hashers = (RandomState::new(), RandomState::new());
        let seen = dedup.then(HashSet::new);
        Self { on_image, images: 0, seen, hashers, issues: Vec::new(), dropped_issues: 0 }
    }

    fn add_image(&mut self, path: &str) {
        if let Some(seen) = &mut self.seen {
            let key = (u128::from(self.hashers.0.hash_one(path)) << 64) | u128::from(self.hashers.1.hash_one(path));
            if !seen.insert(key) {
                return;
            }
        }
        self.images += 1;
        (self.on_image)(path);
    }

    fn issue(&mut self, issue: Issue) {
        if self.issues.len() < MAX_SPLIT_ISSUES {
            self.issues.push(issue);
        } else {
            self.dropped_issues += 1;
        }
    }
}

/// The archive path a split source names, or `None` (with an issue) when there is none.
fn locate_source(split: &str, source: &str, base: &str, tree: &dyn FileTree, out: &mut SplitBuilder) -> Option<String> {
    if is_absolute(source) {
        out.issue(Issue::new(
            "split_source_missing",
            format!(
                "split `{split}`: `{source}` is an absolute path from the machine that made the \
                 dataset; write it relative to the dataset YAML's folder"
            ),
        ));
        return None;
    }
    let exists = |p: &str| p.is_empty() || tree.is_dir(p) || tree.is_file(p);
    let first = join(base, source);
    if let Some(path) = &first {
        if exists(path) {
            return first;
        }
    }
    let retry = source.strip_prefix("../").map(|rest| join(base, rest));
    if let Some(Some(path)) = &retry {
        if exists(path) {
            return Some(path.clone());
        }
    }
    let outside = first.is_none() && retry.as_ref().is_none_or(Option::is_none);
    if outside {
        out.issue(Issue::new(
            "path_outside_dataset",
            format!("split `{split}`: `{source}` points outside the uploaded archive"),
        ));
    } else {
        let looked = first.or(retry.flatten()).unwrap_or_default();
        out.issue(Issue::new(
            "split_source_missing",
            format!("split `{split}`: `{source}` (looked for `{}`) is not in the archive", display(&looked)),
        ));
    }
    None
}

fn read_list_file(
    split: &str,
    list_path: &str,
    tree: &dyn FileTree,
    read_list: &mut dyn FnMut(&str) -> Option<String>,
    out: &mut SplitBuilder,
) {
    let Some(text) = read_list(list_path) else {
        out.issue(Issue::new(
            "list_file_unreadable",
            format!("split `{split}`: the list file `{list_path}` could not be read as text"),
        ));
        return;
    };
    let list_dir = parent(list_path);
    for (index, line) in text.lines().enumerate() {
        let line_no = u32::try_from(index + 1).unwrap_or(u32::MAX);
        let entry = line.trim();
        if entry.is_empty() {
            continue;
        }
        if is_absolute(entry) {
            out.issue(Issue::at_line(
                "list_entry_absolute",
                line_no,
                format!(
                    "`{list_path}`: `{entry}` is an absolute path from the machine that made the \
                     list; write it relative to the list file, e.g. `./images/a.jpg`"
                ),
            ));
            continue;
        }
        if !is_image_path(entry) {
            out.issue(Issue::at_line(
                "list_entry_not_image",
                line_no,
                format!(
                    "`{list_path}`: `{entry}` is not an image file ({}); the trainer skips it",
                    IMAGE_EXTENSIONS.join(", ")
                ),
            ));
            continue;
        }
        match join(list_dir, entry) {
            None => out.issue(Issue::at_line(
                "path_outside_dataset",
                line_no,
                format!("`{list_path}`: `{entry}` points outside the uploaded archive"),
            )),
            Some(path) if tree.is_file(&path) => out.add_image(&path),
            Some(path) => out.issue(Issue::at_line(
                "list_entry_missing",
                line_no,
                format!("`{list_path}`: `{entry}` (looked for `{path}`) is not in the archive"),
            )),
        }
    }
}

/// `base` joined with `relative`, normalized (`.`, `..`, repeated and trailing `/`); `None`
/// when `..` would climb above the archive root.
fn join(base: &str, relative: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for part in base.split('/').chain(relative.split('/')) {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            part => parts.push(part),
        }
    }
    Some(parts.join("/"))
}

fn parent(path: &str) -> &str {
    path.rfind('/').map_or("", |i| &path[..i])
}

fn file_name(path: &str) -> &str {
    path.rfind('/').map_or(path, |i| &path[i + 1..])
}

/// `/x`, `\x`, `C:/x`, `C:\x` and `~/x` cannot be resolved inside an archive.
fn is_absolute(path: &str) -> bool {
    let bytes = path.as_bytes();
    path.starts_with('/')
        || path.starts_with('\\')
        || path.starts_with('~')
        || (bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':')
}

fn has_hidden_component(relative: &str) -> bool {
    relative.split('/').any(|c| c.starts_with('.'))
}

fn display(path: &str) -> &str {
    if path.is_empty() {
        "the archive root"
    } else {
        path
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data_yaml::parse_data_yaml;

    fn files_under(tree: &MemoryTree, dir: &str) -> Vec<String> {
        let mut files = Vec::new();
        tree.visit_files_under(dir, &mut |f| files.push(f.to_owned()));
        files
    }

    fn tree(paths: &[&str]) -> MemoryTree {
        MemoryTree::new(paths.iter().copied())
    }

    fn spec(name: &str, sources: &[&str]) -> SplitSpec {
        SplitSpec { name: name.to_owned(), sources: sources.iter().map(|s| s.to_string()).collect() }
    }

    fn no_lists(_: &str) -> Option<String> {
        None
    }

    fn codes(split: &ResolvedSplit) -> Vec<&str> {
        split.issues.iter().map(|i| i.code.as_str()).collect()
    }

    fn config(path: Option<&str>) -> DatasetConfig {
        let mut config = parse_data_yaml("train: a\nval: b\nnames: [x]\n").unwrap();
        config.path = path.map(str::to_owned);
        config
    }

    #[test]
    fn image_extensions_are_case_insensitive() {
        for path in ["a.jpg", "a/b.JPG", "x.JpEg", "x.png", "x.webp", "x.tiff", "x.heic", "x.avif", "x.JP2"] {
            assert!(is_image_path(path), "{path}");
        }
        for path in ["a.txt", "a.gif", "jpg", "a/jpg", "a.jpg/b", "a.mp4", "a.jpg.txt", "", "a.pfm", "a.j2k"] {
            assert!(!is_image_path(path), "{path}");
        }
        assert_eq!(IMAGE_EXTENSIONS.len(), 13);
    }

    #[test]
    fn label_path_replaces_the_last_images_segment() {
        assert_eq!(label_path_for("images/train/a.jpg"), "labels/train/a.txt");
        assert_eq!(label_path_for("ds/images/train/a.jpg"), "ds/labels/train/a.txt");
        assert_eq!(label_path_for("train/images/a.png"), "train/labels/a.txt");
        assert_eq!(label_path_for("images/x/images/y/a.jpg"), "images/x/labels/y/a.txt", "only the last segment");
        assert_eq!(label_path_for("a/Images/b.jpg"), "a/Images/b.txt", "case-sensitive");
        assert_eq!(label_path_for("a/myimages/b.jpg"), "a/myimages/b.txt", "whole segment");
        assert_eq!(label_path_for("a/images.old/b.jpg"), "a/images.old/b.txt");
        assert_eq!(label_path_for("a/b.jpg"), "a/b.txt", "next to the image");
        assert_eq!(label_path_for("b.jpg"), "b.txt");
        assert_eq!(label_path_for("images/b.c.jpg"), "labels/b.c.txt", "last dot only");
        assert_eq!(label_path_for("a.d/images/b"), "a.d/labels/b.txt", "no extension");
        assert_eq!(label_path_for("a/images"), "a/images.txt", "a file, not a folder");
        assert_eq!(label_path_for("images/images/a.jpg"), "images/labels/a.txt");
        assert_eq!(label_path_for("images/.jpg"), "labels/.txt", "a name that is all extension");
    }

    #[test]
    fn memory_tree_dirs_and_files() {
        let t = tree(&["a/b/c.jpg", "a/b/d.jpg", "a/bc.jpg", "a/b.txt", "z.jpg", "dir/"]);
        assert!(t.is_dir(""));
        assert!(t.is_dir("a"));
        assert!(t.is_dir("a/b"));
        assert!(t.is_dir("a/b/"));
        assert!(!t.is_dir("a/bc.jpg"));
        assert!(!t.is_dir("a/bc"));
        assert!(!t.is_dir("dir"), "directory entries are not files");
        assert!(t.is_file("a/b/c.jpg"));
        assert!(!t.is_file("a/b"));
        assert_eq!(files_under(&t, "a/b"), vec!["a/b/c.jpg", "a/b/d.jpg"]);
        assert_eq!(files_under(&t, "a"), vec!["a/b.txt", "a/b/c.jpg", "a/b/d.jpg", "a/bc.jpg"]);
        assert_eq!(files_under(&t, "").len(), 5);
        assert!(files_under(&t, "nope").is_empty());
        assert_eq!(t.paths().count(), 5);
    }

    #[test]
    fn base_is_the_yaml_dir_joined_with_a_relative_existing_path() {
        let t = tree(&["ds/data.yaml", "ds/sub/images/a.jpg", "images/b.jpg"]);
        assert_eq!(resolve_base(&config(None), "ds/data.yaml", &t), "ds");
        assert_eq!(resolve_base(&config(Some("sub")), "ds/data.yaml", &t), "ds/sub");
        assert_eq!(resolve_base(&config(Some("./sub/")), "ds/data.yaml", &t), "ds/sub");
        assert_eq!(resolve_base(&config(Some(".")), "ds/data.yaml", &t), "ds");
        assert_eq!(resolve_base(&config(Some("..")), "ds/data.yaml", &t), "");
        assert_eq!(resolve_base(&config(Some("missing")), "ds/data.yaml", &t), "ds");
        assert_eq!(resolve_base(&config(Some("../..")), "ds/data.yaml", &t), "ds");
        assert_eq!(resolve_base(&config(Some("/content/datasets/ds")), "ds/data.yaml", &t), "ds");
        assert_eq!(resolve_base(&config(Some("C:\\data\\ds")), "ds/data.yaml", &t), "ds");
        assert_eq!(resolve_base(&config(Some("coco8")), "data.yaml", &t), "");
        assert_eq!(resolve_base(&config(Some("ds")), "data.yaml", &t), "ds");
    }

    #[test]
    fn directory_sources_list_images_recursively_and_skip_hidden() {
        let t = tree(&[
            "images/train/b.jpg",
            "images/train/a.PNG",
            "images/train/sub/c.jpg",
            "images/train/notes.txt",
            "images/train/._a.jpg",
            "images/train/.cache/d.jpg",
            "images/val/e.jpg",
        ]);
        let split = resolve_split(&spec("train", &["images/train"]), "", &t, &mut no_lists);
        assert_eq!(split.images, vec!["images/train/a.PNG", "images/train/b.jpg", "images/train/sub/c.jpg"]);
        assert!(split.issues.is_empty());
        assert_eq!(split.name, "train");
    }

    #[test]
    fn sources_are_relative_to_the_base_and_normalized() {
        let t = tree(&["ds/images/train/a.jpg", "ds/images/val/b.jpg"]);
        let split = resolve_split(&spec("train", &["./images/train/", "images/x/../val"]), "ds", &t, &mut no_lists);
        assert_eq!(split.images, vec!["ds/images/train/a.jpg", "ds/images/val/b.jpg"]);
        assert!(split.issues.is_empty());
    }

    #[test]
    fn roboflow_parent_prefix_is_retried_without_it() {
        let t = tree(&["data.yaml", "train/images/a.jpg", "valid/images/b.jpg"]);
        let split = resolve_split(&spec("train", &["../train/images"]), "", &t, &mut no_lists);
        assert_eq!(split.images, vec!["train/images/a.jpg"]);
        assert!(split.issues.is_empty());
        // Inside a top folder, `../train` is first tried as written (a sibling folder).
        let t = tree(&["ds/data.yaml", "ds/train/images/a.jpg", "train/images/z.jpg"]);
        let split = resolve_split(&spec("train", &["../train/images"]), "ds", &t, &mut no_lists);
        assert_eq!(split.images, vec!["train/images/z.jpg"]);
        let t = tree(&["ds/data.yaml", "ds/train/images/a.jpg"]);
        let split = resolve_split(&spec("train", &["../train/images"]), "ds", &t, &mut no_lists);
        assert_eq!(split.images, vec!["ds/train/images/a.jpg"]);
    }

    #[test]
    fn missing_and_escaping_sources_are_reported() {
        let t = tree(&["images/a.jpg"]);
        let split = resolve_split(&spec("val", &["images/val", "images"]), "", &t, &mut no_lists);
        assert_eq!(split.images, vec!["images/a.jpg"]);
        assert_eq!(codes(&split), vec!["split_source_missing"]);
        assert!(split.issues[0].message.contains("images/val"));
        assert_eq!(split.issues[0].line, None);

        let split = resolve_split(&spec("val", &["../../x"]), "", &t, &mut no_lists);
        assert_eq!(codes(&split), vec!["path_outside_dataset", "split_empty"]);
        let split = resolve_split(&spec("val", &["../x"]), "", &t, &mut no_lists);
        assert_eq!(codes(&split), vec!["split_source_missing", "split_empty"]);
        let split = resolve_split(&spec("val", &["/content/x/images"]), "", &t, &mut no_lists);
        assert_eq!(codes(&split), vec!["split_source_missing", "split_empty"]);
        assert!(split.issues[0].message.contains("absolute"));
    }

    #[test]
    fn empty_split_is_reported() {
        let t = tree(&["images/train/a.txt"]);
        let split = resolve_split(&spec("train", &["images/train"]), "", &t, &mut no_lists);
        assert!(split.images.is_empty());
        assert_eq!(codes(&split), vec!["split_empty"]);
    }

    #[test]
    fn single_image_source() {
        let t = tree(&["x/a.jpg", "x/b.jpg"]);
        let split = resolve_split(&spec("test", &["x/b.jpg"]), "", &t, &mut no_lists);
        assert_eq!(split.images, vec!["x/b.jpg"]);
        assert!(split.issues.is_empty());
    }

    #[test]
    fn the_root_as_a_source() {
        let t = tree(&["a.jpg", "b/c.jpg", ".hidden/d.jpg"]);
        let split = resolve_split(&spec("train", &["."]), "", &t, &mut no_lists);
        assert_eq!(split.images, vec!["a.jpg", "b/c.jpg"]);
    }

    #[test]
    fn list_files_resolve_relative_to_their_directory() {
        let t = tree(&["ds/train.txt", "ds/images/a.jpg", "ds/images/b.jpg", "ds/images/c.jpg", "other/z.jpg"]);
        let list = "./images/a.jpg\nimages/b.jpg\n\n  ./images/c.jpg  \r\n./images/a.jpg\n../other/z.jpg\n";
        let mut reads = Vec::new();
        let mut read = |p: &str| {
            reads.push(p.to_owned());
            Some(list.to_owned())
        };
        let split = resolve_split(&spec("train", &["train.txt"]), "ds", &t, &mut read);
        assert_eq!(reads, vec!["ds/train.txt"]);
        assert_eq!(split.images, vec!["ds/images/a.jpg", "ds/images/b.jpg", "ds/images/c.jpg", "other/z.jpg"]);
        assert!(split.issues.is_empty(), "{:?}", split.issues);
    }

    #[test]
    fn list_file_problems_carry_line_numbers() {
        let t = tree(&["l/list.txt", "l/images/a.jpg"]);
        let list = "./images/a.jpg\n./images/missing.jpg\n/abs/images/x.jpg\n../../up.jpg\nreadme.md\n";
        let mut read = |_: &str| Some(list.to_owned());
        let split = resolve_split(&spec("val", &["l/list.txt"]), "", &t, &mut read);
        assert_eq!(split.images, vec!["l/images/a.jpg"]);
        assert_eq!(
            codes(&split),
            vec!["list_entry_missing", "list_entry_absolute", "path_outside_dataset", "list_entry_not_image"]
        );
        let lines: Vec<Option<u32>> = split.issues.iter().map(|i| i.line).collect();
        assert_eq!(lines, vec![Some(2), Some(3), Some(4), Some(5)]);
    }

    #[test]
    fn unreadable_list_file_is_reported() {
        let t = tree(&["train.txt"]);
        let split = resolve_split(&spec("train", &["train.txt"]), "", &t, &mut no_lists);
        assert_eq!(codes(&split), vec!["list_file_unreadable", "split_empty"]);
    }

    #[test]
    fn images_are_deduplicated_in_first_order() {
        let t = tree(&["i/b.jpg", "i/a.jpg", "list.txt"]);
        let mut read = |_: &str| Some("i/b.jpg\n".to_owned());
        let split = resolve_split(&spec("train", &["list.txt", "i", "i/a.jpg"]), "", &t, &mut read);
        assert_eq!(split.images, vec!["i/b.jpg", "i/a.jpg"]);
    }

    #[test]
    fn issues_are_capped_per_split() {
        let t = tree(&["list.txt", "a.jpg"]);
        let list: String = (0..MAX_SPLIT_ISSUES + 5).map(|i| format!("m{i}.jpg\n")).collect();
        let mut read = |_: &str| Some(list.clone());
        let split = resolve_split(&spec("train", &["list.txt", "a.jpg"]), "", &t, &mut read);
        assert_eq!(split.issues.len(), MAX_SPLIT_ISSUES + 1);
        let last = split.issues.last().unwrap();
        assert_eq!(last.code, "issues_truncated");
        assert!(last.message.starts_with("5 more issues"));
    }

    #[test]
    fn find_config_prefers_shallow_data_yaml() {
        let paths = |p: &[&str]| p.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(find_config(&paths(&["data.yaml", "x/data.yaml"])), Some("data.yaml".into()));
        assert_eq!(find_config(&paths(&["ds/data.yaml", "ds/images/a.jpg"])), Some("ds/data.yaml".into()));
        assert_eq!(
            find_config(&paths(&["ds/coco8.yaml", "ds/sub/data.yaml"])),
            Some("ds/sub/data.yaml".into()),
            "a data.yaml anywhere wins over other names"
        );
        assert_eq!(
            find_config(&paths(&["b/z.yaml", "a/y.yml", "c/d/a.yaml"])),
            Some("a/y.yml".into()),
            "shallowest, then by name"
        );
        assert_eq!(find_config(&paths(&["x/DATA.YAML"])), Some("x/DATA.YAML".into()));
        assert_eq!(
            find_config(&paths(&["__MACOSX/ds/data.yaml", "ds/.data.yaml", "ds/d/e/x.yaml"])),
            Some("ds/d/e/x.yaml".into())
        );
        assert_eq!(find_config(&paths(&["b/data.yaml", "a/data.yaml"])), Some("a/data.yaml".into()));
        assert_eq!(find_config(&paths(&["a.txt", "images/a.jpg"])), None);
        assert_eq!(find_config(&[]), None);
        // At one depth `data.yaml` itself wins, whatever sorts before it.
        assert_eq!(find_config(&paths(&["data.yaml", "DATA.YAML", "Data.yml"])), Some("data.yaml".into()));
    }

    #[test]
    fn what_early_planning_may_rely_on_before_the_tree_is_complete() {
        // The base: only a relative `path:` naming a subfolder is awaited.
        assert_eq!(base_awaited(&config(None), "data.yaml"), None);
        assert_eq!(base_awaited(&config(Some("/content/ds")), "data.yaml"), None);
        assert_eq!(base_awaited(&config(Some(".")), "data.yaml"), None);
        assert_eq!(base_awaited(&config(Some("../datasets/coco8")), "data.yaml"), None, "above the root");
        assert_eq!(base_awaited(&config(Some("ds")), "data.yaml"), Some("ds".into()));
        // A split's folder: joined to the base, or without `../` when that climbs above the root.
        assert_eq!(sole_source_dir(&spec("train", &["images/train/"]), ""), Some("images/train".into()));
        assert_eq!(sole_source_dir(&spec("train", &["../train/images"]), ""), Some("train/images".into()));
        assert_eq!(sole_source_dir(&spec("train", &["../x"]), "d"), Some("x".into()));
        assert_eq!(sole_source_dir(&spec("train", &["a", "b"]), ""), None, "several sources");
        assert_eq!(sole_source_dir(&spec("train", &["/abs/train"]), ""), None);
        // The images of a split folder, named relative to it, hidden paths skipped.
        assert_eq!(image_in_dir("images/train", "images/train/sub/a.JPG"), Some("sub/a.JPG"));
        assert_eq!(image_in_dir("images/train", "images/train2/a.jpg"), None);
        assert_eq!(image_in_dir("images/train", "images/train/.cache/a.jpg"), None);
        assert_eq!(image_in_dir("images/train", "images/train/a.txt"), None);
        assert_eq!(image_in_dir("", "a.png"), Some("a.png"));
        // From a label file back to the images it labels, for the extensions seen per folder.
        let extensions = |dir: &str| match dir {
            "images/train" => vec!["jpg".to_owned(), "PNG".to_owned()],
            "labels/train" => vec!["jpg".to_owned()],
            _ => Vec::new(),
        };
        let found = images_for_label("labels/train/a.b.txt", &extensions);
        assert_eq!(found, ["labels/train/a.b.jpg", "images/train/a.b.jpg", "images/train/a.b.PNG"]);
        assert!(found.iter().all(|image| label_path_for(image) == "labels/train/a.b.txt"));
        assert!(images_for_label("labels/train/a.jpg", &extensions).is_empty(), "not a .txt");
    }

    // ---- Real files ----------------------------------------------------------------------

    fn disk_tree(datasets: &std::path::Path, dir: &str) -> MemoryTree {
        fn walk(root: &std::path::Path, dir: &std::path::Path, out: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    walk(root, &path, out);
                } else {
                    let rel = path.strip_prefix(root).unwrap().to_string_lossy();
                    out.push(format!("{}/{}", root.file_name().unwrap().to_string_lossy(), rel));
                }
            }
        }
        let root = datasets.join(dir);
        let mut out = Vec::new();
        walk(&root, &root, &mut out);
        MemoryTree::new(out)
    }

    fn read_config(datasets: &std::path::Path, tree_path: &str) -> DatasetConfig {
        let text = std::fs::read_to_string(datasets.join(tree_path)).unwrap();
        parse_data_yaml(&text).unwrap()
    }

    #[test]
    fn coco8_resolves_like_ultralytics() {
        let Some(datasets) = testkit::real_datasets("coco8_resolves_like_ultralytics") else { return };
        let t = disk_tree(&datasets, "coco8");
        let paths: Vec<String> = t.paths().map(str::to_owned).collect();
        let yaml = find_config(&paths).unwrap();
        assert_eq!(yaml, "coco8/data.yaml");
        let config = read_config(&datasets, &yaml);
        let base = resolve_base(&config, &yaml, &t);
        assert_eq!(base, "coco8");
        let train = resolve_split(&config.splits[0], &base, &t, &mut no_lists);
        assert_eq!(train.images.len(), 4);
        assert!(train.issues.is_empty());
        for image in &train.images {
            assert!(t.is_file(&label_path_for(image)), "{image}");
        }
        let val = resolve_split(&config.splits[1], &base, &t, &mut no_lists);
        assert_eq!(val.images.len(), 4);
        assert_eq!(val.images[0], "coco8/images/val/000000000036.jpg");
    }

    #[test]
    fn roboflow_export_resolves_with_its_original_yaml() {
        let Some(datasets) = testkit::real_datasets("roboflow_export_resolves_with_its_original_yaml") else { return };
        let t = disk_tree(&datasets, "roboflow-blackline");
        let config = read_config(&datasets, "roboflow-blackline/data.yaml.orig");
        let yaml = "roboflow-blackline/data.yaml";
        let base = resolve_base(&config, yaml, &t);
        assert_eq!(base, "roboflow-blackline", "the absolute `path:` is ignored");
        let counts: Vec<usize> = config
            .splits
            .iter()
            .map(|s| {
                let split = resolve_split(s, &base, &t, &mut no_lists);
                assert!(split.issues.is_empty(), "{:?}", split.issues);
                for image in &split.images {
                    assert!(t.is_file(&label_path_for(image)), "{image}");
                }
                split.images.len()
            })
            .collect();
        assert_eq!(counts, vec![21, 3, 2]);
    }
}
