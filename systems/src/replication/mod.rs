//! `replication`: a key-value store replicated with [`crate::raft`].
//!
//! Writes and compare-and-sets go through the leader's log; the store
//! applies committed commands and remembers each client's last request, so
//! a retried request (same id, possibly at a new leader) is answered, not
//! applied twice, and a network duplicate of an older request, arriving
//! after a newer one, is ignored. Every value carries its version: the
//! index of the log entry that wrote it. Clients record the values they
//! read, not versions: the checkers judge what clients saw.
//!
//! Reads come in two kinds, both used by the `correct` variant:
//! - `read` goes to the leader, which confirms it still leads with a
//!   heartbeat round (read-index) and answers once it has applied that far:
//!   linearizable;
//! - `session-read` goes to any server with the client's session token (the
//!   highest log index it has seen, from its writes and reads); a server
//!   answers only once it has applied at least that index: read-your-writes
//!   and monotonic reads.
//!
//! # Planted bugs
//!
//! - `follower-any`: servers answer session reads from whatever they have
//!   applied, ignoring the token: a client can miss its own write.
//! - `commit-without-majority`: the leader counts an entry committed as soon
//!   as it is in its own log and acknowledges the client; a leader change
//!   then loses or replaces acknowledged entries.
//! - `prev-term-unchecked`: a follower's `AppendEntries` consistency check
//!   compares only `prev_index` with the length of its log, not the term
//!   of its entry there (a step of Figure 2 easy to drop: the index check
//!   alone passes every test without faults). A follower holding a stale
//!   uncommitted entry from a deposed leader appends the new leader's
//!   entries after it, and the two logs diverge below an entry they share.
//! - `no-request-dedup`: the store applies every committed command, without
//!   the client sessions of the Raft paper's section 8: a request retried
//!   after a timeout (its first copy committed, the reply lost) or
//!   duplicated by the network is appended again and applied twice. With
//!   writes of unique values this rarely shows in reads; with
//!   `operations = "mixed"` a doubled append or increment does.
//! - `sticky-leader-window`: the common advice "after a write, send that
//!   user's reads to the leader for a while, then to any replica", with no
//!   session token. It breaks when a replica lags more than the window, and
//!   when the window is measured on a clock that jumps forward.
//! - `lease-reads-no-drift-margin`: the leader answers reads from a lease
//!   measured, as it should be, on its monotonic clock, but for the full
//!   election timeout with no margin for drift: with its clock slow and
//!   the voters' fast, it keeps answering after a new leader took writes.
//!   (`[config] leader_reads = "lease"` runs correct lease reads.)
//! - `lease-reads-on-wall-clock`: the lease has its drift margin but is
//!   measured on the wall clock: a backward jump stretches it.
//! - `async-failover`: no Raft at all, but primary-backup with asynchronous
//!   replication: the primary acknowledges writes at once and ships its
//!   state to the backups with each ping; a backup that hears no ping for a
//!   while promotes itself. Acknowledged writes not yet shipped vanish.
//!
//! How fast the harness finds them, over seeds 0..100 of each bug's scenario
//! (median seeds to the first failure from every starting seed; worst case
//! in brackets; `scripts/detection-rates.sh`): `follower-any` 12 of 100,
//! median 6.5 (18); `commit-without-majority` 71 of 100, median 1 (4);
//! `sticky-leader-window` 24 of 100, median 3 (18);
//! `lease-reads-no-drift-margin` 13 of 100, median 5 (28), drift alone;
//! `lease-reads-on-wall-clock` 91 of 100, median 1 (2); `async-failover`
//! 69 of 100, median 1 (6).

mod effects;
mod failover;
pub mod system;

pub use failover::FailoverServer;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

use crate::client::{ClientSettings, Completion, Protocol, Request, ScriptedClient};
use harness::history::Value;
use harness::node::{Ctx, Leadership, Node, NodeId, Observation};

