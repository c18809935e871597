//! A Raft-style replicated log over a command type chosen by its user, as a
//! sans-IO component embedded in a host node: the host forwards Raft's
//! messages and timers to it, proposes commands, and applies what
//! [`Raft::take_committed`] hands back to its own state machine.
//!
//! What it keeps: `current_term`, `voted_for` and the log on disk, synced
//! before any reply that depends on them; elections with the log
//! up-to-date check; `AppendEntries` with the consistency check (a follower
//! truncates a conflicting suffix); commit on a majority of matching logs,
//! only for entries of the leader's own term (a leader starts its term with
//! a no-op, unless it carries no commands at all, as `election` does);
//! heartbeat rounds that confirm leadership for read-index reads; leases.
//!
//! The host's message, timer and observation types wrap Raft's through
//! `From`, so one host node can carry Raft and its own protocol.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::{self, Debug};
use std::hash::Hash;
use std::time::Duration;

use crate::lease::Lease;
pub use crate::lease::LeaseClock;
use crate::quorum;
use harness::check::lease::{LeaseClaim, LeaseDeadline, LeaseEvent};
use harness::check::stable_hash;
use harness::check::{Invariant, Observed};
use harness::node::{Ctx, Leadership, Node, NodeId, Observation, TimerId};

pub use crate::election::Term;
pub use log::chain_after;
use log::Log;

mod log;

/// A position in the log, from 1.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct LogIndex(pub u64);

impl fmt::Display for LogIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// What a log entry carries: the user's command, or the no-op a new leader
/// appends to commit its term.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Payload<C> {
    Noop,
    Command(C),
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Entry<C> {
    pub term: Term,
    pub payload: Payload<C>,
}

#[derive(Clone, Debug, Hash, Serialize, Deserialize)]
pub enum RaftMsg<C> {
    RequestVote {
        term: Term,
        last_index: LogIndex,
        last_term: Term,
    },
    RequestVoteReply {
        term: Term,
        granted: bool,
    },
    AppendEntries {
        term: Term,
        prev_index: LogIndex,
        prev_term: Term,
        entries: Vec<Entry<C>>,
        commit: LogIndex,
        round: u64,
    },
    AppendEntriesReply {
        term: Term,
        success: bool,
        match_index: LogIndex,
        /// The `prev_index` of the `AppendEntries` this answers, so the
        /// leader can tell a reply to its current probe from a stale or
        /// duplicated one.
        rejected: LogIndex,
        round: u64,
    },
}

#[derive(Clone, Debug, Hash)]
pub enum RaftTimer {
    Election,
    Heartbeat,
}

/// Facts for the checkers.
#[derive(Clone, Debug, Hash, Serialize, PartialEq, Eq)]
pub enum RaftObs {
    BecameLeader {
        term: Term,
        /// Where its log ends as it takes over: the log a leader starts
        /// from must hold every committed entry.
        last_index: LogIndex,
        last_term: Term,
    },
    SteppedDown {
        term: Term,
    },
    /// This node applied the entry at `index` (`digest` identifies its content).
    Applied {
        index: LogIndex,
        term: Term,
        digest: u64,
    },
    /// The node (re)started: whatever it led or held before is gone with
    /// its memory.
    Started {
        term: Term,
        /// Where its log, as loaded from disk, ends.
        last_index: LogIndex,
    },
    /// This node stood for election in `term`, voting for itself (synced).
    BecameCandidate {
        term: Term,
    },
    /// This node granted its vote in `term` (to `candidate`).
    Voted {
        term: Term,
        candidate: NodeId,
    },
    /// With leases: this node heard `leader` of `term` and promises not to
    /// vote for anyone else until its monotonic clock reads `until`.
    Promised {
        term: Term,
        leader: NodeId,
        until: harness::time::MonoTime,
    },
    /// This node refused `candidate` a vote in `term`, bound by a lease
    /// promise to the leader it last heard.
    RefusedVote {
        term: Term,
        candidate: NodeId,
    },
    /// This node wrote the entry at `index` to its log (as leader, or
    /// from a leader's `AppendEntries`): `digest` identifies the entry,
    /// `chain` the whole log up to it ([`chain_after`]).
    Stored {
        index: LogIndex,
        term: Term,
        digest: u64,
        chain: u64,
    },
    /// This node discarded its log from `from` on (a conflicting suffix).
    Truncated {
        from: LogIndex,
    },
    /// The leader's read lease now runs until this reading of its own
    /// clock (the one it measures the lease on).
    HoldsLease {
        term: Term,
        until: LeaseDeadline,
    },
}

