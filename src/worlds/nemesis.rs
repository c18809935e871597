//! The plan's faults in another world: each at its time, its target
//! resolved as the built-in world resolves it (same stream, same rules),
//! undone `for` later on exactly what it hit, and everything ended at the
//! heal. Triggers fire on the host (it sees the observations) and their
//! faults join the schedule here; a crash armed for a node's next handler
//! strikes on the host, and the world stops the node's software after.
//! A world supplies the [`Actions`]; pauses, clocks, loss and duplication
//! are the driver's own.

use std::collections::BTreeMap;
use std::time::Duration;

use harness::fault::{Fault, Target};
use harness::net::{Latency, LinkConfig};
use harness::scenario::TimedFault;
use harness::sim::{AppliedFault, Status};
use harness::targets::Targets;
use harness::{NodeId, Rng, SimTime, Stream};

use super::SharedRef;

/// What a world does to apply faults.
pub trait Actions {
    /// Cuts the directed link (messages from `from` to `to` are dropped).
    fn cut(&mut self, from: NodeId, to: NodeId);
    fn mend(&mut self, from: NodeId, to: NodeId);
    /// Stops the node's software (the host already forgot its memory).
    fn crash(&mut self, node: NodeId);
    /// Starts the node's software again.
    fn restart(&mut self, node: NodeId);
    /// The network's latency from now on (a storm, or its end).
    fn set_latency(&mut self, latency: &Latency);
}

enum Undo {
    /// Mend this partition (by number), unless a heal mended it already.
    Cut(u64),
    /// Restart each node if it is still down from the crash that took it
    /// (its count of downs then).
    Restart(Vec<(NodeId, u64)>),
    /// Resume each node if it is still in the pause that this undoes.
    Resume(Vec<(NodeId, u64)>),
    Fault(Fault),
    Drift(u64, Vec<NodeId>),
    EndStorm(u64),
}

pub struct Nemesis {
    /// Faults to apply, by time and order of scheduling.
    pending: BTreeMap<(SimTime, u64), (Fault, Option<Duration>)>,
    undos: BTreeMap<(SimTime, u64), Undo>,
    seq: u64,
    targets: Targets,
    rng: Rng,
    /// How many applied partitions cut each directed link.
    cuts: BTreeMap<(NodeId, NodeId), u32>,
    /// The partitions on now, by number: the links each cut.
    partitions: BTreeMap<u64, Vec<(NodeId, NodeId)>>,
    /// Crashes armed for a node's next handler: how long it stays down.
    armed: BTreeMap<NodeId, Option<Duration>>,
    next_change: u64,
    next_partition: u64,
    /// The scenario's network, and the storms on now, oldest first.
    network: LinkConfig,
    storms: Vec<(u64, LinkConfig)>,
    pub applied: Vec<AppliedFault>,
}

impl Nemesis {
    pub fn new(faults: &[TimedFault], targets: Targets, network: &LinkConfig, seed: u64) -> Self {
        let mut nemesis = Nemesis {
            pending: BTreeMap::new(),
            undos: BTreeMap::new(),
            seq: 0,
            targets,
            rng: Rng::new(seed, Stream::Faults),
            cuts: BTreeMap::new(),
            partitions: BTreeMap::new(),
            armed: BTreeMap::new(),
            next_change: 0,
            next_partition: 0,
            network: network.clone(),
            storms: Vec::new(),
            applied: Vec::new(),
        };
        for f in faults {
            nemesis.schedule(SimTime::from_duration(f.at), f.fault.clone(), f.duration);
        }
        nemesis
    }

    fn schedule(&mut self, at: SimTime, fault: Fault, duration: Option<Duration>) {
        self.seq += 1;
        self.pending.insert((at, self.seq), (fault, duration));
    }

    fn schedule_undo(&mut self, at: SimTime, undo: Undo) {
        self.seq += 1;
        self.undos.insert((at, self.seq), undo);
    }

