//! One run of a scenario: build the world from the scenario and a seed,
//! apply the plan's faults during the fault phase, heal, wait for progress
//! in the liveness phase, run the end-of-run checks, and write a [`Report`].
//!
//! The runner is generic over the node type; a system supplies a [`Spec`]
//! (its factory, invariants, linearizability check and progress condition).

use std::time::Duration;

use serde::Serialize;

use crate::check::linearizability::Options;
use crate::check::linearizability::{LinearizabilityReport, Verdict};
use crate::check::{CheckVerdict, Invariant, Violation};
use crate::history::History;
use crate::node::{Factory, Node, Observation};
use crate::outcome::Outcome;
use crate::scenario::{Expect, Plan, Scenario};
use crate::sim::{AppliedFault, Stats, View, World, WorldConfig};
use crate::tap::Tap;
use crate::time::SimTime;
use crate::trace::TraceEntry;

/// The name under which linearizability failures are reported.
pub const LINEARIZABLE: &str = "linearizable";

/// Judges a whole client history (a linearizability check) within a budget.
pub type HistoryCheck = Box<dyn Fn(&History, &Options) -> LinearizabilityReport>;

/// What the liveness phase waits for; it is told when the heal happened.
pub type Progress<N> = Box<dyn FnMut(&View<'_, N>, SimTime) -> bool>;

/// Everything a system contributes to a run.
pub struct Spec<N: Node> {
    pub factory: Factory<N>,
    pub invariants: Vec<Box<dyn Invariant<N::Obs>>>,
    /// Checks the client history at the end of a run that passed so far.
    pub linearizability: Option<HistoryCheck>,
    pub progress: Progress<N>,
}

#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Keep the full event trace (for `--trace` and the determinism check).
    pub keep_trace: bool,
    /// Overrides the event bound (default: 20 million).
    pub max_events: Option<u64>,
    /// Overrides the linearizability search's budget per partition.
    pub max_states: Option<u64>,
    /// Keep the last messages sent by this time, and their fates (for the
    /// HTML page; the built-in world only).
    pub messages: Option<crate::time::SimTime>,
}

/// A check and what it said.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CheckResult {
    pub name: String,
    /// pass, violation, vacuous (nothing to judge), not-run (the run
    /// stopped before the check could judge it) or unknown (its budget ran out).
    pub verdict: CheckVerdict,
}

/// The canonical record of one run: same scenario and seed, same bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Report {
    pub scenario: String,
    pub title: String,
    pub system: String,
    pub variant: String,
    pub seed: u64,
    pub expected: String,
    /// The world it ran on, when not the built-in one (`turmoil`, `udp`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub world: Option<String>,
    /// The knobs this seed drew (`[config]` ranges), as written in a file.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub knobs: std::collections::BTreeMap<String, String>,
    #[serde(flatten)]
    pub outcome: Outcome,
    pub trace_hash: String,
    pub virtual_time_ns: u64,
    pub events: u64,
    pub history_events: usize,
    pub stats: Stats,
    pub faults: Vec<AppliedFault>,
    pub checks: Vec<CheckResult>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub linearizability: Option<LinearizabilityReport>,
}

/// A report plus what a caller may want to look at further.
pub struct RunOutput {
    pub report: Report,
    pub trace: Option<Vec<TraceEntry>>,
    pub history: History,
    /// Each node's spells as leader, as its observations reported them.
    pub reigns: Vec<crate::tap::Reign>,
    /// Every lease the nodes reported, as the world projects it.
    pub leases: Vec<crate::tap::LeaseSpell>,
    /// The last messages and their fates, when asked for (`RunOptions::messages`).
    pub messages: Vec<crate::sim::messages::Message>,
}

