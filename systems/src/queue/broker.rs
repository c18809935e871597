//! The queue as a state machine: what the Raft group replicates, or the
//! single broker keeps on its disk. Pure: the host decides where commands
//! come from, times visibility, and reports the changes this returns.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

use harness::node::NodeId;

use super::{Body, BrokerOp, BrokerReply, Left, MessageId, PublishId, QueueCommand, Receipt, Rules};

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
enum State {
    /// Visible.
    Ready,
    /// Delivered, invisible until acked or this delivery expires.
    InFlight(Receipt),
    DeadLettered,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
struct Message {
    body: Body,
    state: State,
}

/// The broker's state. An acked or dropped message leaves `messages`; its
/// publish id stays in `publishes`, so a late retry of its publish is
/// still answered, not enqueued again (the dedup window is the whole run).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Queue {
    messages: BTreeMap<MessageId, Message>,
    /// Visible messages: delivered oldest first, so one visible again
    /// (its delivery expired, or it was redriven) takes its old place.
    ready: BTreeSet<MessageId>,
    dead: BTreeSet<MessageId>,
    publishes: BTreeMap<PublishId, MessageId>,
    /// Each client's latest receive or redrive request and its answer: a
    /// retry (or a duplicate) of it gets the same answer (the same
    /// delivery), and a late duplicate of an older one does nothing
    /// (request ids grow across a client's restarts).
    latest: BTreeMap<NodeId, (u64, BrokerReply)>,
    /// Deliveries of each message so far. Kept apart so that the
    /// `attempts-not-persisted` broker can leave them out of what it writes.
    #[serde(skip)]
    pub counts: BTreeMap<MessageId, u32>,
}

/// A change to the queue, for the checkers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    Enqueued { message: MessageId, publish: PublishId },
    Left { message: MessageId, why: Left },
    DeadLettered { message: MessageId, body: Body, receives: u32 },
    Redriven { message: MessageId },
}

/// What applying one command did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// The answer for the client that asked, if a client asked.
    pub reply: Option<BrokerReply>,
    pub events: Vec<Event>,
    /// A delivery started: the host times its visibility.
    pub delivered: Option<(MessageId, Receipt)>,
    /// A message is no longer in flight: the host stops timing it.
    pub ended: Option<MessageId>,
}

impl Queue {
    /// Applies `command`; `stamp` is its log index (or the single broker's
    /// counter): the id of a message it enqueues, the receipt of a delivery
    /// it makes.
    pub fn apply(&mut self, command: &QueueCommand, stamp: u64, rules: Rules) -> Applied {
        match command {
            QueueCommand::Client { client, id, op } => self.apply_op(*client, *id, op, stamp, rules),
            QueueCommand::Expire { message, receipt } => {
                let expired = self.messages.get(message).is_some_and(|m| m.state == State::InFlight(*receipt));
                if !expired {
                    return Applied::default();
                }
                self.make_ready(*message);
                Applied { ended: Some(*message), ..Applied::default() }
            }
        }
    }

    fn apply_op(&mut self, client: NodeId, id: u64, op: &BrokerOp, stamp: u64, rules: Rules) -> Applied {
        // Publishes are deduplicated by publish id (or, by the planted
        // bug, not at all); acks are idempotent.
        let once = matches!(op, BrokerOp::Receive | BrokerOp::Redrive);
        match self.latest.get(&client) {
            Some((request, reply)) if once && *request == id => {
                return Applied { reply: Some(reply.clone()), ..Applied::default() }
            }
            // Nobody waits for its answer, and a delivery nobody sees would
            // count against the message's max_receives.
            Some((request, _)) if once && *request > id => return Applied::default(),
            _ => {}
        }
        let applied = match op {
            BrokerOp::Publish { body } => return self.publish(body, stamp, rules),
            BrokerOp::Ack { message } => return self.ack(client, *message),
            BrokerOp::Receive => self.receive(Receipt(stamp), rules),
            BrokerOp::Redrive => self.redrive(),
        };
        let reply = applied.reply.clone().expect("a receive or a redrive is answered");
        self.latest.insert(client, (id, reply));
        applied
    }

    fn publish(&mut self, body: &Body, stamp: u64, rules: Rules) -> Applied {
        if let Some(&message) = self.publishes.get(&body.publish).filter(|_| rules.dedup_publishes) {
            return Applied { reply: Some(BrokerReply::Published { message }), ..Applied::default() };
        }
        let message = MessageId(stamp);
        assert!(!self.messages.contains_key(&message), "a stamp enqueues one message");
        self.messages.insert(message, Message { body: body.clone(), state: State::Ready });
        self.make_ready(message);
        self.publishes.insert(body.publish, message);
        Applied {
            reply: Some(BrokerReply::Published { message }),
            events: vec![Event::Enqueued { message, publish: body.publish }],
            ..Applied::default()
        }
    }

