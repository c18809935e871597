//! `queue` as one unit: its `[config]`, workload, checks and wiring.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

use harness::check::Invariant;
use harness::system::{ClientOp, Count, Positive, Progress, Setup, Share, Status, System, Workload};
use harness::time::SimTime;
use harness::{NodeId, Value};

use super::checks::{Places, StoreConsistent};
use super::{consumer::Consumer, producer::Producer, service, store::Store};
use super::{Config, EachMessageOnce, NoAcknowledgedPublishLost, OnlyPoisonDeadLettered, QueueNode, QueueObs, Variant};
use crate::raft::RaftConfig;

/// Where the broker keeps its queue.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BrokerKind {
    /// Every server but the store, on the Raft log.
    #[default]
    Raft,
    /// One server (`n1`), its queue synced to its disk.
    Single,
}

/// The scenario's `[config]` for `queue`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    pub election_timeout: Positive,
    pub heartbeat: Positive,
    pub broker: BrokerKind,
    /// Deliveries of a message before it is dead-lettered (at least 1).
    pub max_receives: Count<100>,
    /// How long a delivered message stays invisible without an extension.
    pub visibility_timeout: Positive,
    /// The longest a consumer works on one message.
    pub work: Positive,
    pub request_timeout: Positive,
    /// A consumer's first pause after an empty receive (it doubles with
    /// each empty answer in a row, up to 16 times this).
    pub poll: Positive,
    /// The share of generated publishes that are poison.
    pub poison: Share,
    /// The share of a producer's generated operations that are redrives.
    pub redrive: Share,
}

impl Default for Settings {
    fn default() -> Self {
        let d = Config::default();
        Settings {
            election_timeout: Positive(d.raft.election_timeout),
            heartbeat: Positive(d.raft.heartbeat),
            broker: BrokerKind::Raft,
            max_receives: Count(d.max_receives),
            visibility_timeout: Positive(d.visibility_timeout),
            work: Positive(d.work),
            request_timeout: Positive(d.request_timeout),
            poll: Positive(d.poll),
            poison: Share(0.05),
            redrive: Share(0.005),
        }
    }
}

fn config(variant: Variant, s: &Settings, think: Duration) -> Config {
    let d = Config::default();
    Config {
        variant,
        raft: RaftConfig { election_timeout: s.election_timeout.0, heartbeat: s.heartbeat.0, ..d.raft },
        single_broker: s.broker == BrokerKind::Single,
        max_receives: s.max_receives.0.max(1),
        visibility_timeout: s.visibility_timeout.0,
        work: s.work.0,
        request_timeout: s.request_timeout.0,
        poll: s.poll.0,
        think,
    }
}

/// At-least-once delivery with a dead-letter queue, and idempotent consumers.
pub struct Queue;

impl System for Queue {
    type Node = QueueNode;
    type Config = Settings;
    type Variant = Variant;

