//! Guard rails for the architecture (docs/architecture.md): the modules of
//! `crates/certeasy` import only modules of the layers below their own, and
//! no crate of the workspace has a circle of imports between its modules.
//!
//! The layers are read from the source: the "Layers" paragraph of
//! `crates/certeasy/src/lib.rs`, where they are documented (`→` separates
//! layers, top first; modules in braces share a layer and may not import
//! each other). The imports are read from every `.rs` file under `src/`:
//! `crate::a` paths and `super::` paths that leave the file's top-level
//! module, with comments, strings and `#[cfg(test)] mod tests` blocks
//! skipped. A module that is in no layer fails the test, so a new module
//! must be placed before it can be used.

#![allow(clippy::unwrap_used, missing_docs)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Source text with comments, string and char literals blanked out, and
/// everything from a `#[cfg(test)]` + `mod tests` pair to the end of file
/// removed (unit tests may reach anywhere).
fn code_only(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(i) => &text[..i],
        None => text,
    };
    let b = text.as_bytes();
    let mut out = String::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let rest = &text[i..];
        if rest.starts_with("//") {
            let end = rest.find('\n').map_or(b.len(), |n| i + n);
            i = end;
        } else if rest.starts_with("/*") {
            let end = rest.find("*/").map_or(b.len(), |n| i + n + 2);
            i = end;
        } else if rest.starts_with("r#\"") || rest.starts_with("r\"") {
            let hashes = rest[1..].chars().take_while(|c| *c == '#').count();
            let close = format!("\"{}", "#".repeat(hashes));
            let body = 2 + hashes;
            let end = rest[body..]
                .find(&close)
                .map_or(b.len(), |n| i + body + n + close.len());
            out.push_str("\"\"");
            i = end;
        } else if b[i] == b'"' {
            let mut j = i + 1;
            while j < b.len() && b[j] != b'"' {
                j += if b[j] == b'\\' { 2 } else { 1 };
            }
            out.push_str("\"\"");
            i = j + 1;
        } else if b[i] == b'\'' {
            // A char literal ('x', '\n', '\u{..}') or a lifetime ('a).
            let lit = rest
                .char_indices()
                .skip(1)
                .take(12)
                .find(|(_, c)| *c == '\'')
                .filter(|(n, _)| *n == 2 || rest[1..].starts_with('\\'));
            match lit {
                Some((n, _)) => {
                    out.push_str("' '");
                    i += n + 1;
                }
                None => {
                    out.push('\'');
                    i += 1;
                }
            }
        } else {
            let c = rest.chars().next().unwrap_or(' ');
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

fn ident_at(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// The first identifiers of the paths that follow a `prefix::` at the start
/// of `s`: `a` for `a::b`, and `a`, `b` for `{a::x, b}`.
fn heads(s: &str) -> Vec<String> {
    let s = s.trim_start();
    if let Some(group) = s.strip_prefix('{') {
        let mut out = Vec::new();
        let mut depth = 0usize;
        let mut start = 0;
        for (n, c) in group.char_indices() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => {
                    out.push(ident_at(group[start..n].trim()).to_string());
                    break;
                }
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    out.push(ident_at(group[start..n].trim()).to_string());
                    start = n + 1;
                }
                _ => {}
            }
        }
        out.retain(|h| !h.is_empty());
        out
    } else {
        vec![ident_at(s).to_string()]
    }
}

/// The module path of a source file: `ra/orders.rs` → [ra, orders],
/// `ra/mod.rs` → [ra], `lib.rs` → [].
fn module_path(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).unwrap();
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().unwrap();
    let stem = last.trim_end_matches(".rs");
    if stem != "mod" && stem != "lib" && stem != "main" {
        parts.push(stem.to_string());
    }
    parts
}

/// The top-level modules that `code` (of the module at `path`) refers to,
/// other than its own.
fn references(code: &str, path: &[String]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let bytes = code.as_bytes();
    let boundary = |at: usize| {
        at == 0
            || !(bytes[at - 1].is_ascii_alphanumeric()
                || bytes[at - 1] == b'_'
                || bytes[at - 1] == b':')
    };
    for (at, _) in code.match_indices("crate::") {
        if boundary(at) {
            out.extend(heads(&code[at + "crate::".len()..]));
        }
    }
    for (at, _) in code.match_indices("super::") {
        if !boundary(at) {
            continue;
        }
        let mut ups = 0;
        let mut rest = &code[at..];
        while let Some(r) = rest.strip_prefix("super::") {
            ups += 1;
            rest = r;
        }
        // super from [a, b] reaches [a]; from [a], the crate root.
        if ups >= path.len() {
            out.extend(heads(rest));
        }
    }
    if let Some(own) = path.first() {
        out.remove(own);
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// Top-level module → the top-level modules it imports, for one crate's
/// `src/` (binaries under `src/bin` are separate crates and left out, and
/// so are the files of `#[cfg(test)]` modules).
fn import_graph(src: &Path) -> BTreeMap<String, BTreeMap<String, Vec<String>>> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut modules = BTreeSet::new();
    for f in &files {
        if let Some(top) = module_path(src, f).first() {
            modules.insert(top.clone());
        }
    }
    // Files of unit-test modules (`#[cfg(test)] mod tests;`) are tests.
    let mut test_modules = BTreeSet::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        for (at, _) in text.match_indices("#[cfg(test)]") {
            let rest = text[at + "#[cfg(test)]".len()..].trim_start();
            let rest = rest.strip_prefix("pub ").unwrap_or(rest);
            if let Some(decl) = rest.strip_prefix("mod ") {
                let name = ident_at(decl);
                if decl[name.len()..].starts_with(';') {
                    let mut path = module_path(src, f);
                    path.push(name.to_string());
                    test_modules.insert(path);
                }
            }
        }
    }
    let mut graph: BTreeMap<String, BTreeMap<String, Vec<String>>> = BTreeMap::new();
    for f in files {
        let path = module_path(src, &f);
        let Some(top) = path.first().cloned() else {
            continue;
        };
        if top == "bin" || test_modules.contains(&path) {
            continue;
        }
        let code = code_only(&std::fs::read_to_string(&f).unwrap());
        let entry = graph.entry(top).or_default();
        for target in references(&code, &path) {
            if modules.contains(&target) && target != "bin" {
                let shown = f.strip_prefix(src).unwrap().display().to_string();
                entry.entry(target).or_default().push(shown);
            }
        }
    }
    graph
}

