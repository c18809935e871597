//! The crash in the middle of a handler: it catches `reply-before-sync`,
//! which no crash between events can, and nothing in the correct variants.

use faultline::registry::SYSTEMS;
use faultline::sweep::run_seed;
use harness::runner::RunOptions;
use harness::scenario::Scenario;

fn scenario(system: &str, variant: &str, kinds: &str) -> Scenario {
    let clients = if system == "election" { "" } else { "clients = 3\n" };
    let workload = if system == "election" { "" } else { "[workload]\nops = 300\nkeys = 2\nthink = \"10ms\"\n" };
    let nodes = if system == "register" { 1 } else { 3 };
    let text = format!(
        "title = \"t\"\nsystem = \"{system}\"\nvariant = \"{variant}\"\nnodes = {nodes}\n{clients}duration = \"10s\"\n\
         [nemesis]\nkinds = [{kinds}]\nevery = \"300ms\"\n{workload}"
    );
    Scenario::parse("inline.toml", &text, &SYSTEMS).expect("valid")
}

fn failing_seeds(s: &Scenario, seeds: u64) -> Vec<u64> {
    (0..seeds).filter(|&seed| !run_seed(&SYSTEMS, s, seed, &RunOptions::default()).report.outcome.is_pass()).collect()
}

#[test]
fn only_a_crash_in_a_handler_catches_reply_before_sync() {
    let plain = scenario("register", "reply-before-sync", "\"crash\", \"pause\"");
    assert_eq!(failing_seeds(&plain, 60), Vec::<u64>::new(), "crashes between events never catch it");
    let in_handler = scenario("register", "reply-before-sync", "\"crash-in-handler\"");
    let failing = failing_seeds(&in_handler, 30);
    assert!(!failing.is_empty(), "a crash in the handler catches it");
    let report = run_seed(&SYSTEMS, &in_handler, failing[0], &RunOptions::default()).report;
    assert_eq!(report.failed_check(), Some("linearizable"), "{}", report.to_text());
}

#[test]
fn the_correct_variants_survive_crashes_in_their_handlers() {
    for (system, variant) in [("register", "correct"), ("election", "lease"), ("replication", "correct")] {
        let s = scenario(system, variant, "\"crash-in-handler\"");
        assert_eq!(failing_seeds(&s, 40), Vec::<u64>::new(), "{system} {variant}");
    }
}
