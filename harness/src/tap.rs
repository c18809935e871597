//! The tap: what a run records (observations and client history, with
//! Jepsen's processes and sessions) and the invariants that judge each
//! record as it comes, whichever world runs the nodes. The built-in world
//! owns one; a driver that runs the same nodes elsewhere (turmoil, real
//! sockets) owns another, so the same checks judge every world alike.

use std::collections::BTreeMap;

use crate::check::lease::{LeaseDeadline, LeaseEvent};
use crate::check::{CheckVerdict, ClockReadings, Invariant, Observed, RunEnd, Violation};
use crate::history::{History, Op, OpType, Value};
use crate::node::{Leadership, NodeId, Observation};
use crate::outcome::Outcome;
use crate::time::SimTime;

/// A client's place in the history.
#[derive(Default)]
struct Client {
    /// The history process it currently acts as.
    process: Option<u64>,
    /// The open operation: (process, f, key).
    outstanding: Option<(u64, String, Option<String>)>,
}

pub struct Tap<O> {
    observations: Vec<Observed<O>>,
    history: History,
    invariants: Vec<Box<dyn Invariant<O>>>,
    clients: BTreeMap<NodeId, Client>,
    next_process: u64,
    /// Each history process's session: the first process of its client.
    sessions: BTreeMap<u64, u64>,
    first_process: BTreeMap<NodeId, u64>,
    /// How many invariants [`Tap::finish`] has run the end-of-run check of.
    finished: usize,
    leader: Option<NodeId>,
    /// Every node's spells as leader, as it reported them.
    reigns: Vec<Reign>,
    /// Every lease the nodes reported, as the world projects it.
    leases: Vec<LeaseSpell>,
    /// The latest spell of each (holder, resource, measuring node).
    latest_lease: BTreeMap<(NodeId, String, NodeId), usize>,
}

/// A node's spell as leader, from its own observations: from when it
/// reported itself elected until it reported stepping down or crashed
/// (`None`: still leading at the end). What the node claimed, for a
/// picture of the run; the checks judge leadership themselves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reign {
    pub node: NodeId,
    pub from: SimTime,
    pub to: Option<SimTime>,
}

/// A lease as the nodes reported it, for a picture of the run: held by
/// `holder` from its claim until the true time at which the measuring
/// node's clock reaches the deadline (projected at the clock's rate and
/// offset, and projected again whenever a fault changes that clock), or
/// until the holder reported giving it up. A renewal for the same epoch
/// before the end extends the spell.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseSpell {
    pub holder: NodeId,
    /// The node whose clock measures the lease (the holder itself, or the
    /// node that granted it).
    pub measured_by: NodeId,
    pub resource: String,
    pub epoch: u64,
    pub deadline: LeaseDeadline,
    pub from: SimTime,
    /// `None`: the deadline is too far ahead to project (the end of the run).
    pub until: Option<SimTime>,
    /// When the holder reported giving it up, if before `until`.
    pub given_up: Option<SimTime>,
}

impl LeaseSpell {
    /// Where the spell ends: given up, expired, or `None` at the end of the run.
    pub fn end(&self) -> Option<SimTime> {
        self.given_up.or(self.until)
    }

    fn running(&self, now: SimTime) -> bool {
        self.given_up.is_none() && self.until.is_none_or(|u| u > now)
    }
}

impl<O> Default for Tap<O> {
    fn default() -> Self {
        Tap {
            observations: Vec::new(),
            history: History::new(),
            invariants: Vec::new(),
            clients: BTreeMap::new(),
            next_process: 0,
            sessions: BTreeMap::new(),
            first_process: BTreeMap::new(),
            finished: 0,
            leader: None,
            reigns: Vec::new(),
            leases: Vec::new(),
            latest_lease: BTreeMap::new(),
        }
    }
}

impl<O: Observation> Tap<O> {
    /// Adds an invariant; it sees every later observation and history event.
    pub fn add_invariant(&mut self, inv: Box<dyn Invariant<O>>) {
        self.invariants.push(inv);
    }

    pub fn observations(&self) -> &[Observed<O>] {
        &self.observations
    }
    pub fn history(&self) -> &History {
        &self.history
    }
    /// The server that last reported itself leader and has not stepped
    /// down or crashed since.
    pub fn leader(&self) -> Option<NodeId> {
        self.leader
    }
    pub fn reigns(&self) -> &[Reign] {
        &self.reigns
    }
    pub fn leases(&self) -> &[LeaseSpell] {
        &self.leases
    }
    pub fn sessions(&self) -> &BTreeMap<u64, u64> {
        &self.sessions
    }
    /// How many records (history events and observations) the run holds.
    pub fn records(&self) -> usize {
        self.history.ops.len() + self.observations.len()
    }
    /// Whether this client has an operation open.
    pub fn outstanding(&self, node: NodeId) -> bool {
        self.clients.get(&node).is_some_and(|c| c.outstanding.is_some())
    }

