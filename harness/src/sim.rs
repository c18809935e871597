//! The world: an event-driven, single-threaded, deterministic simulation.
//!
//! Events wait in a priority queue ordered by (virtual time, insertion
//! sequence); virtual time jumps straight to the next event, so idle time
//! costs nothing. Event payloads live in a slab and the heap holds only
//! `(time, seq, slot)`, which keeps sifting cheap however large messages are.
//!
//! Everything random comes from the run's seed, split into streams
//! ([`crate::rng::Stream`]); every processed event is folded into a running
//! trace hash ([`crate::trace::Trace`]).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use serde::Serialize;

use crate::check::{CheckVerdict, ClockReadings, Invariant, Observed, RunEnd, Violation};
use crate::clock::Clock;
use crate::disk::Disk;
use crate::fault::{join, Fault, Shape, Target};
use crate::history::{History, Op, OpType, Value};
use crate::net::{Link, LinkConfig, Ordering};
use crate::node::{Ctx, Effect, Env, Factory, Leadership, Node, NodeId, Observation, TimerId};
use crate::outcome::Outcome;
use crate::rng::{Rng, Stream};
use crate::time::{nanos, MonoTime, SimTime, WallTime};
use crate::trace::{stable_hash, EventKind, Trace};

/// Everything needed to build a world, besides the nodes.
#[derive(Clone, Debug)]
pub struct WorldConfig {
    pub seed: u64,
    pub servers: u32,
    pub clients: u32,
    /// The configuration of every link unless overridden.
    pub network: LinkConfig,
    /// Each node's initial wall-clock offset is drawn within +-`skew`.
    pub skew: Duration,
    /// Each node's initial drift is drawn within +-`drift_ppm`.
    pub drift_ppm: f64,
    /// Bounds: reaching either ends the run as a liveness failure.
    pub max_time: Duration,
    pub max_events: u64,
    /// Keep the full event trace (for the determinism check and debugging).
    pub keep_trace: bool,
}

impl Default for WorldConfig {
    fn default() -> Self {
        WorldConfig {
            seed: 0,
            servers: 3,
            clients: 0,
            network: LinkConfig::default(),
            skew: Duration::ZERO,
            drift_ppm: 0.0,
            max_time: Duration::from_secs(3600),
            max_events: 50_000_000,
            keep_trace: false,
        }
    }
}

/// Counters over a run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    pub sent: u64,
    pub delivered: u64,
    pub duplicated: u64,
    pub dropped_loss: u64,
    pub dropped_partition: u64,
    pub dropped_down: u64,
    pub timers_fired: u64,
    pub faults_applied: u64,
}

/// A fault as it was applied: when, what, and whom it hit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AppliedFault {
    pub time: SimTime,
    pub fault: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<NodeId>,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Status {
    Up,
    Crashed,
    /// Crashed for good: heal does not restart it.
    Killed,
}

/// Why the event loop stopped before its deadline.
#[derive(Clone, Debug)]
enum Stop {
    Violation(Violation),
    Crash { node: Option<NodeId>, time: SimTime, event: u64, message: String },
    Bound(String),
}

/// A message that reached a paused node before it paused, or while paused:
/// it is in the node's socket buffer, so later partitions no longer drop it.
const ARRIVED: u32 = u32::MAX;

enum Event<M> {
    Deliver {
        from: u32,
        to: u32,
        epoch: u32,
        msg: M,
    },
    Timer {
        slot: u32,
        id: u64,
        gen: u32,
    },
    Fault {
        fault: Box<Fault>,
        undo_after: Option<Duration>,
    },
    /// The end of a fault applied `for` a while.
    Undo(Box<Undo>),
}

/// A crash armed for a node's next handler: it applies `keep` of the
/// handler's effects (drawn when `None`), and stays down for `down_for`.
#[derive(Clone, Copy, Debug)]
struct Interrupt {
    keep: Option<u32>,
    down_for: Option<Duration>,
}

/// What undoes an applied fault at the end of its window: exactly what
/// that fault did, node by node, and nothing another fault did.
enum Undo {
    /// Bump these clocks back.
    Fault(Fault),
    /// Heal this partition.
    Unblock(u64),
    /// Restart the nodes this crash took down, unless they came back and
    /// went down again since (another fault's window).
    Restart(Vec<(NodeId, u64)>),
    /// Resume the nodes this pause stopped, likewise.
    Resume(Vec<(NodeId, u64)>),
    /// End this drift change on these nodes: each gets the latest drift
    /// change still on, or its own drift from the start.
    Drift(u64, Vec<NodeId>),
    /// End this network storm: the network becomes the latest storm still
    /// on, or the scenario's network.
    EndStorm(u64),
}

#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct Scheduled {
    time: u64,
    seq: u64,
    slot: u32,
}

struct ArmedTimer<T> {
    id: u64,
    deadline: MonoTime,
    gen: u32,
    tag: T,
}

pub(crate) struct NodeState<N: Node + ?Sized> {
    pub(crate) id: NodeId,
    pub(crate) status: Status,
    /// When the node last started (its current incarnation's birth).
    started: SimTime,
    /// A crash armed for the node's next handler.
    interrupt: Option<Interrupt>,
    /// Its drift from the start, and the drift changes on now (by id,
    /// oldest first): the latest one rules.
    base_drift: f64,
    drifts: Vec<(u64, f64)>,
    /// How many times it went down, and was paused: an undo acts only on
    /// the down or pause its own fault began.
    downs: u64,
    pauses: u64,
    pub(crate) paused: bool,
    /// Event slots held back while paused, in arrival order.
    deferred: Vec<u32>,
    pub(crate) clock: Clock,
    pub(crate) rng: Rng,
    pub(crate) disk: Disk,
    pub(crate) peers: Vec<NodeId>,
    timers: Vec<ArmedTimer<N::Timer>>,
    /// The history process this client currently acts as.
    process: Option<u64>,
    /// The open operation: (process, f, key).
    pub(crate) outstanding: Option<(u64, String, Option<String>)>,
}

