//! The queue system's own properties, judged from what producers were
//! told, what consumers received, what the store applied, and the changes
//! the broker made to its queues (each counted once, by its stamp,
//! however many replicas report it). "the effect store is consistent" is
//! the harness's counter check over the store's adds and reads.

use std::collections::{BTreeMap, BTreeSet};

use harness::check::counter::{CounterFunctions, CountsEachIncrementOnce};
use harness::check::{Invariant, Observed, RunEnd};
use harness::history::{Op, OpType};
use harness::time::SimTime;

use super::{Left, MessageId, PublishId, QueueObs, Receipt};

pub const NO_ACKNOWLEDGED_PUBLISH_LOST: &str = "no acknowledged publish is lost";
pub const EACH_MESSAGE_ONCE: &str = "each message takes effect at most once";
pub const ONLY_POISON_DEAD_LETTERED: &str =
    "only poison messages are dead-lettered, and only after max_receives attempts";
pub const STORE_CONSISTENT: &str = "the effect store is consistent";

/// Where a message is, as the broker's changes left it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Place {
    /// On the main queue: visible or in flight.
    Queued,
    DeadLettered,
    Gone(Left),
}

/// The broker's changes, each applied once: a change carries the stamp
/// (log index) that made it, and a message's changes come in stamp order
/// on every replica, so one at or below the last seen is a repeat.
#[derive(Default)]
pub struct Places {
    pub of: BTreeMap<MessageId, (u64, Place, SimTime)>,
    pub publish_of: BTreeMap<MessageId, PublishId>,
    /// How many are `Queued`: asked after every event of the liveness phase.
    queued: usize,
}

impl Places {
    /// Follows `obs`; returns the change if it is new.
    pub fn follow(&mut self, obs: &QueueObs, time: SimTime) -> Option<(MessageId, Place)> {
        let (message, at, place) = match obs {
            QueueObs::Enqueued { message, publish, at } => {
                self.publish_of.insert(*message, *publish);
                (*message, *at, Place::Queued)
            }
            QueueObs::Left { message, why, at } => (*message, *at, Place::Gone(why.clone())),
            QueueObs::DeadLettered { message, at, .. } => (*message, *at, Place::DeadLettered),
            QueueObs::Redriven { message, at } => (*message, *at, Place::Queued),
            _ => return None,
        };
        if self.of.get(&message).is_some_and(|(last, _, _)| at <= *last) {
            return None;
        }
        let before = self.of.insert(message, (at, place.clone(), time));
        if before.is_some_and(|(_, p, _)| p == Place::Queued) {
            self.queued -= 1;
        }
        if place == Place::Queued {
            self.queued += 1;
        }
        Some((message, place))
    }

    /// Whether any message is still on the main queue.
    pub fn any_queued(&self) -> bool {
        self.queued > 0
    }
}

/// "no acknowledged publish is lost": at the end (after the liveness
/// phase drained the queue), every publish the broker acknowledged was
/// applied by the store or waits in the dead-letter queue.
#[derive(Default)]
pub struct NoAcknowledgedPublishLost {
    acked: BTreeMap<PublishId, (MessageId, SimTime)>,
    applied: BTreeSet<PublishId>,
    places: Places,
}

impl Invariant<QueueObs> for NoAcknowledgedPublishLost {
    fn name(&self) -> &str {
        NO_ACKNOWLEDGED_PUBLISH_LOST
    }
    fn vacuous(&self) -> bool {
        self.acked.is_empty()
    }
    fn judges_at_end(&self) -> bool {
        true
    }
    fn on_observation(&mut self, o: &Observed<QueueObs>) -> Result<(), String> {
        match &o.obs {
            QueueObs::PublishAcked { publish, message } => {
                self.acked.entry(*publish).or_insert((*message, o.time));
            }
            QueueObs::Applied { publish, .. } => {
                self.applied.insert(*publish);
            }
            obs => {
                self.places.follow(obs, o.time);
            }
        }
        Ok(())
    }
    fn at_end(&mut self, _end: &RunEnd<'_, QueueObs>) -> Result<(), String> {
        for (publish, &(message, acked_at)) in &self.acked {
            if self.applied.contains(publish) {
                continue;
            }
            // Any of its copies (a publish enqueued twice has two) dead-lettered or still queued.
            let copies: Vec<MessageId> =
                self.places.publish_of.iter().filter(|(_, p)| *p == publish).map(|(m, _)| *m).collect();
            let waiting = copies
                .iter()
                .any(|m| matches!(self.places.of.get(m), Some((_, Place::DeadLettered | Place::Queued, _))));
            if waiting {
                continue;
            }
            let fate = match self.places.of.get(&message) {
                None => "the broker never enqueued it".to_owned(),
                Some((_, Place::Gone(Left::Acked { by }), at)) => format!("{by} acked it at {at}"),
                Some((_, Place::Gone(Left::Dropped), at)) => {
                    format!("the broker dropped it at {at}, after its last delivery, instead of dead-lettering it")
                }
                Some(_) => unreachable!("waiting messages were skipped"),
            };
            return Err(format!(
                "{publish}, acknowledged at {acked_at} as {message}, was never applied and is not in the dead-letter queue: {fate}"
            ));
        }
        Ok(())
    }
}

