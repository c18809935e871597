//! The driver's share of the network, the same in every other world. It
//! decides at the sender what the built-in world decides on a send (the
//! receiver is down, the link is cut, the datagram is lost or duplicated),
//! and frames each datagram that goes out with its link's state, so the
//! receiving driver can do what the built-in world does on a delivery:
//!
//! - drop what a partition left in flight (a cut starts a new *epoch* of
//!   the link, as the built-in world's cuts do), counted as
//!   `dropped_partition` whatever the world's own network did;
//! - on `fifo` links, hand datagrams to the node in the order they were
//!   sent: each copy put on the wire gets the link's next *sequence
//!   number*, and the receiver holds one that comes early until those
//!   before it arrive (the built-in world delays it behind them instead:
//!   the same order, and the same times up to the other world's latency).
//!
//! A hold waits only for datagrams the sender put on the wire in the same
//! *era* of the link: its epoch and both ends' incarnations. Within an era
//! the world drops nothing the driver sent but what a crash takes, so the
//! frame names both incarnations and a crash starts a new era:
//!
//! - what was sent to the receiver's earlier incarnation is dropped (as
//!   `dropped_down`, as if it arrived while the node was down): the world
//!   may have dropped some of it with the crashed host;
//! - a crashed sender may have been stopped in the middle of a send (madsim
//!   delays each send in the sender's task), so the first datagram of its
//!   next incarnation hands over what was held from the earlier one, in
//!   order, past the gap; what of the earlier incarnation comes later is
//!   dropped (`dropped_down`) rather than overtake it.
//!
//! On unordered links the world decides, as in the built-in world where a
//! datagram sent before a crash may reach the restarted node.

use std::collections::BTreeMap;

use harness::net::{LinkConfig, Ordering};
use harness::sim::Stats;
use std::time::Duration;

use harness::net::Latency;
use harness::{NodeId, Rng, SimTime};

/// The most datagrams a `fifo` link holds for one that has not arrived:
/// far above what any run keeps in flight on one link; reaching it means a
/// datagram the driver sent will never come, and the run stops.
pub const MAX_HELD: usize = 100_000;

/// What precedes a host's bytes in every datagram (postcard).
#[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq, Eq)]
struct Frame {
    /// The sender, by its place in the run's node list.
    from: u32,
    epoch: u32,
    /// The sender's and the receiver's counts of crashes when it was sent.
    sender: u64,
    receiver: u64,
    seq: u64,
}

/// A link's era: its epoch, the sender's and the receiver's incarnations.
#[derive(Copy, Clone, Default, Debug, PartialEq, Eq)]
struct Era {
    epoch: u32,
    sender: u64,
    receiver: u64,
}

#[derive(Default)]
struct Receiving {
    era: Era,
    next: u64,
    held: BTreeMap<u64, Vec<u8>>,
    /// Since when the link has held datagrams without handing one over.
    since: SimTime,
}

/// Why a datagram the receiving driver took is not handed over.
#[derive(Debug, PartialEq, Eq)]
pub enum Inbound {
    /// The host's bytes, in the order the node gets them (empty while a
    /// `fifo` link waits for an earlier datagram).
    Deliver(Vec<Vec<u8>>),
    /// A `fifo` link has waited for datagram `missing` longer than any
    /// latency the run allows, or holds [`MAX_HELD`] datagrams: it is gone,
    /// a defect of the driver or its world (not of the system under test).
    Stalled { from: NodeId, missing: u64, held: usize },
}

pub struct Links {
    nodes: Vec<NodeId>,
    fifo: bool,
    /// How long a `fifo` link may wait for a datagram before it is taken
    /// as lost: well past the slowest latency the run has allowed.
    patience: Duration,
    /// Loss and duplication now (the scenario's, or a storm's), drawn from
    /// the run's network stream.
    config: LinkConfig,
    rng: Rng,
    /// Directed links cut now.
    cut: BTreeMap<(NodeId, NodeId), ()>,
    /// Each directed link's epoch: how many times it was cut.
    epochs: BTreeMap<(NodeId, NodeId), u32>,
    /// Per directed link, the era its sequence numbers count in and the next.
    sending: BTreeMap<(NodeId, NodeId), (Era, u64)>,
    receiving: BTreeMap<(NodeId, NodeId), Receiving>,
}

impl Links {
    pub fn new(nodes: Vec<NodeId>, config: LinkConfig, rng: Rng) -> Self {
        Links {
            nodes,
            fifo: config.ordering == Ordering::Fifo,
            patience: patience(&config.latency),
            config,
            rng,
            cut: BTreeMap::new(),
            epochs: BTreeMap::new(),
            sending: BTreeMap::new(),
            receiving: BTreeMap::new(),
        }
    }

