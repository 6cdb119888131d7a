//! The asset bundle's pure part, shared by `build.rs` and the crate's tests: which files are
//! pages and which are content-addressed assets, where one file names another, and the order in
//! which their hashes can be computed.
//!
//! A reference is rewritten by replacing the last path segment of what the file wrote (`app.js`
//! in `/ui/assets/app.js`, `x.js` in `./x.js`) with the target's hashed file name, so a file's
//! hash can only be known once the hashes of everything it names are: files are hashed in
//! dependency order, and a cycle (which no content hash can cover) is refused.
//!
//! References found:
//! - anywhere in a text file (HTML, JS, CSS, SVG, JSON): `/ui/assets/NAME`;
//! - in JS: the relative specifier (`./x.js`, `../x.js`) of `import … from`, `export … from`,
//!   `import "…"` and `import("…")`, outside comments;
//! - in CSS: a relative `url(x.svg)`.
//!
//! No I/O here, no dependency beyond std: the build script reads and writes the files.

use std::collections::{BTreeMap, BTreeSet};

/// Where assets are served; what pages and modules write before an asset's name.
pub const ASSETS_URL: &str = "/ui/assets/";

/// The pages: served at fixed URLs (`/ui/…` and `/docs`), never hashed.
pub const PAGES: [&str; 2] = ["index.html", "docs.html"];

/// Hex digits of SHA-256 in a hashed name.
pub const HASH_LEN: usize = 10;

/// How a file is served, by its extension: its `Content-Type` and whether gzip shrinks it.
pub fn file_type(path: &str) -> (&'static str, bool) {
    match extension(path) {
        "js" | "mjs" => ("text/javascript; charset=utf-8", true),
        "css" => ("text/css; charset=utf-8", true),
        "html" => ("text/html; charset=utf-8", true),
        "svg" => ("image/svg+xml", true),
        "json" | "map" => ("application/json", true),
        "webmanifest" => ("application/manifest+json", true),
        "txt" => ("text/plain; charset=utf-8", true),
        "ico" => ("image/x-icon", true),
        "png" => ("image/png", false),
        "jpg" | "jpeg" => ("image/jpeg", false),
        "webp" => ("image/webp", false),
        "woff2" => ("font/woff2", false),
        _ => ("application/octet-stream", false),
    }
}

fn extension(path: &str) -> &str {
    let name = path.rsplit('/').next().unwrap_or(path);
    name.rsplit_once('.').map_or("", |(_, ext)| ext)
}

/// Whether references are looked for in a file: text, not images or fonts.
fn is_text(path: &str) -> bool {
    matches!(extension(path), "html" | "js" | "mjs" | "css" | "svg" | "json" | "webmanifest" | "txt" | "map")
}

/// `dir/app.js` with hash `0123456789` → `dir/app.0123456789.js` (the hash before the last
/// extension, so the extension still tells the type).
pub fn hashed_name(path: &str, hash: &str) -> String {
    let (dir, name) = match path.rsplit_once('/') {
        Some((dir, name)) => (format!("{dir}/"), name),
        None => (String::new(), path),
    };
    match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => format!("{dir}{stem}.{hash}.{ext}"),
        _ => format!("{dir}{name}.{hash}"),
    }
}

/// A file's names must be usable in a URL and a Rust string as they are.
pub fn check_name(path: &str) -> Result<(), String> {
    let fine = !path.is_empty()
        && path.split('/').all(|segment| !segment.is_empty() && segment != "." && segment != "..")
        && path.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/'));
    if fine {
        Ok(())
    } else {
        Err(format!("assets/{path}: an asset's path may hold only ASCII letters, digits, `.`, `_`, `-` and `/`"))
    }
}

/// One place where a file names another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// Byte range of the named file's last path segment in the referring text.
    pub start: usize,
    pub end: usize,
    /// The named file, as a path under `assets/`.
    pub target: String,
}

