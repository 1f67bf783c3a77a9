//! The layers of docs/ARCHITECTURE.md hold: each module of the library imports only modules of
//! the layers below its own, never one beside it or above it. The order is written once, in
//! that document's `layers` block; this test reads it and every file under src/.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

mod common;

/// Module name -> its layer (0 at the bottom), from the document's `layers` block.
fn layers(doc: &str) -> BTreeMap<String, usize> {
    let block = doc
        .split("```layers\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("docs/ARCHITECTURE.md has no ```layers block");
    // Written top first, as a reader looks at a stack of layers.
    let rows: Vec<&str> = block.lines().filter(|l| !l.trim().is_empty()).collect();
    let mut out = BTreeMap::new();
    for (i, row) in rows.iter().rev().enumerate() {
        for module in row.split_whitespace() {
            assert!(
                out.insert(module.to_string(), i).is_none(),
                "{module} is in two layers"
            );
        }
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level modules a file names through `crate::` (comments left out).
fn imports(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or_default();
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            if let Some(group) = rest.strip_prefix('{') {
                let inner = group.split('}').next().unwrap_or_default();
                for item in inner.split(',') {
                    let name: String = item
                        .trim()
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    if !name.is_empty() {
                        out.push(name);
                    }
                }
            } else {
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                out.push(name);
            }
        }
    }
    out
}

#[test]
fn every_module_imports_only_the_layers_below_it() {
    let root = common::repo_root();
    let doc = std::fs::read_to_string(root.join("docs/ARCHITECTURE.md")).unwrap();
    let layer = layers(&doc);
    let lib = std::fs::read_to_string(root.join("src/lib.rs")).unwrap();
    let modules: Vec<String> = lib
        .lines()
        .filter_map(|l| l.strip_prefix("pub mod "))
        .map(|m| m.trim_end_matches(';').to_string())
        .collect();
    for m in &modules {
        assert!(
            layer.contains_key(m),
            "src/lib.rs has module {m}, which no layer of docs/ARCHITECTURE.md names"
        );
    }
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    let mut wrong = Vec::new();
    for file in files {
        let rel = file.strip_prefix(root.join("src")).unwrap();
        let first = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        let module = first.trim_end_matches(".rs").to_string();
        // The binary's own files (main.rs and what it declares) sit above every layer.
        let Some(&own) = layer.get(&module) else {
            continue;
        };
        let text = std::fs::read_to_string(&file).unwrap();
        for used in imports(&text) {
            if used == module {
                continue;
            }
            match layer.get(&used) {
                Some(&l) if l < own => {}
                Some(&l) => wrong.push(format!(
                    "{} ({module}, layer {own}) imports {used} (layer {l})",
                    rel.display()
                )),
                None => wrong.push(format!(
                    "{} imports crate::{used}, which no layer names",
                    rel.display()
                )),
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports against the layers:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_import_reader_sees_grouped_and_plain_imports_and_skips_comments() {
    let text = "use crate::{docker, stack::Stack};\nuse crate::run::Event; // crate::tui\n/// crate::report\nlet x = crate::units::human_bytes(1);";
    assert_eq!(imports(text), ["docker", "stack", "run", "units"]);
}