impl Report {
    pub fn to_yaml(&self) -> String {
        yaml_serde::to_string(self).expect("reports serialise")
    }
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("reports serialise")
    }

    /// A report of `scenario` at `seed` with `outcome` and nothing measured yet.
    pub fn new(scenario: &Scenario, seed: u64, outcome: Outcome) -> Report {
        Report {
            scenario: scenario.path.clone(),
            title: scenario.title.clone(),
            system: scenario.system.clone(),
            variant: scenario.variant.clone(),
            seed,
            expected: scenario.expect.to_string(),
            world: None,
            knobs: Default::default(),
            outcome,
            trace_hash: String::new(),
            virtual_time_ns: 0,
            events: 0,
            history_events: 0,
            stats: Stats::default(),
            faults: Vec::new(),
            checks: Vec::new(),
            linearizability: None,
        }
    }

    /// The report of a run that panicked outside any node (the runner, a
    /// system's wiring): a `crash` with nothing else to show.
    pub fn crashed(scenario: &Scenario, seed: u64, message: String) -> Report {
        Report::new(scenario, seed, Outcome::Crash { node: None, time: SimTime::ZERO, event: 0, message })
    }

    /// The name of the check that failed, if one did.
    pub fn failed_check(&self) -> Option<&str> {
        match &self.outcome {
            Outcome::Violation(v) => Some(&v.invariant),
            _ => None,
        }
    }

    /// A terminal rendering.
    pub fn to_text(&self) -> String {
        let mut s = format!(
            "{} (seed {}): {}\n  expected: {}\n  trace hash {}, {} events, {} virtual, {} history events\n",
            self.scenario,
            self.seed,
            self.outcome,
            self.expected,
            self.trace_hash,
            self.events,
            crate::time::SimTime(self.virtual_time_ns),
            self.history_events
        );
        if let Some(world) = &self.world {
            s.push_str(&format!("  world: {world}\n"));
        }
        if !self.knobs.is_empty() {
            let knobs: Vec<String> = self.knobs.iter().map(|(k, v)| format!("{k} = {v}")).collect();
            s.push_str(&format!("  knobs drawn: {}\n", knobs.join(", ")));
        }
        s.push_str(&format!(
            "  messages: {} sent, {} delivered, {} lost, {} cut by partitions, {} to down nodes, {} duplicated\n",
            self.stats.sent,
            self.stats.delivered,
            self.stats.dropped_loss,
            self.stats.dropped_partition,
            self.stats.dropped_down,
            self.stats.duplicated
        ));
        s.push_str(&format!("  faults applied: {}\n", self.faults.len()));
        for f in &self.faults {
            let nodes =
                if f.nodes.is_empty() { String::new() } else { format!(" on {}", crate::fault::join(&f.nodes)) };
            s.push_str(&format!("    {} {}{}\n", f.time, f.fault, nodes));
        }
        for c in &self.checks {
            s.push_str(&format!("  check \"{}\": {}\n", c.name, c.verdict));
        }
        if let Some(l) = &self.linearizability {
            if l.verdict == Verdict::NotLinearizable {
                s.push_str(&l.to_text());
            }
        }
        s
    }
}

/// Whether one seed's outcome is what the scenario expects of it.
pub fn meets(expect: &Expect, outcome: &Outcome) -> bool {
    match (expect, outcome) {
        (Expect::Pass, Outcome::Pass) => true,
        (Expect::Violation(names), Outcome::Violation(v)) => names.contains(&v.invariant),
        (Expect::Liveness, Outcome::Liveness { .. }) => true,
        _ => false,
    }
}

/// Runs one seed of a scenario with a given plan.
pub fn run<N: Node>(scenario: &Scenario, plan: &Plan, seed: u64, spec: Spec<N>, options: &RunOptions) -> RunOutput {
    let config = WorldConfig {
        seed,
        servers: scenario.nodes,
        clients: plan.clients.len() as u32,
        network: scenario.network.clone(),
        skew: scenario.skew,
        drift_ppm: scenario.drift_ppm,
        max_time: scenario.duration + scenario.liveness + Duration::from_secs(1),
        max_events: options.max_events.unwrap_or(scenario.max_events),
        keep_trace: options.keep_trace,
        log_messages: options.messages,
        clients_crash: scenario.clients_crash,
    };
    let Spec { factory, invariants, linearizability, mut progress } = spec;
    let mut world = World::new(config, factory);
    for inv in invariants {
        world.add_invariant(inv);
    }
    for f in &plan.faults {
        let at = SimTime::from_duration(f.at);
        match f.duration {
            Some(d) => world.schedule_for(at, f.fault.clone(), d),
            None => world.schedule(at, f.fault.clone()),
        }
    }
    for t in &plan.triggers {
        world.add_trigger(t.clone());
    }
    let outcome = run_phases(&mut world, scenario, &mut progress);
    let (now, events, stopped) = (world.now(), world.events(), world.halted());
    let (outcome, checks, lin_report) =
        judge(world.tap_mut(), outcome, stopped, linearizability.as_ref(), options, now, events);
    let report = Report {
        trace_hash: format!("{:016x}", world.trace_hash()),
        virtual_time_ns: world.now().0,
        events: world.events(),
        history_events: world.history().len(),
        stats: world.stats().clone(),
        faults: world.applied_faults().to_vec(),
        checks,
        linearizability: lin_report,
        knobs: knobs(scenario, plan),
        ..Report::new(scenario, seed, outcome)
    };
    let trace = world.trace().entries().map(<[_]>::to_vec);
    RunOutput {
        report,
        trace,
        history: world.history().clone(),
        reigns: world.reigns().to_vec(),
        leases: world.leases().to_vec(),
        messages: world.messages(),
    }
}