/// Every reference `text` (the file `path`) makes; `exists` says which paths are files of the
/// bundle. A reference to a missing file, or to a page, is an error naming both files.
pub fn references(path: &str, text: &str, exists: &dyn Fn(&str) -> bool) -> Result<Vec<Reference>, String> {
    if !is_text(path) {
        return Ok(Vec::new());
    }
    let mut found = Vec::new();
    let mut start_at = 0;
    while let Some(offset) = text[start_at..].find(ASSETS_URL) {
        let name_start = start_at + offset + ASSETS_URL.len();
        let name_end = text[name_start..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/')))
            .map_or(text.len(), |n| name_start + n);
        start_at = name_end;
        let target = &text[name_start..name_end];
        if target.is_empty() || target.ends_with('/') {
            continue; // a prefix the code completes at run time (`"/ui/assets/" + name`)
        }
        let url_start = name_start - ASSETS_URL.len();
        found.push(reference(path, &text[..name_end], url_start, target, exists)?);
    }
    let relative: Vec<(usize, usize)> = match extension(path) {
        // Bare specifiers (`"lit"`) are not files of ours; absolute ones were found above.
        "js" | "mjs" => module_specifiers(text)
            .into_iter()
            .filter(|&(start, end)| text[start..end].starts_with("./") || text[start..end].starts_with("../"))
            .collect(),
        // Not `/…` (found above), `#fragment`, `data:` or any other scheme.
        "css" => css_urls(text)
            .into_iter()
            .filter(|&(start, end)| {
                let value = &text[start..end];
                !value.is_empty()
                    && !value.starts_with('/')
                    && !value.starts_with('#')
                    && !value.split('/').next().unwrap_or("").contains(':')
            })
            .collect(),
        _ => Vec::new(),
    };
    for (start, end) in relative {
        let written = &text[start..end];
        let target = resolve(path, written)?;
        found.push(reference(path, &text[..end], start, &target, exists)?);
    }
    found.sort_by_key(|r| r.start);
    Ok(found)
}

/// The reference written as `written[start..]` (`/ui/assets/x.js`, `./x.js`), naming `target`.
fn reference(
    path: &str,
    written: &str,
    start: usize,
    target: &str,
    exists: &dyn Fn(&str) -> bool,
) -> Result<Reference, String> {
    if PAGES.contains(&target) {
        return Err(format!("assets/{path} names {target}, a page: pages are served at fixed URLs, not as assets"));
    }
    if !exists(target) {
        return Err(format!(
            "assets/{path} names `{}`, which is not a file of assets/ (looked for assets/{target})",
            &written[start..]
        ));
    }
    let segment = written.rfind('/').map_or(start, |slash| (slash + 1).max(start));
    Ok(Reference { start: segment, end: written.len(), target: target.to_owned() })
}

/// `specifier` (`./x.js`, `../a/b.js`) relative to the directory of `from`, as a path under
/// `assets/`.
pub fn resolve(from: &str, specifier: &str) -> Result<String, String> {
    let mut parts: Vec<&str> = from.split('/').collect();
    parts.pop(); // the file itself
    for segment in specifier.split('/') {
        match segment {
            "." | "" => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(format!("assets/{from} names `{specifier}`, which is outside assets/"));
                }
            }
            other => parts.push(other),
        }
    }
    Ok(parts.join("/"))
}

/// Byte ranges (inside the quotes) of the module specifiers of a JS module: the string after
/// `from` or `import`, or the first argument of `import(`. Comments, and strings that follow
/// anything else, are skipped.
pub fn module_specifiers(js: &str) -> Vec<(usize, usize)> {
    let bytes = js.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                i = js[i..].find('\n').map_or(bytes.len(), |n| i + n);
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i = js[i + 2..].find("*/").map_or(bytes.len(), |n| i + 2 + n + 2);
            }
            quote @ (b'"' | b'\'' | b'`') => {
                let (end, terminated) = string_end(bytes, i, quote);
                if terminated && quote != b'`' && follows_module_keyword(&js[..i]) {
                    found.push((i + 1, end - 1));
                }
                i = end;
            }
            _ => i += 1,
        }
    }
    found
}

