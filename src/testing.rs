//! Scenario files as tests: every file under a crate's `scenarios/` is its
//! own test, named after its path (`register/lost-update`), so `cargo test
//! --test scenarios -- NAME` runs one. A crate's `tests/scenarios.rs`
//! (with `harness = false` in its `Cargo.toml`) is one call:
//!
//! ```text
//! fn main() {
//!     faultline::testing::main(&my_crate::SYSTEMS, env!("CARGO_MANIFEST_DIR"));
//! }
//! ```
//!
//! Seeds: a pass scenario runs every one of the file's `seeds` (0..seeds),
//! exactly as a sweep does; a scenario that expects a failure runs seeds in
//! order until one shows it, up to the file's `seeds`. `FAULTLINE_SEEDS=K`
//! runs K seeds instead; `FAULTLINE_SEED=N` runs exactly seed N. A failure prints the outcome,
//! the check and its explanation, the seed, and both reproduction commands.
//!
//! Besides one test per file: `determinism/<name>` runs seeds 0 and 1 (or
//! the file's fixed seed) twice and requires equal trace hashes, and `snapshot/<name>` compares the
//! canonical report with its insta snapshot: seed 0 (or the file's seed)
//! of a pass scenario, the first seed that fails as expected of any other.
//!
//! Worlds: `FAULTLINE_WORLD=turmoil` (or `udp`) runs each file's seeds on
//! that world instead of the built-in one, with the same expectations. A
//! file the world cannot run (a fault it cannot inject) is listed as
//! ignored, and a note says why. Snapshots freeze the built-in world's
//! reports, so they are not compared on another world; determinism is
//! checked on turmoil, not on real sockets.

use std::path::{Path, PathBuf};

use harness::runner::{meets, RunOptions};
use harness::scenario::{Expect, Scenario};
use harness::system::Systems;
use libtest_mimic::{Arguments, Failed, Trial};

use crate::sweep::{discover, load, reproduce_on, run_seed, run_seed_on, scenario_meets, test_name};
use crate::worlds::{unsupported, WorldKind};

fn env_u64(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    match value.parse() {
        Ok(v) => Some(v),
        Err(_) => panic!("{name}={value}: expected a non-negative integer"),
    }
}

/// The world `FAULTLINE_WORLD` names (the built-in one if unset).
fn env_world() -> Result<WorldKind, String> {
    let Ok(value) = std::env::var("FAULTLINE_WORLD") else { return Ok(WorldKind::Builtin) };
    match clap::ValueEnum::from_str(&value, true) {
        Ok(WorldKind::Madsim) => Err(format!("FAULTLINE_WORLD=madsim: {}", crate::worlds::MADSIM_LANE)),
        Ok(world) => Ok(world),
        Err(_) => Err(format!("FAULTLINE_WORLD={value}: expected builtin, turmoil or udp")),
    }
}

/// The seeds a file's test runs, as the module documentation says.
fn seeds(scenario: &Scenario) -> Vec<u64> {
    match (env_u64("FAULTLINE_SEED"), env_u64("FAULTLINE_SEEDS"), scenario.seed) {
        (Some(seed), _, _) => vec![seed],
        (None, _, Some(fixed)) => vec![fixed],
        (None, Some(k), None) => (0..k).collect(),
        (None, None, None) => (0..scenario.seeds).collect(),
    }
}

/// Runs the scenario's seeds on `world`.
fn run_scenario(world: WorldKind, systems: &Systems, scenario: &Scenario) -> Result<(), Failed> {
    let seeds = seeds(scenario);
    let stop_at_first_hit = scenario.expect != Expect::Pass;
    let mut outcomes = Vec::new();
    for &seed in &seeds {
        let out = run_seed_on(world, systems, scenario, seed, &RunOptions::default())?;
        let outcome = out.report.outcome.clone();
        let expected_here = meets(&scenario.expect, &outcome);
        if !outcome.is_pass() && !expected_here {
            return Err(failure(world, systems, scenario, seed, &out.report.to_text()));
        }
        outcomes.push(outcome);
        if stop_at_first_hit && expected_here {
            break;
        }
    }
    let refs: Vec<_> = outcomes.iter().collect();
    if scenario_meets(&scenario.expect, &refs) {
        return Ok(());
    }
    let env = if world == WorldKind::Builtin { String::new() } else { format!("FAULTLINE_WORLD={} ", world.name()) };
    Err(format!(
        "{}: expected {}, but none of seeds {:?} showed it\n  try more seeds: {env}FAULTLINE_SEEDS=100 cargo test --test scenarios -- {}",
        scenario.path,
        scenario.expect,
        seeds,
        test_name(&scenario.path)
    )
    .into())
}

fn failure(world: WorldKind, systems: &Systems, scenario: &Scenario, seed: u64, report: &str) -> Failed {
    format!(
        "{}: seed {seed} did not meet \"{}\"\n{report}{}",
        scenario.path,
        scenario.expect,
        reproduce_on(world, systems, scenario, seed)
    )
    .into()
}