/// Everything but the node values, so a handler can borrow its node and
/// the rest of the world at once.
pub(crate) struct Core<N: Node + ?Sized> {
    pub(crate) now: SimTime,
    seq: u64,
    queue: BinaryHeap<Reverse<Scheduled>>,
    events: Vec<Option<Event<N::Msg>>>,
    free: Vec<u32>,
    pub(crate) nodes: Vec<NodeState<N>>,
    pub(crate) servers: Vec<NodeId>,
    n_servers: u32,
    links: Vec<Link>,
    link_configs: Vec<LinkConfig>,
    base_network: LinkConfig,
    /// Network storms now on, oldest first, by id.
    storms: Vec<(u64, LinkConfig)>,
    next_storm: u64,
    /// Ids of drift changes.
    next_change: u64,
    net_rng: Rng,
    fault_rng: Rng,
    partitions: BTreeMap<u64, Vec<(u32, u32)>>,
    next_partition: u64,
    next_timer: u64,
    /// The effect buffer handlers record into (reused, never shrunk).
    effects: Vec<Effect<N>>,
    next_process: u64,
    trace: Trace,
    stats: Stats,
    applied: Vec<AppliedFault>,
    observations: Vec<Observed<N::Obs>>,
    history: History,
    invariants: Vec<Box<dyn Invariant<N::Obs>>>,
    /// Each history process's session: the first process of its client.
    sessions: BTreeMap<u64, u64>,
    first_process: BTreeMap<NodeId, u64>,
    /// How many invariants `finish` has run the end-of-run check of.
    finished: usize,
    leader: Option<NodeId>,
    stop: Option<Stop>,
    healed: bool,
    max_time: u64,
    max_events: u64,
}

/// The simulated world.
pub struct World<N: Node> {
    nodes: Vec<Option<N>>,
    core: Core<N>,
    factory: Factory<N>,
    config: WorldConfig,
}

/// Read-only access for progress conditions and drivers.
pub struct View<'a, N: Node> {
    core: &'a Core<N>,
}

impl<N: Node> View<'_, N> {
    pub fn now(&self) -> SimTime {
        self.core.now
    }
    pub fn observations(&self) -> &[Observed<N::Obs>] {
        &self.core.observations
    }
    pub fn history(&self) -> &History {
        &self.core.history
    }
    pub fn leader(&self) -> Option<NodeId> {
        self.core.leader
    }
    pub fn status(&self, id: NodeId) -> Status {
        self.core.nodes[self.core.slot_of(id)].status
    }
    /// When the node last started: what it observed before then was
    /// observed by an earlier incarnation, whose memory is gone.
    pub fn started(&self, id: NodeId) -> SimTime {
        self.core.nodes[self.core.slot_of(id)].started
    }
}

impl<N: Node> World<N> {
    /// Builds the world and starts every node (servers first, then clients).
    pub fn new(config: WorldConfig, factory: Factory<N>) -> Self {
        assert!(config.servers + config.clients > 0, "a world needs at least one node");
        if let Err(e) = config.network.validate() {
            panic!("invalid network configuration: {e}");
        }
        let servers: Vec<NodeId> = (0..config.servers).map(NodeId::server).collect();
        let ids: Vec<NodeId> = servers.iter().copied().chain((0..config.clients).map(NodeId::client)).collect();
        let mut clock_rng = Rng::new(config.seed, Stream::Clocks);
        let skew = nanos(config.skew).min(i64::MAX as u64 / 4) as i64;
        let nodes = ids
            .iter()
            .map(|&id| {
                let offset = if skew > 0 { clock_rng.between(0, 2 * skew as u64) as i64 - skew } else { 0 };
                let drift =
                    if config.drift_ppm > 0.0 { (clock_rng.unit() * 2.0 - 1.0) * config.drift_ppm } else { 0.0 };
                let clock = Clock::new(offset, drift);
                NodeState {
                    id,
                    status: Status::Up,
                    started: SimTime::ZERO,
                    interrupt: None,
                    base_drift: clock.drift_ppm(),
                    drifts: Vec::new(),
                    downs: 0,
                    pauses: 0,
                    paused: false,
                    deferred: Vec::new(),
                    clock,
                    rng: Rng::new(config.seed, Stream::Node(id)),
                    disk: Disk::new(),
                    peers: servers.iter().copied().filter(|&s| s != id).collect(),
                    timers: Vec::new(),
                    process: None,
                    outstanding: None,
                }
            })
            .collect();
        let n = ids.len();
        let core = Core {
            now: SimTime::ZERO,
            seq: 0,
            queue: BinaryHeap::with_capacity(1024),
            events: Vec::with_capacity(1024),
            free: Vec::new(),
            nodes,
            servers,
            n_servers: config.servers,
            links: vec![Link::default(); n * n],
            link_configs: vec![config.network.clone()],
            base_network: config.network.clone(),
            storms: Vec::new(),
            next_storm: 0,
            next_change: 0,
            net_rng: Rng::new(config.seed, Stream::Network),
            fault_rng: Rng::new(config.seed, Stream::Faults),
            partitions: BTreeMap::new(),
            next_partition: 0,
            next_timer: 0,
            effects: Vec::new(),
            next_process: 0,
            trace: Trace::new(config.keep_trace),
            stats: Stats::default(),
            applied: Vec::new(),
            observations: Vec::new(),
            history: History::new(),
            invariants: Vec::new(),
            sessions: BTreeMap::new(),
            first_process: BTreeMap::new(),
            finished: 0,
            leader: None,
            stop: None,
            healed: false,
            max_time: nanos(config.max_time),
            max_events: config.max_events,
        };
        let mut world = World { nodes: (0..n).map(|_| None).collect(), core, factory, config };
        for slot in 0..n {
            world.start_node(slot);
        }
        world
    }

    pub fn config(&self) -> &WorldConfig {
        &self.config
    }

    /// Changes the event bound of a running world.
    pub fn set_max_events(&mut self, max_events: u64) {
        self.core.max_events = max_events;
        self.config.max_events = max_events;
    }

    /// Changes the virtual-time bound of a running world.
    pub fn set_max_time(&mut self, max_time: Duration) {
        self.core.max_time = nanos(max_time);
        self.config.max_time = max_time;
    }

    /// Adds an invariant; it sees every later observation and history event.
    pub fn add_invariant(&mut self, inv: Box<dyn Invariant<N::Obs>>) {
        self.core.invariants.push(inv);
    }

    /// Overrides one directed link.
    pub fn set_link(&mut self, from: NodeId, to: NodeId, config: LinkConfig) {
        if let Err(e) = config.validate() {
            panic!("invalid link configuration {from}->{to}: {e}");
        }
        let idx = self.core.config_index(config);
        let li = self.core.link_index(self.core.slot_of(from), self.core.slot_of(to));
        self.core.links[li].config = idx;
    }

    /// Applies `fault` at true time `at`.
    pub fn schedule(&mut self, at: SimTime, fault: Fault) {
        self.core.push_event(at.0, Event::Fault { fault: Box::new(fault), undo_after: None });
    }

    /// Applies `fault` at `at` and undoes it `duration` later, on exactly
    /// the nodes it hit (a paused leader is resumed even if another node
    /// leads by then).
    pub fn schedule_for(&mut self, at: SimTime, fault: Fault, duration: Duration) {
        self.core.push_event(at.0, Event::Fault { fault: Box::new(fault), undo_after: Some(duration) });
    }

