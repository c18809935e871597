//! How a run ended.

use serde::Serialize;
use std::fmt;

use crate::check::Violation;
use crate::node::NodeId;
use crate::time::SimTime;

/// The outcome classes: safety (`violation`), progress (`liveness`), a
/// panic in a node or checker (`crash`), two traces for one seed
/// (`nondeterminism`), and a check that could not decide (`unknown`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "lowercase")]
pub enum Outcome {
    Pass,
    Violation(Violation),
    Liveness {
        reason: String,
    },
    Crash {
        node: Option<NodeId>,
        time: SimTime,
        event: u64,
        message: String,
    },
    Nondeterminism {
        event: u64,
        first: String,
        second: String,
    },
    /// No check failed, but one could not decide (the linearizability
    /// search spent its budget): not a pass.
    Unknown {
        reason: String,
    },
}

impl Outcome {
    /// The class name: `pass`, `violation`, `liveness`, `crash`, `nondeterminism`, `unknown`.
    pub fn class(&self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Violation(_) => "violation",
            Outcome::Liveness { .. } => "liveness",
            Outcome::Crash { .. } => "crash",
            Outcome::Nondeterminism { .. } => "nondeterminism",
            Outcome::Unknown { .. } => "unknown",
        }
    }
    pub fn is_pass(&self) -> bool {
        matches!(self, Outcome::Pass)
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Pass => f.write_str("pass"),
            Outcome::Violation(v) => {
                write!(f, "violation of \"{}\": {}", v.invariant, v.explanation)
            }
            Outcome::Liveness { reason } => write!(f, "liveness: {reason}"),
            Outcome::Crash { node, time, event, message } => {
                let who = node.map(|n| n.to_string()).unwrap_or_else(|| "a checker".into());
                write!(f, "crash: {who} panicked at {time} (event {event}): {message}")
            }
            Outcome::Nondeterminism { event, first, second } => {
                write!(f, "nondeterminism: event {event} differs: first run `{first}`, second run `{second}`")
            }
            Outcome::Unknown { reason } => write!(f, "unknown: {reason}"),
        }
    }
}
