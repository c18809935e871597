//! The event queue, the network and timers: what applying a handler's effects schedules.

use super::*;

impl<N: Node + ?Sized> Core<N> {
    #[inline]
    pub(super) fn link_index(&self, from: usize, to: usize) -> usize {
        from * self.nodes.len() + to
    }

    /// Schedules `event` at `time`; returns its slot.
    pub(super) fn push_event(&mut self, time: u64, event: Event<N::Msg>) -> u32 {
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
        slot
    }

    pub(super) fn send(&mut self, from: usize, to: NodeId, msg: N::Msg) {
        let to = self.slot_of(to);
        self.stats.sent += 1;
        let li = self.link_index(from, to);
        let link = self.links[li];
        if link.blocked > 0 {
            self.stats.dropped_partition += 1;
            self.log_dropped_at_sender(from, to, messages::Fate::CutAtSender, &msg);
            return;
        }
        let config = &self.link_configs[link.config as usize];
        if config.loss > 0.0 && self.net_rng.chance(config.loss) {
            self.stats.dropped_loss += 1;
            self.log_dropped_at_sender(from, to, messages::Fate::Lost, &msg);
            return;
        }
        if config.duplicate > 0.0 && self.net_rng.chance(config.duplicate) {
            self.stats.duplicated += 1;
            self.schedule_delivery(from, to, li, msg.clone());
        }
        self.schedule_delivery(from, to, li, msg);
    }

    pub(super) fn schedule_delivery(&mut self, from: usize, to: usize, li: usize, msg: N::Msg) {
        let link = self.links[li];
        let config = &self.link_configs[link.config as usize];
        let mut at = self.now.0.saturating_add(config.latency.sample(&mut self.net_rng));
        if config.ordering == Ordering::Fifo {
            at = at.max(link.last_delivery);
            self.links[li].last_delivery = at;
        }
        let event = Event::Deliver { from: from as u32, to: to as u32, epoch: link.epoch, msg };
        let slot = self.push_event(at, event);
        if let Some(log) = &mut self.messages {
            log.in_flight(slot, self.now);
        }
    }

    fn log_dropped_at_sender(&mut self, from: usize, to: usize, fate: messages::Fate, msg: &N::Msg) {
        if self.messages.is_some() {
            let (from, to, text) = (self.id_of(from), self.id_of(to), messages::describe(msg));
            if let Some(log) = &mut self.messages {
                log.dropped_at_sender(self.now, from, to, fate, text);
            }
        }
    }

    /// Logs the fate of the message in event slot `slot`, if messages are logged.
    pub(super) fn log_arrival(&mut self, slot: u32, from: u32, to: u32, fate: messages::Fate, msg: &N::Msg) {
        if self.messages.is_some() {
            let (from, to, text) = (self.id_of(from as usize), self.id_of(to as usize), messages::describe(msg));
            if let Some(log) = &mut self.messages {
                log.arrived(slot, from, to, fate, text);
            }
        }
    }

    /// Applies one effect a handler of the node in `slot` recorded.
    pub(super) fn apply_effect(&mut self, slot: usize, effect: Effect<N>) {
        match effect {
            Effect::Send { to, msg } => self.send(slot, to, msg),
            Effect::SetTimer { id, after, tag } => self.set_timer(slot, id, after, tag),
            Effect::CancelTimer(id) => self.cancel_timer(slot, id),
            Effect::DiskWrite { key, value } => self.nodes[slot].disk.apply_write(key, value),
            Effect::DiskSync => self.nodes[slot].disk.sync(),
            Effect::Observe(obs) => self.observe(slot, obs),
            Effect::Invoke { f, key, value } => self.record_invoke(slot, &f, key.as_deref(), value),
            Effect::Complete { kind, value } => self.record_completion(slot, kind, value),
        }
    }

    pub(super) fn set_timer(&mut self, slot: usize, id: TimerId, after: Duration, tag: N::Timer) {
        let id = id.0;
        let state = &mut self.nodes[slot];
        let deadline = state.clock.mono(self.now).saturating_add(after);
        let at = state.clock.true_time_of(self.now, deadline);
        state.timers.push(ArmedTimer { id, deadline, gen: 0, tag });
        self.push_event(at.0, Event::Timer { slot: slot as u32, id, gen: 0 });
    }

    pub(super) fn cancel_timer(&mut self, slot: usize, id: TimerId) {
        let timers = &mut self.nodes[slot].timers;
        if let Some(pos) = timers.iter().position(|t| t.id == id.0) {
            timers.swap_remove(pos);
        }
    }

    pub(super) fn config_index(&mut self, config: LinkConfig) -> u32 {
        if let Some(i) = self.link_configs.iter().position(|c| *c == config) {
            return i as u32;
        }
        self.link_configs.push(config);
        // At most one per fault, and faults are bounded (`limits`).
        u32::try_from(self.link_configs.len() - 1).expect("fewer than 2^32 link configurations")
    }

    /// Replaces the configuration of every link (per-link overrides included).
    pub(super) fn set_all_links(&mut self, config: LinkConfig) {
        self.link_configs = vec![config];
        for l in &mut self.links {
            l.config = 0;
        }
    }
}
