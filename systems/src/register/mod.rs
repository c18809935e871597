//! `register`: the tutorial system. One server holds an integer per key;
//! clients read, write and compare-and-set.
//!
//! # How to add a system (this module is the worked example)
//!
//! 1. Write the nodes, sans-IO, against `harness::node`: a message enum
//!    (requests and replies in pairs), a timer enum, and handlers named
//!    `on_<message>` and `on_<noun>_timeout`. Servers keep what must
//!    survive a crash on `ctx.disk()` and `sync()` before acting on it.
//! 2. Clients record every operation in the history: `ctx.invoke(...)`,
//!    then exactly one of `ok` (it happened), `fail` (it definitely did
//!    not) or `info` (unknown: a timeout). The shared
//!    [`crate::client::ScriptedClient`] does all of that; a system writes
//!    only its [`crate::client::Protocol`] (here [`RegisterProtocol`]): how
//!    an operation becomes a request, and where a request is sent again.
//! 3. Put one node type over servers and clients (an enum, as
//!    [`RegisterNode`]), and give each planted bug a [`Variant`].
//! 4. Describe the system as one unit in its folder (here `system.rs`):
//!    implement `harness::system::System`: its `[config]` as a serde struct
//!    (unknown keys rejected), its workload generator, which explicit
//!    client operations it accepts, its invariants (their names are the
//!    checks scenario files may expect), its linearizability model, its
//!    progress condition, and a factory for its nodes.
//! 5. Add one line to the root package's `src/registry.rs`.
//! 6. Add scenario files under `scenarios/<system>/`: the correct variant
//!    passing under faults, and one file per bug expecting its violation.
//!
//! # Planted bugs, and how fast the harness finds them
//!
//! Over seeds 0..100 of their scenario files (`scripts/detection-rates.sh`;
//! median seeds to the first failure from every starting seed, worst case
//! in brackets):
//! - `lost-update`: 59 of 100, median 1 (6). Needs no fault at all, only
//!   concurrency.
//! - `ack-before-sync`: 55 of 100, median 1 (7). Needs a crash of the
//!   server between an acknowledged write and the next group commit.
//! - `reply-before-sync`: 62 of 100, median 1 (4), and only with the crash
//!   in the middle of a handler (`tests/crash_in_handler.rs` shows plain
//!   crashes never find it).
//!
//! # The protocol
//!
//! A client sends `Request { id, command }` to the server and arms a
//! `request_timeout`. The server applies the command, writes the new value
//! and the reply to disk (so a retried request after a crash is answered,
//! not applied twice), syncs, and sends `Reply`. A client that hears
//! nothing resends the same request (same id) up to `retries` times, then
//! records the operation as indeterminate (`info`) and moves on.

pub mod system;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

use crate::client::{ClientSettings, Completion, Protocol, Request, ScriptedClient};
use harness::history::Value;
use harness::node::{Ctx, NoObservation, Node, NodeId};

/// A client's request number; increases with every new operation.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RequestId(pub u64);

/// Which implementation runs.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Variant {
    Correct,
    /// Planted bug: cas is a read and then a separate write (sent to itself
    /// as a message), so another write can land in between.
    LostUpdate,
    /// Planted bug: the server replies before the write is durable and
    /// syncs in batches, so a crash loses acknowledged writes.
    AckBeforeSync,
    /// Planted bug: the server writes, sends the reply, then syncs, all in
    /// one handler. A crash between events never catches it (the sync ran
    /// before the handler returned); only a crash in the middle of the
    /// handler does: the reply is out, the sync never happens.
    ReplyBeforeSync,
}

impl harness::system::VariantNames for Variant {
    const NAMES: &'static [&'static str] = &["correct", "lost-update", "ack-before-sync", "reply-before-sync"];

    fn parse(name: &str) -> Option<Variant> {
        match name {
            "correct" => Some(Variant::Correct),
            "lost-update" => Some(Variant::LostUpdate),
            "ack-before-sync" => Some(Variant::AckBeforeSync),
            "reply-before-sync" => Some(Variant::ReplyBeforeSync),
            _ => None,
        }
    }
}

