//! The same nodes on other worlds: turmoil (deterministic) and real UDP
//! sockets. Correct variants pass there too, planted bugs are found there
//! too, a turmoil seed replays, and what a world cannot inject is refused
//! by name.

mod common;
use common::{faultline, stdout};

use faultline::registry::SYSTEMS;
use faultline::sweep::run_seed_on;
use faultline::worlds::WorldKind;
use harness::runner::{meets, RunOptions};
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

/// Correct variants whose faults turmoil takes, across the systems.
const CORRECT: &[&str] = &[
    "scenarios/saga/orchestrated-3.toml",
    "scenarios/saga/choreographed-3.toml",
    "scenarios/queue/correct-duplicates.toml",
    "scenarios/replication/correct-5-partitions.toml",
    "scenarios/replication/correct-lease-reads-drift.toml",
    "scenarios/election/lease-5-drift.toml",
    "scenarios/regressions/replication-late-duplicate.toml",
];

#[test]
fn correct_variants_pass_on_turmoil() {
    for path in CORRECT {
        for seed in 0..3 {
            let (outcome, _) = outcome(WorldKind::Turmoil, path, seed);
            assert_eq!(outcome, Outcome::Pass, "{path} seed {seed} on turmoil");
        }
    }
}

/// Planted bugs and the seeds turmoil needs to find each (measured: the
/// first failing seed from 0, BENCHMARKS.md), with one seed to spare.
const BUGS: &[(&str, u64)] = &[
    ("scenarios/saga/compensate-in-order.toml", 1),
    ("scenarios/saga/non-idempotent-compensation.toml", 3),
    ("scenarios/saga/no-tombstone.toml", 3),
    ("scenarios/lock/unchecked-release.toml", 1),
    ("scenarios/queue/drop-after-max.toml", 1),
    ("scenarios/queue/producer-no-idempotence.toml", 1),
    ("scenarios/replication/follower-any.toml", 5),
    ("scenarios/register/lost-update.toml", 10),
];

#[test]
fn planted_bugs_are_found_on_turmoil_within_their_seeds() {
    for &(path, seeds) in BUGS {
        let scenario = load(path);
        let found = (0..seeds).any(|seed| meets(&scenario.expect, &outcome(WorldKind::Turmoil, path, seed).0));
        assert!(found, "{path}: not found on turmoil within {seeds} seeds");
    }
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
    let o = faultline(&["run", "scenarios/saga/choreographed-faults.toml", "--world", "turmoil"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("the turmoil world cannot fire [[trigger]] faults"), "{err}");
    let o = faultline(&["sweep", "scenarios/election/", "--world", "turmoil", "--seeds", "3"]);
    assert_eq!(o.status.code(), Some(2), "{}", stdout(&o));
}
