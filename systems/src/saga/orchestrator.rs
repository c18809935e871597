//! The orchestrator: each saga's progress in a durable saga log, written
//! and synced before it acts on it (`log-not-synced`: synced in batches,
//! after it acted). Forward, it sends each step until the service answers,
//! or gives the step up after `step_tries` sends; when a step is refused
//! or given up, it compensates, in reverse order, the given-up step (it may
//! still arrive) and every step before it. After a crash it resumes every
//! unfinished saga where its log says.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use harness::node::{Ctx, NodeId, TimerId};

use super::{Config, Msg, Order, SagaId, SagaNode, SagaObs, Timer, Variant};

#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum Phase {
    /// Sending step `i`; `tries` sends so far.
    Forward {
        step: u32,
        tries: u32,
    },
    /// Compensating `step`, on the way from `last` (the highest step to
    /// undo) down to 0 (`compensate-in-order`: from 0 up to `last`).
    Backward {
        step: u32,
        last: u32,
    },
    Done,
    Compensated,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Saga {
    order: Order,
    phase: Phase,
}

pub struct Orchestrator {
    config: Config,
    sagas: BTreeMap<SagaId, Saga>,
    retry_timers: BTreeMap<SagaId, TimerId>,
    unfinished: u32,
}

const SAGA: &str = "saga/";

fn key(saga: SagaId) -> String {
    format!("{SAGA}{}/{}", saga.client, saga.seq)
}

impl Orchestrator {
    pub fn new(config: Config, disk: &harness::Disk) -> Self {
        let sagas: BTreeMap<SagaId, Saga> =
            disk.keys_with_prefix(SAGA).into_iter().filter_map(|k| disk.get::<(SagaId, Saga)>(&k)).collect();
        let unfinished = sagas.values().filter(|s| !finished(s.phase)).count() as u32;
        Orchestrator { config, sagas, retry_timers: BTreeMap::new(), unfinished }
    }

    /// Resumes every unfinished saga.
    pub fn on_start(&mut self, ctx: &mut Ctx<'_, SagaNode>) {
        ctx.observe(SagaObs::Unfinished { count: self.unfinished });
        if self.config.variant == Variant::LogNotSynced {
            ctx.set_timer(self.config.sync_every, Timer::Sync);
        }
        let unfinished: Vec<SagaId> =
            self.sagas.iter().filter(|(_, s)| !finished(s.phase)).map(|(&id, _)| id).collect();
        for saga in unfinished {
            self.act(ctx, saga);
        }
    }

    pub fn on_message(&mut self, ctx: &mut Ctx<'_, SagaNode>, _from: NodeId, msg: Msg) {
        match msg {
            Msg::Start { saga, order } => self.on_start_saga(ctx, saga, order),
            Msg::StepReply { saga, step, done } => self.on_step_reply(ctx, saga, step, done),
            Msg::Compensated { saga, step } => self.on_compensated(ctx, saga, step),
            other => panic!("{} is the orchestrator and got {other:?}", ctx.me()),
        }
    }

    pub fn on_timer(&mut self, ctx: &mut Ctx<'_, SagaNode>, timer: Timer) {
        match timer {
            Timer::Retry(saga) => self.on_retry_timeout(ctx, saga),
            Timer::Sync => {
                ctx.disk().sync();
                ctx.set_timer(self.config.sync_every, Timer::Sync);
            }
            other => panic!("{} got a client's timer: {other:?}", ctx.me()),
        }
    }

    /// A client asks for a saga: a new one starts; a finished one is
    /// answered; one under way goes on (its answer comes when it ends).
    fn on_start_saga(&mut self, ctx: &mut Ctx<'_, SagaNode>, saga: SagaId, order: Order) {
        match self.sagas.get(&saga) {
            Some(s) if finished(s.phase) => self.act(ctx, saga),
            Some(_) => {}
            None => self.advance(ctx, saga, Saga { order, phase: Phase::Forward { step: 0, tries: 0 } }),
        }
    }

