//! The systems the runner knows, by the name scenario files use. Each entry
//! wires a system of the `systems` crate to the harness: its variants, its
//! checks, its `[config]` keys, its workload, and how to build a run.

use std::time::Duration;

use harness::check::lease::LeasesNeverOverlap;
use harness::check::linearizability::check;
use harness::check::models::Register;
use harness::rng::Rng;
use harness::runner::{ok_after_heal, run, RunOptions, RunOutput, Spec};
use harness::scenario::{Catalog, ClientOp, Dur, Plan, Scenario};
use harness::{NodeId, Value};
use systems::election::{self, ElectionNode, ElectionObs, OneLeaderPerTerm};
use systems::register::{self, RegisterNode};

/// A workload generator: each call draws the next operation over the given
/// number of keys for the given client (from 0); it may remember what it drew.
pub type Workload = Box<dyn FnMut(&mut Rng, u32, u32) -> ClientOp>;

/// One system as the runner sees it.
pub trait SystemEntry: Sync {
    fn name(&self) -> &'static str;
    fn variants(&self) -> &'static [&'static str];
    /// The checks a run can fail, in plain English.
    fn checks(&self) -> Vec<&'static str>;
    fn check_config(&self, config: &toml::Table) -> Result<(), (String, String)>;
    /// A fresh workload generator for one plan: each call draws the next
    /// client operation over `keys` keys (it may remember what it drew).
    fn workload(&self) -> Workload;
    fn run(&self, scenario: &Scenario, plan: &Plan, seed: u64, options: &RunOptions) -> RunOutput;
    fn has_clients(&self) -> bool {
        true
    }
}

pub static SYSTEMS: &[&dyn SystemEntry] = &[&RegisterSystem, &ElectionSystem, &ReplicationSystem];

pub fn find(name: &str) -> Option<&'static dyn SystemEntry> {
    SYSTEMS.iter().copied().find(|s| s.name() == name)
}

/// The catalog scenario files are checked against.
pub struct Registry;

impl Catalog for Registry {
    fn systems(&self) -> Vec<&'static str> {
        SYSTEMS.iter().map(|s| s.name()).collect()
    }
    fn variants(&self, system: &str) -> Vec<&'static str> {
        find(system).map(|s| s.variants().to_vec()).unwrap_or_default()
    }
    fn checks(&self, system: &str) -> Vec<&'static str> {
        find(system).map(|s| s.checks()).unwrap_or_default()
    }
    fn check_config(&self, system: &str, config: &toml::Table) -> Result<(), (String, String)> {
        find(system).map_or(Ok(()), |s| s.check_config(config))
    }
    fn has_clients(&self, system: &str) -> bool {
        find(system).is_some_and(|s| s.has_clients())
    }
}

/// Reads the plan of a scenario for a seed, with the system's workload.
pub fn plan(scenario: &Scenario, seed: u64) -> Plan {
    let system = find(&scenario.system).expect("scenarios are validated against the registry");
    scenario.plan(seed, &mut *system.workload())
}

/// Each client's operations, as the systems' clients take them.
fn client_scripts(plan: &Plan) -> Vec<Vec<systems::ClientOp>> {
    let convert = |op: &ClientOp| systems::ClientOp {
        f: op.f.clone(),
        key: op.key.clone().unwrap_or_default(),
        value: op.value.clone(),
    };
    plan.clients.iter().map(|ops| ops.iter().map(convert).collect()).collect()
}

/// `[config]` keys: each with what it expects.
fn check_keys(config: &toml::Table, known: &[(&str, KeyKind)]) -> Result<(), (String, String)> {
    for (key, value) in config {
        let Some((_, kind)) = known.iter().find(|(k, _)| k == key) else {
            let names: Vec<&str> = known.iter().map(|(k, _)| *k).collect();
            return Err((key.clone(), format!("unknown key; expected one of {}", names.join(", "))));
        };
        let ok = match kind {
            KeyKind::Duration => value.clone().try_into::<Dur>().is_ok_and(|d| !d.0.is_zero()),
            KeyKind::Count(max) => value.as_integer().is_some_and(|i| (0..=*max).contains(&i)),
            KeyKind::Number(max) => number(value).is_some_and(|x| (0.0..=*max).contains(&x)),
            KeyKind::Choice(options) => value.as_str().is_some_and(|v| options.contains(&v)),
        };
        if !ok {
            let what = match kind {
                KeyKind::Duration => "a positive duration like \"200ms\"".to_owned(),
                KeyKind::Count(max) => format!("an integer from 0 to {max}"),
                KeyKind::Number(max) => format!("a number from 0 to {max}"),
                KeyKind::Choice(options) => format!("one of {}", options.join(", ")),
            };
            return Err((key.clone(), format!("expected {what}, found {value}")));
        }
    }
    Ok(())
}

