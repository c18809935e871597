//! A service: a pool of one resource, the reservations it holds per saga,
//! and the tombstones of sagas compensated here, in a durable local store
//! (each change synced before it is answered or reported).
//!
//! Choreographed, a service also passes the saga along: after its step to
//! the next service (the last: to the client, done), after a refusal or
//! its undo to the one before (the first: to the client, compensated),
//! through its [`Outbox`]. It acknowledges every `Go` and `Undo` it has
//! taken, durably, duplicates included.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

use harness::node::{Ctx, NodeId};

use super::outbox::Outbox;
use super::{Config, Effect, Msg, Order, SagaId, SagaNode, SagaObs, Timer, Variant};

/// The latest effect, kept to report again after a restart.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Latest {
    saga: SagaId,
    step: u32,
    reserved: bool,
    amount: i64,
    pool: i64,
    record: u64,
}

pub struct Service {
    variant: Variant,
    /// Choreographed: how many services the saga passes through.
    services: u32,
    /// Choreographed: the events it owes.
    outbox: Option<Outbox>,
    pool: i64,
    holds: BTreeMap<SagaId, i64>,
    tombstones: BTreeSet<SagaId>,
    /// Effects so far: the next one's record number.
    effects: u64,
    latest: Option<Latest>,
}

const POOL: &str = "pool";
const HOLD: &str = "hold/";
const TOMB: &str = "tomb/";
const LATEST: &str = "latest";

fn key(prefix: &str, saga: SagaId) -> String {
    format!("{prefix}{}/{}", saga.client, saga.seq)
}

impl Service {
    pub fn new(config: &Config, disk: &harness::Disk) -> Self {
        let holds = disk.keys_with_prefix(HOLD).into_iter().filter_map(|k| disk.get::<(SagaId, i64)>(&k)).collect();
        let tombstones = disk.keys_with_prefix(TOMB).into_iter().filter_map(|k| disk.get::<SagaId>(&k)).collect();
        let latest: Option<Latest> = disk.get(LATEST);
        let choreographed = config.variant.choreographed();
        Service {
            variant: config.variant,
            services: 0,
            outbox: choreographed.then(|| Outbox::load(config.retry, disk)),
            pool: disk.get(POOL).unwrap_or(config.capacity),
            holds,
            tombstones,
            effects: latest.as_ref().map_or(0, |l| l.record),
            latest,
        }
    }

    /// Reports the latest effect again: a crash in the handler that made
    /// it durable may have cut its report.
    pub fn on_start(&mut self, ctx: &mut Ctx<'_, SagaNode>) {
        self.services = ctx.servers().len() as u32;
        ctx.observe(SagaObs::Serving { step: ctx.me().index() });
        if let Some(l) = &self.latest {
            ctx.observe(report(l));
        }
        if let Some(outbox) = &mut self.outbox {
            outbox.on_start(ctx);
        }
    }

    pub fn on_timer(&mut self, ctx: &mut Ctx<'_, SagaNode>, timer: Timer) {
        match (timer, &mut self.outbox) {
            (Timer::Resend(saga, to), Some(outbox)) => outbox.on_resend_timeout(ctx, saga, to),
            (timer, _) => panic!("{} got a timer it never sets: {timer:?}", ctx.me()),
        }
    }

    pub fn on_message(&mut self, ctx: &mut Ctx<'_, SagaNode>, from: NodeId, msg: Msg) {
        let reply = match msg {
            Msg::Step { saga, step, amount, refuse } => {
                let done = self.on_step(ctx, saga, step, amount, refuse);
                Msg::StepReply { saga, step, done }
            }
            Msg::Compensate { saga, step, amount } => {
                self.on_compensate(ctx, saga, step, amount);
                if self.variant == Variant::TwoPhaseCommit {
                    ctx.observe(SagaObs::Decided { saga, commit: false });
                }
                Msg::Compensated { saga, step }
            }
            Msg::Go { saga, step, order } => {
                self.on_go(ctx, saga, step, order);
                Msg::Ack { saga }
            }
            Msg::Undo { saga, step } => {
                self.on_undo(ctx, saga, step);
                Msg::Ack { saga }
            }
            Msg::Ack { saga } => {
                self.outbox().on_ack(ctx, saga, from);
                return;
            }
            // Two-phase commit: the reservation it prepared stays.
            Msg::Commit { saga, step } => {
                ctx.observe(SagaObs::Decided { saga, commit: true });
                Msg::Committed { saga, step }
            }
            other => panic!("{} is a service and got {other:?}", ctx.me()),
        };
        ctx.send(from, reply);
    }

    /// Reserves `amount` for the saga, once; refused for a saga compensated
    /// here (its tombstone), or when the business rule says so.
    fn on_step(&mut self, ctx: &mut Ctx<'_, SagaNode>, saga: SagaId, step: u32, amount: i64, refuse: bool) -> bool {
        if self.holds.contains_key(&saga) {
            return true; // a retry or a duplicate: done already
        }
        if self.tombstones.contains(&saga) || refuse {
            return false;
        }
        self.pool -= amount;
        self.holds.insert(saga, amount);
        ctx.disk().put(&key(HOLD, saga), &(saga, amount));
        self.record(ctx, saga, step, true, amount);
        true
    }

