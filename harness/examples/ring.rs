//! K nodes pass T tokens around a ring for D milliseconds of virtual time.
//!
//! cargo run --release -p harness --example ring -- --seed 1 --nodes 5 --tokens 1000 --duration-ms 10000

use std::process::ExitCode;
use std::time::{Duration, Instant};

use harness::ring::{ring_world, RingConfig};
use harness::{Latency, SimTime};

const USAGE: &str = "usage: ring [--seed N] [--nodes K] [--tokens T] [--duration-ms D] [--loss P] [--duplicate P] [--latency-ms MIN-MAX]";

fn main() -> ExitCode {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .without_time()
        .try_init();
    match parse(std::env::args().skip(1).collect()) {
        Ok((cfg, duration)) => {
            run(&cfg, duration);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ring: {e}\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn parse(args: Vec<String>) -> Result<(RingConfig, Duration), String> {
    let mut cfg = RingConfig::default();
    let mut duration = Duration::from_secs(10);
    let mut it = args.into_iter();
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let bad = |what: &str| format!("{flag}: expected {what}, got `{value}`");
        match flag.as_str() {
            "--seed" => cfg.seed = value.parse().map_err(|_| bad("an integer"))?,
            "--nodes" => cfg.nodes = value.parse().ok().filter(|&n| n > 0).ok_or_else(|| bad("a positive integer"))?,
            "--tokens" => cfg.tokens = value.parse().map_err(|_| bad("an integer"))?,
            "--duration-ms" => duration = Duration::from_millis(value.parse().map_err(|_| bad("an integer"))?),
            "--loss" => cfg.loss = prob(&value).ok_or_else(|| bad("a probability between 0 and 1"))?,
            "--duplicate" => cfg.duplicate = prob(&value).ok_or_else(|| bad("a probability between 0 and 1"))?,
            "--latency-ms" => {
                let (lo, hi) = value.split_once('-').ok_or_else(|| bad("MIN-MAX"))?;
                let lo: u64 = lo.parse().map_err(|_| bad("MIN-MAX"))?;
                let hi: u64 = hi.parse().map_err(|_| bad("MIN-MAX"))?;
                if lo > hi {
                    return Err(bad("MIN-MAX with MIN <= MAX"));
                }
                cfg.latency = Latency::Uniform { min: Duration::from_millis(lo), max: Duration::from_millis(hi) };
            }
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    Ok((cfg, duration))
}

fn prob(s: &str) -> Option<f64> {
    s.parse().ok().filter(|p: &f64| (0.0..=1.0).contains(p))
}

fn run(cfg: &RingConfig, duration: Duration) {
    let mut world = ring_world(cfg);
    let started = Instant::now();
    world.run_until(SimTime::from_duration(duration));
    let wall = started.elapsed().as_secs_f64();
    let delivered = world.stats().delivered;
    println!("trace-hash: {:016x}", world.trace_hash());
    println!("messages: {delivered}");
    println!("events: {}", world.events());
    println!("messages-per-second: {:.0}", delivered as f64 / wall.max(1e-9));
}
