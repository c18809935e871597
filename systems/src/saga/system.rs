//! `saga` as one unit: its `[config]`, workload, checks and wiring.

use serde::Deserialize;
use std::collections::BTreeMap;

use harness::check::Invariant;
use harness::system::{ClientOp, Count, Positive, Progress, Setup, Share, Status, System, Workload};
use harness::time::SimTime;
use harness::{NodeId, Value};

use super::checks::{
    AllDecideAlike, EffectAtMostOnce, EndsAllOrNothing, NoStepAfterCompensation, QuantitiesConserved,
    StepsRestOnEarlier,
};
use super::{client::SagaClient, coordinator::Coordinator, orchestrator::Orchestrator, service::Service};
use super::{Config, SagaNode, SagaObs, Variant};

/// The scenario's `[config]` for `saga`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// The orchestrator's (or coordinator's) wait for a service's answer;
    /// choreographed, a service's first wait for an acknowledgement.
    pub retry: Positive,
    /// Orchestrated: sends of a step before it is given up and compensated.
    pub step_tries: Count<100>,
    /// A client's wait for a saga's outcome.
    pub request_timeout: Positive,
    /// The share of generated sagas that a service refuses.
    pub fail: Share,
}

impl Default for Settings {
    fn default() -> Self {
        let d = Config::default();
        Settings {
            retry: Positive(d.retry),
            step_tries: Count(d.step_tries),
            request_timeout: Positive(d.request_timeout),
            fail: Share(0.2),
        }
    }
}

fn config(variant: Variant, s: &Settings, think: std::time::Duration) -> Config {
    Config {
        variant,
        retry: s.retry.0,
        step_tries: s.step_tries.0.max(1),
        request_timeout: s.request_timeout.0,
        think,
        ..Config::default()
    }
}

/// Sagas across services, orchestrated or choreographed, and two-phase
/// commit beside them.
pub struct Saga;

impl System for Saga {
    type Node = SagaNode;
    type Config = Settings;
    type Variant = Variant;

    fn name(&self) -> &'static str {
        "saga"
    }
    /// A service and the orchestrator.
    fn min_nodes(&self) -> u32 {
        2
    }
    fn trigger_events(&self) -> &'static [&'static str] {
        super::TRIGGER_EVENTS
    }

    /// `["book", "trip", amount]`; a share (`fail`) refused at step 0, 1 or
    /// 2 (with fewer services, a refusal at a step that does not exist
    /// never comes and the saga completes; with more, later steps are
    /// never refused).
    fn workload(&self, _variant: Variant, config: &Settings) -> Workload {
        let fail = config.fail.0;
        Box::new(move |rng, _keys, _client| {
            let amount = Value::Int(rng.between(1, 10) as i64);
            let value =
                if rng.chance(fail) { Value::List(vec![amount, Value::Int(rng.below(3) as i64)]) } else { amount };
            ClientOp { f: "book".into(), key: Some("trip".into()), value }
        })
    }

    fn validate_op(&self, op: &ClientOp) -> Result<(), String> {
        let ok = match (op.f.as_str(), &op.value) {
            ("book", Value::Int(n)) => *n >= 0,
            ("book", Value::List(v)) => matches!(v.as_slice(), [Value::Int(n), Value::Int(s)] if *n >= 0 && *s >= 0),
            _ => false,
        };
        if ok {
            return Ok(());
        }
        Err(format!(
            "cannot run {:?} with {}; a saga client runs [\"book\", \"trip\", amount] or [\"book\", \"trip\", [amount, refused_at_step]]",
            op.f, op.value
        ))
    }

    /// Two-phase commit prepares every step at once, so "a saga never
    /// holds a step without the steps before it" and "no step takes effect
    /// after its saga was compensated" are the saga's alone; "all
    /// participants decide alike" is 2PC's.
    fn invariants(&self, variant: Variant, _config: &Settings) -> Vec<Box<dyn Invariant<SagaObs>>> {
        // The most specific first: a step reserved again after its release
        // is reported as what it is.
        let mut invariants: Vec<Box<dyn Invariant<SagaObs>>> = Vec::new();
        if variant == Variant::TwoPhaseCommit {
            // Prepares go out together: an abort at one service may come
            // before another's prepare. Each service's own order (no
            // prepare after its abort) is "takes effect at most once".
            invariants.push(Box::new(AllDecideAlike::default()));
        } else {
            invariants.push(Box::new(NoStepAfterCompensation::default()));
            invariants.push(Box::new(StepsRestOnEarlier::default()));
        }
        invariants.push(Box::new(EffectAtMostOnce::default()));
        invariants.push(Box::new(QuantitiesConserved::new(Config::default().capacity)));
        invariants.push(Box::new(EndsAllOrNothing::default()));
        invariants
    }

    /// After the heal, every client's script is done and no node holds
    /// unfinished work: the orchestrator (or coordinator) no unfinished
    /// saga, a choreographed service no unacknowledged event.
    fn progress(&self, _variant: Variant, _config: &Settings) -> Progress<SagaNode> {
        let mut seen = 0;
        let mut clients: BTreeMap<NodeId, bool> = BTreeMap::new();
        let mut unfinished: BTreeMap<NodeId, (u32, SimTime)> = BTreeMap::new();
        Box::new(move |view, _healed| {
            let observations = view.observations();
            for o in &observations[seen.min(observations.len())..] {
                match o.obs {
                    SagaObs::Starting => {
                        clients.insert(o.node, false);
                    }
                    SagaObs::ScriptDone => {
                        clients.insert(o.node, true);
                    }
                    SagaObs::Unfinished { count } => {
                        unfinished.insert(o.node, (count, o.time));
                    }
                    SagaObs::Effect { .. }
                    | SagaObs::Decided { .. }
                    | SagaObs::Serving { .. }
                    | SagaObs::Told { .. } => {}
                }
            }
            seen = observations.len();
            // A count holds for the incarnation that reported it, and a
            // dead node finishes nothing more.
            let idle = !unfinished.is_empty()
                && unfinished.iter().all(|(&node, &(count, at))| {
                    count == 0 && view.started(node) <= at && view.status(node) == Status::Up
                });
            idle && clients.values().all(|done| *done)
        })
    }

    fn factory(&self, setup: &Setup<'_, Self>) -> harness::Factory<SagaNode> {
        let config = config(setup.variant, setup.config, setup.scenario.think);
        let servers = setup.scenario.nodes;
        let scripts: Vec<Vec<crate::ClientOp>> =
            (0..setup.scenario.clients).map(|c| crate::client_script(&setup.script(c))).collect();
        Box::new(move |id: NodeId, disk: &harness::Disk| {
            if id.is_client() {
                let script = scripts.get(id.index() as usize).cloned().unwrap_or_default();
                return SagaNode::Client(Box::new(SagaClient::new(config.clone(), script)));
            }
            if config.variant.choreographed() {
                return SagaNode::Service(Box::new(Service::new(&config, disk)));
            }
            if id.index() + 1 == servers && config.variant == Variant::TwoPhaseCommit {
                return SagaNode::Coordinator(Box::new(Coordinator::new(config.clone(), disk)));
            }
            if id.index() + 1 == servers {
                return SagaNode::Orchestrator(Box::new(Orchestrator::new(config.clone(), disk)));
            }
            SagaNode::Service(Box::new(Service::new(&config, disk)))
        })
    }
}
