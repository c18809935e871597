//! Hosting a system's nodes in another world. [`Host`] holds the nodes,
//! their disks, clocks and random streams, and the tap with the system's
//! checks, behind an object-safe interface: a driver of another world
//! (turmoil, real sockets: the `faultline` crate's `worlds`) calls it with
//! datagrams, timer firings and faults, and it answers with what to send
//! and which timers to set. Time is whatever the driver says it is: nothing
//! here reads a real clock, so the driver decides whether a run replays.
//!
//! A message travels as postcard bytes of `(sender, message)`: the wire
//! format of every world but the built-in one.

use std::time::Duration;

use crate::check::ClockReadings;
use crate::clock::Clock;
use crate::disk::Disk;
use crate::node::{Ctx, Effect, Env, Factory, Node, NodeId, TimerId};
use crate::outcome::Outcome;
use crate::rng::{Rng, Stream};
use crate::runner::{judge, knobs, HistoryCheck, Progress, Report, RunOptions, RunOutput, Spec};
use crate::scenario::{Plan, Scenario};
use crate::sim::{AppliedFault, Lifecycles, Stats, Status, View};
use crate::tap::Tap;
use crate::targets::Targets;
use crate::time::{MonoTime, SimTime, WallTime};
use crate::trace::{stable_hash, EventKind, Trace};

/// What a node's handler asks of the world it runs in.
#[derive(Debug)]
pub enum Output {
    Send {
        to: NodeId,
        bytes: Vec<u8>,
    },
    /// Fire timer `id` after `after` of true time (the node's clock drift
    /// already applied).
    SetTimer {
        id: u64,
        after: Duration,
    },
    CancelTimer {
        id: u64,
    },
}

/// What the driver measured over the run, for its report.
pub struct Ending {
    /// The world's name, as the report shows it.
    pub world: String,
    pub now: SimTime,
    /// What the phases came to: `Pass` (progress after the heal) or
    /// `Liveness`. A violation or a node's crash the host saw overrides it.
    pub outcome: Outcome,
    pub faults: Vec<AppliedFault>,
    pub stats: Stats,
}

/// A system's nodes and checks, type-erased for a driver.
pub trait Host {
    fn targets(&self) -> &Targets;
    /// Builds `node` from its disk and runs its start handler.
    fn start(&mut self, node: NodeId, now: SimTime) -> Vec<Output>;
    /// A datagram for `node`; bytes that do not decode are dropped.
    fn deliver(&mut self, node: NodeId, bytes: &[u8], now: SimTime) -> Vec<Output>;
    /// `node`'s timer `id` fired (ignored if it was cancelled or the node
    /// restarted since).
    fn fire(&mut self, node: NodeId, id: u64, now: SimTime) -> Vec<Output>;
    /// `node` goes down: its memory and unsynced writes are lost.
    fn crash(&mut self, node: NodeId, status: Status);
    fn status(&self, node: NodeId) -> Status;
    /// The server that last reported itself leader and still is, if any.
    fn leader(&self) -> Option<NodeId>;
    /// Whether a violation or a node's panic stopped the run.
    fn stopped(&self) -> bool;
    /// The system's progress condition, after the heal at `healed`.
    fn progress(&mut self, now: SimTime, healed: SimTime) -> bool;
    /// Judges the run and writes its report.
    fn conclude(self: Box<Self>, ending: Ending) -> RunOutput;
}

struct Slot<N: Node> {
    id: NodeId,
    node: Option<N>,
    status: Status,
    started: SimTime,
    clock: Clock,
    rng: Rng,
    disk: Disk,
    peers: Vec<NodeId>,
    /// Armed timers by id: their tags.
    timers: Vec<(TimerId, N::Timer)>,
}

/// A [`Host`] for nodes of type `N`.
pub struct Hosted<N: Node> {
    scenario: Scenario,
    plan: Plan,
    seed: u64,
    options: RunOptions,
    targets: Targets,
    slots: Vec<Slot<N>>,
    factory: Factory<N>,
    tap: Tap<N::Obs>,
    linearizability: Option<HistoryCheck>,
    progress: Progress<N>,
    next_timer: u64,
    effects: Vec<Effect<N>>,
    trace: Trace,
    /// A violation or a node's crash that stopped the run.
    stop: Option<Outcome>,
}

