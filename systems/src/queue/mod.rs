//! `queue`: at-least-once delivery, idempotent consumers and a dead-letter
//! queue.
//!
//! The lesson it shows: a broker delivers a message at least once (a
//! consumer that crashes, pauses or loses its ack gets it again once its
//! visibility timeout runs out; a producer that retries a publish sends it
//! twice), so exactly-once *effects* come only from an idempotent consumer;
//! and a message that always fails must leave the queue after a bounded
//! number of deliveries, for a dead-letter queue, without being lost.
//!
//! The servers but the last run the broker; the last server is the effect
//! store (so `nodes = 4` is a three-server broker and the store). Clients
//! whose script publishes are producers; the others are consumers (a
//! generated workload makes the clients of even index producers: `c1`,
//! `c3`...).
//! The pieces:
//!
//! - [`broker`]: the queue as a state machine: publishes deduplicated by
//!   the producer's publish id, receives that make a message invisible
//!   until it is acked or its visibility timeout runs out, a receive count
//!   per message, the dead-letter queue after `max_receives` deliveries,
//!   and `redrive`.
//! - [`service`]: the broker on the Raft log (every change a log command;
//!   only the leader times visibility, and a new leader restarts every
//!   in-flight message's timeout), or one broker server with a synced disk.
//! - [`store`]: the effect store: account balances, the ids of the
//!   messages applied, each change synced before it is answered. A
//!   client's retried request is answered from its first answer and a late
//!   duplicate of an older one ignored (as a database connection's
//!   requests are), so only a *redelivered message*, which a consumer
//!   processes with new requests, can apply twice.
//! - [`producer`] and [`consumer`]: the clients. A consumer receives,
//!   works, applies the message's effect to the store together with its
//!   message id in one step, then acks; while it works it extends the
//!   message's visibility; a poison message's processing always fails.
//!
//! # Planted bugs
//!
//! - `no-dedup`: the consumer adds the amount without recording the message
//!   id: a redelivery applies it twice.
//! - `dedup-not-atomic`: the consumer asks the store whether it has seen
//!   the message, adds the amount, then records the message: three
//!   requests. A consumer that stops between the add and the record (a
//!   crash, a pause beyond the visibility timeout) leaves the message
//!   unrecorded, and its redelivery adds it again.
//! - `ack-before-process`: the consumer acks, then processes: a crash in
//!   between loses the message.
//! - `attempts-not-persisted`: one broker server (`n1`) whose messages are
//!   durable but whose receive counts live in memory: after a restart a
//!   message is delivered `max_receives` more times, and a broker that
//!   restarts often never dead-letters a poison message.
//! - `drop-after-max`: after `max_receives` deliveries the message is
//!   discarded instead of dead-lettered.
//! - `producer-no-idempotence`: the broker does not deduplicate publishes:
//!   a retried publish is enqueued twice and applied twice (the consumer
//!   deduplicates by the broker's message id, and the two copies have two).

pub mod broker;
pub mod consumer;
pub mod producer;
pub mod requests;
pub mod service;
pub mod store;
pub mod system;

mod checks;

use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

use harness::node::{Ctx, Leadership, Node, NodeId, Observation};

use crate::raft::{RaftConfig, RaftMsg, RaftObs, RaftTimer};

pub use checks::{EachMessageOnce, NoAcknowledgedPublishLost, OnlyPoisonDeadLettered};

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Variant {
    Correct,
    NoDedup,
    DedupNotAtomic,
    AckBeforeProcess,
    AttemptsNotPersisted,
    DropAfterMax,
    ProducerNoIdempotence,
}

impl harness::system::VariantNames for Variant {
    const NAMES: &'static [&'static str] = &[
        "correct",
        "no-dedup",
        "dedup-not-atomic",
        "ack-before-process",
        "attempts-not-persisted",
        "drop-after-max",
        "producer-no-idempotence",
    ];

    fn parse(name: &str) -> Option<Variant> {
        Some(match name {
            "correct" => Variant::Correct,
            "no-dedup" => Variant::NoDedup,
            "dedup-not-atomic" => Variant::DedupNotAtomic,
            "ack-before-process" => Variant::AckBeforeProcess,
            "attempts-not-persisted" => Variant::AttemptsNotPersisted,
            "drop-after-max" => Variant::DropAfterMax,
            "producer-no-idempotence" => Variant::ProducerNoIdempotence,
            _ => return None,
        })
    }
}