    /// Delivers `msg` to `to` as if `from` sent it, at the current time and
    /// past the network (no latency, loss or partition): for unit tests of
    /// protocol handlers ("a vote for a stale term is refused").
    pub fn inject(&mut self, from: NodeId, to: NodeId, msg: N::Msg) {
        let (from, to) = (self.core.slot_of(from) as u32, self.core.slot_of(to) as u32);
        let now = self.core.now.0;
        self.core.push_event(now, Event::Deliver { from, to, epoch: ARRIVED, msg });
    }

    /// Applies a fault now, outside the schedule.
    pub fn apply(&mut self, fault: Fault) {
        self.apply_fault(fault, None);
    }

    pub fn now(&self) -> SimTime {
        self.core.now
    }
    pub fn view(&self) -> View<'_, N> {
        View { core: &self.core }
    }
    pub fn stats(&self) -> &Stats {
        &self.core.stats
    }
    pub fn trace_hash(&self) -> u64 {
        self.core.trace.hash()
    }
    /// How many events were processed.
    pub fn events(&self) -> u64 {
        self.core.trace.events()
    }
    pub fn trace(&self) -> &Trace {
        &self.core.trace
    }
    pub fn history(&self) -> &History {
        &self.core.history
    }
    pub fn observations(&self) -> &[Observed<N::Obs>] {
        &self.core.observations
    }
    pub fn applied_faults(&self) -> &[AppliedFault] {
        &self.core.applied
    }
    pub fn status(&self, id: NodeId) -> Status {
        self.core.nodes[self.core.slot_of(id)].status
    }
    pub fn is_paused(&self, id: NodeId) -> bool {
        self.core.nodes[self.core.slot_of(id)].paused
    }
    pub fn node(&self, id: NodeId) -> Option<&N> {
        self.nodes[self.core.slot_of(id)].as_ref()
    }
    pub fn disk(&self, id: NodeId) -> &Disk {
        &self.core.nodes[self.core.slot_of(id)].disk
    }
    /// The node's clock drift now, in parts per million.
    pub fn drift_ppm(&self, id: NodeId) -> f64 {
        self.core.nodes[self.core.slot_of(id)].clock.drift_ppm()
    }
    /// The network configuration every link has now (storms included),
    /// unless a link was overridden with [`World::set_link`].
    pub fn network(&self) -> &LinkConfig {
        &self.core.link_configs[0]
    }
    pub fn clock_readings(&self, id: NodeId) -> (crate::time::WallTime, MonoTime) {
        let c = &self.core.nodes[self.core.slot_of(id)].clock;
        (c.wall(self.core.now), c.mono(self.core.now))
    }
    /// Whether the run was stopped by a violation, a panic or a bound.
    pub fn stopped(&self) -> bool {
        self.core.stop.is_some()
    }

    /// Processes every event up to and including true time `until`, unless a
    /// violation, a panic or a bound stops the run first. Returns whether
    /// the run is still going.
    pub fn run_until(&mut self, until: SimTime) -> bool {
        while self.core.stop.is_none() {
            let Some(Reverse(next)) = self.core.queue.peek() else {
                break;
            };
            if next.time > until.0 {
                break;
            }
            if !self.within_bounds(next.time) {
                return false;
            }
            self.step();
        }
        if self.core.stop.is_none() && self.core.now < until {
            self.core.now = until;
        }
        self.core.stop.is_none()
    }

    /// Runs for `d` more virtual time.
    pub fn run_for(&mut self, d: Duration) -> bool {
        let until = self.core.now.saturating_add(d);
        self.run_until(until)
    }

    /// Runs until `progress` holds (checked before and after every event) or
    /// `bound` of virtual time passes. Returns the time progress was made.
    pub fn run_until_progress(
        &mut self,
        bound: Duration,
        mut progress: impl FnMut(&View<'_, N>) -> bool,
    ) -> Result<SimTime, String> {
        let deadline = self.core.now.saturating_add(bound);
        loop {
            if self.core.stop.is_some() {
                return Err("the run stopped".into());
            }
            if progress(&View { core: &self.core }) {
                return Ok(self.core.now);
            }
            let Some(Reverse(next)) = self.core.queue.peek() else {
                return Err(format!("no progress, and nothing left to happen at {}", self.core.now));
            };
            if next.time > deadline.0 {
                self.core.now = deadline;
                return Err(format!("no progress within {bound:?} after healing (until {deadline})"));
            }
            if !self.within_bounds(next.time) {
                return Err("a bound was reached".into());
            }
            self.step();
        }
    }

    /// Ends every fault: partitions healed, paused nodes resumed, crashed
    /// (not killed) nodes restarted, the network back to its configuration.
    /// Faults still scheduled are dropped.
    pub fn heal(&mut self) {
        self.core.healed = true;
        self.core.heal_partitions();
        self.core.storms.clear();
        if self.core.link_configs[0] != self.core.base_network {
            let base = self.core.base_network.clone();
            self.core.set_all_links(base);
        }
        for slot in 0..self.nodes.len() {
            self.core.nodes[slot].interrupt = None;
            if self.core.nodes[slot].paused {
                self.resume(slot);
            }
            if self.core.nodes[slot].status == Status::Crashed {
                self.restart(slot);
            }
        }
        self.core.applied.push(AppliedFault { time: self.core.now, fault: "heal".into(), nodes: vec![] });
    }

    /// The standard run: the fault phase until `fault_phase`, heal, then a
    /// liveness phase of at most `liveness_bound` waiting for `progress`,
    /// then the end-of-run checks.
    pub fn run_phases(
        &mut self,
        fault_phase: Duration,
        liveness_bound: Duration,
        progress: impl FnMut(&View<'_, N>) -> bool,
    ) -> Outcome {
        self.run_until(SimTime::from_duration(fault_phase));
        if let Some(outcome) = self.stop_outcome() {
            return outcome;
        }
        self.heal();
        if let Err(reason) = self.run_until_progress(liveness_bound, progress) {
            return self.stop_outcome().unwrap_or(Outcome::Liveness { reason });
        }
        self.finish()
    }

    /// Runs the end-of-run checks (after whatever phases the caller ran).
    pub fn finish(&mut self) -> Outcome {
        if let Some(outcome) = self.stop_outcome() {
            return outcome;
        }
        let core = &mut self.core;
        let end = RunEnd {
            now: core.now,
            history: &core.history,
            observations: &core.observations,
            sessions: &core.sessions,
        };
        for inv in &mut core.invariants {
            let name = inv.name().to_owned();
            match catch_unwind(AssertUnwindSafe(|| inv.at_end(&end))) {
                Ok(Ok(())) => core.finished += 1,
                Ok(Err(explanation)) => {
                    return Outcome::Violation(Violation {
                        invariant: name,
                        explanation,
                        time: None,
                        event: None,
                        node: None,
                    });
                }
                Err(panic) => {
                    return Outcome::Crash {
                        node: None,
                        time: core.now,
                        event: core.trace.events(),
                        message: format!("checker \"{name}\" panicked: {}", panic_message(&panic)),
                    };
                }
            }
        }
        Outcome::Pass
    }

    /// Each invariant's verdict on the run as it stands, given the run's
    /// outcome: an online check judged the run unless another check's
    /// violation or a crash stopped it; an end-of-run check judged it only
    /// if [`World::finish`] reached it.
    pub fn check_verdicts(&self, outcome: &Outcome) -> Vec<(String, CheckVerdict)> {
        let stopped = matches!(self.core.stop, Some(Stop::Violation(_) | Stop::Crash { .. }));
        let failed = match outcome {
            Outcome::Violation(v) => Some(v.invariant.as_str()),
            _ => None,
        };
        // A node's panic stops the run (`stopped`); a checker's panic at the
        // end does not undo what the online checks judged.
        let healthy = !matches!(outcome, Outcome::Nondeterminism { .. });
        self.core
            .invariants
            .iter()
            .enumerate()
            .map(|(i, inv)| {
                let name = inv.name().to_owned();
                let judged = if inv.judges_at_end() { i < self.core.finished } else { !stopped && healthy };
                let verdict = if failed == Some(name.as_str()) {
                    CheckVerdict::Violation
                } else if !judged {
                    CheckVerdict::NotRun
                } else if inv.vacuous() {
                    CheckVerdict::Vacuous
                } else {
                    CheckVerdict::Pass
                };
                (name, verdict)
            })
            .collect()
    }

    /// The outcome if the run was stopped early.
    pub fn stop_outcome(&self) -> Option<Outcome> {
        Some(match self.core.stop.as_ref()? {
            Stop::Violation(v) => Outcome::Violation(v.clone()),
            Stop::Crash { node, time, event, message } => {
                Outcome::Crash { node: *node, time: *time, event: *event, message: message.clone() }
            }
            Stop::Bound(reason) => Outcome::Liveness { reason: reason.clone() },
        })
    }

    fn within_bounds(&mut self, next_time: u64) -> bool {
        if self.core.trace.events() >= self.core.max_events {
            self.core.stop = Some(Stop::Bound(format!("the event limit of {} was reached", self.core.max_events)));
            return false;
        }
        if next_time > self.core.max_time {
            self.core.stop =
                Some(Stop::Bound(format!("the virtual-time limit of {} was reached", SimTime(self.core.max_time))));
            return false;
        }
        true
    }

    /// Pops and processes one event.
    fn step(&mut self) {
        let Reverse(next) = self.core.queue.pop().expect("step with an empty queue");
        debug_assert!(next.time >= self.core.now.0, "time went backwards");
        self.core.now = SimTime(next.time);
        let slot = next.slot;
        let event = self.core.events[slot as usize].take().expect("scheduled event slot is empty");
        match event {
            Event::Deliver { from, to, epoch, msg } => self.deliver(slot, from, to, epoch, msg),
            Event::Timer { slot: node, id, gen } => self.fire_timer(slot, node as usize, id, gen),
            Event::Fault { fault, undo_after } => {
                self.core.free.push(slot);
                if !self.core.healed {
                    self.apply_fault(*fault, undo_after);
                }
            }
            Event::Undo(undo) => {
                self.core.free.push(slot);
                if !self.core.healed {
                    self.undo(*undo);
                }
            }
        }
    }

    fn deliver(&mut self, slot: u32, from: u32, to: u32, epoch: u32, msg: N::Msg) {
        let core = &mut self.core;
        if epoch != ARRIVED && core.links[core.link_index(from as usize, to as usize)].epoch != epoch {
            core.stats.dropped_partition += 1;
            core.free.push(slot);
            return;
        }
        let state = &mut core.nodes[to as usize];
        if state.status != Status::Up {
            core.stats.dropped_down += 1;
            core.free.push(slot);
            return;
        }
        if state.paused {
            core.events[slot as usize] = Some(Event::Deliver { from, to, epoch: ARRIVED, msg });
            state.deferred.push(slot);
            return;
        }
        core.free.push(slot);
        core.stats.delivered += 1;
        let now = core.now.0;
        core.trace.record(now, EventKind::Delivery, to, from, stable_hash(&msg));
        let from_id = core.id_of(from as usize);
        if core.trace.keeps_full() || tracing::enabled!(tracing::Level::DEBUG) {
            let text = format!("{} <- {from_id}: {msg:?}", core.id_of(to as usize));
            tracing::debug!(time = %core.now, "{text}");
            core.trace.push_text(now, text);
        }
        self.call(to as usize, |node, ctx| node.on_message(ctx, from_id, msg));
    }

    fn fire_timer(&mut self, slot: u32, node: usize, id: u64, gen: u32) {
        let core = &mut self.core;
        let state = &mut core.nodes[node];
        let Some(pos) = state.timers.iter().position(|t| t.id == id && t.gen == gen) else {
            core.free.push(slot); // cancelled, re-armed, or lost in a crash
            return;
        };
        if state.paused {
            core.events[slot as usize] = Some(Event::Timer { slot: node as u32, id, gen });
            state.deferred.push(slot);
            return;
        }
        core.free.push(slot);
        let timer = state.timers.swap_remove(pos);
        debug_assert!(state.clock.mono(core.now) >= timer.deadline, "timer fired early");
        core.stats.timers_fired += 1;
        let now = core.now.0;
        core.trace.record(now, EventKind::Timer, node as u32, 0, stable_hash(&timer.tag));
        if core.trace.keeps_full() || tracing::enabled!(tracing::Level::DEBUG) {
            let text = format!("{} timer {:?}", core.id_of(node), timer.tag);
            tracing::debug!(time = %core.now, "{text}");
            core.trace.push_text(now, text);
        }
        let tag = timer.tag;
        self.call(node, |n, ctx| n.on_timer(ctx, tag));
    }

    /// Runs a handler, turning a panic into a `crash` outcome.
    /// Runs one handler of the node in `slot`, then applies the effects it
    /// recorded, in order. A crash armed for this node's next handler
    /// applies only the first few and takes the node down.
    fn call(&mut self, slot: usize, f: impl FnOnce(&mut N, &mut Ctx<'_, N>)) {
        let node = self.nodes[slot].as_mut().expect("handler for a node that is down");
        let mut effects = std::mem::take(&mut self.core.effects);
        let core = &mut self.core;
        let now = core.now;
        let state = &mut core.nodes[slot];
        let (mono, wall) = state.clock.readings(now);
        let env = Env {
            me: state.id,
            peers: &state.peers,
            servers: &core.servers,
            wall,
            mono,
            rng: &mut state.rng,
            disk: &state.disk,
            outstanding: state.outstanding.is_some(),
            next_timer: &mut core.next_timer,
        };
        let mut ctx = Ctx::new(env, &mut effects);
        let id = ctx.me();
        let span = tracing::enabled!(tracing::Level::DEBUG).then(|| tracing::debug_span!("node", id = %id).entered());
        let result = catch_unwind(AssertUnwindSafe(|| f(node, &mut ctx)));
        drop(span);
        if let Err(panic) = result {
            let id = self.core.id_of(slot);
            self.core.stop = Some(Stop::Crash {
                node: Some(id),
                time: self.core.now,
                event: self.core.trace.events().saturating_sub(1),
                message: panic_message(&panic),
            });
            self.core.effects = effects;
            return;
        }
        let interrupt = self.core.nodes[slot].interrupt.take();
        let keep = match &interrupt {
            None => effects.len(),
            Some(i) => i.keep.map_or_else(
                || self.core.fault_rng.below(effects.len() as u64 + 1) as usize,
                |k| (k as usize).min(effects.len()),
            ),
        };
        let total = effects.len();
        for effect in effects.drain(..).take(keep) {
            self.core.apply_effect(slot, effect);
        }
        self.core.effects = effects;
        if let Some(i) = interrupt {
            self.crash_in_handler(slot, keep, total, i.down_for);
        }
    }

    /// The armed crash of a node's handler: it applied `kept` of `total`
    /// effects; the node goes down now and restarts after `down_for`.
    fn crash_in_handler(&mut self, slot: usize, kept: usize, total: usize, down_for: Option<Duration>) {
        let id = self.core.id_of(slot);
        self.crash(slot, Status::Crashed);
        self.log_fault(format!("crash in a handler after {kept} of {total} effects"), vec![id]);
        if let Some(after) = down_for {
            let at = self.core.now.saturating_add(after).0;
            let down = self.core.nodes[slot].downs;
            self.core.push_event(at, Event::Undo(Box::new(Undo::Restart(vec![(id, down)]))));
        }
    }

    fn start_node(&mut self, slot: usize) {
        let id = self.core.id_of(slot);
        let node = (self.factory)(id, &self.core.nodes[slot].disk);
        self.nodes[slot] = Some(node);
        self.core.nodes[slot].status = Status::Up;
        self.core.nodes[slot].started = self.core.now;
        self.core.trace.record(self.core.now.0, EventKind::Start, slot as u32, 0, 0);
        self.core.trace.push_text(self.core.now.0, format!("{id} start"));
        self.call(slot, |n, ctx| n.on_start(ctx));
    }

    fn crash(&mut self, slot: usize, status: Status) {
        let core = &mut self.core;
        let state = &mut core.nodes[slot];
        if state.status != Status::Up {
            if status == Status::Killed {
                state.status = Status::Killed;
            }
            return;
        }
        self.nodes[slot] = None;
        state.status = status;
        state.downs += 1;
        state.interrupt = None;
        state.paused = false;
        state.timers.clear();
        state.disk.crash();
        state.process = None;
        state.outstanding = None;
        for s in std::mem::take(&mut state.deferred) {
            core.events[s as usize] = None;
            core.free.push(s);
        }
        if core.leader == Some(state.id) {
            core.leader = None;
        }
    }

    fn restart(&mut self, slot: usize) {
        if self.core.nodes[slot].status == Status::Crashed {
            self.start_node(slot);
        }
    }

    fn pause(&mut self, slot: usize) {
        let state = &mut self.core.nodes[slot];
        if state.status == Status::Up && !state.paused {
            state.paused = true;
            state.pauses += 1;
        }
    }

    fn resume(&mut self, slot: usize) {
        let core = &mut self.core;
        if !core.nodes[slot].paused {
            return;
        }
        core.nodes[slot].paused = false;
        let now = core.now.0;
        for s in std::mem::take(&mut core.nodes[slot].deferred) {
            core.seq += 1;
            core.queue.push(Reverse(Scheduled { time: now, seq: core.seq, slot: s }));
        }
    }

    fn apply_fault(&mut self, fault: Fault, undo_after: Option<Duration>) {
        if let Fault::CrashInHandler { target, effects } = &fault {
            // Armed now; it strikes (and schedules its restart) at the
            // node's next handler.
            self.core.stats.faults_applied += 1;
            let mut hit = Vec::new();
            for id in self.core.resolve(target) {
                let slot = self.core.slot_of(id);
                let state = &mut self.core.nodes[slot];
                if state.status == Status::Up {
                    state.interrupt = Some(Interrupt { keep: *effects, down_for: undo_after });
                    hit.push(id);
                }
            }
            self.log_fault(format!("{fault} (armed)"), hit);
            return;
        }
        self.core.stats.faults_applied += 1;
        let description = fault.to_string();
        let (hit, undo) = self.apply_resolved(fault);
        let description = match &undo {
            Some(Undo::Unblock(id)) => format!("{description} as #{id}"),
            _ => description,
        };
        self.log_fault(description, hit);
        if let (Some(after), Some(undo)) = (undo_after, undo) {
            let at = self.core.now.saturating_add(after).0;
            self.core.push_event(at, Event::Undo(Box::new(undo)));
        }
    }

    /// Undoes one fault at the end of its window.
    fn undo(&mut self, undo: Undo) {
        if !matches!(undo, Undo::Fault(_)) {
            self.core.stats.faults_applied += 1; // apply_fault counts the others
        }
        match undo {
            Undo::Fault(fault) => self.apply_fault(fault, None),
            Undo::Unblock(partition) => {
                if self.core.partitions.contains_key(&partition) {
                    self.core.unblock(partition);
                    self.log_fault(format!("heal partition #{partition}"), vec![]);
                }
            }
            Undo::Restart(nodes) => {
                let mut hit = Vec::new();
                for (id, down) in nodes {
                    let slot = self.core.slot_of(id);
                    if self.core.nodes[slot].status == Status::Crashed && self.core.nodes[slot].downs == down {
                        self.restart(slot);
                        hit.push(id);
                    }
                }
                if !hit.is_empty() {
                    self.log_fault("restart".into(), hit);
                }
            }
            Undo::Resume(nodes) => {
                let mut hit = Vec::new();
                for (id, pause) in nodes {
                    let slot = self.core.slot_of(id);
                    if self.core.nodes[slot].paused && self.core.nodes[slot].pauses == pause {
                        self.resume(slot);
                        hit.push(id);
                    }
                }
                if !hit.is_empty() {
                    self.log_fault("resume".into(), hit);
                }
            }
            Undo::Drift(change, nodes) => {
                let mut text = Vec::new();
                for &id in &nodes {
                    let slot = self.core.slot_of(id);
                    let state = &mut self.core.nodes[slot];
                    state.drifts.retain(|(c, _)| *c != change);
                    let ppm = state.drifts.last().map_or(state.base_drift, |d| d.1);
                    self.core.set_drift(slot, ppm);
                    text.push(format!("{id} to {ppm} ppm"));
                }
                self.log_fault(format!("clock-drift back: {}", text.join(", ")), nodes);
            }
            Undo::EndStorm(id) => {
                self.core.storms.retain(|(s, _)| *s != id);
                let config = self.core.storms.last().map_or_else(|| self.core.base_network.clone(), |s| s.1.clone());
                self.core.set_all_links(config);
                self.log_fault(format!("end network storm #{id}"), vec![]);
            }
        }
    }

    /// Records an applied fault in the trace and the fault log.
    fn log_fault(&mut self, description: String, nodes: Vec<NodeId>) {
        let now = self.core.now;
        let text = if nodes.is_empty() { description.clone() } else { format!("{description} on {}", join(&nodes)) };
        self.core.trace.record(now.0, EventKind::Fault, 0, 0, stable_hash(&text));
        tracing::debug!(time = %now, "fault: {text}");
        self.core.trace.push_text(now.0, text);
        self.core.applied.push(AppliedFault { time: now, fault: description, nodes });
    }

    /// Applies a fault; returns the nodes it hit and the fault that undoes it.
    fn apply_resolved(&mut self, fault: Fault) -> (Vec<NodeId>, Option<Undo>) {
        match fault {
            Fault::Partition(shape) => {
                let (pairs, hit) = self.core.partition_pairs(&shape);
                let id = self.core.block(pairs);
                (hit, Some(Undo::Unblock(id)))
            }
            Fault::HealPartitions => {
                self.core.heal_partitions();
                (vec![], None)
            }
            Fault::Crash(t) => self.apply_process_fault(ProcessFault::Crash, t),
            Fault::CrashInHandler { .. } => unreachable!("armed in apply_fault"),
            Fault::Kill(t) => self.apply_process_fault(ProcessFault::Kill, t),
            Fault::Restart(t) => self.apply_process_fault(ProcessFault::Restart, t),
            Fault::Pause(t) => self.apply_process_fault(ProcessFault::Pause, t),
            Fault::Resume(t) => self.apply_process_fault(ProcessFault::Resume, t),
            Fault::ClockBump { target, delta_ns } => {
                let hit = self.core.resolve(&target);
                for &id in &hit {
                    let s = self.core.slot_of(id);
                    self.core.nodes[s].clock.bump(delta_ns);
                }
                let undo = Fault::ClockBump { target: Target::Nodes(hit.clone()), delta_ns: -delta_ns };
                (hit, Some(Undo::Fault(undo)))
            }
            Fault::ClockStrobe { target, delta_ns, period, duration } => {
                let hit = self.core.resolve(&target);
                let now = self.core.now;
                for &id in &hit {
                    let s = self.core.slot_of(id);
                    self.core.nodes[s].clock.strobe(now, delta_ns, nanos(period).max(1), nanos(duration));
                }
                (hit, None)
            }
            Fault::ClockReset(target) => {
                let hit = self.core.resolve(&target);
                let now = self.core.now;
                for &id in &hit {
                    let s = self.core.slot_of(id);
                    self.core.nodes[s].clock.reset(now);
                }
                (hit, None)
            }
            Fault::ClockDrift { target, ppm } => {
                let hit = self.core.resolve(&target);
                self.core.next_change += 1;
                let change = self.core.next_change;
                for &id in &hit {
                    let s = self.core.slot_of(id);
                    self.core.nodes[s].drifts.push((change, ppm));
                    self.core.set_drift(s, ppm);
                }
                (hit.clone(), Some(Undo::Drift(change, hit)))
            }
            Fault::Network(config) => {
                if let Err(e) = config.validate() {
                    panic!("invalid network fault: {e}");
                }
                self.core.next_storm += 1;
                let id = self.core.next_storm;
                self.core.storms.push((id, config.clone()));
                self.core.set_all_links(config);
                (vec![], Some(Undo::EndStorm(id)))
            }
        }
    }

    /// Applies a process fault to the nodes it targets; it hits only the
    /// nodes whose state it changes (a crash hits no node that is already
    /// down), and its undo touches only those.
    fn apply_process_fault(&mut self, kind: ProcessFault, target: Target) -> (Vec<NodeId>, Option<Undo>) {
        let mut hit = Vec::new();
        for id in self.core.resolve(&target) {
            let slot = self.core.slot_of(id);
            let (status, paused) = (self.core.nodes[slot].status, self.core.nodes[slot].paused);
            match kind {
                ProcessFault::Crash => self.crash(slot, Status::Crashed),
                ProcessFault::Kill => self.crash(slot, Status::Killed),
                ProcessFault::Restart => self.restart(slot),
                ProcessFault::Pause => self.pause(slot),
                ProcessFault::Resume => self.resume(slot),
            }
            let after = &self.core.nodes[slot];
            if after.status != status || after.paused != paused {
                hit.push(id);
            }
        }
        let tokens = |core: &Core<N>, down: bool| -> Vec<(NodeId, u64)> {
            hit.iter()
                .map(|&id| {
                    let state = &core.nodes[core.slot_of(id)];
                    (id, if down { state.downs } else { state.pauses })
                })
                .collect()
        };
        let undo = match kind {
            ProcessFault::Crash => Some(Undo::Restart(tokens(&self.core, true))),
            ProcessFault::Pause => Some(Undo::Resume(tokens(&self.core, false))),
            _ => None,
        };
        (hit, undo)
    }
}

enum ProcessFault {
    Crash,
    Kill,
    Restart,
    Pause,
    Resume,
}

pub fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a non-string payload".to_owned()
    }
}