/// Settings from the scenario's `[config]`.
#[derive(Clone, Debug)]
pub struct Config {
    pub variant: Variant,
    pub request_timeout: Duration,
    pub retries: u32,
    /// Pause between one client's operations.
    pub think: Duration,
    /// How often the `ack-before-sync` server syncs its batch.
    pub group_commit: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            variant: Variant::Correct,
            request_timeout: Duration::from_millis(200),
            retries: 2,
            think: Duration::from_millis(10),
            group_commit: Duration::from_millis(50),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Command {
    Read { key: String },
    Write { key: String, value: i64 },
    Cas { key: String, from: Option<i64>, to: i64 },
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Outcome {
    Value(Option<i64>),
    Written,
    Swapped,
    /// The compare failed: nothing changed.
    Mismatch,
}

#[derive(Clone, Debug, Hash, Serialize, Deserialize)]
pub enum Msg {
    Request {
        id: RequestId,
        command: Command,
    },
    Reply {
        id: RequestId,
        outcome: Outcome,
    },
    /// `lost-update` only: the second half of a cas, sent by the server to itself.
    FinishCas {
        client: NodeId,
        id: RequestId,
        key: String,
        to: i64,
    },
}

#[derive(Clone, Debug, Hash)]
pub enum Timer {
    /// Time to start the next operation.
    Think,
    /// No reply to this request yet.
    Request(RequestId),
    /// `ack-before-sync` only: make the batch durable.
    GroupCommit,
}

/// The last reply the server sent each client, kept durable with the data.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct LastReply {
    id: RequestId,
    outcome: Outcome,
}

pub struct Server {
    config: Config,
    values: BTreeMap<String, i64>,
    last: BTreeMap<NodeId, LastReply>,
}

impl Server {
    /// Rebuilds the server from what its disk holds (empty at first start).
    pub fn new(config: Config, disk: &harness::Disk) -> Self {
        let mut values = BTreeMap::new();
        for k in disk.keys_with_prefix("value/") {
            let v: i64 = disk.get(&k).expect("listed key exists");
            values.insert(k["value/".len()..].to_owned(), v);
        }
        let mut last = BTreeMap::new();
        for k in disk.keys_with_prefix("reply/") {
            let r: LastReply = disk.get(&k).expect("listed key exists");
            let client = NodeId::parse(&k["reply/".len()..]).expect("reply keys name clients");
            last.insert(client, r);
        }
        Server { config, values, last }
    }

    fn on_request(&mut self, ctx: &mut Ctx<'_, RegisterNode>, from: NodeId, id: RequestId, command: Command) {
        if let Some(last) = self.last.get(&from) {
            if id == last.id {
                // A retry or a duplicate: answer again, apply nothing.
                ctx.send(from, Msg::Reply { id, outcome: last.outcome.clone() });
                return;
            }
            if id < last.id {
                return; // an old duplicate: the client has moved on
            }
        }
        if let (Variant::LostUpdate, Command::Cas { key, from: expected, to }) = (self.config.variant, &command) {
            if self.values.get(key).copied() == *expected {
                // The bug: decide now, write later.
                ctx.send(ctx.me(), Msg::FinishCas { client: from, id, key: key.clone(), to: *to });
                return;
            }
        }
        let outcome = self.apply(&command);
        let changed = match (&command, &outcome) {
            (Command::Write { key, .. } | Command::Cas { key, .. }, Outcome::Written | Outcome::Swapped) => {
                Some(key.as_str())
            }
            _ => None,
        };
        self.reply(ctx, from, id, outcome, changed);
    }

    fn apply(&mut self, command: &Command) -> Outcome {
        match command {
            Command::Read { key } => Outcome::Value(self.values.get(key).copied()),
            Command::Write { key, value } => {
                self.values.insert(key.clone(), *value);
                Outcome::Written
            }
            Command::Cas { key, from, to } => {
                if self.values.get(key).copied() == *from {
                    self.values.insert(key.clone(), *to);
                    Outcome::Swapped
                } else {
                    Outcome::Mismatch
                }
            }
        }
    }

    fn on_finish_cas(&mut self, ctx: &mut Ctx<'_, RegisterNode>, client: NodeId, id: RequestId, key: String, to: i64) {
        self.values.insert(key.clone(), to);
        self.reply(ctx, client, id, Outcome::Swapped, Some(&key));
    }

    /// Persists the changed value and the reply, then answers. The correct
    /// server syncs first; `ack-before-sync` answers first and syncs later.
    fn reply(
        &mut self,
        ctx: &mut Ctx<'_, RegisterNode>,
        client: NodeId,
        id: RequestId,
        outcome: Outcome,
        changed: Option<&str>,
    ) {
        if let Some(key) = changed {
            let value = self.values[key];
            ctx.disk().put(&format!("value/{key}"), &value);
        }
        let record = LastReply { id, outcome: outcome.clone() };
        ctx.disk().put(&format!("reply/{client}"), &record);
        self.last.insert(client, record);
        match self.config.variant {
            Variant::AckBeforeSync => ctx.send(client, Msg::Reply { id, outcome }),
            Variant::ReplyBeforeSync => {
                ctx.send(client, Msg::Reply { id, outcome });
                ctx.disk().sync();
            }
            _ => {
                ctx.disk().sync();
                ctx.send(client, Msg::Reply { id, outcome });
            }
        }
    }

