//! Property tests of the tutorial system with the harness's strategies:
//! for any fault plan, network and workload, the correct register passes;
//! and the same property, pointed at a planted bug, finds it and shrinks
//! the fault plan to a minimal one, printed as scenario-file entries.

use std::time::Duration;

use faultline::registry::{self, SYSTEMS};
use harness::runner::RunOptions;
use harness::scenario::{Plan, Scenario};
use harness::strategies::{fault_plan, faults_as_toml, link_config, register_op, workload, Menu};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestError, TestRng, TestRunner};

fn scenario(variant: &str) -> Scenario {
    let text = format!(
        "title = \"property\"\nsystem = \"register\"\nvariant = \"{variant}\"\nclients = 3\nduration = \"10s\"\nliveness = \"20s\"\n"
    );
    Scenario::parse("property.toml", &text, &SYSTEMS).expect("valid scenario")
}

fn run(scenario: &Scenario, plan: &Plan, seed: u64) -> harness::runner::Report {
    registry::run(scenario, plan, seed, &RunOptions::default()).report
}

proptest! {
    #![proptest_config(Config { cases: 64, ..Config::default() })]

    #[test]
    fn the_correct_register_passes_any_fault_plan(
        faults in fault_plan(&Menu::all_but_kill(1, 3), Duration::from_secs(10), 8),
        network in link_config(),
        clients in workload(3, 40, register_op(2)),
        seed in 0u64..1000,
    ) {
        let mut s = scenario("correct");
        s.network = network;
        let plan = Plan { faults, clients, config: s.config.clone(), triggers: Vec::new() };
        let report = run(&s, &plan, seed);
        prop_assert!(report.outcome.is_pass(), "{}\nminimal fault plan:\n{}", report.to_text(), faults_as_toml(&plan.faults));
    }
}

#[test]
fn the_same_property_catches_a_planted_bug_and_shrinks_its_fault_plan() {
    // ack-before-sync loses acknowledged writes only when the server crashes.
    let s = scenario("ack-before-sync");
    let clients = registry::plan(
        &{
            let mut w = s.clone();
            w.ops = 150;
            w.keys = 1;
            w
        },
        1,
    )
    .clients;
    let menu = Menu { kinds: vec!["crash", "pause"], ..Menu::all_but_kill(1, 3) };
    let config = Config { cases: 256, failure_persistence: None, ..Config::default() };
    let mut runner = TestRunner::new_with_rng(config, TestRng::deterministic_rng(RngAlgorithm::ChaCha));
    let result = runner.run(&fault_plan(&menu, Duration::from_secs(10), 6), |faults| {
        let report = run(
            &s,
            &Plan { faults: faults.clone(), clients: clients.clone(), config: s.config.clone(), triggers: Vec::new() },
            1,
        );
        prop_assert!(report.outcome.is_pass());
        Ok(())
    });
    let Err(TestError::Fail(_, minimal)) = result else { panic!("no fault plan exposed ack-before-sync: {result:?}") };
    // Pauses alone cannot lose an acknowledged write: the minimal plan is a
    // few faults with a crash among them (a pause may stay, when it is what
    // times the crash right after an acknowledged write).
    assert!(!minimal.is_empty() && minimal.len() <= 3, "shrunk to a few faults:\n{}", faults_as_toml(&minimal));
    assert!(minimal.iter().any(|f| f.fault.kind() == "crash"), "a crash remains:\n{}", faults_as_toml(&minimal));
    let text = faults_as_toml(&minimal);
    assert!(text.contains("[[fault]]") && text.contains("kind = \"crash\""), "{text}");
}
