//! A client: starts its script's sagas one at a time (`["book", "trip",
//! amount]`, or `["book", "trip", [amount, step]]` for one that a service
//! refuses at `step`), waits for each outcome, asks again (the same saga)
//! when the wait runs out, and gives it up after `sends` asks
//! (choreographed, never: nothing in a choreographed saga gives up). After
//! its script it stops. Orchestrated, it asks the orchestrator (or the
//! coordinator), which answers every ask; choreographed, it hands the
//! saga to the first service, and acknowledges the outcome a service
//! tells it (the service tells it until it does).
//!
//! History: `book` (key `trip`, input the order, output `"done"` or
//! `"compensated"`; `info` when given up).

use harness::history::Value;
use harness::node::{Ctx, NodeId, TimerId};

use super::{Config, Msg, Order, SagaId, SagaNode, SagaObs, Timer};
use crate::ClientOp;

pub const TRIP_KEY: &str = "trip";

struct Pending {
    saga: SagaId,
    order: Order,
    sends: u32,
    timer: TimerId,
}

pub struct SagaClient {
    config: Config,
    script: Vec<ClientOp>,
    next: usize,
    pending: Option<Pending>,
}

impl SagaClient {
    pub fn new(config: Config, script: Vec<ClientOp>) -> Self {
        SagaClient { config, script, next: 0, pending: None }
    }

    pub fn on_start(&mut self, ctx: &mut Ctx<'_, SagaNode>) {
        ctx.observe(SagaObs::Starting);
        ctx.set_timer(self.config.think, Timer::Think);
    }

    pub fn on_timer(&mut self, ctx: &mut Ctx<'_, SagaNode>, timer: Timer) {
        match timer {
            Timer::Think => self.on_think_timeout(ctx),
            Timer::Request(seq) => self.on_request_timeout(ctx, seq),
            other => panic!("{} got a server's timer: {other:?}", ctx.me()),
        }
    }

    pub fn on_message(&mut self, ctx: &mut Ctx<'_, SagaNode>, from: NodeId, msg: Msg) {
        let (saga, done) = match msg {
            Msg::Outcome { saga, done } => (saga, done),
            // The first service took the saga.
            Msg::Ack { .. } if self.config.variant.choreographed() => return,
            other => panic!("{} got a message a client never gets: {other:?}", ctx.me()),
        };
        if self.config.variant.choreographed() {
            ctx.send(from, Msg::Ack { saga });
        }
        let Some(p) = self.pending.take_if(|p| p.saga == saga) else { return };
        ctx.cancel_timer(p.timer);
        ctx.observe(SagaObs::Told { saga, done, refused_at: p.order.fails_at });
        ctx.ok(Value::from(if done { "done" } else { "compensated" }));
        ctx.set_timer(self.config.think, Timer::Think);
    }

    fn on_think_timeout(&mut self, ctx: &mut Ctx<'_, SagaNode>) {
        let Some(op) = self.script.get(self.next).cloned() else {
            ctx.observe(SagaObs::ScriptDone);
            return;
        };
        let saga = SagaId { client: ctx.me(), seq: self.next as u64 };
        self.next += 1;
        let order = order(&op.value);
        ctx.invoke("book", Some(TRIP_KEY), op.value.clone());
        self.send(ctx, saga, order, 1);
    }

    /// Asks for the saga (send number `sends`) and waits.
    fn send(&mut self, ctx: &mut Ctx<'_, SagaNode>, saga: SagaId, order: Order, sends: u32) {
        if self.config.variant.choreographed() {
            ctx.send(ctx.servers()[0], Msg::Go { saga, step: 0, order });
        } else {
            ctx.send(Config::orchestrator(ctx.servers()), Msg::Start { saga, order });
        }
        let timer = ctx.set_timer(self.config.request_timeout, Timer::Request(saga.seq));
        self.pending = Some(Pending { saga, order, sends, timer });
    }

    fn on_request_timeout(&mut self, ctx: &mut Ctx<'_, SagaNode>, seq: u64) {
        let Some(p) = self.pending.take() else { return };
        assert_eq!(p.saga.seq, seq, "a request timer outlived its saga");
        if p.sends >= self.config.sends && !self.config.variant.choreographed() {
            ctx.info(Value::Null); // it may still end either way
            ctx.set_timer(self.config.think, Timer::Think);
            return;
        }
        self.send(ctx, p.saga, p.order, p.sends + 1);
    }
}

/// A script's order: an amount, or `[amount, step]` refused at `step`.
pub fn order(value: &Value) -> Order {
    match value {
        Value::Int(amount) => Order { amount: *amount, fails_at: None },
        Value::List(v) => match v.as_slice() {
            [Value::Int(amount), Value::Int(step)] => Order { amount: *amount, fails_at: u32::try_from(*step).ok() },
            _ => Order { amount: 0, fails_at: None },
        },
        _ => Order { amount: 0, fails_at: None },
    }
}