use crate::raft::{LogIndex, Payload, Raft, RaftConfig, RaftMsg, RaftObs, RaftTimer};

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Variant {
    Correct,
    FollowerAny,
    CommitWithoutMajority,
    PrevTermUnchecked,
    NoRequestDedup,
    StickyLeaderWindow,
    LeaseReadsNoDriftMargin,
    LeaseReadsOnWallClock,
    AsyncFailover,
}

impl harness::system::VariantNames for Variant {
    const NAMES: &'static [&'static str] = &[
        "correct",
        "follower-any",
        "commit-without-majority",
        "prev-term-unchecked",
        "no-request-dedup",
        "sticky-leader-window",
        "lease-reads-no-drift-margin",
        "lease-reads-on-wall-clock",
        "async-failover",
    ];

    fn parse(name: &str) -> Option<Variant> {
        Some(match name {
            "correct" => Variant::Correct,
            "follower-any" => Variant::FollowerAny,
            "commit-without-majority" => Variant::CommitWithoutMajority,
            "prev-term-unchecked" => Variant::PrevTermUnchecked,
            "no-request-dedup" => Variant::NoRequestDedup,
            "sticky-leader-window" => Variant::StickyLeaderWindow,
            "lease-reads-no-drift-margin" => Variant::LeaseReadsNoDriftMargin,
            "lease-reads-on-wall-clock" => Variant::LeaseReadsOnWallClock,
            "async-failover" => Variant::AsyncFailover,
            _ => return None,
        })
    }
}

#[derive(Clone, Debug)]
pub struct Config {
    pub variant: Variant,
    pub raft: RaftConfig,
    pub request_timeout: Duration,
    /// Tries per request (new servers on timeouts and redirects) before giving up.
    pub tries: u32,
    pub think: Duration,
    /// `sticky-leader-window`: how long after a write reads stick to the leader.
    pub sticky_window: Duration,
    /// Leader reads by lease instead of a heartbeat round (read-index).
    pub lease_reads: bool,
}

