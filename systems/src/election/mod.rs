//! `election`: Raft-style leader election, with optional leader leases.
//!
//! Servers keep `current_term` and `voted_for` on disk and sync them before
//! replying to a vote request or campaigning. A follower that hears no
//! leader for a randomized election timeout (on its monotonic clock)
//! becomes a candidate: it increments its term, votes for itself, and asks
//! its peers (re-asking silent ones every heartbeat interval). A majority
//! makes it leader; it then sends heartbeats every `heartbeat`.
//!
//! Leases (variant `lease` and the lease bugs): a follower that
//! acknowledges a heartbeat promises, for the minimum election timeout on
//! its own monotonic clock, to ignore vote requests. The leader, once a
//! majority acknowledged a heartbeat round, holds a lease from when it
//! *sent* that round, for the minimum election timeout shortened by the
//! configured maximum drift: `emin * (1 - 3 * max_drift)`. With clocks
//! drifting by at most `max_drift`, the lease ends before every promise
//! that made it, so no two nodes hold a valid lease at one true instant.
//!
//! A promise lives in memory, and a node may have made one just before it
//! crashed. So a restarted node honours any promise it may have made: it
//! refuses every vote for one full minimum election timeout of its
//! monotonic clock after every start. (Without this rule a voter that
//! crashes and restarts within its promise votes at once, and a new
//! leader's lease overlaps the old one's: `scenarios/regressions/
//! election-lease-promise-across-restart.toml`.)
//!
//! # Planted bugs
//!
//! - `vote-not-persisted`: the vote lives only in memory. A node that votes,
//!   crashes and restarts can vote again in the same term: two leaders.
//! - `fixed-timeout`: every node waits exactly `election_timeout`. Nodes that
//!   start together (first boot, or a restart after a cluster-wide outage)
//!   split the vote, time out together, and split it again. Exactly when
//!   it ends: each round, a clock that runs faster by `d` (a drift
//!   difference) gains `election_timeout * d` on the others; once that gap
//!   exceeds the one-way latency, its vote requests arrive before the
//!   others time out, and it wins. So the tie lasts about
//!   `latency / (election_timeout * d)` rounds: forever with no drift, 34
//!   rounds (5.1 s) for 400 ppm, 150 ms timeouts and 2 ms latency (a unit
//!   test checks that figure). Randomized timeouts end it in one or two.
//! - `lease-no-drift-margin`: the lease is measured on the monotonic clock,
//!   as it should be, but for the full election timeout, with no margin for
//!   drift. A leader whose clock runs slow, with voters whose clocks run
//!   fast, keeps its lease after their promises ran out and a new leader
//!   took one. Drift alone exposes it, no clock jump needed.
//! - `lease-on-wall-clock`: the lease has its drift margin but is measured
//!   on the wall clock (`SystemTime` instead of `Instant`). A backward jump
//!   of the leader's wall clock, an NTP step, stretches its lease over the
//!   next leader's.
//!
//! How fast the harness finds them, over seeds 0..100 of each bug's scenario
//! (median number of seeds to the first failure, counted from every
//! starting seed; worst case in brackets; `scripts/detection-rates.sh`):
//! - `vote-not-persisted`: 36 of 100 seeds, median 2 (11);
//! - `fixed-timeout`: 26 of 100 seeds (liveness), median 3 (9);
//! - `lease-no-drift-margin`: 52 of 100 seeds, median 1 (8), drift alone;
//! - `lease-on-wall-clock`: 81 of 100 seeds, median 1 (3).

pub mod system;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use crate::lease::LeaseClock;
use crate::raft::{Raft, RaftConfig, RaftMsg, RaftObs, RaftTimer};
use harness::check::{Invariant, Observed};
use harness::node::{Ctx, Node, NodeId};

/// The resource leader leases are reported on.
pub const LEADERSHIP: &str = "leadership";

/// A Raft term. Terms only grow, on every node.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Term(pub u64);

impl fmt::Display for Term {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Which implementation runs.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Variant {
    Correct,
    Lease,
    VoteNotPersisted,
    FixedTimeout,
    LeaseNoDriftMargin,
    LeaseOnWallClock,
}

impl harness::system::VariantNames for Variant {
    const NAMES: &'static [&'static str] =
        &["correct", "lease", "vote-not-persisted", "fixed-timeout", "lease-no-drift-margin", "lease-on-wall-clock"];

