//! `saga`: a business transaction split into local steps across services,
//! each with a compensation (Garcia-Molina and Salem, 1987): it ends with
//! every step done or every done step compensated.
//!
//! Orchestrated, the servers but the last are services (`nodes = 4`: three
//! services) and the last is the orchestrator (or, for two-phase commit,
//! the coordinator); choreographed, every server is a service.
//! each holds a pool of some resource (seats, rooms, money) in a durable
//! local store. Saga step `i` reserves the saga's amount from service `i`'s
//! pool; its compensation gives it back. Each step rests on the ones
//! before it (the hotel is booked for the flight, paid by the payment),
//! so steps are undone last to first. Clients start sagas and wait for
//! their outcome. The pieces:
//!
//! - [`service`]: a service: a step and its compensation, both idempotent
//!   by saga id, and a tombstone: a compensation that arrives before its
//!   step is recorded, so the late step is refused.
//! - [`orchestrator`]: runs each saga from a durable saga log (synced
//!   before it acts), resends each request until it is answered, gives a
//!   step up after `step_tries` sends (and compensates it too: it may
//!   still arrive), compensates the done steps in reverse order when a
//!   step is refused or given up, and resumes every unfinished saga after
//!   a crash.
//! - [`coordinator`]: two-phase commit beside the saga, over the same
//!   services.
//! - choreographed, no orchestrator: the client hands the saga to the
//!   first service; each service does its step and hands the saga on to
//!   the next (the last tells the client it is done), or, refused, hands
//!   it back to the one before, which undoes its step and hands it back in
//!   turn (the first tells the client it is compensated). What a service
//!   owes another node waits in its [`outbox`], written in the same synced
//!   batch as the change that caused it and sent until acknowledged.
//! - [`client`]: starts the sagas of its script, one at a time.
//!
//! # Planted bugs
//!
//! - `non-idempotent-compensation`: a service gives the amount back for
//!   every compensation request, without looking whether it still holds
//!   the reservation: a retried compensation refunds twice.
//! - `no-tombstone`: a service keeps no tombstone: a compensation for a
//!   step it has not seen is a no-op, so the step, arriving late, applies
//!   for a saga already compensated; and a duplicate of a step arriving
//!   after its real release reserves again.
//! - `log-not-synced`: the orchestrator acts before its saga log is
//!   synced (it syncs in batches): after a crash it forgets a saga it
//!   started, and leaves it half done.
//! - `compensate-in-order`: the orchestrator undoes the done steps first
//!   to last: a step's reservation is released while the later steps that
//!   rest on it (the hotel booked for the flight) still stand.
//! - `handoff-before-sync` (choreographed): a service hands the saga on to
//!   the next before its reservation and outbox are synced (the dual
//!   write an outbox exists to avoid): a crash between the two leaves the
//!   next service holding a step this one forgot.

pub mod client;
pub mod coordinator;
pub mod orchestrator;
pub mod outbox;
pub mod service;
pub mod system;

mod checks;

use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

use harness::node::{Ctx, Node, NodeId, Observation};

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Variant {
    Orchestrated,
    Choreographed,
    NonIdempotentCompensation,
    NoTombstone,
    LogNotSynced,
    CompensateInOrder,
    HandoffBeforeSync,
    TwoPhaseCommit,
}

impl Variant {
    /// Services pass the saga along among themselves, with no orchestrator.
    pub fn choreographed(self) -> bool {
        matches!(self, Variant::Choreographed | Variant::HandoffBeforeSync)
    }
}

impl harness::system::VariantNames for Variant {
    const NAMES: &'static [&'static str] = &[
        "orchestrated",
        "choreographed",
        "non-idempotent-compensation",
        "no-tombstone",
        "log-not-synced",
        "compensate-in-order",
        "handoff-before-sync",
        "two-phase-commit",
    ];

    fn parse(name: &str) -> Option<Variant> {
        Some(match name {
            "orchestrated" => Variant::Orchestrated,
            "choreographed" => Variant::Choreographed,
            "non-idempotent-compensation" => Variant::NonIdempotentCompensation,
            "no-tombstone" => Variant::NoTombstone,
            "log-not-synced" => Variant::LogNotSynced,
            "compensate-in-order" => Variant::CompensateInOrder,
            "handoff-before-sync" => Variant::HandoffBeforeSync,
            "two-phase-commit" => Variant::TwoPhaseCommit,
            _ => return None,
        })
    }
}

