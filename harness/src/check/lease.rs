//! "leases never overlap", judged in true time.
//!
//! A node that holds (or grants) a lease reports it as a [`LeaseClaim`]:
//! who holds what, for which epoch, and until when *on the node's own
//! clock* (monotonic or wall: the one the node actually measures it on).
//! The node cannot know true time; the world can. So the check asks the
//! world, at the instant of every new claim, what each earlier claimant's
//! clock reads now: a claim of another holder is still valid exactly when
//! its measuring node's clock has not yet reached its deadline. For a
//! deadline on the monotonic clock, which never goes back, validity is one
//! interval `[claimed_at, end)`, and two such intervals of different
//! holders overlap if and only if one is still valid when the other is
//! claimed: checking at claim instants is complete, and exact under any
//! later drift change. A deadline on the wall clock is not an interval: a
//! backward jump after the last claim can bring a lease back with no claim
//! to see it, so for wall-clock leases the check is sound (it never flags
//! a lease that was not valid) but not complete. Holders report when their
//! lease ends: stepping down, and every restart (a lease lives in memory).
//! A crashed holder reports nothing until it restarts, and a killed one
//! never does: its last claim stays on record. For a monotonic deadline
//! that is sound (the promises behind it still bind the voters); a
//! wall-clock deadline of a holder that is down can be revived by a clock
//! fault on it, and is then flagged though no live node holds it, which
//! only a wall-clock lease (a planted bug) can suffer.
//!
//! The same check serves leader leases (resource "leadership", epoch the
//! term) and lock leases (resource the lock, epoch the fencing token).

use std::collections::BTreeMap;
use std::fmt;

use super::{Invariant, Observed};
use crate::node::{NodeId, Observation};
use crate::time::{MonoTime, SimTime, WallTime};

/// What a lease's end is measured on: a reading of the measuring node's clock.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub enum LeaseDeadline {
    Mono(MonoTime),
    Wall(WallTime),
}

impl fmt::Display for LeaseDeadline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LeaseDeadline::Mono(m) => write!(f, "its monotonic clock reads {}", seconds(m.0 as i128)),
            LeaseDeadline::Wall(w) => write!(f, "its wall clock reads {}", seconds(w.0 as i128)),
        }
    }
}

/// A clock reading in seconds, to the nanosecond.
fn seconds(ns: i128) -> String {
    let sign = if ns < 0 { "-" } else { "" };
    let ns = ns.unsigned_abs();
    format!("{sign}{}.{:09}s", ns / 1_000_000_000, ns % 1_000_000_000)
}

/// "From now, `holder` holds `resource` (for `epoch`) until my clock reads
/// `until`", said by the node whose clock measures the lease.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LeaseClaim {
    pub resource: String,
    /// `None`: the node that reports the claim holds the lease itself.
    pub holder: Option<NodeId>,
    pub epoch: u64,
    pub until: LeaseDeadline,
}

/// A lease fact an observation may carry.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum LeaseEvent {
    Holds(LeaseClaim),
    /// The holder gave the lease up (stepped down, released the lock);
    /// `holder` as in [`LeaseClaim`].
    Ends {
        resource: String,
        holder: Option<NodeId>,
    },
}

/// What the world answers about clocks: each node's readings right now.
pub trait ClockReadings {
    fn mono(&self, node: NodeId) -> MonoTime;
    fn wall(&self, node: NodeId) -> WallTime;
    /// The true time at which `node`'s clock will reach `deadline` if it
    /// keeps its present rate and offset; `None` if unknown or too far.
    /// For a picture of the run, never for a check: a later drift change
    /// or clock jump moves it.
    fn projected(&self, _node: NodeId, _deadline: LeaseDeadline) -> Option<SimTime> {
        None
    }
}

pub const LEASES_NEVER_OVERLAP: &str = "leases of different holders never overlap";

struct Held {
    holder: NodeId,
    measured_by: NodeId,
    epoch: u64,
    until: LeaseDeadline,
    claimed_at: SimTime,
}

/// The invariant. `name` lets a system state it in its own words (for
/// example "at most one valid lease holder at any instant").
pub struct LeasesNeverOverlap {
    name: String,
    /// Per resource, the latest claim of each holder still possibly valid.
    held: BTreeMap<String, Vec<Held>>,
    /// Distinct holders seen, per resource: fewer than two judges nothing.
    holders: BTreeMap<String, Vec<NodeId>>,
}

