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
//!
//! This file holds the types and the public `World` API (building, running
//! the phases, healing, the end-of-run checks). The rest, by seam:
//! `dispatch.rs` (the event loop, handlers, process lifecycle),
//! `queue.rs` (the event queue, the network, timers, applying effects),
//! `faults.rs` (applying and exactly undoing faults), `partition.rs`
//! (partition shapes and targets), `tap.rs` (observations and history
//! events as the invariants see them).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::time::Duration;

use serde::Serialize;

use crate::check::lease::LeaseDeadline;
use crate::check::{CheckVerdict, ClockReadings, Invariant, Observed, Violation};
use crate::clock::Clock;
use crate::disk::Disk;
use crate::fault::{join, Fault, Shape, Target};
use crate::history::{History, OpType, Value};
use crate::net::{Link, LinkConfig, Ordering};
use crate::node::{Ctx, Effect, Env, Factory, Node, NodeId, Observation, TimerId};
use crate::outcome::Outcome;
use crate::rng::{Rng, Stream};
use crate::tap::Tap;
use crate::targets::Targets;
use crate::time::{nanos, MonoTime, SimTime, WallTime};
use crate::trace::{stable_hash, EventKind, Trace};
use crate::trigger::Trigger;

mod dispatch;
mod faults;
pub mod messages;
mod partition;
mod queue;
mod tap;

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
    /// Keep the last messages sent by this time, and their fates (for the
    /// HTML page).
    pub log_messages: Option<SimTime>,
    /// Whether faults may hit clients: then `random` picks among clients
    /// too, and triggers crash or cut off the client that reported.
    pub clients_crash: bool,
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
            log_messages: None,
            clients_crash: false,
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

/// The most history events and observations one run keeps (each some
/// 100-200 bytes): a run that reaches it stops as a liveness failure.
pub const MAX_RECORDS: usize = 2_000_000;

/// The most events (messages in flight, timers, faults) pending at once.
pub const MAX_PENDING: usize = 1_000_000;

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
    /// What faults choose from.
    targets: Targets,
    clients_crash: bool,
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
    /// Reactive faults, each with how often it has fired.
    triggers: Vec<(Trigger, u32)>,
    trigger_rng: Rng,
    partitions: BTreeMap<u64, Vec<(u32, u32)>>,
    next_partition: u64,
    next_timer: u64,
    /// The effect buffer handlers record into (reused, never shrunk).
    effects: Vec<Effect<N>>,
    trace: Trace,
    /// The last messages and their fates, when asked for.
    messages: Option<messages::MessageLog>,
    stats: Stats,
    applied: Vec<AppliedFault>,
    /// Observations, history and the invariants that judge them.
    tap: Tap<N::Obs>,
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

/// Where each node stands, as a world knows it.
pub trait Lifecycles {
    fn status(&self, id: NodeId) -> Status;
    /// When the node last started.
    fn started(&self, id: NodeId) -> SimTime;
}

/// Read-only access for progress conditions and drivers, in any world.
pub struct View<'a, N: Node> {
    now: SimTime,
    tap: &'a Tap<N::Obs>,
    nodes: &'a dyn Lifecycles,
}

impl<'a, N: Node> View<'a, N> {
    pub fn new(now: SimTime, tap: &'a Tap<N::Obs>, nodes: &'a dyn Lifecycles) -> Self {
        View { now, tap, nodes }
    }
    pub fn now(&self) -> SimTime {
        self.now
    }
    pub fn observations(&self) -> &[Observed<N::Obs>] {
        self.tap.observations()
    }
    pub fn history(&self) -> &History {
        self.tap.history()
    }
    pub fn leader(&self) -> Option<NodeId> {
        self.tap.leader()
    }
    pub fn status(&self, id: NodeId) -> Status {
        self.nodes.status(id)
    }
    /// When the node last started: what it observed before then was
    /// observed by an earlier incarnation, whose memory is gone.
    pub fn started(&self, id: NodeId) -> SimTime {
        self.nodes.started(id)
    }
}