/// "each message takes effect at most once": the store changes a balance
/// for each publish at most once, however often it was delivered.
#[derive(Default)]
pub struct EachMessageOnce {
    /// Per publish: its first effect's record, account, balance after, and time.
    applied: BTreeMap<PublishId, (u64, String, i64, SimTime)>,
    /// Deliveries per non-poison publish, to tell whether any had a second
    /// chance to take effect.
    deliveries: BTreeMap<PublishId, BTreeSet<(MessageId, Receipt)>>,
    second_chance: bool,
}

impl Invariant<QueueObs> for EachMessageOnce {
    fn name(&self) -> &str {
        EACH_MESSAGE_ONCE
    }
    /// Nothing to judge when no message that can take effect (not
    /// poison) was ever delivered twice.
    fn vacuous(&self) -> bool {
        !self.second_chance
    }
    fn on_observation(&mut self, o: &Observed<QueueObs>) -> Result<(), String> {
        match &o.obs {
            QueueObs::Received { message, receipt, body } if !body.poison => {
                let seen = self.deliveries.entry(body.publish).or_default();
                seen.insert((*message, *receipt));
                self.second_chance |= seen.len() > 1;
            }
            QueueObs::Applied { record, publish, account, amount, balance } => {
                if let Some((first, first_account, first_balance, at)) = self.applied.get(publish) {
                    if first == record {
                        return Ok(()); // reported again after a restart
                    }
                    return Err(format!(
                        "{publish} took effect twice: {amount:+} to {first_account} at {at} (balance {first_balance}), and again to {account} at {} (balance {balance})",
                        o.time
                    ));
                }
                self.applied.insert(*publish, (*record, account.clone(), *balance, o.time));
            }
            _ => {}
        }
        Ok(())
    }
}

/// "only poison messages are dead-lettered, and only after max_receives
/// attempts", as the world can judge it. The broker counts deliveries, not
/// failures (as SQS does): a delivery whose answer is lost, or whose
/// consumer crashes, pauses past the visibility timeout or loses its ack,
/// counts as much as a poison message's failure, and a message that fails
/// every delivery is poison to the broker whatever its body. So: a
/// dead-lettered message is poison, or none of its deliveries (since its
/// enqueue or latest redrive) was processed and acked; consumers never
/// receive one message more than `max_receives` times; and (judged at the
/// end, when late answers have come) the broker dead-letters a message only
/// after `max_receives` deliveries could have happened in its window (since
/// its enqueue or latest redrive): the ones consumers saw, plus one for
/// each receive whose answer nobody saw (given up on, or never completed)
/// that could have been applied in the window. Each receive request
/// delivers at most one message (its retries get that one back), and only
/// between its invoke and its client's next answered receive (after which
/// the broker ignores it as stale).
pub struct OnlyPoisonDeadLettered {
    max_receives: u32,
    /// Per message since its enqueue or latest redrive (the stamp): the
    /// receipts consumers got, and who processed and acked it, when.
    deliveries: BTreeMap<MessageId, Deliveries>,
    places: Places,
    /// The consumers' receive operations: process, invoke or completion, when.
    receives: Vec<(u64, OpType, SimTime)>,
    dead_lettered: Vec<DeadLettering>,
    judged: bool,
}

/// A dead-lettering, judged at the end.
struct DeadLettering {
    message: MessageId,
    publish: PublishId,
    /// Its window in stamps: after its latest redrive's (or 0), before its own.
    stamps: (u64, u64),
    /// When the window opened (its enqueue, or latest redrive).
    since: SimTime,
    at: SimTime,
}

/// A receive operation: when it was invoked, and how and when it ended.
type Receive = (SimTime, Option<(OpType, SimTime)>);

#[derive(Default)]
struct Deliveries {
    receipts: BTreeSet<Receipt>,
    redriven: u64,
    /// When its window opened (its enqueue, or latest redrive).
    since: SimTime,
    processed: Option<(harness::NodeId, SimTime)>,
}