fn determinism(world: WorldKind, systems: &Systems, scenario: &Scenario) -> Result<(), Failed> {
    let seeds = match scenario.seed {
        Some(fixed) => vec![fixed],
        None => vec![0, 1],
    };
    for seed in seeds {
        let a = run_seed_on(world, systems, scenario, seed, &RunOptions::default())?.report;
        let b = run_seed_on(world, systems, scenario, seed, &RunOptions::default())?.report;
        if world != WorldKind::Builtin && a.trace_hash != b.trace_hash {
            return Err(format!(
                "seed {seed}: trace hashes {} and {} differ on {}",
                a.trace_hash,
                b.trace_hash,
                world.name()
            )
            .into());
        }
        if a.trace_hash != b.trace_hash || a != b {
            let traced = RunOptions { keep_trace: true, ..RunOptions::default() };
            let ta = run_seed(systems, scenario, seed, &traced).trace.unwrap_or_default();
            let tb = run_seed(systems, scenario, seed, &traced).trace.unwrap_or_default();
            return Err(format!("seed {seed}: {}", harness::determinism::first_difference(&ta, &tb)).into());
        }
    }
    Ok(())
}

/// Snapshots seed 0 (or the file's seed) of a pass scenario, and the first
/// seed that shows the expected failure of any other: the report a person
/// wants frozen is the one with the evidence.
fn snapshot(systems: &Systems, root: &Path, scenario: &Scenario, name: &str) -> Result<(), Failed> {
    let seed = scenario.seed.unwrap_or_else(|| {
        if scenario.expect == Expect::Pass {
            return 0;
        }
        (0..scenario.seeds)
            .find(|&seed| {
                meets(&scenario.expect, &run_seed(systems, scenario, seed, &RunOptions::default()).report.outcome)
            })
            .unwrap_or(0)
    });
    let report = run_seed(systems, scenario, seed, &RunOptions::default()).report;
    let snap = format!("report__{}", name.replace('/', "__"));
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(root.join("tests/snapshots"));
    settings.set_prepend_module_to_snapshot(false);
    // A mismatch panics; libtest-mimic reports the panic as this test's failure.
    settings.bind(|| insta::assert_snapshot!(snap, report.to_yaml()));
    Ok(())
}

/// Why `world` cannot run one of the seeds the file's test runs, if so.
fn refused(world: WorldKind, systems: &Systems, scenario: &Scenario) -> Option<String> {
    if world == WorldKind::Builtin {
        return None;
    }
    seeds(scenario).into_iter().find_map(|seed| {
        let plan = harness::panics::catch(|| systems.plan(scenario, seed)).ok()?;
        unsupported(world, scenario, &plan)
    })
}

/// One test per scenario file under `<root>/scenarios/`, run over
/// `systems`, plus its determinism and snapshot trials (snapshots live in
/// `<root>/tests/snapshots/`). Exits the process with libtest's status.
pub fn main(systems: &'static Systems, root: &str) -> ! {
    // A node's panic is its seed's `crash`, reported with its message; a
    // test's own failure (an assertion, a snapshot) still prints as usual.
    harness::panics::quiet_caught();
    let args = Arguments::from_args();
    let world = env_world().unwrap_or_else(|why| {
        eprintln!("{why}");
        std::process::exit(2)
    });
    let root = PathBuf::from(root);
    let files = discover(&[root.join("scenarios")]).expect("scenarios/ is readable");
    let mut trials = Vec::new();
    for file in files {
        let rel = file.strip_prefix(&root).unwrap_or(&file).display().to_string();
        let name = test_name(&rel);
        // Load by the path relative to the crate (cargo runs tests there),
        // so errors name the file as a person wrote it.
        let path = if Path::new(&rel).exists() { PathBuf::from(&rel) } else { file.clone() };
        let scenario = match load(systems, &path) {
            Ok(mut s) => {
                s.path = rel;
                s
            }
            Err(e) => {
                // A broken scenario file is a failing test, named after it.
                let message = e.message;
                trials.push(Trial::test(name, move || Err(message.into())));
                continue;
            }
        };
        if let Some(why) = refused(world, systems, &scenario) {
            if args.filter.as_ref().is_none_or(|f| name.contains(f.as_str())) {
                eprintln!("note: {name} is not run on {}: {why}", world.name());
            }
            trials.push(Trial::test(name, move || Err(why.into())).with_ignored_flag(true));
            continue;
        }
        let (a, b) = (scenario.clone(), scenario.clone());
        let (snap_name, snap_root) = (name.clone(), root.clone());
        trials.push(Trial::test(name.clone(), move || run_scenario(world, systems, &scenario)));
        if world != WorldKind::Udp {
            trials.push(Trial::test(format!("determinism/{name}"), move || determinism(world, systems, &a)));
        }
        if world == WorldKind::Builtin {
            trials.push(Trial::test(format!("snapshot/{name}"), move || snapshot(systems, &snap_root, &b, &snap_name)));
        }
    }
    libtest_mimic::run(&args, trials).exit();
}
