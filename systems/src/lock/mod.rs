//! `lock`: a distributed lock with leases and fencing tokens, and the
//! resource it protects.
//!
//! The lesson it shows (Kleppmann's "How to do distributed locking",
//! Chubby's sequencers, Jepsen's etcd and Redis analyses): a lease alone
//! does not give mutual exclusion. A holder that pauses between checking
//! its lease and acting on it, or whose write is delayed in the network,
//! acts after its lease ran out; only a fencing token that the protected
//! resource checks keeps the resource safe.
//!
//! The servers but the last run the lock service; the last server is the
//! protected resource (so `nodes = 4` is a three-server service and the
//! resource). Each client runs cycles: acquire a lock (`l0`, `l1`, ...),
//! read the counter it protects, work, check its lease, write the counter
//! back incremented with its token, release. The pieces:
//!
//! - [`service`]: the lock service on the Raft log. `acquire`, `keepalive`,
//!   `release` and `expire` are log commands; the fencing token of a grant
//!   is the log index of its `acquire` (as etcd uses its revision). Leases
//!   expire on the leader's monotonic clock: the leader that applies a
//!   grant or keepalive waits the TTL stretched by three times the maximum
//!   drift before it proposes `expire`, and a new leader starts that wait
//!   afresh for every lock held (it cannot know how long ago its
//!   predecessor renewed one). The client's own view of its lease runs from
//!   when it *sent* its request, for the TTL on its own monotonic clock: so,
//!   with clocks within the drift bound, the service frees a lock only
//!   after its holder stopped believing it holds it.
//! - [`resource`]: a storage node with one counter per lock. With fencing,
//!   it refuses a read or write whose token is below the highest token it
//!   has seen for that counter (a read raises it too: a read-modify-write
//!   fenced on its write alone can still lose an update, when the older
//!   holder writes between the newer holder's read and write).
//! - [`client`]: the clients, and their view of their lease.
//! - [`redlock`]: the `redlock` variant's independent servers.
//!
//! # Planted bugs
//!
//! - `unfenced`: the resource ignores tokens. A holder whose write is late
//!   (a pause between its lease check and its write, a slow network)
//!   overwrites a newer holder's update.
//! - `redlock`: five independent single-node lock servers (every server but
//!   the resource); a client holds a lock granted by a majority, for
//!   `TTL - elapsed - drift allowance` (1% of the TTL plus 2 ms), as the
//!   algorithm is published: no fencing. Each server expires keys by its
//!   wall clock, as Redis does, and keeps them in memory. A client pause,
//!   a forward jump of a server's clock, or a server restart breaks it.
//! - `token-not-persisted`: a single lock server (n1) whose token counter
//!   lives in memory: a restarted server starts it above the highest token
//!   still in its (durable) lock table, so tokens of locks released before
//!   the crash are issued again.
//! - `ttl-on-wall-clock`: the service times leases on the leader's wall
//!   clock: a forward jump expires a live lease early, and another client
//!   gets the lock while the holder still uses it.
//! - `unchecked-release`: `release` frees the lock whoever holds it (Redis's
//!   plain `DEL`): a holder whose lease ran out releases its successor's.

pub mod client;
pub mod redlock;
pub mod resource;
pub mod service;
pub mod system;

mod checks;

use serde::{Deserialize, Serialize};
use std::time::Duration;

use harness::check::lease::{LeaseClaim, LeaseDeadline, LeaseEvent};
use harness::node::{Ctx, Leadership, Node, NodeId, Observation};
use harness::time::MonoTime;

use crate::raft::{RaftConfig, RaftMsg, RaftObs, RaftTimer};

pub use checks::{FencingTokensIncrease, NoLostUpdates, WritesInTokenOrder};

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Variant {
    Correct,
    Unfenced,
    Redlock,
    TokenNotPersisted,
    TtlOnWallClock,
    UncheckedRelease,
}

impl harness::system::VariantNames for Variant {
    const NAMES: &'static [&'static str] =
        &["correct", "unfenced", "redlock", "token-not-persisted", "ttl-on-wall-clock", "unchecked-release"];

    fn parse(name: &str) -> Option<Variant> {
        Some(match name {
            "correct" => Variant::Correct,
            "unfenced" => Variant::Unfenced,
            "redlock" => Variant::Redlock,
            "token-not-persisted" => Variant::TokenNotPersisted,
            "ttl-on-wall-clock" => Variant::TtlOnWallClock,
            "unchecked-release" => Variant::UncheckedRelease,
            _ => return None,
        })
    }
}

