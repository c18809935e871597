//! Judging runs. An [`Invariant`] sees every observation as it happens (so a
//! violation carries the exact virtual time and event) and may also judge the
//! whole run at the end, over the history and every observation.

pub mod counter;
pub mod lease;
pub mod linearizability;
pub mod models;
pub mod session;

use serde::Serialize;
use std::fmt;

pub use crate::trace::stable_hash;
pub use lease::ClockReadings;

use crate::history::{History, Op};
use crate::node::NodeId;
use crate::time::SimTime;

/// One observation as the world recorded it.
#[derive(Clone, Debug, Serialize)]
pub struct Observed<O> {
    pub time: SimTime,
    /// The index of the event during which it was observed.
    pub event: u64,
    pub node: NodeId,
    pub obs: O,
}

/// What an end-of-run check sees.
pub struct RunEnd<'a, O> {
    pub now: SimTime,
    pub history: &'a History,
    pub observations: &'a [Observed<O>],
    /// Each client history process's session (the client's first process):
    /// a client keeps its session across an indeterminate result.
    pub sessions: &'a std::collections::BTreeMap<u64, u64>,
}

/// A property every run must keep, named in plain English
/// ("at most one leader per term").
pub trait Invariant<O> {
    fn name(&self) -> &str;

    /// Called for every observation, in order. `Err` explains the violation.
    fn on_observation(&mut self, _observed: &Observed<O>) -> Result<(), String> {
        Ok(())
    }

    /// What the world calls: [`Invariant::on_observation`] with the
    /// nodes' clock readings at that instant, for checks that judge in
    /// true time what a node measured on its own clock.
    fn on_observation_at(&mut self, observed: &Observed<O>, _clocks: &dyn ClockReadings) -> Result<(), String> {
        self.on_observation(observed)
    }

    /// True when the run gave this check nothing to judge (no leader was
    /// ever elected, no lease was ever contested): its verdict is then
    /// `vacuous`, not `pass`. Asked after the check has seen the whole run.
    fn vacuous(&self) -> bool {
        false
    }

    /// True for checks that judge only at the end of a run (so a run that
    /// stopped early never ran them).
    fn judges_at_end(&self) -> bool {
        false
    }

    /// Called for every history event as it is recorded.
    fn on_op(&mut self, _time: SimTime, _op: &Op) -> Result<(), String> {
        Ok(())
    }

    /// Called once when the run ends.
    fn at_end(&mut self, _end: &RunEnd<'_, O>) -> Result<(), String> {
        Ok(())
    }
}

/// What one check said of one run.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CheckVerdict {
    /// It judged data and found nothing wrong.
    Pass,
    /// It found a violation.
    Violation,
    /// It ran, but the run gave it nothing to judge.
    Vacuous,
    /// It never ran: the run stopped before (an earlier violation, a crash).
    NotRun,
    /// It could not decide within its budget.
    Unknown,
}

impl CheckVerdict {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckVerdict::Pass => "pass",
            CheckVerdict::Violation => "violation",
            CheckVerdict::Vacuous => "vacuous",
            CheckVerdict::NotRun => "not-run",
            CheckVerdict::Unknown => "unknown",
        }
    }
}

impl fmt::Display for CheckVerdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A broken invariant, with where and when it broke.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Violation {
    pub invariant: String,
    pub explanation: String,
    /// Set for violations found online.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time: Option<SimTime>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<NodeId>,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.invariant, self.explanation)?;
        if let (Some(t), Some(e)) = (self.time, self.event) {
            write!(f, " (at {t}, event {e}")?;
            if let Some(n) = self.node {
                write!(f, ", on {n}")?;
            }
            f.write_str(")")?;
        }
        Ok(())
    }
}

/// An invariant over observations written as a closure:
/// `online("at most one leader per term", |obs| ...)`.
pub struct OnlineFn<O, F: FnMut(&Observed<O>) -> Result<(), String>> {
    name: String,
    f: F,
    _o: std::marker::PhantomData<fn(&O)>,
}

pub fn online<O, F: FnMut(&Observed<O>) -> Result<(), String>>(name: &str, f: F) -> OnlineFn<O, F> {
    OnlineFn { name: name.to_owned(), f, _o: std::marker::PhantomData }
}

impl<O, F: FnMut(&Observed<O>) -> Result<(), String>> Invariant<O> for OnlineFn<O, F> {
    fn name(&self) -> &str {
        &self.name
    }
    fn on_observation(&mut self, observed: &Observed<O>) -> Result<(), String> {
        (self.f)(observed)
    }
}

/// An end-of-run invariant written as a closure.
pub struct AtEndFn<O, F: FnMut(&RunEnd<'_, O>) -> Result<(), String>> {
    name: String,
    f: F,
    _o: std::marker::PhantomData<fn(&O)>,
}

pub fn at_end<O, F: FnMut(&RunEnd<'_, O>) -> Result<(), String>>(name: &str, f: F) -> AtEndFn<O, F> {
    AtEndFn { name: name.to_owned(), f, _o: std::marker::PhantomData }
}

impl<O, F: FnMut(&RunEnd<'_, O>) -> Result<(), String>> Invariant<O> for AtEndFn<O, F> {
    fn name(&self) -> &str {
        &self.name
    }
    fn judges_at_end(&self) -> bool {
        true
    }
    fn at_end(&mut self, end: &RunEnd<'_, O>) -> Result<(), String> {
        (self.f)(end)
    }
}