    /// The first visible message, delivered; those on the way that used
    /// their deliveries up are dead-lettered (or dropped) first.
    fn receive(&mut self, receipt: Receipt, rules: Rules) -> Applied {
        let mut events = Vec::new();
        while let Some(message) = self.ready.pop_first() {
            let count = self.counts.get(&message).copied().unwrap_or(0);
            if count >= rules.max_receives {
                events.push(self.retire(message, rules));
                continue;
            }
            self.counts.insert(message, count + 1);
            let m = self.messages.get_mut(&message).expect("ready messages exist");
            m.state = State::InFlight(receipt);
            let reply = BrokerReply::Delivered { message, receipt, body: m.body.clone() };
            return Applied { reply: Some(reply), events, delivered: Some((message, receipt)), ended: None };
        }
        Applied { reply: Some(BrokerReply::Empty), events, ..Applied::default() }
    }

    /// A message that used its deliveries up: to the dead-letter queue, or
    /// (`drop-after-max`) gone.
    fn retire(&mut self, message: MessageId, rules: Rules) -> Event {
        let receives = self.counts.remove(&message).unwrap_or(0);
        if !rules.dead_letter {
            self.messages.remove(&message);
            return Event::Left { message, why: Left::Dropped };
        }
        let m = self.messages.get_mut(&message).expect("ready messages exist");
        m.state = State::DeadLettered;
        self.dead.insert(message);
        Event::DeadLettered { message, body: m.body.clone(), receives }
    }

    /// Acked by any consumer, in any state: a consumer acks only after its
    /// effect is in the store, so whichever delivery it came from, the
    /// message is done (as SQS deletes by an old receipt too).
    fn ack(&mut self, by: NodeId, message: MessageId) -> Applied {
        let reply = Some(BrokerReply::Acked);
        let Some(m) = self.messages.remove(&message) else { return Applied { reply, ..Applied::default() } };
        match m.state {
            State::Ready => {
                self.ready.remove(&message);
            }
            State::InFlight(_) => {}
            State::DeadLettered => {
                self.dead.remove(&message);
            }
        }
        self.counts.remove(&message);
        Applied {
            reply,
            events: vec![Event::Left { message, why: Left::Acked { by } }],
            delivered: None,
            ended: Some(message),
        }
    }

    fn redrive(&mut self) -> Applied {
        let dead = std::mem::take(&mut self.dead);
        let mut events = Vec::with_capacity(dead.len());
        for message in dead {
            self.counts.remove(&message);
            self.make_ready(message);
            events.push(Event::Redriven { message });
        }
        let messages = events.len() as u32;
        Applied { reply: Some(BrokerReply::Redriven { messages }), events, ..Applied::default() }
    }

    fn make_ready(&mut self, message: MessageId) {
        self.ready.insert(message);
        self.messages.get_mut(&message).expect("a known message").state = State::Ready;
    }

