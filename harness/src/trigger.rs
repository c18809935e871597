//! Reactive faults: a fault that fires on something a node reports about
//! itself instead of at a time ("when a node becomes leader, crash it with
//! probability 0.3 after 0-5 ms, for 1 ms-1 s"). Timed faults rarely land
//! in the few milliseconds after an election or a vote where many protocol
//! bugs live; a trigger aims there.
//!
//! A node names the events it can trigger on with
//! [`crate::node::Observation::trigger`]; the world draws each firing's
//! chance, delay and length from the seed's trigger stream, so a run with
//! triggers replays exactly, and adding one perturbs no other fault's draws.

use std::fmt;
use std::time::Duration;

use crate::fault::{Fault, Shape, Target};
use crate::node::NodeId;
use crate::rng::Rng;
use crate::time::nanos;

/// What a trigger does to its target.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum TriggerAction {
    Crash,
    CrashInHandler,
    Pause,
    /// Isolates the target from every other node.
    Partition,
}

impl TriggerAction {
    pub const NAMES: &'static [&'static str] = &["crash", "crash-in-handler", "pause", "partition"];

    pub fn parse(name: &str) -> Option<TriggerAction> {
        Some(match name {
            "crash" => TriggerAction::Crash,
            "crash-in-handler" => TriggerAction::CrashInHandler,
            "pause" => TriggerAction::Pause,
            "partition" => TriggerAction::Partition,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            TriggerAction::Crash => "crash",
            TriggerAction::CrashInHandler => "crash-in-handler",
            TriggerAction::Pause => "pause",
            TriggerAction::Partition => "partition",
        }
    }
}

/// An inclusive range of durations; equal ends for a fixed one.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct DurationRange {
    pub min: Duration,
    pub max: Duration,
}

impl DurationRange {
    pub fn exactly(d: Duration) -> Self {
        DurationRange { min: d, max: d }
    }

    /// Log-uniform when the range starts above zero (1-10 ms as likely as
    /// 100 ms-1 s), else uniform.
    fn draw(&self, rng: &mut Rng) -> Duration {
        let (lo, hi) = (nanos(self.min), nanos(self.max));
        debug_assert!(lo <= hi, "range {self:?} is backwards");
        Duration::from_nanos(if lo > 0 { rng.log_uniform(lo, hi) } else { rng.between(lo, hi) })
    }
}

/// One reactive fault.
#[derive(Clone, Debug, PartialEq)]
pub struct Trigger {
    /// The event name a node reports (for example `leader`).
    pub on: String,
    /// The chance that one report fires it.
    pub probability: f64,
    /// How long after the report the fault strikes.
    pub after: DurationRange,
    pub action: TriggerAction,
    /// Whom it hits; `None` is the node that reported the event.
    pub target: Option<Target>,
    /// How long until it is undone (restart, resume, heal); `None` for
    /// the rest of the fault phase.
    pub duration: Option<DurationRange>,
    /// The most times it fires in one run.
    pub limit: u32,
}

/// A trigger that fired: the fault, when it strikes and for how long.
pub struct Firing {
    pub delay: Duration,
    pub fault: Fault,
    pub duration: Option<Duration>,
}

impl Trigger {
    /// Whether a report of `event` by `node` fires this trigger now, and
    /// if so what it does. Draws only for a matching event under the limit.
    /// Unless `clients_crash`, a trigger only pauses a client.
    pub fn fire(&self, event: &str, node: NodeId, fired: u32, clients_crash: bool, rng: &mut Rng) -> Option<Firing> {
        if event != self.on || fired >= self.limit || !rng.chance(self.probability) {
            return None;
        }
        if self.target.is_none() && node.is_client() && self.action != TriggerAction::Pause && !clients_crash {
            return None; // clients never crash or get cut off: they drive the test
        }
        let target = self.target.clone().unwrap_or(Target::Node(node));
        let fault = match self.action {
            TriggerAction::Crash => Fault::Crash(target),
            TriggerAction::CrashInHandler => Fault::CrashInHandler { target, effects: None },
            TriggerAction::Pause => Fault::Pause(target),
            TriggerAction::Partition => Fault::Partition(Shape::Isolate(target)),
        };
        let delay = self.after.draw(rng);
        let duration = self.duration.map(|d| d.draw(rng));
        Some(Firing { delay, fault, duration })
    }
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let whom = self.target.as_ref().map_or("it".to_owned(), |t| t.to_string());
        write!(f, "on {}: {} {} with probability {}", self.on, self.action.name(), whom, self.probability)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Stream;

    #[test]
    fn fires_only_on_its_event_under_its_limit_and_hits_the_reporter() {
        let ms = Duration::from_millis;
        let t = Trigger {
            on: "leader".into(),
            probability: 1.0,
            after: DurationRange { min: ms(0), max: ms(5) },
            action: TriggerAction::Crash,
            target: None,
            duration: Some(DurationRange { min: ms(1), max: ms(1000) }),
            limit: 2,
        };
        let mut rng = Rng::new(1, Stream::Custom(9));
        let n2 = NodeId::server(2);
        assert!(t.fire("voted", n2, 0, false, &mut rng).is_none());
        assert!(t.fire("leader", n2, 2, false, &mut rng).is_none(), "over its limit");
        let f = t.fire("leader", n2, 1, false, &mut rng).expect("fires");
        assert_eq!(f.fault, Fault::Crash(Target::Node(n2)));
        assert!(f.delay <= ms(5));
        let d = f.duration.expect("undone");
        assert!(d >= ms(1) && d <= ms(1000));
        let never = Trigger { probability: 0.0, ..t };
        assert!((0..100).all(|_| never.fire("leader", n2, 0, false, &mut rng).is_none()));
    }
}
