//! `faultline check` as a user runs it: exit statuses, output, errors.

use std::path::{Path, PathBuf};
mod common;
use common::{faultline, stderr, stdout};

fn data(rel: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/porcupine").join(rel).display().to_string()
}

fn scratch(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("faultline-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write");
    path
}

#[test]
fn linearizable_files_exit_0_and_others_exit_1() {
    let ok = faultline(&["check", &data("jepsen/etcd_005.log"), &data("jepsen/etcd_002.log"), "--model", "register"]);
    assert_eq!(ok.status.code(), Some(0), "{}", stderr(&ok));
    assert_eq!(stdout(&ok).lines().count(), 2, "one line per file: {}", stdout(&ok));
    let bad = faultline(&["check", &data("jepsen/etcd_005.log"), &data("jepsen/etcd_000.log"), "--model", "register"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(stdout(&bad).contains("etcd_000.log: not_linearizable"), "{}", stdout(&bad));
}

#[test]
fn json_prints_one_object_per_file_with_the_documented_fields() {
    let o = faultline(&["check", &data("kv/c10-ok.txt"), &data("kv/c10-bad.txt"), "--model", "kv", "--json"]);
    assert_eq!(o.status.code(), Some(1));
    let lines: Vec<serde_json::Value> =
        stdout(&o).lines().map(|l| serde_json::from_str(l).expect("each line is JSON")).collect();
    assert_eq!(lines.len(), 2);
    // Fields in the documented order.
    let first = stdout(&o).lines().next().unwrap_or_default().to_owned();
    let at = |k: &str| first.find(&format!("\"{k}\":")).unwrap_or_else(|| panic!("no {k} in {first}"));
    assert!(
        at("file") < at("verdict")
            && at("verdict") < at("ops")
            && at("ops") < at("partitions")
            && at("partitions") < at("states")
    );
    assert_eq!(lines[0].as_object().expect("object").len(), 5);
    assert_eq!(lines[0]["verdict"], "linearizable");
    assert_eq!(lines[1]["verdict"], "not_linearizable");
    assert_eq!(lines[0]["ops"], 337);
    assert_eq!(lines[0]["partitions"], 10);
}

#[test]
fn the_format_is_inferred_and_can_be_forced() {
    let path = scratch("h.jsonl", "{\"process\":0,\"type\":\"invoke\",\"f\":\"write\",\"value\":1}\n{\"process\":0,\"type\":\"ok\",\"f\":\"write\",\"value\":1}\n");
    let o = faultline(&["check", path.to_str().expect("utf-8"), "--model", "register"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let forced =
        faultline(&["check", path.to_str().expect("utf-8"), "--model", "register", "--format", "porcupine-etcd"]);
    assert_eq!(forced.status.code(), Some(2));
    assert!(stderr(&forced).contains("h.jsonl:1:1: expected a Jepsen log line"), "{}", stderr(&forced));
}

#[test]
fn bad_input_names_file_line_and_column_and_exits_2() {
    let path = scratch("bad.jsonl", "{\"process\":0,\"type\":\"invoke\",\"f\":\"read\"}\n{\"process\":0,\"type\":\"ok\",\"f\":\"read\",\"value\":[1,}\n");
    let o = faultline(&["check", path.to_str().expect("utf-8"), "--model", "register"]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(err.contains("bad.jsonl:2:"), "{err}");
    assert!(err.contains("expected"), "{err}");
    // A function the model does not know: named with its line.
    let path = scratch(
        "f.jsonl",
        "{\"process\":0,\"type\":\"invoke\",\"f\":\"frob\"}\n{\"process\":0,\"type\":\"ok\",\"f\":\"frob\"}\n",
    );
    let o = faultline(&["check", path.to_str().expect("utf-8"), "--model", "register"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("f.jsonl:2: the register model has no function `frob`"), "{}", stderr(&o));
    // Unknown model, missing file.
    assert_eq!(faultline(&["check", &data("kv/c01-ok.txt"), "--model", "tree"]).status.code(), Some(2));
    assert_eq!(faultline(&["check", "/no/such/file", "--model", "kv"]).status.code(), Some(2));
    assert_eq!(faultline(&["check", "--model", "kv"]).status.code(), Some(2));
}

#[test]
fn report_writes_canonical_yaml_or_json() {
    let dir = std::env::temp_dir().join(format!("faultline-report-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let yaml = dir.join("r.yaml");
    let o = faultline(&["check", &data("kv/c01-bad.txt"), "--model", "kv", "--report", yaml.to_str().expect("utf-8")]);
    assert_eq!(o.status.code(), Some(1));
    let text = std::fs::read_to_string(&yaml).expect("report written");
    assert!(text.starts_with("model: kv\nverdict: not_linearizable\n"), "{text}");
    let bad = faultline(&["check", &data("kv/c01-bad.txt"), "--model", "kv", "--report", "r.txt"]);
    assert_eq!(bad.status.code(), Some(2));
}
