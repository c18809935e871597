//! Writing a plan back out as an explicit scenario file (what `shrink` keeps).

use toml::Spanned;

use super::*;
use crate::fault::{Fault, Shape, Target};
use crate::net::Latency;
use crate::node::NodeId;

/// Writes a scenario back out with an explicit plan: the given faults as
/// `[[fault]]` entries, the given client scripts, no nemesis, a fixed seed.
pub fn write_explicit(scenario: &Scenario, plan: &Plan, seed: u64, title: &str) -> String {
    let mut file = scenario.file.clone();
    file.title = title.to_owned();
    file.seed = Some(seed);
    file.seeds = Spanned::new(0..0, 1);
    file.nemesis = None;
    // The seed's knobs, drawn: the file reproduces this one run.
    if !plan.config.is_empty() {
        file.config = Some(Spanned::new(0..0, plan.config.clone()));
    }
    file.clients = Spanned::new(0..0, plan.clients.len() as u32);
    file.fault = plan.faults.iter().map(|f| Spanned::new(0..0, fault_entry(f))).collect();
    file.trigger = plan.triggers.iter().map(|t| sp(trigger_entry(t))).collect();
    file.workload.ops = None;
    file.workload.client = plan
        .clients
        .iter()
        .enumerate()
        .filter(|(_, ops)| !ops.is_empty())
        .map(|(i, ops)| {
            let ops = ops
                .iter()
                .map(|op| {
                    let mut parts = vec![
                        toml::Value::String(op.f.clone()),
                        toml::Value::String(op.key.clone().unwrap_or_default()),
                    ];
                    if !op.value.is_null() {
                        parts.push(value_to_toml(&op.value));
                    }
                    toml::Value::Array(parts)
                })
                .collect();
            Spanned::new(0..0, ClientScript { name: NodeId::client(i as u32).to_string(), ops })
        })
        .collect();
    toml::to_string(&file).expect("scenario files serialise")
}

/// A value with no place in a file (one the program writes).
pub(super) fn sp<T>(value: T) -> Spanned<T> {
    Spanned::new(0..0, value)
}

pub(super) fn target_keys(t: &Target, e: &mut FaultEntry) {
    let s = |v: String| Some(sp(v));
    match t {
        Target::Node(n) => e.node = s(n.to_string()),
        Target::Nodes(ns) => e.nodes = Some(Spanned::new(0..0, ns.iter().map(|n| n.to_string()).collect())),
        Target::Random => e.target = s("random".into()),
        Target::Leader => e.target = s("leader".into()),
        Target::Minority => e.target = s("minority".into()),
        Target::Majority => e.target = s("majority".into()),
        Target::All => e.target = s("all".into()),
    }
}

pub(super) fn latency_spec(l: &Latency) -> LatencySpec {
    let mut spec = LatencySpec { dist: String::new(), value: None, min: None, max: None, mean: None, alpha: None };
    match *l {
        Latency::Constant(d) => (spec.dist, spec.value) = ("constant".into(), Some(Dur(d))),
        Latency::Uniform { min, max } => {
            (spec.dist, spec.min, spec.max) = ("uniform".into(), Some(Dur(min)), Some(Dur(max)))
        }
        Latency::Exponential { mean, max } => {
            (spec.dist, spec.mean, spec.max) = ("exponential".into(), Some(Dur(mean)), Some(Dur(max)))
        }
        Latency::HeavyTail { min, alpha, max } => {
            (spec.dist, spec.min, spec.alpha, spec.max) =
                ("heavy-tail".into(), Some(Dur(min)), Some(alpha), Some(Dur(max)))
        }
    }
    spec
}

/// The `[[fault]]` entry that parses back into `f`.
pub fn fault_entry(f: &TimedFault) -> FaultEntry {
    let mut e = FaultEntry {
        at: sp(Dur(f.at)),
        kind: sp(f.fault.kind().to_owned()),
        for_: f.duration.map(|d| sp(Dur(d))),
        node: None,
        target: None,
        nodes: None,
        shape: None,
        groups: None,
        delta: None,
        period: None,
        ppm: None,
        latency: None,
        loss: None,
        duplicate: None,
        effects: None,
    };
    match &f.fault {
        Fault::Partition(shape) => match shape {
            Shape::Isolate(t) | Shape::IsolateFromPeers(t) | Shape::OneWay(t) => {
                let name = match shape {
                    Shape::Isolate(_) => "isolate",
                    Shape::IsolateFromPeers(_) => "isolate-from-peers",
                    _ => "one-way",
                };
                e.shape = Some(sp(name.to_owned()));
                target_keys(t, &mut e);
            }
            Shape::Halves => e.shape = Some(sp("halves".into())),
            Shape::MajorityRing => e.shape = Some(sp("majority-ring".into())),
            Shape::Bridge => e.shape = Some(sp("bridge".into())),
            Shape::Groups(gs) => {
                e.groups =
                    Some(Spanned::new(0..0, gs.iter().map(|g| g.iter().map(|n| n.to_string()).collect()).collect()))
            }
        },
        Fault::HealPartitions => {}
        Fault::Crash(t)
        | Fault::Restart(t)
        | Fault::Kill(t)
        | Fault::Pause(t)
        | Fault::Resume(t)
        | Fault::ClockReset(t) => target_keys(t, &mut e),
        Fault::CrashInHandler { target, effects } => {
            target_keys(target, &mut e);
            e.effects = effects.map(|k| Spanned::new(0..0, k));
        }
        Fault::ClockBump { target, delta_ns } => {
            target_keys(target, &mut e);
            e.delta = Some(Spanned::new(0..0, SignedDur(*delta_ns)));
        }
        Fault::ClockStrobe { target, delta_ns, period, duration } => {
            target_keys(target, &mut e);
            e.for_ = Some(sp(Dur(*duration)));
            e.delta = Some(Spanned::new(0..0, SignedDur(*delta_ns)));
            e.period = Some(sp(Dur(*period)));
        }
        Fault::ClockDrift { target, ppm } => {
            target_keys(target, &mut e);
            e.ppm = Some(Spanned::new(0..0, *ppm));
        }
        Fault::Network(cfg) => {
            e.latency = Some(Spanned::new(0..0, latency_spec(&cfg.latency)));
            e.loss = Some(Spanned::new(0..0, cfg.loss));
            e.duplicate = Some(Spanned::new(0..0, cfg.duplicate));
        }
    }
    e
}

/// A trigger as a `[[trigger]]` entry.
pub fn trigger_entry(t: &crate::trigger::Trigger) -> TriggerEntry {
    let spec = |r: &crate::trigger::DurationRange| {
        sp(if r.min == r.max {
            DurSpec::Fixed(Dur(r.min))
        } else {
            DurSpec::Range { min: Dur(r.min), max: Dur(r.max) }
        })
    };
    // Trigger targets are one node or a role, which print as they parse.
    let target = t.target.as_ref().map(|target| target.to_string());
    TriggerEntry {
        on: sp(t.on.clone()),
        probability: Some(sp(t.probability)),
        after: Some(spec(&t.after)),
        kind: sp(t.action.name().to_owned()),
        target: target.map(sp),
        for_: t.duration.as_ref().map(spec),
        limit: Some(sp(t.limit)),
    }
}