    /// Gives the saga's reservation back, once, and leaves a tombstone.
    fn on_compensate(&mut self, ctx: &mut Ctx<'_, SagaNode>, saga: SagaId, step: u32, amount: i64) {
        match self.variant {
            // The planted bug: "refund the amount the orchestrator names".
            Variant::NonIdempotentCompensation => {
                self.holds.remove(&saga);
                ctx.disk().remove(&key(HOLD, saga));
                self.tombstone(ctx, saga);
                self.pool += amount;
                self.record(ctx, saga, step, false, amount);
            }
            _ => {
                if let Some(held) = self.holds.remove(&saga) {
                    ctx.disk().remove(&key(HOLD, saga));
                    self.tombstone(ctx, saga);
                    self.pool += held;
                    self.record(ctx, saga, step, false, held);
                } else if !self.tombstones.contains(&saga) {
                    // The compensation overtook its step: remember it, so
                    // the step is refused when it comes (the planted bug:
                    // forget it, a no-op).
                    self.tombstone(ctx, saga);
                    ctx.disk().sync();
                }
            }
        }
    }

    /// Choreographed: the saga's turn here. Reserves and hands it on, or,
    /// refused, tombstones it and hands it back; a saga seen here before
    /// (a duplicate, or a resend after a lost acknowledgement) changes
    /// nothing.
    fn on_go(&mut self, ctx: &mut Ctx<'_, SagaNode>, saga: SagaId, step: u32, order: Order) {
        assert_eq!(step, ctx.me().index(), "{} got the Go for another service's step", ctx.me());
        if self.holds.contains_key(&saga) || self.tombstones.contains(&saga) {
            return;
        }
        if order.fails_at == Some(step) {
            let (to, msg) = back(ctx, saga, step);
            self.outbox().put(ctx, saga, to, msg);
            self.tombstone(ctx, saga);
            ctx.disk().sync();
            self.outbox().send(ctx, saga, to);
            return;
        }
        let (to, msg) = if step + 1 == self.services {
            (saga.client, Msg::Outcome { saga, done: true })
        } else {
            (ctx.servers()[step as usize + 1], Msg::Go { saga, step: step + 1, order })
        };
        self.outbox().put(ctx, saga, to, msg);
        if self.variant == Variant::HandoffBeforeSync {
            // The planted bug: "tell the next service first, it is only a message".
            self.outbox().send(ctx, saga, to);
        }
        let reserved = self.on_step(ctx, saga, step, order.amount, false);
        assert!(reserved, "an unseen saga's step is reserved");
        if self.variant != Variant::HandoffBeforeSync {
            self.outbox().send(ctx, saga, to);
        }
    }

    /// Choreographed: the service after this one refused or undid its
    /// step. Undoes this one (with its tombstone) and hands the saga back.
    /// The saga is not held here only if the reservation was lost (the
    /// service after this one hands a saga back only after this one handed
    /// it on, holding it: `handoff-before-sync` breaks that): the
    /// tombstone keeps a late duplicate `Go` out, and the saga goes on back.
    fn on_undo(&mut self, ctx: &mut Ctx<'_, SagaNode>, saga: SagaId, step: u32) {
        assert_eq!(step, ctx.me().index(), "{} got the Undo for another service's step", ctx.me());
        if self.tombstones.contains(&saga) {
            return; // a duplicate: undone already
        }
        let (to, msg) = back(ctx, saga, step);
        self.outbox().put(ctx, saga, to, msg);
        let held = self.holds.get(&saga).copied().unwrap_or(0);
        self.on_compensate(ctx, saga, step, held); // synced with the outbox
        self.outbox().send(ctx, saga, to);
    }

    fn outbox(&mut self) -> &mut Outbox {
        self.outbox.as_mut().expect("a choreographed service has an outbox")
    }

    fn tombstone(&mut self, ctx: &mut Ctx<'_, SagaNode>, saga: SagaId) {
        if self.variant != Variant::NoTombstone {
            self.tombstones.insert(saga);
            ctx.disk().put(&key(TOMB, saga), &saga);
        }
    }

    /// Makes the change durable, then reports it.
    fn record(&mut self, ctx: &mut Ctx<'_, SagaNode>, saga: SagaId, step: u32, reserved: bool, amount: i64) {
        self.effects += 1;
        let latest = Latest { saga, step, reserved, amount, pool: self.pool, record: self.effects };
        ctx.disk().put(POOL, &self.pool);
        ctx.disk().put(LATEST, &latest);
        ctx.disk().sync();
        ctx.observe(report(&latest));
        self.latest = Some(latest);
    }
}

/// Choreographed: where a saga goes back from `step`: the service before,
/// or the client, compensated.
fn back(ctx: &Ctx<'_, SagaNode>, saga: SagaId, step: u32) -> (NodeId, Msg) {
    match step.checked_sub(1) {
        Some(before) => (ctx.servers()[before as usize], Msg::Undo { saga, step: before }),
        None => (saga.client, Msg::Outcome { saga, done: false }),
    }
}

fn report(l: &Latest) -> SagaObs {
    let effect = if l.reserved { Effect::Reserved } else { Effect::Released };
    SagaObs::Effect { saga: l.saga, step: l.step, effect, amount: l.amount, pool: l.pool, record: l.record }
}