impl<N: Node + ?Sized> Lifecycles for Core<N> {
    fn status(&self, id: NodeId) -> Status {
        self.nodes[self.slot_of(id)].status
    }
    fn started(&self, id: NodeId) -> SimTime {
        self.nodes[self.slot_of(id)].started
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
        let clocks = crate::clock::drawn(config.seed, &ids, config.skew, config.drift_ppm);
        let nodes = ids
            .iter()
            .zip(clocks)
            .map(|(&id, clock)| NodeState {
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
            targets: Targets::new(config.servers, config.clients, config.clients_crash),
            servers,
            clients_crash: config.clients_crash,
            n_servers: config.servers,
            links: vec![Link::default(); n * n],
            link_configs: vec![config.network.clone()],
            base_network: config.network.clone(),
            storms: Vec::new(),
            next_storm: 0,
            next_change: 0,
            net_rng: Rng::new(config.seed, Stream::Network),
            fault_rng: Rng::new(config.seed, Stream::Faults),
            triggers: Vec::new(),
            trigger_rng: Rng::new(config.seed, Stream::Triggers),
            partitions: BTreeMap::new(),
            next_partition: 0,
            next_timer: 0,
            effects: Vec::new(),
            trace: Trace::new(config.keep_trace),
            messages: config.log_messages.map(messages::MessageLog::new),
            stats: Stats::default(),
            applied: Vec::new(),
            tap: Tap::default(),
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
        self.core.tap.add_invariant(inv);
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

    /// Arms a reactive fault for the fault phase.
    pub fn add_trigger(&mut self, trigger: Trigger) {
        self.core.triggers.push((trigger, 0));
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
        let slot = self.core.push_event(now, Event::Deliver { from, to, epoch: ARRIVED, msg });
        if let Some(log) = &mut self.core.messages {
            log.in_flight(slot, self.core.now);
        }
    }

    /// Applies a fault now, outside the schedule.
    pub fn apply(&mut self, fault: Fault) {
        self.apply_fault(fault, None);
    }

    pub fn now(&self) -> SimTime {
        self.core.now
    }
    pub fn view(&self) -> View<'_, N> {
        View::new(self.core.now, &self.core.tap, &self.core)
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
        self.core.tap.history()
    }
    /// The last messages and their fates (none unless the config asked),
    /// then those still in flight or held by a paused node, oldest first.
    pub fn messages(&self) -> Vec<messages::Message> {
        let Some(log) = &self.core.messages else { return Vec::new() };
        let id = |slot: u32| self.core.id_of(slot as usize);
        // Only the newest pending ones are formatted: a million may be in flight.
        let mut pending: Vec<(messages::Message, u32)> = (0..self.core.events.len() as u32)
            .filter_map(|slot| match &self.core.events[slot as usize] {
                Some(Event::Deliver { from, to, .. }) => {
                    let m = log.in_slot(slot, id(*from), id(*to), messages::Fate::InFlight, String::new());
                    Some((m, slot))
                }
                _ => None,
            })
            .collect();
        pending.retain(|(m, _)| m.sent <= log.cutoff());
        pending.sort_by_key(|(m, slot)| (m.sent, *slot));
        let newest = pending.len().saturating_sub(messages::MAX_LOGGED_MESSAGES);
        let mut all = log.messages();
        for (mut m, slot) in pending.drain(newest..) {
            if let Some(Event::Deliver { msg, .. }) = &self.core.events[slot as usize] {
                m.text = messages::describe(msg);
            }
            all.push(m);
        }
        all
    }
    pub fn reigns(&self) -> &[crate::tap::Reign] {
        self.core.tap.reigns()
    }
    pub fn leases(&self) -> &[crate::tap::LeaseSpell] {
        self.core.tap.leases()
    }
    pub fn observations(&self) -> &[Observed<N::Obs>] {
        self.core.tap.observations()
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
    /// The tap, for the end of a run.
    pub(crate) fn tap_mut(&mut self) -> &mut Tap<N::Obs> {
        &mut self.core.tap
    }

    /// Whether a violation or a node's panic stopped the run (a bound does
    /// not: the checks judged everything up to it).
    pub(crate) fn halted(&self) -> bool {
        matches!(self.core.stop, Some(Stop::Violation(_) | Stop::Crash { .. }))
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
            if progress(&View::new(self.core.now, &self.core.tap, &self.core)) {
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
        self.core.tap.finish(self.core.now, self.core.trace.events())
    }

    /// Each invariant's verdict on the run as it stands, given the run's
    /// outcome: an online check judged the run unless another check's
    /// violation or a crash stopped it; an end-of-run check judged it only
    /// if [`World::finish`] reached it.
    pub fn check_verdicts(&self, outcome: &Outcome) -> Vec<(String, CheckVerdict)> {
        self.core.tap.check_verdicts(outcome, self.halted())
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
}

impl<N: Node + ?Sized> Core<N> {
    pub(crate) fn id_of(&self, slot: usize) -> NodeId {
        self.nodes[slot].id
    }

    pub(crate) fn slot_of(&self, id: NodeId) -> usize {
        let slot = slot_in(self.n_servers, self.nodes.len(), id);
        assert!(self.nodes[slot].id == id, "{id} is not a node of this world");
        slot
    }
}

/// The slot of node `id` among `n` nodes, servers first.
fn slot_in(n_servers: u32, n: usize, id: NodeId) -> usize {
    let slot = if id.is_client() { n_servers as usize + id.index() as usize } else { id.index() as usize };
    assert!(slot < n, "{id} is not a node of this world");
    slot
}
