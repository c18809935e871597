//! Whole runs through the runner, checks included.
//! Run with `cargo bench --bench scenarios`.

use criterion::{criterion_group, criterion_main, Criterion};
use faultline::registry::{self, SYSTEMS};
use harness::runner::RunOptions;
use harness::scenario::Scenario;

/// Benchmarks whole runs of one scenario, a new seed each iteration.
fn bench_runs(c: &mut Criterion, group: &str, name: &str, text: &str, samples: usize) {
    let scenario = Scenario::parse("bench.toml", text, &SYSTEMS).expect("valid");
    let mut group = c.benchmark_group(group);
    group.sample_size(samples);
    group.bench_function(name, |b| {
        let mut seed = 0;
        b.iter(|| {
            seed += 1;
            let plan = registry::plan(&scenario, seed);
            registry::run(&scenario, &plan, seed, &RunOptions::default()).report.events
        })
    });
    group.finish();
}

fn register(c: &mut Criterion) {
    // 4 clients, 500 operations, 30 s of virtual time, loss, duplication and a nemesis.
    let text = r#"
title = "bench"
system = "register"
clients = 4
duration = "30s"
[network]
loss = 0.02
duplicate = 0.01
[nemesis]
kinds = ["crash", "pause", "network"]
every = "3s"
[workload]
ops = 500
keys = 3
think = "200ms"
"#;
    bench_runs(c, "register", "4-clients-500-ops-30s", text, 100);
}

fn replication(c: &mut Criterion) {
    // 5 nodes, 4 clients, 1,000 operations, 60 s of virtual time under the nemesis.
    let text = r#"
title = "bench"
system = "replication"
nodes = 5
clients = 4
duration = "60s"
[network]
loss = 0.02
duplicate = 0.01
[nemesis]
kinds = ["partition", "crash", "pause", "clock-bump", "clock-drift", "network"]
every = "3s"
[workload]
ops = 1000
keys = 3
think = "200ms"
"#;
    bench_runs(c, "replication", "5-nodes-4-clients-1000-ops-60s-nemesis", text, 20);
}

criterion_group!(benches, register, replication);
criterion_main!(benches);
