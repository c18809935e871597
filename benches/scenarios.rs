//! Whole runs through the runner, checks included.
//! Run with `cargo bench --bench scenarios`.

use criterion::{criterion_group, criterion_main, Criterion};
use faultline::registry::{self, Registry};
use harness::runner::RunOptions;
use harness::scenario::Scenario;

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
    let scenario = Scenario::parse("bench.toml", text, &Registry).expect("valid");
    let system = registry::find("register").expect("registered");
    let mut group = c.benchmark_group("register");
    group.bench_function("4-clients-500-ops-30s", |b| {
        let mut seed = 0;
        b.iter(|| {
            seed += 1;
            let plan = registry::plan(&scenario, seed);
            system.run(&scenario, &plan, seed, &RunOptions::default()).report.events
        })
    });
    group.finish();
}

criterion_group!(benches, register);
criterion_main!(benches);