    fn parse(name: &str) -> Option<Variant> {
        Some(match name {
            "correct" => Variant::Correct,
            "lease" => Variant::Lease,
            "vote-not-persisted" => Variant::VoteNotPersisted,
            "fixed-timeout" => Variant::FixedTimeout,
            "lease-no-drift-margin" => Variant::LeaseNoDriftMargin,
            "lease-on-wall-clock" => Variant::LeaseOnWallClock,
            _ => return None,
        })
    }
}

impl Variant {
    /// How this variant measures its leases (the planted lease bugs are
    /// set here, and nowhere else).
    pub fn lease_clock(self) -> LeaseClock {
        match self {
            Variant::LeaseNoDriftMargin => LeaseClock::MonoNoMargin,
            Variant::LeaseOnWallClock => LeaseClock::WallWithMargin,
            _ => LeaseClock::MonoWithMargin,
        }
    }

    pub fn has_leases(self) -> bool {
        matches!(self, Variant::Lease | Variant::LeaseNoDriftMargin | Variant::LeaseOnWallClock)
    }
}

/// Settings from the scenario's `[config]`.
#[derive(Clone, Debug)]
pub struct Config {
    pub variant: Variant,
    /// The minimum election timeout; timeouts are drawn from [emin, 2 * emin).
    pub election_timeout: Duration,
    pub heartbeat: Duration,
    /// The largest clock drift the lease must survive, in parts per million.
    pub max_drift_ppm: f64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            variant: Variant::Correct,
            election_timeout: Duration::from_millis(150),
            heartbeat: Duration::from_millis(50),
            max_drift_ppm: 200.0,
        }
    }
}

impl Config {
    /// The Raft log's settings for this variant: the planted bugs are set
    /// here, and nowhere else.
    pub fn raft(&self) -> RaftConfig {
        RaftConfig {
            election_timeout: self.election_timeout,
            heartbeat: self.heartbeat,
            max_drift_ppm: self.max_drift_ppm,
            leases: self.variant.has_leases().then(|| self.variant.lease_clock()),
            vote_not_persisted: self.variant == Variant::VoteNotPersisted,
            fixed_election_timeout: self.variant == Variant::FixedTimeout,
            noop_on_election: false,
            ..RaftConfig::default()
        }
    }
}

/// A command the election's log never carries: it has none.
pub type NoCommand = ();

/// A server: the Raft log's election, with no commands.
pub struct ElectionNode {
    raft: Raft<NoCommand>,
}

impl ElectionNode {
    /// Rebuilds a node from its disk (term, and vote unless the planted bug
    /// forgets it).
    pub fn new(config: Config, disk: &harness::Disk) -> Self {
        ElectionNode { raft: Raft::new(config.raft(), disk) }
    }

    pub fn term(&self) -> Term {
        self.raft.term()
    }
    pub fn is_leader(&self) -> bool {
        self.raft.is_leader()
    }
}

impl Node for ElectionNode {
    type Msg = RaftMsg<NoCommand>;
    type Timer = RaftTimer;
    type Obs = RaftObs;

    fn on_start(&mut self, ctx: &mut Ctx<'_, Self>) {
        self.raft.start(ctx);
    }
    fn on_message(&mut self, ctx: &mut Ctx<'_, Self>, from: NodeId, msg: Self::Msg) {
        self.raft.on_message(ctx, from, msg);
    }
    fn on_timer(&mut self, ctx: &mut Ctx<'_, Self>, timer: RaftTimer) {
        self.raft.on_timer(ctx, timer);
    }
}

pub const ONE_LEADER_PER_TERM: &str = "at most one leader per term";
pub const ONE_LEASE_HOLDER: &str = "at most one valid lease holder at any instant";

/// "at most one leader per term", for any observation type that reports
/// leadership with a term.
pub struct OneLeaderPerTerm<F> {
    leaders: BTreeMap<Term, NodeId>,
    term_of: F,
}

impl<F> OneLeaderPerTerm<F> {
    pub fn new(term_of: F) -> Self {
        OneLeaderPerTerm { leaders: BTreeMap::new(), term_of }
    }
}

