//! The lock service: the lock table as a state machine ([`Locks`]), on the
//! Raft log ([`Service`]) or on one server with a durable table
//! ([`SingleServer`], the `token-not-persisted` variant).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

use harness::check::lease::LeaseDeadline;
use harness::node::{Ctx, NodeId, TimerId};

use super::{Config, LockCommand, LockNode, LockOp, Msg, Reply, Timer, Token, Variant};
use crate::raft::{LogIndex, Payload, Raft, RaftConfig};

/// A held lock.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Held {
    pub client: NodeId,
    /// The client's request that got it: a retry of that request gets the
    /// same grant back; a new acquisition by the holder gets a new token.
    pub request: u64,
    pub token: Token,
    pub ttl: Duration,
    /// The stamp of its grant or latest renewal (a log index on Raft).
    pub stamp: u64,
}

/// Who holds each lock: the replicated (or durable) state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Locks {
    held: BTreeMap<String, Held>,
}

/// What applying one command did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// The reply for the client that asked, if any.
    pub reply: Option<(NodeId, Reply)>,
    /// A lease (re)started: its lock and TTL, timed from now.
    pub renewed: Option<(String, Duration)>,
    /// A lock became free.
    pub freed: Option<String>,
}

impl Locks {
    /// Applies `command`; `token` is the token a grant gets, `stamp` marks
    /// a grant or renewal (so a stale `expire` is told apart). A retried
    /// acquire request of the holder gets its grant back (and renews the lease).
    /// `checked_release`: a release frees the lock only for its holder and
    /// token (without it, the `unchecked-release` bug, for anyone).
    pub fn apply(&mut self, command: &LockCommand, token: Token, stamp: u64, checked_release: bool) -> Applied {
        match command {
            LockCommand::Client { client, id, op } => {
                self.apply_op((*client, *id), op, (token, stamp), checked_release)
            }
            LockCommand::Expire { lock, stamp } => {
                let expired = self.held.get(lock).is_some_and(|h| h.stamp == *stamp);
                if expired {
                    self.held.remove(lock);
                }
                Applied { freed: expired.then(|| lock.clone()), ..Applied::default() }
            }
        }
    }

    fn apply_op(
        &mut self,
        (client, id): (NodeId, u64),
        op: &LockOp,
        (token, stamp): (Token, u64),
        checked_release: bool,
    ) -> Applied {
        let reply = |r: Reply| Some((client, r));
        match op {
            LockOp::Acquire { lock, ttl } => match self.held.get_mut(lock) {
                Some(h) if (h.client, h.request) == (client, id) => {
                    h.stamp = stamp;
                    Applied {
                        reply: reply(Reply::Granted { token: h.token }),
                        renewed: Some((lock.clone(), *ttl)),
                        freed: None,
                    }
                }
                // Held by another, or by this client under an acquisition it
                // has given up on (its release was lost): it waits like anyone.
                Some(_) => Applied { reply: reply(Reply::Busy), ..Applied::default() },
                None => {
                    self.held.insert(lock.clone(), Held { client, request: id, token, ttl: *ttl, stamp });
                    Applied { reply: reply(Reply::Granted { token }), renewed: Some((lock.clone(), *ttl)), freed: None }
                }
            },
            LockOp::Keepalive { lock, token } => match self.held.get_mut(lock) {
                Some(h) if h.client == client && h.token == *token => {
                    h.stamp = stamp;
                    Applied { reply: reply(Reply::Renewed), renewed: Some((lock.clone(), h.ttl)), freed: None }
                }
                _ => Applied { reply: reply(Reply::Lost), ..Applied::default() },
            },
            LockOp::Release { lock, token } => {
                let owns = self.held.get(lock).is_some_and(|h| h.client == client && h.token == *token);
                let freed = (owns || !checked_release) && self.held.remove(lock).is_some();
                Applied { reply: reply(Reply::Released), renewed: None, freed: freed.then(|| lock.clone()) }
            }
        }
    }

    pub fn held(&self) -> impl Iterator<Item = (&String, &Held)> {
        self.held.iter()
    }
}

/// When each held lease runs out, on the clock the service times leases
/// on, and the rules for it: kept by whoever decides expiry (the Raft
/// leader, or the single server).
struct Deadlines {
    on_wall_clock: bool,
    /// Per lock: the stamp of the grant or renewal it times, and its end.
    until: BTreeMap<String, (u64, LeaseDeadline)>,
}

