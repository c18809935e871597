//! `replication` as one unit: its `[config]`, workload, checks and wiring.

use std::collections::BTreeMap;

use serde::Deserialize;

use harness::check::counter::{counter_keys, CounterFunctions, CountsEachIncrementOnce};
use harness::check::lease::{LeaseEndsBeforeALaterLeader, LeasesNeverOverlap};
use harness::check::linearizability::check;
use harness::check::models::Kv;
use harness::check::session::{SessionFunctions, SessionGuarantee, MONOTONIC_READS, READ_YOUR_WRITES};
use harness::system::ClientOp;
use harness::system::{Count, Positive, Ppm, Setup, System, Workload};
use harness::system::{HistoryCheck, Progress};
use harness::{History, Invariant, NodeId, OpType, Value};

use super::{Config, FailoverServer, ReplObs, ReplicaNode, Server, Variant};
use crate::election::{OneLeaderPerTerm, ONE_LEASE_HOLDER};
use crate::raft::{RaftConfig, RaftObs};
use crate::raft_checks::PromisesKept;

/// How the leader serves `read`s.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LeaderReads {
    /// Confirm leadership with a heartbeat round first.
    #[default]
    ReadIndex,
    /// Answer from a lease.
    Lease,
}

/// The largest amount one `incr` may add or take away.
const MAX_INCREMENT: u64 = 1_000_000_000;

/// What the generated workload does.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Operations {
    /// Reads, writes and compare-and-sets of integer registers (`k0`, ...).
    #[default]
    Registers,
    /// As well, appends to lists (`l0`, ...; Elle's list-append) and
    /// increments of counters (`c0`, ...): neither is idempotent, so one
    /// applied twice shows in every later read.
    Mixed,
}

/// The scenario's `[config]` for `replication`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    pub election_timeout: Positive,
    pub heartbeat: Positive,
    pub request_timeout: Positive,
    /// Tries per request (new servers on timeouts and redirects).
    pub tries: Count<100>,
    /// `sticky-leader-window`: how long after a write reads stick to the leader.
    pub sticky_window: Positive,
    pub leader_reads: LeaderReads,
    /// The largest clock drift leases must survive.
    pub max_drift_ppm: Ppm,
    pub operations: Operations,
}

impl Default for Settings {
    fn default() -> Self {
        let d = Config::default();
        Settings {
            election_timeout: Positive(d.raft.election_timeout),
            heartbeat: Positive(d.raft.heartbeat),
            request_timeout: Positive(d.request_timeout),
            tries: Count(d.tries),
            sticky_window: Positive(d.sticky_window),
            leader_reads: LeaderReads::ReadIndex,
            max_drift_ppm: Ppm(d.raft.max_drift_ppm),
            operations: Operations::Registers,
        }
    }
}

/// A key-value store on the Raft log, with sessions.
pub struct Replication;

fn config(variant: Variant, s: &Settings, think: std::time::Duration) -> Config {
    let d = Config::default();
    Config {
        variant,
        raft: RaftConfig {
            election_timeout: s.election_timeout.0,
            heartbeat: s.heartbeat.0,
            max_drift_ppm: s.max_drift_ppm.0,
            ..d.raft
        },
        request_timeout: s.request_timeout.0,
        tries: s.tries.0,
        think,
        sticky_window: s.sticky_window.0,
        lease_reads: s.leader_reads == LeaderReads::Lease,
    }
}

impl System for Replication {
    type Node = ReplicaNode;
    type Config = Settings;
    type Variant = Variant;