impl Config {
    /// Whether the leader serves reads from a lease (correctly or not).
    pub fn uses_leases(&self) -> bool {
        self.lease_reads || matches!(self.variant, Variant::LeaseReadsNoDriftMargin | Variant::LeaseReadsOnWallClock)
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            variant: Variant::Correct,
            raft: RaftConfig::default(),
            request_timeout: Duration::from_millis(300),
            tries: 6,
            think: Duration::from_millis(20),
            sticky_window: Duration::from_secs(60),
            lease_reads: false,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum KvOp {
    Write {
        key: String,
        value: i64,
    },
    Cas {
        key: String,
        from: Option<i64>,
        to: i64,
    },
    /// Adds an element to the list the key holds (Elle's list-append).
    Append {
        key: String,
        item: i64,
    },
    /// Adds to the integer the key holds (absent counts as 0).
    Incr {
        key: String,
        by: i64,
    },
}

/// What a key holds: an integer (written, swapped, incremented) or a list
/// (appended to). An operation of the other kind fails and changes nothing.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Held {
    Int(i64),
    List(Vec<i64>),
}

/// A command in the log: which client's which request.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct KvCommand {
    pub client: NodeId,
    pub id: u64,
    pub op: KvOp,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Reply {
    Written {
        version: u64,
    },
    Swapped {
        version: u64,
    },
    Mismatch,
    /// An append to an integer, or an increment of a list.
    WrongType,
    Incremented {
        value: i64,
        version: u64,
    },
    Value {
        value: Option<Held>,
        version: u64,
        applied: LogIndex,
    },
}

#[derive(Clone, Debug, Hash, Serialize, Deserialize)]
pub enum Msg {
    Raft(RaftMsg<KvCommand>),
    /// `async-failover`: the primary's whole state, sent with each ping.
    Ping {
        epoch: u64,
        state: Snapshot,
    },
    Write {
        id: u64,
        op: KvOp,
    },
    LeaderRead {
        id: u64,
        key: String,
    },
    SessionRead {
        id: u64,
        key: String,
        token: LogIndex,
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

impl From<RaftMsg<KvCommand>> for Msg {
    fn from(m: RaftMsg<KvCommand>) -> Self {
        Msg::Raft(m)
    }
}

#[derive(Clone, Debug, Hash)]
pub enum Timer {
    Raft(RaftTimer),
    /// `async-failover`: the primary pings; a backup suspects the primary.
    Ping,
    Suspect,
    Think,
    Request(u64),
}

impl From<RaftTimer> for Timer {
    fn from(t: RaftTimer) -> Self {
        Timer::Raft(t)
    }
}

/// Replication reports Raft's facts, and each command that changed a
/// node's store.
#[derive(Clone, Debug, Hash, Serialize, PartialEq, Eq)]
pub enum ReplObs {
    Raft(RaftObs),
    /// This node's store took the effect of `client`'s request `id`,
    /// applied at `index` (a retry or duplicate it recognised is not one).
    Effect {
        client: NodeId,
        id: u64,
        index: LogIndex,
    },
}

impl ReplObs {
    pub fn raft(&self) -> Option<&RaftObs> {
        match self {
            ReplObs::Raft(r) => Some(r),
            ReplObs::Effect { .. } => None,
        }
    }
}

impl From<RaftObs> for ReplObs {
    fn from(o: RaftObs) -> Self {
        ReplObs::Raft(o)
    }
}

impl Observation for ReplObs {
    fn leadership(&self) -> Option<Leadership> {
        self.raft()?.leadership()
    }
    fn lease(&self) -> Option<harness::check::lease::LeaseEvent> {
        self.raft()?.lease()
    }
    fn trigger(&self) -> Option<&'static str> {
        self.raft()?.trigger()
    }
}

/// What applying one committed command did.
pub(super) struct Applied {
    /// The reply its client gets, if any.
    pub reply: Option<Reply>,
    /// Whether the store changed: false for a retry or duplicate.
    pub effect: bool,
}

/// The replicated state machine: values with versions, and each client's
/// last request and its reply.
#[derive(Clone, Debug, Default, Hash, Serialize, Deserialize)]
pub struct Store {
    values: BTreeMap<String, (Held, u64)>,
    sessions: BTreeMap<NodeId, (u64, Reply)>,
}

/// `async-failover`: a primary's state as it ships it.
#[derive(Clone, Debug, Hash, Serialize, Deserialize)]
pub struct Snapshot {
    pub index: u64,
    pub store: Store,
}

impl Store {
    /// Applies a committed command once. A client has one request open at
    /// a time and numbers them upwards, so an id at or below its last one
    /// is a retry or a network duplicate committed again: the same id gets
    /// the same reply, an older id (whose client moved on) gets none, and
    /// neither changes the store.
    ///
    /// Without `dedup` (the `no-request-dedup` bug) every committed command
    /// takes effect, retries and duplicates included.
    fn apply(&mut self, index: LogIndex, command: &KvCommand, dedup: bool) -> Applied {
        if let Some((last, reply)) = self.sessions.get(&command.client).filter(|_| dedup) {
            if command.id == *last {
                return Applied { reply: Some(reply.clone()), effect: false };
            }
            if command.id < *last {
                return Applied { reply: None, effect: false };
            }
        }
        let reply = self.apply_op(index, &command.op);
        if reply == Reply::Mismatch || reply == Reply::WrongType {
            // Changed nothing: remembered only so a retry gets the same reply.
            self.sessions.insert(command.client, (command.id, reply.clone()));
            return Applied { reply: Some(reply), effect: false };
        }
        self.sessions.insert(command.client, (command.id, reply.clone()));
        Applied { reply: Some(reply), effect: true }
    }