impl<O, F: FnMut(&O) -> Option<Term>> Invariant<O> for OneLeaderPerTerm<F> {
    fn name(&self) -> &str {
        ONE_LEADER_PER_TERM
    }
    fn vacuous(&self) -> bool {
        self.leaders.is_empty()
    }
    fn on_observation(&mut self, o: &Observed<O>) -> Result<(), String> {
        let Some(term) = (self.term_of)(&o.obs) else { return Ok(()) };
        match self.leaders.get(&term) {
            Some(&first) if first != o.node => {
                Err(format!("{} became leader of term {term}, which {first} already leads", o.node))
            }
            _ => {
                self.leaders.insert(term, o.node);
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::LogIndex;
    use harness::{Latency, LinkConfig, SimTime, World, WorldConfig};

    /// A vote request for `term` from a candidate with an empty log.
    fn vote(term: Term) -> RaftMsg<NoCommand> {
        RaftMsg::RequestVote { term, last_index: LogIndex(0), last_term: Term(0) }
    }

    fn world(variant: Variant, servers: u32) -> World<ElectionNode> {
        let config = Config { variant, ..Config::default() };
        let cfg = WorldConfig {
            seed: 7,
            servers,
            network: LinkConfig { latency: Latency::Constant(Duration::from_millis(2)), ..LinkConfig::default() },
            ..WorldConfig::default()
        };
        World::new(cfg, Box::new(move |_, disk| ElectionNode::new(config.clone(), disk)))
    }

    fn leaders(w: &World<ElectionNode>) -> Vec<(NodeId, Term)> {
        w.observations()
            .iter()
            .filter_map(|o| match o.obs {
                RaftObs::BecameLeader { term, .. } => Some((o.node, term)),
                _ => None,
            })
            .collect()
    }

    fn traced(variant: Variant) -> World<ElectionNode> {
        let config = Config { variant, ..Config::default() };
        let cfg = WorldConfig {
            seed: 7,
            servers: 3,
            network: LinkConfig { latency: Latency::Constant(Duration::from_millis(2)), ..LinkConfig::default() },
            keep_trace: true,
            ..WorldConfig::default()
        };
        World::new(cfg, Box::new(move |_, disk| ElectionNode::new(config.clone(), disk)))
    }

    /// The trace lines of messages delivered to `to` after event `after`.
    fn delivered_to(w: &World<ElectionNode>, to: NodeId, after: u64) -> Vec<String> {
        let prefix = format!("{to} <- ");
        w.trace()
            .entries()
            .unwrap_or_default()
            .iter()
            .filter(|e| e.index >= after && e.text.starts_with(&prefix))
            .map(|e| e.text.clone())
            .collect()
    }

    #[test]
    fn a_vote_for_a_stale_term_is_refused() {
        let mut w = traced(Variant::Correct);
        w.run_until(SimTime::from_duration(Duration::from_secs(2)));
        let (leader, term) = *leaders(&w).last().expect("a leader");
        let others: Vec<NodeId> = (0..3).map(NodeId::server).filter(|&n| n != leader).collect();
        let mark = w.events();
        w.inject(others[0], others[1], vote(Term(term.0 - 1)));
        w.run_for(Duration::from_millis(10));
        let replies = delivered_to(&w, others[0], mark);
        let want = format!("RequestVoteReply {{ term: Term({}), granted: false }}", term.0);
        assert!(replies.iter().any(|r| r.contains(&want)), "{replies:?}");
        assert!(w.node(leader).expect("up").is_leader(), "a stale candidate does not disturb the leader");
    }

    #[test]
    fn a_node_votes_once_per_term_even_across_a_restart() {
        for (variant, second_granted) in [(Variant::Correct, false), (Variant::VoteNotPersisted, true)] {
            let mut w = traced(variant);
            // Keep everyone a follower: isolate nobody, but ask before any timeout fires.
            let (a, b, c) = (NodeId::server(0), NodeId::server(1), NodeId::server(2));
            w.inject(a, c, vote(Term(1)));
            w.run_for(Duration::from_millis(5));
            w.apply(harness::Fault::Crash(harness::Target::Node(c)));
            w.apply(harness::Fault::Restart(harness::Target::Node(c)));
            let mark = w.events();
            w.inject(b, c, vote(Term(1)));
            w.run_for(Duration::from_millis(5));
            let want = format!("RequestVoteReply {{ term: Term(1), granted: {second_granted} }}");
            let replies = delivered_to(&w, b, mark);
            assert!(replies.iter().any(|r| r.contains(&want)), "{variant:?}: {replies:?}");
        }
    }

    #[test]
    fn a_follower_with_a_live_lease_promise_ignores_vote_requests() {
        let mut w = traced(Variant::Lease);
        w.run_until(SimTime::from_duration(Duration::from_secs(2)));
        let (leader, term) = *leaders(&w).last().expect("a leader");
        let others: Vec<NodeId> = (0..3).map(NodeId::server).filter(|&n| n != leader).collect();
        let mark = w.events();
        w.inject(others[0], others[1], vote(Term(term.0 + 1)));
        w.run_for(Duration::from_millis(10));
        assert!(
            delivered_to(&w, others[0], mark).iter().all(|r| !r.contains("RequestVoteReply")),
            "no reply within the promise"
        );
        assert_eq!(w.node(others[1]).expect("up").term(), term, "and no term change");
    }

    #[test]
    fn one_leader_emerges_and_stays() {
        let mut w = world(Variant::Correct, 5);
        w.add_invariant(Box::new(OneLeaderPerTerm::new(|o: &RaftObs| match o {
            RaftObs::BecameLeader { term, .. } => Some(*term),
            _ => None,
        })));
        w.run_until(SimTime::from_duration(Duration::from_secs(10)));
        assert!(!w.stopped());
        assert_eq!(leaders(&w).len(), 1, "a stable cluster elects once: {:?}", leaders(&w));
    }

    #[test]
    fn fixed_timeouts_split_the_vote_forever_when_nodes_start_together() {
        let mut w = world(Variant::FixedTimeout, 3);
        w.run_until(SimTime::from_duration(Duration::from_secs(10)));
        assert!(leaders(&w).is_empty(), "symmetric candidates should never win: {:?}", leaders(&w));
        let mut w = world(Variant::Correct, 3);
        w.run_until(SimTime::from_duration(Duration::from_secs(10)));
        assert!(!leaders(&w).is_empty(), "randomized timeouts break the tie");
    }

    /// With fixed timeouts, nodes that start together split the vote every
    /// round until one clock's lead (timeout x drift difference per round)
    /// exceeds the message latency. Here n1 runs 400 ppm fast: 60 us a
    /// round against 2 ms of latency, so about 34 rounds of 150 ms.
    #[test]
    fn fixed_timeouts_split_the_vote_until_drift_outgrows_the_latency() {
        let mut w = world(Variant::FixedTimeout, 3);
        w.apply(harness::Fault::ClockDrift { target: harness::Target::Node(NodeId::server(0)), ppm: 400.0 });
        w.run_until(SimTime::from_duration(Duration::from_secs(20)));
        let first = w
            .observations()
            .iter()
            .find(|o| matches!(o.obs, RaftObs::BecameLeader { .. }))
            .expect("drift breaks the tie eventually");
        assert_eq!(first.node, NodeId::server(0), "the fast clock wins");
        let rounds = first.time.0 / 150_000_000;
        assert!((30..=36).contains(&rounds), "the tie lasted {rounds} rounds");
    }

    #[test]
    fn a_leader_keeps_one_heartbeat_timer_however_long_it_campaigned() {
        // With its only peer down, n1 campaigns term after term; when the peer
        // comes back it wins, and must then beat once per heartbeat interval.
        let (n1, n2) = (NodeId::server(0), NodeId::server(1));
        let mut w = traced(Variant::Correct);
        w.apply(harness::Fault::Kill(harness::Target::Node(NodeId::server(2))));
        w.apply(harness::Fault::Crash(harness::Target::Node(n2)));
        w.run_until(SimTime::from_duration(Duration::from_secs(2)));
        assert!(w.node(n1).expect("up").term() > Term(5), "n1 campaigned repeatedly");
        w.apply(harness::Fault::Restart(harness::Target::Node(n2)));
        w.run_until(SimTime::from_duration(Duration::from_secs(4)));
        assert!(w.node(n1).expect("up").is_leader());
        let beats = w
            .trace()
            .entries()
            .unwrap_or_default()
            .iter()
            .filter(|e| e.time > 3_000_000_000 && e.text == "n1 timer Heartbeat")
            .count();
        assert!((19..=21).contains(&beats), "one heartbeat every 50ms for a second, not {beats}");
    }
}