    /// Loss and duplication from now on. A storm keeps the ordering: a
    /// scenario's links are `fifo` or not for the whole run.
    pub fn set_config(&mut self, config: LinkConfig) {
        self.patience = self.patience.max(patience(&config.latency));
        self.config = config;
    }

    /// Cuts the directed link: nothing is sent on it, and what is in
    /// flight on it is dropped when it arrives.
    pub fn cut(&mut self, from: NodeId, to: NodeId) {
        self.cut.insert((from, to), ());
        *self.epochs.entry((from, to)).or_insert(0) += 1;
    }

    pub fn mend(&mut self, from: NodeId, to: NodeId) {
        self.cut.remove(&(from, to));
    }

    /// The datagrams that go out for one send from `from` to `to`: none
    /// (the receiver is down, the link cut, the datagram lost), one, or two
    /// (duplicated), each framed. `downs` are both ends' counts of crashes
    /// now, and `to_up` the receiver's status.
    pub fn outbound(
        &mut self,
        (from, to): (NodeId, NodeId),
        downs: (u64, u64),
        to_up: bool,
        bytes: &[u8],
        stats: &mut Stats,
    ) -> Vec<Vec<u8>> {
        // In the built-in world's order: the cut, loss and duplication at
        // the send, a receiver that is down at the delivery of each copy.
        stats.sent += 1;
        let mut copies = if self.cut.contains_key(&(from, to)) {
            stats.dropped_partition += 1;
            0
        } else if self.config.loss > 0.0 && self.rng.chance(self.config.loss) {
            stats.dropped_loss += 1;
            0
        } else if self.config.duplicate > 0.0 && self.rng.chance(self.config.duplicate) {
            stats.duplicated += 1;
            2
        } else {
            1
        };
        if !to_up {
            stats.dropped_down += copies;
            copies = 0;
        }
        let era = Era { epoch: self.epoch(from, to), sender: downs.0, receiver: downs.1 };
        let (at, next) = self.sending.entry((from, to)).or_insert((era, 0));
        if *at != era {
            (*at, *next) = (era, 0);
        }
        let place = self.nodes.iter().position(|&n| n == from).expect("a sender is a node of the run") as u32;
        (0..copies)
            .map(|_| {
                let frame =
                    Frame { from: place, epoch: era.epoch, sender: era.sender, receiver: era.receiver, seq: *next };
                *next += 1;
                let mut datagram = postcard::to_allocvec(&frame).expect("a frame encodes");
                datagram.extend_from_slice(bytes);
                datagram
            })
            .collect()
    }

    /// What the node `me` (now in its `downs`th incarnation) gets of a
    /// datagram that reached it. A datagram that is not a frame is dropped
    /// (counted nowhere: no sender of this run sent it).
    pub fn inbound(&mut self, me: NodeId, downs: u64, datagram: &[u8], now: SimTime, stats: &mut Stats) -> Inbound {
        let Ok((frame, bytes)) = postcard::take_from_bytes::<Frame>(datagram) else {
            return Inbound::Deliver(Vec::new());
        };
        let Some(&from) = self.nodes.get(frame.from as usize) else { return Inbound::Deliver(Vec::new()) };
        if frame.epoch != self.epoch(from, me) {
            stats.dropped_partition += 1;
            return Inbound::Deliver(Vec::new());
        }
        if !self.fifo {
            return Inbound::Deliver(vec![bytes.to_vec()]);
        }
        if frame.receiver != downs {
            stats.dropped_down += 1;
            return Inbound::Deliver(Vec::new());
        }
        let link = self.receiving.entry((from, me)).or_default();
        let era = Era { epoch: frame.epoch, sender: frame.sender, receiver: frame.receiver };
        let mut ready = Vec::new();
        if link.era != era {
            if (link.era.epoch, link.era.receiver) != (era.epoch, era.receiver) {
                // What it held was sent before a cut or to an earlier
                // incarnation: it came too late, as the first of a new era shows.
                let held = link.held.len() as u64;
                if link.era.epoch != era.epoch {
                    stats.dropped_partition += held;
                } else {
                    stats.dropped_down += held;
                }
                *link = Receiving { era, ..Receiving::default() };
            } else if era.sender < link.era.sender {
                stats.dropped_down += 1;
                return Inbound::Deliver(Vec::new()); // it would overtake the sender's next incarnation
            } else {
                // The sender restarted: what its earlier incarnation sent and
                // is held goes first, past what its crash cut off.
                ready.extend(std::mem::take(&mut link.held).into_values());
                *link = Receiving { era, ..Receiving::default() };
            }
        }
        if frame.seq < link.next || link.held.contains_key(&frame.seq) {
            debug_assert!(false, "each copy has its own sequence number");
            return Inbound::Deliver(ready);
        }
        if frame.seq > link.next {
            if link.held.is_empty() {
                link.since = now;
            }
            let waited = Duration::from_nanos(now.0.saturating_sub(link.since.0));
            if link.held.len() >= MAX_HELD || waited > self.patience {
                return Inbound::Stalled { from, missing: link.next, held: link.held.len() };
            }
            link.held.insert(frame.seq, bytes.to_vec());
            return Inbound::Deliver(ready);
        }
        link.since = now;
        ready.push(bytes.to_vec());
        link.next += 1;
        while let Some(next) = link.held.remove(&link.next) {
            ready.push(next);
            link.next += 1;
        }
        Inbound::Deliver(ready)
    }

