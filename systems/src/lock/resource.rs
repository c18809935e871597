//! The protected resource: a storage node with one counter per lock, every
//! change synced before it is acknowledged. With fencing it refuses a read
//! or a write whose token is below the highest it has seen for that
//! counter, and a request's token raises that mark.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use harness::node::{Ctx, NodeId};

use super::{LockNode, LockObs, Msg, Reply, Token};

/// One counter: its value, the highest token seen, and each client's last
/// write taken (so a retried or duplicated write is answered, not applied
/// again).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Counter {
    /// `None` until the first write (a register starts empty).
    value: Option<i64>,
    highest: Token,
    last_write: BTreeMap<NodeId, u64>,
}

pub struct Resource {
    fenced: bool,
    counters: BTreeMap<String, Counter>,
}

const KEY_PREFIX: &str = "counter/";

impl Resource {
    pub fn new(fenced: bool, disk: &harness::Disk) -> Self {
        let counters = disk
            .keys_with_prefix(KEY_PREFIX)
            .into_iter()
            .filter_map(|k| Some((k[KEY_PREFIX.len()..].to_owned(), disk.get::<Counter>(&k)?)))
            .collect();
        Resource { fenced, counters }
    }

    pub fn on_message(&mut self, ctx: &mut Ctx<'_, LockNode>, from: NodeId, msg: Msg) {
        let (id, reply) = match msg {
            Msg::Read { id, key, token } => (id, self.on_read(ctx, &key, token)),
            Msg::Write { id, key, value, token } => (id, self.on_write(ctx, from, id, &key, value, token)),
            other => panic!("{} is the resource and got {other:?}", ctx.me()),
        };
        ctx.send(from, Msg::Reply { id, reply });
    }

    /// Whether a request with `token` passes the fence, raising it if so.
    fn admit(&mut self, key: &str, token: Token) -> bool {
        let counter = self.counters.entry(key.to_owned()).or_default();
        if self.fenced && token < counter.highest {
            return false;
        }
        counter.highest = counter.highest.max(token);
        true
    }

    fn on_read(&mut self, ctx: &mut Ctx<'_, LockNode>, key: &str, token: Token) -> Reply {
        let before = self.counters.get(key).map(|c| c.highest);
        if !self.admit(key, token) {
            return Reply::Fenced;
        }
        if before != self.counters.get(key).map(|c| c.highest) {
            self.persist(ctx, key);
        }
        Reply::Value { value: self.counters[key].value }
    }

    fn on_write(
        &mut self,
        ctx: &mut Ctx<'_, LockNode>,
        from: NodeId,
        id: u64,
        key: &str,
        value: i64,
        token: Token,
    ) -> Reply {
        if self.counters.get(key).and_then(|c| c.last_write.get(&from)).is_some_and(|&last| id <= last) {
            // A retry or a duplicate of a write already taken, or a network
            // duplicate of an earlier one: a client numbers its requests up.
            return Reply::Written;
        }
        if !self.admit(key, token) {
            return Reply::Fenced;
        }
        let counter = self.counters.get_mut(key).expect("admitted");
        counter.value = Some(value);
        counter.last_write.insert(from, id);
        self.persist(ctx, key);
        ctx.observe(LockObs::Accepted { key: key.to_owned(), client: from, token, value });
        Reply::Written
    }

    fn persist(&self, ctx: &mut Ctx<'_, LockNode>, key: &str) {
        ctx.disk().put(&format!("{KEY_PREFIX}{key}"), &self.counters[key]);
        ctx.disk().sync();
    }
}
