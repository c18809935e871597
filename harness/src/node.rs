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
use crate::history::Value;
use crate::rng::Rng;
use crate::sim::Core;
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

/// The node's window on the world while it handles one event.
pub struct Ctx<'a, N: Node + ?Sized> {
    pub(crate) core: &'a mut Core<N>,
    pub(crate) slot: usize,
}

impl<N: Node + ?Sized> Ctx<'_, N> {
    pub fn me(&self) -> NodeId {
        self.core.id_of(self.slot)
    }
    /// The other servers (for a client: every server).
    pub fn peers(&self) -> &[NodeId] {
        &self.core.nodes[self.slot].peers
    }
    /// Every server, in order.
    pub fn servers(&self) -> &[NodeId] {
        &self.core.servers
    }
    /// This node's wall clock: skew, drift, bumps, strobes and resets apply.
    pub fn wall_now(&self) -> WallTime {
        self.core.nodes[self.slot].clock.wall(self.core.now)
    }
    /// This node's monotonic clock: drift applies, it never jumps back.
    pub fn mono_now(&self) -> MonoTime {
        self.core.nodes[self.slot].clock.mono(self.core.now)
    }
    /// Sends a message; the network may delay, drop, duplicate or reorder it.
    pub fn send(&mut self, to: NodeId, msg: N::Msg) {
        self.core.send(self.slot, to, msg);
    }
    /// Arms a timer that fires after `after` on this node's monotonic clock.
    pub fn set_timer(&mut self, after: Duration, tag: N::Timer) -> TimerId {
        self.core.set_timer(self.slot, after, tag)
    }
    /// Disarms a timer; cancelling one that already fired is harmless.
    pub fn cancel_timer(&mut self, id: TimerId) {
        self.core.cancel_timer(self.slot, id);
    }
    /// This node's random stream (derived from the run's seed).
    pub fn rng(&mut self) -> &mut Rng {
        &mut self.core.nodes[self.slot].rng
    }
    /// This node's disk: writes are durable only after `sync`.
    pub fn disk(&mut self) -> &mut Disk {
        &mut self.core.nodes[self.slot].disk
    }
    /// Reports a fact to the checkers; online invariants see it at once.
    pub fn observe(&mut self, obs: N::Obs) {
        self.core.observe(self.slot, obs);
    }

    /// Starts a client operation in the history. A process has at most one
    /// operation outstanding: invoking while one is open is a bug in the client.
    pub fn invoke(&mut self, f: &str, key: Option<&str>, value: Value) {
        self.core.record_invoke(self.slot, f, key, value);
    }
    /// The outstanding operation took effect; `value` is its output.
    pub fn ok(&mut self, value: Value) {
        self.core.record_completion(self.slot, crate::history::OpType::Ok, value);
    }
    /// The outstanding operation definitely did not take effect.
    pub fn fail(&mut self, value: Value) {
        self.core.record_completion(self.slot, crate::history::OpType::Fail, value);
    }
    /// The outcome is unknown (a timeout): it may take effect later or never.
    /// The client continues under a fresh process number.
    pub fn info(&mut self, value: Value) {
        self.core.record_completion(self.slot, crate::history::OpType::Info, value);
    }
    /// Whether this client has an operation outstanding.
    pub fn has_outstanding_op(&self) -> bool {
        self.core.nodes[self.slot].outstanding.is_some()
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
