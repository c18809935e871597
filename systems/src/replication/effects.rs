//! "each client request takes effect at most once": the store's dedup by
//! client and request id, judged from what each node's store reports it
//! changed. Replicas apply the same command at the same log index; a
//! request that changes a store at two different indexes (a retry or a
//! network duplicate committed again, and not recognised) took effect
//! twice, whatever the history shows.

use std::collections::BTreeMap;

use harness::check::{Invariant, Observed};
use harness::NodeId;

use super::ReplObs;
use crate::raft::LogIndex;

pub const TAKES_EFFECT_ONCE: &str = "each client request takes effect at most once";

#[derive(Default)]
pub struct TakesEffectOnce {
    /// Where each request first took effect, and on which node.
    first: BTreeMap<(NodeId, u64), (LogIndex, NodeId)>,
}

impl Invariant<ReplObs> for TakesEffectOnce {
    fn name(&self) -> &str {
        TAKES_EFFECT_ONCE
    }
    fn vacuous(&self) -> bool {
        self.first.is_empty()
    }
    fn on_observation(&mut self, o: &Observed<ReplObs>) -> Result<(), String> {
        let ReplObs::Effect { client, id, index } = o.obs else { return Ok(()) };
        let &mut (at, by) = self.first.entry((client, id)).or_insert((index, o.node));
        if at != index {
            return Err(format!(
                "{client}'s request {id} took effect at index {at} (on {by}) and again at index {index} (on {})",
                o.node
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use harness::time::SimTime;

    fn effect(node: u32, id: u64, index: u64) -> Observed<ReplObs> {
        let obs = ReplObs::Effect { client: NodeId::client(0), id, index: LogIndex(index) };
        Observed { time: SimTime(1), event: 1, node: NodeId::server(node), obs }
    }

    #[test]
    fn a_request_applied_at_two_indexes_is_caught_and_replicas_are_not() {
        let mut check = TakesEffectOnce::default();
        assert!(check.vacuous());
        assert!(check.on_observation(&effect(0, 1, 5)).is_ok());
        assert!(check.on_observation(&effect(1, 1, 5)).is_ok(), "a replica applies the same entry");
        assert!(check.on_observation(&effect(1, 2, 6)).is_ok());
        let e = check.on_observation(&effect(2, 1, 9)).unwrap_err();
        assert!(e.contains("c1's request 1 took effect at index 5 (on n1) and again at index 9 (on n3)"), "{e}");
    }
}
