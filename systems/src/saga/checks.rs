//! The saga system's properties, judged from the services' effects (each
//! counted once, by the service and its record number), which services
//! serve, and what clients were told.

use std::collections::{BTreeMap, BTreeSet};

use harness::check::{Invariant, Observed, RunEnd};
use harness::node::NodeId;
use harness::time::SimTime;

use super::{Effect, SagaId, SagaObs};

pub const ENDS_ALL_OR_NOTHING: &str = "every saga ends all done or all compensated";
pub const EFFECT_AT_MOST_ONCE: &str = "each step and each compensation takes effect at most once";
pub const NO_STEP_AFTER_COMPENSATION: &str = "no step takes effect after its saga was compensated";
pub const QUANTITIES_CONSERVED: &str = "quantities are conserved";
pub const STEPS_REST_ON_EARLIER: &str = "a saga never holds a step without the steps before it";
pub const ALL_DECIDE_ALIKE: &str = "all participants decide alike";

/// The services' effects, each once: per service, the records seen.
#[derive(Default)]
struct Effects {
    seen: BTreeSet<(NodeId, u64)>,
}

impl Effects {
    /// The effect in `o`, if it is one not seen before.
    fn new_effect<'a>(&mut self, o: &'a Observed<SagaObs>) -> Option<(SagaId, u32, &'a Effect, i64, i64)> {
        let SagaObs::Effect { saga, step, effect, amount, pool, record } = &o.obs else { return None };
        self.seen.insert((o.node, *record)).then_some((*saga, *step, effect, *amount, *pool))
    }
}

/// "each step and each compensation takes effect at most once".
#[derive(Default)]
pub struct EffectAtMostOnce {
    effects: Effects,
    done: BTreeMap<(SagaId, u32, bool), SimTime>,
}

impl Invariant<SagaObs> for EffectAtMostOnce {
    fn name(&self) -> &str {
        EFFECT_AT_MOST_ONCE
    }
    fn vacuous(&self) -> bool {
        self.done.is_empty()
    }
    fn on_observation(&mut self, o: &Observed<SagaObs>) -> Result<(), String> {
        let Some((saga, step, effect, amount, _)) = self.effects.new_effect(o) else { return Ok(()) };
        let reserved = *effect == Effect::Reserved;
        if let Some(first) = self.done.insert((saga, step, reserved), o.time) {
            let what = if reserved { "reserved" } else { "released" };
            return Err(format!(
                "{} {what} {amount} for saga {saga} (step {step}) at {}, and had at {first} already",
                o.node, o.time
            ));
        }
        Ok(())
    }
}

/// "no step takes effect after its saga was compensated": once any of a
/// saga's reservations is released, none of its steps reserves again.
#[derive(Default)]
pub struct NoStepAfterCompensation {
    effects: Effects,
    compensating: BTreeMap<SagaId, (NodeId, SimTime)>,
}

impl Invariant<SagaObs> for NoStepAfterCompensation {
    fn name(&self) -> &str {
        NO_STEP_AFTER_COMPENSATION
    }
    fn vacuous(&self) -> bool {
        self.compensating.is_empty()
    }
    fn on_observation(&mut self, o: &Observed<SagaObs>) -> Result<(), String> {
        let Some((saga, step, effect, _, _)) = self.effects.new_effect(o) else { return Ok(()) };
        match effect {
            Effect::Released => {
                self.compensating.entry(saga).or_insert((o.node, o.time));
            }
            Effect::Reserved => {
                if let Some((by, at)) = self.compensating.get(&saga) {
                    return Err(format!(
                        "{} reserved step {step} of saga {saga} at {}, after {by} had released its part at {at}",
                        o.node, o.time
                    ));
                }
            }
        }
        Ok(())
    }
}

/// "a saga never holds a step without the steps before it": each step
/// rests on the ones before it (the hotel is booked for the flight), so at
/// every instant the steps a saga holds are its first ones: reserved
/// first to last, released last to first.
#[derive(Default)]
pub struct StepsRestOnEarlier {
    effects: Effects,
    holds: BTreeMap<SagaId, BTreeSet<u32>>,
}

