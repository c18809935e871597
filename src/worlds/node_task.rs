//! One node as an async task over a world's socket: binds, starts the node
//! on the host, then handles datagrams and timers as they come, sending
//! what the handlers send (through the driver's loss and duplication) and
//! arming what they arm. The task ends only when its world drops it (a
//! crash); the node's memory dies with it, its disk stays on the host.

use std::collections::BTreeMap;
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

enum Event {
    /// A datagram of this many bytes is in the buffer.
    Datagram(usize),
    Timer((MonoTime, u64)),
}

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
    let mut timers = Timers::default();
    let outputs = shared.borrow_mut().start(me, wire.now());
    apply(&*wire, &socket, &shared, me, &mut timers, outputs).await;
    if gone(&shared, me) {
        return Ok(());
    }
    let retime = shared.borrow_mut().retime(me);
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let next = timers.next();
        // Asked each time: a drift change moves a deadline in true time.
        let wait = next.map_or(Duration::from_secs(3600), |(at, _)| shared.borrow().host.until(me, at, wire.now()));
        // `biased`: tokio picks among ready branches at random, from a
        // seed turmoil sets only under `tokio_unstable`; in order, a seed
        // replays (a datagram first, then a due timer).
        let event = tokio::select! {
            biased;
            received = wire.recv(&socket, &mut buf) => Event::Datagram(received?),
            () = wire.sleep(wait), if next.is_some() => Event::Timer(next.expect("armed")),
            // The clock's drift changed: the next deadline is at another true time.
            () = retime.notified() => continue,
        };
        // A node paused while it waited handles nothing until resumed: the
        // datagram waits in hand, the timer fires late.
        while shared.borrow().is_paused(me) {
            wire.sleep(PAUSE_POLL).await;
        }
        let outputs = match event {
            Event::Datagram(n) => {
                let mut s = shared.borrow_mut();
                s.stats.delivered += 1;
                s.host.deliver(me, &buf[..n], wire.now())
            }
            Event::Timer((at, id)) => {
                let mut s = shared.borrow_mut();
                if s.host.until(me, at, wire.now()) > Duration::ZERO {
                    continue; // the clock slowed while it slept: not yet
                }
                timers.cancel(id);
                s.stats.timers_fired += 1;
                s.host.fire(me, id, wire.now())
            }
        };
        apply(&*wire, &socket, &shared, me, &mut timers, outputs).await;
        if gone(&shared, me) {
            return Ok(());
        }
    }
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
    me: NodeId,
    timers: &mut Timers,
    outputs: Vec<Output>,
) {
    for output in outputs {
        match output {
            Output::Send { to, bytes } => {
                let copies = shared.borrow_mut().copies(me, to);
                for _ in 0..copies {
                    wire.send(socket, to, &bytes).await;
                }
            }
            Output::SetTimer { id, deadline } => timers.set(id, deadline),
            Output::CancelTimer { id } => timers.cancel(id),
        }
    }
}
