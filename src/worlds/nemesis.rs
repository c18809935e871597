//! The plan's faults in another world: each at its time, its target
//! resolved as the built-in world resolves it (same stream, same rules),
//! undone `for` later on exactly what it hit, and everything ended at the
//! heal. A world supplies the [`Actions`]; pauses are the driver's own.

use std::collections::BTreeMap;
use std::time::Duration;

use harness::fault::Fault;
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
}

enum Undo {
    Cut(Vec<(NodeId, NodeId)>),
    Restart(Vec<NodeId>),
    Resume(Vec<NodeId>),
}

pub struct Nemesis {
    faults: Vec<TimedFault>,
    next: usize,
    undos: BTreeMap<(SimTime, u64), Undo>,
    seq: u64,
    targets: Targets,
    rng: Rng,
    /// How many applied partitions cut each directed link.
    cuts: BTreeMap<(NodeId, NodeId), u32>,
    pub applied: Vec<AppliedFault>,
}

impl Nemesis {
    pub fn new(faults: &[TimedFault], targets: Targets, seed: u64) -> Self {
        let mut faults = faults.to_vec();
        faults.sort_by_key(|f| f.at);
        Nemesis {
            faults,
            next: 0,
            undos: BTreeMap::new(),
            seq: 0,
            targets,
            rng: Rng::new(seed, Stream::Faults),
            cuts: BTreeMap::new(),
            applied: Vec::new(),
        }
    }

    /// The next time something is due, if anything is.
    pub fn next_due(&self) -> Option<SimTime> {
        let fault = self.faults.get(self.next).map(|f| SimTime::from_duration(f.at));
        let undo = self.undos.keys().next().map(|(t, _)| *t);
        fault.into_iter().chain(undo).min()
    }

    /// Applies every fault and undo due by `now`.
    pub fn run_due(&mut self, now: SimTime, shared: &SharedRef, world: &mut dyn Actions) {
        while let Some(((at, seq), _)) = self.undos.first_key_value() {
            if *at > now {
                break;
            }
            let key = (*at, *seq);
            let undo = self.undos.remove(&key).expect("just seen");
            self.undo(now, undo, shared, world);
        }
        while let Some(f) = self.faults.get(self.next) {
            if SimTime::from_duration(f.at) > now {
                break;
            }
            let f = f.clone();
            self.next += 1;
            self.apply(now, &f.fault, f.duration, shared, world);
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
        let (undo, hit) = match fault {
            Fault::Partition(shape) => {
                let (pairs, hit) = self.targets.cut(shape, leader, &mut self.rng);
                for &(a, b) in &pairs {
                    self.cut(a, b, world);
                }
                (Some(Undo::Cut(pairs)), hit)
            }
            Fault::HealPartitions => {
                self.mend_all(world);
                (None, Vec::new())
            }
            Fault::Crash(t) | Fault::Kill(t) => {
                let status = if matches!(fault, Fault::Kill(_)) { Status::Killed } else { Status::Crashed };
                let hit = self.targets.resolve(t, leader, &mut self.rng);
                let mut s = shared.borrow_mut();
                let down: Vec<NodeId> = hit.iter().copied().filter(|&n| s.host.status(n) == Status::Up).collect();
                for &n in &hit {
                    s.host.crash(n, status);
                    s.paused.retain(|&p| p != n);
                }
                drop(s);
                for &n in &down {
                    world.crash(n);
                }
                (Some(Undo::Restart(down)), hit)
            }
            Fault::Restart(t) => {
                let hit = self.targets.resolve(t, leader, &mut self.rng);
                self.restart(&hit, shared, world);
                (None, hit)
            }
            Fault::Pause(t) => {
                let hit = self.targets.resolve(t, leader, &mut self.rng);
                let mut s = shared.borrow_mut();
                let paused: Vec<NodeId> =
                    hit.iter().copied().filter(|&n| s.host.status(n) == Status::Up && !s.is_paused(n)).collect();
                s.paused.extend(&paused);
                (Some(Undo::Resume(paused)), hit)
            }
            Fault::Resume(t) => {
                let hit = self.targets.resolve(t, leader, &mut self.rng);
                shared.borrow_mut().paused.retain(|n| !hit.contains(n));
                (None, hit)
            }
            other => unreachable!("refused before the run: {other}"),
        };
        shared.borrow_mut().stats.faults_applied += 1;
        self.applied.push(AppliedFault { time: now, fault: fault.to_string(), nodes: hit });
        if let (Some(undo), Some(d)) = (undo, duration) {
            self.seq += 1;
            self.undos.insert((now.saturating_add(d), self.seq), undo);
        }
    }

    fn undo(&mut self, now: SimTime, undo: Undo, shared: &SharedRef, world: &mut dyn Actions) {
        let (what, nodes) = match undo {
            Undo::Cut(pairs) => {
                for (a, b) in pairs {
                    self.mend(a, b, world);
                }
                ("heal partition", Vec::new())
            }
            Undo::Restart(nodes) => {
                self.restart(&nodes, shared, world);
                ("restart", nodes)
            }
            Undo::Resume(nodes) => {
                shared.borrow_mut().paused.retain(|n| !nodes.contains(n));
                ("resume", nodes)
            }
        };
        self.applied.push(AppliedFault { time: now, fault: what.into(), nodes });
    }

    /// Ends every fault: partitions mended, paused nodes resumed, crashed
    /// (not killed) nodes restarted; faults still scheduled are dropped.
    pub fn heal(&mut self, now: SimTime, shared: &SharedRef, world: &mut dyn Actions) {
        self.next = self.faults.len();
        self.undos.clear();
        self.mend_all(world);
        shared.borrow_mut().paused.clear();
        let nodes = self.targets.nodes.clone();
        self.restart(&nodes, shared, world);
        self.applied.push(AppliedFault { time: now, fault: "heal".into(), nodes: Vec::new() });
    }

    /// Restarts the crashed ones among `nodes`.
    fn restart(&mut self, nodes: &[NodeId], shared: &SharedRef, world: &mut dyn Actions) {
        for &n in nodes {
            if shared.borrow().host.status(n) == Status::Crashed {
                world.restart(n);
            }
        }
    }

    fn cut(&mut self, a: NodeId, b: NodeId, world: &mut dyn Actions) {
        let count = self.cuts.entry((a, b)).or_insert(0);
        *count += 1;
        if *count == 1 {
            world.cut(a, b);
        }
    }

    fn mend(&mut self, a: NodeId, b: NodeId, world: &mut dyn Actions) {
        if let Some(count) = self.cuts.get_mut(&(a, b)) {
            *count -= 1;
            if *count == 0 {
                self.cuts.remove(&(a, b));
                world.mend(a, b);
            }
        }
    }

    fn mend_all(&mut self, world: &mut dyn Actions) {
        for (a, b) in std::mem::take(&mut self.cuts).into_keys() {
            world.mend(a, b);
        }
    }
}