/// The index just past the literal opened by `quote` at `open`, and whether it was closed (an
/// unterminated one, or a regular expression taken for a string, ends at its line's end).
fn string_end(bytes: &[u8], open: usize, quote: u8) -> (usize, bool) {
    let mut i = open + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'\n' if quote != b'`' => return (i, false),
            c if c == quote => return (i + 1, true),
            _ => i += 1,
        }
    }
    (bytes.len(), false)
}

/// Whether the code before a string literal makes it a module specifier.
fn follows_module_keyword(before: &str) -> bool {
    let before = before.trim_end();
    let ends_with_word = |text: &str, word: &str| {
        text.strip_suffix(word).is_some_and(|rest| {
            !rest.ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_' || c == '$' || c == '.')
        })
    };
    if ends_with_word(before, "from") || ends_with_word(before, "import") {
        return true;
    }
    before.strip_suffix('(').is_some_and(|rest| ends_with_word(rest.trim_end(), "import"))
}

/// Byte ranges of the values of CSS `url(…)`s, quoted or not.
fn css_urls(css: &str) -> Vec<(usize, usize)> {
    let mut found = Vec::new();
    let mut start_at = 0;
    while let Some(offset) = css[start_at..].find("url(") {
        let mut start = start_at + offset + 4;
        let rest = &css[start..];
        let close = match rest.chars().next() {
            Some(quote @ ('"' | '\'')) => {
                start += 1;
                quote
            }
            _ => ')',
        };
        let end = css[start..].find(close).map_or(css.len(), |n| start + n);
        let value = css[start..end].trim();
        let lead = css[start..end].len() - css[start..end].trim_start().len();
        found.push((start + lead, start + lead + value.len()));
        start_at = end;
    }
    found
}

/// The files in an order where everything a file names comes before it; a cycle is an error
/// naming its files.
pub fn dependency_order(edges: &BTreeMap<String, BTreeSet<String>>) -> Result<Vec<String>, String> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Visiting,
        Done,
    }
    fn visit(
        node: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        marks: &mut BTreeMap<String, Mark>,
        path: &mut Vec<String>,
        order: &mut Vec<String>,
    ) -> Result<(), String> {
        match marks.get(node) {
            Some(Mark::Done) => return Ok(()),
            Some(Mark::Visiting) => {
                let from = path.iter().position(|n| n == node).unwrap_or(0);
                let mut cycle: Vec<&str> = path[from..].iter().map(String::as_str).collect();
                cycle.push(node);
                return Err(format!(
                    "the assets name each other in a cycle: {}. A content hash cannot cover itself: \
                     break the cycle (move what both need into a module of its own)",
                    cycle.join(" → ")
                ));
            }
            None => {}
        }
        marks.insert(node.to_owned(), Mark::Visiting);
        path.push(node.to_owned());
        for next in edges.get(node).into_iter().flatten() {
            visit(next, edges, marks, path, order)?;
        }
        path.pop();
        marks.insert(node.to_owned(), Mark::Done);
        order.push(node.to_owned());
        Ok(())
    }
    let mut marks = BTreeMap::new();
    let mut order = Vec::new();
    for node in edges.keys() {
        visit(node, edges, &mut marks, &mut Vec::new(), &mut order)?;
    }
    Ok(order)
}

/// `text` with each reference's last segment replaced by `new_name(target)`.
pub fn rewrite(text: &str, references: &[Reference], new_name: &dyn Fn(&str) -> String) -> String {
    let mut out = String::with_capacity(text.len() + references.len() * (HASH_LEN + 1));
    let mut at = 0;
    for reference in references {
        out.push_str(&text[at..reference.start]);
        let hashed = new_name(&reference.target);
        out.push_str(hashed.rsplit('/').next().unwrap_or(&hashed));
        at = reference.end;
    }
    out.push_str(&text[at..]);
    out
}