    fn apply_op(&mut self, index: LogIndex, op: &KvOp) -> Reply {
        let version = index.0;
        match op {
            KvOp::Write { key, value } => {
                self.values.insert(key.clone(), (Held::Int(*value), version));
                Reply::Written { version }
            }
            KvOp::Cas { key, from, to } => {
                let held = match self.values.get(key) {
                    None => None,
                    Some((Held::Int(v), _)) => Some(*v),
                    Some((Held::List(_), _)) => return Reply::Mismatch,
                };
                if held != *from {
                    return Reply::Mismatch;
                }
                self.values.insert(key.clone(), (Held::Int(*to), version));
                Reply::Swapped { version }
            }
            KvOp::Append { key, item } => {
                let entry = self.values.entry(key.clone()).or_insert((Held::List(Vec::new()), version));
                let Held::List(items) = &mut entry.0 else { return Reply::WrongType };
                items.push(*item);
                entry.1 = version;
                Reply::Written { version }
            }
            KvOp::Incr { key, by } => {
                let entry = self.values.entry(key.clone()).or_insert((Held::Int(0), version));
                let Held::Int(n) = &mut entry.0 else { return Reply::WrongType };
                *n = n.wrapping_add(*by);
                entry.1 = version;
                Reply::Incremented { value: *n, version }
            }
        }
    }

    fn read(&self, key: &str, applied: LogIndex) -> Reply {
        let (value, version) = self.values.get(key).map_or((None, 0), |(v, ver)| (Some(v.clone()), *ver));
        Reply::Value { value, version, applied }
    }
}

pub struct Server {
    config: Config,
    raft: Raft<KvCommand>,
    store: Store,
    /// Proposed by this node as leader: log index -> (client, request id).
    proposed: BTreeMap<LogIndex, (NodeId, u64)>,
    /// Read-index reads: (read index, heartbeat round, client, id, key).
    leader_reads: Vec<(LogIndex, u64, NodeId, u64, String)>,
    /// Session reads waiting to apply up to the token: (token, client, id, key).
    session_reads: Vec<(LogIndex, NodeId, u64, String)>,
}

impl Server {
    pub fn new(config: Config, disk: &harness::Disk) -> Self {
        let mut raft_config = config.raft.clone();
        raft_config.commit_without_majority = config.variant == Variant::CommitWithoutMajority;
        raft_config.prev_term_unchecked = config.variant == Variant::PrevTermUnchecked;
        raft_config.leases = match config.variant {
            Variant::LeaseReadsNoDriftMargin => Some(crate::raft::LeaseClock::MonoNoMargin),
            Variant::LeaseReadsOnWallClock => Some(crate::raft::LeaseClock::WallWithMargin),
            _ if config.lease_reads => Some(crate::raft::LeaseClock::MonoWithMargin),
            _ => None,
        };
        Server {
            raft: Raft::new(raft_config, disk),
            config,
            store: Store::default(),
            proposed: BTreeMap::new(),
            leader_reads: Vec::new(),
            session_reads: Vec::new(),
        }
    }

    /// The Raft log underneath (for tests and tools).
    pub fn raft(&self) -> &Raft<KvCommand> {
        &self.raft
    }

    fn on_write(&mut self, ctx: &mut Ctx<'_, ReplicaNode>, from: NodeId, id: u64, op: KvOp) {
        match self.raft.propose(ctx, KvCommand { client: from, id, op }) {
            Some(index) => {
                self.proposed.insert(index, (from, id));
            }
            None => ctx.send(from, Msg::NotLeader { id, hint: self.raft.leader_hint() }),
        }
    }

    fn on_leader_read(&mut self, ctx: &mut Ctx<'_, ReplicaNode>, from: NodeId, id: u64, key: String) {
        if let Some(index) = self.raft.lease_read(ctx) {
            // Round 0 is confirmed already: only the apply index is awaited.
            self.leader_reads.push((index, 0, from, id, key));
            return;
        }
        match self.raft.start_read(ctx) {
            Some((index, round)) => self.leader_reads.push((index, round, from, id, key)),
            None => ctx.send(from, Msg::NotLeader { id, hint: self.raft.leader_hint() }),
        }
    }

    fn on_session_read(&mut self, ctx: &mut Ctx<'_, ReplicaNode>, from: NodeId, id: u64, key: String, token: LogIndex) {
        let token = if self.config.variant == Variant::FollowerAny { LogIndex(0) } else { token };
        self.session_reads.push((token, from, id, key));
        let _ = ctx;
    }