    /// Records `node`'s observation at true time `now` (during event
    /// `event`) and shows it to every invariant, with the nodes' clocks as
    /// they read now. `Err`: the first invariant it breaks.
    pub fn observe(
        &mut self,
        now: SimTime,
        event: u64,
        node: NodeId,
        obs: O,
        clocks: &dyn ClockReadings,
    ) -> Result<(), Violation> {
        match obs.leadership() {
            Some(Leadership::Elected) => {
                self.leader = Some(node);
                self.end_reign(node, now);
                self.reigns.push(Reign { node, from: now, to: None });
            }
            Some(Leadership::SteppedDown) => {
                if self.leader == Some(node) {
                    self.leader = None;
                }
                self.end_reign(node, now);
            }
            None => {}
        }
        if let Some(lease) = obs.lease() {
            self.note_lease(now, node, lease, clocks);
        }
        self.observations.push(Observed { time: now, event, node, obs });
        let observed = self.observations.last().expect("just pushed");
        let mut broken = None;
        for inv in &mut self.invariants {
            if let Err(explanation) = inv.on_observation_at(observed, clocks) {
                broken.get_or_insert((inv.name().to_owned(), explanation));
            }
        }
        match broken {
            None => Ok(()),
            Some((invariant, explanation)) => {
                Err(Violation { invariant, explanation, time: Some(now), event: Some(event), node: Some(node) })
            }
        }
    }

    /// The client `node` invokes an operation.
    pub fn invoke(
        &mut self,
        now: SimTime,
        event: u64,
        node: NodeId,
        f: &str,
        key: Option<&str>,
        value: Value,
    ) -> Result<(), Violation> {
        let client = self.clients.entry(node).or_default();
        assert!(client.outstanding.is_none(), "{node} invoked `{f}` while an operation is outstanding");
        let process = *client.process.get_or_insert_with(|| {
            self.next_process += 1;
            self.next_process - 1
        });
        client.outstanding = Some((process, f.to_owned(), key.map(str::to_owned)));
        // A client's session is its first process: it outlives an `info`.
        let first = *self.first_process.entry(node).or_insert(process);
        self.sessions.insert(process, first);
        let op = Op {
            process,
            kind: OpType::Invoke,
            f: f.to_owned(),
            key: key.map(str::to_owned),
            value,
            time: Some(now.0),
        };
        self.record_op(now, event, node, op)
    }

    /// The client `node`'s open operation completes.
    pub fn complete(
        &mut self,
        now: SimTime,
        event: u64,
        node: NodeId,
        kind: OpType,
        value: Value,
    ) -> Result<(), Violation> {
        let client = self.clients.entry(node).or_default();
        let Some((process, f, key)) = client.outstanding.take() else {
            panic!("{node} completed an operation ({kind}) without invoking one");
        };
        if kind == OpType::Info {
            // Jepsen's rule: after an indeterminate result the client carries
            // on as a new process, so the open operation stays open.
            client.process = None;
        }
        let op = Op { process, kind, f, key, value, time: Some(now.0) };
        self.record_op(now, event, node, op)
    }

    fn record_op(&mut self, now: SimTime, event: u64, node: NodeId, op: Op) -> Result<(), Violation> {
        let mut broken = None;
        for inv in &mut self.invariants {
            if let Err(explanation) = inv.on_op(now, &op) {
                broken.get_or_insert((inv.name().to_owned(), explanation));
            }
        }
        self.history.push(op);
        match broken {
            None => Ok(()),
            Some((invariant, explanation)) => {
                Err(Violation { invariant, explanation, time: Some(now), event: Some(event), node: Some(node) })
            }
        }
    }

    /// `node` went down: its memory is gone (a client's open operation
    /// stays open in the history, and it comes back as a new process), and
    /// it leads no more.
    pub fn crashed(&mut self, node: NodeId, now: SimTime) {
        self.clients.remove(&node);
        if self.leader == Some(node) {
            self.leader = None;
        }
        self.end_reign(node, now);
    }