/// The end of a run in any world: linearizability first (the strongest
/// check, so a lost write is reported as what it is), then the end-of-run
/// checks, then each check's verdict. `stopped`: a violation or a node's
/// crash stopped the run.
pub(crate) fn judge<O: Observation>(
    tap: &mut Tap<O>,
    mut outcome: Outcome,
    stopped: bool,
    linearizability: Option<&HistoryCheck>,
    options: &RunOptions,
    now: SimTime,
    events: u64,
) -> (Outcome, Vec<CheckResult>, Option<LinearizabilityReport>) {
    let mut lin_options = Options::default();
    if let Some(max) = options.max_states {
        lin_options.max_states_per_partition = max;
    }
    let mut lin_report = None;
    if let (Outcome::Pass, Some(check)) = (&outcome, linearizability) {
        match crate::panics::catch(|| check(tap.history(), &lin_options)) {
            Ok(report) => {
                if let Some(v) = linearizability_violation(&report) {
                    outcome = Outcome::Violation(v);
                }
                lin_report = Some(report);
            }
            Err(panic) => {
                outcome = Outcome::Crash {
                    node: None,
                    time: now,
                    event: events,
                    message: format!(
                        "the linearizability checker panicked: {}",
                        crate::panics::message(panic.as_ref())
                    ),
                }
            }
        }
    }
    if outcome == Outcome::Pass {
        outcome = tap.finish(now, events);
    }
    // An undecided search is not a pass, but a definite violation found
    // by another check says more.
    if let (Outcome::Pass, Some(reason)) = (&outcome, lin_report.as_ref().and_then(undecided)) {
        outcome = Outcome::Unknown { reason };
    }
    let mut checks: Vec<CheckResult> = tap
        .check_verdicts(&outcome, stopped)
        .into_iter()
        .map(|(name, verdict)| CheckResult { name, verdict })
        .collect();
    if linearizability.is_some() {
        checks
            .push(CheckResult { name: LINEARIZABLE.to_owned(), verdict: linearizability_verdict(lin_report.as_ref()) });
    }
    (outcome, checks, lin_report)
}

/// The knobs this seed drew, as written in a file.
pub(crate) fn knobs(scenario: &Scenario, plan: &Plan) -> std::collections::BTreeMap<String, String> {
    scenario.knobs.iter().filter_map(|k| plan.config.get(&k.key).map(|v| (k.key.clone(), knob_text(v)))).collect()
}

/// A drawn knob as a person reads it: strings (durations, choices) bare.
fn knob_text(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn run_phases<N: Node>(world: &mut World<N>, scenario: &Scenario, progress: &mut Progress<N>) -> Outcome {
    world.run_until(SimTime::from_duration(scenario.duration));
    if let Some(outcome) = world.stop_outcome() {
        return outcome;
    }
    world.heal();
    let healed = world.now();
    if let Err(reason) = world.run_until_progress(scenario.liveness, |view| progress(view, healed)) {
        return world.stop_outcome().unwrap_or(Outcome::Liveness { reason });
    }
    Outcome::Pass
}

fn linearizability_violation(report: &LinearizabilityReport) -> Option<Violation> {
    if report.verdict != Verdict::NotLinearizable {
        return None;
    }
    let (key, evidence) = report.partitions.iter().find_map(|p| p.violation.as_ref().map(|e| (&p.key, e)))?;
    let key = key.as_ref().map(|k| format!(" on key {k:?}")).unwrap_or_default();
    let reason = evidence.candidates.iter().find(|c| c.op == evidence.stuck.op).map_or("", |c| c.rejection.as_str());
    Some(Violation {
        invariant: LINEARIZABLE.to_owned(),
        explanation: format!(
            "history event {} ({}){key} cannot be linearized after {} operations: {reason}",
            evidence.stuck.op, evidence.stuck.call, evidence.prefix_length
        ),
        time: None,
        event: None,
        node: None,
    })
}

/// Why a linearizability report decided nothing, naming the partitions
/// whose search ran out of budget; `None` when every partition was decided.
fn undecided(report: &LinearizabilityReport) -> Option<String> {
    if report.verdict != Verdict::Unknown {
        return None;
    }
    let keys: Vec<String> = report
        .partitions
        .iter()
        .filter(|p| p.verdict == Verdict::Unknown)
        .map(|p| p.key.as_ref().map_or_else(|| "the keyless operations".to_owned(), |k| format!("{k:?}")))
        .collect();
    Some(format!(
        "the linearizability search ran out of its budget of states on {} partition(s): {}",
        keys.len(),
        keys.join(", ")
    ))
}

fn linearizability_verdict(report: Option<&LinearizabilityReport>) -> CheckVerdict {
    match report {
        None => CheckVerdict::NotRun,
        Some(r) if r.verdict == Verdict::Unknown => CheckVerdict::Unknown,
        Some(r) if r.verdict == Verdict::NotLinearizable => CheckVerdict::Violation,
        Some(r) if r.operations == 0 => CheckVerdict::Vacuous,
        Some(_) => CheckVerdict::Pass,
    }
}

/// The usual progress condition for client-driven systems: some client
/// operation completes `ok` after the heal. It is asked after every event,
/// so it reads only the history recorded since it last looked.
pub fn ok_after_heal<N: Node>() -> Progress<N> {
    let mut seen = 0;
    Box::new(move |view, healed| {
        let ops = &view.history().ops;
        let done = ops[seen.min(ops.len())..]
            .iter()
            .any(|op| op.kind == crate::history::OpType::Ok && op.time.is_some_and(|t| t >= healed.0));
        seen = ops.len();
        done
    })
}