/// A saga: its client and the client's number for it.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SagaId {
    pub client: NodeId,
    pub seq: u64,
}

impl fmt::Display for SagaId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.client, self.seq)
    }
}

/// What a saga asks of every service, and the step at which it fails for
/// a business reason (no seats left), if it does.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Order {
    pub amount: i64,
    pub fails_at: Option<u32>,
}

#[derive(Clone, Debug)]
pub struct Config {
    pub variant: Variant,
    /// Each service's pool at the start.
    pub capacity: i64,
    /// How long the orchestrator (or coordinator) waits for a service's
    /// answer before it sends the request again; choreographed, a
    /// service's first wait for an acknowledgement (later ones back off).
    pub retry: Duration,
    /// Orchestrated: sends of a step before the orchestrator gives it up as failed and
    /// compensates it with the steps before it (a compensation of a step
    /// still on its way is what the service's tombstone is for).
    pub step_tries: u32,
    /// `log-not-synced`: how often the orchestrator syncs its log.
    pub sync_every: Duration,
    /// A client's wait for a saga's outcome before it asks again, and how
    /// often it asks.
    pub request_timeout: Duration,
    pub sends: u32,
    pub think: Duration,
}

impl Config {
    /// The services: every server but the last (choreographed: every server).
    pub fn services<'a>(&self, servers: &'a [NodeId]) -> &'a [NodeId] {
        match self.variant.choreographed() {
            true => servers,
            false => &servers[..servers.len().saturating_sub(1)],
        }
    }
    /// The orchestrator (or coordinator): the last server.
    pub fn orchestrator(servers: &[NodeId]) -> NodeId {
        *servers.last().expect("the saga system runs at least two servers")
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            variant: Variant::Orchestrated,
            capacity: 1_000_000,
            retry: Duration::from_millis(100),
            step_tries: 5,
            sync_every: Duration::from_millis(20),
            request_timeout: Duration::from_secs(2),
            sends: 10,
            think: Duration::from_millis(20),
        }
    }
}

#[derive(Clone, Debug, Hash, Serialize, Deserialize)]
pub enum Msg {
    /// Client to orchestrator: run this saga (again, if it asks again).
    Start {
        saga: SagaId,
        order: Order,
    },
    /// To the client: the saga ended, all done or all compensated (from
    /// the orchestrator or coordinator; choreographed, from the last
    /// service or the first).
    Outcome {
        saga: SagaId,
        done: bool,
    },
    /// Orchestrator to service `step`: reserve the amount for the saga;
    /// `refuse` says the business rule turns it down.
    Step {
        saga: SagaId,
        step: u32,
        amount: i64,
        refuse: bool,
    },
    /// The step is done (or was already), or refused (or tombstoned).
    StepReply {
        saga: SagaId,
        step: u32,
        done: bool,
    },
    Compensate {
        saga: SagaId,
        step: u32,
        amount: i64,
    },
    Compensated {
        saga: SagaId,
        step: u32,
    },
    /// Choreographed, from the client (step 0) or the service before: the
    /// saga's turn at service `step`.
    Go {
        saga: SagaId,
        step: u32,
        order: Order,
    },
    /// Choreographed, from the service after (which refused or undid its
    /// step): undo step `step`.
    Undo {
        saga: SagaId,
        step: u32,
    },
    /// Choreographed: the `Go`, `Undo` or `Outcome` for the saga is taken
    /// (and durable): the sender's outbox lets it go.
    Ack {
        saga: SagaId,
    },
    /// Two-phase commit: the coordinator decided to commit; the service
    /// keeps the reservation it prepared.
    Commit {
        saga: SagaId,
        step: u32,
    },
    Committed {
        saga: SagaId,
        step: u32,
    },
}

