//! The same nodes on other worlds: turmoil (deterministic) and real UDP
//! sockets. Correct variants pass there too, planted bugs are found there
//! too, a turmoil seed replays, and what a world cannot inject is refused
//! by name.

mod common;
use common::{faultline, stdout};

use faultline::registry::SYSTEMS;
use faultline::sweep::{run_seed_on, scenario_meets};
use faultline::worlds::{unsupported, WorldKind};
use harness::runner::RunOptions;
use harness::scenario::Scenario;
use harness::Outcome;

fn load(path: &str) -> Scenario {
    let text = std::fs::read_to_string(path).expect("a scenario file");
    Scenario::parse(path, &text, &SYSTEMS).expect("a valid scenario")
}

fn outcome(world: WorldKind, path: &str, seed: u64) -> (Outcome, String) {
    let out = run_seed_on(world, &SYSTEMS, &load(path), seed, &RunOptions::default()).expect("the world runs it");
    (out.report.outcome.clone(), out.report.trace_hash)
}

/// Seeds each scenario file gets on turmoil: every planted bug the
/// built-in world finds in its own scenario is found on turmoil within
/// them (measured: BENCHMARKS.md, "Other worlds").
const SEEDS: u64 = 8;

/// The scenario files (not the torture ones) whose plans turmoil can run
/// on every seed in `0..SEEDS`, correct variants (`pass`) or not.
fn runnable_on_turmoil(correct: bool) -> Vec<Scenario> {
    let mut files: Vec<_> = std::fs::read_dir("scenarios")
        .expect("scenarios/")
        .flat_map(|d| std::fs::read_dir(d.expect("an entry").path()).into_iter().flatten())
        .map(|f| f.expect("an entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml") && !p.starts_with("scenarios/torture"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| load(p.to_str().expect("a UTF-8 path")))
        .filter(|s| (s.expect == harness::scenario::Expect::Pass) == correct)
        .filter(|s| (0..SEEDS).all(|seed| unsupported(WorldKind::Turmoil, s, &SYSTEMS.plan(s, seed)).is_none()))
        .collect()
}

fn meets_on_turmoil(scenario: &Scenario) -> bool {
    let seeds = scenario.seed.map_or(0..SEEDS, |s| s..s + 1);
    let outcomes: Vec<Outcome> = seeds
        .map(|seed| {
            run_seed_on(WorldKind::Turmoil, &SYSTEMS, scenario, seed, &RunOptions::default())
                .expect("runnable")
                .report
                .outcome
        })
        .collect();
    scenario_meets(&scenario.expect, &outcomes.iter().collect::<Vec<_>>())
}

#[test]
fn correct_variants_pass_on_turmoil() {
    let scenarios = runnable_on_turmoil(true);
    assert!(scenarios.len() >= 30, "only {} correct scenarios run on turmoil", scenarios.len());
    let failed: Vec<&str> = scenarios.iter().filter(|s| !meets_on_turmoil(s)).map(|s| s.path.as_str()).collect();
    assert!(failed.is_empty(), "not passing on turmoil: {failed:?}");
}

#[test]
fn planted_bugs_are_found_on_turmoil_within_their_seeds() {
    let scenarios = runnable_on_turmoil(false);
    assert!(scenarios.len() >= 30, "only {} bug scenarios run on turmoil", scenarios.len());
    let missed: Vec<&str> = scenarios.iter().filter(|s| !meets_on_turmoil(s)).map(|s| s.path.as_str()).collect();
    assert!(missed.is_empty(), "not found on turmoil within {SEEDS} seeds: {missed:?}");
}

#[test]
fn a_turmoil_seed_replays() {
    let path = "scenarios/replication/correct-5-partitions.toml";
    let (a, first) = outcome(WorldKind::Turmoil, path, 4);
    let (b, second) = outcome(WorldKind::Turmoil, path, 4);
    assert_eq!((a, first.clone()), (b, second));
    let (_, other) = outcome(WorldKind::Turmoil, path, 5);
    assert_ne!(first, other, "another seed takes another path");
}

#[test]
fn replication_survives_crashes_and_partitions_over_real_sockets() {
    let o = faultline(&["run", "scenarios/worlds/udp-smoke.toml", "--world", "udp"]);
    let text = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{text}");
    assert!(text.contains("world: udp"), "{text}");
    assert!(text.contains("crash leader on"), "{text}");
}

#[test]
fn a_fault_a_world_cannot_inject_is_refused_by_name() {
    let storms = "scenarios/register/correct-clocks-and-storms.toml";
    let o = faultline(&["run", storms, "--world", "udp", "--seed", "1"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("the udp world cannot change real latency"), "{err}");
    let o = faultline(&["sweep", storms, "--world", "udp", "--seeds", "3"]);
    assert_eq!(o.status.code(), Some(2), "{}", stdout(&o));
    // madsim runs only in its own lane, and says how.
    let o = faultline(&["run", "scenarios/saga/orchestrated-3.toml", "--world", "madsim"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("lanes/madsim/Cargo.toml"), "{err}");
    let o = faultline(&["sweep", "scenarios/saga/orchestrated-3.toml", "--world", "madsim"]);
    assert_eq!(o.status.code(), Some(2));
}
