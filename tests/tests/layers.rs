//! The architecture, checked: the crates' dependency graph is the layer picture of
//! `shared/README.md`, no two files of a crate import each other in a loop, and no code outside
//! `yds-store` reaches a MongoDB collection.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The layers, bottom up: a crate may depend only on crates of lower layers.
const LAYERS: [&[&str]; 4] = [
    &["yds-format", "yds-config"],
    &["yds-store", "yds-storage", "yds-queue"],
    &["yds-import", "yds-edge"],
    &["import-trigger", "uploads", "lifecycle", "process-chunk", "list", "status", "images", "web"],
];

/// The library crates and the functions, by folder.
const CRATES: &[(&str, &str)] = &[
    ("yds-format", "shared/format"),
    ("yds-config", "shared/config"),
    ("yds-store", "shared/store"),
    ("yds-storage", "shared/storage"),
    ("yds-queue", "shared/queue"),
    ("yds-import", "shared/import"),
    ("yds-edge", "shared/edge"),
    ("import-trigger", "functions/import-trigger"),
    ("uploads", "functions/uploads"),
    ("lifecycle", "functions/lifecycle"),
    ("process-chunk", "functions/process-chunk"),
    ("list", "functions/list"),
    ("status", "functions/status"),
    ("images", "functions/images"),
    ("web", "functions/web"),
];

fn layer_of(name: &str) -> usize {
    LAYERS.iter().position(|layer| layer.contains(&name)).unwrap_or_else(|| panic!("{name} is in no layer"))
}

/// The workspace crates a manifest's `[dependencies]` (not its dev-dependencies) name.
fn our_dependencies(manifest: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(manifest).unwrap();
    let mut in_dependencies = false;
    let mut found = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_dependencies = line == "[dependencies]";
            continue;
        }
        let name = line.split(['.', ' ', '=']).next().unwrap_or("");
        if in_dependencies && CRATES.iter().any(|(crate_name, _)| *crate_name == name) {
            found.push(name.to_owned());
        }
    }
    found
}

#[test]
fn every_crate_depends_only_on_lower_layers_and_every_function_on_the_edge() {
    let mut seen = 0;
    for &(name, folder) in CRATES {
        let dependencies = our_dependencies(&repo().join(folder).join("Cargo.toml"));
        for dependency in &dependencies {
            assert!(layer_of(dependency) < layer_of(name), "{name} depends on {dependency}, which is not below it");
            seen += 1;
        }
        if layer_of(name) == 3 {
            assert!(dependencies.iter().any(|d| d == "yds-edge"), "{name} does not serve through yds-edge");
        }
    }
    assert!(seen >= 20, "the manifests were read: {seen} edges");
    // The web app has no database: it serves what its build compiled in.
    let web = std::fs::read_to_string(repo().join("functions/web/Cargo.toml")).unwrap();
    let dependencies = web.split("[dev-dependencies]").next().unwrap();
    for database in ["yds-store", "mongodb"] {
        assert!(!dependencies.contains(database), "web depends on {database}");
    }
    // The pure bottom: no runtime, no database, no network.
    let format = std::fs::read_to_string(repo().join("shared/format/Cargo.toml")).unwrap();
    let dependencies = format.split("[dev-dependencies]").next().unwrap();
    for impure in ["tokio", "mongodb", "reqwest", "hyper"] {
        assert!(!dependencies.contains(impure), "yds-format depends on {impure}");
    }
}

/// A crate's source files by module path. The root (the empty path) is `lib.rs`, or `main.rs`
/// for a binary alone; beside a library, `main.rs` is a crate of its own, left out.
fn modules(src: &Path) -> BTreeMap<Vec<String>, PathBuf> {
    let mut found = BTreeMap::new();
    let has_lib = src.join("lib.rs").is_file();
    for file in files(src).into_iter().filter(|f| !(has_lib && f.ends_with("main.rs"))) {
        let relative = file.strip_prefix(src).unwrap().with_extension("");
        let mut path: Vec<String> = relative.iter().map(|part| part.to_string_lossy().into_owned()).collect();
        if matches!(path.last().map(String::as_str), Some("lib" | "mod" | "main")) {
            path.pop();
        }
        found.insert(path, file);
    }
    found
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out
}

/// The module paths a file's code names through `crate::` and `super::` (its tests left out:
/// they sit in a `mod tests` at the end, where `super` means the file itself).
fn named_paths(text: &str, module: &[String]) -> Vec<Vec<String>> {
    let code = text.split("#[cfg(test)]\nmod tests").next().unwrap();
    let code: String = code.lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n");
    let mut found = Vec::new();
    for (start, _) in code.match_indices("crate::").chain(code.match_indices("super::")) {
        let before = code[..start].chars().last();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        let (root, rest) = code[start..].split_once("::").unwrap();
        let mut base: Vec<String> = if root == "crate" {
            Vec::new()
        } else {
            // `super` of `a/b.rs` (module `a::b`) is `a`; of `a/mod.rs` (module `a`), the root.
            module[..module.len().saturating_sub(1)].to_vec()
        };
        let mut tail = rest;
        // `crate::{a, b::c}`: each name of the group.
        if let Some(group) = tail.strip_prefix('{') {
            let group = group.split('}').next().unwrap_or("");
            for name in group.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                let mut path = base.clone();
                path.extend(name.split("::").map(|s| s.trim().to_owned()));
                found.push(path);
            }
            continue;
        }
        loop {
            let end = tail.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(tail.len());
            if end == 0 {
                break;
            }
            base.push(tail[..end].to_owned());
            match tail[end..].strip_prefix("::") {
                Some(next) => tail = next,
                None => break,
            }
        }
        found.push(base);
    }
    found
}

