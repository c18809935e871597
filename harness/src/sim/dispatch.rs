//! Dispatch: the event loop pops events and hands them to nodes; starts, crashes, pauses and resumes of processes.

use super::*;

impl<N: Node> World<N> {
    pub(super) fn within_bounds(&mut self, next_time: u64) -> bool {
        if self.core.trace.events() >= self.core.max_events {
            self.core.stop = Some(Stop::Bound(format!("the event limit of {} was reached", self.core.max_events)));
            return false;
        }
        // A message storm (a heartbeat of a nanosecond, a latency of hours)
        // piles up events faster than time moves on: bound what is pending.
        if self.core.queue.len() >= MAX_PENDING {
            self.core.stop = Some(Stop::Bound(format!(
                "the limit of {MAX_PENDING} pending events (messages in flight, timers) was reached"
            )));
            return false;
        }
        // What a run keeps for its checkers grows with it: bound it, so a
        // run's memory stays bounded whatever its event limit.
        if self.core.tap.records() >= MAX_RECORDS {
            self.core.stop = Some(Stop::Bound(format!(
                "the record limit of {MAX_RECORDS} history events and observations was reached"
            )));
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
    pub(super) fn step(&mut self) {
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

    pub(super) fn deliver(&mut self, slot: u32, from: u32, to: u32, epoch: u32, msg: N::Msg) {
        let core = &mut self.core;
        if epoch != ARRIVED && core.links[core.link_index(from as usize, to as usize)].epoch != epoch {
            core.stats.dropped_partition += 1;
            core.log_arrival(slot, from, to, messages::Fate::Cut(core.now), &msg);
            core.free.push(slot);
            return;
        }
        if core.nodes[to as usize].status != Status::Up {
            core.stats.dropped_down += 1;
            core.log_arrival(slot, from, to, messages::Fate::Down(core.now), &msg);
            core.free.push(slot);
            return;
        }
        let state = &mut core.nodes[to as usize];
        if state.paused {
            core.events[slot as usize] = Some(Event::Deliver { from, to, epoch: ARRIVED, msg });
            state.deferred.push(slot);
            if let Some(log) = &mut core.messages {
                log.held(slot, core.now);
            }
            return;
        }
        core.free.push(slot);
        core.stats.delivered += 1;
        core.log_arrival(slot, from, to, messages::Fate::Delivered(core.now), &msg);
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

    pub(super) fn fire_timer(&mut self, slot: u32, node: usize, id: u64, gen: u32) {
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
    pub(super) fn call(&mut self, slot: usize, f: impl FnOnce(&mut N, &mut Ctx<'_, N>)) {
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
            outstanding: core.tap.outstanding(state.id),
            next_timer: &mut core.next_timer,
        };
        let mut ctx = Ctx::new(env, &mut effects);
        let id = ctx.me();
        let span = tracing::enabled!(tracing::Level::DEBUG).then(|| tracing::debug_span!("node", id = %id).entered());
        let result = crate::panics::catch(|| f(node, &mut ctx));
        drop(span);
        if let Err(panic) = result {
            self.core.effects = effects;
            self.node_panicked(slot, &panic);
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
        // Applying an effect can panic too (a send to a node that does not
        // exist, a checker's bug): that is this node's event, and a crash
        // with its time and event, as if the handler itself had panicked.
        let core = &mut self.core;
        let applied = crate::panics::catch(|| {
            for effect in effects.drain(..).take(keep) {
                core.apply_effect(slot, effect);
            }
        });
        effects.clear();
        self.core.effects = effects;
        if let Err(panic) = applied {
            self.node_panicked(slot, &panic);
            return;
        }
        if let Some(i) = interrupt {
            self.crash_in_handler(slot, keep, total, i.down_for);
        }
    }

    /// A handler of the node in `slot`, or applying what it did, panicked:
    /// the run stops as that node's crash, at this time and event.
    fn node_panicked(&mut self, slot: usize, panic: &Box<dyn std::any::Any + Send>) {
        self.core.stop = Some(Stop::Crash {
            node: Some(self.core.id_of(slot)),
            time: self.core.now,
            event: self.core.trace.events().saturating_sub(1),
            message: crate::panics::message(panic.as_ref()),
        });
    }

    /// The armed crash of a node's handler: it applied `kept` of `total`
    /// effects; the node goes down now and restarts after `down_for`.
    pub(super) fn crash_in_handler(&mut self, slot: usize, kept: usize, total: usize, down_for: Option<Duration>) {
        let id = self.core.id_of(slot);
        self.crash(slot, Status::Crashed);
        self.log_fault(format!("crash in a handler after {kept} of {total} effects"), vec![id]);
        if let Some(after) = down_for {
            let at = self.core.now.saturating_add(after).0;
            let down = self.core.nodes[slot].downs;
            self.core.push_event(at, Event::Undo(Box::new(Undo::Restart(vec![(id, down)]))));
        }
    }

    pub(super) fn start_node(&mut self, slot: usize) {
        let id = self.core.id_of(slot);
        let node = (self.factory)(id, &self.core.nodes[slot].disk);
        self.nodes[slot] = Some(node);
        self.core.nodes[slot].status = Status::Up;
        self.core.nodes[slot].started = self.core.now;
        self.core.trace.record(self.core.now.0, EventKind::Start, slot as u32, 0, 0);
        self.core.trace.push_text(self.core.now.0, format!("{id} start"));
        self.call(slot, |n, ctx| n.on_start(ctx));
    }

    pub(super) fn crash(&mut self, slot: usize, status: Status) {
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
        core.tap.crashed(state.id, core.now);
        // What reached it while paused is lost with its memory.
        for s in std::mem::take(&mut state.deferred) {
            if let Some(Event::Deliver { from, to, msg, .. }) = core.events[s as usize].take() {
                let arrived = core.messages.as_ref().map_or(core.now, |log| log.held_since(s));
                core.log_arrival(s, from, to, messages::Fate::Discarded { arrived, crashed: core.now }, &msg);
            }
            core.free.push(s);
        }
    }

    pub(super) fn restart(&mut self, slot: usize) {
        if self.core.nodes[slot].status == Status::Crashed {
            self.start_node(slot);
        }
    }

    pub(super) fn pause(&mut self, slot: usize) {
        let state = &mut self.core.nodes[slot];
        if state.status == Status::Up && !state.paused {
            state.paused = true;
            state.pauses += 1;
        }
    }

    pub(super) fn resume(&mut self, slot: usize) {
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
}