impl LeasesNeverOverlap {
    pub fn new(name: &str) -> Self {
        LeasesNeverOverlap { name: name.to_owned(), held: BTreeMap::new(), holders: BTreeMap::new() }
    }

    fn valid_now(clocks: &dyn ClockReadings, node: NodeId, until: LeaseDeadline) -> bool {
        match until {
            LeaseDeadline::Mono(m) => clocks.mono(node) < m,
            LeaseDeadline::Wall(w) => clocks.wall(node) < w,
        }
    }

    fn claim(&mut self, at: SimTime, by: NodeId, claim: LeaseClaim, clocks: &dyn ClockReadings) -> Result<(), String> {
        let holder = claim.holder.unwrap_or(by);
        if !Self::valid_now(clocks, by, claim.until) {
            return Ok(()); // expired before it was claimed: never believed valid
        }
        let holders = self.holders.entry(claim.resource.clone()).or_default();
        if !holders.contains(&holder) {
            holders.push(holder);
        }
        let held = self.held.entry(claim.resource.clone()).or_default();
        // Expired claims can never become valid again on a monotonic clock.
        held.retain(|h| !matches!(h.until, LeaseDeadline::Mono(_)) || Self::valid_now(clocks, h.measured_by, h.until));
        if let Some(other) = held.iter().find(|h| h.holder != holder && Self::valid_now(clocks, h.measured_by, h.until))
        {
            let measured = if other.measured_by == other.holder {
                String::new()
            } else {
                format!(" measured by {}", other.measured_by)
            };
            let reads = match other.until {
                LeaseDeadline::Mono(_) => seconds(i128::from(clocks.mono(other.measured_by).0)),
                LeaseDeadline::Wall(_) => seconds(i128::from(clocks.wall(other.measured_by).0)),
            };
            return Err(format!(
                "{} was granted {:?} for epoch {} at {at}, while {}'s lease for epoch {} (claimed at {}, valid until {}{measured}; it reads {reads}) was still valid",
                holder, claim.resource, claim.epoch, other.holder, other.epoch, other.claimed_at, other.until
            ));
        }
        let entry = Held { holder, measured_by: by, epoch: claim.epoch, until: claim.until, claimed_at: at };
        match held.iter_mut().find(|h| h.holder == holder && h.measured_by == by) {
            Some(h) => *h = entry,
            None => held.push(entry),
        }
        Ok(())
    }
}

impl<O: Observation> Invariant<O> for LeasesNeverOverlap {
    fn name(&self) -> &str {
        &self.name
    }
    fn on_observation_at(&mut self, o: &Observed<O>, clocks: &dyn ClockReadings) -> Result<(), String> {
        match o.obs.lease() {
            Some(LeaseEvent::Holds(claim)) => self.claim(o.time, o.node, claim, clocks),
            Some(LeaseEvent::Ends { resource, holder }) => {
                let holder = holder.unwrap_or(o.node);
                if let Some(held) = self.held.get_mut(&resource) {
                    held.retain(|h| h.holder != holder);
                }
                Ok(())
            }
            None => Ok(()),
        }
    }
    fn vacuous(&self) -> bool {
        self.holders.values().all(|h| h.len() < 2)
    }
}

pub const LEASE_ENDS_BEFORE_A_LATER_LEADER: &str = "a lease ends before a later leader is elected";

/// "a lease ends before a later leader is elected": a leader's lease rests
/// on promises from a majority not to vote for anyone else until their own
/// clocks say so, and a later leader needs votes from a majority, so one of
/// its voters made such a promise. Its election while the lease is still
/// valid (in true time: the holder's clock has not reached the deadline)
/// proves a promise ran out before the lease it granted, whether or not a
/// read was served in the gap or the new leader ever claimed a lease of its
/// own (which [`LeasesNeverOverlap`] would need). Judged at each election
/// of an epoch above a recorded lease's; `elected` gives the epoch of an
/// observation that reports the reporting node's election.
pub struct LeaseEndsBeforeALaterLeader<F> {
    resource: String,
    /// Each holder's latest lease: (epoch, deadline).
    leases: BTreeMap<NodeId, (u64, LeaseDeadline)>,
    elected: F,
    /// Elections judged against another holder's lease.
    judged: u64,
}