/// A producer's name for one message: the producer (a client) and its
/// sequence number. A retry, or a restarted producer publishing its
/// script again, sends the same id.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PublishId {
    pub producer: NodeId,
    pub seq: u32,
}

impl fmt::Display for PublishId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.producer, self.seq)
    }
}

/// The broker's id for a message it enqueued: the log index of the
/// publish (or the single broker's counter). Consumers deduplicate by it.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct MessageId(pub u64);

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "m{}", self.0)
    }
}

/// One delivery of a message: the log index of the receive that made it
/// (or the single broker's counter). An expiry names the delivery it ends.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Receipt(pub u64);

impl fmt::Display for Receipt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "r{}", self.0)
    }
}

/// What a message carries: its effect (add `amount` to `account`), or a
/// poison message, whose processing always fails.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Body {
    pub publish: PublishId,
    pub account: String,
    pub amount: i64,
    pub poison: bool,
}

/// The broker's settings and the variant's choices, as the state machine sees them.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Rules {
    /// Deliveries of a message before it is dead-lettered.
    pub max_receives: u32,
    /// Whether a publish whose id the broker knows is answered, not enqueued again.
    pub dedup_publishes: bool,
    /// Whether a message past `max_receives` goes to the dead-letter queue
    /// (or, `drop-after-max`, is discarded).
    pub dead_letter: bool,
}

#[derive(Clone, Debug)]
pub struct Config {
    pub variant: Variant,
    pub raft: RaftConfig,
    /// `broker = "single"`: one broker server with a synced disk.
    pub single_broker: bool,
    pub max_receives: u32,
    pub visibility_timeout: Duration,
    /// The longest a consumer works on one message.
    pub work: Duration,
    pub request_timeout: Duration,
    /// A consumer's first pause after an empty receive (it doubles with
    /// each empty answer in a row, up to 16 times this).
    pub poll: Duration,
    pub think: Duration,
}

impl Config {
    /// The servers that run the broker (every one but the store).
    pub fn broker_servers(servers: &[NodeId]) -> &[NodeId] {
        &servers[..servers.len().saturating_sub(1)]
    }
    /// The effect store: the last server.
    pub fn store(servers: &[NodeId]) -> NodeId {
        *servers.last().expect("the queue system runs at least two servers")
    }
    /// Whether the broker is one server (`n1`) rather than the Raft group.
    pub fn single(&self) -> bool {
        self.single_broker || self.variant == Variant::AttemptsNotPersisted
    }
    pub fn rules(&self) -> Rules {
        Rules {
            max_receives: self.max_receives,
            dedup_publishes: self.variant != Variant::ProducerNoIdempotence,
            dead_letter: self.variant != Variant::DropAfterMax,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            variant: Variant::Correct,
            raft: RaftConfig::default(),
            single_broker: false,
            max_receives: 5,
            visibility_timeout: Duration::from_millis(300),
            work: Duration::from_millis(20),
            request_timeout: Duration::from_millis(100),
            poll: Duration::from_millis(50),
            think: Duration::from_millis(20),
        }
    }
}

/// What a client asks the broker.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BrokerOp {
    Publish {
        body: Body,
    },
    Receive,
    Ack {
        message: MessageId,
    },
    /// Put every dead-lettered message back on the queue, its count reset.
    Redrive,
}

