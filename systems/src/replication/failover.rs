//! `async-failover`: no Raft at all, but primary-backup with asynchronous
//! replication, as its own node type. The primary acknowledges writes at
//! once and ships its whole state to the backups with each ping; a backup
//! that hears no ping for a while promotes itself with whatever it has.
//! Acknowledged writes not yet shipped vanish: the planted bug.

use harness::node::{Ctx, NodeId, TimerId};

use super::{Config, KvCommand, Msg, ReplObs, ReplicaNode, Snapshot, Store, Timer};
use crate::raft::{LogIndex, RaftObs};

pub struct FailoverServer {
    config: Config,
    store: Store,
    /// Epochs are unique per node (`n * 100 + node index`), so two backups
    /// that promote together never share one.
    epoch: u64,
    primary: Option<NodeId>,
    index: u64,
    suspect_timer: Option<TimerId>,
}

impl FailoverServer {
    /// A server with nothing: this variant keeps no disk (its state lives
    /// in memory and in the primary's pings).
    pub fn new(config: Config) -> Self {
        FailoverServer { config, store: Store::default(), epoch: 0, primary: None, index: 0, suspect_timer: None }
    }

    pub(super) fn on_start(&mut self, ctx: &mut Ctx<'_, ReplicaNode>) {
        if ctx.me() == NodeId::server(0) && self.epoch == 0 {
            self.promote(ctx);
        } else {
            self.suspect_later(ctx);
        }
    }

    fn suspect_later(&mut self, ctx: &mut Ctx<'_, ReplicaNode>) {
        if let Some(t) = self.suspect_timer.take() {
            ctx.cancel_timer(t);
        }
        let emin = self.config.raft.election_timeout;
        let after = ctx.rng().duration_between(emin, emin * 2);
        self.suspect_timer = Some(ctx.set_timer(after, Timer::Suspect));
    }

    /// Becomes primary with whatever this node has: the bug is that it may
    /// lack writes the old primary acknowledged.
    fn promote(&mut self, ctx: &mut Ctx<'_, ReplicaNode>) {
        let f = &mut *self;
        f.epoch = (f.epoch / 100 + 1) * 100 + u64::from(ctx.me().index());
        f.primary = Some(ctx.me());
        // Versions keep ordering writes across primaries: a new epoch's
        // writes all come after anything an earlier primary wrote.
        f.index = f.index.max(f.epoch * 1_000_000);
        f.suspect_timer = None;
        ctx.observe(ReplObs::Raft(RaftObs::BecameLeader {
            term: crate::raft::Term(f.epoch),
            last_index: LogIndex(f.index),
            last_term: crate::raft::Term(f.epoch),
        }));
        self.on_ping_timeout(ctx);
    }

    pub(super) fn on_ping_timeout(&mut self, ctx: &mut Ctx<'_, ReplicaNode>) {
        if self.primary != Some(ctx.me()) {
            return;
        }
        let state = Snapshot { index: self.index, store: self.store.clone() };
        for &peer in ctx.peers() {
            ctx.send(peer, Msg::Ping { epoch: self.epoch, state: state.clone() });
        }
        ctx.set_timer(self.config.raft.heartbeat, Timer::Ping);
    }

    pub(super) fn on_ping(&mut self, ctx: &mut Ctx<'_, ReplicaNode>, from: NodeId, epoch: u64, state: Snapshot) {
        if epoch < self.epoch {
            return;
        }
        if self.primary == Some(ctx.me()) {
            ctx.observe(ReplObs::Raft(RaftObs::SteppedDown { term: crate::raft::Term(self.epoch) }));
        }
        // A backup takes the primary's state wholesale (losing anything else).
        self.epoch = epoch;
        self.primary = Some(from);
        self.index = state.index;
        self.store = state.store;
        self.suspect_later(ctx);
    }

    pub(super) fn on_suspect_timeout(&mut self, ctx: &mut Ctx<'_, ReplicaNode>) {
        self.suspect_timer = None;
        if self.primary != Some(ctx.me()) {
            self.promote(ctx);
        }
    }

    /// The primary applies and answers at once; a backup redirects.
    pub(super) fn on_request(&mut self, ctx: &mut Ctx<'_, ReplicaNode>, from: NodeId, msg: Msg) {
        if self.primary != Some(ctx.me()) {
            let id = match msg {
                Msg::Write { id, .. } | Msg::LeaderRead { id, .. } | Msg::SessionRead { id, .. } => id,
                _ => return,
            };
            ctx.send(from, Msg::NotLeader { id, hint: self.primary });
            return;
        }
        match msg {
            Msg::Write { id, op } => {
                self.index += 1;
                let command = KvCommand { client: from, id, op };
                let applied = self.store.apply(LogIndex(self.index), &command, true);
                if applied.effect {
                    ctx.observe(ReplObs::Effect { client: from, id, index: LogIndex(self.index) });
                }
                if let Some(reply) = applied.reply {
                    ctx.send(from, Msg::Reply { id, reply });
                }
            }
            Msg::LeaderRead { id, key } | Msg::SessionRead { id, key, .. } => {
                let reply = self.store.read(&key, LogIndex(self.index));
                ctx.send(from, Msg::Reply { id, reply });
            }
            _ => {}
        }
    }
}
