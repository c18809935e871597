//! The systems faultline knows, by the names scenario files use. A system
//! is one folder under `systems/src/` (its nodes, variants, `[config]`,
//! workload and checks, behind `harness::system::System`); adding one is
//! one line here.

use harness::runner::{RunOptions, RunOutput};
use harness::scenario::{Plan, Scenario};
use harness::system::Systems;
use systems::{Election, Lock, Queue, Register, Replication, Saga};

/// Every system, and the catalog scenario files are checked against.
pub static SYSTEMS: Systems = Systems::new(&[&Register, &Election, &Replication, &Lock, &Queue, &Saga]);

/// The plan of a scenario for a seed, with its system's workload.
pub fn plan(scenario: &Scenario, seed: u64) -> Plan {
    SYSTEMS.plan(scenario, seed)
}

/// Runs one seed of a scenario with a given plan.
pub fn run(scenario: &Scenario, plan: &Plan, seed: u64, options: &RunOptions) -> RunOutput {
    SYSTEMS.run(scenario, plan, seed, options)
}
