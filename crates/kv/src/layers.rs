//! The crate's layering, checked: a module may only use modules of a lower
//! layer (see the diagram in the crate docs).
//!
//! The test reads every source file under `src/` and looks at each
//! `crate::<module>` path outside comments. A path into a higher or equal
//! layer (other than the file's own module) fails the test, and so does a
//! new top-level module that has no layer yet, or a `super::super` path
//! that could climb around the check. It is a text check on purpose:
//! simple, fast, and it fails the moment someone re-adds a cycle.

use std::path::{Path, PathBuf};

/// Top-level modules by layer, lowest first (the index is the rank).
const LAYERS: [&[&str]; 14] = [
    &[
        "protocol",
        "value",
        "pattern",
        "config",
        "long_double",
        "rdb",
    ],
    // Pure cluster decisions: leaves only, so the server can use them and
    // they never reach into the server, engines or connections.
    &["cluster"],
    &["engine"],
    &["keyspace"],
    &["metrics"],
    &["pubsub", "clients"],
    &["state"],
    &["command"],
    &["replication"],
    &["connection"],
    &["server"],
    &["embedded"],
    // Cluster mode: the cluster's decisions plus I/O (uses leaves and
    // `cluster` only; nothing uses it but the crate root).
    &["node"],
    // Sentinel: its own server; uses the leaves and the command helpers.
    &["sentinel"],
];

fn rank(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src is readable") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The `crate::<name>` paths in one line of code.
fn crate_paths(line: &str) -> impl Iterator<Item = &str> {
    line.match_indices("crate::").filter_map(|(at, _)| {
        let before = line[..at].chars().next_back();
        // `$crate::` or `other_crate::` are not ours.
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
            return None;
        }
        let rest = &line[at + "crate::".len()..];
        let end = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        Some(&rest[..end])
    })
}

/// Every layering violation in the files of `src`, as readable lines.
fn violations(src: &Path) -> Vec<String> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut found = Vec::new();
    for file in files {
        let relative = file.strip_prefix(src).expect("under src");
        let first = relative.components().next().expect("non-empty");
        let module = first.as_os_str().to_str().expect("utf-8 name");
        let module = module.strip_suffix(".rs").unwrap_or(module);
        if module == "lib" || module == "layers" {
            continue; // the root may use everything; this file names modules
        }
        let Some(own) = rank(module) else {
            found.push(format!("module `{module}` has no layer: add it to LAYERS"));
            continue;
        };
        let text = std::fs::read_to_string(&file).expect("readable source");
        for (number, line) in text.lines().enumerate() {
            let code = line.trim_start();
            if code.starts_with("//") {
                continue; // docs may link upwards
            }
            let at = format!("{}:{}", relative.display(), number + 1);
            if code.contains("super::super") {
                found.push(format!("{at}: `super::super` (use a `crate::` path)"));
            }
            for target in crate_paths(code) {
                if target == module {
                    continue;
                }
                match rank(target) {
                    Some(theirs) if theirs < own => {}
                    Some(_) => found.push(format!(
                        "{at}: `{module}` uses `crate::{target}`, which is not below it"
                    )),
                    None => found.push(format!("{at}: `crate::{target}` is not a layered module")),
                }
            }
        }
    }
    found
}

#[test]
fn modules_only_use_lower_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let found = violations(&src);
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    assert!(
        files.len() > 20,
        "found the sources under {}",
        src.display()
    );
    assert!(found.is_empty(), "import cycle risk:\n{}", found.join("\n"));
}

#[test]
fn the_check_catches_an_upward_import() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    std::fs::write(src.join("unlayered.rs"), "").unwrap();
    std::fs::create_dir(src.join("engine")).unwrap();
    std::fs::write(src.join("protocol.rs"), "use crate::value::Entry;\n").unwrap();
    std::fs::write(
        src.join("engine/mod.rs"),
        "//! [`crate::server`] in a doc is fine\nfn f() { crate::server::go(); }\n",
    )
    .unwrap();
    std::fs::write(src.join("keyspace.rs"), "use crate::engine::Engine;\n").unwrap();
    std::fs::write(src.join("state.rs"), "use super::super::x;\n").unwrap();
    let found = violations(src);
    assert_eq!(found.len(), 4, "{found:#?}");
    assert!(found.iter().any(|v| v.contains("`unlayered` has no layer")));
    assert!(found.iter().any(|v| v.starts_with("protocol.rs:1")));
    assert!(found.iter().any(|v| v.starts_with("engine/mod.rs:2")));
    assert!(found.iter().any(|v| v.starts_with("state.rs:1")));
}