impl<N: Node + ?Sized> ClockReadings for Core<N> {
    fn mono(&self, node: NodeId) -> MonoTime {
        self.nodes[self.slot_of(node)].clock.mono(self.now)
    }
    fn wall(&self, node: NodeId) -> WallTime {
        self.nodes[self.slot_of(node)].clock.wall(self.now)
    }
}

impl<N: Node + ?Sized> Core<N> {
    pub(crate) fn id_of(&self, slot: usize) -> NodeId {
        self.nodes[slot].id
    }

    pub(crate) fn slot_of(&self, id: NodeId) -> usize {
        let slot = if id.is_client() { self.n_servers as usize + id.index() as usize } else { id.index() as usize };
        assert!(slot < self.nodes.len() && self.nodes[slot].id == id, "{id} is not a node of this world");
        slot
    }

    #[inline]
    fn link_index(&self, from: usize, to: usize) -> usize {
        from * self.nodes.len() + to
    }

    fn push_event(&mut self, time: u64, event: Event<N::Msg>) {
        let slot = match self.free.pop() {
            Some(s) => {
                self.events[s as usize] = Some(event);
                s
            }
            None => {
                self.events.push(Some(event));
                u32::try_from(self.events.len() - 1).expect("more than 2^32 pending events")
            }
        };
        self.seq += 1;
        self.queue.push(Reverse(Scheduled { time, seq: self.seq, slot }));
    }

