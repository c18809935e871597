//! The counter as a faultline system: its nodes (the sans-IO `Counter`
//! behind faultline's node contract), its variants, its `[config]`, its
//! workload, and the property every run must keep.

use std::collections::BTreeMap;
use std::time::Duration;

use counter::Counter;
use faultline::harness::check::{Invariant, RunEnd};
use faultline::harness::node::{Ctx, NoObservation, Node, NodeId, TimerId};
use faultline::harness::runner::{ok_after_heal, Progress};
use faultline::harness::scenario::ClientOp;
use faultline::harness::system::{Count, Positive, Setup, System, Systems, VariantNames, Workload};
use faultline::harness::{Disk, Factory, OpType, Value};
use serde::{Deserialize, Serialize};

/// The systems this crate tests: the list `faultline::testing::main` and
/// `faultline::command::main` run.
pub static SYSTEMS: Systems = Systems::new(&[&CounterSystem]).with_command("cargo run --example faultline --");

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Variant {
    Correct,
    /// Planted bug: the server applies every copy of a request.
    NoDedup,
}

impl VariantNames for Variant {
    const NAMES: &'static [&'static str] = &["correct", "no-dedup"];
    fn parse(name: &str) -> Option<Self> {
        match name {
            "correct" => Some(Variant::Correct),
            "no-dedup" => Some(Variant::NoDedup),
            _ => None,
        }
    }
}

/// `[config]` in this system's scenario files.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    pub request_timeout: Positive,
    pub retries: Count<20>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings { request_timeout: Positive(Duration::from_millis(100)), retries: Count(5) }
    }
}

#[derive(Clone, Debug, Hash, Serialize, Deserialize)]
pub enum Msg {
    Increment { id: u64 },
    Read { id: u64 },
    Reply { id: u64, value: u64 },
}

#[derive(Clone, Debug, Hash)]
pub enum Timer {
    Think,
    Request(u64),
}

pub struct Server {
    counter: Counter,
    dedup: bool,
}

impl Server {
    fn on_increment(&mut self, ctx: &mut Ctx<'_, CounterNode>, from: NodeId, id: u64) {
        let applied = self.counter.increment(&from.to_string(), id, self.dedup);
        if applied.changed {
            // Durable before the reply: a crash never loses an acknowledged increment.
            ctx.disk().put("counter", &self.counter);
            ctx.disk().sync();
        }
        ctx.send(from, Msg::Reply { id, value: applied.value });
    }
}

pub struct Client {
    script: Vec<ClientOp>,
    next: usize,
    think: Duration,
    settings: Settings,
    /// The request in flight: id, message, tries so far, its timer.
    pending: Option<(u64, Msg, u32, TimerId)>,
    next_id: u64,
}

impl Client {
    fn on_think_timeout(&mut self, ctx: &mut Ctx<'_, CounterNode>) {
        // After its script a client keeps reading, so the liveness phase
        // sees whether the counter still answers.
        let f = self.script.get(self.next).map_or("read", |op| op.f.as_str()).to_owned();
        self.next += 1;
        self.next_id += 1;
        let id = self.next_id;
        let msg = if f == "incr" { Msg::Increment { id } } else { Msg::Read { id } };
        ctx.invoke(&f, None, Value::Null);
        self.send(ctx, id, msg, 1);
    }

    fn send(&mut self, ctx: &mut Ctx<'_, CounterNode>, id: u64, msg: Msg, tries: u32) {
        ctx.send(NodeId::server(0), msg.clone());
        let timer = ctx.set_timer(self.settings.request_timeout.0, Timer::Request(id));
        self.pending = Some((id, msg, tries, timer));
    }

    fn on_reply(&mut self, ctx: &mut Ctx<'_, CounterNode>, id: u64, value: u64) {
        let Some((pending, _, _, timer)) = self.pending.take_if(|p| p.0 == id) else { return };
        debug_assert_eq!(pending, id);
        ctx.cancel_timer(timer);
        ctx.ok(Value::Int(value as i64));
        let pause = if self.next < self.script.len() { self.think } else { Duration::from_millis(200) };
        ctx.set_timer(pause, Timer::Think);
    }

    fn on_request_timeout(&mut self, ctx: &mut Ctx<'_, CounterNode>, id: u64) {
        let Some((_, msg, tries, _)) = self.pending.take_if(|p| p.0 == id) else { return };
        if tries > self.settings.retries.0 {
            ctx.info(Value::Null); // it may or may not have counted
            ctx.set_timer(self.think, Timer::Think);
            return;
        }
        self.send(ctx, id, msg, tries + 1); // the same id: a retry, not a new increment
    }
}

pub enum CounterNode {
    Server(Server),
    Client(Client),
}

impl Node for CounterNode {
    type Msg = Msg;
    type Timer = Timer;
    type Obs = NoObservation;

