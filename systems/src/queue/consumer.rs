//! A consumer. Each cycle: receive a message; work on it (extending its
//! visibility every half timeout meanwhile); apply its effect to the store
//! together with its message id in one request; ack it; every fourth
//! message, read the account back. A poison message's processing fails:
//! the consumer moves on without acking, and the broker delivers it again
//! once its visibility runs out, until it is dead-lettered. The variants
//! change the middle: `no-dedup` adds without the record,
//! `dedup-not-atomic` asks, adds and records in three requests,
//! `ack-before-process` acks first.
//!
//! A consumer runs for the whole run, one message straight after another,
//! and after an empty receive pauses `poll`, doubling with each empty
//! answer in a row up to 16 times `poll`: its script's `consume`
//! operations only say that it is a consumer.
//!
//! History: `receive` (key `queue`, output the message id, or null when
//! nothing was visible), `add` (key the account, input the amount, output
//! the balance after; `fail` when the store had applied the message
//! already), `seen` and `record` (key the message id, `dedup-not-atomic`),
//! `ack` (key `queue`, input the message id) and `read` (key the account).

use std::time::Duration;

use harness::history::Value;
use harness::node::{Ctx, NodeId, TimerId};

use super::producer::QUEUE_KEY;
use super::requests::{Requests, To};
use super::{Body, BrokerOp, BrokerReply, Config, MessageId, Msg, QueueNode, QueueObs, Receipt, StoreOp, StoreReply};
use super::{Timer, Variant};

/// The request in flight.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Step {
    Receive,
    /// `ApplyOnce`, or the plain add of `no-dedup` and `dedup-not-atomic`.
    Add,
    Seen,
    Record,
    Ack,
    Read,
}

/// The message a consumer holds.
struct Holding {
    message: MessageId,
    receipt: Receipt,
    body: Body,
    acked: bool,
    /// Its effect is in the store (or the store had it already).
    applied: bool,
}

pub struct Consumer {
    config: Config,
    requests: Requests,
    step: Option<Step>,
    holding: Option<Holding>,
    extend_timer: Option<TimerId>,
    /// Empty answers in a row.
    idle: u32,
}

impl Consumer {
    pub fn new(config: Config) -> Self {
        Consumer { config, requests: Requests::default(), step: None, holding: None, extend_timer: None, idle: 0 }
    }

    pub fn on_start(&mut self, ctx: &mut Ctx<'_, QueueNode>) {
        self.requests.start(ctx);
        ctx.set_timer(self.config.think, Timer::Think);
    }

    pub fn on_timer(&mut self, ctx: &mut Ctx<'_, QueueNode>, timer: Timer) {
        match timer {
            Timer::Think => self.receive(ctx),
            Timer::Work => self.on_work_timeout(ctx),
            Timer::Extend => self.on_extend_timeout(ctx),
            Timer::Request(id) => {
                if self.requests.on_timeout(ctx, &self.config, id) {
                    self.gave_up(ctx);
                }
            }
            other => panic!("{} got a timer it never sets: {other:?}", ctx.me()),
        }
    }

    pub fn on_message(&mut self, ctx: &mut Ctx<'_, QueueNode>, from: NodeId, msg: Msg) {
        match msg {
            Msg::BrokerReply { id, reply } => {
                if self.requests.answered(ctx, from, id) {
                    self.on_broker_reply(ctx, reply);
                }
            }
            Msg::StoreReply { id, reply } => {
                if self.requests.answered(ctx, from, id) {
                    self.on_store_reply(ctx, reply);
                }
            }
            Msg::NotLeader { id, hint } => {
                if self.requests.on_not_leader(ctx, &self.config, id, hint) {
                    self.gave_up(ctx);
                }
            }
            other => panic!("{} got a message meant for a server: {other:?}", ctx.me()),
        }
    }

    fn broker(&mut self, ctx: &mut Ctx<'_, QueueNode>, step: Step, key: &str, input: Value, op: BrokerOp) {
        ctx.invoke(name(step), Some(key), input);
        self.step = Some(step);
        self.requests.send(ctx, &self.config, To::Broker, |id| Msg::Broker { id, op });
    }

