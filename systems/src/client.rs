//! One scripted client for every system: it runs a script of operations
//! (then liveness probes), records each in the history (`invoke`, then
//! `ok`, `fail` or `info`), numbers requests, times them out, resends
//! them (same id) to the server the system picks, and gives up after a
//! number of sends. A system supplies only what differs, as a
//! [`Protocol`]: how an operation becomes a request, where to resend, what
//! to probe with, and (at the call site) what a reply means.

use std::time::Duration;

use harness::history::Value;
use harness::node::{Ctx, Node, NodeId, TimerId};

use crate::ClientOp;

/// A request for one operation, as the protocol builds it.
pub struct Request<M> {
    pub msg: M,
    pub to: NodeId,
    /// The function recorded in the history (it may differ from the op's).
    pub f: String,
    /// A read that runs out of sends failed (it did nothing) when the
    /// settings say so; anything else is indeterminate.
    pub is_read: bool,
}

/// What a reply means for the operation in flight.
pub enum Completion {
    Ok(Value),
    Fail(Value),
}

/// What differs between systems' clients.
pub trait Protocol {
    type Node: Node;
    /// The request for `op`, numbered `id`.
    fn request(&mut self, ctx: &mut Ctx<'_, Self::Node>, op: &ClientOp, id: u64) -> Request<<Self::Node as Node>::Msg>;
    /// Where to send a request again: after a timeout (`redirect` is
    /// `None`), or after a server said another one leads (`Some(hint)`).
    fn resend_to(
        &mut self,
        ctx: &Ctx<'_, Self::Node>,
        sent_to: NodeId,
        msg: &<Self::Node as Node>::Msg,
        redirect: Option<Option<NodeId>>,
    ) -> NodeId;
    /// The `n`th operation after the script (from 1): a liveness probe.
    fn probe(&mut self, ctx: &mut Ctx<'_, Self::Node>, n: u64) -> ClientOp;
    fn think_timer() -> <Self::Node as Node>::Timer;
    fn request_timer(id: u64) -> <Self::Node as Node>::Timer;
}

/// How the client paces and gives up.
#[derive(Clone, Debug)]
pub struct ClientSettings {
    /// Pause between scripted operations.
    pub think: Duration,
    /// Pause between probes, after the script.
    pub probe_every: Duration,
    pub request_timeout: Duration,
    /// Sends per operation, the first included, before giving up.
    pub sends: u32,
    /// Whether a read that runs out of sends is recorded as failed.
    pub reads_fail: bool,
}

struct Pending<M> {
    id: u64,
    msg: M,
    to: NodeId,
    sends: u32,
    timer: TimerId,
    is_read: bool,
}

pub struct ScriptedClient<P: Protocol> {
    pub protocol: P,
    settings: ClientSettings,
    script: Vec<ClientOp>,
    next: usize,
    next_id: u64,
    probes: u64,
    pending: Option<Pending<<P::Node as Node>::Msg>>,
}

impl<P: Protocol> ScriptedClient<P> {
    pub fn new(protocol: P, settings: ClientSettings, script: Vec<ClientOp>) -> Self {
        ScriptedClient { protocol, settings, script, next: 0, next_id: 0, probes: 0, pending: None }
    }

    pub fn on_start(&mut self, ctx: &mut Ctx<'_, P::Node>) {
        ctx.set_timer(self.settings.think, P::think_timer());
    }

    pub fn on_think_timeout(&mut self, ctx: &mut Ctx<'_, P::Node>) {
        let op = match self.script.get(self.next) {
            Some(op) => op.clone(),
            None => {
                self.probes += 1;
                self.protocol.probe(ctx, self.probes)
            }
        };
        self.next += 1;
        self.next_id += 1;
        let id = self.next_id;
        let request = self.protocol.request(ctx, &op, id);
        ctx.invoke(&request.f, Some(&op.key), op.value.clone());
        ctx.send(request.to, request.msg.clone());
        let timer = ctx.set_timer(self.settings.request_timeout, P::request_timer(id));
        let pending = Pending { id, msg: request.msg, to: request.to, sends: 1, timer, is_read: request.is_read };
        self.pending = Some(pending);
    }

    /// A reply to request `id`: `meaning` says what it means (and may
    /// update the protocol's state); a late reply to a request already
    /// given up on is ignored.
    pub fn on_reply(
        &mut self,
        ctx: &mut Ctx<'_, P::Node>,
        id: u64,
        meaning: impl FnOnce(&mut P, &mut Ctx<'_, P::Node>) -> Completion,
    ) {
        if self.pending.as_ref().is_none_or(|p| p.id != id) {
            return;
        }
        match meaning(&mut self.protocol, ctx) {
            Completion::Ok(v) => ctx.ok(v),
            Completion::Fail(v) => ctx.fail(v),
        }
        self.finish(ctx);
    }

    /// A server said another one leads (its hint, if it knows one).
    pub fn on_redirect(&mut self, ctx: &mut Ctx<'_, P::Node>, id: u64, hint: Option<NodeId>) {
        let Some(p) = &self.pending else { return };
        if p.id != id {
            return;
        }
        let to = self.protocol.resend_to(ctx, p.to, &p.msg, Some(hint));
        self.resend(ctx, to);
    }

    pub fn on_request_timeout(&mut self, ctx: &mut Ctx<'_, P::Node>, id: u64) {
        let Some(p) = &self.pending else { return };
        assert_eq!(p.id, id, "a request timer outlived its request");
        let to = self.protocol.resend_to(ctx, p.to, &p.msg, None);
        self.resend(ctx, to);
    }

    /// Sends the request in flight again, to `to`, or gives up after its sends.
    fn resend(&mut self, ctx: &mut Ctx<'_, P::Node>, to: NodeId) {
        let Some(mut p) = self.pending.take() else { return };
        ctx.cancel_timer(p.timer);
        if p.sends >= self.settings.sends {
            if p.is_read && self.settings.reads_fail {
                ctx.fail(Value::Null);
            } else {
                ctx.info(Value::Null); // it may still take effect
            }
            self.finish(ctx);
            return;
        }
        p.sends += 1;
        p.to = to;
        ctx.send(to, p.msg.clone());
        p.timer = ctx.set_timer(self.settings.request_timeout, P::request_timer(p.id));
        self.pending = Some(p);
    }

    fn finish(&mut self, ctx: &mut Ctx<'_, P::Node>) {
        if let Some(p) = self.pending.take() {
            ctx.cancel_timer(p.timer);
        }
        let pause = if self.next < self.script.len() { self.settings.think } else { self.settings.probe_every };
        ctx.set_timer(pause, P::think_timer());
    }
}