    fn on_group_commit_timeout(&mut self, ctx: &mut Ctx<'_, RegisterNode>) {
        ctx.disk().sync();
        ctx.set_timer(self.config.group_commit, Timer::GroupCommit);
    }
}

pub use crate::ClientOp as Op;

/// The register's side of the shared scripted client: requests go to the
/// one server, and a timed-out request is resent to it.
pub struct RegisterProtocol {
    server: NodeId,
}

/// A register client: the shared scripted client over [`RegisterProtocol`].
pub type Client = ScriptedClient<RegisterProtocol>;

/// A client of `server` running `script`, then reading the first key once
/// a second (the liveness phase needs traffic to see progress).
pub fn client(config: &Config, server: NodeId, script: Vec<Op>) -> Client {
    let settings = ClientSettings {
        think: config.think,
        probe_every: Duration::from_secs(1),
        request_timeout: config.request_timeout,
        sends: config.retries + 1,
        reads_fail: false,
    };
    ScriptedClient::new(RegisterProtocol { server }, settings, script)
}

impl Protocol for RegisterProtocol {
    type Node = RegisterNode;

    fn request(&mut self, _ctx: &mut Ctx<'_, RegisterNode>, op: &Op, id: u64) -> Request<Msg> {
        let command = match (op.f.as_str(), &op.value) {
            ("read", _) => Command::Read { key: op.key.clone() },
            ("write", Value::Int(v)) => Command::Write { key: op.key.clone(), value: *v },
            ("cas", v) => {
                let (from, to) = v.as_pair().expect("cas ops carry [from, to]");
                Command::Cas {
                    key: op.key.clone(),
                    from: from.as_int(),
                    to: to.as_int().expect("cas target is an integer"),
                }
            }
            (f, v) => panic!("the register client cannot run `{f}` with {v}"),
        };
        let is_read = matches!(command, Command::Read { .. });
        Request { msg: Msg::Request { id: RequestId(id), command }, to: self.server, f: op.f.clone(), is_read }
    }
    fn resend_to(&mut self, _: &Ctx<'_, RegisterNode>, _: NodeId, _: &Msg, _: Option<Option<NodeId>>) -> NodeId {
        self.server
    }
    fn probe(&mut self, _ctx: &mut Ctx<'_, RegisterNode>, _n: u64) -> Op {
        Op { f: "read".into(), key: "k0".into(), value: Value::Null }
    }
    fn think_timer() -> Timer {
        Timer::Think
    }
    fn request_timer(id: u64) -> Timer {
        Timer::Request(RequestId(id))
    }
}

/// What a reply says happened.
fn completion(outcome: Outcome) -> Completion {
    match outcome {
        Outcome::Value(v) => Completion::Ok(v.map_or(Value::Null, Value::Int)),
        Outcome::Written | Outcome::Swapped => Completion::Ok(Value::Bool(true)),
        Outcome::Mismatch => Completion::Fail(Value::Bool(false)),
    }
}

/// Servers and clients of the register system.
pub enum RegisterNode {
    Server(Server),
    Client(Client),
}

impl Node for RegisterNode {
    type Msg = Msg;
    type Timer = Timer;
    type Obs = NoObservation;

    fn on_start(&mut self, ctx: &mut Ctx<'_, Self>) {
        match self {
            RegisterNode::Server(s) => {
                if s.config.variant == Variant::AckBeforeSync {
                    ctx.set_timer(s.config.group_commit, Timer::GroupCommit);
                }
            }
            RegisterNode::Client(c) => c.on_start(ctx),
        }
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, Self>, from: NodeId, msg: Msg) {
        match (self, msg) {
            (RegisterNode::Server(s), Msg::Request { id, command }) => s.on_request(ctx, from, id, command),
            (RegisterNode::Server(s), Msg::FinishCas { client, id, key, to }) => {
                s.on_finish_cas(ctx, client, id, key, to)
            }
            (RegisterNode::Client(c), Msg::Reply { id, outcome }) => c.on_reply(ctx, id.0, |_, _| completion(outcome)),
            (_, msg) => panic!("{} got a message it never expects: {msg:?}", ctx.me()),
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, Self>, timer: Timer) {
        match (self, timer) {
            (RegisterNode::Server(s), Timer::GroupCommit) => s.on_group_commit_timeout(ctx),
            (RegisterNode::Client(c), Timer::Think) => c.on_think_timeout(ctx),
            (RegisterNode::Client(c), Timer::Request(id)) => c.on_request_timeout(ctx, id.0),
            (_, timer) => panic!("{} got a timer it never sets: {timer:?}", ctx.me()),
        }
    }
}