    /// Applies what committed, answers what can be answered.
    fn pump(&mut self, ctx: &mut Ctx<'_, ReplicaNode>) {
        for (index, entry) in self.raft.take_committed(ctx) {
            let Payload::Command(command) = entry.payload else { continue };
            let dedup = self.config.variant != Variant::NoRequestDedup;
            let applied = self.store.apply(index, &command, dedup);
            if applied.effect {
                ctx.observe(ReplObs::Effect { client: command.client, id: command.id, index });
            }
            let proposed_here = self.proposed.remove(&index) == Some((command.client, command.id));
            if let (true, Some(reply)) = (proposed_here, applied.reply) {
                ctx.send(command.client, Msg::Reply { id: command.id, reply });
            }
        }
        let applied = self.raft.applied();
        if !self.raft.is_leader() {
            self.proposed.clear();
            for (_, _, client, id, _) in self.leader_reads.drain(..) {
                ctx.send(client, Msg::NotLeader { id, hint: self.raft.leader_hint() });
            }
        }
        let confirmed = self.raft.confirmed_round();
        let store = &self.store;
        self.leader_reads.retain(|(index, round, client, id, key)| {
            if *round <= confirmed && *index <= applied {
                ctx.send(*client, Msg::Reply { id: *id, reply: store.read(key, applied) });
                return false;
            }
            true
        });
        self.session_reads.retain(|(token, client, id, key)| {
            if *token <= applied {
                ctx.send(*client, Msg::Reply { id: *id, reply: store.read(key, applied) });
                return false;
            }
            true
        });
    }
}

pub use crate::ClientOp as Op;

/// The replication side of the shared scripted client: where each kind of
/// request goes (the leader it believes in, or any server with its session
/// token), and the session state replies update.
pub struct ReplicationProtocol {
    config: Config,
    leader: NodeId,
    /// The session token: the highest log index this client has seen.
    token: LogIndex,
    /// `sticky-leader-window`: when this client last wrote (its wall clock).
    last_write: Option<harness::time::WallTime>,
}

/// A replication client: the shared scripted client over [`ReplicationProtocol`].
pub type Client = ScriptedClient<ReplicationProtocol>;

/// A client running `script`, then alternating probe writes and reads.
pub fn client(config: &Config, script: Vec<Op>) -> Client {
    let settings = ClientSettings {
        think: config.think,
        probe_every: Duration::from_millis(500),
        request_timeout: config.request_timeout,
        sends: config.tries,
        // Reads that time out did nothing: they fail rather than stay open.
        reads_fail: true,
    };
    let protocol =
        ReplicationProtocol { config: config.clone(), leader: NodeId::server(0), token: LogIndex(0), last_write: None };
    ScriptedClient::new(protocol, settings, script)
}

impl ReplicationProtocol {
    /// A write of any kind took effect at `version`, through `leader`.
    fn wrote(&mut self, ctx: &Ctx<'_, ReplicaNode>, leader: NodeId, version: u64) {
        self.token = self.token.max(LogIndex(version));
        self.leader = leader;
        self.last_write = Some(ctx.wall_now());
    }

    /// What a reply says happened; it moves the session token forward.
    fn on_reply(&mut self, ctx: &Ctx<'_, ReplicaNode>, from: NodeId, reply: Reply) -> Completion {
        match reply {
            Reply::Written { version } | Reply::Swapped { version } => {
                self.wrote(ctx, from, version);
                Completion::Ok(Value::Int(version as i64))
            }
            Reply::Incremented { value, version } => {
                self.wrote(ctx, from, version);
                Completion::Ok(Value::Int(value))
            }
            Reply::Mismatch => Completion::Fail(Value::Bool(false)),
            Reply::WrongType => Completion::Fail(Value::from("wrong type")),
            Reply::Value { value, applied, .. } => {
                // The client records what it read, not the server's version:
                // the checkers judge what clients saw.
                self.token = self.token.max(applied);
                Completion::Ok(match value {
                    None => Value::Null,
                    Some(Held::Int(v)) => Value::Int(v),
                    Some(Held::List(items)) => Value::List(items.into_iter().map(Value::Int).collect()),
                })
            }
        }
    }
}

impl Protocol for ReplicationProtocol {
    type Node = ReplicaNode;