impl OnlyPoisonDeadLettered {
    pub fn new(max_receives: u32) -> Self {
        OnlyPoisonDeadLettered {
            max_receives,
            deliveries: BTreeMap::new(),
            places: Places::default(),
            receives: Vec::new(),
            dead_lettered: Vec::new(),
            judged: false,
        }
    }

    fn on_received(&mut self, o: &Observed<QueueObs>, message: MessageId, receipt: Receipt) -> Result<(), String> {
        let d = self.deliveries.entry(message).or_default();
        d.receipts.insert(receipt);
        let since = d.receipts.range(Receipt(d.redriven + 1)..).count();
        self.judged |= since > 1;
        if since > self.max_receives as usize {
            let when = if d.redriven == 0 { "its enqueue" } else { "its latest redrive" };
            return Err(format!(
                "{} received {message} at {}: its delivery number {since} since {when}, where max_receives is {}",
                o.node, o.time, self.max_receives
            ));
        }
        Ok(())
    }

    fn on_dead_lettered(
        &mut self,
        o: &Observed<QueueObs>,
        message: MessageId,
        body: &super::Body,
    ) -> Result<(), String> {
        self.judged = true;
        let d = self.deliveries.get(&message);
        if let (Some((by, at)), false) = (d.and_then(|d| d.processed), body.poison) {
            return Err(format!(
                "{message} ({}: {:+} to {}) was dead-lettered at {}, but it is not poison and {by} had processed and acked it at {at}",
                body.publish, body.amount, body.account, o.time
            ));
        }
        let QueueObs::DeadLettered { at, .. } = o.obs else { unreachable!("called for a dead-lettering") };
        let (redriven, since) = d.map_or((0, SimTime(0)), |d| (d.redriven, d.since));
        let publish = body.publish;
        self.dead_lettered.push(DeadLettering { message, publish, stamps: (redriven, at), since, at: o.time });
        Ok(())
    }
}

impl Invariant<QueueObs> for OnlyPoisonDeadLettered {
    fn name(&self) -> &str {
        ONLY_POISON_DEAD_LETTERED
    }
    /// Nothing to judge when nothing was dead-lettered or delivered twice.
    fn vacuous(&self) -> bool {
        !self.judged
    }
    /// Its lower bound is judged at the end: a run that stopped before it
    /// (a liveness failure, another check's violation) did not run it all.
    fn judges_at_end(&self) -> bool {
        true
    }
    /// Records the consumers' receives, judged at the end.
    fn on_op(&mut self, time: SimTime, op: &Op) -> Result<(), String> {
        if op.f == "receive" {
            self.receives.push((op.process, op.kind, time));
        }
        Ok(())
    }
    /// Every dead-lettering had `max_receives` deliveries that could have happened.
    fn at_end(&mut self, end: &RunEnd<'_, QueueObs>) -> Result<(), String> {
        let unanswered = unanswered_receives(&self.receives, end.sessions);
        for d in &self.dead_lettered {
            let (from, to) = d.stamps;
            let seen =
                self.deliveries.get(&d.message).map_or(0, |x| x.receipts.range(Receipt(from + 1)..Receipt(to)).count());
            let unseen = unanswered.iter().filter(|&&(invoked, until)| invoked <= d.at && until >= d.since).count();
            if seen + unseen < self.max_receives as usize {
                return Err(format!(
                    "{} ({}) was dead-lettered at {} after at most {} deliveries since {} ({seen} seen by consumers, {unseen} receives whose answer nobody saw), where max_receives is {}",
                    d.message,
                    d.publish,
                    d.at,
                    seen + unseen,
                    d.since,
                    self.max_receives
                ));
            }
        }
        Ok(())
    }
    fn on_observation(&mut self, o: &Observed<QueueObs>) -> Result<(), String> {
        match &o.obs {
            QueueObs::Received { message, receipt, .. } => return self.on_received(o, *message, *receipt),
            QueueObs::Done { message, processed: true } => {
                self.deliveries.entry(*message).or_default().processed.get_or_insert((o.node, o.time));
            }
            obs => match self.places.follow(obs, o.time) {
                Some((message, Place::Queued)) if matches!(obs, QueueObs::Enqueued { .. }) => {
                    self.deliveries.entry(message).or_default().since = o.time;
                }
                Some((message, Place::Queued)) if matches!(obs, QueueObs::Redriven { .. }) => {
                    let QueueObs::Redriven { at, .. } = obs else { unreachable!() };
                    // A new window: its receipts are those above the redrive's stamp.
                    let d = self.deliveries.entry(message).or_default();
                    (d.redriven, d.since, d.processed) = (*at, o.time, None);
                }
                Some((message, Place::DeadLettered)) => {
                    let QueueObs::DeadLettered { body, .. } = obs else { unreachable!() };
                    return self.on_dead_lettered(o, message, body);
                }
                _ => {}
            },
        }
        Ok(())
    }
}

