//! The linearizability checker on Porcupine's corpus, single-threaded.
//! Run with `cargo bench -p harness --bench checker`.

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

fn etcd(c: &mut Criterion) {
    let files: Vec<History> =
        (0..=102).filter(|&i| i != 95).map(|i| load(&format!("jepsen/etcd_{i:03}.log"))).collect();
    let mut group = c.benchmark_group("etcd");
    group.sample_size(20);
    group.bench_function("all-102", |b| {
        b.iter(|| {
            files.iter().map(|h| check(&Register, h, &Options::default()).expect("valid").states_explored).sum::<u64>()
        })
    });
    // Porcupine's ten slowest.
    for i in [2, 7, 99, 57, 75, 40, 80, 85, 97, 53] {
        let h = load(&format!("jepsen/etcd_{i:03}.log"));
        group.bench_function(format!("etcd_{i:03}"), |b| b.iter(|| check(&Register, &h, &Options::default())));
    }
    group.finish();
}

fn kv(c: &mut Criterion) {
    let mut group = c.benchmark_group("kv");
    group.sample_size(10);
    for file in ["c10-ok", "c10-bad", "c50-ok", "c50-bad"] {
        let h = load(&format!("kv/{file}.txt"));
        group.bench_function(file, |b| b.iter(|| check(&Kv, &h, &Options::default())));
    }
    group.finish();
}

criterion_group!(benches, etcd, kv);
criterion_main!(benches);
