//! Raft's persistence rules as online checks, judged at the observation
//! that breaks them (so a violation names its event), for every system on
//! the Raft log. Figure 2 of the Raft paper makes `currentTerm`, `votedFor`
//! and the log durable "before responding to RPCs"; a node that forgets
//! one across a restart is caught the moment it acts on the loss, before
//! any second leader or lost entry shows up in a history.

use std::collections::BTreeMap;

use harness::check::{ClockReadings, Invariant, Observed};
use harness::time::MonoTime;
use harness::NodeId;

use crate::raft::{LogIndex, RaftObs, Term};

pub const VOTES_ONCE_PER_TERM: &str = "a node votes for at most one candidate per term, across restarts";
pub const DURABLE_STATE_NEVER_GOES_BACK: &str = "durable state never goes backwards across a restart";
pub const PROMISES_KEPT: &str = "a node votes for no one else while its promise to a leader runs";
pub const LEADER_APPEND_ONLY: &str = "a leader never overwrites or deletes entries in its log";
pub const LOG_MATCHING: &str = "two logs with an entry of the same index and term agree up to it";
pub const LEADER_COMPLETENESS: &str = "a new leader's log holds every entry committed before its term";

/// Raft's properties for a system on the log, election safety first: the
/// five of the paper's Figure 3, and what Figure 2 asks of every node
/// (one vote per term, durable state). `raft_of` picks Raft's facts out
/// of the system's observations.
pub fn log_properties<O: 'static>(raft_of: fn(&O) -> Option<&RaftObs>) -> Vec<Box<dyn Invariant<O>>> {
    let term_led = move |o: &O| match raft_of(o)? {
        RaftObs::BecameLeader { term, .. } => Some(*term),
        _ => None,
    };
    vec![
        Box::new(crate::election::OneLeaderPerTerm::new(term_led)),
        Box::new(LeaderAppendOnly::new(raft_of)),
        Box::new(LogMatching::new(raft_of)),
        Box::new(LeaderCompleteness::new(raft_of)),
        Box::new(crate::raft::CommittedNeverChange::new(raft_of)),
        Box::new(VotesOncePerTerm::new(raft_of)),
        Box::new(DurableStateNeverGoesBack::new(raft_of)),
    ]
}

/// For a system whose observations are Raft's own.
pub fn raft_itself(o: &RaftObs) -> Option<&RaftObs> {
    Some(o)
}

/// "a node votes for at most one candidate per term, across restarts".
pub struct VotesOncePerTerm<F> {
    votes: BTreeMap<(NodeId, Term), NodeId>,
    raft_of: F,
}

impl<F> VotesOncePerTerm<F> {
    pub fn new(raft_of: F) -> Self {
        VotesOncePerTerm { votes: BTreeMap::new(), raft_of }
    }
}

impl<O, F: Fn(&O) -> Option<&RaftObs>> Invariant<O> for VotesOncePerTerm<F> {
    fn name(&self) -> &str {
        VOTES_ONCE_PER_TERM
    }
    fn vacuous(&self) -> bool {
        self.votes.is_empty()
    }
    fn on_observation(&mut self, o: &Observed<O>) -> Result<(), String> {
        let (term, candidate) = match (self.raft_of)(&o.obs) {
            Some(&RaftObs::Voted { term, candidate }) => (term, candidate),
            Some(&RaftObs::BecameCandidate { term }) => (term, o.node),
            _ => return Ok(()),
        };
        match self.votes.insert((o.node, term), candidate) {
            Some(earlier) if earlier != candidate => {
                Err(format!("{} voted for {earlier} and then for {candidate} in term {term}", o.node))
            }
            _ => Ok(()),
        }
    }
}

/// What a node has shown it holds durably, as of its latest report.
#[derive(Default)]
struct Durable {
    /// The highest term it voted or led in: both were synced first.
    term: Term,
    /// The highest index it applied: committed, so never truncated, and
    /// synced in its own log before it could be applied.
    applied: LogIndex,
}

/// "durable state never goes backwards across a restart": a restarted
/// node's term is at least every term it voted or led in, and its log
/// reaches every index it applied.
pub struct DurableStateNeverGoesBack<F> {
    nodes: BTreeMap<NodeId, Durable>,
    restarts_judged: u64,
    raft_of: F,
}

impl<F> DurableStateNeverGoesBack<F> {
    pub fn new(raft_of: F) -> Self {
        DurableStateNeverGoesBack { nodes: BTreeMap::new(), restarts_judged: 0, raft_of }
    }
}