/// The receives whose answer nobody saw (given up on, or never completed),
/// each as the interval in which the broker could have applied it: from
/// its invoke to its client's next answered receive (the end of time if
/// none). `sessions` names each history process's client.
fn unanswered_receives(receives: &[(u64, OpType, SimTime)], sessions: &BTreeMap<u64, u64>) -> Vec<(SimTime, SimTime)> {
    // Per client, its receives in order: invoked, and how and when each ended.
    let mut per_client: BTreeMap<u64, Vec<Receive>> = BTreeMap::new();
    let mut open: BTreeMap<u64, (u64, usize)> = BTreeMap::new();
    for &(process, kind, time) in receives {
        let client = sessions.get(&process).copied().unwrap_or(process);
        let list = per_client.entry(client).or_default();
        if kind == OpType::Invoke {
            open.insert(process, (client, list.len()));
            list.push((time, None));
        } else if let Some((client, i)) = open.remove(&process) {
            per_client.get_mut(&client).expect("opened")[i].1 = Some((kind, time));
        }
    }
    let mut out = Vec::new();
    for list in per_client.values() {
        let mut next_answered = SimTime(u64::MAX);
        for &(invoked, ended) in list.iter().rev() {
            match ended {
                Some((OpType::Ok, at)) => next_answered = at,
                Some((OpType::Fail, _)) => {}
                _ => out.push((invoked, next_answered)),
            }
        }
    }
    out
}

/// "the effect store is consistent": each account is a counter, and every
/// read of it (and every add's returned balance) lies between the adds
/// that certainly took effect before it and those that possibly did.
pub struct StoreConsistent(CountsEachIncrementOnce);

impl StoreConsistent {
    pub fn new() -> Self {
        StoreConsistent(CountsEachIncrementOnce::new(CounterFunctions {
            incr: "add".into(),
            reads: vec!["read".into()],
            weaker_reads: vec![],
        }))
    }
}

