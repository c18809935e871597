//! The fault menu: what can be done to the world, and to whom.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

use crate::net::LinkConfig;
use crate::node::NodeId;
use crate::time::format_nanos;

/// Whom a fault hits, resolved at the moment the fault is applied.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Target {
    Node(NodeId),
    Nodes(Vec<NodeId>),
    /// One server chosen at random (the fault stream decides).
    Random,
    /// The server that most recently reported itself leader and has not
    /// stepped down or crashed since; a random server if none is known.
    Leader,
    /// A random minority of the servers (at least one).
    Minority,
    /// A random majority of the servers.
    Majority,
    /// Every server at once (a power failure, a host freeze, a cluster-wide
    /// clock step).
    All,
}

/// The shape of a partition. Blocked pairs are directed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Shape {
    /// The target nodes are cut from every other node, clients included.
    Isolate(Target),
    /// The target servers are cut from the other servers only: clients
    /// still reach them (a leader cut off from its peers, not its users).
    IsolateFromPeers(Target),
    /// The servers split at random into two halves that cannot talk.
    Halves,
    /// Servers on a random ring each see only their nearest majority: every
    /// server sees a majority, no two see the same one.
    MajorityRing,
    /// Two halves joined by one server that sees both.
    Bridge,
    /// The target cannot send to the other servers, but still hears them.
    OneWay(Target),
    /// Nodes in different groups cannot talk; unnamed nodes are unaffected.
    Groups(Vec<Vec<NodeId>>),
}

/// A change to the world at one instant.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Fault {
    Partition(Shape),
    /// Heals every partition.
    HealPartitions,
    /// A crash: the node stops, its timers and unsynced writes are lost.
    Crash(Target),
    /// Restarts crashed target nodes from their durable disks.
    Restart(Target),
    /// A crash with no restart, not even at heal.
    Kill(Target),
    /// A crash in the middle of the target's next handler: the world
    /// applies the first `effects` of what the handler did (sends, disk
    /// writes and syncs, timers, observations; a number drawn from the run's
    /// seed when `None`) and drops the rest, so a reply sent before the sync
    /// that should have preceded it reaches its client while the sync never
    /// happens. Undone (a restart) `for` after the crash itself.
    CrashInHandler {
        target: Target,
        effects: Option<u32>,
    },
    /// The node processes nothing: its messages wait, its timers fire late,
    /// its clocks keep running (a GC pause or SIGSTOP).
    Pause(Target),
    Resume(Target),
    /// Jumps the wall clock by a signed amount.
    ClockBump {
        target: Target,
        delta_ns: i64,
    },
    /// Oscillates the wall clock by `delta_ns` every `period` for `duration`.
    ClockStrobe {
        target: Target,
        delta_ns: i64,
        period: Duration,
        duration: Duration,
    },
    /// Steps the wall clock back to true time.
    ClockReset(Target),
    /// Sets the drift of the monotonic (and so the wall) clock.
    ClockDrift {
        target: Target,
        ppm: f64,
    },
    /// Replaces the configuration of every link (a loss or latency storm).
    Network(LinkConfig),
}

impl Fault {
    /// The fault's kind in scenario-file spelling.
    pub fn kind(&self) -> &'static str {
        match self {
            Fault::Partition(_) => "partition",
            Fault::HealPartitions => "heal",
            Fault::Crash(_) => "crash",
            Fault::Restart(_) => "restart",
            Fault::Kill(_) => "kill",
            Fault::CrashInHandler { .. } => "crash-in-handler",
            Fault::Pause(_) => "pause",
            Fault::Resume(_) => "resume",
            Fault::ClockBump { .. } => "clock-bump",
            Fault::ClockStrobe { .. } => "clock-strobe",
            Fault::ClockReset(_) => "clock-reset",
            Fault::ClockDrift { .. } => "clock-drift",
            Fault::Network(_) => "network",
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Node(n) => write!(f, "{n}"),
            Target::Nodes(ns) => write!(f, "{}", join(ns)),
            Target::Random => f.write_str("random"),
            Target::Leader => f.write_str("leader"),
            Target::Minority => f.write_str("minority"),
            Target::Majority => f.write_str("majority"),
            Target::All => f.write_str("all"),
        }
    }
}

/// In a scenario file's own words (`isolate leader`, `groups [n1] [n2,n3]`).
impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Shape::Isolate(t) => write!(f, "isolate {t}"),
            Shape::IsolateFromPeers(t) => write!(f, "isolate-from-peers {t}"),
            Shape::Halves => f.write_str("halves"),
            Shape::MajorityRing => f.write_str("majority-ring"),
            Shape::Bridge => f.write_str("bridge"),
            Shape::OneWay(t) => write!(f, "one-way {t}"),
            Shape::Groups(groups) => {
                let shown: Vec<String> = groups.iter().map(|g| format!("[{}]", join(g))).collect();
                write!(f, "groups {}", shown.join(" "))
            }
        }
    }
}

pub(crate) fn join(ns: &[NodeId]) -> String {
    ns.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(",")
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::ClockBump { target, delta_ns } => {
                write!(f, "clock-bump {target} by {}", format_nanos(i128::from(*delta_ns)))
            }
            Fault::ClockStrobe { target, delta_ns, period, duration } => write!(
                f,
                "clock-strobe {target} by {} every {period:?} for {duration:?}",
                format_nanos(i128::from(*delta_ns)),
            ),
            Fault::ClockDrift { target, ppm } => write!(f, "clock-drift {target} to {ppm} ppm"),
            Fault::CrashInHandler { target, effects: Some(k) } => {
                write!(f, "crash-in-handler {target} after {k} effects")
            }
            Fault::CrashInHandler { target, effects: None } => write!(f, "crash-in-handler {target}"),
            Fault::Partition(shape) => write!(f, "partition {shape}"),
            Fault::Network(cfg) => write!(f, "network {cfg}"),
            Fault::HealPartitions => f.write_str("heal partitions"),
            Fault::Crash(t)
            | Fault::Restart(t)
            | Fault::Kill(t)
            | Fault::Pause(t)
            | Fault::Resume(t)
            | Fault::ClockReset(t) => {
                write!(f, "{} {t}", self.kind())
            }
        }
    }
}
