//! `election` as one unit: its `[config]`, checks, progress and wiring.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use harness::check::lease::{LeaseEndsBeforeALaterLeader, LeasesNeverOverlap};
use harness::system::ClientOp;
use harness::system::Progress;
use harness::system::Status;
use harness::system::{Positive, Ppm, Setup, System, Workload};
use harness::{Invariant, NodeId, SimTime};

use super::{Config, ElectionNode, OneLeaderPerTerm, Variant, ONE_LEASE_HOLDER};
use crate::raft::RaftObs;
use crate::raft_checks::{raft_itself, DurableStateNeverGoesBack, PromisesKept, VotesOncePerTerm};

/// The scenario's `[config]` for `election`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// The minimum election timeout; timeouts are drawn from [it, twice it).
    pub election_timeout: Positive,
    pub heartbeat: Positive,
    /// The largest clock drift leases must survive.
    pub max_drift_ppm: Ppm,
}

impl Default for Settings {
    fn default() -> Self {
        let d = Config::default();
        Settings {
            election_timeout: Positive(d.election_timeout),
            heartbeat: Positive(d.heartbeat),
            max_drift_ppm: Ppm(d.max_drift_ppm),
        }
    }
}

/// Raft-style leader election, with leases in some variants.
pub struct Election;

fn config(variant: Variant, s: &Settings) -> Config {
    Config {
        variant,
        election_timeout: s.election_timeout.0,
        heartbeat: s.heartbeat.0,
        max_drift_ppm: s.max_drift_ppm.0,
    }
}

impl System for Election {
    type Node = ElectionNode;
    type Config = Settings;
    type Variant = Variant;

    fn name(&self) -> &'static str {
        "election"
    }
    fn trigger_events(&self) -> &'static [&'static str] {
        crate::raft::TRIGGER_EVENTS
    }
    fn has_clients(&self) -> bool {
        false
    }
    fn workload(&self, _variant: Variant, _config: &Settings) -> Workload {
        Box::new(|_, _, _| unreachable!("election scenarios have no clients, so no workload is drawn"))
    }
    fn validate_op(&self, _op: &ClientOp) -> Result<(), String> {
        Err("election has no clients, so no client operations".into())
    }
    fn invariants(&self, variant: Variant, _config: &Settings) -> Vec<Box<dyn Invariant<RaftObs>>> {
        let mut invariants: Vec<Box<dyn Invariant<RaftObs>>> =
            vec![Box::new(OneLeaderPerTerm::new(|o: &RaftObs| match o {
                RaftObs::BecameLeader { term, .. } => Some(*term),
                _ => None,
            }))];
        invariants.push(Box::new(VotesOncePerTerm::new(raft_itself)));
        invariants.push(Box::new(DurableStateNeverGoesBack::new(raft_itself)));
        if variant.has_leases() {
            invariants.push(Box::new(LeasesNeverOverlap::new(ONE_LEASE_HOLDER)));
            invariants.push(Box::new(LeaseEndsBeforeALaterLeader::new(super::LEADERSHIP, elected_term)));
            invariants.push(Box::new(PromisesKept::new(raft_itself)));
        }
        invariants
    }
    fn progress(&self, _variant: Variant, config: &Settings) -> Progress<ElectionNode> {
        stable_leader(config.heartbeat.0)
    }
    fn factory(&self, setup: &Setup<'_, Self>) -> harness::Factory<ElectionNode> {
        let config = config(setup.variant, setup.config);
        Box::new(move |_id: NodeId, disk: &harness::Disk| ElectionNode::new(config.clone(), disk))
    }
}

/// Progress: a leader elected that stays leader, and up, for three
/// heartbeats, all of them after the heal. Called after every event, so it
/// reads only the observations added since its last call.
///
/// Every node that believes it leads is tracked, not only the latest one
/// elected: a stale leader of an older term may win late (its vote replies
/// held in a pause buffer) and step down at once, while the true leader
/// of a newer term, elected earlier, carries on.
pub fn stable_leader(heartbeat: Duration) -> Progress<ElectionNode> {
    let hold = heartbeat * 3;
    let mut seen = 0;
    // Each node that leads now, and since when.
    let mut leading: BTreeMap<NodeId, SimTime> = BTreeMap::new();
    Box::new(move |view, healed| {
        for o in &view.observations()[seen..] {
            match o.obs {
                RaftObs::BecameLeader { .. } => {
                    leading.insert(o.node, o.time);
                }
                RaftObs::SteppedDown { .. } | RaftObs::Started { .. } => {
                    leading.remove(&o.node);
                }
                _ => {}
            }
        }
        seen = view.observations().len();
        let now = view.now();
        now >= healed.saturating_add(hold)
            && leading.iter().any(|(&leader, &since)| {
                now.saturating_sub(since) >= hold && view.status(leader) == Status::Up && view.started(leader) <= since
            })
    })
}

/// The term of a node's election, for the lease checks.
pub(crate) fn elected_term(o: &RaftObs) -> Option<u64> {
    match o {
        RaftObs::BecameLeader { term, .. } => Some(term.0),
        _ => None,
    }
}
