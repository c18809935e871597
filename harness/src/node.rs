//! The contract nodes are written against: sans-IO state machines that react
//! to one event at a time and record their effects on a [`Ctx`].
//!
//! Nothing here performs IO, sleeps or spawns, so the same node can be driven
//! by the built-in world ([`crate::sim::World`]), by an async driver over
//! turmoil's simulated sockets, or over real sockets: a driver only has to
//! implement what `Ctx` offers (clocks, sends, timers, a random stream, a disk).

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::fmt::{self, Debug};
use std::hash::Hash;
use std::time::Duration;

use crate::disk::Disk;
use crate::history::{OpType, Value};
use crate::rng::Rng;
use crate::time::{MonoTime, WallTime};

/// A node's name: servers are `n1..nN`, clients `c1..cK`. The role is part
/// of the id, so ids print the same everywhere (traces, reports, messages).
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct NodeId(u32);

const CLIENT_BIT: u32 = 1 << 31;

impl NodeId {
    /// Server number `i`, counted from 0 (printed as `n{i+1}`).
    pub const fn server(i: u32) -> Self {
        assert!(i < CLIENT_BIT);
        NodeId(i)
    }
    /// Client number `i`, counted from 0 (printed as `c{i+1}`).
    pub const fn client(i: u32) -> Self {
        assert!(i < CLIENT_BIT);
        NodeId(i | CLIENT_BIT)
    }
    pub fn is_client(self) -> bool {
        self.0 & CLIENT_BIT != 0
    }
    pub fn is_server(self) -> bool {
        !self.is_client()
    }
    /// The number within its role, counted from 0.
    pub fn index(self) -> u32 {
        self.0 & !CLIENT_BIT
    }
    pub(crate) fn raw(self) -> u32 {
        self.0
    }
    /// Parses `n3` or `c1`.
    pub fn parse(s: &str) -> Option<NodeId> {
        let (role, num) = s.split_at_checked(1)?;
        let n: u32 = num.parse().ok()?;
        if n == 0 || n >= CLIENT_BIT || num.starts_with('0') || num.starts_with('+') {
            return None;
        }
        match role {
            "n" => Some(NodeId::server(n - 1)),
            "c" => Some(NodeId::client(n - 1)),
            _ => None,
        }
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let role = if self.is_client() { 'c' } else { 'n' };
        write!(f, "{role}{}", self.index() + 1)
    }
}
impl Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}
impl From<NodeId> for String {
    fn from(n: NodeId) -> String {
        n.to_string()
    }
}
impl TryFrom<String> for NodeId {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        NodeId::parse(&s).ok_or_else(|| format!("`{s}` is not a node name (n1, n2, ... or c1, c2, ...)"))
    }
}

/// What nodes send each other. Hash feeds the trace hash; serde lets other
/// drivers put messages on a real or simulated wire.
pub trait Message: Clone + Debug + Hash + Serialize + DeserializeOwned + 'static {}
impl<T: Clone + Debug + Hash + Serialize + DeserializeOwned + 'static> Message for T {}

/// A timer's tag: what the node wants to be reminded of.
pub trait TimerTag: Clone + Debug + Hash + 'static {}
impl<T: Clone + Debug + Hash + 'static> TimerTag for T {}

/// A structured fact a node reports for the checkers ("became leader of term
/// 4"). Leadership facts let the world resolve `target = "leader"`.
pub trait Observation: Clone + Debug + Hash + Serialize + 'static {
    fn leadership(&self) -> Option<Leadership> {
        None
    }
    /// A lease this fact grants or ends, for the lease check, which judges
    /// it in true time with the world's knowledge of the node's clock.
    fn lease(&self) -> Option<crate::check::lease::LeaseEvent> {
        None
    }
    /// The event this fact is, by the name a `[[trigger]]` uses (`on =
    /// "leader"`), or `None` if nothing may trigger on it. By default a
    /// node's own leadership: `leader` and `stepped-down`.
    fn trigger(&self) -> Option<&'static str> {
        match self.leadership()? {
            Leadership::Elected => Some("leader"),
            Leadership::SteppedDown => Some("stepped-down"),
        }
    }
}

/// A change of leadership reported by the node that observes it of itself.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Leadership {
    Elected,
    SteppedDown,
}

/// For systems that report nothing.
#[derive(Clone, Debug, Hash, Serialize, Deserialize, PartialEq, Eq)]
pub enum NoObservation {}
impl Observation for NoObservation {}

/// Identifies one armed timer so it can be cancelled.
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct TimerId(pub(crate) u64);

