//! The boundary the typed collections draw (issue #13): only `g3-store` names a collection and
//! only `g3-appwrite` spells a Realtime channel. Everything else goes through
//! `g3_store::Collection<M>` and `g3_appwrite::Channel`, so a schema or Realtime change is made
//! in one place. This test reads the workspace's sources and names every file that steps over.

use std::fs;
use std::path::{Path, PathBuf};

/// Where the rule applies: every app and the crates that build on `g3-store`.
const CHECKED: &[&str] = &[
    "apps",
    "crates/access",
    "crates/bench",
    "crates/service",
    "crates/testkit",
    "crates/core",
    "tests/scaleout",
];

/// What crossing the boundary looks like in source.
const RAW: &[(&str, &str)] = &[
    (
        ".documents(",
        "a raw documents handle: use g3_store::Collection<M>",
    ),
    (
        "\"databases.",
        "a Realtime channel spelt out: use Collection::<M>::channel()",
    ),
];

/// Files that may, and why.
const ALLOWED: &[(&str, &str)] = &[(
    "crates/bench/src/main.rs",
    "measures the raw client on a database of its own, not the product's",
)];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if !matches!(
                path.file_name().and_then(|n| n.to_str()),
                Some("target" | "node_modules")
            ) {
                rust_files(&path, out);
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn no_app_names_a_collection_or_a_channel() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut files = Vec::new();
    for dir in CHECKED {
        rust_files(&root.join(dir), &mut files);
    }
    assert!(
        files.len() > 50,
        "found only {} files: wrong root?",
        files.len()
    );
    let mut offences = Vec::new();
    for file in &files {
        let shown = file
            .strip_prefix(&root)
            .unwrap_or(file)
            .display()
            .to_string();
        if ALLOWED.iter().any(|(allowed, _)| shown == *allowed) {
            continue;
        }
        let text = fs::read_to_string(file).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for (needle, why) in RAW {
                if code.contains(needle) {
                    offences.push(format!("{shown}:{}: {why}\n    {}", n + 1, line.trim()));
                }
            }
        }
    }
    assert!(offences.is_empty(), "{}", offences.join("\n"));
}