enum KeyKind {
    Duration,
    Count(i64),
    Number(f64),
    Choice(&'static [&'static str]),
}

fn number(value: &toml::Value) -> Option<f64> {
    value.as_float().or_else(|| value.as_integer().map(|i| i as f64))
}

fn duration_key(config: &toml::Table, key: &str) -> Option<Duration> {
    config.get(key).and_then(|v| v.clone().try_into::<Dur>().ok()).map(|d| d.0)
}

struct RegisterSystem;

const REGISTER_KEYS: &[(&str, KeyKind)] =
    &[("request_timeout", KeyKind::Duration), ("retries", KeyKind::Count(10)), ("group_commit", KeyKind::Duration)];

impl SystemEntry for RegisterSystem {
    fn name(&self) -> &'static str {
        "register"
    }
    fn variants(&self) -> &'static [&'static str] {
        register::Variant::NAMES
    }
    fn checks(&self) -> Vec<&'static str> {
        vec![harness::runner::LINEARIZABLE]
    }
    fn check_config(&self, config: &toml::Table) -> Result<(), (String, String)> {
        check_keys(config, REGISTER_KEYS)
    }
    fn workload(&self) -> Workload {
        Box::new(|rng, keys, _client| {
            let key = Some(format!("k{}", rng.below(u64::from(keys.max(1)))));
            let small = |rng: &mut Rng| Value::Int(rng.below(5) as i64);
            match rng.below(10) {
                0..=3 => ClientOp { f: "read".into(), key, value: Value::Null },
                4..=6 => ClientOp { f: "write".into(), key, value: small(rng) },
                _ => ClientOp { f: "cas".into(), key, value: Value::pair(small(rng), small(rng)) },
            }
        })
    }
    fn run(&self, scenario: &Scenario, plan: &Plan, seed: u64, options: &RunOptions) -> RunOutput {
        let defaults = register::Config::default();
        let config = register::Config {
            variant: register::Variant::parse(&scenario.variant).expect("validated variant"),
            request_timeout: duration_key(&scenario.config, "request_timeout").unwrap_or(defaults.request_timeout),
            retries: scenario.config.get("retries").and_then(|v| v.as_integer()).map_or(defaults.retries, |r| r as u32),
            think: scenario.think,
            group_commit: duration_key(&scenario.config, "group_commit").unwrap_or(defaults.group_commit),
        };
        let scripts = client_scripts(plan);
        let spec = Spec {
            factory: Box::new(move |id: NodeId, disk: &harness::Disk| {
                if id.is_server() {
                    RegisterNode::Server(register::Server::new(config.clone(), disk))
                } else {
                    let script = scripts.get(id.index() as usize).cloned().unwrap_or_default();
                    RegisterNode::Client(register::Client::new(config.clone(), NodeId::server(0), script))
                }
            }),
            invariants: Vec::new(),
            linearizability: Some(Box::new(|h, options| {
                // A history the model cannot read is a bug in the client: a crash.
                check(&Register, h, options).unwrap_or_else(|e| panic!("history event {}: {}", e.event, e.message))
            })),
            progress: ok_after_heal(),
        };
        run(scenario, plan, seed, spec, options)
    }
}

struct ElectionSystem;

const ELECTION_KEYS: &[(&str, KeyKind)] = &[
    ("election_timeout", KeyKind::Duration),
    ("heartbeat", KeyKind::Duration),
    ("max_drift_ppm", KeyKind::Number(100_000.0)),
];

