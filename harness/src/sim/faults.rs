//! Faults: applying each fault of the menu, and undoing exactly what it did.

use super::*;

impl<N: Node> World<N> {
    pub(super) fn apply_fault(&mut self, fault: Fault, undo_after: Option<Duration>) {
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
        self.core.clocks_changed();
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
    pub(super) fn undo(&mut self, undo: Undo) {
        if !matches!(undo, Undo::Fault(_)) {
            self.core.stats.faults_applied += 1; // apply_fault counts the others
        }
        let undo_drift = matches!(undo, Undo::Drift(..));
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
        if undo_drift {
            self.core.clocks_changed();
        }
    }

    /// Records an applied fault in the trace and the fault log.
    pub(super) fn log_fault(&mut self, description: String, nodes: Vec<NodeId>) {
        let now = self.core.now;
        let text = if nodes.is_empty() { description.clone() } else { format!("{description} on {}", join(&nodes)) };
        self.core.trace.record(now.0, EventKind::Fault, 0, 0, stable_hash(&text));
        tracing::debug!(time = %now, "fault: {text}");
        self.core.trace.push_text(now.0, text);
        self.core.applied.push(AppliedFault { time: now, fault: description, nodes });
    }

    /// Applies a fault; returns the nodes it hit and the fault that undoes it.
    pub(super) fn apply_resolved(&mut self, fault: Fault) -> (Vec<NodeId>, Option<Undo>) {
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

impl<N: Node + ?Sized> Core<N> {
    /// Changes a node's drift and re-times its armed timers, which are
    /// deadlines on its monotonic clock.
    pub(super) fn set_drift(&mut self, slot: usize, ppm: f64) {
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
}

enum ProcessFault {
    Crash,
    Kill,
    Restart,
    Pause,
    Resume,
}