/// A command in the broker's log.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum QueueCommand {
    /// `client`'s request `id`.
    Client { client: NodeId, id: u64, op: BrokerOp },
    /// Proposed by the leader when a delivery's visibility ran out on its
    /// clock: the message is visible again, unless that delivery ended.
    Expire { message: MessageId, receipt: Receipt },
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BrokerReply {
    Published {
        message: MessageId,
    },
    Delivered {
        message: MessageId,
        receipt: Receipt,
        body: Body,
    },
    /// No visible message.
    Empty,
    Acked,
    Redriven {
        messages: u32,
    },
}

/// What a consumer asks the effect store. `publish` names the message for
/// the checkers only; the store keys its dedup records by `message`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum StoreOp {
    /// Add the amount and record the message in one synced write, unless
    /// the message is recorded.
    ApplyOnce {
        message: MessageId,
        publish: PublishId,
        account: String,
        amount: i64,
    },
    /// Add the amount (`no-dedup`, and the middle of `dedup-not-atomic`).
    Add {
        publish: PublishId,
        account: String,
        amount: i64,
    },
    /// Whether the message is recorded (`dedup-not-atomic`).
    Seen {
        message: MessageId,
    },
    /// Record the message (`dedup-not-atomic`).
    Record {
        message: MessageId,
    },
    Read {
        account: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum StoreReply {
    /// The balance after an add.
    Added {
        balance: i64,
    },
    /// `ApplyOnce` of a recorded message: nothing changed.
    Duplicate,
    Seen(bool),
    Recorded,
    Balance(i64),
}

#[derive(Clone, Debug, Hash, Serialize, Deserialize)]
pub enum Msg {
    Raft(RaftMsg<QueueCommand>),
    Broker {
        id: u64,
        op: BrokerOp,
    },
    /// A consumer still works on `message`: restart its visibility timeout
    /// (the leader's alone; no answer).
    Extend {
        message: MessageId,
        receipt: Receipt,
    },
    BrokerReply {
        id: u64,
        reply: BrokerReply,
    },
    NotLeader {
        id: u64,
        hint: Option<NodeId>,
    },
    /// To the store: the client's request `id` (ids grow across the
    /// client's restarts).
    Store {
        id: u64,
        op: StoreOp,
    },
    StoreReply {
        id: u64,
        reply: StoreReply,
    },
}

impl From<RaftMsg<QueueCommand>> for Msg {
    fn from(m: RaftMsg<QueueCommand>) -> Self {
        Msg::Raft(m)
    }
}

#[derive(Clone, Debug, Hash)]
pub enum Timer {
    Raft(RaftTimer),
    /// The broker's leader looks for deliveries whose visibility ran out.
    Visibility,
    /// A client: its next operation; a consumer's work is done; time to
    /// extend the visibility of the message it works on; a request timed out.
    Think,
    Work,
    Extend,
    Request(u64),
}

impl From<RaftTimer> for Timer {
    fn from(t: RaftTimer) -> Self {
        Timer::Raft(t)
    }
}

/// Why a message left the main queue (into the dead-letter queue is
/// [`QueueObs::DeadLettered`]).
#[derive(Clone, Debug, Hash, Serialize, Deserialize, PartialEq, Eq)]
pub enum Left {
    /// A consumer acked it.
    Acked { by: NodeId },
    /// `drop-after-max`: discarded after its last delivery.
    Dropped,
}

/// Facts for the checkers. The broker's (`at` is the log index or the
/// single broker's counter that made the change, so the same change
/// reported by several replicas, or again after a restart, counts once),
/// the clients' and the store's.
#[derive(Clone, Debug, Hash, Serialize, PartialEq, Eq)]
pub enum QueueObs {
    Raft(RaftObs),
    Enqueued {
        message: MessageId,
        publish: PublishId,
        at: u64,
    },
    Left {
        message: MessageId,
        why: Left,
        at: u64,
    },
    DeadLettered {
        message: MessageId,
        body: Body,
        receives: u32,
        at: u64,
    },
    Redriven {
        message: MessageId,
        at: u64,
    },
    /// A producer (re)started with `ops` publishes to make.
    Producing {
        ops: u32,
    },
    /// The broker acknowledged the producer's publish.
    PublishAcked {
        publish: PublishId,
        message: MessageId,
    },
    /// A producer's script is done.
    ScriptDone,
    /// A consumer got a delivery and starts processing it.
    Received {
        message: MessageId,
        receipt: Receipt,
        body: Body,
    },
    /// A consumer is done with the message it was processing: `processed`
    /// when its effect is in the store and the broker answered its ack;
    /// otherwise its processing failed (poison) or it gave up.
    Done {
        message: MessageId,
        processed: bool,
    },
    /// The store made effect number `record` durable, for this publish
    /// (reported again after the store restarts: count each record once).
    Applied {
        record: u64,
        publish: PublishId,
        account: String,
        amount: i64,
        balance: i64,
    },
}

impl From<RaftObs> for QueueObs {
    fn from(o: RaftObs) -> Self {
        QueueObs::Raft(o)
    }
}

impl QueueObs {
    pub fn raft(&self) -> Option<&RaftObs> {
        match self {
            QueueObs::Raft(r) => Some(r),
            _ => None,
        }
    }
}

impl Observation for QueueObs {
    fn leadership(&self) -> Option<Leadership> {
        self.raft()?.leadership()
    }
    fn trigger(&self) -> Option<&'static str> {
        match self {
            QueueObs::Raft(r) => r.trigger(),
            QueueObs::Received { .. } => Some("received"),
            QueueObs::Applied { .. } => Some("applied"),
            QueueObs::DeadLettered { .. } => Some("dead-lettered"),
            _ => None,
        }
    }
}