/// A sans-IO node. Handlers are named `on_<message>` by convention and
/// timers `<noun>_timeout`; the three entry points below dispatch to them.
pub trait Node: 'static {
    type Msg: Message;
    type Timer: TimerTag;
    type Obs: Observation;

    /// Called when the node starts and again after every restart (on a fresh
    /// value built by the factory from the node's durable disk).
    fn on_start(&mut self, ctx: &mut Ctx<'_, Self>);
    fn on_message(&mut self, ctx: &mut Ctx<'_, Self>, from: NodeId, msg: Self::Msg);
    fn on_timer(&mut self, ctx: &mut Ctx<'_, Self>, timer: Self::Timer);
}

/// Builds a node from its id and its durable disk: at the first start the
/// disk is empty; after a crash it holds exactly what was synced.
pub type Factory<N> = Box<dyn FnMut(NodeId, &Disk) -> N>;

/// What a node asks of the world while it handles one event, in order.
/// The handler records them on its [`Ctx`]; the driver applies them after
/// it returns (the poll model of quinn-proto), so a driver can also apply
/// only the first few (a crash in the middle of a handler).
pub enum Effect<N: Node + ?Sized> {
    Send {
        to: NodeId,
        msg: N::Msg,
    },
    SetTimer {
        id: TimerId,
        after: Duration,
        tag: N::Timer,
    },
    CancelTimer(TimerId),
    /// A write (`Some`) or delete (`None`) of one disk key, volatile until a sync.
    DiskWrite {
        key: String,
        value: Option<Vec<u8>>,
    },
    DiskSync,
    Observe(N::Obs),
    Invoke {
        f: String,
        key: Option<String>,
        value: Value,
    },
    Complete {
        kind: OpType,
        value: Value,
    },
}

impl<N: Node + ?Sized> Effect<N> {
    /// A short name for traces and reports.
    pub fn kind(&self) -> &'static str {
        match self {
            Effect::Send { .. } => "send",
            Effect::SetTimer { .. } => "set-timer",
            Effect::CancelTimer(_) => "cancel-timer",
            Effect::DiskWrite { .. } => "disk-write",
            Effect::DiskSync => "disk-sync",
            Effect::Observe(_) => "observe",
            Effect::Invoke { .. } => "invoke",
            Effect::Complete { .. } => "complete",
        }
    }
}

/// What a driver hands a handler: the node's identity, its clocks read at
/// this instant, its random stream, its disk as of the handler's start,
/// and where timer ids come from.
pub struct Env<'a> {
    pub me: NodeId,
    pub peers: &'a [NodeId],
    pub servers: &'a [NodeId],
    pub wall: WallTime,
    pub mono: MonoTime,
    pub rng: &'a mut Rng,
    pub disk: &'a Disk,
    /// Whether this client has an operation outstanding.
    pub outstanding: bool,
    /// The next timer id to hand out (ids are unique per world).
    pub next_timer: &'a mut u64,
}

/// The node's window on the world while it handles one event: it reads
/// the node's clocks, random stream and disk, and records every effect.
pub struct Ctx<'a, N: Node + ?Sized> {
    env: Env<'a>,
    effects: &'a mut Vec<Effect<N>>,
}

