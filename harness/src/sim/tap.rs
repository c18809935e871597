//! The world's side of the tap ([`crate::tap::Tap`]): observations and
//! client history events, stamped with the world's time and event, fire
//! the triggers that wait for them, and a violation stops the run.

use super::*;

/// The nodes' clocks as they read at the world's `now`, for checks that
/// judge in true time what a node measured on its own clock.
struct Clocks<'a, N: Node + ?Sized> {
    nodes: &'a [NodeState<N>],
    n_servers: u32,
    now: SimTime,
}

impl<N: Node + ?Sized> ClockReadings for Clocks<'_, N> {
    fn mono(&self, node: NodeId) -> MonoTime {
        self.nodes[slot_in(self.n_servers, self.nodes.len(), node)].clock.mono(self.now)
    }
    fn wall(&self, node: NodeId) -> WallTime {
        self.nodes[slot_in(self.n_servers, self.nodes.len(), node)].clock.wall(self.now)
    }
    fn projected(&self, node: NodeId, deadline: LeaseDeadline) -> Option<SimTime> {
        let clock = &self.nodes[slot_in(self.n_servers, self.nodes.len(), node)].clock;
        match deadline {
            LeaseDeadline::Mono(m) => clock.projected_mono(self.now, m),
            LeaseDeadline::Wall(w) => clock.projected_wall(self.now, w),
        }
    }
}

impl<N: Node + ?Sized> Core<N> {
    /// A fault may have moved clocks: the tap's picture of leases follows.
    pub(super) fn clocks_changed(&mut self) {
        let clocks = Clocks { nodes: &self.nodes, n_servers: self.n_servers, now: self.now };
        self.tap.clocks_changed(self.now, &clocks);
    }

    pub(super) fn observe(&mut self, slot: usize, obs: N::Obs) {
        let id = self.id_of(slot);
        if let Some(name) = obs.trigger() {
            self.fire_triggers(name, id);
        }
        let event = self.trace.events().saturating_sub(1);
        let clocks = Clocks { nodes: &self.nodes, n_servers: self.n_servers, now: self.now };
        let result = self.tap.observe(self.now, event, id, obs, &clocks);
        self.stop_on(result);
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

    pub(super) fn record_invoke(&mut self, slot: usize, f: &str, key: Option<&str>, value: Value) {
        let event = self.trace.events().saturating_sub(1);
        let result = self.tap.invoke(self.now, event, self.id_of(slot), f, key, value);
        self.stop_on(result);
    }

    pub(super) fn record_completion(&mut self, slot: usize, kind: OpType, value: Value) {
        let event = self.trace.events().saturating_sub(1);
        let result = self.tap.complete(self.now, event, self.id_of(slot), kind, value);
        self.stop_on(result);
    }

    /// The first violation stops the run.
    fn stop_on(&mut self, result: Result<(), Violation>) {
        if let Err(v) = result {
            if self.stop.is_none() {
                self.stop = Some(Stop::Violation(v));
            }
        }
    }
}
