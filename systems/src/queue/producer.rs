//! A producer: publishes its script's messages one at a time, each with
//! the publish id `(producer, place in the script)`, retrying on a timeout
//! with the same id; a `redrive` in its script asks the broker to put the
//! dead-letter queue back. Like an outbox, it records on its disk how far
//! it got once each publish is answered: a restarted producer publishes
//! the one in flight again, with the same id. After its script it stops.
//!
//! History: `publish` (key `queue`, input the amount or `"poison"`, output
//! the broker's message id) and `redrive` (key `dlq`, output how many
//! messages went back).

use harness::history::Value;
use harness::node::{Ctx, NodeId};

use super::requests::{Requests, To};
use super::{Body, BrokerOp, BrokerReply, Config, Msg, PublishId, QueueNode, QueueObs, Timer};
use crate::ClientOp;

pub const QUEUE_KEY: &str = "queue";
pub const DLQ_KEY: &str = "dlq";
/// On the producer's disk: the place in its script of the next publish.
const NEXT_KEY: &str = "producer/next";

pub struct Producer {
    config: Config,
    script: Vec<ClientOp>,
    next: usize,
    requests: Requests,
}

impl Producer {
    pub fn new(config: Config, script: Vec<ClientOp>, disk: &harness::Disk) -> Self {
        let next = disk.get::<u64>(NEXT_KEY).map_or(0, |n| n as usize);
        Producer { config, script, next, requests: Requests::default() }
    }

    pub fn on_start(&mut self, ctx: &mut Ctx<'_, QueueNode>) {
        self.requests.start(ctx);
        ctx.observe(QueueObs::Producing { ops: self.script.len().saturating_sub(self.next) as u32 });
        ctx.set_timer(self.config.think, Timer::Think);
    }

    pub fn on_timer(&mut self, ctx: &mut Ctx<'_, QueueNode>, timer: Timer) {
        match timer {
            Timer::Think => self.on_think_timeout(ctx),
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
                    self.on_reply(ctx, reply);
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

    fn on_think_timeout(&mut self, ctx: &mut Ctx<'_, QueueNode>) {
        let Some(op) = self.script.get(self.next).cloned() else {
            ctx.observe(QueueObs::ScriptDone);
            return;
        };
        let seq = self.next as u32;
        self.next += 1;
        let request = if op.f == "redrive" {
            ctx.invoke("redrive", Some(DLQ_KEY), Value::Null);
            BrokerOp::Redrive
        } else {
            ctx.invoke("publish", Some(QUEUE_KEY), op.value.clone());
            let poison = op.value == Value::from("poison");
            let amount = if let Value::Int(n) = op.value { n } else { 0 };
            let publish = PublishId { producer: ctx.me(), seq };
            BrokerOp::Publish { body: Body { publish, account: op.key, amount, poison } }
        };
        self.requests.send(ctx, &self.config, To::Broker, |id| Msg::Broker { id, op: request });
    }

    fn on_reply(&mut self, ctx: &mut Ctx<'_, QueueNode>, reply: BrokerReply) {
        match reply {
            BrokerReply::Published { message } => {
                ctx.ok(Value::Int(message.0 as i64));
                let seq = (self.next - 1) as u32;
                ctx.observe(QueueObs::PublishAcked { publish: PublishId { producer: ctx.me(), seq }, message });
            }
            BrokerReply::Redriven { messages } => ctx.ok(Value::Int(i64::from(messages))),
            other => panic!("{} got {other:?} for a publish or a redrive", ctx.me()),
        }
        self.move_on(ctx);
    }

    /// No answer after every send: the publish may still have been taken.
    fn gave_up(&mut self, ctx: &mut Ctx<'_, QueueNode>) {
        ctx.info(Value::Null);
        self.move_on(ctx);
    }

    /// Records that the publish in flight is done with, then on to the next.
    fn move_on(&mut self, ctx: &mut Ctx<'_, QueueNode>) {
        ctx.disk().put(NEXT_KEY, &(self.next as u64));
        ctx.disk().sync();
        ctx.set_timer(self.config.think, Timer::Think);
    }
}