impl Invariant<SagaObs> for StepsRestOnEarlier {
    fn name(&self) -> &str {
        STEPS_REST_ON_EARLIER
    }
    /// Nothing to judge until a saga holds a step.
    fn vacuous(&self) -> bool {
        self.holds.is_empty()
    }
    fn on_observation(&mut self, o: &Observed<SagaObs>) -> Result<(), String> {
        let Some((saga, step, effect, _, _)) = self.effects.new_effect(o) else { return Ok(()) };
        let held = self.holds.entry(saga).or_default();
        match effect {
            Effect::Reserved => held.insert(step),
            Effect::Released => held.remove(&step),
        };
        let prefix = held.iter().enumerate().all(|(i, &s)| i as u32 == s);
        if !prefix {
            let what = if *effect == Effect::Reserved { "reserved" } else { "released" };
            return Err(format!(
                "at {} {} {what} step {step} of saga {saga}, which then held steps {held:?}: a step without the ones before it",
                o.time, o.node
            ));
        }
        Ok(())
    }
}

/// "all participants decide alike": two-phase commit's safety: no
/// participant commits a transaction another aborts.
#[derive(Default)]
pub struct AllDecideAlike {
    decided: BTreeMap<SagaId, (bool, NodeId, SimTime)>,
    compared: bool,
}

impl Invariant<SagaObs> for AllDecideAlike {
    fn name(&self) -> &str {
        ALL_DECIDE_ALIKE
    }
    fn vacuous(&self) -> bool {
        !self.compared
    }
    fn on_observation(&mut self, o: &Observed<SagaObs>) -> Result<(), String> {
        let SagaObs::Decided { saga, commit } = o.obs else { return Ok(()) };
        let word = |c: bool| if c { "committed" } else { "aborted" };
        match self.decided.get(&saga) {
            Some(&(first, by, at)) if first != commit => Err(format!(
                "{} {} transaction {saga} at {}, but {by} had {} it at {at}",
                o.node,
                word(commit),
                o.time,
                word(first)
            )),
            Some(&(_, by, _)) => {
                self.compared |= by != o.node;
                Ok(())
            }
            None => {
                self.decided.insert(saga, (commit, o.node, o.time));
                Ok(())
            }
        }
    }
}

/// "quantities are conserved": every pool a service reports equals its
/// capacity less the reservations its sagas hold, by the effects seen (a
/// release gives back what its saga held, no more).
pub struct QuantitiesConserved {
    capacity: i64,
    effects: Effects,
    /// Per service, what each saga holds.
    held: BTreeMap<NodeId, BTreeMap<SagaId, i64>>,
}

impl QuantitiesConserved {
    pub fn new(capacity: i64) -> Self {
        QuantitiesConserved { capacity, effects: Effects::default(), held: BTreeMap::new() }
    }
}

impl Invariant<SagaObs> for QuantitiesConserved {
    fn name(&self) -> &str {
        QUANTITIES_CONSERVED
    }
    fn vacuous(&self) -> bool {
        self.held.is_empty()
    }
    fn on_observation(&mut self, o: &Observed<SagaObs>) -> Result<(), String> {
        let Some((saga, _, effect, amount, pool)) = self.effects.new_effect(o) else { return Ok(()) };
        let held = self.held.entry(o.node).or_default();
        match effect {
            Effect::Reserved => held.insert(saga, amount),
            Effect::Released => held.remove(&saga),
        };
        let total: i64 = held.values().sum();
        if pool != self.capacity - total {
            return Err(format!(
                "at {} {}'s pool is {pool} after saga {saga}'s {}, but its capacity {} less the {total} its sagas hold is {}",
                o.time,
                o.node,
                if *effect == Effect::Reserved { "reservation" } else { "release" },
                self.capacity,
                self.capacity - total
            ));
        }
        Ok(())
    }
}

/// "every saga ends all done or all compensated": at the end (after the
/// liveness phase, when clients have their outcomes and the orchestrator
/// holds nothing unfinished), each saga holds a reservation at every
/// service, or at none; and one whose client was told "done" holds them
/// all, one told "compensated" none. (A compensation that only left a
/// tombstone changes nothing the effects show; what the client was told
/// says it happened.) A saga that a service refuses by its order cannot
/// end all done.
#[derive(Default)]
pub struct EndsAllOrNothing {
    effects: Effects,
    /// Per saga, the steps it holds now.
    holds: BTreeMap<SagaId, BTreeSet<u32>>,
    /// The services that said they serve, by step.
    steps: BTreeSet<u32>,
    /// What each saga's client was told, and the step its order is refused at.
    told: BTreeMap<SagaId, (bool, Option<u32>)>,
}