    fn store(&mut self, ctx: &mut Ctx<'_, QueueNode>, step: Step, key: &str, input: Value, op: StoreOp) {
        ctx.invoke(name(step), Some(key), input);
        self.step = Some(step);
        self.requests.send(ctx, &self.config, To::Store, |id| Msg::Store { id, op });
    }

    fn receive(&mut self, ctx: &mut Ctx<'_, QueueNode>) {
        self.broker(ctx, Step::Receive, QUEUE_KEY, Value::Null, BrokerOp::Receive);
    }

    fn on_broker_reply(&mut self, ctx: &mut Ctx<'_, QueueNode>, reply: BrokerReply) {
        match (self.step.take(), reply) {
            (Some(Step::Receive), BrokerReply::Delivered { message, receipt, body }) => {
                // Reported before the `ok`: a crash in this handler that
                // keeps the `ok` keeps the report (the checks bound the
                // deliveries nobody saw by the receives left unanswered).
                ctx.observe(QueueObs::Received { message, receipt, body: body.clone() });
                ctx.ok(Value::Int(message.0 as i64));
                self.on_delivered(ctx, message, receipt, body);
            }
            (Some(Step::Receive), BrokerReply::Empty) => {
                ctx.ok(Value::Null);
                // Each empty answer in a row doubles the pause, up to 16
                // polls' worth: an idle consumer costs the broker (a log
                // entry a receive) little, a busy one never waits. It delays
                // finding a message that is visible again by up to that much.
                let pause = self.config.poll.saturating_mul(1 << self.idle.min(4));
                self.idle += 1;
                ctx.set_timer(pause, Timer::Think);
            }
            (Some(Step::Ack), BrokerReply::Acked) => {
                ctx.ok(Value::Null);
                self.on_acked(ctx);
            }
            (step, reply) => panic!("{} got {reply:?} for {step:?}", ctx.me()),
        }
    }

    fn on_delivered(&mut self, ctx: &mut Ctx<'_, QueueNode>, message: MessageId, receipt: Receipt, body: Body) {
        self.idle = 0;
        self.holding = Some(Holding { message, receipt, body, acked: false, applied: false });
        self.extend_timer = Some(ctx.set_timer(self.config.visibility_timeout / 2, Timer::Extend));
        if self.config.variant == Variant::AckBeforeProcess {
            self.ack(ctx); // the planted bug: at most once
        } else {
            self.work(ctx);
        }
    }

    fn work(&mut self, ctx: &mut Ctx<'_, QueueNode>) {
        let work = ctx.rng().duration_between(Duration::ZERO, self.config.work);
        ctx.set_timer(work, Timer::Work);
    }

    /// Still working: the broker should keep the message invisible.
    fn on_extend_timeout(&mut self, ctx: &mut Ctx<'_, QueueNode>) {
        self.extend_timer = None;
        let Some(h) = &self.holding else { return };
        let msg = Msg::Extend { message: h.message, receipt: h.receipt };
        ctx.send(self.requests.broker(ctx, &self.config), msg);
        self.extend_timer = Some(ctx.set_timer(self.config.visibility_timeout / 2, Timer::Extend));
    }

    /// The work is done: a poison message fails here; any other has its
    /// effect applied.
    fn on_work_timeout(&mut self, ctx: &mut Ctx<'_, QueueNode>) {
        let h = self.holding.as_ref().expect("working on a message");
        if h.body.poison {
            self.finish(ctx); // processing failed: no ack
            return;
        }
        let (message, body) = (h.message, h.body.clone());
        let (publish, account, amount) = (body.publish, body.account, body.amount);
        match self.config.variant {
            Variant::NoDedup => self.store(
                ctx,
                Step::Add,
                &account.clone(),
                Value::Int(amount),
                StoreOp::Add { publish, account, amount },
            ),
            Variant::DedupNotAtomic => {
                self.store(ctx, Step::Seen, &message.to_string(), Value::Null, StoreOp::Seen { message })
            }
            _ => {
                let op = StoreOp::ApplyOnce { message, publish, account: account.clone(), amount };
                self.store(ctx, Step::Add, &account, Value::Int(amount), op)
            }
        }
    }