impl Deadlines {
    fn new(variant: Variant) -> Self {
        Deadlines { on_wall_clock: variant == Variant::TtlOnWallClock, until: BTreeMap::new() }
    }

    fn now(&self, ctx: &Ctx<'_, LockNode>) -> LeaseDeadline {
        if self.on_wall_clock {
            LeaseDeadline::Wall(ctx.wall_now())
        } else {
            LeaseDeadline::Mono(ctx.mono_now())
        }
    }

    /// The lease of `lock` (as `stamp` left it) runs for `wait` from now.
    fn start(&mut self, ctx: &Ctx<'_, LockNode>, lock: &str, stamp: u64, wait: Duration) {
        let until = match self.now(ctx) {
            LeaseDeadline::Mono(m) => LeaseDeadline::Mono(m.saturating_add(wait)),
            LeaseDeadline::Wall(w) => LeaseDeadline::Wall(w.saturating_add(wait)),
        };
        self.until.insert(lock.to_owned(), (stamp, until));
    }

    /// Every held lock's lease runs for its full wait from now: what a new
    /// leader, or a restarted server, owes leases it cannot date.
    fn restart_all(&mut self, ctx: &Ctx<'_, LockNode>, locks: &Locks, config: &Config) {
        self.until.clear();
        for (lock, held) in locks.held() {
            self.start(ctx, lock, held.stamp, config.service_wait(held.ttl));
        }
    }

    /// Takes out the leases that ran out.
    fn take_expired(&mut self, ctx: &Ctx<'_, LockNode>) -> Vec<(String, u64)> {
        let now = self.now(ctx);
        let passed = |until: &LeaseDeadline| match (until, now) {
            (LeaseDeadline::Mono(u), LeaseDeadline::Mono(n)) => n >= *u,
            (LeaseDeadline::Wall(u), LeaseDeadline::Wall(n)) => n >= *u,
            _ => false,
        };
        let expired: Vec<(String, u64)> =
            self.until.iter().filter(|(_, (_, u))| passed(u)).map(|(l, (t, _))| (l.clone(), *t)).collect();
        for (lock, _) in &expired {
            self.until.remove(lock);
        }
        expired
    }
}

/// The lock service on the Raft log.
pub struct Service {
    config: Config,
    raft: Raft<LockCommand>,
    locks: Locks,
    /// Kept while this node leads.
    deadlines: Deadlines,
    leading: bool,
    /// Armed while this node leads: it looks for leases that ran out.
    expiry_timer: Option<TimerId>,
}

impl Service {
    pub fn new(config: Config, servers: u32, disk: &harness::Disk) -> Self {
        let raft_config = RaftConfig { members: Some(servers.saturating_sub(1)), ..config.raft.clone() };
        Service {
            raft: Raft::new(raft_config, disk),
            deadlines: Deadlines::new(config.variant),
            config,
            locks: Locks::default(),
            leading: false,
            expiry_timer: None,
        }
    }

    pub fn on_start(&mut self, ctx: &mut Ctx<'_, LockNode>) {
        self.raft.start(ctx);
    }

    pub fn on_message(&mut self, ctx: &mut Ctx<'_, LockNode>, from: NodeId, msg: Msg) {
        match msg {
            Msg::Raft(m) => self.raft.on_message(ctx, from, m),
            Msg::Lock { id, op: LockOp::Acquire { lock, .. } } if self.busy_for(from, &lock) => {
                ctx.send(from, Msg::Reply { id, reply: Reply::Busy });
            }
            Msg::Lock { id, op } => {
                if self.raft.propose(ctx, LockCommand::Client { client: from, id, op }).is_none() {
                    ctx.send(from, Msg::NotLeader { id, hint: self.raft.leader_hint() });
                }
            }
            other => panic!("{} got a message for another part: {other:?}", ctx.me()),
        }
        self.pump(ctx);
    }

    /// Whether this leader can refuse `client` the lock without the log:
    /// another client holds it as far as it has applied. Refusing is always
    /// safe (the client tries again); only a grant needs the log. Most
    /// contended acquires end here instead of in a log entry each.
    fn busy_for(&self, client: NodeId, lock: &str) -> bool {
        self.raft.is_leader() && self.locks.held.get(lock).is_some_and(|h| h.client != client)
    }