    fn request(&mut self, ctx: &mut Ctx<'_, ReplicaNode>, op: &Op, id: u64) -> Request<Msg> {
        let (msg, to) = match (op.f.as_str(), &op.value) {
            ("write", Value::Int(v)) => {
                (Msg::Write { id, op: KvOp::Write { key: op.key.clone(), value: *v } }, self.leader)
            }
            ("cas", v) => {
                let (from, to) = v.as_pair().expect("cas ops carry [from, to]");
                let op =
                    KvOp::Cas { key: op.key.clone(), from: from.as_int(), to: to.as_int().expect("integer target") };
                (Msg::Write { id, op }, self.leader)
            }
            ("append", Value::Int(item)) => {
                (Msg::Write { id, op: KvOp::Append { key: op.key.clone(), item: *item } }, self.leader)
            }
            ("incr", Value::Int(by)) => {
                (Msg::Write { id, op: KvOp::Incr { key: op.key.clone(), by: *by } }, self.leader)
            }
            ("read", _) => (Msg::LeaderRead { id, key: op.key.clone() }, self.leader),
            ("session-read", _) => {
                let servers = ctx.servers().to_vec();
                let any = *ctx.rng().pick(&servers).expect("servers exist");
                if self.config.variant == Variant::StickyLeaderWindow {
                    // No token: the leader for a while after a write, then anyone.
                    let window = self.config.sticky_window;
                    let sticky = self.last_write.is_some_and(|w| ctx.wall_now() < w.saturating_add(window));
                    (
                        Msg::SessionRead { id, key: op.key.clone(), token: LogIndex(0) },
                        if sticky { self.leader } else { any },
                    )
                } else {
                    (Msg::SessionRead { id, key: op.key.clone(), token: self.token }, any)
                }
            }
            (f, v) => panic!("the replication client cannot run `{f}` with {v}"),
        };
        // Primary-backup has no sessions: every read is a read at the primary.
        let (f, msg, to) = match msg {
            Msg::SessionRead { id, key, .. } if self.config.variant == Variant::AsyncFailover => {
                ("read", Msg::LeaderRead { id, key }, self.leader)
            }
            msg => (op.f.as_str(), msg, to),
        };
        let is_read = matches!(msg, Msg::LeaderRead { .. } | Msg::SessionRead { .. });
        Request { msg, to, f: f.to_owned(), is_read }
    }

    /// After a timeout, the next server round-robin (it is now the leader
    /// to try, unless this was a session read, which any server serves);
    /// after a redirect, the hint, or the next server.
    fn resend_to(
        &mut self,
        ctx: &Ctx<'_, ReplicaNode>,
        sent_to: NodeId,
        msg: &Msg,
        redirect: Option<Option<NodeId>>,
    ) -> NodeId {
        let next = match redirect {
            Some(hint) => hint.filter(|&h| h != sent_to).unwrap_or_else(|| following(ctx.servers(), sent_to)),
            None => following(ctx.servers(), sent_to),
        };
        if redirect.is_some() || !matches!(msg, Msg::SessionRead { .. }) {
            self.leader = next;
        }
        next
    }

    /// A write, then a read, of key k0. Write values are negative and
    /// unique per client, unlike any scripted write.
    fn probe(&mut self, ctx: &mut Ctx<'_, ReplicaNode>, n: u64) -> Op {
        if n % 2 == 1 {
            let value = -(i64::from(ctx.me().index()) + 1) * 1_000_000_000 - n as i64;
            Op { f: "write".into(), key: "k0".into(), value: Value::Int(value) }
        } else {
            Op { f: "read".into(), key: "k0".into(), value: Value::Null }
        }
    }

