//! The effect store: account balances and the ids of the messages applied,
//! every change synced before it is answered. Like a database connection,
//! it answers a retried or duplicated request with the first answer
//! instead of running it again, and ignores a late duplicate of a request
//! older than the client's latest (request ids grow across a client's
//! restarts): so only a message *delivered again*, which a consumer
//! processes with new requests, can take effect twice.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use harness::node::{Ctx, NodeId};

use super::{MessageId, Msg, PublishId, QueueNode, QueueObs, StoreOp, StoreReply};

/// A client's latest request and its answer.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Latest {
    id: u64,
    reply: StoreReply,
}

/// One applied effect, durable in one write with its dedup record: the
/// balances are the sums of these.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Effect {
    publish: PublishId,
    account: String,
    amount: i64,
}

pub struct Store {
    balances: BTreeMap<String, i64>,
    /// The number of effects applied: the next one's record number.
    effects: u64,
    /// The latest effect, to report again after a restart.
    latest_effect: Option<Effect>,
    /// Messages applied (the consumers' dedup records).
    seen: BTreeMap<MessageId, ()>,
    latest: BTreeMap<NodeId, Latest>,
}

const EFFECT: &str = "effect/";
const SEEN: &str = "seen/";
const LATEST: &str = "latest/";

impl Store {
    pub fn new(disk: &harness::Disk) -> Self {
        let under =
            |prefix: &'static str| disk.keys_with_prefix(prefix).into_iter().map(move |k| k[prefix.len()..].to_owned());
        let mut store = Store {
            balances: BTreeMap::new(),
            effects: 0,
            latest_effect: None,
            seen: under(SEEN).filter_map(|m| Some((MessageId(m.parse().ok()?), ()))).collect(),
            latest: under(LATEST)
                .filter_map(|c| Some((NodeId::parse(&c)?, disk.get(&format!("{LATEST}{c}"))?)))
                .collect(),
        };
        let mut effects: Vec<(u64, Effect)> =
            under(EFFECT).filter_map(|n| Some((n.parse().ok()?, disk.get(&format!("{EFFECT}{n}"))?))).collect();
        effects.sort_by_key(|(n, _)| *n);
        for (n, effect) in effects {
            assert_eq!(n, store.effects + 1, "effect records are numbered without gaps");
            store.effects = n;
            *store.balances.entry(effect.account.clone()).or_insert(0) += effect.amount;
            store.latest_effect = Some(effect);
        }
        store
    }

    /// Reports the latest effect again: a crash in the handler that made
    /// it durable may have cut its report (the checks count each record once).
    pub fn on_start(&mut self, ctx: &mut Ctx<'_, QueueNode>) {
        if let Some(effect) = &self.latest_effect {
            ctx.observe(self.report(self.effects, effect));
        }
    }

    fn report(&self, record: u64, effect: &Effect) -> QueueObs {
        QueueObs::Applied {
            record,
            publish: effect.publish,
            account: effect.account.clone(),
            amount: effect.amount,
            balance: self.balances[&effect.account],
        }
    }

    pub fn on_message(&mut self, ctx: &mut Ctx<'_, QueueNode>, from: NodeId, msg: Msg) {
        let Msg::Store { id, op } = msg else { panic!("{} is the store and got {msg:?}", ctx.me()) };
        match self.latest.get(&from) {
            Some(l) if l.id == id => {
                ctx.send(from, Msg::StoreReply { id, reply: l.reply.clone() });
                return;
            }
            Some(l) if l.id > id => return, // a late duplicate of a request the client moved past
            _ => {}
        }
        let (reply, applied) = self.run(ctx, op);
        let latest = Latest { id, reply: reply.clone() };
        ctx.disk().put(&format!("{LATEST}{from}"), &latest);
        self.latest.insert(from, latest);
        ctx.disk().sync();
        // Reported once durable: a crash before the sync undoes the change.
        if let Some(applied) = applied {
            ctx.observe(applied);
        }
        ctx.send(from, Msg::StoreReply { id, reply });
    }

    /// Runs one request; what it changes is written (the caller syncs),
    /// and a new effect is returned for the checkers.
    fn run(&mut self, ctx: &mut Ctx<'_, QueueNode>, op: StoreOp) -> (StoreReply, Option<QueueObs>) {
        match op {
            StoreOp::ApplyOnce { message, publish, account, amount } => {
                if self.seen.contains_key(&message) {
                    return (StoreReply::Duplicate, None);
                }
                self.record(ctx, message);
                self.add(ctx, Effect { publish, account, amount })
            }
            StoreOp::Add { publish, account, amount } => self.add(ctx, Effect { publish, account, amount }),
            StoreOp::Seen { message } => (StoreReply::Seen(self.seen.contains_key(&message)), None),
            StoreOp::Record { message } => {
                self.record(ctx, message);
                (StoreReply::Recorded, None)
            }
            StoreOp::Read { account } => (StoreReply::Balance(self.balances.get(&account).copied().unwrap_or(0)), None),
        }
    }

    fn record(&mut self, ctx: &mut Ctx<'_, QueueNode>, message: MessageId) {
        self.seen.insert(message, ());
        ctx.disk().put(&format!("{SEEN}{}", message.0), &());
    }

    fn add(&mut self, ctx: &mut Ctx<'_, QueueNode>, effect: Effect) -> (StoreReply, Option<QueueObs>) {
        self.effects += 1;
        ctx.disk().put(&format!("{EFFECT}{}", self.effects), &effect);
        let balance = self.balances.entry(effect.account.clone()).or_insert(0);
        *balance = balance.saturating_add(effect.amount);
        let balance = *balance;
        let report = self.report(self.effects, &effect);
        self.latest_effect = Some(effect);
        (StoreReply::Added { balance }, Some(report))
    }
}
