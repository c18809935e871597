//! Two-phase commit, beside the saga: a coordinator (the last server)
//! asks every service to prepare (a service's step: it reserves the
//! amount, or votes no), logs its decision, synced, and then sends it to
//! every service until each acknowledges. A `compensate` is its abort
//! (with the same tombstone against a late prepare), a `commit` keeps the
//! reservation. A transaction without a logged decision after a restart
//! is aborted (presumed abort). A service that voted yes holds its
//! reservation until the decision comes: with the coordinator gone for
//! good, it holds it forever (2PC's blocking).

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

use harness::node::{Ctx, NodeId, TimerId};

use super::{Config, Msg, Order, SagaId, SagaNode, SagaObs, Timer};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum Phase {
    /// Votes so far (yes), and sends of the prepare round.
    Preparing {
        yes: BTreeSet<u32>,
        tries: u32,
    },
    /// The decision, and the services that acknowledged it.
    Deciding {
        commit: bool,
        acked: BTreeSet<u32>,
    },
    Finished {
        commit: bool,
    },
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Tx {
    order: Order,
    phase: Phase,
}

pub struct Coordinator {
    config: Config,
    txs: BTreeMap<SagaId, Tx>,
    timers: BTreeMap<SagaId, TimerId>,
    /// Rounds sent in the current phase: each waits twice as long as the
    /// one before, up to 16 `retry`s (a round goes to every service that
    /// has not answered; resent at a fixed pace, rounds slower than the
    /// network pile up).
    rounds: BTreeMap<SagaId, u32>,
    unfinished: u32,
}

const TX: &str = "tx/";

fn key(tx: SagaId) -> String {
    format!("{TX}{}/{}", tx.client, tx.seq)
}

impl Coordinator {
    pub fn new(config: Config, disk: &harness::Disk) -> Self {
        let mut txs: BTreeMap<SagaId, Tx> =
            disk.keys_with_prefix(TX).into_iter().filter_map(|k| disk.get::<(SagaId, Tx)>(&k)).collect();
        // Presumed abort: no decision logged, none taken.
        for tx in txs.values_mut() {
            if matches!(tx.phase, Phase::Preparing { .. }) {
                tx.phase = Phase::Deciding { commit: false, acked: BTreeSet::new() };
            }
        }
        let unfinished = txs.values().filter(|t| !matches!(t.phase, Phase::Finished { .. })).count() as u32;
        Coordinator { config, txs, timers: BTreeMap::new(), rounds: BTreeMap::new(), unfinished }
    }

    pub fn on_start(&mut self, ctx: &mut Ctx<'_, SagaNode>) {
        ctx.observe(SagaObs::Unfinished { count: self.unfinished });
        let open: Vec<SagaId> =
            self.txs.iter().filter(|(_, t)| !matches!(t.phase, Phase::Finished { .. })).map(|(&id, _)| id).collect();
        for tx in open {
            let t = self.txs[&tx].clone();
            self.advance(ctx, tx, t); // logs the presumed aborts, synced, then sends
        }
    }

    pub fn on_message(&mut self, ctx: &mut Ctx<'_, SagaNode>, _from: NodeId, msg: Msg) {
        match msg {
            Msg::Start { saga, order } => match self.txs.get(&saga) {
                Some(t) if matches!(t.phase, Phase::Finished { .. }) => self.act(ctx, saga),
                Some(_) => {}
                None => {
                    let phase = Phase::Preparing { yes: BTreeSet::new(), tries: 0 };
                    self.advance(ctx, saga, Tx { order, phase });
                }
            },
            Msg::StepReply { saga, step, done } => self.on_vote(ctx, saga, step, done),
            Msg::Compensated { saga, step } | Msg::Committed { saga, step } => self.on_ack(ctx, saga, step),
            other => panic!("{} is the coordinator and got {other:?}", ctx.me()),
        }
    }

    pub fn on_timer(&mut self, ctx: &mut Ctx<'_, SagaNode>, timer: Timer) {
        let Timer::Retry(tx) = timer else { panic!("{} got a timer it never sets: {timer:?}", ctx.me()) };
        self.timers.remove(&tx);
        let Some(t) = self.txs.get(&tx).cloned() else { return };
        match t.phase {
            Phase::Preparing { tries, .. } if tries >= self.config.step_tries => {
                let phase = Phase::Deciding { commit: false, acked: BTreeSet::new() };
                self.advance(ctx, tx, Tx { phase, ..t });
            }
            Phase::Finished { .. } => {}
            _ => self.act(ctx, tx),
        }
    }

    fn on_vote(&mut self, ctx: &mut Ctx<'_, SagaNode>, tx: SagaId, step: u32, yes: bool) {
        let Some(t) = self.txs.get(&tx).cloned() else { return };
        let Phase::Preparing { yes: mut votes, tries } = t.phase else { return };
        let services = self.config.services(ctx.servers()).len();
        let phase = if !yes {
            Phase::Deciding { commit: false, acked: BTreeSet::new() }
        } else {
            votes.insert(step);
            if votes.len() < services {
                // Not a decision: kept in memory only (a restart aborts).
                self.txs.insert(tx, Tx { phase: Phase::Preparing { yes: votes, tries }, ..t });
                return;
            }
            Phase::Deciding { commit: true, acked: BTreeSet::new() }
        };
        self.advance(ctx, tx, Tx { phase, ..t });
    }

    fn on_ack(&mut self, ctx: &mut Ctx<'_, SagaNode>, tx: SagaId, step: u32) {
        let Some(t) = self.txs.get(&tx).cloned() else { return };
        let Phase::Deciding { commit, mut acked } = t.phase else { return };
        acked.insert(step);
        let phase = if acked.len() == self.config.services(ctx.servers()).len() {
            Phase::Finished { commit }
        } else {
            self.txs.insert(tx, Tx { phase: Phase::Deciding { commit, acked }, ..t });
            return;
        };
        self.advance(ctx, tx, Tx { phase, ..t });
    }

    /// Logs the transaction's state, synced, then acts on it.
    fn advance(&mut self, ctx: &mut Ctx<'_, SagaNode>, tx: SagaId, t: Tx) {
        let was = self.txs.get(&tx).is_some_and(|old| !matches!(old.phase, Phase::Finished { .. }));
        let is = !matches!(t.phase, Phase::Finished { .. });
        ctx.disk().put(&key(tx), &(tx, t.clone()));
        ctx.disk().sync();
        self.txs.insert(tx, t);
        self.rounds.remove(&tx);
        if was != is {
            self.unfinished = if is { self.unfinished + 1 } else { self.unfinished - 1 };
            ctx.observe(SagaObs::Unfinished { count: self.unfinished });
        }
        self.act(ctx, tx);
    }

    /// Sends what the state calls for to every service that has not
    /// answered it yet, and times it.
    fn act(&mut self, ctx: &mut Ctx<'_, SagaNode>, tx: SagaId) {
        if let Some(timer) = self.timers.remove(&tx) {
            ctx.cancel_timer(timer);
        }
        let t = self.txs.get_mut(&tx).expect("a logged transaction");
        let amount = t.order.amount;
        let services = self.config.services(ctx.servers()).to_vec();
        match &mut t.phase {
            Phase::Preparing { yes, tries } => {
                *tries += 1;
                for (step, &s) in services.iter().enumerate().filter(|(i, _)| !yes.contains(&(*i as u32))) {
                    let step = step as u32;
                    let refuse = t.order.fails_at == Some(step);
                    ctx.send(s, Msg::Step { saga: tx, step, amount, refuse });
                }
            }
            Phase::Deciding { commit, acked } => {
                for (step, &s) in services.iter().enumerate().filter(|(i, _)| !acked.contains(&(*i as u32))) {
                    let step = step as u32;
                    let msg = if *commit {
                        Msg::Commit { saga: tx, step }
                    } else {
                        Msg::Compensate { saga: tx, step, amount }
                    };
                    ctx.send(s, msg);
                }
            }
            Phase::Finished { commit } => {
                ctx.send(tx.client, Msg::Outcome { saga: tx, done: *commit });
                return;
            }
        }
        let round = self.rounds.entry(tx).or_insert(0);
        let wait = self.config.retry.saturating_mul(1 << (*round).min(4));
        *round += 1;
        self.timers.insert(tx, ctx.set_timer(wait, Timer::Retry(tx)));
    }
}