    /// Keeps the picture of leases: a claim starts a spell or extends the
    /// running one of its holder, resource and measuring node for the same
    /// epoch; giving up ends the holder's running spells.
    fn note_lease(&mut self, now: SimTime, by: NodeId, lease: LeaseEvent, clocks: &dyn ClockReadings) {
        match lease {
            LeaseEvent::Holds(claim) => {
                let holder = claim.holder.unwrap_or(by);
                let until = clocks.projected(by, claim.until);
                if until.is_some_and(|u| u <= now) {
                    return; // expired before it was claimed
                }
                let key = (holder, claim.resource.clone(), by);
                if let Some(&i) = self.latest_lease.get(&key) {
                    let s = &mut self.leases[i];
                    if s.running(now) {
                        if s.epoch == claim.epoch {
                            (s.until, s.deadline) = (until, claim.until); // a renewal
                            return;
                        }
                        s.given_up = Some(now);
                    }
                }
                self.latest_lease.insert(key, self.leases.len());
                self.leases.push(LeaseSpell {
                    holder,
                    measured_by: by,
                    resource: claim.resource,
                    epoch: claim.epoch,
                    deadline: claim.until,
                    from: now,
                    until,
                    given_up: None,
                });
            }
            LeaseEvent::Ends { resource, holder } => {
                let holder = holder.unwrap_or(by);
                let ends = self.latest_lease.range((holder, resource.clone(), NodeId::server(0))..);
                for (_, &i) in ends.take_while(|((h, r, _), _)| *h == holder && *r == resource) {
                    if self.leases[i].running(now) {
                        self.leases[i].given_up = Some(now);
                    }
                }
            }
        }
    }

    /// A clock changed (a bump, reset, strobe or drift): each running lease
    /// ends where its measuring clock now reaches the deadline, and a
    /// wall-clock lease that had run out may run again after a backward jump.
    pub fn clocks_changed(&mut self, now: SimTime, clocks: &dyn ClockReadings) {
        let mut revived = Vec::new();
        for &i in self.latest_lease.values() {
            let s = &mut self.leases[i];
            if s.given_up.is_some() {
                continue;
            }
            let until = clocks.projected(s.measured_by, s.deadline);
            if s.running(now) {
                s.until = until.map(|u| u.max(now));
            } else if until.is_none_or(|u| u > now) {
                revived.push(LeaseSpell { from: now, until, ..s.clone() });
            }
        }
        // Revived spells become the latest of their keys.
        for s in revived {
            self.latest_lease.insert((s.holder, s.resource.clone(), s.measured_by), self.leases.len());
            self.leases.push(s);
        }
    }

    /// Ends `node`'s open reign, if it has one.
    fn end_reign(&mut self, node: NodeId, now: SimTime) {
        if let Some(r) = self.reigns.iter_mut().rev().find(|r| r.node == node && r.to.is_none()) {
            r.to = Some(now);
        }
    }

    /// Runs the end-of-run checks at `now` (after `events` events).
    pub fn finish(&mut self, now: SimTime, events: u64) -> Outcome {
        let end = RunEnd { now, history: &self.history, observations: &self.observations, sessions: &self.sessions };
        for inv in &mut self.invariants {
            let name = inv.name().to_owned();
            match crate::panics::catch(|| inv.at_end(&end)) {
                Ok(Ok(())) => self.finished += 1,
                Ok(Err(explanation)) => {
                    return Outcome::Violation(Violation {
                        invariant: name,
                        explanation,
                        time: None,
                        event: None,
                        node: None,
                    });
                }
                Err(panic) => {
                    return Outcome::Crash {
                        node: None,
                        time: now,
                        event: events,
                        message: format!("checker \"{name}\" panicked: {}", crate::panics::message(panic.as_ref())),
                    };
                }
            }
        }
        Outcome::Pass
    }

