//! A choreographed service's outbox: the events it owes other nodes (hand
//! the saga on, hand it back, tell the client), at most one per saga and
//! receiver. An event is written to the disk before the caller's sync
//! that makes the change causing it durable, so a crash keeps both or
//! neither; it is sent until its receiver acknowledges it (at least
//! once: receivers are idempotent), each resend waiting twice as long as
//! the one before, up to 16 `retry`s, so a long partition does not pile
//! up sends.

use std::collections::BTreeMap;
use std::time::Duration;

use harness::node::{Ctx, NodeId, TimerId};

use super::{Msg, SagaId, SagaNode, SagaObs, Timer};

struct Entry {
    msg: Msg,
    /// Sends so far, for the backoff.
    sends: u32,
    timer: Option<TimerId>,
}

pub struct Outbox {
    retry: Duration,
    entries: BTreeMap<(SagaId, NodeId), Entry>,
}

const OUT: &str = "out/";

fn key(saga: SagaId, to: NodeId) -> String {
    format!("{OUT}{}/{}/{to}", saga.client, saga.seq)
}

impl Outbox {
    pub fn load(retry: Duration, disk: &harness::Disk) -> Self {
        let entries = disk
            .keys_with_prefix(OUT)
            .into_iter()
            .filter_map(|k| disk.get::<(SagaId, NodeId, Msg)>(&k))
            .map(|(saga, to, msg)| ((saga, to), Entry { msg, sends: 0, timer: None }))
            .collect();
        Outbox { retry, entries }
    }

    /// After a (re)start: reports what it owes and sends all of it.
    pub fn on_start(&mut self, ctx: &mut Ctx<'_, SagaNode>) {
        self.report(ctx);
        let owed: Vec<(SagaId, NodeId)> = self.entries.keys().copied().collect();
        for (saga, to) in owed {
            self.send(ctx, saga, to);
        }
    }

    /// Owes `msg` to `to`: written, not yet synced (the caller's sync
    /// makes it durable with its cause); [`Outbox::send`] after the sync.
    pub fn put(&mut self, ctx: &mut Ctx<'_, SagaNode>, saga: SagaId, to: NodeId, msg: Msg) {
        assert!(!self.entries.contains_key(&(saga, to)), "{} owes {to} two events for saga {saga}", ctx.me());
        ctx.disk().put(&key(saga, to), &(saga, to, msg.clone()));
        self.entries.insert((saga, to), Entry { msg, sends: 0, timer: None });
        self.report(ctx);
    }

    /// Sends the event owed to `to` for the saga and times its resend.
    pub fn send(&mut self, ctx: &mut Ctx<'_, SagaNode>, saga: SagaId, to: NodeId) {
        let entry = self.entries.get_mut(&(saga, to)).expect("an event is sent only while it is owed");
        ctx.send(to, entry.msg.clone());
        let wait = self.retry.saturating_mul(1 << entry.sends.min(4));
        entry.sends += 1;
        entry.timer = Some(ctx.set_timer(wait, Timer::Resend(saga, to)));
    }

    pub fn on_resend_timeout(&mut self, ctx: &mut Ctx<'_, SagaNode>, saga: SagaId, to: NodeId) {
        // The acknowledgement cancels the timer: it fires only while owed.
        let entry = self.entries.get_mut(&(saga, to)).expect("a resend timer outlived its event");
        entry.timer = None;
        self.send(ctx, saga, to);
    }

    /// `from` took the event: it is not owed any more. The removal need
    /// not be synced: a crash that loses it sends the event again, and the
    /// receiver takes it again as a duplicate.
    pub fn on_ack(&mut self, ctx: &mut Ctx<'_, SagaNode>, saga: SagaId, from: NodeId) {
        let Some(entry) = self.entries.remove(&(saga, from)) else { return };
        if let Some(timer) = entry.timer {
            ctx.cancel_timer(timer);
        }
        ctx.disk().remove(&key(saga, from));
        self.report(ctx);
    }

    fn report(&self, ctx: &mut Ctx<'_, SagaNode>) {
        ctx.observe(SagaObs::Unfinished { count: self.entries.len() as u32 });
    }
}