/// The file that defines what `path` names: its longest prefix that is a module.
fn file_of<'a>(path: &[String], modules: &'a BTreeMap<Vec<String>, PathBuf>) -> &'a PathBuf {
    (0..=path.len()).rev().find_map(|n| modules.get(&path[..n])).expect("the crate root is a module")
}

/// Strongly connected groups of more than one file (Tarjan's algorithm).
fn loops(edges: &BTreeMap<PathBuf, BTreeSet<PathBuf>>) -> Vec<Vec<PathBuf>> {
    struct State<'a> {
        edges: &'a BTreeMap<PathBuf, BTreeSet<PathBuf>>,
        index: BTreeMap<&'a PathBuf, usize>,
        low: BTreeMap<&'a PathBuf, usize>,
        stack: Vec<&'a PathBuf>,
        found: Vec<Vec<PathBuf>>,
    }
    fn visit<'a>(node: &'a PathBuf, state: &mut State<'a>) {
        let n = state.index.len();
        state.index.insert(node, n);
        state.low.insert(node, n);
        state.stack.push(node);
        for next in state.edges.get(node).into_iter().flatten() {
            if !state.index.contains_key(next) {
                visit(next, state);
                let low = state.low[node].min(state.low[next]);
                state.low.insert(node, low);
            } else if state.stack.contains(&next) {
                let low = state.low[node].min(state.index[next]);
                state.low.insert(node, low);
            }
        }
        if state.low[node] == state.index[node] {
            let mut group = Vec::new();
            while let Some(member) = state.stack.pop() {
                group.push(member.clone());
                if member == node {
                    break;
                }
            }
            if group.len() > 1 {
                state.found.push(group);
            }
        }
    }
    let mut state = State { edges, index: BTreeMap::new(), low: BTreeMap::new(), stack: Vec::new(), found: Vec::new() };
    for node in edges.keys() {
        if !state.index.contains_key(node) {
            visit(node, &mut state);
        }
    }
    state.found
}

/// The workspace's other crates, whose files must not loop either.
const TOOLS: [(&str, &str); 4] =
    [("yds-local-stack", "local-stack"), ("yds-testkit", "testkit"), ("xtask", "xtask"), ("yds-cli", "cli")];

/// `yds` is installed on users' machines (`cargo install --path cli`): it speaks the public API
/// only and links no crate of the service.
#[test]
fn the_command_line_client_uses_no_crate_of_the_service() {
    let manifest = std::fs::read_to_string(repo().join("cli/Cargo.toml")).unwrap();
    let dependencies = manifest.split("[dev-dependencies]").next().unwrap();
    assert!(dependencies.contains("reqwest"), "the manifest was read");
    for line in dependencies.lines().map(str::trim) {
        let name = line.split(['.', ' ', '=']).next().unwrap_or("");
        let ours = CRATES.iter().chain(&TOOLS).any(|(crate_name, _)| *crate_name == name);
        assert!(!ours && !name.starts_with("yds-"), "yds-cli depends on {name}");
    }
}

#[test]
fn no_two_files_of_a_crate_import_each_other_in_a_loop() {
    let mut edges_seen = 0;
    for (name, folder) in CRATES.iter().chain(&TOOLS) {
        let src = repo().join(folder).join("src");
        let modules = modules(&src);
        let mut edges: BTreeMap<PathBuf, BTreeSet<PathBuf>> = BTreeMap::new();
        for (module, file) in &modules {
            let text = std::fs::read_to_string(file).unwrap();
            let targets = edges.entry(file.clone()).or_default();
            for path in named_paths(&text, module) {
                let target = file_of(&path, &modules);
                if target != file {
                    targets.insert(target.clone());
                    edges_seen += 1;
                }
            }
        }
        let found = loops(&edges);
        assert!(found.is_empty(), "{name}: files importing each other in a loop: {found:#?}");
    }
    assert!(edges_seen > 100, "imports were found: {edges_seen}");
}

#[test]
fn the_loop_finder_finds_a_loop() {
    let (a, b, c) = (PathBuf::from("a.rs"), PathBuf::from("b.rs"), PathBuf::from("c.rs"));
    let mut edges = BTreeMap::new();
    edges.insert(a.clone(), BTreeSet::from([b.clone()]));
    edges.insert(b.clone(), BTreeSet::from([c.clone()]));
    edges.insert(c.clone(), BTreeSet::from([a.clone()]));
    assert_eq!(loops(&edges).len(), 1);
    edges.insert(c.clone(), BTreeSet::new());
    assert!(loops(&edges).is_empty());
    let module = vec!["planning".to_owned(), "early".to_owned()];
    let named = named_paths("use super::cutter::{ChunkWriter};\nuse crate::{coordinator, tasks::TaskBody};", &module);
    assert_eq!(
        named,
        [
            vec!["coordinator".to_owned()],
            vec!["tasks".to_owned(), "TaskBody".to_owned()],
            vec!["planning".to_owned(), "cutter".to_owned()],
        ]
    );
}

#[test]
fn only_the_store_reaches_mongodb_collections() {
    let mut checked = 0;
    for &(name, folder) in CRATES {
        if name == "yds-store" {
            continue;
        }
        for file in files(&repo().join(folder).join("src")) {
            let text = std::fs::read_to_string(&file).unwrap();
            for needle in ["Collection<", ".collection(", "mongodb::"] {
                assert!(!text.contains(needle), "{} names `{needle}`: only yds-store reaches MongoDB", file.display());
            }
            checked += 1;
        }
    }
    assert!(checked > 40, "{checked} files checked");
}