impl Observation for RaftObs {
    fn leadership(&self) -> Option<Leadership> {
        match self {
            RaftObs::BecameLeader { .. } => Some(Leadership::Elected),
            RaftObs::SteppedDown { .. } | RaftObs::Started { .. } => Some(Leadership::SteppedDown),
            RaftObs::Applied { .. }
            | RaftObs::HoldsLease { .. }
            | RaftObs::Stored { .. }
            | RaftObs::Truncated { .. }
            | RaftObs::BecameCandidate { .. }
            | RaftObs::Voted { .. }
            | RaftObs::RefusedVote { .. }
            | RaftObs::Promised { .. } => None,
        }
    }
    /// Elections, votes and restarts: where a fault does the most harm.
    fn trigger(&self) -> Option<&'static str> {
        match self {
            RaftObs::BecameLeader { .. } => Some("leader"),
            RaftObs::SteppedDown { .. } => Some("stepped-down"),
            RaftObs::Started { .. } => Some("started"),
            RaftObs::BecameCandidate { .. } => Some("candidate"),
            RaftObs::Voted { .. } => Some("voted"),
            RaftObs::RefusedVote { .. } => Some("refused-vote"),
            RaftObs::Applied { .. }
            | RaftObs::HoldsLease { .. }
            | RaftObs::Stored { .. }
            | RaftObs::Promised { .. }
            | RaftObs::Truncated { .. } => None,
        }
    }
    fn lease(&self) -> Option<LeaseEvent> {
        let resource = || crate::election::LEADERSHIP.to_owned();
        match *self {
            RaftObs::HoldsLease { term, until } => {
                Some(LeaseEvent::Holds(LeaseClaim { resource: resource(), holder: None, epoch: term.0, until }))
            }
            RaftObs::SteppedDown { .. } | RaftObs::Started { .. } => {
                Some(LeaseEvent::Ends { resource: resource(), holder: None })
            }
            RaftObs::BecameLeader { .. }
            | RaftObs::Applied { .. }
            | RaftObs::Stored { .. }
            | RaftObs::Truncated { .. }
            | RaftObs::BecameCandidate { .. }
            | RaftObs::Voted { .. }
            | RaftObs::RefusedVote { .. }
            | RaftObs::Promised { .. } => None,
        }
    }
}

#[derive(Clone, Debug)]
pub struct RaftConfig {
    pub election_timeout: Duration,
    pub heartbeat: Duration,
    /// Most entries in one `AppendEntries`.
    pub max_batch: usize,
    /// Planted bug: the leader commits an entry as soon as it appends it.
    pub commit_without_majority: bool,
    /// Planted bug: a follower's consistency check compares only
    /// `prev_index` with its log's length, not the term of the entry
    /// there, so it appends after an entry the leader never had.
    pub prev_term_unchecked: bool,
    /// Planted bug: the vote lives only in memory (a restarted node may
    /// vote twice in one term).
    pub vote_not_persisted: bool,
    /// Planted bug: every election timeout is exactly `election_timeout`
    /// (no randomization).
    pub fixed_election_timeout: bool,
    /// Whether a new leader appends a no-op to commit its term (a log with
    /// commands needs it; an election with no commands has nothing to commit).
    pub noop_on_election: bool,
    /// Leader leases for local reads: followers promise not to vote for
    /// `election_timeout` after hearing the leader; the leader's lease runs
    /// from an acknowledged round's send time.
    pub leases: Option<LeaseClock>,
    /// The clock drift the lease must survive, in parts per million.
    pub max_drift_ppm: f64,
    /// How many of the servers (the first ones) form the cluster; `None`:
    /// all of them. A system whose last server plays another part (the
    /// `lock` system's protected resource) keeps it out of the quorum.
    pub members: Option<u32>,
}

impl Default for RaftConfig {
    fn default() -> Self {
        RaftConfig {
            election_timeout: Duration::from_millis(150),
            heartbeat: Duration::from_millis(50),
            max_batch: 64,
            commit_without_majority: false,
            prev_term_unchecked: false,
            vote_not_persisted: false,
            fixed_election_timeout: false,
            noop_on_election: true,
            leases: None,
            max_drift_ppm: 200.0,
            members: None,
        }
    }
}

/// A node that can carry Raft: its messages, timers and observations wrap
/// Raft's. Every node type whose associated types convert qualifies.
pub trait RaftHost<C>: Node<Msg: From<RaftMsg<C>>, Timer: From<RaftTimer>, Obs: From<RaftObs>> {}

impl<C, N> RaftHost<C> for N where N: Node<Msg: From<RaftMsg<C>>, Timer: From<RaftTimer>, Obs: From<RaftObs>> {}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Follower,
    Candidate,
    Leader,
}

