//! `redlock`: one of the independent single-node lock servers, as Redis
//! runs `SET lock value NX PX ttl` and the compare-and-delete release
//! script. Keys live in memory and expire by the server's wall clock.

use std::collections::BTreeMap;

use harness::node::{Ctx, NodeId};
use harness::time::WallTime;

use super::{LockNode, LockOp, Msg, Reply, Token};

#[derive(Default)]
pub struct RedisServer {
    /// Per lock: the value set (client and its acquire request) and when it expires.
    keys: BTreeMap<String, (NodeId, Token, WallTime)>,
}

impl RedisServer {
    pub fn on_message(&mut self, ctx: &mut Ctx<'_, LockNode>, from: NodeId, msg: Msg) {
        let Msg::Lock { id, op } = msg else { panic!("{} got a message for another part: {msg:?}", ctx.me()) };
        let now = ctx.wall_now();
        let reply = match op {
            LockOp::Acquire { lock, ttl } => {
                // `SET lock value NX PX ttl`: refused while the key lives,
                // whatever its value (a repeat of the same request included).
                match self.keys.get(&lock) {
                    Some(&(_, _, expires)) if now < expires => Reply::Busy,
                    _ => {
                        self.keys.insert(lock, (from, Token(id), now.saturating_add(ttl)));
                        Reply::Granted { token: Token(id) }
                    }
                }
            }
            LockOp::Release { lock, token } => {
                if self.keys.get(&lock).is_some_and(|&(c, t, _)| (c, t) == (from, token)) {
                    self.keys.remove(&lock);
                }
                Reply::Released
            }
            LockOp::Keepalive { .. } => Reply::Lost, // clients of `redlock` never renew
        };
        ctx.send(from, Msg::Reply { id, reply });
    }
}