    /// Applies every fault and undo due by `now`, after taking in what the
    /// host did since: crashes that struck in handlers, triggers that fired.
    pub fn run_due(&mut self, now: SimTime, shared: &SharedRef, world: &mut dyn Actions) {
        self.take_from_host(now, shared);
        loop {
            let fault = self.pending.first_key_value().map(|(k, _)| *k).filter(|(at, _)| *at <= now);
            let undo = self.undos.first_key_value().map(|(k, _)| *k).filter(|(at, _)| *at <= now);
            match (fault, undo) {
                // In the order they were scheduled, at equal times too.
                (Some(f), Some(u)) if f < u => {
                    let (fault, duration) = self.pending.remove(&f).expect("just seen");
                    self.apply(now, &fault, duration, shared, world);
                }
                (_, Some(u)) => {
                    let undo = self.undos.remove(&u).expect("just seen");
                    self.undo(now, undo, shared, world);
                }
                (Some(f), None) => {
                    let (fault, duration) = self.pending.remove(&f).expect("just seen");
                    self.apply(now, &fault, duration, shared, world);
                }
                (None, None) => break,
            }
            self.take_from_host(now, shared);
        }
    }

    /// Crashes that struck in handlers (the world stops their software;
    /// their restart is scheduled), and faults triggers fired.
    fn take_from_host(&mut self, now: SimTime, shared: &SharedRef) {
        let (interrupted, fired) = {
            let mut s = shared.borrow_mut();
            (s.host.take_interrupted(), s.host.take_fired())
        };
        // The node's task stops itself once it has sent what the handler
        // kept: stopping it from here could cut those sends short (madsim
        // delays each send a few microseconds in the sender's task).
        for (node, kept, total) in interrupted {
            self.log(now, format!("crash in a handler after {kept} of {total} effects"), vec![node], shared);
            if let Some(Some(after)) = self.armed.remove(&node) {
                let downs = shared.borrow().host.downs(node);
                self.schedule_undo(now.saturating_add(after), Undo::Restart(vec![(node, downs)]));
            }
        }
        for f in fired {
            self.schedule(now.saturating_add(f.delay), f.fault, f.duration);
        }
    }

