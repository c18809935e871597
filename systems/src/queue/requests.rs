//! A queue client's one request in flight: numbering, where it goes (the
//! broker's leader as the client last heard of it, the single broker, or
//! the store), resends with the same id on a timeout or a redirect, and
//! giving up after [`SENDS`] sends.
//!
//! Request ids grow for the client's whole life, across its restarts: the
//! high 32 bits are its incarnation, counted on its disk. So a server can
//! tell a late duplicate of an earlier request, even one from before a
//! restart, from a new one, and ignore it.

use harness::node::{Ctx, NodeId, TimerId};

use super::{following, Config, Msg, QueueNode, Timer};

/// Sends of one request, the first included, before giving up.
pub const SENDS: u32 = 6;

/// On a client's disk: how many times it has started.
const INCARNATION_KEY: &str = "client/incarnation";

/// Where a request goes.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum To {
    Broker,
    Store,
}

struct Pending {
    id: u64,
    msg: Msg,
    to: To,
    sent_to: NodeId,
    sends: u32,
    timer: TimerId,
}

pub struct Requests {
    /// The last request id used (the first of an incarnation is above
    /// every id of the incarnations before it).
    next: u64,
    /// The broker server it believes leads.
    leader: NodeId,
    pending: Option<Pending>,
}

impl Default for Requests {
    fn default() -> Self {
        Requests { next: 0, leader: NodeId::server(0), pending: None }
    }
}

impl Requests {
    /// Counts this incarnation on the disk: call first, at the node's
    /// start. (A crash before the sync loses the count, but then this
    /// incarnation sent nothing, and the next may reuse its number.)
    pub fn start(&mut self, ctx: &mut Ctx<'_, QueueNode>) {
        let incarnation = ctx.disk().get::<u32>(INCARNATION_KEY).unwrap_or(0) + 1;
        ctx.disk().put(INCARNATION_KEY, &incarnation);
        ctx.disk().sync();
        self.next = u64::from(incarnation) << 32;
    }

    /// Sends the message `make` builds with the next request id.
    pub fn send(&mut self, ctx: &mut Ctx<'_, QueueNode>, config: &Config, to: To, make: impl FnOnce(u64) -> Msg) {
        assert!(self.pending.is_none(), "{}: one request at a time", ctx.me());
        self.next += 1;
        let id = self.next;
        let msg = make(id);
        let sent_to = self.target(ctx, config, to);
        ctx.send(sent_to, msg.clone());
        let timer = ctx.set_timer(config.request_timeout, Timer::Request(id));
        self.pending = Some(Pending { id, msg, to, sent_to, sends: 1, timer });
    }

    fn target(&self, ctx: &Ctx<'_, QueueNode>, config: &Config, to: To) -> NodeId {
        match to {
            To::Store => Config::store(ctx.servers()),
            To::Broker if config.single() => NodeId::server(0),
            To::Broker => self.leader,
        }
    }

    /// The broker server to tell about visibility: the leader it believes in.
    pub fn broker(&self, ctx: &Ctx<'_, QueueNode>, config: &Config) -> NodeId {
        self.target(ctx, config, To::Broker)
    }

    /// Whether `id` is the request in flight, answered by `from`; if so
    /// it is done. An answer to an earlier send, from a server given up
    /// on, counts too: the request is the same.
    pub fn answered(&mut self, ctx: &mut Ctx<'_, QueueNode>, from: NodeId, id: u64) -> bool {
        let Some(p) = self.pending.take_if(|p| p.id == id) else { return false };
        ctx.cancel_timer(p.timer);
        if p.to == To::Broker {
            self.leader = from;
        }
        true
    }

    /// A broker server said another leads: sends again to the one it
    /// names. `true` when that was the last send, as for a timeout.
    pub fn on_not_leader(
        &mut self,
        ctx: &mut Ctx<'_, QueueNode>,
        config: &Config,
        id: u64,
        hint: Option<NodeId>,
    ) -> bool {
        let Some(p) = self.pending.as_ref().filter(|p| p.id == id) else { return false };
        let brokers = Config::broker_servers(ctx.servers());
        self.leader =
            hint.filter(|h| brokers.contains(h) && *h != p.sent_to).unwrap_or_else(|| following(brokers, p.sent_to));
        self.resend(ctx, config)
    }

    /// The request timed out: sends it again, to the next broker server
    /// if it went to the broker. `true` when it was the last send: the
    /// caller records the outcome as unknown.
    pub fn on_timeout(&mut self, ctx: &mut Ctx<'_, QueueNode>, config: &Config, id: u64) -> bool {
        let Some(p) = self.pending.as_ref() else { return false };
        assert_eq!(p.id, id, "a request timer outlived its request");
        if p.to == To::Broker {
            self.leader = following(Config::broker_servers(ctx.servers()), p.sent_to);
        }
        self.resend(ctx, config)
    }

    /// `true` when it gave up instead.
    fn resend(&mut self, ctx: &mut Ctx<'_, QueueNode>, config: &Config) -> bool {
        let mut p = self.pending.take().expect("a request in flight");
        ctx.cancel_timer(p.timer);
        if p.sends >= SENDS {
            return true;
        }
        p.sends += 1;
        p.sent_to = self.target(ctx, config, p.to);
        ctx.send(p.sent_to, p.msg.clone());
        p.timer = ctx.set_timer(config.request_timeout, Timer::Request(p.id));
        self.pending = Some(p);
        false
    }
}
