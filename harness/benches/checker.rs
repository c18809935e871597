//! The linearizability checker on Porcupine's corpus, single-threaded.
//! Run with `cargo bench -p harness --bench checker`. The search alone
//! (verdicts, as Porcupine gives them), and apart from it what the
//! evidence of a violation costs (the prefix, candidates and window).

use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, Criterion};
use harness::check::linearizability::{check, Options};
use harness::check::models::{Kv, Register};
use harness::history_io::{read, Format};
use harness::History;

fn load(rel: &str) -> History {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/data/porcupine").join(rel);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    read(Format::infer(rel, &text), &text).expect("valid corpus file").history
}

/// The verdicts only, as `check` gives them for a batch of files.
fn search_only() -> Options {
    Options { evidence: false, max_states_window: 0, ..Options::default() }
}

fn etcd(c: &mut Criterion) {
    let files: Vec<History> =
        (0..=102).filter(|&i| i != 95).map(|i| load(&format!("jepsen/etcd_{i:03}.log"))).collect();
    let mut group = c.benchmark_group("etcd");
    group.sample_size(20);
    group.bench_function("all-102", |b| {
        b.iter(|| {
            files.iter().map(|h| check(&Register, h, &search_only()).expect("valid").states_explored).sum::<u64>()
        })
    });
    // Porcupine's ten slowest.
    for i in [2, 7, 99, 57, 75, 40, 80, 85, 97, 53] {
        let h = load(&format!("jepsen/etcd_{i:03}.log"));
        group.bench_function(format!("etcd_{i:03}"), |b| b.iter(|| check(&Register, &h, &search_only())));
    }
    group.finish();
}

fn kv(c: &mut Criterion) {
    let mut group = c.benchmark_group("kv");
    group.sample_size(10);
    for file in ["c10-ok", "c10-bad", "c50-ok", "c50-bad"] {
        let h = load(&format!("kv/{file}.txt"));
        group.bench_function(file, |b| b.iter(|| check(&Kv, &h, &search_only())));
    }
    group.finish();
}

fn evidence(c: &mut Criterion) {
    let mut group = c.benchmark_group("evidence");
    group.sample_size(10);
    for file in ["jepsen/etcd_057.log", "kv/c50-bad.txt"] {
        let h = load(file);
        let model_check = |h: &History| {
            if file.starts_with("kv") {
                check(&Kv, h, &Options::default())
            } else {
                check(&Register, h, &Options::default())
            }
        };
        group.bench_function(file, |b| b.iter(|| model_check(&h)));
    }
    group.finish();
}

criterion_group!(benches, etcd, kv, evidence);
criterion_main!(benches);