    fn epoch(&self, from: NodeId, to: NodeId) -> u32 {
        self.epochs.get(&(from, to)).copied().unwrap_or(0)
    }
}

/// How long a `fifo` link waits for a datagram before taking it as lost:
/// twice the slowest latency, and at least [`MIN_PATIENCE`]. A world's own
/// queues add to latency without bound under load (madsim hands a node its
/// waiting datagrams newest first, about one a millisecond, so an old one
/// can wait seconds behind a burst): only a wait far past that is a loss.
fn patience(latency: &Latency) -> Duration {
    let slowest = match *latency {
        Latency::Constant(d) => d,
        Latency::Uniform { max, .. } | Latency::Exponential { max, .. } | Latency::HeavyTail { max, .. } => max,
    };
    slowest.saturating_mul(2).max(MIN_PATIENCE)
}

/// See [`patience`]. A seed of a seven-node election on madsim, a node
/// flooded after a 28 s pause, kept a datagram waiting over a second; 30 s
/// is far past that, and still inside a run's fault phase and liveness bound.
const MIN_PATIENCE: Duration = Duration::from_secs(30);

#[cfg(test)]
mod tests {
    use super::*;
    use harness::Stream;

    fn links(ordering: Ordering) -> Links {
        let config = LinkConfig { ordering, ..LinkConfig::default() };
        Links::new(vec![NodeId::server(1), NodeId::server(2)], config, Rng::new(1, Stream::Network))
    }

    fn send(links: &mut Links, downs: u64, text: &str) -> Vec<u8> {
        let (a, b) = (NodeId::server(1), NodeId::server(2));
        let mut out = links.outbound((a, b), (0, downs), true, text.as_bytes(), &mut Stats::default());
        assert_eq!(out.len(), 1, "no loss or duplication configured");
        out.pop().expect("one copy")
    }

    fn got(inbound: Inbound) -> Vec<String> {
        match inbound {
            Inbound::Deliver(all) => all.into_iter().map(|b| String::from_utf8(b).expect("text")).collect(),
            other => panic!("expected a delivery, got {other:?}"),
        }
    }

    #[test]
    fn a_fifo_link_hands_over_in_sending_order() {
        let mut links = links(Ordering::Fifo);
        let (one, two, three) = (send(&mut links, 0, "1"), send(&mut links, 0, "2"), send(&mut links, 0, "3"));
        let b = NodeId::server(2);
        let stats = &mut Stats::default();
        assert!(got(links.inbound(b, 0, &three, SimTime::ZERO, stats)).is_empty(), "3 waits for 1 and 2");
        assert_eq!(got(links.inbound(b, 0, &one, SimTime::ZERO, stats)), ["1"]);
        assert_eq!(got(links.inbound(b, 0, &two, SimTime::ZERO, stats)), ["2", "3"]);
    }

    #[test]
    fn an_unordered_link_hands_over_as_it_arrives() {
        let mut links = links(Ordering::Unordered);
        let (one, two) = (send(&mut links, 0, "1"), send(&mut links, 0, "2"));
        let b = NodeId::server(2);
        let stats = &mut Stats::default();
        assert_eq!(got(links.inbound(b, 0, &two, SimTime::ZERO, stats)), ["2"]);
        assert_eq!(got(links.inbound(b, 0, &one, SimTime::ZERO, stats)), ["1"]);
    }