fn election_config(scenario: &Scenario) -> election::Config {
    let d = election::Config::default();
    election::Config {
        variant: election::Variant::parse(&scenario.variant).expect("validated variant"),
        election_timeout: duration_key(&scenario.config, "election_timeout").unwrap_or(d.election_timeout),
        heartbeat: duration_key(&scenario.config, "heartbeat").unwrap_or(d.heartbeat),
        max_drift_ppm: scenario.config.get("max_drift_ppm").and_then(number).unwrap_or(d.max_drift_ppm),
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
fn stable_leader(heartbeat: Duration) -> harness::runner::Progress<ElectionNode> {
    let hold = heartbeat * 3;
    let mut seen = 0;
    // Each node that leads now, and since when.
    let mut leading: std::collections::BTreeMap<NodeId, harness::SimTime> = Default::default();
    Box::new(move |view, healed| {
        for o in &view.observations()[seen..] {
            match o.obs {
                ElectionObs::BecameLeader { .. } => {
                    leading.insert(o.node, o.time);
                }
                ElectionObs::SteppedDown { .. } => {
                    leading.remove(&o.node);
                }
                _ => {}
            }
        }
        seen = view.observations().len();
        let now = view.now();
        now >= healed.saturating_add(hold)
            && leading.iter().any(|(&leader, &since)| {
                now.saturating_sub(since) >= hold
                    && view.status(leader) == harness::Status::Up
                    && view.started(leader) <= since
            })
    })
}

impl SystemEntry for ElectionSystem {
    fn name(&self) -> &'static str {
        "election"
    }
    fn variants(&self) -> &'static [&'static str] {
        election::Variant::NAMES
    }
    fn checks(&self) -> Vec<&'static str> {
        vec![election::ONE_LEADER_PER_TERM, election::ONE_LEASE_HOLDER]
    }
    fn check_config(&self, config: &toml::Table) -> Result<(), (String, String)> {
        check_keys(config, ELECTION_KEYS)
    }
    fn has_clients(&self) -> bool {
        false
    }
    fn workload(&self) -> Workload {
        Box::new(|_, _, _| unreachable!("election scenarios have no clients, so no workload is drawn"))
    }
    fn run(&self, scenario: &Scenario, plan: &Plan, seed: u64, options: &RunOptions) -> RunOutput {
        let config = election_config(scenario);
        let heartbeat = config.heartbeat;
        let mut invariants: Vec<Box<dyn harness::Invariant<ElectionObs>>> =
            vec![Box::new(OneLeaderPerTerm::new(|o: &ElectionObs| match o {
                ElectionObs::BecameLeader { term } => Some(*term),
                _ => None,
            }))];
        if config.variant.has_leases() {
            invariants.push(Box::new(LeasesNeverOverlap::new(election::ONE_LEASE_HOLDER)));
        }
        let spec = Spec {
            factory: Box::new(move |_id: NodeId, disk: &harness::Disk| ElectionNode::new(config.clone(), disk)),
            invariants,
            linearizability: None,
            progress: stable_leader(heartbeat),
        };
        run(scenario, plan, seed, spec, options)
    }
}

struct ReplicationSystem;

const REPLICATION_KEYS: &[(&str, KeyKind)] = &[
    ("election_timeout", KeyKind::Duration),
    ("heartbeat", KeyKind::Duration),
    ("request_timeout", KeyKind::Duration),
    ("tries", KeyKind::Count(100)),
    ("sticky_window", KeyKind::Duration),
    ("leader_reads", KeyKind::Choice(&["read-index", "lease"])),
    ("max_drift_ppm", KeyKind::Number(100_000.0)),
];

/// The history the linearizability checker judges: leader reads and every
/// write; session reads are judged only by the session guarantees.
fn linearizable_part(history: &harness::History) -> harness::History {
    harness::History { ops: history.ops.iter().filter(|op| op.f != "session-read").cloned().collect() }
}

/// A session guarantee as an end-of-run check.
fn session_check(guarantee: &'static str) -> Box<dyn harness::Invariant<systems::replication::ReplObs>> {
    use harness::check::session::{SessionFunctions, SessionGuarantee};
    let functions = SessionFunctions {
        reads: vec!["read".into(), "session-read".into()],
        writes: vec!["write".into()],
        cas: vec!["cas".into()],
    };
    Box::new(SessionGuarantee::new(guarantee, functions))
}

/// Progress: after the heal, a write completes and a read completes.
fn write_and_read_after_heal<N: harness::Node>() -> harness::runner::Progress<N> {
    Box::new(|view, healed| {
        let since = view.history().ops.iter().rev().take_while(|op| op.time.is_some_and(|t| t >= healed.0));
        let (mut wrote, mut read) = (false, false);
        for op in since.filter(|op| op.kind == harness::OpType::Ok) {
            wrote |= op.f == "write";
            read |= op.f == "read";
        }
        wrote && read
    })
}

