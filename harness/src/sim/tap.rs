//! The observation tap: observations and client history events, as online invariants see them.

use super::*;

impl<N: Node + ?Sized> Core<N> {
    pub(super) fn observe(&mut self, slot: usize, obs: N::Obs) {
        let id = self.id_of(slot);
        match obs.leadership() {
            Some(Leadership::Elected) => self.leader = Some(id),
            Some(Leadership::SteppedDown) if self.leader == Some(id) => self.leader = None,
            _ => {}
        }
        if let Some(name) = obs.trigger() {
            self.fire_triggers(name, id);
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

    /// Schedules the faults of the triggers a report of `event` by `node`
    /// fires. After the heal nothing fires: the liveness phase is fault-free.
    fn fire_triggers(&mut self, event: &str, node: NodeId) {
        if self.healed {
            return;
        }
        let now = self.now;
        let mut fired = Vec::new();
        for (trigger, count) in &mut self.triggers {
            if let Some(firing) = trigger.fire(event, node, *count, self.clients_crash, &mut self.trigger_rng) {
                *count += 1;
                fired.push(firing);
            }
        }
        for f in fired {
            let at = now.saturating_add(f.delay).0;
            self.push_event(at, Event::Fault { fault: Box::new(f.fault), undo_after: f.duration });
        }
    }

    pub(super) fn record_op(&mut self, slot: usize, op: Op) {
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

    pub(super) fn record_invoke(&mut self, slot: usize, f: &str, key: Option<&str>, value: Value) {
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

    pub(super) fn record_completion(&mut self, slot: usize, kind: OpType, value: Value) {
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
}

impl<N: Node + ?Sized> ClockReadings for Core<N> {
    fn mono(&self, node: NodeId) -> MonoTime {
        self.nodes[self.slot_of(node)].clock.mono(self.now)
    }
    fn wall(&self, node: NodeId) -> WallTime {
        self.nodes[self.slot_of(node)].clock.wall(self.now)
    }
}