    fn on_start(&mut self, ctx: &mut Ctx<'_, Self>) {
        if let CounterNode::Client(c) = self {
            ctx.set_timer(c.think, Timer::Think);
        }
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, Self>, from: NodeId, msg: Msg) {
        match (self, msg) {
            (CounterNode::Server(s), Msg::Increment { id }) => s.on_increment(ctx, from, id),
            (CounterNode::Server(s), Msg::Read { id }) => {
                ctx.send(from, Msg::Reply { id, value: s.counter.value() });
            }
            (CounterNode::Client(c), Msg::Reply { id, value }) => c.on_reply(ctx, id, value),
            (_, msg) => panic!("{} got a message it never expects: {msg:?}", ctx.me()),
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, Self>, timer: Timer) {
        match (self, timer) {
            (CounterNode::Client(c), Timer::Think) => c.on_think_timeout(ctx),
            (CounterNode::Client(c), Timer::Request(id)) => c.on_request_timeout(ctx, id),
            (_, timer) => panic!("{} got a timer it never sets: {timer:?}", ctx.me()),
        }
    }
}

pub const COUNTS_ONCE: &str = "each increment counts once";

/// "each increment counts once", judged from what clients saw: a read
/// returns at most the increments invoked before it returned (none may
/// count twice), and at least those acknowledged before it was invoked
/// (none may be lost).
#[derive(Default)]
pub struct CountsOnce {
    reads: usize,
}

impl<O> Invariant<O> for CountsOnce {
    fn name(&self) -> &str {
        COUNTS_ONCE
    }
    fn at_end(&mut self, end: &RunEnd<'_, O>) -> Result<(), String> {
        let (mut invoked, mut acknowledged) = (0i64, 0i64);
        // Per process: the index and the acknowledged count when its read was invoked.
        let mut open: BTreeMap<u64, (&str, i64)> = BTreeMap::new();
        for (i, op) in end.history.ops.iter().enumerate() {
            match op.kind {
                OpType::Invoke => {
                    invoked += i64::from(op.f == "incr");
                    open.insert(op.process, (op.f.as_str(), acknowledged));
                }
                OpType::Ok => {
                    let Some((f, floor)) = open.remove(&op.process) else { continue };
                    if f == "incr" {
                        acknowledged += 1;
                        continue;
                    }
                    self.reads += 1;
                    let v = op.value.as_int().unwrap_or(-1);
                    if v > invoked {
                        return Err(format!("the read completing at history event {i} saw {v}, but only {invoked} increments were ever invoked"));
                    }
                    if v < floor {
                        return Err(format!("the read completing at history event {i} saw {v}, but {floor} increments were acknowledged before it began"));
                    }
                }
                _ => {
                    open.remove(&op.process);
                }
            }
        }
        Ok(())
    }
    fn vacuous(&self) -> bool {
        self.reads == 0
    }
    fn judges_at_end(&self) -> bool {
        true
    }
}

pub struct CounterSystem;

impl System for CounterSystem {
    type Node = CounterNode;
    type Config = Settings;
    type Variant = Variant;

    fn name(&self) -> &'static str {
        "counter"
    }
    fn workload(&self, _variant: Variant, _config: &Settings) -> Workload {
        Box::new(|rng, _keys, _client| {
            let f = if rng.below(4) == 0 { "read" } else { "incr" };
            ClientOp { f: f.into(), key: None, value: Value::Null }
        })
    }
    fn validate_op(&self, op: &ClientOp) -> Result<(), String> {
        match (op.f.as_str(), &op.value) {
            ("incr" | "read", Value::Null) => Ok(()),
            _ => {
                Err(format!("the counter runs [\"incr\", \"\"] and [\"read\", \"\"], not {:?} with {}", op.f, op.value))
            }
        }
    }
    fn invariants(&self, _variant: Variant, _config: &Settings) -> Vec<Box<dyn Invariant<NoObservation>>> {
        vec![Box::new(CountsOnce::default())]
    }
    fn progress(&self, _variant: Variant, _config: &Settings) -> Progress<CounterNode> {
        ok_after_heal()
    }
    fn factory(&self, setup: &Setup<'_, Self>) -> Factory<CounterNode> {
        let (dedup, settings, think) = (setup.variant == Variant::Correct, setup.config.clone(), setup.scenario.think);
        let scripts: Vec<Vec<ClientOp>> = (0..setup.scenario.clients).map(|c| setup.script(c)).collect();
        Box::new(move |id: NodeId, disk: &Disk| {
            if id.is_server() {
                CounterNode::Server(Server { counter: disk.get("counter").unwrap_or_default(), dedup })
            } else {
                let script = scripts.get(id.index() as usize).cloned().unwrap_or_default();
                CounterNode::Client(Client {
                    script,
                    next: 0,
                    think,
                    settings: settings.clone(),
                    pending: None,
                    next_id: 0,
                })
            }
        })
    }
}
