//! The broker's hosts: the queue ([`Queue`]) on the Raft log ([`Broker`]),
//! or on one server with a synced disk ([`SingleBroker`]). Either times
//! each delivery's visibility on its monotonic clock and, when one runs
//! out, applies (or proposes) an `expire` naming that delivery.

use std::collections::BTreeMap;

use harness::node::{Ctx, NodeId, TimerId};
use harness::time::MonoTime;

use super::broker::{Applied, Event, Queue};
use super::{BrokerReply, Config, MessageId, Msg, QueueCommand, QueueNode, QueueObs, Receipt, Timer};
use crate::raft::{LogIndex, Payload, Raft, RaftConfig};

/// When each delivery's visibility runs out, on the clock of whoever
/// decides (the leader, or the single broker).
#[derive(Default)]
struct Visibility {
    until: BTreeMap<MessageId, (Receipt, MonoTime)>,
}

impl Visibility {
    fn start(&mut self, ctx: &Ctx<'_, QueueNode>, config: &Config, message: MessageId, receipt: Receipt) {
        self.until.insert(message, (receipt, ctx.mono_now().saturating_add(config.visibility_timeout)));
    }

    /// A consumer still works on `message` under `receipt`: its timeout starts again.
    fn extend(&mut self, ctx: &Ctx<'_, QueueNode>, config: &Config, message: MessageId, receipt: Receipt) {
        if self.until.get(&message).is_some_and(|(r, _)| *r == receipt) {
            self.start(ctx, config, message, receipt);
        }
    }

    /// Every delivery in flight gets a whole timeout from now: what a new
    /// leader, or a restarted broker, owes deliveries it cannot date.
    fn restart_all(&mut self, ctx: &Ctx<'_, QueueNode>, config: &Config, queue: &Queue) {
        self.until.clear();
        for (message, receipt) in queue.in_flight() {
            self.start(ctx, config, message, receipt);
        }
    }

    /// Takes out the deliveries whose visibility ran out.
    fn take_expired(&mut self, ctx: &Ctx<'_, QueueNode>) -> Vec<QueueCommand> {
        let now = ctx.mono_now();
        let expired: Vec<QueueCommand> = self
            .until
            .iter()
            .filter(|(_, (_, until))| now >= *until)
            .map(|(&message, &(receipt, _))| QueueCommand::Expire { message, receipt })
            .collect();
        for command in &expired {
            let QueueCommand::Expire { message, .. } = command else { unreachable!() };
            self.until.remove(message);
        }
        expired
    }

    /// Follows what applying a command did.
    fn follow(&mut self, ctx: &Ctx<'_, QueueNode>, config: &Config, applied: &Applied) {
        if let Some(message) = applied.ended {
            self.until.remove(&message);
        }
        if let Some((message, receipt)) = applied.delivered {
            self.start(ctx, config, message, receipt);
        }
    }
}

/// Reports what a command did to the queue; `at` is its stamp.
fn report(ctx: &mut Ctx<'_, QueueNode>, events: Vec<Event>, at: u64) {
    for event in events {
        ctx.observe(match event {
            Event::Enqueued { message, publish } => QueueObs::Enqueued { message, publish, at },
            Event::Left { message, why } => QueueObs::Left { message, why, at },
            Event::DeadLettered { message, body, receives } => QueueObs::DeadLettered { message, body, receives, at },
            Event::Redriven { message } => QueueObs::Redriven { message, at },
        });
    }
}

/// The broker on the Raft log.
pub struct Broker {
    config: Config,
    raft: Raft<QueueCommand>,
    queue: Queue,
    /// Kept while this node leads.
    visibility: Visibility,
    leading: bool,
    /// Armed while this node leads and a delivery is in flight.
    visibility_timer: Option<TimerId>,
}

impl Broker {
    pub fn new(config: Config, servers: u32, disk: &harness::Disk) -> Self {
        let raft_config = RaftConfig { members: Some(servers.saturating_sub(1)), ..config.raft.clone() };
        Broker {
            raft: Raft::new(raft_config, disk),
            config,
            queue: Queue::default(),
            visibility: Visibility::default(),
            leading: false,
            visibility_timer: None,
        }
    }

    pub fn on_start(&mut self, ctx: &mut Ctx<'_, QueueNode>) {
        self.raft.start(ctx);
    }

    pub fn on_message(&mut self, ctx: &mut Ctx<'_, QueueNode>, from: NodeId, msg: Msg) {
        match msg {
            Msg::Raft(m) => self.raft.on_message(ctx, from, m),
            // Every receive goes through the log, even when nothing is
            // visible: its answer must be the one the queue recorded for
            // it. An "empty" answered outside the log could hide a delivery
            // an earlier copy of the request made (its answer lost), or a
            // later duplicate could still make one: a delivery nobody sees,
            // spending one of the message's max_receives.
            Msg::Broker { id, op } => {
                if self.raft.propose(ctx, QueueCommand::Client { client: from, id, op }).is_none() {
                    ctx.send(from, Msg::NotLeader { id, hint: self.raft.leader_hint() });
                }
            }
            Msg::Extend { message, receipt } => {
                if self.raft.is_leader() {
                    self.visibility.extend(ctx, &self.config, message, receipt);
                }
            }
            other => panic!("{} got a message for another part: {other:?}", ctx.me()),
        }
        self.pump(ctx);
    }