impl Invariant<QueueObs> for StoreConsistent {
    fn name(&self) -> &str {
        STORE_CONSISTENT
    }
    fn vacuous(&self) -> bool {
        Invariant::<QueueObs>::vacuous(&self.0)
    }
    fn judges_at_end(&self) -> bool {
        Invariant::<QueueObs>::judges_at_end(&self.0)
    }
    fn on_op(&mut self, time: SimTime, op: &Op) -> Result<(), String> {
        Invariant::<QueueObs>::on_op(&mut self.0, time, op)
    }
    fn at_end(&mut self, end: &RunEnd<'_, QueueObs>) -> Result<(), String> {
        self.0.at_end(end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use harness::NodeId;

    use crate::queue::Body;

    fn at(node: NodeId, ms: u64, obs: QueueObs) -> Observed<QueueObs> {
        Observed { time: SimTime(ms * 1_000_000), event: ms, node, obs }
    }
    fn publish(seq: u32) -> PublishId {
        PublishId { producer: NodeId::client(0), seq }
    }
    fn body(seq: u32, poison: bool) -> Body {
        Body { publish: publish(seq), account: "a0".into(), amount: 7, poison }
    }
    fn applied(record: u64, seq: u32) -> QueueObs {
        QueueObs::Applied { record, publish: publish(seq), account: "a0".into(), amount: 7, balance: 7 }
    }
    fn received(message: u64, receipt: u64, poison: bool) -> QueueObs {
        QueueObs::Received { message: MessageId(message), receipt: Receipt(receipt), body: body(1, poison) }
    }
    fn dead(message: u64, at: u64, poison: bool) -> QueueObs {
        QueueObs::DeadLettered { message: MessageId(message), body: body(1, poison), receives: 2, at }
    }
    fn end() -> RunEnd<'static, QueueObs> {
        static HISTORY: harness::History = harness::History { ops: Vec::new() };
        static SESSIONS: BTreeMap<u64, u64> = BTreeMap::new();
        RunEnd { now: SimTime(0), history: &HISTORY, observations: &[], sessions: &SESSIONS }
    }

    #[test]
    fn a_second_effect_of_one_publish_is_a_violation_but_a_record_reported_again_is_not() {
        let store = NodeId::server(3);
        let mut check = EachMessageOnce::default();
        assert!(check.on_observation(&at(store, 1, applied(1, 1))).is_ok());
        assert!(check.on_observation(&at(store, 2, applied(1, 1))).is_ok(), "reported again after a restart");
        let err = check.on_observation(&at(store, 3, applied(2, 1))).unwrap_err();
        assert_eq!(
            err,
            "c1/1 took effect twice: +7 to a0 at 0.001000s (balance 7), and again to a0 at 0.003000s (balance 7)"
        );
    }

    #[test]
    fn a_message_acked_away_unapplied_is_lost_but_one_in_the_dead_letter_queue_is_not() {
        let (producer, broker, consumer) = (NodeId::client(0), NodeId::server(0), NodeId::client(1));
        let mut check = NoAcknowledgedPublishLost::default();
        for (seq, m) in [(1, 10), (2, 11)] {
            let enqueued = QueueObs::Enqueued { message: MessageId(m), publish: publish(seq), at: m };
            check.on_observation(&at(broker, m, enqueued)).unwrap();
            let acked = QueueObs::PublishAcked { publish: publish(seq), message: MessageId(m) };
            check.on_observation(&at(producer, m, acked)).unwrap();
        }
        check.on_observation(&at(broker, 20, dead(10, 20, true))).unwrap();
        // Replayed by a replica: counted once, by its stamp.
        let left = QueueObs::Left { message: MessageId(11), why: Left::Acked { by: consumer }, at: 21 };
        check.on_observation(&at(broker, 21, left)).unwrap();
        let replayed = QueueObs::Enqueued { message: MessageId(11), publish: publish(2), at: 11 };
        check.on_observation(&at(NodeId::server(1), 22, replayed)).unwrap();
        let err = check.at_end(&end()).unwrap_err();
        assert_eq!(
            err,
            "c1/2, acknowledged at 0.011000s as m11, was never applied and is not in the dead-letter queue: c2 acked it at 0.021000s"
        );
        check.on_observation(&at(NodeId::server(3), 30, applied(1, 2))).unwrap();
        assert!(check.at_end(&end()).is_ok());
    }

    #[test]
    fn dead_letters_must_be_poison_or_never_processed_and_deliveries_stay_within_max_receives() {
        let (broker, c) = (NodeId::server(0), NodeId::client(1));
        let mut check = OnlyPoisonDeadLettered::new(2);
        check.on_observation(&at(c, 1, received(10, 1, false))).unwrap();
        check.on_observation(&at(c, 2, received(10, 2, false))).unwrap();
        check.on_observation(&at(c, 2, received(10, 2, false))).unwrap(); // the same delivery, duplicated
        let err = check.on_observation(&at(c, 3, received(10, 3, false))).unwrap_err();
        assert_eq!(
            err,
            "c2 received m10 at 0.003000s: its delivery number 3 since its enqueue, where max_receives is 2"
        );
        // Every delivery failed: dead-lettering it is the broker's right.
        assert!(check.on_observation(&at(broker, 4, dead(10, 4, false))).is_ok());
        let redriven = QueueObs::Redriven { message: MessageId(10), at: 5 };
        check.on_observation(&at(broker, 5, redriven)).unwrap();
        check.on_observation(&at(c, 6, received(10, 6, false))).unwrap();
        let done = QueueObs::Done { message: MessageId(10), processed: true };
        check.on_observation(&at(c, 7, done)).unwrap();
        let err = check.on_observation(&at(broker, 8, dead(10, 8, false))).unwrap_err();
        assert!(err.ends_with("it is not poison and c2 had processed and acked it at 0.007000s"), "{err}");
        // Poison messages nobody received twice: too early, unless receives
        // whose answers nobody saw could have delivered them.
        assert!(check.on_observation(&at(broker, 9, dead(11, 9, true))).is_ok());
        let err = check.at_end(&end()).unwrap_err();
        assert_eq!(
            err,
            "m11 (c1/1) was dead-lettered at 0.009000s after at most 0 deliveries since 0.000000s (0 seen by consumers, 0 receives whose answer nobody saw), where max_receives is 2"
        );
        let receive = |kind| harness::history::Op {
            process: 4,
            kind,
            f: "receive".into(),
            key: Some("queue".into()),
            value: harness::Value::Null,
            time: None,
        };
        let mut check = OnlyPoisonDeadLettered::new(2);
        check.on_op(SimTime(0), &receive(OpType::Invoke)).unwrap();
        check.on_op(SimTime(1), &receive(OpType::Info)).unwrap();
        check.on_op(SimTime(2), &receive(OpType::Invoke)).unwrap();
        check.on_observation(&at(broker, 10, dead(12, 10, true))).unwrap();
        assert!(check.at_end(&end()).is_ok(), "one given up on, one never answered");
    }
}
