//! `register` as one unit: its `[config]`, workload, checks and wiring.

use serde::Deserialize;

use harness::check::linearizability::check;
use harness::check::models::Register as RegisterModel;
use harness::node::NoObservation;
use harness::system::ClientOp;
use harness::system::{ok_after_heal, HistoryCheck, Progress};
use harness::system::{Count, Positive, Setup, System, Workload};
use harness::{Invariant, NodeId, Value};

use super::{Config, RegisterNode, Server, Variant};

/// The scenario's `[config]` for `register`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// How long a client waits for a reply before resending.
    pub request_timeout: Positive,
    /// Resends before the operation is recorded as indeterminate.
    pub retries: Count<10>,
    /// How often the `ack-before-sync` server syncs its batch.
    pub group_commit: Positive,
}

impl Default for Settings {
    fn default() -> Self {
        let d = Config::default();
        Settings {
            request_timeout: Positive(d.request_timeout),
            retries: Count(d.retries),
            group_commit: Positive(d.group_commit),
        }
    }
}

/// The tutorial system: one server, clients reading, writing and cas-ing.
pub struct Register;

impl System for Register {
    type Node = RegisterNode;
    type Config = Settings;
    type Variant = Variant;

    fn name(&self) -> &'static str {
        "register"
    }
    /// Written values are unique within a plan (1, 2, 3, ...), so a value
    /// read names its write and timed-out writes nobody read cost the
    /// checker nothing. A client's cas is a read-modify-write of the key it
    /// last wrote, expecting the value it wrote there: current unless
    /// another client wrote the key since.
    fn workload(&self, _variant: Variant, _config: &Settings) -> Workload {
        let mut written = 0i64;
        let mut last: std::collections::BTreeMap<u32, (String, i64)> = Default::default();
        Box::new(move |rng, keys, client| {
            let draw = rng.below(10);
            let random_key = format!("k{}", rng.below(u64::from(keys.max(1))));
            if draw <= 3 {
                return ClientOp { f: "read".into(), key: Some(random_key), value: Value::Null };
            }
            written += 1;
            match last.get(&client).cloned() {
                Some((key, expected)) if draw > 6 => {
                    last.insert(client, (key.clone(), written));
                    ClientOp {
                        f: "cas".into(),
                        key: Some(key),
                        value: Value::pair(Value::Int(expected), Value::Int(written)),
                    }
                }
                _ => {
                    last.insert(client, (random_key.clone(), written));
                    ClientOp { f: "write".into(), key: Some(random_key), value: Value::Int(written) }
                }
            }
        })
    }
    fn validate_op(&self, op: &ClientOp) -> Result<(), String> {
        crate::validate_register_op(op, false)
    }
    fn invariants(&self, _variant: Variant, _config: &Settings) -> Vec<Box<dyn Invariant<NoObservation>>> {
        Vec::new()
    }
    fn linearizability(&self, _variant: Variant, _config: &Settings) -> Option<HistoryCheck> {
        Some(Box::new(|h, options| {
            // A history the model cannot read is a bug in the client: a crash.
            check(&RegisterModel, h, options).unwrap_or_else(|e| panic!("history event {}: {}", e.event, e.message))
        }))
    }
    fn progress(&self, _variant: Variant, _config: &Settings) -> Progress<RegisterNode> {
        ok_after_heal()
    }
    fn factory(&self, setup: &Setup<'_, Self>) -> harness::Factory<RegisterNode> {
        let s = setup.config;
        let config = Config {
            variant: setup.variant,
            request_timeout: s.request_timeout.0,
            retries: s.retries.0,
            think: setup.scenario.think,
            group_commit: s.group_commit.0,
        };
        let scripts: Vec<Vec<crate::ClientOp>> =
            (0..setup.scenario.clients).map(|c| crate::client_script(&setup.script(c))).collect();
        Box::new(move |id: NodeId, disk: &harness::Disk| {
            if id.is_server() {
                RegisterNode::Server(Server::new(config.clone(), disk))
            } else {
                let script = scripts.get(id.index() as usize).cloned().unwrap_or_default();
                RegisterNode::Client(super::client(&config, NodeId::server(0), script))
            }
        })
    }
}