    pub fn on_timer(&mut self, ctx: &mut Ctx<'_, LockNode>, timer: Timer) {
        match timer {
            Timer::Raft(t) => self.raft.on_timer(ctx, t),
            Timer::Expiry => self.on_expiry_timeout(ctx),
            other => panic!("{} got a client's timer: {other:?}", ctx.me()),
        }
        self.pump(ctx);
    }

    /// Every heartbeat interval while leading (only the leader times leases).
    fn on_expiry_timeout(&mut self, ctx: &mut Ctx<'_, LockNode>) {
        self.expiry_timer = None;
        if !self.raft.is_leader() {
            return;
        }
        self.expiry_timer = Some(ctx.set_timer(self.config.raft.heartbeat, Timer::Expiry));
        for (lock, stamp) in self.deadlines.take_expired(ctx) {
            self.raft.propose(ctx, LockCommand::Expire { lock, stamp });
        }
    }

    /// Applies what committed; as leader, answers clients and times leases.
    fn pump(&mut self, ctx: &mut Ctx<'_, LockNode>) {
        let leader = self.raft.is_leader();
        if leader && !self.leading {
            self.deadlines.restart_all(ctx, &self.locks, &self.config);
            if self.expiry_timer.is_none() {
                self.expiry_timer = Some(ctx.set_timer(self.config.raft.heartbeat, Timer::Expiry));
            }
        }
        self.leading = leader;
        let checked = self.config.variant != Variant::UncheckedRelease;
        let term = self.raft.term();
        for (LogIndex(index), entry) in self.raft.take_committed(ctx) {
            let own_term = entry.term == term;
            let Payload::Command(command) = entry.payload else { continue };
            let applied = self.locks.apply(&command, Token(index), index, checked);
            if !leader {
                continue;
            }
            if let Some((lock, ttl)) = applied.renewed {
                self.deadlines.start(ctx, &lock, index, self.config.service_wait(ttl));
            }
            if let Some(lock) = applied.freed {
                self.deadlines.until.remove(&lock);
            }
            // Only for entries of its own term, which it proposed: a leader
            // that catches up on a long log must not answer every old
            // request in it (their clients moved on, or retry and get the
            // same grant back).
            if let (true, Some((client, reply)), LockCommand::Client { id, .. }) = (own_term, applied.reply, &command) {
                ctx.send(client, Msg::Reply { id: *id, reply });
            }
        }
        if !leader {
            self.deadlines.until.clear();
        }
    }
}

const LOCKS_KEY: &str = "locks";

/// `token-not-persisted`: one lock server, its table durable, its token
/// counter in memory.
pub struct SingleServer {
    config: Config,
    locks: Locks,
    next_token: u64,
    /// Stamps grants and renewals (expiry is decided here, at once, so a
    /// stamp need only differ from the one before).
    next_stamp: u64,
    deadlines: Deadlines,
}

impl SingleServer {
    pub fn new(config: Config, disk: &harness::Disk) -> Self {
        let locks: Locks = disk.get(LOCKS_KEY).unwrap_or_default();
        // The planted bug: "tokens only have to go up, and the table has the
        // latest": but a lock released before the crash left the table.
        let next_token = locks.held().map(|(_, h)| h.token.0).max().unwrap_or(0) + 1;
        let next_stamp = locks.held().map(|(_, h)| h.stamp).max().unwrap_or(0) + 1;
        SingleServer { deadlines: Deadlines::new(config.variant), config, locks, next_token, next_stamp }
    }

    pub fn on_start(&mut self, ctx: &mut Ctx<'_, LockNode>) {
        self.deadlines.restart_all(ctx, &self.locks, &self.config);
        ctx.set_timer(self.config.raft.heartbeat, Timer::Expiry);
    }

    pub fn on_message(&mut self, ctx: &mut Ctx<'_, LockNode>, from: NodeId, msg: Msg) {
        let Msg::Lock { id, op } = msg else { panic!("{} got a message for another part: {msg:?}", ctx.me()) };
        if let Some((client, reply)) = self.apply(ctx, &LockCommand::Client { client: from, id, op }) {
            ctx.send(client, Msg::Reply { id, reply });
        }
    }