pub struct Raft<C> {
    config: RaftConfig,
    term: Term,
    voted_for: Option<NodeId>,
    /// Entry `i` (from 1) is `log[i - 1]`.
    log: Log<C>,
    commit: LogIndex,
    applied: LogIndex,
    role: Role,
    leader: Option<NodeId>,
    votes: BTreeSet<NodeId>,
    election_timer: Option<TimerId>,
    heartbeat_timer: Option<TimerId>,
    next_index: BTreeMap<NodeId, LogIndex>,
    match_index: BTreeMap<NodeId, LogIndex>,
    /// Reused by `advance_commit`, which runs on every reply a leader gets.
    matched_scratch: Vec<LogIndex>,
    /// Heartbeat rounds: the latest sent, and, for recent ones, when they
    /// were sent (on the lease's clock) and who acknowledged them.
    round: u64,
    acks: BTreeMap<u64, (LeaseDeadline, BTreeSet<NodeId>)>,
    /// Followers sent entries whose answer has not come: a proposal does
    /// not send to them, and goes out with the entries after it when that
    /// answer comes (or with the next heartbeat), instead of sending every
    /// unacknowledged entry again on each proposal. (Heartbeats and answers
    /// still send while a follower is awaited.)
    awaiting: BTreeSet<NodeId>,
    confirmed_round: u64,
    /// Leases: when this node last heard its leader (monotonic), and, as
    /// leader, until when its lease runs (on the lease's clock).
    heard_leader_at: Option<harness::time::MonoTime>,
    lease: Option<Lease>,
}

const TERM_KEY: &str = "raft/term";
const VOTE_KEY: &str = "raft/vote";