    pub fn on_timer(&mut self, ctx: &mut Ctx<'_, QueueNode>, timer: Timer) {
        match timer {
            Timer::Raft(t) => self.raft.on_timer(ctx, t),
            Timer::Visibility => self.on_visibility_timeout(ctx),
            other => panic!("{} got a client's timer: {other:?}", ctx.me()),
        }
        self.pump(ctx);
    }

    /// Every heartbeat interval while leading with deliveries in flight
    /// (only the leader times visibility).
    fn on_visibility_timeout(&mut self, ctx: &mut Ctx<'_, QueueNode>) {
        self.visibility_timer = None;
        if !self.raft.is_leader() {
            return;
        }
        for command in self.visibility.take_expired(ctx) {
            self.raft.propose(ctx, command);
        }
    }

    /// Applies what committed; as leader, answers clients and times visibility.
    fn pump(&mut self, ctx: &mut Ctx<'_, QueueNode>) {
        let leader = self.raft.is_leader();
        if leader && !self.leading {
            self.visibility.restart_all(ctx, &self.config, &self.queue);
        }
        self.leading = leader;
        let rules = self.config.rules();
        let term = self.raft.term();
        for (LogIndex(index), entry) in self.raft.take_committed(ctx) {
            let own_term = entry.term == term;
            let Payload::Command(command) = entry.payload else { continue };
            let mut applied = self.queue.apply(&command, index, rules);
            report(ctx, std::mem::take(&mut applied.events), index);
            if !leader {
                continue;
            }
            self.visibility.follow(ctx, &self.config, &applied);
            // Only for entries of its own term, which it proposed: their
            // clients wait; older requests are retried and answered again.
            if let (true, Some(reply), QueueCommand::Client { client, id, .. }) = (own_term, applied.reply, &command) {
                ctx.send(*client, Msg::BrokerReply { id: *id, reply });
            }
        }
        if !leader {
            self.visibility.until.clear();
        }
        if leader && self.visibility_timer.is_none() && !self.visibility.until.is_empty() {
            self.visibility_timer = Some(ctx.set_timer(self.config.raft.heartbeat, Timer::Visibility));
        }
    }
}

const QUEUE_KEY: &str = "queue";
const COUNTS_KEY: &str = "queue/counts";
const STAMP_KEY: &str = "queue/stamp";
/// The latest command's changes, to report again after a restart.
const LATEST_KEY: &str = "queue/latest";

/// One broker server, its queue synced to disk before every answer; in
/// `attempts-not-persisted`, all but the receive counts.
pub struct SingleBroker {
    config: Config,
    queue: Queue,
    stamp: u64,
    /// The changes the command at `stamp` made.
    latest: Vec<Event>,
    visibility: Visibility,
}

impl SingleBroker {
    pub fn new(config: Config, disk: &harness::Disk) -> Self {
        let mut queue: Queue = disk.get(QUEUE_KEY).unwrap_or_default();
        if config.variant != super::Variant::AttemptsNotPersisted {
            queue.counts = disk.get(COUNTS_KEY).unwrap_or_default();
        }
        let stamp = disk.get(STAMP_KEY).unwrap_or(0);
        let latest = disk.get(LATEST_KEY).unwrap_or_default();
        SingleBroker { config, queue, stamp, latest, visibility: Visibility::default() }
    }

    /// Times every delivery in flight afresh, and reports the latest
    /// command's changes again: a crash in the handler that made them
    /// durable may have cut their report (the checks count each stamp once).
    pub fn on_start(&mut self, ctx: &mut Ctx<'_, QueueNode>) {
        self.visibility.restart_all(ctx, &self.config, &self.queue);
        ctx.set_timer(self.config.raft.heartbeat, Timer::Visibility);
        let latest: Vec<Event> = self.latest.clone();
        report(ctx, latest, self.stamp);
    }

    pub fn on_message(&mut self, ctx: &mut Ctx<'_, QueueNode>, from: NodeId, msg: Msg) {
        match msg {
            Msg::Broker { id, op } => {
                let reply = self.apply(ctx, &QueueCommand::Client { client: from, id, op });
                if let Some(reply) = reply {
                    ctx.send(from, Msg::BrokerReply { id, reply });
                }
            }
            Msg::Extend { message, receipt } => self.visibility.extend(ctx, &self.config, message, receipt),
            other => panic!("{} got a message for another part: {other:?}", ctx.me()),
        }
    }

    pub fn on_timer(&mut self, ctx: &mut Ctx<'_, QueueNode>, timer: Timer) {
        assert!(matches!(timer, Timer::Visibility), "{} got a timer it never sets: {timer:?}", ctx.me());
        ctx.set_timer(self.config.raft.heartbeat, Timer::Visibility);
        for command in self.visibility.take_expired(ctx) {
            self.apply(ctx, &command);
        }
    }

    /// Applies, and makes the change durable before any answer.
    fn apply(&mut self, ctx: &mut Ctx<'_, QueueNode>, command: &QueueCommand) -> Option<BrokerReply> {
        self.stamp += 1;
        let stamp = self.stamp;
        let mut applied = self.queue.apply(command, stamp, self.config.rules());
        self.visibility.follow(ctx, &self.config, &applied);
        ctx.disk().put(QUEUE_KEY, &self.queue);
        if self.config.variant != super::Variant::AttemptsNotPersisted {
            ctx.disk().put(COUNTS_KEY, &self.queue.counts);
        }
        ctx.disk().put(STAMP_KEY, &stamp);
        ctx.disk().put(LATEST_KEY, &applied.events);
        ctx.disk().sync();
        self.latest = std::mem::take(&mut applied.events);
        report(ctx, self.latest.clone(), stamp);
        applied.reply
    }
}
