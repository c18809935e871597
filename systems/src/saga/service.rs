//! A service: a pool of one resource, the reservations it holds per saga,
//! and the tombstones of sagas compensated here, in a durable local store
//! (each change synced before it is answered or reported).

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

use harness::node::{Ctx, NodeId};

use super::{Config, Effect, Msg, SagaId, SagaNode, SagaObs, Variant};

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
        Service {
            variant: config.variant,
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
        ctx.observe(SagaObs::Serving { step: ctx.me().index() });
        if let Some(l) = &self.latest {
            ctx.observe(report(l));
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

fn report(l: &Latest) -> SagaObs {
    let effect = if l.reserved { Effect::Reserved } else { Effect::Released };
    SagaObs::Effect { saga: l.saga, step: l.step, effect, amount: l.amount, pool: l.pool, record: l.record }
}