    fn name(&self) -> &'static str {
        "queue"
    }
    /// A broker server and the store.
    fn min_nodes(&self) -> u32 {
        2
    }
    /// Consumers are workers: their crash in the middle of a message is
    /// what at-least-once delivery and idempotence exist for. (Producers
    /// may crash too: they resume from their disk.)
    fn clients_crash(&self) -> bool {
        true
    }
    fn trigger_events(&self) -> &'static [&'static str] {
        super::TRIGGER_EVENTS
    }

    /// Even-numbered clients publish (`["publish", account, amount]`, a
    /// share of them `"poison"`, and now and then `["redrive", "dlq"]`);
    /// odd-numbered ones consume (`["consume", "queue"]`, one cycle each).
    fn workload(&self, _variant: Variant, config: &Settings) -> Workload {
        let (poison, redrive) = (config.poison.0, config.redrive.0);
        Box::new(move |rng, keys, client| {
            if client % 2 == 1 {
                return ClientOp { f: "consume".into(), key: Some("queue".into()), value: Value::Null };
            }
            if rng.chance(redrive) {
                return ClientOp { f: "redrive".into(), key: Some("dlq".into()), value: Value::Null };
            }
            let account = format!("a{}", rng.below(u64::from(keys.max(1))));
            let value = if rng.chance(poison) { Value::from("poison") } else { Value::Int(rng.between(1, 100) as i64) };
            ClientOp { f: "publish".into(), key: Some(account), value }
        })
    }

    fn validate_op(&self, op: &ClientOp) -> Result<(), String> {
        let ok = match (op.f.as_str(), &op.value) {
            ("publish", Value::Int(_)) => op.key.is_some(),
            ("publish", Value::Str(s)) => s == "poison" && op.key.is_some(),
            ("redrive" | "consume", Value::Null) => true,
            _ => false,
        };
        if ok {
            return Ok(());
        }
        Err(format!(
            "cannot run {:?} with {}; a queue client runs [\"publish\", account, amount], [\"publish\", account, \"poison\"], [\"redrive\", \"dlq\"] or [\"consume\", \"queue\"]",
            op.f, op.value
        ))
    }

    fn invariants(&self, variant: Variant, settings: &Settings) -> Vec<Box<dyn Invariant<QueueObs>>> {
        let config = config(variant, settings, Duration::ZERO);
        let mut invariants: Vec<Box<dyn Invariant<QueueObs>>> = Vec::new();
        if !config.single() {
            invariants.extend(crate::raft_checks::log_properties(QueueObs::raft));
        }
        invariants.push(Box::new(NoAcknowledgedPublishLost::default()));
        invariants.push(Box::new(EachMessageOnce::default()));
        invariants.push(Box::new(OnlyPoisonDeadLettered::new(config.max_receives)));
        invariants.push(Box::new(StoreConsistent::new()));
        invariants
    }

    /// After the heal, the queue drains: every producer finished its
    /// script, every message left the main queue (applied and acked, or
    /// dead-lettered), and no consumer holds one.
    fn progress(&self, _variant: Variant, _config: &Settings) -> Progress<QueueNode> {
        let mut drain = Drain::default();
        Box::new(move |view, _healed| {
            let observations = view.observations();
            for o in &observations[drain.seen.min(observations.len())..] {
                drain.follow(o.node, o.time, &o.obs);
            }
            drain.seen = observations.len();
            drain.drained(|node| view.started(node), |node| view.status(node) == Status::Killed)
        })
    }

    fn factory(&self, setup: &Setup<'_, Self>) -> harness::Factory<QueueNode> {
        let config = config(setup.variant, setup.config, setup.scenario.think);
        let servers = setup.scenario.nodes;
        let scripts: Vec<Vec<crate::ClientOp>> =
            (0..setup.scenario.clients).map(|c| crate::client_script(&setup.script(c))).collect();
        Box::new(move |id: NodeId, disk: &harness::Disk| {
            if id.is_client() {
                let script = scripts.get(id.index() as usize).cloned().unwrap_or_default();
                let produces = script.iter().any(|op| op.f != "consume");
                if produces || (script.is_empty() && id.index() % 2 == 0) {
                    return QueueNode::Producer(Box::new(Producer::new(config.clone(), script, disk)));
                }
                return QueueNode::Consumer(Box::new(Consumer::new(config.clone())));
            }
            if id.index() + 1 == servers {
                return QueueNode::Store(Box::new(Store::new(disk)));
            }
            match (config.single(), id.index()) {
                (true, 0) => QueueNode::Single(Box::new(service::SingleBroker::new(config.clone(), disk))),
                (true, _) => QueueNode::Idle,
                (false, _) => QueueNode::Broker(Box::new(service::Broker::new(config.clone(), servers, disk))),
            }
        })
    }
}

/// What the liveness phase waits for, followed one observation at a time.
#[derive(Default)]
struct Drain {
    seen: usize,
    /// Each producer: when it last (re)started, and whether its script is done since.
    producers: BTreeMap<NodeId, (SimTime, bool)>,
    /// Each consumer: when it last took a message, if it still holds it.
    consumers: BTreeMap<NodeId, Option<SimTime>>,
    places: Places,
}

impl Drain {
    fn follow(&mut self, node: NodeId, time: SimTime, obs: &QueueObs) {
        match obs {
            QueueObs::Producing { .. } => {
                self.producers.insert(node, (time, false));
            }
            QueueObs::ScriptDone => {
                self.producers.insert(node, (time, true));
            }
            QueueObs::Received { .. } => {
                self.consumers.insert(node, Some(time));
            }
            QueueObs::Done { .. } => {
                self.consumers.insert(node, None);
            }
            obs => {
                self.places.follow(obs, time);
            }
        }
    }

    /// `started` says when a node last started (a consumer that restarted
    /// since it took its message holds nothing), `killed` whether it is
    /// gone for good (a killed producer publishes nothing more, a killed
    /// consumer's message comes back when its visibility runs out).
    fn drained(&self, started: impl Fn(NodeId) -> SimTime, killed: impl Fn(NodeId) -> bool) -> bool {
        self.producers.iter().all(|(&p, (_, done))| *done || killed(p))
            && !self.places.any_queued()
            && self.consumers.iter().all(|(&c, holding)| holding.is_none_or(|since| started(c) > since || killed(c)))
    }
}