/// A circle in `graph`, if there is one.
fn find_cycle(graph: &BTreeMap<String, BTreeMap<String, Vec<String>>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeMap<String, Vec<String>>>,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(node.to_string(), 1);
        stack.push(node.to_string());
        for next in graph.get(node).into_iter().flat_map(|m| m.keys()) {
            match state.get(next.as_str()) {
                Some(1) => {
                    let from = stack.iter().position(|n| n == next).unwrap_or(0);
                    let mut circle = stack[from..].to_vec();
                    circle.push(next.clone());
                    return Some(circle);
                }
                Some(_) => {}
                None => {
                    if let Some(c) = visit(next, graph, state, stack) {
                        return Some(c);
                    }
                }
            }
        }
        stack.pop();
        state.insert(node.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for node in graph.keys() {
        if !state.contains_key(node.as_str()) {
            if let Some(c) = visit(node, graph, &mut state, &mut Vec::new()) {
                return Some(c);
            }
        }
    }
    None
}

/// The layers documented in lib.rs, top first.
fn documented_layers(lib_rs: &str) -> Vec<Vec<String>> {
    let doc: String = lib_rs
        .lines()
        .filter_map(|l| l.strip_prefix("//!"))
        .map(|l| l.trim())
        .collect::<Vec<_>>()
        .join(" ");
    let start = doc
        .find("Layers")
        .expect("lib.rs documents the layers in a paragraph starting with \"Layers\"");
    let para = &doc[start..];
    let para = &para[..para.find("See ").unwrap_or(para.len())];
    para.split('→')
        .map(|layer| {
            layer
                .split("[`")
                .skip(1)
                .filter_map(|s| s.split_once("`]").map(|(name, _)| name.to_string()))
                .collect::<Vec<_>>()
        })
        .filter(|l| !l.is_empty())
        .collect()
}

fn certeasy_src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn every_module_imports_only_the_layers_below_its_own() {
    let src = certeasy_src();
    let layers = documented_layers(&std::fs::read_to_string(src.join("lib.rs")).unwrap());
    let rank: BTreeMap<&str, usize> = layers
        .iter()
        .enumerate()
        .flat_map(|(n, l)| l.iter().map(move |m| (m.as_str(), n)))
        .collect();
    assert!(
        layers.len() >= 8,
        "too few layers read from lib.rs: {layers:?}"
    );
    let graph = import_graph(&src);
    let mut problems = Vec::new();
    for (module, imports) in &graph {
        let Some(&mine) = rank.get(module.as_str()) else {
            problems.push(format!(
                "module {module} is in no layer: place it in the \"Layers\" paragraph of lib.rs"
            ));
            continue;
        };
        for (target, files) in imports {
            let theirs = rank.get(target.as_str()).copied().unwrap_or(usize::MAX);
            if theirs <= mine {
                problems.push(format!(
                    "{module} imports {target} (in {}), which is not in a layer below {module}'s",
                    files.join(", ")
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn no_crate_of_the_workspace_has_a_circle_of_module_imports() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut checked = 0;
    for entry in std::fs::read_dir(&crates).unwrap() {
        let src = entry.unwrap().path().join("src");
        if !src.is_dir() {
            continue;
        }
        checked += 1;
        if let Some(circle) = find_cycle(&import_graph(&src)) {
            panic!(
                "{}: modules import each other in a circle: {}",
                src.display(),
                circle.join(" → ")
            );
        }
    }
    assert!(
        checked >= 6,
        "only {checked} crates found under {}",
        crates.display()
    );
}

#[test]
fn the_reader_sees_grouped_super_and_commented_imports_right() {
    let path = ["ra".to_string(), "orders".to_string()];
    let code = code_only(
        "use crate::{ca::X, store::{a, b}};\n// use crate::wfe;\nlet s = \"crate::server\";\nuse super::super::jobs::Y;\nuse super::Ra;\n#[cfg(test)]\nmod tests { use crate::cli; }\n",
    );
    let refs: Vec<_> = references(&code, &path).into_iter().collect();
    assert_eq!(refs, ["ca", "jobs", "store"]);
    let top = ["ra".to_string()];
    let refs: Vec<_> = references(&code_only("use super::policy::C;"), &top)
        .into_iter()
        .collect();
    assert_eq!(refs, ["policy"]);
}

#[test]
fn a_circle_is_found_and_named() {
    let mut g: BTreeMap<String, BTreeMap<String, Vec<String>>> = BTreeMap::new();
    g.entry("a".into()).or_default().insert("b".into(), vec![]);
    g.entry("b".into()).or_default().insert("c".into(), vec![]);
    assert_eq!(find_cycle(&g), None);
    g.entry("c".into()).or_default().insert("a".into(), vec![]);
    assert_eq!(find_cycle(&g).unwrap(), ["a", "b", "c", "a"]);
}