    fn send(&mut self, from: usize, to: NodeId, msg: N::Msg) {
        let to = self.slot_of(to);
        self.stats.sent += 1;
        let li = self.link_index(from, to);
        let link = self.links[li];
        if link.blocked > 0 {
            self.stats.dropped_partition += 1;
            return;
        }
        let config = &self.link_configs[link.config as usize];
        if config.loss > 0.0 && self.net_rng.chance(config.loss) {
            self.stats.dropped_loss += 1;
            return;
        }
        if config.duplicate > 0.0 && self.net_rng.chance(config.duplicate) {
            self.stats.duplicated += 1;
            self.schedule_delivery(from, to, li, msg.clone());
        }
        self.schedule_delivery(from, to, li, msg);
    }

    fn schedule_delivery(&mut self, from: usize, to: usize, li: usize, msg: N::Msg) {
        let link = self.links[li];
        let config = &self.link_configs[link.config as usize];
        let mut at = self.now.0.saturating_add(config.latency.sample(&mut self.net_rng));
        if config.ordering == Ordering::Fifo {
            at = at.max(link.last_delivery);
            self.links[li].last_delivery = at;
        }
        let event = Event::Deliver { from: from as u32, to: to as u32, epoch: link.epoch, msg };
        self.push_event(at, event);
    }