    fn apply(
        &mut self,
        now: SimTime,
        fault: &Fault,
        duration: Option<Duration>,
        shared: &SharedRef,
        world: &mut dyn Actions,
    ) {
        let leader = shared.borrow().host.leader();
        let resolve = |t: &Target, rng: &mut Rng| self.targets.resolve(t, leader, rng);
        let (undo, hit) = match fault {
            Fault::Partition(shape) => {
                let (pairs, hit) = self.targets.cut(shape, leader, &mut self.rng);
                for &(a, b) in &pairs {
                    self.cut(a, b, shared, world);
                }
                // Numbered 1, 2, ... as the built-in world numbers them, so
                // a report pairs each heal with its partition.
                self.next_partition += 1;
                self.partitions.insert(self.next_partition, pairs);
                (Some(Undo::Cut(self.next_partition)), hit)
            }
            Fault::HealPartitions => {
                self.mend_all(shared, world);
                (None, Vec::new())
            }
            Fault::Crash(t) | Fault::Kill(t) => {
                let status = if matches!(fault, Fault::Kill(_)) { Status::Killed } else { Status::Crashed };
                let hit = resolve(t, &mut self.rng);
                let mut down = Vec::new();
                let mut s = shared.borrow_mut();
                for &n in &hit {
                    let was_up = s.host.status(n) == Status::Up;
                    s.host.crash(n, status, now);
                    s.paused.remove(&n);
                    s.started.remove(&n);
                    if was_up {
                        down.push((n, s.host.downs(n)));
                    }
                }
                drop(s);
                for &(n, _) in &down {
                    world.crash(n);
                }
                let hit = down.iter().map(|&(n, _)| n).collect();
                (Some(Undo::Restart(down)), hit)
            }
            Fault::CrashInHandler { target, effects } => {
                let hit = resolve(target, &mut self.rng);
                let mut s = shared.borrow_mut();
                let hit: Vec<NodeId> = hit.into_iter().filter(|&n| s.host.status(n) == Status::Up).collect();
                for &n in &hit {
                    s.host.arm_crash(n, *effects);
                    self.armed.insert(n, duration);
                }
                s.stats.faults_applied += 1;
                drop(s);
                self.log(now, format!("{fault} (armed)"), hit, shared);
                return;
            }
            Fault::Restart(t) => {
                let hit = resolve(t, &mut self.rng);
                let tokens: Vec<(NodeId, u64)> = hit.iter().map(|&n| (n, shared.borrow().host.downs(n))).collect();
                let hit = self.restart(&tokens, now, shared, world);
                (None, hit)
            }
            Fault::Pause(t) => {
                let hit = resolve(t, &mut self.rng);
                let mut s = shared.borrow_mut();
                let paused: Vec<NodeId> =
                    hit.iter().copied().filter(|&n| s.host.status(n) == Status::Up && !s.is_paused(n)).collect();
                let tokens: Vec<(NodeId, u64)> = paused.iter().map(|&n| (n, s.pause(n))).collect();
                (Some(Undo::Resume(tokens)), paused)
            }
            Fault::Resume(t) => {
                let hit = resolve(t, &mut self.rng);
                shared.borrow_mut().paused.retain(|n, _| !hit.contains(n));
                (None, hit)
            }
            Fault::ClockBump { target, delta_ns } => {
                let hit = resolve(target, &mut self.rng);
                for &n in &hit {
                    shared.borrow_mut().host.clock(n, fault, now);
                }
                let back = Fault::ClockBump { target: Target::Nodes(hit.clone()), delta_ns: -delta_ns };
                (Some(Undo::Fault(back)), hit)
            }
            Fault::ClockStrobe { target, .. } | Fault::ClockReset(target) => {
                let hit = resolve(target, &mut self.rng);
                for &n in &hit {
                    shared.borrow_mut().host.clock(n, fault, now);
                }
                (None, hit)
            }
            Fault::ClockDrift { target, ppm } => {
                let hit = resolve(target, &mut self.rng);
                self.next_change += 1;
                for &n in &hit {
                    let mut s = shared.borrow_mut();
                    s.host.drift(n, self.next_change, Some(*ppm), now);
                    s.retime(n).notify_one();
                }
                (Some(Undo::Drift(self.next_change, hit.clone())), hit)
            }
            Fault::Network(config) => {
                self.next_change += 1;
                self.storms.push((self.next_change, config.clone()));
                self.set_network(config.clone(), shared, world);
                (Some(Undo::EndStorm(self.next_change)), Vec::new())
            }
        };
        shared.borrow_mut().stats.faults_applied += 1;
        self.log(now, fault.to_string(), hit, shared);
        if let (Some(undo), Some(d)) = (undo, duration) {
            self.schedule_undo(now.saturating_add(d), undo);
        }
    }

    fn undo(&mut self, now: SimTime, undo: Undo, shared: &SharedRef, world: &mut dyn Actions) {
        if !matches!(undo, Undo::Fault(_)) {
            shared.borrow_mut().stats.faults_applied += 1; // `apply` counts the other
        }
        let (what, nodes) = match undo {
            Undo::Fault(fault) => return self.apply(now, &fault, None, shared, world),
            Undo::Cut(id) => {
                let Some(pairs) = self.partitions.remove(&id) else { return }; // healed already
                for (a, b) in pairs {
                    self.mend(a, b, shared, world);
                }
                (format!("heal partition #{id}"), Vec::new())
            }
            Undo::Restart(tokens) => {
                let hit = self.restart(&tokens, now, shared, world);
                if hit.is_empty() {
                    return;
                }
                ("restart".to_owned(), hit)
            }
            Undo::Resume(tokens) => {
                let mut s = shared.borrow_mut();
                let hit: Vec<NodeId> =
                    tokens.iter().filter(|&&(n, pause)| s.paused.get(&n) == Some(&pause)).map(|&(n, _)| n).collect();
                s.paused.retain(|n, _| !hit.contains(n));
                drop(s);
                if hit.is_empty() {
                    return;
                }
                ("resume".to_owned(), hit)
            }
            Undo::Drift(change, nodes) => {
                for &n in &nodes {
                    let mut s = shared.borrow_mut();
                    s.host.drift(n, change, None, now);
                    s.retime(n).notify_one();
                }
                ("clock-drift back".to_owned(), nodes)
            }
            Undo::EndStorm(id) => {
                self.storms.retain(|(s, _)| *s != id);
                let config = self.storms.last().map_or_else(|| self.network.clone(), |s| s.1.clone());
                self.set_network(config, shared, world);
                (format!("end network storm #{id}"), Vec::new())
            }
        };
        self.log(now, what, nodes, shared);
    }

