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

/// What `systems/src` may use of the harness outside its unit tests: the
/// node contract, client histories, the check API and the system API
/// (modules), and the root re-exports of items from those.
const CONTRACT_MODULES: &[&str] = &["node", "history", "check", "system", "time", "disk", "rng"];
const CONTRACT_ITEMS: &[&str] = &[
    "Ctx",
    "Disk",
    "Factory",
    "History",
    "Invariant",
    "Leadership",
    "MonoTime",
    "Node",
    "NodeId",
    "Observation",
    "Observed",
    "Op",
    "OpType",
    "Rng",
    "SimTime",
    "TimerId",
    "Value",
    "Violation",
    "WallTime",
];

/// The harness paths a piece of code names that fall outside the contract,
/// as `line: harness::name`. Code after the first `#[cfg(test)]` is a
/// unit test, which may drive a world.
fn boundary_offences(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("#[cfg(test)]") {
            break;
        }
        let code = line.split("//").next().unwrap_or("");
        for (at, _) in code.match_indices("harness::") {
            let rest = &code[at + "harness::".len()..];
            let names: Vec<&str> = match rest.strip_prefix('{') {
                Some(group) => group.split('}').next().unwrap_or("").split(',').collect(),
                None => vec![rest],
            };
            for name in names {
                let first: String = name.trim().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                let allowed = CONTRACT_MODULES.contains(&first.as_str()) || CONTRACT_ITEMS.contains(&first.as_str());
                if !first.is_empty() && !allowed {
                    found.push(format!("{}: harness::{first}", i + 1));
                }
            }
        }
    }
    found
}

#[test]
fn systems_use_only_the_contract_the_history_and_the_check_and_system_apis() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("systems/src"), &mut files);
    let mut report = Vec::new();
    for file in &files {
        let text = fs::read_to_string(file).expect("readable source");
        for o in boundary_offences(&text) {
            report.push(format!("{}:{o}", file.strip_prefix(root).unwrap_or(file).display()));
        }
    }
    assert!(report.is_empty(), "systems reach past the harness's contract:\n{}", report.join("\n"));
}

#[test]
fn the_boundary_scan_catches_the_world_and_allows_the_contract() {
    assert_eq!(boundary_offences("use harness::sim::World;"), vec!["1: harness::sim"]);
    assert_eq!(boundary_offences("use harness::{NodeId, World};"), vec!["1: harness::World"]);
    assert!(boundary_offences("use harness::node::{Ctx, Node};\nuse harness::{Disk, Value};").is_empty());
    assert!(boundary_offences("#[cfg(test)]\nmod tests { use harness::World; }").is_empty());
}