    /// Each invariant's verdict on the run, given its outcome and whether
    /// a violation or a node's crash stopped it: an online check judged
    /// the run unless it was stopped; an end-of-run check judged it only if
    /// [`Tap::finish`] reached it.
    pub fn check_verdicts(&self, outcome: &Outcome, stopped: bool) -> Vec<(String, CheckVerdict)> {
        let failed = match outcome {
            Outcome::Violation(v) => Some(v.invariant.as_str()),
            _ => None,
        };
        // A checker's panic at the end does not undo what the online
        // checks judged.
        let healthy = !matches!(outcome, Outcome::Nondeterminism { .. });
        self.invariants
            .iter()
            .enumerate()
            .map(|(i, inv)| {
                let name = inv.name().to_owned();
                let judged = if inv.judges_at_end() { i < self.finished } else { !stopped && healthy };
                let verdict = if failed == Some(name.as_str()) {
                    CheckVerdict::Violation
                } else if !judged {
                    CheckVerdict::NotRun
                } else if inv.vacuous() {
                    CheckVerdict::Vacuous
                } else {
                    CheckVerdict::Pass
                };
                (name, verdict)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::lease::LeaseClaim;
    use crate::time::{MonoTime, WallTime};

    /// A lease fact as a node reports it.
    #[derive(Clone, Debug, Hash, serde::Serialize)]
    enum Fact {
        Holds { epoch: u64, until_ms: u64 },
        GaveUp,
    }

    impl Observation for Fact {
        fn lease(&self) -> Option<LeaseEvent> {
            Some(match *self {
                Fact::Holds { epoch, until_ms } => LeaseEvent::Holds(LeaseClaim {
                    resource: "r".into(),
                    holder: None,
                    epoch,
                    until: LeaseDeadline::Mono(MonoTime(until_ms * 1_000_000)),
                }),
                Fact::GaveUp => LeaseEvent::Ends { resource: "r".into(), holder: None },
            })
        }
    }

    /// Clocks that run at twice true time from zero.
    struct Fast;
    impl ClockReadings for Fast {
        fn mono(&self, _: NodeId) -> MonoTime {
            MonoTime(0)
        }
        fn wall(&self, _: NodeId) -> WallTime {
            WallTime(0)
        }
        fn projected(&self, _: NodeId, deadline: LeaseDeadline) -> Option<SimTime> {
            match deadline {
                LeaseDeadline::Mono(m) => Some(SimTime(m.0 / 2)),
                LeaseDeadline::Wall(_) => None,
            }
        }
    }

    fn ms(n: u64) -> SimTime {
        SimTime(n * 1_000_000)
    }

    #[test]
    fn lease_spells_are_renewed_split_by_epoch_and_given_up() {
        let mut tap: Tap<Fact> = Tap::default();
        let n = NodeId::server(0);
        let mut at = |t: u64, fact: Fact| tap.observe(ms(t), t, n, fact, &Fast).expect("no invariants");
        at(10, Fact::Holds { epoch: 1, until_ms: 100 }); // ends at 50 ms true time
        at(40, Fact::Holds { epoch: 1, until_ms: 160 }); // a renewal: to 80 ms
        at(60, Fact::Holds { epoch: 2, until_ms: 200 }); // a new epoch ends the first at 60
        at(70, Fact::GaveUp);
        at(90, Fact::Holds { epoch: 2, until_ms: 170 }); // expired before it was claimed
        at(95, Fact::GaveUp); // nothing running: changes nothing
        let spells: Vec<(u64, u64, Option<SimTime>, Option<SimTime>)> =
            tap.leases().iter().map(|s| (s.epoch, s.from.0 / 1_000_000, s.until, s.given_up)).collect();
        assert_eq!(spells, [(1, 10, Some(ms(80)), Some(ms(60))), (2, 60, Some(ms(100)), Some(ms(70)))]);
        assert_eq!(tap.leases()[0].end(), Some(ms(60)));
    }

    /// Clocks whose wall reading is true time plus `.0` ns.
    struct Shifted(i64);
    impl ClockReadings for Shifted {
        fn mono(&self, _: NodeId) -> MonoTime {
            MonoTime(0)
        }
        fn wall(&self, _: NodeId) -> WallTime {
            WallTime(0)
        }
        fn projected(&self, _: NodeId, deadline: LeaseDeadline) -> Option<SimTime> {
            match deadline {
                LeaseDeadline::Wall(w) => Some(SimTime((w.0 - self.0) as u64)),
                LeaseDeadline::Mono(_) => None,
            }
        }
    }

    /// A lease on a wall clock, for the test below.
    #[derive(Clone, Debug, Hash, serde::Serialize)]
    struct WallLease;
    impl Observation for WallLease {
        fn lease(&self) -> Option<LeaseEvent> {
            Some(LeaseEvent::Holds(LeaseClaim {
                resource: "r".into(),
                holder: None,
                epoch: 1,
                until: LeaseDeadline::Wall(WallTime(100_000_000)),
            }))
        }
    }

    #[test]
    fn a_clock_jump_moves_a_lease_and_a_backward_one_revives_it() {
        let mut tap: Tap<WallLease> = Tap::default();
        tap.observe(ms(10), 0, NodeId::server(0), WallLease, &Shifted(0)).expect("no invariants");
        assert_eq!(tap.leases()[0].until, Some(ms(100)));
        // The wall clock jumps 60 ms ahead at 50 ms: the deadline is past.
        tap.clocks_changed(ms(50), &Shifted(60_000_000));
        assert_eq!(tap.leases()[0].end(), Some(ms(50)));
        // It jumps back 90 ms at 70 ms: the lease is valid again until 130 ms.
        tap.clocks_changed(ms(70), &Shifted(-30_000_000));
        let spells: Vec<(SimTime, Option<SimTime>)> = tap.leases().iter().map(|s| (s.from, s.until)).collect();
        assert_eq!(spells, [(ms(10), Some(ms(50))), (ms(70), Some(ms(130)))]);
    }
}