impl<C: Clone + Debug + Hash + Serialize + DeserializeOwned + PartialEq + 'static> Raft<C> {
    /// Rebuilds from the disk: term, vote and log survive; commit and
    /// applied start at 0 and are relearned.
    pub fn new(config: RaftConfig, disk: &harness::Disk) -> Self {
        let log = Log::load(disk);
        let lease = config.leases.map(|clock| Lease::new(clock, config.election_timeout, config.max_drift_ppm));
        let voted_for = if config.vote_not_persisted { None } else { disk.get(VOTE_KEY) };
        Raft {
            config,
            term: disk.get::<u64>(TERM_KEY).map(Term).unwrap_or_default(),
            voted_for,
            log,
            commit: LogIndex(0),
            applied: LogIndex(0),
            role: Role::Follower,
            leader: None,
            votes: BTreeSet::new(),
            election_timer: None,
            heartbeat_timer: None,
            next_index: BTreeMap::new(),
            match_index: BTreeMap::new(),
            matched_scratch: Vec::new(),
            round: 0,
            acks: BTreeMap::new(),
            awaiting: BTreeSet::new(),
            confirmed_round: 0,
            heard_leader_at: None,
            lease,
        }
    }

    pub fn term(&self) -> Term {
        self.term
    }
    pub fn is_leader(&self) -> bool {
        self.role == Role::Leader
    }
    /// The leader this node last heard from (itself when leading).
    pub fn leader_hint(&self) -> Option<NodeId> {
        self.leader
    }
    pub fn commit_index(&self) -> LogIndex {
        self.commit
    }
    pub fn applied(&self) -> LogIndex {
        self.applied
    }
    pub fn last_index(&self) -> LogIndex {
        self.log.last_index()
    }
    /// The term of the entry at `i` (term 0 before the log starts).
    pub fn entry_term(&self, i: LogIndex) -> Term {
        self.term_at(i)
    }
    /// The latest heartbeat round a majority acknowledged.
    pub fn confirmed_round(&self) -> u64 {
        self.confirmed_round
    }

    fn term_at(&self, i: LogIndex) -> Term {
        self.log.term_at(i)
    }

    /// The cluster's servers: all of them, or the first `members`.
    fn cluster_size<N: RaftHost<C>>(&self, ctx: &Ctx<'_, N>) -> usize {
        self.config.members.map_or(ctx.servers().len(), |m| (m as usize).min(ctx.servers().len()))
    }

    fn majority<N: RaftHost<C>>(&self, ctx: &Ctx<'_, N>) -> usize {
        quorum::majority(self.cluster_size(ctx))
    }

    /// The other members of the cluster.
    fn peers<'a, N: RaftHost<C>>(&self, ctx: &Ctx<'a, N>) -> impl Iterator<Item = NodeId> + 'a {
        let size = self.cluster_size(ctx) as u32;
        ctx.peers().iter().copied().filter(move |p| p.index() < size)
    }

    pub fn start<N: RaftHost<C>>(&mut self, ctx: &mut Ctx<'_, N>) {
        ctx.observe(RaftObs::Started { term: self.term, last_index: self.last_index() }.into());
        if self.config.leases.is_some() {
            // It may have promised a leader, just before a crash, not to
            // vote: honour that promise for as long as it could last.
            self.heard_leader_at = Some(ctx.mono_now());
        }
        self.reset_election_timer(ctx);
    }

    fn persist_state<N: RaftHost<C>>(&self, ctx: &mut Ctx<'_, N>) {
        ctx.disk().put(TERM_KEY, &self.term.0);
        if self.config.vote_not_persisted {
            return; // the planted bug
        }
        match self.voted_for {
            Some(v) => ctx.disk().put(VOTE_KEY, &v),
            None => ctx.disk().remove(VOTE_KEY),
        }
    }

    fn reset_election_timer<N: RaftHost<C>>(&mut self, ctx: &mut Ctx<'_, N>) {
        if let Some(t) = self.election_timer.take() {
            ctx.cancel_timer(t);
        }
        let emin = self.config.election_timeout;
        let after = if self.config.fixed_election_timeout {
            emin // the planted bug: nodes that start together time out together
        } else {
            ctx.rng().duration_between(emin, emin * 2 - Duration::from_nanos(1))
        };
        self.election_timer = Some(ctx.set_timer(after, RaftTimer::Election.into()));
    }

    fn adopt_term<N: RaftHost<C>>(&mut self, ctx: &mut Ctx<'_, N>, term: Term) {
        assert!(term > self.term, "terms only grow: {term} after {}", self.term);
        if self.role == Role::Leader {
            ctx.observe(RaftObs::SteppedDown { term: self.term }.into());
        }
        // A leader's heartbeats or a candidate's re-asks: neither goes on.
        if let Some(t) = self.heartbeat_timer.take() {
            ctx.cancel_timer(t);
        }
        if self.election_timer.is_none() {
            self.reset_election_timer(ctx); // a leader had none
        }
        self.term = term;
        self.voted_for = None;
        self.role = Role::Follower;
        self.leader = None;
        if let Some(l) = &mut self.lease {
            l.clear();
        }
        self.persist_state(ctx);
        ctx.disk().sync();
    }

    pub fn on_message<N: RaftHost<C>>(&mut self, ctx: &mut Ctx<'_, N>, from: NodeId, msg: RaftMsg<C>) {
        match msg {
            RaftMsg::RequestVote { term, last_index, last_term } => {
                self.on_request_vote(ctx, from, term, last_index, last_term)
            }
            RaftMsg::RequestVoteReply { term, granted } => self.on_request_vote_reply(ctx, from, term, granted),
            RaftMsg::AppendEntries { term, prev_index, prev_term, entries, commit, round } => {
                self.on_append_entries(ctx, from, term, prev_index, prev_term, entries, commit, round)
            }
            RaftMsg::AppendEntriesReply { term, success, match_index, rejected, round } => {
                self.on_append_entries_reply(ctx, from, term, success, match_index, rejected, round)
            }
        }
    }

    pub fn on_timer<N: RaftHost<C>>(&mut self, ctx: &mut Ctx<'_, N>, timer: RaftTimer) {
        match timer {
            RaftTimer::Election => self.on_election_timeout(ctx),
            RaftTimer::Heartbeat => self.on_heartbeat_timeout(ctx),
        }
    }

    fn on_request_vote<N: RaftHost<C>>(
        &mut self,
        ctx: &mut Ctx<'_, N>,
        from: NodeId,
        term: Term,
        last_index: LogIndex,
        last_term: Term,
    ) {
        let promised = self.config.leases.is_some()
            && self.heard_leader_at.is_some_and(|h| ctx.mono_now() < h.saturating_add(self.config.election_timeout));
        if promised {
            // The leader's lease may still be valid: no votes, no term change.
            ctx.observe(RaftObs::RefusedVote { term, candidate: from }.into());
            return;
        }
        if term > self.term {
            self.adopt_term(ctx, term);
        }
        let mine = (self.term_at(self.last_index()), self.last_index());
        let up_to_date = (last_term, last_index) >= mine;
        let granted = term == self.term && up_to_date && self.voted_for.is_none_or(|v| v == from);
        if granted {
            self.voted_for = Some(from);
            self.persist_state(ctx);
            ctx.disk().sync();
            self.reset_election_timer(ctx);
            ctx.observe(RaftObs::Voted { term: self.term, candidate: from }.into());
        }
        ctx.send(from, RaftMsg::RequestVoteReply { term: self.term, granted }.into());
    }

    fn on_request_vote_reply<N: RaftHost<C>>(&mut self, ctx: &mut Ctx<'_, N>, from: NodeId, term: Term, granted: bool) {
        if term > self.term {
            self.adopt_term(ctx, term);
            return;
        }
        if self.role == Role::Candidate && term == self.term && granted {
            self.votes.insert(from);
            if self.votes.len() >= self.majority(ctx) {
                self.become_leader(ctx);
            }
        }
    }

    fn on_election_timeout<N: RaftHost<C>>(&mut self, ctx: &mut Ctx<'_, N>) {
        self.election_timer = None;
        if self.role == Role::Leader {
            return;
        }
        self.term = Term(self.term.0 + 1);
        self.role = Role::Candidate;
        self.leader = None;
        self.voted_for = Some(ctx.me());
        self.votes = BTreeSet::from([ctx.me()]);
        self.persist_state(ctx);
        ctx.disk().sync();
        ctx.observe(RaftObs::BecameCandidate { term: self.term }.into());
        self.reset_election_timer(ctx);
        if self.votes.len() >= self.majority(ctx) {
            self.become_leader(ctx);
            return;
        }
        self.ask_for_votes(ctx);
    }

    /// Asks every peer that has not granted its vote yet, and asks again
    /// every heartbeat interval (Raft retries unanswered RPCs): a request
    /// lost, or ignored by a voter bound by a lease promise, does not cost
    /// a whole election timeout.
    fn ask_for_votes<N: RaftHost<C>>(&mut self, ctx: &mut Ctx<'_, N>) {
        debug_assert_eq!(self.role, Role::Candidate);
        let (last_index, last_term) = (self.last_index(), self.term_at(self.last_index()));
        for peer in self.peers(ctx) {
            if !self.votes.contains(&peer) {
                ctx.send(peer, RaftMsg::RequestVote { term: self.term, last_index, last_term }.into());
            }
        }
        if let Some(t) = self.heartbeat_timer.take() {
            ctx.cancel_timer(t);
        }
        self.heartbeat_timer = Some(ctx.set_timer(self.config.heartbeat, RaftTimer::Heartbeat.into()));
    }

    fn become_leader<N: RaftHost<C>>(&mut self, ctx: &mut Ctx<'_, N>) {
        self.role = Role::Leader;
        self.leader = Some(ctx.me());
        if let Some(t) = self.election_timer.take() {
            ctx.cancel_timer(t);
        }
        let next = LogIndex(self.last_index().0 + 1);
        self.next_index = self.peers(ctx).map(|p| (p, next)).collect();
        self.awaiting.clear();
        self.match_index = self.peers(ctx).map(|p| (p, LogIndex(0))).collect();
        self.acks.clear();
        if let Some(l) = &mut self.lease {
            l.clear();
        }
        let (last_index, last_term) = (self.last_index(), self.term_at(self.last_index()));
        ctx.observe(RaftObs::BecameLeader { term: self.term, last_index, last_term }.into());
        // A no-op commits this term, so earlier entries commit with it.
        if self.config.noop_on_election {
            self.append(ctx, Payload::Noop);
        }
        self.send_heartbeats(ctx);
        if let Some(t) = self.heartbeat_timer.take() {
            ctx.cancel_timer(t);
        }
        self.heartbeat_timer = Some(ctx.set_timer(self.config.heartbeat, RaftTimer::Heartbeat.into()));
    }

    /// Appends to the leader's log and makes it durable.
    fn append<N: RaftHost<C>>(&mut self, ctx: &mut Ctx<'_, N>, payload: Payload<C>) -> LogIndex {
        debug_assert!(self.is_leader());
        let index = self.log.push(ctx, Entry { term: self.term, payload });
        ctx.disk().sync();
        if self.config.commit_without_majority {
            self.commit = index; // the planted bug: no one else has it yet
        } else {
            self.advance_commit(ctx); // a single server is its own majority
        }
        index
    }

    /// Proposes a command; `None` when this node is not the leader.
    pub fn propose<N: RaftHost<C>>(&mut self, ctx: &mut Ctx<'_, N>, command: C) -> Option<LogIndex> {
        if !self.is_leader() {
            return None;
        }
        let index = self.append(ctx, Payload::Command(command));
        for peer in self.peers(ctx) {
            if !self.awaiting.contains(&peer) {
                self.replicate(ctx, peer);
            }
        }
        Some(index)
    }

    /// Starts a read-index read: returns the commit index to wait for and
    /// the heartbeat round whose acknowledgement by a majority proves this
    /// node was still leader. `None` if not leader or if its term has not
    /// committed an entry yet.
    pub fn start_read<N: RaftHost<C>>(&mut self, ctx: &mut Ctx<'_, N>) -> Option<(LogIndex, u64)> {
        debug_assert!(self.config.noop_on_election, "reads wait for an entry of the leader's term: the no-op");
        if !self.is_leader() || self.term_at(self.commit) != self.term {
            return None;
        }
        let read_index = self.commit;
        self.send_heartbeats(ctx);
        Some((read_index, self.round))
    }

    fn send_heartbeats<N: RaftHost<C>>(&mut self, ctx: &mut Ctx<'_, N>) {
        self.round += 1;
        let sent = self.lease_now(ctx);
        self.acks.insert(self.round, (sent, BTreeSet::from([ctx.me()])));
        self.acks.retain(|&r, _| r + 64 > self.round);
        if self.majority(ctx) == 1 {
            self.confirmed_round = self.round;
            self.extend_lease(ctx, sent);
        }
        for peer in self.peers(ctx) {
            self.replicate(ctx, peer);
        }
    }

    /// Sends `peer` the entries it lacks (or an empty heartbeat).
    fn replicate<N: RaftHost<C>>(&mut self, ctx: &mut Ctx<'_, N>, peer: NodeId) {
        let next = self.next_index.get(&peer).copied().unwrap_or(LogIndex(1));
        let prev_index = LogIndex(next.0 - 1);
        let entries = self.log.after(prev_index, self.config.max_batch);
        if !entries.is_empty() {
            self.awaiting.insert(peer);
        }
        let msg = RaftMsg::AppendEntries {
            term: self.term,
            prev_index,
            prev_term: self.term_at(prev_index),
            entries,
            commit: self.commit,
            round: self.round,
        };
        ctx.send(peer, msg.into());
    }

    fn on_heartbeat_timeout<N: RaftHost<C>>(&mut self, ctx: &mut Ctx<'_, N>) {
        self.heartbeat_timer = None;
        match self.role {
            Role::Leader => {
                self.send_heartbeats(ctx);
                self.heartbeat_timer = Some(ctx.set_timer(self.config.heartbeat, RaftTimer::Heartbeat.into()));
            }
            Role::Candidate => self.ask_for_votes(ctx),
            Role::Follower => {}
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn on_append_entries<N: RaftHost<C>>(
        &mut self,
        ctx: &mut Ctx<'_, N>,
        from: NodeId,
        term: Term,
        prev_index: LogIndex,
        prev_term: Term,
        entries: Vec<Entry<C>>,
        commit: LogIndex,
        round: u64,
    ) {
        if term < self.term {
            let reply = RaftMsg::AppendEntriesReply {
                term: self.term,
                success: false,
                match_index: LogIndex(0),
                rejected: prev_index,
                round,
            };
            ctx.send(from, reply.into());
            return;
        }
        if term > self.term {
            self.adopt_term(ctx, term);
        }
        assert!(self.role != Role::Leader, "{} leads term {term} and heard another leader {from}", ctx.me());
        if self.role == Role::Candidate {
            if let Some(t) = self.heartbeat_timer.take() {
                ctx.cancel_timer(t); // no more re-asks: this term has a leader
            }
        }
        self.role = Role::Follower;
        self.leader = Some(from);
        self.heard_leader_at = Some(ctx.mono_now());
        if self.config.leases.is_some() {
            let until = ctx.mono_now().saturating_add(self.config.election_timeout);
            ctx.observe(RaftObs::Promised { term, leader: from, until }.into());
        }
        self.reset_election_timer(ctx);
        // The consistency check: the entry before the new ones must match.
        let check_term = !self.config.prev_term_unchecked;
        if prev_index > self.last_index() || (check_term && self.term_at(prev_index) != prev_term) {
            let hint = LogIndex(prev_index.0.min(self.last_index().0 + 1).saturating_sub(1));
            let reply =
                RaftMsg::AppendEntriesReply { term, success: false, match_index: hint, rejected: prev_index, round };
            ctx.send(from, reply.into());
            return;
        }
        let count = entries.len() as u64;
        self.store_entries(ctx, prev_index, entries);
        let matched = LogIndex(prev_index.0 + count);
        self.learn_commit(commit.min(matched));
        ctx.disk().sync();
        let reply =
            RaftMsg::AppendEntriesReply { term, success: true, match_index: matched, rejected: prev_index, round };
        ctx.send(from, reply.into());
    }

    /// Moves the commit index up to `commit`, never down: a stale or
    /// reordered `AppendEntries` vouches for a shorter prefix than one
    /// this node already knows is committed.
    fn learn_commit(&mut self, commit: LogIndex) {
        let before = self.commit;
        self.commit = self.commit.max(commit);
        assert!(self.commit >= before, "the commit index went back from {before} to {}", self.commit);
        assert!(self.applied <= self.commit, "applied {} beyond commit {}", self.applied, self.commit);
    }

    /// Writes entries after `prev`, truncating a conflicting suffix first.
    fn store_entries<N: RaftHost<C>>(&mut self, ctx: &mut Ctx<'_, N>, prev: LogIndex, entries: Vec<Entry<C>>) {
        for (k, entry) in entries.into_iter().enumerate() {
            let index = LogIndex(prev.0 + k as u64 + 1);
            if let Some(existing) = self.log.get(index) {
                if existing.term == entry.term {
                    continue;
                }
                // A conflict: everything from here on goes. A committed
                // entry never conflicts; the checkers are told what goes,
                // and "committed entries are never lost or changed" judges
                // it (an assertion here would have to be switched off for
                // the commit-without-majority bug, which breaks exactly this).
                self.log.truncate_from(ctx, index);
            }
            self.log.push(ctx, entry);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn on_append_entries_reply<N: RaftHost<C>>(
        &mut self,
        ctx: &mut Ctx<'_, N>,
        from: NodeId,
        term: Term,
        success: bool,
        match_index: LogIndex,
        rejected: LogIndex,
        round: u64,
    ) {
        if term > self.term {
            self.adopt_term(ctx, term);
            return;
        }
        if !self.is_leader() || term < self.term {
            return;
        }
        // Any answer ends the wait: a stale one at worst sends a batch early.
        self.awaiting.remove(&from);
        let majority = self.majority(ctx);
        if let Some((sent, acks)) = self.acks.get_mut(&round) {
            acks.insert(from);
            if acks.len() >= majority {
                let sent = *sent;
                self.confirmed_round = self.confirmed_round.max(round);
                self.extend_lease(ctx, sent);
            }
        }
        // Only a reply that moves this follower on sends it more: a stale or
        // duplicated reply sends nothing (the next heartbeat probes again).
        // Answering every reply with a send let duplicated rejections breed
        // without end: 5 million messages in 40 s of
        // `scenarios/regressions/replication-probe-storm.toml`.
        if success {
            let m = self.match_index.entry(from).or_default();
            if match_index <= *m {
                // Stale: still, never probe below what the follower acknowledged.
                let floor = LogIndex(m.0 + 1);
                let next = self.next_index.entry(from).or_insert(floor);
                *next = (*next).max(floor);
                return;
            }
            *m = match_index;
            let next = self.next_index.entry(from).or_insert(LogIndex(1));
            *next = (*next).max(LogIndex(match_index.0 + 1));
            self.advance_commit(ctx);
            if match_index < self.last_index() {
                self.replicate(ctx, from);
            }
        } else {
            let next = self.next_index.get(&from).copied().unwrap_or(LogIndex(1));
            if rejected.0 + 1 != next.0 {
                return; // a rejection of an earlier probe
            }
            // Back up to just after what the follower says it may hold, but
            // never below what it acknowledged in this term (acknowledged
            // entries stay): a delayed rejection must not undo a match.
            let floor = LogIndex(self.match_index.get(&from).map_or(0, |m| m.0) + 1);
            let next = LogIndex(match_index.0 + 1).max(floor).min(next);
            self.next_index.insert(from, next);
            self.replicate(ctx, from);
        }
    }

    /// Now, on the clock the lease is measured on (the monotonic clock
    /// when there are no leases: heartbeat rounds still keep a send time).
    fn lease_now<N: RaftHost<C>>(&self, ctx: &Ctx<'_, N>) -> LeaseDeadline {
        self.lease.as_ref().map_or(LeaseDeadline::Mono(ctx.mono_now()), |l| l.now(ctx))
    }

    /// A majority acknowledged a round sent at `sent`: the lease runs from
    /// then (see [`crate::lease`]); the checkers hear of every extension.
    fn extend_lease<N: RaftHost<C>>(&mut self, ctx: &mut Ctx<'_, N>, sent: LeaseDeadline) {
        let Some(until) = self.lease.as_mut().and_then(|l| l.extend(sent)) else { return };
        ctx.observe(RaftObs::HoldsLease { term: self.term, until }.into());
    }

    /// A lease read: the index to apply up to before answering, if this
    /// node leads, has committed in its term, and holds a valid lease.
    pub fn lease_read<N: RaftHost<C>>(&self, ctx: &Ctx<'_, N>) -> Option<LogIndex> {
        debug_assert!(self.config.noop_on_election, "reads wait for an entry of the leader's term: the no-op");
        let valid = self.lease.as_ref().is_some_and(|l| l.is_valid(ctx));
        (self.is_leader() && valid && self.term_at(self.commit) == self.term).then_some(self.commit)
    }

    /// Commits the highest index a majority holds, if it is of this term.
    fn advance_commit<N: RaftHost<C>>(&mut self, ctx: &Ctx<'_, N>) {
        let mut matched = std::mem::take(&mut self.matched_scratch);
        matched.clear();
        matched.extend(self.match_index.values().copied());
        matched.push(self.last_index());
        debug_assert_eq!(matched.len(), self.cluster_size(ctx), "a match index for every peer");
        let candidate = quorum::majority_reached(&mut matched);
        self.matched_scratch = matched;
        if candidate > self.commit && self.term_at(candidate) == self.term {
            self.commit = candidate;
        }
    }

    /// Entries committed but not yet applied, in order; marks them applied
    /// and reports each to the checkers.
    pub fn take_committed<N: RaftHost<C>>(&mut self, ctx: &mut Ctx<'_, N>) -> Vec<(LogIndex, Entry<C>)> {
        debug_assert!(self.applied <= self.commit, "applied {} beyond commit {}", self.applied, self.commit);
        let mut out = Vec::new();
        let upto = self.commit.min(self.last_index());
        while self.applied < upto {
            self.applied = LogIndex(self.applied.0 + 1);
            let entry = self.log.get(self.applied).expect("applied entries are in the log").clone();
            let digest = stable_hash(&entry);
            ctx.observe(RaftObs::Applied { index: self.applied, term: entry.term, digest }.into());
            out.push((self.applied, entry));
        }
        out
    }
}

/// The events Raft's observations name, for `[[trigger]]`.
pub const TRIGGER_EVENTS: &[&str] = &["leader", "stepped-down", "started", "candidate", "voted", "refused-vote"];

pub const COMMITTED_NEVER_CHANGE: &str = "committed entries are never lost or changed";

/// "committed entries are never lost or changed": no two nodes apply
/// different entries at one index, and no node discards an entry it has
/// applied (applied means committed). `raft_of` picks Raft's facts out of
/// the host's observations.
pub struct CommittedNeverChange<F> {
    applied: BTreeMap<LogIndex, (Term, u64, NodeId)>,
    /// The highest index each node has applied, across its restarts: what
    /// a node applied stays committed, on its disk too.
    applied_by: BTreeMap<NodeId, LogIndex>,
    raft_of: F,
    /// Whether any index was applied twice (by two nodes, or one node
    /// across a restart): with none, nothing was compared.
    compared: bool,
}

impl<F> CommittedNeverChange<F> {
    pub fn new(raft_of: F) -> Self {
        CommittedNeverChange { applied: BTreeMap::new(), applied_by: BTreeMap::new(), raft_of, compared: false }
    }
}

impl<O, F: Fn(&O) -> Option<&RaftObs>> Invariant<O> for CommittedNeverChange<F> {
    fn name(&self) -> &str {
        COMMITTED_NEVER_CHANGE
    }
    fn vacuous(&self) -> bool {
        !self.compared
    }
    fn on_observation(&mut self, o: &Observed<O>) -> Result<(), String> {
        match (self.raft_of)(&o.obs) {
            Some(&RaftObs::Applied { index, term, digest }) => {
                let by = self.applied_by.entry(o.node).or_default();
                *by = (*by).max(index);
                match self.applied.get(&index) {
                    Some(&(t, d, first)) if (t, d) != (term, digest) => Err(format!(
                        "{} applied an entry of term {term} at index {index}, where {first} had applied a different entry of term {t}",
                        o.node
                    )),
                    Some(_) => {
                        self.compared = true;
                        Ok(())
                    }
                    None => {
                        self.applied.insert(index, (term, digest, o.node));
                        Ok(())
                    }
                }
            }
            Some(&RaftObs::Truncated { from }) => match self.applied_by.get(&o.node) {
                Some(&applied) if from <= applied => Err(format!(
                    "{} discarded its log from index {from}, though it had applied (so committed) up to {applied}",
                    o.node
                )),
                _ => Ok(()),
            },
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft_checks::tests::fact;

    #[test]
    fn discarding_an_applied_entry_is_a_lost_committed_entry() {
        fn itself(o: &RaftObs) -> Option<&RaftObs> {
            Some(o)
        }
        let mut check = CommittedNeverChange::new(itself);
        let applied = RaftObs::Applied { index: LogIndex(5), term: Term(1), digest: 9 };
        assert!(check.on_observation(&fact(0, applied)).is_ok());
        // Discarding beyond what it applied is an ordinary conflict.
        assert!(check.on_observation(&fact(0, RaftObs::Truncated { from: LogIndex(6) })).is_ok());
        let err = check.on_observation(&fact(0, RaftObs::Truncated { from: LogIndex(3) })).unwrap_err();
        assert!(err.contains("discarded its log from index 3") && err.contains("up to 5"), "{err}");
        // Another node that applied nothing may discard freely.
        assert!(check.on_observation(&fact(1, RaftObs::Truncated { from: LogIndex(1) })).is_ok());
    }
}
