//! Conformance: every history in Porcupine's corpus (copied into
//! `tests/data/porcupine/`) gets the verdict in its `expected.tsv`.

use std::path::PathBuf;

use harness::check::linearizability::{check, Options, Verdict};
use harness::check::models::{Kv, Register};
use harness::history_io::{read, Format};

fn corpus() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/data/porcupine")
}

fn expected() -> Vec<(String, Verdict)> {
    let text = std::fs::read_to_string(corpus().join("expected.tsv")).expect("expected.tsv");
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let cols: Vec<&str> = line.split('\t').collect();
            let verdict = match cols.get(2).copied() {
                Some("linearizable") => Verdict::Linearizable,
                Some("not_linearizable") => Verdict::NotLinearizable,
                _ => return None, // the empty etcd_095 is not tested
            };
            Some((cols[0].to_owned(), verdict))
        })
        .collect()
}

#[test]
fn every_corpus_history_gets_its_expected_verdict() {
    let cases = expected();
    assert_eq!(cases.len(), 108, "102 etcd histories and 6 kv histories");
    let mut wrong = Vec::new();
    let mut linearizable_etcd = 0;
    for (file, want) in &cases {
        let text = std::fs::read_to_string(corpus().join(file)).expect("corpus file");
        let format = Format::infer(file, &text);
        let parsed = read(format, &text).unwrap_or_else(|e| panic!("{file}: {e}"));
        let report = if format == Format::PorcupineKv {
            check(&Kv, &parsed.history, &Options::default())
        } else {
            check(&Register, &parsed.history, &Options::default())
        }
        .unwrap_or_else(|e| panic!("{file}: event {}: {}", e.event, e.message));
        if report.verdict != *want {
            wrong.push(format!("{file}: got {:?}, expected {want:?}", report.verdict));
        }
        if file.contains("etcd") && report.verdict == Verdict::Linearizable {
            linearizable_etcd += 1;
        }
        if file.ends_with("c50-bad.txt") {
            // Every key is attempted and decided within the default budget
            // (Porcupine, stopping at the first bad key, leaves three keys
            // undecided after 20 s each).
            assert_eq!(report.partitions.len(), 10);
            let decided = report.partitions.iter().filter(|p| p.verdict == Verdict::NotLinearizable).count();
            assert_eq!(decided, 10, "{:?}", report.partitions.iter().map(|p| (&p.key, p.verdict)).collect::<Vec<_>>());
        }
    }
    assert!(wrong.is_empty(), "wrong verdicts:\n{}", wrong.join("\n"));
    assert_eq!(linearizable_etcd, 23);
}