    /// Ends every fault: partitions mended, storms over, paused nodes
    /// resumed, crashed (not killed) nodes restarted, nothing armed; faults
    /// still scheduled are dropped. Clocks keep what was done to them, as
    /// in the built-in world.
    pub fn heal(&mut self, now: SimTime, shared: &SharedRef, world: &mut dyn Actions) {
        self.take_from_host(now, shared);
        self.partitions.clear();
        shared.borrow_mut().host.healed();
        self.pending.clear();
        self.undos.clear();
        self.armed.clear();
        self.mend_all(shared, world);
        self.storms.clear();
        self.set_network(self.network.clone(), shared, world);
        shared.borrow_mut().paused.clear();
        let tokens: Vec<(NodeId, u64)> =
            self.targets.nodes.iter().map(|&n| (n, shared.borrow().host.downs(n))).collect();
        self.restart(&tokens, now, shared, world);
        self.log(now, "heal".into(), Vec::new(), shared);
    }

    /// Restarts each node still down from the crash its token names: on
    /// the host now, and its software in the world.
    fn restart(
        &mut self,
        tokens: &[(NodeId, u64)],
        now: SimTime,
        shared: &SharedRef,
        world: &mut dyn Actions,
    ) -> Vec<NodeId> {
        let mut hit = Vec::new();
        for &(n, downs) in tokens {
            let mut s = shared.borrow_mut();
            if s.host.status(n) == Status::Crashed && s.host.downs(n) == downs {
                s.restart(n, now);
                drop(s);
                world.restart(n);
                hit.push(n);
            }
        }
        hit
    }

    fn set_network(&mut self, config: LinkConfig, shared: &SharedRef, world: &mut dyn Actions) {
        world.set_latency(&config.latency);
        shared.borrow_mut().links.set_config(config);
    }

    /// Records the fault for the report, and in the run's trace hash (a
    /// seed that replays applies the same faults at the same times).
    fn log(&mut self, now: SimTime, fault: String, nodes: Vec<NodeId>, shared: &SharedRef) {
        shared.borrow_mut().host.record_fault(now, &fault);
        self.applied.push(AppliedFault { time: now, fault, nodes });
    }

    /// Cuts a directed link in the driver (it counts and drops what
    /// crosses) and in the world.
    fn cut(&mut self, a: NodeId, b: NodeId, shared: &SharedRef, world: &mut dyn Actions) {
        let count = self.cuts.entry((a, b)).or_insert(0);
        *count += 1;
        if *count == 1 {
            shared.borrow_mut().links.cut(a, b);
            world.cut(a, b);
        }
    }

    fn mend(&mut self, a: NodeId, b: NodeId, shared: &SharedRef, world: &mut dyn Actions) {
        if let Some(count) = self.cuts.get_mut(&(a, b)) {
            *count -= 1;
            if *count == 0 {
                self.cuts.remove(&(a, b));
                shared.borrow_mut().links.mend(a, b);
                world.mend(a, b);
            }
        }
    }

    fn mend_all(&mut self, shared: &SharedRef, world: &mut dyn Actions) {
        for (a, b) in std::mem::take(&mut self.cuts).into_keys() {
            shared.borrow_mut().links.mend(a, b);
            world.mend(a, b);
        }
    }
}
