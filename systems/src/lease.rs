//! A leader lease measured on the node's own clock, as the Raft log keeps
//! it (for its lease reads, and for `election`, which runs on it). A lease runs from when a heartbeat
//! round that a majority acknowledged was *sent*, for the minimum
//! election timeout shortened by a margin for clock drift: with every
//! clock within `max_drift` of true speed, it ends before any promise that
//! granted it (a follower's promise not to vote for an election timeout of
//! its own clock after acknowledging the round).

use std::time::Duration;

use harness::check::lease::LeaseDeadline;
use harness::node::{Ctx, Node};

/// How a lease is measured: the correct way, or a planted mistake.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum LeaseClock {
    /// The monotonic clock, shortened by the drift margin: safe.
    MonoWithMargin,
    /// Planted bug: the monotonic clock for the full election timeout.
    MonoNoMargin,
    /// Planted bug: the wall clock (with the margin): a backward jump stretches it.
    WallWithMargin,
}

/// A lease's rules and its current end.
#[derive(Clone, Debug)]
pub struct Lease {
    clock: LeaseClock,
    length: Duration,
    until: Option<LeaseDeadline>,
}

impl Lease {
    /// A lease for `election_timeout` promises, surviving `max_drift_ppm`.
    pub fn new(clock: LeaseClock, election_timeout: Duration, max_drift_ppm: f64) -> Self {
        let margin = match clock {
            LeaseClock::MonoNoMargin => 1.0,
            LeaseClock::MonoWithMargin | LeaseClock::WallWithMargin => (1.0 - 3.0 * max_drift_ppm / 1e6).max(0.0),
        };
        Lease { clock, length: election_timeout.mul_f64(margin), until: None }
    }

    /// Now, on the clock the lease is measured on.
    pub fn now<N: Node + ?Sized>(&self, ctx: &Ctx<'_, N>) -> LeaseDeadline {
        match self.clock {
            LeaseClock::WallWithMargin => LeaseDeadline::Wall(ctx.wall_now()),
            LeaseClock::MonoWithMargin | LeaseClock::MonoNoMargin => LeaseDeadline::Mono(ctx.mono_now()),
        }
    }

    /// A majority acknowledged a round sent at `sent`: the lease runs to
    /// `sent` plus its length, if that is later than it ran. Returns the
    /// new end when it moved.
    pub fn extend(&mut self, sent: LeaseDeadline) -> Option<LeaseDeadline> {
        let until = match sent {
            LeaseDeadline::Mono(m) => LeaseDeadline::Mono(m.saturating_add(self.length)),
            LeaseDeadline::Wall(w) => LeaseDeadline::Wall(w.saturating_add(self.length)),
        };
        let later = match (self.until, until) {
            (Some(LeaseDeadline::Mono(a)), LeaseDeadline::Mono(b)) => b > a,
            (Some(LeaseDeadline::Wall(a)), LeaseDeadline::Wall(b)) => b > a,
            _ => true,
        };
        if later {
            self.until = Some(until);
        }
        later.then_some(until)
    }

    /// Whether the lease is valid now, by the node's own clock.
    pub fn is_valid<N: Node + ?Sized>(&self, ctx: &Ctx<'_, N>) -> bool {
        match (self.until, self.now(ctx)) {
            (Some(LeaseDeadline::Mono(until)), LeaseDeadline::Mono(now)) => now < until,
            (Some(LeaseDeadline::Wall(until)), LeaseDeadline::Wall(now)) => now < until,
            _ => false,
        }
    }

    /// Gives the lease up (stepping down, a new term).
    pub fn clear(&mut self) {
        self.until = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use harness::time::MonoTime;

    #[test]
    fn the_margin_is_three_times_the_drift_and_only_extensions_move_it() {
        let t = Duration::from_millis(1000);
        let mut lease = Lease::new(LeaseClock::MonoWithMargin, t, 50_000.0);
        assert_eq!(lease.extend(LeaseDeadline::Mono(MonoTime(0))), Some(LeaseDeadline::Mono(MonoTime(850_000_000))));
        assert_eq!(lease.extend(LeaseDeadline::Mono(MonoTime(0))), None, "not later");
        let mut bug = Lease::new(LeaseClock::MonoNoMargin, t, 50_000.0);
        assert_eq!(bug.extend(LeaseDeadline::Mono(MonoTime(0))), Some(LeaseDeadline::Mono(MonoTime(1_000_000_000))));
    }
}
