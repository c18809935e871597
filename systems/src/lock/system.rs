//! `lock` as one unit: its `[config]`, workload, checks and wiring.

use serde::Deserialize;
use std::time::Duration;

use harness::check::lease::LeasesNeverOverlap;
use harness::check::linearizability::check;
use harness::check::models::Register;
use harness::system::{ClientOp, Count, HistoryCheck, Positive, Ppm, Progress, Setup, System, Workload};
use harness::{History, Invariant, NodeId, OpType, Value};

use super::checks::LOCK_LEASES_NEVER_OVERLAP;
use super::{client::LockClient, resource::Resource, service};
use super::{Config, FencingTokensIncrease, LockNode, LockObs, NoLostUpdates, Variant, WritesInTokenOrder};
use crate::raft::RaftConfig;

/// The scenario's `[config]` for `lock`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    pub election_timeout: Positive,
    pub heartbeat: Positive,
    /// How long a lease lasts.
    pub ttl: Positive,
    /// The longest a client works between its read and its write.
    pub work: Positive,
    /// Between a client's lease check and its write going out.
    pub prepare: Positive,
    pub request_timeout: Positive,
    /// Acquire attempts per cycle.
    pub tries: Count<100>,
    /// The largest clock drift the service's lease timing must survive.
    pub max_drift_ppm: Ppm,
}

impl Default for Settings {
    fn default() -> Self {
        let d = Config::default();
        Settings {
            election_timeout: Positive(d.raft.election_timeout),
            heartbeat: Positive(d.raft.heartbeat),
            ttl: Positive(d.ttl),
            work: Positive(d.work),
            prepare: Positive(d.prepare),
            request_timeout: Positive(d.request_timeout),
            tries: Count(d.tries),
            max_drift_ppm: Ppm(d.raft.max_drift_ppm),
        }
    }
}

fn config(variant: Variant, s: &Settings, think: Duration) -> Config {
    let d = Config::default();
    Config {
        variant,
        raft: RaftConfig {
            election_timeout: s.election_timeout.0,
            heartbeat: s.heartbeat.0,
            max_drift_ppm: s.max_drift_ppm.0,
            ..d.raft
        },
        ttl: s.ttl.0,
        work: s.work.0,
        prepare: s.prepare.0,
        request_timeout: s.request_timeout.0,
        tries: s.tries.0.max(1),
        think,
    }
}

/// Distributed locks with leases and fencing tokens, and the resource they protect.
pub struct Lock;

impl System for Lock {
    type Node = LockNode;
    type Config = Settings;
    type Variant = Variant;

    fn name(&self) -> &'static str {
        "lock"
    }
    /// A lock server and the resource.
    fn min_nodes(&self) -> u32 {
        2
    }
    fn trigger_events(&self) -> &'static [&'static str] {
        super::TRIGGER_EVENTS
    }

    /// Each operation is one cycle on a lock (`l0`, `l1`, ...; one per
    /// key): acquire, read, work, write back plus one, release.
    fn workload(&self, _variant: Variant, _config: &Settings) -> Workload {
        Box::new(|rng, keys, _client| ClientOp {
            f: "update".into(),
            key: Some(format!("l{}", rng.below(u64::from(keys.max(1))))),
            value: Value::Null,
        })
    }

    fn validate_op(&self, op: &ClientOp) -> Result<(), String> {
        match (op.f.as_str(), &op.value, &op.key) {
            ("update", Value::Null, Some(_)) => Ok(()),
            _ => Err(format!(
                "cannot run {:?} with {}; a lock client runs [\"update\", lock] (acquire, read, write, release)",
                op.f, op.value
            )),
        }
    }

    fn invariants(&self, variant: Variant, _config: &Settings) -> Vec<Box<dyn Invariant<LockObs>>> {
        let mut invariants: Vec<Box<dyn Invariant<LockObs>>> = Vec::new();
        if variant.on_raft() {
            invariants.extend(crate::raft_checks::log_properties(LockObs::raft));
        }
        invariants.push(Box::new(LeasesNeverOverlap::new(LOCK_LEASES_NEVER_OVERLAP)));
        if variant != Variant::Redlock {
            // Redlock issues no fencing tokens: there is no order to keep.
            invariants.push(Box::new(FencingTokensIncrease::default()));
            invariants.push(Box::new(WritesInTokenOrder::default()));
        }
        invariants.push(Box::new(NoLostUpdates::default()));
        invariants
    }

    /// The resource's reads and writes, as a register per counter.
    fn linearizability(&self, _variant: Variant, _config: &Settings) -> Option<HistoryCheck> {
        Some(Box::new(|h, options| {
            check(&Register, &resource_part(h), options)
                .unwrap_or_else(|e| panic!("history event {}: {}", e.event, e.message))
        }))
    }

    /// After the heal, some client acquires a lock.
    fn progress(&self, _variant: Variant, _config: &Settings) -> Progress<LockNode> {
        let mut seen = 0;
        Box::new(move |view, healed| {
            let ops = &view.history().ops;
            let new = &ops[seen.min(ops.len())..];
            seen = ops.len();
            new.iter().any(|op| op.kind == OpType::Ok && op.f == "acquire" && op.time.is_some_and(|t| t >= healed.0))
        })
    }

    fn factory(&self, setup: &Setup<'_, Self>) -> harness::Factory<LockNode> {
        let config = config(setup.variant, setup.config, setup.scenario.think);
        let servers = setup.scenario.nodes;
        let scripts: Vec<Vec<crate::ClientOp>> =
            (0..setup.scenario.clients).map(|c| crate::client_script(&setup.script(c))).collect();
        Box::new(move |id: NodeId, disk: &harness::Disk| {
            if id.is_client() {
                let script = scripts.get(id.index() as usize).cloned().unwrap_or_default();
                return LockNode::Client(Box::new(LockClient::new(config.clone(), script)));
            }
            if id.index() + 1 == servers {
                return LockNode::Resource(Box::new(Resource::new(config.variant.fenced(), disk)));
            }
            match config.variant {
                Variant::Redlock => LockNode::Redis(Box::default()),
                Variant::TokenNotPersisted if id.index() == 0 => {
                    LockNode::Single(Box::new(service::SingleServer::new(config.clone(), disk)))
                }
                Variant::TokenNotPersisted => LockNode::Idle,
                _ => LockNode::Service(Box::new(service::Service::new(config.clone(), servers, disk))),
            }
        })
    }
}

/// The resource's reads and writes (the lock operations are judged by the
/// lease and token checks, not as a register).
fn resource_part(history: &History) -> History {
    History { ops: history.ops.iter().filter(|op| op.f == "read" || op.f == "write").cloned().collect() }
}
