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

use crate::check::lease::LeaseDeadline;
use crate::check::ClockReadings;
use crate::clock::Clock;
use crate::disk::Disk;
use crate::fault::Fault;
use crate::node::{Ctx, Effect, Env, Factory, Node, NodeId, Observation, TimerId};
use crate::outcome::Outcome;
use crate::rng::{Rng, Stream};
use crate::runner::{judge, knobs, HistoryCheck, Progress, Report, RunOptions, RunOutput, Spec};
use crate::scenario::{Plan, Scenario};
use crate::sim::{AppliedFault, Lifecycles, Stats, Status, View};
use crate::tap::Tap;
use crate::targets::Targets;
use crate::time::{nanos, MonoTime, SimTime, WallTime};
use crate::trace::{stable_hash, EventKind, Trace};
use crate::trigger::{Firing, Trigger};

/// What a node's handler asks of the world it runs in.
#[derive(Debug)]
pub enum Output {
    Send {
        to: NodeId,
        bytes: Vec<u8>,
    },
    /// Fire timer `id` when the node's monotonic clock reads `deadline`
    /// ([`Host::until`] tells how long that is now: a drift change moves it).
    SetTimer {
        id: u64,
        deadline: MonoTime,
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
    /// A datagram for `node`: what its handler did, or `None` if the bytes
    /// do not decode as a message from a node of the run (dropped).
    fn deliver(&mut self, node: NodeId, bytes: &[u8], now: SimTime) -> Option<Vec<Output>>;
    /// `node`'s timer `id` fired (ignored if it was cancelled or the node
    /// restarted since).
    fn fire(&mut self, node: NodeId, id: u64, now: SimTime) -> Vec<Output>;
    /// `node` goes down: its memory and unsynced writes are lost.
    fn crash(&mut self, node: NodeId, status: Status, now: SimTime);
    fn status(&self, node: NodeId) -> Status;
    /// How many times `node` went down: a fault's undo restarts only the
    /// down it caused.
    fn downs(&self, node: NodeId) -> u64;
    /// True time from `now` until `node`'s monotonic clock reads `deadline`.
    fn until(&self, node: NodeId, deadline: MonoTime, now: SimTime) -> Duration;
    /// Applies a clock fault (bump, strobe, reset) to `node`'s clock.
    fn clock(&mut self, node: NodeId, fault: &Fault, now: SimTime);
    /// Sets `node`'s drift for drift change `change` (the latest change
    /// still on rules), or ends that change (`ppm: None`).
    fn drift(&mut self, node: NodeId, change: u64, ppm: Option<f64>, now: SimTime);
    /// Arms a crash for `node`'s next handler: it applies `keep` of the
    /// handler's effects (drawn when `None`) and the node goes down.
    fn arm_crash(&mut self, node: NodeId, keep: Option<u32>);
    /// Nodes that went down in a handler since the last call: (node, what
    /// it kept, of how many effects).
    fn take_interrupted(&mut self) -> Vec<(NodeId, usize, usize)>;
    /// Arms the scenario's triggers (reactive faults) for the fault phase.
    fn add_triggers(&mut self, triggers: Vec<Trigger>);
    /// The faults triggers fired since the last call.
    fn take_fired(&mut self) -> Vec<Firing>;
    /// The heal: from now on no trigger fires and no crash stays armed.
    fn healed(&mut self);
    /// The world failed `node` (its socket broke): the run stops as that
    /// node's crash, with `message`.
    fn fail(&mut self, node: NodeId, now: SimTime, message: String);
    /// The driver applied or undid a fault (described as its report
    /// lists it): folded into the trace hash, as the built-in world does.
    fn record_fault(&mut self, now: SimTime, description: &str);
    /// The server that last reported itself leader and still is, if any.
    fn leader(&self) -> Option<NodeId>;
    /// Whether a violation, a node's panic or the event bound stopped the
    /// run: node tasks stop at once, and the driver ends the run.
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
    downs: u64,
    /// Its own drift, and the drift changes on now (by id, oldest first).
    base_drift: f64,
    drifts: Vec<(u64, f64)>,
    /// A crash armed for its next handler: the effects it keeps.
    interrupt: Option<Option<u32>>,
}

/// The stream an armed crash draws how many effects it keeps from.
const HANDLER_CRASHES: u32 = 100;

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
    /// The scenario's bound on events (handler calls).
    max_events: u64,
    /// A violation, a node's crash or the event bound that stopped the run.
    stop: Option<Outcome>,
    triggers: Vec<(Trigger, u32)>,
    trigger_rng: Rng,
    /// Draws how many effects an armed crash keeps.
    fault_rng: Rng,
    fired: Vec<Firing>,
    interrupted: Vec<(NodeId, usize, usize)>,
    healed: bool,
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
                rng: Rng::new(seed, Stream::Node(id)),
                disk: Disk::new(),
                peers: targets.servers.iter().copied().filter(|&s| s != id).collect(),
                timers: Vec::new(),
                downs: 0,
                base_drift: clock.drift_ppm(),
                drifts: Vec::new(),
                interrupt: None,
                clock,
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
            max_events: options.max_events.unwrap_or(scenario.max_events),
            stop: None,
            triggers: Vec::new(),
            trigger_rng: Rng::new(seed, Stream::Triggers),
            // Its own stream: the plan came from `Nemesis`, and the
            // driver's nemesis draws targets from `Faults`.
            fault_rng: Rng::new(seed, Stream::Custom(HANDLER_CRASHES)),
            fired: Vec::new(),
            interrupted: Vec::new(),
            healed: false,
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
        let total = effects.len();
        let interrupt = self.slots[slot].interrupt.take();
        let keep = match interrupt {
            None => total,
            Some(Some(k)) => (k as usize).min(total),
            Some(None) => self.fault_rng.below(total as u64 + 1) as usize,
        };
        // Applying an effect can panic too (a send to a node that does not
        // exist, a checker's bug): that is this node's crash, as if the
        // handler itself had panicked.
        let mut outputs = Vec::new();
        let applied = crate::panics::catch(|| {
            for effect in effects.drain(..).take(keep) {
                if let Some(out) = self.apply(slot, now, effect) {
                    outputs.push(out);
                }
            }
        });
        effects.clear();
        self.effects = effects;
        if let Err(panic) = applied {
            let message = crate::panics::message(panic.as_ref());
            self.stop.get_or_insert(Outcome::Crash { node: Some(id), time: now, event: self.trace.events(), message });
            return Vec::new();
        }
        if self.trace.events() >= self.max_events {
            let reason = format!("the event limit of {} was reached", self.max_events);
            self.stop.get_or_insert(Outcome::Liveness { reason });
        }
        if interrupt.is_some() {
            self.crash(id, Status::Crashed, now);
            self.interrupted.push((id, keep, total));
        }
        outputs
    }

    fn apply(&mut self, slot: usize, now: SimTime, effect: Effect<N>) -> Option<Output> {
        let id = self.slots[slot].id;
        let event = self.trace.events().saturating_sub(1);
        let result = match effect {
            Effect::Send { to, msg } => {
                assert!(self.targets.nodes.contains(&to), "{id} sent to {to}, which is not a node of this run");
                return Some(Output::Send { to, bytes: crate::disk::encode_record(&(id, msg)) });
            }
            Effect::SetTimer { id, after, tag } => {
                let s = &mut self.slots[slot];
                let deadline = s.clock.mono(now).saturating_add(after);
                s.timers.push((id, tag));
                return Some(Output::SetTimer { id: timer_number(id), deadline });
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
                if let Some(name) = obs.trigger().filter(|_| !self.healed) {
                    self.fire_triggers(name, id);
                }
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

impl<N: Node> Hosted<N> {
    fn fire_triggers(&mut self, event: &str, node: NodeId) {
        let clients_crash = self.scenario.clients_crash;
        for (trigger, count) in &mut self.triggers {
            if let Some(firing) = trigger.fire(event, node, *count, clients_crash, &mut self.trigger_rng) {
                *count += 1;
                self.fired.push(firing);
            }
        }
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
    fn projected(&self, node: NodeId, deadline: LeaseDeadline) -> Option<SimTime> {
        match deadline {
            LeaseDeadline::Mono(m) => self.clock(node).projected_mono(self.now, m),
            LeaseDeadline::Wall(w) => self.clock(node).projected_wall(self.now, w),
        }
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

    fn deliver(&mut self, node: NodeId, bytes: &[u8], now: SimTime) -> Option<Vec<Output>> {
        let (from, msg) = postcard::from_bytes::<(NodeId, N::Msg)>(bytes).ok()?;
        if !self.targets.nodes.contains(&from) {
            return None;
        }
        let slot = self.slot(node);
        self.trace.record(now.0, EventKind::Delivery, slot as u32, self.slot(from) as u32, stable_hash(&msg));
        Some(self.call(slot, now, |n, ctx| n.on_message(ctx, from, msg)))
    }

    fn fire(&mut self, node: NodeId, id: u64, now: SimTime) -> Vec<Output> {
        let slot = self.slot(node);
        let timers = &mut self.slots[slot].timers;
        let Some(pos) = timers.iter().position(|(t, _)| timer_number(*t) == id) else { return Vec::new() };
        let (_, tag) = timers.swap_remove(pos);
        self.trace.record(now.0, EventKind::Timer, slot as u32, 0, id);
        self.call(slot, now, |n, ctx| n.on_timer(ctx, tag))
    }

    fn crash(&mut self, node: NodeId, status: Status, now: SimTime) {
        let slot = self.slot(node);
        let s = &mut self.slots[slot];
        if s.status == Status::Up {
            s.node = None;
            s.timers.clear();
            s.disk.crash();
            s.downs += 1;
            s.interrupt = None;
            self.tap.crashed(node, now);
        }
        if s.status == Status::Up || status == Status::Killed {
            s.status = status;
        }
    }

    fn status(&self, node: NodeId) -> Status {
        self.slots[self.slot(node)].status
    }

    fn downs(&self, node: NodeId) -> u64 {
        self.slots[self.slot(node)].downs
    }

    fn until(&self, node: NodeId, deadline: MonoTime, now: SimTime) -> Duration {
        let at = self.slots[self.slot(node)].clock.true_time_of(now, deadline);
        Duration::from_nanos(at.0.saturating_sub(now.0))
    }

    fn clock(&mut self, node: NodeId, fault: &Fault, now: SimTime) {
        let slot = self.slot(node);
        let clock = &mut self.slots[slot].clock;
        match *fault {
            Fault::ClockBump { delta_ns, .. } => clock.bump(delta_ns),
            Fault::ClockStrobe { delta_ns, period, duration, .. } => {
                clock.strobe(now, delta_ns, nanos(period).max(1), nanos(duration))
            }
            Fault::ClockReset(_) => clock.reset(now),
            ref other => panic!("not a clock fault: {other}"),
        }
        self.tap.clocks_changed(now, &Clocks { slots: &self.slots, now });
    }

    fn drift(&mut self, node: NodeId, change: u64, ppm: Option<f64>, now: SimTime) {
        let slot = self.slot(node);
        let s = &mut self.slots[slot];
        match ppm {
            Some(ppm) => s.drifts.push((change, ppm)),
            None => s.drifts.retain(|(c, _)| *c != change),
        }
        let ppm = s.drifts.last().map_or(s.base_drift, |d| d.1);
        s.clock.set_drift(now, ppm.clamp(-crate::clock::MAX_DRIFT_PPM, crate::clock::MAX_DRIFT_PPM));
        self.tap.clocks_changed(now, &Clocks { slots: &self.slots, now });
    }

    fn arm_crash(&mut self, node: NodeId, keep: Option<u32>) {
        let slot = self.slot(node);
        if self.slots[slot].status == Status::Up && !self.healed {
            self.slots[slot].interrupt = Some(keep);
        }
    }

    fn take_interrupted(&mut self) -> Vec<(NodeId, usize, usize)> {
        std::mem::take(&mut self.interrupted)
    }

    fn add_triggers(&mut self, triggers: Vec<Trigger>) {
        self.triggers.extend(triggers.into_iter().map(|t| (t, 0)));
    }

    fn take_fired(&mut self) -> Vec<Firing> {
        std::mem::take(&mut self.fired)
    }

    fn fail(&mut self, node: NodeId, now: SimTime, message: String) {
        let event = self.trace.events();
        self.stop.get_or_insert(Outcome::Crash { node: Some(node), time: now, event, message });
    }

    fn record_fault(&mut self, now: SimTime, description: &str) {
        self.trace.record(now.0, EventKind::Fault, 0, 0, stable_hash(&description));
    }

    fn healed(&mut self) {
        self.healed = true;
        self.fired.clear();
        for s in &mut self.slots {
            s.interrupt = None;
        }
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
        // A bound stops the run too, but the checks judged all before it.
        let stopped = matches!(self.stop, Some(Outcome::Violation(_) | Outcome::Crash { .. }));
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
        RunOutput {
            report,
            trace: None,
            history: self.tap.history().clone(),
            reigns: self.tap.reigns().to_vec(),
            leases: self.tap.leases().to_vec(),
            // Another world's network is its own: nothing logs its messages.
            messages: Vec::new(),
        }
    }
}