    /// Applies one effect a handler of the node in `slot` recorded.
    fn apply_effect(&mut self, slot: usize, effect: Effect<N>) {
        match effect {
            Effect::Send { to, msg } => self.send(slot, to, msg),
            Effect::SetTimer { id, after, tag } => self.set_timer(slot, id, after, tag),
            Effect::CancelTimer(id) => self.cancel_timer(slot, id),
            Effect::DiskWrite { key, value: Some(bytes) } => self.nodes[slot].disk.write(&key, bytes),
            Effect::DiskWrite { key, value: None } => self.nodes[slot].disk.remove(&key),
            Effect::DiskSync => self.nodes[slot].disk.sync(),
            Effect::Observe(obs) => self.observe(slot, obs),
            Effect::Invoke { f, key, value } => self.record_invoke(slot, &f, key.as_deref(), value),
            Effect::Complete { kind, value } => self.record_completion(slot, kind, value),
        }
    }

    fn set_timer(&mut self, slot: usize, id: TimerId, after: Duration, tag: N::Timer) {
        let id = id.0;
        let state = &mut self.nodes[slot];
        let deadline = state.clock.mono(self.now).saturating_add(after);
        let at = state.clock.true_time_of(self.now, deadline);
        state.timers.push(ArmedTimer { id, deadline, gen: 0, tag });
        self.push_event(at.0, Event::Timer { slot: slot as u32, id, gen: 0 });
    }

