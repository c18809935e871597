//! The madsim lane: runs scenario files on madsim (a third world, beside
//! the built-in one and turmoil) and checks each seed meets its file's
//! expectation. Arguments are files or folders; `--seeds N` (default 3);
//! `MADSIM_TEST_SEED=N` runs that one seed; `--determinism` runs each seed
//! twice and compares trace hashes; `--correct` keeps only the files that
//! expect `pass`; `--skip-unsupported` skips, naming it, a file with a
//! fault madsim's world cannot inject (else that is exit 2); `--faults`
//! lists each run's faults. Exit 0 when every scenario met its
//! expectation, 1 when one did not, 2 for bad input or a build without
//! `--cfg madsim`.

mod world;

use std::process::ExitCode;

use faultline::registry::SYSTEMS;
use faultline::sweep::{discover, load, scenario_meets};
use faultline::worlds::{unsupported, WorldKind};
use harness::runner::RunOptions;

fn main() -> ExitCode {
    if !cfg!(madsim) {
        eprintln!("faultline-madsim: build with RUSTFLAGS=\"--cfg madsim\" (see lanes/madsim/Cargo.toml)");
        return ExitCode::from(2);
    }
    let mut files = Vec::new();
    let mut seeds = 3u64;
    let mut determinism = false;
    let mut faults = false;
    let mut correct_only = false;
    let mut skip_unsupported = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seeds" => match args.next().and_then(|n| n.parse().ok()) {
                Some(n) if (1..=10_000).contains(&n) => seeds = n,
                _ => return usage("--seeds takes a number from 1 to 10000"),
            },
            "--determinism" => determinism = true,
            "--faults" => faults = true,
            "--correct" => correct_only = true,
            "--skip-unsupported" => skip_unsupported = true,
            file => files.push(std::path::PathBuf::from(file)),
        }
    }
    if files.is_empty() {
        return usage("name at least one scenario file or folder");
    }
    let files = match discover(&files) {
        Ok(files) => files,
        Err(e) => return usage(&e.message),
    };
    let fixed: Option<u64> = std::env::var("MADSIM_TEST_SEED").ok().and_then(|s| s.parse().ok());
    let mut all_met = true;
    for file in &files {
        let scenario = match load(&SYSTEMS, file) {
            Ok(s) => s,
            Err(e) => return usage(&e.message),
        };
        if correct_only && scenario.expect != harness::scenario::Expect::Pass {
            continue;
        }
        let range: Vec<u64> = match (fixed, scenario.seed) {
            (Some(seed), _) | (None, Some(seed)) => vec![seed],
            (None, None) => (0..seeds).collect(),
        };
        let mut outcomes = Vec::new();
        for seed in range {
            let plan = SYSTEMS.plan(&scenario, seed);
            if let Some(why) = unsupported(WorldKind::Madsim, &scenario, &plan) {
                if skip_unsupported {
                    println!("skipped {} (seed {seed}): {why}", scenario.path);
                    break;
                }
                return usage(&format!("{} (seed {seed}): {why}", scenario.path));
            }
            let run =
                || world::run(SYSTEMS.host(&scenario, &plan, seed, &RunOptions::default()), &scenario, &plan, seed);
            let report = run().report;
            if determinism {
                let again = run().report;
                if again.trace_hash != report.trace_hash {
                    println!(
                        "NONDETERMINISM {} seed {seed}: trace hashes {} and {}",
                        scenario.path, report.trace_hash, again.trace_hash
                    );
                    all_met = false;
                }
            }
            println!(
                "{} seed {seed}: {} (trace hash {}, {} events, {} history events, {} virtual)",
                scenario.path,
                report.outcome,
                report.trace_hash,
                report.events,
                report.history_events,
                harness::SimTime(report.virtual_time_ns)
            );
            if faults {
                for f in &report.faults {
                    println!(
                        "    {} {} {}",
                        f.time,
                        f.fault,
                        f.nodes.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(",")
                    );
                }
            }
            outcomes.push(report.outcome);
        }
        if outcomes.is_empty() {
            continue; // skipped
        }
        let met = scenario_meets(&scenario.expect, &outcomes.iter().collect::<Vec<_>>());
        println!("{}: expected {}: {}", scenario.path, scenario.expect, if met { "ok" } else { "NOT as expected" });
        all_met &= met;
    }
    ExitCode::from(if all_met { 0 } else { 1 })
}

fn usage(message: &str) -> ExitCode {
    eprintln!("faultline-madsim: {message}");
    ExitCode::from(2)
}