impl Variant {
    /// Whether the resource checks tokens.
    pub fn fenced(self) -> bool {
        !matches!(self, Variant::Unfenced | Variant::Redlock)
    }
    /// Whether the lock service runs on the Raft log.
    pub fn on_raft(self) -> bool {
        !matches!(self, Variant::Redlock | Variant::TokenNotPersisted)
    }
}

/// A fencing token: the log index of a grant (or the single server's counter).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Token(pub u64);

impl std::fmt::Display for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[derive(Clone, Debug)]
pub struct Config {
    pub variant: Variant,
    pub raft: RaftConfig,
    /// How long a lease lasts, as clients ask for it.
    pub ttl: Duration,
    /// The longest a client works between reading the counter and writing it.
    pub work: Duration,
    /// Between a client's lease check and its write going out (building
    /// the request, a system call): a pause here is the classic failure.
    pub prepare: Duration,
    pub request_timeout: Duration,
    /// Tries per acquisition before the client gives the cycle up.
    pub tries: u32,
    pub think: Duration,
}

impl Config {
    /// The servers that run the lock service (every one but the resource).
    pub fn service_servers(servers: &[NodeId]) -> &[NodeId] {
        &servers[..servers.len().saturating_sub(1)]
    }
    /// The protected resource: the last server.
    pub fn resource(servers: &[NodeId]) -> NodeId {
        *servers.last().expect("the lock system runs at least two servers")
    }
    /// How long the service waits, on its own clock, before it frees a
    /// lease: the TTL stretched by three times the drift bound (a holder's
    /// clock slow by the bound and the service's fast by it still leave a
    /// margin).
    pub fn service_wait(&self, ttl: Duration) -> Duration {
        ttl.mul_f64(1.0 + 3.0 * self.raft.max_drift_ppm / 1e6)
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            variant: Variant::Correct,
            raft: RaftConfig::default(),
            ttl: Duration::from_millis(500),
            work: Duration::from_millis(50),
            prepare: Duration::from_millis(1),
            request_timeout: Duration::from_millis(100),
            tries: 20,
            think: Duration::from_millis(20),
        }
    }
}

/// What a client asks the lock service.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum LockOp {
    Acquire { lock: String, ttl: Duration },
    Keepalive { lock: String, token: Token },
    Release { lock: String, token: Token },
}

/// A command in the lock service's log.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum LockCommand {
    /// `client`'s request `id`.
    Client { client: NodeId, id: u64, op: LockOp },
    /// Proposed by the leader when a lease ran out on its clock: the lease
    /// as its last grant or renewal (`stamp`) left it. A renewal applied
    /// after the proposal, before this, voids it.
    Expire { lock: String, stamp: u64 },
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Reply {
    Granted {
        token: Token,
    },
    Busy,
    Renewed,
    /// A keepalive for a lease that is gone.
    Lost,
    Released,
    /// The counter's value; `None` before its first write (read as 0).
    Value {
        value: Option<i64>,
    },
    Written,
    /// The resource refused a token below one it has seen.
    Fenced,
}

#[derive(Clone, Debug, Hash, Serialize, Deserialize)]
pub enum Msg {
    Raft(RaftMsg<LockCommand>),
    /// To the lock service (or a `redlock` server).
    Lock {
        id: u64,
        op: LockOp,
    },
    Read {
        id: u64,
        key: String,
        token: Token,
    },
    Write {
        id: u64,
        key: String,
        value: i64,
        token: Token,
    },
    Reply {
        id: u64,
        reply: Reply,
    },
    NotLeader {
        id: u64,
        hint: Option<NodeId>,
    },
}

impl From<RaftMsg<LockCommand>> for Msg {
    fn from(m: RaftMsg<LockCommand>) -> Self {
        Msg::Raft(m)
    }
}

#[derive(Clone, Debug, Hash)]
pub enum Timer {
    Raft(RaftTimer),
    /// The service's leader looks for leases that ran out.
    Expiry,
    /// A client: the next cycle; its work is done; its write goes out;
    /// another try at a busy lock; a request timed out.
    Think,
    Work,
    Prepare,
    Retry,
    Request(u64),
}

