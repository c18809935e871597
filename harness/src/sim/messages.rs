//! The message log: for a picture of a run (the HTML page's message
//! sequence), the last messages the network carried or dropped, each with
//! when it was sent and what became of it. Kept only when asked for: a
//! sweep pays nothing for it. The trace hash never depends on it.

use std::collections::VecDeque;

use serde::Serialize;

use crate::node::NodeId;
use crate::time::SimTime;

/// The most messages a log keeps (the last ones): a picture reads a few
/// hundred, and a run may send millions.
pub const MAX_LOGGED_MESSAGES: usize = 2_000;

/// The most characters of a message's text kept.
pub const MAX_MESSAGE_TEXT: usize = 240;

/// One message and what became of it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Message {
    pub from: NodeId,
    pub to: NodeId,
    pub sent: SimTime,
    pub fate: Fate,
    /// The message as its type prints it (`Debug`), cut to [`MAX_MESSAGE_TEXT`].
    pub text: String,
}

/// What the network did with a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Fate {
    /// Handed to the receiver's handler at this time.
    Delivered(SimTime),
    /// Lost at the sender (the link's loss).
    Lost,
    /// Dropped by a partition: at the sender, or on arrival (`at`) when the
    /// link was cut while it was in flight.
    Cut(SimTime),
    /// It arrived at a receiver that was down.
    Down(SimTime),
}

impl Fate {
    /// When its fate was sealed (`None`: at the sender, when it was sent).
    pub fn at(self) -> Option<SimTime> {
        match self {
            Fate::Delivered(t) | Fate::Cut(t) | Fate::Down(t) => Some(t),
            Fate::Lost => None,
        }
    }
}

/// The log itself, with the send time of each message in flight, by the
/// slot of its delivery event.
#[derive(Debug, Default)]
pub struct MessageLog {
    kept: VecDeque<Message>,
    sent_at: Vec<SimTime>,
    /// Every message logged, kept or not.
    total: u64,
}

impl MessageLog {
    /// A message scheduled for delivery in event slot `slot` at `now`.
    pub fn in_flight(&mut self, slot: u32, now: SimTime) {
        let slot = slot as usize;
        if self.sent_at.len() <= slot {
            self.sent_at.resize(slot + 1, SimTime::ZERO);
        }
        self.sent_at[slot] = now;
    }

    /// The message in event slot `slot` met `fate`.
    pub fn arrived(&mut self, slot: u32, from: NodeId, to: NodeId, fate: Fate, text: String) {
        let sent = self.sent_at.get(slot as usize).copied().unwrap_or(SimTime::ZERO);
        self.push(Message { from, to, sent, fate, text });
    }

    /// A message dropped at its sender at `now`.
    pub fn dropped_at_sender(&mut self, now: SimTime, from: NodeId, to: NodeId, fate: Fate, text: String) {
        self.push(Message { from, to, sent: now, fate, text });
    }

    fn push(&mut self, mut m: Message) {
        if let Some((cut, _)) = m.text.char_indices().nth(MAX_MESSAGE_TEXT) {
            m.text.truncate(cut);
            m.text.push('…');
        }
        if self.kept.len() == MAX_LOGGED_MESSAGES {
            self.kept.pop_front();
        }
        self.kept.push_back(m);
        self.total += 1;
    }

    /// The kept messages, in the order their fates were sealed.
    pub fn messages(&self) -> Vec<Message> {
        self.kept.iter().cloned().collect()
    }

    pub fn total(&self) -> u64 {
        self.total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_keeps_the_last_messages_and_their_send_times() {
        let mut log = MessageLog::default();
        let (a, b) = (NodeId::server(0), NodeId::server(1));
        for i in 0..MAX_LOGGED_MESSAGES as u64 + 5 {
            log.in_flight(3, SimTime(i));
            log.arrived(3, a, b, Fate::Delivered(SimTime(i + 10)), format!("m{i}"));
        }
        log.dropped_at_sender(SimTime(99_999), b, a, Fate::Lost, "x".repeat(1_000));
        let kept = log.messages();
        assert_eq!(kept.len(), MAX_LOGGED_MESSAGES);
        assert_eq!(log.total(), MAX_LOGGED_MESSAGES as u64 + 6);
        assert_eq!((kept[0].text.as_str(), kept[0].sent), ("m6", SimTime(6)));
        let last = kept.last().expect("kept");
        assert_eq!((last.fate, last.text.chars().count()), (Fate::Lost, MAX_MESSAGE_TEXT + 1));
    }
}