impl<F> LeaseEndsBeforeALaterLeader<F> {
    pub fn new(resource: &str, elected: F) -> Self {
        LeaseEndsBeforeALaterLeader { resource: resource.to_owned(), leases: BTreeMap::new(), elected, judged: 0 }
    }
}

impl<O: Observation, F: Fn(&O) -> Option<u64>> Invariant<O> for LeaseEndsBeforeALaterLeader<F> {
    fn name(&self) -> &str {
        LEASE_ENDS_BEFORE_A_LATER_LEADER
    }
    fn on_observation_at(&mut self, o: &Observed<O>, clocks: &dyn ClockReadings) -> Result<(), String> {
        match o.obs.lease() {
            Some(LeaseEvent::Holds(claim)) if claim.resource == self.resource && claim.holder.is_none() => {
                self.leases.insert(o.node, (claim.epoch, claim.until));
            }
            Some(LeaseEvent::Ends { resource, holder: None }) if resource == self.resource => {
                self.leases.remove(&o.node);
            }
            _ => {}
        }
        let Some(epoch) = (self.elected)(&o.obs) else { return Ok(()) };
        // Every earlier lease on record is judged (at most one per holder:
        // each claim replaces the last, and an end removes it).
        let mut earlier = self.leases.iter().filter(|&(&holder, &(e, _))| holder != o.node && e < epoch).peekable();
        if earlier.peek().is_some() {
            self.judged += 1;
        }
        let mut valid = earlier.filter(|&(&holder, &(_, until))| LeasesNeverOverlap::valid_now(clocks, holder, until));
        if let Some((holder, (e, until))) = valid.next() {
            let reads = match until {
                LeaseDeadline::Mono(_) => seconds(i128::from(clocks.mono(*holder).0)),
                LeaseDeadline::Wall(_) => seconds(i128::from(clocks.wall(*holder).0)),
            };
            return Err(format!(
                "{} was elected for epoch {epoch} at {}, while {holder}'s lease for epoch {e} was valid until {until} \
                 (it reads {reads}): a promise that granted the lease ran out first",
                o.node, o.time
            ));
        }
        Ok(())
    }
    fn vacuous(&self) -> bool {
        self.judged == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::Observation;
    use serde::Serialize;

    /// Each node's clock reading at the instant of a claim.
    struct Fixed(Vec<(NodeId, u64)>);
    impl ClockReadings for Fixed {
        fn mono(&self, node: NodeId) -> MonoTime {
            MonoTime(self.0.iter().find(|(n, _)| *n == node).map_or(0, |(_, m)| *m))
        }
        fn wall(&self, node: NodeId) -> WallTime {
            WallTime(self.mono(node).0 as i64)
        }
    }

    fn claim(
        check: &mut LeasesNeverOverlap,
        t: u64,
        node: u32,
        epoch: u64,
        until: u64,
        clocks: &Fixed,
    ) -> Result<(), String> {
        let claim = LeaseClaim {
            resource: "leadership".into(),
            holder: None,
            epoch,
            until: LeaseDeadline::Mono(MonoTime(until)),
        };
        check.claim(SimTime(t), NodeId::server(node), claim, clocks)
    }

    #[test]
    fn a_slow_clock_keeps_an_old_lease_valid_past_a_new_grant() {
        // n1 claimed until its mono clock reads 100. At true time 120 its slow
        // clock reads only 95: the lease is still valid when n2 is granted one.
        let mut check = LeasesNeverOverlap::new(LEASES_NEVER_OVERLAP);
        let (n1, n2) = (NodeId::server(0), NodeId::server(1));
        claim(&mut check, 10, 0, 1, 100, &Fixed(vec![(n1, 10), (n2, 10)])).unwrap();
        let err = claim(&mut check, 120, 1, 2, 300, &Fixed(vec![(n1, 95), (n2, 125)])).unwrap_err();
        assert!(err.contains("n2 was granted") && err.contains("n1's lease for epoch 1"), "{err}");
        // Had n1's clock passed 100, the grant would be fine.
        let mut check = LeasesNeverOverlap::new(LEASES_NEVER_OVERLAP);
        claim(&mut check, 10, 0, 1, 100, &Fixed(vec![(n1, 10), (n2, 10)])).unwrap();
        assert!(claim(&mut check, 120, 1, 2, 300, &Fixed(vec![(n1, 101), (n2, 125)])).is_ok());
        assert!(!Invariant::<End>::vacuous(&check), "two holders were compared");
    }

    #[test]
    fn an_old_holder_extending_while_a_new_lease_is_valid_is_caught_and_ending_clears() {
        let (n1, n2) = (NodeId::server(0), NodeId::server(1));
        let mut check = LeasesNeverOverlap::new(LEASES_NEVER_OVERLAP);
        claim(&mut check, 10, 1, 2, 500, &Fixed(vec![(n1, 10), (n2, 10)])).unwrap();
        assert!(claim(&mut check, 20, 0, 1, 600, &Fixed(vec![(n1, 20), (n2, 20)])).is_err());
        // Once n2 ends its lease, n1 may hold one.
        let ends = Observed { time: SimTime(30), event: 3, node: n2, obs: End };
        check.on_observation_at(&ends, &Fixed(vec![])).unwrap();
        assert!(claim(&mut check, 40, 0, 3, 600, &Fixed(vec![(n1, 40), (n2, 40)])).is_ok());
    }

    #[derive(Clone, Debug, Hash, Serialize)]
    struct End;
    impl Observation for End {
        fn lease(&self) -> Option<LeaseEvent> {
            Some(LeaseEvent::Ends { resource: "leadership".into(), holder: None })
        }
    }

    #[test]
    fn one_holder_alone_is_vacuous() {
        let n1 = NodeId::server(0);
        let mut check = LeasesNeverOverlap::new(LEASES_NEVER_OVERLAP);
        claim(&mut check, 10, 0, 1, 100, &Fixed(vec![(n1, 10)])).unwrap();
        claim(&mut check, 50, 0, 1, 150, &Fixed(vec![(n1, 50)])).unwrap();
        assert!(Invariant::<End>::vacuous(&check));
    }

    /// Elected for epoch 2, or a lease claim for epoch 1 until 100.
    #[derive(Clone, Debug, Hash, Serialize)]
    enum Lead {
        Elected,
        Holds,
    }
    impl Observation for Lead {
        fn lease(&self) -> Option<LeaseEvent> {
            match self {
                Lead::Holds => Some(LeaseEvent::Holds(LeaseClaim {
                    resource: "leadership".into(),
                    holder: None,
                    epoch: 1,
                    until: LeaseDeadline::Mono(MonoTime(100)),
                })),
                Lead::Elected => None,
            }
        }
    }

    #[test]
    fn a_leader_elected_while_an_earlier_lease_is_valid_is_caught() {
        let (n1, n2) = (NodeId::server(0), NodeId::server(1));
        let elected = |o: &Lead| matches!(o, Lead::Elected).then_some(2);
        let at = |t, node, obs| Observed { time: SimTime(t), event: t, node, obs };
        let mut check = LeaseEndsBeforeALaterLeader::new("leadership", elected);
        check.on_observation_at(&at(10, n1, Lead::Holds), &Fixed(vec![(n1, 10)])).unwrap();
        assert!(Invariant::<Lead>::vacuous(&check));
        // True time 120, but n1's slow clock reads 95: its lease is valid.
        let e = check.on_observation_at(&at(120, n2, Lead::Elected), &Fixed(vec![(n1, 95)])).unwrap_err();
        assert!(e.contains("n2 was elected for epoch 2") && e.contains("n1's lease for epoch 1"), "{e}");
        assert!(e.contains("(it reads 0.000000095s)"), "{e}");
        // Had its clock reached 100, the election would be fine.
        let mut check = LeaseEndsBeforeALaterLeader::new("leadership", elected);
        check.on_observation_at(&at(10, n1, Lead::Holds), &Fixed(vec![(n1, 10)])).unwrap();
        assert!(check.on_observation_at(&at(120, n2, Lead::Elected), &Fixed(vec![(n1, 100)])).is_ok());
        assert!(!Invariant::<Lead>::vacuous(&check), "judged against a lease that had run out");
    }
}