    fn cancel_timer(&mut self, slot: usize, id: TimerId) {
        let timers = &mut self.nodes[slot].timers;
        if let Some(pos) = timers.iter().position(|t| t.id == id.0) {
            timers.swap_remove(pos);
        }
    }

    /// Changes a node's drift and re-times its armed timers, which are
    /// deadlines on its monotonic clock.
    fn set_drift(&mut self, slot: usize, ppm: f64) {
        let now = self.now;
        self.nodes[slot].clock.set_drift(now, ppm.clamp(-crate::clock::MAX_DRIFT_PPM, crate::clock::MAX_DRIFT_PPM));
        let state = &mut self.nodes[slot];
        let mut retimed = Vec::new();
        for t in &mut state.timers {
            t.gen += 1;
            retimed.push((t.id, t.gen, state.clock.true_time_of(now, t.deadline)));
        }
        for (id, gen, at) in retimed {
            self.push_event(at.0, Event::Timer { slot: slot as u32, id, gen });
        }
    }

    fn observe(&mut self, slot: usize, obs: N::Obs) {
        let id = self.id_of(slot);
        match obs.leadership() {
            Some(Leadership::Elected) => self.leader = Some(id),
            Some(Leadership::SteppedDown) if self.leader == Some(id) => self.leader = None,
            _ => {}
        }
        let event = self.trace.events().saturating_sub(1);
        self.observations.push(Observed { time: self.now, event, node: id, obs });
        // The invariants are taken out for the loop so that they can read
        // the clocks of the rest of the world.
        let mut invariants = std::mem::take(&mut self.invariants);
        let observed = self.observations.last().expect("just pushed");
        let mut broken = None;
        for inv in &mut invariants {
            if let Err(explanation) = inv.on_observation_at(observed, &*self) {
                broken.get_or_insert((inv.name().to_owned(), explanation));
            }
        }
        self.invariants = invariants;
        if let Some((invariant, explanation)) = broken {
            if self.stop.is_none() {
                self.stop = Some(Stop::Violation(Violation {
                    invariant,
                    explanation,
                    time: Some(self.now),
                    event: Some(event),
                    node: Some(id),
                }));
            }
        }
    }

    fn record_op(&mut self, slot: usize, op: Op) {
        let event = self.trace.events().saturating_sub(1);
        for inv in &mut self.invariants {
            if let Err(explanation) = inv.on_op(self.now, &op) {
                if self.stop.is_none() {
                    self.stop = Some(Stop::Violation(Violation {
                        invariant: inv.name().to_owned(),
                        explanation,
                        time: Some(self.now),
                        event: Some(event),
                        node: Some(self.nodes[slot].id),
                    }));
                }
            }
        }
        self.history.push(op);
    }

    fn record_invoke(&mut self, slot: usize, f: &str, key: Option<&str>, value: Value) {
        let state = &mut self.nodes[slot];
        assert!(state.outstanding.is_none(), "{} invoked `{f}` while an operation is outstanding", state.id);
        let process = *state.process.get_or_insert_with(|| {
            self.next_process += 1;
            self.next_process - 1
        });
        // A client's session is its first process: it outlives an `info`.
        let first = *self.first_process.entry(state.id).or_insert(process);
        self.sessions.insert(process, first);
        state.outstanding = Some((process, f.to_owned(), key.map(str::to_owned)));
        let op = Op {
            process,
            kind: OpType::Invoke,
            f: f.to_owned(),
            key: key.map(str::to_owned),
            value,
            time: Some(self.now.0),
        };
        self.record_op(slot, op);
    }