impl<N: Node> Hosted<N> {
    pub fn new(scenario: &Scenario, plan: &Plan, seed: u64, spec: Spec<N>, options: &RunOptions) -> Self {
        let targets = Targets::new(scenario.nodes, plan.clients.len() as u32, scenario.clients_crash);
        let clocks = crate::clock::drawn(seed, &targets.nodes, scenario.skew, scenario.drift_ppm);
        let slots = targets
            .nodes
            .iter()
            .zip(clocks)
            .map(|(&id, clock)| Slot {
                id,
                node: None,
                status: Status::Crashed,
                started: SimTime::ZERO,
                clock,
                rng: Rng::new(seed, Stream::Node(id)),
                disk: Disk::new(),
                peers: targets.servers.iter().copied().filter(|&s| s != id).collect(),
                timers: Vec::new(),
            })
            .collect();
        let Spec { factory, invariants, linearizability, progress } = spec;
        let mut tap = Tap::default();
        for inv in invariants {
            tap.add_invariant(inv);
        }
        Hosted {
            scenario: scenario.clone(),
            plan: plan.clone(),
            seed,
            options: options.clone(),
            targets,
            slots,
            factory,
            tap,
            linearizability,
            progress,
            next_timer: 0,
            effects: Vec::new(),
            trace: Trace::new(false),
            stop: None,
        }
    }

    fn slot(&self, id: NodeId) -> usize {
        self.targets.nodes.iter().position(|&n| n == id).unwrap_or_else(|| panic!("{id} is not a node of this run"))
    }

    /// Runs one handler of the node in `slot` and turns what it did into
    /// outputs; the disk, observations and history are applied here.
    fn call(&mut self, slot: usize, now: SimTime, f: impl FnOnce(&mut N, &mut Ctx<'_, N>)) -> Vec<Output> {
        if self.stop.is_some() {
            return Vec::new();
        }
        let mut effects = std::mem::take(&mut self.effects);
        let outstanding = self.tap.outstanding(self.slots[slot].id);
        let s = &mut self.slots[slot];
        let Some(node) = s.node.as_mut() else { return Vec::new() };
        let (mono, wall) = s.clock.readings(now);
        let env = Env {
            me: s.id,
            peers: &s.peers,
            servers: &self.targets.servers,
            wall,
            mono,
            rng: &mut s.rng,
            disk: &s.disk,
            outstanding,
            next_timer: &mut self.next_timer,
        };
        let mut ctx = Ctx::new(env, &mut effects);
        let id = ctx.me();
        if let Err(panic) = crate::panics::catch(|| f(node, &mut ctx)) {
            let message = crate::panics::message(panic.as_ref());
            self.stop = Some(Outcome::Crash { node: Some(id), time: now, event: self.trace.events(), message });
            self.effects = effects;
            return Vec::new();
        }
        let mut outputs = Vec::new();
        for effect in effects.drain(..) {
            if let Some(out) = self.apply(slot, now, effect) {
                outputs.push(out);
            }
        }
        self.effects = effects;
        outputs
    }

    fn apply(&mut self, slot: usize, now: SimTime, effect: Effect<N>) -> Option<Output> {
        let id = self.slots[slot].id;
        let event = self.trace.events().saturating_sub(1);
        let result = match effect {
            Effect::Send { to, msg } => {
                return Some(Output::Send { to, bytes: crate::disk::encode_record(&(id, msg)) });
            }
            Effect::SetTimer { id, after, tag } => {
                let s = &mut self.slots[slot];
                let deadline = s.clock.mono(now).saturating_add(after);
                let at = s.clock.true_time_of(now, deadline);
                s.timers.push((id, tag));
                return Some(Output::SetTimer { id: timer_number(id), after: Duration::from_nanos(at.0 - now.0) });
            }
            Effect::CancelTimer(id) => {
                self.slots[slot].timers.retain(|(t, _)| *t != id);
                return Some(Output::CancelTimer { id: timer_number(id) });
            }
            Effect::DiskWrite { key, value } => {
                self.slots[slot].disk.apply_write(key, value);
                Ok(())
            }
            Effect::DiskSync => {
                self.slots[slot].disk.sync();
                Ok(())
            }
            Effect::Observe(obs) => {
                let clocks = Clocks { slots: &self.slots, now };
                self.tap.observe(now, event, id, obs, &clocks)
            }
            Effect::Invoke { f, key, value } => self.tap.invoke(now, event, id, &f, key.as_deref(), value),
            Effect::Complete { kind, value } => self.tap.complete(now, event, id, kind, value),
        };
        if let Err(v) = result {
            self.stop.get_or_insert(Outcome::Violation(v));
        }
        None
    }
}

/// Timer ids are unique per run; the driver knows them by number.
fn timer_number(id: TimerId) -> u64 {
    id.0
}

struct Clocks<'a, N: Node> {
    slots: &'a [Slot<N>],
    now: SimTime,
}

impl<N: Node> Clocks<'_, N> {
    fn clock(&self, node: NodeId) -> &Clock {
        &self.slots.iter().find(|s| s.id == node).expect("a node of this run").clock
    }
}

