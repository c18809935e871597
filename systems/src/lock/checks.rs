//! The lock system's own properties, judged from what clients reported
//! getting and what the resource reported accepting. ("lock leases never
//! overlap" is the harness's [`harness::check::lease::LeasesNeverOverlap`]
//! over the clients' lease views.)

use std::collections::BTreeMap;

use harness::check::{Invariant, Observed};
use harness::node::NodeId;
use harness::time::SimTime;

use super::{LockObs, Token};

pub const LOCK_LEASES_NEVER_OVERLAP: &str = "lock leases never overlap";
pub const FENCING_TOKENS_INCREASE: &str = "fencing tokens increase";
pub const WRITES_IN_TOKEN_ORDER: &str = "the resource accepts writes in token order";
pub const NO_LOST_UPDATES: &str = "no lost updates";

/// "fencing tokens increase": every grant a client gets carries a token
/// above every earlier grant's of that lock (a holder renewing keeps its own).
#[derive(Default)]
pub struct FencingTokensIncrease {
    /// Per lock: the latest grant (client, token, when).
    last: BTreeMap<String, (NodeId, Token, SimTime)>,
    compared: bool,
}

impl Invariant<LockObs> for FencingTokensIncrease {
    fn name(&self) -> &str {
        FENCING_TOKENS_INCREASE
    }
    fn vacuous(&self) -> bool {
        !self.compared
    }
    fn on_observation(&mut self, o: &Observed<LockObs>) -> Result<(), String> {
        let LockObs::Holds { lock, token, .. } = &o.obs else { return Ok(()) };
        match self.last.get(lock) {
            Some(&(client, t, _)) if client == o.node && t == *token => return Ok(()), // a renewal
            Some(&(client, t, at)) if *token <= t => {
                return Err(format!(
                    "{} got {lock:?} with token {token} at {}, but {client} had got it with token {t} at {at}",
                    o.node, o.time
                ))
            }
            Some(_) => self.compared = true,
            None => {}
        }
        self.last.insert(lock.clone(), (o.node, *token, o.time));
        Ok(())
    }
}

/// "the resource accepts writes in token order": no accepted write of a
/// counter carries a token below an earlier accepted write's.
#[derive(Default)]
pub struct WritesInTokenOrder {
    /// Per counter: the highest token accepted, by whom.
    highest: BTreeMap<String, (Token, NodeId)>,
    accepted: u64,
}

impl Invariant<LockObs> for WritesInTokenOrder {
    fn name(&self) -> &str {
        WRITES_IN_TOKEN_ORDER
    }
    fn vacuous(&self) -> bool {
        self.accepted < 2
    }
    fn on_observation(&mut self, o: &Observed<LockObs>) -> Result<(), String> {
        let LockObs::Accepted { key, client, token, .. } = &o.obs else { return Ok(()) };
        self.accepted += 1;
        if let Some(&(highest, by)) = self.highest.get(key).filter(|(h, _)| token < h) {
            return Err(format!(
                "at {} the resource accepted {client}'s write of {key:?} with token {token}, after {by}'s with token {highest}",
                o.time
            ));
        }
        self.highest.insert(key.clone(), (*token, *client));
        Ok(())
    }
}

/// "no lost updates": every client writes back what it read plus one, so
/// with mutual exclusion each accepted write of a counter is above the
/// value the previous accepted write left; a write not above it was
/// computed from a read that missed that write, and overwrote it. (Only
/// "above", not "one above": the resource may crash between making a write
/// durable and reporting it, and a write reported nowhere leaves a gap.)
#[derive(Default)]
pub struct NoLostUpdates {
    /// Per counter: its value and the write that left it.
    value: BTreeMap<String, (i64, Option<(NodeId, Token)>)>,
    accepted: u64,
}

impl Invariant<LockObs> for NoLostUpdates {
    fn name(&self) -> &str {
        NO_LOST_UPDATES
    }
    fn vacuous(&self) -> bool {
        self.accepted < 2
    }
    fn on_observation(&mut self, o: &Observed<LockObs>) -> Result<(), String> {
        let LockObs::Accepted { key, client, token, value } = &o.obs else { return Ok(()) };
        self.accepted += 1;
        let (before, by) = self.value.get(key).cloned().unwrap_or((0, None));
        if *value <= before {
            let by = by.map_or(String::new(), |(c, t)| format!(" by {c}'s write with token {t}"));
            return Err(format!(
                "at {} the resource accepted {client}'s write of {value} to {key:?} (token {token}) over {before}, left{by}: that update was lost",
                o.time
            ));
        }
        self.value.insert(key.clone(), (*value, Some((*client, *token))));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(node: NodeId, ms: u64, obs: LockObs) -> Observed<LockObs> {
        Observed { time: SimTime(ms * 1_000_000), event: ms, node, obs }
    }

    fn accepted(client: u32, token: u64, value: i64) -> LockObs {
        LockObs::Accepted { key: "l0".into(), client: NodeId::client(client), token: Token(token), value }
    }

    #[test]
    fn a_token_not_above_the_last_grant_is_refused_but_a_renewal_is_not() {
        let mut check = FencingTokensIncrease::default();
        let holds = |t| LockObs::Holds { lock: "l0".into(), token: Token(t), until: harness::time::MonoTime(0) };
        let (c1, c2) = (NodeId::client(0), NodeId::client(1));
        assert!(check.on_observation(&at(c1, 1, holds(5))).is_ok());
        assert!(check.on_observation(&at(c1, 2, holds(5))).is_ok(), "a renewal");
        assert!(check.vacuous());
        assert!(check.on_observation(&at(c2, 3, holds(7))).is_ok());
        let err = check.on_observation(&at(c1, 4, holds(2))).unwrap_err();
        assert_eq!(err, "c1 got \"l0\" with token 2 at 0.004000s, but c2 had got it with token 7 at 0.003000s");
    }

    #[test]
    fn writes_must_come_in_token_order_and_each_add_one() {
        let r = NodeId::server(3);
        let mut order = WritesInTokenOrder::default();
        let mut lost = NoLostUpdates::default();
        for (t, v) in [(3, 1), (5, 2)] {
            assert!(order.on_observation(&at(r, t, accepted(0, t, v))).is_ok());
            assert!(lost.on_observation(&at(r, t, accepted(0, t, v))).is_ok());
        }
        // A late holder (token 4) writes back what it read before token 5's write.
        let late = at(r, 9, accepted(1, 4, 2));
        assert!(order.on_observation(&late).unwrap_err().contains("with token 4, after c1's with token 5"));
        let err = lost.on_observation(&late).unwrap_err();
        assert!(
            err.contains(
                "write of 2 to \"l0\" (token 4) over 2, left by c1's write with token 5: that update was lost"
            ),
            "{err}"
        );
    }
}
