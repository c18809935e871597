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
    /// Dropped at the sender: the link was cut.
    CutAtSender,
    /// Dropped on arrival at this time: the link was cut while it was in flight.
    Cut(SimTime),
    /// It arrived at a receiver that was down.
    Down(SimTime),
    /// It reached a paused receiver (`arrived`), which crashed (`crashed`)
    /// before it resumed.
    Discarded { arrived: SimTime, crashed: SimTime },
    /// Still in flight (or held by a paused receiver) when the run stopped.
    InFlight,
}

impl Fate {
    /// When its fate was sealed (`None`: at the sender, when it was sent).
    pub fn at(self) -> Option<SimTime> {
        match self {
            Fate::Delivered(t) | Fate::Cut(t) | Fate::Down(t) | Fate::Discarded { arrived: t, .. } => Some(t),
            Fate::Lost | Fate::CutAtSender | Fate::InFlight => None,
        }
    }
}

/// The log itself, with the send time of each message in flight (and the
/// arrival time of each held by a paused receiver), by the slot of its
/// delivery event.
#[derive(Debug)]
pub struct MessageLog {
    /// The picture's end: a fate sealed later is not logged (a message
    /// sent by then is logged as still in flight).
    cutoff: SimTime,
    kept: VecDeque<Message>,
    sent_at: Vec<SimTime>,
    arrived_at: Vec<SimTime>,
    /// Every message logged, kept or not.
    total: u64,
}

impl MessageLog {
    pub fn new(cutoff: SimTime) -> Self {
        MessageLog { cutoff, kept: VecDeque::new(), sent_at: Vec::new(), arrived_at: Vec::new(), total: 0 }
    }

    pub fn cutoff(&self) -> SimTime {
        self.cutoff
    }

    /// A message scheduled for delivery in event slot `slot` at `now`.
    pub fn in_flight(&mut self, slot: u32, now: SimTime) {
        let slot = slot as usize;
        if self.sent_at.len() <= slot {
            self.sent_at.resize(slot + 1, SimTime::ZERO);
        }
        self.sent_at[slot] = now;
    }

    /// The message in event slot `slot` reached a paused receiver at `now`.
    pub fn held(&mut self, slot: u32, now: SimTime) {
        let slot = slot as usize;
        if self.arrived_at.len() <= slot {
            self.arrived_at.resize(slot + 1, SimTime::ZERO);
        }
        self.arrived_at[slot] = now;
    }

    /// When the message in event slot `slot` reached its paused receiver.
    pub fn held_since(&self, slot: u32) -> SimTime {
        self.arrived_at.get(slot as usize).copied().unwrap_or(SimTime::ZERO)
    }

    /// The message in event slot `slot` met `fate`.
    pub fn arrived(&mut self, slot: u32, from: NodeId, to: NodeId, fate: Fate, text: String) {
        let mut m = self.in_slot(slot, from, to, fate, text);
        if m.sent > self.cutoff {
            return;
        }
        if fate.at().is_some_and(|t| t > self.cutoff) {
            m.fate = Fate::InFlight;
        }
        self.push(m);
    }

    /// The message in event slot `slot`, with `fate`, unlogged.
    pub fn in_slot(&self, slot: u32, from: NodeId, to: NodeId, fate: Fate, text: String) -> Message {
        let sent = self.sent_at.get(slot as usize).copied().unwrap_or(SimTime::ZERO);
        Message { from, to, sent, fate, text: bounded(text) }
    }

    /// A message dropped at its sender at `now`.
    pub fn dropped_at_sender(&mut self, now: SimTime, from: NodeId, to: NodeId, fate: Fate, text: String) {
        if now <= self.cutoff {
            self.push(Message { from, to, sent: now, fate, text });
        }
    }

    fn push(&mut self, mut m: Message) {
        m.text = bounded(m.text);
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

/// `text` cut to [`MAX_MESSAGE_TEXT`] characters, an ellipsis marking a cut.
fn bounded(mut text: String) -> String {
    if let Some((cut, _)) = text.char_indices().nth(MAX_MESSAGE_TEXT) {
        text.truncate(cut);
        text.push('…');
    }
    text
}

/// `value`'s `Debug` text, formatting no more than [`MAX_MESSAGE_TEXT`]
/// characters of it: a message may print as megabytes.
pub fn describe(value: &dyn std::fmt::Debug) -> String {
    struct Capped(String, usize);
    impl std::fmt::Write for Capped {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            for c in s.chars() {
                if self.1 > MAX_MESSAGE_TEXT {
                    return Err(std::fmt::Error); // stops the formatting
                }
                self.0.push(c);
                self.1 += 1;
            }
            Ok(())
        }
    }
    let mut out = Capped(String::new(), 0);
    let _ = std::fmt::write(&mut out, format_args!("{value:?}"));
    bounded(out.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_keeps_the_last_messages_and_their_send_times() {
        let mut log = MessageLog::new(SimTime(u64::MAX));
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

    #[test]
    fn a_cutoff_keeps_what_was_sent_by_then_and_in_flight_at_it() {
        let mut log = MessageLog::new(SimTime(100));
        let (a, b) = (NodeId::server(0), NodeId::server(1));
        log.in_flight(1, SimTime(90));
        log.arrived(1, a, b, Fate::Delivered(SimTime(95)), "before".into());
        log.in_flight(1, SimTime(99));
        log.arrived(1, a, b, Fate::Delivered(SimTime(105)), "across".into());
        log.in_flight(1, SimTime(101));
        log.arrived(1, a, b, Fate::Delivered(SimTime(110)), "after".into());
        log.dropped_at_sender(SimTime(120), a, b, Fate::Lost, "after".into());
        let fates: Vec<(String, Fate)> = log.messages().into_iter().map(|m| (m.text, m.fate)).collect();
        assert_eq!(fates, [("before".into(), Fate::Delivered(SimTime(95))), ("across".into(), Fate::InFlight)]);
        assert_eq!(describe(&"x".repeat(10_000)).chars().count(), MAX_MESSAGE_TEXT + 1);
    }
}