impl From<RaftTimer> for Timer {
    fn from(t: RaftTimer) -> Self {
        Timer::Raft(t)
    }
}

/// Facts for the checkers: Raft's, the clients' leases, and the resource's writes.
#[derive(Clone, Debug, Hash, Serialize, PartialEq, Eq)]
pub enum LockObs {
    Raft(RaftObs),
    /// A client got `lock` with `token` and believes it holds it until
    /// its monotonic clock reads `until`.
    Holds {
        lock: String,
        token: Token,
        until: MonoTime,
    },
    /// A client gave its lease up (it sent its release).
    Released {
        lock: String,
    },
    /// The client checked its lease and is about to write.
    LeaseChecked {
        lock: String,
    },
    /// The resource accepted `client`'s write of `value` to `key`, with `token`.
    Accepted {
        key: String,
        client: NodeId,
        token: Token,
        value: i64,
    },
}

impl From<RaftObs> for LockObs {
    fn from(o: RaftObs) -> Self {
        LockObs::Raft(o)
    }
}

impl LockObs {
    pub fn raft(&self) -> Option<&RaftObs> {
        match self {
            LockObs::Raft(r) => Some(r),
            _ => None,
        }
    }
}

impl Observation for LockObs {
    fn leadership(&self) -> Option<Leadership> {
        self.raft()?.leadership()
    }
    /// Only the clients' leases: the service's leader leases are not used.
    fn lease(&self) -> Option<LeaseEvent> {
        match self {
            LockObs::Holds { lock, token, until } => Some(LeaseEvent::Holds(LeaseClaim {
                resource: lock.clone(),
                holder: None,
                epoch: token.0,
                until: LeaseDeadline::Mono(*until),
            })),
            LockObs::Released { lock } => Some(LeaseEvent::Ends { resource: lock.clone(), holder: None }),
            _ => None,
        }
    }
    fn trigger(&self) -> Option<&'static str> {
        match self {
            LockObs::Raft(r) => r.trigger(),
            LockObs::Holds { .. } => Some("acquired"),
            LockObs::LeaseChecked { .. } => Some("lease-checked"),
            LockObs::Released { .. } | LockObs::Accepted { .. } => None,
        }
    }
}

/// The events lock observations name, for `[[trigger]]`: Raft's, and two
/// of the clients' (a trigger that pauses the reporting client there hits
/// a holder in the middle of its critical section).
pub const TRIGGER_EVENTS: &[&str] =
    &["leader", "stepped-down", "started", "candidate", "voted", "refused-vote", "acquired", "lease-checked"];

pub enum LockNode {
    Service(Box<service::Service>),
    Single(Box<service::SingleServer>),
    Redis(Box<redlock::RedisServer>),
    Resource(Box<resource::Resource>),
    Client(Box<client::LockClient>),
    /// A server the variant does not use (`token-not-persisted` runs one).
    Idle,
}

impl Node for LockNode {
    type Msg = Msg;
    type Timer = Timer;
    type Obs = LockObs;

    fn on_start(&mut self, ctx: &mut Ctx<'_, Self>) {
        match self {
            LockNode::Service(s) => s.on_start(ctx),
            LockNode::Single(s) => s.on_start(ctx),
            LockNode::Resource(_) | LockNode::Redis(_) | LockNode::Idle => {}
            LockNode::Client(c) => c.on_start(ctx),
        }
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, Self>, from: NodeId, msg: Msg) {
        match self {
            LockNode::Service(s) => s.on_message(ctx, from, msg),
            LockNode::Single(s) => s.on_message(ctx, from, msg),
            LockNode::Redis(r) => r.on_message(ctx, from, msg),
            LockNode::Resource(r) => r.on_message(ctx, from, msg),
            LockNode::Client(c) => c.on_message(ctx, from, msg),
            LockNode::Idle => {}
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, Self>, timer: Timer) {
        match self {
            LockNode::Service(s) => s.on_timer(ctx, timer),
            LockNode::Single(s) => s.on_timer(ctx, timer),
            LockNode::Client(c) => c.on_timer(ctx, timer),
            LockNode::Redis(_) | LockNode::Resource(_) | LockNode::Idle => {
                panic!("{} got a timer it never sets: {timer:?}", ctx.me())
            }
        }
    }
}
