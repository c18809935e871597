//! The fault kinds, in one table: each kind's name in scenario files, the
//! keys a `[[fault]]` of it takes, whether the nemesis draws it, whether it
//! takes nodes down, and how its entry parses. How a fault is written back
//! is an exhaustive match on [`Fault`], so the compiler names a kind it
//! forgets; what the nemesis draws is a match on these names that fails
//! loudly (`unreachable!`) on a kind marked `nemesis` it does not know.

use std::time::Duration;

use super::*;
use crate::fault::Fault;

/// One fault kind.
pub struct FaultKind {
    pub name: &'static str,
    /// The keys a `[[fault]]` of this kind takes besides `at` and `kind`
    /// (`for` only if something undoes it).
    pub keys: &'static [&'static str],
    /// Whether the nemesis may draw it.
    pub nemesis: bool,
    /// Whether it takes nodes down (so it may never name a client).
    pub downs_nodes: bool,
    /// Builds the fault from its entry; `left` is the fault phase left after `at`.
    pub(super) parse: fn(&Ctx<'_>, &FaultEntry, left: Duration) -> Result<Fault, ScenarioError>,
}

const TARGET: &[&str] = &["node", "target", "nodes", "for"];
const TARGET_NO_UNDO: &[&str] = &["node", "target", "nodes"];

/// Every fault kind, in the order error messages list them.
pub const FAULT_TABLE: &[FaultKind] = &[
    FaultKind {
        name: "partition",
        keys: &["node", "target", "nodes", "shape", "groups", "for"],
        nemesis: true,
        downs_nodes: false,
        parse: |cx, e, _| Ok(Fault::Partition(parse_shape(cx, e)?)),
    },
    FaultKind {
        name: "heal",
        keys: &[],
        nemesis: false,
        downs_nodes: false,
        parse: |_, _, _| Ok(Fault::HealPartitions),
    },
    FaultKind {
        name: "crash",
        keys: TARGET,
        nemesis: true,
        downs_nodes: true,
        parse: |cx, e, _| Ok(Fault::Crash(parse_target(cx, e)?)),
    },
    FaultKind {
        name: "crash-in-handler",
        keys: &["node", "target", "nodes", "effects", "for"],
        nemesis: true,
        downs_nodes: true,
        parse: |cx, e, _| {
            let effects = e.effects.as_ref().map(|k| *k.get_ref());
            Ok(Fault::CrashInHandler { target: parse_target(cx, e)?, effects })
        },
    },
    FaultKind {
        name: "restart",
        keys: TARGET_NO_UNDO,
        nemesis: false,
        downs_nodes: true,
        parse: |cx, e, _| Ok(Fault::Restart(parse_target(cx, e)?)),
    },
    FaultKind {
        name: "kill",
        keys: TARGET_NO_UNDO,
        nemesis: true,
        downs_nodes: true,
        parse: |cx, e, _| Ok(Fault::Kill(parse_target(cx, e)?)),
    },
    FaultKind {
        name: "pause",
        keys: TARGET,
        nemesis: true,
        downs_nodes: false,
        parse: |cx, e, _| Ok(Fault::Pause(parse_target(cx, e)?)),
    },
    FaultKind {
        name: "resume",
        keys: TARGET_NO_UNDO,
        nemesis: false,
        downs_nodes: false,
        parse: |cx, e, _| Ok(Fault::Resume(parse_target(cx, e)?)),
    },
    FaultKind {
        name: "clock-bump",
        keys: &["node", "target", "nodes", "delta", "for"],
        nemesis: true,
        downs_nodes: false,
        parse: |cx, e, _| {
            let delta =
                e.delta.as_ref().ok_or_else(|| cx.err(e.kind.span(), "a clock-bump needs `delta`, like \"-2s\""))?;
            Ok(Fault::ClockBump { target: parse_target(cx, e)?, delta_ns: delta.get_ref().0 })
        },
    },
    FaultKind {
        name: "clock-strobe",
        keys: &["node", "target", "nodes", "delta", "period", "for"],
        nemesis: true,
        downs_nodes: false,
        parse: parse_strobe,
    },
    FaultKind {
        name: "clock-reset",
        keys: TARGET_NO_UNDO,
        nemesis: true,
        downs_nodes: false,
        parse: |cx, e, _| Ok(Fault::ClockReset(parse_target(cx, e)?)),
    },
    FaultKind {
        name: "clock-drift",
        keys: &["node", "target", "nodes", "ppm", "for"],
        nemesis: true,
        downs_nodes: false,
        parse: |cx, e, _| {
            let ppm = e.ppm.as_ref().ok_or_else(|| cx.err(e.kind.span(), "a clock-drift needs `ppm`"))?;
            let max = crate::clock::MAX_DRIFT_PPM;
            if ppm.get_ref().is_nan() || ppm.get_ref().abs() > max {
                return Err(cx.err(ppm.span(), format!("ppm must be a number within +-{max}, not {}", ppm.get_ref())));
            }
            Ok(Fault::ClockDrift { target: parse_target(cx, e)?, ppm: *ppm.get_ref() })
        },
    },
    FaultKind {
        name: "network",
        keys: &["latency", "loss", "duplicate", "for"],
        nemesis: true,
        downs_nodes: false,
        parse: |cx, e, _| {
            let section = NetworkSection {
                latency: e.latency.clone(),
                loss: e.loss.clone(),
                duplicate: e.duplicate.clone(),
                ordering: None,
            };
            if section.latency.is_none() && section.loss.is_none() && section.duplicate.is_none() {
                return Err(cx.err(e.kind.span(), "a network fault needs `latency`, `loss` or `duplicate`"));
            }
            // Only the keys it names change; the links keep the rest,
            // ordering included (a system may rely on FIFO links).
            Ok(Fault::Network(overlay_network(cx, cx.network.clone(), &section)?))
        },
    },
];

/// `for` of a strobe is how long it lasts (default: the rest of the fault phase).
fn parse_strobe(cx: &Ctx<'_>, e: &FaultEntry, left: Duration) -> Result<Fault, ScenarioError> {
    let delta =
        e.delta.as_ref().ok_or_else(|| cx.err(e.kind.span(), "a clock-strobe needs `delta`, like \"500ms\""))?;
    let period =
        e.period.as_ref().ok_or_else(|| cx.err(e.kind.span(), "a clock-strobe needs `period`, like \"100ms\""))?;
    if period.get_ref().0.is_zero() {
        return Err(cx.err(period.span(), "period must be positive"));
    }
    let duration = e.for_.as_ref().map_or(left, |f| f.get_ref().0);
    Ok(Fault::ClockStrobe {
        target: parse_target(cx, e)?,
        delta_ns: delta.get_ref().0,
        period: period.get_ref().0,
        duration,
    })
}

/// The kind named `name`.
pub fn fault_kind(name: &str) -> Option<&'static FaultKind> {
    FAULT_TABLE.iter().find(|k| k.name == name)
}

/// The kinds the nemesis can draw.
pub fn nemesis_kinds() -> Vec<&'static str> {
    FAULT_TABLE.iter().filter(|k| k.nemesis).map(|k| k.name).collect()
}
