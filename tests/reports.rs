//! Canonical linearizability reports: byte-stable, and snapshotted with insta
//! (`cargo insta review` after an intended change; CI never writes snapshots).

use std::path::Path;

use harness::check::linearizability::{check, LinearizabilityReport, Options};
use harness::check::models::{Kv, Register};
use harness::history_io::{read, Format};

fn corpus_report(file: &str) -> LinearizabilityReport {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/porcupine").join(file);
    let text = std::fs::read_to_string(&path).expect("corpus file");
    let format = Format::infer(file, &text);
    let parsed = read(format, &text).expect("valid corpus file");
    let result = if format == Format::PorcupineKv {
        check(&Kv, &parsed.history, &Options::default())
    } else {
        check(&Register, &parsed.history, &Options::default())
    };
    result.expect("the model reads every op")
}

/// A two-client register history a person can check by hand: c1 writes 1
/// then 2; c2 reads 2 and then, later, 1, which no order allows.
const SMALL_VIOLATION: &str = r#"{"process":0,"type":"invoke","f":"write","value":1,"time":100}
{"process":0,"type":"ok","f":"write","value":1,"time":200}
{"process":0,"type":"invoke","f":"write","value":2,"time":300}
{"process":1,"type":"invoke","f":"read","value":null,"time":350}
{"process":0,"type":"ok","f":"write","value":2,"time":400}
{"process":1,"type":"ok","f":"read","value":2,"time":450}
{"process":1,"type":"invoke","f":"read","value":null,"time":500}
{"process":1,"type":"ok","f":"read","value":1,"time":600}
"#;

fn small_violation() -> LinearizabilityReport {
    let parsed = read(Format::Jsonl, SMALL_VIOLATION).expect("valid");
    check(&Register, &parsed.history, &Options::default()).expect("valid ops")
}

#[test]
fn etcd_000_report() {
    insta::assert_snapshot!("etcd_000", corpus_report("jepsen/etcd_000.log").to_yaml());
}

#[test]
fn c01_bad_report() {
    insta::assert_snapshot!("c01_bad", corpus_report("kv/c01-bad.txt").to_yaml());
}

#[test]
fn small_violation_report() {
    let report = small_violation();
    insta::assert_snapshot!("small_violation_yaml", report.to_yaml());
    insta::assert_snapshot!("small_violation_text", report.to_text());
}

#[test]
fn reports_are_byte_identical_across_runs_and_renderings_agree() {
    for file in ["jepsen/etcd_000.log", "jepsen/etcd_040.log", "kv/c10-bad.txt"] {
        let (a, b) = (corpus_report(file), corpus_report(file));
        assert_eq!(a.to_yaml(), b.to_yaml(), "{file}");
        assert_eq!(a.to_json(), b.to_json(), "{file}");
        let from_json: serde_json::Value = serde_json::from_str(&a.to_json()).expect("json");
        let from_yaml: serde_json::Value = yaml_serde::from_str(&a.to_yaml()).expect("yaml");
        assert_eq!(from_json, from_yaml, "{file}: YAML and JSON say different things");
    }
}

#[test]
fn the_small_violation_names_the_stuck_read_and_its_reason() {
    let report = small_violation();
    let p = &report.partitions[0];
    let e = p.violation.as_ref().expect("evidence");
    // Events are numbered from 0: the second read is invoked at event 6.
    assert_eq!(e.stuck.op, 6);
    assert_eq!(e.prefix.iter().map(|s| s.op).collect::<Vec<_>>(), vec![0, 2, 3]);
    assert_eq!(e.candidates[0].rejection, "read returned 1 but the register held 2");
}