    /// The messages in flight and their deliveries: what a new leader (or
    /// a restarted broker) must time afresh.
    pub fn in_flight(&self) -> impl Iterator<Item = (MessageId, Receipt)> + '_ {
        self.messages.iter().filter_map(|(&id, m)| match m.state {
            State::InFlight(r) => Some((id, r)),
            _ => None,
        })
    }

    /// Whether `message` is in flight under `receipt`.
    pub fn holds(&self, message: MessageId, receipt: Receipt) -> bool {
        self.messages.get(&message).is_some_and(|m| m.state == State::InFlight(receipt))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: Rules = Rules { max_receives: 2, dedup_publishes: true, dead_letter: true };

    fn body(seq: u32, poison: bool) -> Body {
        Body { publish: PublishId { producer: NodeId::client(0), seq }, account: "a0".into(), amount: 5, poison }
    }
    fn cmd(client: u32, id: u64, op: BrokerOp) -> QueueCommand {
        QueueCommand::Client { client: NodeId::client(client), id, op }
    }
    fn receive(q: &mut Queue, consumer: u32, id: u64, stamp: u64, rules: Rules) -> Applied {
        q.apply(&cmd(consumer, id, BrokerOp::Receive), stamp, rules)
    }

    #[test]
    fn a_publish_is_enqueued_once_unless_publishes_are_not_deduplicated() {
        let mut q = Queue::default();
        let first = q.apply(&cmd(0, 1, BrokerOp::Publish { body: body(1, false) }), 10, RULES);
        assert_eq!(first.reply, Some(BrokerReply::Published { message: MessageId(10) }));
        let retry = q.apply(&cmd(0, 2, BrokerOp::Publish { body: body(1, false) }), 11, RULES);
        assert_eq!(retry.reply, Some(BrokerReply::Published { message: MessageId(10) }));
        assert!(retry.events.is_empty());
        let sloppy = Rules { dedup_publishes: false, ..RULES };
        let twice = q.apply(&cmd(0, 3, BrokerOp::Publish { body: body(1, false) }), 12, sloppy);
        assert_eq!(twice.reply, Some(BrokerReply::Published { message: MessageId(12) }));
    }

    #[test]
    fn a_retried_receive_gets_its_delivery_back_and_an_expiry_makes_the_message_visible() {
        let mut q = Queue::default();
        q.apply(&cmd(0, 1, BrokerOp::Publish { body: body(1, false) }), 1, RULES);
        let got = receive(&mut q, 1, 7, 2, RULES);
        assert_eq!(got.delivered, Some((MessageId(1), Receipt(2))));
        assert_eq!(receive(&mut q, 1, 7, 3, RULES).reply, got.reply, "the same request");
        assert_eq!(receive(&mut q, 1, 6, 3, RULES), Applied::default(), "a late duplicate of an older one");
        assert_eq!(receive(&mut q, 2, 1, 4, RULES).reply, Some(BrokerReply::Empty), "invisible meanwhile");
        let stale = q.apply(&QueueCommand::Expire { message: MessageId(1), receipt: Receipt(9) }, 5, RULES);
        assert_eq!(stale.ended, None);
        let expired = q.apply(&QueueCommand::Expire { message: MessageId(1), receipt: Receipt(2) }, 6, RULES);
        assert_eq!(expired.ended, Some(MessageId(1)));
        assert_eq!(receive(&mut q, 2, 2, 7, RULES).delivered, Some((MessageId(1), Receipt(7))));
    }

    #[test]
    fn after_max_receives_a_message_is_dead_lettered_or_dropped_and_redrive_brings_it_back() {
        for dead_letter in [true, false] {
            let rules = Rules { dead_letter, ..RULES };
            let mut q = Queue::default();
            q.apply(&cmd(0, 1, BrokerOp::Publish { body: body(1, true) }), 1, rules);
            for stamp in [2, 4] {
                assert!(receive(&mut q, 1, stamp, stamp, rules).delivered.is_some());
                q.apply(&QueueCommand::Expire { message: MessageId(1), receipt: Receipt(stamp) }, stamp + 1, rules);
            }
            let third = receive(&mut q, 1, 6, 6, rules);
            assert_eq!(third.reply, Some(BrokerReply::Empty));
            let expected = if dead_letter {
                Event::DeadLettered { message: MessageId(1), body: body(1, true), receives: 2 }
            } else {
                Event::Left { message: MessageId(1), why: Left::Dropped }
            };
            assert_eq!(third.events, vec![expected]);
            let redriven = q.apply(&cmd(0, 2, BrokerOp::Redrive), 7, rules);
            assert_eq!(redriven.reply, Some(BrokerReply::Redriven { messages: u32::from(dead_letter) }));
            assert_eq!(receive(&mut q, 1, 8, 8, rules).delivered.is_some(), dead_letter, "counted afresh");
        }
    }

    #[test]
    fn an_ack_removes_the_message_whatever_its_state() {
        let mut q = Queue::default();
        q.apply(&cmd(0, 1, BrokerOp::Publish { body: body(1, false) }), 1, RULES);
        receive(&mut q, 1, 1, 2, RULES);
        let acked = q.apply(&cmd(1, 2, BrokerOp::Ack { message: MessageId(1) }), 3, RULES);
        assert_eq!(
            acked.events,
            vec![Event::Left { message: MessageId(1), why: Left::Acked { by: NodeId::client(1) } }]
        );
        assert_eq!(acked.ended, Some(MessageId(1)));
        let again = q.apply(&cmd(1, 3, BrokerOp::Ack { message: MessageId(1) }), 4, RULES);
        assert_eq!((again.reply, again.events), (Some(BrokerReply::Acked), vec![]));
        assert_eq!(receive(&mut q, 2, 4, 5, RULES).reply, Some(BrokerReply::Empty));
    }
}