impl Invariant<SagaObs> for EndsAllOrNothing {
    fn name(&self) -> &str {
        ENDS_ALL_OR_NOTHING
    }
    fn vacuous(&self) -> bool {
        self.holds.is_empty() && self.told.is_empty()
    }
    fn judges_at_end(&self) -> bool {
        true
    }
    fn on_observation(&mut self, o: &Observed<SagaObs>) -> Result<(), String> {
        match o.obs {
            SagaObs::Serving { step } => {
                self.steps.insert(step);
            }
            SagaObs::Told { saga, done, refused_at } => {
                self.told.insert(saga, (done, refused_at));
            }
            _ => {
                let Some((saga, step, effect, _, _)) = self.effects.new_effect(o) else { return Ok(()) };
                let held = self.holds.entry(saga).or_default();
                match effect {
                    Effect::Reserved => held.insert(step),
                    Effect::Released => held.remove(&step),
                };
            }
        }
        Ok(())
    }
    fn at_end(&mut self, end: &RunEnd<'_, SagaObs>) -> Result<(), String> {
        // Services report at their first start, before checks are attached:
        // those reports are in the whole run's observations.
        for o in end.observations {
            if let SagaObs::Serving { step } = o.obs {
                self.steps.insert(step);
            }
        }
        let all = self.steps.len();
        let nothing = BTreeSet::new();
        let sagas: BTreeSet<SagaId> = self.holds.keys().chain(self.told.keys()).copied().collect();
        for saga in sagas {
            let held = self.holds.get(&saga).unwrap_or(&nothing);
            if !held.is_empty() && held.len() != all {
                return Err(format!(
                    "saga {saga} ended holding steps {held:?} of {all}: neither all done nor all compensated"
                ));
            }
            match self.told.get(&saga) {
                Some(&(true, Some(step))) if (step as usize) < all => {
                    return Err(format!(
                        "saga {saga}'s client was told \"done\", but its order is refused at step {step} of {all}"
                    ))
                }
                Some((true, _)) if held.len() != all => {
                    return Err(format!(
                        "saga {saga}'s client was told \"done\", but it ended holding steps {held:?} of {all}"
                    ))
                }
                Some((false, _)) if !held.is_empty() => {
                    return Err(format!(
                        "saga {saga}'s client was told \"compensated\", but it ended holding steps {held:?}"
                    ))
                }
                _ => {}
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(node: NodeId, ms: u64, obs: SagaObs) -> Observed<SagaObs> {
        Observed { time: SimTime(ms * 1_000_000), event: ms, node, obs }
    }
    fn effect(seq: u64, step: u32, reserved: bool, pool: i64, record: u64) -> SagaObs {
        let effect = if reserved { Effect::Reserved } else { Effect::Released };
        SagaObs::Effect { saga: SagaId { client: NodeId::client(0), seq }, step, effect, amount: 5, pool, record }
    }

    #[test]
    fn a_second_release_breaks_idempotence_and_conservation_but_a_record_reported_again_does_not() {
        let n1 = NodeId::server(0);
        let mut once = EffectAtMostOnce::default();
        let mut conserved = QuantitiesConserved::new(100);
        for (ms, obs) in
            [(1, effect(1, 0, true, 95, 1)), (2, effect(1, 0, false, 100, 2)), (3, effect(1, 0, false, 100, 2))]
        {
            assert!(once.on_observation(&at(n1, ms, obs.clone())).is_ok());
            assert!(conserved.on_observation(&at(n1, ms, obs)).is_ok(), "the same record, reported after a restart");
        }
        let twice = at(n1, 4, effect(1, 0, false, 105, 3));
        assert_eq!(
            once.on_observation(&twice).unwrap_err(),
            "n1 released 5 for saga c1/1 (step 0) at 0.004000s, and had at 0.002000s already"
        );
        assert!(conserved.on_observation(&twice).unwrap_err().contains("pool is 105"));
    }

    #[test]
    fn a_reservation_after_a_release_of_its_saga_is_refused_and_a_half_done_saga_is_found_at_the_end() {
        let (n1, n2) = (NodeId::server(0), NodeId::server(1));
        let mut after = NoStepAfterCompensation::default();
        let mut ends = EndsAllOrNothing::default();
        let end = RunEnd {
            now: SimTime(0),
            history: &harness::History { ops: Vec::new() },
            observations: &[],
            sessions: &BTreeMap::new(),
        };
        // Two services. Saga 1: both steps done. Saga 2: step 0 released,
        // then step 1 reserved late.
        ends.on_observation(&at(n1, 0, SagaObs::Serving { step: 0 })).unwrap();
        ends.on_observation(&at(n2, 0, SagaObs::Serving { step: 1 })).unwrap();
        let seen = [
            (n1, 1, effect(1, 0, true, 95, 1)),
            (n2, 2, effect(1, 1, true, 95, 1)),
            (n1, 3, effect(2, 0, true, 90, 2)),
            (n1, 4, effect(2, 0, false, 95, 3)),
        ];
        for (node, ms, obs) in seen {
            assert!(after.on_observation(&at(node, ms, obs.clone())).is_ok());
            assert!(ends.on_observation(&at(node, ms, obs)).is_ok());
        }
        assert!(ends.at_end(&end).is_ok());
        let late = at(n2, 5, effect(2, 1, true, 90, 2));
        assert!(after.on_observation(&late).unwrap_err().contains("after n1 had released its part"));
        ends.on_observation(&late).unwrap();
        assert_eq!(
            ends.at_end(&end).unwrap_err(),
            "saga c1/2 ended holding steps {1} of 2: neither all done nor all compensated"
        );
        // A saga whose client was told "compensated" must hold nothing,
        // though no effect showed its compensation (a tombstone's).
        let mut ends = EndsAllOrNothing::default();
        ends.on_observation(&at(n1, 0, SagaObs::Serving { step: 0 })).unwrap();
        ends.on_observation(&at(n1, 1, effect(3, 0, true, 95, 1))).unwrap();
        let saga = SagaId { client: NodeId::client(0), seq: 3 };
        ends.on_observation(&at(NodeId::client(0), 2, SagaObs::Told { saga, done: false, refused_at: None })).unwrap();
        assert_eq!(
            ends.at_end(&end).unwrap_err(),
            "saga c1/3's client was told \"compensated\", but it ended holding steps {0}"
        );
        // A saga refused by its order at a step that exists cannot end
        // done, whatever the services hold.
        let mut ends = EndsAllOrNothing::default();
        ends.on_observation(&at(n1, 0, SagaObs::Serving { step: 0 })).unwrap();
        ends.on_observation(&at(n1, 1, effect(4, 0, true, 95, 1))).unwrap();
        let saga = SagaId { client: NodeId::client(0), seq: 4 };
        let told = |refused_at| at(NodeId::client(0), 2, SagaObs::Told { saga, done: true, refused_at });
        ends.on_observation(&told(Some(1))).unwrap();
        assert!(ends.at_end(&end).is_ok(), "step 1 does not exist with one service");
        ends.on_observation(&told(Some(0))).unwrap();
        assert_eq!(
            ends.at_end(&end).unwrap_err(),
            "saga c1/4's client was told \"done\", but its order is refused at step 0 of 1"
        );
    }
}

#[cfg(test)]
mod order_tests {
    use super::*;

    #[test]
    fn releasing_a_step_before_the_later_ones_leaves_them_resting_on_nothing() {
        let n = NodeId::server(0);
        let saga = SagaId { client: NodeId::client(0), seq: 1 };
        let fx = |step, effect, record| SagaObs::Effect { saga, step, effect, amount: 1, pool: 0, record };
        let at = |ms: u64, obs| Observed { time: SimTime(ms * 1_000_000), event: ms, node: n, obs };
        let mut check = StepsRestOnEarlier::default();
        for (ms, obs) in
            [(1, fx(0, Effect::Reserved, 1)), (2, fx(1, Effect::Reserved, 2)), (3, fx(1, Effect::Released, 3))]
        {
            assert!(check.on_observation(&at(ms, obs)).is_ok(), "last to first");
        }
        check.on_observation(&at(4, fx(1, Effect::Reserved, 4))).unwrap();
        let err = check.on_observation(&at(5, fx(0, Effect::Released, 5))).unwrap_err();
        assert_eq!(err, "at 0.005000s n1 released step 0 of saga c1/1, which then held steps {1}: a step without the ones before it");
    }
}