    fn on_step_reply(&mut self, ctx: &mut Ctx<'_, SagaNode>, saga: SagaId, step: u32, done: bool) {
        let Some(s) = self.sagas.get(&saga).cloned() else { return };
        let Phase::Forward { step: current, .. } = s.phase else { return };
        if current != step {
            return; // an answer to an earlier step, sent again
        }
        let services = self.config.services(ctx.servers()).len() as u32;
        let phase = match (done, step + 1 == services) {
            (true, true) => Phase::Done,
            (true, false) => Phase::Forward { step: step + 1, tries: 0 },
            // Refused: nothing to undo here (a refused step leaves nothing).
            (false, _) if step == 0 => Phase::Compensated,
            (false, _) => self.backward(step - 1),
        };
        self.advance(ctx, saga, Saga { phase, ..s });
    }

    fn on_compensated(&mut self, ctx: &mut Ctx<'_, SagaNode>, saga: SagaId, step: u32) {
        let Some(s) = self.sagas.get(&saga).cloned() else { return };
        let Phase::Backward { step: current, last } = s.phase else { return };
        if current != step {
            return;
        }
        let phase = match (self.config.variant == Variant::CompensateInOrder, step) {
            // The planted bug: first to last.
            (true, step) if step < last => Phase::Backward { step: step + 1, last },
            (true, _) | (false, 0) => Phase::Compensated,
            (false, step) => Phase::Backward { step: step - 1, last },
        };
        self.advance(ctx, saga, Saga { phase, ..s });
    }

    /// Undoing steps `last` down to 0 begins at `last` (`compensate-in-order`: at 0).
    fn backward(&self, last: u32) -> Phase {
        let first = if self.config.variant == Variant::CompensateInOrder { 0 } else { last };
        Phase::Backward { step: first, last }
    }

    /// The request in flight went unanswered: send it again, or give a
    /// step up after its tries and compensate it with the ones before.
    fn on_retry_timeout(&mut self, ctx: &mut Ctx<'_, SagaNode>, saga: SagaId) {
        self.retry_timers.remove(&saga);
        let Some(s) = self.sagas.get(&saga).cloned() else { return };
        match s.phase {
            Phase::Forward { step, tries } if tries >= self.config.step_tries => {
                let phase = self.backward(step);
                self.advance(ctx, saga, Saga { phase, ..s });
            }
            Phase::Forward { .. } | Phase::Backward { .. } => self.act(ctx, saga),
            Phase::Done | Phase::Compensated => {}
        }
    }

    /// Logs the saga's new state, synced (unless `log-not-synced`), then acts on it.
    fn advance(&mut self, ctx: &mut Ctx<'_, SagaNode>, saga: SagaId, s: Saga) {
        let was = self.sagas.get(&saga).is_some_and(|old| !finished(old.phase));
        let is = !finished(s.phase);
        ctx.disk().put(&key(saga), &(saga, s.clone()));
        if self.config.variant != Variant::LogNotSynced {
            ctx.disk().sync();
        }
        self.sagas.insert(saga, s);
        if was != is {
            self.unfinished = if is { self.unfinished + 1 } else { self.unfinished - 1 };
            ctx.observe(SagaObs::Unfinished { count: self.unfinished });
        }
        self.act(ctx, saga);
    }

    /// Sends what the saga's state calls for, and times it.
    fn act(&mut self, ctx: &mut Ctx<'_, SagaNode>, saga: SagaId) {
        if let Some(t) = self.retry_timers.remove(&saga) {
            ctx.cancel_timer(t);
        }
        let s = self.sagas.get_mut(&saga).expect("a logged saga");
        let services = self.config.services(ctx.servers());
        let amount = s.order.amount;
        let (to, msg) = match &mut s.phase {
            Phase::Forward { step, tries } => {
                *tries += 1;
                let refuse = s.order.fails_at == Some(*step);
                (services[*step as usize], Msg::Step { saga, step: *step, amount, refuse })
            }
            Phase::Backward { step, .. } => (services[*step as usize], Msg::Compensate { saga, step: *step, amount }),
            Phase::Done | Phase::Compensated => {
                let done = s.phase == Phase::Done;
                ctx.send(saga.client, Msg::Outcome { saga, done });
                return;
            }
        };
        ctx.send(to, msg);
        self.retry_timers.insert(saga, ctx.set_timer(self.config.retry, Timer::Retry(saga)));
    }
}

fn finished(phase: Phase) -> bool {
    matches!(phase, Phase::Done | Phase::Compensated)
}