    #[test]
    fn a_cut_drops_what_was_in_flight_and_starts_the_order_afresh() {
        let mut links = links(Ordering::Fifo);
        let (a, b) = (NodeId::server(1), NodeId::server(2));
        let before = send(&mut links, 0, "before");
        links.cut(a, b);
        let stats = &mut Stats::default();
        assert!(links.outbound((a, b), (0, 0), true, b"cut", stats).is_empty(), "nothing crosses a cut");
        assert_eq!(stats.dropped_partition, 1);
        links.mend(a, b);
        let after = send(&mut links, 0, "after");
        assert!(got(links.inbound(b, 0, &before, SimTime::ZERO, stats)).is_empty(), "in flight across the cut");
        assert_eq!(stats.dropped_partition, 2);
        assert_eq!(got(links.inbound(b, 0, &after, SimTime::ZERO, stats)), ["after"], "the new epoch counts from 0");
    }

    #[test]
    fn on_a_fifo_link_a_crash_drops_what_was_sent_to_the_earlier_incarnation() {
        let mut links = links(Ordering::Fifo);
        let b = NodeId::server(2);
        let (lost, late) = (send(&mut links, 0, "lost"), send(&mut links, 0, "late"));
        let after = send(&mut links, 1, "after");
        let stats = &mut Stats::default();
        assert!(got(links.inbound(b, 1, &late, SimTime::ZERO, stats)).is_empty());
        assert_eq!(stats.dropped_down, 1);
        assert_eq!(got(links.inbound(b, 1, &after, SimTime::ZERO, stats)), ["after"], "no wait for `lost`");
        drop(lost);
    }

    #[test]
    fn on_a_fifo_link_a_restarted_sender_goes_on_past_what_its_crash_cut_off() {
        let (a, b) = (NodeId::server(1), NodeId::server(2));
        let mut links = links(Ordering::Fifo);
        let stats = &mut Stats::default();
        let mut send = |sender: u64, text: &str| {
            links.outbound((a, b), (sender, 0), true, text.as_bytes(), &mut Stats::default()).pop().expect("sent")
        };
        let (_cut_off, held, late) = (send(0, "cut off"), send(0, "held"), send(0, "late"));
        let next = send(1, "next");
        assert!(got(links.inbound(b, 0, &held, SimTime::ZERO, stats)).is_empty(), "it waits for `cut off`");
        assert_eq!(
            got(links.inbound(b, 0, &next, SimTime::ZERO, stats)),
            ["held", "next"],
            "the restart ends the wait"
        );
        assert!(got(links.inbound(b, 0, &late, SimTime::ZERO, stats)).is_empty(), "it would overtake `next`");
        assert_eq!(stats.dropped_down, 1);
    }

    #[test]
    fn a_fifo_link_that_waits_past_its_patience_has_lost_a_datagram() {
        let mut links = links(Ordering::Fifo);
        let b = NodeId::server(2);
        let (_lost, two, three) = (send(&mut links, 0, "1"), send(&mut links, 0, "2"), send(&mut links, 0, "3"));
        let stats = &mut Stats::default();
        assert!(got(links.inbound(b, 0, &two, SimTime::ZERO, stats)).is_empty());
        let later = SimTime::from_duration(MIN_PATIENCE + Duration::from_millis(1));
        assert_eq!(
            links.inbound(b, 0, &three, later, stats),
            Inbound::Stalled { from: NodeId::server(1), missing: 0, held: 1 }
        );
    }

    #[test]
    fn duplicates_are_copies_in_order() {
        let config = LinkConfig { ordering: Ordering::Fifo, duplicate: 1.0, ..LinkConfig::default() };
        let (a, b) = (NodeId::server(1), NodeId::server(2));
        let mut links = Links::new(vec![a, b], config, Rng::new(1, Stream::Network));
        let stats = &mut Stats::default();
        let copies = links.outbound((a, b), (0, 0), true, b"x", stats);
        assert_eq!((copies.len(), stats.duplicated), (2, 1));
        assert!(got(links.inbound(b, 0, &copies[1], SimTime::ZERO, stats)).is_empty());
        assert_eq!(got(links.inbound(b, 0, &copies[0], SimTime::ZERO, stats)), ["x", "x"]);
    }

    #[test]
    fn a_datagram_that_is_not_a_frame_is_dropped() {
        let mut links = links(Ordering::Fifo);
        let stats = &mut Stats::default();
        assert!(got(links.inbound(NodeId::server(2), 0, &[0xff; 3], SimTime::ZERO, stats)).is_empty());
        assert!(got(links.inbound(NodeId::server(2), 0, &[], SimTime::ZERO, stats)).is_empty());
    }
}