impl SystemEntry for ReplicationSystem {
    fn name(&self) -> &'static str {
        "replication"
    }
    fn variants(&self) -> &'static [&'static str] {
        systems::replication::Variant::NAMES
    }
    fn checks(&self) -> Vec<&'static str> {
        vec![
            election::ONE_LEADER_PER_TERM,
            systems::raft::COMMITTED_NEVER_CHANGE,
            election::ONE_LEASE_HOLDER,
            harness::check::session::READ_YOUR_WRITES,
            harness::check::session::MONOTONIC_READS,
            harness::runner::LINEARIZABLE,
        ]
    }
    fn check_config(&self, config: &toml::Table) -> Result<(), (String, String)> {
        check_keys(config, REPLICATION_KEYS)
    }
    /// Written values are unique within a plan (1, 2, 3, ...), so every
    /// value read names the write that produced it. A client's cas is a
    /// read-modify-write of the key it last wrote, expecting the value it
    /// wrote there: current unless another client wrote the key since, so
    /// about half of them succeed.
    fn workload(&self) -> Workload {
        let mut written = 0i64;
        // Each client's last write: (key, value).
        let mut last: std::collections::BTreeMap<u32, (String, i64)> = Default::default();
        Box::new(move |rng, keys, client| {
            let draw = rng.below(20);
            let random_key = format!("k{}", rng.below(u64::from(keys.max(1))));
            if draw > 9 {
                let f = if draw <= 14 { "read" } else { "session-read" };
                return ClientOp { f: f.into(), key: Some(random_key), value: Value::Null };
            }
            written += 1;
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
    fn run(&self, scenario: &Scenario, plan: &Plan, seed: u64, options: &RunOptions) -> RunOutput {
        use systems::raft::{CommittedNeverChange, RaftObs};
        use systems::replication::{self as repl, ReplObs, ReplicaNode};
        let d = repl::Config::default();
        let config = repl::Config {
            variant: repl::Variant::parse(&scenario.variant).expect("validated variant"),
            raft: systems::raft::RaftConfig {
                election_timeout: duration_key(&scenario.config, "election_timeout").unwrap_or(d.raft.election_timeout),
                heartbeat: duration_key(&scenario.config, "heartbeat").unwrap_or(d.raft.heartbeat),
                max_drift_ppm: scenario.config.get("max_drift_ppm").and_then(number).unwrap_or(d.raft.max_drift_ppm),
                ..d.raft.clone()
            },
            request_timeout: duration_key(&scenario.config, "request_timeout").unwrap_or(d.request_timeout),
            tries: scenario.config.get("tries").and_then(|v| v.as_integer()).map_or(d.tries, |t| t as u32),
            think: scenario.think,
            sticky_window: duration_key(&scenario.config, "sticky_window").unwrap_or(d.sticky_window),
            lease_reads: scenario.config.get("leader_reads").and_then(|v| v.as_str()) == Some("lease"),
        };
        // Each variant lists only the checks that apply to it.
        let mut invariants: Vec<Box<dyn harness::Invariant<ReplObs>>> =
            vec![Box::new(OneLeaderPerTerm::new(|o: &ReplObs| match o.0 {
                RaftObs::BecameLeader { term } => Some(term),
                _ => None,
            }))];
        if config.variant != repl::Variant::AsyncFailover {
            invariants.push(Box::new(CommittedNeverChange::new(|o: &ReplObs| match o.0 {
                RaftObs::Applied { index, term, digest } => Some((index, term, digest)),
                _ => None,
            })));
        }
        if config.uses_leases() {
            invariants.push(Box::new(LeasesNeverOverlap::new(election::ONE_LEASE_HOLDER)));
        }
        invariants.push(session_check(harness::check::session::READ_YOUR_WRITES));
        invariants.push(session_check(harness::check::session::MONOTONIC_READS));
        let scripts = client_scripts(plan);
        let spec = Spec {
            factory: Box::new(move |id: NodeId, disk: &harness::Disk| {
                if id.is_server() {
                    ReplicaNode::Server(Box::new(repl::Server::new(config.clone(), disk)))
                } else {
                    let script = scripts.get(id.index() as usize).cloned().unwrap_or_default();
                    ReplicaNode::Client(Box::new(repl::Client::new(config.clone(), script)))
                }
            }),
            invariants,
            linearizability: Some(Box::new(|h, options| {
                harness::check::linearizability::check(&harness::check::models::Kv, &linearizable_part(h), options)
                    .unwrap_or_else(|e| panic!("history event {}: {}", e.event, e.message))
            })),
            progress: write_and_read_after_heal(),
        };
        run(scenario, plan, seed, spec, options)
    }
}