    fn record_completion(&mut self, slot: usize, kind: OpType, value: Value) {
        let state = &mut self.nodes[slot];
        let Some((process, f, key)) = state.outstanding.take() else {
            panic!("{} completed an operation ({kind}) without invoking one", state.id);
        };
        if kind == OpType::Info {
            // Jepsen's rule: after an indeterminate result the client carries
            // on as a new process, so the open operation stays open.
            state.process = None;
        }
        let op = Op { process, kind, f, key, value, time: Some(self.now.0) };
        self.record_op(slot, op);
    }

    fn config_index(&mut self, config: LinkConfig) -> u16 {
        if let Some(i) = self.link_configs.iter().position(|c| *c == config) {
            return i as u16;
        }
        self.link_configs.push(config);
        u16::try_from(self.link_configs.len() - 1).expect("too many distinct link configurations")
    }

    /// Replaces the configuration of every link (per-link overrides included).
    fn set_all_links(&mut self, config: LinkConfig) {
        self.link_configs = vec![config];
        for l in &mut self.links {
            l.config = 0;
        }
    }

    /// Blocks the directed pairs, cutting what is in flight on them.
    fn block(&mut self, pairs: Vec<(u32, u32)>) -> u64 {
        for &(a, b) in &pairs {
            let li = self.link_index(a as usize, b as usize);
            let link = &mut self.links[li];
            if link.blocked == 0 {
                link.epoch = link.epoch.wrapping_add(1) % ARRIVED;
            }
            link.blocked += 1;
        }
        self.next_partition += 1;
        self.partitions.insert(self.next_partition, pairs);
        self.next_partition
    }

    fn unblock(&mut self, id: u64) {
        if let Some(pairs) = self.partitions.remove(&id) {
            for (a, b) in pairs {
                let li = self.link_index(a as usize, b as usize);
                self.links[li].blocked -= 1;
            }
        }
    }

    fn heal_partitions(&mut self) {
        let ids: Vec<u64> = self.partitions.keys().copied().collect();
        for id in ids {
            self.unblock(id);
        }
    }

    /// Resolves a target to concrete nodes, in id order.
    fn resolve(&mut self, target: &Target) -> Vec<NodeId> {
        let n = self.servers.len();
        let mut nodes = match target {
            Target::Node(id) => vec![*id],
            Target::Nodes(ids) => ids.clone(),
            Target::Random => self.fault_rng.pick(&self.servers).copied().into_iter().collect(),
            Target::Leader => match self.leader {
                Some(l) => vec![l],
                None => self.fault_rng.pick(&self.servers).copied().into_iter().collect(),
            },
            Target::Minority | Target::Majority => {
                let size =
                    if matches!(target, Target::Minority) { ((n.saturating_sub(1)) / 2).max(1) } else { n / 2 + 1 };
                let mut all = self.servers.clone();
                self.fault_rng.shuffle(&mut all);
                all.truncate(size.min(n));
                all
            }
        };
        for id in &nodes {
            assert!(self.nodes.iter().any(|s| s.id == *id), "fault target {id} is not a node of this world");
        }
        nodes.sort();
        nodes.dedup();
        nodes
    }

    /// The directed pairs a partition shape blocks, and the nodes it singles out.
    fn partition_pairs(&mut self, shape: &Shape) -> (Vec<(u32, u32)>, Vec<NodeId>) {
        let all: Vec<u32> = (0..self.nodes.len() as u32).collect();
        let servers: Vec<u32> = (0..self.n_servers).collect();
        let mut pairs = Vec::new();
        let cut_between = |a: &[u32], b: &[u32], pairs: &mut Vec<(u32, u32)>| {
            for &x in a {
                for &y in b {
                    pairs.push((x, y));
                    pairs.push((y, x));
                }
            }
        };
        let hit = match shape {
            Shape::Isolate(target) => {
                let hit = self.resolve(target);
                let inside: Vec<u32> = hit.iter().map(|&id| self.slot_of(id) as u32).collect();
                let outside: Vec<u32> = all.iter().copied().filter(|s| !inside.contains(s)).collect();
                cut_between(&inside, &outside, &mut pairs);
                hit
            }
            Shape::IsolateFromPeers(target) => {
                let hit = self.resolve(target);
                let inside: Vec<u32> = hit.iter().map(|&id| self.slot_of(id) as u32).collect();
                let outside: Vec<u32> = servers.iter().copied().filter(|s| !inside.contains(s)).collect();
                cut_between(&inside, &outside, &mut pairs);
                hit
            }
            Shape::Halves => {
                let mut s = servers.clone();
                self.fault_rng.shuffle(&mut s);
                let (a, b) = s.split_at(s.len() / 2);
                cut_between(a, b, &mut pairs);
                let mut hit: Vec<NodeId> = a.iter().map(|&x| self.id_of(x as usize)).collect();
                hit.sort();
                hit
            }
            Shape::MajorityRing => {
                let mut ring = servers.clone();
                self.fault_rng.shuffle(&mut ring);
                let n = ring.len();
                // Neighbours on each side a node still sees: itself and 2*reach others make a majority.
                let reach = (n / 2).div_ceil(2);
                for i in 0..n {
                    for j in 0..n {
                        let d = (i + n - j) % n;
                        let dist = d.min(n - d);
                        if i != j && dist > reach {
                            pairs.push((ring[i], ring[j]));
                        }
                    }
                }
                ring.iter().map(|&x| self.id_of(x as usize)).collect()
            }
            Shape::Bridge => {
                let mut s = servers.clone();
                self.fault_rng.shuffle(&mut s);
                let half = s.len() / 2;
                let bridge = s[half.min(s.len() - 1)];
                let left = &s[..half];
                let right = &s[(half + 1).min(s.len())..];
                cut_between(left, right, &mut pairs);
                vec![self.id_of(bridge as usize)]
            }
            Shape::OneWay(target) => {
                let hit = self.resolve(target);
                for &id in &hit {
                    let x = self.slot_of(id) as u32;
                    for &y in &servers {
                        if !hit.iter().any(|&h| self.slot_of(h) as u32 == y) {
                            pairs.push((x, y));
                        }
                    }
                }
                hit
            }
            Shape::Groups(groups) => {
                let slots: Vec<Vec<u32>> =
                    groups.iter().map(|g| g.iter().map(|&id| self.slot_of(id) as u32).collect()).collect();
                for (i, a) in slots.iter().enumerate() {
                    for b in &slots[i + 1..] {
                        cut_between(a, b, &mut pairs);
                    }
                }
                groups.iter().flatten().copied().collect()
            }
        };
        pairs.sort_unstable();
        pairs.dedup();
        pairs.retain(|(a, b)| a != b);
        (pairs, hit)
    }
}