    pub fn on_timer(&mut self, ctx: &mut Ctx<'_, LockNode>, timer: Timer) {
        assert!(matches!(timer, Timer::Expiry), "{} got a timer it never sets: {timer:?}", ctx.me());
        ctx.set_timer(self.config.raft.heartbeat, Timer::Expiry);
        for (lock, stamp) in self.deadlines.take_expired(ctx) {
            self.apply(ctx, &LockCommand::Expire { lock, stamp });
        }
    }

    /// Applies and makes the table durable before any reply.
    fn apply(&mut self, ctx: &mut Ctx<'_, LockNode>, command: &LockCommand) -> Option<(NodeId, Reply)> {
        let token = Token(self.next_token);
        let stamp = self.next_stamp;
        self.next_stamp += 1;
        let applied = self.locks.apply(command, token, stamp, true);
        if matches!(applied.reply, Some((_, Reply::Granted { token: t }))  if t == token) {
            self.next_token += 1;
        }
        if let Some((lock, ttl)) = &applied.renewed {
            self.deadlines.start(ctx, lock, stamp, self.config.service_wait(*ttl));
        }
        if let Some(lock) = &applied.freed {
            self.deadlines.until.remove(lock);
        }
        ctx.disk().put(LOCKS_KEY, &self.locks);
        ctx.disk().sync();
        applied.reply
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(client: u32, id: u64, op: LockOp) -> LockCommand {
        LockCommand::Client { client: NodeId::client(client), id, op }
    }
    fn acquire(c: u32, id: u64) -> LockCommand {
        client(c, id, LockOp::Acquire { lock: "l0".into(), ttl: Duration::from_millis(100) })
    }
    fn reply(a: &Applied) -> Option<Reply> {
        a.reply.as_ref().map(|(_, r)| r.clone())
    }

    #[test]
    fn a_grant_is_given_once_a_retry_gets_it_back_and_others_wait() {
        let mut locks = Locks::default();
        let granted = locks.apply(&acquire(0, 1), Token(5), 5, true);
        assert_eq!(reply(&granted), Some(Reply::Granted { token: Token(5) }));
        assert_eq!(granted.renewed, Some(("l0".into(), Duration::from_millis(100))));
        // The same request again (a retry applied twice): the same grant.
        assert_eq!(reply(&locks.apply(&acquire(0, 1), Token(7), 7, true)), Some(Reply::Granted { token: Token(5) }));
        // Another client, or the holder under a new request, waits.
        assert_eq!(reply(&locks.apply(&acquire(1, 1), Token(8), 8, true)), Some(Reply::Busy));
        assert_eq!(reply(&locks.apply(&acquire(0, 2), Token(9), 9, true)), Some(Reply::Busy));
    }

    #[test]
    fn an_expire_names_the_grant_or_renewal_it_times_out() {
        let mut locks = Locks::default();
        locks.apply(&acquire(0, 1), Token(5), 5, true);
        let keepalive = client(0, 2, LockOp::Keepalive { lock: "l0".into(), token: Token(5) });
        assert_eq!(reply(&locks.apply(&keepalive, Token(6), 6, true)), Some(Reply::Renewed));
        // Proposed before the renewal was applied: void.
        let stale = LockCommand::Expire { lock: "l0".into(), stamp: 5 };
        assert_eq!(locks.apply(&stale, Token(7), 7, true).freed, None);
        let current = LockCommand::Expire { lock: "l0".into(), stamp: 6 };
        assert_eq!(locks.apply(&current, Token(8), 8, true).freed, Some("l0".into()));
        assert_eq!(reply(&locks.apply(&keepalive, Token(9), 9, true)), Some(Reply::Lost));
    }

    #[test]
    fn only_the_holder_releases_unless_the_release_is_unchecked() {
        let mut locks = Locks::default();
        locks.apply(&acquire(0, 1), Token(5), 5, true);
        let stale = client(1, 3, LockOp::Release { lock: "l0".into(), token: Token(2) });
        assert_eq!(locks.apply(&stale, Token(6), 6, true).freed, None);
        assert_eq!(locks.apply(&stale, Token(7), 7, false).freed, Some("l0".into()), "Redis DEL");
    }
}