#[derive(Clone, Debug, Hash)]
pub enum Timer {
    /// The orchestrator: the request in flight for a saga goes again.
    Retry(SagaId),
    /// `log-not-synced`: the orchestrator's batched sync.
    Sync,
    /// A client: its next saga; its wait ran out.
    Think,
    Request(u64),
    /// A choreographed service: the outbox's event for the saga and the
    /// node goes again.
    Resend(SagaId, NodeId),
}

/// What a service's store did, for the checkers. `record` numbers the
/// service's effects: the latest is reported again after a restart (a
/// crash in its handler may have cut the report), and checks count each
/// record once.
#[derive(Clone, Debug, Hash, Serialize, PartialEq, Eq)]
pub enum Effect {
    Reserved,
    Released,
}

#[derive(Clone, Debug, Hash, Serialize, PartialEq, Eq)]
pub enum SagaObs {
    /// Service `step` changed its pool for the saga; `pool` is after.
    Effect { saga: SagaId, step: u32, effect: Effect, amount: i64, pool: i64, record: u64 },
    /// The orchestrator (or coordinator) holds this many unfinished sagas;
    /// a choreographed service owes this many unacknowledged events (after
    /// a change, and at each start).
    Unfinished { count: u32 },
    /// A client's script is done.
    ScriptDone,
    /// A client (re)started with sagas to run.
    Starting,
    /// Two-phase commit: a participant acts on the coordinator's decision.
    Decided { saga: SagaId, commit: bool },
    /// A service (re)started: it serves `step` of every saga.
    Serving { step: u32 },
    /// A client was told how its saga ended; `refused_at`: the step its
    /// order said a service would refuse.
    Told { saga: SagaId, done: bool, refused_at: Option<u32> },
}

impl Observation for SagaObs {
    fn trigger(&self) -> Option<&'static str> {
        match self {
            SagaObs::Effect { effect: Effect::Reserved, .. } => Some("reserved"),
            SagaObs::Effect { effect: Effect::Released, .. } => Some("released"),
            _ => None,
        }
    }
}

/// The events saga observations name, for `[[trigger]]`: a service's
/// reservation and release (a crash armed there hits the node's next
/// handler: orchestrated, often the next request of the saga).
pub const TRIGGER_EVENTS: &[&str] = &["reserved", "released"];

pub enum SagaNode {
    Service(Box<service::Service>),
    Orchestrator(Box<orchestrator::Orchestrator>),
    Coordinator(Box<coordinator::Coordinator>),
    Client(Box<client::SagaClient>),
}

impl Node for SagaNode {
    type Msg = Msg;
    type Timer = Timer;
    type Obs = SagaObs;

    fn on_start(&mut self, ctx: &mut Ctx<'_, Self>) {
        match self {
            SagaNode::Service(s) => s.on_start(ctx),
            SagaNode::Orchestrator(o) => o.on_start(ctx),
            SagaNode::Coordinator(c) => c.on_start(ctx),
            SagaNode::Client(c) => c.on_start(ctx),
        }
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, Self>, from: NodeId, msg: Msg) {
        match self {
            SagaNode::Service(s) => s.on_message(ctx, from, msg),
            SagaNode::Orchestrator(o) => o.on_message(ctx, from, msg),
            SagaNode::Coordinator(c) => c.on_message(ctx, from, msg),
            SagaNode::Client(c) => c.on_message(ctx, from, msg),
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, Self>, timer: Timer) {
        match self {
            SagaNode::Service(s) => s.on_timer(ctx, timer),
            SagaNode::Orchestrator(o) => o.on_timer(ctx, timer),
            SagaNode::Coordinator(c) => c.on_timer(ctx, timer),
            SagaNode::Client(c) => c.on_timer(ctx, timer),
        }
    }
}