impl<O, F: Fn(&O) -> Option<&RaftObs>> Invariant<O> for DurableStateNeverGoesBack<F> {
    fn name(&self) -> &str {
        DURABLE_STATE_NEVER_GOES_BACK
    }
    /// Only a restart after something durable was shown is a judgement.
    fn vacuous(&self) -> bool {
        self.restarts_judged == 0
    }
    fn on_observation(&mut self, o: &Observed<O>) -> Result<(), String> {
        let Some(fact) = (self.raft_of)(&o.obs) else { return Ok(()) };
        let node = o.node;
        let d = self.nodes.entry(node).or_default();
        match *fact {
            RaftObs::Voted { term, .. } | RaftObs::BecameCandidate { term } | RaftObs::BecameLeader { term, .. } => {
                d.term = d.term.max(term)
            }
            RaftObs::Applied { index, .. } => d.applied = d.applied.max(index),
            RaftObs::Started { term, last_index } => {
                if d.term == Term(0) && d.applied == LogIndex(0) {
                    return Ok(()); // a first start, or nothing durable shown yet
                }
                self.restarts_judged += 1;
                if term < d.term {
                    return Err(format!("{node} restarted in term {term}, below term {} it voted or led in", d.term));
                }
                if last_index < d.applied {
                    return Err(format!(
                        "{node} restarted with its log ending at {last_index}, short of index {} it applied",
                        d.applied
                    ));
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// "a node votes for no one else while its promise to a leader runs": a
/// lease rests on followers' promises not to vote for an election timeout
/// of their own clocks after hearing the leader, across restarts too (a
/// promise is not forgotten with memory). Judged at each vote and each
/// candidacy against the voter's latest promise, on its clock as the world
/// reads it then: one broken promise is caught at once, before a majority
/// of them elects a second leader.
pub struct PromisesKept<F> {
    /// Each node's latest promise: to whom, in which term, until when.
    promises: BTreeMap<NodeId, (NodeId, Term, MonoTime)>,
    judged: u64,
    raft_of: F,
}

impl<F> PromisesKept<F> {
    pub fn new(raft_of: F) -> Self {
        PromisesKept { promises: BTreeMap::new(), judged: 0, raft_of }
    }
}

impl<O, F: Fn(&O) -> Option<&RaftObs>> Invariant<O> for PromisesKept<F> {
    fn name(&self) -> &str {
        PROMISES_KEPT
    }
    /// Only a vote for another, after a promise, is a judgement.
    fn vacuous(&self) -> bool {
        self.judged == 0
    }
    fn on_observation_at(&mut self, o: &Observed<O>, clocks: &dyn ClockReadings) -> Result<(), String> {
        let node = o.node;
        let (term, candidate) = match (self.raft_of)(&o.obs) {
            Some(&RaftObs::Promised { term, leader, until }) => {
                self.promises.insert(node, (leader, term, until));
                return Ok(());
            }
            Some(&RaftObs::Voted { term, candidate }) => (term, candidate),
            Some(&RaftObs::BecameCandidate { term }) => (term, node),
            _ => return Ok(()),
        };
        let Some(&(leader, promised_in, until)) = self.promises.get(&node) else { return Ok(()) };
        if candidate == leader || term <= promised_in {
            return Ok(());
        }
        self.judged += 1;
        let now = clocks.mono(node);
        if now < until {
            return Err(format!(
                "{node} voted for {candidate} in term {term} while its promise to {leader} (term {promised_in}) ran \
                 until its monotonic clock reads {}s (it reads {}s)",
                until.0 as f64 / 1e9,
                now.0 as f64 / 1e9
            ));
        }
        Ok(())
    }
}

/// "a leader never overwrites or deletes entries in its log" (Raft's
/// leader append-only property), judged from every change a node reports
/// to its log, whichever code path made it: while a node leads, each entry
/// it stores must land just past the end its log had (from where it ended
/// when elected, counting its own appends), and it must truncate nothing.
/// `raft/log.rs` makes this hold by construction (a leader only pushes; only
/// a follower's `AppendEntries` truncates, after stepping down): the check
/// guards that construction against a change that breaks it, as any check
/// of a correct implementation does.
pub struct LeaderAppendOnly<F> {
    /// Each leader's term, and where its log ends.
    leading: BTreeMap<NodeId, (Term, LogIndex)>,
    /// Entries stored by leaders, each a judgement.
    judged: u64,
    raft_of: F,
}

impl<F> LeaderAppendOnly<F> {
    pub fn new(raft_of: F) -> Self {
        LeaderAppendOnly { leading: BTreeMap::new(), judged: 0, raft_of }
    }
}

impl<O, F: Fn(&O) -> Option<&RaftObs>> Invariant<O> for LeaderAppendOnly<F> {
    fn name(&self) -> &str {
        LEADER_APPEND_ONLY
    }
    fn vacuous(&self) -> bool {
        self.judged == 0
    }
    fn on_observation(&mut self, o: &Observed<O>) -> Result<(), String> {
        let Some(fact) = (self.raft_of)(&o.obs) else { return Ok(()) };
        let node = o.node;
        match *fact {
            RaftObs::BecameLeader { term, last_index, .. } => {
                self.leading.insert(node, (term, last_index));
            }
            RaftObs::SteppedDown { .. } | RaftObs::Started { .. } => {
                self.leading.remove(&node);
            }
            RaftObs::Truncated { from } => {
                if let Some((term, _)) = self.leading.get(&node) {
                    return Err(format!("{node} discarded its log from {from} while leading term {term}"));
                }
            }
            RaftObs::Stored { index, .. } => {
                let Some((term, last)) = self.leading.get_mut(&node) else { return Ok(()) };
                self.judged += 1;
                if index.0 != last.0 + 1 {
                    return Err(format!(
                        "{node} wrote entry {index} while leading term {term} with its log ending at {last}"
                    ));
                }
                *last = index;
            }
            _ => {}
        }
        Ok(())
    }
}

/// "two logs with an entry of the same index and term agree up to it"
/// (Raft's log matching property), judged at every entry any node stores:
/// the first node to store an (index, term) fixes the chain of the log up
/// to it, and every other log holding that entry must have the same chain.
pub struct LogMatching<F> {
    first: BTreeMap<(LogIndex, Term), (u64, NodeId)>,
    compared: u64,
    raft_of: F,
}

impl<F> LogMatching<F> {
    pub fn new(raft_of: F) -> Self {
        LogMatching { first: BTreeMap::new(), compared: 0, raft_of }
    }
}

impl<O, F: Fn(&O) -> Option<&RaftObs>> Invariant<O> for LogMatching<F> {
    fn name(&self) -> &str {
        LOG_MATCHING
    }
    fn vacuous(&self) -> bool {
        self.compared == 0
    }
    fn on_observation(&mut self, o: &Observed<O>) -> Result<(), String> {
        let Some(&RaftObs::Stored { index, term, chain, .. }) = (self.raft_of)(&o.obs) else { return Ok(()) };
        match self.first.get(&(index, term)) {
            None => {
                self.first.insert((index, term), (chain, o.node));
                Ok(())
            }
            Some(&(c, _)) if c == chain => {
                self.compared += 1;
                Ok(())
            }
            Some(&(_, first)) => Err(format!(
                "{} and {first} both hold an entry of term {term} at index {index}, \
                 but their logs differ at or before it",
                o.node
            )),
        }
    }
}

/// "a new leader's log holds every entry committed before its term"
/// (Raft's leader completeness), judged where it can be from what nodes
/// report. It is judged for a leader whose term is above every term led
/// so far: everything applied by then (applied means committed) was
/// committed by a leader of a lower term, so the new leader's log must
/// reach the highest such index and end in a term no older than that
/// entry's (terms never decrease along a log). A leader of an older term
/// elected late (its votes were delayed, or it was paused) is not bound
/// by entries committed in later terms, and is not judged.
pub struct LeaderCompleteness<F> {
    /// The highest index applied anywhere so far, and its term.
    committed: (LogIndex, Term),
    /// The highest term any node has led in.
    highest_led: Term,
    judged: u64,
    raft_of: F,
}

impl<F> LeaderCompleteness<F> {
    pub fn new(raft_of: F) -> Self {
        LeaderCompleteness { committed: (LogIndex(0), Term(0)), highest_led: Term(0), judged: 0, raft_of }
    }
}

impl<O, F: Fn(&O) -> Option<&RaftObs>> Invariant<O> for LeaderCompleteness<F> {
    fn name(&self) -> &str {
        LEADER_COMPLETENESS
    }
    /// A leader elected before anything committed proves nothing.
    fn vacuous(&self) -> bool {
        self.judged == 0
    }
    fn on_observation(&mut self, o: &Observed<O>) -> Result<(), String> {
        let Some(fact) = (self.raft_of)(&o.obs) else { return Ok(()) };
        match *fact {
            RaftObs::Applied { index, term, .. } => self.committed = self.committed.max((index, term)),
            RaftObs::BecameLeader { term, last_index, last_term } => {
                let newest = term > self.highest_led;
                self.highest_led = self.highest_led.max(term);
                let (index, entry_term) = self.committed;
                if index == LogIndex(0) || !newest {
                    return Ok(());
                }
                self.judged += 1;
                if last_index < index || last_term < entry_term {
                    return Err(format!(
                        "{} leads term {term} with its log ending at {last_index} (term {last_term}), \
                         without entry {index} of term {entry_term}, which was committed",
                        o.node
                    ));
                }
            }
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::raft::chain_after;
    use harness::time::SimTime;

    /// `obs` reported by server `node` (from 0), at time 1, event 1.
    pub(crate) fn fact(node: u32, obs: RaftObs) -> Observed<RaftObs> {
        Observed { time: SimTime(1), event: 1, node: NodeId::server(node), obs }
    }

    #[test]
    fn a_leader_elected_without_a_committed_entry_is_caught() {
        let mut check = LeaderCompleteness::new(raft_itself);
        let lead = |last, last_term| RaftObs::BecameLeader {
            term: Term(4),
            last_index: LogIndex(last),
            last_term: Term(last_term),
        };
        let first = RaftObs::BecameLeader { term: Term(1), last_index: LogIndex(0), last_term: Term(0) };
        assert!(check.on_observation(&fact(0, first)).is_ok(), "nothing committed yet");
        assert!(Invariant::<RaftObs>::vacuous(&check));
        let applied = RaftObs::Applied { index: LogIndex(5), term: Term(3), digest: 1 };
        assert!(check.on_observation(&fact(1, applied)).is_ok());
        let e = check.on_observation(&fact(0, lead(4, 3))).unwrap_err();
        assert!(e.contains("n1 leads term 4 with its log ending at 4 (term 3), without entry 5 of term 3"), "{e}");
        let lead_in = |term, last, last_term| RaftObs::BecameLeader {
            term: Term(term),
            last_index: LogIndex(last),
            last_term: Term(last_term),
        };
        assert!(check.on_observation(&fact(2, lead_in(5, 5, 3))).is_ok());
        assert!(check.on_observation(&fact(0, lead_in(6, 9, 2))).is_err(), "long enough, but from an older term");
        // A leader of a term older than one already led is not judged: it
        // may have been elected late, before the entry's commit term.
        assert!(check.on_observation(&fact(1, lead_in(2, 0, 0))).is_ok());
    }

    #[test]
    fn a_second_vote_in_one_term_is_caught_at_the_vote() {
        let mut check = VotesOncePerTerm::new(raft_itself);
        assert!(Invariant::<RaftObs>::vacuous(&check));
        let vote = |candidate| RaftObs::Voted { term: Term(3), candidate: NodeId::server(candidate) };
        assert!(check.on_observation(&fact(0, vote(1))).is_ok());
        assert!(check.on_observation(&fact(0, vote(1))).is_ok(), "the same vote again is fine");
        assert!(check.on_observation(&fact(2, vote(0))).is_ok(), "another voter");
        let e = check.on_observation(&fact(0, vote(2))).unwrap_err();
        assert!(e.contains("n1 voted for n2 and then for n3 in term 3"), "{e}");
        let mut check = VotesOncePerTerm::new(raft_itself);
        assert!(check.on_observation(&fact(0, vote(1))).is_ok());
        let stood = RaftObs::BecameCandidate { term: Term(3) };
        let e = check.on_observation(&fact(0, stood.clone())).unwrap_err();
        assert!(e.contains("n1 voted for n2 and then for n1 in term 3"), "a candidate votes for itself: {e}");
        assert!(check.on_observation(&fact(1, stood)).is_ok(), "n2's vote for itself, after n1's for it");
    }

    #[test]
    fn a_restart_with_an_older_term_or_a_shorter_log_is_caught_at_the_restart() {
        let start = |term, last| RaftObs::Started { term: Term(term), last_index: LogIndex(last) };
        let mut check = DurableStateNeverGoesBack::new(raft_itself);
        assert!(check.on_observation(&fact(0, start(0, 0))).is_ok(), "a first start");
        assert!(Invariant::<RaftObs>::vacuous(&check));
        let voted = RaftObs::Voted { term: Term(5), candidate: NodeId::server(1) };
        assert!(check.on_observation(&fact(0, voted)).is_ok());
        assert!(check.on_observation(&fact(0, start(5, 0))).is_ok());
        assert!(!Invariant::<RaftObs>::vacuous(&check));
        let e = check.on_observation(&fact(0, start(4, 0))).unwrap_err();
        assert!(e.contains("n1 restarted in term 4, below term 5"), "{e}");
        let applied = RaftObs::Applied { index: LogIndex(7), term: Term(5), digest: 1 };
        assert!(check.on_observation(&fact(1, applied)).is_ok());
        assert!(check.on_observation(&fact(1, start(5, 7))).is_ok());
        let e = check.on_observation(&fact(1, start(5, 6))).unwrap_err();
        assert!(e.contains("log ending at 6, short of index 7"), "{e}");
    }

    fn stored(index: u64, term: u64, digest: u64, chain: u64) -> RaftObs {
        RaftObs::Stored { index: LogIndex(index), term: Term(term), digest, chain }
    }

    #[test]
    fn a_leader_that_overwrites_or_truncates_its_log_is_caught() {
        let lead = RaftObs::BecameLeader { term: Term(2), last_index: LogIndex(3), last_term: Term(1) };
        let c4 = chain_after(7, 40);
        let mut check = LeaderAppendOnly::new(raft_itself);
        assert!(check.on_observation(&fact(1, stored(2, 1, 20, 9))).is_ok(), "a follower stores anywhere");
        assert!(check.on_observation(&fact(0, lead.clone())).is_ok());
        assert!(Invariant::<RaftObs>::vacuous(&check));
        assert!(check.on_observation(&fact(0, stored(4, 2, 40, c4))).is_ok());
        assert!(check.on_observation(&fact(0, stored(5, 2, 50, chain_after(c4, 50)))).is_ok());
        let e = check.on_observation(&fact(0, stored(3, 2, 30, 1))).unwrap_err();
        assert!(e.contains("n1 wrote entry 3 while leading term 2 with its log ending at 5"), "{e}");

        let mut check = LeaderAppendOnly::new(raft_itself);
        assert!(check.on_observation(&fact(0, lead)).is_ok());
        let e = check.on_observation(&fact(0, RaftObs::Truncated { from: LogIndex(2) })).unwrap_err();
        assert!(e.contains("n1 discarded its log from 2 while leading term 2"), "{e}");
        assert!(check.on_observation(&fact(0, RaftObs::SteppedDown { term: Term(2) })).is_ok());
        assert!(check.on_observation(&fact(0, RaftObs::Truncated { from: LogIndex(2) })).is_ok(), "a follower");
    }

    #[test]
    fn two_logs_that_agree_on_an_entry_but_not_before_it_are_caught() {
        let mut check = LogMatching::new(raft_itself);
        assert!(check.on_observation(&fact(0, stored(6, 3, 60, 111))).is_ok());
        assert!(Invariant::<RaftObs>::vacuous(&check));
        assert!(check.on_observation(&fact(1, stored(6, 3, 60, 111))).is_ok());
        assert!(!Invariant::<RaftObs>::vacuous(&check));
        assert!(check.on_observation(&fact(2, stored(6, 2, 61, 222))).is_ok(), "another term: no claim");
        let e = check.on_observation(&fact(2, stored(6, 3, 60, 333))).unwrap_err();
        assert!(e.contains("n3 and n1 both hold an entry of term 3 at index 6, but their logs differ"), "{e}");
    }

    /// The clocks read `mono` ns everywhere.
    struct At(u64);
    impl ClockReadings for At {
        fn mono(&self, _: NodeId) -> MonoTime {
            MonoTime(self.0)
        }
        fn wall(&self, _: NodeId) -> harness::time::WallTime {
            harness::time::WallTime(self.0 as i64)
        }
    }

    #[test]
    fn a_vote_while_a_promise_runs_is_caught_even_after_a_restart() {
        let mut check = PromisesKept::new(raft_itself);
        let promise = RaftObs::Promised { term: Term(2), leader: NodeId::server(0), until: MonoTime(1_000) };
        let vote = |candidate| RaftObs::Voted { term: Term(3), candidate: NodeId::server(candidate) };
        assert!(check.on_observation_at(&fact(1, promise), &At(100)).is_ok());
        assert!(check
            .on_observation_at(&fact(1, RaftObs::Started { term: Term(2), last_index: LogIndex(0) }), &At(200))
            .is_ok());
        assert!(check.on_observation_at(&fact(1, vote(0)), &At(300)).is_ok(), "a vote for the leader itself");
        assert!(Invariant::<RaftObs>::vacuous(&check));
        let e = check.on_observation_at(&fact(1, vote(2)), &At(999)).unwrap_err();
        assert!(e.contains("n2 voted for n3 in term 3 while its promise to n1 (term 2) ran until"), "{e}");
        let e = check.on_observation_at(&fact(1, RaftObs::BecameCandidate { term: Term(3) }), &At(999)).unwrap_err();
        assert!(e.contains("n2 voted for n2"), "standing for election is a vote: {e}");
        assert!(check.on_observation_at(&fact(1, vote(2)), &At(1_000)).is_ok(), "the promise ran out");
        assert!(!Invariant::<RaftObs>::vacuous(&check));
    }
}
