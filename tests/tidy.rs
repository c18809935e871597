//! Determinism is law: nothing in the world or the systems may read real
//! time, real randomness, iterate a hash-ordered collection, or spawn.
//! This test fails naming the file and line of every offence.

use std::fs;
use std::path::{Path, PathBuf};

const FORBIDDEN: &[(&str, &str)] = &[
    ("std::time::Instant", "real time"),
    ("Instant::now", "real time"),
    ("SystemTime", "real time"),
    ("thread_rng", "real randomness"),
    ("rand::rng()", "real randomness"),
    ("OsRng", "real randomness"),
    ("HashMap", "hash-ordered iteration (use BTreeMap, IndexMap or Vec)"),
    ("HashSet", "hash-ordered iteration (use BTreeSet, IndexSet or Vec)"),
    ("std::thread", "threads"),
    ("thread::spawn", "threads"),
    ("tokio::spawn", "tasks"),
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> =
        fs::read_dir(dir).expect("readable source dir").map(|e| e.expect("entry").path()).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Offences in one file's text, as `line: pattern (why)`; comments are skipped.
fn offences(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        for (pattern, why) in FORBIDDEN {
            if code.contains(pattern) {
                found.push(format!("{}: `{pattern}` ({why})", i + 1));
            }
        }
    }
    found
}

#[test]
fn harness_and_systems_use_no_real_time_randomness_hash_order_or_threads() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in ["harness/src", "systems/src"] {
        rust_files(&root.join(dir), &mut files);
    }
    assert!(files.len() > 5, "the tidy test found almost no sources: {files:?}");
    let mut report = Vec::new();
    for file in &files {
        let text = fs::read_to_string(file).expect("readable source");
        for o in offences(&text) {
            report.push(format!("{}:{o}", file.strip_prefix(root).unwrap_or(file).display()));
        }
    }
    assert!(report.is_empty(), "determinism leaks:\n{}", report.join("\n"));
}

#[test]
fn the_tidy_scan_catches_each_pattern_and_skips_comments() {
    for (pattern, _) in FORBIDDEN {
        assert!(!offences(&format!("let x = {pattern};")).is_empty(), "{pattern} not caught");
        assert!(offences(&format!("// {pattern}")).is_empty(), "{pattern} in a comment was flagged");
    }
    assert_eq!(
        offences("a\nlet m: HashMap<u8, u8>;"),
        vec!["2: `HashMap` (hash-ordered iteration (use BTreeMap, IndexMap or Vec))"]
    );
}
