//! The world's speed: messages per wall-second on the token ring, and the
//! cost of idle virtual time. Run with `cargo bench -p harness --bench world`.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use harness::ring::{ring_world, RingConfig};
use harness::SimTime;

fn ring(c: &mut Criterion) {
    let mut group = c.benchmark_group("ring");
    group.sample_size(10);
    for nodes in [5u32, 100] {
        let cfg = RingConfig { seed: 1, nodes, tokens: 1000, ..RingConfig::default() };
        // One virtual second: about 180,000 deliveries.
        let mut probe = ring_world(&cfg);
        probe.run_until(SimTime::from_duration(Duration::from_secs(1)));
        group.throughput(Throughput::Elements(probe.stats().delivered));
        group.bench_with_input(BenchmarkId::new("1000-tokens-1s", nodes), &cfg, |b, cfg| {
            b.iter(|| {
                let mut w = ring_world(cfg);
                w.run_until(SimTime::from_duration(Duration::from_secs(1)));
                w.stats().delivered
            })
        });
    }
    group.finish();
}

fn idle(c: &mut Criterion) {
    let mut group = c.benchmark_group("idle");
    group.sample_size(10);
    group.bench_function("5-nodes-heartbeat-50ms-10min", |b| {
        b.iter(|| {
            let mut w = harness::ring::heartbeat_world(5, Duration::from_millis(50));
            w.run_until(SimTime::from_duration(Duration::from_secs(600)));
            w.stats().delivered
        })
    });
    group.finish();
}

criterion_group!(benches, ring, idle);
criterion_main!(benches);