impl<'a, N: Node + ?Sized> Ctx<'a, N> {
    /// A context over `env` that records into `effects` (cleared first).
    pub fn new(env: Env<'a>, effects: &'a mut Vec<Effect<N>>) -> Self {
        effects.clear();
        Ctx { env, effects }
    }
    pub fn me(&self) -> NodeId {
        self.env.me
    }
    /// The other servers (for a client: every server).
    /// Borrowed from the world, not from `self`, so a handler can send to
    /// each peer while it iterates them.
    pub fn peers(&self) -> &'a [NodeId] {
        self.env.peers
    }
    /// Every server, in order.
    pub fn servers(&self) -> &'a [NodeId] {
        self.env.servers
    }
    /// This node's wall clock: skew, drift, bumps, strobes and resets apply.
    pub fn wall_now(&self) -> WallTime {
        self.env.wall
    }
    /// This node's monotonic clock: drift applies, it never jumps back.
    pub fn mono_now(&self) -> MonoTime {
        self.env.mono
    }
    /// Sends a message; the network may delay, drop, duplicate or reorder it.
    pub fn send(&mut self, to: NodeId, msg: N::Msg) {
        self.effects.push(Effect::Send { to, msg });
    }
    /// Arms a timer that fires after `after` on this node's monotonic clock.
    pub fn set_timer(&mut self, after: Duration, tag: N::Timer) -> TimerId {
        *self.env.next_timer += 1;
        let id = TimerId(*self.env.next_timer);
        self.effects.push(Effect::SetTimer { id, after, tag });
        id
    }
    /// Disarms a timer; cancelling one that already fired is harmless.
    pub fn cancel_timer(&mut self, id: TimerId) {
        self.effects.push(Effect::CancelTimer(id));
    }
    /// This node's random stream (derived from the run's seed).
    pub fn rng(&mut self) -> &mut Rng {
        self.env.rng
    }
    /// This node's disk: writes are durable only after `sync`; reads see
    /// this handler's own writes.
    pub fn disk(&mut self) -> DiskHandle<'_, N> {
        DiskHandle { base: self.env.disk, effects: self.effects }
    }
    /// Reports a fact to the checkers; online invariants see it when the
    /// driver applies it, at this same instant.
    pub fn observe(&mut self, obs: N::Obs) {
        self.effects.push(Effect::Observe(obs));
    }

    /// Starts a client operation in the history. A process has at most one
    /// operation outstanding: invoking while one is open is a bug in the client.
    pub fn invoke(&mut self, f: &str, key: Option<&str>, value: Value) {
        assert!(!self.env.outstanding, "{} invoked `{f}` while an operation is outstanding", self.env.me);
        self.env.outstanding = true;
        self.effects.push(Effect::Invoke { f: f.to_owned(), key: key.map(str::to_owned), value });
    }
    /// The outstanding operation took effect; `value` is its output.
    pub fn ok(&mut self, value: Value) {
        self.complete(OpType::Ok, value);
    }
    /// The outstanding operation definitely did not take effect.
    pub fn fail(&mut self, value: Value) {
        self.complete(OpType::Fail, value);
    }
    /// The outcome is unknown (a timeout): it may take effect later or never.
    /// The client continues under a fresh process number.
    pub fn info(&mut self, value: Value) {
        self.complete(OpType::Info, value);
    }
    fn complete(&mut self, kind: OpType, value: Value) {
        assert!(self.env.outstanding, "{} completed an operation it never invoked", self.env.me);
        self.env.outstanding = false;
        self.effects.push(Effect::Complete { kind, value });
    }
    /// Whether this client has an operation outstanding.
    pub fn has_outstanding_op(&self) -> bool {
        self.env.outstanding
    }
}

/// A node's disk inside a handler: writes and syncs are effects; reads see
/// the disk as the handler found it, plus the handler's own writes.
pub struct DiskHandle<'c, N: Node + ?Sized> {
    base: &'c Disk,
    effects: &'c mut Vec<Effect<N>>,
}

impl<N: Node + ?Sized> DiskHandle<'_, N> {
    pub fn write(&mut self, key: &str, value: Vec<u8>) {
        self.effects.push(Effect::DiskWrite { key: key.to_owned(), value: Some(value) });
    }
    pub fn remove(&mut self, key: &str) {
        self.effects.push(Effect::DiskWrite { key: key.to_owned(), value: None });
    }
    /// Serialises `value` under `key` (see [`crate::disk::encode_record`]).
    pub fn put<T: Serialize>(&mut self, key: &str, value: &T) {
        self.write(key, crate::disk::encode_record(value));
    }
    /// Makes every write so far durable.
    pub fn sync(&mut self) {
        self.effects.push(Effect::DiskSync);
    }
    /// The latest value of `key`: this handler's last write of it, else the disk's.
    pub fn read(&self, key: &str) -> Option<&[u8]> {
        let mine = self.effects.iter().rev().find_map(|e| match e {
            Effect::DiskWrite { key: k, value } if k == key => Some(value.as_deref()),
            _ => None,
        });
        mine.unwrap_or_else(|| self.base.read(key))
    }
    /// Every key starting with `prefix`, in key order: the disk's, with
    /// this handler's own writes and deletes applied.
    pub fn keys_with_prefix(&self, prefix: &str) -> Vec<String> {
        let mut keys: std::collections::BTreeSet<String> = self.base.keys_with_prefix(prefix).into_iter().collect();
        for effect in self.effects.iter() {
            if let Effect::DiskWrite { key, value } = effect {
                if key.starts_with(prefix) {
                    if value.is_some() {
                        keys.insert(key.clone());
                    } else {
                        keys.remove(key);
                    }
                }
            }
        }
        keys.into_iter().collect()
    }
    /// Reads a typed record (a record that does not parse is a bug: it panics).
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Option<T> {
        self.read(key).map(|bytes| crate::disk::decode_record(key, bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_names_round_trip() {
        assert_eq!(NodeId::server(0).to_string(), "n1");
        assert_eq!(NodeId::client(2).to_string(), "c3");
        assert_eq!(NodeId::parse("n12"), Some(NodeId::server(11)));
        assert_eq!(NodeId::parse("c1"), Some(NodeId::client(0)));
        for bad in ["", "n", "n0", "x1", "n01", "c-1", "n+1"] {
            assert_eq!(NodeId::parse(bad), None, "{bad}");
        }
        assert!(NodeId::client(0).is_client() && NodeId::server(0).is_server());
    }
}