impl<N: Node> ClockReadings for Clocks<'_, N> {
    fn mono(&self, node: NodeId) -> MonoTime {
        self.clock(node).mono(self.now)
    }
    fn wall(&self, node: NodeId) -> WallTime {
        self.clock(node).wall(self.now)
    }
}

struct Statuses<'a, N: Node>(&'a [Slot<N>]);

impl<N: Node> Lifecycles for Statuses<'_, N> {
    fn status(&self, id: NodeId) -> Status {
        self.0.iter().find(|s| s.id == id).map_or(Status::Killed, |s| s.status)
    }
    fn started(&self, id: NodeId) -> SimTime {
        self.0.iter().find(|s| s.id == id).map_or(SimTime::ZERO, |s| s.started)
    }
}

impl<N: Node> Host for Hosted<N> {
    fn targets(&self) -> &Targets {
        &self.targets
    }

    fn start(&mut self, node: NodeId, now: SimTime) -> Vec<Output> {
        let slot = self.slot(node);
        if self.slots[slot].status == Status::Killed {
            return Vec::new();
        }
        let built = crate::panics::catch(|| (self.factory)(node, &self.slots[slot].disk));
        let built = match built {
            Ok(built) => built,
            Err(panic) => {
                let message = crate::panics::message(panic.as_ref());
                self.stop.get_or_insert(Outcome::Crash { node: Some(node), time: now, event: 0, message });
                return Vec::new();
            }
        };
        let s = &mut self.slots[slot];
        s.node = Some(built);
        s.status = Status::Up;
        s.started = now;
        self.trace.record(now.0, EventKind::Start, slot as u32, 0, 0);
        self.call(slot, now, |n, ctx| n.on_start(ctx))
    }

    fn deliver(&mut self, node: NodeId, bytes: &[u8], now: SimTime) -> Vec<Output> {
        let Ok((from, msg)) = postcard::from_bytes::<(NodeId, N::Msg)>(bytes) else { return Vec::new() };
        if !self.targets.nodes.contains(&from) {
            return Vec::new();
        }
        let slot = self.slot(node);
        self.trace.record(now.0, EventKind::Delivery, slot as u32, self.slot(from) as u32, stable_hash(&msg));
        self.call(slot, now, |n, ctx| n.on_message(ctx, from, msg))
    }

    fn fire(&mut self, node: NodeId, id: u64, now: SimTime) -> Vec<Output> {
        let slot = self.slot(node);
        let timers = &mut self.slots[slot].timers;
        let Some(pos) = timers.iter().position(|(t, _)| timer_number(*t) == id) else { return Vec::new() };
        let (_, tag) = timers.swap_remove(pos);
        self.trace.record(now.0, EventKind::Timer, slot as u32, 0, id);
        self.call(slot, now, |n, ctx| n.on_timer(ctx, tag))
    }

    fn crash(&mut self, node: NodeId, status: Status) {
        let slot = self.slot(node);
        let s = &mut self.slots[slot];
        if s.status == Status::Up {
            s.node = None;
            s.timers.clear();
            s.disk.crash();
            self.tap.crashed(node);
        }
        if s.status == Status::Up || status == Status::Killed {
            s.status = status;
        }
    }

    fn status(&self, node: NodeId) -> Status {
        self.slots[self.slot(node)].status
    }

    fn leader(&self) -> Option<NodeId> {
        self.tap.leader()
    }

    fn stopped(&self) -> bool {
        self.stop.is_some()
    }

    fn progress(&mut self, now: SimTime, healed: SimTime) -> bool {
        let statuses = Statuses(&self.slots);
        (self.progress)(&View::new(now, &self.tap, &statuses), healed)
    }

    fn conclude(mut self: Box<Self>, ending: Ending) -> RunOutput {
        let stopped = self.stop.is_some();
        let outcome = self.stop.take().unwrap_or(ending.outcome);
        let events = self.trace.events();
        let (outcome, checks, lin_report) =
            judge(&mut self.tap, outcome, stopped, self.linearizability.as_ref(), &self.options, ending.now, events);
        let report = Report {
            world: Some(ending.world),
            trace_hash: format!("{:016x}", self.trace.hash()),
            virtual_time_ns: ending.now.0,
            events,
            history_events: self.tap.history().len(),
            stats: ending.stats,
            faults: ending.faults,
            checks,
            linearizability: lin_report,
            knobs: knobs(&self.scenario, &self.plan),
            ..Report::new(&self.scenario, self.seed, outcome)
        };
        RunOutput { report, trace: None, history: self.tap.history().clone() }
    }
}