/// The events queue observations name, for `[[trigger]]`: Raft's, a
/// consumer's delivery (a fault there hits a consumer that holds a
/// message), the store's change (a consumer between its effect and its
/// ack) and a dead-lettering.
pub const TRIGGER_EVENTS: &[&str] = &[
    "leader",
    "stepped-down",
    "started",
    "candidate",
    "voted",
    "refused-vote",
    "received",
    "applied",
    "dead-lettered",
];

pub enum QueueNode {
    Broker(Box<service::Broker>),
    Single(Box<service::SingleBroker>),
    Store(Box<store::Store>),
    Producer(Box<producer::Producer>),
    Consumer(Box<consumer::Consumer>),
    /// A broker server the single broker leaves unused.
    Idle,
}

impl Node for QueueNode {
    type Msg = Msg;
    type Timer = Timer;
    type Obs = QueueObs;

    fn on_start(&mut self, ctx: &mut Ctx<'_, Self>) {
        match self {
            QueueNode::Broker(b) => b.on_start(ctx),
            QueueNode::Single(b) => b.on_start(ctx),
            QueueNode::Producer(p) => p.on_start(ctx),
            QueueNode::Consumer(c) => c.on_start(ctx),
            QueueNode::Store(s) => s.on_start(ctx),
            QueueNode::Idle => {}
        }
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, Self>, from: NodeId, msg: Msg) {
        match self {
            QueueNode::Broker(b) => b.on_message(ctx, from, msg),
            QueueNode::Single(b) => b.on_message(ctx, from, msg),
            QueueNode::Store(s) => s.on_message(ctx, from, msg),
            QueueNode::Producer(p) => p.on_message(ctx, from, msg),
            QueueNode::Consumer(c) => c.on_message(ctx, from, msg),
            QueueNode::Idle => {}
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, Self>, timer: Timer) {
        match self {
            QueueNode::Broker(b) => b.on_timer(ctx, timer),
            QueueNode::Single(b) => b.on_timer(ctx, timer),
            QueueNode::Producer(p) => p.on_timer(ctx, timer),
            QueueNode::Consumer(c) => c.on_timer(ctx, timer),
            QueueNode::Store(_) | QueueNode::Idle => panic!("{} got a timer it never sets: {timer:?}", ctx.me()),
        }
    }
}

/// The broker server after `current`, round-robin.
pub(crate) fn following(servers: &[NodeId], current: NodeId) -> NodeId {
    let i = servers.iter().position(|&s| s == current).map_or(0, |i| (i + 1) % servers.len());
    servers[i]
}