    fn on_store_reply(&mut self, ctx: &mut Ctx<'_, QueueNode>, reply: StoreReply) {
        let h = self.holding.as_mut().expect("a store request is about a message");
        match (self.step.take(), reply) {
            (Some(Step::Add), StoreReply::Added { balance }) => {
                ctx.ok(Value::Int(balance));
                if self.config.variant == Variant::DedupNotAtomic {
                    let message = h.message;
                    self.store(ctx, Step::Record, &message.to_string(), Value::Null, StoreOp::Record { message });
                    return;
                }
                h.applied = true;
            }
            (Some(Step::Add), StoreReply::Duplicate) => {
                ctx.fail(Value::from("duplicate"));
                h.applied = true;
            }
            (Some(Step::Seen), StoreReply::Seen(seen)) => {
                ctx.ok(Value::Bool(seen));
                if !seen {
                    let (publish, account, amount) = (h.body.publish, h.body.account.clone(), h.body.amount);
                    self.store(
                        ctx,
                        Step::Add,
                        &account.clone(),
                        Value::Int(amount),
                        StoreOp::Add { publish, account, amount },
                    );
                    return;
                }
                h.applied = true;
            }
            (Some(Step::Record), StoreReply::Recorded) => {
                ctx.ok(Value::Null);
                h.applied = true;
            }
            (Some(Step::Read), StoreReply::Balance(b)) => {
                ctx.ok(Value::Int(b));
                self.finish(ctx);
                return;
            }
            (step, reply) => panic!("{} got {reply:?} for {step:?}", ctx.me()),
        }
        if h.acked {
            self.after_ack(ctx);
        } else {
            self.ack(ctx);
        }
    }

    fn ack(&mut self, ctx: &mut Ctx<'_, QueueNode>) {
        let message = self.holding.as_ref().expect("acking a message").message;
        self.broker(ctx, Step::Ack, QUEUE_KEY, Value::Int(message.0 as i64), BrokerOp::Ack { message });
    }

    /// Acked: `ack-before-process` now works; otherwise the cycle ends.
    fn on_acked(&mut self, ctx: &mut Ctx<'_, QueueNode>) {
        let h = self.holding.as_mut().expect("acked a message");
        h.acked = true;
        if h.applied {
            self.after_ack(ctx);
        } else {
            self.work(ctx);
        }
    }

    /// Every fourth message applied, read its account back.
    fn after_ack(&mut self, ctx: &mut Ctx<'_, QueueNode>) {
        let h = self.holding.as_ref().expect("a message");
        if h.body.publish.seq % 4 == 0 {
            let account = h.body.account.clone();
            self.store(ctx, Step::Read, &account.clone(), Value::Null, StoreOp::Read { account });
            return;
        }
        self.finish(ctx);
    }

    /// No answer after every send: a receive or a read did nothing that
    /// matters (a delivery never seen expires); anything else may have
    /// taken effect. A message held is given up on: it will come again.
    fn gave_up(&mut self, ctx: &mut Ctx<'_, QueueNode>) {
        match self.step.take() {
            Some(Step::Read) => ctx.fail(Value::Null),
            _ => ctx.info(Value::Null),
        }
        if self.holding.is_some() {
            self.finish(ctx);
        } else {
            ctx.set_timer(self.config.poll, Timer::Think);
        }
    }

    /// Done with the message held: on to the next receive.
    fn finish(&mut self, ctx: &mut Ctx<'_, QueueNode>) {
        if let Some(h) = self.holding.take() {
            ctx.observe(QueueObs::Done { message: h.message, processed: h.applied && h.acked });
        }
        if let Some(t) = self.extend_timer.take() {
            ctx.cancel_timer(t);
        }
        self.receive(ctx); // straight on to the next message, as a consumer loop does
    }
}

fn name(step: Step) -> &'static str {
    match step {
        Step::Receive => "receive",
        Step::Add => "add",
        Step::Seen => "seen",
        Step::Record => "record",
        Step::Ack => "ack",
        Step::Read => "read",
    }
}
