//! For any fault plan (every fault kind but `kill`, on 3 to 5 servers), the
//! correct variants of `election`, `replication`, `lock` and `queue` keep their invariants
//! and make progress after the heal. A failure shrinks to a minimal plan,
//! printed as `[[fault]]` entries.

use std::time::Duration;

use faultline::registry::{self, SYSTEMS};
use harness::runner::RunOptions;
use harness::scenario::{Plan, Scenario};
use harness::strategies::{fault_plan, faults_as_toml, Menu};
use proptest::prelude::*;

fn scenario(text: &str) -> Scenario {
    Scenario::parse("property.toml", text, &SYSTEMS).expect("valid scenario")
}

fn check(s: &Scenario, faults: Vec<harness::scenario::TimedFault>, seed: u64) -> Result<(), TestCaseError> {
    let mut plan = registry::plan(s, seed);
    plan = Plan { faults, ..plan };
    let report = registry::run(s, &plan, seed, &RunOptions::default()).report;
    prop_assert!(
        report.outcome.is_pass(),
        "{}\nminimal fault plan:\n{}",
        report.to_text(),
        faults_as_toml(&plan.faults)
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn correct_election_survives_any_fault_plan(
        faults in fault_plan(&Menu::all_but_kill(3, 0), Duration::from_secs(20), 10),
        seed in 0u64..1000,
    ) {
        let s = scenario("title = \"p\"\nsystem = \"election\"\nvariant = \"lease\"\nnodes = 3\nduration = \"20s\"\n[clocks]\ndrift_ppm = 200\n");
        check(&s, faults, seed)?;
    }

    #[test]
    fn correct_replication_survives_any_fault_plan(
        faults in fault_plan(&Menu::all_but_kill(5, 3), Duration::from_secs(20), 10),
        seed in 0u64..1000,
    ) {
        let s = scenario("title = \"p\"\nsystem = \"replication\"\nnodes = 5\nclients = 3\nduration = \"20s\"\n[network]\nloss = 0.02\n[workload]\nops = 200\nkeys = 2\nthink = \"40ms\"\n");
        check(&s, faults, seed)?;
    }

    #[test]
    fn correct_lock_survives_any_fault_plan(
        faults in fault_plan(&Menu::all_but_kill(4, 3), Duration::from_secs(20), 10),
        seed in 0u64..1000,
    ) {
        let s = scenario("title = \"p\"\nsystem = \"lock\"\nnodes = 4\nclients = 3\nduration = \"20s\"\n[network]\nloss = 0.02\nduplicate = 0.05\n[clocks]\ndrift_ppm = 200\n[workload]\nops = 60\nkeys = 2\n");
        check(&s, faults, seed)?;
    }

    /// `random` here picks among the producers and consumers too.
    #[test]
    fn correct_queue_survives_any_fault_plan(
        faults in fault_plan(&Menu::all_but_kill(4, 4), Duration::from_secs(20), 10),
        seed in 0u64..1000,
    ) {
        let s = scenario("title = \"p\"\nsystem = \"queue\"\nnodes = 4\nclients = 4\nduration = \"20s\"\n[network]\nloss = 0.02\nduplicate = 0.05\n[clocks]\ndrift_ppm = 200\n[workload]\nops = 200\nkeys = 2\n");
        check(&s, faults, seed)?;
    }

    #[test]
    fn correct_orchestrated_saga_survives_any_fault_plan(
        faults in fault_plan(&Menu::all_but_kill(4, 3), Duration::from_secs(20), 10),
        seed in 0u64..1000,
    ) {
        let s = scenario("title = \"p\"\nsystem = \"saga\"\nvariant = \"orchestrated\"\nnodes = 4\nclients = 3\nduration = \"20s\"\nliveness = \"60s\"\n[network]\nloss = 0.02\nduplicate = 0.05\n[workload]\nops = 150\nthink = \"50ms\"\n");
        check(&s, faults, seed)?;
    }

    /// Every server is a service here: `random` and the menu's nodes are services.
    #[test]
    fn correct_choreographed_saga_survives_any_fault_plan(
        faults in fault_plan(&Menu::all_but_kill(3, 3), Duration::from_secs(20), 10),
        seed in 0u64..1000,
    ) {
        let s = scenario("title = \"p\"\nsystem = \"saga\"\nvariant = \"choreographed\"\nnodes = 3\nclients = 3\nduration = \"20s\"\nliveness = \"60s\"\n[network]\nloss = 0.02\nduplicate = 0.05\n[workload]\nops = 150\nthink = \"50ms\"\n");
        check(&s, faults, seed)?;
    }

    #[test]
    fn two_phase_commit_survives_any_fault_plan(
        faults in fault_plan(&Menu::all_but_kill(4, 3), Duration::from_secs(20), 10),
        seed in 0u64..1000,
    ) {
        let s = scenario("title = \"p\"\nsystem = \"saga\"\nvariant = \"two-phase-commit\"\nnodes = 4\nclients = 3\nduration = \"20s\"\nliveness = \"60s\"\n[network]\nloss = 0.02\nduplicate = 0.05\n[workload]\nops = 150\nthink = \"50ms\"\n");
        check(&s, faults, seed)?;
    }
}