    fn name(&self) -> &'static str {
        "replication"
    }
    fn trigger_events(&self) -> &'static [&'static str] {
        crate::raft::TRIGGER_EVENTS
    }

    /// Written values are unique within a plan (1, 2, 3, ...), so every
    /// value read names the write that produced it. A client's cas is a
    /// read-modify-write of the key it last wrote, expecting the value it
    /// wrote there: current unless another client wrote the key since, so
    /// about half of them succeed. With `operations = "mixed"`, a third of
    /// the writes append to a list and a third increment a counter, and
    /// reads spread over the three kinds of key.
    fn workload(&self, _variant: Variant, config: &Settings) -> Workload {
        let mixed = config.operations == Operations::Mixed;
        let mut written = 0i64;
        // Each client's last write: (key, value).
        let mut last: BTreeMap<u32, (String, i64)> = BTreeMap::new();
        Box::new(move |rng, keys, client| {
            let draw = rng.below(20);
            let family = if mixed { ["k", "l", "c"][rng.below(3) as usize] } else { "k" };
            let random_key = format!("{family}{}", rng.below(u64::from(keys.max(1))));
            if draw > 9 {
                let f = if draw <= 14 { "read" } else { "session-read" };
                return ClientOp { f: f.into(), key: Some(random_key), value: Value::Null };
            }
            written += 1;
            match family {
                "l" => return ClientOp { f: "append".into(), key: Some(random_key), value: Value::Int(written) },
                "c" => {
                    let by = 1 + rng.below(3) as i64;
                    return ClientOp { f: "incr".into(), key: Some(random_key), value: Value::Int(by) };
                }
                _ => {}
            }
            let mine = last.get(&client).cloned();
            if draw <= 6 || mine.is_none() {
                last.insert(client, (random_key.clone(), written));
                return ClientOp { f: "write".into(), key: Some(random_key), value: Value::Int(written) };
            }
            let (key, expected) = mine.expect("checked above");
            last.insert(client, (key.clone(), written));
            ClientOp { f: "cas".into(), key: Some(key), value: Value::pair(Value::Int(expected), Value::Int(written)) }
        })
    }

    fn validate_op(&self, op: &ClientOp) -> Result<(), String> {
        match (op.f.as_str(), &op.value, &op.key) {
            // A counter stays far from overflow: MAX_OPS increments of at
            // most this much each (the store wraps; the counter check does not).
            ("incr", Value::Int(by), _) if by.unsigned_abs() > MAX_INCREMENT => {
                Err(format!("incr adds at most {MAX_INCREMENT} either way, not {by}"))
            }
            ("append" | "incr", Value::Int(_), Some(_)) => Ok(()),
            ("append" | "incr", Value::Int(_), None) => {
                Err(format!("`{}` needs a key, like [\"{}\", \"l0\", 1]", op.f, op.f))
            }
            _ => crate::validate_register_op(op, true).map_err(|e| {
                format!(
                    "{e}; replication also runs [\"append\", key, integer] (to a list) and [\"incr\", key, integer]"
                )
            }),
        }
    }

    /// Each variant builds only the checks that apply to it.
    fn invariants(&self, variant: Variant, settings: &Settings) -> Vec<Box<dyn Invariant<ReplObs>>> {
        let mut invariants: Vec<Box<dyn Invariant<ReplObs>>> = Vec::new();
        if variant == Variant::AsyncFailover {
            // No log: election safety only. (Nor "takes effect at most once":
            // a write lost with its primary and retried on the next would
            // read as applied twice.)
            invariants.push(Box::new(OneLeaderPerTerm::new(|o: &ReplObs| match o.raft()? {
                RaftObs::BecameLeader { term, .. } => Some(*term),
                _ => None,
            })));
        } else {
            invariants.extend(crate::raft_checks::log_properties(ReplObs::raft));
            invariants.push(Box::new(super::effects::TakesEffectOnce::default()));
        }
        // The primary-backup server has no leases, whatever `leader_reads` says.
        if variant != Variant::AsyncFailover && config(variant, settings, std::time::Duration::ZERO).uses_leases() {
            invariants.push(Box::new(LeasesNeverOverlap::new(ONE_LEASE_HOLDER)));
            let elected = |o: &ReplObs| crate::election::system::elected_term(o.raft()?);
            invariants.push(Box::new(LeaseEndsBeforeALaterLeader::new(crate::election::LEADERSHIP, elected)));
            invariants.push(Box::new(PromisesKept::new(raft_fact)));
        }
        let functions = SessionFunctions {
            reads: vec!["read".into(), "session-read".into()],
            writes: vec!["write".into()],
            cas: vec!["cas".into()],
        };
        invariants.push(Box::new(SessionGuarantee::new(READ_YOUR_WRITES, functions.clone())));
        invariants.push(Box::new(SessionGuarantee::new(MONOTONIC_READS, functions)));
        invariants.push(Box::new(CountsEachIncrementOnce::new(counter_functions())));
        invariants
    }

    fn linearizability(&self, _variant: Variant, _config: &Settings) -> Option<HistoryCheck> {
        Some(Box::new(|h, options| {
            check(&Kv, &linearizable_part(h), options)
                .unwrap_or_else(|e| panic!("history event {}: {}", e.event, e.message))
        }))
    }

    fn progress(&self, _variant: Variant, _config: &Settings) -> Progress<ReplicaNode> {
        write_and_read_after_heal()
    }

    fn factory(&self, setup: &Setup<'_, Self>) -> harness::Factory<ReplicaNode> {
        let config = config(setup.variant, setup.config, setup.scenario.think);
        let scripts: Vec<Vec<crate::ClientOp>> =
            (0..setup.scenario.clients).map(|c| crate::client_script(&setup.script(c))).collect();
        Box::new(move |id: NodeId, disk: &harness::Disk| {
            if id.is_server() && config.variant == Variant::AsyncFailover {
                ReplicaNode::Failover(Box::new(FailoverServer::new(config.clone())))
            } else if id.is_server() {
                ReplicaNode::Server(Box::new(Server::new(config.clone(), disk)))
            } else {
                let script = scripts.get(id.index() as usize).cloned().unwrap_or_default();
                ReplicaNode::Client(Box::new(super::client(&config, script)))
            }
        })
    }
}

/// Raft's fact in a replication observation.
fn raft_fact(o: &ReplObs) -> Option<&RaftObs> {
    o.raft()
}

/// The history the linearizability checker judges: leader reads and every
/// write; session reads are judged only by the session guarantees.
/// What the linearizability checker judges: not session reads (served by
/// any replica), nor counters (judged by bounds: see `counter_functions`).
fn linearizable_part(history: &History) -> History {
    let counters = counter_keys(history, &counter_functions());
    let judged = |op: &&harness::Op| op.f != "session-read" && op.key.as_ref().is_none_or(|k| !counters.contains(k));
    History { ops: history.ops.iter().filter(judged).cloned().collect() }
}

/// Counters are judged by Jepsen's bounds on each linearizable read, not
/// by the linearizability search, which is exponential in the increments
/// whose outcome is unknown.
fn counter_functions() -> CounterFunctions {
    CounterFunctions { incr: "incr".into(), reads: vec!["read".into()], weaker_reads: vec!["session-read".into()] }
}

/// Progress: after the heal, a write completes and a read completes.
/// Asked after every event: it reads only the history recorded since it
/// last looked.
fn write_and_read_after_heal() -> Progress<ReplicaNode> {
    let (mut seen, mut wrote, mut read) = (0, false, false);
    Box::new(move |view, healed| {
        let ops = &view.history().ops;
        let new = ops[seen.min(ops.len())..].iter().filter(|op| op.time.is_some_and(|t| t >= healed.0));
        for op in new.filter(|op| op.kind == OpType::Ok) {
            wrote |= op.f == "write";
            read |= op.f == "read";
        }
        seen = ops.len();
        wrote && read
    })
}