    fn think_timer() -> Timer {
        Timer::Think
    }
    fn request_timer(id: u64) -> Timer {
        Timer::Request(id)
    }
}

/// The server after `current`, round-robin.
fn following(servers: &[NodeId], current: NodeId) -> NodeId {
    let i = servers.iter().position(|&s| s == current).map_or(0, |i| (i + 1) % servers.len());
    servers[i]
}

pub enum ReplicaNode {
    Server(Box<Server>),
    /// `async-failover`'s servers: primary-backup, no Raft.
    Failover(Box<FailoverServer>),
    Client(Box<Client>),
}

impl Node for ReplicaNode {
    type Msg = Msg;
    type Timer = Timer;
    type Obs = ReplObs;

    fn on_start(&mut self, ctx: &mut Ctx<'_, Self>) {
        match self {
            ReplicaNode::Server(s) => s.raft.start(ctx),
            ReplicaNode::Failover(f) => f.on_start(ctx),
            ReplicaNode::Client(c) => c.on_start(ctx),
        }
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, Self>, from: NodeId, msg: Msg) {
        match (self, msg) {
            (ReplicaNode::Failover(f), Msg::Ping { epoch, state }) => f.on_ping(ctx, from, epoch, state),
            (ReplicaNode::Failover(f), msg) => f.on_request(ctx, from, msg),
            (ReplicaNode::Server(s), msg) => {
                match msg {
                    Msg::Raft(m) => s.raft.on_message(ctx, from, m),
                    Msg::Write { id, op } => s.on_write(ctx, from, id, op),
                    Msg::LeaderRead { id, key } => s.on_leader_read(ctx, from, id, key),
                    Msg::SessionRead { id, key, token } => s.on_session_read(ctx, from, id, key, token),
                    other => panic!("{} got a client's message: {other:?}", ctx.me()),
                }
                s.pump(ctx);
            }
            (ReplicaNode::Client(c), Msg::Reply { id, reply }) => {
                c.on_reply(ctx, id, |p, ctx| p.on_reply(ctx, from, reply))
            }
            (ReplicaNode::Client(c), Msg::NotLeader { id, hint }) => c.on_redirect(ctx, id, hint),
            (ReplicaNode::Client(_), other) => panic!("{} got a server's message: {other:?}", ctx.me()),
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, Self>, timer: Timer) {
        match (self, timer) {
            (ReplicaNode::Failover(f), Timer::Ping) => f.on_ping_timeout(ctx),
            (ReplicaNode::Failover(f), Timer::Suspect) => f.on_suspect_timeout(ctx),
            (ReplicaNode::Server(s), Timer::Raft(t)) => {
                s.raft.on_timer(ctx, t);
                s.pump(ctx);
            }
            (ReplicaNode::Client(c), Timer::Think) => c.on_think_timeout(ctx),
            (ReplicaNode::Client(c), Timer::Request(id)) => c.on_request_timeout(ctx, id),
            (_, timer) => panic!("{} got a timer it never sets: {timer:?}", ctx.me()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::{Entry, Term};
    use harness::{Fault, Latency, LinkConfig, SimTime, Target, World, WorldConfig};

    fn world() -> World<ReplicaNode> {
        let config = Config::default();
        let cfg = WorldConfig {
            seed: 3,
            servers: 3,
            network: LinkConfig { latency: Latency::Constant(Duration::from_millis(1)), ..LinkConfig::default() },
            keep_trace: true,
            ..WorldConfig::default()
        };
        World::new(cfg, Box::new(move |_, disk| ReplicaNode::Server(Box::new(Server::new(config.clone(), disk)))))
    }

    fn raft(w: &World<ReplicaNode>, id: NodeId) -> &Raft<KvCommand> {
        match w.node(id) {
            Some(ReplicaNode::Server(s)) => s.raft(),
            _ => panic!("{id} is not a running server"),
        }
    }

    fn entry(term: u64, value: i64) -> Entry<KvCommand> {
        let op = KvOp::Write { key: "k".into(), value };
        Entry {
            term: Term(term),
            payload: Payload::Command(KvCommand { client: NodeId::client(0), id: value as u64, op }),
        }
    }

    fn append(term: u64, prev: (u64, u64), entries: Vec<Entry<KvCommand>>) -> Msg {
        Msg::Raft(RaftMsg::AppendEntries {
            term: Term(term),
            prev_index: LogIndex(prev.0),
            prev_term: Term(prev.1),
            entries,
            commit: LogIndex(0),
            round: 1,
        })
    }

    #[test]
    fn a_follower_truncates_a_conflicting_suffix_and_keeps_it_truncated() {
        let mut w = world();
        let (n1, n2, n3) = (NodeId::server(0), NodeId::server(1), NodeId::server(2));
        // Before any election timeout (150ms): n1 as leader of term 1 sends three entries.
        w.inject(n1, n2, append(1, (0, 0), vec![entry(1, 1), entry(1, 2), entry(1, 3)]));
        w.run_until(SimTime::from_duration(Duration::from_millis(5)));
        assert_eq!(raft(&w, n2).last_index(), LogIndex(3));
        // n3, leader of term 2, agrees on entry 1 only and replaces the rest.
        w.inject(n3, n2, append(2, (1, 1), vec![entry(2, 9)]));
        w.run_until(SimTime::from_duration(Duration::from_millis(10)));
        assert_eq!(raft(&w, n2).last_index(), LogIndex(2));
        assert_eq!(raft(&w, n2).entry_term(LogIndex(2)), Term(2));
        // The truncation is durable: a restart rebuilds the same log.
        w.apply(Fault::Crash(Target::Node(n2)));
        w.apply(Fault::Restart(Target::Node(n2)));
        assert_eq!(raft(&w, n2).last_index(), LogIndex(2));
        assert_eq!(raft(&w, n2).term(), Term(2));
    }

    #[test]
    fn appends_from_a_stale_term_are_refused_and_a_gap_is_reported() {
        let mut w = world();
        let (n1, n2) = (NodeId::server(0), NodeId::server(1));
        w.inject(n1, n2, append(2, (0, 0), vec![entry(2, 1)]));
        w.run_until(SimTime::from_duration(Duration::from_millis(5)));
        let mark = w.events();
        w.inject(n1, n2, append(1, (1, 2), vec![entry(1, 5)]));
        w.inject(n1, n2, append(2, (7, 2), vec![entry(2, 6)]));
        w.run_until(SimTime::from_duration(Duration::from_millis(10)));
        assert_eq!(raft(&w, n2).last_index(), LogIndex(1), "neither append was taken");
        let replies: Vec<String> = w
            .trace()
            .entries()
            .unwrap_or_default()
            .iter()
            .filter(|e| e.index >= mark && e.text.starts_with("n1 <- n2"))
            .map(|e| e.text.clone())
            .collect();
        assert!(
            replies.iter().any(|r| r.contains("term: Term(2), success: false, match_index: LogIndex(0)")),
            "{replies:?}"
        );
        assert!(replies.iter().any(|r| r.contains("success: false, match_index: LogIndex(1)")), "{replies:?}");
    }

    #[test]
    fn a_candidate_with_an_older_log_gets_no_vote() {
        let mut w = world();
        let (n1, n2, n3) = (NodeId::server(0), NodeId::server(1), NodeId::server(2));
        w.inject(n1, n2, append(1, (0, 0), vec![entry(1, 1), entry(1, 2)]));
        w.run_until(SimTime::from_duration(Duration::from_millis(5)));
        let mark = w.events();
        let vote = RaftMsg::RequestVote { term: Term(2), last_index: LogIndex(1), last_term: Term(1) };
        w.inject(n3, n2, Msg::Raft(vote));
        w.run_until(SimTime::from_duration(Duration::from_millis(10)));
        let granted = w
            .trace()
            .entries()
            .unwrap_or_default()
            .iter()
            .any(|e| e.index >= mark && e.text.starts_with("n3 <- n2") && e.text.contains("granted: true"));
        assert!(!granted, "a shorter log must not win a vote");
        assert_eq!(raft(&w, n2).term(), Term(2), "but the newer term is adopted");
    }
}
