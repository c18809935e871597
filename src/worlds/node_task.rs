//! One node as an async task over a world's socket: binds, starts the node
//! on the host, then handles datagrams and timers as they come, sending
//! what the handlers send (through the driver's loss and duplication) and
//! arming what they arm. The task ends only when its world drops it (a
//! crash); the node's memory dies with it, its disk stays on the host.

use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;
use std::time::Duration;

use harness::host::Output;
use harness::sim::Status;
use harness::{MonoTime, NodeId};

use super::{SharedRef, Wire};

/// The largest datagram: a message bigger than this is cut off and dropped
/// by the receiver (postcard does not decode a short record).
const MAX_DATAGRAM: usize = 64 * 1024;

/// How often a paused node looks whether it may go on.
const PAUSE_POLL: Duration = Duration::from_millis(1);

/// Armed timers: by deadline (on the node's monotonic clock, which only
/// moves forward, so the earliest deadline is the next to fire) and id,
/// and each id's deadline.
#[derive(Default)]
struct Timers {
    by_deadline: BTreeMap<(MonoTime, u64), ()>,
    deadline: BTreeMap<u64, MonoTime>,
}

impl Timers {
    fn set(&mut self, id: u64, at: MonoTime) {
        self.by_deadline.insert((at, id), ());
        self.deadline.insert(id, at);
    }
    fn cancel(&mut self, id: u64) {
        if let Some(at) = self.deadline.remove(&id) {
            self.by_deadline.remove(&(at, id));
        }
    }
    fn next(&self) -> Option<(MonoTime, u64)> {
        self.by_deadline.keys().next().copied()
    }
}

pub async fn run<W: Wire>(wire: Rc<W>, shared: SharedRef, me: NodeId) -> std::io::Result<()> {
    let socket = wire.bind(me).await?;
    shared.borrow_mut().listening(me);
    // This task's incarnation: what it sends is framed with it, even the
    // sends a handler kept after a crash in it (the host counts the crash
    // first), so the restarted node's sends start a new era.
    let incarnation = shared.borrow().host.downs(me);
    let mut timers = Timers::default();
    let outputs = shared.borrow_mut().start(me, wire.now());
    apply(&*wire, &socket, &shared, (me, incarnation), &mut timers, outputs).await;
    if gone(&shared, me) {
        return Ok(());
    }
    let retime = shared.borrow_mut().retime(me);
    // One receive lives across the loop's turns: a receive is not
    // cancel-safe on every world (madsim's takes the datagram, then waits a
    // moment), so one dropped for a timer would lose a datagram unseen.
    let mut incoming = std::pin::pin!(receive(&*wire, &socket, vec![0u8; MAX_DATAGRAM]));
    // Datagrams received and not yet handed over: a paused node keeps
    // receiving (what arrived before a cut is not lost to it, as in the
    // built-in world) but hands nothing over until resumed.
    let mut ready: VecDeque<Vec<u8>> = VecDeque::new();
    loop {
        let paused = shared.borrow().is_paused(me);
        if !paused {
            if let Some(bytes) = ready.pop_front() {
                let outputs = {
                    let mut s = shared.borrow_mut();
                    let outputs = s.host.deliver(me, &bytes, wire.now());
                    s.stats.delivered += u64::from(outputs.is_some());
                    outputs.unwrap_or_default()
                };
                apply(&*wire, &socket, &shared, (me, incarnation), &mut timers, outputs).await;
                if gone(&shared, me) {
                    // What it had received and not handled dies with it.
                    shared.borrow_mut().stats.dropped_down += ready.len() as u64;
                    return Ok(());
                }
                continue;
            }
        }
        let next = timers.next().filter(|_| !paused);
        // Asked each time: a drift change moves a deadline in true time.
        let wait = next.map_or(Duration::from_secs(3600), |(at, _)| shared.borrow().host.until(me, at, wire.now()));
        // `biased`: tokio picks among ready branches at random, from a
        // seed turmoil sets only under `tokio_unstable`; in order, a seed
        // replays (a datagram first, then a due timer).
        let (at, id) = tokio::select! {
            biased;
            (received, buf) = incoming.as_mut() => {
                let n = received?;
                ready.extend(shared.borrow_mut().inbound(me, &buf[..n], wire.now()));
                incoming.set(receive(&*wire, &socket, buf));
                continue;
            }
            () = wire.sleep(wait), if next.is_some() => next.expect("armed"),
            // A paused node looks now and then whether it may go on; its
            // timers fire late, once it is resumed.
            () = wire.sleep(PAUSE_POLL), if paused => continue,
            // The clock's drift changed: the next deadline is at another true time.
            () = retime.notified() => continue,
        };
        let outputs = {
            let mut s = shared.borrow_mut();
            if s.is_paused(me) {
                continue; // paused while it waited: the timer fires once resumed
            }
            if s.host.until(me, at, wire.now()) > Duration::ZERO {
                continue; // the clock slowed while it slept: not yet
            }
            timers.cancel(id);
            s.stats.timers_fired += 1;
            s.host.fire(me, id, wire.now())
        };
        apply(&*wire, &socket, &shared, (me, incarnation), &mut timers, outputs).await;
        if gone(&shared, me) {
            shared.borrow_mut().stats.dropped_down += ready.len() as u64;
            return Ok(());
        }
    }
}

/// Receives one datagram into `buf`, and gives the buffer back for the next.
async fn receive<W: Wire>(wire: &W, socket: &W::Socket, mut buf: Vec<u8>) -> (std::io::Result<usize>, Vec<u8>) {
    let received = wire.recv(socket, &mut buf).await;
    (received, buf)
}

/// Whether the task ends: its node crashed in the handler it just ran (it
/// ends itself once what the handler kept is sent, rather than be stopped
/// from outside in the middle of sending it), or
/// the run stopped (a violation, a node's panic, the event bound).
fn gone(shared: &SharedRef, me: NodeId) -> bool {
    let s = shared.borrow();
    s.host.status(me) != Status::Up || s.host.stopped()
}

/// Sends and arms what a handler asked for, in order.
async fn apply<W: Wire>(
    wire: &W,
    socket: &W::Socket,
    shared: &SharedRef,
    (me, incarnation): (NodeId, u64),
    timers: &mut Timers,
    outputs: Vec<Output>,
) {
    for output in outputs {
        match output {
            Output::Send { to, bytes } => {
                let datagrams = shared.borrow_mut().outbound((me, incarnation), to, &bytes);
                for datagram in datagrams {
                    wire.send(socket, to, &datagram).await;
                }
            }
            Output::SetTimer { id, deadline } => timers.set(id, deadline),
            Output::CancelTimer { id } => timers.cancel(id),
        }
    }
}
